//! The Lambda entry point (`App::handle_event`) fed arbitrary strings in the event's fields: every event
//! gets a Lambda response of the contract in its front door's shape; an event whose request is usable
//! (any query, any `Host` / `X-Forwarded-Proto`, any header name, any cookie HTTP can carry) is
//! processed as if those fields were ordinary; a signature header HTTP cannot carry is never a pass.

use dealhook::credentials::Credentials;
use dealhook::inbound::Invocation;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::Fakes;

const WEBSITE_QUOTE_V2: &str = include_str!("../../examples/showcase/events/website-quote.json");
const WEBSITE_QUOTE_V1: &str = include_str!("../../examples/showcase/events/website-quote-rest-v1.json");
const CONTACT_FORM_FUNCTION_URL: &str = include_str!("../../examples/showcase/events/contact-form-function-url.json");
const TYPEFORM: &str = include_str!("../../examples/showcase/events/typeform.json");
const SAMPLE_SECRET: &str = include_str!("../../examples/showcase/sample-secret.json");

/// The showcase mapping, signatures checked with the sample keys, HubSpot and the queue in memory.
fn fakes() -> Fakes {
    let secret = Credentials::parse(SAMPLE_SECRET).expect("the sample secret parses");
    Fakes::new(64 * 1024, false, secret)
}

fn run(f: &Fakes, event: &Value) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(f.app.handle_event(event, &Invocation::local()))
}

fn event(text: &str) -> Value {
    serde_json::from_str(text).expect("a sample event")
}

/// The status and the parsed body of a Lambda response, after checking its shape.
fn read(response: &Value) -> Result<(u64, Value), TestCaseError> {
    let Value::Object(top) = response else {
        return Err(TestCaseError::fail(format!("not an object: {response}")));
    };
    let status = top.get("statusCode").and_then(Value::as_u64).unwrap_or(0);
    prop_assert!(
        [200, 202, 400, 401, 404, 405, 413, 415, 503].contains(&status),
        "{}",
        response
    );
    prop_assert_eq!(&top["isBase64Encoded"], &Value::Bool(false));
    let body: Value =
        serde_json::from_str(top["body"].as_str().unwrap_or("")).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let id_single = top["headers"]["x-dealhook-request-id"].as_str();
    let id_multi = top
        .get("multiValueHeaders")
        .and_then(|h| h["x-dealhook-request-id"][0].as_str());
    prop_assert!(id_single.or(id_multi).is_some_and(|id| !id.is_empty()), "{}", response);
    Ok((status, body))
}

/// Any string, control characters and non-ASCII included.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[ -~]{0,40}",
        proptest::collection::vec(any::<char>(), 0..20).prop_map(|c| c.into_iter().collect()),
    ]
}

/// A string HTTP can carry in a header value: visible ASCII, spaces, tabs and non-ASCII.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,40}", "[ -~é✓ü\t]{0,20}"]
}

proptest! {
    #![proptest_config(crate::config())]

    /// The issue's kind: a stray value in fields the pipeline does not need never stops a delivery.
    #[test]
    fn a_usable_request_is_processed_whatever_its_query_host_and_extra_headers(
        which in 0usize..3,
        query in any_text(),
        host in header_text(),
        proto in header_text(),
        extra_name in any_text(),
        extra_value in header_text(),
        cookies in proptest::collection::vec(header_text(), 0..3),
    ) {
        let f = fakes();
        let mut e = event([WEBSITE_QUOTE_V2, WEBSITE_QUOTE_V1, CONTACT_FORM_FUNCTION_URL][which]);
        let v1 = which == 1;
        if v1 {
            e["multiValueQueryStringParameters"] = json!({ (query.clone()): [query.clone(), ""] });
            e["multiValueHeaders"]["Host"] = json!([host]);
            e["multiValueHeaders"]["X-Forwarded-Proto"] = json!([proto]);
            e["headers"][&extra_name] = extra_value.clone().into();
        } else {
            e["rawQueryString"] = query.clone().into();
            e["headers"]["host"] = host.clone().into();
            e["headers"]["x-forwarded-proto"] = proto.clone().into();
            if !extra_name.eq_ignore_ascii_case("content-type") {
                e["headers"][&extra_name] = extra_value.clone().into();
            }
            e["cookies"] = json!(cookies);
        }
        let (status, body) = read(&run(&f, &e))?;
        prop_assert_eq!(status, 200, "{}", body);
        prop_assert_eq!(&body["status"], "created");
        prop_assert_eq!(f.deals.deals().len(), 1);
    }

    /// Anything in any field: an answer of the contract, and a 400 malformed_request stores nothing.
    #[test]
    fn every_event_gets_an_answer_of_the_contract(
        which in 0usize..4,
        field in 0usize..9,
        text in any_text(),
        flag in any::<bool>(),
    ) {
        let f = fakes();
        let mut e = event([WEBSITE_QUOTE_V2, WEBSITE_QUOTE_V1, CONTACT_FORM_FUNCTION_URL, TYPEFORM][which]);
        let v1 = which == 1;
        match field {
            0 => e[if v1 { "path" } else { "rawQueryString" }] = text.clone().into(),
            1 => e["headers"][&text] = text.clone().into(),
            2 => e["headers"]["x-forwarded-proto"] = text.clone().into(),
            3 => e["cookies"] = json!([text.clone()]),
            4 => { e["body"] = text.clone().into(); e["isBase64Encoded"] = flag.into(); }
            5 => e["requestContext"] = if flag { Value::Null } else { text.clone().into() },
            6 => e["version"] = text.clone().into(),
            7 => e[if v1 { "httpMethod" } else { "rawPath" }] = text.clone().into(),
            _ => e["headers"]["Typeform-Signature"] = text.clone().into(),
        }
        let (status, body) = read(&run(&f, &e))?;
        if status == 400 {
            let code = body["error"]["code"].as_str().unwrap_or_default();
            prop_assert!(["malformed_request", "too_deep", "too_many_fields"].contains(&code), "{}", body);
            prop_assert_eq!((f.deals.deals().len(), f.letters.sent().len()), (0, 0));
            prop_assert!(!body["error"]["message"].as_str().unwrap_or_default().is_empty());
        }
        if which == 3 && field == 8 {
            // The signature was replaced by arbitrary text: never a deal.
            prop_assert!([400, 401].contains(&status), "{} {}", status, body);
        }
    }

    /// Not even an HTTP event: still an answer (400 malformed_request in the plain shape).
    #[test]
    fn any_json_value_as_the_event_gets_an_answer(event in crate::arb::value()) {
        let f = fakes();
        let (status, body) = read(&run(&f, &event))?;
        prop_assert!([400, 404, 405].contains(&status), "{} {}", status, body);
        prop_assert_eq!(f.deals.deals().len(), 0);
    }
}

#[test]
fn the_issues_raw_space_query_is_answered_through_the_entry_point() {
    // utm_campaign=spring sale: lambda_http panicked (abort in release) building the request URI.
    for (name, text) in [
        ("HTTP API", WEBSITE_QUOTE_V2),
        ("function URL", CONTACT_FORM_FUNCTION_URL),
    ] {
        let f = fakes();
        let mut e = event(text);
        e["rawQueryString"] = "utm_source=newsletter&utm_campaign=spring sale".into();
        let response = run(&f, &e);
        assert_eq!(response["statusCode"], 200, "{name}: {response}");
        assert_eq!(response["headers"]["content-type"], "application/json", "{name}");
        assert_eq!(f.deals.deals().len(), 1, "{name}");
    }
}

#[test]
fn a_malformed_event_is_answered_400_in_its_front_doors_shape() {
    let f = fakes();
    let mut v2 = event(WEBSITE_QUOTE_V2);
    v2["body"] = "not base64!".into();
    v2["isBase64Encoded"] = true.into();
    let response = run(&f, &v2);
    assert_eq!(response["statusCode"], 400, "{response}");
    assert_eq!(response["cookies"], json!([]), "the HTTP API 2.0 shape: {response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({ "status": "rejected", "error": { "code": "malformed_request",
                "message": "body: is flagged isBase64Encoded but is not base64" } })
    );
    let mut v1 = event(WEBSITE_QUOTE_V1);
    v1["multiValueHeaders"]["X-Bad"] = json!(["a\nb"]);
    let response = run(&f, &v1);
    assert_eq!(response["statusCode"], 400, "{response}");
    assert_eq!(response["headers"], json!({}), "the REST shape: {response}");
    assert_eq!(
        response["multiValueHeaders"]["content-type"],
        json!(["application/json"])
    );
    let unknown = json!({ "version": "3.0", "rawPath": "/hooks/website-quote" });
    let response = run(&f, &unknown);
    assert_eq!(response["statusCode"], 400, "{response}");
    assert!(
        response.get("multiValueHeaders").is_none(),
        "the plain shape: {response}"
    );
    assert!(
        response["body"].as_str().unwrap().contains("payload format version"),
        "{response}"
    );
    assert_eq!((f.deals.deals().len(), f.letters.sent().len()), (0, 0));
}
