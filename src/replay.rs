//! `dealhook replay`: dead letters run again through the current mapping, read from a dead-letter
//! queue. Those that now end (a deal, `ignored`, or a deal made before) are deleted; those that fail
//! again are deleted too, because the app wrote a new letter with the new error; the rest (skipped,
//! unreadable, left for later, and everything in a dry run) are made visible again. Never deletes a
//! letter whose delivery did not end: nothing is lost.
//!
//! Idempotency applies: with the table, a letter is run under the idempotency key it was received
//! with, so a replay (or a copy of a letter) never doubles a deal. Without the table, a letter whose
//! deal may already exist (`outcome_unknown`, or `hubspot.done.dealId`) is kept unless `force`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::aws::PayloadStore;
use crate::domain::Reason;
use crate::hubspot::{DealWrite, PlanProgress};
use crate::queue::{EnvelopeError, OnTransient, QueueError, Redeliverable, envelope_text};
use crate::{App, Outcome};

/// SQS's largest receive batch.
pub const MAX_BATCH: usize = 10;
/// How long one letter may run (its delivery's deadline: HubSpot retries stop before it).
pub const LETTER_BUDGET: Duration = Duration::from_secs(60);
/// Receives in a row that bring no letter not seen before, after which the queue counts as read.
pub const EMPTY_RECEIVES: usize = 2;

/// One message received from the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// SQS's message id (stable across receives).
    pub message_id: String,
    /// This receive's handle (to delete the message or make it visible again).
    pub receipt_handle: String,
    /// The body: an envelope's JSON, or a pointer to it in S3.
    pub body: String,
    /// The string and number message attributes, as (name, value).
    pub attributes: Vec<(String, String)>,
}

/// The queue dead letters are replayed from (SQS in production: [`SqsLetters`]).
#[async_trait]
pub trait LetterQueue: Send + Sync {
    /// Up to `max` messages (at most [`MAX_BATCH`]), each invisible to others for `visibility`.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Letter>, QueueError>;
    /// Deletes the message received with `receipt_handle`.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Makes the message received with `receipt_handle` visible again at once (visibility 0).
    async fn release(&self, receipt_handle: &str) -> Result<(), QueueError>;
}

/// A dead-letter queue on SQS (ReceiveMessage with all message attributes, DeleteMessage,
/// ChangeMessageVisibility).
#[derive(Debug, Clone)]
pub struct SqsLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    wait: Duration,
}

impl SqsLetters {
    /// Reads `queue_url` with `client`, long-polling each receive for 2 s (a short poll of a standard
    /// queue may come back empty while messages wait).
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsLetters {
        SqsLetters {
            client,
            queue_url: queue_url.into(),
            wait: Duration::from_secs(2),
        }
    }

    /// The queue's URL, as given.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl LetterQueue for SqsLetters {
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Letter>, QueueError> {
        let max = i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .visibility_timeout(seconds(visibility))
            .wait_time_seconds(seconds(self.wait))
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| {
                QueueError(format!(
                    "SQS ReceiveMessage failed: {}",
                    crate::aws::describe_sdk_error(&e)
                ))
            })?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let attributes = message
                    .message_attributes
                    .iter()
                    .flatten()
                    .filter_map(|(name, value)| Some((name.clone(), value.string_value.clone()?)))
                    .collect();
                Some(Letter {
                    message_id: message.message_id?,
                    receipt_handle: message.receipt_handle?,
                    body: message.body.unwrap_or_default(),
                    attributes,
                })
            })
            .collect())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                QueueError(format!(
                    "SQS DeleteMessage failed: {}",
                    crate::aws::describe_sdk_error(&e)
                ))
            })
    }

    async fn release(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                QueueError(format!(
                    "SQS ChangeMessageVisibility failed: {}",
                    crate::aws::describe_sdk_error(&e)
                ))
            })
    }
}

/// What to replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Stop after this many letters were run again (skipped and unreadable ones are not counted).
    pub limit: Option<usize>,
    /// Only letters with one of these reasons (`None`: every letter; a work item, which has no reason,
    /// is then the only kind replayed without a filter).
    pub reasons: Option<Vec<Reason>>,
    /// Without the idempotency table, replay letters whose deal may exist all the same (it may be
    /// made twice).
    pub force: bool,
}

/// What became of a letter's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The delivery ended (a deal, ignored, a deal made before, or a new letter holds it): delete it.
    Delete,
    /// Keep it on the queue, visible again.
    Leave,
}

/// What a replay did, letter by letter, in counts (printed by `dealhook replay`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// A dry run: nothing was sent, written or deleted.
    pub dry_run: bool,
    /// Letters read (not counting the new letters this run wrote, should it read them back).
    pub read: usize,
    /// Letters run again.
    pub replayed: usize,
    /// Deals created.
    pub created: usize,
    /// Existing deals updated (`upsert_by`, `dedupe: {then: update}`).
    pub updated: usize,
    /// Deals found and left as they were (`dedupe: {then: skip}`).
    pub unchanged: usize,
    /// Deliveries whose deal was made before (the idempotency table's stored answer).
    pub already_done: usize,
    /// Deliveries no route's `match` accepts now.
    pub ignored: usize,
    /// Dry run: deliveries whose plan of calls was built (they would be sent).
    pub would_send: usize,
    /// Deliveries that fail again, by reason (a delivery refused outright by the rejection's code,
    /// e.g. `unknown_route`). Each has a new letter with its new error, except a rejection and a stored
    /// dead letter answer (those keep their old letter).
    pub still_failing: BTreeMap<String, usize>,
    /// Letters left because their reason is not one of `--reason`.
    pub skipped_by_reason: usize,
    /// Letters left because, without the idempotency table, their deal may exist (`--force` replays them).
    pub skipped_deal_may_exist: usize,
    /// Messages that are no readable envelope (or whose S3 payload cannot be read); left.
    pub unreadable: usize,
    /// Deliveries that may pass later (HubSpot or the dead-letter queue unavailable, in progress); left.
    pub left_for_later: usize,
    /// Messages deleted from the queue.
    pub deleted: usize,
    /// Queue calls that failed (a message not deleted or not made visible again: it comes back after its
    /// visibility timeout); each a sentence for the operator.
    pub queue_errors: Vec<String>,
    /// Why the run stopped before the queue was read (a receive failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

impl Summary {
    /// Letters that still fail, counted over every reason and rejection.
    pub fn failing(&self) -> usize {
        self.still_failing.values().sum()
    }

    /// `dealhook replay`'s exit code: `1` when the queue could not be read, `3` when a letter still
    /// fails, cannot be read, or was kept because its deal may exist, `5` when some were left for later,
    /// else `0` (every letter replayed ended in a deal, an earlier deal or `ignored`; letters skipped by
    /// `--reason` do not count).
    pub fn exit_code(&self) -> u8 {
        use crate::cli::{EXIT_DEAD_LETTERED, EXIT_FAILED, EXIT_OK, EXIT_RETRY_LATER};
        if self.aborted.is_some() {
            EXIT_FAILED
        } else if self.failing() > 0 || self.unreadable > 0 || self.skipped_deal_may_exist > 0 {
            EXIT_DEAD_LETTERED
        } else if self.left_for_later > 0 {
            EXIT_RETRY_LATER
        } else {
            EXIT_OK
        }
    }

    /// Counts `outcome`, a replayed delivery's, and says what to do with its message (before the dry
    /// run's rule that nothing is deleted). A `for_each` delivery's message is deleted only when every
    /// record's would be.
    pub fn count(&mut self, outcome: &Outcome) -> Disposition {
        let mut fail = |key: &str| {
            *self.still_failing.entry(key.to_owned()).or_default() += 1;
        };
        match outcome {
            Outcome::Created(deal) => {
                match deal.write {
                    DealWrite::Created => self.created += 1,
                    DealWrite::Updated => self.updated += 1,
                    DealWrite::Skipped => self.unchanged += 1,
                }
                Disposition::Delete
            }
            Outcome::Ignored(_) => {
                self.ignored += 1;
                Disposition::Delete
            }
            // The app wrote a new letter with the new error: it replaces the old one.
            Outcome::DeadLettered { reason, .. } => {
                fail(reason.as_str());
                Disposition::Delete
            }
            Outcome::Replayed(stored) if (200..=201).contains(&stored.status) => {
                self.already_done += 1;
                Disposition::Delete
            }
            // The stored answer is a dead letter after which the deal may exist: no new letter was
            // written, so the old one is the only record; kept.
            Outcome::Replayed(stored) => {
                let reason = stored.body.get("reason").and_then(serde_json::Value::as_str);
                fail(reason.unwrap_or("stored_answer"));
                Disposition::Leave
            }
            // Nothing stored: the letter is the only record of the delivery.
            Outcome::Rejected(rejection) => {
                fail(rejection.code);
                Disposition::Leave
            }
            Outcome::DryRun(_) => {
                self.would_send += 1;
                Disposition::Leave
            }
            Outcome::RetryLater { .. }
            | Outcome::InProgress { .. }
            | Outcome::Deferred { .. }
            | Outcome::Queued { .. } => {
                self.left_for_later += 1;
                Disposition::Leave
            }
            Outcome::Records(records) if records.is_empty() => {
                self.ignored += 1;
                Disposition::Delete
            }
            Outcome::Records(records) => {
                let mut all = Disposition::Delete;
                for record in records {
                    if self.count(&record.outcome) == Disposition::Leave {
                        all = Disposition::Leave;
                    }
                }
                all
            }
        }
    }
}

impl std::fmt::Display for Summary {
    /// The summary for a person, a few lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dry = if self.dry_run {
            " (dry run: nothing sent, written or deleted)"
        } else {
            ""
        };
        writeln!(f, "replayed {} of {} letter(s) read{dry}", self.replayed, self.read)?;
        if self.dry_run {
            writeln!(f, "  would send: {}", self.would_send)?;
        }
        writeln!(
            f,
            "  deals: {} created, {} updated, {} unchanged; {} already made before; {} ignored",
            self.created, self.updated, self.unchanged, self.already_done, self.ignored
        )?;
        let failing: Vec<String> = self.still_failing.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            f,
            "  still failing: {}",
            if failing.is_empty() {
                "none".to_owned()
            } else {
                failing.join(", ")
            }
        )?;
        writeln!(
            f,
            "  skipped by --reason: {}; kept, the deal may exist (no idempotency table; --force replays): {}",
            self.skipped_by_reason, self.skipped_deal_may_exist
        )?;
        writeln!(
            f,
            "  unreadable: {}; left for later: {}; deleted: {}",
            self.unreadable, self.left_for_later, self.deleted
        )?;
        for error in &self.queue_errors {
            writeln!(f, "  queue error: {error}")?;
        }
        if let Some(why) = &self.aborted {
            writeln!(f, "  stopped: {why}")?;
        }
        Ok(())
    }
}

/// The parts of a dead letter that say whether HubSpot may hold its deal already.
#[derive(Debug, Default, Deserialize)]
struct DoneProbe {
    #[serde(default)]
    reason: Option<Reason>,
    #[serde(default)]
    hubspot: Option<DoneHubSpot>,
}

#[derive(Debug, Default, Deserialize)]
struct DoneHubSpot {
    #[serde(default)]
    done: Option<PlanProgress>,
}

/// Whether the letter's deal may exist: its reason is `outcome_unknown`, or HubSpot's part says the
/// deal was written (`hubspot.done.dealId`) before something else failed.
pub fn deal_may_exist(envelope_text: &str) -> bool {
    let probe: DoneProbe = serde_json::from_str(envelope_text).unwrap_or_default();
    probe.reason == Some(Reason::OutcomeUnknown)
        || probe
            .hubspot
            .and_then(|h| h.done)
            .is_some_and(|done| done.deal_id.is_some())
}

/// How one letter was read.
enum Read {
    /// A letter this run wrote (a replay that failed again): not replayed twice in one run.
    Ours,
    /// Not an envelope, or its payload is unreadable.
    Unreadable(String),
    /// An envelope, and its JSON text.
    Envelope(Box<Redeliverable>, String),
}

impl App {
    /// Runs one envelope's delivery again, as received, through the current mapping: its signature is
    /// not checked again, its idempotency key is the envelope's, a `for_each` letter makes only its
    /// record, and a failure that may pass is dead-lettered (not deferred). An envelope whose delivery
    /// cannot be rebuilt is an error (nothing was run).
    pub async fn replay(
        &self,
        envelope: &Redeliverable,
        deadline: Option<SystemTime>,
    ) -> Result<Outcome, EnvelopeError> {
        let delivery = envelope.delivery(deadline, OnTransient::DeadLetter)?;
        Ok(self.handle(&delivery).await)
    }

    /// Replays the letters on `queue` (see the module's doc): each read (from `payloads` when the
    /// message is an S3 pointer), filtered by `options`, run again with [`Self::replay`], then deleted or
    /// made visible again; every message kept is made visible again at the end of the run (not at once,
    /// so that the run reads each letter once). In a dry run (the app's `DEALHOOK_DRY_RUN`) nothing is
    /// deleted. Stops after [`EMPTY_RECEIVES`] receives bring nothing new, at `options.limit`, or when a
    /// receive fails ([`Summary::aborted`]).
    pub async fn replay_queue(
        &self,
        queue: &dyn LetterQueue,
        payloads: Option<&dyn PayloadStore>,
        options: &ReplayOptions,
    ) -> Summary {
        let mut summary = Summary {
            dry_run: self.settings.dry_run,
            ..Summary::default()
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut written: HashSet<String> = HashSet::new();
        // Message id → the newest receipt handle, for the messages kept.
        let mut kept: HashMap<String, String> = HashMap::new();
        let mut empty = 0;
        while empty < EMPTY_RECEIVES {
            let want = match options.limit {
                Some(limit) if summary.replayed >= limit => break,
                Some(limit) => (limit - summary.replayed).min(MAX_BATCH),
                None => MAX_BATCH,
            };
            // Long enough for every letter of the batch to run, one after another.
            let visibility = LETTER_BUDGET * (u32::try_from(want).unwrap_or(10) + 1);
            let batch = match queue.receive(want, visibility).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(error = %error, "the dead-letter queue could not be read; replay stopped");
                    summary.aborted = Some(error.to_string());
                    break;
                }
            };
            if batch.iter().all(|letter| seen.contains(&letter.message_id)) {
                empty += 1;
            } else {
                empty = 0;
            }
            for letter in batch {
                if !seen.insert(letter.message_id.clone()) {
                    kept.insert(letter.message_id, letter.receipt_handle);
                    continue;
                }
                let disposition = self
                    .replay_letter(&letter, payloads, options, &mut summary, &mut written)
                    .await;
                match disposition {
                    Disposition::Delete if !summary.dry_run => match queue.delete(&letter.receipt_handle).await {
                        Ok(()) => summary.deleted += 1,
                        Err(error) => {
                            tracing::error!(message_id = %letter.message_id, error = %error, "the letter could not be deleted");
                            summary
                                .queue_errors
                                .push(format!("message {}: {error}", letter.message_id));
                        }
                    },
                    _ => {
                        kept.insert(letter.message_id, letter.receipt_handle);
                    }
                }
            }
        }
        for (message_id, receipt) in kept {
            if let Err(error) = queue.release(&receipt).await {
                tracing::warn!(message_id = %message_id, error = %error, "the letter could not be made visible again");
                summary.queue_errors.push(format!(
                    "message {message_id} is visible again only after its visibility timeout: {error}"
                ));
            }
        }
        summary
    }

    /// One letter: read, filtered, replayed, counted; what to do with its message.
    async fn replay_letter(
        &self,
        letter: &Letter,
        payloads: Option<&dyn PayloadStore>,
        options: &ReplayOptions,
        summary: &mut Summary,
        written: &mut HashSet<String>,
    ) -> Disposition {
        let (envelope, text) = match read_letter(letter, payloads, written).await {
            Read::Ours => return Disposition::Leave,
            Read::Unreadable(why) => {
                tracing::warn!(message_id = %letter.message_id, why = %why, "not a readable dead letter; left on the queue");
                summary.read += 1;
                summary.unreadable += 1;
                return Disposition::Leave;
            }
            Read::Envelope(envelope, text) => (envelope, text),
        };
        summary.read += 1;
        if let Some(reasons) = &options.reasons
            && !envelope.reason.is_some_and(|reason| reasons.contains(&reason))
        {
            summary.skipped_by_reason += 1;
            return Disposition::Leave;
        }
        if self.idempotency.is_none() && !options.force && deal_may_exist(&text) {
            tracing::warn!(
                letter_id = %envelope.id,
                "the letter's deal may exist and there is no idempotency table: kept (--force replays it)"
            );
            summary.skipped_deal_may_exist += 1;
            return Disposition::Leave;
        }
        let deadline = SystemTime::now() + LETTER_BUDGET;
        let outcome = match self.replay(&envelope, Some(deadline)).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(letter_id = %envelope.id, error = %error, "the letter's delivery cannot be rebuilt; left on the queue");
                summary.unreadable += 1;
                return Disposition::Leave;
            }
        };
        summary.replayed += 1;
        for id in new_letters(&outcome) {
            written.insert(id);
        }
        tracing::info!(letter_id = %envelope.id, outcome = outcome.label(), "letter replayed");
        summary.count(&outcome)
    }
}

/// The letter's envelope, read back from S3 when the message is a pointer.
async fn read_letter(letter: &Letter, payloads: Option<&dyn PayloadStore>, written: &HashSet<String>) -> Read {
    let attributes = letter.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let text = match envelope_text(&letter.body, attributes, payloads).await {
        Ok(text) => text,
        Err(why) => return Read::Unreadable(why),
    };
    match Redeliverable::parse(&text) {
        Ok(envelope) if written.contains(&envelope.id) => Read::Ours,
        Ok(envelope) => Read::Envelope(Box::new(envelope), text),
        Err(error) => Read::Unreadable(error.to_string()),
    }
}

/// The ids of the dead letters an outcome wrote.
fn new_letters(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::DeadLettered { dead_letter_id, .. } => vec![dead_letter_id.clone()],
        Outcome::Records(records) => records.iter().flat_map(|r| new_letters(&r.outcome)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    //! What each outcome does to a letter, and the exit code. Variants thought of: every `Outcome`
    //! (a deal written three ways, ignored, a new letter, a stored deal, a stored dead letter, a
    //! rejection, a dry run, the four "may pass" outcomes, a `for_each` delivery all ended, partly
    //! left, with no items); the exit code for each kind of count; a deal that may exist.
    use super::*;
    use crate::hubspot::CreatedDeal;
    use crate::{RecordOutcome, Rejection, StoredResponse};

    fn deal(write: DealWrite) -> Outcome {
        Outcome::Created(CreatedDeal {
            deal_id: 7,
            write,
            portal_id: None,
            association_create_failures: Vec::new(),
        })
    }

    fn letter(reason: Reason) -> Outcome {
        Outcome::DeadLettered {
            reason,
            dead_letter_id: "new".into(),
            errors: Vec::new(),
            deal_id: None,
        }
    }

    fn stored(status: u16, body: serde_json::Value) -> Outcome {
        Outcome::Replayed(StoredResponse { status, body })
    }

    #[test]
    fn each_outcome_is_counted_and_deleted_only_when_the_delivery_ended() {
        use Disposition::{Delete, Leave};
        let cases: Vec<(&str, Outcome, Disposition, Summary)> = vec![
            (
                "created",
                deal(DealWrite::Created),
                Delete,
                Summary {
                    created: 1,
                    ..Summary::default()
                },
            ),
            (
                "updated",
                deal(DealWrite::Updated),
                Delete,
                Summary {
                    updated: 1,
                    ..Summary::default()
                },
            ),
            (
                "dedupe skip",
                deal(DealWrite::Skipped),
                Delete,
                Summary {
                    unchanged: 1,
                    ..Summary::default()
                },
            ),
            (
                "ignored",
                Outcome::Ignored(Vec::new()),
                Delete,
                Summary {
                    ignored: 1,
                    ..Summary::default()
                },
            ),
            (
                "a new letter",
                letter(Reason::HubSpotRejected),
                Delete,
                Summary {
                    still_failing: [("hubspot_rejected".to_owned(), 1)].into(),
                    ..Summary::default()
                },
            ),
            (
                "a stored deal",
                stored(200, serde_json::json!({"status": "created", "dealId": 7})),
                Delete,
                Summary {
                    already_done: 1,
                    ..Summary::default()
                },
            ),
            (
                "a stored dead letter (the deal may exist)",
                stored(
                    202,
                    serde_json::json!({"status": "dead_lettered", "reason": "outcome_unknown"}),
                ),
                Leave,
                Summary {
                    still_failing: [("outcome_unknown".to_owned(), 1)].into(),
                    ..Summary::default()
                },
            ),
            (
                "a rejection (nothing stored)",
                Outcome::Rejected(Rejection::not_found("unknown_route", "no route")),
                Leave,
                Summary {
                    still_failing: [("unknown_route".to_owned(), 1)].into(),
                    ..Summary::default()
                },
            ),
            (
                "dry run",
                Outcome::DryRun(Vec::new()),
                Leave,
                Summary {
                    would_send: 1,
                    ..Summary::default()
                },
            ),
            (
                "retry later",
                Outcome::RetryLater {
                    code: "dead_letter_unavailable",
                    message: "m",
                },
                Leave,
                Summary {
                    left_for_later: 1,
                    ..Summary::default()
                },
            ),
            (
                "in progress",
                Outcome::InProgress { retry_after_secs: 3 },
                Leave,
                Summary {
                    left_for_later: 1,
                    ..Summary::default()
                },
            ),
            (
                "deferred",
                Outcome::Deferred {
                    reason: Reason::HubSpotUnavailable,
                    retry_after: None,
                },
                Leave,
                Summary {
                    left_for_later: 1,
                    ..Summary::default()
                },
            ),
            (
                "for_each without items",
                Outcome::Records(Vec::new()),
                Delete,
                Summary {
                    ignored: 1,
                    ..Summary::default()
                },
            ),
            (
                "for_each, every record ended",
                Outcome::Records(vec![
                    RecordOutcome {
                        index: 0,
                        outcome: deal(DealWrite::Created),
                    },
                    RecordOutcome {
                        index: 1,
                        outcome: letter(Reason::MappingFailed),
                    },
                ]),
                Delete,
                Summary {
                    created: 1,
                    still_failing: [("mapping_failed".to_owned(), 1)].into(),
                    ..Summary::default()
                },
            ),
            (
                "for_each, a record left for later",
                Outcome::Records(vec![
                    RecordOutcome {
                        index: 0,
                        outcome: deal(DealWrite::Created),
                    },
                    RecordOutcome {
                        index: 1,
                        outcome: Outcome::InProgress { retry_after_secs: 1 },
                    },
                ]),
                Leave,
                Summary {
                    created: 1,
                    left_for_later: 1,
                    ..Summary::default()
                },
            ),
        ];
        for (name, outcome, disposition, expected) in cases {
            let mut summary = Summary::default();
            assert_eq!(summary.count(&outcome), disposition, "{name}");
            assert_eq!(summary, expected, "{name}");
        }
    }

    #[test]
    fn the_exit_code_says_the_worst_that_is_left() {
        let cases = [
            ("nothing read", Summary::default(), 0),
            (
                "all deals",
                Summary {
                    replayed: 2,
                    created: 1,
                    already_done: 1,
                    ..Summary::default()
                },
                0,
            ),
            (
                "only skipped by --reason",
                Summary {
                    skipped_by_reason: 3,
                    ..Summary::default()
                },
                0,
            ),
            (
                "one still fails",
                Summary {
                    still_failing: [("mapping_failed".to_owned(), 1)].into(),
                    ..Summary::default()
                },
                3,
            ),
            (
                "unreadable",
                Summary {
                    unreadable: 1,
                    ..Summary::default()
                },
                3,
            ),
            (
                "kept, the deal may exist",
                Summary {
                    skipped_deal_may_exist: 1,
                    ..Summary::default()
                },
                3,
            ),
            (
                "left for later",
                Summary {
                    left_for_later: 1,
                    ..Summary::default()
                },
                5,
            ),
            (
                "fails and left for later",
                Summary {
                    left_for_later: 1,
                    unreadable: 1,
                    ..Summary::default()
                },
                3,
            ),
            (
                "queue unreadable",
                Summary {
                    aborted: Some("down".into()),
                    created: 1,
                    ..Summary::default()
                },
                1,
            ),
        ];
        for (name, summary, code) in cases {
            assert_eq!(summary.exit_code(), code, "{name}");
        }
    }

    #[test]
    fn a_deal_may_exist_after_an_unknown_outcome_or_a_written_deal() {
        let cases = [
            ("outcome_unknown", r#"{"reason":"outcome_unknown"}"#, true),
            (
                "a deal written before a link failed",
                r#"{"reason":"hubspot_rejected","hubspot":{"body":"x","attempts":1,"done":{"dealId":5}}}"#,
                true,
            ),
            (
                "only a contact written",
                r#"{"reason":"hubspot_rejected","hubspot":{"body":"x","attempts":1,"done":{"contactIds":[3]}}}"#,
                false,
            ),
            ("mapping failed", r#"{"reason":"mapping_failed"}"#, false),
            ("a work item", r#"{"version":1,"id":"w"}"#, false),
            ("not JSON", "nope", false),
        ];
        for (name, text, may) in cases {
            assert_eq!(deal_may_exist(text), may, "{name}");
        }
    }

    #[test]
    fn the_printed_summary_names_what_still_fails() {
        let summary = Summary {
            read: 3,
            replayed: 2,
            created: 1,
            still_failing: [("mapping_failed".to_owned(), 1)].into(),
            skipped_by_reason: 1,
            ..Summary::default()
        };
        let text = summary.to_string();
        assert!(text.starts_with("replayed 2 of 3 letter(s) read\n"), "{text}");
        assert!(text.contains("1 created"), "{text}");
        assert!(text.contains("still failing: mapping_failed 1"), "{text}");
        assert!(text.contains("skipped by --reason: 1"), "{text}");
    }
}
