//! Domain types shared by every layer: Submission (what came in), DealDraft (what HubSpot
//! should hold) and Problem (one reported error). No I/O and no vendor wire format here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// Flat map of fields, keyed the way users name them.
    pub fields: Map<String, Value>,
    /// The decoded body as it arrived.
    pub raw: Value,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// HubSpot internal property name.
    pub name: String,
    /// The converted value.
    pub value: PropValue,
}

/// A converted property value. The wire layer decides how each is spelt per API version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Ids of existing HubSpot records to associate with a new deal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Associations {
    /// Company ids.
    pub company_ids: Vec<u64>,
    /// Contact ids (vids).
    pub contact_ids: Vec<u64>,
}

impl Associations {
    /// True when there is nothing to associate.
    pub fn is_empty(&self) -> bool {
        self.company_ids.is_empty() && self.contact_ids.is_empty()
    }
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
