//! Companies by domain: the domain rules, `…/companies/search` on `domain` and its answer, and the create.

use serde_json::{Map, Value, json};

use super::{ResponseError, SEARCH_LIMIT, json_object, record_id};
use crate::hubspot::{HubSpotApi, HubSpotRequest};

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
