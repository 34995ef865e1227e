//! Typed conversions of rendered values (JSON values) into HubSpot property values and ids.
//! Pure functions: no templates, no I/O; bad input is an [`Invalid`], never a panic. One value
//! at a time: lists (multi-selects) are split into items by `route.rs`, which converts each.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::PropValue;

mod date;
mod number;

pub(crate) use date::*;
pub(crate) use number::*;

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
        let read = |format: &DateFormat, text: &str| match format.read(text) {
            Ok(when) => Ok(Some(when)),
            Err(unread) => match unread.reason() {
                None => Ok(None),
                Some(reason) => Err(Invalid {
                    code,
                    message: format!("{} fits the `format` {:?} but {reason}", show(value), format.pattern),
                }),
            },
        };
        let when = match (&self.format, value) {
            (Some(format), Value::String(s)) => read(format, s.trim())?,
            (Some(format), Value::Number(n)) => read(format, &n.to_string())?,
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
mod tests;

#[cfg(test)]
mod number_variants;

#[cfg(test)]
mod digit_date_variants;

#[cfg(test)]
mod date_format_variants;

#[cfg(test)]
mod conversion_properties;
