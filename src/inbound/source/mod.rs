//! Sources: which kind of sender a route serves, and how its decoded body becomes a Submission
//! (`fields`, id, timestamps): `json`, `form`, and one file per provider. Never panics on a body.

mod github;
mod hubspot;
mod jotform;
mod standard_webhooks;
mod stripe;
mod tally;
mod typeform;
mod webflow;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::Delivery;
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

/// A Content-Type is echoed in 415 messages up to this many characters.
const MAX_ECHOED_CONTENT_TYPE: usize = 200;

impl Source {
    /// The media types this source's sender posts (`type/subtype`, lowercase), or `None` for `json`
    /// and `form`, which take whatever [`crate::inbound::decode()`] reads.
    ///
    /// - Typeform, Tally, Webflow, Stripe, Standard Webhooks, HubSpot: `application/json` only.
    /// - Jotform: `multipart/form-data` only.
    /// - GitHub: `application/json` or `application/x-www-form-urlencoded` (a `payload=` form):
    ///   the webhook's "content type" setting at GitHub picks one, so both are genuine. Neither
    ///   is signed, but one body cannot be both: the GitHub normaliser reads a form only as a
    ///   single `payload` field, which a JSON body (it starts with `{`) never is, and a body
    ///   starting `payload=` is not JSON; so resending signed bytes under the other type is
    ///   refused (`invalid_payload`, or decode's `invalid_json`), never read as other fields.
    ///
    /// The signature covers the body, not the Content-Type header: accepting a type a provider
    /// never sends would let anyone holding one signed body have it read differently (the same JSON
    /// bytes as a urlencoded form are other fields, and so another deal).
    pub fn media_types(self) -> Option<&'static [&'static str]> {
        const JSON: &[&str] = &["application/json"];
        // Exhaustive on purpose: a new Source must say what its sender posts.
        match self {
            Source::Json | Source::Form => None,
            Source::Typeform
            | Source::Tally
            | Source::Webflow
            | Source::Stripe
            | Source::StandardWebhooks
            | Source::HubSpot => Some(JSON),
            Source::Jotform => Some(&["multipart/form-data"]),
            Source::GitHub => Some(&["application/json", "application/x-www-form-urlencoded"]),
        }
    }

    /// `Ok` when `content_type` (the header, parameters allowed) is one of [`Source::media_types`]
    /// (or the source takes any); else the 415 message, naming what the provider sends and what
    /// arrived (cut to 200 characters). Charsets are checked later, by decoding.
    pub fn check_content_type(self, content_type: Option<&str>) -> Result<(), String> {
        let Some(accepted) = self.media_types() else {
            return Ok(());
        };
        let essence = content_type.and_then(crate::inbound::decode::media_type_essence);
        if essence.as_deref().is_some_and(|e| accepted.contains(&e)) {
            return Ok(());
        }
        let got = match content_type.map(str::trim).filter(|ct| !ct.is_empty()) {
            Some(ct) => format!("got {:?}", ct.chars().take(MAX_ECHOED_CONTENT_TYPE).collect::<String>()),
            None => "the request has no Content-Type".to_owned(),
        };
        Err(format!(
            "the {self} source accepts {}, what {self} sends; {got}",
            accepted.join(" or ")
        ))
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
/// - Providers (each file in this folder documents its `fields` and what it reads for `id`,
///   `submitted_at` and `event_type`):
///   - `typeform`: answers keyed by field ref and by field id, `hidden`, `variables`, `score`;
///     id is the response token.
///   - `tally`: fields keyed by key and by label, option ids resolved to their texts; id is `eventId`.
///   - `webflow`: the form's `data` as-is plus `form_name`, `site_id`, `form_id` (v2 and v1 shapes).
///   - `jotform`: `rawRequest` parsed, `qN_` prefixes stripped, name parts flattened; id is `submissionID`.
///   - `stripe`: `type`, `object` (= `data.object`), and for Checkout Sessions `email`, `amount_total`
///     in major units, …; id is the event id.
///   - `standard-webhooks`: the body (and a Svix-style `data`'s keys); id is the `webhook-id` header.
///   - `github`: the body; id is `X-GitHub-Delivery`, event type `X-GitHub-Event` + `.action`.
///   - `hubspot`: one delivery (a batch of up to 100 events) is ONE Submission, so one deal: the
///     first event's keys, plus `events` (the whole batch) and `event_count`.
///
/// A provider body of the wrong shape (a Tally body on a Typeform route, an array, an answer of
/// an unexpected type) is a list of problems naming each path (`body.form_response`, …) and what
/// arrived there; never a panic. Provider timestamps are normalised to RFC 3339 in UTC with
/// milliseconds (`2018-01-18T18:17:02.000Z`), like `received_at`; one that cannot be read leaves
/// `submitted_at` empty rather than failing the delivery (the body stays in `raw`).
///
/// Collisions: each provider reserves a few metadata names (`form_id`, …) that always hold that
/// metadata; everything else is first come, first served, in the order each file documents.
///
/// `source` is the source's name, `received_at` comes from the Delivery, `raw` is the decoded
/// value as it arrived. `id`, `submitted_at` and `event_type` are `None` for `json` and `form`
/// (they carry none).
pub fn normalise(source: Source, decoded: Value, delivery: &Delivery) -> Result<Submission, Vec<Problem>> {
    // Adding a provider: a `Source` variant, one arm here, one file returning `Normalised`.
    let normalised = match source {
        Source::Json => json_body(source, &decoded),
        Source::Form => form_body(source, &decoded),
        Source::Typeform => typeform::normalise(&decoded),
        Source::Tally => tally::normalise(&decoded),
        Source::Webflow => webflow::normalise(&decoded),
        Source::Jotform => jotform::normalise(&decoded),
        Source::Stripe => stripe::normalise(&decoded),
        Source::StandardWebhooks => standard_webhooks::normalise(&decoded, delivery),
        Source::GitHub => github::normalise(&decoded, delivery),
        Source::HubSpot => hubspot::normalise(&decoded),
    }?;
    Ok(Submission {
        source: source.as_str().to_owned(),
        id: normalised.id,
        submitted_at: normalised.submitted_at,
        event_type: normalised.event_type,
        received_at: delivery.received_at_rfc3339(),
        fields: Arc::new(normalised.fields),
        raw: Arc::new(decoded),
    })
}

/// What a source reads out of a decoded body; `normalise` adds the rest of the Submission.
#[derive(Debug)]
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

/// A problem at `path`: the `source` expected `expected` there and found `got` (`None`: nothing).
fn unexpected(source: Source, code: &str, path: &str, expected: &str, got: Option<&Value>) -> Problem {
    let got = got.map_or("nothing", describe);
    let message = format!("the {source} source expects {expected} at {path}, got {got}");
    Problem::at(path, code, message)
}

/// Inserts unless the name is taken: first come, first served.
fn insert_new(fields: &mut Map<String, Value>, name: &str, value: &Value) {
    if !fields.contains_key(name) {
        fields.insert(name.to_owned(), value.clone());
    }
}

/// A string, or `None` for anything else (or nothing).
fn str_at<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// An id as text: a non-blank string, or an integer (HubSpot's ids are numbers).
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A header's value, trimmed; `None` when absent, blank or not text.
fn header<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a str> {
    let value = delivery.headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

/// An RFC 3339 timestamp (a string) normalised to UTC with milliseconds; `None` if unreadable.
fn rfc3339(value: Option<&Value>) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(value?.as_str()?.trim()).ok()?;
    Some(utc(parsed.with_timezone(&Utc)))
}

/// Epoch seconds (a number, or a string of digits as in headers) as RFC 3339.
fn epoch_seconds(value: Option<&Value>) -> Option<String> {
    DateTime::from_timestamp(epoch(value?)?, 0).map(utc)
}

/// Epoch milliseconds (a number, or a string of digits) as RFC 3339.
fn epoch_millis(value: Option<&Value>) -> Option<String> {
    DateTime::from_timestamp_millis(epoch(value?)?).map(utc)
}

/// An integer count since the epoch: an integral JSON number or a string of ASCII digits.
fn epoch(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        }
        _ => None,
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Helpers for the normaliser tests in this folder.
#[cfg(test)]
mod testing {
    use chrono::{TimeZone, Utc};
    use serde_json::Value;

    use crate::domain::Problem;
    use crate::inbound::Delivery;

    /// A POST received at 2025-03-14T09:26:53Z with no headers.
    pub(super) fn delivery() -> Delivery {
        delivery_with(&[])
    }

    /// The same Delivery with these headers.
    pub(super) fn delivery_with(headers: &[(&str, &str)]) -> Delivery {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, http::HeaderValue::from_str(value).unwrap());
        }
        Delivery {
            request_id: "req-1".into(),
            received_at: Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap(),
            deadline: None,
            method: http::Method::POST,
            path: "/hooks/website".into(),
            query: None,
            headers: map,
            body: bytes::Bytes::new(),
            redelivery: None,
        }
    }

    /// A JSON body decoded exactly as production decodes it.
    pub(super) async fn decode_json(body: &[u8]) -> Value {
        crate::inbound::decode(Some("application/json"), body).await.unwrap()
    }

    pub(super) fn codes(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.code.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{decode_json, delivery, delivery_with};
    use super::*;
    use serde_json::json;

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
            assert_eq!(Some(&*sub.fields), body.as_object(), "{row}");
            assert_eq!(*sub.raw, body, "{row}");
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
            Value::Object((*sub.fields).clone()),
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

    const FIXTURES: [(&str, Source, &[u8]); 8] = [
        (
            "typeform",
            Source::Typeform,
            include_bytes!("../../../tests/fixtures/webhooks/typeform-form_response.json"),
        ),
        (
            "tally",
            Source::Tally,
            include_bytes!("../../../tests/fixtures/webhooks/tally-form_response.json"),
        ),
        (
            "webflow v2",
            Source::Webflow,
            include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v2.json"),
        ),
        (
            "webflow v1",
            Source::Webflow,
            include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v1.json"),
        ),
        (
            "stripe",
            Source::Stripe,
            include_bytes!("../../../tests/fixtures/webhooks/stripe-signed-vector.invoiceitem.created.json"),
        ),
        (
            "hubspot",
            Source::HubSpot,
            include_bytes!("../../../tests/fixtures/webhooks/hubspot-webhook-contact.creation.json"),
        ),
        (
            "standard webhooks",
            Source::StandardWebhooks,
            include_bytes!("../../../tests/fixtures/webhooks/standard-webhooks-vector.body"),
        ),
        ("github", Source::GitHub, br#"{"action":"opened","issue":{"number":1}}"#),
    ];

    /// Every JSON fixture plus the Jotform one, decoded as production decodes them.
    async fn decoded_fixtures() -> Vec<(&'static str, Source, Value)> {
        let mut out = Vec::new();
        for (name, source, bytes) in FIXTURES {
            out.push((name, source, decode_json(bytes).await));
        }
        let jotform = include_str!("../../../tests/fixtures/webhooks/jotform-form_submission.multipart");
        let content_type = "multipart/form-data; boundary=------------------------J1JNT4vbVO4FCC1qLG4HSv";
        let body = crate::inbound::decode(Some(content_type), jotform.replace('\n', "\r\n").as_bytes()).await;
        out.push(("jotform", Source::Jotform, body.unwrap()));
        out
    }

    fn github_and_webhook_headers() -> Delivery {
        delivery_with(&[
            ("x-github-delivery", "d-1"),
            ("x-github-event", "issues"),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1614265330"),
        ])
    }

    #[tokio::test]
    async fn each_provider_fixture_normalises_on_its_own_route_with_an_id() {
        for (name, source, body) in decoded_fixtures().await {
            let sub = normalise(source, body.clone(), &github_and_webhook_headers())
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(sub.source, source.as_str(), "{name}");
            assert!(
                sub.id.is_some(),
                "{name}: every provider fixture has an idempotency key"
            );
            assert_eq!(*sub.raw, body, "{name}: raw is the decoded body");
        }
    }

    #[tokio::test]
    async fn a_provider_route_refuses_every_other_providers_body_with_problems() {
        let fixtures = decoded_fixtures().await;
        // json, form, standard-webhooks and github take any object, so they are not in this matrix.
        let strict = [
            Source::Typeform,
            Source::Tally,
            Source::Webflow,
            Source::Jotform,
            Source::Stripe,
            Source::HubSpot,
        ];
        for route in strict {
            for (name, source, body) in &fixtures {
                if *source == route {
                    continue;
                }
                let got = normalise(route, body.clone(), &delivery());
                let problems = got
                    .err()
                    .unwrap_or_else(|| panic!("{route} route accepted the {name} fixture"));
                assert!(!problems.is_empty(), "{route} route, {name} fixture");
            }
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n.max(1) as u64).unwrap()
        }
    }

    /// Replaces a value with one of another type.
    fn swap_type(rng: &mut Rng, value: &Value) -> Value {
        let choices = [
            Value::Null,
            json!(true),
            json!(-1.5),
            json!(18446744073709551615_u64),
            json!("text"),
            json!(""),
            json!([]),
            json!([null, 1, "a", {}]),
            json!({}),
            json!({"id": 1, "label": [], "value": {"x": null}}),
        ];
        let mut pick = choices[rng.below(choices.len())].clone();
        if pick == *value {
            pick = json!({"swapped": value.clone()});
        }
        pick
    }

    /// Walks the value, dropping keys, swapping types and truncating lists at random.
    fn mutate(rng: &mut Rng, value: &mut Value) {
        if rng.below(12) == 0 {
            *value = swap_type(rng, value);
            return;
        }
        match value {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if rng.below(8) == 0 {
                        map.remove(&key);
                    } else if let Some(child) = map.get_mut(&key) {
                        mutate(rng, child);
                    }
                }
            }
            Value::Array(items) => {
                if rng.below(8) == 0 {
                    items.truncate(rng.below(items.len() + 1));
                }
                for item in items {
                    mutate(rng, item);
                }
            }
            Value::String(text) if rng.below(10) == 0 => {
                // Jotform's rawRequest is JSON inside a string: break or reshape it too.
                *text = match rng.below(3) {
                    0 => text.chars().take(text.chars().count() / 2).collect(),
                    1 => "[1, {\"q1_x\": {\"first\": []}}]".to_owned(),
                    _ => {
                        "{\"q1_name\": {\"first\": 1, \"year\": \"2025\", \"month\": \"x\", \"day\": null}}".to_owned()
                    }
                };
            }
            _ => {}
        }
    }

    #[tokio::test]
    async fn mutated_fixtures_give_submissions_or_problems_never_panics() {
        let fixtures = decoded_fixtures().await;
        let delivery = github_and_webhook_headers();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut outcomes = (0, 0);
        for (name, _, body) in &fixtures {
            for round in 0..150 {
                let mut variant = body.clone();
                mutate(&mut rng, &mut variant);
                for &source in Source::ALL {
                    // A panic here fails the test; the row says which variant.
                    let result = std::panic::catch_unwind(|| normalise(source, variant.clone(), &delivery));
                    match result {
                        Ok(Ok(_)) => outcomes.0 += 1,
                        Ok(Err(problems)) => {
                            assert!(!problems.is_empty(), "{name} #{round} on {source}: empty problems");
                            outcomes.1 += 1;
                        }
                        Err(_) => panic!("{name} #{round} on {source} panicked on {variant}"),
                    }
                }
            }
        }
        assert!(
            outcomes.0 > 0 && outcomes.1 > 0,
            "both outcomes were exercised: {outcomes:?}"
        );
    }
}

/// What each provider's submission id is taken from, and that it is covered by the provider's
/// signature: an id an attacker can change on a signed delivery would let one signed body make
/// many deals (fresh ids) or block a genuine delivery (its id taken first). One row per source.
#[cfg(test)]
mod signed_material {
    use sha2::{Digest, Sha256};

    use super::testing::delivery_with;
    use super::*;
    use crate::inbound::verify::Scheme;

    /// Where a source's id comes from.
    #[derive(Debug)]
    enum IdFrom {
        /// A value inside the body, which every scheme but `token` signs (and `token` authenticates
        /// the sender, who could send anything).
        Body(&'static str),
        /// A header the scheme signs, with its value in the row.
        SignedHeader(&'static str, &'static str),
        /// The SHA-256 of the raw body (`sha256:<hex>`): the provider's own id is not signed.
        BodyDigest,
        /// None: unsigned sources; the idempotency key is then the body's hash.
        Nothing,
    }

    struct Row {
        content_type: String,
        body: Vec<u8>,
        headers: Vec<(&'static str, &'static str)>,
        id: IdFrom,
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    const JSON: &str = "application/json";

    /// Exhaustive: a new Source cannot be added without its row.
    fn row(source: Source) -> Row {
        let json = |name: &str, id: IdFrom| Row {
            content_type: JSON.into(),
            body: fixture(name),
            headers: vec![],
            id,
        };
        match source {
            Source::Json => json("typeform-form_response.json", IdFrom::Nothing),
            Source::Form => Row {
                content_type: "application/x-www-form-urlencoded".into(),
                body: b"name=Ada&email=ada%40example.com".to_vec(),
                headers: vec![],
                id: IdFrom::Nothing,
            },
            Source::Typeform => json(
                "typeform-form_response.json",
                IdFrom::Body("a3a12ec67a1365927098a606107fac15"),
            ),
            Source::Tally => json(
                "tally-form_response.json",
                IdFrom::Body("a4cb511e-d513-4fa5-baee-b815d718dfd1"),
            ),
            Source::Webflow => json(
                "webflow-form_submission-v2.json",
                IdFrom::Body("6321ca84df3949bfc6752327"),
            ),
            Source::Jotform => Row {
                content_type: "multipart/form-data; boundary=------------------------J1JNT4vbVO4FCC1qLG4HSv".into(),
                body: String::from_utf8(fixture("jotform-form_submission.multipart"))
                    .unwrap()
                    .replace('\n', "\r\n")
                    .into_bytes(),
                headers: vec![],
                id: IdFrom::Body("6084250982513018472"),
            },
            Source::Stripe => json("stripe-signed-vector.invoiceitem.created.json", IdFrom::Body("evt_123")),
            Source::StandardWebhooks => Row {
                content_type: JSON.into(),
                body: fixture("standard-webhooks-vector.body"),
                headers: vec![
                    ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                    ("webhook-timestamp", "1614265330"),
                ],
                id: IdFrom::SignedHeader("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            },
            Source::GitHub => Row {
                content_type: JSON.into(),
                body: br#"{"zen":"Design for failure.","hook_id":109948940,"repository":{"full_name":"octo/hi"}}"#
                    .to_vec(),
                headers: vec![
                    ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                    ("x-github-event", "ping"),
                ],
                id: IdFrom::BodyDigest,
            },
            // `{portalId}:{subscriptionId}:{eventId}`, all three in the signed body.
            Source::HubSpot => json("hubspot-webhook-contact.creation.json", IdFrom::Body("62515:12345:1")),
        }
    }

    /// Headers a sender (or an attacker) can set freely on a signed delivery: none may change the id.
    const DECOYS: [(&str, &str); 6] = [
        ("x-github-delivery", "decoy-github"),
        ("svix-id", "decoy-svix"),
        ("x-request-id", "decoy-request"),
        ("idempotency-key", "decoy-key"),
        ("x-webhook-id", "decoy-x-webhook"),
        ("typeform-signature", "decoy-signature"),
    ];

    async fn id(source: Source, row: &Row, extra: &[(&str, &str)]) -> Option<String> {
        let mut headers = row.headers.clone();
        headers.extend_from_slice(extra);
        headers.push(("content-type", row.content_type.as_str()));
        let mut delivery = delivery_with(&headers);
        delivery.body = bytes::Bytes::from(row.body.clone());
        let decoded = crate::inbound::decode(Some(&row.content_type), &row.body)
            .await
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        normalise(source, decoded, &delivery)
            .unwrap_or_else(|e| panic!("{source}: {e:?}"))
            .id
    }

    #[tokio::test]
    async fn each_source_takes_its_id_from_signed_material() {
        for &source in Source::ALL {
            let row = row(source);
            let got = id(source, &row, &[]).await;
            let scheme = Scheme::default_for(source);
            match row.id {
                IdFrom::Body(value) => {
                    assert!(scheme.is_some(), "{source}: a body id on an unsigned source");
                    let text = String::from_utf8_lossy(&row.body);
                    for part in value.split(':') {
                        assert!(text.contains(part), "{source}: {part} is not in the signed body");
                    }
                    assert_eq!(got.as_deref(), Some(value), "{source}");
                }
                IdFrom::SignedHeader(name, value) => {
                    assert_eq!(
                        scheme,
                        Some(Scheme::StandardWebhooks),
                        "{source}: only this scheme signs an id header"
                    );
                    assert_eq!(name, crate::inbound::verify::standard_webhooks::ID_HEADER);
                    assert_eq!(got.as_deref(), Some(value), "{source}");
                }
                IdFrom::BodyDigest => {
                    let digest = hex::encode(Sha256::digest(&row.body));
                    assert_eq!(got, Some(format!("sha256:{digest}")), "{source}");
                }
                IdFrom::Nothing => {
                    assert_eq!(scheme, None, "{source}: a signed source must name its id");
                    assert_eq!(got, None, "{source}");
                }
            }
        }
    }

    #[tokio::test]
    async fn no_unsigned_header_changes_any_sources_id() {
        for &source in Source::ALL {
            let row = row(source);
            let plain = id(source, &row, &[]).await;
            let decoyed = id(source, &row, &DECOYS).await;
            assert_eq!(plain, decoyed, "{source}: an unsigned header changed the id");
        }
    }

    /// A blank `webhook-id` is what the signature covered: the unsigned `svix-id` must not stand in.
    #[tokio::test]
    async fn a_blank_signed_id_header_is_not_replaced_by_an_unsigned_one() {
        let mut row = row(Source::StandardWebhooks);
        row.headers = vec![("webhook-id", " "), ("webhook-timestamp", "1614265330")];
        assert_eq!(
            id(Source::StandardWebhooks, &row, &[("svix-id", "msg_attacker")]).await,
            None
        );
        row.headers = vec![("svix-id", "msg_svix"), ("svix-timestamp", "1614265330")];
        assert_eq!(
            id(Source::StandardWebhooks, &row, &[]).await.as_deref(),
            Some("msg_svix"),
            "Svix's own names, when they are the only ones, are what Svix signs"
        );
    }
}
