//! HubSpot: the `Deals` port the pipeline calls, the typed errors it branches on, the wire formats
//! (`v1`: legacy Deals/Contacts v1; `crm`: CRM v3 and the date-versioned 2026-03 API) as pure
//! request builders and answer parsers, and the real client (`transport`: one HTTP exchange;
//! `answer`: what an answer means; `redact`: secrets out of kept text). Never logs or returns a
//! token or API key.

pub mod answer;
pub mod api;
mod client;
pub mod crm;
mod memory;
pub mod oauth;
pub mod plan;
pub mod portal;
mod redact;
pub mod retry;
mod transport;
pub mod v1;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

pub use answer::DAILY_LIMIT_WAIT;
pub use api::{HubSpotApi, HubSpotOptions, ObjectType};
pub use memory::MemoryDeals;
pub use oauth::OAuthTokens;
pub use plan::{AssociationFailure, AuthSource, PlanError, PlanProgress, PlannedCall};
pub use retry::RetryPolicy;
pub use transport::{Answer, HubSpotClient, HubSpotClientConfig, HubSpotConfigError, USER_AGENT};

use crate::credentials::HubSpotAuth;
use crate::domain::{DealDraft, Problem, Reason};

/// The HTTP request dealhook would send for a draft: shown by dry runs, `transform`, dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HubSpotRequest {
    /// HTTP method.
    pub method: String,
    /// Path below the base URL, percent-encoded where it carries a value (no query string: the API
    /// key never appears here).
    pub path: String,
    /// JSON body; `null` means the request has none (association `PUT`s).
    pub body: Value,
}

/// A deal HubSpot holds after the plan: created, or (with `upsert_by`) updated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDeal {
    /// The deal's id.
    pub deal_id: u64,
    /// What the call did to it: created (the default) or updated (a batch upsert whose result says
    /// `"new": false`, i.e. a deal with the `upsert_by` value existed).
    #[serde(skip)]
    pub write: DealWrite,
    /// The portal (account) id, when HubSpot returned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<u64>,
    /// Associations HubSpot could not create (the deal exists regardless), as HubSpot reported them.
    pub association_create_failures: Vec<Value>,
}

/// What writing a deal did: the `status` of the 200 answer (`created`, `updated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DealWrite {
    /// A new deal.
    #[default]
    Created,
    /// An existing deal, found by the route's `upsert_by` property or by `dedupe`, got the mapped
    /// properties.
    Updated,
    /// `dedupe: { then: skip }` found the contact's deal: nothing was written to it.
    Skipped,
}

impl DealWrite {
    /// `created` or `updated`: the response's `status` and the log's `outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            DealWrite::Created => "created",
            DealWrite::Updated => "updated",
            DealWrite::Skipped => "skipped",
        }
    }
}

/// HubSpot's JSON error body, of any API version (v1's
/// `{"status":"error","message":…,"correlationId":…,"validationResults":[…]}`, v3/2026-03's `Error`
/// with `category`, `subCategory`, `errors[]`, `context`), read by [`answer::parse_error_body`].
/// The fields v1 never sends are left out of the JSON when empty, so v1 dead letters read as before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HubSpotErrorBody {
    /// HubSpot's message.
    pub message: Option<String>,
    /// HubSpot's correlation id, for support requests.
    pub correlation_id: Option<String>,
    /// Per-property validation results: v1's `validationResults`, or taken from v3's `errors[]`
    /// (`code` and `context.propertyName`) or from the JSON a v3 message embeds.
    pub validation_results: Vec<ValidationResult>,
    /// HubSpot's error category, when given (`VALIDATION_ERROR`, `RATE_LIMITS`, `MISSING_SCOPES`, …;
    /// v1 rate limits' `errorType`).
    pub category: Option<String>,
    /// What v3 and 2026-03 add (boxed: an error is built once per call, and a small `HubSpotError`
    /// keeps every `Result` cheap). Flattened into the JSON.
    #[serde(flatten)]
    pub details: Box<ErrorDetails>,
}

/// The parts of a v3/2026-03 error body v1 never sends; left out of the JSON when empty, so v1 dead
/// letters read as before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorDetails {
    /// v3's `subCategory` (text; an object is kept as its JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
    /// A rate limit's `policyName` (`TEN_SECONDLY_ROLLING`, `SECONDLY`, `DAILY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// v3's `errors[]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
    /// v3's `context` (`{"objectWriteTraceId": ["…"], "INVALID_OBJECT_IDS": […], …}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Vec<String>>,
    /// Scopes HubSpot says the credential lacks (`requiredGranularScopes`, `requiredScopes` or
    /// `missingScopes` in `context` or `errors[].context`), for the operator.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
}

/// One entry of a v3 error's `errors[]` (`ErrorDetail` in the OpenAPI documents).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorDetail {
    /// Message (empty when HubSpot gave none).
    pub message: String,
    /// Code, e.g. `PROPERTY_DOESNT_EXIST`, `INVALID_INTEGER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `in`: the field or parameter at fault.
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Sub-category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_category: Option<String>,
    /// Context (`{"propertyName": ["amount"]}`, `{"requiredGranularScopes": […]}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Vec<String>>,
}

/// One entry of `validationResults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValidationResult {
    /// Property name.
    pub name: Option<String>,
    /// Error code, e.g. `INVALID_OPTION`.
    pub error: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// Whether the value was valid.
    pub is_valid: Option<bool>,
}

/// Why a deal was not created. The variants are what the pipeline branches on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubSpotError {
    /// HubSpot refused the request for good (4xx other than 401/403/429): retrying won't help.
    #[error("HubSpot rejected the request (HTTP {status}): {}", .body.message.as_deref().unwrap_or("no message"))]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Parsed error body (empty when it was not JSON).
        body: HubSpotErrorBody,
        /// The response body as text (bounded), for the dead letter.
        raw: String,
    },
    /// The credential was refused (401/403).
    #[error("HubSpot refused the credentials (HTTP {status})")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// Parsed error body.
        body: HubSpotErrorBody,
    },
    /// 423 Locked: HubSpot is busy writing the same records (bulk upserts). Nothing was written;
    /// the identical request may be sent again after `retry_after` (≥ 2 s; catalog item 6).
    #[error("HubSpot locked the records for a moment (HTTP 423)")]
    Locked {
        /// How long to wait at least.
        retry_after: Duration,
        /// Parsed error body (HubSpot documents none; may be empty).
        body: HubSpotErrorBody,
    },
    /// Rate limited: a 429, or a 5xx whose body names a rate limit (catalog item 4). A spent daily
    /// limit has `retry_after` [`DAILY_LIMIT_WAIT`], which no retry policy waits for.
    #[error("HubSpot rate limit reached")]
    RateLimited {
        /// How long to wait: `Retry-After` when given; otherwise, when HubSpot's rate-limit headers
        /// say the window is spent (`X-HubSpot-RateLimit-Remaining: 0`), the window's length
        /// (`X-HubSpot-RateLimit-Interval-Milliseconds`).
        retry_after: Option<Duration>,
        /// Parsed error body.
        body: HubSpotErrorBody,
    },
    /// HubSpot could not be reached (`status: None`: the request never left), or answered 5xx.
    /// 502/503/504 and Cloudflare's 521/523 come from HubSpot's edge before the request is processed,
    /// so a retry is safe; a 500 (or 524: the origin is still working) may come after the write, so
    /// it is not retried (see [`Self::is_retryable`]).
    #[error("HubSpot is unavailable: {message}")]
    Unavailable {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened (never contains the URL's query string).
        message: String,
    },
    /// The request may have reached HubSpot but we cannot tell whether the deal exists
    /// (timeout after sending, unreadable 2xx body). Never retried blindly.
    #[error("HubSpot's answer is unknown: {message}")]
    OutcomeUnknown {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The request could not be built from the draft, so nothing was sent: the route upserts by a
    /// property the draft lacks (`hubspot.upsert_by`). A mapping error, not HubSpot's.
    #[error(transparent)]
    Unbuildable(crm::MissingUpsertKey),
    /// HubSpot's OAuth token endpoint refused to exchange the secret's refresh token for good
    /// (400/401/403, e.g. `BAD_REFRESH_TOKEN` / `invalid_grant`: revoked, app uninstalled, wrong client
    /// secret). Nothing was sent to the CRM; not retried, and the same grant is not tried again until
    /// the secret changes (see [`OAuthTokens`]). Dead-lettered as `hubspot_unauthorized`.
    #[error("HubSpot refused the OAuth refresh token (HTTP {status}{}): {message}", .code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    OAuthRefused {
        /// HTTP status of the token endpoint.
        status: u16,
        /// The error code HubSpot gave (`invalid_grant`, `BAD_REFRESH_TOKEN`, …), when it gave one.
        code: Option<String>,
        /// What HubSpot said and what to do (secret values scrubbed).
        message: String,
    },
    /// The credential lacks scopes the call needs (403 `MISSING_SCOPES`, or a 403 naming scopes;
    /// decided by [`answer::classify_failure`]): no retry, refresh or re-read of the secret can help
    /// (catalog item 11); the scopes must be added to the Service Key or app (and an OAuth app
    /// reinstalled). Dead-lettered as `hubspot_unauthorized`, with the scopes HubSpot named.
    #[error("HubSpot refused the call: the credential lacks scopes (HTTP {status} MISSING_SCOPES); HubSpot names: {}", if .scopes.is_empty() { "none".to_owned() } else { .scopes.join(", ") })]
    MissingScopes {
        /// HTTP status (403).
        status: u16,
        /// The scopes HubSpot named (`requiredGranularScopes`, `requiredScopes` or `missingScopes`), in
        /// its order, without duplicates: the body's `details.required_scopes`.
        scopes: Vec<String>,
        /// Parsed error body (the scopes are also kept in `details.required_scopes`).
        body: HubSpotErrorBody,
    },
    /// No usable credential: the token or key cannot be sent (e.g. it is not valid in an HTTP header).
    /// Nothing was sent.
    #[error("the HubSpot credential cannot be used (it is not a valid HTTP header or query value)")]
    NoCredentials,
}

impl HubSpotError {
    /// The dead-letter reason code for this error.
    pub fn reason(&self) -> Reason {
        match self {
            HubSpotError::Rejected { .. } => Reason::HubSpotRejected,
            HubSpotError::Unauthorized { .. }
            | HubSpotError::OAuthRefused { .. }
            | HubSpotError::MissingScopes { .. } => Reason::HubSpotUnauthorized,
            HubSpotError::RateLimited { .. } => Reason::HubSpotRateLimited,
            HubSpotError::Locked { .. } => Reason::HubSpotUnavailable,
            // A 500 (or 524) may come after HubSpot wrote: the deal may exist, which the reason says.
            HubSpotError::Unavailable { .. } if self.may_have_created() => Reason::OutcomeUnknown,
            HubSpotError::Unavailable { .. } => Reason::HubSpotUnavailable,
            HubSpotError::OutcomeUnknown { .. } => Reason::OutcomeUnknown,
            HubSpotError::NoCredentials => Reason::SecretUnavailable,
            HubSpotError::Unbuildable(_) => Reason::MappingFailed,
        }
    }

    /// HubSpot's error `category` (`VALIDATION_ERROR`, `MISSING_SCOPES`, …), when it sent one.
    pub fn category(&self) -> Option<&str> {
        match self {
            HubSpotError::Rejected { body, .. }
            | HubSpotError::Unauthorized { body, .. }
            | HubSpotError::Locked { body, .. }
            | HubSpotError::RateLimited { body, .. }
            | HubSpotError::MissingScopes { body, .. } => body.category.as_deref(),
            _ => None,
        }
    }

    /// HTTP status HubSpot answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HubSpotError::Rejected { status, .. }
            | HubSpotError::Unauthorized { status, .. }
            | HubSpotError::OAuthRefused { status, .. }
            | HubSpotError::MissingScopes { status, .. } => Some(*status),
            HubSpotError::RateLimited { .. } => Some(429),
            HubSpotError::Locked { .. } => Some(423),
            HubSpotError::Unavailable { status, .. } | HubSpotError::OutcomeUnknown { status, .. } => *status,
            HubSpotError::NoCredentials | HubSpotError::Unbuildable(_) => None,
        }
    }

    /// Whether the same request may be sent again without risking a second deal: rate limits
    /// (429, or a 5xx naming one), 423 Locked, 502, 503, 504, 521, 523, and failures to connect
    /// (nothing was sent). Not a 500 or other 5xx (HubSpot may have failed after creating the deal),
    /// not `OutcomeUnknown`, not any other 4xx, not missing scopes.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HubSpotError::RateLimited { .. }
                | HubSpotError::Locked { .. }
                | HubSpotError::Unavailable {
                    status: None | Some(502..=504 | 521 | 523),
                    ..
                }
        )
    }

    /// Whether an *idempotent* request (a batch upsert by a unique key, a search, an association
    /// `PUT`) may be sent again: everything [`Self::is_retryable`] allows, plus the answers after which
    /// HubSpot may have written ([`Self::may_have_created`]): repeating an upsert writes the same
    /// record again, never a second one (catalog item 7).
    pub fn is_retryable_if_idempotent(&self) -> bool {
        self.is_retryable() || self.may_have_created()
    }

    /// Whether HubSpot may hold the deal despite the error: an unknown outcome, or a 5xx other than
    /// the edge's 502/503/504 (HubSpot may fail after writing); never a 477 (a migration refuses writes). A repeat of such a delivery must not
    /// create it again blindly (see [`crate::idempotency`]).
    pub fn may_have_created(&self) -> bool {
        match self {
            HubSpotError::OutcomeUnknown { .. } => true,
            HubSpotError::Unavailable {
                status: Some(status), ..
            } => !matches!(status, 477 | 502..=504 | 521 | 523),
            _ => false,
        }
    }

    /// How long HubSpot asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HubSpotError::RateLimited { retry_after, .. } => *retry_after,
            HubSpotError::Locked { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error as problems for a 202 body: one per failed validation result, or one overall
    /// (`missing_scopes` and `reauth_required` for those two refusals).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            // One problem whose message lists the scopes, so the dead letter says what to grant.
            HubSpotError::MissingScopes { .. } => return vec![Problem::general("missing_scopes", self.to_string())],
            HubSpotError::OAuthRefused { .. } => return vec![Problem::general("reauth_required", self.to_string())],
            _ => {}
        }
        let body = match self {
            HubSpotError::Rejected { body, .. }
            | HubSpotError::Unauthorized { body, .. }
            | HubSpotError::RateLimited { body, .. } => Some(body),
            HubSpotError::Unbuildable(missing) => {
                return vec![Problem::at(
                    format!("properties.{}", missing.property),
                    "required",
                    self.to_string(),
                )];
            }
            _ => None,
        };
        let mut problems: Vec<Problem> = body
            .map(|b| {
                b.validation_results
                    .iter()
                    .filter(|v| v.is_valid != Some(true))
                    .map(|v| Problem {
                        field: v.name.clone(),
                        code: v.error.clone().unwrap_or_else(|| "invalid".to_owned()),
                        message: v
                            .message
                            .clone()
                            .unwrap_or_else(|| "HubSpot rejected this value".to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if problems.is_empty() {
            problems.push(Problem::general(self.reason().as_str(), self.to_string()));
        }
        problems
    }
}

/// The port through which the pipeline creates deals. `options` is the route's `hubspot:` (which API,
/// and the unique property to upsert by): see [`crm::deal_request`] for the request each builds.
#[async_trait]
pub trait Deals: Send + Sync {
    /// The request `create` would send for this draft (no I/O; used by dry runs and dead letters).
    /// Fails only when `options.upsert_by` names a property the draft lacks.
    fn preview(&self, options: &HubSpotOptions, draft: &DealDraft) -> Result<HubSpotRequest, crm::MissingUpsertKey>;

    /// Creates (or, with `upsert_by`, upserts) the deal. One attempt; the caller owns retries.
    async fn create(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
        auth: &HubSpotAuth,
    ) -> Result<CreatedDeal, HubSpotError>;

    /// Upserts contacts by e-mail in one batch (v3/2026-03; see [`HubSpotClient::upsert_contacts`]):
    /// every input's record or why it has none, matched by lower-cased e-mail. One attempt.
    async fn upsert_contacts(
        &self,
        api: HubSpotApi,
        contacts: &[crm::ContactInput],
        auth: &HubSpotAuth,
    ) -> Result<crm::BatchOutcome, HubSpotError>;

    /// v1's createOrUpdate by e-mail for one contact: its `vid`. One attempt.
    async fn create_or_update_contact_v1(
        &self,
        contact: &crm::ContactInput,
        auth: &HubSpotAuth,
    ) -> Result<v1::ContactVid, HubSpotError>;

    /// Searches companies by (normalised) domain: the chosen one, or `None`. One attempt.
    async fn search_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        auth: &HubSpotAuth,
    ) -> Result<Option<crm::CompanyMatch>, HubSpotError>;

    /// Creates a company with `domain` and `properties`: its id. Not idempotent. One attempt.
    async fn create_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        properties: &[(String, String)],
        auth: &HubSpotAuth,
    ) -> Result<u64, HubSpotError>;

    /// Links two existing records with the default association (a `PUT`; idempotent). One attempt.
    async fn associate(
        &self,
        api: HubSpotApi,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError>;

    /// `dedupe`: the newest of a contact's deals that [`crm::DealSearch`] admits, or `None`
    /// ([`crm::deal_search_request`]; a read, so idempotent). One attempt. Adapters that cannot
    /// search answer `Unavailable` (nothing sent).
    async fn search_deals(
        &self,
        _api: HubSpotApi,
        _search: &crm::DealSearch,
        _auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        Err(not_supported("search deals"))
    }

    /// `dedupe`: one deal by id ([`crm::deal_read_request`]), `None` when it no longer exists. One attempt.
    async fn read_deal(
        &self,
        _api: HubSpotApi,
        _deal_id: u64,
        _auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        Err(not_supported("read a deal"))
    }

    /// `dedupe: { then: update }`: sets `properties` on an existing deal ([`crm::deal_update_request`];
    /// idempotent: the same values again). One attempt.
    async fn update_deal(
        &self,
        _api: HubSpotApi,
        _deal_id: u64,
        _properties: &serde_json::Map<String, Value>,
        _auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        Err(not_supported("update a deal"))
    }

    /// The portal's deal pipelines with their stages ([`portal::pipelines_request`]). One attempt.
    /// The default answers as a portal without that API would (a 404): implementations without a
    /// schema (test doubles) make the pipeline send values as mapped.
    async fn pipelines(&self, api: HubSpotApi, auth: &HubSpotAuth) -> Result<Vec<portal::Pipeline>, HubSpotError> {
        let _ = (api, auth);
        Err(no_schema())
    }

    /// The properties of `object` ([`portal::properties_request`]). One attempt. The default answers a
    /// 404, as [`Deals::pipelines`]'s does.
    async fn properties(
        &self,
        api: HubSpotApi,
        object: ObjectType,
        auth: &HubSpotAuth,
    ) -> Result<Vec<portal::PropertyDef>, HubSpotError> {
        let _ = (api, object, auth);
        Err(no_schema())
    }
}

/// What a [`Deals`] without a portal schema answers to its reads: a 404.
pub(crate) fn no_schema() -> HubSpotError {
    HubSpotError::Rejected {
        status: 404,
        body: HubSpotErrorBody {
            message: Some("no portal schema is configured".to_owned()),
            ..HubSpotErrorBody::default()
        },
        raw: String::new(),
    }
}

/// What an adapter without a `dedupe` call answers: nothing was sent, so nothing was written.
fn not_supported(what: &str) -> HubSpotError {
    HubSpotError::Unavailable {
        status: None,
        message: format!("this HubSpot adapter cannot {what}; nothing was sent"),
    }
}
