//! Metrics in CloudWatch Embedded Metric Format (EMF): JSON lines on stdout that CloudWatch Logs turns
//! into metrics, so recording costs no API call and no wait. Values are gathered in memory for one
//! invocation ([`Metrics::scope`]) and written once at its end, in one write. A metric never carries a
//! payload value or a secret: its dimensions are our own labels (outcome, reason, call, status class)
//! and endpoint names from the mapping.
//!
//! Our own emitter, not `metrics` + `metrics_cloudwatch_embedded` (0.10): that crate keeps counters in a
//! process-wide recorder, so one invocation's lines can carry another's counts (and tests running in
//! parallel see each other's); it keeps at most 100 values of a histogram between flushes and drops the
//! rest (a `for_each` delivery makes more HubSpot calls than that); its properties (the request id) are
//! global; it unwraps its mutexes; and its default feature brings `lambda_http`, which dealhook avoids.
//! The format is small (see [`Metrics::scope`] for the line's shape), so the emitter is too.
//!
//! Specification: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::Outcome;
use crate::domain::Reason;
use crate::hubspot::DealWrite;

/// The variable naming the CloudWatch namespace the metrics go to.
pub const NAMESPACE_VAR: &str = "DEALHOOK_METRICS_NAMESPACE";

/// The namespace when [`NAMESPACE_VAR`] is not set.
pub const DEFAULT_NAMESPACE: &str = "dealhook";

/// EMF's limit of values in one metric's array; more are written in further lines.
pub const MAX_VALUES_PER_LINE: usize = 100;

/// Dimension value for a delivery whose endpoint the mapping does not have (never the path's own text:
/// anyone can send to any path).
pub const UNKNOWN_ENDPOINT: &str = "unknown";

/// Every metric dealhook emits. Names, units and dimensions are a contract with the dashboard and alarms
/// in template.yaml (tests/api/template.rs checks they agree) and are listed in the README's `### Metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// One per delivery, by `endpoint` and `outcome` (the log's outcome label).
    Deliveries,
    /// One per record of a delivery on a route with `for_each`, by `endpoint` and `outcome`.
    Records,
    /// One per new deal (not an update or a `dedupe` skip), by `endpoint`.
    DealsCreated,
    /// One per dead letter written, by `reason`.
    DeadLetters,
    /// One per dead letter that could not be written (the sender is asked to retry: `503`).
    DeadLetterWriteFailures,
    /// One per HubSpot request sent, by `call` and `status_class` (`2xx`, `4xx`, `5xx`, `none` when no
    /// answer came).
    HubSpotCalls,
    /// Milliseconds of one HubSpot request, by `call`.
    HubSpotLatency,
    /// One per HubSpot request sent again after a failure, by `call`.
    HubSpotRetries,
    /// One per HubSpot `429` (rate limited), by `call`.
    HubSpotThrottled,
    /// One per contact, company or link that could not be made for a deal.
    AssociationFailures,
    /// One per process: its first invocation.
    ColdStarts,
    /// Queue mode: milliseconds from the work item's `SentTimestamp` to the worker starting it.
    QueueLag,
}

/// A CloudWatch unit, as the EMF `Unit` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `Count`.
    Count,
    /// `Milliseconds`.
    Milliseconds,
}

impl Unit {
    /// The unit's name in EMF and CloudWatch.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Dimension names: the lines' top-level members holding each dimension's value.
pub mod dimension {
    /// The endpoint the delivery came to (`/hooks/{endpoint}`), or [`super::UNKNOWN_ENDPOINT`].
    pub const ENDPOINT: &str = "endpoint";
    /// The outcome label (`created`, `dead_lettered`, `rejected`, …; see the README).
    pub const OUTCOME: &str = "outcome";
    /// A dead letter's reason (`mapping_failed`, `hubspot_rejected`, …).
    pub const REASON: &str = "reason";
    /// The HubSpot call (`deal`, `contacts_upsert`, `company_search`, …).
    pub const CALL: &str = "call";
    /// The HTTP status class of HubSpot's answer: `2xx`, `3xx`, `4xx`, `5xx`, or `none`.
    pub const STATUS_CLASS: &str = "status_class";
}

use dimension::{CALL, ENDPOINT, OUTCOME, REASON, STATUS_CLASS};

impl Metric {
    /// Every metric, in the order lines list them.
    pub const ALL: [Metric; 12] = [
        Metric::Deliveries,
        Metric::Records,
        Metric::DealsCreated,
        Metric::DeadLetters,
        Metric::DeadLetterWriteFailures,
        Metric::HubSpotCalls,
        Metric::HubSpotLatency,
        Metric::HubSpotRetries,
        Metric::HubSpotThrottled,
        Metric::AssociationFailures,
        Metric::ColdStarts,
        Metric::QueueLag,
    ];

    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Deliveries => "Deliveries",
            Metric::Records => "Records",
            Metric::DealsCreated => "DealsCreated",
            Metric::DeadLetters => "DeadLetters",
            Metric::DeadLetterWriteFailures => "DeadLetterWriteFailures",
            Metric::HubSpotCalls => "HubSpotCalls",
            Metric::HubSpotLatency => "HubSpotLatency",
            Metric::HubSpotRetries => "HubSpotRetries",
            Metric::HubSpotThrottled => "HubSpotThrottled",
            Metric::AssociationFailures => "AssociationFailures",
            Metric::ColdStarts => "ColdStarts",
            Metric::QueueLag => "QueueLag",
        }
    }

    /// The metric's unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::HubSpotLatency | Metric::QueueLag => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }

    /// The dimension sets CloudWatch keeps the metric under (each set is one CloudWatch metric; `[]`
    /// is the total). A recorded value names the dimensions of the largest set.
    pub fn dimension_sets(self) -> &'static [&'static [&'static str]] {
        match self {
            Metric::Deliveries | Metric::Records => &[&[OUTCOME], &[ENDPOINT, OUTCOME]],
            Metric::DealsCreated => &[&[], &[ENDPOINT]],
            Metric::DeadLetters => &[&[REASON]],
            Metric::HubSpotCalls => &[&[STATUS_CLASS], &[CALL, STATUS_CLASS]],
            Metric::HubSpotLatency | Metric::HubSpotRetries | Metric::HubSpotThrottled => &[&[], &[CALL]],
            Metric::DeadLetterWriteFailures | Metric::AssociationFailures | Metric::ColdStarts | Metric::QueueLag => {
                &[&[]]
            }
        }
    }

    /// Whether each value is kept (a distribution: CloudWatch computes percentiles) rather than summed.
    fn is_distribution(self) -> bool {
        self.unit() == Unit::Milliseconds
    }
}

/// Where the lines go.
#[derive(Clone, Default)]
pub enum Sink {
    /// Nowhere (`dealhook invoke` and other local runs, whose stdout is the answer).
    #[default]
    Off,
    /// The process's stdout, where Lambda's log capture (and so EMF extraction) reads them.
    Stdout,
    /// Appended to a buffer (tests).
    Memory(Arc<Mutex<Vec<u8>>>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Off => "Off",
            Sink::Stdout => "Stdout",
            Sink::Memory(_) => "Memory",
        })
    }
}

/// The app's metrics: the namespace, where lines go, and whether the process has had its first
/// invocation (the cold start). Built once per process.
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    sink: Sink,
    cold: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(DEFAULT_NAMESPACE, Sink::Off)
    }
}

/// A namespace CloudWatch would refuse: which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidNamespace(String);

/// Checks a CloudWatch namespace: 1 to 255 characters of letters, digits and `. - _ / # : `, space,
/// not starting with `AWS/` (CloudWatch's rules for `PutMetricData`, which EMF extraction applies).
pub fn parse_namespace(namespace: &str) -> Result<String, InvalidNamespace> {
    if namespace.is_empty() || namespace.chars().count() > 255 {
        return Err(InvalidNamespace(format!(
            "{namespace:?} must be 1 to 255 characters long"
        )));
    }
    if let Some(bad) = namespace
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_/#: ".contains(*c)))
    {
        return Err(InvalidNamespace(format!(
            "{namespace:?} holds {bad:?}: only letters, digits, space and . - _ / # : are allowed"
        )));
    }
    if namespace.starts_with("AWS/") {
        return Err(InvalidNamespace(format!(
            "{namespace:?} starts with AWS/, which is reserved for AWS services"
        )));
    }
    Ok(namespace.to_owned())
}

impl Metrics {
    /// Metrics under `namespace` (checked by [`parse_namespace`] when read from the environment),
    /// written to `sink`.
    pub fn new(namespace: impl Into<String>, sink: Sink) -> Metrics {
        Metrics {
            namespace: namespace.into(),
            sink,
            cold: AtomicBool::new(true),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether lines are written anywhere (not [`Sink::Off`]).
    pub fn writes(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// Runs `invocation` with a fresh recording, then writes what it recorded: one EMF line per set of
    /// dimension values, all in one write, tagged with `request_id`. The process's first scope also
    /// counts a cold start. Inside an outer scope (the worker's batch), `invocation` records into it
    /// and nothing is written until the outer one ends.
    ///
    /// A line: `{"_aws":{"Timestamp":<ms>,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":[[…]],
    /// "Metrics":[{"Name":…,"Unit":…}]}]},"<dimension>":"<value>",…,"<metric>":<number or array>,
    /// "requestId":…}`.
    pub async fn scope<F: Future>(&self, request_id: &str, invocation: F) -> F::Output {
        if RECORDING.try_with(|_| ()).is_ok() {
            return invocation.await;
        }
        let recording = Arc::new(Recording::default());
        if self.cold.swap(false, Ordering::Relaxed) {
            recording.add(Metric::ColdStarts, &[], 1.0);
        }
        let output = RECORDING.scope(recording.clone(), invocation).await;
        self.flush(&recording, request_id);
        output
    }

    fn flush(&self, recording: &Recording, request_id: &str) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        let timestamp = chrono::Utc::now().timestamp_millis();
        let text = recording.render(&self.namespace, timestamp, request_id);
        if text.is_empty() {
            return;
        }
        match &self.sink {
            Sink::Off => {}
            Sink::Stdout => {
                // One write of every line: Lambda reads stdout line by line, and a failed write costs the
                // metrics only, never the delivery.
                if let Err(error) = std::io::stdout().lock().write_all(text.as_bytes()) {
                    tracing::warn!(error = %error, "the metrics could not be written to stdout");
                }
            }
            Sink::Memory(buffer) => buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(text.as_bytes()),
        }
    }
}

tokio::task_local! {
    static RECORDING: Arc<Recording>;
}

/// Records `value` of `metric` under `dimensions` (the names of the metric's largest dimension set,
/// with their values) in the invocation's recording; outside [`Metrics::scope`], does nothing. Never
/// fails and never waits (a mutex held for a map insert).
pub fn record(metric: Metric, dimensions: &[(&'static str, &str)], value: f64) {
    let _ = RECORDING.try_with(|recording| recording.add(metric, dimensions, value));
}

/// [`record`] of a count of one.
pub fn count(metric: Metric, dimensions: &[(&'static str, &str)]) {
    record(metric, dimensions, 1.0);
}

/// Records how a delivery ended: [`Metric::Deliveries`] by `endpoint` (a name the mapping has, or
/// [`UNKNOWN_ENDPOINT`]) and outcome label, [`Metric::DealsCreated`] for a new deal, and for a delivery
/// on a route with `for_each`, [`Metric::Records`] and [`Metric::DealsCreated`] per record.
pub fn delivery_ended(endpoint: &str, outcome: &Outcome) {
    count(Metric::Deliveries, &[(ENDPOINT, endpoint), (OUTCOME, outcome.label())]);
    let created = |outcome: &Outcome| matches!(outcome, Outcome::Created(deal) if deal.write == DealWrite::Created);
    match outcome {
        Outcome::Records(records) => {
            for record in records {
                count(
                    Metric::Records,
                    &[(ENDPOINT, endpoint), (OUTCOME, record.outcome.label())],
                );
                if created(&record.outcome) {
                    count(Metric::DealsCreated, &[(ENDPOINT, endpoint)]);
                }
            }
        }
        outcome if created(outcome) => count(Metric::DealsCreated, &[(ENDPOINT, endpoint)]),
        _ => {}
    }
}

/// Records a dead letter written ([`Metric::DeadLetters`] by `reason`) or not
/// ([`Metric::DeadLetterWriteFailures`]).
pub fn dead_letter_written(reason: Reason, written: bool) {
    if written {
        count(Metric::DeadLetters, &[(REASON, reason.as_str())]);
    } else {
        count(Metric::DeadLetterWriteFailures, &[]);
    }
}

/// Records `failures` contacts, companies or links not made for a deal ([`Metric::AssociationFailures`]).
pub fn association_failures(failures: usize) {
    if failures > 0 {
        record(Metric::AssociationFailures, &[], failures as f64);
    }
}

/// Records one HubSpot request of the plan: [`Metric::HubSpotCalls`] by `call` and the class of
/// `status` (`None`: no answer), its [`Metric::HubSpotLatency`], [`Metric::HubSpotThrottled`] on a 429,
/// and [`Metric::HubSpotRetries`] when it was not the call's first request.
pub fn hubspot_request(call: &str, status: Option<u16>, elapsed: std::time::Duration, retry: bool) {
    count(
        Metric::HubSpotCalls,
        &[(CALL, call), (STATUS_CLASS, status_class(status))],
    );
    record(Metric::HubSpotLatency, &[(CALL, call)], elapsed.as_secs_f64() * 1000.0);
    if status == Some(429) {
        count(Metric::HubSpotThrottled, &[(CALL, call)]);
    }
    if retry {
        count(Metric::HubSpotRetries, &[(CALL, call)]);
    }
}

/// The class of an HTTP status for the `status_class` dimension (`none`: no answer).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) | None => "none",
    }
}

/// Values of one line: the metric's dimension sets and the dimension values.
type LineKey = (&'static [&'static [&'static str]], Vec<(&'static str, String)>);

enum Value {
    Sum(f64),
    Values(Vec<f64>),
}

/// What one invocation recorded, by line.
#[derive(Default)]
struct Recording {
    lines: Mutex<BTreeMap<LineKey, BTreeMap<Metric, Value>>>,
}

impl Recording {
    fn add(&self, metric: Metric, dimensions: &[(&'static str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        // CloudWatch refuses an empty or blank dimension value.
        let dimensions = dimensions
            .iter()
            .map(|(name, value)| {
                let value = if value.trim().is_empty() { "none" } else { value };
                (*name, value.to_owned())
            })
            .collect();
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let line = lines.entry((metric.dimension_sets(), dimensions)).or_default();
        match line.entry(metric) {
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(if metric.is_distribution() {
                    Value::Values(vec![value])
                } else {
                    Value::Sum(value)
                });
            }
            std::collections::btree_map::Entry::Occupied(mut entry) => match entry.get_mut() {
                Value::Sum(sum) => *sum += value,
                Value::Values(values) => values.push(value),
            },
        }
    }

    /// Every line, each ending in `\n`; a distribution of more than [`MAX_VALUES_PER_LINE`] values
    /// continues on further lines with the same dimensions.
    fn render(&self, namespace: &str, timestamp: i64, request_id: &str) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        for ((sets, dimensions), metrics) in lines.iter() {
            let chunks = metrics
                .values()
                .map(|v| match v {
                    Value::Sum(_) => 1,
                    Value::Values(values) => values.len().div_ceil(MAX_VALUES_PER_LINE),
                })
                .max()
                .unwrap_or(0);
            for chunk in 0..chunks {
                let mut line = serde_json::Map::new();
                let mut directive_metrics = Vec::new();
                for (metric, value) in metrics {
                    let value = match value {
                        Value::Sum(sum) if chunk == 0 => number(*sum),
                        Value::Values(values) => {
                            let start = chunk * MAX_VALUES_PER_LINE;
                            match values.get(start..(start + MAX_VALUES_PER_LINE).min(values.len())) {
                                Some(part) if !part.is_empty() => part.iter().copied().map(number).collect(),
                                _ => continue,
                            }
                        }
                        Value::Sum(_) => continue,
                    };
                    directive_metrics.push(serde_json::json!({"Name": metric.name(), "Unit": metric.unit().as_str()}));
                    line.insert(metric.name().to_owned(), value);
                }
                for (name, value) in dimensions {
                    line.insert((*name).to_owned(), serde_json::json!(value));
                }
                if !request_id.is_empty() {
                    line.insert("requestId".to_owned(), serde_json::json!(request_id));
                }
                line.insert(
                    "_aws".to_owned(),
                    serde_json::json!({
                        "Timestamp": timestamp,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": sets,
                            "Metrics": directive_metrics,
                        }],
                    }),
                );
                if let Ok(json) = serde_json::to_string(&line) {
                    text.push_str(&json);
                    text.push('\n');
                }
            }
        }
        text
    }
}

/// A whole number as an integer (`3`, not `3.0`), anything else as it is.
fn number(value: f64) -> serde_json::Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serde_json::json!(value as i64)
    } else {
        serde_json::json!(value)
    }
}

/// Test support: metrics written into memory.
#[cfg(test)]
pub(crate) mod capture {
    use super::*;

    /// Metrics whose lines go into a buffer, and the buffer.
    pub(crate) fn metrics() -> (Metrics, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        (Metrics::new("dealhook-test", Sink::Memory(buffer.clone())), buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::capture;
    use super::*;

    use crate::tests::metrics::emf;

    fn text(buffer: &Mutex<Vec<u8>>) -> String {
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    /// The lines of one scope in which `body` records.
    async fn lines_of(body: impl FnOnce()) -> String {
        let (metrics, buffer) = capture::metrics();
        metrics.scope("req-1", async { body() }).await;
        text(&buffer)
    }

    #[tokio::test]
    async fn every_metric_with_its_largest_dimension_set_makes_lines_that_keep_the_specification() {
        let out = lines_of(|| {
            for metric in Metric::ALL {
                let names = metric.dimension_sets().iter().max_by_key(|s| s.len()).unwrap();
                let dims: Vec<(&'static str, &str)> = names.iter().map(|n| (*n, "v")).collect();
                record(metric, &dims, 3.0);
            }
        })
        .await;
        let points = emf::validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        for metric in Metric::ALL {
            let sets = metric.dimension_sets();
            let found: Vec<&emf::Point> = points.iter().filter(|p| p.name == metric.name()).collect();
            assert_eq!(
                found.len(),
                sets.len(),
                "{}: one point per dimension set\n{out}",
                metric.name()
            );
            for point in found {
                assert_eq!(point.unit.as_deref(), Some(metric.unit().as_str()));
                assert_eq!(point.namespace, "dealhook-test");
                // ColdStarts also has the scope's own count of one.
                let expected = if metric == Metric::ColdStarts { 4.0 } else { 3.0 };
                assert_eq!(point.values.iter().sum::<f64>(), expected, "{}", metric.name());
            }
        }
    }

    #[tokio::test]
    async fn counts_are_summed_per_dimension_values_and_latencies_kept_one_by_one() {
        let out = lines_of(|| {
            count(Metric::DeadLetters, &[(REASON, "mapping_failed")]);
            count(Metric::DeadLetters, &[(REASON, "mapping_failed")]);
            count(Metric::DeadLetters, &[(REASON, "hubspot_rejected")]);
            record(Metric::HubSpotLatency, &[(CALL, "deal")], 12.5);
            record(Metric::HubSpotLatency, &[(CALL, "deal")], 40.0);
        })
        .await;
        let points = emf::validate(&out).unwrap();
        assert_eq!(emf::sum(&points, "DeadLetters", &[("reason", "mapping_failed")]), 2.0);
        assert_eq!(emf::sum(&points, "DeadLetters", &[("reason", "hubspot_rejected")]), 1.0);
        let latency: Vec<&emf::Point> = points
            .iter()
            .filter(|p| p.name == "HubSpotLatency" && p.dimensions.is_empty())
            .collect();
        assert_eq!(latency.len(), 1);
        assert_eq!(latency[0].values, [12.5, 40.0]);
        // A whole count is written as an integer.
        assert!(out.contains(r#""DeadLetters":2"#), "{out}");
    }

    #[tokio::test]
    async fn more_than_a_hundred_latencies_continue_on_further_lines() {
        let out = lines_of(|| {
            for ms in 0..250 {
                record(Metric::HubSpotLatency, &[(CALL, "deal")], f64::from(ms));
            }
            count(Metric::HubSpotRetries, &[(CALL, "deal")]);
        })
        .await;
        let points = emf::validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(emf::samples(&points, "HubSpotLatency", &[("call", "deal")]), 250);
        let total: f64 = (0..250).map(f64::from).sum();
        assert_eq!(emf::sum(&points, "HubSpotLatency", &[("call", "deal")]), total);
        // The count is written once, not once per continuation line.
        assert_eq!(emf::sum(&points, "HubSpotRetries", &[("call", "deal")]), 1.0);
        assert_eq!(out.lines().filter(|l| l.contains("HubSpotLatency")).count(), 3);
    }

    #[tokio::test]
    async fn a_scope_within_a_scope_records_into_the_outer_and_writes_once() {
        let (metrics, buffer) = capture::metrics();
        metrics
            .scope("outer", async {
                count(Metric::Deliveries, &[(ENDPOINT, "a"), (OUTCOME, "created")]);
                metrics
                    .scope("inner", async {
                        count(Metric::Deliveries, &[(ENDPOINT, "a"), (OUTCOME, "created")]);
                    })
                    .await;
                assert!(text(&buffer).is_empty(), "written before the outer scope ended");
            })
            .await;
        let out = text(&buffer);
        let points = emf::validate(&out).unwrap();
        assert_eq!(emf::sum(&points, "Deliveries", &[("outcome", "created")]), 2.0);
        assert_eq!(emf::sum(&points, "ColdStarts", &[]), 1.0);
        assert!(!out.contains("inner"), "{out}");
    }

    #[tokio::test]
    async fn outside_a_scope_nothing_is_recorded_and_an_off_sink_writes_nothing() {
        count(Metric::Deliveries, &[(ENDPOINT, "a"), (OUTCOME, "created")]);
        let (metrics, buffer) = capture::metrics();
        metrics.scope("r", async {}).await;
        let points = emf::validate(&text(&buffer)).unwrap();
        assert!(points.iter().all(|p| p.name == "ColdStarts"), "{points:?}");
        let off = Metrics::default();
        off.scope("r", async { count(Metric::DeadLetterWriteFailures, &[]) })
            .await;
        assert_eq!(off.namespace(), DEFAULT_NAMESPACE);
    }

    #[tokio::test]
    async fn a_blank_dimension_value_is_written_as_none_and_a_non_finite_value_is_dropped() {
        let out = lines_of(|| {
            count(Metric::Deliveries, &[(ENDPOINT, " "), (OUTCOME, "rejected")]);
            record(Metric::HubSpotLatency, &[(CALL, "deal")], f64::NAN);
            record(Metric::QueueLag, &[], f64::INFINITY);
        })
        .await;
        let points = emf::validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(
            emf::sum(&points, "Deliveries", &[("endpoint", "none"), ("outcome", "rejected")]),
            1.0
        );
        assert!(
            points
                .iter()
                .all(|p| p.name != "HubSpotLatency" && p.name != "QueueLag")
        );
    }

    #[test]
    fn status_classes() {
        for (status, class) in [
            (Some(200), "2xx"),
            (Some(207), "2xx"),
            (Some(301), "3xx"),
            (Some(400), "4xx"),
            (Some(429), "4xx"),
            (Some(502), "5xx"),
            (Some(99), "none"),
            (Some(600), "none"),
            (None, "none"),
        ] {
            assert_eq!(status_class(status), class, "{status:?}");
        }
    }

    /// Namespaces CloudWatch refuses, each for one rule.
    #[test]
    fn namespaces_are_checked_against_cloudwatchs_rules() {
        assert_eq!(parse_namespace("dealhook").unwrap(), "dealhook");
        assert_eq!(
            parse_namespace("Acme/dealhook prod:1#a_b-c.d").unwrap(),
            "Acme/dealhook prod:1#a_b-c.d"
        );
        for (namespace, rule) in [
            ("", "1 to 255"),
            (&"n".repeat(256) as &str, "1 to 255"),
            ("deal$hook", "'$'"),
            ("dealhook\n", "'\\n'"),
            ("dealhöok", "'ö'"),
            ("AWS/Lambda", "reserved"),
        ] {
            let error = parse_namespace(namespace).unwrap_err().to_string();
            assert!(error.contains(rule), "{namespace:?}: {error}");
        }
        assert!(parse_namespace(&"n".repeat(255)).is_ok());
    }

    /// The validator itself: a line breaking each rule of the specification is refused, naming it.
    #[test]
    fn the_emf_validator_refuses_each_broken_rule() {
        let good = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["d"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"d":"v","M":1}"#;
        assert_eq!(emf::validate_line(good).unwrap().len(), 1);
        let too_many_dims: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
        let mut many_dims = serde_json::from_str::<serde_json::Value>(good).unwrap();
        many_dims["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([too_many_dims]);
        for name in &too_many_dims {
            many_dims[name] = serde_json::json!("v");
        }
        let mut many_metrics = serde_json::from_str::<serde_json::Value>(good).unwrap();
        let names: Vec<serde_json::Value> = (0..101).map(|i| serde_json::json!({"Name": format!("M{i}")})).collect();
        for i in 0..101 {
            many_metrics[format!("M{i}")] = serde_json::json!(1);
        }
        many_metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"] = serde_json::json!(names);
        let many_values = good.replace(r#""M":1"#, &format!(r#""M":{:?}"#, vec![1; 101]));
        let cases: Vec<(&str, String, &str)> = vec![
            ("not JSON", "{".into(), "not JSON"),
            ("no _aws", r#"{"M":1}"#.into(), "_aws"),
            (
                "timestamp in seconds",
                good.replace("1700000000000", "1700000000"),
                "milliseconds",
            ),
            (
                "timestamp a string",
                good.replace("1700000000000", r#""1700000000000""#),
                "Timestamp",
            ),
            (
                "no directives",
                good.replace(r#""CloudWatchMetrics":[{"#, r#""X":[{"#),
                "CloudWatchMetrics",
            ),
            (
                "empty namespace",
                good.replace(r#""Namespace":"n""#, r#""Namespace":"""#),
                "Namespace",
            ),
            (
                "dimension not a member",
                good.replace(r#""d":"v","#, ""),
                "not a member",
            ),
            (
                "dimension value a number",
                good.replace(r#""d":"v""#, r#""d":7"#),
                "not a string",
            ),
            (
                "dimension value blank",
                good.replace(r#""d":"v""#, r#""d":" ""#),
                "blank",
            ),
            ("31 dimensions", many_dims.to_string(), "at most 30"),
            ("metric not a member", good.replace(r#","M":1"#, ""), "not a member"),
            (
                "metric value a string",
                good.replace(r#""M":1"#, r#""M":"1""#),
                "not a number",
            ),
            ("101 metrics", many_metrics.to_string(), "at most 100"),
            ("101 values", many_values, "1 to 100"),
            ("empty values", good.replace(r#""M":1"#, r#""M":[]"#), "1 to 100"),
            (
                "unit unknown",
                good.replace(r#""Unit":"Count""#, r#""Unit":"Counts""#),
                "not a CloudWatch unit",
            ),
            (
                "metric named twice",
                good.replace(r#"{"Name":"M","Unit":"Count"}"#, r#"{"Name":"M"},{"Name":"M"}"#),
                "twice",
            ),
            (
                "no dimension set",
                good.replace(r#"[["d"]]"#, "[]"),
                "extract no metric",
            ),
            (
                "bad resolution",
                good.replace(r#""Unit":"Count""#, r#""Unit":"Count","StorageResolution":5"#),
                "StorageResolution",
            ),
        ];
        for (case, line, rule) in cases {
            let error = emf::validate_line(&line).expect_err(case);
            assert!(error.contains(rule), "{case}: {error}");
        }
    }
}
