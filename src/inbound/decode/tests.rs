use super::json::parse_json;
use super::media_type::MediaType;
use super::*;
use serde_json::json;

const HTML_FORM: &[u8] = include_bytes!("../../../tests/fixtures/inbound/html-form-urlencoded.body");
const JOTFORM: &[u8] = include_bytes!("../../../tests/fixtures/inbound/jotform-form_submission.multipart");
const JOTFORM_BOUNDARY: &str = "------------------------J1JNT4vbVO4FCC1qLG4HSv";

const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A browser-style multipart body (CRLF) from `(disposition params, part content type, data)`.
fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (disposition, content_type, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n").as_bytes());
        if let Some(ct) = content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The problems of a Malformed error, or a panic naming the row.
fn problems_of(row: &str, result: Result<Value, DecodeError>) -> Vec<Problem> {
    match result {
        Err(DecodeError::Malformed(problems)) => problems,
        other => panic!("{row}: expected Malformed, got {other:?}"),
    }
}

fn codes(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.code.as_str()).collect()
}

#[tokio::test]
async fn json_media_types_match_case_insensitively_with_utf8_parameters() {
    let content_types = [
        "application/json",
        "Application/JSON",
        "  application/json  ",
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
        "application/json; charset=us-ascii; foo=bar",
        "application/vnd.api+json",
        "application/cloudevents+json; charset=utf-8",
        "APPLICATION/MERGE-PATCH+JSON",
    ];
    for ct in content_types {
        let got = decode(Some(ct), br#"{"a":1}"#).await;
        assert_eq!(got, Ok(json!({"a": 1})), "content type {ct:?}");
    }
}

#[tokio::test]
async fn any_json_value_is_returned_for_the_source_to_judge() {
    let cases: [(&str, &[u8], Value); 6] = [
        (
            "object",
            br#"{"email":"ada@example.com"}"#,
            json!({"email": "ada@example.com"}),
        ),
        ("array", b"[1,2]", json!([1, 2])),
        ("string", br#""hi""#, json!("hi")),
        ("number", b" 12.5 ", json!(12.5)),
        ("null", b"null", Value::Null),
        ("byte-order mark", b"\xEF\xBB\xBF{\"a\":true}", json!({"a": true})),
    ];
    for (row, body, want) in cases {
        assert_eq!(decode(Some("application/json"), body).await, Ok(want), "{row}");
    }
}

#[tokio::test]
async fn unsupported_media_types_and_charsets_are_refused_with_415() {
    let content_types = [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/xml",
        "text/json",
        "multipart/mixed; boundary=x",
        "application/+json",
        "application/jsonx",
        "json",
        "/json",
        "application/",
        "application json",
        "application/json; charset=latin1",
        "application/json; charset=\"ISO-8859-1\"",
        "application/x-www-form-urlencoded; charset=windows-1252",
        "multipart/form-data; boundary=x; charset=shift_jis",
    ];
    for ct in content_types {
        let err = decode(Some(ct), br#"{"a":1}"#).await.expect_err(ct);
        assert_eq!(
            err,
            DecodeError::UnsupportedMediaType {
                content_type: ct.to_owned()
            },
            "content type {ct:?}"
        );
        assert!(err.is_unsupported(), "{ct:?}: should be a 415");
        assert_eq!(codes(&err.problems()), ["unsupported_media_type"], "{ct:?}");
        assert!(
            err.to_string().contains("multipart/form-data"),
            "{ct:?}: message lists what is supported"
        );
    }
}

#[tokio::test]
async fn a_missing_or_blank_content_type_is_missing() {
    for (row, ct) in [("none", None), ("empty", Some("")), ("blank", Some("  \t"))] {
        let err = decode(ct, b"{}").await.expect_err(row);
        assert_eq!(err, DecodeError::MissingContentType, "{row}");
        assert!(err.is_unsupported(), "{row}");
        assert_eq!(codes(&err.problems()), ["missing_content_type"], "{row}");
    }
}

#[tokio::test]
async fn a_long_content_type_is_cut_in_the_error() {
    let ct = format!("text/{}", "x".repeat(10_000));
    let Err(DecodeError::UnsupportedMediaType { content_type }) = decode(Some(&ct), b"").await else {
        panic!("expected UnsupportedMediaType");
    };
    assert_eq!(content_type.chars().count(), MAX_ECHOED_CONTENT_TYPE);
}

#[tokio::test]
async fn empty_bodies_are_empty_body_except_an_empty_form_which_is_an_empty_object() {
    let mp = multipart_type();
    let malformed = [
        ("json, no bytes", "application/json", &b""[..]),
        ("json, whitespace", "application/json", &b" \r\n\t "[..]),
        ("json, only a byte-order mark", "application/json", &b"\xEF\xBB\xBF"[..]),
        ("multipart, no bytes", mp.as_str(), &b""[..]),
    ];
    for (row, ct, body) in malformed {
        let problems = problems_of(row, decode(Some(ct), body).await);
        assert_eq!(codes(&problems), ["empty_body"], "{row}");
        assert_eq!(problems[0].field.as_deref(), Some("body"), "{row}");
    }
    assert_eq!(decode(Some(FORM), b"").await, Ok(json!({})), "form, no bytes");
}

#[tokio::test]
async fn invalid_json_is_malformed_with_its_line_and_column() {
    let cases: [(&str, &[u8], &str); 4] = [
        ("missing value", b"{\n  \"a\": 1,\n  \"b\": }", "line 3 column 8"),
        ("trailing comma", b"[1,2,]", "line 1 column 6"),
        ("truncated", b"{\"a\": [1, 2", "line 1 column 11"),
        ("two values", b"{} {}", "line 1 column 4"),
    ];
    for (row, body, position) in cases {
        let problems = problems_of(row, decode(Some("application/json"), body).await);
        assert_eq!(codes(&problems), ["invalid_json"], "{row}");
        assert!(
            problems[0].message.contains(position),
            "{row}: {:?} lacks {position:?}",
            problems[0].message
        );
    }
}

/// The code and message of a LimitExceeded error, or a panic naming the row.
fn limit_of(row: &str, result: Result<Value, DecodeError>) -> (&'static str, String) {
    match result {
        Err(DecodeError::LimitExceeded { code, message }) => (code, message),
        other => panic!("{row}: expected LimitExceeded, got {other:?}"),
    }
}

fn nested(depth: usize) -> (String, String) {
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    (arrays, objects)
}

#[tokio::test]
async fn json_up_to_the_depth_limit_decodes_and_one_level_more_is_too_deep() {
    let (arrays, objects) = nested(MAX_JSON_DEPTH);
    for (row, body) in [("arrays", arrays), ("objects", objects)] {
        assert!(decode(Some("application/json"), body.as_bytes()).await.is_ok(), "{row}");
    }
    let (arrays, objects) = nested(MAX_JSON_DEPTH + 1);
    let cases = [
        ("arrays", arrays, "/0/0/0/0/0/0/0/0/…/0/0/0 (byte 64)"),
        ("objects", objects, "/a/a/a/a/a/a/a/a/…/a/a/a (byte 320)"),
    ];
    for (row, body, at) in cases {
        let (code, message) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
        assert_eq!(code, "too_deep", "{row}");
        assert!(message.contains("deeper than 64 levels"), "{row}: {message}");
        assert!(message.contains("level 65 opens at"), "{row}: {message}");
        assert!(message.ends_with(at), "{row}: {message}");
    }
}

#[tokio::test]
async fn very_deep_json_is_too_deep_not_a_stack_overflow_whatever_follows() {
    let depth = 100_000;
    let (arrays, objects) = nested(depth);
    let unclosed = "[".repeat(depth);
    let broken_later = format!("{}{{\"a\": }}", "[".repeat(depth));
    for (row, body) in [
        ("arrays", arrays),
        ("objects", objects),
        ("unclosed", unclosed),
        ("syntax error past the limit", broken_later),
    ] {
        let (code, _) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
        assert_eq!(code, "too_deep", "{row}");
    }
}

#[test]
fn the_parsers_own_nesting_limit_is_too_deep_as_well() {
    let (arrays, _) = nested(200);
    let (code, message) = limit_of("serde limit", parse_json(&arrays, 1_000, MAX_JSON_VALUES));
    assert_eq!(code, "too_deep");
    assert!(message.contains("128 levels"), "{message}");
}

#[tokio::test]
async fn json_up_to_the_value_limit_decodes_and_one_more_is_too_many_fields() {
    let array = |n: usize| format!("[{}]", vec!["1"; n].join(","));
    let object = |n: usize| {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":null")).collect();
        format!("{{\"outer\":{{{}}}}}", members.join(","))
    };
    assert!(
        decode(Some("application/json"), array(MAX_JSON_VALUES).as_bytes())
            .await
            .is_ok()
    );
    // The outer member counts too.
    assert!(
        decode(Some("application/json"), object(MAX_JSON_VALUES - 1).as_bytes())
            .await
            .is_ok()
    );
    let cases = [
        (
            "array",
            array(MAX_JSON_VALUES + 1),
            "at byte 20000, in the array at the top level",
        ),
        ("object", object(MAX_JSON_VALUES), "in the object at /outer"),
    ];
    for (row, body, at) in cases {
        let (code, message) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
        assert_eq!(code, "too_many_fields", "{row}");
        assert!(message.contains("more than 10000 values"), "{row}: {message}");
        assert!(message.contains(at), "{row}: {message}");
    }
}

#[test]
fn the_shape_scan_skips_brackets_and_commas_inside_strings_and_escapes() {
    let text = r#"{"[[[": "]]],,,{{{", "esc\"aped[": ["\\", "\"[", "x"]}"#;
    assert_eq!(
        parse_json(text, 2, 5),
        Ok(json!({"[[[": "]]],,,{{{", "esc\"aped[": ["\\", "\"[", "x"]}))
    );
    let (code, message) = limit_of("values", parse_json(text, 2, 4));
    assert_eq!(code, "too_many_fields");
    assert!(message.contains(r#"in the array at /esc\"aped["#), "{message}");
    let (code, _) = limit_of("depth", parse_json(text, 1, 10));
    assert_eq!(code, "too_deep");
}

/// Strings are skipped by searching for the next quote or backslash: each way a string can end (or
/// not) must leave the scan where the parser is. Brackets inside the strings would break the depth
/// limit of 2 if the scan lost its place.
#[test]
fn the_shape_scan_finds_the_end_of_every_kind_of_string() {
    let long = "[{".repeat(100);
    let cases = [
        (
            "escaped backslash just before the quote",
            r#"{"a": ["x\\", "[["]}"#.to_owned(),
        ),
        ("escaped quote at the start", r#"{"a": ["\"[[", "y"]}"#.to_owned()),
        ("only escapes", r#"{"a": ["\\\\\"\\", "z"]}"#.to_owned()),
        (
            "longer than a SIMD block",
            format!(r#"{{"a": ["{long}", "{long}\"{long}"]}}"#),
        ),
        (
            "multi-byte text around escapes",
            r#"{"ü": ["Zürich \"[é]\" 東京", "ß"]}"#.to_owned(),
        ),
        ("empty strings", r#"{"": ["", ""]}"#.to_owned()),
    ];
    for (row, text) in cases {
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{row}: {e}"));
        assert_eq!(parse_json(&text, 2, 10), Ok(parsed), "{row}");
        let (code, _) = limit_of(row, parse_json(&text, 1, 10));
        assert_eq!(code, "too_deep", "{row}: the array is the second level");
    }
    // Not JSON: a backslash or an open string at the very end ends the scan, and the parser says why.
    for text in [r#"{"a": "x\"#, r#"{"a": "x"#, r#"{"a": ["\"#] {
        match parse_json(text, 2, 10) {
            Err(DecodeError::Malformed(problems)) => assert_eq!(problems[0].code, "invalid_json", "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn json_pointers_escape_and_cut_keys() {
    let long = "k".repeat(100);
    let text = format!(r#"{{"a/b~c": {{"{long}": [[1]]}}}}"#);
    let (_, message) = limit_of("depth", parse_json(&text, 3, 100));
    let want = format!("/a~1b~0c/{}…/0", "k".repeat(40));
    assert!(message.contains(&want), "{message}");
}

#[tokio::test]
async fn json_that_is_not_utf8_is_invalid_utf8_with_its_offset() {
    let cases: [(&str, &[u8], &str); 2] = [
        ("latin-1 e-acute", b"{\"a\":\"caf\xE9\"}", "byte 9"),
        ("after a bom", b"\xEF\xBB\xBF\"\xFF\"", "byte 4"),
    ];
    for (row, body, at) in cases {
        let problems = problems_of(row, decode(Some("application/json"), body).await);
        assert_eq!(codes(&problems), ["invalid_utf8"], "{row}");
        assert!(problems[0].message.contains(at), "{row}: {}", problems[0].message);
    }
}

#[tokio::test]
async fn urlencoded_forms_decode_like_a_browser_sends_them() {
    let cases: [(&str, &[u8], Value); 12] = [
        (
            "plus is a space",
            b"full+name=Ada+Lovelace",
            json!({"full name": "Ada Lovelace"}),
        ),
        (
            "percent-20 is a space",
            b"full%20name=Ada%20Lovelace",
            json!({"full name": "Ada Lovelace"}),
        ),
        ("percent-2B is a plus", b"phone=%2B44+20", json!({"phone": "+44 20"})),
        ("utf-8 escapes", b"city=Z%C3%BCrich", json!({"city": "Zürich"})),
        (
            "bad escape stays literal",
            b"a=100%&b=%zz",
            json!({"a": "100%", "b": "%zz"}),
        ),
        (
            "repeated keys become a list in order",
            b"t=b&x=1&t=a&t=c",
            json!({"t": ["b", "a", "c"], "x": "1"}),
        ),
        (
            "key without equals",
            b"subscribe&a=1",
            json!({"subscribe": "", "a": "1"}),
        ),
        ("empty value", b"a=", json!({"a": ""})),
        ("empty pairs are skipped", b"&a=1&&b=2&", json!({"a": "1", "b": "2"})),
        ("only separators", b"&&&", json!({})),
        ("second equals is part of the value", b"q=a=b", json!({"q": "a=b"})),
        ("empty name", b"=v", json!({"": "v"})),
    ];
    for (row, body, want) in cases {
        assert_eq!(decode(Some(FORM), body).await, Ok(want), "{row}");
    }
}

#[tokio::test]
async fn urlencoded_bytes_that_are_not_utf8_name_each_field() {
    let body = b"ok=1&name=%FF&other=caf%E9&%FE%FF=x";
    let problems = problems_of("invalid utf-8", decode(Some(FORM), body).await);
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_deref()).collect();
    assert_eq!(
        fields,
        [Some("fields.name"), Some("fields.other"), Some("fields.%FE%FF")]
    );
    assert_eq!(codes(&problems), ["invalid_utf8"; 3]);
    assert!(problems[0].message.contains("\"name\""), "{}", problems[0].message);
}

#[tokio::test]
async fn the_mdn_html_form_fixture_decodes_to_its_two_fields() {
    let got = decode(Some(FORM), HTML_FORM).await;
    assert_eq!(got, Ok(json!({"field1": "value1", "field2": "value2"})));
}

#[tokio::test]
async fn more_fields_than_the_limit_are_too_many_fields() {
    let form_at_limit = vec!["a=1"; MAX_FIELDS].join("&");
    let form_over = vec!["a=1"; MAX_FIELDS + 1].join("&");
    let part = ("name=\"a\"", None, &b"1"[..]);
    let multipart_at_limit = multipart_body(&vec![part; MAX_FIELDS]);
    let multipart_over = multipart_body(&vec![part; MAX_FIELDS + 1]);
    let mp = multipart_type();
    let cases = [
        ("form at the limit", FORM, form_at_limit.as_bytes(), true),
        ("form over the limit", FORM, form_over.as_bytes(), false),
        (
            "multipart at the limit",
            mp.as_str(),
            multipart_at_limit.as_slice(),
            true,
        ),
        (
            "multipart over the limit",
            mp.as_str(),
            multipart_over.as_slice(),
            false,
        ),
    ];
    for (row, ct, body, ok) in cases {
        let got = decode(Some(ct), body).await;
        if ok {
            let value = got.unwrap_or_else(|e| panic!("{row}: {e}"));
            assert_eq!(value["a"].as_array().map(Vec::len), Some(MAX_FIELDS), "{row}");
        } else {
            let (code, message) = limit_of(row, got);
            assert_eq!(code, "too_many_fields", "{row}");
            assert!(message.contains("more than 1000 fields"), "{row}: {message}");
            let at = if ct == FORM {
                "field 1001 starts at byte 4000"
            } else {
                "field 1001 is part 1001"
            };
            assert!(message.contains(at), "{row}: {message}");
        }
    }
}

#[tokio::test]
async fn a_browser_multipart_form_decodes_text_repeated_and_file_parts() {
    let body = multipart_body(&[
        ("name=\"_charset_\"", None, b"UTF-8"),
        ("name=\"email\"", None, b"ada@example.com"),
        ("name=\"city\"", None, "Zürich".as_bytes()),
        ("name=\"topic\"", None, b"sales"),
        ("name=\"message\"", None, b"line one\r\nline two"),
        ("name=\"topic\"", None, b"support"),
        (
            "name=\"brief\"; filename=\"brief.pdf\"",
            Some("application/pdf"),
            b"%PDF-1.4\r\n\x00\xFF binary",
        ),
        ("name=\"logo\"; filename=\"\"", Some("application/octet-stream"), b""),
        ("name=\"notes\"; filename=\"n.txt\"", None, b"abc"),
        ("name=\"empty\"", None, b""),
        ("name=\"typed\"", Some("text/plain; charset=UTF-8"), b"ok"),
    ]);
    let got = decode(Some(&multipart_type()), &body).await;
    let want = json!({
        "_charset_": "UTF-8",
        "email": "ada@example.com",
        "city": "Zürich",
        "topic": ["sales", "support"],
        "message": "line one\r\nline two",
        "brief": {"filename": "brief.pdf", "contentType": "application/pdf", "size": 19},
        "logo": {"filename": "", "contentType": "application/octet-stream", "size": 0},
        "notes": {"filename": "n.txt", "contentType": null, "size": 3},
        "empty": "",
        "typed": "ok",
    });
    assert_eq!(got, Ok(want));
}

#[tokio::test]
async fn a_quoted_boundary_in_any_case_is_accepted() {
    let body = multipart_body(&[("name=\"a\"", None, b"1")]);
    let ct = format!("Multipart/Form-Data; Boundary=\"{BOUNDARY}\"");
    assert_eq!(decode(Some(&ct), &body).await, Ok(json!({"a": "1"})));
}

#[tokio::test]
async fn broken_multipart_bodies_are_invalid_multipart() {
    let good = multipart_body(&[("name=\"a\"", None, b"1"), ("name=\"b\"", None, b"2")]);
    let truncated = &good[..good.len() - 20];
    let lf_only = String::from_utf8(good.clone()).unwrap().replace("\r\n", "\n");
    let nameless = format!("--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
    let other_boundary = good.clone();
    let mp = multipart_type();
    let cases: [(&str, &str, &[u8], &str); 7] = [
        ("no boundary", "multipart/form-data", &good, "no boundary"),
        (
            "empty boundary",
            "multipart/form-data; boundary=\"\"",
            &good,
            "no boundary",
        ),
        ("truncated", &mp, truncated, "incomplete"),
        ("lf line endings", &mp, lf_only.as_bytes(), "incomplete"),
        ("not multipart at all", &mp, b"a=1&b=2", "incomplete"),
        ("part without a name", &mp, nameless.as_bytes(), "part 1 has no name"),
        (
            "boundary does not match",
            "multipart/form-data; boundary=other",
            &other_boundary,
            "incomplete",
        ),
    ];
    for (row, ct, body, needle) in cases {
        let problems = problems_of(row, decode(Some(ct), body).await);
        assert_eq!(codes(&problems), ["invalid_multipart"], "{row}");
        assert!(
            problems[0].message.contains(needle),
            "{row}: {:?} lacks {needle:?}",
            problems[0].message
        );
    }
}

#[tokio::test]
async fn multipart_text_that_is_not_utf8_or_declares_another_charset_is_reported_per_field() {
    let cases: [(&str, Vec<u8>, &str, &str); 3] = [
        (
            "latin-1 bytes",
            multipart_body(&[("name=\"city\"", None, b"Z\xFCrich")]),
            "invalid_utf8",
            "fields.city",
        ),
        (
            "part charset",
            multipart_body(&[("name=\"city\"", Some("text/plain; charset=iso-8859-1"), b"Zurich")]),
            "unsupported_charset",
            "fields.city",
        ),
        (
            "_charset_ field",
            multipart_body(&[
                ("name=\"_charset_\"", None, b"windows-1252"),
                ("name=\"a\"", None, b"1"),
            ]),
            "unsupported_charset",
            "fields._charset_",
        ),
    ];
    for (row, body, code, field) in cases {
        let problems = problems_of(row, decode(Some(&multipart_type()), &body).await);
        assert_eq!(codes(&problems), [code], "{row}");
        assert_eq!(problems[0].field.as_deref(), Some(field), "{row}");
    }
}

#[tokio::test]
async fn the_jotform_fixture_decodes_with_raw_request_as_a_json_string() {
    // The fixture is stored with LF line endings; Jotform sends CRLF.
    let body = String::from_utf8(JOTFORM.to_vec()).unwrap().replace('\n', "\r\n");
    let ct = format!("multipart/form-data; boundary={JOTFORM_BOUNDARY}");
    let got = decode(Some(&ct), body.as_bytes()).await.unwrap();
    assert_eq!(got["formID"], "243231271343446");
    assert_eq!(got["submissionID"], "6084250982513018472");
    assert_eq!(got["formTitle"], "Tutor Appointment Form");
    let raw_request = got["rawRequest"].as_str().expect("rawRequest is a string");
    let inner: Value = serde_json::from_str(raw_request).expect("rawRequest holds JSON");
    assert!(inner.is_object(), "rawRequest holds a JSON object: {inner}");
}

#[test]
fn content_type_parameters_are_parsed_leniently() {
    let cases = [
        ("plain", "a/b; x=1; y=2", vec![("x", "1"), ("y", "2")]),
        (
            "quoted with escapes and semicolon",
            r#"a/b; x="p\"q;r" ; y=2"#,
            vec![("x", "p\"q;r"), ("y", "2")],
        ),
        ("names lowercased", "a/b; CharSet=UTF-8", vec![("charset", "UTF-8")]),
        ("no value is skipped", "a/b; flag; x=1;;", vec![("x", "1")]),
        ("unterminated quote", "a/b; x=\"abc", vec![("x", "abc")]),
        ("empty name skipped", "a/b; =1; x=", vec![("x", "")]),
        ("multibyte", "a/b; x=\"ü\"", vec![("x", "ü")]),
    ];
    for (row, raw, want) in cases {
        let media = MediaType::parse(raw).unwrap_or_else(|| panic!("{row}: did not parse"));
        let got: Vec<_> = media.params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(got, want, "{row}");
        assert_eq!(media.essence, "a/b", "{row}");
    }
}

#[test]
fn malformed_errors_are_not_unsupported_and_carry_their_problems() {
    let problems = vec![
        Problem::at("body", "invalid_json", "x"),
        Problem::at("fields.a", "invalid_utf8", "y"),
    ];
    let err = DecodeError::Malformed(problems.clone());
    assert!(!err.is_unsupported());
    assert_eq!(err.problems(), problems);
    assert_eq!(
        err.to_string(),
        "the body could not be decoded: body: x (invalid_json); fields.a: y (invalid_utf8)"
    );
}

#[test]
fn the_decode_future_can_cross_threads() {
    fn assert_send<T: Send>(_: T) {}
    assert_send(decode(Some("application/json"), b"{}"));
}
