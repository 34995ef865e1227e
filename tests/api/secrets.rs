//! Secrets and trust end to end, on moto and a mock HubSpot: a signing key rotated in Secrets
//! Manager is picked up at once (and a flood of bad signatures cannot force re-reads), no dead
//! letter in SQS holds a secret value, and only signed material decides what a delivery is.

use base64::Engine as _;
use dealhook::aws::SecretSource as _;
use dealhook::inbound::Source;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{LogCapture, Options, TestApp, spawn_app_with};
use crate::moto;
use crate::sample_events::{PROVIDERS, Provider, event, now, sample_secret};

fn provider(source: Source) -> Provider {
    PROVIDERS.into_iter().find(|p| p.source == source).unwrap()
}

async fn app(secret: &Value, idempotency: bool) -> TestApp {
    spawn_app_with(Options {
        secret: secret.to_string(),
        idempotency,
        ..Options::default()
    })
    .await
}

async fn hubspot_creates(t: &TestApp, times: u64) {
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"dealId": 77})))
        .expect(times)
        .mount(&t.hubspot)
        .await;
}

/// A Typeform delivery signed with `key`.
fn typeform_signed_with(key: &'static str) -> String {
    let p = Provider {
        key,
        ..provider(Source::Typeform)
    };
    event(&p, now(), "", "req").to_string()
}

#[tokio::test]
async fn a_signing_key_rotated_in_secrets_manager_is_picked_up_by_the_next_delivery() {
    let t = app(&sample_secret(), false).await;
    hubspot_creates(&t, 1).await;
    t.secrets.credentials().await.unwrap(); // the cache now holds the old key, for five minutes
    let mut rotated = sample_secret();
    rotated["signing"]["typeform"] = "typeform-key-rotated-1".into();
    moto::put_secret(&t.sdk, &t.secret_id, &rotated.to_string()).await;

    let response = t.invoke(&typeform_signed_with("typeform-key-rotated-1")).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["status"], "created");
}

#[tokio::test]
async fn a_flood_of_bad_signatures_does_not_force_re_reads_of_the_secret() {
    let t = app(&sample_secret(), false).await;
    hubspot_creates(&t, 0).await;
    for _ in 0..10 {
        let response = t.invoke(&typeform_signed_with("forged-key-0000")).await;
        assert_eq!(response.status, 401, "{}", response.text);
        assert_eq!(response.json["error"]["code"], "invalid_signature");
    }
    // The first forgery spent the re-read: a rotation now waits for the next window (or the TTL).
    let mut rotated = sample_secret();
    rotated["signing"]["typeform"] = "typeform-key-rotated-2".into();
    moto::put_secret(&t.sdk, &t.secret_id, &rotated.to_string()).await;
    let response = t.invoke(&typeform_signed_with("typeform-key-rotated-2")).await;
    assert_eq!(
        response.status,
        401,
        "no re-read within {:?}",
        dealhook::aws::REREAD_INTERVAL
    );
    assert!(t.dead_letters().await.is_empty(), "nothing unauthenticated is stored");
}

/// The failing input: Jotform posts the webhook URL it was given, `?token=<key>` included,
/// in the body (`webhookURL`): every Jotform dead letter held the signing key in clear.
#[tokio::test]
async fn a_jotform_dead_letter_in_sqs_holds_no_signing_key() {
    let jotform = provider(Source::Jotform);
    let t = app(&sample_secret(), false).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": "bad property"})))
        .mount(&t.hubspot)
        .await;
    let mut event = event(&jotform, now(), "", "req");
    let body = base64::engine::general_purpose::STANDARD
        .decode(event["body"].as_str().unwrap())
        .unwrap();
    let url = format!(
        "https://abc123.execute-api.us-east-1.amazonaws.com/hooks/jotform?token={}",
        jotform.key
    );
    let body = String::from_utf8(body)
        .unwrap()
        .replace(
            "https://3a95-27-5-198-172.ngrok-free.app/api/v1/external/jotform?api_key=DhXGrkyy2bK2SXMQMXwhs95H4kVVwv2w",
            &url,
        )
        .into_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(jotform.key),
        "the fixture carries the URL"
    );
    event["body"] = base64::engine::general_purpose::STANDARD.encode(&body).into();
    // `tok%65n` is `token` once decoded: it authenticates, and must be redacted as such.
    event["rawQueryString"] = format!("tok%65n={}", jotform.key).into();
    let logs = LogCapture::start();

    let response = t.invoke(&event.to_string()).await;

    assert_eq!(response.status, 202, "{}", response.text);
    let texts = t.dead_letter_texts().await;
    assert_eq!(texts.len(), 1);
    assert!(
        !texts[0].contains(jotform.key),
        "the queue message holds the key: {}",
        texts[0]
    );
    let letter: dealhook::dead_letter::DeadLetter = serde_json::from_str(&texts[0]).unwrap();
    let stored = String::from_utf8(letter.body().unwrap()).unwrap();
    assert!(!stored.contains(jotform.key), "{stored}");
    assert!(stored.contains("/hooks/jotform?token=[redacted]"), "{stored}");
    assert!(letter.delivery.body_redacted);
    assert_eq!(letter.delivery.query.as_deref(), Some("tok%65n=[redacted]"));
    assert!(!response.text.contains(jotform.key));
    assert!(!logs.text().contains(jotform.key), "a log line holds the key");
}

/// The failing input: the same signed JSON bytes resent as a form made another deal.
#[tokio::test]
async fn signed_json_resent_under_another_content_type_is_refused_with_415() {
    let t = app(&sample_secret(), false).await;
    hubspot_creates(&t, 0).await;
    for (name, content_type) in [
        ("typeform", "application/x-www-form-urlencoded"),
        ("typeform", "text/plain"),
        ("stripe", "multipart/form-data; boundary=x"),
    ] {
        let p = PROVIDERS.into_iter().find(|p| p.name == name).unwrap();
        let mut event = event(&p, now(), "checkout.session.completed", "req");
        event["headers"]["content-type"] = content_type.into();
        let response = t.invoke(&event.to_string()).await;
        assert_eq!(response.status, 415, "{name} as {content_type}: {}", response.text);
        assert_eq!(response.json["error"]["code"], "unsupported_media_type");
        assert!(
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{}",
            response.text
        );
    }
    assert!(t.dead_letters().await.is_empty());
}

/// The failing input: one signed GitHub body resent under fresh `X-GitHub-Delivery` ids
/// made a new deal each time, idempotency on. The header is not signed; the body is.
#[tokio::test]
async fn a_signed_github_body_resent_under_fresh_delivery_ids_makes_one_deal() {
    let github = provider(Source::GitHub);
    let t = app(&sample_secret(), true).await;
    hubspot_creates(&t, 1).await;
    let mut statuses = Vec::new();
    for (i, delivery_id) in ["72d3162e-cc78-11e3-81ab-4c9367dc0958", "fresh-1", "fresh-2"]
        .into_iter()
        .enumerate()
    {
        let mut event = event(&github, now(), "", &format!("req-{i}"));
        event["headers"]["x-github-delivery"] = delivery_id.into();
        let response = t.invoke(&event.to_string()).await;
        assert_eq!(response.status, 200, "{delivery_id}: {}", response.text);
        statuses.push(response.headers.contains_key("x-dealhook-idempotent-replay"));
    }
    assert_eq!(statuses, [false, true, true], "the repeats are answered as the first");
}

/// `check` names (never shows) a value too short to be scrubbed by value, and warns when two
/// endpoints share a key under a scheme that does not sign the URL. Both are warnings: exit 0.
#[test]
fn check_warns_about_short_values_and_keys_shared_between_endpoints() {
    let dir = std::env::temp_dir().join(format!("dealhook-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret.json");
    let mut sample = sample_secret();
    sample["signing"]["typeform"] = "tiny-k".into();
    std::fs::write(&secret, sample.to_string()).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(
        &mapping,
        "version: 1\nroutes:\n\
         \x20 form-a:\n    source: typeform\n    signing_secret: typeform\n    deal: { pipeline: default, dealstage: s }\n\
         \x20 form-b:\n    source: typeform\n    signing_secret: typeform\n    deal: { pipeline: default, dealstage: s }\n",
    )
    .unwrap();

    let output = crate::cli::dealhook(
        &["check", mapping.to_str().unwrap(), "--secret", secret.to_str().unwrap()],
        &[],
    );

    let err = crate::cli::stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("signing.typeform is shorter than 8 characters"), "{err}");
    assert!(!err.contains("tiny-k"), "the value itself is never shown: {err}");
    assert!(
        err.contains("/hooks/form-b shares the signing key \"typeform\" with /hooks/form-a"),
        "{err}"
    );
}

#[tokio::test]
async fn a_dead_letter_from_an_unsigned_route_holds_no_secret_value_even_before_the_secret_was_read() {
    // A token no other test has shown the process, so that only this app's secret read can teach it.
    let token = format!("pat-na1-{}", uuid::Uuid::new_v4());
    let mut secret = sample_secret();
    secret["hubspot"]["accessToken"] = token.clone().into();
    let t = app(&secret, false).await;
    hubspot_creates(&t, 0).await;
    // An unsigned route (no signature check reads the secret), a mapping error (amount), and the
    // token both in the body and in the query.
    let body = serde_json::json!({ "name": "Ada", "email": "ada@example.com", "budget": "lots",
                                   "note": format!("my token is {token}") });
    let mut event: Value = serde_json::from_str(&crate::helpers::v2_event(
        "POST",
        "/hooks/website-quote",
        Some("application/json"),
        body.to_string().as_bytes(),
    ))
    .unwrap();
    event["rawQueryString"] = format!("utm_source=x&note={token}").into();

    let response = t.invoke(&event.to_string()).await;

    assert_eq!(response.status, 202, "{}", response.text);
    let letters = t.dead_letter_texts().await;
    assert_eq!(letters.len(), 1);
    assert!(!letters[0].contains(&token), "{}", letters[0]);
    let letter: Value = serde_json::from_str(&letters[0]).unwrap();
    let body = base64::engine::general_purpose::STANDARD
        .decode(letter["delivery"]["bodyBase64"].as_str().unwrap())
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains(&token));
    assert_eq!(letter["delivery"]["bodyRedacted"], true);
    assert_eq!(letter["delivery"]["query"], "utm_source=x&note=[redacted]");
}
