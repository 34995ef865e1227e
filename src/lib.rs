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
//!
//! This file holds the stages in the order they run; the end of the pipeline (the deal written once,
//! or the dead letter) is in `settle.rs`, a route's `for_each` (one deal per record) in `records.rs`,
//! and the summary log lines in `summary.rs`. Each stage runs in a span of its name (`verify`, `decode`,
//! `map`, `resolve`, …) inside the delivery's `delivery` span, which [`telemetry`] times for the summary.
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
pub mod metrics;
pub mod outcome;
pub mod queue;
pub mod replay;
pub mod telemetry;
pub mod xray;

mod records;
mod settle;
mod summary;
pub mod worker;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::Instrument;

use crate::aws::{DeadLetters, SecretSource};
use crate::dead_letter::{DeadLetter, ForEachRecord};
use crate::domain::{DealDraft, Problem, Reason, Submission};
use crate::hubspot::portal::Portal;
use crate::hubspot::{Deals, RetryPolicy};
use crate::idempotency::Idempotency;
use crate::inbound::verify;
use crate::inbound::{Delivery, Invocation, LambdaEvent, ResponseFormat};
use crate::mapping::{Endpoint, ForEachError, Items, Mapping, Route};
pub use crate::outcome::{Outcome, RecordOutcome, Rejection, StoredResponse};
use crate::queue::WorkQueue;
use crate::summary::{Seen, log_summary};

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
    portal: Option<Portal>,
    /// Queue mode: where accepted deliveries go (see [`queue`]); `None` in sync mode.
    queue: Option<Arc<dyn WorkQueue>>,
    /// The worker's side of queue mode (see [`App::with_worker`]).
    worker: Option<worker::WorkerSetup>,
    /// Where each invocation's metrics go (see [`metrics`]); off unless [`App::with_metrics`].
    metrics: metrics::Metrics,
}

/// A delivery ready for HubSpot: where it goes and what it becomes.
pub(crate) struct Prepared<'a> {
    /// The endpoint it arrived at (`/hooks/{endpoint}`).
    endpoint: &'a str,
    /// The route its endpoint selected.
    route: &'a Route,
    /// The provider's delivery id, if it sent one.
    delivery_id: Option<String>,
    /// Which record of the delivery this is, on a route with `for_each`.
    record: Option<ForEachRecord>,
    /// The deal to create.
    pub(crate) draft: DealDraft,
}

/// A delivery its endpoint took: verified, decoded and given to a route.
struct Accepted<'a> {
    endpoint: &'a Endpoint,
    route: &'a Route,
    submission: Submission,
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
            portal: None,
            queue: None,
            worker: None,
            metrics: metrics::Metrics::default(),
        }
    }

    /// Writes each invocation's metrics as `metrics` says (see [`metrics::Metrics::scope`]).
    pub fn with_metrics(mut self, metrics: metrics::Metrics) -> App {
        self.metrics = metrics;
        self
    }

    /// The app's metrics settings.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Queue mode (`DEALHOOK_MODE=queue`): an accepted delivery is put on `queue` as a work item and
    /// answered `202 queued` instead of being sent to HubSpot (see [`queue`]). Dry runs and deliveries
    /// run again from a queue ([`inbound::Delivery::redelivery`]) still go to HubSpot.
    pub fn with_queue(mut self, queue: Arc<dyn WorkQueue>) -> App {
        self.queue = Some(queue);
        self
    }

    /// Resolves pipeline, stage and option labels against the portal's schema, read through `deals`
    /// and cached in `portal` (see [`mapping::resolve`]). Without it, drafts go out as mapped.
    pub fn with_portal(mut self, portal: Portal) -> App {
        self.portal = Some(portal);
        self
    }

    /// The portal's schema cache, when labels are resolved (see [`App::with_portal`]).
    pub fn portal(&self) -> Option<&Portal> {
        self.portal.as_ref()
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
        let answered = self.answer(parsed, invocation);
        self.metrics.scope(&invocation.request_id, answered).await
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
                let answered = self.answer(LambdaEvent::Unrecognised(why), invocation);
                self.metrics.scope(&invocation.request_id, answered).await
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
        let span = invocation.span(&request_id);
        let outcome = match delivery {
            Ok(delivery) => self.handle(&delivery).instrument(span).await,
            Err(why) => {
                let _entered = span.enter();
                let outcome = Outcome::Rejected(Rejection::malformed_request(why.to_string()));
                tracing::warn!(field = %why.field, rule = %why.rule, "the event is not a usable HTTP request");
                summary::log_unusable_event(&outcome, started);
                metrics::delivery_ended(metrics::UNKNOWN_ENDPOINT, &outcome);
                outcome
            }
        };
        let response = format.render(&outcome.to_response(&request_id));
        (outcome, response)
    }

    /// Runs one delivery through the pipeline, in its `delivery` span, and logs one summary line.
    pub async fn handle(&self, delivery: &Delivery) -> Outcome {
        let started = Instant::now();
        // `route` is recorded once a route is selected (a trace's annotation, see [`xray`]).
        let span = tracing::info_span!(
            telemetry::DELIVERY_SPAN,
            request_id = %delivery.request_id,
            route = tracing::field::Empty
        );
        let mut seen = Seen::default();
        let outcome = self.run(delivery, &mut seen).instrument(span.clone()).await;
        let _entered = span.enter();
        log_summary(delivery, &seen, &outcome, started, &span);
        metrics::delivery_ended(
            seen.endpoint.map_or(metrics::UNKNOWN_ENDPOINT, Endpoint::name),
            &outcome,
        );
        outcome
    }

    /// What a delivery's templates see, for `dealhook transform --fields`: the stages up to the choice
    /// of a route (endpoint, verify, decode and normalise, select) and nothing after. `Ok` holds the
    /// Submission and the route whose `match` holds (`None`: it would be ignored); `Err` the outcome of
    /// a delivery that stops earlier (a rejection, or a dead letter for a body that cannot be decoded).
    pub async fn submission_of(&self, delivery: &Delivery) -> Result<(Submission, Option<String>), Outcome> {
        let endpoint = match self.endpoint(delivery) {
            Ok(endpoint) => endpoint,
            Err(halt) => return Err(self.halted(delivery, halt).await),
        };
        let decoded = match self.verify(endpoint, delivery).await {
            Ok(()) => self.decode(endpoint, delivery).await,
            Err(halt) => Err(halt),
        };
        let submission = match decoded {
            Ok(submission) => submission,
            Err(halt) => return Err(self.halted(delivery, halt).await),
        };
        match self.select(endpoint, &submission) {
            Ok(route) => {
                let name = route.name().to_owned();
                Ok((submission, Some(name)))
            }
            Err(Halt::Answer(Outcome::Ignored(_))) => Ok((submission, None)),
            Err(halt) => Err(self.halted(delivery, halt).await),
        }
    }

    /// The pipeline: endpoint → verify → decode → select route → (for_each) → map → (claim) → create → (settle).
    /// What it learns of the delivery on the way (endpoint, route, …) goes in `seen`, for the summary line.
    async fn run<'a>(&'a self, delivery: &Delivery, seen: &mut Seen<'a>) -> Outcome {
        let accepted = match self.accept(delivery, seen).await {
            Ok(accepted) => accepted,
            Err(halt) => return self.halted(delivery, halt).await,
        };
        if let (Some(queue), None, false) = (&self.queue, &delivery.redelivery, self.settings.dry_run) {
            return self.enqueue(&**queue, delivery, &accepted).await;
        }
        match self.items(&accepted) {
            Ok(None) => match self.prepare(&accepted, None, delivery.deadline).await {
                Ok(prepared) => self.create(delivery, prepared).await,
                Err(halt) => self.halted(delivery, halt).await,
            },
            Ok(Some(items)) => self.run_records(delivery, &accepted, &items).await,
            Err(halt) => self.halted(delivery, halt).await,
        }
    }

    /// The stages that accept a delivery for a route: endpoint, verify, decode, select.
    async fn accept<'a>(&'a self, delivery: &Delivery, seen: &mut Seen<'a>) -> Result<Accepted<'a>, Halt> {
        let endpoint = self.endpoint(delivery)?;
        seen.endpoint = Some(endpoint);
        self.verify(endpoint, delivery)
            .instrument(tracing::info_span!("verify"))
            .await?;
        let submission = self
            .decode(endpoint, delivery)
            .instrument(tracing::info_span!("decode"))
            .await?;
        seen.submission_id = submission.id.clone();
        let route = self.select(endpoint, &submission)?;
        seen.route = Some(route);
        tracing::Span::current().record("route", route.name());
        Ok(Accepted {
            endpoint,
            route,
            submission,
        })
    }

    /// The items of a route with `for_each` (`None` for a route without): more than
    /// [`mapping::MAX_RECORDS`] is answered `400 too_many_records` and nothing is created; a `for_each`
    /// that fails or gives no list dead-letters the whole delivery (`mapping_failed`).
    fn items(&self, accepted: &Accepted<'_>) -> Result<Option<Items>, Halt> {
        let route = accepted.route;
        route.items(&accepted.submission).map_err(|error| match error {
            ForEachError::TooMany { count, limit } => {
                tracing::info!(
                    count,
                    limit,
                    "for_each gave more items than the limit; nothing was created"
                );
                let message = format!(
                    "the route's `for_each` gave {count} items; at most {limit} are taken per delivery, so nothing \
                     was created: send smaller batches"
                );
                Halt::Answer(Outcome::Rejected(Rejection::bad_request("too_many_records", message)))
            }
            ForEachError::Invalid(problem) => Halt::dead_letter(route.name(), Reason::MappingFailed, vec![problem]),
        })
    }

    /// The DealDraft of the delivery, or (`record`) of the item at an index of the route's `for_each`,
    /// mapped and then resolved in the portal's terms.
    async fn prepare<'a>(
        &self,
        accepted: &Accepted<'a>,
        record: Option<(&Items, usize)>,
        deadline: Option<SystemTime>,
    ) -> Result<Prepared<'a>, Halt> {
        let route = accepted.route;
        let draft = tracing::info_span!("map")
            .in_scope(|| match record {
                None => route.map(&accepted.submission),
                Some((items, index)) => route.map_item(items, index),
            })
            .map_err(|errors| Halt::dead_letter(route.name(), Reason::MappingFailed, errors))?;
        if telemetry::payloads_logged() {
            let draft = serde_json::to_value(&draft).unwrap_or_default();
            tracing::debug!(draft = %draft, "the deal as mapped (DEALHOOK_LOG_PAYLOADS)");
        }
        let draft = self.resolve(route, draft, deadline).await?;
        Ok(Prepared {
            endpoint: accepted.endpoint.name(),
            route,
            delivery_id: accepted.submission.id.clone(),
            record: record.map(|(items, index)| ForEachRecord {
                index,
                count: items.len(),
            }),
            draft,
        })
    }

    /// One deal: its plan of calls in a dry run, else created under its idempotency key (if there is a
    /// store) or dead-lettered.
    async fn create(&self, delivery: &Delivery, prepared: Prepared<'_>) -> Outcome {
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

    /// The draft in the portal's terms: labels → ids, option labels → values, schema-driven conversions
    /// ([`mapping::resolve::resolve_in_portal`]); what the portal does not know is dead-lettered
    /// (`mapping_failed`) as map errors are. Without a portal, or a schema, the draft as mapped.
    async fn resolve(&self, route: &Route, draft: DealDraft, deadline: Option<SystemTime>) -> Result<DealDraft, Halt> {
        let Some(portal) = &self.portal else {
            return Ok(draft);
        };
        mapping::resolve::resolve_in_portal(portal, &*self.deals, &*self.secrets, route, draft, deadline)
            .instrument(tracing::info_span!("resolve", route = route.name()))
            .await
            .map_err(|errors| Halt::dead_letter(route.name(), Reason::MappingFailed, errors))
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
            // The configured endpoints go to the operator's log, not to an anonymous sender.
            let configured: Vec<&str> = self.mapping.endpoints().map(Endpoint::name).collect();
            let nearest = (name.len() <= mapping::MAX_NAME_FOR_SUGGESTION)
                .then(|| mapping::nearest(name, configured.iter().copied()))
                .flatten();
            tracing::warn!(
                endpoint = name,
                did_you_mean = nearest,
                configured = configured.join(", "),
                "a delivery came for an endpoint the mapping does not have (404 unknown_route)"
            );
            let message =
                format!("no endpoint named {name:?} is configured (the function's log names the endpoints it serves)");
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
        if delivery.redelivery.is_some() {
            // Verified when it was received; the envelope keeps no signature (redacted) to check again.
            return Ok(());
        }
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
            Ok(None) => {
                let mut unmatched = endpoint.unmatched(submission);
                // What a `match` saw is the sender's own data, but a secret value it holds (a token
                // echoed in the body) is still never answered.
                let known = credentials::scrub::known_secrets();
                for route in &mut unmatched {
                    for value in route.saw.values_mut() {
                        known.scrub_json(value);
                    }
                }
                Err(Halt::Answer(Outcome::Ignored(unmatched)))
            }
            Err(errors) => Err(Halt::dead_letter(endpoint.name(), Reason::MatchFailed, errors)),
        }
    }

    /// The outcome of a delivery that stopped before HubSpot: the answer, or its dead letter written.
    async fn halted(&self, delivery: &Delivery, halt: Halt) -> Outcome {
        match halt {
            Halt::Answer(outcome) => outcome,
            Halt::DeadLetter { at, reason, errors } => {
                let mut letter = DeadLetter::new(delivery, &at, reason, errors);
                // Run again from an envelope: the letter keeps the key the delivery was received under.
                letter.idempotency_key = delivery.redelivery.as_ref().and_then(|r| r.idempotency_key.clone());
                self.dead_letter(letter).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
