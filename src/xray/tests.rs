//! The X-Ray layer against a UDP socket on 127.0.0.1 standing in for the daemon: what is sent, how it
//! nests, its flags, and that nothing is sent outside a sampled invocation.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::field::Empty;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::aws::{MemoryDeadLetters, MemorySecrets};
use crate::credentials::Credentials;
use crate::hubspot::{MemoryDeals, RetryPolicy};
use crate::inbound::Invocation;
use crate::{App, Outcome, Settings};

const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const UNSAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";

/// The daemon: a UDP socket on loopback, read until it stays quiet.
pub(crate) struct Daemon {
    socket: UdpSocket,
}

impl Daemon {
    pub(crate) fn start() -> Daemon {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
        Daemon { socket }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Every document received until 150 ms pass without one: the header line checked, the JSON parsed.
    pub(crate) fn documents(&self) -> Vec<Value> {
        let mut documents = Vec::new();
        let mut buffer = vec![0u8; 70 * 1024];
        while let Ok((n, _)) = self.socket.recv_from(&mut buffer) {
            let text = std::str::from_utf8(&buffer[..n]).unwrap();
            let (header, json) = text.split_once('\n').unwrap();
            assert_eq!(format!("{header}\n"), DAEMON_HEADER, "{text}");
            assert!(n <= 64 * 1024, "a datagram over the daemon's 64 KiB: {n}");
            documents.push(serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")));
        }
        documents
    }
}

/// A layer that takes every span and event, so that callsite interest in the test process is never
/// narrowed by our filter (the global log capture of other tests must still see their events).
struct Everything;

impl<S: tracing::Subscriber> Layer<S> for Everything {}

/// A subscriber with the X-Ray layer (and its production filter) sending to `daemon`.
pub(crate) fn subscriber(daemon: &Daemon) -> impl tracing::Subscriber + Send + Sync {
    let layer = XrayLayer::new(daemon.address()).unwrap();
    tracing_subscriber::registry()
        .with(layer.with_filter(xray_filter()))
        .with(Everything)
}

/// Every subsegment in `documents`, nested ones included, with its parent's id (`None` at the top).
fn flatten(documents: &[Value]) -> Vec<(Option<String>, Value)> {
    fn walk(parent: Option<String>, document: &Value, out: &mut Vec<(Option<String>, Value)>) {
        let id = document["id"].as_str().map(str::to_owned);
        out.push((parent, document.clone()));
        for child in document["subsegments"].as_array().into_iter().flatten() {
            walk(id.clone(), child, out);
        }
    }
    let mut out = Vec::new();
    for document in documents {
        walk(None, document, &mut out);
    }
    out
}

fn named<'a>(all: &'a [(Option<String>, Value)], name: &str) -> &'a Value {
    &all.iter()
        .find(|(_, d)| d["name"] == name)
        .unwrap_or_else(|| panic!("no subsegment {name}: {all:?}"))
        .1
}

fn is_hex_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Checks what every document must hold: an independent subsegment of the trace and parent given, ids
/// and times in X-Ray's format, children within their parent's time.
fn check_independent(document: &Value, parent_id: &str) {
    assert_eq!(document["type"], "subsegment", "{document}");
    assert_eq!(document["trace_id"], ROOT, "{document}");
    assert!(is_trace_id(document["trace_id"].as_str().unwrap()), "{document}");
    assert_eq!(document["parent_id"], parent_id, "{document}");
    check_times_and_ids(document);
}

fn check_times_and_ids(document: &Value) {
    assert!(is_hex_id(&document["id"]), "{document}");
    let (start, end) = (
        document["start_time"].as_f64().unwrap(),
        document["end_time"].as_f64().unwrap(),
    );
    assert!(start > 1.7e9 && start <= end, "{document}");
    for child in document["subsegments"].as_array().into_iter().flatten() {
        assert!(
            child.get("trace_id").is_none() && child.get("type").is_none(),
            "{child}"
        );
        let (child_start, child_end) = (
            child["start_time"].as_f64().unwrap(),
            child["end_time"].as_f64().unwrap(),
        );
        assert!(start <= child_start && child_end <= end, "{child} outside {document}");
        check_times_and_ids(child);
    }
}

mod trace_header {
    use super::*;

    #[test]
    fn lambdas_header_is_read_in_any_order_with_other_keys() {
        let cases = [
            (SAMPLED, true),
            (UNSAMPLED, false),
            (
                "Parent=53995c3f42cd8ad8; Sampled=1; Root=1-5759e988-bd862e3fe1be46a994272793; Lineage=a87bd80c:0",
                true,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
                false,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
                false,
            ),
        ];
        for (text, sampled) in cases {
            let header = TraceHeader::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(header.root, ROOT, "{text}");
            assert_eq!(header.parent, 0x5399_5c3f_42cd_8ad8, "{text}");
            assert_eq!(header.sampled, sampled, "{text}");
        }
    }

    #[test]
    fn a_header_that_cannot_name_a_segment_is_none() {
        let cases = [
            ("", "empty"),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", "no Parent"),
            ("Parent=53995c3f42cd8ad8;Sampled=1", "no Root"),
            (
                "Root=1-abc;Parent=53995c3f42cd8ad8;Sampled=1",
                "short root (the old test value)",
            ),
            (
                "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                "version 2",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8;Sampled=1",
                "not hex",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793-00;Parent=53995c3f42cd8ad8;Sampled=1",
                "a fourth part",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad;Sampled=1",
                "15-digit parent",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=+3995c3f42cd8ad8;Sampled=1",
                "signed parent",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent;Sampled=1",
                "a part without =",
            ),
            (
                "Root=1-5759e988-bd862e3fe1bé46a99427279;Parent=53995c3f42cd8ad8;Sampled=1",
                "non-ASCII",
            ),
        ];
        for (text, why) in cases {
            assert_eq!(TraceHeader::parse(text), None, "{why}: {text}");
        }
    }
}

mod daemon_address {
    use super::*;

    #[test]
    fn the_udp_address_is_read_from_either_form() {
        let cases = [
            ("169.254.79.129:2000", "169.254.79.129:2000"),
            (" 127.0.0.1:2000 ", "127.0.0.1:2000"),
            ("tcp:127.0.0.1:2000 udp:127.0.0.2:2001", "127.0.0.2:2001"),
            ("udp:127.0.0.2:2001 tcp:127.0.0.1:2000", "127.0.0.2:2001"),
            ("udp:[::1]:2000", "[::1]:2000"),
        ];
        for (text, address) in cases {
            assert_eq!(daemon_address(text), Some(address.parse().unwrap()), "{text}");
        }
    }

    #[test]
    fn anything_else_is_no_address() {
        for text in [
            "",
            "2000",
            "127.0.0.1",
            "tcp:127.0.0.1:2000",
            "udp:",
            "localhost:notaport",
            "a b",
        ] {
            assert_eq!(daemon_address(text), None, "{text:?}");
        }
    }
}

mod spans {
    use super::*;

    /// An invocation span carrying `header`, with a `delivery` span inside holding the calls below.
    fn delivery_with_calls(header: Option<&str>) {
        let invocation = tracing::info_span!("invocation", request_id = "r-1", xray_trace_id = header);
        let _invocation = invocation.enter();
        let delivery = tracing::info_span!("delivery", request_id = "r-1", route = "website-quote");
        let _delivery = delivery.enter();
        {
            let _verify = tracing::info_span!("verify").entered();
        }
        for status in [Some(200u16), Some(404), Some(429), Some(503), None] {
            let call = tracing::info_span!("hubspot_create_deal", method = Empty, url = Empty, status = Empty);
            let _call = call.enter();
            call.record("method", "POST");
            call.record("url", "https://api.hubapi.com/crm/v3/objects/deals");
            match status {
                Some(status) => {
                    call.record("status", status);
                }
                None => tracing::warn!("the deal call failed: no connection"),
            }
        }
        {
            let _letter = tracing::info_span!("send", aws_service = "SQS", aws_operation = "SendMessage").entered();
            tracing::error!("SQS refused the message");
        }
        {
            let _map = tracing::info_span!("map").entered();
            tracing::warn!("a warning is not a fault");
        }
    }

    #[test]
    fn a_sampled_invocations_delivery_is_one_document_with_its_calls_nested() {
        let daemon = Daemon::start();
        tracing::subscriber::with_default(subscriber(&daemon), || delivery_with_calls(Some(SAMPLED)));
        let documents = daemon.documents();
        assert_eq!(documents.len(), 1, "one datagram per delivery: {documents:?}");
        let delivery = &documents[0];
        assert_eq!(delivery["name"], "delivery");
        check_independent(delivery, "53995c3f42cd8ad8");
        assert_eq!(delivery["annotations"]["route"], "website-quote");
        assert!(
            delivery.get("http").is_none() && delivery.get("fault").is_none(),
            "{delivery}"
        );

        let children = delivery["subsegments"].as_array().unwrap();
        let names: Vec<&str> = children.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "verify",
                "hubspot_create_deal",
                "hubspot_create_deal",
                "hubspot_create_deal",
                "hubspot_create_deal",
                "hubspot_create_deal",
                "SQS",
                "map"
            ]
        );
        let mut ids: Vec<&str> = children.iter().map(|c| c["id"].as_str().unwrap()).collect();
        ids.push(delivery["id"].as_str().unwrap());
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), children.len() + 1, "ids are unique");

        // (status, error, throttle, fault) per call, in order.
        let expected = [
            (Some(200), false, false, false),
            (Some(404), true, false, false),
            (Some(429), true, true, false),
            (Some(503), false, false, true),
            (None, false, false, true),
        ];
        for (call, (status, error, throttle, fault)) in children[1..6].iter().zip(expected) {
            assert_eq!(call["namespace"], "remote", "{call}");
            assert_eq!(call["http"]["request"]["method"], "POST", "{call}");
            assert_eq!(
                call["http"]["request"]["url"],
                "https://api.hubapi.com/crm/v3/objects/deals"
            );
            assert_eq!(call["http"]["response"]["status"].as_u64(), status, "{call}");
            assert_eq!(call.get("error").is_some(), error, "error flag: {call}");
            assert_eq!(call.get("throttle").is_some(), throttle, "throttle flag: {call}");
            assert_eq!(call.get("fault").is_some(), fault, "fault flag: {call}");
        }
        let sqs = &children[6];
        assert_eq!(sqs["namespace"], "aws");
        assert_eq!(sqs["aws"]["operation"], "SendMessage");
        assert_eq!(sqs["fault"], true, "an error logged in the span: {sqs}");
        let map = &children[7];
        assert!(map.get("fault").is_none() && map.get("error").is_none(), "{map}");
        assert!(children[0].get("namespace").is_none(), "{}", children[0]);
    }

    #[test]
    fn nothing_is_sent_when_not_sampled_or_without_a_header() {
        for header in [Some(UNSAMPLED), None, Some("Root=1-abc"), Some("")] {
            let daemon = Daemon::start();
            tracing::subscriber::with_default(subscriber(&daemon), || delivery_with_calls(header));
            assert_eq!(daemon.documents(), Vec::<Value>::new(), "{header:?}");
        }
    }

    #[test]
    fn spans_outside_an_invocation_are_not_sent() {
        let daemon = Daemon::start();
        tracing::subscriber::with_default(subscriber(&daemon), || {
            let _delivery = tracing::info_span!("delivery", route = "r").entered();
            let _call = tracing::info_span!("hubspot_pipelines", status = 200u16).entered();
        });
        assert!(daemon.documents().is_empty());
    }

    #[test]
    fn children_over_the_budget_are_sent_as_documents_naming_their_parent() {
        let daemon = Daemon::start();
        // Enough calls to pass the budget, few enough for the test socket's receive buffer.
        let count = 250;
        tracing::subscriber::with_default(subscriber(&daemon), || {
            let _invocation = tracing::info_span!("invocation", xray_trace_id = SAMPLED).entered();
            let _delivery = tracing::info_span!("delivery", route = "r").entered();
            for _ in 0..count {
                let _call =
                    tracing::info_span!("hubspot_associate", method = "PUT", url = "https://h.test/a").entered();
            }
        });
        let documents = daemon.documents();
        let delivery = documents.iter().find(|d| d["name"] == "delivery").unwrap();
        check_independent(delivery, "53995c3f42cd8ad8");
        let delivery_id = delivery["id"].as_str().unwrap();
        let independent: Vec<&Value> = documents.iter().filter(|d| d["name"] == "hubspot_associate").collect();
        assert!(
            !independent.is_empty(),
            "over {CHILDREN_BUDGET} bytes some children go on their own"
        );
        for document in &independent {
            check_independent(document, delivery_id);
        }
        let embedded = delivery["subsegments"].as_array().unwrap().len();
        assert_eq!(embedded + independent.len(), count, "every call once");
        let embedded_bytes = serde_json::to_vec(&delivery["subsegments"]).unwrap().len();
        assert!(embedded_bytes <= CHILDREN_BUDGET + 2 * embedded, "{embedded_bytes}");
    }

    #[test]
    fn with_no_daemon_listening_a_traced_span_still_ends_normally() {
        let daemon = Daemon::start();
        let address = daemon.address();
        drop(daemon); // nothing listens: the send fails (or is lost) and is dropped
        let layer = XrayLayer::new(address).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer.with_filter(xray_filter()));
        let value = tracing::subscriber::with_default(subscriber, || {
            let _invocation = tracing::info_span!("invocation", xray_trace_id = SAMPLED).entered();
            for _ in 0..3 {
                let _delivery = tracing::info_span!("delivery").entered();
            }
            7
        });
        assert_eq!(value, 7);
    }
}

/// The in-memory app (fakes for HubSpot, secrets, dead letters) driven through its Lambda entry point.
mod pipeline {
    use super::*;

    const EVENT: &str = include_str!("../../examples/showcase/events/website-quote.json");
    const TOKEN: &str = "tok-xray-secret-4c1d";

    fn app() -> (App, Arc<MemoryDeals>) {
        let deals = Arc::new(MemoryDeals::default());
        let app = App::new(
            Settings {
                max_body_bytes: 64 * 1024,
                dry_run: false,
                skip_signatures: false,
                retry: RetryPolicy::default(),
            },
            Arc::new(crate::tests::showcase().unwrap()),
            Arc::new(MemorySecrets::new(Credentials::from_token(TOKEN.into()))),
            deals.clone(),
            Arc::new(MemoryDeadLetters::default()),
        );
        (app, deals)
    }

    async fn deliver(daemon: &Daemon, header: Option<&str>) -> (Outcome, Vec<Value>, String) {
        let (app, deals) = app();
        let mut event: Value = serde_json::from_str(EVENT).unwrap();
        event["headers"]["authorization"] = format!("Bearer {TOKEN}").into();
        let invocation = Invocation {
            request_id: "req-xray-1".into(),
            xray_trace_id: header.map(str::to_owned),
            ..Invocation::local()
        };
        let guard = tracing::subscriber::set_default(subscriber(daemon));
        let (outcome, _) = app.answer_event(&event, &invocation).await;
        drop(guard);
        assert_eq!(deals.created().len(), 1, "the delivery made its deal: {outcome:?}");
        let documents = daemon.documents();
        let text = documents.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
        (outcome, documents, text)
    }

    #[tokio::test]
    async fn a_sampled_delivery_is_a_subsegment_of_lambdas_segment() {
        let daemon = Daemon::start();
        let (outcome, documents, text) = deliver(&daemon, Some(SAMPLED)).await;
        assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
        assert_eq!(documents.len(), 1, "{text}");
        let delivery = &documents[0];
        assert_eq!(delivery["name"], "delivery", "{text}");
        check_independent(delivery, "53995c3f42cd8ad8");
        assert_eq!(delivery["annotations"]["route"], "website-quote");
        let all = flatten(&documents);
        for (parent, subsegment) in &all[1..] {
            assert!(parent.is_some(), "{subsegment}");
        }
        // Stage spans, where the pipeline has them, sit inside the delivery.
        for stage in ["verify", "decode", "map", "resolve", "secret", "idempotency"] {
            if let Some((parent, _)) = all.iter().find(|(_, d)| d["name"] == stage) {
                assert!(parent.is_some(), "{stage}: {text}");
            }
        }
        let _ = named(&all, "delivery");
    }

    #[tokio::test]
    async fn no_secret_or_payload_value_is_in_any_document() {
        let daemon = Daemon::start();
        let (_, documents, text) = deliver(&daemon, Some(SAMPLED)).await;
        assert!(!documents.is_empty());
        for value in [
            TOKEN,
            "Acme Robotics",
            "ada@example.com",
            "Ada Lovelace",
            "12,500.50",
            "We would like 40 seats",
            "203.0.113.10",
            "req-xray-1",
        ] {
            assert!(!text.contains(value), "{value} reached a trace document: {text}");
        }
    }

    #[tokio::test]
    async fn an_unsampled_or_untraced_delivery_sends_nothing() {
        for header in [Some(UNSAMPLED), None] {
            let daemon = Daemon::start();
            let (outcome, documents, _) = deliver(&daemon, header).await;
            assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
            assert!(documents.is_empty(), "{header:?}: {documents:?}");
        }
    }
}
