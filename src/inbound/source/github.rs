//! GitHub webhooks: the JSON body (or the `payload` of a form-encoded one) as `fields`, the id and
//! event type from the `X-GitHub-*` headers. Problems, never panics.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Normalised, Source, header, object, str_at, unexpected};
use crate::domain::Problem;
use crate::inbound::Delivery;

const SOURCE: Source = Source::GitHub;

/// A GitHub webhook delivery (<https://docs.github.com/en/webhooks/webhook-events-and-payloads>).
///
/// `fields` is the payload object as sent (`action`, `repository`, `sender`, …). A webhook set
/// to `application/x-www-form-urlencoded` sends the JSON in a `payload` form field: it is parsed
/// (`raw` keeps the form); a `payload` that is not a JSON object is the problem `invalid_payload`.
///
/// `id` is the `X-GitHub-Delivery` header: a redelivery carries the same value
/// (<https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks>).
/// `event_type` is the `X-GitHub-Event` header joined with the payload's `action` when it has
/// one (`issues.opened`, `push`), in the `noun.verb` style of the other providers; the action
/// alone stays in `fields.action`. GitHub sends no event time header: `submitted_at` is empty.
pub(super) fn normalise(decoded: &Value, delivery: &Delivery) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let payload: Cow<'_, Map<String, Value>> = match (body.len(), body.get("payload")) {
        (1, Some(Value::String(json))) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(payload)) => Cow::Owned(payload),
            parsed => {
                let got = parsed.ok();
                let expected = "the form field `payload` to hold a JSON object";
                return Err(vec![unexpected(
                    SOURCE,
                    "invalid_payload",
                    "body.payload",
                    expected,
                    got.as_ref(),
                )]);
            }
        },
        _ => Cow::Borrowed(body),
    };
    let event = header(delivery, "x-github-event");
    let event_type = match (event, str_at(&payload, "action").filter(|a| !a.is_empty())) {
        (Some(event), Some(action)) => Some(format!("{event}.{action}")),
        (event, _) => event.map(str::to_owned),
    };
    Ok(Normalised {
        id: header(delivery, "x-github-delivery").map(str::to_owned),
        submitted_at: None,
        event_type,
        fields: payload.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery, delivery_with};
    use super::*;
    use serde_json::json;

    const ISSUE_OPENED: &str = r#"{"action":"opened","issue":{"number":1347,"title":"Found a bug",
        "user":{"login":"octocat"}},"repository":{"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#;

    fn github_delivery(event: &str) -> crate::inbound::Delivery {
        delivery_with(&[
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-GitHub-Event", event),
        ])
    }

    #[tokio::test]
    async fn a_json_delivery_gives_its_body_and_the_header_id_and_event() {
        let body = decode_json(ISSUE_OPENED.as_bytes()).await;
        let sub = normalise_source(SOURCE, body.clone(), &github_delivery("issues")).unwrap();
        assert_eq!(Some(&sub.fields), body.as_object());
        assert_eq!(sub.fields["issue"]["title"], "Found a bug");
        assert_eq!(sub.id.as_deref(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert_eq!(sub.event_type.as_deref(), Some("issues.opened"));
        assert_eq!(sub.submitted_at, None);
    }

    #[tokio::test]
    async fn a_form_encoded_delivery_is_read_from_its_payload_field() {
        let form = format!(
            "payload={}",
            percent_encoding::utf8_percent_encode(
                r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#,
                percent_encoding::NON_ALPHANUMERIC,
            )
        );
        let body = crate::inbound::decode(Some("application/x-www-form-urlencoded"), form.as_bytes())
            .await
            .unwrap();
        let sub = normalise_source(SOURCE, body.clone(), &github_delivery("push")).unwrap();
        assert_eq!(sub.fields["ref"], "refs/heads/main");
        assert_eq!(sub.event_type.as_deref(), Some("push"), "no action: the event alone");
        assert_eq!(sub.raw, body, "raw keeps the form");
    }

    #[test]
    fn without_headers_id_and_event_type_are_empty_and_bad_payloads_are_problems() {
        let got = normalise(&json!({"action": "opened"}), &delivery()).expect("normalises");
        assert_eq!((got.id, got.event_type), (None, None));
        let cases = [
            ("payload not json", json!({"payload": "not json"}), "invalid_payload"),
            ("payload a json list", json!({"payload": "[1]"}), "invalid_payload"),
            ("an array", json!([]), "not_an_object"),
        ];
        for (row, body, code) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            assert_eq!(codes(&problems), [code], "{row}");
        }
        // A JSON body that merely has a `payload` key among others is taken as it is.
        let got = normalise(&json!({"payload": "x", "action": "created"}), &delivery()).expect("normalises");
        assert_eq!(got.fields["payload"], "x");
    }
}
