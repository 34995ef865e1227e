//! Numbers: currency signs and codes, group marks, `decimal:`; a canonical decimal or a named error.

use serde_json::Value;

use super::*;

/// `decimal:` of a number: the mark between the whole part and the fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalMark {
    /// `decimal: "."`: `1,200.50`, `1 200.50`, `1'200.50`; `1.200` is 1.2.
    Dot,
    /// `decimal: ","`: `1.200,50`, `1 200,50`, `1'200,50`; `1,200` is 1.2.
    Comma,
}

impl DecimalMark {
    /// `"."` or `","`; anything else is a sentence for a load error.
    pub fn parse(text: &str) -> Result<DecimalMark, String> {
        match text {
            "." => Ok(DecimalMark::Dot),
            "," => Ok(DecimalMark::Comma),
            other => Err(format!(
                "`decimal` is the decimal mark, \".\" or \",\" (quoted in YAML), found {other:?}"
            )),
        }
    }

    pub(super) fn mark(self) -> char {
        match self {
            DecimalMark::Dot => '.',
            DecimalMark::Comma => ',',
        }
    }
}

/// Signs that may stand before or after an amount (with or without a space). A sign may carry
/// up to two capital letters before it (`US$`, `CA$`, `R$`, `HK$`).
pub(super) const CURRENCY_SIGNS: &[char] = &[
    '$', '€', '£', '¥', '₹', '₩', '₽', '₺', '₪', '₫', '₱', '₦', '₴', '₲', '₵', '₡', '¢', '฿', '₭', '₮', '₸', '₼', '₾',
    '₿', '﷼',
];

/// A canonical decimal from a JSON number or a string (`" 12,500.50 "` → `"12500.5"`).
pub(super) fn to_number(value: &Value, decimal: Option<DecimalMark>) -> Result<String, Invalid> {
    let forms = match decimal {
        Some(DecimalMark::Comma) => NUMBER_FORMS_COMMA,
        None | Some(DecimalMark::Dot) => NUMBER_FORMS_DOT,
    };
    let canonical = match value {
        Value::Number(n) => number_text(n).and_then(|t| canonical_decimal(&t, Some(DecimalMark::Dot)).ok()),
        Value::String(s) => match canonical_decimal(s, decimal) {
            Ok(canonical) => Some(canonical),
            Err(NumberError::Ambiguous) => {
                return Err(Invalid {
                    code: INVALID_NUMBER,
                    message: format!(
                        "{} is ambiguous: with \".\" as the decimal mark it is a fraction, with \".\" between \
                         thousands a whole number; say which with `decimal: \".\"` or `decimal: \",\"`",
                        show(value)
                    ),
                });
            }
            Err(NumberError::LooksEuropean) => {
                return Err(Invalid {
                    code: INVALID_NUMBER,
                    message: format!(
                        "expected {forms}, got {} (for numbers written 12.500,50 set `decimal: \",\"`)",
                        show(value)
                    ),
                });
            }
            Err(NumberError::Malformed) => None,
        },
        _ => None,
    };
    canonical.ok_or_else(|| Invalid {
        code: INVALID_NUMBER,
        message: format!("expected {forms}, got {}", show(value)),
    })
}

pub(super) const NUMBER_FORMS_DOT: &str = "a number like 12500.50, -3, 12,500.50, 12 500.50 or $1,200 (commas, spaces or ' only \
                                between groups of three digits; a currency sign or three-letter code before or after)";
pub(super) const NUMBER_FORMS_COMMA: &str = "a number like 12500,50, -3, 12.500,50, 12 500,50 or 1.200 € (`decimal: \",\"`: dots, \
                                  spaces or ' only between groups of three digits; a currency sign or three-letter \
                                  code before or after)";

/// The plain decimal spelling of a JSON number (Rust's `f64` Display never uses exponents).
pub(super) fn number_text(n: &serde_json::Number) -> Option<String> {
    if let Some(i) = n.as_i64() {
        Some(i.to_string())
    } else if let Some(u) = n.as_u64() {
        Some(u.to_string())
    } else {
        n.as_f64().filter(|f| f.is_finite()).map(|f| f.to_string())
    }
}

/// Why a text is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberError {
    /// Not a number in the expected notation.
    Malformed,
    /// `1.200` without `decimal:`: 1.2, or 1200 as a European would write it.
    Ambiguous,
    /// Without `decimal:`, a form only European notation has (`1.200.000`, `12.500,50`, `12,5`).
    LooksEuropean,
}

/// How digits may be grouped: one kind of separator per number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grouping {
    Comma,
    Dot,
    /// `'` or `’` (Swiss).
    Apostrophe,
    /// A space, no-break space (U+00A0), narrow no-break space (U+202F) or thin space (U+2009).
    Space,
}

pub(super) fn grouping_of(c: char) -> Option<Grouping> {
    match c {
        ',' => Some(Grouping::Comma),
        '.' => Some(Grouping::Dot),
        '\'' | '\u{2019}' => Some(Grouping::Apostrophe),
        ' ' | '\u{00A0}' | '\u{202F}' | '\u{2009}' => Some(Grouping::Space),
        _ => None,
    }
}

/// Parses a number as people write it and spells it canonically: no `+`, no leading or
/// trailing zeros, `-0` is `0`. The digits are kept as text, so nothing is rounded.
///
/// Accepted around the number: whitespace, one currency sign ([`CURRENCY_SIGNS`], optionally
/// after up to two capitals: `US$`) or one ISO 4217 code (`EUR`, `usd`), before or after,
/// and a sign (`-`, `+`, `−`) before the number or before the currency. Inside: digits, at
/// most one decimal mark (`decimal`, `.` by default), and in the whole part one kind of group
/// separator between groups of exactly three digits (`,` or `.` — whichever is not the decimal
/// mark —, `'`/`’`, or a space including U+00A0, U+202F, U+2009). Without `decimal`, `1.200`
/// (one dot followed by exactly three digits, a whole part of 1–3 digits not starting with 0)
/// is [`NumberError::Ambiguous`].
pub(super) fn canonical_decimal(text: &str, decimal: Option<DecimalMark>) -> Result<String, NumberError> {
    let (negative, body) = strip_sign_and_currency(text.trim()).ok_or(NumberError::Malformed)?;
    let mark = decimal.unwrap_or(DecimalMark::Dot).mark();
    let (int_part, frac_part) = match body.split_once(mark) {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(NumberError::Malformed);
    }
    let european = || {
        if decimal.is_none() && looks_european(body) {
            NumberError::LooksEuropean
        } else {
            NumberError::Malformed
        }
    };
    if !all_digits(frac_part) {
        return Err(european());
    }
    let int_digits = ungroup(int_part, mark).ok_or_else(european)?;
    if decimal.is_none()
        && mark == '.'
        && frac_part.len() == 3
        && (1..=3).contains(&int_part.len())
        && all_digits(int_part)
        && !int_part.starts_with('0')
    {
        return Err(NumberError::Ambiguous);
    }
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = frac_part.trim_end_matches('0');
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Ok("0".to_owned());
    }
    let mut out = String::with_capacity(int_digits.len() + frac_digits.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(if int_digits.is_empty() { "0" } else { int_digits });
    if !frac_digits.is_empty() {
        out.push('.');
        out.push_str(frac_digits);
    }
    Ok(out)
}

/// Without `decimal:`, only European notation has two dots (`1.200.000`), a comma after the
/// last dot (`12.500,50`), or a comma followed by other than three digits (`12,5`). Only for
/// the hint in the message: such values are rejected either way.
pub(super) fn looks_european(body: &str) -> bool {
    let (last_comma, last_dot) = (body.rfind(','), body.rfind('.'));
    let decimal_comma = last_dot.is_none()
        && body
            .rsplit_once(',')
            .is_some_and(|(_, tail)| !tail.is_empty() && tail.len() != 3 && tail.bytes().all(|b| b.is_ascii_digit()));
    body.matches('.').count() > 1 || matches!((last_comma, last_dot), (Some(c), Some(d)) if c > d) || decimal_comma
}

/// The digits of a whole part: plain digits, or groups of three after a first group of 1–3,
/// separated by one kind of separator that is not the decimal `mark`.
pub(super) fn ungroup(int_part: &str, mark: char) -> Option<String> {
    if int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Some(int_part.to_owned());
    }
    let separator = int_part.chars().find(|c| !c.is_ascii_digit())?;
    let kind = grouping_of(separator).filter(|_| separator != mark)?;
    let mut groups = int_part.split(|c: char| !c.is_ascii_digit());
    let first = groups.next()?;
    if !(1..=3).contains(&first.len()) {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        digits.push_str(group);
    }
    // Every separator must be of the one kind found first.
    int_part
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .all(|c| grouping_of(c) == Some(kind))
        .then_some(digits)
}

/// `-$1,200` → `(true, "1,200")`: takes off the sign and at most one currency marker (a sign
/// from [`CURRENCY_SIGNS`], optionally after up to two capitals, or an ISO 4217 code) at either
/// end, with the whitespace between it and the number. A sign must touch what follows it
/// (`- 5` is not a number). `None` for two markers or two signs.
pub(super) fn strip_sign_and_currency(text: &str) -> Option<(bool, &str)> {
    let mut negative = None;
    let mut currency = false;
    let mut rest = text;
    for _ in 0..2 {
        if let Some((minus, after)) = take_sign(rest) {
            if negative.is_some() {
                return None;
            }
            negative = Some(minus);
            rest = after;
        } else if let Some(after) = take_currency_prefix(rest) {
            if currency {
                return None;
            }
            currency = true;
            rest = after.trim_start();
        }
    }
    if let Some(before) = take_currency_suffix(rest) {
        if currency {
            return None;
        }
        rest = before.trim_end();
    }
    Some((negative.unwrap_or(false), rest))
}

pub(super) fn take_sign(text: &str) -> Option<(bool, &str)> {
    let mut chars = text.chars();
    match chars.next()? {
        '-' | '\u{2212}' => Some((true, chars.as_str())),
        '+' => Some((false, chars.as_str())),
        _ => None,
    }
}

pub(super) fn take_currency_prefix(text: &str) -> Option<&str> {
    let capitals = text.bytes().take_while(u8::is_ascii_uppercase).count().min(2);
    for skip in (0..=capitals).rev() {
        let rest = text.get(skip..)?;
        if let Some(sign) = rest.chars().next().filter(|c| CURRENCY_SIGNS.contains(c)) {
            return rest.get(sign.len_utf8()..);
        }
    }
    let letters = text.bytes().take_while(u8::is_ascii_alphabetic).count();
    if letters == 3 && text.get(..3).is_some_and(is_currency_code) {
        return text.get(3..);
    }
    None
}

pub(super) fn take_currency_suffix(text: &str) -> Option<&str> {
    if let Some(sign) = text.chars().next_back().filter(|c| CURRENCY_SIGNS.contains(c)) {
        let before = text.get(..text.len() - sign.len_utf8())?;
        let capitals = before.bytes().rev().take_while(u8::is_ascii_uppercase).count();
        return match capitals {
            0..=2 => before.get(..before.len() - capitals),
            _ => None,
        };
    }
    let letters = text.bytes().rev().take_while(u8::is_ascii_alphabetic).count();
    let cut = text.len().saturating_sub(3);
    if letters == 3 && text.get(cut..).is_some_and(is_currency_code) {
        return text.get(..cut);
    }
    None
}

/// An active ISO 4217 code, any case (`EUR`, `usd`). Only real codes: stripping any three
/// letters would read `12 mln` as 12.
pub(super) fn is_currency_code(letters: &str) -> bool {
    let upper = letters.to_ascii_uppercase();
    ISO_4217.binary_search(&upper.as_str()).is_ok()
}

/// Active ISO 4217 currency codes (2025), sorted for binary search.
pub(super) const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];
