//! How the plan makes each call: one credential for the whole plan (re-read once when refused), one
//! deadline and cut for every call, and the retries [`RetryPolicy`] allows.

use std::future::Future;
use std::time::SystemTime;

use super::{AuthSource, PlanError};
use crate::credentials::HubSpotAuth;
use crate::hubspot::{HubSpotError, RetryPolicy};
use crate::metrics;

/// Why one call failed after its retries.
#[derive(Debug)]
pub(super) enum Failed {
    /// The credential could not be had.
    Credential(String),
    /// HubSpot's last error (the plan counts the requests sent).
    HubSpot(HubSpotError),
}

/// Makes the plan's calls: one credential (re-read once for the whole plan when refused), one
/// deadline and cut for all of them.
pub(super) struct Caller<'a, A: ?Sized> {
    auth_source: &'a A,
    auth: HubSpotAuth,
    refreshed: bool,
    policy: RetryPolicy,
    deadline: Option<tokio::time::Instant>,
    cut: Option<tokio::time::Instant>,
    /// Requests sent by the whole plan so far (the dead letter's `hubspot.attempts`).
    pub(super) sent: u32,
}

impl<'a, A: AuthSource + ?Sized> Caller<'a, A> {
    pub(super) async fn new(
        auth_source: &'a A,
        mut policy: RetryPolicy,
        deadline: Option<SystemTime>,
    ) -> Result<Self, PlanError> {
        let left = deadline.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        if let Some(left) = left {
            // The margin kept for the dead letter is at most a quarter of the time left: with a short
            // function timeout (Lambda's default is 3 s, as short as the default margin) HubSpot must
            // still get a chance. Writing the letter takes tens of milliseconds.
            policy.margin = policy.margin.min(left / 4);
        }
        // On tokio's clock from here on, so that waits and the time left agree (and tests can pause it).
        let deadline = left.map(|left| tokio::time::Instant::now() + left);
        // No attempt may run past the deadline less the margin: the invocation could be killed with
        // neither a deal accounted for nor a dead letter written. `next_wait` keeps retries within it;
        // this also bounds each first attempt (the client's own timeout may be longer than what is left).
        let cut = deadline.map(|at| at.checked_sub(policy.margin).unwrap_or_else(tokio::time::Instant::now));
        let auth = auth_source.hubspot_auth(false).await.map_err(PlanError::Credential)?;
        Ok(Caller {
            auth_source,
            auth,
            refreshed: false,
            policy,
            deadline,
            cut,
            sent: 0,
        })
    }

    /// One call of the plan (`name`, for the log), retried: what [`HubSpotError::is_retryable`] allows,
    /// or for an `idempotent` call what [`HubSpotError::is_retryable_if_idempotent`] allows, as the
    /// policy says and within the cut.
    pub(super) async fn call<T, F, Fut>(
        &mut self,
        name: &'static str,
        idempotent: bool,
        attempt: F,
    ) -> Result<T, Failed>
    where
        F: Fn(HubSpotAuth) -> Fut,
        Fut: Future<Output = Result<T, HubSpotError>>,
    {
        let mut attempts = 0;
        loop {
            if self.cut.is_some_and(|cut| cut <= tokio::time::Instant::now()) {
                // Not started, so nothing was sent: unlike a cut attempt, the outcome is known.
                return Err(Failed::HubSpot(no_time_left()));
            }
            attempts += 1;
            self.sent += 1;
            let sent = attempt(self.auth.clone());
            let started = tokio::time::Instant::now();
            let result = match self.cut {
                Some(cut) => tokio::time::timeout_at(cut, sent)
                    .await
                    .unwrap_or_else(|_| Err(out_of_time())),
                None => sent.await,
            };
            // A call that returns a value had a 2xx answer (the client turns anything else into an error).
            let status = result.as_ref().map_or_else(HubSpotError::status, |_| Some(200));
            metrics::hubspot_request(name, status, started.elapsed(), attempts > 1);
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if matches!(error, HubSpotError::Unauthorized { .. }) && !self.refreshed {
                tracing::warn!(
                    call = name,
                    "HubSpot refused the credential; re-reading the secret and trying once more"
                );
                self.auth = self.auth_source.hubspot_auth(true).await.map_err(Failed::Credential)?;
                self.refreshed = true;
                continue;
            }
            let retryable = if idempotent {
                error.is_retryable_if_idempotent()
            } else {
                error.is_retryable()
            };
            if !retryable {
                return Err(Failed::HubSpot(error));
            }
            let remaining = self
                .deadline
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
            let Some(wait) = self
                .policy
                .next_wait(attempts, error.retry_after(), remaining, (self.policy.random)())
            else {
                tracing::warn!(
                    call = name,
                    attempts,
                    status = error.status(),
                    reason = %error.reason(),
                    "HubSpot failed; no retry left within the attempt budget and the invocation's time"
                );
                return Err(Failed::HubSpot(error));
            };
            tracing::warn!(
                call = name,
                attempt = attempts,
                status = error.status(),
                reason = %error.reason(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "HubSpot failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
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
