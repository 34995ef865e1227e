//! `inbound::decode`: every body gets a value or a well-formed error; valid bodies round-trip;
//! the structure limits hold exactly at their values.

use dealhook::inbound::decode::{MAX_FIELDS, MAX_JSON_DEPTH, MAX_JSON_VALUES};
use dealhook::inbound::{DecodeError, decode};
use futures_util::FutureExt as _;
use proptest::prelude::*;
use serde_json::Value;

use crate::arb;

/// Decoding never waits on I/O: poll it once.
fn run(content_type: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
    decode(content_type, body)
        .now_or_never()
        .expect("decode completes without waiting")
}

const MALFORMED_CODES: &[&str] = &[
    "empty_body",
    "invalid_json",
    "invalid_utf8",
    "invalid_multipart",
    "unsupported_charset",
];

/// The error's shape: 415 errors carry one content-type problem, limits one body problem with a
/// limit code, malformed bodies at least one known body problem.
fn assert_well_formed(error: &DecodeError) {
    let problems = error.problems();
    assert!(!problems.is_empty(), "{error:?}");
    assert!(!error.to_string().is_empty());
    match error {
        DecodeError::MissingContentType | DecodeError::UnsupportedMediaType { .. } => {
            assert!(error.is_unsupported());
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].field.as_deref(), Some("content-type"));
        }
        DecodeError::LimitExceeded { code, message } => {
            assert!(!error.is_unsupported());
            assert!(["too_deep", "too_many_fields"].contains(code), "{code}");
            assert!(
                message.contains("more than") || message.contains("deeper than"),
                "{message}"
            );
        }
        DecodeError::Malformed(problems) => {
            assert!(!error.is_unsupported());
            for p in problems {
                assert!(MALFORMED_CODES.contains(&p.code.as_str()), "{p:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn any_body_with_any_content_type_decodes_or_fails_cleanly(body in arb::body(), ct in arb::content_type()) {
        for content_type in [body.content_type.as_deref(), ct.as_deref()] {
            if let Err(error) = run(content_type, &body.bytes) {
                assert_well_formed(&error);
            }
        }
    }

    #[test]
    fn json_values_round_trip(value in arb::value()) {
        let text = value.to_string();
        prop_assert_eq!(run(Some("application/json"), text.as_bytes()), Ok(value.clone()));
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(run(Some("application/json; charset=UTF-8"), pretty.as_bytes()), Ok(value));
    }

    #[test]
    fn json_depth_and_value_count_are_limited_exactly(depth in 1usize..(MAX_JSON_DEPTH + 8), width in prop_oneof![0usize..4, (MAX_JSON_VALUES - 80)..(MAX_JSON_VALUES + 4)]) {
        let text = arb::nested_wide(depth, width);
        let values = depth - 1 + width;
        let got = run(Some("application/json"), text.as_bytes());
        match got {
            Ok(_) => prop_assert!(depth <= MAX_JSON_DEPTH && values <= MAX_JSON_VALUES, "depth {depth}, {values} values"),
            Err(DecodeError::LimitExceeded { code, .. }) if depth > MAX_JSON_DEPTH => prop_assert_eq!(code, "too_deep"),
            Err(DecodeError::LimitExceeded { code, .. }) => {
                prop_assert!(values > MAX_JSON_VALUES, "depth {depth}, {values} values");
                prop_assert_eq!(code, "too_many_fields");
            }
            Err(other) => prop_assert!(false, "depth {depth}, {values} values: {other:?}"),
        }
    }

    #[test]
    fn urlencoded_forms_decode_to_their_fields(pairs in arb::form_pairs()) {
        let body = arb::urlencode(&pairs);
        prop_assert_eq!(run(Some("application/x-www-form-urlencoded"), &body), Ok(arb::grouped(&pairs)));
    }

    #[test]
    fn multipart_forms_decode_to_their_fields(parts in arb::multipart_parts()) {
        let body = arb::multipart(&parts);
        let ct = format!("multipart/form-data; boundary={}", arb::BOUNDARY);
        prop_assert_eq!(run(Some(&ct), &body), Ok(arb::grouped(&parts)));
    }

    #[test]
    fn form_field_counts_are_limited_exactly(n in (MAX_FIELDS - 3)..(MAX_FIELDS + 3), multipart in any::<bool>()) {
        let pairs: Vec<(String, String)> = (0..n).map(|i| (format!("f{i}"), "v".to_owned())).collect();
        let (ct, body) = if multipart {
            (format!("multipart/form-data; boundary={}", arb::BOUNDARY), arb::multipart(&pairs))
        } else {
            ("application/x-www-form-urlencoded".to_owned(), arb::urlencode(&pairs))
        };
        match run(Some(&ct), &body) {
            Ok(Value::Object(fields)) => prop_assert!(n <= MAX_FIELDS && fields.len() == n),
            Err(DecodeError::LimitExceeded { code, .. }) => {
                prop_assert!(n > MAX_FIELDS);
                prop_assert_eq!(code, "too_many_fields");
            }
            other => prop_assert!(false, "{n} fields: {other:?}"),
        }
    }
}
