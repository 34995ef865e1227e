//! The plan of calls for one deal and how each call is made: retried as [`RetryPolicy`] says, never
//! past the invocation's deadline less the policy's margin (the time kept to write a dead letter), and
//! with a refused credential re-read once. Today the plan is one call (create the deal); contacts,
//! companies and links join it here.

use std::time::SystemTime;

use async_trait::async_trait;

use super::{CreatedDeal, Deals, HubSpotError, HubSpotOptions, RetryPolicy};
use crate::credentials::HubSpotAuth;
use crate::domain::DealDraft;

/// Where the HubSpot credential comes from (the secret, in production): the cached one, or
/// (`refresh`) one read anew after HubSpot refused the cached one.
#[async_trait]
pub trait AuthSource: Send + Sync {
    /// The credential, or why there is none (a sentence for the log and the dead letter that never
    /// holds a secret value).
    async fn hubspot_auth(&self, refresh: bool) -> Result<HubSpotAuth, String>;
}

/// Why the plan did not create the deal.
#[derive(Debug)]
pub enum PlanError {
    /// The credential could not be had (the message never holds the secret).
    Credential(String),
    /// HubSpot failed; with the number of requests sent.
    HubSpot(HubSpotError, u32),
}

/// Creates the deal, retrying what [`HubSpotError::is_retryable`] allows as `policy` says, and never
/// past `deadline` (the invocation's; `None` locally) less the policy's margin, in the route's wire
/// format (`options`): an attempt still
/// waiting for HubSpot then is abandoned as [`HubSpotError::OutcomeUnknown`]. A refused credential
/// is read anew once (rotation) and tried once more, straight away.
pub async fn create_deal<A: AuthSource + ?Sized>(
    deals: &dyn Deals,
    auth_source: &A,
    options: &HubSpotOptions,
    draft: &DealDraft,
    mut policy: RetryPolicy,
    deadline: Option<SystemTime>,
) -> Result<CreatedDeal, PlanError> {
    let left = deadline.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
    if let Some(left) = left {
        // The margin kept for the dead letter is at most a quarter of the time left: with a short
        // function timeout (Lambda's default is 3 s, as short as the default margin) HubSpot must
        // still get a chance. Writing the letter takes tens of milliseconds.
        policy.margin = policy.margin.min(left / 4);
    }
    // On tokio's clock from here on, so that waits and the time left agree (and tests can pause it).
    let deadline = left.map(|left| tokio::time::Instant::now() + left);
    let mut auth = auth_source.hubspot_auth(false).await.map_err(PlanError::Credential)?;
    let mut refreshed = false;
    let mut attempts = 0;
    // No attempt may run past the deadline less the margin: the invocation could be killed with
    // neither a deal accounted for nor a dead letter written. `next_wait` keeps retries within it;
    // this also bounds the first attempt (the client's own timeout may be longer than what is left).
    let cut = deadline.map(|at| at.checked_sub(policy.margin).unwrap_or_else(tokio::time::Instant::now));
    loop {
        if cut.is_some_and(|cut| cut <= tokio::time::Instant::now()) {
            // Not started, so nothing was sent: unlike a cut attempt, the outcome is known.
            return Err(PlanError::HubSpot(no_time_left(), attempts));
        }
        attempts += 1;
        let attempt = deals.create(options, draft, &auth);
        let result = match cut {
            Some(cut) => tokio::time::timeout_at(cut, attempt)
                .await
                .unwrap_or_else(|_| Err(out_of_time())),
            None => attempt.await,
        };
        let error = match result {
            Ok(deal) => return Ok(deal),
            Err(error) => error,
        };
        if matches!(error, HubSpotError::Unauthorized { .. }) && !refreshed {
            tracing::warn!("HubSpot refused the credential; re-reading the secret and trying once more");
            auth = auth_source.hubspot_auth(true).await.map_err(PlanError::Credential)?;
            refreshed = true;
            continue;
        }
        if !error.is_retryable() {
            return Err(PlanError::HubSpot(error, attempts));
        }
        let remaining = deadline.map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
        let Some(wait) = policy.next_wait(attempts, error.retry_after(), remaining, (policy.random)()) else {
            tracing::warn!(
                attempts,
                status = error.status(),
                reason = %error.reason(),
                "HubSpot failed; no retry left within the attempt budget and the invocation's time"
            );
            return Err(PlanError::HubSpot(error, attempts));
        };
        tracing::warn!(
            attempt = attempts,
            status = error.status(),
            reason = %error.reason(),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "HubSpot failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// An attempt cut off at the invocation's deadline less the margin: it may have reached HubSpot.
fn out_of_time() -> HubSpotError {
    HubSpotError::OutcomeUnknown {
        status: None,
        message: "no answer before the invocation's deadline (less the time kept to write the dead letter); \
                  the deal may exist"
            .to_owned(),
    }
}

/// No time was left to start an attempt (e.g. a slow secret read used it up): nothing was sent.
fn no_time_left() -> HubSpotError {
    HubSpotError::Unavailable {
        status: None,
        message: "no time was left in the invocation to call HubSpot (less the time kept to write the dead letter); \
                  nothing was sent"
            .to_owned(),
    }
}
