//! The metrics of real deliveries through the pipeline with in-memory fakes: every line is checked
//! against the EMF specification (tests/common/emf.rs) and the counts against what happened.
//!
//! Cases: a deal created; a 429 then a deal (retry, throttle, status classes); a delivery that does
//! not map (dead letter by reason); HubSpot refusing the deal; a dead letter that cannot be written;
//! an endpoint the mapping does not have (the path's text never becomes a dimension); a `for_each`
//! delivery (records, deals, dead letters); association failures reported with the deal; a malformed
//! event; the cold start counted once; no payload value or secret in any line; the worker's queue lag.

use std::sync::Mutex;

use super::*;
use crate::metrics::capture;

#[path = "../../tests/common/emf.rs"]
#[allow(dead_code)]
pub(crate) mod emf;

use emf::{Point, samples, sum};

/// Runs `delivery` through `app` as one invocation and gives its outcome and the lines' points.
async fn measured(app: &App, buffer: &Mutex<Vec<u8>>, delivery: &Delivery) -> (Outcome, Vec<Point>, String) {
    let start = buffer.lock().unwrap().len();
    let outcome = app.metrics().scope("req-metrics", app.handle(delivery)).await;
    let text = String::from_utf8(buffer.lock().unwrap()[start..].to_vec()).unwrap();
    let points = emf::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (outcome, points, text)
}

fn with_metrics(f: Fakes) -> (Fakes, Arc<Mutex<Vec<u8>>>) {
    let (metrics, buffer) = capture::metrics();
    let Fakes {
        app,
        deals,
        secrets,
        letters,
    } = f;
    (
        Fakes {
            app: app.with_metrics(metrics),
            deals,
            secrets,
            letters,
        },
        buffer,
    )
}

fn rate_limited() -> HubSpotError {
    HubSpotError::RateLimited {
        retry_after: Some(Duration::from_millis(10)),
        body: HubSpotErrorBody::default(),
    }
}

const QUOTE: &[(&str, &str)] = &[("outcome", "created")];

#[tokio::test]
async fn a_created_deal_counts_one_delivery_one_deal_and_each_hubspot_call() {
    let (f, buffer) = with_metrics(fakes(false));
    let (outcome, points, text) = measured(&f.app, &buffer, &quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(sum(&points, "Deliveries", QUOTE), 1.0, "{text}");
    assert_eq!(
        sum(
            &points,
            "Deliveries",
            &[("endpoint", "website-quote"), ("outcome", "created")]
        ),
        1.0
    );
    assert_eq!(sum(&points, "DealsCreated", &[]), 1.0);
    assert_eq!(sum(&points, "DealsCreated", &[("endpoint", "website-quote")]), 1.0);
    // The deal is the only call of this route's plan.
    assert_eq!(
        sum(&points, "HubSpotCalls", &[("call", "deal"), ("status_class", "2xx")]),
        1.0
    );
    assert_eq!(samples(&points, "HubSpotLatency", &[("call", "deal")]), 1);
    assert_eq!(samples(&points, "HubSpotLatency", &[]), 1);
    for absent in [
        "DeadLetters",
        "HubSpotRetries",
        "HubSpotThrottled",
        "AssociationFailures",
    ] {
        assert!(points.iter().all(|p| p.name != absent), "{absent} in {text}");
    }
    assert!(points.iter().all(|p| p.namespace == "dealhook-test"));
    // Every line carries the invocation's request id.
    for line in text.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["requestId"], "req-metrics");
    }
}

#[tokio::test]
async fn the_cold_start_is_counted_on_the_first_invocation_only() {
    let (f, buffer) = with_metrics(fakes(false));
    let (_, first, _) = measured(&f.app, &buffer, &quote()).await;
    let (_, second, text) = measured(&f.app, &buffer, &quote()).await;
    assert_eq!(sum(&first, "ColdStarts", &[]), 1.0);
    assert!(second.iter().all(|p| p.name != "ColdStarts"), "{text}");
    // Each invocation's lines hold its own counts only.
    assert_eq!(sum(&second, "Deliveries", QUOTE), 1.0);
}

#[tokio::test]
async fn a_rate_limit_then_a_deal_counts_the_throttle_the_retry_and_both_status_classes() {
    let (f, buffer) = with_metrics(fakes(false));
    f.deals.push_result(Err(rate_limited()));
    f.deals.push_result(Ok(deal(5)));
    let (outcome, points, text) = measured(&f.app, &buffer, &quote()).await;
    assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    assert_eq!(sum(&points, "HubSpotThrottled", &[]), 1.0, "{text}");
    assert_eq!(sum(&points, "HubSpotThrottled", &[("call", "deal")]), 1.0);
    assert_eq!(sum(&points, "HubSpotRetries", &[("call", "deal")]), 1.0);
    assert_eq!(sum(&points, "HubSpotCalls", &[("status_class", "4xx")]), 1.0);
    assert_eq!(sum(&points, "HubSpotCalls", &[("status_class", "2xx")]), 1.0);
    assert_eq!(samples(&points, "HubSpotLatency", &[("call", "deal")]), 2);
}

#[tokio::test]
async fn a_delivery_that_does_not_map_counts_a_dead_letter_by_reason() {
    let (f, buffer) = with_metrics(fakes(false));
    let bad = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Acme","budget":"lots"}"#,
    );
    let (outcome, points, text) = measured(&f.app, &buffer, &bad).await;
    assert!(matches!(outcome, Outcome::DeadLettered { .. }), "{outcome:?}");
    assert_eq!(
        sum(&points, "DeadLetters", &[("reason", "mapping_failed")]),
        1.0,
        "{text}"
    );
    assert_eq!(sum(&points, "Deliveries", &[("outcome", "dead_lettered")]), 1.0);
    assert!(
        points
            .iter()
            .all(|p| p.name != "HubSpotCalls" && p.name != "DealsCreated")
    );
    assert_eq!(f.letters.sent().len(), 1);
}

#[tokio::test]
async fn hubspot_refusing_the_deal_counts_a_4xx_and_a_hubspot_rejected_dead_letter() {
    let (f, buffer) = with_metrics(fakes(false));
    f.deals.fail_with(HubSpotError::Rejected {
        status: 400,
        body: HubSpotErrorBody::default(),
        raw: String::new(),
    });
    let (_, points, text) = measured(&f.app, &buffer, &quote()).await;
    assert_eq!(
        sum(&points, "DeadLetters", &[("reason", "hubspot_rejected")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(&points, "HubSpotCalls", &[("call", "deal"), ("status_class", "4xx")]),
        1.0
    );
    assert!(
        points
            .iter()
            .all(|p| p.name != "HubSpotRetries" && p.name != "HubSpotThrottled")
    );
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_written_is_counted_and_the_delivery_is_retry_later() {
    let (f, buffer) = with_metrics(fakes(false));
    f.letters.set_failing(true);
    let bad = delivery(Method::POST, "/hooks/website-quote", r#"{"budget":"lots"}"#);
    let (_, points, text) = measured(&f.app, &buffer, &bad).await;
    assert_eq!(sum(&points, "DeadLetterWriteFailures", &[]), 1.0, "{text}");
    assert_eq!(sum(&points, "Deliveries", &[("outcome", "retry_later")]), 1.0);
    assert!(points.iter().all(|p| p.name != "DeadLetters"), "{text}");
}

#[tokio::test]
async fn an_endpoint_the_mapping_lacks_is_counted_as_unknown_never_by_the_paths_text() {
    let (f, buffer) = with_metrics(fakes(false));
    let probe = delivery(Method::POST, "/hooks/wp-admin-7f3a9c", "{}");
    let (outcome, points, text) = measured(&f.app, &buffer, &probe).await;
    assert_eq!(outcome.status().as_u16(), 404);
    assert_eq!(
        sum(
            &points,
            "Deliveries",
            &[("endpoint", "unknown"), ("outcome", "rejected")]
        ),
        1.0,
        "{text}"
    );
    assert!(!text.contains("wp-admin"), "{text}");
}

#[tokio::test]
async fn no_payload_value_or_secret_reaches_a_metric_line() {
    let (f, buffer) = with_metrics(fakes(false));
    let mut values = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Zyxwvut Ltd","plan":"team","budget":"987654"}"#,
    );
    values.request_id = "req-values".into();
    let (_, _, text) = measured(&f.app, &buffer, &values).await;
    let bad = delivery(
        Method::POST,
        "/hooks/website-quote",
        r#"{"company":"Qwertz","budget":"nope-nope"}"#,
    );
    let (_, _, bad_text) = measured(&f.app, &buffer, &bad).await;
    for (lines, value) in [
        (&text, "Zyxwvut"),
        (&text, "987654"),
        (&bad_text, "Qwertz"),
        (&bad_text, "nope-nope"),
        (&text, "tok-1"),
        (&bad_text, "tok-1"),
    ] {
        assert!(!lines.contains(value), "{value} in {lines}");
    }
}

#[tokio::test]
async fn association_failures_reported_with_the_deal_are_counted() {
    let (f, buffer) = with_metrics(fakes(false));
    let mut created = deal(8);
    created.association_create_failures = vec![json!({"object": "contact"}), json!({"object": "company"})];
    f.deals.push_result(Ok(created));
    let (outcome, points, text) = measured(&f.app, &buffer, &quote()).await;
    let Outcome::Created(created) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        sum(&points, "AssociationFailures", &[]),
        created.association_create_failures.len() as f64,
        "{text}"
    );
    assert_eq!(created.association_create_failures.len(), 2);
}

#[tokio::test]
async fn a_for_each_delivery_counts_each_record_its_deals_and_its_dead_letters() {
    let mapping = Mapping::from_yaml(
        r#"
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
        dealname: "Order {{ item.id }}"
        amount: { from: "{{ item.total }}", type: number }
"#,
        "test",
    )
    .unwrap();
    let (f, buffer) = with_metrics(fakes_with_mapping(
        false,
        Credentials::from_token("tok-1".into()),
        mapping,
    ));
    let body =
        r#"{"orders": [{"id": "A-1", "total": 10}, {"id": "A-2", "total": "lots"}, {"id": "A-3", "total": 30}]}"#;
    let (outcome, points, text) = measured(&f.app, &buffer, &delivery(Method::POST, "/hooks/orders", body)).await;
    assert!(matches!(outcome, Outcome::Records(_)), "{outcome:?}");
    let records = |outcome| sum(&points, "Records", &[("endpoint", "orders"), ("outcome", outcome)]);
    assert_eq!(records("created"), 2.0, "{text}");
    assert_eq!(records("dead_lettered"), 1.0, "{text}");
    assert_eq!(sum(&points, "DealsCreated", &[]), 2.0);
    assert_eq!(sum(&points, "DeadLetters", &[("reason", "mapping_failed")]), 1.0);
    assert_eq!(sum(&points, "Deliveries", &[("outcome", outcome.label())]), 1.0);
    assert_eq!(samples(&points, "HubSpotLatency", &[("call", "deal")]), 2);
}

#[tokio::test]
async fn a_malformed_event_is_counted_as_a_rejected_delivery_of_no_known_endpoint() {
    let (f, buffer) = with_metrics(fakes(false));
    let invocation = crate::inbound::Invocation {
        request_id: "req-malformed".into(),
        deadline: None,
        xray_trace_id: None,
    };
    let (outcome, _) = f.app.answer_event_text("[1, 2]", &invocation).await;
    assert_eq!(outcome.status().as_u16(), 400);
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let points = emf::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        sum(
            &points,
            "Deliveries",
            &[("endpoint", "unknown"), ("outcome", "rejected")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(sum(&points, "ColdStarts", &[]), 1.0);
    assert!(text.contains(r#""requestId":"req-malformed""#), "{text}");
}

#[tokio::test]
async fn the_worker_records_each_messages_lag_from_its_sent_timestamp() {
    let (metrics, buffer) = capture::metrics();
    let worker = fakes(false).app.with_metrics(metrics);
    let sent = chrono::Utc::now().timestamp_millis() - 5_000;
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "m-0", "body": "not an envelope", "attributes": {"SentTimestamp": sent.to_string()}},
        {"messageId": "m-1", "body": "not an envelope", "attributes": {"SentTimestamp": "yesterday"}},
        {"messageId": "m-2", "body": "not an envelope", "attributes": {}},
    ]}))
    .unwrap();
    let invocation = crate::inbound::Invocation {
        request_id: "req-worker".into(),
        deadline: None,
        xray_trace_id: None,
    };
    worker.handle_sqs_event(&event, &invocation).await;
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let points = emf::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let lag: Vec<f64> = points
        .iter()
        .filter(|p| p.name == "QueueLag")
        .flat_map(|p| p.values.clone())
        .collect();
    assert_eq!(lag.len(), 1, "only the readable timestamp: {text}");
    assert!((5_000.0..60_000.0).contains(&lag[0]), "{lag:?}");
    assert_eq!(
        points.iter().find(|p| p.name == "QueueLag").unwrap().unit.as_deref(),
        Some("Milliseconds")
    );
}
