//! Dates written as digits (issue 10, item 3): YYYYMMDD, epoch seconds and milliseconds in
//! their plausible ranges, everything else `invalid_date`.

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
