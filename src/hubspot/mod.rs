//! HubSpot: the `Deals` port the pipeline calls, the typed errors it branches on, and the
//! real client (v1 `POST /deals/v1/deal/`). Never logs or returns a token or API key.

mod client;
mod memory;
pub mod oauth;
pub mod retry;
pub mod v1;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

pub use client::{HubSpotClient, HubSpotClientConfig, HubSpotConfigError};
pub use memory::MemoryDeals;
pub use oauth::OAuthTokens;
pub use retry::RetryPolicy;

use crate::credentials::HubSpotAuth;
use crate::domain::{DealDraft, Problem, Reason};

/// The HTTP request dealhook would send for a draft: shown by dry runs, `transform`, dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HubSpotRequest {
    /// HTTP method.
    pub method: String,
    /// Path below the base URL (no query string: the API key never appears here).
    pub path: String,
    /// JSON body.
    pub body: Value,
}

/// A deal HubSpot created.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDeal {
    /// The new deal's id.
    pub deal_id: u64,
    /// The portal (account) id, when HubSpot returned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<u64>,
    /// Associations HubSpot could not create (the deal exists regardless), as HubSpot reported them.
    pub association_create_failures: Vec<Value>,
}

/// HubSpot's JSON error body (`{"status":"error","message":…,"correlationId":…,"validationResults":[…]}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HubSpotErrorBody {
    /// HubSpot's message.
    pub message: Option<String>,
    /// HubSpot's correlation id, for support requests.
    pub correlation_id: Option<String>,
    /// Per-property validation results.
    pub validation_results: Vec<ValidationResult>,
    /// HubSpot's error category, when given (`VALIDATION_ERROR`, `RATE_LIMITS`, …).
    pub category: Option<String>,
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
    #[error("HubSpot rejected the deal (HTTP {status}): {}", .body.message.as_deref().unwrap_or("no message"))]
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
    /// Rate limited (429).
    #[error("HubSpot rate limit reached (HTTP 429)")]
    RateLimited {
        /// How long to wait: `Retry-After` when given; otherwise, when HubSpot's rate-limit headers
        /// say the window is spent (`X-HubSpot-RateLimit-Remaining: 0`), the window's length
        /// (`X-HubSpot-RateLimit-Interval-Milliseconds`).
        retry_after: Option<Duration>,
        /// Parsed error body.
        body: HubSpotErrorBody,
    },
    /// HubSpot could not be reached (`status: None`: the request never left), or answered 5xx.
    /// 502/503/504 come from HubSpot's edge before the request is processed, so a retry is safe;
    /// a 500 may come after the deal was written, so it is not retried (see [`Self::is_retryable`]).
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
    /// The credential lacks scopes the call needs (403 `MISSING_SCOPES`): no retry or refresh can
    /// help; the scopes must be added to the Service Key or app (and an OAuth app reinstalled).
    /// Dead-lettered as `hubspot_unauthorized`, with the scopes HubSpot named.
    #[error("HubSpot refused the call: the credential lacks scopes (HTTP {status} MISSING_SCOPES); HubSpot names: {}", if .scopes.is_empty() { "none".to_owned() } else { .scopes.join(", ") })]
    MissingScopes {
        /// HTTP status (403).
        status: u16,
        /// The scopes HubSpot named (`requiredGranularScopes`, `requiredScopes` or `missingScopes`), in
        /// its order, without duplicates.
        scopes: Vec<String>,
        /// Parsed error body.
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
            HubSpotError::Unavailable { .. } => Reason::HubSpotUnavailable,
            HubSpotError::OutcomeUnknown { .. } => Reason::OutcomeUnknown,
            HubSpotError::NoCredentials => Reason::SecretUnavailable,
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
            HubSpotError::Unavailable { status, .. } | HubSpotError::OutcomeUnknown { status, .. } => *status,
            HubSpotError::NoCredentials => None,
        }
    }

    /// Whether the same request may be sent again without risking a second deal: 429, 502, 503,
    /// 504, and failures to connect (nothing was sent). Not a 500 or other 5xx (HubSpot may have
    /// failed after creating the deal), not `OutcomeUnknown`, not any other 4xx.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HubSpotError::RateLimited { .. }
                | HubSpotError::Unavailable {
                    status: None | Some(502..=504),
                    ..
                }
        )
    }

    /// Whether HubSpot may hold the deal despite the error: an unknown outcome, or a 5xx other than
    /// the edge's 502/503/504 (HubSpot may fail after writing). A repeat of such a delivery must not
    /// create it again blindly (see [`crate::idempotency`]).
    pub fn may_have_created(&self) -> bool {
        match self {
            HubSpotError::OutcomeUnknown { .. } => true,
            HubSpotError::Unavailable {
                status: Some(status), ..
            } => !(502..=504).contains(status),
            _ => false,
        }
    }

    /// How long HubSpot asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HubSpotError::RateLimited { retry_after, .. } => *retry_after,
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

/// The port through which the pipeline creates deals.
#[async_trait]
pub trait Deals: Send + Sync {
    /// The request `create` would send for this draft (no I/O; used by dry runs).
    fn preview(&self, draft: &DealDraft) -> HubSpotRequest;

    /// Creates the deal. One attempt; the caller owns retries.
    async fn create(&self, draft: &DealDraft, auth: &HubSpotAuth) -> Result<CreatedDeal, HubSpotError>;
}
