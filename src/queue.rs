//! Queue mode (`DEALHOOK_MODE=queue`): the HTTP function authenticates, decodes and maps a delivery
//! (so a broken one is still answered at once, with its field errors, and dead-lettered), then puts
//! it on the work queue as a [`WorkItem`] and answers `202 {"status":"queued","id":…}`. The worker
//! (`dealhook-worker`, [`crate::App::handle_sqs_event`]) makes the deal from it later, with the same
//! plan, retries and idempotency as the synchronous path.
//!
//! A work item and a dead letter are one envelope family (docs/dead-letters.md): both carry
//! `version`, `id`, `createdAt`, `delivery` (the request as received, secrets redacted) and
//! `idempotencyKey`; a dead letter adds why it failed. Anything that reads them back to run them
//! again — the worker, `dealhook replay`, a dead letter moved to the work queue by SQS's
//! `start-message-move-task` — reads the common part, [`Redeliverable`].

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::aws::{PayloadPointer, PayloadStore, resolve};
use crate::credentials::scrub::Scrubber;
use crate::dead_letter::{DeliveryRecord, ENVELOPE_VERSION, ForEachRecord};
use crate::domain::Reason;
use crate::inbound::Delivery;

/// A delivery accepted in queue mode, waiting on the work queue for the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    /// Envelope format version ([`ENVELOPE_VERSION`]).
    pub version: u32,
    /// Unique id, answered to the sender as `id` (`202 {"status":"queued","id":…}`).
    pub id: String,
    /// When the item was written (RFC 3339).
    pub created_at: String,
    /// The delivery as received, secrets redacted (as in a dead letter).
    pub delivery: DeliveryRecord,
    /// The delivery's idempotency key, computed when it was received (from the provider's delivery id
    /// or the body's hash): the worker and any replay use it, so that a redelivered item makes no
    /// second deal even when the body kept in the envelope had secret values cut out of it.
    pub idempotency_key: String,
    /// On a route with `for_each`: the records (item indexes) the worker is to make; the others were
    /// dead-lettered when the delivery was mapped. Absent for a delivery that is one deal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<usize>>,
}

impl WorkItem {
    /// A work item for `delivery`, received on `route`, under `idempotency_key`.
    pub fn new(delivery: &Delivery, route: &str, idempotency_key: String, records: Option<Vec<usize>>) -> WorkItem {
        WorkItem {
            version: ENVELOPE_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            delivery: DeliveryRecord::of(delivery, route),
            idempotency_key,
            records,
        }
    }
}

impl WorkItem {
    /// The item with every known secret value taken out (see [`crate::dead_letter::DeadLetter::redacted`],
    /// which does the same for dead letters): the body (then `bodyRedacted`), and every other string.
    pub fn redacted(mut self, scrubber: &Scrubber) -> WorkItem {
        if scrubber.is_empty() {
            return self;
        }
        self.delivery.scrub_body(scrubber);
        // Every string, through the JSON form (the base64 text left out: it holds no secret now).
        let body_base64 = std::mem::take(&mut self.delivery.body_base64);
        let mut clean = match serde_json::to_value(&self) {
            Ok(mut json) => {
                let changed = scrubber.scrub_json(&mut json);
                match serde_json::from_value::<WorkItem>(json) {
                    Ok(clean) if changed => clean,
                    _ => self.redacted_by_field(scrubber),
                }
            }
            Err(_) => self.redacted_by_field(scrubber),
        };
        clean.delivery.body_base64 = body_base64;
        clean
    }

    /// The text fields one by one: the fallback should the JSON round trip ever fail (it holds only
    /// strings and numbers today), and the plain case when nothing changed.
    fn redacted_by_field(mut self, scrubber: &Scrubber) -> WorkItem {
        self.delivery.scrub_fields(scrubber);
        if let Cow::Owned(clean) = scrubber.scrub_str(&self.idempotency_key) {
            self.idempotency_key = clean;
        }
        self
    }
}

/// The envelope's JSON text in a queue message: the body itself, or, when the body is a pointer to S3
/// (an envelope over the queue's size limit), the object it names, read from `store`. `attributes`
/// are the message's string attributes (`ExtendedPayloadSize` is checked). The error is a sentence
/// for the log that never quotes the envelope.
pub async fn envelope_text<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    store: Option<&dyn PayloadStore>,
) -> Result<String, String> {
    match (PayloadPointer::from_message_body(body), store) {
        (None, _) => Ok(body.to_owned()),
        (Some(_), None) => Err(
            "the message points to a payload in S3 but no payload bucket is configured \
                                (DEALHOOK_PAYLOAD_BUCKET)"
                .to_owned(),
        ),
        (Some(_), Some(store)) => resolve(body, attributes, store).await.map_err(|e| e.to_string()),
    }
}

/// The part of any envelope (a work item or a dead letter) needed to run its delivery again. Unknown
/// fields are ignored, so dead letters of every version read as this.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redeliverable {
    /// Envelope format version.
    pub version: u32,
    /// The envelope's id.
    pub id: String,
    /// The delivery as received.
    pub delivery: DeliveryRecord,
    /// The idempotency key computed at receipt (absent in dead letters written before queue mode: the
    /// key is then computed again from the delivery).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// A work item's records ([`WorkItem::records`]).
    #[serde(default)]
    pub records: Option<Vec<usize>>,
    /// A dead letter's record ([`crate::dead_letter::DeadLetter::record`]).
    #[serde(default)]
    pub record: Option<ForEachRecord>,
    /// A dead letter's reason; absent for a work item.
    #[serde(default)]
    pub reason: Option<Reason>,
}

/// Why an envelope cannot be run again: its text, its version or its delivery is unusable. Never
/// quotes the envelope (it may hold personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or not an envelope.
    #[error("the message is not a dealhook envelope: {0}")]
    NotAnEnvelope(String),
    /// A version this build does not read.
    #[error("envelope version {0} is not one this dealhook reads (it reads up to {ENVELOPE_VERSION})")]
    Version(u32),
    /// The delivery in it cannot be rebuilt (which field, which rule).
    #[error("the envelope's delivery {0}")]
    Delivery(String),
}

impl Redeliverable {
    /// Reads an envelope's JSON text.
    pub fn parse(text: &str) -> Result<Redeliverable, EnvelopeError> {
        let envelope: Redeliverable = serde_json::from_str(text).map_err(|e| {
            EnvelopeError::NotAnEnvelope(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if envelope.version == 0 || envelope.version > ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.version));
        }
        Ok(envelope)
    }

    /// The delivery to run again, as received (body, headers, path and query; secret values that were
    /// redacted stay redacted), marked as a redelivery with `on_transient`.
    pub fn delivery(
        &self,
        deadline: Option<std::time::SystemTime>,
        on_transient: OnTransient,
    ) -> Result<Delivery, EnvelopeError> {
        let record = &self.delivery;
        let bad = |rule: String| EnvelopeError::Delivery(rule);
        let method = http::Method::from_bytes(record.method.as_bytes())
            .map_err(|_| bad(format!("method {:?} is not an HTTP method", record.method)))?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(&record.body_base64)
            .map_err(|e| bad(format!("bodyBase64 is not base64 ({e})")))?;
        let received_at = chrono::DateTime::parse_from_rfc3339(&record.received_at)
            .map(|at| at.with_timezone(&chrono::Utc))
            .map_err(|e| bad(format!("receivedAt is not an RFC 3339 time ({e})")))?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &record.headers {
            // A header HTTP cannot hold was skipped when received too; the envelope only has valid ones.
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let records = match (&self.records, self.record) {
            (Some(records), _) => Some(records.clone()),
            (None, Some(record)) => Some(vec![record.index]),
            (None, None) => None,
        };
        Ok(Delivery {
            request_id: record.request_id.clone(),
            received_at,
            deadline,
            method,
            path: record.path.clone(),
            query: record.query.clone(),
            headers,
            body: bytes::Bytes::from(body),
            redelivery: Some(Redelivery {
                envelope_id: self.id.clone(),
                idempotency_key: self.idempotency_key.clone(),
                records,
                on_transient,
            }),
        })
    }
}

/// A delivery run again from an envelope (by the worker or `dealhook replay`): it was authenticated
/// when it was received, so its signature is not checked again (the envelope's signature headers are
/// redacted, and its body may be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivery {
    /// The envelope's id.
    pub envelope_id: String,
    /// The idempotency key computed at receipt, used instead of one computed anew.
    pub idempotency_key: Option<String>,
    /// On a route with `for_each`: only these records (item indexes) are made.
    pub records: Option<Vec<usize>>,
    /// What a failure that may pass (HubSpot unavailable or rate-limited, the secret or the idempotency
    /// table unreadable) becomes.
    pub on_transient: OnTransient,
}

/// What a failure that may pass becomes when a delivery is run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTransient {
    /// [`crate::Outcome::Deferred`]: the worker leaves the message on the queue (visible again after
    /// HubSpot's `Retry-After`, when it gave one) for SQS to deliver again.
    Defer,
    /// On a message's last receive: a rate limit is still [`crate::Outcome::Deferred`] (the worker
    /// puts the item on the queue anew), any other failure that may pass is dead-lettered.
    DeferRateLimits,
    /// A dead letter, as in the synchronous path: the worker on a message's last receive, and replay.
    DeadLetter,
}

/// The work queue: where queue mode puts work items (an SQS queue in production).
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Puts `item` on the queue; an error means it is not there (the sender is asked to retry).
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError>;

    /// Puts `item` on the queue again as a new message, delivered no sooner than `delay` (at most
    /// [`MAX_DELAY`]): the worker's answer to a rate limit on a message's last receive, so that a 429
    /// never dead-letters a delivery while HubSpot's daily limit is not spent.
    async fn requeue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError>;

    /// Makes the message with `receipt_handle` invisible for `after` (at most [`MAX_VISIBILITY`]): the
    /// worker's wait for HubSpot's `Retry-After` (SQS `ChangeMessageVisibility`).
    async fn delay(&self, receipt_handle: &str, after: Duration) -> Result<(), QueueError>;
}

/// The work queue could not take an item. The message is for the log only: it may name the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the work queue could not take the item: {0}")]
pub struct QueueError(pub String);

/// An in-memory work queue, for tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    items: Mutex<Vec<WorkItem>>,
    failing: Mutex<bool>,
    delays: Mutex<Vec<(String, Duration)>>,
}

impl MemoryQueue {
    /// An empty queue that takes every item.
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    /// The items enqueued so far, in order.
    pub fn items(&self) -> Vec<WorkItem> {
        self.items.lock().map(|items| items.clone()).unwrap_or_default()
    }

    /// The visibility changes asked for (receipt handle, duration), in order.
    pub fn delays(&self) -> Vec<(String, Duration)> {
        self.delays.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Makes every later `enqueue` fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        if let Ok(mut flag) = self.failing.lock() {
            *flag = failing;
        }
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        if self.failing.lock().map(|f| *f).unwrap_or(false) {
            return Err(QueueError("the in-memory queue is set to fail".to_owned()));
        }
        self.items
            .lock()
            .map_err(|_| QueueError("the in-memory queue is poisoned".to_owned()))?
            .push(item.clone());
        Ok(())
    }

    async fn requeue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError> {
        self.enqueue(item).await?;
        self.delays
            .lock()
            .map_err(|_| QueueError("the in-memory queue is poisoned".to_owned()))?
            .push((format!("requeued:{}", item.id), delay));
        Ok(())
    }

    async fn delay(&self, receipt_handle: &str, after: Duration) -> Result<(), QueueError> {
        self.delays
            .lock()
            .map_err(|_| QueueError("the in-memory queue is poisoned".to_owned()))?
            .push((receipt_handle.to_owned(), after));
        Ok(())
    }
}

/// How long the worker may make a message invisible (SQS's maximum visibility timeout, 12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The longest delay SQS gives a new message (`DelaySeconds`, 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
