//! The CRM v3 and date-versioned (2026-03) wire format: request builders and answer parsers for
//! every call a delivery may make — deal create and upsert, contacts upsert by e-mail, company search
//! by domain and create, and a default association after the fact. Pure functions, no I/O.
//!
//! Both versions share their bodies (HubSpot's 2026-03 documents have the v3 component schemas);
//! only the path prefix differs ([`HubSpotApi::objects_prefix`]). Bodies are checked against the
//! OpenAPI documents in `tests/fixtures/hubspot-openapi/` by `tests/api/hubspot_wire.rs`. Batch
//! answers are matched to inputs by key (`objectWriteTraceId`, or the `idProperty` value, e-mails
//! lower-cased), never by position: HubSpot returns them in any order (catalog item 19).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::answer::error_body;
use super::api::association_type;
use super::{CreatedDeal, HubSpotApi, HubSpotErrorBody, HubSpotOptions, HubSpotRequest, ObjectType, v1};
use crate::domain::{Associations, DealDraft};

/// Most search results asked for: a domain has a handful of companies at most (search pages cap at
/// 200; catalog item 15).
const SEARCH_LIMIT: u32 = 10;

/// The route upserts by a property the draft has no value for: nothing can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the deal has no value for `{property}`, the unique property `hubspot.upsert_by` upserts by")]
pub struct MissingUpsertKey {
    /// The property (`hubspot.upsert_by`).
    pub property: String,
}

/// Why a 2xx answer could not be read. HubSpot may have written regardless, so a write's caller
/// reports these as `OutcomeUnknown`. Messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The body is not JSON (serde_json's message names only the position).
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("the response is not a JSON object")]
    NotAnObject,
    /// A field the answer must have is missing or null.
    #[error("the response has no {0}")]
    Missing(&'static str),
    /// A record id is not a string (or number) of digits.
    #[error("the response's {0} is not a record id")]
    InvalidId(&'static str),
}

/// The request a route's deal goes out as: v1's `POST /deals/v1/deal/` ([`v1::create_request`]),
/// v3's or 2026-03's create ([`deal_create_request`]), or, with `upsert_by`, their batch upsert
/// ([`deal_upsert_request`]). v1 has no upsert (the mapping refuses `upsert_by` with v1), so there
/// `upsert_by` is not read.
pub fn deal_request(options: &HubSpotOptions, draft: &DealDraft) -> Result<HubSpotRequest, MissingUpsertKey> {
    match (options.api, &options.upsert_by) {
        (HubSpotApi::V1, _) => Ok(v1::create_request(draft)),
        (api, None) => Ok(deal_create_request(api, draft)),
        (api, Some(property)) => deal_upsert_request(api, draft, property),
    }
}

/// `POST /crm/v3/objects/deals` or `POST /crm/objects/2026-03/deals` (`SimplePublicObjectInputForCreate`):
/// `{"properties":{"pipeline":…,"dealstage":…,…},"associations":[{"to":{"id":"…"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":3}]},…]}`.
///
/// Properties are strings in mapping order after `pipeline` and `dealstage` (dates and date-times as
/// epoch milliseconds, which HubSpot accepts for both). Contacts are linked with type 3 and companies
/// with type 5 ([`association_type`]); `associations` is always sent (the schema requires it), empty
/// when there is nothing to link. `HubSpotApi::V1` is taken as v3 here.
pub fn deal_create_request(api: HubSpotApi, draft: &DealDraft) -> HubSpotRequest {
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/deals", api.objects_prefix()),
        body: json!({
            "properties": deal_properties(draft),
            "associations": deal_associations(&draft.associations),
        }),
    }
}

/// `POST …/deals/batch/upsert` (`BatchInputSimplePublicObjectBatchInputUpsert`) with one input:
/// `{"inputs":[{"idProperty":P,"id":V,"objectWriteTraceId":V,"properties":{…}}]}`, where `V` is the
/// draft's value of `id_property` (as sent among the properties). The upsert input has no
/// `associations`: a deal upserted this way is linked afterwards ([`association_request`]).
pub fn deal_upsert_request(
    api: HubSpotApi,
    draft: &DealDraft,
    id_property: &str,
) -> Result<HubSpotRequest, MissingUpsertKey> {
    let properties = deal_properties(draft);
    let key = properties
        .get(id_property)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| MissingUpsertKey {
            property: id_property.to_owned(),
        })?
        .to_owned();
    Ok(HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/deals/batch/upsert", api.objects_prefix()),
        body: json!({"inputs": [{
            "idProperty": id_property,
            "id": key,
            "objectWriteTraceId": key,
            "properties": properties,
        }]}),
    })
}

/// The draft's properties as v3 spells them: an object of strings, `pipeline` and `dealstage` first.
pub fn deal_properties(draft: &DealDraft) -> Map<String, Value> {
    let mut properties = Map::new();
    if let Some(pipeline) = &draft.pipeline {
        properties.insert("pipeline".to_owned(), Value::String(pipeline.clone()));
    }
    properties.insert("dealstage".to_owned(), Value::String(draft.dealstage.clone()));
    for p in &draft.properties {
        properties.insert(p.name.clone(), Value::String(p.value.to_wire_string()));
    }
    properties
}

/// Inline associations of a deal create: contacts (type 3), then companies (type 5).
pub fn deal_associations(associations: &Associations) -> Vec<Value> {
    let link = |id: u64, type_id: u32| {
        json!({"to": {"id": id.to_string()},
               "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
    };
    let contacts = associations
        .contact_ids
        .iter()
        .map(|id| link(*id, association_type::DEAL_TO_CONTACT));
    let companies = associations
        .company_ids
        .iter()
        .map(|id| link(*id, association_type::DEAL_TO_COMPANY));
    contacts.chain(companies).collect()
}

/// Reads a create's answer (`SimplePublicObject`, 201, or 200 as HubSpot sometimes says): its `id`.
pub fn parse_created_object(body: &[u8]) -> Result<u64, ResponseError> {
    let object = json_object(body)?;
    record_id(object.get("id"), "id")
}

/// Reads a v3/2026-03 deal create's answer as a [`CreatedDeal`] (no portal id, no association
/// failures: an invalid inline association fails the whole create with a 400; catalog item 23).
pub fn parse_created_deal(body: &[u8]) -> Result<CreatedDeal, ResponseError> {
    Ok(CreatedDeal {
        deal_id: parse_created_object(body)?,
        portal_id: None,
        association_create_failures: Vec::new(),
    })
}

/// A record a batch upsert wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    /// Its id.
    pub id: u64,
    /// `new`: created (`true`) or updated (`false`); `None` when HubSpot did not say.
    pub created: Option<bool>,
}

/// Why one input of a batch has no record.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFailure {
    /// HubSpot reported an error for it (in a 207's `errors[]`, matched by `objectWriteTraceId`
    /// or `context.ids`).
    Rejected(HubSpotErrorBody),
    /// Neither a result nor an error names it: HubSpot may or may not have written it
    /// (`outcome_unknown`; catalog item 21).
    Missing,
    /// Several results name it with different ids: which record it is cannot be told.
    Conflicting(Vec<u64>),
}

/// A batch upsert's answer, input by input.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Every input key sent, in the order sent, with its record or why it has none.
    pub inputs: Vec<(String, Result<Upserted, InputFailure>)>,
    /// Errors that name no input sent (kept for the dead letter).
    pub unmatched_errors: Vec<HubSpotErrorBody>,
}

impl BatchOutcome {
    /// The outcome for `key` (compared as [`parse_batch_upsert`] normalised it).
    pub fn get(&self, key: &str) -> Option<&Result<Upserted, InputFailure>> {
        self.inputs.iter().find(|(k, _)| k == key).map(|(_, r)| r)
    }
}

/// Reads a batch upsert's 200/207 answer (`BatchResponseSimplePublicUpsertObject[WithErrors]`) for
/// the inputs sent under `keys` (their `id`/`objectWriteTraceId`), upserted by `id_property`.
///
/// A result belongs to the input whose key equals its `objectWriteTraceId` or its
/// `properties.<id_property>`; an error to the inputs named in its `context.objectWriteTraceId` or
/// `context.ids`. Keys are compared after `normalise` (e-mails: [`normalise_email`]). Every input gets
/// an outcome: its record, HubSpot's error, [`InputFailure::Missing`], or
/// [`InputFailure::Conflicting`]. Never by position.
pub fn parse_batch_upsert(
    body: &[u8],
    id_property: &str,
    keys: &[String],
    normalise: fn(&str) -> String,
) -> Result<BatchOutcome, ResponseError> {
    let object = json_object(body)?;
    let results = match object.get("results") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(Value::Null) | None => &[],
        Some(_) => return Err(ResponseError::Missing("results list")),
    };
    let mut found: BTreeMap<String, Vec<Upserted>> = BTreeMap::new();
    for result in results {
        let Some(result) = result.as_object() else { continue };
        let id = record_id(result.get("id"), "results[].id")?;
        let upserted = Upserted {
            id,
            created: result.get("new").and_then(Value::as_bool),
        };
        let trace = result.get("objectWriteTraceId").and_then(Value::as_str);
        let echoed = result
            .get("properties")
            .and_then(|p| p.get(id_property))
            .and_then(Value::as_str);
        let mut named: Vec<String> = trace.into_iter().chain(echoed).map(normalise).collect();
        named.dedup();
        for key in named {
            let ids = found.entry(key).or_default();
            if !ids.contains(&upserted) {
                ids.push(upserted);
            }
        }
    }

    let mut failed: BTreeMap<String, HubSpotErrorBody> = BTreeMap::new();
    let mut unmatched_errors = Vec::new();
    let errors = object
        .get("errors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for error in errors {
        let Some(error) = error.as_object() else { continue };
        let parsed = error_body(error);
        let named: Vec<String> = ["objectWriteTraceId", "ids"]
            .iter()
            .flat_map(|k| parsed.details.context.get(*k).into_iter().flatten())
            .map(|k| normalise(k))
            .filter(|k| keys.iter().any(|sent| normalise(sent) == *k))
            .collect();
        if named.is_empty() {
            unmatched_errors.push(parsed);
            continue;
        }
        for key in named {
            failed.entry(key).or_insert_with(|| parsed.clone());
        }
    }

    let inputs = keys
        .iter()
        .map(|sent| {
            let key = normalise(sent);
            let outcome = match found.get(&key) {
                Some(records) if !records.is_empty() => {
                    let mut ids: Vec<u64> = records.iter().map(|u| u.id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    match (ids.len(), records.first()) {
                        (1, Some(first)) => Ok(*first),
                        _ => Err(InputFailure::Conflicting(ids)),
                    }
                }
                _ => match failed.remove(&key) {
                    Some(error) => Err(InputFailure::Rejected(error)),
                    None => Err(InputFailure::Missing),
                },
            };
            (key, outcome)
        })
        .collect();
    Ok(BatchOutcome {
        inputs,
        unmatched_errors,
    })
}

/// Reads a deal batch upsert's answer for the one deal sent under `key`: the deal, or the error
/// HubSpot gave for it (a 207), or `OutcomeUnknown` when the answer names it nowhere.
pub fn parse_deal_upsert(
    status: u16,
    body: &[u8],
    id_property: &str,
    key: &str,
) -> Result<CreatedDeal, super::HubSpotError> {
    let unknown = |message: String| super::HubSpotError::OutcomeUnknown {
        status: Some(status),
        message,
    };
    let outcome = parse_batch_upsert(body, id_property, &[key.to_owned()], str::to_owned)
        .map_err(|e| unknown(format!("HTTP {status} but {e}; the deal may exist")))?;
    match outcome.get(key) {
        Some(Ok(upserted)) => Ok(CreatedDeal {
            deal_id: upserted.id,
            portal_id: None,
            association_create_failures: Vec::new(),
        }),
        Some(Err(InputFailure::Rejected(body))) => Err(super::HubSpotError::Rejected {
            status,
            raw: serde_json::to_string(body).unwrap_or_default(),
            body: body.clone(),
        }),
        Some(Err(InputFailure::Conflicting(ids))) => Err(unknown(format!(
            "HTTP {status} names several deals for {id_property} {key:?} ({ids:?})"
        ))),
        Some(Err(InputFailure::Missing)) | None => Err(unknown(format!(
            "HTTP {status} but the answer names no deal for the one sent; the deal may exist"
        ))),
    }
}

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

/// A domain HubSpot's `domain` property could hold; the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid company domain: {0}")]
pub struct InvalidDomain(pub &'static str);

/// The domain as HubSpot stores it (search needs the exact stored string; catalog item 17):
/// trimmed, lower-cased, without scheme, user info, path, query, port, a leading `www.` and a
/// trailing dot. It needs a dot, labels of letters, digits and inner hyphens, at most 253 bytes.
pub fn normalise_domain(raw: &str) -> Result<String, InvalidDomain> {
    let mut domain = raw.trim().to_lowercase();
    if let Some((_, rest)) = domain.split_once("://") {
        domain = rest.to_owned();
    }
    let end = domain.find(['/', '?', '#']).unwrap_or(domain.len());
    domain.truncate(end);
    if let Some((_, host)) = domain.rsplit_once('@') {
        domain = host.to_owned();
    }
    if let Some((host, port)) = domain.rsplit_once(':')
        && port.chars().all(|c| c.is_ascii_digit())
    {
        domain = host.to_owned();
    }
    let domain = domain.trim_end_matches('.');
    let domain = domain.strip_prefix("www.").unwrap_or(domain).to_owned();
    if domain.is_empty() {
        return Err(InvalidDomain("it is empty"));
    }
    if domain.len() > 253 {
        return Err(InvalidDomain("longer than 253 characters"));
    }
    if !domain.contains('.') {
        return Err(InvalidDomain("it needs a dot (e.g. acme.example)"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(InvalidDomain(
            "each part needs letters, digits or inner hyphens (internationalised names in their xn-- form)",
        ));
    }
    Ok(domain)
}

/// `POST …/companies/search` (`PublicObjectSearchRequest`) for companies whose `domain` is `domain`
/// or whose `hs_additional_domains` holds it (two filter groups, OR; catalog item 17), asking for
/// `domain`, `name` and `createdate`, at most 10. `domain` should be [`normalise_domain`]'s.
/// Search lags writes by seconds (catalog item 14): "none found" is a hint, not a fact.
pub fn company_search_request(api: HubSpotApi, domain: &str) -> HubSpotRequest {
    let filter = |property: &str, operator: &str| json!({"filters": [{"propertyName": property, "operator": operator, "value": domain}]});
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/companies/search", api.objects_prefix()),
        body: json!({
            "filterGroups": [filter("domain", "EQ"), filter("hs_additional_domains", "CONTAINS_TOKEN")],
            "properties": ["domain", "name", "createdate"],
            "sorts": [],
            "limit": SEARCH_LIMIT,
            "after": "0",
        }),
    }
}

/// The company a domain search chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompanyMatch {
    /// The lowest id among the results (the oldest record: a deterministic choice when API-created
    /// duplicates share a domain; catalog item 17).
    pub id: u64,
    /// How many companies the search returned.
    pub candidates: usize,
}

/// Reads a search answer (`CollectionResponseWithTotalSimplePublicObject`): `None` when it found
/// nothing. Results without a readable id are an error (which company it is cannot be told).
pub fn parse_company_search(body: &[u8]) -> Result<Option<CompanyMatch>, ResponseError> {
    let object = json_object(body)?;
    let results = match object.get("results") {
        Some(Value::Array(items)) => items,
        _ => return Err(ResponseError::Missing("results list")),
    };
    let mut ids = Vec::with_capacity(results.len());
    for result in results {
        ids.push(record_id(result.get("id"), "results[].id")?);
    }
    Ok(ids.iter().min().map(|id| CompanyMatch {
        id: *id,
        candidates: ids.len(),
    }))
}

/// `POST …/companies` (`SimplePublicObjectInputForCreate`): `{"properties":{"domain":D,…},"associations":[]}`.
/// Empty property values are left out; a `domain` among `properties` is ignored (`domain` wins).
pub fn company_create_request(api: HubSpotApi, domain: &str, properties: &[(String, String)]) -> HubSpotRequest {
    let mut map = Map::new();
    map.insert("domain".to_owned(), Value::String(domain.to_owned()));
    for (name, value) in properties {
        if !value.is_empty() && name != "domain" {
            map.insert(name.clone(), Value::String(value.clone()));
        }
    }
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/companies", api.objects_prefix()),
        body: json!({"properties": map, "associations": []}),
    }
}

/// `PUT {prefix}/{from}/{from_id}/associations/default/{to}/{to_id}` (no body): links two existing
/// records with HubSpot's default (unlabeled) association. The prefix is 2026-03's
/// `/crm/objects/2026-03` or v4's `/crm/v4/objects` ([`HubSpotApi::associations_prefix`]).
pub fn association_request(
    api: HubSpotApi,
    from: ObjectType,
    from_id: u64,
    to: ObjectType,
    to_id: u64,
) -> HubSpotRequest {
    HubSpotRequest {
        method: "PUT".to_owned(),
        path: format!(
            "{}/{}/{from_id}/associations/default/{}/{to_id}",
            api.associations_prefix(),
            from.path_name(),
            to.path_name()
        ),
        body: Value::Null,
    }
}

/// Reads the default association's answer (`BatchResponsePublicDefaultAssociation`): the link was
/// made unless the body lists `errors` (returned as HubSpot's first error). An unreadable body after
/// a 2xx is taken as done: the `PUT` can be repeated at no cost if in doubt.
pub fn parse_association(body: &[u8]) -> Result<(), HubSpotErrorBody> {
    let Ok(object) = json_object(body) else {
        return Ok(());
    };
    match object.get("errors").and_then(Value::as_array).and_then(|e| e.first()) {
        Some(Value::Object(error)) => Err(error_body(error)),
        Some(other) => Err(HubSpotErrorBody {
            message: Some(other.to_string()),
            ..HubSpotErrorBody::default()
        }),
        None => Ok(()),
    }
}

pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ResponseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ResponseError::NotAnObject),
        Err(e) => Err(ResponseError::NotJson(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))),
    }
}

/// A record id: HubSpot sends a string of digits (`"40123456789"`); a JSON integer is accepted too.
fn record_id(value: Option<&Value>, field: &'static str) -> Result<u64, ResponseError> {
    match value {
        None | Some(Value::Null) => Err(ResponseError::Missing(field)),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| ResponseError::InvalidId(field))
        }
        Some(Value::Number(n)) => n.as_u64().ok_or(ResponseError::InvalidId(field)),
        Some(_) => Err(ResponseError::InvalidId(field)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| (*k).to_owned()).collect()
    }

    /// Every way a batch answer can account (or fail to account) for an input.
    mod batch_matching {
        use super::*;

        #[test]
        fn results_are_matched_by_trace_id_or_echoed_key_in_any_order() {
            let body = json!({"status": "COMPLETE", "results": [
                {"id": "2", "new": false, "objectWriteTraceId": "b@x.example", "properties": {}},
                {"id": "1", "new": true, "properties": {"email": "A@X.example"}}
            ]});
            let outcome = parse_batch_upsert(
                body.to_string().as_bytes(),
                "email",
                &keys(&["a@x.example", "b@x.example"]),
                normalise_email,
            )
            .unwrap();
            assert_eq!(
                outcome.get("a@x.example"),
                Some(&Ok(Upserted {
                    id: 1,
                    created: Some(true)
                }))
            );
            assert_eq!(
                outcome.get("b@x.example"),
                Some(&Ok(Upserted {
                    id: 2,
                    created: Some(false)
                }))
            );
        }

        #[test]
        fn errors_are_matched_by_trace_id_or_ids_and_the_rest_kept_unmatched() {
            let body = json!({"status": "COMPLETE", "results": [], "errors": [
                {"category": "OBJECT_NOT_FOUND", "message": "m", "context": {"ids": ["A@x.example"]}},
                {"category": "VALIDATION_ERROR", "message": "n", "context": {"objectWriteTraceId": ["someone-else"]}},
            ]});
            let outcome = parse_batch_upsert(
                body.to_string().as_bytes(),
                "email",
                &keys(&["a@x.example", "c@x.example"]),
                normalise_email,
            )
            .unwrap();
            assert!(
                matches!(outcome.get("a@x.example"), Some(Err(InputFailure::Rejected(b))) if b.category.as_deref() == Some("OBJECT_NOT_FOUND"))
            );
            assert_eq!(outcome.get("c@x.example"), Some(&Err(InputFailure::Missing)));
            assert_eq!(outcome.unmatched_errors.len(), 1);
        }

        #[test]
        fn two_records_for_one_key_are_conflicting_and_a_result_wins_over_an_error() {
            let body = json!({"results": [
                {"id": "1", "properties": {"k": "v"}}, {"id": "3", "objectWriteTraceId": "v"},
                {"id": "5", "properties": {"k": "w"}}
            ], "errors": [{"message": "late", "context": {"objectWriteTraceId": ["w"]}}]});
            let outcome =
                parse_batch_upsert(body.to_string().as_bytes(), "k", &keys(&["v", "w"]), str::to_owned).unwrap();
            assert_eq!(outcome.get("v"), Some(&Err(InputFailure::Conflicting(vec![1, 3]))));
            assert_eq!(outcome.get("w"), Some(&Ok(Upserted { id: 5, created: None })));
        }

        #[test]
        fn unreadable_answers_are_errors_not_guesses() {
            let parse = |b: &str| parse_batch_upsert(b.as_bytes(), "k", &keys(&["v"]), str::to_owned);
            assert!(matches!(parse("<html>"), Err(ResponseError::NotJson(_))));
            assert_eq!(parse("[]"), Err(ResponseError::NotAnObject));
            assert_eq!(parse(r#"{"results": {}}"#), Err(ResponseError::Missing("results list")));
            assert_eq!(
                parse(r#"{"results": [{"id": "-1"}]}"#),
                Err(ResponseError::InvalidId("results[].id"))
            );
            assert_eq!(
                parse(r#"{"results": [{"new": true}]}"#),
                Err(ResponseError::Missing("results[].id"))
            );
            // No results at all (catalog item 21): the input is missing, not a success.
            assert_eq!(
                parse(r#"{"status":"COMPLETE"}"#).unwrap().get("v"),
                Some(&Err(InputFailure::Missing))
            );
        }
    }

    #[test]
    fn a_company_search_picks_the_lowest_id_and_refuses_unreadable_ids() {
        let found = parse_company_search(br#"{"total":3,"results":[{"id":"30"},{"id":"10"},{"id":"20"}]}"#).unwrap();
        assert_eq!(found, Some(CompanyMatch { id: 10, candidates: 3 }));
        assert_eq!(parse_company_search(br#"{"total":0,"results":[]}"#), Ok(None));
        assert_eq!(
            parse_company_search(br#"{"results":[{"id":"x"}]}"#),
            Err(ResponseError::InvalidId("results[].id"))
        );
        assert_eq!(
            parse_company_search(br#"{"total":0}"#),
            Err(ResponseError::Missing("results list"))
        );
    }

    #[test]
    fn an_association_answer_without_errors_is_done() {
        assert_eq!(parse_association(br#"{"status":"COMPLETE","results":[]}"#), Ok(()));
        assert_eq!(parse_association(b""), Ok(()));
        assert!(parse_association(br#"{"errors":[{"message":"no"}]}"#).is_err());
    }
}
