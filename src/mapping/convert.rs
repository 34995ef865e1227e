//! Typed conversions of rendered values (JSON values) into HubSpot property values and ids.
//! Pure functions: no templates, no I/O; bad input is an [`Invalid`], never a panic. One value
//! at a time: lists (multi-selects) are split into items by `route.rs`, which converts each.

use std::fmt::Write as _;

use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::PropValue;

/// The `type:` of a value spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    /// Strings as rendered; numbers, booleans and objects as JSON text. (Lists are joined with
    /// `;` item by item in `route.rs`.)
    Text,
    /// A canonical decimal (`"12,500.50"` → `12500.5`).
    Number,
    /// Epoch milliseconds at midnight UTC of a calendar date.
    Date,
    /// Exact epoch milliseconds.
    DateTime,
    /// `true`/`false`/`yes`/`no`/`on`/`off`/`1`/`0`/`y`/`n`.
    Bool,
}

impl ValueType {
    /// Every type, in the order messages list them.
    pub const ALL: [ValueType; 5] = [
        ValueType::Text,
        ValueType::Number,
        ValueType::Date,
        ValueType::DateTime,
        ValueType::Bool,
    ];

    /// The name used in the mapping.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Date => "date",
            ValueType::DateTime => "datetime",
            ValueType::Bool => "bool",
        }
    }

    /// The type called `name`, if there is one.
    pub fn parse(name: &str) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// True for `date` and `datetime`, the types that take `format:` and `timezone:`.
    pub fn is_temporal(self) -> bool {
        matches!(self, ValueType::Date | ValueType::DateTime)
    }
}

/// A `type:` with the options that refine it: how ONE value (or one item of a list) becomes a
/// property value. Built from the mapping at load; a portal schema (Step 7) may later supply
/// it where the mapping gives no `type:`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conversion {
    pub kind: ValueType,
    /// `format:` (date, datetime): the one form values must take.
    pub format: Option<DateFormat>,
    /// `timezone:` (date, datetime): the zone of values that carry no offset.
    pub timezone: Option<Tz>,
    /// `decimal:` (number): which mark separates the fraction.
    pub decimal: Option<DecimalMark>,
}

impl Conversion {
    /// `kind` with no options.
    pub fn plain(kind: ValueType) -> Conversion {
        Conversion {
            kind,
            format: None,
            timezone: None,
            decimal: None,
        }
    }

    /// Converts one non-blank value (see [`is_blank`]). A list is `multiple_values`: lists are
    /// taken apart item by item before they get here.
    pub fn convert(&self, value: &Value) -> Result<PropValue, Invalid> {
        if let Value::Array(items) = value {
            return Err(Invalid {
                code: MULTIPLE_VALUES,
                message: format!(
                    "expected one {} value, got a list of {}: {}",
                    self.kind.as_str(),
                    items.len(),
                    show(value)
                ),
            });
        }
        match self.kind {
            ValueType::Text => Ok(PropValue::Text(to_text(value))),
            ValueType::Number => to_number(value, self.decimal).map(PropValue::Number),
            ValueType::Date => self.to_date(value).map(PropValue::Date),
            ValueType::DateTime => self.to_datetime(value).map(PropValue::DateTime),
            ValueType::Bool => to_bool(value).map(PropValue::Bool),
        }
    }

    /// Epoch milliseconds at midnight UTC of the value's calendar date (as written; for an epoch
    /// value, its date in `timezone`, else in UTC).
    fn to_date(&self, value: &Value) -> Result<i64, Invalid> {
        let date = match self.read_when(value, INVALID_DATE)? {
            When::Day(date) => date,
            When::Local(local) => local.date(),
            When::Instant { date, .. } => date,
            When::Epoch(ms) => {
                let at = DateTime::from_timestamp_millis(ms).ok_or_else(|| self.invalid(INVALID_DATE, value))?;
                match self.timezone {
                    Some(tz) => at.with_timezone(&tz).date_naive(),
                    None => at.date_naive(),
                }
            }
        };
        Ok(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
    }

    /// Exact epoch milliseconds; a value without offset is local time in `timezone` (else UTC),
    /// a date without time is its midnight there.
    fn to_datetime(&self, value: &Value) -> Result<i64, Invalid> {
        match self.read_when(value, INVALID_DATETIME)? {
            When::Day(date) => self.local_ms(date.and_time(NaiveTime::MIN), value),
            When::Local(local) => self.local_ms(local, value),
            When::Instant { ms, .. } | When::Epoch(ms) => Ok(ms),
        }
    }

    /// A wall-clock time in `timezone` (UTC without one) as epoch ms. A time that the zone skips
    /// (spring forward) or repeats (fall back) is an error rather than a guess.
    fn local_ms(&self, local: NaiveDateTime, value: &Value) -> Result<i64, Invalid> {
        let Some(tz) = self.timezone else {
            return Ok(local.and_utc().timestamp_millis());
        };
        match tz.from_local_datetime(&local) {
            LocalResult::Single(at) => Ok(at.timestamp_millis()),
            LocalResult::Ambiguous(first, second) => Err(Invalid {
                code: AMBIGUOUS_LOCAL_TIME,
                message: format!(
                    "{} is {local} in {tz}, which happens twice (clocks go back): at {} and at {}; send the \
                     value with its offset",
                    show(value),
                    first.fixed_offset().to_rfc3339(),
                    second.fixed_offset().to_rfc3339()
                ),
            }),
            // At the very ends of chrono's range there is no offset to apply: not a gap.
            LocalResult::None if local.year().abs() > 200_000 => Err(self.invalid(INVALID_DATETIME, value)),
            LocalResult::None => Err(Invalid {
                code: NONEXISTENT_LOCAL_TIME,
                message: format!(
                    "{} is {local} in {tz}, which does not exist (clocks go forward over it)",
                    show(value)
                ),
            }),
        }
    }

    /// Reads a point in time: with `format:`, only that form; without, the built-in forms.
    fn read_when(&self, value: &Value, code: &'static str) -> Result<When, Invalid> {
        let when = match (&self.format, value) {
            (Some(format), Value::String(s)) => format.read(s.trim()),
            (Some(format), Value::Number(n)) => format.read(&n.to_string()),
            (Some(_), _) => None,
            (None, Value::Number(n)) => read_number_when(n).map_err(|why| self.invalid_because(code, value, why))?,
            (None, Value::String(s)) => {
                read_text_when(s.trim()).map_err(|why| self.invalid_because(code, value, why))?
            }
            (None, _) => None,
        };
        when.ok_or_else(|| self.invalid(code, value))
    }

    fn invalid(&self, code: &'static str, value: &Value) -> Invalid {
        let message = match &self.format {
            Some(format) => format!(
                "expected a value in the `format` {:?}, got {}",
                format.pattern,
                show(value)
            ),
            None => format!("expected {DATE_FORMS}, got {}", show(value)),
        };
        Invalid { code, message }
    }

    fn invalid_because(&self, code: &'static str, value: &Value, why: String) -> Invalid {
        Invalid {
            code,
            message: format!("{} {why}; expected {DATE_FORMS}", show(value)),
        }
    }
}

/// A value that does not convert: the rule code (`invalid_number`, …) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub code: &'static str,
    pub message: String,
}

/// A list where the conversion takes one value.
pub(crate) const MULTIPLE_VALUES: &str = "multiple_values";
const INVALID_NUMBER: &str = "invalid_number";
const INVALID_DATE: &str = "invalid_date";
const INVALID_DATETIME: &str = "invalid_datetime";
/// A wall-clock time that happens twice in `timezone` (the hour clocks go back over).
const AMBIGUOUS_LOCAL_TIME: &str = "ambiguous_local_time";
/// A wall-clock time that `timezone` skips (the hour clocks go forward over).
const NONEXISTENT_LOCAL_TIME: &str = "nonexistent_local_time";

/// True for values a property treats as "nothing": null, a blank string, an empty list or
/// object, or a list of blanks.
pub(crate) fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.iter().all(is_blank),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The text form of one value: a string as it is, numbers and booleans as JSON text, objects
/// (and lists, which callers take apart first) as compact JSON, null as nothing.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
    }
}

/// A short rendering of a received value for messages: quoted strings, JSON otherwise,
/// cut at 60 characters so a huge body does not flood a 202 response.
pub(crate) fn show(value: &Value) -> String {
    const MAX: usize = 60;
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text,
    }
}

// ---- numbers ----

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

    fn mark(self) -> char {
        match self {
            DecimalMark::Dot => '.',
            DecimalMark::Comma => ',',
        }
    }
}

/// Signs that may stand before or after an amount (with or without a space). A sign may carry
/// up to two capital letters before it (`US$`, `CA$`, `R$`, `HK$`).
const CURRENCY_SIGNS: &[char] = &[
    '$', '€', '£', '¥', '₹', '₩', '₽', '₺', '₪', '₫', '₱', '₦', '₴', '₲', '₵', '₡', '¢', '฿', '₭', '₮', '₸', '₼', '₾',
    '₿', '﷼',
];

/// A canonical decimal from a JSON number or a string (`" 12,500.50 "` → `"12500.5"`).
fn to_number(value: &Value, decimal: Option<DecimalMark>) -> Result<String, Invalid> {
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

const NUMBER_FORMS_DOT: &str = "a number like 12500.50, -3, 12,500.50, 12 500.50 or $1,200 (commas, spaces or ' only \
                                between groups of three digits; a currency sign or three-letter code before or after)";
const NUMBER_FORMS_COMMA: &str = "a number like 12500,50, -3, 12.500,50, 12 500,50 or 1.200 € (`decimal: \",\"`: dots, \
                                  spaces or ' only between groups of three digits; a currency sign or three-letter \
                                  code before or after)";

/// The plain decimal spelling of a JSON number (Rust's `f64` Display never uses exponents).
fn number_text(n: &serde_json::Number) -> Option<String> {
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
enum NumberError {
    /// Not a number in the expected notation.
    Malformed,
    /// `1.200` without `decimal:`: 1.2, or 1200 as a European would write it.
    Ambiguous,
    /// Without `decimal:`, a form only European notation has (`1.200.000`, `12.500,50`, `12,5`).
    LooksEuropean,
}

/// How digits may be grouped: one kind of separator per number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    Comma,
    Dot,
    /// `'` or `’` (Swiss).
    Apostrophe,
    /// A space, no-break space (U+00A0), narrow no-break space (U+202F) or thin space (U+2009).
    Space,
}

fn grouping_of(c: char) -> Option<Grouping> {
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
fn canonical_decimal(text: &str, decimal: Option<DecimalMark>) -> Result<String, NumberError> {
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
fn looks_european(body: &str) -> bool {
    let (last_comma, last_dot) = (body.rfind(','), body.rfind('.'));
    let decimal_comma = last_dot.is_none()
        && body
            .rsplit_once(',')
            .is_some_and(|(_, tail)| !tail.is_empty() && tail.len() != 3 && tail.bytes().all(|b| b.is_ascii_digit()));
    body.matches('.').count() > 1 || matches!((last_comma, last_dot), (Some(c), Some(d)) if c > d) || decimal_comma
}

/// The digits of a whole part: plain digits, or groups of three after a first group of 1–3,
/// separated by one kind of separator that is not the decimal `mark`.
fn ungroup(int_part: &str, mark: char) -> Option<String> {
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
fn strip_sign_and_currency(text: &str) -> Option<(bool, &str)> {
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

fn take_sign(text: &str) -> Option<(bool, &str)> {
    let mut chars = text.chars();
    match chars.next()? {
        '-' | '\u{2212}' => Some((true, chars.as_str())),
        '+' => Some((false, chars.as_str())),
        _ => None,
    }
}

fn take_currency_prefix(text: &str) -> Option<&str> {
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

fn take_currency_suffix(text: &str) -> Option<&str> {
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
fn is_currency_code(letters: &str) -> bool {
    let upper = letters.to_ascii_uppercase();
    ISO_4217.binary_search(&upper.as_str()).is_ok()
}

/// Active ISO 4217 currency codes (2025), sorted for binary search.
const ISO_4217: &[&str] = &[
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

// ---- dates ----

/// `format:` of a date or datetime: a strftime-style pattern (chrono's syntax, e.g.
/// `%d/%m/%Y`, `%m/%d/%Y %H:%M`, `%d.%m.%Y`, `%Y%m%d%H%M`), checked at load to give a whole
/// date, a whole time when it has any time field, and no field chrono would skip unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateFormat {
    pattern: String,
    items: Vec<Item<'static>>,
    has_time: bool,
    has_offset: bool,
}

impl DateFormat {
    /// Checks `pattern`; the error is a sentence for a load error.
    pub fn parse(pattern: &str) -> Result<DateFormat, String> {
        let bad = |why: &str| format!("`format` {pattern:?} {why}");
        let items = StrftimeItems::new(pattern)
            .parse_to_owned()
            .map_err(|_| bad("has an unknown `%` specifier (see chrono's strftime: %Y, %m, %d, %H, %M, %S, %z, …)"))?;
        for item in &items {
            match item {
                Item::Fixed(Fixed::TimezoneName) => {
                    return Err(bad(
                        "uses %Z, which chrono skips without reading; give the zone with `timezone:` instead",
                    ));
                }
                Item::Numeric(chrono::format::Numeric::Timestamp, _) => {
                    return Err(bad(
                        "uses %s; epoch seconds and milliseconds are read without `format:`",
                    ));
                }
                _ => {}
            }
        }
        // Write a known instant with the pattern and read it back: what comes back is what the
        // pattern can tell. Writing can fail (it is never unwrapped): then the pattern is unusable.
        let sample = FixedOffset::east_opt(3600)
            .and_then(|offset| {
                NaiveDate::from_ymd_opt(2026, 12, 15)
                    .and_then(|d| d.and_hms_milli_opt(14, 30, 45, 123))
                    .and_then(|local| offset.from_local_datetime(&local).single())
            })
            .ok_or_else(|| bad("could not be checked"))?;
        let mut written = String::new();
        write!(written, "{}", sample.format_with_items(items.iter()))
            .map_err(|_| bad("cannot write a date (check its `%` specifiers)"))?;
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, &written, items.iter())
            .map_err(|_| bad("cannot read back what it writes (two fields run together?)"))?;
        if parsed.to_naive_date().ok() != Some(sample.date_naive()) {
            return Err(bad(
                "must give a whole date: the year, month and day (%Y, %m, %d; or %y, %b, %e, %j)",
            ));
        }
        let has_time = parsed.hour_div_12().is_some()
            || parsed.hour_mod_12().is_some()
            || parsed.minute().is_some()
            || parsed.second().is_some()
            || parsed.nanosecond().is_some();
        if has_time && parsed.to_naive_time().map(|t| (t.hour(), t.minute())) != Ok((14, 30)) {
            return Err(bad(
                "has a time field but not a whole time: the hour (%H, or %I with %p) and the minutes (%M)",
            ));
        }
        Ok(DateFormat {
            pattern: pattern.to_owned(),
            items,
            has_time,
            has_offset: parsed.offset().is_some(),
        })
    }

    /// Reads `text` with the pattern, whole; `None` when it does not fit.
    fn read(&self, text: &str) -> Option<When> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).ok()?;
        if self.has_offset {
            let at = parsed.to_datetime().ok()?;
            Some(When::Instant {
                ms: at.timestamp_millis(),
                date: at.date_naive(),
            })
        } else if self.has_time {
            parsed.to_naive_datetime_with_offset(0).ok().map(When::Local)
        } else {
            parsed.to_naive_date().ok().map(When::Day)
        }
    }
}

/// `timezone:`: an IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`). The error is
/// a sentence for a load error, with the nearest known name when one is close.
pub(crate) fn parse_timezone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let lower = name.to_ascii_lowercase();
    let near = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .find(|known| known.to_ascii_lowercase() == lower)
        .map(|known| format!("; did you mean {known:?}?"))
        .unwrap_or_default();
    Err(format!(
        "unknown time zone {name:?} (an IANA name such as \"Europe/Paris\", \"America/New_York\" or \"UTC\"){near}"
    ))
}

/// A point in time as the sender wrote it.
enum When {
    /// A calendar date without a time (`2026-12-01`, `20261201`).
    Day(NaiveDate),
    /// A wall-clock date and time without an offset (`2026-12-01 15:00`): in `timezone`, or UTC.
    Local(NaiveDateTime),
    /// An instant with its offset, and the calendar date as written in that offset.
    Instant { ms: i64, date: NaiveDate },
    /// Epoch milliseconds (from seconds or milliseconds): an instant with no written date.
    Epoch(i64),
}

const DATE_FORMS: &str = "an ISO date (2026-12-01), a date as YYYYMMDD (20261201), an ISO datetime \
                          (2026-12-01T15:00:00+02:00, …Z, or without offset = UTC or `timezone:`), epoch seconds \
                          (10 digits) or milliseconds (13 digits) between 2001-09-09 and 2286-11-20; for other \
                          forms (03/04/2026, 15.12.2026, …) set `format:`, e.g. `format: \"%d/%m/%Y\"`";

/// Epoch seconds are read only in `[10^9, 10^10)` (2001-09-09T01:46:40Z to 2286-11-20T17:46:39Z).
const EPOCH_SECONDS: std::ops::Range<i64> = 1_000_000_000..10_000_000_000;
/// Epoch milliseconds are read only in `[10^12, 10^13)`: the same span of time.
const EPOCH_MILLIS: std::ops::Range<i64> = 1_000_000_000_000..10_000_000_000_000;

/// A JSON number: an integer by the digit rules, a fraction as epoch seconds or milliseconds.
/// `Ok(None)`: not a date at all; `Err`: why these digits are not one.
fn read_number_when(n: &serde_json::Number) -> Result<Option<When>, String> {
    if let Some(i) = n.as_i64() {
        return read_digits_when(i).map(Some);
    }
    let Some(f) = n.as_f64().filter(|f| f.is_finite()) else {
        return Ok(None);
    };
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return read_digits_when(f as i64).map(Some);
    }
    // Fractional epoch values: keep millisecond precision, drop the rest.
    let ms = if (EPOCH_SECONDS.start as f64..EPOCH_SECONDS.end as f64).contains(&f) {
        (f * 1000.0).trunc()
    } else if (EPOCH_MILLIS.start as f64..EPOCH_MILLIS.end as f64).contains(&f) {
        f.trunc()
    } else {
        return Err(epoch_range_message());
    };
    Ok(Some(When::Epoch(ms as i64)))
}

/// Digits (of a string or an integer): `YYYYMMDD` when 8 digits make a valid date (years
/// 1000–9999), else epoch seconds or milliseconds in their plausible ranges.
fn read_digits_when(n: i64) -> Result<When, String> {
    if (10_000_000..100_000_000).contains(&n) {
        let (year, month, day) = (n / 10_000, (n / 100 % 100) as u32, (n % 100) as u32);
        return i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
            .map(When::Day)
            .ok_or_else(|| "has 8 digits but is not a valid YYYYMMDD date".to_owned());
    }
    if EPOCH_SECONDS.contains(&n) {
        return Ok(When::Epoch(n * 1000));
    }
    if EPOCH_MILLIS.contains(&n) {
        return Ok(When::Epoch(n));
    }
    Err(epoch_range_message())
}

fn epoch_range_message() -> String {
    "is neither a YYYYMMDD date nor epoch seconds or milliseconds in the accepted range".to_owned()
}

/// Reads the built-in text forms. `Ok(None)`: none fits; `Err`: digits that are no date.
fn read_text_when(t: &str) -> Result<Option<When>, String> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // Past 15 digits no reading fits: the value is not a date, however many digits it has.
        return match t.trim_start_matches('0').len() {
            0..=15 => t
                .parse::<i64>()
                .map_err(|_| epoch_range_message())
                .and_then(read_digits_when),
            _ => Err(epoch_range_message()),
        }
        .map(Some);
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Some(When::Day(date)));
    }
    let with_offset =
        DateTime::parse_from_rfc3339(t).or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"));
    if let Ok(dt) = with_offset {
        return Ok(Some(When::Instant {
            ms: dt.timestamp_millis(),
            date: dt.date_naive(),
        }));
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    Ok(NAIVE
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(t, fmt).ok())
        .map(When::Local))
}

// ---- booleans ----

fn to_bool(value: &Value) -> Result<bool, Invalid> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "y" => Some(true),
            "false" | "no" | "off" | "0" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| Invalid {
        code: "invalid_bool",
        message: format!(
            "expected true/false, yes/no, on/off, y/n or 1/0 (any case), got {}",
            show(value)
        ),
    })
}

// ---- ids ----

/// HubSpot record ids from one id (integer or digit string), a list of those, or a string of
/// ids separated by commas, semicolons or whitespace. Blank → none; duplicates are dropped,
/// first occurrence kept. On failure, every bad item, shown for a message.
pub(crate) fn parse_ids(value: &Value) -> Result<Vec<u64>, Vec<String>> {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    collect_ids(value, true, &mut ids, &mut bad);
    if !bad.is_empty() {
        return Err(bad);
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok(ids)
}

fn collect_ids(value: &Value, top: bool, ids: &mut Vec<u64>, bad: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Number(n) => match id_from_number(n) {
            Some(id) => ids.push(id),
            None => bad.push(show(value)),
        },
        Value::String(s) => {
            for item in s.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
                if item.is_empty() {
                    continue;
                }
                match item.parse::<u64>() {
                    Ok(id) if id > 0 && item.bytes().all(|b| b.is_ascii_digit()) => ids.push(id),
                    _ => bad.push(show(&Value::String(item.to_owned()))),
                }
            }
        }
        Value::Array(items) if top => {
            for item in items {
                collect_ids(item, false, ids, bad);
            }
        }
        Value::Array(_) | Value::Bool(_) | Value::Object(_) => bad.push(show(value)),
    }
}

fn id_from_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(u) = n.as_u64() {
        return (u > 0).then_some(u);
    }
    // A JSON float that is a whole number (`123.0`) is still the id 123, within f64's exact range.
    let f = n.as_f64()?;
    (f.fract() == 0.0 && (1.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEC_1_2026_MS: i64 = 1_796_083_200_000;

    fn convert(kind: ValueType, value: &Value) -> Result<PropValue, Invalid> {
        Conversion::plain(kind).convert(value)
    }

    #[test]
    fn numbers_become_canonical_decimals() {
        let cases = [
            (json!("12500.50"), "12500.5"),
            (json!("12,500.50"), "12500.5"),
            (json!("1,234,567"), "1234567"),
            (json!("-3"), "-3"),
            (json!("+4"), "4"),
            (json!(" 7 "), "7"),
            (json!("007"), "7"),
            (json!("-0"), "0"),
            (json!("-0.000"), "0"),
            (json!("0.25"), "0.25"),
            (json!(".5"), "0.5"),
            (json!("-1,000.10"), "-1000.1"),
            (
                json!("123456789012345678901234567890.123"),
                "123456789012345678901234567890.123",
            ),
            (json!(12500.5), "12500.5"),
            (json!(-3), "-3"),
            (json!(18446744073709551615u64), "18446744073709551615"),
            (json!(1e21), "1000000000000000000000"),
            (json!(0.1), "0.1"),
        ];
        for (input, want) in cases {
            assert_eq!(
                convert(ValueType::Number, &input),
                Ok(PropValue::Number(want.into())),
                "input {input}"
            );
        }
    }

    #[test]
    fn malformed_numbers_are_rejected_with_what_was_received() {
        let cases = [
            json!("12,50"),
            json!("1,2345"),
            json!("1234,567"),
            json!(",123"),
            json!("abc"),
            json!("NaN"),
            json!("inf"),
            json!("1e5"),
            json!("."),
            json!("-"),
            json!("12.5.1"),
            json!(true),
        ];
        for input in cases {
            let err = convert(ValueType::Number, &input).expect_err(&input.to_string());
            assert_eq!(err.code, "invalid_number", "input {input}");
            assert!(err.message.contains(&show(&input)), "input {input}: {}", err.message);
            assert!(
                err.message.contains("12,500.50"),
                "input {input}: says what is accepted"
            );
        }
    }

    #[test]
    fn dates_become_midnight_utc_of_the_date_as_written() {
        let cases = [
            ("iso date", json!("2026-12-01")),
            ("datetime with offset", json!("2026-12-01T15:00:00+02:00")),
            ("late in a negative offset", json!("2026-12-01T23:30:00-08:00")),
            ("early in a positive offset", json!("2026-12-01T00:30:00+05:00")),
            ("zulu", json!("2026-12-01T15:00:00Z")),
            ("fractional seconds", json!("2026-12-01T15:00:00.123Z")),
            ("offset without colon", json!("2026-12-01T15:00:00+0200")),
            ("naive datetime", json!("2026-12-01T15:00:00")),
            ("naive with space", json!("2026-12-01 15:00")),
            ("epoch seconds", json!(1_796_137_200)),
            ("epoch seconds text", json!("1796137200")),
            ("epoch ms", json!(1_796_137_200_000i64)),
            ("epoch ms text", json!(" 1796137200000 ")),
        ];
        for (name, input) in cases {
            assert_eq!(
                convert(ValueType::Date, &input),
                Ok(PropValue::Date(DEC_1_2026_MS)),
                "{name}"
            );
        }
    }

    #[test]
    fn datetimes_are_exact_instants() {
        let at_13_utc = DEC_1_2026_MS + 13 * 3_600_000;
        let cases = [
            ("offset", json!("2026-12-01T15:00:00+02:00"), at_13_utc),
            ("zulu", json!("2026-12-01T13:00:00Z"), at_13_utc),
            ("naive is utc", json!("2026-12-01T13:00:00"), at_13_utc),
            ("millis kept", json!("2026-12-01T13:00:00.250Z"), at_13_utc + 250),
            ("date only is midnight", json!("2026-12-01"), DEC_1_2026_MS),
            ("epoch seconds", json!(1_796_130_000), at_13_utc),
            ("epoch ms", json!(1_796_130_000_123i64), at_13_utc + 123),
            ("fractional epoch seconds", json!(1_796_130_000.5), at_13_utc + 500),
            ("before 1970", json!("1969-12-31T23:59:59Z"), -1000),
        ];
        for (name, input, want) in cases {
            assert_eq!(
                convert(ValueType::DateTime, &input),
                Ok(PropValue::DateTime(want)),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_dates_are_rejected_per_type() {
        let cases = [
            json!("2026-13-01"),
            json!("2026-02-30"),
            json!("01/12/2026"),
            json!("tomorrow"),
            json!("2026-12-01T25:00:00Z"),
            json!(true),
            json!("99999999999999999999"),
            json!(9.0e300),
        ];
        for input in cases {
            let date = convert(ValueType::Date, &input).expect_err(&format!("date {input}"));
            assert_eq!(date.code, "invalid_date", "input {input}");
            assert!(
                date.message.contains("2026-12-01"),
                "input {input}: says what is accepted"
            );
            let dt = convert(ValueType::DateTime, &input).expect_err(&format!("datetime {input}"));
            assert_eq!(dt.code, "invalid_datetime", "input {input}");
        }
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        let cases = [
            (json!(true), true),
            (json!(false), false),
            (json!("TRUE"), true),
            (json!("yes"), true),
            (json!(" Y "), true),
            (json!("on"), true),
            (json!("1"), true),
            (json!(1), true),
            (json!("False"), false),
            (json!("NO"), false),
            (json!("off"), false),
            (json!("n"), false),
            (json!("0"), false),
            (json!(0), false),
        ];
        for (input, want) in cases {
            assert_eq!(
                convert(ValueType::Bool, &input),
                Ok(PropValue::Bool(want)),
                "input {input}"
            );
        }
        for input in [json!("maybe"), json!(2), json!("10")] {
            let err = convert(ValueType::Bool, &input).expect_err(&input.to_string());
            assert_eq!(err.code, "invalid_bool", "input {input}");
        }
    }

    #[test]
    fn text_keeps_strings_as_rendered_and_json_for_the_rest() {
        let cases = [
            (json!("as rendered "), "as rendered "),
            (json!(12.5), "12.5"),
            (json!(true), "true"),
            (json!({"a": 1}), "{\"a\":1}"),
        ];
        for (input, want) in cases {
            assert_eq!(
                convert(ValueType::Text, &input),
                Ok(PropValue::Text(want.into())),
                "input {input}"
            );
        }
    }

    #[test]
    fn blank_values_are_recognised() {
        for blank in [
            json!(null),
            json!(""),
            json!("  \n"),
            json!([]),
            json!([null, " "]),
            json!({}),
        ] {
            assert!(is_blank(&blank), "{blank} is blank");
        }
        for full in [json!(0), json!(false), json!("x"), json!(["x"])] {
            assert!(!is_blank(&full), "{full} is not blank");
        }
    }

    #[test]
    fn ids_come_from_numbers_strings_and_lists_without_duplicates() {
        let cases = [
            ("single number", json!(123), vec![123]),
            ("digit string", json!(" 123 "), vec![123]),
            ("comma separated", json!("1, 2,3"), vec![1, 2, 3]),
            ("semicolons and spaces", json!("1;2 3\n4"), vec![1, 2, 3, 4]),
            ("list", json!([5, "6", 5]), vec![5, 6]),
            ("duplicates keep first order", json!("9,8,9,7,8"), vec![9, 8, 7]),
            ("whole float", json!(42.0), vec![42]),
            ("null", json!(null), vec![]),
            ("blank", json!(" "), vec![]),
            ("empty list", json!([]), vec![]),
            ("list with nulls", json!([null, 1]), vec![1]),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_ids(&input), Ok(want), "{name}");
        }
    }

    #[test]
    fn bad_ids_are_all_named() {
        let cases = [
            ("word", json!("abc"), vec!["\"abc\""]),
            ("mixed", json!("1,x2,3,-4"), vec!["\"x2\"", "\"-4\""]),
            ("zero", json!(0), vec!["0"]),
            ("negative", json!(-5), vec!["-5"]),
            ("fraction", json!(1.5), vec!["1.5"]),
            ("bool", json!(true), vec!["true"]),
            ("nested list", json!([1, [2]]), vec!["[2]"]),
            ("object", json!({"id": 1}), vec!["{\"id\":1}"]),
            (
                "overflow",
                json!("99999999999999999999999"),
                vec!["\"99999999999999999999999\""],
            ),
        ];
        for (name, input, want) in cases {
            let want: Vec<String> = want.into_iter().map(String::from).collect();
            assert_eq!(parse_ids(&input), Err(want), "{name}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = json!("x".repeat(500));
        let shown = show(&long);
        assert!(shown.chars().count() <= 61, "{shown}");
        assert!(shown.ends_with('…'));
    }
}

/// Numbers as people write them (issue 10, item 3): currency, spaces, group and decimal marks.
#[cfg(test)]
mod number_variants {
    use super::*;
    use serde_json::json;

    fn number(decimal: Option<DecimalMark>, input: &Value) -> Result<String, Invalid> {
        let conversion = Conversion {
            decimal,
            ..Conversion::plain(ValueType::Number)
        };
        conversion.convert(input).map(|v| v.to_wire_string())
    }

    /// `(name, decimal, input, Ok(canonical) | Err(a phrase the message must hold))`.
    type Row = (
        &'static str,
        Option<DecimalMark>,
        Value,
        Result<&'static str, &'static str>,
    );

    const DOT: Option<DecimalMark> = Some(DecimalMark::Dot);
    const COMMA: Option<DecimalMark> = Some(DecimalMark::Comma);

    fn rows() -> Vec<Row> {
        vec![
            // The inputs.
            ("dollar sign and grouping", None, json!("$1,200.00"), Ok("1200")),
            ("euro sign, space grouping", None, json!("€ 1 200"), Ok("1200")),
            ("code after", None, json!("1200 EUR"), Ok("1200")),
            ("european with decimal comma", COMMA, json!("12.500,50"), Ok("12500.5")),
            // Currency markers.
            ("code before", None, json!("USD 1,200"), Ok("1200")),
            ("sign after, no space", None, json!("1200€"), Ok("1200")),
            ("sign after, space", COMMA, json!("1.200,00 €"), Ok("1200")),
            ("lower-case code", None, json!("1200 eur"), Ok("1200")),
            ("code glued before", None, json!("CHF1'200.50"), Ok("1200.5")),
            ("capitals before a sign", None, json!("US$1,200"), Ok("1200")),
            ("pound", None, json!("£12.50"), Ok("12.5")),
            ("rupee", None, json!("₹ 5000"), Ok("5000")),
            ("not a currency code", None, json!("12 mln"), Err("expected a number")),
            ("unit, not a currency", None, json!("12 kg"), Err("expected a number")),
            (
                "two currency markers",
                None,
                json!("$1,200 USD"),
                Err("expected a number"),
            ),
            ("currency alone", None, json!("EUR"), Err("expected a number")),
            ("sign alone", None, json!("$"), Err("expected a number")),
            // Signs.
            ("minus", None, json!("-1,200"), Ok("-1200")),
            ("minus before currency", None, json!("-$1,200"), Ok("-1200")),
            ("minus after currency", None, json!("$-1,200"), Ok("-1200")),
            ("minus after currency and space", None, json!("€ -5"), Ok("-5")),
            ("unicode minus", None, json!("\u{2212}7"), Ok("-7")),
            ("plus", None, json!("+7"), Ok("7")),
            ("minus then space", None, json!("- 5"), Err("expected a number")),
            ("two signs", None, json!("--5"), Err("expected a number")),
            (
                "accounting parentheses",
                None,
                json!("(1,200)"),
                Err("expected a number"),
            ),
            ("trailing minus", None, json!("1200-"), Err("expected a number")),
            // Spaces.
            ("spaces around", None, json!("  1200  "), Ok("1200")),
            ("no-break space grouping", None, json!("1\u{00A0}200"), Ok("1200")),
            (
                "narrow no-break space grouping",
                COMMA,
                json!("1\u{202F}200,50"),
                Ok("1200.5"),
            ),
            ("thin space grouping", None, json!("1\u{2009}200"), Ok("1200")),
            (
                "no-break space after sign",
                None,
                json!("€\u{00A0}1\u{00A0}200"),
                Ok("1200"),
            ),
            (
                "space grouping with decimal comma",
                COMMA,
                json!("1 200,50"),
                Ok("1200.5"),
            ),
            ("space grouping with decimal dot", None, json!("1 200.50"), Ok("1200.5")),
            ("two spaces", None, json!("1  200"), Err("expected a number")),
            ("space in a short group", None, json!("1 20"), Err("expected a number")),
            // Group marks.
            ("swiss apostrophe", None, json!("1'200.50"), Ok("1200.5")),
            ("swiss right quote", None, json!("1\u{2019}200"), Ok("1200")),
            (
                "two kinds of grouping",
                None,
                json!("1,200 300"),
                Err("expected a number"),
            ),
            ("indian grouping", None, json!("1,00,000"), Err("expected a number")),
            (
                "grouping in the fraction",
                None,
                json!("1.234 567"),
                Err("expected a number"),
            ),
            (
                "comma groups under decimal comma",
                COMMA,
                json!("1,200.50"),
                Err("12.500,50"),
            ),
            (
                "dot that is not a group under decimal comma",
                COMMA,
                json!("1.5"),
                Err("12.500,50"),
            ),
            // The dot followed by three digits.
            ("1.200 without decimal", None, json!("1.200"), Err("ambiguous")),
            ("12.500 without decimal", None, json!("12.500"), Err("decimal: \",\"")),
            ("-1.200 without decimal", None, json!("-1.200"), Err("ambiguous")),
            ("$1.200 without decimal", None, json!("$1.200"), Err("ambiguous")),
            ("1.200 with decimal dot", DOT, json!("1.200"), Ok("1.2")),
            ("1.200 with decimal comma", COMMA, json!("1.200"), Ok("1200")),
            ("1,200 with decimal comma", COMMA, json!("1,200"), Ok("1.2")),
            ("1,200 by default", None, json!("1,200"), Ok("1200")),
            ("0.500 is a fraction", None, json!("0.500"), Ok("0.5")),
            ("1234.567 has no group", None, json!("1234.567"), Ok("1234.567")),
            ("1.2000 is a fraction", None, json!("1.2000"), Ok("1.2")),
            ("1,200.500 says which", None, json!("1,200.500"), Ok("1200.5")),
            // European forms without `decimal:` are named as such.
            ("two dots", None, json!("1.200.000"), Err("decimal: \",\"")),
            ("dot then comma", None, json!("12.500,50"), Err("decimal: \",\"")),
            ("decimal comma", None, json!("12,5"), Err("decimal: \",\"")),
            ("two dots with decimal comma", COMMA, json!("1.200.000"), Ok("1200000")),
            ("decimal comma only", COMMA, json!(",5"), Ok("0.5")),
            // Not numbers.
            ("scientific", None, json!("1e5"), Err("expected a number")),
            ("scientific upper", None, json!("1.2E3"), Err("expected a number")),
            ("nan", None, json!("NaN"), Err("expected a number")),
            ("infinity", None, json!("Infinity"), Err("expected a number")),
            ("inf", None, json!("inf"), Err("expected a number")),
            ("empty after currency", None, json!("€ "), Err("expected a number")),
            ("dot alone", None, json!("."), Err("expected a number")),
            ("letters", None, json!("twelve"), Err("expected a number")),
            ("approximately", None, json!("~1200"), Err("expected a number")),
            // Long and JSON numbers.
            (
                "long digit string is kept exactly",
                None,
                json!("123456789012345678901234567890.123"),
                Ok("123456789012345678901234567890.123"),
            ),
            (
                "1000 digits",
                None,
                json!("9".repeat(1000)),
                Ok(Box::leak("9".repeat(1000).into_boxed_str())),
            ),
            ("json number ignores decimal", COMMA, json!(1200.5), Ok("1200.5")),
            ("json integer", COMMA, json!(1200), Ok("1200")),
            ("json exponent", None, json!(1e21), Ok("1000000000000000000000")),
        ]
    }

    #[test]
    fn every_number_variant_gives_its_value_or_invalid_number() {
        for (name, decimal, input, want) in rows() {
            let got = number(decimal, &input);
            match want {
                Ok(canonical) => assert_eq!(got, Ok(canonical.to_owned()), "{name}: {input}"),
                Err(phrase) => {
                    let err = got.expect_err(name);
                    assert_eq!(err.code, "invalid_number", "{name}");
                    assert!(
                        err.message.contains(phrase),
                        "{name}: {phrase:?} not in {}",
                        err.message
                    );
                }
            }
        }
    }

    #[test]
    fn the_decimal_option_is_dot_or_comma() {
        assert_eq!(DecimalMark::parse("."), Ok(DecimalMark::Dot));
        assert_eq!(DecimalMark::parse(","), Ok(DecimalMark::Comma));
        for bad in ["", " ", ";", "comma", ",,", "'"] {
            let err = DecimalMark::parse(bad).expect_err(bad);
            assert!(err.contains("\".\" or \",\""), "{bad:?}: {err}");
        }
    }

    #[test]
    fn currency_codes_are_sorted_for_the_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        assert!(is_currency_code("chf") && is_currency_code("EUR") && !is_currency_code("MLN"));
    }
}

/// Dates written as digits (issue 10, item 3): YYYYMMDD, epoch seconds and milliseconds in
/// their plausible ranges, everything else `invalid_date`.
#[cfg(test)]
mod digit_date_variants {
    use super::*;
    use serde_json::json;

    const DEC_15_2026_MS: i64 = 1_797_292_800_000;

    #[test]
    fn every_digit_date_variant_gives_its_date_or_invalid_date() {
        let day = |ms: i64| Ok(PropValue::Date(ms));
        let cases: Vec<(&str, Value, Result<PropValue, &str>)> = vec![
            (
                "YYYYMMDD text (the issue's input)",
                json!("20261215"),
                day(DEC_15_2026_MS),
            ),
            ("YYYYMMDD number", json!(20261215), day(DEC_15_2026_MS)),
            ("YYYYMMDD whole float", json!(20261215.0), day(DEC_15_2026_MS)),
            ("YYYYMMDD with spaces", json!(" 20261215 "), day(DEC_15_2026_MS)),
            ("first of January 1970", json!("19700101"), day(0)),
            ("leap day", json!("20280229"), day(1_835_395_200_000)),
            ("not a leap year", json!("20270229"), Err("not a valid YYYYMMDD")),
            ("month 13", json!("20261315"), Err("not a valid YYYYMMDD")),
            ("day 32", json!("20261232"), Err("not a valid YYYYMMDD")),
            (
                "DDMMYYYY is not YYYYMMDD",
                json!("15122026"),
                Err("not a valid YYYYMMDD"),
            ),
            (
                "8 digits with a leading zero",
                json!("02026121"),
                Err("neither a YYYYMMDD"),
            ),
            ("YYYYMM (the issue's)", json!("202612"), Err("neither a YYYYMMDD")),
            ("five digits (the issue's)", json!("99999"), Err("neither a YYYYMMDD")),
            ("one digit (the issue's)", json!("7"), Err("neither a YYYYMMDD")),
            ("one digit number", json!(7), Err("neither a YYYYMMDD")),
            ("zero", json!("0"), Err("neither a YYYYMMDD")),
            (
                "nine digits of seconds (1973–2001)",
                json!("999999999"),
                Err("neither a YYYYMMDD"),
            ),
            ("first plausible second", json!("1000000000"), day(999_993_600_000)),
            ("epoch seconds", json!("1797292800"), day(DEC_15_2026_MS)),
            ("last plausible second", json!(9_999_999_999i64), day(9_999_936_000_000)),
            ("eleven digits", json!("10000000000"), Err("neither a YYYYMMDD")),
            (
                "twelve digits (ms of 2001)",
                json!("999999999999"),
                Err("neither a YYYYMMDD"),
            ),
            (
                "first plausible millisecond",
                json!("1000000000000"),
                day(999_993_600_000),
            ),
            ("epoch milliseconds", json!("1797292800000"), day(DEC_15_2026_MS)),
            (
                "epoch milliseconds number",
                json!(1_797_292_800_000i64),
                day(DEC_15_2026_MS),
            ),
            (
                "fourteen digits (YmdHis)",
                json!("20261215143000"),
                Err("neither a YYYYMMDD"),
            ),
            (
                "twenty digits",
                json!("99999999999999999999"),
                Err("neither a YYYYMMDD"),
            ),
            ("a thousand digits", json!("1".repeat(1000)), Err("neither a YYYYMMDD")),
            ("negative seconds", json!(-1_797_292_800i64), Err("neither a YYYYMMDD")),
            ("negative text", json!("-1797292800"), Err("set `format:`")),
            ("fractional seconds", json!(1_797_292_800.5), day(DEC_15_2026_MS)),
            ("fraction out of range", json!(99_999.5), Err("neither a YYYYMMDD")),
            ("huge float", json!(9.0e300), Err("neither a YYYYMMDD")),
        ];
        for (name, input, want) in cases {
            let got = Conversion::plain(ValueType::Date).convert(&input);
            match want {
                Ok(value) => assert_eq!(got, Ok(value), "{name}"),
                Err(phrase) => {
                    let err = got.expect_err(name);
                    assert_eq!(err.code, "invalid_date", "{name}");
                    assert!(
                        err.message.contains(phrase),
                        "{name}: {phrase:?} not in {}",
                        err.message
                    );
                    assert!(
                        err.message.contains("format:"),
                        "{name}: names `format:`: {}",
                        err.message
                    );
                }
            }
        }
    }

    #[test]
    fn digit_dates_are_midnight_utc_for_datetime_too() {
        let got = Conversion::plain(ValueType::DateTime).convert(&json!("20261215"));
        assert_eq!(got, Ok(PropValue::DateTime(DEC_15_2026_MS)));
        let err = Conversion::plain(ValueType::DateTime)
            .convert(&json!("202612"))
            .expect_err("YYYYMM");
        assert_eq!(err.code, "invalid_datetime");
    }

    #[test]
    fn an_ambiguous_slash_date_without_format_names_the_format_option() {
        for input in [json!("03/04/2026"), json!("15.12.2026"), json!("Dec 15, 2026")] {
            for kind in [ValueType::Date, ValueType::DateTime] {
                let err = Conversion::plain(kind).convert(&input).expect_err("no format");
                assert!(
                    err.message.contains("`format:`") && err.message.contains("%d/%m/%Y"),
                    "{input}: {}",
                    err.message
                );
            }
        }
    }
}

/// `format:` and `timezone:` on dates and datetimes (issue 10, item 3).
#[cfg(test)]
mod date_format_variants {
    use super::*;
    use serde_json::json;

    const MAR_4_2026_MS: i64 = 1_772_582_400_000;
    const APR_3_2026_MS: i64 = 1_775_174_400_000;
    const DEC_15_2026_MS: i64 = 1_797_292_800_000;
    const HOUR: i64 = 3_600_000;

    fn with(kind: ValueType, format: Option<&str>, timezone: Option<&str>) -> Conversion {
        Conversion {
            format: format.map(|f| DateFormat::parse(f).unwrap()),
            timezone: timezone.map(|t| parse_timezone(t).unwrap()),
            ..Conversion::plain(kind)
        }
    }

    #[test]
    fn formats_read_the_day_month_order_they_say() {
        let cases = [
            ("day first", "%d/%m/%Y", json!("03/04/2026"), APR_3_2026_MS),
            ("month first", "%m/%d/%Y", json!("03/04/2026"), MAR_4_2026_MS),
            ("dots", "%d.%m.%Y", json!("15.12.2026"), DEC_15_2026_MS),
            ("one-digit day and month", "%d/%m/%Y", json!("3/4/2026"), APR_3_2026_MS),
            ("month name", "%b %d, %Y", json!("Dec 15, 2026"), DEC_15_2026_MS),
            ("two-digit year", "%d/%m/%y", json!("15/12/26"), DEC_15_2026_MS),
            ("digits with format", "%d%m%Y", json!("15122026"), DEC_15_2026_MS),
            (
                "digits as number with format",
                "%d%m%Y",
                json!(15122026),
                DEC_15_2026_MS,
            ),
            ("spaces around", "%d/%m/%Y", json!(" 15/12/2026 "), DEC_15_2026_MS),
            (
                "date with a time is the date as written",
                "%d/%m/%Y %H:%M",
                json!("15/12/2026 23:30"),
                DEC_15_2026_MS,
            ),
            (
                "date with an offset is the date as written",
                "%d/%m/%Y %H:%M %z",
                json!("15/12/2026 23:30 -0800"),
                DEC_15_2026_MS,
            ),
        ];
        for (name, format, input, want) in cases {
            let got = with(ValueType::Date, Some(format), None).convert(&input);
            assert_eq!(got, Ok(PropValue::Date(want)), "{name}");
        }
    }

    #[test]
    fn with_a_format_nothing_else_is_read() {
        let conversion = with(ValueType::Date, Some("%d/%m/%Y"), None);
        for input in [
            json!("2026-12-15"),
            json!("1797292800"),
            json!("20261215"),
            json!("15/12/2026 10:00"),
            json!("31/02/2026"),
            json!("15-12-2026"),
            json!(true),
        ] {
            let err = conversion.convert(&input).expect_err(&input.to_string());
            assert_eq!(err.code, "invalid_date", "{input}");
            assert!(err.message.contains("\"%d/%m/%Y\""), "{input}: {}", err.message);
        }
        let datetime = with(ValueType::DateTime, Some("%m/%d/%Y %H:%M"), None);
        let err = datetime.convert(&json!("12/15/2026")).expect_err("no time");
        assert_eq!(err.code, "invalid_datetime");
    }

    #[test]
    fn datetimes_without_offset_are_read_in_the_timezone() {
        let cases = [
            (
                "format, no zone = UTC",
                Some("%m/%d/%Y %H:%M"),
                None,
                json!("12/15/2026 14:30"),
                DEC_15_2026_MS + 14 * HOUR + 30 * 60_000,
            ),
            (
                "format and Paris",
                Some("%m/%d/%Y %H:%M"),
                Some("Europe/Paris"),
                json!("12/15/2026 14:30"),
                1_797_341_400_000,
            ),
            (
                "iso naive and Paris",
                None,
                Some("Europe/Paris"),
                json!("2026-12-15T14:30:00"),
                1_797_341_400_000,
            ),
            (
                "New York in summer",
                None,
                Some("America/New_York"),
                json!("2026-07-01 09:00"),
                1_782_910_800_000,
            ),
            (
                "an offset wins over the zone",
                None,
                Some("Europe/Paris"),
                json!("2026-12-15T14:30:00Z"),
                DEC_15_2026_MS + 14 * HOUR + 30 * 60_000,
            ),
            (
                "format with offset wins",
                Some("%d/%m/%Y %H:%M %z"),
                Some("Asia/Tokyo"),
                json!("15/12/2026 14:30 +0000"),
                DEC_15_2026_MS + 14 * HOUR + 30 * 60_000,
            ),
            (
                "epoch ignores the zone",
                None,
                Some("Europe/Paris"),
                json!(1_797_292_800),
                DEC_15_2026_MS,
            ),
            (
                "date only is midnight in the zone",
                None,
                Some("Europe/Paris"),
                json!("2026-12-15"),
                DEC_15_2026_MS - HOUR,
            ),
            (
                "format date only is midnight in the zone",
                Some("%d.%m.%Y"),
                Some("Europe/Paris"),
                json!("15.12.2026"),
                DEC_15_2026_MS - HOUR,
            ),
            (
                "UTC by name",
                None,
                Some("UTC"),
                json!("2026-12-15 00:00"),
                DEC_15_2026_MS,
            ),
        ];
        for (name, format, timezone, input, want) in cases {
            let got = with(ValueType::DateTime, format, timezone).convert(&input);
            assert_eq!(got, Ok(PropValue::DateTime(want)), "{name}");
        }
    }

    #[test]
    fn an_epoch_date_is_its_calendar_date_in_the_timezone() {
        // 2026-12-01T23:30:00Z is already 2 December in Paris and still 1 December in New York.
        let epoch = json!(1_796_167_800);
        let dec_1 = 1_796_083_200_000;
        let dec_2 = 1_796_169_600_000;
        assert_eq!(
            with(ValueType::Date, None, None).convert(&epoch),
            Ok(PropValue::Date(dec_1))
        );
        assert_eq!(
            with(ValueType::Date, None, Some("Europe/Paris")).convert(&epoch),
            Ok(PropValue::Date(dec_2))
        );
        assert_eq!(
            with(ValueType::Date, None, Some("America/New_York")).convert(&epoch),
            Ok(PropValue::Date(dec_1))
        );
        // A written date stays as written, whatever the zone.
        assert_eq!(
            with(ValueType::Date, None, Some("Pacific/Kiritimati")).convert(&json!("2026-12-01T23:30:00")),
            Ok(PropValue::Date(dec_1))
        );
    }

    #[test]
    fn a_local_time_the_zone_skips_or_repeats_is_a_named_error() {
        let paris = with(ValueType::DateTime, None, Some("Europe/Paris"));
        // 29 March 2026: 02:00 → 03:00 in Paris.
        let gap = paris.convert(&json!("2026-03-29T02:30:00")).expect_err("gap");
        assert_eq!(gap.code, "nonexistent_local_time");
        assert!(gap.message.contains("Europe/Paris"), "{}", gap.message);
        // 25 October 2026: 03:00 → 02:00 in Paris; 02:30 happens at +02:00 and at +01:00.
        let overlap = paris.convert(&json!("2026-10-25 02:30")).expect_err("overlap");
        assert_eq!(overlap.code, "ambiguous_local_time");
        assert!(
            overlap.message.contains("2026-10-25T02:30:00+02:00")
                && overlap.message.contains("2026-10-25T02:30:00+01:00"),
            "{}",
            overlap.message
        );
        // With the offset it is one instant; the minutes either side of the change are fine.
        assert_eq!(
            paris.convert(&json!("2026-10-25T02:30:00+01:00")),
            Ok(PropValue::DateTime(1_792_891_800_000))
        );
        assert!(paris.convert(&json!("2026-03-29T03:00:00")).is_ok());
        assert!(paris.convert(&json!("2026-03-29T01:59:00")).is_ok());
        // At the ends of chrono's range there is no gap, only a value out of range.
        let adak = with(ValueType::DateTime, None, Some("America/Adak"));
        let far = adak.convert(&json!("+262142-12-31T23:59:00")).expect_err("far");
        assert_eq!(far.code, "invalid_datetime", "{}", far.message);
        // A date's day is never ambiguous.
        let date = with(ValueType::Date, None, Some("Europe/Paris"));
        assert!(date.convert(&json!("2026-10-25 02:30")).is_ok());
    }

    #[test]
    fn formats_are_checked_when_the_mapping_loads() {
        for good in [
            "%d/%m/%Y",
            "%m/%d/%Y %H:%M",
            "%d.%m.%Y",
            "%Y%m%d",
            "%d/%m/%Y %I:%M %p",
            "%Y-%m-%dT%H:%M:%S%.f%:z",
            "%e %B %Y",
            "%Y-%j",
            "%Y%m%d%H%M",
        ] {
            assert!(DateFormat::parse(good).is_ok(), "{good}: {:?}", DateFormat::parse(good));
        }
        let cases = [
            ("unknown specifier", "%d/%m/%Q", "unknown `%` specifier"),
            ("dangling percent", "%d/%m/%", "unknown `%` specifier"),
            ("no year", "%d/%m", "whole date"),
            ("no day", "%m/%Y", "whole date"),
            ("time only", "%H:%M", "whole date"),
            ("hour without minutes", "%d/%m/%Y %H", "whole time"),
            ("12-hour clock without am/pm", "%d/%m/%Y %I:%M", "whole time"),
            ("zone name", "%d/%m/%Y %H:%M %Z", "`timezone:`"),
            ("epoch", "%s", "without `format:`"),
            ("empty", "", "whole date"),
        ];
        for (name, pattern, want) in cases {
            let err = DateFormat::parse(pattern).expect_err(name);
            assert!(
                err.contains(want) && err.contains(&format!("{pattern:?}")),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn time_zones_are_iana_names_with_a_hint_for_the_wrong_case() {
        for good in ["Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata", "Etc/GMT-2"] {
            assert!(parse_timezone(good).is_ok(), "{good}");
        }
        let err = parse_timezone("europe/paris").expect_err("case");
        assert!(err.contains("did you mean \"Europe/Paris\"?"), "{err}");
        for bad in ["Paris", "CEST", "UTC+2", "", "Europe/Pariss"] {
            let err = parse_timezone(bad).expect_err(bad);
            assert!(
                err.contains("unknown time zone") && err.contains("IANA"),
                "{bad}: {err}"
            );
        }
    }
}

/// Hostile text through every conversion: never a panic, and what is accepted is well formed.
#[cfg(test)]
mod conversion_properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Text from the characters the parsers branch on, plus multi-byte ones next to them.
    fn text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "0", "1", "2", "5", "9", "12", "200", "2026", ",", ".", "'", "’", " ", "\u{00A0}", "\u{202F}", "-", "+",
            "−", "$", "€", "US", "EUR", "usd", "e", "T", ":", "/", "Z", "+02:00", "é", "😀", "(", ")",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|parts| parts.concat())
    }

    fn pattern() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "%Y", "%m", "%d", "%H", "%M", "%S", "%z", "%:z", "%Z", "%s", "%j", "%b", "%e", "%I", "%p", "%y", "%.f",
            "%", "%%", "%Q", "/", ".", " ", "T", "é",
        ]);
        prop::collection::vec(pieces, 0..8).prop_map(|parts| parts.concat())
    }

    fn is_canonical(number: &str) -> bool {
        let digits = number.strip_prefix('-').unwrap_or(number);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int_ok = int == "0" || (!int.is_empty() && !int.starts_with('0'));
        let frac_ok = frac.is_empty() || !frac.ends_with('0');
        int_ok && frac_ok && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) && number != "-0"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn numbers_are_canonical_and_the_default_never_disagrees_with_a_stated_dot(input in text()) {
            let value = json!(input);
            let plain = to_number(&value, None);
            let dot = to_number(&value, Some(DecimalMark::Dot));
            let comma = to_number(&value, Some(DecimalMark::Comma));
            for result in [&plain, &dot, &comma] {
                match result {
                    Ok(number) => prop_assert!(is_canonical(number), "{input:?} → {number:?}"),
                    Err(invalid) => prop_assert_eq!(invalid.code, "invalid_number"),
                }
            }
            if let Ok(number) = &plain {
                prop_assert_eq!(Some(number), dot.as_ref().ok(), "{:?}", input);
            }
        }

        #[test]
        fn dates_are_whole_days_and_nothing_panics(input in text(), pattern in pattern(), zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/St_Johns", "Pacific/Chatham"])) {
            let format = DateFormat::parse(&pattern).ok();
            let timezone = parse_timezone(zone).ok();
            for kind in [ValueType::Date, ValueType::DateTime] {
                let conversion = Conversion { format: format.clone(), timezone, ..Conversion::plain(kind) };
                match conversion.convert(&json!(input)) {
                    Ok(PropValue::Date(ms)) => prop_assert_eq!(ms.rem_euclid(86_400_000), 0),
                    Ok(PropValue::DateTime(_)) => {}
                    Ok(other) => prop_assert!(false, "{:?}", other),
                    Err(invalid) => prop_assert!(!invalid.message.is_empty()),
                }
            }
        }
    }
}
