//! Sample deliveries, built the way the senders build them: API Gateway HTTP API (2.0) events and
//! every provider's signed delivery (sample keys from `examples/showcase/sample-secret.json`). Shared by two
//! test binaries through `#[path]`: `tests/api` (which also keeps `examples/showcase/events/<provider>.json` equal to
//! what these builders produce) and `tests/emulator` (which re-signs the timestamped ones at the
//! current time). Each binary uses only part of it, hence `dead_code` is allowed where it is included.

use std::time::{SystemTime, UNIX_EPOCH};

use dealhook::inbound::Source;
use dealhook::inbound::verify;
use secrecy::SecretString;
use serde_json::{Value, json};

/// An API Gateway HTTP API (payload 2.0) event as API Gateway builds it: `host`, `user-agent` and
/// `x-forwarded-*` headers added to `headers`, the body base64-encoded.
pub fn lambda_v2_event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    request_id: &str,
) -> Value {
    use base64::Engine as _;
    const HOST: &str = "abc123.execute-api.us-east-1.amazonaws.com";
    let mut all = serde_json::Map::new();
    all.insert("host".into(), HOST.into());
    all.insert("content-length".into(), body.len().to_string().into());
    all.insert("x-forwarded-for".into(), "203.0.113.10".into());
    all.insert("x-forwarded-proto".into(), "https".into());
    for (name, value) in headers {
        all.insert(name.to_ascii_lowercase(), value.clone().into());
    }
    let user_agent = all
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or("test-sender/1.0")
        .to_owned();
    all.insert("user-agent".into(), user_agent.clone().into());
    json!({
        "version": "2.0",
        "routeKey": "POST /hooks/{route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": HOST, "domainPrefix": "abc123",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10",
                      "userAgent": user_agent },
            "requestId": request_id, "routeKey": "POST /hooks/{route}",
            "stage": "$default", "time": "25/Nov/2026:09:14:07 +0000", "timeEpoch": 1795598047000u64
        },
        "pathParameters": { "route": path.rsplit('/').next().unwrap_or_default() },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// The showcase mapping (`examples/showcase/mapping.yaml`), whose routes the sample events are for;
/// the embedded default is only a starter.
pub fn showcase_mapping() -> Result<dealhook::mapping::Mapping, dealhook::mapping::MappingLoadError> {
    dealhook::mapping::Mapping::from_yaml(
        include_str!("../../examples/showcase/mapping.yaml"),
        "examples/showcase/mapping.yaml",
    )
}

/// When the committed sample events were signed: 2026-11-25T09:14:07Z.
pub const SIGNED_AT: u64 = 1_795_598_047;

/// One provider: its sample event, endpoint, signing key (sample value) and the deal name its route makes.
pub struct Provider {
    pub name: &'static str,
    pub source: Source,
    pub path: &'static str,
    pub key_name: &'static str,
    pub key: &'static str,
    pub dealname: &'static str,
}

impl Provider {
    /// Whether the scheme signs a timestamp and so rejects a delivery replayed outside its window.
    pub fn timestamped(&self) -> bool {
        matches!(
            self.source,
            Source::Webflow | Source::Stripe | Source::StandardWebhooks | Source::HubSpot
        )
    }
}

pub const PROVIDERS: [Provider; 8] = [
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

/// A provider payload from `tests/fixtures/webhooks/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body a provider sends, with its content type.
pub fn body(p: &Provider, event_type: &str) -> (&'static str, Vec<u8>) {
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

/// The provider's sample signing key.
pub fn key(p: &Provider) -> SecretString {
    SecretString::from(p.key.to_owned())
}

/// A provider's signed delivery at `t` (seconds): query string, headers and body.
pub fn signed(p: &Provider, t: u64, event_type: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
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
pub fn event(p: &Provider, t: u64, event_type: &str, request_id: &str) -> Value {
    let (query, headers, body) = signed(p, t, event_type);
    lambda_v2_event("POST", p.path, &query, &headers, &body, request_id)
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The secret holding every sample signing key (and a placeholder token): `examples/showcase/sample-secret.json`.
pub fn sample_secret() -> Value {
    let signing: serde_json::Map<String, Value> = PROVIDERS
        .iter()
        .map(|p| (p.key_name.to_owned(), Value::from(p.key)))
        .collect();
    json!({ "hubspot": { "accessToken": "pat-na1-sample-not-a-real-token" }, "signing": signing })
}
