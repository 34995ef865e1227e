//! The pipeline on a route with `for_each`, with in-memory fakes: one deal per item, each record on
//! its own (mapping, HubSpot, dead letter, idempotency key), within one deadline.
//!
//! Faults covered: an item that does not map among good ones; HubSpot refusing one record; the
//! invocation's time running out halfway through the list; a repeat of the whole delivery after a
//! record failed (only that record is retried); a dead letter that cannot be written for one
//! record; a dry run.

use std::time::{Duration, SystemTime};

use super::*;
use crate::aws::MemoryIdempotency;
use crate::dead_letter::ForEachRecord;
use crate::idempotency::{Idempotency, IdempotencyKey, IdempotencyStore};

const MAPPING: &str = r#"
version: 1
routes:
  orders:
    source: json
    signature: none
    for_each: fields.orders
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Order {{ item.id }} ({{ item_index }} of {{ fields.orders | length }})"
        amount: { from: "{{ item.total }}", type: number }
"#;

fn mapping() -> Mapping {
    Mapping::from_yaml(MAPPING, "test").unwrap()
}

fn orders(body: &str) -> Delivery {
    delivery(Method::POST, "/hooks/orders", body)
}

const THREE: &str =
    r#"{"orders": [{"id": "A-1", "total": 10}, {"id": "A-2", "total": 20}, {"id": "A-3", "total": 30}]}"#;

fn dealname(draft: &DealDraft) -> String {
    draft.properties[0].value.to_wire_string()
}

fn statuses(outcome: &Outcome) -> Vec<(usize, &'static str)> {
    let Outcome::Records(records) = outcome else {
        panic!("not records: {outcome:?}");
    };
    records.iter().map(|r| (r.index, r.outcome.label())).collect()
}

fn rejected() -> HubSpotError {
    let raw = r#"{"status":"error","message":"Property values were not valid","category":"VALIDATION_ERROR"}"#;
    HubSpotError::Rejected {
        status: 400,
        body: serde_json::from_str(raw).unwrap(),
        raw: raw.into(),
    }
}

#[tokio::test]
async fn each_item_makes_its_own_deal_in_list_order() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    let outcome = f.app.handle(&orders(THREE)).await;
    assert_eq!(statuses(&outcome), [(0, "created"), (1, "created"), (2, "created")]);
    assert_eq!(outcome.status(), http::StatusCode::OK);
    let names: Vec<String> = f.deals.created().iter().map(dealname).collect();
    assert_eq!(
        names,
        ["Order A-1 (0 of 3)", "Order A-2 (1 of 3)", "Order A-3 (2 of 3)"]
    );
    assert!(f.letters.sent().is_empty());
}

#[tokio::test]
async fn a_record_that_fails_is_dead_lettered_alone_and_the_others_are_created() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    // Item 1 does not map; item 2 is refused by HubSpot (the second create call).
    f.deals.push_result(Ok(deal(7)));
    f.deals.push_result(Err(rejected()));
    let body = r#"{"orders": [{"id": "A-1", "total": 10}, {"id": "A-2", "total": "lots"}, {"id": "A-3", "total": 30},
                              {"id": "A-4", "total": 40}]}"#;
    let outcome = f.app.handle(&orders(body)).await;

    assert_eq!(
        statuses(&outcome),
        [
            (0, "created"),
            (1, "dead_lettered"),
            (2, "dead_lettered"),
            (3, "created")
        ]
    );
    assert_eq!(outcome.status(), http::StatusCode::ACCEPTED);
    let letters = f.letters.sent();
    assert_eq!(letters.len(), 2, "one dead letter per failed record");
    assert_eq!(letters[0].record, Some(ForEachRecord { index: 1, count: 4 }));
    assert_eq!(letters[0].reason.as_str(), "mapping_failed");
    assert_eq!(letters[0].errors[0].field.as_deref(), Some("properties.amount"));
    assert!(letters[0].deal_draft.is_none());
    assert_eq!(letters[1].record, Some(ForEachRecord { index: 2, count: 4 }));
    assert_eq!(letters[1].reason.as_str(), "hubspot_rejected");
    let draft = letters[1].deal_draft.as_ref().expect("the record's draft");
    assert_eq!(
        dealname(draft),
        "Order A-3 (2 of 4)",
        "the letter holds its own record's draft"
    );
    assert_eq!(
        letters[1].delivery.body_base64, letters[0].delivery.body_base64,
        "and the whole delivery"
    );
    let made: Vec<String> = f.deals.deals().iter().map(|(_, d)| dealname(d)).collect();
    assert_eq!(made, ["Order A-1 (0 of 4)", "Order A-4 (3 of 4)"]);
}

#[tokio::test]
async fn no_items_creates_nothing_and_stores_nothing() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    for body in [r#"{"orders": []}"#, r#"{"orders": null}"#, r#"{}"#] {
        let outcome = f.app.handle(&orders(body)).await;
        assert_eq!(outcome, Outcome::Records(vec![]), "{body}");
        assert_eq!(outcome.label(), "ignored");
        assert_eq!(crate::cli::exit_code(&outcome), crate::cli::EXIT_IGNORED);
    }
    assert_eq!(f.deals.calls(), 0);
    assert!(f.letters.sent().is_empty());
}

#[tokio::test]
async fn a_for_each_that_is_not_a_list_dead_letters_the_whole_delivery() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    let outcome = f.app.handle(&orders(r#"{"orders": {"id": "A-1"}}"#)).await;
    let Outcome::DeadLettered { reason, errors, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason.as_str(), "mapping_failed");
    assert_eq!(
        (errors[0].field.as_deref(), errors[0].code.as_str()),
        (Some("for_each"), "not_a_list")
    );
    let letters = f.letters.sent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].record, None, "about the delivery, not one record");
    assert_eq!(f.deals.calls(), 0);
}

#[tokio::test]
async fn more_items_than_the_limit_is_rejected_and_nothing_is_sent() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    let items: Vec<serde_json::Value> = (0..=crate::mapping::MAX_RECORDS)
        .map(|i| json!({"id": i, "total": 1}))
        .collect();
    let d = orders(&json!({ "orders": items }).to_string());
    let mut app = f.app;
    app.settings.max_body_bytes = 1 << 20;
    let outcome = app.handle(&d).await;
    let Outcome::Rejected(rejection) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((rejection.status.as_u16(), rejection.code), (400, "too_many_records"));
    assert!(
        rejection.message.contains("gave 101 items; at most 100"),
        "{}",
        rejection.message
    );
    assert_eq!(f.deals.calls(), 0);
    assert!(f.letters.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn records_that_would_start_past_the_deadline_less_the_margin_are_dead_lettered_unsent() {
    // Each deal takes 1 s; the invocation has 2.5 s and keeps 500 ms: records 0 and 1 fit, record 2
    // would start with 500 ms left.
    let (app, slow, letters) = slow_app_with(Duration::from_secs(1), mapping());
    let mut d = orders(THREE);
    d.deadline = Some(SystemTime::now() + Duration::from_millis(2500));
    let outcome = app.handle(&d).await;

    assert_eq!(
        statuses(&outcome),
        [(0, "created"), (1, "created"), (2, "dead_lettered")]
    );
    assert_eq!(slow.inner.calls(), 2, "record 2 was not sent");
    let sent = letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].record, Some(ForEachRecord { index: 2, count: 3 }));
    assert_eq!(sent[0].reason.as_str(), "hubspot_unavailable");
    assert_eq!(sent[0].errors[0].code, "no_time_left");
    assert!(sent[0].deal_draft.is_some(), "with its draft, for a redrive");
}

#[tokio::test]
async fn a_record_whose_dead_letter_cannot_be_written_asks_the_sender_to_retry() {
    let f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    f.letters.set_failing(true);
    let body = r#"{"orders": [{"id": "A-1", "total": 10}, {"id": "A-2", "total": "lots"}]}"#;
    let outcome = f.app.handle(&orders(body)).await;
    assert_eq!(statuses(&outcome), [(0, "created"), (1, "retry_later")]);
    assert_eq!(outcome.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(crate::cli::exit_code(&outcome), crate::cli::EXIT_RETRY_LATER);
}

#[tokio::test]
async fn a_dry_run_plans_every_record_and_sends_nothing() {
    let f = fakes_with_mapping(true, Credentials::from_token("tok-1".into()), mapping());
    let body = r#"{"orders": [{"id": "A-1", "total": 10}, {"id": "A-2", "total": "lots"}]}"#;
    let outcome = f.app.handle(&orders(body)).await;
    assert_eq!(statuses(&outcome), [(0, "dry_run"), (1, "dead_lettered")]);
    let Outcome::Records(records) = &outcome else {
        unreachable!()
    };
    let Outcome::DryRun(calls) = &records[0].outcome else {
        unreachable!()
    };
    let request = crate::hubspot::plan::deal_request_of(calls).expect("the deal's call");
    assert!(
        request.body.to_string().contains("Order A-1 (0 of 2)"),
        "{}",
        request.body
    );
    assert_eq!(f.deals.calls(), 0);
    let all_planned = f.app.handle(&orders(THREE)).await;
    assert_eq!(all_planned.label(), "dry_run");
    assert_eq!(crate::cli::exit_code(&all_planned), crate::cli::EXIT_OK);
}

#[tokio::test]
async fn a_repeat_of_the_delivery_retries_only_the_record_that_failed() {
    let mut f = fakes_with_mapping(false, Credentials::from_token("tok-1".into()), mapping());
    let store = Arc::new(MemoryIdempotency::new());
    f.app = f.app.with_idempotency(Idempotency {
        store: store.clone(),
        ttl: Duration::from_secs(3600),
    });
    f.deals.push_result(Ok(deal(7)));
    f.deals.push_result(Err(rejected()));
    f.deals.push_result(Ok(deal(9)));
    let first = f.app.handle(&orders(THREE)).await;
    assert_eq!(statuses(&first), [(0, "created"), (1, "dead_lettered"), (2, "created")]);

    let second = f.app.handle(&orders(THREE)).await;
    let Outcome::Records(records) = &second else {
        panic!("{second:?}");
    };
    assert!(
        matches!(records[0].outcome, Outcome::Replayed(ref s) if s.body["dealId"] == 7),
        "{second:?}"
    );
    assert!(
        matches!(records[1].outcome, Outcome::Created(_)),
        "the failed record is retried: {second:?}"
    );
    assert!(
        matches!(records[2].outcome, Outcome::Replayed(ref s) if s.body["dealId"] == 9),
        "{second:?}"
    );
    let names: Vec<String> = f.deals.created().iter().map(dealname).collect();
    assert_eq!(
        names,
        [
            "Order A-1 (0 of 3)",
            "Order A-2 (1 of 3)",
            "Order A-3 (2 of 3)",
            "Order A-2 (1 of 3)"
        ],
        "no second deal for records 0 and 2"
    );

    let third = f.app.handle(&orders(THREE)).await;
    let response = third.to_response("r");
    assert_eq!(
        response.headers()[crate::outcome::REPLAY_HEADER],
        "true",
        "all replayed"
    );
    assert_eq!(f.deals.calls(), 4, "nothing more sent");
    let delivery_key = IdempotencyKey::for_delivery("orders", None, THREE.as_bytes());
    assert!(
        matches!(
            store
                .claim(
                    &delivery_key.for_record(1),
                    "someone",
                    SystemTime::now() + Duration::from_secs(5),
                    SystemTime::now() + Duration::from_secs(60)
                )
                .await,
            Ok(crate::idempotency::Claim::Completed(_))
        ),
        "each record is kept under its own key"
    );
}
