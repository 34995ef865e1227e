//! GitHub webhooks: the JSON body (or the `payload` of a form-encoded one) as `fields`, the id from
//! the signed body, the event type from the (unsigned) `X-GitHub-Event` header. Problems, never panics.

use std::borrow::Cow;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Normalised, Source, header, object, str_at, unexpected};
use crate::domain::Problem;
use crate::inbound::Delivery;

const SOURCE: Source = Source::GitHub;

/// A GitHub webhook delivery (<https://docs.github.com/en/webhooks/webhook-events-and-payloads>).
///
/// `fields` is the payload object as sent (`action`, `repository`, `sender`, …). A webhook set to
/// `application/x-www-form-urlencoded` sends the JSON in a `payload` form field: a form body must
/// be exactly that one field holding a JSON object (`raw` keeps the form), else the problem
/// `invalid_payload`; a JSON body is always taken as it is. So the same signed bytes resent under
/// the other content type are refused, never read as other fields (see [`Source::media_types`]).
///
/// GitHub signs the body only (`X-Hub-Signature-256`), not its `X-GitHub-*` headers:
/// - `id` is `sha256:<hex of the raw body>`, not `X-GitHub-Delivery`: anyone holding one signed
///   body could resend it under fresh delivery ids (a new deal each time, idempotency or not), or
///   take a genuine delivery's id first. A redelivery from GitHub carries the same body, so the
///   same id; two distinct events never share a body (each names its own objects and times).
/// - `event_type` is still the `X-GitHub-Event` header joined with the payload's `action` when it
///   has one (`issues.opened`, `push`): the event name is in no signed part. Whoever holds one
///   signed body can therefore present it under another event name, and so to another route of the
///   endpoint; with idempotency on, that is still the same delivery (one deal). A `match:` that
///   must not be fooled should test the payload too (`fields.pull_request is defined`).
///
/// GitHub sends no event time header: `submitted_at` is empty.
pub(super) fn normalise(decoded: &Value, delivery: &Delivery) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let is_form = delivery
        .content_type()
        .and_then(crate::inbound::decode::media_type_essence)
        .is_some_and(|essence| essence == "application/x-www-form-urlencoded");
    let payload: Cow<'_, Map<String, Value>> = if is_form {
        let parsed = match (body.len(), body.get("payload")) {
            (1, Some(Value::String(json))) => serde_json::from_str::<Value>(json).ok(),
            _ => None,
        };
        match parsed {
            Some(Value::Object(payload)) => Cow::Owned(payload),
            got => {
                let expected = "a form of one field, `payload`, holding a JSON object";
                let got = got.or_else(|| Some(decoded.clone()));
                return Err(vec![unexpected(
                    SOURCE,
                    "invalid_payload",
                    "body.payload",
                    expected,
                    got.as_ref(),
                )]);
            }
        }
    } else {
        Cow::Borrowed(body)
    };
    let event = header(delivery, "x-github-event");
    let event_type = match (event, str_at(&payload, "action").filter(|a| !a.is_empty())) {
        (Some(event), Some(action)) => Some(format!("{event}.{action}")),
        (event, _) => event.map(str::to_owned),
    };
    Ok(Normalised {
        id: Some(body_id(&delivery.body)),
        submitted_at: None,
        event_type,
        fields: payload.into_owned(),
    })
}

/// The id of a delivery by its signed body: `sha256:` and the body's SHA-256 in lowercase hex.
pub(super) fn body_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery, delivery_with};
    use super::*;
    use serde_json::json;

    const ISSUE_OPENED: &str = r#"{"action":"opened","issue":{"number":1347,"title":"Found a bug",
        "user":{"login":"octocat"}},"repository":{"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#;

    fn github_delivery(event: &str, content_type: &str, body: &[u8]) -> crate::inbound::Delivery {
        let mut d = delivery_with(&[
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-GitHub-Event", event),
            ("Content-Type", content_type),
        ]);
        d.body = bytes::Bytes::copy_from_slice(body);
        d
    }

    fn form_of(json: &str) -> String {
        format!(
            "payload={}",
            percent_encoding::utf8_percent_encode(json, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    async fn decode_form(body: &[u8]) -> Value {
        crate::inbound::decode(Some(FORM), body).await.unwrap()
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[tokio::test]
    async fn a_json_delivery_gives_its_body_an_id_from_the_body_and_the_header_event() {
        let body = decode_json(ISSUE_OPENED.as_bytes()).await;
        let d = github_delivery("issues", "application/json", ISSUE_OPENED.as_bytes());
        let sub = normalise_source(SOURCE, body.clone(), &d).unwrap();
        assert_eq!(Some(&*sub.fields), body.as_object());
        assert_eq!(sub.fields["issue"]["title"], "Found a bug");
        let digest = hex::encode(Sha256::digest(ISSUE_OPENED.as_bytes()));
        assert_eq!(sub.id, Some(format!("sha256:{digest}")));
        assert_eq!(sub.event_type.as_deref(), Some("issues.opened"));
        assert_eq!(sub.submitted_at, None);
    }

    /// The issue's failing input: one signed body resent under fresh `X-GitHub-Delivery` ids was a
    /// new deal each time. The header is not signed, so it no longer decides the id.
    #[tokio::test]
    async fn the_unsigned_delivery_header_does_not_change_the_id() {
        let body = decode_json(ISSUE_OPENED.as_bytes()).await;
        let genuine = github_delivery("issues", "application/json", ISSUE_OPENED.as_bytes());
        let mut resent = genuine.clone();
        resent
            .headers
            .insert("x-github-delivery", http::HeaderValue::from_static("fresh-id-1"));
        let mut without = genuine.clone();
        without.headers.remove("x-github-delivery");
        let id = |d| normalise_source(SOURCE, body.clone(), d).unwrap().id;
        assert_eq!(id(&genuine), id(&resent));
        assert_eq!(id(&genuine), id(&without));
        let mut other_body = genuine.clone();
        other_body.body = bytes::Bytes::from_static(b"{\"action\":\"closed\"}");
        assert_ne!(id(&genuine), id(&other_body), "another body is another delivery");
    }

    #[tokio::test]
    async fn a_form_encoded_delivery_is_read_from_its_payload_field() {
        let form = form_of(r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#);
        let body = decode_form(form.as_bytes()).await;
        let sub = normalise_source(SOURCE, body.clone(), &github_delivery("push", FORM, form.as_bytes())).unwrap();
        assert_eq!(sub.fields["ref"], "refs/heads/main");
        assert_eq!(sub.event_type.as_deref(), Some("push"), "no action: the event alone");
        assert_eq!(*sub.raw, body, "raw keeps the form");
        let digest = hex::encode(Sha256::digest(form.as_bytes()));
        assert_eq!(sub.id, Some(format!("sha256:{digest}")));
    }

    /// The issue's failing input: the same signed JSON bytes resent as
    /// `application/x-www-form-urlencoded` made a different deal. They are now refused.
    #[tokio::test]
    async fn signed_json_bytes_resent_as_a_form_are_refused() {
        let bodies = [
            ISSUE_OPENED,
            r#"{"action":"created","comment":{"body":"a=b&c=d"}}"#,
            r#"{"payload":"{}"}"#,
        ];
        for json in bodies {
            let as_form = decode_form(json.as_bytes()).await;
            let problems =
                normalise_source(SOURCE, as_form, &github_delivery("issues", FORM, json.as_bytes())).expect_err(json);
            assert_eq!(codes(&problems), ["invalid_payload"], "{json}");
        }
    }

    /// And the other way round: a signed `payload=` form is not JSON, so decode refuses it as JSON.
    #[tokio::test]
    async fn a_signed_form_resent_as_json_is_not_json() {
        let form = form_of(ISSUE_OPENED);
        let err = crate::inbound::decode(Some("application/json"), form.as_bytes())
            .await
            .expect_err("a payload= form is not JSON");
        assert_eq!(codes(&err.problems()), ["invalid_json"]);
    }

    #[tokio::test]
    async fn form_bodies_other_than_one_payload_field_holding_an_object_are_problems() {
        let cases = [
            ("payload not json", "payload=not+json"),
            ("payload a json list", "payload=%5B1%5D"),
            ("payload and another field", "payload=%7B%7D&a=1"),
            ("no payload", "a=1"),
            ("two payloads", "payload=%7B%7D&payload=%7B%7D"),
            ("empty", ""),
        ];
        for (row, form) in cases {
            let body = decode_form(form.as_bytes()).await;
            let problems =
                normalise_source(SOURCE, body, &github_delivery("push", FORM, form.as_bytes())).expect_err(row);
            assert_eq!(codes(&problems), ["invalid_payload"], "{row}");
        }
    }

    #[test]
    fn without_headers_the_event_type_is_empty_and_json_bodies_are_taken_as_they_are() {
        let got = normalise(&json!({"action": "opened"}), &delivery()).expect("normalises");
        assert_eq!(got.event_type, None);
        assert_eq!(got.id, Some(body_id(b"")), "the id is the body's, headers or not");
        let problems = normalise_source(SOURCE, json!([]), &delivery()).expect_err("an array");
        assert_eq!(codes(&problems), ["not_an_object"]);
        // A JSON body is the payload, even one whose only key is `payload`.
        let got = normalise(&json!({"payload": "{\"a\":1}"}), &delivery()).expect("normalises");
        assert_eq!(got.fields["payload"], "{\"a\":1}");
    }
}
