//! Idempotency against DynamoDB on the emulator: the store's rules one call at a time, concurrent
//! claims, outages, and the whole handler receiving the same delivery twice (the fault suite,
//! `faults.rs`, repeats deliveries after every fault and at once).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use dealhook::aws::DynamoDbIdempotency;
use dealhook::idempotency::{Claim, IdempotencyKey, IdempotencyStore, StoredResponse};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Options, TestApp, spawn_app_with};
use crate::moto;
use crate::template_schema::{idempotency_table_schema, idempotency_ttl_attribute};

/// Creates a table with the key schema and TTL attribute template.yaml declares; returns its name.
pub async fn create_table(cfg: &SdkConfig) -> String {
    let (attributes, key) = idempotency_table_schema();
    moto::create_table(cfg, &attributes, &key, &idempotency_ttl_attribute()).await
}

async fn store() -> DynamoDbIdempotency {
    let sdk = moto::sdk_config().await;
    let table = create_table(&sdk).await;
    DynamoDbIdempotency::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

fn key(name: &str) -> IdempotencyKey {
    IdempotencyKey::for_delivery("quotes", Some(name), b"")
}

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn created(deal_id: u64) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: json!({"status": "created", "dealId": deal_id}),
    }
}

#[tokio::test]
async fn a_claim_locks_the_key_and_completion_stores_the_response_for_repeats() {
    let store = store().await;
    let k = key("evt_1");
    let until = in_secs(30);

    assert_eq!(
        store.claim(&k, "a", until, in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );
    match store.claim(&k, "b", in_secs(30), in_secs(3600)).await.unwrap() {
        Claim::InProgress { until: seen } => {
            let off = seen.duration_since(until).unwrap_or_else(|e| e.duration());
            assert!(
                off < Duration::from_millis(2),
                "the holder's deadline, to the millisecond: {off:?}"
            );
        }
        other => panic!("expected in progress, got {other:?}"),
    }
    store.complete(&k, "a", &created(42), in_secs(3600)).await.unwrap();
    assert_eq!(
        store.claim(&k, "c", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Completed(created(42))
    );
}

#[tokio::test]
async fn a_released_key_can_be_claimed_again() {
    let store = store().await;
    let k = key("evt_2");
    assert_eq!(
        store.claim(&k, "a", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );
    store.release(&k, "a").await.unwrap();
    assert_eq!(
        store.claim(&k, "b", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn a_lapsed_lock_is_taken_over_and_its_old_owner_can_no_longer_settle_it() {
    let store = store().await;
    let k = key("evt_3");
    let past = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(
        store.claim(&k, "crashed", past, in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(&k, "next", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );

    let err = store
        .complete(&k, "crashed", &created(1), in_secs(3600))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer this attempt's"), "{err}");
    store
        .release(&k, "crashed")
        .await
        .expect("releasing a lock that is not ours is a no-op");
    assert!(
        matches!(
            store.claim(&k, "third", in_secs(30), in_secs(3600)).await.unwrap(),
            Claim::InProgress { .. }
        ),
        "the new owner's lock survived the old owner's release"
    );
}

#[tokio::test]
async fn a_completed_record_cannot_be_released() {
    let store = store().await;
    let k = key("evt_4");
    store.claim(&k, "a", in_secs(30), in_secs(3600)).await.unwrap();
    store.complete(&k, "a", &created(7), in_secs(3600)).await.unwrap();
    store.release(&k, "a").await.unwrap();
    assert_eq!(
        store.claim(&k, "b", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Completed(created(7))
    );
}

#[tokio::test]
async fn an_expired_record_counts_as_absent_before_dynamodb_deletes_it() {
    // DynamoDB's TTL deletes items up to days late: the claim itself must ignore expired records.
    let store = store().await;
    let k = key("evt_5");
    let expired = SystemTime::now() - Duration::from_secs(5);
    store.claim(&k, "a", in_secs(30), expired).await.unwrap();
    store.complete(&k, "a", &created(1), expired).await.unwrap();
    assert_eq!(
        store.claim(&k, "b", in_secs(30), in_secs(3600)).await.unwrap(),
        Claim::Acquired
    );
}

/// Twelve concurrent claims of one key: exactly one is acquired, the others see it in progress.
///
/// DynamoDB makes a conditional write atomic per item, so this holds there by construction; what this test
/// checks is that our condition is the one that makes it hold. moto, the emulator, evaluates a condition and
/// then writes without a lock per item, so on a loaded machine two of its request threads can both pass
/// the check (seen twice, each time under heavy parallel builds). A run with two winners is therefore tried
/// again on a fresh key, up to three runs: a wrong condition (none, or one that lets an in-progress record
/// be taken) makes every run have many winners and still fails.
#[tokio::test]
async fn of_many_concurrent_claims_exactly_one_wins() {
    let store = Arc::new(store().await);
    let mut runs = Vec::new();
    for run in 0..3 {
        let k = key(&format!("evt_6_{run}"));
        let claims = futures_util::future::join_all((0..12).map(|i| {
            let store = Arc::clone(&store);
            let k = k.clone();
            tokio::spawn(async move { store.claim(&k, &format!("owner-{i}"), in_secs(30), in_secs(3600)).await })
        }))
        .await;
        let claims: Vec<Claim> = claims.into_iter().map(|c| c.unwrap().unwrap()).collect();
        assert!(
            claims
                .iter()
                .all(|c| matches!(c, Claim::Acquired | Claim::InProgress { .. })),
            "{claims:?}"
        );
        let won = claims.iter().filter(|c| **c == Claim::Acquired).count();
        runs.push(won);
        if won == 1 {
            return;
        }
    }
    panic!("no run had exactly one winner: winners per run {runs:?}");
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_it() {
    let sdk = moto::sdk_config().await;
    let store = DynamoDbIdempotency::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    let err = store
        .claim(&key("x"), "a", in_secs(30), in_secs(3600))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no-such-table") && text.contains("ResourceNotFound"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreachable_dynamodb_fails_within_seconds() {
    let sdk = moto::unreachable_endpoint_config().await;
    let store = DynamoDbIdempotency::new(aws_sdk_dynamodb::Client::new(&sdk), "t");
    let started = std::time::Instant::now();
    let err = store
        .claim(&key("x"), "a", in_secs(30), in_secs(3600))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not reach"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

/// The harness app, with idempotency records in a fresh table (reached through `sdk`, e.g. unreachable).
async fn app_with_table(sdk: Option<SdkConfig>) -> TestApp {
    spawn_app_with(Options {
        idempotency: true,
        idempotency_sdk: sdk,
        ..Options::default()
    })
    .await
}

const QUOTE: &[u8] = br#"{"company":"Acme","plan":"team","budget":"1,000","email":"ada@example.com"}"#;

async fn hubspot_creates_deals(t: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"dealId": 555, "portalId": 62515})))
        .mount(&t.hubspot)
        .await;
}

async fn deals_requested(t: &TestApp) -> usize {
    let requests = t.hubspot.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == "/deals/v1/deal/").count()
}

#[tokio::test]
async fn the_same_delivery_twice_in_a_row_creates_one_deal_and_repeats_the_answer() {
    let t = app_with_table(None).await;
    hubspot_creates_deals(&t).await;

    let first = t.post("website-quote", "application/json", QUOTE).await;
    let second = t.post("website-quote", "application/json", QUOTE).await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json, first.json);
    assert_eq!(second.json["dealId"], 555);
    assert_eq!(second.headers["x-dealhook-idempotent-replay"], "true");
    assert!(!first.headers.contains_key("x-dealhook-idempotent-replay"));
    assert_eq!(deals_requested(&t).await, 1);
    assert!(t.dead_letters().await.is_empty());
}
