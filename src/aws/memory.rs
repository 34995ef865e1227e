//! In-memory fakes of the AWS ports for unit tests of the pipeline: they record what they were
//! given and can be told to fail. No I/O; a poisoned lock is recovered, never a panic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{
    DeadLetterError, DeadLetters, PayloadError, PayloadPointer, PayloadStore, REREAD_INTERVAL, RereadLimit,
    SecretError, SecretSource,
};
use crate::credentials::Credentials;
use crate::dead_letter::DeadLetter;
use crate::idempotency::{Claim, IdempotencyError, IdempotencyKey, IdempotencyStore, StoredResponse};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not turn every later assertion into a
    // poison panic; the data is still meaningful for a fake.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A dead-letter queue in memory: records every letter sent, in order.
///
/// After `set_failing(true)`, `send` returns an error and records nothing (the queue is "down").
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    sent: Mutex<Vec<DeadLetter>>,
    failing: AtomicBool,
}

impl MemoryDeadLetters {
    /// An empty, working queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every letter successfully sent so far, oldest first.
    pub fn sent(&self) -> Vec<DeadLetter> {
        lock(&self.sent).clone()
    }

    /// `true`: later sends fail (nothing recorded); `false`: they succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DeadLetterError {
                message: "the in-memory dead-letter queue is set to fail".to_owned(),
            });
        }
        lock(&self.sent).push(letter.clone());
        Ok(())
    }
}

/// A payload bucket in memory ([`MemoryPayloads::BUCKET`]): objects by key, as stored.
///
/// After `set_failing(true)`, `put` and `get` fail (nothing stored). `get` of a key never stored is
/// [`PayloadError::NotFound`]; of another bucket, [`PayloadError::ForeignBucket`], as with S3.
#[derive(Debug, Default)]
pub struct MemoryPayloads {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

impl MemoryPayloads {
    /// The bucket name in its pointers.
    pub const BUCKET: &str = "memory-payloads";

    /// An empty, working bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every object stored, by key.
    pub fn objects(&self) -> HashMap<String, Vec<u8>> {
        lock(&self.objects).clone()
    }

    /// `true`: later calls fail; `false`: they succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PayloadStore for MemoryPayloads {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<PayloadPointer, PayloadError> {
        if self.is_failing() {
            return Err(PayloadError::Put {
                bucket: Self::BUCKET.to_owned(),
                key: key.to_owned(),
                message: "the in-memory payload store is set to fail".to_owned(),
            });
        }
        lock(&self.objects).insert(key.to_owned(), bytes);
        Ok(PayloadPointer {
            bucket: Self::BUCKET.to_owned(),
            key: key.to_owned(),
        })
    }

    async fn get(&self, pointer: &PayloadPointer) -> Result<Vec<u8>, PayloadError> {
        if pointer.bucket != Self::BUCKET {
            return Err(PayloadError::ForeignBucket {
                pointer: pointer.clone(),
                bucket: Self::BUCKET.to_owned(),
            });
        }
        if self.is_failing() {
            return Err(PayloadError::Get {
                pointer: pointer.clone(),
                message: "the in-memory payload store is set to fail".to_owned(),
            });
        }
        lock(&self.objects)
            .get(&pointer.key)
            .cloned()
            .ok_or_else(|| PayloadError::NotFound(pointer.clone()))
    }
}

/// A secret store in memory that behaves like the cached Secrets Manager source.
///
/// `credentials()` serves the cached value; `set` changes the *stored* value (a rotation), which
/// only `refresh()` picks up, as with the real cache. After `set_failing(true)` both calls fail
/// with [`SecretError::Unavailable`] (no stale value is served: that is the point of the switch).
/// `reads()` and `refreshes()` count the calls, failed ones included. `reread_rate_limited()` re-reads
/// at most once per [`REREAD_INTERVAL`] (on tokio's clock), as the real source does.
#[derive(Debug)]
pub struct MemorySecrets {
    stored: Mutex<Arc<Credentials>>,
    cached: Mutex<Arc<Credentials>>,
    failing: AtomicBool,
    reads: AtomicUsize,
    refreshes: AtomicUsize,
    reread_limit: RereadLimit,
}

impl MemorySecrets {
    /// The secret id reported in its errors.
    pub const SECRET_ID: &str = "memory";

    /// A store holding (and a cache already serving) `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        credentials.remember_for_scrubbing();
        let credentials = Arc::new(credentials);
        MemorySecrets {
            stored: Mutex::new(Arc::clone(&credentials)),
            cached: Mutex::new(credentials),
            failing: AtomicBool::new(false),
            reads: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
            reread_limit: RereadLimit::new(REREAD_INTERVAL),
        }
    }

    /// Replaces the stored credentials (a rotation). `credentials()` keeps serving the old ones
    /// until `refresh()`.
    pub fn set(&self, credentials: Credentials) {
        credentials.remember_for_scrubbing();
        *lock(&self.stored) = Arc::new(credentials);
    }

    /// `true`: later `credentials()` and `refresh()` calls fail; `false`: they succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many times `credentials()` was called.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// How many times `refresh()` was called.
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), SecretError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SecretError::Unavailable {
                secret_id: Self::SECRET_ID.to_owned(),
                message: "the in-memory secret store is set to fail".to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for MemorySecrets {
    /// Empty credentials: no HubSpot auth, no signing keys.
    fn default() -> Self {
        MemorySecrets::new(Credentials::default())
    }
}

#[async_trait]
impl SecretSource for MemorySecrets {
    async fn credentials(&self) -> Result<Arc<Credentials>, SecretError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(Arc::clone(&lock(&self.cached)))
    }

    async fn refresh(&self) -> Result<Arc<Credentials>, SecretError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let stored = Arc::clone(&lock(&self.stored));
        *lock(&self.cached) = Arc::clone(&stored);
        Ok(stored)
    }

    /// As the real source: a `refresh` (counted) when [`RereadLimit`] allows, else the cached value.
    async fn reread_rate_limited(&self) -> Result<Arc<Credentials>, SecretError> {
        if self.reread_limit.try_acquire()
            && let Ok(fresh) = self.refresh().await
        {
            return Ok(fresh);
        }
        self.credentials().await
    }
}

/// One record of [`MemoryIdempotency`].
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRecord {
    /// The attempt holding or having completed it.
    pub owner: String,
    /// When the lock lapses.
    pub lock_until: SystemTime,
    /// When the record is treated as absent.
    pub expires_at: SystemTime,
    /// The stored response, once completed.
    pub response: Option<StoredResponse>,
}

/// An idempotency store in memory with the same rules as the DynamoDB one; `claim` is atomic (one
/// lock around the map), so concurrent claims of one key have exactly one winner.
///
/// `set_failing_claims(true)` makes `claim` fail (the table is down before anything happens);
/// `set_failing_settles(true)` makes `complete` and `release` fail (it went down mid-delivery).
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<String, MemoryRecord>>,
    failing_claims: AtomicBool,
    failing_settles: AtomicBool,
    claims: AtomicUsize,
}

impl MemoryIdempotency {
    /// An empty, working store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record under `key`, if any (expired ones included).
    pub fn record(&self, key: &str) -> Option<MemoryRecord> {
        lock(&self.records).get(key).cloned()
    }

    /// Every key held.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.records).keys().cloned().collect()
    }

    /// How many claims were made (failed ones included).
    pub fn claims(&self) -> usize {
        self.claims.load(Ordering::SeqCst)
    }

    /// `true`: later claims fail.
    pub fn set_failing_claims(&self, failing: bool) {
        self.failing_claims.store(failing, Ordering::SeqCst);
    }

    /// `true`: later completes and releases fail.
    pub fn set_failing_settles(&self, failing: bool) {
        self.failing_settles.store(failing, Ordering::SeqCst);
    }

    fn check(flag: &AtomicBool) -> Result<(), IdempotencyError> {
        if flag.load(Ordering::SeqCst) {
            return Err(IdempotencyError {
                message: "the in-memory idempotency store is set to fail".to_owned(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        lock_until: SystemTime,
        expires_at: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        Self::check(&self.failing_claims)?;
        let now = SystemTime::now();
        let mut records = lock(&self.records);
        if let Some(record) = records.get(key.as_str()).filter(|r| r.expires_at > now) {
            match &record.response {
                Some(response) => return Ok(Claim::Completed(response.clone())),
                None if record.lock_until > now => {
                    return Ok(Claim::InProgress {
                        until: record.lock_until,
                    });
                }
                None => {} // a lapsed lock: take it over
            }
        }
        let record = MemoryRecord {
            owner: owner.to_owned(),
            lock_until,
            expires_at,
            response: None,
        };
        records.insert(key.as_str().to_owned(), record);
        Ok(Claim::Acquired)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        response: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError> {
        Self::check(&self.failing_settles)?;
        let mut records = lock(&self.records);
        match records.get_mut(key.as_str()) {
            Some(record) if record.owner == owner => {
                record.response = Some(response.clone());
                record.expires_at = expires_at;
                Ok(())
            }
            _ => Err(IdempotencyError {
                message: format!("the lock on {key} is no longer this attempt's"),
            }),
        }
    }

    async fn release(&self, key: &IdempotencyKey, owner: &str) -> Result<(), IdempotencyError> {
        Self::check(&self.failing_settles)?;
        let mut records = lock(&self.records);
        if records
            .get(key.as_str())
            .is_some_and(|r| r.owner == owner && r.response.is_none())
        {
            records.remove(key.as_str());
        }
        Ok(())
    }

    async fn remember(
        &self,
        key: &IdempotencyKey,
        value: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError> {
        Self::check(&self.failing_settles)?;
        let record = MemoryRecord {
            owner: String::new(),
            lock_until: SystemTime::UNIX_EPOCH,
            expires_at,
            response: Some(value.clone()),
        };
        lock(&self.records).insert(key.as_str().to_owned(), record);
        Ok(())
    }

    async fn recall(&self, key: &IdempotencyKey) -> Result<Option<StoredResponse>, IdempotencyError> {
        Self::check(&self.failing_claims)?;
        let now = SystemTime::now();
        Ok(lock(&self.records)
            .get(key.as_str())
            .filter(|r| r.expires_at > now)
            .and_then(|r| r.response.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::credentials::HubSpotAuth;
    use crate::dead_letter::DeliveryRecord;

    fn token(c: &Credentials) -> String {
        match &c.hubspot {
            Some(HubSpotAuth::AccessToken(t)) => t.expose_secret().to_owned(),
            other => panic!("expected an access token, got {other:?}"),
        }
    }

    fn letter(id: &str) -> DeadLetter {
        DeadLetter {
            version: 1,
            id: id.into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            reason: crate::domain::Reason::MappingFailed,
            errors: vec![],
            delivery: DeliveryRecord {
                request_id: "req".into(),
                received_at: "2026-01-01T00:00:00.000Z".into(),
                method: "POST".into(),
                path: "/hooks/r".into(),
                route: "r".into(),
                query: None,
                headers: BTreeMap::new(),
                body_base64: String::new(),
                body_redacted: false,
            },
            hubspot: None,
            deal_draft: None,
            hubspot_request: None,
            hubspot_requests: Vec::new(),
            record: None,
            idempotency_key: None,
        }
    }

    #[tokio::test]
    async fn memory_dead_letters_record_sends_in_order() {
        let queue = MemoryDeadLetters::new();
        queue.send(&letter("a")).await.unwrap();
        queue.send(&letter("b")).await.unwrap();
        let ids: Vec<_> = queue.sent().into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_failing_memory_queue_errs_and_records_nothing() {
        let queue = MemoryDeadLetters::default();
        queue.set_failing(true);
        assert!(queue.send(&letter("a")).await.is_err());
        assert!(queue.sent().is_empty());
        queue.set_failing(false);
        queue.send(&letter("b")).await.unwrap();
        assert_eq!(queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_rotation_is_seen_only_after_refresh_and_calls_are_counted() {
        let secrets = MemorySecrets::new(Credentials::from_token("old".into()));
        secrets.set(Credentials::from_token("new".into()));
        assert_eq!(token(&secrets.credentials().await.unwrap()), "old");
        assert_eq!(token(&secrets.refresh().await.unwrap()), "new");
        assert_eq!(token(&secrets.credentials().await.unwrap()), "new");
        assert_eq!((secrets.reads(), secrets.refreshes()), (2, 1));
    }

    #[tokio::test]
    async fn failing_memory_secrets_are_unavailable_and_still_counted() {
        let secrets = MemorySecrets::new(Credentials::from_token("tok".into()));
        secrets.set_failing(true);
        assert!(matches!(
            secrets.credentials().await,
            Err(SecretError::Unavailable { .. })
        ));
        assert!(matches!(secrets.refresh().await, Err(SecretError::Unavailable { .. })));
        assert_eq!((secrets.reads(), secrets.refreshes()), (1, 1));
        secrets.set_failing(false);
        assert_eq!(token(&secrets.credentials().await.unwrap()), "tok");
    }

    #[tokio::test]
    async fn a_remembered_value_is_recalled_until_it_expires_and_overwrites_what_was_there() {
        let store = MemoryIdempotency::new();
        let key = IdempotencyKey::hashed("dedupe:deal", "lead\0email:ada@example.com");
        let value = |id: u64| StoredResponse {
            status: 200,
            body: serde_json::json!({ "dealId": id }),
        };
        assert_eq!(store.recall(&key).await.unwrap(), None);
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        store.remember(&key, &value(1), later).await.unwrap();
        store.remember(&key, &value(2), later).await.unwrap();
        assert_eq!(store.recall(&key).await.unwrap(), Some(value(2)));
        store.remember(&key, &value(3), SystemTime::now()).await.unwrap();
        assert_eq!(store.recall(&key).await.unwrap(), None, "expired");
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let queue = Arc::new(MemoryDeadLetters::new());
        let q = Arc::clone(&queue);
        let _ = std::thread::spawn(move || {
            let _guard = q.sent.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(queue.sent.is_poisoned());
        assert!(queue.sent().is_empty());
    }
}
