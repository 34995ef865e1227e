//! HubSpot webhooks (app subscriptions): a JSON array of up to 100 events, made ONE Submission
//! (so one deal) per delivery. Problems, never panics, for other bodies.

use serde_json::{Map, Value};

use super::{Normalised, Source, describe, epoch_millis, id_text, str_at};
use crate::domain::Problem;

const SOURCE: Source = Source::HubSpot;
/// The body is not a non-empty array of events.
const NOT_A_BATCH: &str = "not_a_hubspot_batch";
/// One element of the batch is not an event object.
const INVALID_EVENT: &str = "invalid_event";

/// A HubSpot Webhooks API delivery (<https://developers.hubspot.com/docs/api/webhooks>): a JSON
/// array of events, each `{eventId, subscriptionId, portalId, appId, occurredAt,
/// subscriptionType, attemptNumber, objectId, changeSource, propertyName, propertyValue, …}`.
///
/// One delivery maps to ONE deal: the whole batch is one Submission. `fields` are the FIRST
/// event's keys as sent (`{{ fields.objectId }}`, `{{ fields.propertyValue }}`), plus `events`
/// (the whole array, for templates that loop or count) and `event_count`; those two names are
/// reserved. Every event is also in `raw`. To get one deal per event, give the route
/// `for_each: fields.events` (each event is then `item`).
///
/// `id` is `{portalId}:{subscriptionId}:{eventId}` of the first event: HubSpot documents
/// `eventId` as "not guaranteed to be unique", so the account and subscription qualify it (an
/// absent part is left blank; no `eventId`, no id). `attemptNumber` changes between retries and
/// is left out. A retry that HubSpot batches differently starts with another event and so has
/// another id. `event_type` is the first event's `subscriptionType`; `submitted_at` its
/// `occurredAt` (epoch milliseconds).
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let events = match decoded {
        Value::Array(events) if !events.is_empty() => events,
        other => {
            let got = match other {
                Value::Array(_) => "an empty array",
                other => describe(other),
            };
            let message = format!(
                "the {SOURCE} source expects a JSON array of one or more HubSpot events as the body, got {got}"
            );
            return Err(vec![Problem::at("body", NOT_A_BATCH, message)]);
        }
    };
    let problems: Vec<Problem> = events
        .iter()
        .enumerate()
        .filter(|(_, event)| !event.is_object())
        .map(|(i, event)| {
            let message = format!(
                "the {SOURCE} source expects an event object at body[{i}], got {}",
                describe(event)
            );
            Problem::at(format!("body[{i}]"), INVALID_EVENT, message)
        })
        .collect();
    let first = match events.first().and_then(Value::as_object) {
        Some(first) if problems.is_empty() => first,
        _ => return Err(problems),
    };

    let mut fields: Map<String, Value> = first.clone();
    fields.insert("events".into(), decoded.clone());
    fields.insert("event_count".into(), Value::from(events.len()));
    let part = |key: &str| id_text(first.get(key)).unwrap_or_default();
    let id =
        id_text(first.get("eventId")).map(|event| format!("{}:{}:{event}", part("portalId"), part("subscriptionId")));
    Ok(Normalised {
        fields,
        id,
        submitted_at: epoch_millis(first.get("occurredAt")),
        event_type: str_at(first, "subscriptionType").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery};
    use super::*;
    use serde_json::json;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/hubspot-webhook-contact.creation.json");

    #[tokio::test]
    async fn the_docs_batch_gives_the_first_events_keys_and_the_whole_batch() {
        let body = decode_json(FIXTURE).await;
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        let f = &sub.fields;
        assert_eq!(f["objectId"], 123);
        assert_eq!(f["subscriptionType"], "contact.creation");
        assert_eq!(f["changeFlag"], "NEW");
        assert_eq!(f["event_count"], 1);
        assert_eq!(f["events"], body);
        assert_eq!(sub.id.as_deref(), Some("62515:12345:1"));
        assert_eq!(sub.event_type.as_deref(), Some("contact.creation"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2019-07-26T04:00:00.000Z"));
        assert_eq!(*sub.raw, body);
    }

    #[test]
    fn a_batch_of_several_events_is_one_submission_keyed_by_its_first_event() {
        let batch = json!([
            {"eventId": 100, "portalId": 7, "subscriptionId": 3, "objectId": 1,
             "subscriptionType": "deal.propertyChange", "propertyName": "dealstage", "propertyValue": "closedwon",
             "occurredAt": 1700000000123_u64, "attemptNumber": 2},
            {"eventId": 101, "portalId": 7, "subscriptionId": 3, "objectId": 2,
             "subscriptionType": "deal.propertyChange"},
        ]);
        let got = normalise(&batch).expect("normalises");
        assert_eq!(got.fields["propertyValue"], "closedwon");
        assert_eq!(got.fields["event_count"], 2);
        assert_eq!(got.fields["events"][1]["objectId"], 2);
        assert_eq!(got.id.as_deref(), Some("7:3:100"));
        assert_eq!(got.submitted_at.as_deref(), Some("2023-11-14T22:13:20.123Z"));
        let without_event_id = normalise(&json!([{"portalId": 7}])).expect("normalises");
        assert_eq!(without_event_id.id, None);
        let string_ids = normalise(&json!([{"eventId": "e", "events": "sent by hubspot?"}])).expect("normalises");
        assert_eq!(string_ids.id.as_deref(), Some("::e"));
        assert_eq!(
            string_ids.fields["events"][0]["events"], "sent by hubspot?",
            "reserved names win"
        );
    }

    #[test]
    fn bodies_that_are_not_batches_of_events_are_problems() {
        let cases = [
            (
                "an object",
                json!({"eventId": 1}),
                vec![("not_a_hubspot_batch", "body")],
            ),
            ("an empty array", json!([]), vec![("not_a_hubspot_batch", "body")]),
            ("a string", json!("x"), vec![("not_a_hubspot_batch", "body")]),
            (
                "non-objects in the batch",
                json!([{"eventId": 1}, 2, [3]]),
                vec![("invalid_event", "body[1]"), ("invalid_event", "body[2]")],
            ),
        ];
        for (row, body, want) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            let got: Vec<_> = problems
                .iter()
                .map(|p| (p.code.as_str(), p.field.as_deref().unwrap_or("")))
                .collect();
            assert_eq!(got, want, "{row}");
        }
        let problems = normalise(&json!([])).expect_err("empty");
        assert!(
            problems[0].message.ends_with("got an empty array"),
            "{}",
            problems[0].message
        );
        assert_eq!(
            codes(&normalise(&json!({})).expect_err("object")),
            ["not_a_hubspot_batch"]
        );
    }
}
