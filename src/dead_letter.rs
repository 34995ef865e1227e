//! The dead-letter envelope: the original delivery (secrets redacted), why it failed, and
//! the deal request if mapping got that far. Versioned; documented in docs/dead-letters.md.
//! Nothing secret may enter an envelope: headers and query parameters are redacted here by name,
//! and [`DeadLetter::redacted`] takes every known secret value out of every part, body included.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::credentials::scrub::Scrubber;
use crate::domain::{DealDraft, Problem, Reason};
use crate::hubspot::{HubSpotError, HubSpotErrorBody, HubSpotRequest, PlanProgress, PlannedCall};
use crate::inbound::Delivery;

/// Envelope format version. Bump on any incompatible change.
pub const ENVELOPE_VERSION: u32 = 1;

/// What replaces a redacted value.
pub const REDACTED: &str = crate::credentials::scrub::REDACTED;

/// One delivery that could not become a deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Envelope format version ([`ENVELOPE_VERSION`]).
    pub version: u32,
    /// Unique id of this dead letter (returned to the sender as `deadLetterId`).
    pub id: String,
    /// When the envelope was written (RFC 3339).
    pub created_at: String,
    /// Why it failed (`decode_failed`, `mapping_failed`, `hubspot_rejected`, …).
    pub reason: Reason,
    /// Every error, each naming its field and rule where it has one.
    pub errors: Vec<Problem>,
    /// The original delivery.
    pub delivery: DeliveryRecord,
    /// HubSpot's answer, when HubSpot was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot: Option<HubSpotFailure>,
    /// The draft, when mapping succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_draft: Option<DealDraft>,
    /// The HubSpot request built from the draft, when mapping succeeded: the deal's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_request: Option<HubSpotRequest>,
    /// Every call the delivery's plan makes, in order (contacts, companies, the deal, links; see
    /// [`crate::hubspot::plan::preview`]), when mapping succeeded. Absent in letters written before
    /// the plan existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hubspot_requests: Vec<PlannedCall>,
    /// On a route with `for_each`: which record (item) of the delivery this letter is about. Every
    /// other part of the letter (reason, errors, HubSpot's answer, draft, requests) is that record's
    /// alone; the delivery is the whole one. A replay re-runs only this record. Absent for a
    /// delivery that is one deal, and for a `for_each` that failed as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<ForEachRecord>,
    /// The delivery's idempotency key as computed when it was received (without a record's
    /// `#item:{index}`), when it was mapped: a replay or a move back to the work queue runs it under
    /// the same key, so no deal is made twice even if the body had secret values cut out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One record of a delivery on a route with `for_each`: the item at `index` of the `count` items the
/// route's `for_each` gave when the delivery was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForEachRecord {
    /// The item's 0-based index in the list (`item_index` in templates; `#item:{index}` in the
    /// idempotency key).
    pub index: usize,
    /// How many items the list had.
    pub count: usize,
}

/// The delivery as received, minus secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// Lambda request id.
    pub request_id: String,
    /// When it was received (RFC 3339).
    pub received_at: String,
    /// HTTP method.
    pub method: String,
    /// Path as delivered.
    pub path: String,
    /// The route it was delivered to.
    pub route: String,
    /// Query string with secret-looking parameter values redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers (lower-case names) with secret-looking values redacted; repeated headers joined by `, `.
    pub headers: BTreeMap<String, String>,
    /// The raw body, base64 (standard alphabet, padded): the bytes as received, unless
    /// `body_redacted`.
    pub body_base64: String,
    /// True when secret values were cut out of the body ([`DeadLetter::redacted`]): the bytes are
    /// then not those received, and a signature over them no longer verifies.
    #[serde(default)]
    pub body_redacted: bool,
}

/// What HubSpot answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotFailure {
    /// HTTP status, when HubSpot answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HubSpot's response body (JSON when it was JSON, else text), or what went wrong.
    pub body: serde_json::Value,
    /// How many attempts were made (of the call that failed).
    pub attempts: u32,
    /// What the plan wrote before it stopped (contacts upserted, companies found or created, the
    /// deal), when it wrote anything: a redrive finds the same records again (upserts by e-mail,
    /// searches by domain), so nothing is duplicated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<PlanProgress>,
    /// The associations that could not be made (the `associationCreateFailures` entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub association_failures: Vec<serde_json::Value>,
}

impl HubSpotFailure {
    /// What HubSpot answered for `error`, after `attempts` requests: its own error body where it gave
    /// one (message, category, correlationId, for HubSpot's support), read from the redacted text, or
    /// what went wrong.
    pub fn of(error: &HubSpotError, attempts: u32) -> HubSpotFailure {
        let body = match error {
            HubSpotError::Rejected { raw, .. } => {
                serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone()))
            }
            HubSpotError::Unauthorized { body, .. }
            | HubSpotError::RateLimited { body, .. }
            | HubSpotError::Locked { body, .. }
            | HubSpotError::MissingScopes { body, .. }
                if *body != HubSpotErrorBody::default() =>
            {
                // HubSpot's own words (message, category, correlationId; the scopes it named are in
                // `details.requiredScopes`); dealhook's sentence is in the letter's `errors`.
                serde_json::to_value(body).unwrap_or_else(|_| serde_json::Value::String(error.to_string()))
            }
            other => serde_json::Value::String(other.to_string()),
        };
        HubSpotFailure {
            status: error.status(),
            body,
            attempts,
            done: None,
            association_failures: Vec::new(),
        }
    }
}

impl DeadLetter {
    /// A new envelope for `delivery` on `route`, with a fresh id.
    pub fn new(delivery: &Delivery, route: &str, reason: Reason, errors: Vec<Problem>) -> DeadLetter {
        DeadLetter {
            version: ENVELOPE_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            reason,
            errors,
            delivery: DeliveryRecord::of(delivery, route),
            hubspot: None,
            deal_draft: None,
            hubspot_request: None,
            hubspot_requests: Vec::new(),
            record: None,
            idempotency_key: None,
        }
    }

    /// The original body bytes (less any secret values, when `delivery.body_redacted`).
    pub fn body(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.delivery.body_base64)
    }

    /// The envelope with every value `scrubber` knows replaced by [`REDACTED`], wherever it is: in
    /// the raw body (then `delivery.body_redacted` is set and the base64 re-encoded), headers,
    /// query, path, errors, HubSpot's answer, the draft and the request. Call it on every envelope
    /// before it leaves the process. Free when the scrubber is empty.
    pub fn redacted(mut self, scrubber: &Scrubber) -> DeadLetter {
        if scrubber.is_empty() {
            return self;
        }
        self.delivery.scrub_body(scrubber);
        // Every other part, present and future, through its JSON form: strings are all a secret can
        // hide in. The base64 text is left out (it holds no secret now, and must stay base64).
        let body_base64 = std::mem::take(&mut self.delivery.body_base64);
        let mut json = match serde_json::to_value(&self) {
            Ok(json) => json,
            Err(_) => return self.redacted_by_field(scrubber, body_base64),
        };
        if !scrubber.scrub_json(&mut json) {
            self.delivery.body_base64 = body_base64;
            return self;
        }
        match serde_json::from_value::<DeadLetter>(json) {
            Ok(mut clean) => {
                clean.delivery.body_base64 = body_base64;
                clean
            }
            Err(_) => self.redacted_by_field(scrubber, body_base64),
        }
    }

    /// The fallback of [`Self::redacted`] for a part that does not survive the JSON round trip
    /// (none does today; a future type might): the text fields are scrubbed one by one and the
    /// typed parts that could not be checked (draft, request) are dropped, with a note in `errors`.
    fn redacted_by_field(mut self, scrubber: &Scrubber, body_base64: String) -> DeadLetter {
        let clean = |text: &mut String| {
            if let Cow::Owned(c) = scrubber.scrub_str(text) {
                *text = c;
            }
        };
        self.delivery.body_base64 = body_base64;
        self.delivery.scrub_fields(scrubber);
        for problem in &mut self.errors {
            clean(&mut problem.message);
            clean(&mut problem.code);
            if let Some(field) = problem.field.as_mut() {
                clean(field);
            }
        }
        if let Some(hubspot) = self.hubspot.as_mut() {
            scrubber.scrub_json(&mut hubspot.body);
            for entry in &mut hubspot.association_failures {
                scrubber.scrub_json(entry);
            }
        }
        let had_draft = self.deal_draft.take().is_some();
        let had_request =
            self.hubspot_request.take().is_some() | !std::mem::take(&mut self.hubspot_requests).is_empty();
        if had_draft || had_request {
            self.errors.push(Problem::general(
                "redacted",
                "the deal draft and HubSpot request were left out: they could not be checked for secret values",
            ));
        }
        self
    }
}

impl DeliveryRecord {
    /// Cuts every value `scrubber` knows out of the body (then `body_redacted`). A body that is not
    /// base64 (it always is when dealhook wrote it) is left as is.
    pub(crate) fn scrub_body(&mut self, scrubber: &Scrubber) {
        if let Ok(body) = base64::engine::general_purpose::STANDARD.decode(&self.body_base64)
            && let Cow::Owned(clean) = scrubber.scrub_bytes(&body)
        {
            self.body_base64 = base64::engine::general_purpose::STANDARD.encode(clean);
            self.body_redacted = true;
        }
    }

    /// Cuts every value `scrubber` knows out of the text fields (request id, path, route, query, header
    /// names and values): the envelopes' fallback when their JSON form cannot be scrubbed whole.
    pub(crate) fn scrub_fields(&mut self, scrubber: &Scrubber) {
        let clean = |text: &mut String| {
            if let Cow::Owned(c) = scrubber.scrub_str(text) {
                *text = c;
            }
        };
        for text in [&mut self.request_id, &mut self.path, &mut self.route] {
            clean(text);
        }
        if let Some(query) = self.query.as_mut() {
            clean(query);
        }
        self.headers = std::mem::take(&mut self.headers)
            .into_iter()
            .map(|(name, mut value)| {
                clean(&mut value);
                (scrubber.scrub_str(&name).into_owned(), value)
            })
            .collect();
    }

    /// Records a delivery, redacting secrets.
    pub fn of(delivery: &Delivery, route: &str) -> DeliveryRecord {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &delivery.headers {
            let name = name.as_str().to_ascii_lowercase();
            let value = if is_secret_name(&name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            headers
                .entry(name)
                .and_modify(|v| *v = format!("{v}, {value}"))
                .or_insert(value);
        }
        DeliveryRecord {
            request_id: delivery.request_id.clone(),
            received_at: delivery.received_at_rfc3339(),
            method: delivery.method.to_string(),
            path: delivery.path.clone(),
            route: route.to_owned(),
            query: delivery.query.as_deref().map(redact_query),
            headers,
            body_base64: base64::engine::general_purpose::STANDARD.encode(&delivery.body),
            body_redacted: false,
        }
    }
}

/// Whether a header or query parameter name looks like it carries a credential or signature.
pub fn is_secret_name(name: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "authorization",
        "signature",
        "token",
        "secret",
        "cookie",
        "api-key",
        "apikey",
        "password",
        "hapikey",
        "key",
    ];
    let lower = name.to_ascii_lowercase().replace('_', "-");
    MARKERS.iter().any(|m| lower.contains(m))
}

/// Redacts the values of secret-looking parameters in a raw query string. Names are compared
/// as the application reads them, percent-decoded with `+` as a space (`tok%65n` is `token`),
/// and kept as sent.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&form_decoded(name)) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query component as `application/x-www-form-urlencoded` reads it (`+` is a space, then `%XX`).
fn form_decoded(component: &str) -> String {
    percent_decode_str(&component.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use http::{HeaderMap, HeaderValue, Method};

    use super::*;

    fn delivery() -> Delivery {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("authorization", HeaderValue::from_static("Bearer pat-secret"));
        headers.insert("typeform-signature", HeaderValue::from_static("sha256=c2lnbmF0dXJl"));
        headers.insert("x-hubspot-signature-v3", HeaderValue::from_static("hs-sig"));
        headers.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
        Delivery {
            request_id: "req-1".into(),
            received_at: Utc::now(),
            deadline: None,
            method: Method::POST,
            path: "/hooks/website-quote".into(),
            query: Some("token=jot-secret&form=7&hapikey=hk".into()),
            headers,
            body: bytes::Bytes::from_static(b"{\"a\":1}"),
            redelivery: None,
        }
    }

    #[test]
    fn an_envelope_redacts_credentials_and_keeps_the_rest() {
        let letter = DeadLetter::new(
            &delivery(),
            "website-quote",
            crate::domain::Reason::MappingFailed,
            vec![],
        );
        let json = serde_json::to_string(&letter).unwrap();
        for secret in ["pat-secret", "c2lnbmF0dXJl", "hs-sig", "jot-secret", "hk&"] {
            assert!(!json.contains(secret), "{secret} leaked into {json}");
        }
        assert_eq!(letter.delivery.headers["authorization"], REDACTED);
        assert_eq!(letter.delivery.headers["content-type"], "application/json");
        assert_eq!(letter.delivery.headers["x-forwarded-for"], "1.1.1.1, 2.2.2.2");
        assert_eq!(
            letter.delivery.query.as_deref(),
            Some("token=[redacted]&form=7&hapikey=[redacted]")
        );
        assert_eq!(letter.body().unwrap(), b"{\"a\":1}");
        assert_eq!(letter.version, ENVELOPE_VERSION);
    }

    /// The signing key of the Jotform route in these tests.
    const JOTFORM_KEY: &str = "jf-Signing/Key+2026 é";

    fn jotform_delivery(body: Vec<u8>, query: &str) -> Delivery {
        let mut d = delivery();
        d.headers.insert(
            "content-type",
            HeaderValue::from_static("multipart/form-data; boundary=b0undary"),
        );
        d.query = Some(query.to_owned());
        d.body = bytes::Bytes::from(body);
        d
    }

    fn scrubber() -> Scrubber {
        Scrubber::new([JOTFORM_KEY, "pat-secret-token"])
    }

    /// The issue's failing input: Jotform posts the webhook URL it was given, `?token=<key>`
    /// included, in the body (`webhookURL`, and again JSON-escaped in `rawRequest`).
    #[test]
    fn a_jotform_body_quoting_its_webhook_url_keeps_no_signing_key() {
        let token = percent_encoding::utf8_percent_encode(JOTFORM_KEY, percent_encoding::NON_ALPHANUMERIC).to_string();
        let url = format!("https://abc.execute-api.eu-west-1.amazonaws.com/hooks/quote-jotform?token={token}");
        let raw_request = serde_json::json!({"webhookURL": url, "q3_email": "ada@example.com"}).to_string();
        let body = format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"webhookURL\"\r\n\r\n{url}\r\n\
             --b0undary\r\nContent-Disposition: form-data; name=\"rawRequest\"\r\n\r\n{}\r\n--b0undary--\r\n",
            raw_request.replace('/', "\\/")
        );
        let d = jotform_delivery(body.clone().into_bytes(), &format!("{token}&token={token}"));
        let letter =
            DeadLetter::new(&d, "quote-jotform", crate::domain::Reason::MappingFailed, vec![]).redacted(&scrubber());
        let stored = String::from_utf8(letter.body().unwrap()).unwrap();
        let json = serde_json::to_string(&letter).unwrap();
        for (what, text) in [("body", &stored), ("envelope", &json)] {
            assert!(!text.contains("Signing"), "{what} holds the key: {text}");
        }
        assert!(letter.delivery.body_redacted);
        assert_eq!(json.matches("\"bodyRedacted\":true").count(), 1, "{json}");
        assert_eq!(stored.matches("token=[redacted]").count(), 2, "{stored}");
        // Everything else is as received.
        let expected = body
            .replace(&token, REDACTED)
            .replace(&token.replace('/', "\\/"), REDACTED);
        assert_eq!(stored, expected);
        assert_eq!(letter.delivery.query.as_deref(), Some("[redacted]&token=[redacted]"));
    }

    #[test]
    fn every_part_of_an_envelope_is_scrubbed_of_known_values() {
        use crate::domain::{PropValue, Property};
        let d = jotform_delivery(b"{\"note\":\"pat-secret-token\"}".to_vec(), "form=7");
        let mut d = d;
        d.headers
            .insert("x-echo", HeaderValue::from_static("Bearer pat-secret-token"));
        d.path = "/hooks/pat-secret-token".into();
        let errors = vec![Problem::at("properties.note", "invalid", "got \"pat-secret-token\"")];
        let mut letter = DeadLetter::new(&d, "r", crate::domain::Reason::HubSpotRejected, errors);
        letter.hubspot = Some(HubSpotFailure {
            status: Some(400),
            body: serde_json::json!({"message": "token pat-secret-token is bad"}),
            attempts: 1,
            done: None,
            association_failures: vec![serde_json::json!({"message": "token pat-secret-token is bad"})],
        });
        letter.deal_draft = Some(DealDraft {
            properties: vec![Property {
                name: "note".into(),
                value: PropValue::Text("pat-secret-token".into()),
            }],
            pipeline: None,
            dealstage: "appointmentscheduled".into(),
            associations: crate::domain::Associations::default(),
        });
        let letter = letter.redacted(&scrubber());
        let json = serde_json::to_string(&letter).unwrap();
        assert!(!json.contains("pat-secret"), "{json}");
        assert_eq!(letter.delivery.headers["x-echo"], "Bearer [redacted]");
        assert_eq!(letter.delivery.path, "/hooks/[redacted]");
        assert_eq!(letter.errors[0].message, "got \"[redacted]\"");
        assert_eq!(
            letter.hubspot.as_ref().unwrap().body["message"],
            "token [redacted] is bad"
        );
        assert_eq!(letter.body().unwrap(), b"{\"note\":\"[redacted]\"}");
        assert!(letter.deal_draft.is_some(), "the draft is kept, scrubbed");
    }

    #[test]
    fn an_envelope_without_secret_values_is_unchanged_and_not_flagged() {
        let letter = DeadLetter::new(&delivery(), "r", crate::domain::Reason::MappingFailed, vec![]);
        let kept = letter.clone().redacted(&Scrubber::new(["not-in-this-letter"]));
        assert_eq!(kept, letter);
        assert!(!kept.delivery.body_redacted);
        let kept = letter.clone().redacted(&Scrubber::default());
        assert_eq!(kept, letter);
    }

    #[test]
    fn the_field_by_field_fallback_scrubs_text_and_drops_what_it_cannot_check() {
        let mut d = delivery();
        d.headers.insert("x-echo", HeaderValue::from_static("pat-secret-token"));
        let mut letter = DeadLetter::new(
            &d,
            "r",
            crate::domain::Reason::MappingFailed,
            vec![Problem::general("x", "pat-secret-token")],
        );
        letter.deal_draft = Some(DealDraft {
            pipeline: None,
            dealstage: "s".into(),
            properties: vec![],
            associations: crate::domain::Associations::default(),
        });
        let body = letter.delivery.body_base64.clone();
        let letter = letter.redacted_by_field(&scrubber(), body);
        let json = serde_json::to_string(&letter).unwrap();
        assert!(!json.contains("pat-secret"), "{json}");
        assert!(letter.deal_draft.is_none());
        assert_eq!(letter.errors.last().unwrap().code, "redacted");
    }

    /// Query names are compared as the token scheme reads them: percent-decoded, `+` as a space.
    #[test]
    fn percent_encoded_query_names_are_recognised() {
        let cases = [
            ("tok%65n=abc&form=7", "tok%65n=[redacted]&form=7"),
            ("%74%6F%6B%65%6E=abc", "%74%6F%6B%65%6E=[redacted]"),
            ("hap%69key=abc", "hap%69key=[redacted]"),
            ("api+key=abc", "api+key=[redacted]"),
            ("x%2Dsignature=abc", "x%2Dsignature=[redacted]"),
            ("form=7&name=t%6Fken", "form=7&name=t%6Fken"),
            ("%ZZtoken=1&%=2", "%ZZtoken=[redacted]&%=2"),
            ("%ff%fe=1", "%ff%fe=1"),
        ];
        for (query, want) in cases {
            assert_eq!(redact_query(query), want, "{query}");
        }
    }

    #[test]
    fn an_envelope_round_trips_through_json() {
        let letter = DeadLetter::new(
            &delivery(),
            "r",
            crate::domain::Reason::DecodeFailed,
            vec![Problem::at("body", "invalid_json", "x")],
        );
        let back: DeadLetter = serde_json::from_str(&serde_json::to_string(&letter).unwrap()).unwrap();
        assert_eq!(back, letter);
    }
}
