//! Which of HubSpot's APIs a route talks to, and the object types dealhook writes, with the path
//! prefix each API version uses. Pure values, no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The HubSpot API a route's calls go to (`hubspot: { api: v1 | v3 | "2026-03" }` in the mapping).
///
/// HubSpot's changelog "Legacy APIs and Apps: What's Going Unsupported and When" ends support for the
/// `/v1/`–`/v4/` paths in September 2027; the date-versioned paths (`/crm/objects/2026-03/…`) replace
/// them. See [`HubSpotApi::is_legacy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HubSpotApi {
    /// Legacy Deals v1: `POST /deals/v1/deal/` (properties as `[{name, value}]`, associated ids as
    /// `associatedVids`/`associatedCompanyIds`), contacts by `createOrUpdate/email`. The default, so
    /// that mappings written before `hubspot:` existed keep their behaviour byte for byte.
    #[default]
    #[serde(rename = "v1")]
    V1,
    /// CRM v3 objects: `POST /crm/v3/objects/deals`, `…/batch/upsert`, `…/search`.
    #[serde(rename = "v3")]
    V3,
    /// The date-versioned CRM API of March 2026: `POST /crm/objects/2026-03/deals`; same bodies as v3.
    #[serde(rename = "2026-03")]
    V2026_03,
}

impl HubSpotApi {
    /// Every API, in the order the mapping documentation lists them.
    pub const ALL: [HubSpotApi; 3] = [HubSpotApi::V1, HubSpotApi::V3, HubSpotApi::V2026_03];

    /// The mapping's spelling: `v1`, `v3`, `2026-03`.
    pub fn as_str(self) -> &'static str {
        match self {
            HubSpotApi::V1 => "v1",
            HubSpotApi::V3 => "v3",
            HubSpotApi::V2026_03 => "2026-03",
        }
    }

    /// Whether HubSpot stops supporting this API's paths in September 2027 (v1 and v3; HubSpot's
    /// changelog "Legacy APIs and Apps: What's Going Unsupported and When").
    pub fn is_legacy(self) -> bool {
        matches!(self, HubSpotApi::V1 | HubSpotApi::V3)
    }

    /// The CRM objects prefix for calls this API has no own form of (v1 has no search, batch upsert
    /// or company create worth using): v1 and v3 use `/crm/v3/objects`, 2026-03 `/crm/objects/2026-03`.
    pub fn objects_prefix(self) -> &'static str {
        match self {
            HubSpotApi::V1 | HubSpotApi::V3 => "/crm/v3/objects",
            HubSpotApi::V2026_03 => "/crm/objects/2026-03",
        }
    }

    /// The prefix of record-level association paths (`{prefix}/{from}/{id}/associations/default/…`):
    /// v4's `/crm/v4/objects` for v1 and v3 (v3 has no default-association endpoint), and
    /// `/crm/objects/2026-03` (HubSpot's 2026-03 associations document) for 2026-03.
    pub fn associations_prefix(self) -> &'static str {
        match self {
            HubSpotApi::V1 | HubSpotApi::V3 => "/crm/v4/objects",
            HubSpotApi::V2026_03 => "/crm/objects/2026-03",
        }
    }
}

impl fmt::Display for HubSpotApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API name the mapping does not know; the message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown HubSpot API {0:?} (expected v1, v3 or \"2026-03\")")]
pub struct UnknownApi(pub String);

impl FromStr for HubSpotApi {
    type Err = UnknownApi;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HubSpotApi::ALL
            .into_iter()
            .find(|api| api.as_str() == s)
            .ok_or_else(|| UnknownApi(s.to_owned()))
    }
}

/// A route's `hubspot:` settings (or the mapping's top-level default): which API its calls go to,
/// and the unique-value deal property to upsert by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotOptions {
    /// `hubspot.api` (default v1).
    pub api: HubSpotApi,
    /// `hubspot.upsert_by`: a deal property with unique values (`hasUniqueValue`) that the mapping
    /// fills; the deal then goes through `…/deals/batch/upsert` with it as `idProperty`, so a
    /// redelivery updates the same deal. Only with v3 or 2026-03.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsert_by: Option<String>,
}

/// The CRM object types dealhook writes or links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectType {
    /// Deals (object type id `0-3`).
    Deal,
    /// Contacts (`0-1`).
    Contact,
    /// Companies (`0-2`).
    Company,
}

impl ObjectType {
    /// The name HubSpot's paths accept (`deals`, `contacts`, `companies`), as its guides spell them.
    pub fn path_name(self) -> &'static str {
        match self {
            ObjectType::Deal => "deals",
            ObjectType::Contact => "contacts",
            ObjectType::Company => "companies",
        }
    }
}

/// HubSpot-defined association type ids (category `HUBSPOT_DEFINED`), from HubSpot's associations
/// v4 guide ("Association type ID values").
pub mod association_type {
    /// Deal → contact.
    pub const DEAL_TO_CONTACT: u32 = 3;
    /// Deal → company, "Deal with Primary Company": the company the deal belongs to. (The unlabeled
    /// deal → company type is 341; a deal has one company here, so it is the primary one.)
    pub const DEAL_TO_COMPANY: u32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_round_trip_and_unknown_ones_are_named() {
        for api in HubSpotApi::ALL {
            assert_eq!(api.as_str().parse::<HubSpotApi>(), Ok(api));
            assert_eq!(serde_json::to_value(api).unwrap(), api.as_str());
        }
        assert_eq!("2026-09".parse::<HubSpotApi>(), Err(UnknownApi("2026-09".to_owned())));
        assert_eq!("V3".parse::<HubSpotApi>(), Err(UnknownApi("V3".to_owned())));
        assert_eq!(HubSpotApi::default(), HubSpotApi::V1);
    }

    #[test]
    fn only_the_date_versioned_api_outlives_september_2027() {
        assert!(HubSpotApi::V1.is_legacy());
        assert!(HubSpotApi::V3.is_legacy());
        assert!(!HubSpotApi::V2026_03.is_legacy());
    }
}
