//! Queue mode with fakes: the HTTP side puts a mapped delivery on the work queue and answers `202
//! queued`; the worker (fed an SQS event built from the queued items) makes the deals, leaves what may
//! pass on the queue (after HubSpot's `Retry-After`), dead-letters it on the last receive, and keeps
//! any message it cannot read. (Over the real SDK against moto: tests/api.)

use std::time::Duration;

use super::*;
use crate::queue::{MemoryQueue, WorkItem};
use crate::worker::WorkerSetup;

struct Queued {
    http: App,
    worker: App,
    queue: Arc<MemoryQueue>,
    deals: Arc<MemoryDeals>,
    letters: Arc<MemoryDeadLetters>,
}

/// The HTTP function (queue mode) and the worker, sharing one HubSpot, one queue and one dead-letter queue.
fn queued(max_receive_count: Option<u32>) -> Queued {
    let queue = Arc::new(MemoryQueue::new());
    let deals = Arc::new(MemoryDeals::default());
    let letters = Arc::new(MemoryDeadLetters::default());
    let app = || {
        App::new(
            Settings {
                max_body_bytes: 1024,
                dry_run: false,
                skip_signatures: false,
                retry: retry_policy(),
            },
            Arc::new(crate::tests::showcase().unwrap()),
            Arc::new(MemorySecrets::new(Credentials::from_token("tok-queue-secret".into()))),
            deals.clone(),
            letters.clone(),
        )
    };
    Queued {
        http: app().with_queue(queue.clone()),
        worker: app().with_worker(WorkerSetup {
            queue: queue.clone(),
            payloads: None,
            max_receive_count,
        }),
        queue,
        deals,
        letters,
    }
}

/// The SQS event the event source mapping would hand the worker for `items`, each received `receives` times.
fn sqs_event(items: &[WorkItem], receives: u32) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            json!({
                "messageId": format!("m-{i}"),
                "receiptHandle": format!("r-{i}"),
                "body": serde_json::to_string(item).unwrap(),
                "attributes": {"ApproximateReceiveCount": receives.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn invocation() -> crate::inbound::Invocation {
    crate::inbound::Invocation {
        request_id: "worker-req".into(),
        deadline: None,
        xray_trace_id: None,
    }
}

#[tokio::test]
async fn queue_mode_answers_queued_and_the_worker_makes_the_deal() {
    let q = queued(Some(5));
    let outcome = q.http.handle(&quote()).await;
    let Outcome::Queued { id } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(outcome.status().as_u16(), 202);
    assert_eq!(outcome.body()["status"], "queued");
    assert!(q.deals.created().is_empty(), "the HTTP side sends nothing to HubSpot");
    let items = q.queue.items();
    assert_eq!(items.len(), 1);
    assert_eq!(&items[0].id, id);
    assert!(items[0].idempotency_key.starts_with("website-quote#sha256:"));

    let response = q.worker.handle_sqs_event(&sqs_event(&items, 1), &invocation()).await;

    assert!(failed_ids(&response).is_empty());
    assert_eq!(q.deals.created().len(), 1);
    assert_eq!(q.deals.created()[0].dealstage, "presentationscheduled");
    assert!(q.letters.sent().is_empty());
}

#[tokio::test]
async fn a_delivery_that_does_not_map_is_dead_lettered_at_once_and_not_queued() {
    let q = queued(Some(5));
    let broken = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Acme","plan":"team","budget":"lots"}"#,
    );
    let outcome = q.http.handle(&broken).await;
    assert!(
        matches!(
            outcome,
            Outcome::DeadLettered {
                reason: crate::domain::Reason::MappingFailed,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(q.queue.items().is_empty());
    assert_eq!(q.letters.sent().len(), 1);
}

#[tokio::test]
async fn a_queue_that_cannot_take_the_item_asks_the_sender_to_retry() {
    let q = queued(Some(5));
    q.queue.fail(true);
    let outcome = q.http.handle(&quote()).await;
    assert_eq!(outcome.status().as_u16(), 503, "{outcome:?}");
    assert!(q.letters.sent().is_empty() && q.deals.created().is_empty());
}

#[tokio::test]
async fn secret_values_are_scrubbed_from_the_work_item() {
    let q = queued(Some(5));
    let leaky = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"tok-queue-secret","plan":"team","budget":"1,000"}"#,
    );
    assert!(matches!(q.http.handle(&leaky).await, Outcome::Queued { .. }));
    let item = q.queue.items().remove(0);
    let text = serde_json::to_string(&item).unwrap();
    let body = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &item.delivery.body_base64).unwrap();
    assert!(!text.contains("tok-queue-secret") && !String::from_utf8_lossy(&body).contains("tok-queue-secret"));
    assert!(item.delivery.body_redacted);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_leaves_the_message_on_the_queue_for_retry_after() {
    let q = queued(Some(5));
    q.http.handle(&quote()).await;
    q.deals.fail_with(HubSpotError::RateLimited {
        retry_after: Some(Duration::from_secs(40)),
        body: HubSpotErrorBody::default(),
    });

    let response = q
        .worker
        .handle_sqs_event(&sqs_event(&q.queue.items(), 1), &invocation())
        .await;

    assert_eq!(failed_ids(&response), ["m-0"]);
    assert_eq!(q.queue.delays(), [("r-0".to_owned(), Duration::from_secs(40))]);
    assert!(
        q.letters.sent().is_empty(),
        "not dead-lettered while the daily limit is not spent"
    );
}

#[tokio::test(start_paused = true)]
async fn on_the_last_receive_a_failure_that_may_pass_is_dead_lettered_with_its_reason() {
    let q = queued(Some(5));
    q.http.handle(&quote()).await;
    q.deals.fail_with(HubSpotError::Unavailable {
        status: Some(503),
        message: "HTTP 503".into(),
    });

    let response = q
        .worker
        .handle_sqs_event(&sqs_event(&q.queue.items(), 5), &invocation())
        .await;

    assert!(failed_ids(&response).is_empty(), "done: the dead letter holds it");
    let letters = q.letters.sent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason.as_str(), "hubspot_unavailable");
}

/// A 429 on the last receive is not a dead letter while the daily limit is not spent: the item is put
/// on the queue anew (its receive count starts again), delivered after HubSpot's `Retry-After`.
#[tokio::test(start_paused = true)]
async fn a_rate_limit_on_the_last_receive_queues_the_item_anew() {
    let q = queued(Some(5));
    q.http.handle(&quote()).await;
    let first = q.queue.items();
    q.deals.fail_with(HubSpotError::RateLimited {
        retry_after: Some(Duration::from_secs(40)),
        body: HubSpotErrorBody::default(),
    });

    let response = q.worker.handle_sqs_event(&sqs_event(&first, 5), &invocation()).await;

    assert!(failed_ids(&response).is_empty(), "done: a new message carries it");
    assert!(q.letters.sent().is_empty(), "no dead letter");
    let items = q.queue.items();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (&items[1].id, &items[1].idempotency_key, &items[1].delivery.body_base64),
        (&first[0].id, &first[0].idempotency_key, &first[0].delivery.body_base64),
        "the same delivery, under the same key"
    );
    assert_eq!(
        q.queue.delays(),
        [(format!("requeued:{}", first[0].id), Duration::from_secs(40))]
    );
    // A spent daily limit is dead-lettered (it resets at midnight).
    q.deals.fail_with(HubSpotError::RateLimited {
        retry_after: Some(crate::hubspot::DAILY_LIMIT_WAIT),
        body: HubSpotErrorBody::default(),
    });
    q.worker.handle_sqs_event(&sqs_event(&first, 5), &invocation()).await;
    assert_eq!(q.letters.sent()[0].reason.as_str(), "hubspot_rate_limited");
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_at_once_not_retried() {
    let q = queued(Some(5));
    q.http.handle(&quote()).await;
    q.deals.fail_with(HubSpotError::Rejected {
        status: 400,
        body: HubSpotErrorBody::default(),
        raw: String::new(),
    });

    let response = q
        .worker
        .handle_sqs_event(&sqs_event(&q.queue.items(), 1), &invocation())
        .await;

    assert!(failed_ids(&response).is_empty());
    assert_eq!(q.letters.sent()[0].reason.as_str(), "hubspot_rejected");
}

#[tokio::test]
async fn a_message_that_is_not_an_envelope_is_kept_for_the_redrive() {
    let q = queued(Some(5));
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "bad-1", "body": "not json", "attributes": {}, "messageAttributes": {}},
        {"messageId": "bad-2", "body": "{\"version\": 99, \"id\": \"x\"}", "attributes": {}, "messageAttributes": {}},
    ]}))
    .unwrap();
    let response = q.worker.handle_sqs_event(&event, &invocation()).await;
    assert_eq!(failed_ids(&response), ["bad-1", "bad-2"]);
    assert!(q.deals.created().is_empty() && q.letters.sent().is_empty());
    // Not an SQS batch at all: every message id it names is kept.
    let answer = q
        .worker
        .handle_sqs_value(json!({"Records": [{"messageId": "odd", "body": 7}]}), &invocation())
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], "odd");
}

#[tokio::test]
async fn a_dead_letter_moved_to_the_work_queue_is_run_again_into_a_deal() {
    let q = queued(Some(5));
    // Sync mode dead-letters a delivery HubSpot refused; the cause is fixed; SQS's move task puts the
    // letter on the work queue, and the worker reads it as a work item.
    let sync = fakes(false);
    sync.deals.fail_with(HubSpotError::Rejected {
        status: 400,
        body: HubSpotErrorBody::default(),
        raw: String::new(),
    });
    assert!(matches!(sync.app.handle(&quote()).await, Outcome::DeadLettered { .. }));
    let letter = sync.letters.sent().remove(0);
    assert!(
        letter
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with("website-quote#sha256:")),
        "the letter keeps the key it was received under: {:?}",
        letter.idempotency_key
    );
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "dl-1", "body": serde_json::to_string(&letter).unwrap(),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}},
    ]}))
    .unwrap();

    let response = q.worker.handle_sqs_event(&event, &invocation()).await;

    assert!(failed_ids(&response).is_empty());
    assert_eq!(q.deals.created().len(), 1);
}
