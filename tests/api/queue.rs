//! Queue mode end to end over the real AWS SDK (moto's SQS and S3) and real HTTP (mock HubSpot): the
//! webhook function puts the work item on the work queue and answers `202 queued`; the worker, fed the
//! Lambda SQS event built from the messages actually received from moto, makes the deals and answers a
//! partial batch response, which the test then applies as the event source mapping would (deleting
//! the messages not reported failed).
//!
//! Covered: the work item on the queue (attributes, envelope); deals made and only unreadable messages
//! reported; a 429 mid-batch (reported, made invisible for `Retry-After` on moto, the others done); the
//! last receive dead-lettering with the reason; an 800 KB delivery through S3; the same acceptance
//! cases in both modes sending the same HubSpot requests.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::Message;
use base64::Engine as _;
use dealhook::aws::{ATTR_PAYLOAD_SIZE, PayloadPointer, SqsQueue};
use dealhook::dead_letter::ENVELOPE_VERSION;
use dealhook::inbound::Invocation;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Options, QueueMode, TOKEN, TestApp, TestResponse, sample_event, spawn_app_with};
use crate::moto;

const DEALS_V1: &str = "/deals/v1/deal/";

/// Queue mode with `options`, a work queue whose visibility timeout is `visibility_timeout_s`.
async fn queued_with(options: Options, visibility_timeout_s: u32, max_receive_count: Option<u32>) -> TestApp {
    spawn_app_with(Options {
        queue_mode: Some(QueueMode {
            visibility_timeout_s,
            max_receive_count,
        }),
        ..options
    })
    .await
}

async fn queued() -> TestApp {
    queued_with(Options::default(), 30, Some(10)).await
}

/// A `website-quote` body (default mapping) whose deal name carries `company`.
fn quote(company: &str) -> Vec<u8> {
    json!({"company": company, "plan": "team", "budget": "1,000", "hubspot_company_id": "8954037"})
        .to_string()
        .into_bytes()
}

fn created(deal_id: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"portalId": 62515, "dealId": deal_id, "properties": {}}))
}

/// Every visible message on the work queue, with all its attributes.
async fn work_items(t: &TestApp) -> Vec<Message> {
    moto::receive_all(&t.sdk, t.work_queue_url.as_deref().expect("queue mode")).await
}

/// The record Lambda's SQS event source hands the function for `message` (the shape of
/// `aws_lambda_events::sqs::SqsMessage`, as in tests/fixtures/queue/sqs-event.json).
fn lambda_record(message: &Message) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), Value::from(value.as_str())))
        .collect();
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let mut attribute = json!({
                "dataType": value.data_type(),
                "stringListValues": [],
                "binaryListValues": [],
            });
            if let Some(text) = value.string_value() {
                attribute["stringValue"] = Value::from(text);
            }
            if let Some(bytes) = value.binary_value() {
                attribute["binaryValue"] =
                    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()));
            }
            (name.clone(), attribute)
        })
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "md5OfBody": message.md5_of_body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dealhook-work",
        "awsRegion": "us-east-1",
    })
}

/// Runs the worker on one batch of `messages` (an invocation with `deadline` left), then does what the
/// event source mapping does with the answer: deletes every message not in `batchItemFailures`.
/// Returns the failed message ids.
async fn run_worker(t: &TestApp, messages: &[Message], deadline: Duration) -> Vec<String> {
    let event = json!({ "Records": messages.iter().map(lambda_record).collect::<Vec<_>>() });
    let invocation = Invocation {
        deadline: Some(SystemTime::now() + deadline),
        ..Invocation::local()
    };
    let worker = t.worker.as_ref().expect("queue mode has a worker");
    let answer = worker.handle_sqs_value(event, &invocation).await.expect("an answer");
    let failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("a partial batch response: {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().expect("an item identifier").to_owned())
        .collect();
    let client = aws_sdk_sqs::Client::new(&t.sdk);
    for message in messages {
        if !failed.iter().any(|id| Some(id.as_str()) == message.message_id()) {
            client
                .delete_message()
                .queue_url(t.work_queue_url.as_deref().expect("queue mode"))
                .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                .send()
                .await
                .expect("the event source mapping deletes a done message");
        }
    }
    failed
}

/// The deal names HubSpot was asked to create (v1 bodies), in order.
async fn deal_names(hubspot: &MockServer) -> Vec<String> {
    hubspot
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == DEALS_V1)
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("a JSON deal");
            body["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "dealname")
                .and_then(|p| p["value"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn message_with_body<'a>(messages: &'a [Message], needle: &str) -> &'a Message {
    messages
        .iter()
        .find(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(body["delivery"]["bodyBase64"].as_str().unwrap_or_default())
                .unwrap_or_default();
            String::from_utf8_lossy(&raw).contains(needle)
        })
        .unwrap_or_else(|| panic!("no work item holds {needle}"))
}

#[tokio::test]
async fn queue_mode_answers_queued_and_puts_the_envelope_on_the_work_queue() {
    let t = queued().await;
    let body = quote("Queued Co");

    let response = t.post("website-quote", "application/json", &body).await;

    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["status"], "queued");
    let id = response.json["id"].as_str().expect("an id");
    assert!(
        t.hubspot.received_requests().await.unwrap_or_default().is_empty(),
        "the webhook function calls no HubSpot API in queue mode"
    );
    let messages = work_items(&t).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    let attribute = |name: &str| {
        let value = &message.message_attributes().expect("attributes")[name];
        (
            value.data_type().to_owned(),
            value.string_value().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(
        attribute(SqsQueue::ATTR_VERSION),
        ("String".to_owned(), ENVELOPE_VERSION.to_string())
    );
    assert_eq!(
        attribute(SqsQueue::ATTR_ROUTE),
        ("String".to_owned(), "website-quote".to_owned())
    );
    let text = message.body().expect("a body");
    assert!(!text.contains(TOKEN), "the Authorization header is redacted: {text}");
    let envelope: Value = serde_json::from_str(text).expect("the envelope is JSON");
    assert_eq!(envelope["version"], ENVELOPE_VERSION);
    assert_eq!(envelope["id"], id, "the id answered is the work item's");
    assert!(envelope["createdAt"].as_str().is_some_and(|at| at.ends_with('Z')));
    assert!(
        envelope["idempotencyKey"]
            .as_str()
            .is_some_and(|key| key.starts_with("website-quote#sha256:")),
        "{envelope}"
    );
    assert!(envelope.get("reason").is_none(), "a work item is no dead letter");
    let delivery = &envelope["delivery"];
    assert_eq!(delivery["route"], "website-quote");
    assert_eq!(delivery["method"], "POST");
    assert_eq!(delivery["path"], "/hooks/website-quote");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(delivery["bodyBase64"].as_str().unwrap())
            .unwrap(),
        body,
        "the body as received"
    );
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn the_worker_makes_the_deals_and_reports_only_the_message_it_cannot_read() {
    let t = queued().await;
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .respond_with(created(9001))
        .expect(3)
        .mount(&t.hubspot)
        .await;
    for company in ["One Co", "Two Co", "Three Co"] {
        let response = t.post("website-quote", "application/json", &quote(company)).await;
        assert_eq!(response.status, 202, "{}", response.text);
    }
    let work_queue = t.work_queue_url.clone().unwrap();
    aws_sdk_sqs::Client::new(&t.sdk)
        .send_message()
        .queue_url(&work_queue)
        .message_body("not an envelope")
        .send()
        .await
        .unwrap();
    let messages = work_items(&t).await;
    assert_eq!(messages.len(), 4);
    assert!(
        messages.iter().all(|m| m
            .attributes()
            .is_some_and(|a| a.keys().any(|k| k.as_str() == "ApproximateReceiveCount"))),
        "the event carries the receive count"
    );

    let failed = run_worker(&t, &messages, Duration::from_secs(30)).await;

    let unreadable = messages.iter().find(|m| m.body() == Some("not an envelope")).unwrap();
    assert_eq!(
        failed,
        [unreadable.message_id().unwrap()],
        "only the unreadable message is failed"
    );
    let names: BTreeSet<String> = deal_names(&t.hubspot).await.into_iter().collect();
    let expected: BTreeSet<String> = ["One Co – team", "Two Co – team", "Three Co – team"]
        .map(String::from)
        .into();
    assert_eq!(names, expected);
    assert!(
        t.dead_letters().await.is_empty(),
        "the unreadable message is left to SQS's redrive"
    );
}

#[tokio::test]
async fn a_429_mid_batch_is_retried_after_retry_after_and_queued_anew_on_the_last_receive() {
    // The work queue hands a received message out again after 1 s unless its visibility is changed.
    let t = queued_with(Options::default(), 1, Some(2)).await;
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .and(body_string_contains("Beta Co"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3"))
        .expect(2)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .respond_with(created(77))
        .expect(2)
        .mount(&t.hubspot)
        .await;
    for company in ["Alpha Co", "Beta Co", "Gamma Co"] {
        assert_eq!(
            t.post("website-quote", "application/json", &quote(company))
                .await
                .status,
            202
        );
    }
    let messages = work_items(&t).await;
    assert_eq!(messages.len(), 3);
    let beta = message_with_body(&messages, "Beta Co").message_id().unwrap().to_owned();

    // 6 s left: too little to wait 3 s and try again within the invocation, so the worker defers.
    let failed = run_worker(&t, &messages, Duration::from_secs(6)).await;
    let deferred_at = Instant::now();

    assert_eq!(failed, [beta.as_str()], "only the rate-limited message is failed");
    let mut names = deal_names(&t.hubspot).await;
    names.sort();
    assert_eq!(names, ["Alpha Co – team", "Beta Co – team", "Gamma Co – team"]);
    // Past the queue's 1 s visibility timeout, the message is still invisible: its visibility was set
    // to HubSpot's Retry-After.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(work_items(&t).await.is_empty(), "not receivable before Retry-After");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(deferred_at.elapsed()) + Duration::from_millis(300)).await;
    let again = work_items(&t).await;
    assert_eq!(again.len(), 1, "receivable again after Retry-After");
    assert_eq!(again[0].message_id(), Some(beta.as_str()));
    let count = again[0]
        .attributes()
        .and_then(|a| a.iter().find(|(k, _)| k.as_str() == "ApproximateReceiveCount"))
        .map(|(_, v)| v.clone());
    assert_eq!(count.as_deref(), Some("2"));

    // The last receive (maxReceiveCount 2): still 429. A rate limit never dead-letters while the daily
    // limit is not spent: the item is put on the work queue anew, delayed by Retry-After.
    let envelope_id = |m: &aws_sdk_sqs::types::Message| -> String {
        let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
        body["id"].as_str().unwrap().to_owned()
    };
    let failed = run_worker(&t, &again, Duration::from_secs(6)).await;
    let requeued_at = Instant::now();

    assert!(
        failed.is_empty(),
        "the old message is done: a new one carries it: {failed:?}"
    );
    assert!(t.dead_letters().await.is_empty(), "no dead letter for a rate limit");
    assert!(work_items(&t).await.is_empty(), "the new message waits for Retry-After");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(requeued_at.elapsed()) + Duration::from_millis(300)).await;
    let anew = work_items(&t).await;
    assert_eq!(anew.len(), 1);
    assert_ne!(anew[0].message_id(), Some(beta.as_str()), "a new message");
    assert_eq!(envelope_id(&anew[0]), envelope_id(&again[0]), "the same work item");
    let count = anew[0]
        .attributes()
        .and_then(|a| a.iter().find(|(k, _)| k.as_str() == "ApproximateReceiveCount"))
        .map(|(_, v)| v.clone());
    assert_eq!(count.as_deref(), Some("1"), "its receive count starts again");
}

#[tokio::test]
async fn an_800_kb_delivery_goes_through_the_work_queue_via_s3_and_becomes_a_deal() {
    let bucket = moto::create_bucket(&moto::sdk_config().await).await;
    let t = queued_with(
        Options {
            max_body_bytes: 2 * 1024 * 1024,
            payload_bucket: Some(bucket),
            ..Options::default()
        },
        30,
        Some(10),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .respond_with(created(800))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    // Filled up with a field the mapping does not read; base64 makes the envelope over 1 MiB.
    let mut body = br#"{"company":"Bigco","plan":"team","budget":"1,000","notes":""#.to_vec();
    body.resize(800 * 1024 - 2, b'n');
    body.extend_from_slice(br#""}"#);

    let response = t.post("website-quote", "application/json", &body).await;

    assert_eq!(response.status, 202, "{}", response.text);
    let messages = work_items(&t).await;
    assert_eq!(messages.len(), 1);
    let text = messages[0].body().unwrap();
    assert!(
        matches!(PayloadPointer::from_message_body(text), Some(Ok(_))),
        "a pointer, not the envelope: {}",
        &text[..text.len().min(200)]
    );
    assert!(
        messages[0]
            .message_attributes()
            .unwrap()
            .contains_key(ATTR_PAYLOAD_SIZE)
    );

    let failed = run_worker(&t, &messages, Duration::from_secs(30)).await;

    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(deal_names(&t.hubspot).await, ["Bigco – team"]);
    assert!(t.dead_letters().await.is_empty());
}

/// One acceptance case, run in each mode: the mapping, HubSpot's answers, and the Lambda event.
struct Case {
    name: &'static str,
    mapping: Option<String>,
    hubspot: Vec<(&'static str, String, ResponseTemplate)>,
    event: String,
    /// The synchronous answer (status, `status` field).
    sync_answer: (u16, &'static str),
}

/// What a case did: the answer to the sender, HubSpot's requests (method, path, JSON body, in order),
/// and the dead letters (reason, raw body).
struct Effects {
    response: TestResponse,
    requests: Vec<(String, String, Value)>,
    letters: Vec<(String, Vec<u8>)>,
}

async fn run_case(case: &Case, queue_mode: bool) -> Effects {
    let options = Options {
        mapping: case.mapping.clone(),
        ..Options::default()
    };
    let t = match queue_mode {
        true => queued_with(options, 30, Some(10)).await,
        false => spawn_app_with(options).await,
    };
    for (verb, at, answer) in &case.hubspot {
        Mock::given(method(*verb))
            .and(path(at.as_str()))
            .respond_with(answer.clone())
            .mount(&t.hubspot)
            .await;
    }
    let response = t.invoke(&case.event).await;
    if queue_mode {
        let messages = work_items(&t).await;
        if response.json["status"] == "queued" {
            assert_eq!(messages.len(), 1, "{}: one work item", case.name);
            let failed = run_worker(&t, &messages, Duration::from_secs(30)).await;
            assert!(failed.is_empty(), "{}: {failed:?}", case.name);
        } else {
            assert!(
                messages.is_empty(),
                "{}: nothing queued for {}",
                case.name,
                response.text
            );
        }
    }
    let requests = t
        .hubspot
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_owned(),
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            )
        })
        .collect();
    let letters = t
        .dead_letters()
        .await
        .into_iter()
        .map(|l| (l.reason.as_str().to_owned(), l.body().unwrap()))
        .collect();
    Effects {
        response,
        requests,
        letters,
    }
}

#[tokio::test]
async fn both_modes_pass_the_same_acceptance_cases_with_the_same_hubspot_requests() {
    use crate::plan::{CRM, contacts_upserted, lead, search_result};
    let hubspot_error = json!({"status": "error", "message": "Property values were not valid",
        "validationResults": [{"isValid": false, "error": "INVALID_OPTION", "name": "dealstage",
                               "message": "qualifiedtobuy was not one of the allowed options"}]});
    let lead_event = crate::helpers::v2_event(
        "POST",
        "/hooks/lead",
        Some("application/json"),
        lead().to_string().as_bytes(),
    );
    let cases = [
        Case {
            name: "the website-quote sample event (v1)",
            mapping: None,
            hubspot: vec![("POST", DEALS_V1.to_owned(), created(151088))],
            event: sample_event("website-quote.json"),
            sync_answer: (200, "created"),
        },
        Case {
            name: "a form post",
            mapping: None,
            hubspot: vec![("POST", DEALS_V1.to_owned(), created(5))],
            event: sample_event("contact-form.json"),
            sync_answer: (200, "created"),
        },
        Case {
            name: "a new contact and a new company, one linked deal on 2026-03",
            mapping: Some(crate::plan::mapping()),
            hubspot: vec![
                (
                    "POST",
                    format!("{CRM}/contacts/batch/upsert"),
                    contacts_upserted("501", true),
                ),
                ("POST", format!("{CRM}/companies/search"), search_result(&[])),
                ("POST", format!("{CRM}/companies"), crate::plan::created("601")),
                ("POST", format!("{CRM}/deals"), crate::plan::created("701")),
            ],
            event: lead_event,
            sync_answer: (200, "created"),
        },
        Case {
            name: "a HubSpot validation error",
            mapping: None,
            hubspot: vec![(
                "POST",
                DEALS_V1.to_owned(),
                ResponseTemplate::new(400).set_body_json(hubspot_error),
            )],
            event: sample_event("website-quote.json"),
            sync_answer: (202, "dead_lettered"),
        },
        Case {
            name: "a mapping error",
            mapping: None,
            hubspot: vec![("POST", DEALS_V1.to_owned(), created(1))],
            event: sample_event("website-quote-invalid.json"),
            sync_answer: (202, "dead_lettered"),
        },
    ];
    for case in &cases {
        let sync = run_case(case, false).await;
        let queue = run_case(case, true).await;
        assert_eq!(
            sync.requests, queue.requests,
            "{}: the same HubSpot requests",
            case.name
        );
        assert_eq!(sync.letters, queue.letters, "{}: the same dead letters", case.name);
        let sync_answer = (
            sync.response.status,
            sync.response.json["status"].as_str().unwrap_or_default(),
        );
        assert_eq!(sync_answer, case.sync_answer, "{}: {}", case.name, sync.response.text);
        assert!(
            !sync.requests.is_empty() || !sync.letters.is_empty(),
            "{}: did nothing",
            case.name
        );
        if sync.response.json["reason"] == "mapping_failed" {
            // Mapped before queueing: answered at once, the same way.
            for field in ["status", "reason", "errors"] {
                assert_eq!(
                    sync.response.json[field], queue.response.json[field],
                    "{}: {field}",
                    case.name
                );
            }
        } else {
            assert_eq!(queue.response.status, 202, "{}: {}", case.name, queue.response.text);
            assert_eq!(queue.response.json["status"], "queued", "{}", case.name);
        }
    }
}
