//! Sources: which kind of sender a route serves, and how its decoded body becomes a
//! Submission (`fields`, id, timestamps). Step 1 knows `json` and `form`. Never panics on a body.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::domain::{Problem, Submission};

/// The kind of sender a route serves (`source:` in the mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Any JSON object; `fields` is the body object.
    Json,
    /// An HTML form (urlencoded or multipart); `fields` are the form fields.
    Form,
    /// Typeform `form_response` webhooks.
    Typeform,
    /// Tally `FORM_RESPONSE` webhooks.
    Tally,
    /// Webflow `form_submission` webhooks (v2 and v1 shapes).
    Webflow,
    /// Jotform webhooks (multipart with `rawRequest`).
    Jotform,
    /// Stripe events.
    Stripe,
    /// Standard Webhooks senders (Svix and others).
    StandardWebhooks,
    /// GitHub webhooks.
    GitHub,
    /// HubSpot webhooks (app subscriptions).
    HubSpot,
}

impl Source {
    /// Every source, in the order `check` lists them.
    pub const ALL: &'static [Source] = &[
        Source::Json,
        Source::Form,
        Source::Typeform,
        Source::Tally,
        Source::Webflow,
        Source::Jotform,
        Source::Stripe,
        Source::StandardWebhooks,
        Source::GitHub,
        Source::HubSpot,
    ];

    /// The name used in the mapping.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Json => "json",
            Source::Form => "form",
            Source::Typeform => "typeform",
            Source::Tally => "tally",
            Source::Webflow => "webflow",
            Source::Jotform => "jotform",
            Source::Stripe => "stripe",
            Source::StandardWebhooks => "standard-webhooks",
            Source::GitHub => "github",
            Source::HubSpot => "hubspot",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown source name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {name:?}; known sources: {}", Source::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownSource {
    /// The name that was given.
    pub name: String,
}

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .iter()
            .copied()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| UnknownSource { name: s.to_owned() })
    }
}

/// Turns a decoded body into a Submission for this route's source.
///
/// - `json`: the body must be a JSON object (else one `not_an_object` problem at `body` saying
///   what arrived, e.g. "an array"); `fields` is that object, unchanged (values may be nested).
/// - `form`: `fields` is the decoded form object (strings, lists of strings for repeated names,
///   file-part objects). A JSON object posted to a form route is accepted as fields too: senders
///   switch encodings and the mapping reads `fields` either way. Anything but an object is
///   `not_an_object`.
///
/// `source` is the source's name, `received_at` comes from the Delivery, `raw` is the decoded
/// value as it arrived. `id` and `submitted_at` are `None` for `json` and `form` (they carry
/// neither); provider sources fill them.
pub fn normalise(source: Source, decoded: Value, delivery: &super::Delivery) -> Result<Submission, Vec<Problem>> {
    // Adding a provider: a `Source` variant, one arm here, one function (or file) returning `Normalised`.
    let normalised = match source {
        Source::Json => json_body(source, &decoded),
        Source::Form => form_body(source, &decoded),
        // Step 2 in progress: provider normalisers replace this arm.
        _ => json_body(source, &decoded),
    }?;
    Ok(Submission {
        source: source.as_str().to_owned(),
        id: normalised.id,
        submitted_at: normalised.submitted_at,
        event_type: normalised.event_type,
        received_at: delivery.received_at_rfc3339(),
        fields: normalised.fields,
        raw: decoded,
    })
}

/// What a source reads out of a decoded body; `normalise` adds the rest of the Submission.
struct Normalised {
    fields: Map<String, Value>,
    id: Option<String>,
    submitted_at: Option<String>,
    event_type: Option<String>,
}

impl Normalised {
    /// Fields only: no event id, no provider timestamp.
    fn fields(fields: Map<String, Value>) -> Normalised {
        Normalised {
            fields,
            id: None,
            submitted_at: None,
            event_type: None,
        }
    }
}

/// `json`: any object; its members are the fields.
fn json_body(source: Source, decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    Ok(Normalised::fields(object(source, decoded)?.clone()))
}

/// `form`: the decoded form object (urlencoded or multipart), or a JSON object posted instead.
fn form_body(source: Source, decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    Ok(Normalised::fields(object(source, decoded)?.clone()))
}

/// The body as an object, or one `not_an_object` problem naming what it is.
fn object(source: Source, decoded: &Value) -> Result<&Map<String, Value>, Vec<Problem>> {
    decoded.as_object().ok_or_else(|| {
        let message = format!(
            "the {source} source expects a JSON object as the body, got {}",
            describe(decoded)
        );
        vec![Problem::at("body", "not_an_object", message)]
    })
}

/// "an array", "a string", …: what a JSON value is, for messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::Delivery;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn delivery() -> Delivery {
        Delivery {
            request_id: "req-1".into(),
            received_at: Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap(),
            deadline: None,
            method: http::Method::POST,
            path: "/hooks/website".into(),
            query: None,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn an_object_becomes_a_submission_for_either_source() {
        let cases = [
            (
                Source::Json,
                json!({"email": "ada@example.com", "deal": {"amount": 12500.5}}),
            ),
            (
                Source::Form,
                json!({"email": "ada@example.com", "topic": ["sales", "support"]}),
            ),
            (Source::Form, json!({"email": "ada@example.com", "amount": 3})),
            (Source::Json, json!({})),
        ];
        for (source, body) in cases {
            let row = format!("{source} {body}");
            let sub = normalise(source, body.clone(), &delivery()).unwrap_or_else(|e| panic!("{row}: {e:?}"));
            assert_eq!(sub.source, source.as_str(), "{row}");
            assert_eq!(Some(&sub.fields), body.as_object(), "{row}");
            assert_eq!(sub.raw, body, "{row}");
            assert_eq!(sub.id, None, "{row}");
            assert_eq!(sub.submitted_at, None, "{row}");
            assert_eq!(sub.received_at, "2025-03-14T09:26:53.000Z", "{row}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_one_problem_saying_what_it_is() {
        let cases = [
            (Source::Json, json!([1, 2]), "an array"),
            (Source::Json, json!("hi"), "a string"),
            (Source::Json, json!(1), "a number"),
            (Source::Json, json!(true), "a boolean"),
            (Source::Json, Value::Null, "null"),
            (Source::Form, json!([{"a": "1"}]), "an array"),
        ];
        for (source, body, what) in cases {
            let row = format!("{source} {body}");
            let problems = normalise(source, body, &delivery()).expect_err(&row);
            assert_eq!(problems.len(), 1, "{row}");
            assert_eq!(problems[0].code, "not_an_object", "{row}");
            assert_eq!(problems[0].field.as_deref(), Some("body"), "{row}");
            assert!(
                problems[0].message.ends_with(&format!("got {what}")),
                "{row}: {}",
                problems[0].message
            );
        }
    }

    #[tokio::test]
    async fn a_decoded_urlencoded_form_normalises_to_its_fields() {
        let decoded = crate::inbound::decode(
            Some("application/x-www-form-urlencoded"),
            b"email=ada%40example.com&t=a&t=b",
        )
        .await
        .unwrap();
        let sub = normalise(Source::Form, decoded, &delivery()).unwrap();
        assert_eq!(
            Value::Object(sub.fields),
            json!({"email": "ada@example.com", "t": ["a", "b"]})
        );
    }

    #[test]
    fn every_source_round_trips_through_its_name() {
        for &source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source), "{source}");
        }
        assert_eq!(
            "typeform2".parse::<Source>(),
            Err(UnknownSource {
                name: "typeform2".into()
            })
        );
    }
}
