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
use super::{CreatedDeal, DealWrite, HubSpotApi, HubSpotErrorBody, HubSpotOptions, HubSpotRequest, ObjectType, v1};
use crate::domain::{Associations, DealDraft};

mod companies;
mod contacts;
mod deals_search;

pub use companies::*;
pub use contacts::*;
pub use deals_search::*;

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
        write: DealWrite::Created,
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
        // HubSpot's BatchResponseSimplePublicUpsertObject always has `new`; were it absent, the deal
        // is reported as created (what dealhook answered before it read `new`).
        Some(Ok(upserted)) => Ok(CreatedDeal {
            deal_id: upserted.id,
            write: if upserted.created == Some(false) {
                DealWrite::Updated
            } else {
                DealWrite::Created
            },
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
mod tests;
