//! The log lines that sum up a delivery (one per delivery, message `delivery`, and one per record of a
//! `for_each`, message `record`): where it went, how it ended, and the milliseconds each stage took,
//! read from the stage spans ([`StageTimes`]). A time is absent when its stage did not run. No payload
//! value is ever in them.

use std::time::Instant;

use crate::Outcome;
use crate::inbound::Delivery;
use crate::mapping::{Endpoint, Route};
use crate::telemetry::{StageTimes, millis};

/// What the pipeline learnt of a delivery before it ended, for its summary line.
#[derive(Default)]
pub(crate) struct Seen<'a> {
    /// The endpoint it arrived at, once found.
    pub(crate) endpoint: Option<&'a Endpoint>,
    /// The route its endpoint selected, once selected.
    pub(crate) route: Option<&'a Route>,
    /// The provider's delivery id, once decoded (an id, not a payload value).
    pub(crate) submission_id: Option<String>,
}

/// The `delivery` line: logged inside the delivery's `span` (whose stage times it reads).
pub(crate) fn log_summary(
    delivery: &Delivery,
    seen: &Seen<'_>,
    outcome: &Outcome,
    started: Instant,
    span: &tracing::Span,
) {
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
    let times = StageTimes::of(span);
    let ms = |stage| times.stage(stage).map(millis);
    tracing::info!(
        route = seen.route.map(Route::name),
        endpoint = seen.endpoint.map(Endpoint::name),
        source = seen.endpoint.map(|e| e.source().as_str()),
        submission_id = seen.submission_id.as_deref(),
        // Run again from a queue or a dead letter: the request id it was received under.
        received_request_id = delivery.redelivery.as_ref().map(|_| delivery.request_id.as_str()),
        outcome = outcome.label(),
        status = outcome.status().as_u16(),
        deal_id,
        dead_letter_id,
        reason,
        records,
        records_created,
        records_dead_lettered,
        hubspot_status = times.hubspot_status,
        attempts = (times.attempts > 0).then_some(times.attempts),
        duration_ms = millis(started.elapsed()),
        verify_ms = ms("verify"),
        decode_ms = ms("decode"),
        map_ms = ms("map"),
        resolve_ms = ms("resolve"),
        secret_ms = ms("secret"),
        hubspot_ms = times.hubspot.map(millis),
        idempotency_ms = ms("idempotency"),
        dead_letter_ms = ms("dead_letter"),
        enqueue_ms = ms("enqueue"),
        "delivery"
    );
}

/// The `delivery` line of an event that is not a usable HTTP request (`400 malformed_request`): no
/// endpoint, no stage ran.
pub(crate) fn log_unusable_event(outcome: &Outcome, started: Instant) {
    tracing::info!(
        outcome = outcome.label(),
        status = outcome.status().as_u16(),
        reason = "malformed_request",
        duration_ms = millis(started.elapsed()),
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

/// One line per record of a delivery on a route with `for_each`, logged inside the record's `span`: its
/// index, outcome, deal or dead letter, and its stage times and HubSpot calls as the `delivery` line has
/// them (the delivery's line sums those of all its records).
pub(crate) fn log_record(index: usize, outcome: &Outcome, route: &Route, started: Instant, span: &tracing::Span) {
    let Ids {
        deal_id,
        dead_letter_id,
        reason,
    } = Ids::of(outcome);
    let times = StageTimes::of(span);
    let ms = |stage| times.stage(stage).map(millis);
    tracing::info!(
        record = index,
        route = route.name(),
        outcome = record_label(outcome),
        status = outcome.status().as_u16(),
        deal_id,
        dead_letter_id,
        reason,
        hubspot_status = times.hubspot_status,
        attempts = (times.attempts > 0).then_some(times.attempts),
        duration_ms = millis(started.elapsed()),
        map_ms = ms("map"),
        resolve_ms = ms("resolve"),
        secret_ms = ms("secret"),
        hubspot_ms = times.hubspot.map(millis),
        idempotency_ms = ms("idempotency"),
        dead_letter_ms = ms("dead_letter"),
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
