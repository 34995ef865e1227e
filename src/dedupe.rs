//! One open deal per lead across concurrent deliveries (`dedupe:` of a route): the plan with a lock
//! per route and contact, and the deal it created remembered for the route's window.
//!
//! HubSpot's search lags writes by seconds (catalog item 14), so two deliveries for one contact a
//! second apart would each search, each find nothing and each create. With the idempotency table
//! configured (`DEALHOOK_IDEMPOTENCY_TABLE`), the plan of a `dedupe` route therefore runs under a
//! lock keyed by route and contact (the e-mail trimmed and lower-cased, or the contact id; hashed,
//! so no e-mail is stored):
//!
//! ```text
//! claim(dedupe:lock#…) ─ Acquired ──▶ recall(dedupe:deal#…) ─▶ plan (read the remembered deal, else search;
//!                      │                                         update / skip / create)
//!                      │                                    ─▶ remember(dedupe:deal#…, new deal id, TTL within_days)
//!                      │                                    ─▶ release(dedupe:lock#…)
//!                      └ InProgress ─▶ 409 + Retry-After (the sender retries, and then finds the deal)
//! ```
//!
//! The lock lasts at most until the invocation's deadline (a crashed attempt never blocks the contact
//! for longer); the remembered deal id is read by id (reads do not lag), and used only while it is
//! still open and in the pipeline. Only a deal the plan *created* is remembered: a deal it updated was
//! found by the search, which will find it again. Without the table, the search alone decides, and two
//! deliveries for one new contact within the search's lag can still make two deals (README, "dedupe").
//! A table that cannot be used dead-letters the delivery (`idempotency_unavailable`), as for a
//! delivery's own key: a second deal is what `dedupe` promises not to make.

use std::time::SystemTime;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::domain::DealDraft;
use crate::hubspot::plan::{self, AuthSource, DedupeRun};
use crate::hubspot::{CreatedDeal, DealWrite, Deals, PlanError, RetryPolicy};
use crate::idempotency::{self, Claim, Idempotency, IdempotencyError, IdempotencyKey, StoredResponse};
use crate::mapping::{DedupeContact, Route};

/// How a deal write under `dedupe` ended.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per delivery, matched at once: boxing would buy nothing
pub(crate) enum Guarded {
    /// The plan ran (or, for a route without `dedupe`, ran as always): its result.
    Plan(Result<CreatedDeal, PlanError>),
    /// Another delivery for the same route and contact holds the lock: answer 409, retry after this.
    InProgress {
        /// Seconds until that lock lapses (at least 1).
        retry_after_secs: u64,
    },
    /// The idempotency table could not be used: nothing was sent to HubSpot.
    StoreUnavailable(IdempotencyError),
}

/// The keys of one route and contact: the lock, and the remembered deal.
fn keys(route: &str, contact: &DedupeContact) -> (IdempotencyKey, IdempotencyKey) {
    // NUL cannot be in a route name, so `route` and the contact cannot run into each other.
    let subject = format!("{route}\0{}", contact.key_text());
    (
        IdempotencyKey::hashed("dedupe:lock", &subject),
        IdempotencyKey::hashed("dedupe:deal", &subject),
    )
}

/// Writes `draft`'s deal as `route` says: [`plan::create_deal`] for a route without `dedupe`; with it,
/// [`plan::write_deal`] under the route-and-contact lock when `idempotency` is configured (see the
/// module's doc), else with the search alone.
pub(crate) async fn write_deal<A: AuthSource + ?Sized>(
    deals: &dyn Deals,
    auth_source: &A,
    idempotency: Option<&Idempotency>,
    route: &Route,
    draft: &DealDraft,
    policy: RetryPolicy,
    deadline: Option<SystemTime>,
) -> Guarded {
    let options = route.hubspot();
    let on_failure = route.on_association_failure();
    let Some(rule) = route.dedupe() else {
        return Guarded::Plan(
            plan::create_deal(deals, auth_source, options, draft, on_failure, policy, deadline).await,
        );
    };
    let run = |remembered| {
        Some(DedupeRun {
            rule,
            remembered,
            now: SystemTime::now(),
        })
    };
    // A draft of a dedupe route always has a contact (the mapping requires it), so without one only
    // the table is missing.
    let (Some(idempotency), Some(contact)) = (idempotency, DedupeContact::of(&draft.associations)) else {
        let result = plan::write_deal(
            deals,
            auth_source,
            options,
            draft,
            on_failure,
            policy,
            deadline,
            run(None),
        );
        return Guarded::Plan(result.await);
    };
    let (lock, memory) = keys(route.name(), &contact);
    let owner = uuid::Uuid::new_v4().to_string();
    let now = SystemTime::now();
    let lock_until = deadline.unwrap_or(now + idempotency::DEFAULT_LOCK);
    match idempotency
        .store
        .claim(&lock, &owner, lock_until, lock_until)
        .instrument(tracing::info_span!("idempotency"))
        .await
    {
        Ok(Claim::Acquired) => {}
        Ok(Claim::InProgress { until }) => {
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            tracing::info!("dedupe: another delivery for this contact is being written; asking the sender to retry");
            return Guarded::InProgress {
                retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64,
            };
        }
        Ok(Claim::Completed(_)) => {
            // Lock keys are only ever claimed and released; a completed one is not ours to read.
            return Guarded::StoreUnavailable(IdempotencyError {
                message: format!("the dedupe lock {lock} holds a completed record"),
            });
        }
        Err(error) => return Guarded::StoreUnavailable(error),
    }
    let remembered = match idempotency
        .store
        .recall(&memory)
        .instrument(tracing::info_span!("idempotency"))
        .await
    {
        Ok(stored) => stored.and_then(|s| s.body.get("dealId").and_then(Value::as_u64)),
        Err(error) => {
            release(idempotency, &lock, &owner).await;
            return Guarded::StoreUnavailable(error);
        }
    };
    let result = plan::write_deal(
        deals,
        auth_source,
        options,
        draft,
        on_failure,
        policy,
        deadline,
        run(remembered),
    )
    .await;
    if let Ok(deal) = &result
        && deal.write == DealWrite::Created
    {
        let value = StoredResponse {
            status: 200,
            body: json!({ "dealId": deal.deal_id }),
        };
        if let Err(error) = idempotency
            .store
            .remember(&memory, &value, now + rule.window())
            .instrument(tracing::info_span!("idempotency"))
            .await
        {
            // The deal stands; a delivery within the search's lag may then not see it.
            tracing::error!(error = %error, deal_id = deal.deal_id, "dedupe: the new deal could not be remembered");
        }
    }
    release(idempotency, &lock, &owner).await;
    Guarded::Plan(result)
}

async fn release(idempotency: &Idempotency, lock: &IdempotencyKey, owner: &str) {
    if let Err(error) = idempotency
        .store
        .release(lock, owner)
        .instrument(tracing::info_span!("idempotency"))
        .await
    {
        // The lock lapses at the deadline; until then this contact's deliveries get 409.
        tracing::error!(error = %error, "dedupe: the contact's lock could not be released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_route_and_contact_and_never_hold_the_email() {
        let ada = DedupeContact::Email("ada@example.com".to_owned());
        let (lock, memory) = keys("lead", &ada);
        assert_ne!(lock, memory);
        assert!(lock.as_str().starts_with("dedupe:lock#sha256:"), "{lock}");
        assert!(!lock.as_str().contains("ada"), "{lock}");
        assert_ne!(keys("other", &ada).0, lock);
        assert_ne!(
            keys("lead", &DedupeContact::Email("bob@example.com".to_owned())).0,
            lock
        );
        assert_ne!(
            keys("lead", &DedupeContact::Id(5)).0,
            keys("lead", &DedupeContact::Email("5".to_owned())).0
        );
    }
}
