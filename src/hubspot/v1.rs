//! HubSpot's legacy Deals v1 wire format: the `POST /deals/v1/deal/` body built from a DealDraft,
//! and lenient readers for its 200 answer and its JSON error body. Pure functions, no I/O.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::HubSpotRequest;
pub use super::answer::{is_daily_limit, parse_error_body};
use super::crm::ContactInput;
use super::{CreatedDeal, DealWrite};
use crate::domain::{DealDraft, PropValue};

/// Path of the create-deal endpoint, below the base URL (the trailing slash is HubSpot's own spelling).
pub const CREATE_DEAL_PATH: &str = "/deals/v1/deal/";

/// The request that creates `draft` as a deal:
/// `{"associations":{"associatedCompanyIds":[…],"associatedVids":[…]},"properties":[{"name":…,"value":…},…]}`.
///
/// `pipeline` (when set) comes first among the properties, then `dealstage`, then the draft's
/// properties in mapping order. Dates and date-times are sent as JSON numbers (epoch milliseconds,
/// as HubSpot's v1 examples send `closedate`); every other value as a JSON string.
/// `associations` is left out entirely when the draft has none (HubSpot allows orphaned deals);
/// when it has some, both lists are sent, the unused one empty.
pub fn create_request(draft: &DealDraft) -> HubSpotRequest {
    let mut properties = Vec::with_capacity(draft.properties.len() + 2);
    if let Some(pipeline) = &draft.pipeline {
        properties.push(property("pipeline", Value::String(pipeline.clone())));
    }
    properties.push(property("dealstage", Value::String(draft.dealstage.clone())));
    properties.extend(draft.properties.iter().map(|p| property(&p.name, wire_value(&p.value))));

    let mut body = Map::new();
    if !draft.associations.is_empty() {
        let mut associations = Map::new();
        associations.insert("associatedCompanyIds".to_owned(), ids(&draft.associations.company_ids));
        associations.insert("associatedVids".to_owned(), ids(&draft.associations.contact_ids));
        body.insert("associations".to_owned(), Value::Object(associations));
    }
    body.insert("properties".to_owned(), Value::Array(properties));

    HubSpotRequest {
        method: "POST".to_owned(),
        path: CREATE_DEAL_PATH.to_owned(),
        body: Value::Object(body),
    }
}

fn property(name: &str, value: Value) -> Value {
    let mut entry = Map::new();
    entry.insert("name".to_owned(), Value::String(name.to_owned()));
    entry.insert("value".to_owned(), value);
    Value::Object(entry)
}

fn ids(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|id| Value::from(*id)).collect())
}

/// How v1 spells a value: numbers of milliseconds for dates, strings for everything else.
fn wire_value(value: &PropValue) -> Value {
    match value {
        PropValue::Date(ms) | PropValue::DateTime(ms) => Value::from(*ms),
        other => Value::String(other.to_wire_string()),
    }
}

/// Why a 2xx answer could not be read as a created deal. The deal may exist regardless, so the
/// client reports these as `OutcomeUnknown`. Messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateResponseError {
    /// The body is not JSON (serde_json's message names only the position).
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("the response is not a JSON object")]
    NotAnObject,
    /// The object has no `dealId`.
    #[error("the response has no dealId")]
    MissingDealId,
    /// `dealId` is not a non-negative integer.
    #[error("the response's dealId is not a non-negative integer")]
    InvalidDealId,
    /// A contact answer has no `vid`.
    #[error("the response has no vid")]
    MissingVid,
    /// `vid` is not a non-negative integer.
    #[error("the response's vid is not a non-negative integer")]
    InvalidVid,
}

/// Reads HubSpot's 200 answer (`{"portalId":…,"dealId":…,"associationCreateFailures":[…]?,…}`).
///
/// Lenient: unknown fields are ignored, a missing or oddly typed `portalId` becomes `None`, a missing
/// or `null` `associationCreateFailures` becomes empty (a non-list value is kept as its only entry).
/// Strict only about `dealId`, which must be an integer: without it we cannot say which deal exists.
pub fn parse_created(body: &[u8]) -> Result<CreatedDeal, CreateResponseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| CreateResponseError::NotJson(position_only(&e)))?;
    let Value::Object(object) = value else {
        return Err(CreateResponseError::NotAnObject);
    };
    let deal_id = match object.get("dealId") {
        None | Some(Value::Null) => return Err(CreateResponseError::MissingDealId),
        Some(id) => id.as_u64().ok_or(CreateResponseError::InvalidDealId)?,
    };
    let portal_id = object.get("portalId").and_then(Value::as_u64);
    let association_create_failures = match object.get("associationCreateFailures") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    };
    Ok(CreatedDeal {
        write: DealWrite::Created,
        deal_id,
        portal_id,
        association_create_failures,
    })
}

/// Everything but RFC 3986's unreserved characters (`A–Z a–z 0–9 - . _ ~`) is percent-encoded in a
/// path segment: `@` as `%40`, `+` as `%2B` (a raw `+` may be read as a space), `/` as `%2F`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `POST /contacts/v1/contact/createOrUpdate/email/{email}/`: creates the contact with that e-mail or
/// updates it, `{"properties":[{"property":"email","value":E},{"property":"firstname","value":…},…]}`.
/// The e-mail is the normalised one, percent-encoded as one path segment (`PATH_SEGMENT`).
pub fn contact_request(contact: &ContactInput) -> HubSpotRequest {
    let property = |name: &str, value: &str| {
        let mut entry = Map::new();
        entry.insert("property".to_owned(), Value::String(name.to_owned()));
        entry.insert("value".to_owned(), Value::String(value.to_owned()));
        Value::Object(entry)
    };
    let properties: Vec<Value> = std::iter::once(property("email", contact.email()))
        .chain(contact.properties().iter().map(|(n, v)| property(n, v)))
        .collect();
    let mut body = Map::new();
    body.insert("properties".to_owned(), Value::Array(properties));
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!(
            "/contacts/v1/contact/createOrUpdate/email/{}/",
            utf8_percent_encode(contact.email(), PATH_SEGMENT)
        ),
        body: Value::Object(body),
    }
}

/// A contact v1's createOrUpdate wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactVid {
    /// The contact's `vid` (its record id).
    pub vid: u64,
    /// `isNew`, when HubSpot said.
    pub created: Option<bool>,
}

/// Reads createOrUpdate's 200 answer `{"vid":…,"isNew":…}`; `vid` must be a non-negative integer.
pub fn parse_contact(body: &[u8]) -> Result<ContactVid, CreateResponseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| CreateResponseError::NotJson(position_only(&e)))?;
    let Value::Object(object) = value else {
        return Err(CreateResponseError::NotAnObject);
    };
    let vid = match object.get("vid") {
        None | Some(Value::Null) => return Err(CreateResponseError::MissingVid),
        Some(id) => id.as_u64().ok_or(CreateResponseError::InvalidVid)?,
    };
    Ok(ContactVid {
        vid,
        created: object.get("isNew").and_then(Value::as_bool),
    })
}

/// serde_json's syntax errors name a position; data errors could quote a value, so keep the category.
fn position_only(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{Associations, Property};
    use crate::hubspot::{HubSpotErrorBody, ValidationResult};

    fn full_draft() -> DealDraft {
        DealDraft {
            pipeline: Some("default".to_owned()),
            dealstage: "appointmentscheduled".to_owned(),
            properties: vec![
                Property {
                    name: "dealname".to_owned(),
                    value: PropValue::Text("Ada's order".to_owned()),
                },
                Property {
                    name: "amount".to_owned(),
                    value: PropValue::Number("12500.5".to_owned()),
                },
                Property {
                    name: "closedate".to_owned(),
                    value: PropValue::Date(1_733_011_200_000),
                },
                Property {
                    name: "last_contacted".to_owned(),
                    value: PropValue::DateTime(1_733_054_400_123),
                },
                Property {
                    name: "is_priority".to_owned(),
                    value: PropValue::Bool(true),
                },
            ],
            associations: Associations {
                company_ids: vec![8_954_037],
                contact_ids: vec![27_136, 27_137],
                ..Associations::default()
            },
        }
    }

    #[test]
    fn a_full_draft_becomes_the_documented_v1_body() {
        let request = create_request(&full_draft());
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/deals/v1/deal/");
        assert_eq!(
            request.body,
            json!({
                "associations": {
                    "associatedCompanyIds": [8_954_037],
                    "associatedVids": [27_136, 27_137]
                },
                "properties": [
                    {"name": "pipeline", "value": "default"},
                    {"name": "dealstage", "value": "appointmentscheduled"},
                    {"name": "dealname", "value": "Ada's order"},
                    {"name": "amount", "value": "12500.5"},
                    {"name": "closedate", "value": 1_733_011_200_000_i64},
                    {"name": "last_contacted", "value": 1_733_054_400_123_i64},
                    {"name": "is_priority", "value": "true"}
                ]
            })
        );
    }

    #[test]
    fn a_draft_without_pipeline_or_associations_sends_only_the_stage_and_properties() {
        let draft = DealDraft {
            pipeline: None,
            dealstage: "qualifiedtobuy".to_owned(),
            properties: vec![Property {
                name: "dealname".to_owned(),
                value: PropValue::Text("Lone deal".to_owned()),
            }],
            associations: Associations::default(),
        };
        assert_eq!(
            create_request(&draft).body,
            json!({
                "properties": [
                    {"name": "dealstage", "value": "qualifiedtobuy"},
                    {"name": "dealname", "value": "Lone deal"}
                ]
            })
        );
    }

    #[test]
    fn associations_with_only_contacts_send_an_empty_company_list() {
        let mut draft = full_draft();
        draft.associations = Associations {
            company_ids: vec![],
            contact_ids: vec![51],
            ..Associations::default()
        };
        assert_eq!(
            create_request(&draft).body["associations"],
            json!({"associatedCompanyIds": [], "associatedVids": [51]})
        );
    }

    #[test]
    fn a_created_deal_is_read_from_a_full_v1_answer_ignoring_extra_fields() {
        let body = json!({
            "portalId": 62_515,
            "dealId": 151_088,
            "isDeleted": false,
            "associations": {"associatedVids": [27_136], "associatedCompanyIds": [8_954_037], "associatedDealIds": []},
            "properties": {"dealname": {"value": "Tim's Newer Deal", "timestamp": 1_409_839_322_984_i64}},
            "imports": [],
            "stateChanges": []
        });
        let created = parse_created(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            created,
            CreatedDeal {
                write: DealWrite::Created,
                deal_id: 151_088,
                portal_id: Some(62_515),
                association_create_failures: vec![],
            }
        );
    }

    #[test]
    fn association_create_failures_are_kept_as_hubspot_sent_them() {
        let failure = json!({
            "message": "Contact with vid 27137 does not exist",
            "failureType": "OBJECT_NOT_FOUND",
            "objectType": "CONTACT",
            "objectId": 27_137
        });
        let body = json!({"portalId": 62_515, "dealId": 7, "associationCreateFailures": [failure.clone()]});
        let created = parse_created(body.to_string().as_bytes()).unwrap();
        assert_eq!(created.deal_id, 7);
        assert_eq!(created.association_create_failures, vec![failure]);
    }

    #[test]
    fn a_minimal_answer_with_only_a_deal_id_is_enough() {
        let created = parse_created(br#"{"dealId": 42, "portalId": "not-a-number"}"#).unwrap();
        assert_eq!(created.deal_id, 42);
        assert_eq!(created.portal_id, None);
        assert!(created.association_create_failures.is_empty());
    }

    #[test]
    fn junk_answers_are_errors() {
        let cases: &[(&str, &[u8], CreateResponseError)] = &[
            (
                "html",
                b"<html>oops</html>",
                CreateResponseError::NotJson(String::new()),
            ),
            ("empty", b"", CreateResponseError::NotJson(String::new())),
            (
                "truncated",
                br#"{"dealId": 4"#,
                CreateResponseError::NotJson(String::new()),
            ),
            ("array", b"[1,2]", CreateResponseError::NotAnObject),
            ("no deal id", br#"{"portalId": 1}"#, CreateResponseError::MissingDealId),
            (
                "null deal id",
                br#"{"dealId": null}"#,
                CreateResponseError::MissingDealId,
            ),
            (
                "string deal id",
                br#"{"dealId": "151088"}"#,
                CreateResponseError::InvalidDealId,
            ),
            (
                "negative deal id",
                br#"{"dealId": -3}"#,
                CreateResponseError::InvalidDealId,
            ),
            (
                "fractional deal id",
                br#"{"dealId": 1.5}"#,
                CreateResponseError::InvalidDealId,
            ),
        ];
        for (name, body, expected) in cases {
            let err = parse_created(body).expect_err(name);
            match (expected, &err) {
                (CreateResponseError::NotJson(_), CreateResponseError::NotJson(_)) => {}
                _ => assert_eq!(&err, expected, "{name}"),
            }
        }
    }

    #[test]
    fn a_validation_error_body_is_read_with_its_results() {
        let body = br#"{"status":"error","message":"Property values were not valid","correlationId":"079df615-35f9-46ed-80f9-d5930ce5c48d","validationResults":[{"isValid":false,"message":"dealstage 'nope' is not a valid option","error":"INVALID_OPTION","name":"dealstage"}],"requestId":"e942fbd1-1236-4c1d-b59c-ff44c89bf1c5"}"#;
        let parsed = parse_error_body(body);
        assert_eq!(parsed.message.as_deref(), Some("Property values were not valid"));
        assert_eq!(
            parsed.correlation_id.as_deref(),
            Some("079df615-35f9-46ed-80f9-d5930ce5c48d")
        );
        assert_eq!(
            parsed.validation_results,
            vec![ValidationResult {
                name: Some("dealstage".to_owned()),
                error: Some("INVALID_OPTION".to_owned()),
                message: Some("dealstage 'nope' is not a valid option".to_owned()),
                is_valid: Some(false),
            }]
        );
    }

    #[test]
    fn odd_error_bodies_give_what_can_be_read() {
        assert_eq!(
            parse_error_body(b"<html>Bad Request</html>"),
            HubSpotErrorBody::default()
        );
        assert_eq!(parse_error_body(b"\"just a string\""), HubSpotErrorBody::default());
        let parsed = parse_error_body(
            br#"{"message": {"nested": true}, "category": "VALIDATION_ERROR", "validationResults": ["x", {"name": "amount"}]}"#,
        );
        assert_eq!(parsed.message, None);
        assert_eq!(parsed.category.as_deref(), Some("VALIDATION_ERROR"));
        assert_eq!(parsed.validation_results.len(), 1);
        assert_eq!(parsed.validation_results[0].name.as_deref(), Some("amount"));
        let rate = parse_error_body(br#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","policyName":"SECONDLY"}"#);
        assert_eq!(rate.category.as_deref(), Some("RATE_LIMIT"));
    }
}
