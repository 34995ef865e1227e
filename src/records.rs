//! A delivery on a route with `for_each`: one deal per record, each on its own.

use std::time::{Instant, SystemTime};

use tracing::Instrument;

use crate::dead_letter::{DeadLetter, ForEachRecord};
use crate::domain::{Problem, Reason};
use crate::inbound::Delivery;
use crate::mapping::Items;
use crate::summary::log_record;
use crate::{Accepted, App, Halt, Outcome, RecordOutcome};

impl App {
    /// A delivery on a route with `for_each`: each item is a record, mapped, planned and created (or
    /// dead-lettered, one dead letter per record) on its own and in list order, so that one record's
    /// failure stops no other. No items is `200 ignored`.
    ///
    /// All records share the invocation's deadline. A record is started only while more time is left
    /// than the margin kept to write dead letters and answer (the retry policy's margin, at most a
    /// quarter of the time left when the first record starts); after that each remaining record is
    /// dead-lettered unsent (`hubspot_unavailable`, problem `no_time_left`), for a redrive.
    pub(crate) async fn run_records(&self, delivery: &Delivery, accepted: &Accepted<'_>, items: &Items) -> Outcome {
        let count = items.len();
        if count == 0 {
            tracing::info!("for_each gave no items; nothing to create");
        }
        // On tokio's clock from here on, as the plan is (so that tests can pause it).
        let deadline = delivery.deadline.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            (
                tokio::time::Instant::now() + left,
                self.settings.retry.margin.min(left / 4),
            )
        });
        // Run again from an envelope: only the records it names (a work item's, or a dead letter's one).
        let only = delivery.redelivery.as_ref().and_then(|r| r.records.as_deref());
        let mut records = Vec::with_capacity(count);
        for index in (0..count).filter(|i| only.is_none_or(|only| only.contains(i))) {
            let record = ForEachRecord { index, count };
            let started = Instant::now();
            let span = tracing::info_span!(crate::telemetry::RECORD_SPAN, record = index);
            let outcome = self
                .run_record(delivery, accepted, items, record, deadline)
                .instrument(span.clone())
                .await;
            let _entered = span.enter();
            log_record(index, &outcome, accepted.route, started, &span);
            records.push(RecordOutcome { index, outcome });
        }
        Outcome::Records(records)
    }

    /// One record of [`Self::run_records`]: mapped, then created, unless the invocation's time is out
    /// (`deadline`: when it ends, and the margin kept).
    async fn run_record(
        &self,
        delivery: &Delivery,
        accepted: &Accepted<'_>,
        items: &Items,
        record: ForEachRecord,
        deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    ) -> Outcome {
        let index = record.index;
        match self.prepare(accepted, Some((items, index)), delivery.deadline).await {
            Err(halt) => self.halted_record(delivery, halt, record).await,
            Ok(prepared) => {
                let out_of_time = deadline
                    .is_some_and(|(at, margin)| at.saturating_duration_since(tokio::time::Instant::now()) <= margin);
                let reason = Reason::HubSpotUnavailable;
                let deferred = out_of_time
                    .then(|| self.deferral(delivery, reason, None, Some(record)))
                    .flatten();
                if let Some(deferred) = deferred {
                    deferred
                } else if out_of_time && !self.settings.dry_run {
                    let problem = Problem::general(
                        "no_time_left",
                        "the invocation's time ran out before this record was started: nothing was sent to \
                             HubSpot for it",
                    );
                    let letter = self.letter_with_draft(delivery, &prepared, reason, vec![problem]);
                    self.dead_letter(letter).await
                } else {
                    self.create(delivery, prepared).await
                }
            }
        }
    }

    /// [`Self::halted`] for one record of a delivery: its dead letter names the record.
    pub(crate) async fn halted_record(&self, delivery: &Delivery, halt: Halt, record: ForEachRecord) -> Outcome {
        match halt {
            Halt::Answer(outcome) => outcome,
            Halt::DeadLetter { at, reason, errors } => {
                let mut letter = DeadLetter::new(delivery, &at, reason, errors);
                letter.record = Some(record);
                letter.idempotency_key = delivery.redelivery.as_ref().and_then(|r| r.idempotency_key.clone());
                self.dead_letter(letter).await
            }
        }
    }
}
