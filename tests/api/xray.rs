//! Traces through the real adapters: a sampled delivery against mock HubSpot and moto, its subsegments read
//! from a UDP socket on 127.0.0.1 standing in for the X-Ray daemon.

use std::net::UdpSocket;
use std::time::Duration;

use dealhook::inbound::Invocation;
use dealhook::xray::{DAEMON_HEADER, XrayLayer, xray_filter};
use serde_json::{Value, json};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Options, TOKEN, TestApp, sample_event, spawn_app, spawn_app_with};

const ROOT: &str = "1-6a1b2c3d-0123456789abcdef01234567";
const PARENT: &str = "0a1b2c3d4e5f6789";

fn header(sampled: bool) -> String {
    format!("Root={ROOT};Parent={PARENT};Sampled={}", u8::from(sampled))
}

struct Daemon(UdpSocket);

impl Daemon {
    fn start() -> Daemon {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Daemon(socket)
    }

    /// Every document until the socket stays quiet for 200 ms, its header line checked.
    fn documents(&self) -> Vec<Value> {
        let mut documents = Vec::new();
        let mut buffer = vec![0u8; 70 * 1024];
        while let Ok((n, _)) = self.0.recv_from(&mut buffer) {
            let text = std::str::from_utf8(&buffer[..n]).unwrap();
            let (line, json) = text.split_once('\n').unwrap();
            assert_eq!(format!("{line}\n"), DAEMON_HEADER);
            documents.push(serde_json::from_str(json).unwrap());
        }
        documents
    }
}

/// Takes everything, so that this scoped subscriber never narrows callsite interest for the global log
/// capture other tests use.
struct Everything;
impl<S: tracing::Subscriber> Layer<S> for Everything {}

/// Invokes `event` with a trace header, the X-Ray layer sending to `daemon` meanwhile.
async fn invoke_traced(t: &TestApp, daemon: &Daemon, event: &str, sampled: bool) -> u16 {
    let layer = XrayLayer::new(daemon.0.local_addr().unwrap()).unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(xray_filter()))
        .with(Everything);
    let event: Value = serde_json::from_str(event).unwrap();
    let invocation = Invocation {
        request_id: "req-xray".into(),
        xray_trace_id: Some(header(sampled)),
        ..Invocation::local()
    };
    let _guard = tracing::subscriber::set_default(subscriber);
    t.invoke_value(&event, &invocation).await.status
}

/// Every subsegment, nested ones included, in document order.
fn flatten(documents: &[Value]) -> Vec<Value> {
    fn walk(document: &Value, out: &mut Vec<Value>) {
        out.push(document.clone());
        for child in document["subsegments"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    documents.iter().for_each(|d| walk(d, &mut out));
    out
}

fn hex16(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn deal_created(deal_id: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "portalId": 62515, "dealId": deal_id, "properties": {} }))
}

#[tokio::test]
async fn a_sampled_delivery_traces_its_hubspot_calls_and_secret_read_under_lambdas_segment() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(deal_created(77))
        .mount(&t.hubspot)
        .await;
    let daemon = Daemon::start();

    let status = invoke_traced(&t, &daemon, &sample_event("website-quote.json"), true).await;
    assert_eq!(status, 200);

    let documents = daemon.documents();
    assert_eq!(documents.len(), 1, "one document for the delivery: {documents:?}");
    let delivery = &documents[0];
    assert_eq!(delivery["name"], "delivery");
    assert_eq!(delivery["type"], "subsegment");
    assert_eq!(delivery["trace_id"], ROOT);
    assert_eq!(delivery["parent_id"], PARENT);
    let all = flatten(&documents);
    for subsegment in &all {
        assert!(hex16(&subsegment["id"]), "{subsegment}");
        let (start, end) = (
            subsegment["start_time"].as_f64().unwrap(),
            subsegment["end_time"].as_f64().unwrap(),
        );
        assert!(
            start >= delivery["start_time"].as_f64().unwrap() && start <= end,
            "{subsegment}"
        );
        assert!(end <= delivery["end_time"].as_f64().unwrap(), "{subsegment}");
    }

    let calls: Vec<&Value> = all.iter().filter(|s| s["name"] == "hubspot_create_deal").collect();
    assert_eq!(calls.len(), 2, "the 429 and the retry: {all:?}");
    let url = format!("{}/deals/v1/deal/", t.hubspot.uri());
    for (call, status) in calls.iter().zip([429, 200]) {
        assert_eq!(call["namespace"], "remote", "{call}");
        assert_eq!(call["http"]["request"]["method"], "POST", "{call}");
        assert_eq!(call["http"]["request"]["url"], url.as_str(), "{call}");
        assert_eq!(call["http"]["response"]["status"], status, "{call}");
    }
    assert_eq!(
        (calls[0]["error"].clone(), calls[0]["throttle"].clone()),
        (json!(true), json!(true))
    );
    assert!(calls[0].get("fault").is_none(), "{}", calls[0]);
    assert!(
        calls[1].get("error").is_none() && calls[1].get("throttle").is_none(),
        "{}",
        calls[1]
    );

    let secret = all
        .iter()
        .find(|s| s["name"] == "SecretsManager")
        .unwrap_or_else(|| panic!("the secret read: {all:?}"));
    assert_eq!(secret["namespace"], "aws");
    assert_eq!(secret["aws"]["operation"], "GetSecretValue");

    let text = serde_json::to_string(&documents).unwrap();
    for value in [
        TOKEN,
        "Acme Robotics",
        "ada@example.com",
        "Ada Lovelace",
        "authorization",
        "req-xray",
    ] {
        assert!(!text.contains(value), "{value} reached a trace document: {text}");
    }
}

#[tokio::test]
async fn a_hubspot_fault_and_the_dead_letter_write_are_flagged_and_traced() {
    let t = spawn_app_with(Options::default()).await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal"))
        .mount(&t.hubspot)
        .await;
    let daemon = Daemon::start();

    let status = invoke_traced(&t, &daemon, &sample_event("website-quote.json"), true).await;
    assert_eq!(status, 202, "dead-lettered");

    let all = flatten(&daemon.documents());
    let calls: Vec<&Value> = all.iter().filter(|s| s["name"] == "hubspot_create_deal").collect();
    assert!(!calls.is_empty(), "{all:?}");
    for call in &calls {
        assert_eq!(call["http"]["response"]["status"], 500, "{call}");
        assert_eq!(call["fault"], true, "{call}");
        assert!(call.get("error").is_none() && call.get("throttle").is_none(), "{call}");
    }
    let letter = all
        .iter()
        .find(|s| s["name"] == "SQS")
        .unwrap_or_else(|| panic!("the dead letter write: {all:?}"));
    assert_eq!(letter["aws"]["operation"], "SendMessage");
    assert!(letter.get("fault").is_none(), "the write succeeded: {letter}");
    assert!(
        !serde_json::to_string(&all).unwrap().contains("internal"),
        "no HubSpot body"
    );
}

#[tokio::test]
async fn an_unsampled_delivery_sends_nothing() {
    let t = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(deal_created(5))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    let daemon = Daemon::start();

    let status = invoke_traced(&t, &daemon, &sample_event("website-quote.json"), false).await;
    assert_eq!(status, 200);
    assert_eq!(daemon.documents(), Vec::<Value>::new());
}
