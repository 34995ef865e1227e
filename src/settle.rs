//! The end of a delivery's pipeline: the deal written (once, under the idempotency key, when there is
//! a store) through the plan of calls, or the delivery kept as a dead letter with what was done.

use std::time::SystemTime;

use tracing::Instrument;

use crate::dead_letter::{DeadLetter, HubSpotFailure};
use crate::domain::{Problem, Reason};
use crate::hubspot::{self, PlanError};
use crate::idempotency::{self, Claim, Idempotency, IdempotencyKey};
use crate::inbound::Delivery;
use crate::{App, Outcome, Prepared, StoredResponse, credentials, dedupe, metrics};

impl App {
    /// [`Self::deliver`] under the delivery's idempotency key: a repeat of a completed delivery gets the
    /// stored response, a repeat while another attempt runs gets 409, and a store that cannot be used
    /// dead-letters the delivery (`idempotency_unavailable`) rather than risking a second deal.
    pub(crate) async fn deliver_once(
        &self,
        idempotency: &Idempotency,
        delivery: &Delivery,
        prepared: Prepared<'_>,
    ) -> Outcome {
        // A delivery run again from an envelope keeps the key computed when it was received (its body may
        // since have had secret values cut out of it).
        let mut key = delivery_key(delivery, &prepared);
        if let Some(record) = prepared.record {
            key = key.for_record(record.index);
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let now = SystemTime::now();
        let lock_until = delivery.deadline.unwrap_or(now + idempotency::DEFAULT_LOCK);
        let expires_at = now + idempotency.ttl;
        match idempotency
            .store
            .claim(&key, &owner, lock_until, expires_at)
            .instrument(tracing::info_span!("idempotency"))
            .await
        {
            Ok(Claim::Acquired) => {}
            Ok(Claim::Completed(stored)) => {
                tracing::info!(key = %key, status = stored.status, "a repeat of a completed delivery: answering as before");
                return Outcome::Replayed(stored);
            }
            Ok(Claim::InProgress { until }) => {
                let left = until.duration_since(SystemTime::now()).unwrap_or_default();
                tracing::info!(key = %key, "a repeat of a delivery still in progress: asking the sender to retry");
                return Outcome::InProgress {
                    retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64,
                };
            }
            Err(error) => {
                let reason = Reason::IdempotencyUnavailable;
                if let Some(deferred) = self.deferral(delivery, reason, None, prepared.record) {
                    tracing::warn!(key = %key, error = %error, "idempotency store unavailable; the work item is retried");
                    return deferred;
                }
                tracing::error!(key = %key, error = %error, "idempotency store unavailable; dead-lettering the delivery");
                let problem = Problem::general(reason.as_str(), error.to_string());
                let letter = self.letter_with_draft(delivery, &prepared, reason, vec![problem]);
                return self.dead_letter(letter).await;
            }
        }
        let (outcome, deal_may_exist) = self.deliver(delivery, prepared).await;
        // Kept for repeats: a deal, or a dead letter after which HubSpot may hold one. Anything else is
        // released, so that a resend (or a redrive) after a fix can still create the deal.
        let keep = match &outcome {
            Outcome::Created(_) => true,
            Outcome::DeadLettered { .. } => deal_may_exist,
            _ => false,
        };
        let settled = async {
            if keep {
                let stored = StoredResponse::of(&outcome);
                idempotency.store.complete(&key, &owner, &stored, expires_at).await
            } else {
                idempotency.store.release(&key, &owner).await
            }
        }
        .instrument(tracing::info_span!("idempotency"))
        .await;
        if let Err(error) = settled {
            // The outcome stands; the lock lapses at the deadline, after which a repeat is processed again.
            tracing::error!(key = %key, error = %error, "the idempotency record could not be settled");
        }
        outcome
    }

    /// Runs the plan of calls ([`hubspot::plan`]: contacts, companies, the deal, links) or
    /// dead-letters the delivery. Also says whether HubSpot may hold the deal despite a failure (see
    /// [`HubSpotError::may_have_created`]; a deal made before an association failed does).
    pub(crate) async fn deliver(&self, delivery: &Delivery, prepared: Prepared<'_>) -> (Outcome, bool) {
        // With `dedupe:`, under the route-and-contact lock (see `dedupe.rs`).
        let plan = dedupe::write_deal(
            &*self.deals,
            &*self.secrets,
            self.idempotency.as_ref(),
            prepared.route,
            &prepared.draft,
            self.settings.retry,
            delivery.deadline,
        );
        let failure = match plan.await {
            dedupe::Guarded::Plan(Ok(deal)) => {
                metrics::association_failures(deal.association_create_failures.len());
                return (Outcome::Created(deal), false);
            }
            dedupe::Guarded::Plan(Err(failure)) => failure,
            dedupe::Guarded::InProgress { retry_after_secs } => {
                return (Outcome::InProgress { retry_after_secs }, false);
            }
            dedupe::Guarded::StoreUnavailable(error) => {
                let reason = Reason::IdempotencyUnavailable;
                if let Some(deferred) = self.deferral(delivery, reason, None, prepared.record) {
                    tracing::warn!(error = %error, "idempotency store unavailable for dedupe; the work item is retried");
                    return (deferred, false);
                }
                tracing::error!(error = %error, "idempotency store unavailable for dedupe; dead-lettering the delivery");
                let problem = Problem::general(reason.as_str(), error.to_string());
                let letter = self.letter_with_draft(delivery, &prepared, reason, vec![problem]);
                return (self.dead_letter(letter).await, false);
            }
        };
        let retry_after = match &failure {
            PlanError::HubSpot { error, .. } => error.retry_after(),
            _ => None,
        };
        let (reason, errors, hubspot, may_exist) = match failure {
            PlanError::Credential(message) => (
                Reason::SecretUnavailable,
                vec![Problem::general(Reason::SecretUnavailable.as_str(), message)],
                None,
                false,
            ),
            PlanError::HubSpot {
                error,
                attempts,
                done,
                failures,
            } => {
                metrics::association_failures(failures.len());
                let mut hubspot = HubSpotFailure::of(&error, attempts);
                hubspot.done = (!done.is_empty()).then_some(done);
                hubspot.association_failures = failures.into_iter().map(|f| f.entry).collect();
                (
                    error.reason(),
                    error.problems(),
                    Some(hubspot),
                    error.may_have_created(),
                )
            }
            PlanError::Associations {
                failures,
                done,
                attempts,
            } => association_failure(failures, done, attempts),
        };
        // Run again from the work queue: a failure that may pass goes back to the queue (nothing of
        // the deal was written, so the retry is safe).
        if !may_exist && let Some(deferred) = self.deferral(delivery, reason, retry_after, prepared.record) {
            return (deferred, false);
        }
        let mut letter = self.letter_with_draft(delivery, &prepared, reason, errors);
        letter.hubspot = hubspot;
        (self.dead_letter(letter).await, may_exist)
    }

    /// A dead letter for a delivery that was mapped: it carries the draft and the request it makes.
    pub(crate) fn letter_with_draft(
        &self,
        delivery: &Delivery,
        prepared: &Prepared<'_>,
        reason: Reason,
        errors: Vec<Problem>,
    ) -> DeadLetter {
        let mut letter = DeadLetter::new(delivery, prepared.route.name(), reason, errors);
        letter.hubspot_request = self.deals.preview(prepared.route.hubspot(), &prepared.draft).ok();
        letter.hubspot_requests =
            hubspot::plan::preview_deduped(prepared.route.hubspot(), &prepared.draft, prepared.route.dedupe())
                .unwrap_or_default();
        letter.deal_draft = Some(prepared.draft.clone());
        letter.record = prepared.record;
        letter.idempotency_key = Some(delivery_key(delivery, prepared).as_str().to_owned());
        letter
    }

    /// Writes a dead letter, every known secret value scrubbed out of it; if even that fails,
    /// asks the sender to retry.
    pub(crate) async fn dead_letter(&self, letter: DeadLetter) -> Outcome {
        // The values to scrub are those of the secret as read: an unsigned route may dead-letter a
        // delivery before anything has read it, so read it (from the cache, usually) first.
        if let Err(error) = self.secrets.credentials().await {
            tracing::warn!(error = %error, "the secret could not be read: this dead letter is scrubbed of the values known so far");
        }
        let letter = letter.redacted(&credentials::scrub::known_secrets());
        let sent = self
            .dead_letters
            .send(&letter)
            .instrument(tracing::info_span!("dead_letter"))
            .await;
        metrics::dead_letter_written(letter.reason, sent.is_ok());
        match sent {
            Ok(()) => Outcome::DeadLettered {
                reason: letter.reason,
                deal_id: letter
                    .hubspot
                    .as_ref()
                    .and_then(|h| h.done.as_ref())
                    .and_then(|d| d.deal_id),
                dead_letter_id: letter.id,
                errors: letter.errors,
            },
            Err(error) => {
                tracing::error!(reason = %letter.reason, error = %error, "dead letter could not be written");
                Outcome::RetryLater {
                    code: "dead_letter_unavailable",
                    message: "the delivery could not be processed or stored; please retry later",
                }
            }
        }
    }
}

/// The dead letter's parts for associations that failed under `on_association_failure: dead_letter`:
/// the reason of the first failure HubSpot gave an error for (`association_not_found` when none did:
/// no company has the domain), one problem per failure, and what was written (the deal id, if the
/// deal exists; then the deal may exist, so an idempotent repeat replays this answer).
fn association_failure(
    failures: Vec<hubspot::AssociationFailure>,
    done: hubspot::PlanProgress,
    attempts: u32,
) -> (Reason, Vec<Problem>, Option<HubSpotFailure>, bool) {
    metrics::association_failures(failures.len());
    let first = failures.iter().find_map(|f| f.error.as_ref());
    let reason = first.map_or(Reason::AssociationNotFound, hubspot::HubSpotError::reason);
    let errors = failures
        .iter()
        .map(|f| {
            let text = |key: &str| f.entry.get(key).and_then(serde_json::Value::as_str).unwrap_or_default();
            Problem::at(
                format!("associations.{}", text("object")),
                "association_failed",
                format!("{} failed: {}", text("call"), text("message")),
            )
        })
        .collect();
    let mut hubspot = match first {
        Some(error) => HubSpotFailure::of(error, attempts),
        None => HubSpotFailure {
            status: None,
            body: serde_json::Value::String(
                "HubSpot reported no error: a record to link was not found (see associationFailures)".to_owned(),
            ),
            attempts,
            done: None,
            association_failures: Vec::new(),
        },
    };
    let deal_exists = done.deal_id.is_some();
    hubspot.association_failures = failures.into_iter().map(|f| f.entry).collect();
    hubspot.done = Some(done);
    (reason, errors, Some(hubspot), deal_exists)
}

/// The delivery's idempotency key (a record's adds `#item:{index}`): the one computed when it was
/// received, for a delivery run again from an envelope (its body may since have had secret values cut
/// out of it), else computed from the endpoint and the provider's delivery id or the body.
fn delivery_key(delivery: &Delivery, prepared: &Prepared<'_>) -> IdempotencyKey {
    match delivery.redelivery.as_ref().and_then(|r| r.idempotency_key.as_deref()) {
        Some(key) => IdempotencyKey::from_stored(key),
        None => IdempotencyKey::for_delivery(prepared.endpoint, prepared.delivery_id.as_deref(), &delivery.body),
    }
}
