//! Real providers end to end: each provider's fixture, signed with its scheme, goes through the
//! real handler to the right HubSpot request; tampered, stale and unsigned variants get 401 and
//! nothing is stored. Also keeps `events/<provider>.json` equal to what these builders produce.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dealhook::inbound::verify::{self, Scheme, SignedRequest};
use dealhook::inbound::{Delivery, Source};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Options, lambda_v2_event, spawn_app_with};

/// When the committed sample events were signed: 2026-11-25T09:14:07Z.
const SIGNED_AT: u64 = 1_795_598_047;

/// One provider: its sample event, endpoint, signing key (sample value) and the deal name its route makes.
struct Provider {
    name: &'static str,
    source: Source,
    path: &'static str,
    key_name: &'static str,
    key: &'static str,
    dealname: &'static str,
}

const PROVIDERS: [Provider; 8] = [
    Provider {
        name: "typeform",
        source: Source::Typeform,
        path: "/hooks/typeform",
        key_name: "typeform",
        key: "abc123",
        dealname: "Demo request: Laura (laura@example.com)",
    },
    Provider {
        name: "tally",
        source: Source::Tally,
        path: "/hooks/tally",
        key_name: "tally",
        key: "YOUR_SIGNING_SECRET",
        dealname: "Webhook payload: alice@example.com",
    },
    Provider {
        name: "webflow",
        source: Source::Webflow,
        path: "/hooks/webflow",
        key_name: "webflow",
        key: "your_client_secret",
        dealname: "Webflow Email Form: hello@gmail.com",
    },
    Provider {
        name: "jotform",
        source: Source::Jotform,
        path: "/hooks/jotform",
        key_name: "jotform",
        key: "sample-jotform-token",
        dealname: "Tutor Appointment Form: Niloth P",
    },
    Provider {
        name: "stripe",
        source: Source::Stripe,
        path: "/hooks/stripe",
        key_name: "stripe",
        key: "whsec_sample_stripe_endpoint_secret",
        dealname: "Checkout: Chris Oliver (chris@gorails.com)",
    },
    Provider {
        name: "standard-webhooks",
        source: Source::StandardWebhooks,
        path: "/hooks/billing",
        key_name: "billing",
        key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        dealname: "Invoice in_1001: ops@example.com",
    },
    Provider {
        name: "github",
        source: Source::GitHub,
        path: "/hooks/github-sponsors",
        key_name: "github",
        key: "It's a Secret to Everybody",
        dealname: "GitHub sponsor: octocat",
    },
    Provider {
        name: "hubspot",
        source: Source::HubSpot,
        path: "/hooks/hubspot-new-contacts",
        key_name: "hubspot-app",
        key: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        dealname: "New contact 123",
    },
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body a provider sends, with its content type.
fn body(p: &Provider, event_type: &str) -> (&'static str, Vec<u8>) {
    match p.source {
        Source::Typeform => ("application/json", fixture("typeform-form_response.json")),
        Source::Tally => ("application/json", fixture("tally-form_response.json")),
        Source::Webflow => (
            "application/json",
            fixture("webflow-form_submission-v2-email-form.json"),
        ),
        Source::Jotform => {
            // The fixture is stored with LF line endings; multipart on the wire uses CRLF.
            let text = String::from_utf8(fixture("jotform-form_submission.multipart")).unwrap();
            (
                "multipart/form-data; boundary=------------------------J1JNT4vbVO4FCC1qLG4HSv",
                text.replace('\n', "\r\n").into_bytes(),
            )
        }
        Source::Stripe => {
            let data = String::from_utf8(fixture("stripe-checkout.session.completed.event-data.json")).unwrap();
            let data: Value = serde_json::from_str(&data).unwrap();
            let event = json!({
                "id": "evt_1QdealhookSample0001", "object": "event", "api_version": "2024-06-20",
                "created": SIGNED_AT, "data": data, "livemode": false, "pending_webhooks": 1,
                "request": { "id": null, "idempotency_key": null }, "type": event_type,
            });
            ("application/json", serde_json::to_vec(&event).unwrap())
        }
        Source::StandardWebhooks => {
            let event = json!({
                "type": "invoice.paid", "timestamp": "2026-11-25T09:14:07Z",
                "data": { "invoice_id": "in_1001", "customer_email": "ops@example.com", "amount": "4,900.00", "currency": "EUR" },
            });
            ("application/json", serde_json::to_vec(&event).unwrap())
        }
        Source::GitHub => {
            let event = json!({
                "action": "created",
                "sponsorship": {
                    "node_id": "S_kgDOABCD", "created_at": "2026-11-25T09:14:07Z", "privacy_level": "public",
                    "sponsor": { "login": "octocat", "id": 1, "type": "User" },
                    "sponsorable": { "login": "dealhook", "id": 2, "type": "Organization" },
                    "tier": { "node_id": "ST_kwDOABCD", "name": "$500 a month", "description": "Team sponsor",
                              "monthly_price_in_cents": 50000, "monthly_price_in_dollars": 500,
                              "is_one_time": false, "is_custom_amount": false },
                },
                "sender": { "login": "octocat", "id": 1, "type": "User" },
            });
            ("application/json", serde_json::to_vec(&event).unwrap())
        }
        Source::HubSpot => ("application/json", fixture("hubspot-webhook-contact.creation.json")),
        Source::Json | Source::Form => unreachable!("not a provider"),
    }
}

fn key(p: &Provider) -> SecretString {
    SecretString::from(p.key.to_owned())
}

/// A provider's signed delivery at `t` (seconds): query string, headers and body.
fn signed(p: &Provider, t: u64, event_type: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let (content_type, body) = body(p, event_type);
    let k = key(p);
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    let mut query = String::new();
    let mut add = |name: &str, value: String| headers.push((name.to_owned(), value));
    match p.source {
        Source::Typeform => {
            add("user-agent", "Typeform Webhooks".into());
            add("typeform-signature", verify::typeform::sign(&k, &body).unwrap());
        }
        Source::Tally => {
            add("user-agent", "Tally Webhooks".into());
            add("tally-signature", verify::tally::sign(&k, &body).unwrap());
        }
        Source::Webflow => {
            add("user-agent", "Webflow".into());
            add("x-webflow-timestamp", (t * 1000).to_string());
            add(
                "x-webflow-signature",
                verify::webflow::sign(&k, &body, t * 1000).unwrap(),
            );
        }
        Source::Jotform => {
            add("user-agent", "JotForm".into());
            query = verify::token::sign(&k).unwrap();
        }
        Source::Stripe => {
            add("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)".into());
            add("stripe-signature", verify::stripe::sign(&k, &body, t).unwrap());
        }
        Source::StandardWebhooks => {
            let id = "msg_2pDealhookSample0001";
            add("user-agent", "Svix-Webhooks/1.0".into());
            add("webhook-id", id.into());
            add("webhook-timestamp", t.to_string());
            add(
                "webhook-signature",
                verify::standard_webhooks::sign(&k, id, t, &body).unwrap(),
            );
        }
        Source::GitHub => {
            add("user-agent", "GitHub-Hookshot/044aadd".into());
            add("x-github-event", "sponsorship".into());
            add("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".into());
            add("x-hub-signature-256", verify::github::sign(&k, &body).unwrap());
        }
        Source::HubSpot => {
            let url = format!("https://abc123.execute-api.us-east-1.amazonaws.com{}", p.path);
            add("user-agent", "HubSpot Webhooks".into());
            add("x-hubspot-request-timestamp", (t * 1000).to_string());
            add(
                "x-hubspot-signature-v3",
                verify::hubspot::sign(&k, "POST", &url, &body, t * 1000).unwrap(),
            );
        }
        Source::Json | Source::Form => unreachable!("not a provider"),
    }
    (query, headers, body)
}

/// The Lambda event for a provider's signed delivery.
fn event(p: &Provider, t: u64, event_type: &str, request_id: &str) -> Value {
    let (query, headers, body) = signed(p, t, event_type);
    lambda_v2_event("POST", p.path, &query, &headers, &body, request_id)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The secret holding every sample signing key (and a placeholder token): `events/sample-secret.json`.
fn sample_secret() -> Value {
    let signing: serde_json::Map<String, Value> = PROVIDERS
        .iter()
        .map(|p| (p.key_name.to_owned(), Value::from(p.key)))
        .collect();
    json!({ "hubspot": { "accessToken": "pat-na1-sample-not-a-real-token" }, "signing": signing })
}

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

#[test]
fn the_sample_events_are_the_signed_deliveries_these_tests_build() {
    // `DEALHOOK_UPDATE_EVENTS=1 scripts/test providers` rewrites them after a deliberate change.
    let update = std::env::var_os("DEALHOOK_UPDATE_EVENTS").is_some();
    let mut files: Vec<(String, String)> = PROVIDERS
        .iter()
        .map(|p| {
            let event = event(
                p,
                SIGNED_AT,
                "checkout.session.completed",
                &format!("sample-{}", p.name),
            );
            (
                format!("{}.json", p.name),
                serde_json::to_string_pretty(&event).unwrap() + "\n",
            )
        })
        .collect();
    files.push((
        "sample-secret.json".into(),
        serde_json::to_string_pretty(&sample_secret()).unwrap() + "\n",
    ));
    for (name, want) in files {
        let path = events_dir().join(&name);
        if update {
            std::fs::write(&path, &want).unwrap();
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "events/{name} is out of date: run DEALHOOK_UPDATE_EVENTS=1 scripts/test providers"
        );
    }
}

#[test]
fn the_sample_events_verify_with_the_sample_keys_at_their_signing_time() {
    let at = UNIX_EPOCH + Duration::from_secs(SIGNED_AT);
    for p in &PROVIDERS {
        let text = std::fs::read_to_string(events_dir().join(format!("{}.json", p.name))).unwrap();
        let delivery = Delivery::from_lambda(lambda_http::request::from_str(&text).unwrap(), chrono::Utc::now());
        let scheme = Scheme::default_for(p.source).unwrap();
        let result = verify::verify(scheme, &key(p), &SignedRequest::from_delivery(&delivery), at);
        assert!(result.is_ok(), "{}: {result:?}", p.name);
        let stale = verify::verify(
            scheme,
            &key(p),
            &SignedRequest::from_delivery(&delivery),
            at + Duration::from_secs(3600),
        );
        let timestamped = matches!(
            p.source,
            Source::Webflow | Source::Stripe | Source::StandardWebhooks | Source::HubSpot
        );
        assert_eq!(stale.is_err(), timestamped, "{}: replaying an hour later", p.name);
    }
}

async fn provider_app(secret: Value) -> crate::helpers::TestApp {
    spawn_app_with(Options {
        secret: secret.to_string(),
        ..Options::default()
    })
    .await
}

fn dealname(request_body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(request_body).unwrap();
    body["properties"]
        .as_array()
        .and_then(|props| props.iter().find(|p| p["name"] == "dealname"))
        .and_then(|p| p["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn every_provider_delivery_creates_the_mapped_deal() {
    let t = provider_app(sample_secret()).await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"portalId": 1, "dealId": 5150})))
        .expect(PROVIDERS.len() as u64)
        .mount(&t.hubspot)
        .await;

    for (i, p) in PROVIDERS.iter().enumerate() {
        let response = t
            .invoke(&event(p, now(), "checkout.session.completed", "req").to_string())
            .await;
        assert_eq!(response.status, 200, "{}: {}", p.name, response.text);
        assert_eq!(response.json["status"], "created", "{}", p.name);
        let requests = t.hubspot.received_requests().await.unwrap();
        assert_eq!(dealname(&requests[i].body), p.dealname, "{}: the deal name", p.name);
    }
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn tampered_stale_and_unsigned_deliveries_are_rejected_with_401_and_never_stored() {
    let t = provider_app(sample_secret()).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    for p in &PROVIDERS {
        let mut cases: Vec<(&str, Value, &str)> = Vec::new();
        // One byte of the body changed after signing.
        let mut tampered = event(p, now(), "checkout.session.completed", "req");
        let (_, _, mut body) = signed(p, now(), "checkout.session.completed");
        if p.source == Source::Jotform {
            // Jotform has no body signature: tampering is an unknown token instead.
            tampered["rawQueryString"] = "token=guessed".into();
        } else {
            let last = body.len() - 2;
            body[last] ^= 0x01;
            use base64::Engine as _;
            tampered["body"] = base64::engine::general_purpose::STANDARD.encode(&body).into();
        }
        cases.push(("tampered", tampered, "invalid_signature"));
        // The signature header (or token) removed.
        let mut unsigned = event(p, now(), "checkout.session.completed", "req");
        let headers = unsigned["headers"].as_object_mut().unwrap();
        headers.retain(|name, _| !name.contains("signature"));
        unsigned["rawQueryString"] = "".into();
        cases.push(("unsigned", unsigned, "missing_signature"));
        // Signed an hour ago: replayed.
        if matches!(
            p.source,
            Source::Webflow | Source::Stripe | Source::StandardWebhooks | Source::HubSpot
        ) {
            cases.push((
                "stale",
                event(p, now() - 3600, "checkout.session.completed", "req"),
                "stale_timestamp",
            ));
        }
        for (case, event, code) in cases {
            let response = t.invoke(&event.to_string()).await;
            assert_eq!(response.status, 401, "{}/{case}: {}", p.name, response.text);
            assert_eq!(response.json["error"]["code"], code, "{}/{case}", p.name);
            assert!(!response.text.contains(p.key), "{}/{case}: the key is echoed", p.name);
        }
    }
    assert!(
        t.dead_letters().await.is_empty(),
        "unauthenticated deliveries are never stored"
    );
}

#[tokio::test]
async fn a_delivery_signed_with_another_key_is_rejected() {
    let mut secret = sample_secret();
    secret["signing"]["typeform"] = "rotated-key".into();
    let t = provider_app(secret).await;

    let response = t.invoke(&event(&PROVIDERS[0], now(), "", "req").to_string()).await;

    assert_eq!(response.status, 401, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "invalid_signature");
}

#[tokio::test]
async fn a_signing_key_missing_from_the_secret_asks_the_sender_to_retry() {
    let mut secret = sample_secret();
    secret["signing"].as_object_mut().unwrap().remove("stripe");
    let t = provider_app(secret).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    let stripe = PROVIDERS.iter().find(|p| p.source == Source::Stripe).unwrap();
    let response = t
        .invoke(&event(stripe, now(), "checkout.session.completed", "req").to_string())
        .await;

    assert_eq!(response.status, 503, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "signing_key_missing");
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_event_no_route_matches_is_ignored_and_not_stored() {
    let t = provider_app(sample_secret()).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&t.hubspot)
        .await;

    let stripe = PROVIDERS.iter().find(|p| p.source == Source::Stripe).unwrap();
    let response = t
        .invoke(&event(stripe, now(), "customer.created", "req").to_string())
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["status"], "ignored");
    assert!(t.dead_letters().await.is_empty());
}

#[test]
fn every_sample_event_runs_through_dealhook_invoke_to_the_right_request() {
    for p in &PROVIDERS {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_dealhook"))
            .args(["invoke", &format!("events/{}.json", p.name)])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("HUBSPOT_SECRET_ID")
            .env_remove("HUBSPOT_ACCESS_TOKEN")
            .env_remove("DEALHOOK_DLQ_URL")
            .env_remove("DEALHOOK_MAPPING")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{}: {stderr}", p.name);
        let response: Value = serde_json::from_slice(&output.stdout).unwrap();
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "dry_run", "{}", p.name);
        assert_eq!(
            dealname(body["request"]["body"].to_string().as_bytes()),
            p.dealname,
            "{}",
            p.name
        );
        assert!(
            stderr.contains("NOT verified"),
            "{}: the skipped signature check is announced: {stderr}",
            p.name
        );
    }
}
