//! The handler end to end: Lambda events in, real HTTP to a mock HubSpot, real SDK calls to moto.
//! Each test asserts effects (deals created, dead letters written), not only statuses.

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{LogCapture, Options, TOKEN, sample_event, spawn_app, spawn_app_with};
use crate::moto;

/// The v1 request the sample event `events/website-quote.json` must produce.
fn website_quote_request() -> Value {
    json!({
        "associations": { "associatedCompanyIds": [8954037], "associatedVids": [27136, 27137] },
        "properties": [
            { "name": "pipeline", "value": "default" },
            { "name": "dealstage", "value": "qualifiedtobuy" },
            { "name": "dealname", "value": "Acme Robotics – enterprise" },
            { "name": "amount", "value": "12500.5" },
            { "name": "closedate", "value": 1797292800000u64 },
            { "name": "description", "value": "We would like 40 seats and SSO." },
            { "name": "dealtype", "value": "newbusiness" }
        ]
    })
}

fn created(deal_id: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "portalId": 62515, "dealId": deal_id, "isDeleted": false,
        "associations": { "associatedVids": [27136, 27137], "associatedCompanyIds": [8954037], "associatedDealIds": [] },
        "properties": {}
    }))
}

#[tokio::test]
async fn a_sample_event_creates_exactly_one_deal_with_the_mapped_request() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(website_quote_request()))
        .respond_with(created(151088))
        .expect(1)
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json, json!({ "status": "created", "dealId": 151088 }));
    assert!(
        t.dead_letters().await.is_empty(),
        "a created deal leaves no dead letter"
    );
}

#[tokio::test]
async fn rest_v1_and_function_url_events_are_served_too() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(created(7))
        .expect(2)
        .mount(&t.hubspot)
        .await;

    for event in ["website-quote-rest-v1.json", "contact-form-function-url.json"] {
        let response = t.invoke(&sample_event(event)).await;
        assert_eq!(response.status, 200, "{event}: {}", response.text);
        assert_eq!(response.json["dealId"], 7, "{event}");
    }
    let requests = t.hubspot.received_requests().await.unwrap_or_default();
    let rest: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(
        rest["properties"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "closedate", "value": 1801353600000u64})),
        "REST v1 event: the offset datetime's calendar date at midnight UTC: {rest}"
    );
}

#[tokio::test]
async fn association_failures_reported_by_hubspot_are_passed_on() {
    let t = spawn_app().await;
    let failures = json!([{ "fromObjectId": 1, "toObjectId": 27137, "reason": "OBJECT_NOT_FOUND" }]);
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "portalId": 1, "dealId": 99, "associationCreateFailures": failures })),
        )
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json["associationCreateFailures"], failures);
}

#[tokio::test]
async fn a_rate_limited_request_is_retried_after_retry_after_and_creates_one_deal() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(created(4242))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    let started = std::time::Instant::now();

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["dealId"], 4242);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let requests = t.hubspot.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same request, sent again");
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_mapping_error_is_dead_lettered_with_every_problem_and_hubspot_is_not_called() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(created(1))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    let event = sample_event("website-quote-invalid.json");
    let response = t.invoke(&event).await;

    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["status"], "dead_lettered");
    assert_eq!(response.json["reason"], "mapping_failed");
    let fields: Vec<&str> = response.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["properties.amount", "properties.closedate", "associations.contacts"] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1, "exactly one dead letter");
    let letter = &letters[0];
    assert_eq!(letter.id, response.json["deadLetterId"].as_str().unwrap());
    assert_eq!(letter.reason.as_str(), "mapping_failed");
    assert_eq!(letter.delivery.route, "website-quote");
    assert!(letter.deal_draft.is_none());
    let original: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(
        letter.body().unwrap(),
        original["body"].as_str().unwrap().as_bytes(),
        "the raw body is kept"
    );
}

#[tokio::test]
async fn a_hubspot_validation_error_is_dead_lettered_with_hubspots_answer_and_the_request() {
    let t = spawn_app().await;
    let hubspot_error = json!({
        "status": "error", "message": "Property values were not valid",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        "validationResults": [{ "isValid": false, "message": "qualifiedtobuy was not one of the allowed options",
                                 "error": "INVALID_OPTION", "name": "dealstage" }],
        "requestId": "ecc0b50659814f7ca37f5d49cdf9cbd3"
    });
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(400).set_body_json(hubspot_error.clone()))
        .expect(1)
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "hubspot_rejected");
    assert_eq!(response.json["errors"][0]["field"], "dealstage");
    assert_eq!(response.json["errors"][0]["code"], "INVALID_OPTION");
    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let hubspot = letters[0].hubspot.as_ref().expect("HubSpot's answer is kept");
    assert_eq!(hubspot.status, Some(400));
    assert_eq!(hubspot.body, hubspot_error);
    assert_eq!(hubspot.attempts, 1);
    assert_eq!(
        letters[0].hubspot_request.as_ref().unwrap().body,
        website_quote_request()
    );
    assert!(letters[0].deal_draft.is_some());
}

#[tokio::test]
async fn when_the_dead_letter_queue_is_missing_the_sender_is_asked_to_retry() {
    let sdk = moto::sdk_config().await;
    let missing = moto::create_queue(&sdk, false)
        .await
        .replace("dealhook-", "does-not-exist-");
    let t = spawn_app_with(Options {
        queue_url: Some(missing),
        ..Options::default()
    })
    .await;

    let response = t.invoke(&sample_event("website-quote-invalid.json")).await;

    assert_eq!(response.status, 503, "{}", response.text);
    assert_eq!(response.json["status"], "retry_later");
    assert_eq!(response.headers["retry-after"], "30");
}

#[tokio::test]
async fn when_sqs_is_unreachable_the_sender_is_asked_to_retry() {
    let t = spawn_app_with(Options {
        sqs_sdk: Some(moto::unreachable_endpoint_config().await),
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 503, "{}", response.text);
}

#[tokio::test]
async fn requests_that_cannot_be_served_are_answered_and_never_stored() {
    let t = spawn_app_with(Options {
        max_body_bytes: 64,
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(created(1))
        .expect(0)
        .mount(&t.hubspot)
        .await;
    let json_body = br#"{"company":"Acme"}"#;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "unknown route",
            crate::helpers::v2_event("POST", "/hooks/nope", Some("application/json"), json_body),
            404,
            "unknown_route",
        ),
        (
            "not a hook path",
            crate::helpers::v2_event("POST", "/other", Some("application/json"), json_body),
            404,
            "not_found",
        ),
        (
            "wrong method",
            crate::helpers::v2_event("GET", "/hooks/website-quote", None, b""),
            405,
            "method_not_allowed",
        ),
        (
            "too large",
            crate::helpers::v2_event("POST", "/hooks/website-quote", Some("application/json"), &[b' '; 65]),
            413,
            "payload_too_large",
        ),
        (
            "unsupported type",
            crate::helpers::v2_event("POST", "/hooks/website-quote", Some("text/plain"), json_body),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            crate::helpers::v2_event("POST", "/hooks/website-quote", None, json_body),
            415,
            "unsupported_media_type",
        ),
    ];
    for (name, event, status, code) in cases {
        let response = t.invoke(&event).await;
        assert_eq!(response.status, status, "{name}: {}", response.text);
        assert_eq!(response.json["status"], "rejected", "{name}");
        assert_eq!(response.json["error"]["code"], code, "{name}");
        assert!(
            !response.json["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{name}: says why"
        );
    }
    assert!(t.dead_letters().await.is_empty(), "rejected requests are never stored");
}

#[tokio::test]
async fn a_malformed_body_on_a_known_route_is_dead_lettered_byte_for_byte() {
    let t = spawn_app().await;
    let body = b"{\"company\": \"Acme\", \"plan\": ";

    let response = t.post("website-quote", "application/json", body).await;

    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "decode_failed");
    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body().unwrap(), body);
}

#[tokio::test]
async fn a_form_post_becomes_a_deal() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .and(body_json(json!({
            "properties": [
                { "name": "dealstage", "value": "appointmentscheduled" },
                { "name": "dealname", "value": "Inbound: Grace Hopper" }
            ]
        })))
        .respond_with(created(5))
        .expect(1)
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("contact-form.json")).await;

    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn an_unreadable_secret_dead_letters_the_delivery() {
    let t = spawn_app_with(Options {
        secret_id: Some("dealhook/does-not-exist".into()),
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(created(1))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "secret_unavailable");
    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].deal_draft.is_some(),
        "the draft is kept so a redrive needs no re-mapping"
    );
}

#[tokio::test]
async fn a_rotated_token_is_picked_up_after_hubspot_refuses_the_old_one() {
    let t = spawn_app().await;
    let old_token = format!("Bearer {TOKEN}");
    // The old token works once (warming the cache), then HubSpot refuses it: it was rotated.
    Mock::given(method("POST"))
        .and(header("authorization", old_token.as_str()))
        .respond_with(created(76))
        .up_to_n_times(1)
        .expect(1)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", old_token.as_str()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"status":"error","message":"expired"})))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer pat-rotated"))
        .respond_with(created(77))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    let first = t.invoke(&sample_event("website-quote.json")).await;
    assert_eq!(first.json["dealId"], 76, "{}", first.text);
    moto::put_secret(&t.sdk, &t.secret_id, r#"{"hubspot":{"accessToken":"pat-rotated"}}"#).await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["dealId"], 77);
}

#[tokio::test]
async fn a_dry_run_shows_the_request_and_sends_nothing() {
    let t = spawn_app_with(Options {
        dry_run: true,
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(created(1))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    let response = t.invoke(&sample_event("website-quote.json")).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json["status"], "dry_run");
    assert_eq!(response.json["request"]["body"], website_quote_request());
    assert_eq!(response.json["request"]["path"], "/deals/v1/deal/");
}

#[tokio::test]
async fn secrets_never_reach_logs_responses_or_dead_letters() {
    let logs = LogCapture::start();
    let api_key = "hapikey-0000-SECRETKEY";
    let cases: Vec<(&str, Options, ResponseTemplate)> = vec![
        (
            "token, HubSpot 400",
            Options::default(),
            ResponseTemplate::new(400).set_body_string("bad"),
        ),
        (
            "token, HubSpot 401 twice",
            Options::default(),
            ResponseTemplate::new(401),
        ),
        ("token, HubSpot 500", Options::default(), ResponseTemplate::new(500)),
        (
            "api key, HubSpot 400",
            Options {
                secret: format!(r#"{{"hubspot":{{"hapikey":"{api_key}"}}}}"#),
                ..Options::default()
            },
            ResponseTemplate::new(400),
        ),
        (
            "api key, HubSpot slow",
            Options {
                secret: format!(r#"{{"hubspot":{{"hapikey":"{api_key}"}}}}"#),
                ..Options::default()
            },
            ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)),
        ),
    ];
    let mut seen = String::new();
    for (name, options, answer) in cases {
        let t = spawn_app_with(options).await;
        Mock::given(method("POST")).respond_with(answer).mount(&t.hubspot).await;
        let response = t.invoke(&sample_event("website-quote.json")).await;
        assert_eq!(response.status, 202, "{name}: {}", response.text);
        seen.push_str(&response.text);
        // A malformed delivery that carries an Authorization header of its own.
        let response = t.post("website-quote", "application/json", b"{not json").await;
        assert_eq!(response.status, 202, "{name}: {}", response.text);
        seen.push_str(&response.text);
        let letters = t.dead_letter_texts().await;
        assert_eq!(letters.len(), 2, "{name}: one dead letter per delivery");
        assert!(
            letters.iter().any(|l| l.contains("[redacted]")),
            "{name}: the Authorization header is redacted"
        );
        for letter in letters {
            seen.push_str(&letter);
        }
    }
    seen.push_str(&logs.text());
    assert!(
        logs.text().contains("\"outcome\":\"dead_lettered\""),
        "the summary lines were captured: {}",
        logs.text()
    );
    for secret in [TOKEN, api_key] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
}

/// A delivery for an endpoint the mapping does not have: the sender gets `404 unknown_route` and no
/// list of endpoints; the operator's log names the endpoints served and, for a typo, the near one.
/// Variants: a one-letter typo, a name near nothing, a name too long to compare.
#[tokio::test]
async fn an_unknown_endpoint_is_logged_with_the_configured_ones_and_the_near_one() {
    let logs = LogCapture::start();
    let t = spawn_app().await;
    let long = "x".repeat(200);
    for (name, near) in [
        ("website-qoute", Some("website-quote")),
        ("zzzzzzzzzzzzzzzzzz", None),
        (long.as_str(), None),
    ] {
        let response = t.post(name, "application/json", br#"{"company":"Acme"}"#).await;
        assert_eq!(response.status, 404, "{name}: {}", response.text);
        assert_eq!(response.json["error"]["code"], "unknown_route");
        assert!(
            !response.text.contains("website-quote"),
            "{name}: the response lists no endpoint: {}",
            response.text
        );
        let text = logs.text();
        let line: Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["endpoint"] == name && l["level"] == "WARN")
            .unwrap_or_else(|| panic!("{name}: no log line in {text}"));
        assert!(line["configured"].as_str().unwrap().contains("website-quote"), "{line}");
        assert_eq!(line["did_you_mean"].as_str(), near, "{name}: {line}");
    }
}
