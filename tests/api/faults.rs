//! Fault injection: HubSpot, Secrets Manager and SQS failing in every way we know of, through the real
//! handler (real HTTP to a mock HubSpot on loopback, real SDK calls to moto or to a dead port).
//!
//! Every case asserts that the delivery ends in exactly ONE accounted outcome (DESIGN.md): a deal
//! (`200 created`, no dead letter), a dead letter (`202 dead_lettered`, exactly one message on the
//! queue, its reason and attempt count), or a `503 retry_later` with `Retry-After` and nothing stored;
//! and how many deal-creating requests HubSpot received. Every case also runs under the process-wide
//! [`LogCapture`] and checks every response body, dead letter and log line for the HubSpot token, the
//! signing keys, the signatures of the delivery and the word `Bearer`.
//!
//! Layout: a [`Case`] is one fault (options, HubSpot's answers in order, the delivery, the expected
//! outcome and request count); [`run`] plays it once and asserts it. Cases are built by functions so
//! that the idempotency cases (at the end) replay the same faults:
//! - DynamoDB down: a `Case` whose `Options` point the idempotency store at [`unreachable_aws`].
//! - the same delivery twice, in sequence: `let (rig, sample, expect, _) = prepare(case).await;` then
//!   [`Rig::deliver`] twice; [`assert_outcome`] on the first, and the second's `effects.deal_requests`
//!   (requests since the previous look) must be 0 once a deal exists.
//! - the same delivery twice at once: `tokio::join!(rig.send(&sample), rig.send(&sample))`, then one
//!   [`Rig::settle`] for the effects of both (and the secret checks); [`Rig::deal_requests`] is the total.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use dealhook::aws::SecretSource;
use dealhook::dead_letter::DeadLetter;
use dealhook::hubspot::RetryPolicy;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{LogCapture, Options, TOKEN, TestApp, TestResponse, spawn_app_with, v2_event};
use crate::moto;
use crate::sample_events::{self, PROVIDERS, Provider, now};

/// The only path a deal is created at (v1).
const DEALS_PATH: &str = "/deals/v1/deal/";
/// The harness's attempt budget ([`RetryPolicy::default`]'s).
const ATTEMPTS: u32 = 4;
/// A second HubSpot token, for rotation cases: as secret as [`TOKEN`].
const ROTATED_TOKEN: &str = "pat-na1-99999999-8888-7777-6666-ROTATEDTOKEN";

// ---------------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------------

/// One delivery: its Lambda event (sent as is, so sending it twice is the same delivery twice) and the
/// secret values it carries (signatures), which must never show up anywhere.
#[derive(Clone)]
pub struct Sample {
    /// What it is, for messages.
    pub name: &'static str,
    /// The Lambda event's JSON text.
    pub event: String,
    /// The API Gateway request id in the event (the summary log line carries it).
    pub request_id: String,
    /// Signature header values and similar, that must never be repeated.
    pub carried_secrets: Vec<String>,
}

impl Sample {
    /// `POST /hooks/website-quote`: the unsigned JSON route, with an `Authorization: Bearer <TOKEN>`
    /// header of the sender's own (which must be redacted wherever the delivery is kept).
    pub fn quote() -> Sample {
        let body = json!({
            "company": "Acme Robotics", "plan": "enterprise", "budget": "12,500.50",
            "decision_date": "2026-12-15", "message": "We would like 40 seats and SSO.",
            "hubspot_company_id": "8954037", "hubspot_vids": [27136, 27137]
        });
        let event = v2_event(
            "POST",
            "/hooks/website-quote",
            Some("application/json"),
            body.to_string().as_bytes(),
        );
        let request_id = request_id_of(&event);
        Sample {
            name: "website-quote (unsigned)",
            event,
            request_id,
            carried_secrets: vec![],
        }
    }

    /// `POST /hooks/billing`: a Standard Webhooks `invoice.paid`, signed now with the route's key.
    pub fn billing() -> Sample {
        Sample::signed(
            provider("standard-webhooks"),
            "invoice.paid",
            "billing (Standard Webhooks)",
        )
    }

    /// `POST /hooks/stripe`: a Stripe `checkout.session.completed`, signed now with the route's key.
    pub fn stripe() -> Sample {
        Sample::signed(provider("stripe"), "checkout.session.completed", "stripe (signed)")
    }

    fn signed(p: &Provider, event_type: &str, name: &'static str) -> Sample {
        let (query, mut headers, body) = sample_events::signed(p, now(), event_type);
        let carried_secrets = headers
            .iter()
            .filter(|(name, _)| name.contains("signature"))
            .map(|(_, value)| value.clone())
            .collect::<Vec<_>>();
        assert!(!carried_secrets.is_empty(), "{name}: the delivery is signed");
        headers.push(("authorization".into(), format!("Bearer {TOKEN}")));
        let request_id = format!("test-{}", uuid::Uuid::new_v4());
        let event = sample_events::lambda_v2_event("POST", p.path, &query, &headers, &body, &request_id).to_string();
        Sample {
            name,
            event,
            request_id,
            carried_secrets,
        }
    }
}

fn provider(name: &str) -> &'static Provider {
    PROVIDERS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no provider {name}"))
}

fn request_id_of(event: &str) -> String {
    let event: Value = serde_json::from_str(event).expect("an event is JSON");
    event["requestContext"]["requestId"]
        .as_str()
        .expect("a v2 event has a request id")
        .to_owned()
}

/// The providers whose signed deliveries the suite sends.
const SIGNED_PROVIDERS: [&str; 2] = ["standard-webhooks", "stripe"];

/// The signing keys in the fault secret: each must never leak.
fn signing_keys() -> Vec<(&'static str, &'static str)> {
    SIGNED_PROVIDERS
        .iter()
        .map(|name| provider(name))
        .map(|p| (p.key_name, p.key))
        .collect()
}

/// The secret every fault app reads: [`TOKEN`] and the signing keys of [`SIGNED_PROVIDERS`].
fn fault_secret() -> String {
    let signing: serde_json::Map<String, Value> = signing_keys()
        .into_iter()
        .map(|(name, key)| (name.to_owned(), key.into()))
        .collect();
    json!({ "hubspot": { "accessToken": TOKEN }, "signing": signing }).to_string()
}

/// Harness options with [`fault_secret`].
pub fn options() -> Options {
    Options {
        secret: fault_secret(),
        ..Options::default()
    }
}

/// An SDK config whose every call is refused at once, retried as dealhook's config says (3 attempts)
/// but with 10 ms back-off instead of the SDK's 1 s, so the fault costs milliseconds.
async fn unreachable_aws() -> SdkConfig {
    moto::unreachable_endpoint_config()
        .await
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(dealhook::aws::MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build()
}

/// A loopback URL nobody listens on: connections are refused at once.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().expect("a bound socket has an address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// HubSpot's answers
// ---------------------------------------------------------------------------------------------

fn created(deal_id: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "portalId": 62515, "dealId": deal_id, "isDeleted": false }))
}

fn hubspot_error(status: u16, category: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "status": "error", "message": format!("{category} (test)"), "category": category,
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"
    }))
}

fn html(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/html")
        .set_body_string("<html><body><h1>Bad Gateway</h1></body></html>")
}

/// Mounts `answers` on the mock, in order: each but the last answers one request, the last every
/// request after them.
pub async fn answer_in_order(hubspot: &MockServer, answers: Vec<ResponseTemplate>) {
    let last = answers.len().saturating_sub(1);
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("POST")).and(path(DEALS_PATH)).respond_with(answer);
        let mock = if i < last { mock.up_to_n_times(1) } else { mock };
        mock.mount(hubspot).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The rig: an app, a log capture, and the accounting of one delivery
// ---------------------------------------------------------------------------------------------

/// A [`TestApp`] under the process-wide [`LogCapture`], with the secrets that must never leak.
pub struct Rig {
    pub t: TestApp,
    logs: LogCapture,
    secrets: Vec<String>,
    /// Deal-creating requests HubSpot had received when the last [`Rig::settle`] looked.
    seen_requests: std::sync::atomic::AtomicUsize,
}

/// What one delivery led to: the response, and the effects since the previous [`Rig::settle`].
pub struct Accounted {
    pub sample: &'static str,
    pub response: TestResponse,
    pub elapsed: Duration,
    pub effects: Effects,
}

/// Effects observed by [`Rig::settle`]: deal-creating requests HubSpot received and dead letters written
/// since the previous call (the queue is drained by each call).
pub struct Effects {
    pub deal_requests: usize,
    pub letters: Vec<DeadLetter>,
}

/// A response as sent, with how long the handler took.
pub struct Sent {
    pub response: TestResponse,
    pub elapsed: Duration,
}

impl Rig {
    /// An app built from `options` (use [`options`] for the fault secret), capturing logs.
    pub async fn new(options: Options) -> Rig {
        let logs = LogCapture::start();
        let t = spawn_app_with(options).await;
        let mut secrets: Vec<String> = vec![TOKEN.into(), ROTATED_TOKEN.into(), "Bearer".into()];
        secrets.extend(signing_keys().into_iter().map(|(_, key)| key.to_owned()));
        Rig {
            t,
            logs,
            secrets,
            seen_requests: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Sends the delivery through the handler; checks the response for secrets.
    pub async fn send(&self, sample: &Sample) -> Sent {
        let started = Instant::now();
        let response = self.t.invoke(&sample.event).await;
        let elapsed = started.elapsed();
        self.assert_clean(sample, "the response", &response.text);
        assert_tells_nothing_of_the_infrastructure(sample, &response.text);
        Sent { response, elapsed }
    }

    /// Reads what happened since the last call: deal requests on the mock, letters on the queue.
    /// Checks every letter and every log line captured so far for secrets.
    pub async fn settle(&self, sample: &Sample) -> Effects {
        use std::sync::atomic::Ordering;
        let total = self.deal_requests().await;
        let before = self.seen_requests.swap(total, Ordering::SeqCst);
        let texts = self.t.dead_letter_texts().await;
        for text in &texts {
            self.assert_clean(sample, "a dead letter", text);
        }
        let logs = self.logs.text();
        assert!(
            logs.contains(&sample.request_id),
            "{}: the capture holds this delivery's log lines",
            sample.name
        );
        self.assert_clean(sample, "the logs", &logs);
        Effects {
            deal_requests: total - before,
            letters: texts
                .iter()
                .map(|t| serde_json::from_str(t).expect("a dead letter is an envelope"))
                .collect(),
        }
    }

    /// [`Rig::send`] then [`Rig::settle`].
    pub async fn deliver(&self, sample: &Sample) -> Accounted {
        let Sent { response, elapsed } = self.send(sample).await;
        let effects = self.settle(sample).await;
        Accounted {
            sample: sample.name,
            response,
            elapsed,
            effects,
        }
    }

    /// Every `POST /deals/v1/deal/` the mock has received so far.
    pub async fn deal_requests(&self) -> usize {
        let requests = self.t.hubspot.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path() == DEALS_PATH)
            .count()
    }

    fn assert_clean(&self, sample: &Sample, what: &str, text: &str) {
        for secret in self.secrets.iter().chain(&sample.carried_secrets) {
            assert!(
                !text.contains(secret.as_str()),
                "{}: {secret:?} leaked into {what}: {text}",
                sample.name
            );
        }
    }
}

/// What a response to a sender must never hold (issue: "the sender is told nothing about the
/// infrastructure"): an ARN, the account id, a resource name (every queue, secret and table of these
/// tests is named `dealhook-test-…`), a queue or HubSpot URL (all on loopback here), or the text of an
/// AWS SDK or transport error. Those belong to the log and the dead letter, which the operator owns.
const INFRASTRUCTURE: &[&str] = &[
    "arn:",
    "123456789012",
    "dealhook-test-",
    "127.0.0.1",
    "localhost",
    "http://",
    "Exception",
    "dispatch failure",
    "error sending request",
    "service error",
    "timeout",
    "connect",
];

fn assert_tells_nothing_of_the_infrastructure(sample: &Sample, body: &str) {
    for needle in INFRASTRUCTURE {
        assert!(
            !body.contains(needle),
            "{}: the response tells the sender of the infrastructure ({needle:?}): {body}",
            sample.name
        );
    }
}

impl Accounted {
    /// Exactly one deal: `200 created` with `deal_id`, and no dead letter.
    pub fn assert_created(&self, deal_id: u64) {
        let r = &self.response;
        assert_eq!(r.status, 200, "{}: {}", self.sample, r.text);
        assert_eq!(r.json["status"], "created", "{}: {}", self.sample, r.text);
        assert_eq!(r.json["dealId"], deal_id, "{}: {}", self.sample, r.text);
        assert!(
            self.effects.letters.is_empty(),
            "{}: a created deal leaves no dead letter",
            self.sample
        );
    }

    /// Exactly one dead letter, for `reason`, the one the response names; returns it.
    pub fn assert_dead_lettered(&self, reason: &str) -> &DeadLetter {
        let r = &self.response;
        assert_eq!(r.status, 202, "{}: {}", self.sample, r.text);
        assert_eq!(r.json["status"], "dead_lettered", "{}: {}", self.sample, r.text);
        assert_eq!(r.json["reason"], reason, "{}: {}", self.sample, r.text);
        assert_eq!(
            self.effects.letters.len(),
            1,
            "{}: exactly one dead letter",
            self.sample
        );
        let letter = &self.effects.letters[0];
        assert_eq!(
            Some(letter.id.as_str()),
            r.json["deadLetterId"].as_str(),
            "{}",
            self.sample
        );
        assert_eq!(letter.reason.as_str(), reason, "{}", self.sample);
        letter
    }

    /// `503 retry_later` with `code` and `Retry-After`, and nothing stored.
    pub fn assert_retry_later(&self, code: &str) {
        let r = &self.response;
        assert_eq!(r.status, 503, "{}: {}", self.sample, r.text);
        assert_eq!(r.json["status"], "retry_later", "{}: {}", self.sample, r.text);
        assert_eq!(r.json["error"]["code"], code, "{}: {}", self.sample, r.text);
        assert!(r.headers.contains_key("retry-after"), "{}: says when", self.sample);
        assert!(self.effects.letters.is_empty(), "{}: nothing stored", self.sample);
    }

    /// The attempt count the dead letter records (`None` when HubSpot was not called).
    pub fn attempts(&self) -> Option<u32> {
        self.effects.letters.first()?.hubspot.as_ref().map(|h| h.attempts)
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// The one outcome a case must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `200 created` with this deal id.
    Created(u64),
    /// `202`, one dead letter with this reason, and the attempts it records.
    DeadLettered { reason: &'static str, attempts: Attempts },
    /// `503 retry_later` with this code, nothing stored.
    RetryLater(&'static str),
}

/// The HubSpot attempts a dead letter records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// HubSpot was never called: the letter has no `hubspot` part.
    NotCalled,
    /// Exactly this many.
    Exactly(u32),
    /// At least the first, fewer than the second (time, not the budget, ended them).
    Between(u32, u32),
}

/// One fault: how the app is built, what HubSpot answers (in order, the last one for good), what is
/// delivered, and the outcome and number of deal-creating requests it must end in.
pub struct Case {
    pub options: Options,
    pub answers: Vec<ResponseTemplate>,
    pub sample: Sample,
    pub expect: Expect,
    /// Deal-creating requests HubSpot receives; `None`: as many as the dead letter's attempts.
    pub deal_requests: Option<usize>,
}

impl Case {
    fn new(sample: Sample, answers: Vec<ResponseTemplate>, expect: Expect, deal_requests: usize) -> Case {
        Case {
            options: options(),
            answers,
            sample,
            expect,
            deal_requests: Some(deal_requests),
        }
    }

    fn with_options(self, options: Options) -> Case {
        Case { options, ..self }
    }
}

/// Builds the rig for `case` and mounts HubSpot's answers (nothing sent yet).
pub async fn prepare(case: Case) -> (Rig, Sample, Expect, Option<usize>) {
    let rig = Rig::new(case.options).await;
    answer_in_order(&rig.t.hubspot, case.answers).await;
    (rig, case.sample, case.expect, case.deal_requests)
}

/// Asserts that `seen` is the one outcome `expect` names.
pub fn assert_outcome(seen: &Accounted, expect: Expect) {
    match expect {
        Expect::Created(deal_id) => seen.assert_created(deal_id),
        Expect::DeadLettered { reason, attempts } => {
            seen.assert_dead_lettered(reason);
            let recorded = seen.attempts();
            let ok = match attempts {
                Attempts::NotCalled => recorded.is_none(),
                Attempts::Exactly(n) => recorded == Some(n),
                Attempts::Between(low, high) => recorded.is_some_and(|n| (low..high).contains(&n)),
            };
            assert!(
                ok,
                "{}: attempts recorded {recorded:?}, expected {attempts:?}",
                seen.sample
            );
        }
        Expect::RetryLater(code) => seen.assert_retry_later(code),
    }
}

/// Plays `case` once and asserts its outcome and request count; returns the rig and what was seen.
pub async fn run(case: Case) -> (Rig, Accounted) {
    let (rig, sample, expect, deal_requests) = prepare(case).await;
    let seen = rig.deliver(&sample).await;
    assert_outcome(&seen, expect);
    let deal_requests = deal_requests.unwrap_or_else(|| seen.attempts().unwrap_or(0) as usize);
    assert_eq!(
        seen.effects.deal_requests, deal_requests,
        "{}: deal-creating requests HubSpot received",
        seen.sample
    );
    (rig, seen)
}

fn dead_lettered(reason: &'static str, attempts: u32) -> Expect {
    Expect::DeadLettered {
        reason,
        attempts: Attempts::Exactly(attempts),
    }
}

// -- HubSpot rate limits

fn rate_limited_with_retry_after_then_created() -> Case {
    let answers = vec![
        hubspot_error(429, "RATE_LIMITS").insert_header("Retry-After", "1"),
        created(4001),
    ];
    Case::new(Sample::quote(), answers, Expect::Created(4001), 2)
}

/// HubSpot's own headers on a spent rolling window, and no `Retry-After`.
fn rate_limited_window_spent_then_created() -> Case {
    let spent = hubspot_error(429, "RATE_LIMITS")
        .insert_header("X-HubSpot-RateLimit-Max", "100")
        .insert_header("X-HubSpot-RateLimit-Remaining", "0")
        .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "300");
    Case::new(Sample::billing(), vec![spent, created(4002)], Expect::Created(4002), 2)
}

fn rate_limited_without_hints_then_created() -> Case {
    let answers = vec![ResponseTemplate::new(429), created(4003)];
    Case::new(Sample::quote(), answers, Expect::Created(4003), 2)
}

fn rate_limited_forever() -> Case {
    let answers = vec![hubspot_error(429, "RATE_LIMITS")];
    let expect = dead_lettered("hubspot_rate_limited", ATTEMPTS);
    Case::new(Sample::billing(), answers, expect, ATTEMPTS as usize)
}

/// `Retry-After: 30` with 20 s of the invocation left (and 2 s + 3 s needed for the request and the margin).
fn rate_limited_past_the_deadline() -> Case {
    let answers = vec![hubspot_error(429, "RATE_LIMITS").insert_header("Retry-After", "30")];
    let options = Options {
        deadline: Some(Duration::from_secs(20)),
        ..options()
    };
    Case::new(Sample::quote(), answers, dead_lettered("hubspot_rate_limited", 1), 1).with_options(options)
}

/// `Retry-After` beyond dealhook's longest wait (60 s), no deadline at all.
fn rate_limited_beyond_the_longest_wait() -> Case {
    let answers = vec![hubspot_error(429, "RATE_LIMITS").insert_header("Retry-After", "120")];
    Case::new(Sample::stripe(), answers, dead_lettered("hubspot_rate_limited", 1), 1)
}

// -- HubSpot 5xx

fn server_error() -> Case {
    // A 500 may come after HubSpot wrote: `outcome_unknown` (the deal may exist), not retried.
    let answers = vec![hubspot_error(500, "INTERNAL_ERROR"), created(5000)];
    Case::new(Sample::quote(), answers, dead_lettered("outcome_unknown", 1), 1)
}

fn gateway_error_then_created(status: u16, sample: Sample) -> Case {
    let answers = vec![html(status), created(5000 + u64::from(status))];
    Case::new(sample, answers, Expect::Created(5000 + u64::from(status)), 2)
}

fn gateway_error_forever(status: u16, sample: Sample) -> Case {
    let answers = vec![hubspot_error(status, "UNAVAILABLE")];
    let expect = dead_lettered("hubspot_unavailable", ATTEMPTS);
    Case::new(sample, answers, expect, ATTEMPTS as usize)
}

// -- Slow HubSpot

/// HubSpot holds the answer (a deal!) past the client's 300 ms request timeout.
fn slow_past_the_request_timeout() -> Case {
    let answers = vec![created(6000).set_delay(Duration::from_secs(3))];
    let options = Options {
        hubspot_request_timeout: Duration::from_millis(300),
        ..options()
    };
    Case::new(Sample::quote(), answers, dead_lettered("outcome_unknown", 1), 1).with_options(options)
}

/// The retry policy and deadline of the near-deadline case: a budget (50) the deadline must beat.
const NEAR_DEADLINE: Duration = Duration::from_millis(2500);
const NEAR_MARGIN: Duration = Duration::from_millis(300);
const NEAR_TIMEOUT: Duration = Duration::from_millis(800);
const NEAR_BUDGET: u32 = 50;

/// 503s that each take 300 ms, 50 attempts allowed, 2.5 s left: only the deadline can stop it.
fn slow_failures_near_the_deadline() -> Case {
    let answers = vec![hubspot_error(503, "UNAVAILABLE").set_delay(Duration::from_millis(300))];
    let options = Options {
        deadline: Some(NEAR_DEADLINE),
        hubspot_request_timeout: NEAR_TIMEOUT,
        retry: Some(RetryPolicy {
            max_attempts: NEAR_BUDGET,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            margin: NEAR_MARGIN,
            request_timeout: NEAR_TIMEOUT,
            ..RetryPolicy::default()
        }),
        ..options()
    };
    // Retried at least once, and stopped by the deadline long before the budget.
    let expect = Expect::DeadLettered {
        reason: "hubspot_unavailable",
        attempts: Attempts::Between(2, NEAR_BUDGET),
    };
    Case {
        deal_requests: None,
        ..Case::new(Sample::stripe(), answers, expect, 0).with_options(options)
    }
}

/// The deadline and margin of the one-slow-request case.
const SLOW_DEADLINE: Duration = Duration::from_secs(2);
const SLOW_MARGIN: Duration = Duration::from_millis(500);

/// One request that would outlast the invocation: the client waits up to 8 s, HubSpot answers (a deal!)
/// after 10 s, and the invocation ends in 2 s. The attempt must be cut at the deadline less the margin,
/// and the delivery dead-lettered (the deal may exist), before the Lambda is killed.
fn one_request_slower_than_the_deadline() -> Case {
    let answers = vec![created(6100).set_delay(Duration::from_secs(10))];
    let timeout = Duration::from_secs(8);
    let options = Options {
        deadline: Some(SLOW_DEADLINE),
        hubspot_request_timeout: timeout,
        retry: Some(RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            margin: SLOW_MARGIN,
            request_timeout: timeout,
            ..RetryPolicy::default()
        }),
        ..options()
    };
    Case::new(Sample::billing(), answers, dead_lettered("outcome_unknown", 1), 1).with_options(options)
}

// -- HubSpot unreachable or unreadable

fn connection_refused() -> Case {
    let options = Options {
        hubspot_base_url: Some(refused_url()),
        ..options()
    };
    let answers = vec![created(1)];
    let expect = dead_lettered("hubspot_unavailable", ATTEMPTS);
    Case::new(Sample::billing(), answers, expect, 0).with_options(options)
}

fn malformed_success(body: &'static str) -> Case {
    let answers = vec![
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string(body),
        created(7000),
    ];
    Case::new(Sample::quote(), answers, dead_lettered("outcome_unknown", 1), 1)
}

// -- AWS down

fn secrets_manager_down(options: Options, sample: Sample, expect: Expect) -> Case {
    Case::new(sample, vec![created(8000)], expect, 0).with_options(options)
}

fn sqs_down(sqs_sdk: SdkConfig, answers: Vec<ResponseTemplate>, expect: Expect, deal_requests: usize) -> Case {
    let options = Options {
        sqs_sdk: Some(sqs_sdk),
        ..options()
    };
    Case::new(Sample::quote(), answers, expect, deal_requests).with_options(options)
}

// ---------------------------------------------------------------------------------------------
// Tests: HubSpot rate limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_then_creates_one_deal() {
    let (_, seen) = run(rate_limited_with_retry_after_then_created()).await;
    assert!(seen.elapsed >= Duration::from_secs(1), "Retry-After: 1 was honoured");
}

#[tokio::test]
async fn a_429_on_a_spent_rate_limit_window_waits_for_the_window_and_then_creates_one_deal() {
    let (_, seen) = run(rate_limited_window_spent_then_created()).await;
    // The harness's backoff is at most 50 ms: only the window header explains a 300 ms wait.
    assert!(
        seen.elapsed >= Duration::from_millis(300),
        "X-HubSpot-RateLimit-Interval-Milliseconds was honoured: {:?}",
        seen.elapsed
    );
}

#[tokio::test]
async fn a_429_without_any_hint_is_retried_with_backoff_and_creates_one_deal() {
    run(rate_limited_without_hints_then_created()).await;
}

#[tokio::test]
async fn a_429_that_never_ends_is_dead_lettered_after_the_attempt_budget() {
    let (_, seen) = run(rate_limited_forever()).await;
    let letter = seen.assert_dead_lettered("hubspot_rate_limited");
    let hubspot = letter.hubspot.as_ref().expect("HubSpot's answer is kept");
    assert_eq!(hubspot.status, Some(429));
    // HubSpot's own error, with the correlation id its support asks for.
    assert_eq!(hubspot.body["category"], "RATE_LIMITS", "{:?}", hubspot.body);
    assert_eq!(hubspot.body["correlationId"], "aeb5f871-7f07-4993-9211-075dc63e7cbf");
    assert!(letter.deal_draft.is_some(), "the draft is kept for a redrive");
}

#[tokio::test]
async fn a_429_whose_retry_after_outlasts_the_invocation_is_dead_lettered_at_once() {
    let (_, seen) = run(rate_limited_past_the_deadline()).await;
    assert!(
        seen.elapsed < Duration::from_secs(10),
        "it did not wait: {:?}",
        seen.elapsed
    );
}

#[tokio::test]
async fn a_429_whose_retry_after_exceeds_the_longest_wait_is_dead_lettered_at_once() {
    let (_, seen) = run(rate_limited_beyond_the_longest_wait()).await;
    assert!(
        seen.elapsed < Duration::from_secs(10),
        "it did not wait: {:?}",
        seen.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// Tests: HubSpot 5xx
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_500_is_dead_lettered_after_one_request_because_the_deal_may_exist() {
    let (_, seen) = run(server_error()).await;
    let hubspot = seen.effects.letters[0]
        .hubspot
        .as_ref()
        .expect("HubSpot's answer is kept");
    assert_eq!(hubspot.status, Some(500));
}

#[tokio::test]
async fn a_502_503_or_504_then_success_creates_one_deal() {
    for (status, sample) in [
        (502, Sample::quote()),
        (503, Sample::billing()),
        (504, Sample::stripe()),
    ] {
        run(gateway_error_then_created(status, sample)).await;
    }
}

#[tokio::test]
async fn a_502_503_or_504_that_persists_is_dead_lettered_after_every_attempt() {
    for (status, sample) in [
        (502, Sample::stripe()),
        (503, Sample::quote()),
        (504, Sample::billing()),
    ] {
        let (_, seen) = run(gateway_error_forever(status, sample)).await;
        let hubspot = seen.effects.letters[0]
            .hubspot
            .as_ref()
            .expect("HubSpot's answer is kept");
        assert_eq!(hubspot.status, Some(status));
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: slow HubSpot and the invocation deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_answer_slower_than_the_request_timeout_is_dead_lettered_as_outcome_unknown_and_not_retried() {
    let (_, seen) = run(slow_past_the_request_timeout()).await;
    assert!(
        seen.elapsed < Duration::from_secs(3),
        "the request timed out rather than waiting for the answer: {:?}",
        seen.elapsed
    );
}

#[tokio::test]
async fn slow_failures_near_the_invocation_deadline_stop_retrying_in_time_and_are_dead_lettered() {
    let (_, seen) = run(slow_failures_near_the_deadline()).await;
    // Generous: the loop stops once a retry could not end before the deadline less the margin.
    assert!(
        seen.elapsed < NEAR_DEADLINE + NEAR_MARGIN,
        "answered before the deadline (+ margin): {:?}",
        seen.elapsed
    );
}

#[tokio::test]
async fn a_request_that_would_outlast_the_invocation_is_cut_at_the_deadline_and_dead_lettered() {
    let (_, seen) = run(one_request_slower_than_the_deadline()).await;
    assert!(
        seen.elapsed < SLOW_DEADLINE + SLOW_MARGIN,
        "answered before the deadline (+ margin), not after the 8 s request timeout: {:?}",
        seen.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// Tests: HubSpot unreachable or unreadable
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_connection_is_retried_then_dead_lettered_and_creates_nothing() {
    let (_, seen) = run(connection_refused()).await;
    let hubspot = seen.effects.letters[0].hubspot.as_ref().expect("the failure is kept");
    assert_eq!(hubspot.status, None, "there was no answer");
}

#[tokio::test]
async fn malformed_json_on_a_200_is_dead_lettered_as_outcome_unknown_and_not_retried() {
    for body in ["{\"dealId\": ", "<html>ok</html>", "{\"portalId\": 62515}", "[]", ""] {
        let (_, seen) = run(malformed_success(body)).await;
        let hubspot = seen.effects.letters[0].hubspot.as_ref().expect("the answer is kept");
        assert_eq!(hubspot.status, Some(200), "{body:?}");
    }
}

#[tokio::test]
async fn malformed_bodies_on_error_statuses_are_classified_by_status_alone() {
    let cases = [
        // 400: HubSpot refused it for good, whatever the body says.
        Case::new(
            Sample::quote(),
            vec![html(400)],
            dead_lettered("hubspot_rejected", 1),
            1,
        ),
        // 500: the deal may exist.
        Case::new(Sample::quote(), vec![html(500)], dead_lettered("outcome_unknown", 1), 1),
        // 503 from an edge proxy, then a deal.
        Case::new(
            Sample::billing(),
            vec![html(503), created(7001)],
            Expect::Created(7001),
            2,
        ),
        // 429 with garbage: still a rate limit.
        Case::new(
            Sample::stripe(),
            vec![html(429)],
            dead_lettered("hubspot_rate_limited", ATTEMPTS),
            ATTEMPTS as usize,
        ),
    ];
    for case in cases {
        let (_, seen) = run(case).await;
        if seen.response.json["reason"] == "hubspot_rejected" {
            let hubspot = seen.effects.letters[0].hubspot.as_ref().expect("the answer is kept");
            assert_eq!(
                hubspot.body,
                json!("<html><body><h1>Bad Gateway</h1></body></html>"),
                "a body that is not JSON is kept as text"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: HubSpot refuses the credential
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_401_after_a_rotation_rereads_the_secret_once_and_creates_one_deal() {
    let rig = Rig::new(options()).await;
    let sample = Sample::quote();
    // The cache holds the old token; then the secret is rotated.
    rig.t.secrets.credentials().await.expect("the secret is readable");
    let rotated = fault_secret().replace(TOKEN, ROTATED_TOKEN);
    moto::put_secret(&rig.t.sdk, &rig.t.secret_id, &rotated).await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(hubspot_error(401, "INVALID_AUTHENTICATION"))
        .mount(&rig.t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {ROTATED_TOKEN}").as_str()))
        .respond_with(created(9001))
        .mount(&rig.t.hubspot)
        .await;

    let seen = rig.deliver(&sample).await;

    seen.assert_created(9001);
    assert_eq!(seen.effects.deal_requests, 2, "the old token, then the new one");
    assert_eq!(rig.t.secrets.refreshes(), 1, "exactly one re-read");
}

#[tokio::test]
async fn a_401_that_persists_after_the_reread_is_dead_lettered_after_two_requests() {
    // HubSpot's answer quotes the token it refused: the letter keeps the answer, never the token.
    let refused = ResponseTemplate::new(401).set_body_json(json!({
        "status": "error", "category": "INVALID_AUTHENTICATION",
        "message": format!("The OAuth token used to make this call expired: {TOKEN}"),
        "correlationId": "0f4a7c1e-0000-4000-8000-000000000401"
    }));
    let case = Case::new(
        Sample::billing(),
        vec![refused],
        dead_lettered("hubspot_unauthorized", 2),
        2,
    );
    let (rig, seen) = run(case).await;
    assert_eq!(rig.t.secrets.refreshes(), 1, "exactly one re-read");
    let hubspot = seen.effects.letters[0]
        .hubspot
        .as_ref()
        .expect("HubSpot's answer is kept");
    assert_eq!(hubspot.status, Some(401));
    assert_eq!(hubspot.body["correlationId"], "0f4a7c1e-0000-4000-8000-000000000401");
    let message = hubspot.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired") && !message.contains(TOKEN), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Tests: Secrets Manager down
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_manager_down_dead_letters_an_unsigned_delivery_without_calling_hubspot() {
    let unreachable = Options {
        secrets_sdk: Some(unreachable_aws().await),
        ..options()
    };
    let missing = Options {
        secret_id: Some(moto::unique_name("missing-secret")),
        ..options()
    };
    for options in [unreachable, missing] {
        let expect = Expect::DeadLettered {
            reason: "secret_unavailable",
            attempts: Attempts::NotCalled,
        };
        let (_, seen) = run(secrets_manager_down(options, Sample::quote(), expect)).await;
        let letter = &seen.effects.letters[0];
        assert!(letter.deal_draft.is_some(), "the draft is kept for a redrive");
        assert!(letter.hubspot.is_none(), "HubSpot was not called");
    }
}

#[tokio::test]
async fn secrets_manager_down_asks_the_sender_of_a_signed_delivery_to_retry_and_stores_nothing() {
    let unreachable = Options {
        secrets_sdk: Some(unreachable_aws().await),
        ..options()
    };
    let missing = Options {
        secret_id: Some(moto::unique_name("missing-secret")),
        ..options()
    };
    for (options, sample) in [(unreachable, Sample::billing()), (missing, Sample::stripe())] {
        run(secrets_manager_down(
            options,
            sample,
            Expect::RetryLater("secret_unavailable"),
        ))
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: SQS down
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sqs_down_while_hubspot_fails_asks_the_sender_to_retry_and_creates_nothing() {
    let cases = [
        // Rejected for good: one request, then the letter cannot be written.
        (hubspot_error(400, "VALIDATION_ERROR"), 1),
        // Unavailable: every attempt, then the letter cannot be written.
        (hubspot_error(503, "UNAVAILABLE"), ATTEMPTS as usize),
    ];
    for (answer, requests) in cases {
        let case = sqs_down(
            unreachable_aws().await,
            vec![answer],
            Expect::RetryLater("dead_letter_unavailable"),
            requests,
        );
        let (rig, _) = run(case).await;
        assert!(
            rig.t.dead_letters().await.is_empty(),
            "nothing reached the real queue either"
        );
    }
}

#[tokio::test]
async fn sqs_down_does_not_matter_when_hubspot_creates_the_deal() {
    run(sqs_down(
        unreachable_aws().await,
        vec![created(9100)],
        Expect::Created(9100),
        1,
    ))
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tests: idempotency (DynamoDB down; the same delivery twice, in a row and at once)
// ---------------------------------------------------------------------------------------------

/// `case` with idempotency records in a fresh table on moto.
fn idempotent(case: Case) -> Case {
    let options = Options {
        idempotency: true,
        ..case.options
    };
    Case { options, ..case }
}

#[tokio::test]
async fn dynamodb_down_dead_letters_the_delivery_and_never_calls_hubspot() {
    let options = Options {
        idempotency_sdk: Some(unreachable_aws().await),
        ..options()
    };
    let expect = Expect::DeadLettered {
        reason: "idempotency_unavailable",
        attempts: Attempts::NotCalled,
    };
    let (_, seen) = run(Case::new(Sample::billing(), vec![created(9200)], expect, 0).with_options(options)).await;
    let letter = seen.assert_dead_lettered("idempotency_unavailable");
    assert!(letter.deal_draft.is_some(), "redrivable as is");
}

#[tokio::test]
async fn dynamodb_and_sqs_down_ask_the_sender_to_retry_and_create_nothing() {
    let options = Options {
        idempotency_sdk: Some(unreachable_aws().await),
        sqs_sdk: Some(unreachable_aws().await),
        ..options()
    };
    let expect = Expect::RetryLater("dead_letter_unavailable");
    run(Case::new(Sample::quote(), vec![created(9300)], expect, 0).with_options(options)).await;
}

/// What a repeat of a delivery must get, once the first attempt has ended.
#[derive(Debug, Clone, Copy)]
enum Repeat {
    /// The first answer again, marked a replay; HubSpot not called, nothing stored.
    Replayed,
    /// Processed again, ending as the first did (nothing was created, so nothing can be doubled).
    Again,
}

#[tokio::test]
async fn with_idempotency_a_repeat_after_any_fault_never_makes_a_second_deal() {
    let cases = [
        (
            "created after a 429",
            rate_limited_without_hints_then_created(),
            Repeat::Replayed,
        ),
        (
            "created after a 503",
            gateway_error_then_created(503, Sample::stripe()),
            Repeat::Replayed,
        ),
        // HubSpot answers the repeat with a deal: only the stored outcome keeps it from being a second one.
        ("a 500, the deal may exist", server_error(), Repeat::Replayed),
        (
            "slow past the request timeout",
            slow_past_the_request_timeout(),
            Repeat::Replayed,
        ),
        (
            "malformed JSON on a 200",
            malformed_success(r#"{"dealId":"#),
            Repeat::Replayed,
        ),
        (
            "a 504 that persists",
            gateway_error_forever(504, Sample::quote()),
            Repeat::Again,
        ),
        ("rate limited for good", rate_limited_forever(), Repeat::Again),
        ("connection refused", connection_refused(), Repeat::Again),
    ];
    for (name, case, repeat) in cases {
        let (rig, sample, expect, _) = prepare(idempotent(case)).await;
        let first = rig.deliver(&sample).await;
        assert_outcome(&first, expect);
        let second = rig.deliver(&sample).await;
        match repeat {
            Repeat::Replayed => {
                let r = &second.response;
                assert_eq!(r.status, first.response.status, "{name}: {}", r.text);
                assert_eq!(r.json, first.response.json, "{name}: the first answer, word for word");
                assert_eq!(r.headers["x-dealhook-idempotent-replay"], "true", "{name}");
                assert_eq!(second.effects.deal_requests, 0, "{name}: HubSpot not called again");
                assert!(second.effects.letters.is_empty(), "{name}: no second dead letter");
            }
            Repeat::Again => {
                assert_outcome(&second, expect);
                assert!(
                    !second.response.headers.contains_key("x-dealhook-idempotent-replay"),
                    "{name}"
                );
                assert_eq!(
                    second.effects.deal_requests, first.effects.deal_requests,
                    "{name}: the same requests again"
                );
            }
        }
    }
}

#[tokio::test]
async fn with_idempotency_the_same_delivery_at_once_during_a_slow_hubspot_makes_one_deal() {
    let slow = created(9400).set_delay(Duration::from_millis(400));
    let case = idempotent(Case::new(Sample::stripe(), vec![slow], Expect::Created(9400), 1));
    let (rig, sample, _, _) = prepare(case).await;

    let (a, b, c) = tokio::join!(rig.send(&sample), rig.send(&sample), rig.send(&sample));
    let effects = rig.settle(&sample).await;

    let mut statuses = [a.response.status, b.response.status, c.response.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409]);
    for busy in [&a, &b, &c].into_iter().filter(|s| s.response.status == 409) {
        assert_eq!(busy.response.json["error"]["code"], "delivery_in_progress");
        assert!(busy.response.headers.contains_key("retry-after"));
    }
    assert_eq!(effects.deal_requests, 1, "one request reached HubSpot");
    assert!(effects.letters.is_empty());

    // The senders retry later: the stored answer, still one deal.
    let later = rig.deliver(&sample).await;
    assert_eq!(
        (later.response.status, later.response.json["dealId"].as_u64()),
        (200, Some(9400))
    );
    assert_eq!(later.effects.deal_requests, 0);
}
