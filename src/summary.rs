//! The log lines that sum up a delivery (one per delivery, and one per record of a `for_each`).

use std::time::Instant;

use crate::Outcome;
use crate::inbound::Delivery;

pub(crate) fn log_summary(delivery: &Delivery, route: &str, outcome: &Outcome, started: Instant) {
    let Ids {
        deal_id,
        dead_letter_id,
        reason,
    } = Ids::of(outcome);
    // A delivery of several records: how many, and how many became deals and dead letters (each
    // record has its own line, [`log_record`]).
    let (records, records_created, records_dead_lettered) = match outcome {
        Outcome::Records(records) => {
            let count = |label: &str| records.iter().filter(|r| record_label(&r.outcome) == label).count();
            (
                Some(records.len()),
                Some(count("created")),
                Some(count("dead_lettered")),
            )
        }
        _ => (None, None, None),
    };
    tracing::info!(
        request_id = %delivery.request_id,
        route,
        outcome = outcome.label(),
        status = outcome.status().as_u16(),
        deal_id,
        dead_letter_id,
        reason,
        records,
        records_created,
        records_dead_lettered,
        duration_ms = started.elapsed().as_millis() as u64,
        "delivery"
    );
}

/// How a record ended, for counting: a replayed record as its first answer did (`created`,
/// `dead_lettered`).
fn record_label(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Replayed(stored) => stored
            .body
            .get("status")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("replayed"),
        other => other.label(),
    }
}

/// One line per record of a delivery on a route with `for_each`: its index, outcome, and deal or dead letter.
pub(crate) fn log_record(index: usize, outcome: &Outcome) {
    let Ids {
        deal_id,
        dead_letter_id,
        reason,
    } = Ids::of(outcome);
    tracing::info!(
        record = index,
        outcome = record_label(outcome),
        status = outcome.status().as_u16(),
        deal_id,
        dead_letter_id,
        reason,
        "record"
    );
}

/// What a log line names of an outcome: the deal, the dead letter, and the reason or code of a
/// failure; a replayed answer's as it first was.
struct Ids<'a> {
    deal_id: Option<u64>,
    dead_letter_id: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> Ids<'a> {
    fn of(outcome: &'a Outcome) -> Ids<'a> {
        let (deal_id, dead_letter_id, reason) = match outcome {
            Outcome::Created(deal) => (Some(deal.deal_id), None, None),
            Outcome::DeadLettered {
                dead_letter_id,
                reason,
                deal_id,
                ..
            } => (*deal_id, Some(dead_letter_id.as_str()), Some(reason.as_str())),
            Outcome::Rejected(r) => (None, None, Some(r.code)),
            Outcome::RetryLater { code, .. } => (None, None, Some(*code)),
            Outcome::Replayed(stored) => (
                stored.body.get("dealId").and_then(serde_json::Value::as_u64),
                stored.body.get("deadLetterId").and_then(serde_json::Value::as_str),
                None,
            ),
            Outcome::InProgress { .. } => (None, None, Some("delivery_in_progress")),
            Outcome::Deferred { reason, .. } => (None, None, Some(reason.as_str())),
            Outcome::DryRun(_) | Outcome::Ignored(_) | Outcome::Records(_) | Outcome::Queued { .. } => {
                (None, None, None)
            }
        };
        Ids {
            deal_id,
            dead_letter_id,
            reason,
        }
    }
}
