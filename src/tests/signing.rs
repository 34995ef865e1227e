//! The pipeline's trust checks with in-memory fakes: the content types each provider sends (415),
//! a rotated signing key picked up by a rate-limited re-read, and secrets scrubbed from dead letters.

use http::StatusCode;
use secrecy::SecretString;

use super::*;
use crate::inbound::verify;

const OLD: &str = "typeform-key-old-0001";
const NEW: &str = "typeform-key-new-0002";
/// Jotform's token, with characters that get percent-encoded in a URL and escaped in JSON.
const JOTFORM_TOKEN: &str = "jot/Token+unit 2026";

const TYPEFORM_BODY: &str = r#"{"event_id":"e1","event_type":"form_response","form_response":{"form_id":"abc","token":"tok-1","submitted_at":"2026-01-01T00:00:00Z","answers":[]}}"#;

/// A secret with a HubSpot token, the Jotform token and (when given) a Typeform key.
fn secret(typeform: Option<&str>) -> Credentials {
    let mut signing = json!({ "jotform": JOTFORM_TOKEN });
    if let Some(key) = typeform {
        signing["typeform"] = json!(key);
    }
    Credentials::parse(&json!({"hubspot": {"accessToken": "pat-unit-token-0001"}, "signing": signing}).to_string())
        .unwrap()
}

/// A Typeform delivery to /hooks/typeform signed with `key`.
fn typeform_signed_with(key: &str) -> Delivery {
    let mut d = delivery(Method::POST, "/hooks/typeform", TYPEFORM_BODY);
    let signature = verify::typeform::sign(&SecretString::from(key.to_owned()), TYPEFORM_BODY.as_bytes()).unwrap();
    d.headers
        .insert("typeform-signature", HeaderValue::from_str(&signature).unwrap());
    d
}

fn status(outcome: &Outcome) -> StatusCode {
    outcome.status()
}

#[tokio::test(start_paused = true)]
async fn a_rotated_signing_key_is_picked_up_by_the_first_delivery_signed_with_it() {
    let f = fakes_with(false, secret(Some(OLD)));
    f.secrets.set(secret(Some(NEW))); // rotated in the store; the cache still serves OLD

    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;

    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(f.secrets.refreshes(), 1, "one re-read");
    // The cache now holds the new key: the next delivery needs no re-read.
    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(f.secrets.refreshes(), 1);
    assert_eq!(f.deals.created().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_bad_signatures_re_reads_the_secret_once_per_interval_and_stores_nothing() {
    let f = fakes_with(false, secret(Some(OLD)));
    for _ in 0..20 {
        let outcome = f.app.handle(&typeform_signed_with("forged-key-000000")).await;
        assert_eq!(status(&outcome), StatusCode::UNAUTHORIZED, "{outcome:?}");
        assert!(matches!(outcome, Outcome::Rejected(ref r) if r.code == "invalid_signature"));
    }
    assert_eq!(
        f.secrets.refreshes(),
        1,
        "a re-read that found the same key answers 401 as before"
    );
    tokio::time::advance(crate::aws::REREAD_INTERVAL).await;
    let outcome = f.app.handle(&typeform_signed_with("forged-key-000000")).await;
    assert_eq!(status(&outcome), StatusCode::UNAUTHORIZED);
    assert_eq!(f.secrets.refreshes(), 2, "one more after the interval");
    assert!(f.letters.sent().is_empty() && f.deals.created().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rotation_inside_the_interval_waits_for_the_next_one() {
    let f = fakes_with(false, secret(Some(OLD)));
    let outcome = f.app.handle(&typeform_signed_with("forged-key-000000")).await;
    assert_eq!(status(&outcome), StatusCode::UNAUTHORIZED);
    f.secrets.set(secret(Some(NEW)));
    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;
    assert_eq!(
        status(&outcome),
        StatusCode::UNAUTHORIZED,
        "the re-read was spent on the forgery"
    );
    tokio::time::advance(crate::aws::REREAD_INTERVAL).await;
    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn a_signing_key_added_to_the_secret_is_picked_up_without_waiting_for_the_ttl() {
    let f = fakes_with(false, secret(None));
    f.secrets.set(secret(Some(NEW)));
    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(f.secrets.refreshes(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_still_missing_after_the_re_read_asks_the_sender_to_retry() {
    let f = fakes_with(false, secret(None));
    let outcome = f.app.handle(&typeform_signed_with(NEW)).await;
    assert!(
        matches!(
            outcome,
            Outcome::RetryLater {
                code: "signing_key_missing",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(f.secrets.refreshes(), 1);
}

#[tokio::test(start_paused = true)]
async fn signature_problems_a_new_key_cannot_fix_do_not_re_read() {
    let f = fakes_with(false, secret(Some(OLD)));
    let mut unsigned = typeform_signed_with(OLD);
    unsigned.headers.remove("typeform-signature");
    let mut malformed = typeform_signed_with(OLD);
    malformed
        .headers
        .insert("typeform-signature", HeaderValue::from_static("md5=abc"));
    for (row, d, code) in [
        ("no signature", unsigned, "missing_signature"),
        ("malformed", malformed, "malformed_signature"),
    ] {
        let outcome = f.app.handle(&d).await;
        assert!(
            matches!(outcome, Outcome::Rejected(ref r) if r.code == code),
            "{row}: {outcome:?}"
        );
    }
    assert_eq!(f.secrets.refreshes(), 0);
}

/// What each provider route accepts. The signature does not cover the Content-Type header, so a
/// provider route takes only what its provider sends: the same signed bytes as another type
/// would be read as other fields.
#[tokio::test]
async fn provider_routes_accept_only_the_content_types_their_provider_sends() {
    let f = fakes_with(false, secret(Some(OLD)));
    let cases: [(&str, &str, Option<&str>, Option<&str>); 10] = [
        // (row, endpoint, content type, the 415 message must name this; None = not a 415)
        (
            "typeform, urlencoded",
            "typeform",
            Some("application/x-www-form-urlencoded"),
            Some("application/json"),
        ),
        (
            "typeform, multipart",
            "typeform",
            Some("multipart/form-data; boundary=x"),
            Some("application/json"),
        ),
        (
            "typeform, text/plain",
            "typeform",
            Some("text/plain"),
            Some("application/json"),
        ),
        (
            "typeform, a +json type",
            "typeform",
            Some("application/vnd.api+json"),
            Some("application/json"),
        ),
        ("typeform, none", "typeform", None, Some("no Content-Type")),
        (
            "typeform, JSON with charset and odd case",
            "typeform",
            Some("Application/JSON; charset=UTF-8"),
            None,
        ),
        (
            "jotform, JSON",
            "jotform",
            Some("application/json"),
            Some("multipart/form-data"),
        ),
        (
            "stripe, urlencoded",
            "stripe",
            Some("application/x-www-form-urlencoded"),
            Some("application/json"),
        ),
        (
            "github, urlencoded (a payload= form)",
            "github",
            Some("application/x-www-form-urlencoded"),
            None,
        ),
        (
            "json route, urlencoded (today's behaviour)",
            "website-quote",
            Some("application/x-www-form-urlencoded"),
            None,
        ),
    ];
    for (row, endpoint, content_type, named) in cases {
        let mut d = typeform_signed_with(OLD);
        d.path = format!("/hooks/{endpoint}");
        d.headers.remove("content-type");
        if let Some(ct) = content_type {
            d.headers.insert("content-type", HeaderValue::from_str(ct).unwrap());
        }
        let outcome = f.app.handle(&d).await;
        match named {
            Some(named) => {
                let Outcome::Rejected(r) = &outcome else {
                    panic!("{row}: expected a 415, got {outcome:?}")
                };
                assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{row}");
                assert_eq!(r.code, "unsupported_media_type", "{row}");
                assert!(r.message.contains(named), "{row}: {}", r.message);
            }
            None => assert_ne!(
                status(&outcome),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{row}: {outcome:?}"
            ),
        }
    }
    assert!(f.letters.sent().is_empty(), "a 415 stores nothing");
}

/// The issue's failing input, through the pipeline: a Jotform delivery whose body quotes the
/// webhook URL with `?token=<signing key>` is dead-lettered without the key anywhere.
#[tokio::test]
async fn a_jotform_dead_letter_holds_no_signing_key_anywhere() {
    let f = fakes_with(false, secret(None));
    let raw = r#"{"status":"error","message":"Property values were not valid"}"#;
    f.deals.push_result(Err(HubSpotError::Rejected {
        status: 400,
        body: serde_json::from_str(raw).unwrap(),
        raw: raw.into(),
    }));
    let token = percent_encoding::utf8_percent_encode(JOTFORM_TOKEN, percent_encoding::NON_ALPHANUMERIC).to_string();
    let url = format!("https://hooks.example.com/hooks/jotform?token={token}");
    let raw_request = json!({"slug": "submit/1", "q3_name": "Ada", "webhookURL": url})
        .to_string()
        .replace('/', "\\/");
    let body = format!(
        "--xx\r\nContent-Disposition: form-data; name=\"formID\"\r\n\r\n1\r\n\
         --xx\r\nContent-Disposition: form-data; name=\"submissionID\"\r\n\r\n2\r\n\
         --xx\r\nContent-Disposition: form-data; name=\"webhookURL\"\r\n\r\n{url}\r\n\
         --xx\r\nContent-Disposition: form-data; name=\"rawRequest\"\r\n\r\n{raw_request}\r\n--xx--\r\n"
    );
    let mut d = delivery(Method::POST, "/hooks/jotform", &body);
    d.headers.insert(
        "content-type",
        HeaderValue::from_static("multipart/form-data; boundary=xx"),
    );
    d.query = Some(format!("tok%65n={token}"));

    let outcome = f.app.handle(&d).await;

    assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{outcome:?}");
    let letter = f.letters.sent().pop().unwrap();
    let envelope = serde_json::to_string(&letter).unwrap();
    let stored = String::from_utf8(letter.body().unwrap()).unwrap();
    for (what, text) in [("envelope", &envelope), ("body", &stored)] {
        assert!(!text.contains("Token"), "{what} holds the token: {text}");
    }
    assert!(letter.delivery.body_redacted);
    assert_eq!(stored.matches("token=[redacted]").count(), 2, "{stored}");
    assert_eq!(letter.delivery.query.as_deref(), Some("tok%65n=[redacted]"));
}
