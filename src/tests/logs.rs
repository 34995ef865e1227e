//! Log lines of a delivery, parsed: Lambda's keys, the summary line's fields and stage times, and what
//! they must never hold (payload values at INFO; secrets at any level). Lines are read from the
//! process-wide capture ([`LogCapture`]), so each test finds its own by a request id of its own.

use serde_json::{Value, json};

use super::fakes;
use crate::inbound::Invocation;
use crate::telemetry::capture::LogCapture;

const TRACE_HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const TRACE_ID: &str = "1-5759e988-bd862e3fe1be46a994272793";

/// Every line of `text`, parsed (a line that is not a JSON object fails the test).
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("not a JSON object: {l}"))
        })
        .collect()
}

/// An HTTP API v2 event posting `body` to `/hooks/{route}`.
fn event(route: &str, body: &str) -> Value {
    json!({
        "version": "2.0",
        "rawPath": format!("/hooks/{route}"),
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST"}},
        "body": body,
        "isBase64Encoded": false
    })
}

fn invocation(request_id: &str) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        deadline: None,
        xray_trace_id: Some(TRACE_HEADER.to_owned()),
    }
}

#[tokio::test]
async fn every_line_has_lambdas_keys_and_the_summary_line_names_the_delivery_and_its_stage_times() {
    let capture = LogCapture::start();
    let f = fakes(false);
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    let body = r#"{"company":"Acme","plan":"team","budget":"1,000"}"#;
    let (outcome, _) = f
        .app
        .answer_event(&event("website-quote", body), &invocation(&request_id))
        .await;
    assert_eq!(outcome.label(), "created");

    let all = lines(&capture.text());
    for line in &all {
        let timestamp = line["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(parsed.offset().local_minus_utc(), 0, "{line}");
        assert!(
            timestamp.ends_with('Z') && timestamp.len() == 24,
            "RFC 3339, ms, UTC: {line}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&line["level"].as_str().unwrap_or_default()),
            "{line}"
        );
        assert!(line["message"].is_string(), "{line}");
    }
    let ours: Vec<&Value> = all.iter().filter(|l| l["requestId"] == request_id.as_str()).collect();
    assert!(!ours.is_empty());
    for line in &ours {
        assert_eq!(line["xray_trace_id"], TRACE_ID, "{line}");
    }
    let summary: Vec<&&Value> = ours.iter().filter(|l| l["message"] == "delivery").collect();
    assert_eq!(summary.len(), 1, "one summary line: {ours:?}");
    let summary = summary[0];
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["route"], "website-quote");
    assert_eq!(summary["endpoint"], "website-quote");
    assert_eq!(summary["source"], "json");
    assert_eq!(summary["outcome"], "created");
    assert_eq!(summary["status"], 200);
    assert!(summary["deal_id"].is_u64(), "{summary}");
    for stage in ["duration_ms", "verify_ms", "decode_ms", "map_ms"] {
        let ms = summary[stage]
            .as_f64()
            .unwrap_or_else(|| panic!("no {stage}: {summary}"));
        assert!((0.0..10_000.0).contains(&ms), "{stage}: {summary}");
    }
    let duration = summary["duration_ms"].as_f64().unwrap_or_default();
    assert!(summary["map_ms"].as_f64().unwrap_or_default() <= duration, "{summary}");
    // Stages that did not run, and fields of a dead letter, are absent rather than zero or null.
    for absent in [
        "dead_letter_ms",
        "idempotency_ms",
        "enqueue_ms",
        "resolve_ms",
        "secret_ms",
        "dead_letter_id",
        "reason",
        "request_id",
    ] {
        assert!(summary.get(absent).is_none(), "{absent} in {summary}");
    }
}

#[tokio::test]
async fn a_dead_lettered_delivery_reports_its_dead_letter_and_the_time_spent_writing_it() {
    let capture = LogCapture::start();
    let f = fakes(false);
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    let (outcome, _) = f
        .app
        .answer_event(&event("website-quote", "{broken"), &invocation(&request_id))
        .await;
    assert_eq!(outcome.label(), "dead_lettered");
    let all = lines(&capture.text());
    let summary = all
        .iter()
        .find(|l| l["requestId"] == request_id.as_str() && l["message"] == "delivery")
        .unwrap_or_else(|| panic!("no summary line"));
    assert_eq!(summary["reason"], "decode_failed");
    assert_eq!(
        summary["dead_letter_id"].as_str(),
        Some(f.letters.sent()[0].id.as_str())
    );
    assert!(summary["dead_letter_ms"].as_f64().is_some(), "{summary}");
    assert!(summary["decode_ms"].as_f64().is_some(), "{summary}");
    assert!(
        summary.get("map_ms").is_none() && summary.get("route").is_none(),
        "{summary}"
    );
    assert_eq!(summary["endpoint"], "website-quote");
}

#[tokio::test]
async fn an_unusable_event_still_has_a_summary_line_with_its_request_id() {
    let capture = LogCapture::start();
    let f = fakes(false);
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    let (outcome, _) = f.app.answer_event(&json!({"hello": 1}), &invocation(&request_id)).await;
    assert_eq!(outcome.status().as_u16(), 400);
    let all = lines(&capture.text());
    let ours: Vec<&Value> = all.iter().filter(|l| l["requestId"] == request_id.as_str()).collect();
    assert_eq!(ours.len(), 2, "a warning and the summary: {ours:?}");
    let summary = ours
        .iter()
        .find(|l| l["message"] == "delivery")
        .unwrap_or_else(|| panic!("{ours:?}"));
    assert_eq!(summary["reason"], "malformed_request");
    assert_eq!(summary["xray_trace_id"], TRACE_ID);
}

#[tokio::test]
async fn the_records_of_a_for_each_delivery_each_have_a_line_and_the_delivery_sums_them() {
    let capture = LogCapture::start();
    let mapping = crate::mapping::Mapping::from_yaml(
        r#"
version: 1
routes:
  batch:
    source: json
    signature: none
    for_each: fields.items
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: { from: "{{ item.name }}", required: true }
"#,
        "test",
    )
    .unwrap();
    let f = super::fakes_with_mapping(
        false,
        crate::credentials::Credentials::from_token("tok-1".into()),
        mapping,
    );
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    let body = r#"{"items":[{"name":"a"},{"other":1},{"name":"c"}]}"#;
    let (outcome, _) = f
        .app
        .answer_event(&event("batch", body), &invocation(&request_id))
        .await;
    assert!(matches!(outcome, crate::Outcome::Records(_)), "{outcome:?}");
    let all = lines(&capture.text());
    let ours: Vec<&Value> = all.iter().filter(|l| l["requestId"] == request_id.as_str()).collect();
    let records: Vec<&&Value> = ours.iter().filter(|l| l["message"] == "record").collect();
    assert_eq!(records.len(), 3, "{ours:?}");
    let outcomes: Vec<&str> = records
        .iter()
        .map(|l| l["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["created", "dead_lettered", "created"]);
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record["record"], index, "{record}");
        assert_eq!(record["route"], "batch", "{record}");
        assert!(record["map_ms"].as_f64().is_some(), "{record}");
    }
    assert!(records[1]["dead_letter_ms"].as_f64().is_some(), "{}", records[1]);
    assert!(records[0].get("dead_letter_ms").is_none(), "{}", records[0]);
    let summary = ours
        .iter()
        .find(|l| l["message"] == "delivery")
        .unwrap_or_else(|| panic!("{ours:?}"));
    assert_eq!(
        (summary["records"].as_u64(), summary["records_created"].as_u64()),
        (Some(3), Some(2))
    );
    let sum: f64 = records.iter().filter_map(|r| r["map_ms"].as_f64()).sum();
    let total = summary["map_ms"].as_f64().unwrap_or_default();
    assert!(
        (total - sum).abs() < 0.01,
        "the delivery's map_ms {total} is its records' sum {sum}"
    );
}

/// One test, so that turning the payload switch on cannot race another test's "no payload" check.
#[tokio::test]
async fn payload_values_appear_only_at_debug_with_the_switch_and_secrets_never() {
    let capture = LogCapture::start();
    let f = fakes(false);
    // A value of the secret, as the secrets cache makes it known to the scrubber, quoted by the sender.
    let token = format!("pat-na1-{}", uuid::Uuid::new_v4());
    crate::credentials::scrub::remember([token.as_str()]);
    let company = format!("Payload-Co-{}", uuid::Uuid::new_v4());
    let body = format!(r#"{{"company":"{company}","plan":"team","message":"{token} is the token"}}"#);
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    f.app
        .answer_event(&event("website-quote", &body), &invocation(&request_id))
        .await;
    let text = capture.text();
    assert!(
        !text.contains(&company),
        "a payload value was logged without the switch: {text}"
    );

    crate::telemetry::set_payloads_logged(true);
    let request_id = format!("req-logs-{}", uuid::Uuid::new_v4());
    let capture = LogCapture::start();
    f.app
        .answer_event(&event("website-quote", &body), &invocation(&request_id))
        .await;
    crate::telemetry::set_payloads_logged(false);
    let all = lines(&capture.text());
    let with_value: Vec<&Value> = all.iter().filter(|l| l.to_string().contains(&company)).collect();
    assert!(!with_value.is_empty(), "the switch shows the mapped deal at DEBUG");
    for line in &with_value {
        assert_eq!(line["level"], "DEBUG", "{line}");
        assert_eq!(line["requestId"], request_id.as_str(), "{line}");
        assert!(
            !line.to_string().contains(&token),
            "the secret is scrubbed even there: {line}"
        );
    }
    assert!(all.iter().any(|l| l.to_string().contains("[redacted] is the token")));
}

#[tokio::test]
async fn a_work_item_is_logged_under_the_workers_invocation() {
    let capture = LogCapture::start();
    let f = fakes(false);
    let request_id = format!("req-worker-{}", uuid::Uuid::new_v4());
    // Not an SQS batch: answered with its messages failed, and the error logged under the invocation.
    let event = json!({"Records": [{"messageId": "m-1", "body": 5}]});
    let answer = f.app.handle_sqs_value(event, &invocation(&request_id)).await.unwrap();
    assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], "m-1");
    let all = lines(&capture.text());
    let ours: Vec<&Value> = all.iter().filter(|l| l["requestId"] == request_id.as_str()).collect();
    assert_eq!(ours.len(), 1, "{all:?}");
    assert_eq!(ours[0]["level"], "ERROR");
    assert_eq!(ours[0]["xray_trace_id"], TRACE_ID);
}
