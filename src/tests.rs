//! Unit tests of the pipeline with in-memory fakes: the branches of `App::run`, no I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;

use crate::aws::{MemoryDeadLetters, MemorySecrets};
use crate::credentials::{Credentials, HubSpotAuth};
use crate::domain::DealDraft;
use crate::hubspot::crm::{BatchOutcome, CompanyMatch, ContactInput};
use crate::hubspot::v1::ContactVid;
use crate::hubspot::{
    CreatedDeal, Deals, HubSpotError, HubSpotErrorBody, HubSpotOptions, HubSpotRequest, MemoryDeals, RetryPolicy,
};
use crate::hubspot::{HubSpotApi, ObjectType};
use crate::inbound::Delivery;
use crate::mapping::Mapping;
use crate::{App, Outcome, Settings};

struct Fakes {
    app: App,
    deals: Arc<MemoryDeals>,
    secrets: Arc<MemorySecrets>,
    letters: Arc<MemoryDeadLetters>,
}

/// The showcase mapping (`examples/showcase/mapping.yaml`: a route per provider, with the sample events
/// of `examples/showcase/events/`), which most tests run; the embedded default is only a starter.
pub(crate) fn showcase() -> Result<Mapping, crate::mapping::MappingLoadError> {
    Mapping::from_yaml(
        include_str!("../examples/showcase/mapping.yaml"),
        "examples/showcase/mapping.yaml",
    )
}

fn fakes(dry_run: bool) -> Fakes {
    fakes_with(dry_run, Credentials::from_token("tok-1".into()))
}

fn fakes_with(dry_run: bool, credentials: Credentials) -> Fakes {
    fakes_with_mapping(dry_run, credentials, crate::tests::showcase().unwrap())
}

fn fakes_with_mapping(dry_run: bool, credentials: Credentials, mapping: Mapping) -> Fakes {
    let deals = Arc::new(MemoryDeals::default());
    let secrets = Arc::new(MemorySecrets::new(credentials));
    let letters = Arc::new(MemoryDeadLetters::default());
    let app = App::new(
        Settings {
            max_body_bytes: 1024,
            dry_run,
            skip_signatures: false,
            retry: retry_policy(),
        },
        Arc::new(mapping),
        secrets.clone(),
        deals.clone(),
        letters.clone(),
    );
    Fakes {
        app,
        deals,
        secrets,
        letters,
    }
}

/// Waits of 100, 200, 400 ms (the jitter always picks the ceiling), 1 s per request, 500 ms margin.
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        margin: Duration::from_millis(500),
        request_timeout: Duration::from_secs(1),
        random: || 1.0,
    }
}

fn delivery(method: Method, path: &str, body: &str) -> Delivery {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Delivery {
        request_id: "req-test".into(),
        received_at: chrono::Utc::now(),
        deadline: None,
        method,
        path: path.into(),
        query: None,
        headers,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        redelivery: None,
    }
}

fn quote() -> Delivery {
    delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Acme","plan":"team","budget":"1,000"}"#,
    )
}

fn unauthorized() -> HubSpotError {
    HubSpotError::Unauthorized {
        status: 401,
        body: HubSpotErrorBody::default(),
    }
}

fn deal(id: u64) -> CreatedDeal {
    CreatedDeal {
        write: crate::hubspot::DealWrite::Created,
        deal_id: id,
        portal_id: None,
        association_create_failures: vec![],
    }
}

#[tokio::test]
async fn a_valid_delivery_creates_one_deal() {
    let f = fakes(false);
    let outcome = f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    let created = f.deals.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].dealstage, "presentationscheduled");
    assert!(f.letters.sent().is_empty());
}

#[tokio::test]
async fn a_refused_token_is_re_read_once_and_the_deal_is_created() {
    let f = fakes(false);
    f.deals.push_result(Err(unauthorized()));
    f.deals.push_result(Ok(deal(9)));
    f.secrets.set(Credentials::from_token("tok-2".into()));

    let outcome = f.app.handle(&quote()).await;

    assert!(
        matches!(outcome, Outcome::Created(ref d) if d.deal_id == 9),
        "{outcome:?}"
    );
    assert_eq!(f.secrets.refreshes(), 1);
}

#[tokio::test]
async fn a_token_refused_twice_is_dead_lettered_after_two_attempts() {
    let f = fakes(false);
    f.deals.push_result(Err(unauthorized()));
    f.deals.push_result(Err(unauthorized()));

    let outcome = f.app.handle(&quote()).await;

    assert!(matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "hubspot_unauthorized"));
    let letters = f.letters.sent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].hubspot.as_ref().map(|h| h.attempts), Some(2));
    assert_eq!(f.secrets.refreshes(), 1, "refreshed once, not in a loop");
}

#[tokio::test]
async fn an_unreadable_secret_is_dead_lettered_with_the_draft() {
    let f = fakes(false);
    f.secrets.set_failing(true);

    let outcome = f.app.handle(&quote()).await;

    assert!(matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "secret_unavailable"));
    assert!(f.deals.created().is_empty());
    let letters = f.letters.sent();
    assert!(letters[0].deal_draft.is_some() && letters[0].hubspot_request.is_some());
}

#[tokio::test]
async fn a_secret_without_a_hubspot_credential_is_dead_lettered() {
    let f = fakes_with(false, Credentials::default());
    let outcome = f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "secret_unavailable"));
}

#[tokio::test]
async fn when_the_dead_letter_cannot_be_written_the_sender_is_asked_to_retry() {
    let f = fakes(false);
    f.letters.set_failing(true);
    let outcome = f
        .app
        .handle(&delivery(Method::POST, "/hooks/website-quote", "{broken"))
        .await;
    assert!(matches!(outcome, Outcome::RetryLater { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_hubspot_failure_keeps_hubspots_answer_in_the_dead_letter() {
    let f = fakes(false);
    let raw = r#"{"status":"error","message":"Property values were not valid"}"#;
    f.deals.push_result(Err(HubSpotError::Rejected {
        status: 400,
        body: serde_json::from_str(raw).unwrap(),
        raw: raw.into(),
    }));

    let outcome = f.app.handle(&quote()).await;

    assert!(matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "hubspot_rejected"));
    let hubspot = f.letters.sent()[0].hubspot.clone().unwrap();
    assert_eq!(hubspot.status, Some(400));
    assert_eq!(
        hubspot.body,
        json!({"status":"error","message":"Property values were not valid"})
    );
}

#[tokio::test]
async fn a_dry_run_previews_and_creates_nothing() {
    let f = fakes(true);
    let outcome = f.app.handle(&quote()).await;
    match outcome {
        Outcome::DryRun(calls) => {
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].request.path, "/deals/v1/deal/");
        }
        other => panic!("expected a dry run, got {other:?}"),
    }
    assert!(f.deals.created().is_empty());
    assert_eq!(f.secrets.reads(), 0, "a dry run needs no credentials");
}

#[tokio::test]
async fn routing_is_checked_before_the_method_and_the_method_before_the_size() {
    let f = fakes(false);
    let big = "x".repeat(2048);
    let cases = [
        ("unknown route with GET", delivery(Method::GET, "/hooks/nope", ""), 404),
        (
            "known route with GET",
            delivery(Method::GET, "/hooks/website-quote", &big),
            405,
        ),
        (
            "known route, too large",
            delivery(Method::POST, "/hooks/website-quote", &big),
            413,
        ),
    ];
    for (name, d, status) in cases {
        let outcome = f.app.handle(&d).await;
        assert_eq!(outcome.status().as_u16(), status, "{name}: {outcome:?}");
    }
    assert!(f.letters.sent().is_empty() && f.deals.created().is_empty());
}

#[tokio::test]
async fn a_body_over_a_structure_limit_is_answered_400_and_not_stored_while_bad_json_is_dead_lettered() {
    let f = fakes(false);
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let outcome = f
        .app
        .handle(&delivery(Method::POST, "/hooks/website-quote", &deep))
        .await;
    let response = outcome.to_response("req-test");
    assert_eq!(response.status().as_u16(), 400, "{outcome:?}");
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["error"]["code"], "too_deep");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("64 levels"),
        "{body}"
    );
    assert!(f.letters.sent().is_empty() && f.deals.created().is_empty());

    let outcome = f
        .app
        .handle(&delivery(Method::POST, "/hooks/website-quote", "{\"a\": }"))
        .await;
    assert!(
        matches!(&outcome, Outcome::DeadLettered { reason, .. } if reason.as_str() == "decode_failed"),
        "{outcome:?}"
    );
    assert_eq!(f.letters.sent().len(), 1);
}

fn rate_limited(retry_after: Option<Duration>) -> HubSpotError {
    HubSpotError::RateLimited {
        retry_after,
        body: HubSpotErrorBody::default(),
    }
}

fn unavailable(status: Option<u16>) -> HubSpotError {
    HubSpotError::Unavailable {
        status,
        message: "down".into(),
    }
}

/// The single dead letter's reason and HubSpot attempt count.
fn dead_letter_attempts(f: &Fakes) -> (String, Option<u32>) {
    let letters = f.letters.sent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    (
        letters[0].reason.to_string(),
        letters[0].hubspot.as_ref().map(|h| h.attempts),
    )
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_request_is_retried_and_the_deal_created() {
    let f = fakes(false);
    f.deals.push_result(Err(rate_limited(None)));
    f.deals.push_result(Ok(deal(5)));
    let started = tokio::time::Instant::now();

    let outcome = f.app.handle(&quote()).await;

    assert!(
        matches!(outcome, Outcome::Created(ref d) if d.deal_id == 5),
        "{outcome:?}"
    );
    assert_eq!(f.deals.calls(), 2);
    assert_eq!(started.elapsed(), Duration::from_millis(100), "one backoff");
    assert!(f.letters.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_before_the_next_attempt() {
    let f = fakes(false);
    f.deals.push_result(Err(rate_limited(Some(Duration::from_secs(2)))));
    let started = tokio::time::Instant::now();

    let outcome = f.app.handle(&quote()).await;

    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_connection_failure_is_retried() {
    let f = fakes(false);
    f.deals.push_result(Err(unavailable(None)));
    let outcome = f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(f.deals.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hubspot_that_stays_unavailable_is_dead_lettered_after_every_attempt() {
    let f = fakes(false);
    f.deals.fail_with(unavailable(Some(503)));
    let started = tokio::time::Instant::now();

    let outcome = f.app.handle(&quote()).await;

    assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{outcome:?}");
    assert_eq!(dead_letter_attempts(&f), ("hubspot_unavailable".into(), Some(4)));
    assert_eq!(f.deals.calls(), 4);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100 + 200 + 400),
        "exponential waits"
    );
}

#[tokio::test(start_paused = true)]
async fn answers_that_are_not_safe_to_repeat_are_dead_lettered_after_one_attempt() {
    let raw = r#"{"status":"error","message":"Property values were not valid"}"#;
    let cases = [
        (
            "HTTP 500: the deal may exist",
            unavailable(Some(500)),
            "outcome_unknown",
        ),
        (
            "HTTP 400",
            HubSpotError::Rejected {
                status: 400,
                body: serde_json::from_str(raw).unwrap(),
                raw: raw.into(),
            },
            "hubspot_rejected",
        ),
        (
            "timeout after sending",
            HubSpotError::OutcomeUnknown {
                status: None,
                message: "no answer in time".into(),
            },
            "outcome_unknown",
        ),
    ];
    for (name, error, reason) in cases {
        let f = fakes(false);
        f.deals.fail_with(error);
        let started = tokio::time::Instant::now();

        let outcome = f.app.handle(&quote()).await;

        assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{name}: {outcome:?}");
        assert_eq!(dead_letter_attempts(&f), (reason.into(), Some(1)), "{name}");
        assert_eq!(f.deals.calls(), 1, "{name}");
        assert_eq!(started.elapsed(), Duration::ZERO, "{name}: no wait");
    }
}

#[tokio::test(start_paused = true)]
async fn no_retry_is_started_that_would_end_past_the_deadline_less_the_margin() {
    // 1 s left: even an immediate retry (1 s request + 500 ms margin) would not fit.
    let f = fakes(false);
    f.deals.fail_with(rate_limited(None));
    let mut d = quote();
    d.deadline = Some(SystemTime::now() + Duration::from_secs(1));
    let outcome = f.app.handle(&d).await;
    assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{outcome:?}");
    assert_eq!(dead_letter_attempts(&f), ("hubspot_rate_limited".into(), Some(1)));

    // 3 s left, Retry-After 1 s: one retry fits (1 + 1 + 0.5 ≤ 3), a second would not (≤ 2 left).
    let f = fakes(false);
    f.deals.fail_with(rate_limited(Some(Duration::from_secs(1))));
    let mut d = quote();
    d.deadline = Some(SystemTime::now() + Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let outcome = f.app.handle(&d).await;
    assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{outcome:?}");
    assert_eq!(dead_letter_attempts(&f), ("hubspot_rate_limited".into(), Some(2)));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_then_an_outage_are_handled_in_one_delivery() {
    let f = fakes(false);
    f.deals.push_result(Err(unauthorized()));
    f.deals.push_result(Err(unavailable(Some(502))));
    f.deals.push_result(Ok(deal(3)));

    let outcome = f.app.handle(&quote()).await;

    assert!(
        matches!(outcome, Outcome::Created(ref d) if d.deal_id == 3),
        "{outcome:?}"
    );
    assert_eq!(f.deals.calls(), 3);
    assert_eq!(f.secrets.refreshes(), 1);
}

#[tokio::test]
async fn a_match_that_fails_to_evaluate_dead_letters_the_delivery_and_creates_nothing() {
    let yaml = "version: 1\nroutes:\n  broken:\n    source: json\n    endpoint: in\n    signature: none\n    \
                match: fields.n / 0 > 1\n    deal: { pipeline: p, dealstage: s }\n";
    let f = fakes_with_mapping(
        false,
        Credentials::from_token("t".into()),
        Mapping::from_yaml(yaml, "m").unwrap(),
    );

    let outcome = f.app.handle(&delivery(Method::POST, "/hooks/in", r#"{"n":4}"#)).await;

    assert!(
        matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "match_failed"),
        "{outcome:?}"
    );
    let letters = f.letters.sent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].errors[0].code, "match_error");
    assert!(f.deals.created().is_empty());
}

/// A HubSpot that takes `delay` to answer each request (it creates the deal all the same).
struct SlowDeals {
    delay: Duration,
    inner: MemoryDeals,
}

#[async_trait]
impl Deals for SlowDeals {
    fn preview(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
    ) -> Result<HubSpotRequest, crate::hubspot::crm::MissingUpsertKey> {
        self.inner.preview(options, draft)
    }

    async fn create(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
        auth: &HubSpotAuth,
    ) -> Result<CreatedDeal, HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.create(options, draft, auth).await
    }

    async fn upsert_contacts(
        &self,
        api: HubSpotApi,
        contacts: &[ContactInput],
        auth: &HubSpotAuth,
    ) -> Result<BatchOutcome, HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.upsert_contacts(api, contacts, auth).await
    }

    async fn create_or_update_contact_v1(
        &self,
        contact: &ContactInput,
        auth: &HubSpotAuth,
    ) -> Result<ContactVid, HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.create_or_update_contact_v1(contact, auth).await
    }

    async fn search_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        auth: &HubSpotAuth,
    ) -> Result<Option<CompanyMatch>, HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.search_company(api, domain, auth).await
    }

    async fn create_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        properties: &[(String, String)],
        auth: &HubSpotAuth,
    ) -> Result<u64, HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.create_company(api, domain, properties, auth).await
    }

    async fn associate(
        &self,
        api: HubSpotApi,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        tokio::time::sleep(self.delay).await;
        self.inner.associate(api, from, to, auth).await
    }
}

/// An app whose HubSpot answers every call after `delay`, with a client that may wait longer than the
/// invocation has left (request timeout 30 s); its fake HubSpot and dead letters, to read.
fn slow_app(delay: Duration) -> (App, Arc<SlowDeals>, Arc<MemoryDeadLetters>) {
    slow_app_with(delay, crate::tests::showcase().unwrap())
}

/// [`slow_app`] with `mapping`.
fn slow_app_with(delay: Duration, mapping: Mapping) -> (App, Arc<SlowDeals>, Arc<MemoryDeadLetters>) {
    let letters = Arc::new(MemoryDeadLetters::default());
    let slow = Arc::new(SlowDeals {
        delay,
        inner: MemoryDeals::default(),
    });
    let app = App::new(
        Settings {
            max_body_bytes: 4096,
            dry_run: false,
            skip_signatures: false,
            retry: RetryPolicy {
                request_timeout: Duration::from_secs(30),
                ..retry_policy()
            },
        },
        Arc::new(mapping),
        Arc::new(MemorySecrets::new(Credentials::from_token("tok-1".into()))),
        slow.clone(),
        letters.clone(),
    );
    (app, slow, letters)
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_would_outlast_the_deadline_is_cut_at_the_deadline_less_the_margin() {
    let (app, slow, letters) = slow_app(Duration::from_secs(10));

    let mut d = quote();
    d.deadline = Some(SystemTime::now() + Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    let outcome = app.handle(&d).await;

    // 2 s less the 500 ms margin (the deadline is wall-clock time, which moves a little while tokio's is paused).
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(1400)..=Duration::from_millis(1500)).contains(&elapsed),
        "{elapsed:?}"
    );
    assert!(
        matches!(&outcome, Outcome::DeadLettered { reason, .. } if reason.as_str() == "outcome_unknown"),
        "{outcome:?}"
    );
    let sent = letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].hubspot.as_ref().map(|h| h.attempts), Some(1), "not retried");
    assert_eq!(
        slow.inner.calls(),
        0,
        "the attempt was abandoned before HubSpot answered"
    );

    // Without a deadline (a local run) the same answer is waited for.
    let outcome = app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_short_function_timeout_still_leaves_hubspot_time_to_answer() {
    // Lambda's default timeout (3 s) is no longer than the default 3 s margin: the margin shrinks to a
    // quarter of the time left, and the deal is created.
    let mut f = fakes(false);
    f.app.settings.retry.margin = Duration::from_secs(3);
    let mut d = quote();
    d.deadline = Some(SystemTime::now() + Duration::from_secs(3));
    let outcome = f.app.handle(&d).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
}

#[tokio::test]
async fn with_no_time_left_nothing_is_sent_and_the_letter_says_so() {
    let f = fakes(false);
    let mut d = quote();
    // The deadline has passed (a slow secret read could get here): no attempt may start.
    d.deadline = Some(SystemTime::now() - Duration::from_millis(1));

    let outcome = f.app.handle(&d).await;

    assert!(
        matches!(&outcome, Outcome::DeadLettered { reason, .. } if reason.as_str() == "hubspot_unavailable"),
        "not outcome_unknown: nothing was sent; {outcome:?}"
    );
    assert_eq!(f.deals.calls(), 0);
    let letters = f.letters.sent();
    assert_eq!(letters[0].hubspot.as_ref().map(|h| h.attempts), Some(0));
    assert!(letters[0].deal_draft.is_some());
}

mod for_each;
mod idempotency;
mod logs;
pub(crate) mod metrics;
mod queue;
mod signing;

/// Event text that is JSON but that `serde_json::Value` cannot hold, through the entry point the
/// Lambda function uses: a 400 that names the rule, never a failure before dealhook answers.
#[tokio::test]
async fn json_a_value_cannot_hold_is_answered_400_malformed_request() {
    let f = fakes(true);
    let quote = include_str!("../examples/showcase/events/website-quote.json");
    let lone_surrogate = quote.replacen("\"rawQueryString\": \"\"", "\"rawQueryString\": \"a=\\ud800\"", 1);
    assert_ne!(lone_surrogate, quote, "the sample event has an empty rawQueryString");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for (name, text) in [("a lone surrogate escape", lone_surrogate), ("nesting 200 deep", deep)] {
        let (outcome, response) = f
            .app
            .answer_event_text(&text, &crate::inbound::Invocation::local())
            .await;
        assert_eq!(outcome.status(), http::StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(response["statusCode"], 400, "{name}");
        let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "malformed_request", "{name}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("event: is not JSON that can be read")
        );
    }
    // The same entry point serves an ordinary event as before.
    let (outcome, _) = f
        .app
        .answer_event_text(quote, &crate::inbound::Invocation::local())
        .await;
    assert_eq!(outcome.label(), "dry_run");
}

/// A Content-Type that is there but not ASCII is unsupported (415, saying so), not "missing".
#[tokio::test]
async fn a_content_type_that_is_not_ascii_is_answered_415_as_such() {
    let f = fakes(true);
    let mut d = quote();
    let value = HeaderValue::from_bytes("application/json; charset=ütf".as_bytes()).unwrap();
    d.headers.insert("content-type", value);
    let outcome = f.app.handle(&d).await;
    let Outcome::Rejected(rejection) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(rejection.status, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(rejection.message.contains("not ASCII"), "{}", rejection.message);
    assert!(!rejection.message.contains("no Content-Type"), "{}", rejection.message);
}

#[tokio::test(start_paused = true)]
async fn the_whole_plan_shares_one_deadline_and_a_deal_with_no_time_left_is_dead_lettered_with_what_was_done() {
    // Each call takes 1 s; the invocation has 3.2 s, less the 500 ms margin: the contact upsert (1 s)
    // and the company search (1 s) finish, the company create is cut at 2.7 s, and no time is left
    // for the deal.
    let (app, slow, letters) = slow_app(Duration::from_secs(1));
    let mut d = delivery(
        Method::POST,
        "/hooks/website-lead",
        r#"{"email":"ada@acme-robotics.example","company":"Acme Robotics","website":"acme-robotics.example"}"#,
    );
    d.deadline = Some(SystemTime::now() + Duration::from_millis(3200));
    let started = tokio::time::Instant::now();
    let outcome = app.handle(&d).await;
    let elapsed = started.elapsed();
    assert!(elapsed <= Duration::from_millis(2750), "{elapsed:?}");
    assert!(
        matches!(&outcome, Outcome::DeadLettered { reason, .. } if reason.as_str() == "hubspot_unavailable"),
        "{outcome:?}"
    );
    // The create was abandoned at the cut, before the fake HubSpot answered it.
    assert_eq!(slow.inner.plan_calls(), ["contacts", "search"]);
    assert_eq!(slow.inner.calls(), 0, "no deal call was started");
    let sent = letters.sent();
    let hubspot = sent[0].hubspot.as_ref().unwrap();
    let done = hubspot.done.clone().unwrap();
    assert_eq!(
        (done.contact_ids, done.company_ids, done.deal_id),
        (vec![1001], vec![], None)
    );
    assert_eq!(
        hubspot.association_failures.len(),
        1,
        "the cut company create is listed"
    );
    assert_eq!(hubspot.association_failures[0]["call"], "company_create");
    assert_eq!(hubspot.association_failures[0]["reason"], "outcome_unknown");
}
