//! Contacts by e-mail: the e-mail rules, `…/contacts/batch/upsert` with `idProperty: email` and its answer.

use serde_json::{Map, Value, json};

use super::{BatchOutcome, ResponseError, parse_batch_upsert};
use crate::hubspot::{HubSpotApi, HubSpotRequest};

/// A contact to upsert by e-mail: the e-mail, trimmed and lower-cased (HubSpot compares e-mails
/// without case; catalog item 18), and properties as strings (left out when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    email: String,
    properties: Vec<(String, String)>,
}

/// An e-mail address HubSpot would refuse; the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid e-mail address: {0}")]
pub struct InvalidEmail(pub &'static str);

impl ContactInput {
    /// A contact for `email` (checked by [`normalise_email`] and [`check_email`]) with `properties`
    /// (`firstname`, `lastname`, `phone`, …); empty values are dropped, and an `email` property is
    /// ignored (the key is the e-mail).
    pub fn new(email: &str, properties: Vec<(String, String)>) -> Result<ContactInput, InvalidEmail> {
        let email = normalise_email(email);
        check_email(&email)?;
        let properties = properties
            .into_iter()
            .filter(|(name, value)| !value.is_empty() && name != "email")
            .collect();
        Ok(ContactInput { email, properties })
    }

    /// The normalised e-mail (the upsert key).
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The properties sent besides `email`.
    pub fn properties(&self) -> &[(String, String)] {
        &self.properties
    }

    /// `{"email": …, <properties>}`.
    pub(crate) fn property_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("email".to_owned(), Value::String(self.email.clone()));
        for (name, value) in &self.properties {
            map.insert(name.clone(), Value::String(value.clone()));
        }
        map
    }
}

/// Trimmed and lower-cased.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible address: one `@`, a non-empty local part of at most 64 bytes, a domain with a dot
/// and no empty label, at most 254 bytes, no whitespace or control characters. HubSpot checks the
/// rest (`INVALID_EMAIL`).
pub fn check_email(email: &str) -> Result<(), InvalidEmail> {
    if email.len() > 254 {
        return Err(InvalidEmail("longer than 254 characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidEmail("it contains a space or a control character"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(InvalidEmail("it has no @"));
    };
    if domain.contains('@') {
        return Err(InvalidEmail("it has more than one @"));
    }
    if local.is_empty() || local.len() > 64 {
        return Err(InvalidEmail("the part before @ is empty or longer than 64 characters"));
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(InvalidEmail("the domain needs a dot and no empty part"));
    }
    Ok(())
}

/// `POST …/contacts/batch/upsert` with `idProperty: email` (`BatchInputSimplePublicObjectBatchInputUpsert`):
/// one input per distinct e-mail (later repeats are dropped: HubSpot rejects a batch with a key twice,
/// catalog item 20), each `{"idProperty":"email","id":E,"objectWriteTraceId":E,"properties":{"email":E,…}}`.
/// `HubSpotApi::V1` is taken as v3 here (v1 routes use [`v1::contact_request`] instead).
pub fn contacts_upsert_request(api: HubSpotApi, contacts: &[ContactInput]) -> HubSpotRequest {
    let mut seen: Vec<&str> = Vec::new();
    let inputs: Vec<Value> = contacts
        .iter()
        .filter(|c| {
            let fresh = !seen.contains(&c.email());
            seen.push(c.email());
            fresh
        })
        .map(|c| {
            json!({"idProperty": "email", "id": c.email(), "objectWriteTraceId": c.email(),
                   "properties": c.property_map()})
        })
        .collect();
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/contacts/batch/upsert", api.objects_prefix()),
        body: json!({ "inputs": inputs }),
    }
}

/// Reads a contacts upsert's answer for `contacts` (keyed by lower-cased e-mail).
pub fn parse_contacts_upsert(body: &[u8], contacts: &[ContactInput]) -> Result<BatchOutcome, ResponseError> {
    let mut keys: Vec<String> = Vec::new();
    for c in contacts {
        if !keys.iter().any(|k| k == c.email()) {
            keys.push(c.email().to_owned());
        }
    }
    parse_batch_upsert(body, "email", &keys, normalise_email)
}
