//! `format:` and `timezone:` on dates and datetimes (issue 10, item 3).

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
        // `%Y` wants the year whole: chrono alone reads `26` as the year 26 (a silently wrong century;
        // found by a fresh-user review: `15/12/26` became 15 Dec 0026). Variants: two, one, three and
        // five digits, and a two-digit year with leading zeros.
        json!("15/12/26"),
        json!("15/12/6"),
        json!("15/12/026"),
        json!("15/12/20266"),
        json!("15/12/0026"),
    ] {
        let err = conversion.convert(&input).expect_err(&input.to_string());
        assert_eq!(err.code, "invalid_date", "{input}");
        assert!(err.message.contains("\"%d/%m/%Y\""), "{input}: {}", err.message);
    }
    // `%y` is the two-digit year: 26 is 2026 (chrono's rule: 00–68 → 2000s, 69–99 → 1900s).
    let short = with(ValueType::Date, Some("%d/%m/%y"), None);
    assert_eq!(short.convert(&json!("15/12/26")), Ok(PropValue::Date(DEC_15_2026_MS)));
    let datetime = with(ValueType::DateTime, Some("%m/%d/%Y %H:%M"), None);
    let err = datetime.convert(&json!("12/15/2026")).expect_err("no time");
    assert_eq!(err.code, "invalid_datetime");
}

/// A value with the right shape but a day the calendar lacks is `no such date`, not "expected the
/// format" (a fresh-user review: `31/02/2026` read as if it had the wrong shape). Variants: a month
/// too short, February of a common year, day 0, day 32, month 13, with a time, with an offset, and the
/// ISO form without `format:`; the leap day of a leap year still reads.
#[test]
fn a_date_the_calendar_lacks_is_named_so() {
    let cases = [
        ("February 31st", ValueType::Date, Some("%d/%m/%Y"), "31/02/2026"),
        ("April 31st", ValueType::Date, Some("%d/%m/%Y"), "31/04/2026"),
        (
            "February 29th of a common year",
            ValueType::Date,
            Some("%d/%m/%Y"),
            "29/02/2025",
        ),
        ("day 0", ValueType::Date, Some("%d/%m/%Y"), "00/01/2026"),
        ("day 32", ValueType::Date, Some("%d/%m/%Y"), "32/01/2026"),
        ("month 13", ValueType::Date, Some("%d/%m/%Y"), "01/13/2026"),
        (
            "with a time",
            ValueType::DateTime,
            Some("%d/%m/%Y %H:%M"),
            "31/02/2026 10:00",
        ),
        (
            "with an offset",
            ValueType::DateTime,
            Some("%d/%m/%Y %H:%M %z"),
            "31/02/2026 10:00 +0100",
        ),
        ("ISO, no format", ValueType::Date, None, "2026-02-31"),
        ("ISO month 13, no format", ValueType::Date, None, "2026-13-01"),
        (
            "ISO datetime with an offset, no format",
            ValueType::DateTime,
            None,
            "2026-02-31T10:00:00Z",
        ),
        (
            "ISO datetime of a common year's leap day, no format",
            ValueType::DateTime,
            None,
            "2026-02-29 10:00",
        ),
        (
            "ISO datetime, hour 25, no format",
            ValueType::DateTime,
            None,
            "2026-01-01 25:00",
        ),
        (
            "hour 24",
            ValueType::DateTime,
            Some("%d/%m/%Y %H:%M"),
            "28/02/2026 24:00",
        ),
        (
            "minute 61",
            ValueType::DateTime,
            Some("%d/%m/%Y %H:%M"),
            "28/02/2026 10:61",
        ),
    ];
    for (name, kind, format, input) in cases {
        let err = with(kind, format, None).convert(&json!(input)).expect_err(name);
        assert!(err.code.starts_with("invalid_date"), "{name}: {}", err.code);
        assert!(err.message.contains("is no such date"), "{name}: {}", err.message);
        assert!(err.message.contains(input), "{name}: {}", err.message);
    }
    // Which it is, where the parser can tell: a whole field past its range names the time too; a day
    // the month lacks names the month.
    let err = with(ValueType::DateTime, Some("%d/%m/%Y %H:%M"), None)
        .convert(&json!("28/02/2026 24:00"))
        .expect_err("hour 24");
    assert!(err.message.contains("hour, minute or second"), "{}", err.message);
    let err = with(ValueType::Date, Some("%d/%m/%Y"), None)
        .convert(&json!("31/02/2026"))
        .expect_err("February 31st");
    assert!(err.message.contains("the month has fewer days"), "{}", err.message);
    let leap = with(ValueType::Date, Some("%d/%m/%Y"), None).convert(&json!("29/02/2024"));
    assert_eq!(leap, Ok(PropValue::Date(1_709_164_800_000)));
    let leap = with(ValueType::Date, None, None).convert(&json!("2024-02-29"));
    assert_eq!(leap, Ok(PropValue::Date(1_709_164_800_000)));
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
        overlap.message.contains("2026-10-25T02:30:00+02:00") && overlap.message.contains("2026-10-25T02:30:00+01:00"),
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
