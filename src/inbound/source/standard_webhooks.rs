//! Standard Webhooks senders (Svix and others): the JSON body as `fields`, the id and timestamp
//! from the `webhook-*` (or `svix-*`) headers. Never panics on a body.

use serde_json::Value;

use super::{Normalised, Source, epoch_seconds, header, insert_new, object, str_at};
use crate::domain::Problem;
use crate::inbound::Delivery;

const SOURCE: Source = Source::StandardWebhooks;

/// A Standard Webhooks delivery
/// (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).
///
/// `fields` is the body object as sent. When the body is an event in the spec's recommended
/// shape, `{"type": "…", "timestamp": "…", "data": {…}}` (as Svix sends), the keys of `data` are
/// also filed at top level unless the body already has that name (`type`, `timestamp` and
/// `data` itself stay the envelope's): `{{ fields.email }}` reads `data.email`.
///
/// `id` is the `webhook-id` header (`svix-id` for Svix's own names, only when there is no
/// `webhook-id` at all): the spec keeps it the same when a message is retried, and the signature
/// covers it. `submitted_at` is the `webhook-timestamp` (`svix-timestamp`)
/// header, epoch seconds; note it is the time of this attempt, not of the event. `event_type`
/// is the body's `type` when it is a string. A body that is not an object is `not_an_object`.
pub(super) fn normalise(decoded: &Value, delivery: &Delivery) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let mut fields = body.clone();
    if let (Some(Value::String(_)), Some(Value::Object(data))) = (body.get("type"), body.get("data")) {
        for (name, value) in data {
            insert_new(&mut fields, name, value);
        }
    }
    let timestamp = signed_header(delivery, "webhook-timestamp", "svix-timestamp");
    Ok(Normalised {
        fields,
        id: signed_header(delivery, "webhook-id", "svix-id").map(str::to_owned),
        submitted_at: epoch_seconds(timestamp.map(|t| Value::String(t.to_owned())).as_ref()),
        event_type: str_at(body, "type").map(str::to_owned),
    })
}

/// The header the signature covered: `name` whenever it is present (even blank), else `svix`, as
/// the scheme picks it (`verify::standard_webhooks`). Falling back on a blank `webhook-id` would
/// take an id the signature never saw.
fn signed_header<'a>(delivery: &'a Delivery, name: &str, svix: &str) -> Option<&'a str> {
    if delivery.headers.contains_key(name) {
        header(delivery, name)
    } else {
        header(delivery, svix)
    }
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery, delivery_with};
    use super::*;
    use serde_json::json;

    /// The body of the spec's published signature vector, with that vector's headers.
    const VECTOR_BODY: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/standard-webhooks-vector.body");

    #[tokio::test]
    async fn the_published_vector_body_with_its_headers_normalises() {
        let body = decode_json(VECTOR_BODY).await;
        let headers = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ];
        let sub = normalise_source(SOURCE, body.clone(), &delivery_with(&headers)).unwrap();
        assert_eq!(Value::Object((*sub.fields).clone()), json!({"test": 2432232314_u64}));
        assert_eq!(sub.id.as_deref(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2021-02-25T15:02:10.000Z"));
        assert_eq!(sub.event_type, None, "no type in the body");
        assert_eq!(*sub.raw, body);
    }

    #[test]
    fn an_event_envelope_surfaces_its_data_and_svix_headers_are_read() {
        let body = json!({"type": "invoice.paid", "timestamp": "2022-11-03T20:26:10.344522Z",
                          "data": {"email": "ada@example.com", "type": "not the event type", "amount": 12}});
        let headers = [("svix-id", "msg_2"), ("svix-timestamp", "1667507170")];
        let got = normalise(&body, &delivery_with(&headers)).expect("normalises");
        let f = &got.fields;
        assert_eq!(f["email"], "ada@example.com");
        assert_eq!(f["amount"], 12);
        assert_eq!(f["type"], "invoice.paid", "the envelope's type wins");
        assert_eq!(f["data"]["type"], "not the event type");
        assert_eq!(got.id.as_deref(), Some("msg_2"));
        assert_eq!(got.submitted_at.as_deref(), Some("2022-11-03T20:26:10.000Z"));
        assert_eq!(got.event_type.as_deref(), Some("invoice.paid"));
    }

    #[test]
    fn missing_or_unreadable_headers_leave_id_and_time_empty() {
        let headers = [("webhook-id", "  "), ("webhook-timestamp", "soon")];
        let got = normalise(&json!({"data": {"a": 1}}), &delivery_with(&headers)).expect("normalises");
        assert_eq!((got.id, got.submitted_at), (None, None));
        assert_eq!(
            Value::Object(got.fields),
            json!({"data": {"a": 1}}),
            "no type: data is not surfaced"
        );
        let problems = normalise_source(SOURCE, json!([1]), &delivery()).expect_err("an array");
        assert_eq!(codes(&problems), ["not_an_object"]);
    }
}
