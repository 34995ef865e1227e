//! The dead-letter envelope: the original delivery (secrets redacted), why it failed, and
//! the deal request if mapping got that far. Versioned; documented in docs/dead-letters.md.
//! Nothing secret may enter an envelope: headers and query parameters are redacted here.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::domain::{DealDraft, Problem, Reason};
use crate::hubspot::HubSpotRequest;
use crate::inbound::Delivery;

/// Envelope format version. Bump on any incompatible change.
pub const ENVELOPE_VERSION: u32 = 1;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

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
    /// The HubSpot request built from the draft, when mapping succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_request: Option<HubSpotRequest>,
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
    /// The raw body, base64 (standard alphabet, padded).
    pub body_base64: String,
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
    /// How many attempts were made.
    pub attempts: u32,
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
        }
    }

    /// The original body bytes.
    pub fn body(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.delivery.body_base64)
    }
}

impl DeliveryRecord {
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

/// Redacts the values of secret-looking parameters in a raw query string.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
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
