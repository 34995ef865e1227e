//! Queue mode from both ends (see [`crate::queue`]): the HTTP function puts an accepted delivery on the
//! work queue ([`App::enqueue`]); the worker (`dealhook-worker`) takes SQS batches of them and makes
//! the deals ([`App::handle_sqs_event`]), with the same stages after the signature check, the same plan
//! of calls, retries and idempotency as the synchronous path.
//!
//! The worker answers with a partial batch response (`ReportBatchItemFailures`): a message whose
//! delivery ended (a deal, a dead letter, ignored) is done and SQS deletes it; one that failed in a way
//! that may pass (HubSpot unavailable or rate-limited, the secret or the idempotency table unreadable,
//! another attempt in progress) is reported failed, made invisible for HubSpot's `Retry-After` when it
//! gave one, and delivered again by SQS. On a message's last receive (`DEALHOOK_MAX_RECEIVE_COUNT`,
//! the queue's `maxReceiveCount`) such a failure is dead-lettered with its reason instead, so the
//! dead-letter queue holds full dead letters rather than bare work items. A message that is not a
//! usable envelope is reported failed, so that SQS's redrive moves it, untouched, to the dead-letter
//! queue: nothing is deleted unread.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::aws::PayloadStore;
use crate::dead_letter::ForEachRecord;
use crate::domain::Reason;
use crate::hubspot::DAILY_LIMIT_WAIT;
use crate::idempotency::IdempotencyKey;
use crate::inbound::{Delivery, Invocation};
use crate::metrics::{self, Metric};
use crate::queue::{MAX_DELAY, MAX_VISIBILITY, OnTransient, Redeliverable, WorkItem, WorkQueue, envelope_text};
use crate::{Accepted, App, Halt, Outcome, RecordOutcome, credentials};

/// What the worker needs besides the app: the work queue (to make a message invisible for a while),
/// the payload store big envelopes are read from, and the queue's `maxReceiveCount`.
pub struct WorkerSetup {
    /// The work queue the messages come from.
    pub queue: Arc<dyn WorkQueue>,
    /// Where envelopes over the queue's size limit are kept (`DEALHOOK_PAYLOAD_BUCKET`).
    pub payloads: Option<Arc<dyn PayloadStore>>,
    /// The work queue's `maxReceiveCount` (`DEALHOOK_MAX_RECEIVE_COUNT`): on that receive, a failure
    /// that may pass is dead-lettered instead of retried. `None`: always retried (SQS's redrive then
    /// moves the bare work item).
    pub max_receive_count: Option<u32>,
}

/// How the worker left one message.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    /// The delivery ended (a deal, a dead letter, ignored): SQS deletes the message.
    Done(Outcome),
    /// To be delivered again (reported in `batchItemFailures`), after `after` when known.
    Retry {
        /// Why, for the log.
        why: String,
        /// How long the message was made invisible.
        after: Option<Duration>,
    },
}

impl App {
    /// Makes this app the worker of queue mode (see [`WorkerSetup`]).
    pub fn with_worker(mut self, setup: WorkerSetup) -> App {
        self.worker = Some(setup);
        self
    }

    /// The worker's Lambda entry point: one SQS batch, each message run in turn within the
    /// invocation's deadline, answered with the ids of the messages to deliver again. Never fails:
    /// a message that cannot be read is reported failed (SQS's redrive keeps it).
    ///
    /// Traces: Lambda makes one segment per invocation, not per message, so each message is a `work_item`
    /// subsegment of it (its `delivery` inside), sent when the message is done (see [`crate::xray`]).
    pub async fn handle_sqs_event(&self, event: &SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
        let batch = self.handle_sqs_batch(event, invocation).instrument(invocation.span(""));
        self.metrics.scope(&invocation.request_id, batch).await
    }

    /// [`Self::handle_sqs_event`] inside the invocation's span and metrics scope.
    async fn handle_sqs_batch(&self, event: &SqsEvent, invocation: &Invocation) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            // A message is started only while more than the retry policy's margin is left: the rest go
            // back to the queue untouched rather than being cut off halfway.
            let left = invocation
                .deadline
                .map(|at| at.duration_since(std::time::SystemTime::now()).unwrap_or_default());
            if left.is_some_and(|left| left <= self.settings.retry.margin) {
                tracing::warn!(message_id = %id, "no time left in the invocation to start this work item; left for retry");
                response.add_failure(id);
                continue;
            }
            let work_item = tracing::info_span!("work_item", message_id = %id);
            match self.work(message, invocation).instrument(work_item).await {
                MessageOutcome::Done(outcome) => {
                    tracing::info!(message_id = %id, outcome = outcome.label(), "work item done");
                }
                MessageOutcome::Retry { why, after } => {
                    tracing::warn!(
                        message_id = %id,
                        why = %why,
                        retry_after_s = after.map(|a| a.as_secs()),
                        "work item left on the queue for another attempt"
                    );
                    response.add_failure(id);
                }
            }
        }
        response
    }

    /// [`Self::handle_sqs_event`] for the event as JSON, answered as JSON: an event that is not an SQS
    /// batch (never sent by the event source mapping) is logged, and every message id it names is
    /// reported failed, so SQS keeps them. Fails only if the answer cannot be written as JSON: the
    /// invocation then fails and SQS delivers the whole batch again (nothing is deleted unanswered).
    pub async fn handle_sqs_value(
        &self,
        event: serde_json::Value,
        invocation: &Invocation,
    ) -> Result<serde_json::Value, serde_json::Error> {
        let response = match serde_json::from_value::<SqsEvent>(event.clone()) {
            Ok(event) => self.handle_sqs_event(&event, invocation).await,
            Err(error) => {
                let _entered = invocation.span("").entered();
                // Where, not what: serde's message may quote a value of the event.
                tracing::error!(
                    category = ?error.classify(),
                    line = error.line(),
                    column = error.column(),
                    "the worker's event is not an SQS batch"
                );
                let mut response = SqsBatchResponse::default();
                let ids = event
                    .get("Records")
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|record| record.get("messageId")?.as_str());
                for id in ids {
                    response.add_failure(id);
                }
                response
            }
        };
        serde_json::to_value(&response)
    }

    /// One message: its envelope read back (from S3 when it is a pointer), its delivery run again,
    /// and what SQS should do with it.
    pub async fn work(&self, message: &SqsMessage, invocation: &Invocation) -> MessageOutcome {
        if let Some(lag) = queue_lag(message, chrono::Utc::now().timestamp_millis()) {
            metrics::record(Metric::QueueLag, &[], lag);
        }
        let retry = |why: String| MessageOutcome::Retry { why, after: None };
        let text = match self.envelope_text(message).await {
            Ok(text) => text,
            Err(why) => return retry(why),
        };
        let envelope = match Redeliverable::parse(&text) {
            Ok(envelope) => envelope,
            Err(e) => return retry(e.to_string()),
        };
        let last = match (
            self.worker.as_ref().and_then(|w| w.max_receive_count),
            receive_count(message),
        ) {
            (Some(max), Some(count)) => count >= max,
            _ => false,
        };
        // On the last receive a rate limit is still retried, as a new message (below); any other failure
        // that may pass is dead-lettered with its reason.
        let on_transient = match (last, &envelope.idempotency_key) {
            (false, _) => OnTransient::Defer,
            (true, Some(_)) => OnTransient::DeferRateLimits,
            (true, None) => OnTransient::DeadLetter,
        };
        let delivery = match envelope.delivery(invocation.deadline, on_transient) {
            Ok(delivery) => delivery,
            Err(e) => return retry(e.to_string()),
        };
        let outcome = self.handle(&delivery).await;
        match retry_after(&outcome) {
            None => MessageOutcome::Done(outcome),
            Some(after) if last => match self.requeue(&envelope, after).await {
                Ok(()) => MessageOutcome::Done(outcome),
                Err(why) => MessageOutcome::Retry { why, after: None },
            },
            Some(after) => {
                let after = after.map(|a| a.min(MAX_VISIBILITY));
                if let (Some(after), Some(receipt), Some(worker)) =
                    (after, message.receipt_handle.as_deref(), self.worker.as_ref())
                    && let Err(e) = worker.queue.delay(receipt, after).await
                {
                    // The message comes back after the queue's visibility timeout instead: later or
                    // sooner than HubSpot asked, never lost.
                    tracing::warn!(error = %e, "the message's visibility could not be changed");
                }
                MessageOutcome::Retry {
                    why: outcome.label().to_owned(),
                    after,
                }
            }
        }
    }

    /// A work item for `envelope` put on the work queue anew, delivered after `after` (at most SQS's
    /// 15 minutes): its receive count starts again, so a rate limit never sends it to the dead-letter
    /// queue. Only for an envelope with its idempotency key (the new item must be the same delivery).
    async fn requeue(&self, envelope: &Redeliverable, after: Option<Duration>) -> Result<(), String> {
        let (Some(worker), Some(key)) = (self.worker.as_ref(), envelope.idempotency_key.clone()) else {
            return Err("no work queue or no idempotency key to put the item on the queue anew".to_owned());
        };
        let records = envelope
            .records
            .clone()
            .or_else(|| envelope.record.map(|r| vec![r.index]));
        let item = WorkItem {
            version: crate::dead_letter::ENVELOPE_VERSION,
            id: envelope.id.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            delivery: envelope.delivery.clone(),
            idempotency_key: key,
            records,
        };
        let delay = after.unwrap_or(Duration::from_secs(60)).min(MAX_DELAY);
        tracing::info!(
            delay_s = delay.as_secs(),
            "rate-limited on the last receive: the work item is queued anew"
        );
        worker.queue.requeue(&item, delay).await.map_err(|e| e.to_string())
    }

    /// The envelope's JSON text: the body, or the object a pointer names ([`envelope_text`]).
    async fn envelope_text(&self, message: &SqsMessage) -> Result<String, String> {
        let body = message.body.as_deref().unwrap_or_default();
        let store = self.worker.as_ref().and_then(|w| w.payloads.as_deref());
        let attributes = message
            .message_attributes
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.string_value.as_deref()?)));
        envelope_text(body, attributes, store).await
    }

    /// Queue mode's HTTP side: maps the delivery (so that a broken one is answered at once with its
    /// field errors and dead-lettered), then puts it on the work queue under the idempotency key it
    /// would have had, and answers `202 queued`. For a route with `for_each`, records that do not map
    /// are dead-lettered now and the others queued together. A queue that cannot take it is `503`:
    /// the sender retries; nothing is lost.
    pub(crate) async fn enqueue(&self, queue: &dyn WorkQueue, delivery: &Delivery, accepted: &Accepted<'_>) -> Outcome {
        let route = accepted.route;
        let mut failed = Vec::new();
        let records = match self.items(accepted) {
            Err(halt) => return self.halted(delivery, halt).await,
            Ok(None) => match tracing::info_span!("map").in_scope(|| route.map(&accepted.submission)) {
                Ok(_) => None,
                Err(errors) => {
                    let halt = Halt::dead_letter(route.name(), Reason::MappingFailed, errors);
                    return self.halted(delivery, halt).await;
                }
            },
            Ok(Some(items)) if items.is_empty() => return Outcome::Records(Vec::new()),
            Ok(Some(items)) => {
                let mut good = Vec::with_capacity(items.len());
                for index in 0..items.len() {
                    match tracing::info_span!("map").in_scope(|| route.map_item(&items, index)) {
                        Ok(_) => good.push(index),
                        Err(errors) => {
                            let halt = Halt::dead_letter(route.name(), Reason::MappingFailed, errors);
                            let record = ForEachRecord {
                                index,
                                count: items.len(),
                            };
                            let outcome = self.halted_record(delivery, halt, record).await;
                            failed.push(RecordOutcome { index, outcome });
                        }
                    }
                }
                if good.is_empty() {
                    return Outcome::Records(failed);
                }
                Some(good)
            }
        };
        let key = IdempotencyKey::for_delivery(
            accepted.endpoint.name(),
            accepted.submission.id.as_deref(),
            &delivery.body,
        );
        // Scrubbed like a dead letter: the values of the secret as read (see `App::dead_letter`).
        if let Err(error) = self.secrets.credentials().await {
            tracing::warn!(error = %error, "the secret could not be read: this work item is scrubbed of the values known so far");
        }
        let item = WorkItem::new(delivery, route.name(), key.as_str().to_owned(), records.clone())
            .redacted(&credentials::scrub::known_secrets());
        let queued = match queue.enqueue(&item).instrument(tracing::info_span!("enqueue")).await {
            Ok(()) => Outcome::Queued { id: item.id },
            Err(error) => {
                tracing::error!(error = %error, "the delivery could not be put on the work queue");
                return Outcome::RetryLater {
                    code: "queue_unavailable",
                    message: "the delivery could not be queued; please retry later",
                };
            }
        };
        match records {
            Some(records) if !failed.is_empty() => {
                let mut all = failed;
                all.extend(records.into_iter().map(|index| RecordOutcome {
                    index,
                    outcome: queued.clone(),
                }));
                all.sort_by_key(|r| r.index);
                Outcome::Records(all)
            }
            _ => queued,
        }
    }

    /// When a delivery run again from the work queue failed in a way that may pass: the
    /// [`Outcome::Deferred`] that leaves it on the queue, instead of a dead letter. `None` (write the
    /// dead letter) for a failure that will not pass, for a request from a sender, on the message's
    /// last receive, and for a record of a `for_each` without the idempotency table (a retry of the
    /// message would make the other records' deals again).
    pub(crate) fn deferral(
        &self,
        delivery: &Delivery,
        reason: Reason,
        retry_after: Option<Duration>,
        record: Option<ForEachRecord>,
    ) -> Option<Outcome> {
        let redelivery = delivery.redelivery.as_ref()?;
        if redelivery.on_transient == OnTransient::DeadLetter || (record.is_some() && self.idempotency.is_none()) {
            return None;
        }
        let rate_limited =
            reason == Reason::HubSpotRateLimited && retry_after.is_none_or(|after| after < DAILY_LIMIT_WAIT);
        let transient = match redelivery.on_transient {
            OnTransient::DeferRateLimits => rate_limited,
            _ => {
                rate_limited
                    || matches!(
                        reason,
                        Reason::HubSpotUnavailable | Reason::SecretUnavailable | Reason::IdempotencyUnavailable
                    )
            }
        };
        transient.then_some(Outcome::Deferred { reason, retry_after })
    }
}

/// How long the message waited: milliseconds from its `SentTimestamp` (SQS's, ms since the epoch) to
/// `now_ms`, at least 0 (clocks differ); `None` without a readable timestamp.
fn queue_lag(message: &SqsMessage, now_ms: i64) -> Option<f64> {
    let sent: i64 = message.attributes.get("SentTimestamp")?.trim().parse().ok()?;
    Some(now_ms.saturating_sub(sent).max(0) as f64)
}

/// `ApproximateReceiveCount`: how many times SQS has handed the message out, this time included.
fn receive_count(message: &SqsMessage) -> Option<u32> {
    message.attributes.get("ApproximateReceiveCount")?.trim().parse().ok()
}

/// `Some(wait)` when the outcome leaves the message for another attempt (with how long to wait, when
/// known); `None` when the delivery ended. A `for_each` delivery is retried when any record is.
fn retry_after(outcome: &Outcome) -> Option<Option<Duration>> {
    match outcome {
        Outcome::Deferred { retry_after, .. } => Some(*retry_after),
        Outcome::InProgress { retry_after_secs } => Some(Some(Duration::from_secs(*retry_after_secs))),
        Outcome::RetryLater { .. } => Some(None),
        Outcome::Records(records) => records
            .iter()
            .filter_map(|r| retry_after(&r.outcome))
            .reduce(|a, b| a.max(b)),
        _ => None,
    }
}
