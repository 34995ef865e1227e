//! Event → Delivery, by kind of field. Variants thought of, each tested below:
//! - query: raw space (the issue's input), `+`, `%20`, non-ASCII, control characters, `#`, empty, absent;
//!   REST parameters re-encoded (`%20`, `+`, `&`, `=`, non-ASCII, empty values, repeated keys, JSON order,
//!   null, non-string values), HTTP API events without `rawQueryString`;
//! - headers: control characters in a value (malformed, named), non-ASCII values (kept as bytes), names
//!   that are not HTTP names (skipped), upper-case names, odd `Host` / `X-Forwarded-Proto`, non-string
//!   values, `null` maps, REST `headers` vs `multiValueHeaders`;
//! - cookies: joined into `cookie`, non-string, control characters, empty list;
//! - body: base64 flagged and valid / invalid, not flagged, null, missing, non-string, odd flag;
//! - method and path: missing, invalid, lower-case, `requestContext` missing / not an object;
//! - versions: 2.0, 1.0, none (REST / HTTP shapes), unknown, non-string, not an object, an SQS event;
//! - request id and deadline: Lambda's, API Gateway's, local; deadlines that are not epoch times;
//! - responses: the three shapes.

use chrono::Utc;
use serde_json::{Value, json};

use super::*;

fn v2(query: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "POST /hooks/{route}", "rawPath": "/hooks/contact-form",
        "rawQueryString": query,
        "headers": { "content-type": "text/plain", "host": "abc.execute-api.us-east-1.amazonaws.com" },
        "requestContext": { "http": { "method": "POST", "path": "/hooks/contact-form" }, "requestId": "req-123",
                            "stage": "$default" },
        "body": "aGk=", "isBase64Encoded": true
    })
}

fn v1() -> Value {
    json!({
        "resource": "/hooks/{route}", "path": "/hooks/hs", "httpMethod": "POST",
        "headers": { "Content-Type": "application/json", "Host": "abc.execute-api.us-east-1.amazonaws.com",
                     "X-Twice": "second" },
        "multiValueHeaders": { "Content-Type": ["application/json"], "Host": ["abc.execute-api.us-east-1.amazonaws.com"],
                               "X-Twice": ["first", "second"] },
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "requestContext": { "path": "/prod/hooks/hs", "stage": "prod", "requestId": "rest-req", "httpMethod": "POST" },
        "body": "{}", "isBase64Encoded": false
    })
}

fn parse(event: &Value) -> Result<Delivery, MalformedEvent> {
    Delivery::from_event(event, &Invocation::local(), Utc::now())
}

fn malformed(event: &Value) -> MalformedEvent {
    parse(event).expect_err("malformed")
}

fn with(mut event: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut event
    } else {
        event.pointer_mut(parent).unwrap()
    };
    target.as_object_mut().unwrap().insert(key.to_owned(), value);
    event
}

fn without(mut event: Value, key: &str) -> Value {
    event.as_object_mut().unwrap().remove(key);
    event
}

#[test]
fn a_v2_event_becomes_a_delivery_with_raw_bytes_and_the_apigw_request_id() {
    let d = parse(&v2("a=1")).unwrap();
    assert_eq!(d.method, Method::POST);
    assert_eq!(d.path, "/hooks/contact-form");
    assert_eq!(d.query.as_deref(), Some("a=1"));
    assert_eq!(&d.body[..], b"hi");
    assert_eq!(d.request_id, "req-123");
    assert_eq!(d.content_type(), Some("text/plain"));
    assert_eq!(d.deadline, None);
}

#[test]
fn a_raw_space_in_the_query_is_kept_as_sent() {
    // The issue's failing input: lambda_http panicked building an http::Uri from it.
    let raw = "utm_source=newsletter&utm_campaign=spring sale";
    for (name, event) in [
        ("HTTP API", v2(raw)),
        (
            "function URL",
            with(
                v2(raw),
                "/requestContext/domainName",
                "x.lambda-url.us-east-1.on.aws".into(),
            ),
        ),
    ] {
        let d = parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.query.as_deref(), Some(raw), "{name}");
        assert_eq!(&d.body[..], b"hi", "{name}");
    }
}

#[test]
fn any_raw_query_is_kept_byte_for_byte() {
    for raw in [
        "spring+sale=1",
        "a=b%20c",
        "q=café&ü=ö",
        "a=\u{0}\u{7}\r\n",
        "frag=#x",
        "%%%=%zz",
        "a=1&a=2&&",
        "x=\"<>{}|\\^`",
    ] {
        assert_eq!(parse(&v2(raw)).unwrap().query.as_deref(), Some(raw), "{raw:?}");
    }
    assert_eq!(parse(&v2("")).unwrap().query, None, "an empty query is none");
    assert_eq!(parse(&without(v2(""), "rawQueryString")).unwrap().query, None);
    assert_eq!(
        malformed(&with(v2(""), "/rawQueryString", json!(1))).field,
        "rawQueryString"
    );
}

#[test]
fn a_v2_event_without_raw_query_string_rebuilds_it_from_the_parameters() {
    let event = with(
        without(v2(""), "rawQueryString"),
        "/queryStringParameters",
        json!({ "b": "x y", "a": "1,2" }),
    );
    assert_eq!(parse(&event).unwrap().query.as_deref(), Some("b=x%20y&a=1%2C2"));
}

#[test]
fn rest_query_parameters_are_re_encoded_in_json_order() {
    let cases = [
        (
            "two parameters, JSON order",
            json!({ "b": ["2"], "a": ["1"] }),
            Some("b=2&a=1"),
        ),
        ("space", json!({ "q": ["spring sale"] }), Some("q=spring%20sale")),
        ("plus", json!({ "q": ["a+b"] }), Some("q=a%2Bb")),
        ("ampersand and equals", json!({ "q": ["a&b=c"] }), Some("q=a%26b%3Dc")),
        ("non-ASCII", json!({ "café": ["é"] }), Some("caf%C3%A9=%C3%A9")),
        ("unreserved kept", json!({ "k": ["A-z.0_9~"] }), Some("k=A-z.0_9~")),
        (
            "HubSpot's decoded twelve",
            json!({ "k": [":/?@!$'()*,;"] }),
            Some("k=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B"),
        ),
        ("empty value", json!({ "a": [""], "b": ["1"] }), Some("a=&b=1")),
        (
            "repeated key",
            json!({ "a": ["1", "2"], "b": ["3"] }),
            Some("a=1&a=2&b=3"),
        ),
        ("control characters", json!({ "a": ["\u{0}\n"] }), Some("a=%00%0A")),
        ("empty map", json!({}), None),
        ("null", Value::Null, None),
    ];
    for (name, multi, want) in cases {
        let event = with(v1(), "/multiValueQueryStringParameters", multi);
        assert_eq!(parse(&event).unwrap().query.as_deref(), want, "{name}");
    }
    // Without the multi-value map, the single-value one is read.
    let event = with(v1(), "/queryStringParameters", json!({ "a": "x y" }));
    assert_eq!(parse(&event).unwrap().query.as_deref(), Some("a=x%20y"));
    // The field named is the parameter's, so that the sender's operator can find it.
    for (bad, field) in [
        (json!({ "a": [1] }), "multiValueQueryStringParameters.a"),
        (json!({ "a": [null] }), "multiValueQueryStringParameters.a"),
        (json!({ "a": 1 }), "multiValueQueryStringParameters.a"),
        (json!("a=1"), "multiValueQueryStringParameters"),
    ] {
        let event = with(v1(), "/multiValueQueryStringParameters", bad.clone());
        assert_eq!(malformed(&event).field, field, "{bad}");
    }
    let event = with(v1(), "/requestContext/path", json!(5));
    assert_eq!(malformed(&event).field, "requestContext.path");
}

#[test]
fn a_rest_event_is_read_with_the_path_the_sender_called() {
    let d = parse(&v1()).unwrap();
    assert_eq!(d.method, Method::POST);
    assert_eq!(d.path, "/prod/hooks/hs", "requestContext.path, stage included");
    assert_eq!(d.query, None);
    assert_eq!(&d.body[..], b"{}");
    assert_eq!(d.request_id, "rest-req");
    assert_eq!(d.content_type(), Some("application/json"));
    let twice: Vec<_> = d.headers.get_all("x-twice").iter().collect();
    assert_eq!(twice, ["first", "second"], "multiValueHeaders keeps every value");
    let mut event = v1();
    event.as_object_mut().unwrap().remove("requestContext");
    assert_eq!(
        parse(&event).unwrap().path,
        "/hooks/hs",
        "without requestContext, `path`"
    );
}

#[test]
fn rest_headers_only_in_the_single_value_map_are_kept() {
    let event = with(v1(), "/headers/X-Only-Here", "1".into());
    assert_eq!(parse(&event).unwrap().headers["x-only-here"], "1");
    let event = with(v1(), "/multiValueHeaders", Value::Null);
    let d = parse(&event).unwrap();
    assert_eq!(d.headers.get_all("x-twice").iter().count(), 1);
}

#[test]
fn header_values_http_cannot_carry_make_the_event_malformed_and_name_the_header() {
    for value in ["a\u{0}b", "line\r\nx-injected: 1", "bell\u{7}", "del\u{7f}"] {
        let event = with(v2(""), "/headers/X-HubSpot-Signature-v3", value.into());
        let why = malformed(&event);
        assert_eq!(why.field, "headers.x-hubspot-signature-v3", "{value:?}");
        assert!(!why.to_string().contains(value), "the value is not echoed: {why}");
    }
    let event = with(
        v1(),
        "/multiValueHeaders/Stripe-Signature",
        json!(["t=1,v1=ab", "bad\nvalue"]),
    );
    assert_eq!(malformed(&event).field, "headers.stripe-signature");
}

#[test]
fn non_ascii_header_values_are_kept_as_bytes() {
    let event = with(v2(""), "/headers/x-name", "Zoë ✓".into());
    let d = parse(&event).unwrap();
    assert_eq!(d.headers["x-name"].as_bytes(), "Zoë ✓".as_bytes());
}

#[test]
fn header_names_that_are_not_http_names_are_skipped() {
    let mut event = v2("");
    for name in ["bad name", "", "ü", "a:b", "x\u{0}"] {
        event = with(event, &format!("/headers/{name}"), "v".into());
    }
    let d = parse(&event).unwrap();
    assert_eq!(d.headers.len(), 2, "content-type and host only: {:?}", d.headers);
}

#[test]
fn header_names_are_case_insensitive_and_odd_host_or_proto_values_are_kept() {
    let mut event = v2("");
    event["headers"] = json!({ "HOST": "a b c", "X-Forwarded-Proto": "ht tp://", "Content-Type": "text/plain" });
    let d = parse(&event).unwrap();
    assert_eq!(d.headers["host"], "a b c");
    assert_eq!(d.headers["x-forwarded-proto"], "ht tp://");
    assert_eq!(d.content_type(), Some("text/plain"));
}

#[test]
fn header_maps_of_the_wrong_type_are_malformed_and_null_is_empty() {
    assert_eq!(parse(&with(v2(""), "/headers", Value::Null)).unwrap().headers.len(), 0);
    assert_eq!(malformed(&with(v2(""), "/headers", json!(["a"]))).field, "headers");
    assert_eq!(malformed(&with(v2(""), "/headers/x-n", json!(1))).field, "headers.x-n");
    assert_eq!(
        parse(&with(v2(""), "/headers/x-n", Value::Null))
            .unwrap()
            .headers
            .get("x-n"),
        None
    );
    assert_eq!(
        malformed(&with(v1(), "/multiValueHeaders/X-N", json!("v"))).field,
        "headers.x-n"
    );
}

#[test]
fn cookies_become_one_cookie_header() {
    let d = parse(&with(v2(""), "/cookies", json!(["a=1", "b=2"]))).unwrap();
    assert_eq!(d.headers["cookie"], "a=1; b=2");
    assert_eq!(
        parse(&with(v2(""), "/cookies", json!([])))
            .unwrap()
            .headers
            .get("cookie"),
        None
    );
    assert_eq!(
        parse(&with(v2(""), "/cookies", Value::Null))
            .unwrap()
            .headers
            .get("cookie"),
        None
    );
    for bad in [json!([1]), json!("a=1"), json!(["a=\n1"])] {
        assert_eq!(
            malformed(&with(v2(""), "/cookies", bad.clone())).field,
            "cookies",
            "{bad}"
        );
    }
}

#[test]
fn bodies_are_decoded_only_when_flagged_and_bad_base64_is_malformed() {
    let body = |event: &Value| parse(event).map(|d| d.body.to_vec());
    assert_eq!(body(&v2("")).unwrap(), b"hi");
    assert_eq!(body(&with(v2(""), "/isBase64Encoded", false.into())).unwrap(), b"aGk=");
    assert_eq!(body(&without(v2(""), "isBase64Encoded")).unwrap(), b"aGk=");
    assert_eq!(body(&with(v2(""), "/body", Value::Null)).unwrap(), b"");
    assert_eq!(body(&without(v2(""), "body")).unwrap(), b"");
    for bad in ["not base64!", "aGk", "aGk=\n", "%%%%"] {
        let why = malformed(&with(v2(""), "/body", bad.into()));
        assert_eq!(
            (why.field.as_str(), why.rule.contains("base64")),
            ("body", true),
            "{bad:?}"
        );
    }
    assert_eq!(malformed(&with(v2(""), "/body", json!({"a": 1}))).field, "body");
    assert_eq!(
        malformed(&with(v2(""), "/isBase64Encoded", "true".into())).field,
        "isBase64Encoded"
    );
}

#[test]
fn a_missing_or_odd_request_context_is_named() {
    // HTTP API 2.0 carries the method only in requestContext: without it the request is unusable.
    let why = malformed(&without(v2(""), "requestContext"));
    assert_eq!(
        (why.field.as_str(), why.rule.as_str()),
        ("requestContext.http.method", "is missing")
    );
    for odd in [
        json!("x"),
        json!([]),
        json!({}),
        json!({ "http": null }),
        json!({ "http": "POST" }),
    ] {
        let why = malformed(&with(v2(""), "/requestContext", odd.clone()));
        assert_eq!(why.field, "requestContext.http.method", "{odd}");
    }
    let why = malformed(&with(v2(""), "/requestContext/http/method", json!(1)));
    assert_eq!(why.rule, "is not a string");
    // The path falls back to requestContext.http.path; with neither, the event is malformed.
    let d = parse(&without(v2(""), "rawPath")).unwrap();
    assert_eq!(d.path, "/hooks/contact-form");
    let event = with(
        without(v2(""), "rawPath"),
        "/requestContext/http",
        json!({ "method": "POST" }),
    );
    assert_eq!(malformed(&event).field, "rawPath");
    // REST: httpMethod at the top, else in requestContext.
    let event = with(without(v1(), "httpMethod"), "/requestContext/httpMethod", "PUT".into());
    assert_eq!(parse(&event).unwrap().method, Method::PUT);
}

#[test]
fn methods_are_read_as_sent_and_invalid_ones_are_malformed() {
    let method = |m: &str| parse(&with(v2(""), "/requestContext/http/method", m.into())).map(|d| d.method);
    assert_eq!(method("GET").unwrap(), Method::GET);
    assert_eq!(
        method("post").unwrap().as_str(),
        "post",
        "an extension method: answered 405 later"
    );
    for bad in ["", "PO ST", "GET\n", "ü"] {
        assert_eq!(method(bad).unwrap_err().field, "requestContext.http.method", "{bad:?}");
    }
}

#[test]
fn payload_versions_pick_the_reader_and_unknown_ones_are_unrecognised() {
    let format = |event: &Value| match LambdaEvent::parse(event, &Invocation::local(), Utc::now()) {
        LambdaEvent::Http(http) => Some(http.format),
        LambdaEvent::Unrecognised(_) => None,
    };
    assert_eq!(format(&v2("")), Some(ResponseFormat::ApiGatewayV2));
    assert_eq!(format(&without(v2(""), "version")), Some(ResponseFormat::ApiGatewayV2));
    assert_eq!(format(&v1()), Some(ResponseFormat::ApiGatewayV1));
    assert_eq!(
        format(&with(v1(), "/version", "1.0".into())),
        Some(ResponseFormat::ApiGatewayV1)
    );
    for unknown in [
        with(v2(""), "/version", "3.0".into()),
        with(v2(""), "/version", json!(2)),
        with(v1(), "/version", "".into()),
        json!({}),
        json!({ "Records": [{ "eventSource": "aws:sqs", "body": "{}" }] }),
        json!([]),
        json!("POST /hooks/x"),
        Value::Null,
    ] {
        assert_eq!(format(&unknown), None, "{unknown}");
        assert!(parse(&unknown).is_err(), "{unknown}");
    }
    assert_eq!(
        malformed(&with(v2(""), "/version", "3.0".into())).field,
        "version",
        "an unknown version is named"
    );
}

#[test]
fn the_lambda_request_id_wins_then_api_gateways_then_a_local_one() {
    let invocation = Invocation {
        request_id: "lambda-1".into(),
        deadline: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        xray_trace_id: Some("Root=1-abc".into()),
    };
    let d = Delivery::from_event(&v2(""), &invocation, Utc::now()).unwrap();
    assert_eq!(d.request_id, "lambda-1");
    assert_eq!(d.deadline, invocation.deadline);
    assert_eq!(parse(&v2("")).unwrap().request_id, "req-123");
    let d = parse(&with(v2(""), "/requestContext/requestId", "".into())).unwrap();
    assert!(d.request_id.starts_with("local-"), "{}", d.request_id);
}

#[test]
fn only_epoch_milliseconds_are_taken_for_the_invocation_deadline() {
    let real = 1_795_593_400_663;
    assert_eq!(
        invocation_deadline(real),
        Some(UNIX_EPOCH + Duration::from_millis(real))
    );
    assert_eq!(
        invocation_deadline(600_000),
        None,
        "cargo lambda's emulator sends its timeout"
    );
    assert_eq!(invocation_deadline(0), None);
    let mut context = lambda_runtime::Context::default();
    context.request_id = "r".into();
    context.deadline = real;
    context.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());
    let invocation = Invocation::from_lambda(&context);
    assert_eq!(invocation.request_id, "r");
    assert_eq!(invocation.deadline, invocation_deadline(real));
    assert_eq!(
        invocation.xray_trace_id.as_deref(),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793")
    );
    context.xray_trace_id = Some(String::new());
    assert_eq!(Invocation::from_lambda(&context).xray_trace_id, None);
}

#[test]
fn responses_have_the_shape_of_each_front_door() {
    let mut response = http::Response::new(r#"{"status":"created"}"#.to_owned());
    *response.status_mut() = http::StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert("x-dealhook-request-id", HeaderValue::from_static("r-1"));
    let body = r#"{"status":"created"}"#;
    // The shapes lambda_http 1.3.2 produced (src/response.rs), so that no answer changes.
    assert_eq!(
        ResponseFormat::ApiGatewayV1.render(&response),
        json!({ "statusCode": 202, "headers": {},
                "multiValueHeaders": { "content-type": ["application/json"], "x-dealhook-request-id": ["r-1"] },
                "body": body, "isBase64Encoded": false })
    );
    assert_eq!(
        ResponseFormat::ApiGatewayV2.render(&response),
        json!({ "statusCode": 202,
                "headers": { "content-type": "application/json", "x-dealhook-request-id": "r-1" },
                "multiValueHeaders": {}, "body": body, "isBase64Encoded": false, "cookies": [] })
    );
    assert_eq!(
        ResponseFormat::Plain.render(&response),
        json!({ "statusCode": 202,
                "headers": { "content-type": "application/json", "x-dealhook-request-id": "r-1" },
                "body": body, "isBase64Encoded": false })
    );
    response.headers_mut().append("x-twice", HeaderValue::from_static("a"));
    response.headers_mut().append("x-twice", HeaderValue::from_static("b"));
    assert_eq!(
        ResponseFormat::ApiGatewayV2.render(&response)["headers"]["x-twice"],
        "a, b"
    );
    assert_eq!(
        ResponseFormat::ApiGatewayV1.render(&response)["multiValueHeaders"]["x-twice"],
        json!(["a", "b"])
    );
}
