//! Dates and datetimes: ISO forms, YYYYMMDD, plausible epoch ranges, `format:` and `timezone:`.

use super::*;
use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

/// `format:` of a date or datetime: a strftime-style pattern (chrono's syntax, e.g.
/// `%d/%m/%Y`, `%m/%d/%Y %H:%M`, `%d.%m.%Y`, `%Y%m%d%H%M`), checked at load to give a whole
/// date, a whole time when it has any time field, and no field chrono would skip unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateFormat {
    pub(super) pattern: String,
    items: Vec<Item<'static>>,
    has_time: bool,
    has_offset: bool,
    /// The pattern has `%Y`: the year as written must have four digits (chrono's `%Y` also takes
    /// `26`, which would be the year 26, not 2026: silently a wrong century).
    full_year: bool,
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
        let full_year = items
            .iter()
            .any(|item| matches!(item, Item::Numeric(chrono::format::Numeric::Year, _)));
        Ok(DateFormat {
            pattern: pattern.to_owned(),
            items,
            has_time,
            has_offset: parsed.offset().is_some(),
            full_year,
        })
    }

    /// Reads `text` with the pattern, whole: [`Unread::NoFit`] when it does not fit the pattern,
    /// [`Unread::NoSuchDate`] when it fits but names a date the calendar lacks (`31/02/2026`).
    pub(super) fn read(&self, text: &str) -> Result<When, Unread> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(|e| match e.kind() {
            // A field past its own range (month 13, day 32, hour 25, minute 61) where the pattern puts it.
            chrono::format::ParseErrorKind::OutOfRange => Unread::FieldOutOfRange,
            _ => Unread::NoFit,
        })?;
        if self.full_year && !parsed.year().is_some_and(|year| (1000..=9999).contains(&year)) {
            return Err(Unread::NoFit);
        }
        // Every field fitted, so a failure now is a combination the calendar lacks (February 31st).
        if self.has_offset {
            let at = parsed.to_datetime().map_err(|_| Unread::NoSuchDate)?;
            Ok(When::Instant {
                ms: at.timestamp_millis(),
                date: at.date_naive(),
            })
        } else if self.has_time {
            parsed
                .to_naive_datetime_with_offset(0)
                .map(When::Local)
                .map_err(|_| Unread::NoSuchDate)
        } else {
            parsed.to_naive_date().map(When::Day).map_err(|_| Unread::NoSuchDate)
        }
    }
}

/// Why a value was not read with a `format:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unread {
    /// It does not have the pattern's shape.
    NoFit,
    /// It has the shape, but one of its fields is past that field's range (month 13, day 32, hour 25,
    /// minute 61).
    FieldOutOfRange,
    /// Every field is in range, but the calendar lacks the combination (`31/02/2026`).
    NoSuchDate,
}

impl Unread {
    /// The reason, for an error message; `None` for [`Unread::NoFit`] (the caller says what was expected).
    pub(super) fn reason(self) -> Option<&'static str> {
        match self {
            Unread::NoFit => None,
            Unread::FieldOutOfRange => Some(FIELD_OUT_OF_RANGE),
            Unread::NoSuchDate => Some(NO_SUCH_DATE),
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
pub(super) enum When {
    /// A calendar date without a time (`2026-12-01`, `20261201`).
    Day(NaiveDate),
    /// A wall-clock date and time without an offset (`2026-12-01 15:00`): in `timezone`, or UTC.
    Local(NaiveDateTime),
    /// An instant with its offset, and the calendar date as written in that offset.
    Instant { ms: i64, date: NaiveDate },
    /// Epoch milliseconds (from seconds or milliseconds): an instant with no written date.
    Epoch(i64),
}

pub(super) const DATE_FORMS: &str = "an ISO date (2026-12-01), a date as YYYYMMDD (20261201), an ISO datetime \
                          (2026-12-01T15:00:00+02:00, …Z, or without offset = UTC or `timezone:`), epoch seconds \
                          (10 digits) or milliseconds (13 digits) between 2001-09-09 and 2286-11-20; for other \
                          forms (03/04/2026, 15.12.2026, …) set `format:`, e.g. `format: \"%d/%m/%Y\"`";

/// Epoch seconds are read only in `[10^9, 10^10)` (2001-09-09T01:46:40Z to 2286-11-20T17:46:39Z).
pub(super) const EPOCH_SECONDS: std::ops::Range<i64> = 1_000_000_000..10_000_000_000;
/// Epoch milliseconds are read only in `[10^12, 10^13)`: the same span of time.
pub(super) const EPOCH_MILLIS: std::ops::Range<i64> = 1_000_000_000_000..10_000_000_000_000;

/// A JSON number: an integer by the digit rules, a fraction as epoch seconds or milliseconds.
/// `Ok(None)`: not a date at all; `Err`: why these digits are not one.
pub(super) fn read_number_when(n: &serde_json::Number) -> Result<Option<When>, String> {
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
pub(super) fn read_digits_when(n: i64) -> Result<When, String> {
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

pub(super) fn epoch_range_message() -> String {
    "is neither a YYYYMMDD date nor epoch seconds or milliseconds in the accepted range".to_owned()
}

/// Reads the built-in text forms. `Ok(None)`: none fits; `Err`: digits that are no date.
/// The reason given for a value whose fields are each in range but name a day the calendar lacks.
pub(super) const NO_SUCH_DATE: &str = "is no such date (the month has fewer days)";
/// The reason given for a value with a field past its range.
pub(super) const FIELD_OUT_OF_RANGE: &str =
    "is no such date or time (a month, day, hour, minute or second past its range)";

pub(super) fn read_text_when(t: &str) -> Result<Option<When>, String> {
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
    // An ISO shape with a field past its range or a day the calendar lacks (2026-02-31, 2026-13-01,
    // 2026-02-29T10:00:00Z, 2026-01-01 25:00) is named so, whichever ISO form it has.
    let mut out_of_range = false;
    let mut note = |e: chrono::format::ParseError| {
        use chrono::format::ParseErrorKind::{Impossible, OutOfRange};
        out_of_range |= matches!(e.kind(), OutOfRange | Impossible);
    };
    match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        Ok(date) => return Ok(Some(When::Day(date))),
        Err(e) => note(e),
    }
    type ParseWithOffset = fn(&str) -> chrono::ParseResult<DateTime<chrono::FixedOffset>>;
    let with_offset: [ParseWithOffset; 2] = [DateTime::parse_from_rfc3339, |t| {
        DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z")
    }];
    for parse in with_offset {
        match parse(t) {
            Ok(dt) => {
                return Ok(Some(When::Instant {
                    ms: dt.timestamp_millis(),
                    date: dt.date_naive(),
                }));
            }
            Err(e) => note(e),
        }
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    for fmt in NAIVE {
        match NaiveDateTime::parse_from_str(t, fmt) {
            Ok(local) => return Ok(Some(When::Local(local))),
            Err(e) => note(e),
        }
    }
    if out_of_range {
        return Err(FIELD_OUT_OF_RANGE.to_owned());
    }
    Ok(None)
}
