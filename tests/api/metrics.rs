//! Metrics end to end: real deliveries through the real HubSpot client (wiremock) and dead-letter
//! queue (moto), their EMF lines checked against the specification (tests/common/emf.rs) and counted;
//! and the dashboard and alarms of template.yaml checked against the metrics the code emits.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use dealhook::metrics::{Metric, Sink, status_class};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Options, spawn_app_with};
use crate::template::{Node, Template, template_text};

#[path = "../common/emf.rs"]
#[allow(dead_code)]
mod emf;

use emf::{samples, sum};

fn quote() -> Vec<u8> {
    json!({"company": "Metrics Ltd", "plan": "team", "budget": "1,000"})
        .to_string()
        .into_bytes()
}

fn lines(buffer: &Mutex<Vec<u8>>) -> (Vec<emf::Point>, String) {
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let points = emf::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (points, text)
}

#[tokio::test]
async fn a_429_then_a_deal_over_http_is_counted_as_one_throttle_one_retry_and_one_deal() {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let t = spawn_app_with(Options {
        metrics: Some(Sink::Memory(buffer.clone())),
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&t.hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"portalId": 1, "dealId": 41, "properties": {}})))
        .expect(1)
        .mount(&t.hubspot)
        .await;

    let response = t.post("website-quote", "application/json", &quote()).await;

    assert_eq!(response.status, 200, "{:?}", response.text);
    let (points, text) = lines(&buffer);
    assert_eq!(sum(&points, "Deliveries", &[("outcome", "created")]), 1.0, "{text}");
    assert_eq!(sum(&points, "DealsCreated", &[("endpoint", "website-quote")]), 1.0);
    assert_eq!(sum(&points, "HubSpotThrottled", &[("call", "deal")]), 1.0);
    assert_eq!(sum(&points, "HubSpotRetries", &[]), 1.0);
    assert_eq!(
        sum(&points, "HubSpotCalls", &[("call", "deal"), ("status_class", "4xx")]),
        1.0
    );
    assert_eq!(
        sum(&points, "HubSpotCalls", &[("call", "deal"), ("status_class", "2xx")]),
        1.0
    );
    assert_eq!(samples(&points, "HubSpotLatency", &[]), 2);
    assert_eq!(sum(&points, "ColdStarts", &[]), 1.0);
    assert!(
        !text.contains("Metrics Ltd") && !text.contains(crate::helpers::TOKEN),
        "{text}"
    );
}

#[tokio::test]
async fn hubspot_refusing_the_deal_over_http_is_counted_as_a_dead_letter_by_reason() {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let t = spawn_app_with(Options {
        metrics: Some(Sink::Memory(buffer.clone())),
        ..Options::default()
    })
    .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "error", "message": "bad"})))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    let response = t.post("website-quote", "application/json", &quote()).await;
    assert_eq!(response.status, 202, "{:?}", response.text);
    assert_eq!(t.dead_letters().await.len(), 1);
    let (points, text) = lines(&buffer);
    assert_eq!(
        sum(&points, "DeadLetters", &[("reason", "hubspot_rejected")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &points,
            "Deliveries",
            &[("endpoint", "website-quote"), ("outcome", "dead_lettered")]
        ),
        1.0
    );
    assert!(points.iter().all(|p| p.name != "DealsCreated"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The dashboard and the alarms against the code's metrics

const STACK: &str = "teststack";

/// The namespace the functions are given (`DEALHOOK_METRICS_NAMESPACE`), for the stack [`STACK`].
fn namespace(t: &Template) -> String {
    let value = t
        .at(&[
            "Globals",
            "Function",
            "Environment",
            "Variables",
            "DEALHOOK_METRICS_NAMESPACE",
        ])
        .expect("the functions are given DEALHOOK_METRICS_NAMESPACE");
    let text = value.sub_text().or(value.text()).expect("a string or a !Sub");
    let namespace = text.replace("${AWS::StackName}", STACK);
    dealhook::metrics::parse_namespace(&namespace).expect("a namespace CloudWatch takes")
}

/// `!Sub` text with its variables filled in: the stack's name, a region, and `resource` for the rest.
fn substituted(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text
        .replace("${AWS::StackName}", STACK)
        .replace("${AWS::Region}", "eu-west-1");
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        out.push_str("resource-");
        out.push_str(&rest[start + 2..end].replace(['.', ':'], "-"));
        rest = rest[end + 1..].to_owned();
    }
    out + &rest
}

/// A part of the dashboard body in one mode: a string, a `!Sub`, `!Ref AWS::NoValue` (nothing), or an
/// `!If` on `IsQueueMode`.
fn part_text(node: &Node, queue_mode: bool) -> String {
    if let Some((condition, then, otherwise)) = node.if_parts() {
        assert_eq!(condition, "IsQueueMode", "the dashboard varies with the mode only");
        return part_text(if queue_mode { then } else { otherwise }, queue_mode);
    }
    if node.alternatives().is_empty() {
        return String::new(); // !Ref AWS::NoValue: no part
    }
    substituted(node.sub_text().or(node.text()).expect("a string or a !Sub"))
}

/// The dashboard's body as CloudWatch gets it in sync or queue mode.
fn dashboard(t: &Template, queue_mode: bool) -> (Value, String) {
    let body = t
        .resource("Dashboard")
        .and_then(|d| d.at(&["Properties", "DashboardBody"]))
        .expect("a Dashboard resource with a DashboardBody");
    let (separator, parts) = body.join_parts().expect("the body is a !Join of its parts");
    let text: Vec<String> = parts.iter().map(|p| part_text(p, queue_mode)).collect();
    let text = text.join(separator);
    let parsed = serde_json::from_str(&text).unwrap_or_else(|e| panic!("the body is not JSON ({e}):\n{text}"));
    (parsed, text)
}

/// One metric a widget shows: namespace, name, dimension names and values, and its stat.
#[derive(Debug)]
struct Shown {
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
    stat: Option<String>,
}

/// Every metric the dashboard's widgets show, from metric arrays and `SEARCH` expressions.
fn shown(body: &Value) -> Vec<Shown> {
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let properties = &widget["properties"];
        let default_stat = properties["stat"].as_str().map(str::to_owned);
        for row in properties["metrics"]
            .as_array()
            .expect("every widget here is a metric widget")
        {
            let row = row.as_array().expect("a metric row is an array");
            if let Some(expression) = row.first().and_then(|r| r["expression"].as_str()) {
                out.push(search(expression));
                continue;
            }
            let options = row.last().filter(|o| o.is_object());
            let texts: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
            assert!(
                texts.len() >= 2 && texts.len().is_multiple_of(2),
                "namespace, name, then name-value pairs: {row:?}"
            );
            out.push(Shown {
                namespace: texts[0].to_owned(),
                name: texts[1].to_owned(),
                dimensions: texts[2..]
                    .chunks(2)
                    .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                    .collect(),
                stat: options
                    .and_then(|o| o["stat"].as_str())
                    .map(str::to_owned)
                    .or(default_stat.clone()),
            });
        }
    }
    out
}

/// `SEARCH('{"namespace",dim,…} MetricName="Name"', 'Stat', period)`.
fn search(expression: &str) -> Shown {
    let inner = expression
        .strip_prefix("SEARCH('{")
        .unwrap_or_else(|| panic!("not a SEARCH over a schema: {expression}"));
    let (schema, rest) = inner.split_once('}').expect("a closed schema");
    let mut names = schema.split(',').map(|s| s.trim().trim_matches('"').to_owned());
    let namespace = names.next().expect("the schema's namespace");
    let name = rest
        .split("MetricName=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no MetricName in {expression}"));
    let stat = expression.split("', '").nth(1).and_then(|r| r.split('\'').next());
    Shown {
        namespace,
        name: name.to_owned(),
        dimensions: names.map(|n| (n, "*".to_owned())).collect(),
        stat: stat.map(str::to_owned),
    }
}

/// Whether `metric` is kept under exactly the dimension names `names`.
fn has_dimension_set(metric: Metric, names: &BTreeSet<&str>) -> bool {
    metric
        .dimension_sets()
        .iter()
        .any(|set| set.iter().copied().collect::<BTreeSet<&str>>() == *names)
}

fn metric_named(name: &str) -> Option<Metric> {
    Metric::ALL.into_iter().find(|m| m.name() == name)
}

/// Every value the code writes for a dimension with a fixed set of values, or `None` (any name).
fn known_values(dimension: &str) -> Option<Vec<&'static str>> {
    match dimension {
        "status_class" => Some(
            [Some(200), Some(300), Some(400), Some(500), None]
                .into_iter()
                .map(status_class)
                .collect(),
        ),
        "outcome" => Some(vec![
            "created",
            "updated",
            "skipped",
            "dry_run",
            "ignored",
            "dead_lettered",
            "rejected",
            "retry_later",
            "replayed",
            "in_progress",
            "queued",
            "deferred",
        ]),
        _ => None,
    }
}

/// Checks that each metric of our namespace is one the code emits, under one of its dimension sets,
/// with values the code writes; the messages of the rules broken.
fn check_ours(namespace: &str, shown: &[Shown]) -> Vec<String> {
    let mut broken = Vec::new();
    for s in shown.iter().filter(|s| s.namespace == namespace) {
        let Some(metric) = metric_named(&s.name) else {
            broken.push(format!("{} is not a metric dealhook emits", s.name));
            continue;
        };
        let names: BTreeSet<&str> = s.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        if !has_dimension_set(metric, &names) {
            broken.push(format!("{} is not kept under the dimensions {names:?}", s.name));
        }
        for (name, value) in &s.dimensions {
            if let Some(known) = known_values(name)
                && value != "*"
                && !known.contains(&value.as_str())
            {
                broken.push(format!("{}: {name} is never {value:?}", s.name));
            }
        }
    }
    broken
}

#[test]
fn the_dashboard_shows_only_metrics_the_code_emits_under_their_dimensions() {
    let t = Template::parse(&template_text());
    let namespace = namespace(&t);
    for queue_mode in [false, true] {
        let (body, text) = dashboard(&t, queue_mode);
        let shown = shown(&body);
        let broken = check_ours(&namespace, &shown);
        assert!(broken.is_empty(), "queue mode {queue_mode}: {broken:#?}\n{text}");
        // What the dashboard is for.
        let ours = |name: &str| {
            shown
                .iter()
                .filter(|s| s.namespace == namespace && s.name == name)
                .collect::<Vec<_>>()
        };
        let by = |name: &str, dimension: &str| {
            ours(name)
                .iter()
                .any(|s| s.dimensions.iter().any(|(n, v)| n == dimension && v == "*"))
        };
        assert!(by("Deliveries", "outcome"), "deliveries by outcome");
        assert!(by("DeadLetters", "reason"), "dead letters by reason");
        let latency_stats: BTreeSet<String> = ours("HubSpotLatency").iter().filter_map(|s| s.stat.clone()).collect();
        assert!(
            latency_stats.contains("p50") && latency_stats.contains("p99"),
            "{latency_stats:?}"
        );
        assert!(!ours("HubSpotThrottled").is_empty(), "429s");
        // The work queue exists in queue mode only: a widget naming it otherwise would fail the deploy.
        let queue_metrics: BTreeSet<&str> = shown
            .iter()
            .filter(|s| s.dimensions.iter().any(|(_, v)| v == "resource-WorkQueue-QueueName"))
            .map(|s| s.name.as_str())
            .collect();
        if queue_mode {
            assert!(
                queue_metrics.contains("ApproximateNumberOfMessagesVisible"),
                "{queue_metrics:?}"
            );
            assert!(
                queue_metrics.contains("ApproximateAgeOfOldestMessage"),
                "{queue_metrics:?}"
            );
            assert!(!ours("QueueLag").is_empty());
        } else {
            assert!(
                !text.contains("WorkQueue") && !text.contains("WorkerFunction"),
                "{text}"
            );
        }
    }
}

#[test]
fn the_dashboard_check_bites_on_a_name_a_dimension_set_or_a_value_the_code_does_not_write() {
    let ns = "dealhook/x";
    let shown = |name: &str, dims: &[(&str, &str)]| Shown {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        dimensions: dims.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        stat: None,
    };
    assert!(check_ours(ns, &[shown("Deliveries", &[("outcome", "created")])]).is_empty());
    for (case, wrong) in [
        ("unknown name", shown("Delivery", &[])),
        ("unknown set", shown("Deliveries", &[("endpoint", "*")])),
        ("unknown value", shown("HubSpotCalls", &[("status_class", "429")])),
        ("unknown outcome", shown("Deliveries", &[("outcome", "failed")])),
    ] {
        assert_eq!(check_ours(ns, &[wrong]).len(), 1, "{case}");
    }
    let parsed = search(r#"SEARCH('{"dealhook/x",reason} MetricName="DeadLetters"', 'Sum', 300)"#);
    assert_eq!((parsed.namespace.as_str(), parsed.name.as_str()), (ns, "DeadLetters"));
    assert_eq!(parsed.dimensions, [("reason".to_owned(), "*".to_owned())]);
    assert_eq!(parsed.stat.as_deref(), Some("Sum"));
}

#[test]
fn every_alarm_on_dealhooks_metrics_names_one_it_emits_and_429s_and_retry_later_are_alarmed() {
    let t = Template::parse(&template_text());
    let namespace = namespace(&t);
    let mut ours = Vec::new();
    for (name, alarm) in t.resources_of_type("AWS::CloudWatch::Alarm") {
        let properties = alarm.get("Properties").expect("Properties");
        let Some(ns) = properties.get("Namespace") else {
            continue;
        };
        let ns = ns.sub_text().or(ns.text()).map(substituted).unwrap_or_default();
        let metric = properties
            .get("MetricName")
            .and_then(Node::text)
            .unwrap_or_default()
            .to_owned();
        let dimensions: Vec<(String, String)> = properties
            .get("Dimensions")
            .map(Node::alternatives)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| Some((d.get("Name")?.text()?.to_owned(), d.get("Value")?.text()?.to_owned())))
            .collect();
        if ns == namespace {
            ours.push((name.to_owned(), metric.clone()));
            let broken = check_ours(
                &namespace,
                &[Shown {
                    namespace: ns,
                    name: metric,
                    dimensions,
                    stat: None,
                }],
            );
            assert!(broken.is_empty(), "{name}: {broken:?}");
        }
    }
    let metrics: BTreeSet<&str> = ours.iter().map(|(_, m)| m.as_str()).collect();
    assert!(metrics.contains("HubSpotThrottled"), "{ours:?}");
    assert!(metrics.contains("Deliveries"), "{ours:?}");
}
