//! Numbers as people write them (issue 10, item 3): currency, spaces, group and decimal marks.

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
