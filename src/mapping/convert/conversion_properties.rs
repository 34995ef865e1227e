//! Hostile text through every conversion: never a panic, and what is accepted is well formed.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Text from the characters the parsers branch on, plus multi-byte ones next to them.
fn text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "0", "1", "2", "5", "9", "12", "200", "2026", ",", ".", "'", "’", " ", "\u{00A0}", "\u{202F}", "-", "+", "−",
        "$", "€", "US", "EUR", "usd", "e", "T", ":", "/", "Z", "+02:00", "é", "😀", "(", ")",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|parts| parts.concat())
}

fn pattern() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "%Y", "%m", "%d", "%H", "%M", "%S", "%z", "%:z", "%Z", "%s", "%j", "%b", "%e", "%I", "%p", "%y", "%.f", "%",
        "%%", "%Q", "/", ".", " ", "T", "é",
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
