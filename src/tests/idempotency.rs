//! The pipeline with an idempotency store (in memory): repeats, concurrency, failures and outages.

use std::time::{Duration, SystemTime};

use super::*;
use crate::aws::MemoryIdempotency;
use crate::idempotency::{Idempotency, IdempotencyKey, IdempotencyStore};
use crate::outcome::REPLAY_HEADER;

struct Once {
    f: Fakes,
    store: Arc<MemoryIdempotency>,
}

fn once() -> Once {
    once_with(fakes(false))
}

fn once_with(mut f: Fakes) -> Once {
    let store = Arc::new(MemoryIdempotency::new());
    f.app = f.app.with_idempotency(Idempotency {
        store: store.clone(),
        ttl: Duration::from_secs(3600),
    });
    Once { f, store }
}

fn quote_key() -> IdempotencyKey {
    IdempotencyKey::for_delivery("website-quote", None, quote().body.as_ref())
}

#[tokio::test]
async fn a_repeat_of_a_created_deal_gets_the_same_answer_without_calling_hubspot() {
    let o = once();
    let first = o.f.app.handle(&quote()).await;
    let second = o.f.app.handle(&quote()).await;

    assert!(matches!(first, Outcome::Created(ref d) if d.deal_id == 1), "{first:?}");
    match &second {
        Outcome::Replayed(stored) => {
            assert_eq!(stored.status, 200);
            assert_eq!(stored.body, first.body(), "the very body first answered");
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert_eq!(second.to_response("r2").headers()[REPLAY_HEADER], "true");
    assert_eq!(o.f.deals.calls(), 1, "HubSpot was called once");
    let record = o
        .store
        .record(quote_key().as_str())
        .expect("a record under the body's hash");
    assert!(record.response.is_some());
}

#[tokio::test]
async fn a_different_body_on_the_same_endpoint_is_a_different_delivery() {
    let o = once();
    o.f.app.handle(&quote()).await;
    let other = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Other","plan":"team"}"#,
    );
    let outcome = o.f.app.handle(&other).await;
    assert!(
        matches!(outcome, Outcome::Created(ref d) if d.deal_id == 2),
        "{outcome:?}"
    );
    assert_eq!(o.store.keys().len(), 2);
}

/// A route whose deliveries carry a provider id (`webhook-id`), and no signature to compute.
fn standard_webhooks_app() -> Once {
    let mapping = Mapping::from_yaml(
        "version: 1\nroutes:\n  billing:\n    source: standard-webhooks\n    signature: none\n    deal:\n      pipeline: default\n      dealstage: closedwon\n      properties:\n        dealname: \"{{ fields.name }}\"\n",
        "test",
    )
    .unwrap();
    once_with(fakes_with_mapping(
        false,
        Credentials::from_token("tok-1".into()),
        mapping,
    ))
}

fn webhook(id: &str, body: &str) -> Delivery {
    let mut d = delivery(Method::POST, "/hooks/billing", body);
    d.headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    d
}

#[tokio::test]
async fn the_providers_delivery_id_is_the_key_even_when_the_body_differs() {
    let o = standard_webhooks_app();
    let first =
        o.f.app
            .handle(&webhook("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", r#"{"name":"A"}"#))
            .await;
    // Some senders re-serialise (or re-sign with a new timestamp) on retry: the id still matches.
    let again =
        o.f.app
            .handle(&webhook("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", r#"{"name": "A"}"#))
            .await;
    let other = o.f.app.handle(&webhook("msg_other", r#"{"name":"A"}"#)).await;

    assert!(matches!(first, Outcome::Created(_)), "{first:?}");
    assert!(matches!(again, Outcome::Replayed(_)), "{again:?}");
    assert!(matches!(other, Outcome::Created(_)), "{other:?}");
    assert_eq!(o.f.deals.calls(), 2);
    assert!(o.store.record("billing#id:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W").is_some());
}

#[tokio::test]
async fn concurrent_repeats_create_one_deal_and_the_others_are_told_to_retry() {
    let slow = Arc::new(SlowDeals {
        delay: Duration::from_millis(200),
        inner: MemoryDeals::default(),
    });
    let store = Arc::new(MemoryIdempotency::new());
    let letters = Arc::new(MemoryDeadLetters::default());
    let app = App::new(
        Settings {
            max_body_bytes: 1024,
            dry_run: false,
            skip_signatures: false,
            retry: retry_policy(),
        },
        Arc::new(crate::tests::showcase().unwrap()),
        Arc::new(MemorySecrets::new(Credentials::from_token("tok-1".into()))),
        slow.clone(),
        letters.clone(),
    )
    .with_idempotency(Idempotency {
        store: store.clone(),
        ttl: Duration::from_secs(3600),
    });
    let mut delivery = quote();
    delivery.deadline = Some(SystemTime::now() + Duration::from_secs(30));

    let outcomes = futures_util::future::join_all((0..8).map(|_| app.handle(&delivery))).await;

    let created = outcomes.iter().filter(|o| matches!(o, Outcome::Created(_))).count();
    let busy: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::InProgress { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        })
        .collect();
    assert_eq!(created, 1, "{outcomes:?}");
    assert_eq!(busy.len(), 7, "{outcomes:?}");
    assert!(
        busy.iter().all(|s| (1..=30).contains(s)),
        "retry after the lock lapses at the latest: {busy:?}"
    );
    assert_eq!(slow.inner.deals().len(), 1);
    assert!(letters.sent().is_empty());
    // And once done, a repeat is a replay.
    assert!(matches!(app.handle(&delivery).await, Outcome::Replayed(_)));
}

#[tokio::test]
async fn a_failure_releases_the_key_so_a_repeat_can_create_the_deal() {
    let o = once();
    o.f.deals.push_result(Err(HubSpotError::Rejected {
        status: 400,
        body: Default::default(),
        raw: "{}".into(),
    }));
    let first = o.f.app.handle(&quote()).await;
    assert!(matches!(first, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "hubspot_rejected"));
    assert_eq!(o.store.record(quote_key().as_str()), None, "released");

    let second = o.f.app.handle(&quote()).await;
    assert!(matches!(second, Outcome::Created(_)), "{second:?}");
    assert_eq!(o.f.deals.deals().len(), 1);
}

#[tokio::test]
async fn an_unknown_outcome_is_kept_so_a_repeat_cannot_double_the_deal() {
    for error in [
        HubSpotError::OutcomeUnknown {
            status: None,
            message: "timed out after sending".into(),
        },
        unavailable(Some(500)),
    ] {
        let o = once();
        o.f.deals.push_result(Err(error.clone()));
        let first = o.f.app.handle(&quote()).await;
        let Outcome::DeadLettered { dead_letter_id, .. } = &first else {
            panic!("{error:?}: expected a dead letter, got {first:?}");
        };
        let second = o.f.app.handle(&quote()).await;
        match &second {
            Outcome::Replayed(stored) => {
                assert_eq!(stored.status, 202);
                assert_eq!(stored.body["deadLetterId"], dead_letter_id.as_str(), "{error:?}");
            }
            other => panic!("{error:?}: expected a replay, got {other:?}"),
        }
        assert_eq!(o.f.deals.calls(), 1, "{error:?}: HubSpot was not asked again");
        assert_eq!(o.f.letters.sent().len(), 1, "{error:?}: one dead letter");
    }
}

#[tokio::test]
async fn a_secret_outage_releases_the_key() {
    let o = once();
    o.f.secrets.set_failing(true);
    let first = o.f.app.handle(&quote()).await;
    assert!(matches!(first, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "secret_unavailable"));
    o.f.secrets.set_failing(false);
    assert!(matches!(o.f.app.handle(&quote()).await, Outcome::Created(_)));
}

#[tokio::test]
async fn a_store_that_cannot_be_claimed_dead_letters_the_delivery_and_calls_no_one() {
    let o = once();
    o.store.set_failing_claims(true);
    let outcome = o.f.app.handle(&quote()).await;
    assert!(
        matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "idempotency_unavailable"),
        "{outcome:?}"
    );
    assert_eq!(o.f.deals.calls(), 0);
    let letters = o.f.letters.sent();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].deal_draft.is_some(), "the letter can be replayed as is");
    assert_eq!(letters[0].delivery.route, "website-quote");
}

#[tokio::test]
async fn a_store_and_queue_both_down_asks_the_sender_to_retry() {
    let o = once();
    o.store.set_failing_claims(true);
    o.f.letters.set_failing(true);
    let outcome = o.f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::RetryLater { .. }), "{outcome:?}");
    assert_eq!(o.f.deals.calls(), 0);
}

#[tokio::test]
async fn a_store_lost_after_the_deal_was_created_still_answers_created() {
    let o = once();
    o.store.set_failing_settles(true);
    let outcome = o.f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert!(o.f.letters.sent().is_empty());
}

#[tokio::test]
async fn a_store_lost_before_a_failed_attempt_is_released_still_answers_the_dead_letter() {
    let o = once();
    o.store.set_failing_settles(true);
    o.f.deals.push_result(Err(HubSpotError::Rejected {
        status: 400,
        body: Default::default(),
        raw: "{}".into(),
    }));
    let outcome = o.f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::DeadLettered { ref reason, .. } if reason.as_str() == "hubspot_rejected"));
    assert_eq!(o.f.letters.sent().len(), 1);
    // The lock stays until it lapses at the deadline (60 s locally); nothing is stored as completed.
    let record = o.store.record(quote_key().as_str()).expect("the lock was not released");
    assert_eq!(record.response, None);
}

#[tokio::test]
async fn an_unknown_outcome_whose_dead_letter_fails_is_released_for_the_retry() {
    let o = once();
    o.f.deals.push_result(Err(HubSpotError::OutcomeUnknown {
        status: None,
        message: "reset".into(),
    }));
    o.f.letters.set_failing(true);
    let first = o.f.app.handle(&quote()).await;
    assert!(matches!(first, Outcome::RetryLater { .. }), "{first:?}");
    // Nothing was stored anywhere: the sender's retry is the only copy, and it must be processed.
    assert_eq!(o.store.record(quote_key().as_str()), None);
    o.f.letters.set_failing(false);
    assert!(matches!(o.f.app.handle(&quote()).await, Outcome::Created(_)));
}

#[tokio::test]
async fn a_lock_left_by_a_crashed_attempt_lapses_at_its_deadline() {
    let o = once();
    let key = quote_key();
    let now = SystemTime::now();
    // An attempt that took the lock and died: its lock ran until a deadline now past.
    o.store
        .claim(
            &key,
            "crashed",
            now - Duration::from_millis(1),
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let outcome = o.f.app.handle(&quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");

    // While a live attempt holds it, a repeat is told when to come back.
    let live = IdempotencyKey::for_delivery("website-quote", None, b"{\"company\":\"Live\"}");
    o.store
        .claim(
            &live,
            "live",
            now + Duration::from_secs(20),
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let busy =
        o.f.app
            .handle(&delivery(
                Method::POST,
                "/hooks/website-quote",
                "{\"company\":\"Live\"}",
            ))
            .await;
    assert!(
        matches!(busy, Outcome::InProgress { retry_after_secs } if (19..=20).contains(&retry_after_secs)),
        "{busy:?}"
    );
}

#[tokio::test]
async fn the_lock_lasts_until_the_invocation_deadline() {
    let o = once();
    o.store.set_failing_settles(true); // keep the lock as the attempt left it
    let deadline = SystemTime::now() + Duration::from_secs(42);
    let mut d = quote();
    d.deadline = Some(deadline);
    o.f.app.handle(&d).await;
    let record = o.store.record(quote_key().as_str()).unwrap();
    assert_eq!(record.lock_until, deadline);
    let ttl_left = record.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(
        ttl_left > Duration::from_secs(3500) && ttl_left <= Duration::from_secs(3600),
        "{ttl_left:?}"
    );
}

#[tokio::test]
async fn rejections_ignores_and_dry_runs_never_touch_the_store() {
    let o = once();
    o.f.app.handle(&delivery(Method::GET, "/hooks/website-quote", "")).await;
    o.f.app
        .handle(&delivery(Method::POST, "/hooks/website-quote", "{broken"))
        .await;
    assert_eq!(o.store.claims(), 0);

    let dry = once_with(fakes(true));
    assert!(matches!(dry.f.app.handle(&quote()).await, Outcome::DryRun(_)));
    assert_eq!(dry.store.claims(), 0);
}
