//! Idempotency: the same delivery, arriving twice, makes one deal.
//!
//! Senders retry (Typeform for hours, Stripe for days), sometimes while the first attempt is still
//! running. With a store configured (`DEALHOOK_IDEMPOTENCY_TABLE`), every delivery that is about to
//! reach HubSpot first *claims* its key:
//!
//! ```text
//! claim(key) ─ Acquired ───▶ create the deal ─▶ complete(key, response)   repeats get the stored response
//!            │                              └─▶ release(key)              failed: a repeat may try again
//!            ├ Completed(response) ─▶ answered with the stored response, HubSpot is not called
//!            └ InProgress ─────────▶ 409 + Retry-After: the sender retries later
//! ```
//!
//! The key is the endpoint (`/hooks/{endpoint}`) and the submission id, or the SHA-256 of the raw
//! body when there is none (plain forms, generic JSON). On a signed route the submission id comes
//! only from what the signature covers (the body, or Standard Webhooks' signed `webhook-id`; GitHub's
//! unsigned `X-GitHub-Delivery` is replaced by the body's SHA-256), so that nobody holding one
//! signed body can mint fresh keys for it, or take a genuine delivery's key first. The lock expires with
//! the invocation's deadline, so a crashed or timed-out attempt never blocks its repeats for
//! longer than the function could have run. Records expire after a TTL (default 24 h).
//!
//! What is *completed* (stored and replayed): a created deal, and a dead letter whose outcome is
//! unknown (HubSpot may hold the deal; a blind repeat could double it, so the repeat is answered
//! with the same dead letter and a person decides). Every other failure releases the key, so that
//! a fixed mapping, a re-sent delivery or a redriven dead letter can still create the deal.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use crate::outcome::StoredResponse;

/// Default lifetime of a record: 24 hours (`DEALHOOK_IDEMPOTENCY_TTL_SECONDS`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a lock lasts when the invocation has no deadline (local runs).
pub const DEFAULT_LOCK: Duration = Duration::from_secs(60);
/// Provider ids longer than this are hashed into the key (DynamoDB keys are at most 2 KB).
const MAX_ID_IN_KEY: usize = 256;

/// The key one delivery is recorded under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `{endpoint}#id:{delivery id}` when the provider gave one, else `{endpoint}#sha256:{hex of body}`.
    pub fn for_delivery(endpoint: &str, delivery_id: Option<&str>, body: &[u8]) -> IdempotencyKey {
        let id = delivery_id.map(str::trim).filter(|id| !id.is_empty());
        let key = match id {
            Some(id) if id.len() <= MAX_ID_IN_KEY => format!("{endpoint}#id:{id}"),
            Some(id) => format!("{endpoint}#id-sha256:{}", sha256_hex(id.as_bytes())),
            None => format!("{endpoint}#sha256:{}", sha256_hex(body)),
        };
        IdempotencyKey(key)
    }

    /// The key of one record of a delivery on a route with `for_each`: this (the delivery's) key and
    /// `#item:{index}`. Each record is claimed and settled on its own, so that a repeat of the whole
    /// delivery makes no second deal for any record, and a record that failed can still be retried.
    pub fn for_record(&self, index: usize) -> IdempotencyKey {
        IdempotencyKey(format!("{}#item:{index}", self.0))
    }

    /// `{scope}#sha256:{hex of value}`: a key for a record that is not a delivery's (e.g. `dedupe`'s
    /// per-contact lock). The value is hashed, so no personal data (an e-mail) is stored in the key.
    /// `scope` must not be an endpoint name (endpoint names have no `:`; give the scope one).
    pub fn hashed(scope: &str, value: &str) -> IdempotencyKey {
        IdempotencyKey(format!("{scope}#sha256:{}", sha256_hex(value.as_bytes())))
    }

    /// A key as [`Self::as_str`] gave it, kept in an envelope (queue mode's work items, dead letters).
    pub fn from_stored(key: &str) -> IdempotencyKey {
        IdempotencyKey(key.to_owned())
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The lock is ours until the given time: go ahead.
    Acquired,
    /// The delivery was completed before: answer this.
    Completed(StoredResponse),
    /// Another attempt holds the lock until this time.
    InProgress {
        /// When that lock expires.
        until: SystemTime,
    },
}

/// Why the store could not be used. Messages hold no secret (keys and table names only).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the idempotency store could not be used: {message}")]
pub struct IdempotencyError {
    /// What went wrong.
    pub message: String,
}

/// Where idempotency records live (DynamoDB in production, memory in tests).
///
/// A record is `{key, owner, lock_until, expires_at, response?}`. `owner` is a token unique to
/// one attempt, so that an attempt only ever completes or releases its own lock.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the lock on `key` for `owner` until `lock_until`, unless a live record exists: a
    /// completed one (not past `expires_at`) or a lock not yet expired. Atomic: of two concurrent
    /// claims, one wins.
    async fn claim(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        lock_until: SystemTime,
        expires_at: SystemTime,
    ) -> Result<Claim, IdempotencyError>;

    /// Marks `owner`'s lock on `key` completed with `response`, kept until `expires_at`.
    async fn complete(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        response: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError>;

    /// Drops `owner`'s lock on `key` (the attempt failed; a repeat may try again). A lock that is
    /// no longer `owner`'s is left alone.
    async fn release(&self, key: &IdempotencyKey, owner: &str) -> Result<(), IdempotencyError>;

    /// Keeps `value` under `key` until `expires_at`, whatever the key held (a completed record with no
    /// lock). Callers serialise writers themselves (e.g. under a [`Self::claim`]ed lock on another key).
    async fn remember(
        &self,
        key: &IdempotencyKey,
        value: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError>;

    /// The value [`Self::remember`]ed (or completed) under `key`, unless it expired; strongly consistent.
    async fn recall(&self, key: &IdempotencyKey) -> Result<Option<StoredResponse>, IdempotencyError>;
}

/// Idempotency as configured: the store and how long records live.
#[derive(Clone)]
pub struct Idempotency {
    /// The store.
    pub store: std::sync::Arc<dyn IdempotencyStore>,
    /// How long a record lives after its delivery (the TTL attribute).
    pub ttl: Duration,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch (0 before it), as records store times.
pub fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Milliseconds since the epoch (0 before it).
pub fn epoch_millis(at: SystemTime) -> u64 {
    u64::try_from(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_id_keys_the_delivery_whatever_the_body() {
        let a = IdempotencyKey::for_delivery("quotes", Some("evt_1"), b"first");
        let b = IdempotencyKey::for_delivery("quotes", Some("evt_1"), b"second");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "quotes#id:evt_1");
    }

    #[test]
    fn without_an_id_the_body_hash_is_the_key() {
        let a = IdempotencyKey::for_delivery("contact", None, b"name=Ada");
        assert_eq!(a, IdempotencyKey::for_delivery("contact", Some("  "), b"name=Ada"));
        assert_ne!(a, IdempotencyKey::for_delivery("contact", None, b"name=Bob"));
        // The SHA-256 of "name=Ada".
        assert_eq!(
            a.as_str(),
            format!("contact#sha256:{}", hex::encode(Sha256::digest(b"name=Ada")))
        );
        assert_eq!(a.as_str().len(), "contact#sha256:".len() + 64);
    }

    #[test]
    fn the_same_id_on_two_endpoints_is_two_keys() {
        assert_ne!(
            IdempotencyKey::for_delivery("a", Some("1"), b""),
            IdempotencyKey::for_delivery("b", Some("1"), b"")
        );
    }

    #[test]
    fn a_long_id_is_hashed_to_a_bounded_key() {
        let long = "x".repeat(5000);
        let key = IdempotencyKey::for_delivery("r", Some(&long), b"");
        assert!(key.as_str().starts_with("r#id-sha256:"), "{key}");
        assert!(key.as_str().len() < 100);
        assert_ne!(key, IdempotencyKey::for_delivery("r", Some(&"y".repeat(5000)), b""));
    }

    #[test]
    fn each_record_of_a_delivery_has_its_own_key_under_the_deliverys() {
        let delivery = IdempotencyKey::for_delivery("orders", Some("batch-7"), b"");
        let first = delivery.for_record(0);
        assert_eq!(first.as_str(), "orders#id:batch-7#item:0");
        assert_eq!(delivery.for_record(12).as_str(), "orders#id:batch-7#item:12");
        assert_ne!(first, delivery.for_record(1));
        assert_ne!(first, delivery, "a record is not the delivery");
        let hashed = IdempotencyKey::for_delivery("orders", None, b"{}").for_record(3);
        assert!(
            hashed.as_str().starts_with("orders#sha256:") && hashed.as_str().ends_with("#item:3"),
            "{hashed}"
        );
    }

    #[test]
    fn epoch_conversions_clamp_before_the_epoch() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(epoch_seconds(at), 1);
        assert_eq!(epoch_millis(at), 1_500);
        assert_eq!(epoch_seconds(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
