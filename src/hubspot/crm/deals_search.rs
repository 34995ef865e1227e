//! A contact's deals, for `dedupe:`: `…/deals/search` on `associations.contact` (with the pipeline,
//! open and create-date filters the route asks for) and its answer, `…/deals/batch/read` of one
//! remembered deal (search lags writes; a read does not), and `PATCH …/deals/{id}` to update the
//! deal found. Pure functions, no I/O.
//!
//! v1 routes use these v3 paths ([`HubSpotApi::objects_prefix`]): v1 has no deal search, and a v1
//! deal id is the v3 id.

use serde_json::{Map, Value, json};

use super::{ResponseError, json_object, record_id};
use crate::hubspot::{HubSpotApi, HubSpotRequest};

/// Most deals asked of one search: the newest few are enough (sorted by `createdate`, newest first).
const DEAL_SEARCH_LIMIT: u32 = 5;

/// The pipeline a draft without one goes to (HubSpot's default pipeline's id).
pub const DEFAULT_PIPELINE: &str = "default";

/// What a search for a contact's deal filters on (all `AND`, in one filter group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealSearch {
    /// The contact (`associations.contact EQ id`).
    pub contact_id: u64,
    /// `pipeline EQ` this, when the route says `pipeline_only`.
    pub pipeline: Option<String>,
    /// `hs_is_closed EQ false` (HubSpot's calculated property: true in any closed stage), when the
    /// route says `open_only`.
    pub open_only: bool,
    /// `createdate GTE` this many epoch milliseconds.
    pub created_since_ms: u64,
}

/// `POST …/deals/search` (`PublicObjectSearchRequest`): one filter group with
/// `associations.contact EQ {contact}`, `pipeline EQ {pipeline}` (pipeline only),
/// `hs_is_closed EQ false` (open only) and `createdate GTE {since}`, sorted by `createdate`
/// descending, at most 5, asking for `pipeline`, `dealstage`, `hs_is_closed` and `createdate`.
///
/// `sorts` is sent as HubSpot's search guide spells it (`{"propertyName", "direction"}`); HubSpot's
/// OpenAPI documents type its items as strings, which HubSpot does not read as a sort
/// (HubSpot/hubspot-api-nodejs#559, HubSpot/hubspot-api-ruby#257). The answer is not trusted to be
/// sorted either ([`parse_deal_search`] picks the newest itself). `contact` may be the placeholder
/// `{contactId}` in previews.
pub fn deal_search_request(api: HubSpotApi, search: &DealSearch) -> HubSpotRequest {
    deal_search_request_for(api, &search.contact_id.to_string(), search)
}

/// [`deal_search_request`] with the contact given as text (`{contactId}` in a preview, where the id
/// is known only after the contact upsert).
pub fn deal_search_request_for(api: HubSpotApi, contact: &str, search: &DealSearch) -> HubSpotRequest {
    let filter = |property: &str, operator: &str, value: &str| json!({"propertyName": property, "operator": operator, "value": value});
    let mut filters = vec![filter("associations.contact", "EQ", contact)];
    if let Some(pipeline) = &search.pipeline {
        filters.push(filter("pipeline", "EQ", pipeline));
    }
    if search.open_only {
        filters.push(filter("hs_is_closed", "EQ", "false"));
    }
    filters.push(filter("createdate", "GTE", &search.created_since_ms.to_string()));
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/deals/search", api.objects_prefix()),
        body: json!({
            "filterGroups": [{"filters": filters}],
            "properties": ["pipeline", "dealstage", "hs_is_closed", "createdate"],
            "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
            "limit": DEAL_SEARCH_LIMIT,
            "after": "0",
        }),
    }
}

/// A deal a search or read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDeal {
    /// Its id.
    pub id: u64,
    /// `createdate` as HubSpot sent it (ISO 8601, or epoch ms), for choosing the newest; `None` when absent.
    pub createdate: Option<String>,
    /// `pipeline`, when HubSpot sent it.
    pub pipeline: Option<String>,
    /// `hs_is_closed` read as a boolean (`"true"`/`"false"`); `None` when absent or anything else.
    pub closed: Option<bool>,
}

impl FoundDeal {
    fn read(object: &Value, field: &'static str) -> Result<FoundDeal, ResponseError> {
        let property = |name: &str| {
            object
                .get("properties")
                .and_then(|p| p.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(FoundDeal {
            id: record_id(object.get("id"), field)?,
            createdate: property("createdate"),
            pipeline: property("pipeline"),
            closed: match property("hs_is_closed").as_deref() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        })
    }

    /// `createdate` as epoch milliseconds (ISO 8601 or digits); `None` when absent or unreadable.
    pub fn created_ms(&self) -> Option<i64> {
        let text = self.createdate.as_deref()?.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok();
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.timestamp_millis())
    }
}

/// Reads a deal search's answer (`CollectionResponseWithTotalSimplePublicObject`): the newest deal
/// by `createdate` (a deal without a readable one counts as oldest; ties go to the higher id), or
/// `None`. Results are matched by their own `id`, never by position; one without a readable id is
/// an error (which deal it is cannot be told).
pub fn parse_deal_search(body: &[u8]) -> Result<Option<FoundDeal>, ResponseError> {
    let object = json_object(body)?;
    let results = match object.get("results") {
        Some(Value::Array(items)) => items,
        _ => return Err(ResponseError::Missing("results list")),
    };
    let mut found = Vec::with_capacity(results.len());
    for result in results {
        found.push(FoundDeal::read(result, "results[].id")?);
    }
    Ok(found.into_iter().max_by_key(|deal| (deal.created_ms(), deal.id)))
}

/// `POST …/deals/batch/read` (`BatchReadInputSimplePublicObjectId`) for one deal id, asking for
/// `pipeline`, `hs_is_closed` and `createdate`: unlike search, a read sees a deal created a moment
/// ago. (A `GET …/deals/{id}?properties=…` would put a query string in the path, where the legacy
/// API key goes.)
pub fn deal_read_request(api: HubSpotApi, deal_id: u64) -> HubSpotRequest {
    HubSpotRequest {
        method: "POST".to_owned(),
        path: format!("{}/deals/batch/read", api.objects_prefix()),
        body: json!({
            "inputs": [{"id": deal_id.to_string()}],
            "properties": ["pipeline", "hs_is_closed", "createdate"],
            "propertiesWithHistory": [],
        }),
    }
}

/// Reads a batch read's 200/207 answer for `deal_id`: the deal when a result has that id, `None`
/// when none does (deleted or merged away: HubSpot lists it under `errors`).
pub fn parse_deal_read(body: &[u8], deal_id: u64) -> Result<Option<FoundDeal>, ResponseError> {
    let object = json_object(body)?;
    let results = match object.get("results") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(Value::Null) | None => &[],
        Some(_) => return Err(ResponseError::Missing("results list")),
    };
    for result in results {
        let deal = FoundDeal::read(result, "results[].id")?;
        if deal.id == deal_id {
            return Ok(Some(deal));
        }
    }
    Ok(None)
}

/// `PATCH …/deals/{dealId}` (`SimplePublicObjectInput`): `{"properties": {…}}`. `{dealId}` may be a
/// placeholder in previews (`deal_id` as text).
pub fn deal_update_request(api: HubSpotApi, deal_id: &str, properties: Map<String, Value>) -> HubSpotRequest {
    HubSpotRequest {
        method: "PATCH".to_owned(),
        path: format!("{}/deals/{deal_id}", api.objects_prefix()),
        body: json!({ "properties": properties }),
    }
}

/// The properties an update sends: the draft's, without `dealstage` and `pipeline` (a lead's second
/// form must not move its deal back to the first stage, nor to another pipeline).
pub fn deal_update_properties(mut properties: Map<String, Value>) -> Map<String, Value> {
    properties.remove("dealstage");
    properties.remove("pipeline");
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> DealSearch {
        DealSearch {
            contact_id: 27_136,
            pipeline: Some("default".to_owned()),
            open_only: true,
            created_since_ms: 1_733_011_200_000,
        }
    }

    #[test]
    fn the_search_filters_on_the_contact_pipeline_open_deals_and_create_date() {
        let request = deal_search_request(HubSpotApi::V2026_03, &search());
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/crm/objects/2026-03/deals/search");
        assert_eq!(
            request.body,
            json!({
                "filterGroups": [{"filters": [
                    {"propertyName": "associations.contact", "operator": "EQ", "value": "27136"},
                    {"propertyName": "pipeline", "operator": "EQ", "value": "default"},
                    {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"},
                    {"propertyName": "createdate", "operator": "GTE", "value": "1733011200000"},
                ]}],
                "properties": ["pipeline", "dealstage", "hs_is_closed", "createdate"],
                "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
                "limit": 5,
                "after": "0",
            })
        );
    }

    #[test]
    fn v1_and_v3_search_under_the_v3_path_and_filters_can_be_dropped() {
        for api in [HubSpotApi::V1, HubSpotApi::V3] {
            assert_eq!(deal_search_request(api, &search()).path, "/crm/v3/objects/deals/search");
        }
        let loose = DealSearch {
            pipeline: None,
            open_only: false,
            ..search()
        };
        let body = deal_search_request(HubSpotApi::V3, &loose).body;
        let names: Vec<&str> = body["filterGroups"][0]["filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["propertyName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["associations.contact", "createdate"]);
    }

    #[test]
    fn the_search_answer_gives_the_newest_deal_whatever_the_order() {
        let body = json!({"total": 3, "results": [
            {"id": "11", "properties": {"createdate": "2026-03-01T10:00:00.000Z", "hs_is_closed": "false", "pipeline": "default"}},
            {"id": "12", "properties": {"createdate": "2026-03-02T10:00:00.000Z", "hs_is_closed": "false"}},
            {"id": "10", "properties": {}},
        ]});
        let found = parse_deal_search(body.to_string().as_bytes()).unwrap().unwrap();
        assert_eq!(found.id, 12);
        assert_eq!(found.closed, Some(false));
        assert_eq!(found.created_ms(), Some(1_772_445_600_000));
        let empty = json!({"total": 0, "results": []});
        assert_eq!(parse_deal_search(empty.to_string().as_bytes()).unwrap(), None);
    }

    /// Answers that cannot be read, each with the error it must give.
    #[test]
    fn an_unreadable_search_answer_is_an_error_naming_what_is_wrong() {
        let cases: [(&str, &[u8], ResponseError); 4] = [
            ("no results", br#"{"total": 0}"#, ResponseError::Missing("results list")),
            (
                "an id that is not one",
                br#"{"results": [{"id": "12a"}]}"#,
                ResponseError::InvalidId("results[].id"),
            ),
            (
                "no id",
                br#"{"results": [{"properties": {}}]}"#,
                ResponseError::Missing("results[].id"),
            ),
            ("not an object", b"[]", ResponseError::NotAnObject),
        ];
        for (name, body, expected) in cases {
            assert_eq!(parse_deal_search(body), Err(expected), "{name}");
        }
    }

    #[test]
    fn a_read_finds_the_deal_by_id_or_reports_it_gone() {
        let request = deal_read_request(HubSpotApi::V3, 77);
        assert_eq!(request.path, "/crm/v3/objects/deals/batch/read");
        assert_eq!(request.body["inputs"], json!([{"id": "77"}]));
        let body = json!({"status": "COMPLETE", "results": [
            {"id": "5", "properties": {"hs_is_closed": "true"}},
            {"id": "77", "properties": {"hs_is_closed": "true", "pipeline": "sales"}},
        ]});
        let found = parse_deal_read(body.to_string().as_bytes(), 77).unwrap().unwrap();
        assert_eq!((found.closed, found.pipeline.as_deref()), (Some(true), Some("sales")));
        let gone = json!({"status": "COMPLETE", "results": [], "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found"}]});
        assert_eq!(parse_deal_read(gone.to_string().as_bytes(), 77).unwrap(), None);
    }

    #[test]
    fn an_update_leaves_the_stage_and_pipeline_alone() {
        let mut properties = Map::new();
        properties.insert("pipeline".to_owned(), json!("default"));
        properties.insert("dealstage".to_owned(), json!("appointmentscheduled"));
        properties.insert("amount".to_owned(), json!("12"));
        let request = deal_update_request(HubSpotApi::V1, "42", deal_update_properties(properties));
        assert_eq!(request.method, "PATCH");
        assert_eq!(request.path, "/crm/v3/objects/deals/42");
        assert_eq!(request.body, json!({"properties": {"amount": "12"}}));
    }
}
