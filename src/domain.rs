//! Domain types shared by every layer: Submission (what came in), DealDraft (what HubSpot
//! should hold) and Problem (one reported error). No I/O and no vendor wire format here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod address;

pub use address::{CompanyDomain, Email, InvalidDomain, InvalidEmail};

/// A decoded, normalised delivery: what a mapping sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The route's source kind (`json`, `form`, later provider names).
    pub source: String,
    /// The provider's event or delivery id, when it has one (the idempotency key).
    pub id: Option<String>,
    /// When the provider says the submission was made (RFC 3339), when it says so.
    pub submitted_at: Option<String>,
    /// The provider's event type, when it has one (`checkout.session.completed`, `form_response`, …).
    pub event_type: Option<String>,
    /// When dealhook received the delivery (RFC 3339, UTC).
    pub received_at: String,
    /// Flat map of fields, keyed the way users name them. Shared (an `Arc`): the templates of a
    /// delivery read it in place, without a copy per scope.
    pub fields: Arc<Map<String, Value>>,
    /// The decoded body as it arrived; shared as `fields` is.
    pub raw: Arc<Value>,
}

/// What we want HubSpot to hold, independent of the API version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealDraft {
    /// Pipeline id; `None` lets HubSpot pick the account's default pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Deal stage id (required by the API).
    pub dealstage: String,
    /// Other properties, in mapping order. Never contains `pipeline` or `dealstage`.
    pub properties: Vec<Property>,
    /// Records to associate with the new deal.
    pub associations: Associations,
}

/// One deal property and its typed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// HubSpot internal property name.
    pub name: String,
    /// The converted value.
    pub value: PropValue,
}

/// A converted property value. The wire layer decides how each is spelt per API version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum PropValue {
    /// Text as rendered.
    Text(String),
    /// A number in canonical decimal form (`12500.5`, `-3`, `0.25`).
    Number(String),
    /// Epoch milliseconds at midnight UTC of a calendar date.
    Date(i64),
    /// Exact epoch milliseconds.
    DateTime(i64),
    /// A boolean.
    Bool(bool),
}

impl PropValue {
    /// The value as HubSpot's string form (`"12500.5"`, `"1733011200000"`, `"true"`).
    pub fn to_wire_string(&self) -> String {
        match self {
            PropValue::Text(s) | PropValue::Number(s) => s.clone(),
            PropValue::Date(ms) | PropValue::DateTime(ms) => ms.to_string(),
            PropValue::Bool(b) => b.to_string(),
        }
    }
}

/// The records to associate with a new deal: existing ones by id, and contacts and companies that
/// dealhook finds (or creates) first, by e-mail and by domain.
///
/// JSON (camelCase; dead letters carry it): `companyIds` and `contactIds` always, the others only
/// when not empty, and read as empty when absent (dead letters written before they existed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Associations {
    /// Company ids.
    pub company_ids: Vec<u64>,
    /// Contact ids (vids).
    pub contact_ids: Vec<u64>,
    /// Contacts to upsert by e-mail and link, in mapping order; one per e-mail (the first wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts_by_email: Vec<ContactUpsert>,
    /// Companies to find by domain (and create if allowed) and link, in mapping order; one per
    /// domain (the first wins). Never a free-mail domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companies_by_domain: Vec<CompanyLookup>,
    /// Company domains the mapping produced but left out because they are free-mail domains
    /// (`gmail.com`, …): nothing is looked up or created for them. Informational (for `transform`,
    /// dry runs and dead letters); never sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_free_mail_domains: Vec<CompanyDomain>,
}

impl Associations {
    /// True when there is nothing to associate (skipped free-mail domains do not count).
    pub fn is_empty(&self) -> bool {
        self.company_ids.is_empty()
            && self.contact_ids.is_empty()
            && self.contacts_by_email.is_empty()
            && self.companies_by_domain.is_empty()
    }
}

/// A contact to create or update by e-mail (HubSpot's upsert with `idProperty: email`), then link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpsert {
    /// The contact's e-mail, trimmed and lower case.
    pub email: Email,
    /// Contact properties (`firstname`, `lastname`, `phone`, …), converted as deal properties
    /// are, in mapping order; empty ones are left out. Never contains `email`.
    pub properties: Vec<Property>,
}

/// A company to find by its `domain` property, created when missing if `create_missing`, then linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyLookup {
    /// The normalised domain (see [`CompanyDomain`]).
    pub domain: CompanyDomain,
    /// Create the company (with `domain` and `properties`) when no company has this domain.
    pub create_missing: bool,
    /// Properties for the company when it is created (`name`, …), in mapping order; empty ones are
    /// left out. Never contains `domain`.
    pub properties: Vec<Property>,
}

/// One reported error: which field, which rule, and a sentence for a person.
/// Used in 202 bodies, dead letters and `dealhook check`. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where: `properties.amount`, `dealstage`, `body`, a HubSpot property name, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Machine-readable rule code: `required`, `invalid_number`, `no_match`, …
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl Problem {
    /// A problem tied to a field.
    pub fn at(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: Some(field.into()),
            code: code.into(),
            message: message.into(),
        }
    }

    /// A problem not tied to one field.
    pub fn general(code: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: None,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {} ({})", self.message, self.code),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}

/// A route that did not take a delivery, as its `ignored` answer shows it: the route, its `match`
/// as written and what each variable path the expression reads held for this delivery (`null`
/// when absent), so the sender and the mapping's author see why nothing matched. The values come
/// from the delivery itself; they go into the answer to its sender, never into a log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmatched {
    /// The route's name.
    pub route: String,
    /// The route's `match:` expression, as written in the mapping.
    #[serde(rename = "match")]
    pub condition: String,
    /// Each path the expression reads (`submission.event_type`, `fields.form_id`), in name order,
    /// with its value (long text shortened, lists and objects over a few hundred characters
    /// summarised; see [`Unmatched::MAX_VALUE_CHARS`]).
    pub saw: Map<String, Value>,
}

impl Unmatched {
    /// The longest value shown as it is, in characters of its JSON; longer text is cut (ending in
    /// `…`), a longer list or object is replaced by a sentence giving its size.
    pub const MAX_VALUE_CHARS: usize = 200;
}

/// Why a delivery was dead-lettered: the `reason` of a dead letter, of a `202 dead_lettered` answer,
/// of the SQS message attribute `dealhook-reason` and of log lines. A documented contract
/// (README, docs/dead-letters.md): serialised in `snake_case`, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The body could not be decoded (malformed JSON, bad UTF-8, a broken multipart body) or the
    /// provider's normaliser could not read it.
    DecodeFailed,
    /// A route's `match` expression failed to evaluate.
    MatchFailed,
    /// The mapping could not build the deal (field-level errors say which property and rule).
    MappingFailed,
    /// The HubSpot credential could not be read from Secrets Manager (or the secret holds none).
    SecretUnavailable,
    /// HubSpot answered 4xx (other than 401/403/429): the request itself was refused.
    #[serde(rename = "hubspot_rejected")]
    HubSpotRejected,
    /// HubSpot refused the credential (401/403), also after re-reading the secret.
    #[serde(rename = "hubspot_unauthorized")]
    HubSpotUnauthorized,
    /// HubSpot's rate limit (429) outlasted the retries, or the daily limit is spent.
    #[serde(rename = "hubspot_rate_limited")]
    HubSpotRateLimited,
    /// HubSpot answered 5xx or could not be reached; nothing was created.
    #[serde(rename = "hubspot_unavailable")]
    HubSpotUnavailable,
    /// `on_association_failure: dead_letter` and a record to link does not exist, with no HubSpot
    /// error (no company has the domain and the route says `create_missing: false`).
    AssociationNotFound,
    /// The request reached HubSpot, or may have, and whether it wrote is unknown: no answer came (a
    /// timeout after sending), or HubSpot answered 500 or 524, which it may do after writing. The deal
    /// may exist.
    OutcomeUnknown,
    /// The idempotency table could not be used, so the delivery was not sent unguarded.
    IdempotencyUnavailable,
}

impl Reason {
    /// Every reason, in the order the README lists them.
    pub const ALL: [Reason; 11] = [
        Reason::DecodeFailed,
        Reason::MatchFailed,
        Reason::MappingFailed,
        Reason::SecretUnavailable,
        Reason::HubSpotRejected,
        Reason::HubSpotUnauthorized,
        Reason::HubSpotRateLimited,
        Reason::HubSpotUnavailable,
        Reason::AssociationNotFound,
        Reason::OutcomeUnknown,
        Reason::IdempotencyUnavailable,
    ];

    /// The contract name (`mapping_failed`, `hubspot_rejected`, …), as serde spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DecodeFailed => "decode_failed",
            Reason::MatchFailed => "match_failed",
            Reason::MappingFailed => "mapping_failed",
            Reason::SecretUnavailable => "secret_unavailable",
            Reason::HubSpotRejected => "hubspot_rejected",
            Reason::HubSpotUnauthorized => "hubspot_unauthorized",
            Reason::HubSpotRateLimited => "hubspot_rate_limited",
            Reason::HubSpotUnavailable => "hubspot_unavailable",
            Reason::AssociationNotFound => "association_not_found",
            Reason::OutcomeUnknown => "outcome_unknown",
            Reason::IdempotencyUnavailable => "idempotency_unavailable",
        }
    }

    /// Whether the errors of this reason are about the delivery's own content (which field, which
    /// rule), so the sender may see them. The others are about the deployment (Secrets Manager,
    /// HubSpot, DynamoDB): their answer carries [`Reason::message`] only, and the causes go to the
    /// log and the dead letter, which the operator owns.
    pub fn concerns_the_delivery(self) -> bool {
        matches!(self, Reason::DecodeFailed | Reason::MatchFailed | Reason::MappingFailed)
    }

    /// The fixed sentence a `202 dead_lettered` answer carries for this reason. Names no resource,
    /// account, URL or cause: those are in the dead letter.
    pub fn message(self) -> &'static str {
        match self {
            Reason::DecodeFailed => "the body could not be decoded; it was kept as a dead letter",
            Reason::MatchFailed => {
                "the endpoint's routes could not be evaluated on this delivery; it was kept as a dead letter"
            }
            Reason::MappingFailed => "the delivery could not be mapped to a deal; it was kept as a dead letter",
            Reason::SecretUnavailable => {
                "the HubSpot credential could not be read; the delivery was kept as a dead letter"
            }
            Reason::HubSpotRejected => {
                "HubSpot rejected a request for this delivery (the deal, a contact, a company or a link); it was kept as a dead letter"
            }
            Reason::HubSpotUnauthorized => {
                "HubSpot refused dealhook's credential; the delivery was kept as a dead letter"
            }
            Reason::HubSpotRateLimited => "HubSpot's rate limit was reached; the delivery was kept as a dead letter",
            Reason::HubSpotUnavailable => "HubSpot was unavailable; the delivery was kept as a dead letter",
            Reason::AssociationNotFound => {
                "a record to link to the deal was not found in HubSpot; the delivery was kept as a dead letter"
            }
            Reason::OutcomeUnknown => {
                "HubSpot's answer leaves it unknown whether the deal was created (it may exist); the delivery was kept as a dead letter"
            }
            Reason::IdempotencyUnavailable => {
                "the delivery could not be guarded against duplicates; it was kept as a dead letter"
            }
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dead-letter reason {name:?}; known reasons: {known}",
    known = Reason::ALL.map(Reason::as_str).join(", ")
)]
pub struct UnknownReason {
    /// The name that was given.
    pub name: String,
}

impl std::str::FromStr for Reason {
    type Err = UnknownReason;

    /// The contract name exactly (`hubspot_rejected`), as [`Reason::as_str`] prints it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason { name: s.to_owned() })
    }
}

#[cfg(test)]
mod reason_tests {
    use super::*;

    #[test]
    fn serde_as_str_and_from_str_agree_on_every_reason() {
        for reason in Reason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, serde_json::Value::String(reason.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<Reason>(json).unwrap(), reason);
            assert_eq!(reason.as_str().parse::<Reason>().unwrap(), reason);
            assert_eq!(reason.to_string(), reason.as_str());
        }
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len(), "names are distinct");
    }

    #[test]
    fn the_documented_names_are_the_serialised_ones() {
        // The README and docs/dead-letters.md list these; a rename breaks users' alarms and filters.
        let documented = [
            "decode_failed",
            "match_failed",
            "mapping_failed",
            "secret_unavailable",
            "hubspot_rejected",
            "hubspot_unauthorized",
            "hubspot_rate_limited",
            "hubspot_unavailable",
            "association_not_found",
            "outcome_unknown",
            "idempotency_unavailable",
        ];
        assert_eq!(Reason::ALL.map(Reason::as_str), documented);
        assert!(serde_json::from_str::<Reason>("\"hub_spot_rejected\"").is_err());
        let err = "mapping-failed".parse::<Reason>().unwrap_err().to_string();
        assert!(
            err.contains("mapping_failed") && err.contains("mapping-failed"),
            "{err}"
        );
    }

    #[test]
    fn only_content_reasons_may_show_their_errors_to_the_sender() {
        let shown: Vec<_> = Reason::ALL.into_iter().filter(|r| r.concerns_the_delivery()).collect();
        assert_eq!(
            shown,
            [Reason::DecodeFailed, Reason::MatchFailed, Reason::MappingFailed]
        );
        for reason in Reason::ALL {
            let message = reason.message();
            assert!(message.ends_with("dead letter"), "{reason}: {message}");
        }
    }
}
