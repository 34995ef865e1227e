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
