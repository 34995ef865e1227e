//! Typed conversions of rendered values (JSON values) into HubSpot property values and ids.
//! Pure functions: no templates, no I/O; bad input is an [`Invalid`], never a panic.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

use crate::domain::PropValue;

/// The `type:` of a value spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    /// Strings as rendered; lists joined with `;`; numbers, booleans and objects as JSON text.
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

    /// Converts a non-blank value (see [`is_blank`]).
    pub fn convert(self, value: &Value) -> Result<PropValue, Invalid> {
        match self {
            ValueType::Text => Ok(PropValue::Text(to_text(value))),
            ValueType::Number => to_number(value).map(PropValue::Number),
            ValueType::Date => to_date(value).map(PropValue::Date),
            ValueType::DateTime => to_datetime(value).map(PropValue::DateTime),
            ValueType::Bool => to_bool(value).map(PropValue::Bool),
        }
    }
}

/// A value that does not convert: the rule code (`invalid_number`, …) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub code: &'static str,
    pub message: String,
}

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

/// The text form of a value: strings as they are, a list as `a;b;c` (HubSpot's multi-select
/// separator; blank items dropped), numbers and booleans as JSON text, objects as compact JSON.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter(|item| !is_blank(item))
            .map(to_text)
            .collect::<Vec<_>>()
            .join(";"),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
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

const NUMBER_FORMS: &str = "a number like 12500.50, -3 or 12,500.50 (commas only between groups of three digits)";

/// A canonical decimal from a JSON number or a string (`" 12,500.50 "` → `"12500.5"`).
fn to_number(value: &Value) -> Result<String, Invalid> {
    let canonical = match value {
        Value::Number(n) => number_text(n).and_then(|t| canonical_decimal(&t)),
        Value::String(s) => canonical_decimal(s),
        _ => None,
    };
    canonical.ok_or_else(|| Invalid {
        code: "invalid_number",
        message: format!("expected {NUMBER_FORMS}, got {}", show(value)),
    })
}

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

/// Parses `[+-]digits[.digits]` where the integer part may use `,` between proper groups of
/// three, and spells it canonically: no `+`, no leading or trailing zeros, `-0` is `0`.
/// The digits are kept as text, so nothing is rounded through a float.
pub(crate) fn canonical_decimal(text: &str) -> Option<String> {
    let t = text.trim();
    let (negative, body) = match (t.strip_prefix('-'), t.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, t),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(frac_part) || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    let int_digits = if int_part.contains(',') {
        let mut groups = int_part.split(',');
        let first = groups.next().unwrap_or_default();
        let first_ok = (1..=3).contains(&first.len()) && all_digits(first);
        if !first_ok || !groups.all(|g| g.len() == 3 && all_digits(g)) {
            return None;
        }
        int_part.replace(',', "")
    } else if all_digits(int_part) {
        int_part.to_owned()
    } else {
        return None;
    };
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = frac_part.trim_end_matches('0');
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Some("0".to_owned());
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
    Some(out)
}

/// A point in time as the sender wrote it.
enum When {
    /// A calendar date without a time (`2026-12-01`).
    Day(NaiveDate),
    /// An instant, and the calendar date as written in its own offset.
    Instant { ms: i64, date: NaiveDate },
}

const DATE_FORMS: &str = "an ISO date (2026-12-01), an ISO datetime (2026-12-01T15:00:00+02:00, …Z, \
                          or without offset = UTC) or epoch seconds/milliseconds";

/// Epoch milliseconds at midnight UTC of the value's calendar date.
fn to_date(value: &Value) -> Result<i64, Invalid> {
    let date = match read_when(value) {
        Some(When::Day(date)) | Some(When::Instant { date, .. }) => Some(date),
        None => None,
    };
    date.map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
        .ok_or_else(|| Invalid {
            code: "invalid_date",
            message: format!("expected {DATE_FORMS}, got {}", show(value)),
        })
}

/// Exact epoch milliseconds; a date without time is midnight UTC.
fn to_datetime(value: &Value) -> Result<i64, Invalid> {
    match read_when(value) {
        Some(When::Day(date)) => Ok(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()),
        Some(When::Instant { ms, .. }) => Ok(ms),
        None => Err(Invalid {
            code: "invalid_datetime",
            message: format!("expected {DATE_FORMS}, got {}", show(value)),
        }),
    }
}

/// Epoch values at or above this magnitude are milliseconds, below it seconds
/// (10^11 s is the year 5138; 10^11 ms is March 1973).
const EPOCH_MS_THRESHOLD: i64 = 100_000_000_000;

fn read_when(value: &Value) -> Option<When> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                from_epoch(i)
            } else {
                // Fractional epoch values: keep millisecond precision, drop the rest.
                let f = n.as_f64().filter(|f| f.is_finite())?;
                let ms = if f.abs() >= EPOCH_MS_THRESHOLD as f64 {
                    f
                } else {
                    f * 1000.0
                };
                if ms.abs() >= i64::MAX as f64 {
                    return None;
                }
                instant_from_ms(ms.trunc() as i64)
            }
        }
        Value::String(s) => read_when_text(s.trim()),
        _ => None,
    }
}

fn read_when_text(t: &str) -> Option<When> {
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok().and_then(from_epoch);
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(When::Day(date));
    }
    let with_offset =
        DateTime::parse_from_rfc3339(t).or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"));
    if let Ok(dt) = with_offset {
        return Some(When::Instant {
            ms: dt.timestamp_millis(),
            date: dt.date_naive(),
        });
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    NAIVE
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(t, fmt).ok())
        .map(|naive| {
            let utc = naive.and_utc();
            When::Instant {
                ms: utc.timestamp_millis(),
                date: utc.date_naive(),
            }
        })
}

fn from_epoch(n: i64) -> Option<When> {
    let ms = if n.checked_abs().is_none_or(|a| a >= EPOCH_MS_THRESHOLD) {
        n
    } else {
        n.checked_mul(1000)?
    };
    instant_from_ms(ms)
}

fn instant_from_ms(ms: i64) -> Option<When> {
    let at = DateTime::from_timestamp_millis(ms)?;
    Some(When::Instant {
        ms,
        date: at.date_naive(),
    })
}

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
                ValueType::Number.convert(&input),
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
            json!("$12"),
            json!("1 000"),
            json!(true),
            json!([1]),
        ];
        for input in cases {
            let err = ValueType::Number.convert(&input).expect_err(&input.to_string());
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
                ValueType::Date.convert(&input),
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
                ValueType::DateTime.convert(&input),
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
            json!(["2026-12-01"]),
            json!("99999999999999999999"),
            json!(9.0e300),
        ];
        for input in cases {
            let date = ValueType::Date.convert(&input).expect_err(&format!("date {input}"));
            assert_eq!(date.code, "invalid_date", "input {input}");
            assert!(
                date.message.contains("2026-12-01"),
                "input {input}: says what is accepted"
            );
            let dt = ValueType::DateTime
                .convert(&input)
                .expect_err(&format!("datetime {input}"));
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
                ValueType::Bool.convert(&input),
                Ok(PropValue::Bool(want)),
                "input {input}"
            );
        }
        for input in [json!("maybe"), json!(2), json!("10"), json!([true])] {
            let err = ValueType::Bool.convert(&input).expect_err(&input.to_string());
            assert_eq!(err.code, "invalid_bool", "input {input}");
        }
    }

    #[test]
    fn text_joins_lists_for_multi_select_and_keeps_json_for_the_rest() {
        let cases = [
            (json!("as rendered "), "as rendered "),
            (json!(["a", "b", "c"]), "a;b;c"),
            (json!(["a", "", null, 2]), "a;2"),
            (json!(12.5), "12.5"),
            (json!(true), "true"),
            (json!({"a": 1}), "{\"a\":1}"),
        ];
        for (input, want) in cases {
            assert_eq!(
                ValueType::Text.convert(&input),
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
