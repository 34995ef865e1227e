//! dealhook: third-party webhooks in, HubSpot deals out.
//!
//! ```text
//! event ─▶ Delivery ─route─▶ verify ─decode─▶ Submission ─select, map─▶ DealDraft ─(claim)─plan─(settle)─▶ Outcome
//! ```
//! The plan ([`hubspot::plan`]) is the HubSpot calls a draft needs: contacts upserted by e-mail,
//! companies found (or created) by domain, then the deal, created or upserted and linked.
//! Every delivery ends in exactly one [`Outcome`]: a deal, a dead letter, a rejection that
//! stores nothing, or a 503 asking the sender to retry when even the dead letter failed. With an
//! idempotency store ([`idempotency`]), a repeat of a finished delivery gets its first answer again
//! and a repeat of one in progress a 409, so that one delivery never makes two deals.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dead_letter;
mod dedupe;
pub mod domain;
pub mod hubspot;
pub mod idempotency;
pub mod inbound;
pub mod mapping;
pub mod outcome;
pub mod telemetry;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::Instrument;

use crate::aws::{DeadLetters, SecretSource};
use crate::dead_letter::{DeadLetter, HubSpotFailure};
use crate::domain::{DealDraft, Problem, Reason, Submission};
use crate::hubspot::{Deals, PlanError, RetryPolicy};
use crate::idempotency::{Claim, Idempotency, IdempotencyKey};
use crate::inbound::verify;
use crate::inbound::{Delivery, Invocation, LambdaEvent, ResponseFormat};
use crate::mapping::{Endpoint, Mapping, Route};
pub use crate::outcome::{Outcome, Rejection, StoredResponse};

/// Per-deployment settings the pipeline needs (read once; see [`config::Env`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bodies larger than this are answered 413.
    pub max_body_bytes: usize,
    /// Build the HubSpot request but send nothing.
    pub dry_run: bool,
    /// Accept deliveries without checking signatures. Only for local runs with no secret
    /// configured (`dealhook invoke` says so loudly); never set on Lambda.
    pub skip_signatures: bool,
    /// How HubSpot requests are retried (429, 502–504, no connection) within the invocation's time.
    pub retry: RetryPolicy,
}

/// Everything built once per cold start and shared by all invocations.
pub struct App {
    settings: Settings,
    mapping: Arc<Mapping>,
    secrets: Arc<dyn SecretSource>,
    deals: Arc<dyn Deals>,
    dead_letters: Arc<dyn DeadLetters>,
    idempotency: Option<Idempotency>,
}

/// A delivery ready for HubSpot: where it goes and what it becomes.
pub(crate) struct Prepared<'a> {
    /// The endpoint it arrived at (`/hooks/{endpoint}`).
    endpoint: &'a str,
    /// The route its endpoint selected.
    route: &'a Route,
    /// The provider's delivery id, if it sent one.
    delivery_id: Option<String>,
    /// The deal to create.
    pub(crate) draft: DealDraft,
}

/// Where a delivery stopped before a deal could be attempted: each stage of [`App::prepare`] returns it.
enum Halt {
    /// Answered as is, nothing stored: a rejection (4xx), `ignored` (no route matched) or `retry_later`
    /// (not even authenticated, for lack of a key).
    Answer(Outcome),
    /// Authenticated but unusable: to be dead-lettered (see [`App::halted`]), under the route's name
    /// or, before a route was selected, the endpoint's.
    DeadLetter {
        at: String,
        reason: Reason,
        errors: Vec<Problem>,
    },
}

impl Halt {
    fn dead_letter(at: &str, reason: Reason, errors: Vec<Problem>) -> Halt {
        Halt::DeadLetter {
            at: at.to_owned(),
            reason,
            errors,
        }
    }
}

impl From<Rejection> for Halt {
    fn from(rejection: Rejection) -> Halt {
        Halt::Answer(Outcome::Rejected(rejection))
    }
}

impl App {
    /// An app from its parts (tests pass fakes; [`config::build_app`] passes the real adapters).
    pub fn new(
        settings: Settings,
        mapping: Arc<Mapping>,
        secrets: Arc<dyn SecretSource>,
        deals: Arc<dyn Deals>,
        dead_letters: Arc<dyn DeadLetters>,
    ) -> App {
        App {
            settings,
            mapping,
            secrets,
            deals,
            dead_letters,
            idempotency: None,
        }
    }

    /// Records deliveries in `idempotency`'s store so that a repeat creates no second deal (see
    /// [`idempotency`]). Without it, every delivery is processed as if new.
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> App {
        self.idempotency = Some(idempotency);
        self
    }

    /// The compiled mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The Lambda entry point for HTTP events (API Gateway REST v1, HTTP API v1/v2, function URLs):
    /// the raw event and its invocation in, the Lambda response JSON out, in the shape the event's
    /// front door expects. Never fails and never panics on any event: one that cannot be read as a
    /// request is answered `400 malformed_request` (see [`inbound::event`]), everything else goes
    /// through [`App::handle`]. Logs carry the request id and the X-Ray trace id.
    pub async fn handle_event(&self, event: &serde_json::Value, invocation: &Invocation) -> serde_json::Value {
        self.answer_event(event, invocation).await.1
    }

    /// [`App::handle_event`], also giving the [`Outcome`] the response was made from (the CLI's exit
    /// code comes from it).
    pub async fn answer_event(
        &self,
        event: &serde_json::Value,
        invocation: &Invocation,
    ) -> (Outcome, serde_json::Value) {
        let parsed = LambdaEvent::parse(event, invocation, chrono::Utc::now());
        self.answer(parsed, invocation).await
    }

    /// The Lambda entry point as the function is wired: the event's JSON text exactly as the runtime
    /// received it (`dealhook-http` takes it as a `RawValue`, so no event fails before dealhook sees
    /// it). Text that is JSON but that `serde_json::Value` cannot hold (a lone UTF-16 surrogate escape,
    /// nesting deeper than 128) is answered `400 malformed_request` like any unusable event.
    pub async fn answer_event_text(&self, text: &str, invocation: &Invocation) -> (Outcome, serde_json::Value) {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(event) => self.answer_event(&event, invocation).await,
            Err(error) => {
                let why = inbound::MalformedEvent {
                    field: "event".to_owned(),
                    rule: format!("is not JSON that can be read ({error})"),
                };
                self.answer(LambdaEvent::Unrecognised(why), invocation).await
            }
        }
    }

    /// The answer to a parsed event: the pipeline for a usable request, else `400 malformed_request`.
    async fn answer(&self, parsed: LambdaEvent, invocation: &Invocation) -> (Outcome, serde_json::Value) {
        let started = Instant::now();
        let (format, request_id, delivery) = match parsed {
            LambdaEvent::Http(http) => {
                let http = *http;
                (http.format, http.request_id, http.delivery)
            }
            LambdaEvent::Unrecognised(why) => {
                let id = Some(invocation.request_id.clone())
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4()));
                (ResponseFormat::Plain, id, Err(why))
            }
        };
        let span = tracing::info_span!(
            "invocation",
            request_id = %request_id,
            xray_trace_id = invocation.xray_trace_id.as_deref()
        );
        let outcome = match delivery {
            Ok(delivery) => self.handle(&delivery).instrument(span).await,
            Err(why) => {
                let _entered = span.enter();
                let outcome = Outcome::Rejected(Rejection::malformed_request(why.to_string()));
                tracing::warn!(field = %why.field, rule = %why.rule, "the event is not a usable HTTP request");
                tracing::info!(
                    request_id = %request_id,
                    route = "",
                    outcome = outcome.label(),
                    status = outcome.status().as_u16(),
                    reason = "malformed_request",
                    duration_ms = started.elapsed().as_millis() as u64,
                    "delivery"
                );
                outcome
            }
        };
        let response = format.render(&outcome.to_response(&request_id));
        (outcome, response)
    }

    /// Runs one delivery through the pipeline and logs one summary line.
    pub async fn handle(&self, delivery: &Delivery) -> Outcome {
        let started = Instant::now();
        let route = inbound::route_name(&delivery.path).unwrap_or("");
        let span = tracing::info_span!("delivery", request_id = %delivery.request_id, route);
        let outcome = self.run(delivery).instrument(span.clone()).await;
        let _entered = span.enter();
        log_summary(delivery, route, &outcome, started);
        outcome
    }

    /// The pipeline: endpoint → verify → decode → select route → map → (claim) → create → (settle).
    async fn run(&self, delivery: &Delivery) -> Outcome {
        let prepared = match self.prepare(delivery).await {
            Ok(prepared) => prepared,
            Err(halt) => return self.halted(delivery, halt).await,
        };
        if self.settings.dry_run {
            // Unbuildable (no `upsert_by` value) goes on to `deliver`, which dead-letters it unsent.
            if let Ok(calls) =
                hubspot::plan::preview_deduped(prepared.route.hubspot(), &prepared.draft, prepared.route.dedupe())
            {
                return Outcome::DryRun(calls);
            }
        }
        match &self.idempotency {
            None => self.deliver(delivery, prepared).await.0,
            Some(idempotency) => self.deliver_once(idempotency, delivery, prepared).await,
        }
    }

    /// Everything up to the DealDraft, stage by stage: endpoint, verify, decode, select, map.
    async fn prepare(&self, delivery: &Delivery) -> Result<Prepared<'_>, Halt> {
        let endpoint = self.endpoint(delivery)?;
        self.verify(endpoint, delivery).await?;
        let submission = self.decode(endpoint, delivery).await?;
        let route = self.select(endpoint, &submission)?;
        let draft = route
            .map(&submission)
            .map_err(|errors| Halt::dead_letter(route.name(), Reason::MappingFailed, errors))?;
        Ok(Prepared {
            endpoint: endpoint.name(),
            route,
            delivery_id: submission.id,
            draft,
        })
    }

    /// The configured endpoint at `/hooks/{endpoint}` (else 404), for a POST (else 405) of a body
    /// within the size limit (else 413).
    fn endpoint(&self, delivery: &Delivery) -> Result<&Endpoint, Halt> {
        let Some(name) = inbound::route_name(&delivery.path) else {
            let message = format!(
                "no webhook at {:?}; deliveries go to POST /hooks/{{route}}",
                delivery.path
            );
            return Err(Rejection::not_found("not_found", message).into());
        };
        let Some(endpoint) = self.mapping.endpoint(name) else {
            let message = format!("no route named {name:?} is configured");
            return Err(Rejection::not_found("unknown_route", message).into());
        };
        if delivery.method != http::Method::POST {
            return Err(Rejection::method_not_allowed(&delivery.method).into());
        }
        if delivery.body.len() > self.settings.max_body_bytes {
            return Err(Rejection::too_large(delivery.body.len(), self.settings.max_body_bytes).into());
        }
        Ok(endpoint)
    }

    /// Checks that the delivery is what the endpoint's sender sends: a content type the provider uses
    /// (else 415: the type is not signed, and the same signed bytes read as another type would be
    /// another submission), then the signature on the raw bytes. Unauthenticated requests are
    /// answered 401 and never stored; if the signing key cannot be had, the sender is asked to retry.
    ///
    /// A signature that does not verify with the cached key, or a key the cached secret lacks, may
    /// be a rotation: the secret is re-read (at most once per [`aws::REREAD_INTERVAL`] across
    /// deliveries) and, if the key changed, the delivery is verified again with the new one.
    async fn verify(&self, endpoint: &Endpoint, delivery: &Delivery) -> Result<(), Halt> {
        if let Err(message) = endpoint.source().check_content_type(delivery.content_type()) {
            return Err(Rejection::unsupported_media_type(message).into());
        }
        let (Some(scheme), Some(key_name)) = (endpoint.signature(), endpoint.signing_secret()) else {
            return Ok(());
        };
        if self.settings.skip_signatures {
            tracing::warn!(scheme = %scheme, "signature NOT verified: no signing keys configured (local run)");
            return Ok(());
        }
        let credentials = self.secrets.credentials().await.map_err(|e| {
            tracing::error!(error = %e, "signing keys could not be read");
            Halt::Answer(Outcome::RetryLater {
                code: "secret_unavailable",
                message: "the signing key could not be read",
            })
        })?;
        let request = verify::SignedRequest::from_delivery(delivery, endpoint.public_url());
        let now = SystemTime::now();
        let check = |credentials: &credentials::Credentials| {
            let key = credentials.signing.get(key_name)?;
            Some(verify::verify(scheme, key, &request, now))
        };
        let mut verdict = check(&credentials);
        if matches!(
            verdict,
            None | Some(Err(
                verify::VerifyError::Mismatch | verify::VerifyError::InvalidKey { .. }
            ))
        ) && let Ok(fresh) = self.secrets.reread_rate_limited().await
        {
            use secrecy::ExposeSecret as _;
            let key = |c: &credentials::Credentials| c.signing.get(key_name).map(|k| k.expose_secret().to_owned());
            if key(&fresh) != key(&credentials) {
                tracing::info!(
                    key = key_name,
                    "the signing key changed in the secret; verifying with the new one"
                );
                verdict = check(&fresh);
            }
        }
        match verdict {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                tracing::info!(scheme = %scheme, code = e.code(), error = %e, "signature rejected");
                Err(Rejection::unauthorized(e.code(), format!("{scheme} signature check failed: {e}")).into())
            }
            None => {
                tracing::error!(
                    key = key_name,
                    "the secret has no such signing key: fix the secret or the mapping"
                );
                Err(Halt::Answer(Outcome::RetryLater {
                    code: "signing_key_missing",
                    message: "the signing key for this endpoint is not configured",
                }))
            }
        }
    }

    /// The body decoded (415 for a type that cannot be, 400 over a structure limit) and normalised by
    /// the endpoint's source; a malformed body is dead-lettered (`decode_failed`).
    async fn decode(&self, endpoint: &Endpoint, delivery: &Delivery) -> Result<Submission, Halt> {
        let decoded = match inbound::decode(delivery.content_type(), &delivery.body).await {
            Ok(value) => value,
            Err(e) if e.is_unsupported() => return Err(Rejection::unsupported_media_type(e.to_string()).into()),
            Err(inbound::DecodeError::LimitExceeded { code, message }) => {
                return Err(Rejection::bad_request(code, message).into());
            }
            Err(e) => return Err(Halt::dead_letter(endpoint.name(), Reason::DecodeFailed, e.problems())),
        };
        inbound::source::normalise(endpoint.source(), decoded, delivery)
            .map_err(|errors| Halt::dead_letter(endpoint.name(), Reason::DecodeFailed, errors))
    }

    /// The endpoint's first route whose `match` holds; none is `ignored`, a `match` that fails to
    /// evaluate is dead-lettered (`match_failed`).
    fn select<'a>(&'a self, endpoint: &'a Endpoint, submission: &Submission) -> Result<&'a Route, Halt> {
        match endpoint.select(submission) {
            Ok(Some(route)) => Ok(route),
            Ok(None) => Err(Halt::Answer(Outcome::Ignored)),
            Err(errors) => Err(Halt::dead_letter(endpoint.name(), Reason::MatchFailed, errors)),
        }
    }

    /// The outcome of a delivery that stopped before HubSpot: the answer, or its dead letter written.
    async fn halted(&self, delivery: &Delivery, halt: Halt) -> Outcome {
        match halt {
            Halt::Answer(outcome) => outcome,
            Halt::DeadLetter { at, reason, errors } => {
                self.dead_letter(DeadLetter::new(delivery, &at, reason, errors)).await
            }
        }
    }

    /// [`Self::deliver`] under the delivery's idempotency key: a repeat of a completed delivery gets the
    /// stored response, a repeat while another attempt runs gets 409, and a store that cannot be used
    /// dead-letters the delivery (`idempotency_unavailable`) rather than risking a second deal.
    async fn deliver_once(&self, idempotency: &Idempotency, delivery: &Delivery, prepared: Prepared<'_>) -> Outcome {
        let key = IdempotencyKey::for_delivery(prepared.endpoint, prepared.delivery_id.as_deref(), &delivery.body);
        let owner = uuid::Uuid::new_v4().to_string();
        let now = SystemTime::now();
        let lock_until = delivery.deadline.unwrap_or(now + idempotency::DEFAULT_LOCK);
        let expires_at = now + idempotency.ttl;
        match idempotency.store.claim(&key, &owner, lock_until, expires_at).await {
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
                tracing::error!(key = %key, error = %error, "idempotency store unavailable; dead-lettering the delivery");
                let reason = Reason::IdempotencyUnavailable;
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
        let settled = if keep {
            let stored = StoredResponse::of(&outcome);
            idempotency.store.complete(&key, &owner, &stored, expires_at).await
        } else {
            idempotency.store.release(&key, &owner).await
        };
        if let Err(error) = settled {
            // The outcome stands; the lock lapses at the deadline, after which a repeat is processed again.
            tracing::error!(key = %key, error = %error, "the idempotency record could not be settled");
        }
        outcome
    }

    /// Runs the plan of calls ([`hubspot::plan`]: contacts, companies, the deal, links) or
    /// dead-letters the delivery. Also says whether HubSpot may hold the deal despite a failure (see
    /// [`HubSpotError::may_have_created`]; a deal made before an association failed does).
    async fn deliver(&self, delivery: &Delivery, prepared: Prepared<'_>) -> (Outcome, bool) {
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
            dedupe::Guarded::Plan(Ok(deal)) => return (Outcome::Created(deal), false),
            dedupe::Guarded::Plan(Err(failure)) => failure,
            dedupe::Guarded::InProgress { retry_after_secs } => {
                return (Outcome::InProgress { retry_after_secs }, false);
            }
            dedupe::Guarded::StoreUnavailable(error) => {
                tracing::error!(error = %error, "idempotency store unavailable for dedupe; dead-lettering the delivery");
                let reason = Reason::IdempotencyUnavailable;
                let problem = Problem::general(reason.as_str(), error.to_string());
                let letter = self.letter_with_draft(delivery, &prepared, reason, vec![problem]);
                return (self.dead_letter(letter).await, false);
            }
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
        let mut letter = self.letter_with_draft(delivery, &prepared, reason, errors);
        letter.hubspot = hubspot;
        (self.dead_letter(letter).await, may_exist)
    }

    /// A dead letter for a delivery that was mapped: it carries the draft and the request it makes.
    fn letter_with_draft(
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
        letter
    }

    /// Writes a dead letter, every known secret value scrubbed out of it; if even that fails,
    /// asks the sender to retry.
    async fn dead_letter(&self, letter: DeadLetter) -> Outcome {
        // The values to scrub are those of the secret as read: an unsigned route may dead-letter a
        // delivery before anything has read it, so read it (from the cache, usually) first.
        if let Err(error) = self.secrets.credentials().await {
            tracing::warn!(error = %error, "the secret could not be read: this dead letter is scrubbed of the values known so far");
        }
        let letter = letter.redacted(&credentials::scrub::known_secrets());
        match self.dead_letters.send(&letter).await {
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

fn log_summary(delivery: &Delivery, route: &str, outcome: &Outcome, started: Instant) {
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
        Outcome::DryRun(_) | Outcome::Ignored => (None, None, None),
    };
    tracing::info!(
        request_id = %delivery.request_id,
        route,
        outcome = outcome.label(),
        status = outcome.status().as_u16(),
        deal_id,
        dead_letter_id,
        reason,
        duration_ms = started.elapsed().as_millis() as u64,
        "delivery"
    );
}

#[cfg(test)]
mod tests;
