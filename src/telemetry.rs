//! Logging: JSON lines on stderr in Lambda's JSON log format (`timestamp`, `level`, `message`, and inside
//! an invocation `requestId` and `xray_trace_id`), our own fields snake_case beside them. Level from
//! `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`; the runtime's and HTTP stacks' targets are capped
//! at INFO whatever the level, since below it they print raw events, headers and bodies ([`CAPPED`]).
//! Callers never put a secret in a field; should one slip in anyway (an error quoting a body, a URL),
//! [`Scrubbing`] takes every known secret value out of each line before it is written. Payload values
//! (personal data) are logged only at DEBUG with `DEALHOOK_LOG_PAYLOADS=true` ([`payloads_logged`]).
//!
//! Stage spans (`verify`, `decode`, `map`, …, `hubspot_*`) are timed by [`StageTimer`] into the
//! `delivery` span that holds them, for the delivery's summary line ([`StageTimes`]).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::credentials::scrub;

/// Targets whose lines are capped at INFO whatever `RUST_LOG` says: below INFO, `lambda_runtime` logs the
/// raw event (query tokens, signature headers, bodies), and the HTTP and SDK stacks log requests,
/// headers (`Authorization`, the signing's canonical request with its session token) and bodies.
/// A prefix covers its sub-modules (`hyper` covers `hyper::proto::h1`).
pub const CAPPED: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sigv4",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_secretsmanager",
    "aws_sdk_sqs",
    "aws_sdk_s3",
    "aws_sdk_dynamodb",
];

/// The stage spans whose times the delivery's summary line reports (see [`StageTimes`]); HubSpot calls
/// are the `hubspot_*` spans of the HubSpot client.
pub const STAGES: &[&str] = &[
    "verify",
    "decode",
    "map",
    "resolve",
    "secret",
    "idempotency",
    "dead_letter",
    "enqueue",
];

/// The span a delivery runs in; its summary line reads the stage times from it.
pub const DELIVERY_SPAN: &str = "delivery";
/// The span one record of a `for_each` delivery runs in; its `record` line reads its stage times from it.
pub const RECORD_SPAN: &str = "record";

/// Set when `DEALHOOK_LOG_PAYLOADS` is true (see [`payloads_logged`]).
static LOG_PAYLOADS: AtomicBool = AtomicBool::new(false);

/// The log settings read from the environment once, at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The filter directives: `RUST_LOG` as given, else `AWS_LAMBDA_LOG_LEVEL` in lower case (`FATAL` is
    /// `error`), else `info`.
    pub filter: String,
    /// `DEALHOOK_LOG_PAYLOADS` is `true` or `1`: DEBUG lines may hold payload values (see
    /// [`payloads_logged`]).
    pub payloads: bool,
}

impl LogSettings {
    /// From the process environment.
    pub fn from_env() -> LogSettings {
        let var = |name| std::env::var(name).ok();
        LogSettings::from_vars(
            var("RUST_LOG").as_deref(),
            var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
            var("DEALHOOK_LOG_PAYLOADS").as_deref(),
        )
    }

    /// From the values of `RUST_LOG`, `AWS_LAMBDA_LOG_LEVEL` (Lambda sets it from the function's
    /// `ApplicationLogLevel`: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) and
    /// `DEALHOOK_LOG_PAYLOADS`. Empty values count as unset; an unknown Lambda level is `info`.
    pub fn from_vars(rust_log: Option<&str>, lambda_level: Option<&str>, payloads: Option<&str>) -> LogSettings {
        let filter = match (set(rust_log), set(lambda_level)) {
            (Some(rust_log), _) => rust_log.to_owned(),
            (None, Some(level)) => match level.to_ascii_uppercase().as_str() {
                "TRACE" => "trace",
                "DEBUG" => "debug",
                "WARN" => "warn",
                "ERROR" | "FATAL" => "error",
                _ => "info",
            }
            .to_owned(),
            (None, None) => "info".to_owned(),
        };
        let payloads = set(payloads).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        LogSettings { filter, payloads }
    }
}

/// A variable's value, trimmed; `None` when unset or empty.
fn set(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Installs the JSON subscriber with the settings of the environment ([`LogSettings::from_env`]). Safe to
/// call twice (the second call does nothing).
pub fn init() {
    let settings = LogSettings::from_env();
    let (subscriber, invalid) = subscriber(Scrubbing(std::io::stderr), &settings);
    if subscriber.try_init().is_ok() {
        LOG_PAYLOADS.store(settings.payloads, Ordering::Relaxed);
        if let Some(error) = invalid {
            tracing::warn!(error = %error, "RUST_LOG is not a valid filter; logging at info");
        }
    }
}

/// The subscriber [`init`] installs, writing to `writer`: the level filter of `settings` (or `info`, and
/// the parse error, when its directives are invalid), the caps of [`CAPPED`], the Lambda JSON lines
/// ([`LambdaJson`]) and the stage timer ([`StageTimer`]). `settings.payloads` is applied by [`init`] only.
pub fn subscriber<W>(writer: W, settings: &LogSettings) -> (impl Subscriber + Send + Sync + 'static, Option<String>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (filter, invalid) = match EnvFilter::builder().parse(&settings.filter) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error.to_string())),
    };
    let caps = CAPPED
        .iter()
        .fold(Targets::new().with_default(LevelFilter::TRACE), |targets, target| {
            targets.with_target(*target, LevelFilter::INFO)
        });
    // The level filter and the caps are the log lines' own (a per-layer filter), so that `RUST_LOG` never
    // hides a span from the X-Ray layer, which has its own filter and is installed only when Lambda
    // names the X-Ray daemon (`AWS_XRAY_DAEMON_ADDRESS`, see [`crate::xray`]).
    let logs = StageTimer.and_then(LambdaJson { writer }).with_filter(filter.and(caps));
    let xray = crate::xray::XrayLayer::from_env().map(|layer| layer.with_filter(crate::xray::xray_filter()));
    let subscriber = Registry::default().with(logs).with(xray);
    (subscriber, invalid)
}

/// Whether DEBUG lines may hold payload values (submission fields, the deal's properties, HubSpot's
/// messages quoting them): only with `DEALHOOK_LOG_PAYLOADS=true` and DEBUG enabled. Secrets are
/// scrubbed from those lines as from any other.
pub fn payloads_logged() -> bool {
    LOG_PAYLOADS.load(Ordering::Relaxed) && tracing::enabled!(tracing::Level::DEBUG)
}

/// Test support: turns the payload switch on or off for this process.
#[cfg(test)]
pub(crate) fn set_payloads_logged(on: bool) {
    LOG_PAYLOADS.store(on, Ordering::Relaxed);
}

/// The JSON-line layer: one object per event, `timestamp` (RFC 3339 UTC, milliseconds), `level`
/// (`INFO`…), `message`, `requestId` and `xray_trace_id` (from the outermost span in scope that has
/// them: the runtime's `Lambda runtime invoke`, our `invocation`, else the `delivery`), then the event's
/// fields, then `span`: the name and fields of the innermost span. An event field named like one of
/// those keys does not replace it.
#[derive(Debug)]
pub struct LambdaJson<W> {
    writer: W,
}

/// A span's fields as JSON, kept by [`LambdaJson`] for the lines logged inside it.
struct SpanFields(Map<String, Value>);

impl<S, W> Layer<S> for LambdaJson<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = JsonVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let mut visitor = JsonVisitor(std::mem::take(fields));
            values.record(&mut visitor);
            *fields = visitor.0;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = JsonVisitor::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        let mut line = Map::new();
        line.insert(
            "timestamp".to_owned(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert(
            "level".to_owned(),
            Value::String(event.metadata().level().as_str().to_owned()),
        );
        line.insert(
            "message".to_owned(),
            fields.remove("message").unwrap_or(Value::String(String::new())),
        );
        let (mut request_id, mut trace_id) = (None, None);
        let mut current = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(SpanFields(fields)) = extensions.get::<SpanFields>() {
                    request_id = request_id.or_else(|| invocation_field(fields, &["requestId", "request_id"]));
                    trace_id = trace_id.or_else(|| invocation_field(fields, &["xrayTraceId", "xray_trace_id"]));
                    let mut named = Map::with_capacity(fields.len() + 1);
                    named.insert("name".to_owned(), Value::String(span.name().to_owned()));
                    named.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    current = Some(named);
                }
            }
        }
        if let Some(id) = request_id {
            line.insert("requestId".to_owned(), Value::String(id));
        }
        if let Some(id) = trace_id {
            line.insert("xray_trace_id".to_owned(), Value::String(trace_root(&id).to_owned()));
        }
        for (key, value) in fields {
            line.entry(key).or_insert(value);
        }
        if let Some(span) = current {
            line.entry("span").or_insert(Value::Object(span));
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let _ = self.writer.make_writer().write_all(text.as_bytes());
    }
}

/// The first of `names` a span has as a non-empty string.
fn invocation_field(fields: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| fields.get(*name)?.as_str().filter(|v| !v.is_empty()))
        .map(str::to_owned)
}

/// The trace id of an X-Ray trace header (`Root=1-…;Parent=…;Sampled=1` → `1-…`), which is what the
/// X-Ray console and Logs Insights search by; a bare id is returned as is.
pub fn trace_root(header: &str) -> &str {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header)
}

/// Collects fields as JSON values: numbers and booleans as such, everything else as its text.
#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

/// The times of the stages one delivery (or one record of it) went through, summed per stage, and its
/// HubSpot calls: how many (`attempts`, retries included), their summed time and the last status.
/// Filled by [`StageTimer`]; read with [`StageTimes::of`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    /// Per stage of [`STAGES`] that ran: its summed time.
    pub stages: Vec<(&'static str, Duration)>,
    /// The summed time of the `hubspot_*` spans; `None` when no call was made.
    pub hubspot: Option<Duration>,
    /// How many `hubspot_*` spans closed (one per HTTP attempt).
    pub attempts: u32,
    /// The `status` the last of them recorded.
    pub hubspot_status: Option<u64>,
}

impl StageTimes {
    /// The time of `stage`, if it ran.
    pub fn stage(&self, stage: &str) -> Option<Duration> {
        self.stages.iter().find(|(name, _)| *name == stage).map(|(_, d)| *d)
    }

    /// What [`StageTimer`] collected in `span` (a `delivery` or `record` span) so far; empty when the span
    /// is disabled or the subscriber has no [`StageTimer`].
    pub fn of(span: &tracing::Span) -> StageTimes {
        span.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.extensions().get::<StageTimes>().cloned()
        })
        .flatten()
        .unwrap_or_default()
    }

    fn add(&mut self, stage: &'static str, took: Duration) {
        match self.stages.iter_mut().find(|(name, _)| *name == stage) {
            Some((_, total)) => *total += took,
            None => self.stages.push((stage, took)),
        }
    }
}

/// Milliseconds with microsecond resolution, as the summary lines give times.
pub fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// Times the stage spans ([`STAGES`], `hubspot_*`) from creation to close and adds each to every
/// `delivery` and `record` span above it ([`StageTimes`]). Nothing is timed for spans the filter
/// disabled, so with logging off it costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimer;

/// When a timed span was created, and (HubSpot calls) the status it recorded.
struct Started {
    at: Instant,
    stage: Stage,
    status: Option<u64>,
}

#[derive(Clone, Copy)]
enum Stage {
    Named(&'static str),
    HubSpot,
}

impl Stage {
    fn of(name: &'static str) -> Option<Stage> {
        if name.starts_with("hubspot_") {
            return Some(Stage::HubSpot);
        }
        STAGES
            .iter()
            .find(|stage| **stage == name)
            .map(|stage| Stage::Named(stage))
    }
}

/// Takes a `status` field (a HubSpot call's).
struct StatusVisitor(Option<u64>);

impl Visit for StatusVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.0 = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.0 = u64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for StageTimer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        let Some(span) = ctx.span(id) else { return };
        if name == DELIVERY_SPAN || name == RECORD_SPAN {
            span.extensions_mut().insert(StageTimes::default());
        } else if let Some(stage) = Stage::of(name) {
            let mut status = StatusVisitor(None);
            attrs.record(&mut status);
            span.extensions_mut().insert(Started {
                at: Instant::now(),
                stage,
                status: status.0,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(started) = extensions.get_mut::<Started>() {
            let mut status = StatusVisitor(started.status);
            values.record(&mut status);
            started.status = status.0;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(started) = span.extensions_mut().remove::<Started>() else {
            return;
        };
        let took = started.at.elapsed();
        for parent in span.scope().skip(1) {
            let mut extensions = parent.extensions_mut();
            let Some(times) = extensions.get_mut::<StageTimes>() else {
                continue;
            };
            match started.stage {
                Stage::Named(stage) => times.add(stage, took),
                Stage::HubSpot => {
                    times.hubspot = Some(times.hubspot.unwrap_or_default() + took);
                    times.attempts += 1;
                    if started.status.is_some() {
                        times.hubspot_status = started.status;
                    }
                }
            }
        }
    }
}

/// A [`MakeWriter`] whose writers replace every secret value known to the process
/// ([`scrub::known_secrets`], fed by the secrets cache) with `[redacted]`, in any of the encodings
/// [`scrub::Scrubber`] matches (a JSON log line escapes `"`, `\` and controls).
///
/// tracing-subscriber's formatter hands each event to the writer in one `write_all` of the whole
/// line, so a value is never split across calls. With no secret known yet, a line costs one
/// read-locked pointer copy more than the plain writer; otherwise one scan of the line.
#[derive(Debug, Clone, Copy)]
pub struct Scrubbing<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbing<M> {
    type Writer = ScrubbingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter(self.0.make_writer())
    }
}

/// The writer of [`Scrubbing`]: scrubs each buffer it is given, then writes it whole.
#[derive(Debug)]
pub struct ScrubbingWriter<W>(W);

impl<W: Write> Write for ScrubbingWriter<W> {
    /// Reports the whole `buf` as written (its scrubbed form may be longer or shorter).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let scrubber = scrub::known_secrets();
        self.0.write_all(&scrubber.scrub_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Test support: one process-wide JSON subscriber writing into memory. A global subscriber,
/// not `set_default`, because tracing caches callsite interest across threads, so scoped
/// subscribers miss events when tests run in parallel.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex, OnceLock};

    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

    /// Everything logged from now on (by any test in this process), through the production stack
    /// ([`super::subscriber`]) at `trace`: the caps of [`super::CAPPED`] apply.
    pub(crate) struct LogCapture {
        start: usize,
    }

    impl LogCapture {
        /// Installs the subscriber on first use and marks where this capture starts.
        pub(crate) fn start() -> LogCapture {
            let buffer = BUFFER.get_or_init(|| {
                let buffer = Arc::new(Mutex::new(Vec::new()));
                let writer = buffer.clone();
                let settings = super::LogSettings::from_vars(Some("trace"), None, None);
                let (subscriber, _) = super::subscriber(super::Scrubbing(move || Writer(writer.clone())), &settings);
                let _ = tracing::subscriber::set_global_default(subscriber);
                buffer
            });
            LogCapture {
                start: buffer.lock().unwrap_or_else(|e| e.into_inner()).len(),
            }
        }

        /// The log text written since `start`.
        pub(crate) fn text(&self) -> String {
            let buffer = BUFFER
                .get()
                .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .unwrap_or_default();
            String::from_utf8_lossy(buffer.get(self.start..).unwrap_or_default()).into_owned()
        }
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::capture::LogCapture;
    use super::*;

    #[test]
    fn a_secret_value_never_reaches_a_log_line_in_any_field() {
        let token = format!("pat-na1-log-{}", uuid::Uuid::new_v4());
        let key = format!("whsec/\"quoted\" {}", uuid::Uuid::new_v4());
        scrub::remember([token.as_str(), key.as_str()]);
        let capture = LogCapture::start();
        let url = format!(
            "https://x.test/hooks/j?token={}",
            percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
        );
        let span = tracing::info_span!("delivery", auth = %format!("Bearer {token}"));
        let _entered = span.enter();
        tracing::warn!(body = %format!("{{\"key\":\"{key}\"}}"), url = %url, "message quoting {token}");
        tracing::error!(error = ?key, "debug-formatted");
        let text = capture.text();
        assert!(text.contains("message quoting [redacted]"), "{text}");
        for secret in [&token, &key] {
            let id = secret
                .rsplit(' ')
                .next()
                .unwrap_or(secret)
                .rsplit('-')
                .next()
                .unwrap_or(secret);
            assert!(!text.contains(id), "{secret} reached the log: {text}");
        }
        assert!(text.matches("[redacted]").count() >= 5, "{text}");
        // Still one JSON object per line.
        for line in text
            .lines()
            .filter(|l| l.contains("debug-formatted") || l.contains("message quoting"))
        {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }

    #[test]
    fn with_no_secret_known_lines_pass_through_unchanged() {
        let mut out = Vec::new();
        let line = b"{\"message\":\"nothing secret here\"}\n";
        let written = ScrubbingWriter(&mut out).write(line).unwrap();
        assert_eq!(written, line.len());
        assert_eq!(out, line);
    }

    #[test]
    fn the_writer_reports_the_whole_buffer_written_even_when_scrubbing_changes_its_length() {
        let secret = format!("len-change-{}", uuid::Uuid::new_v4());
        scrub::remember([secret.as_str()]);
        let mut out = Vec::new();
        let line = format!("a {secret} b\n");
        let written = ScrubbingWriter(&mut out).write(line.as_bytes()).unwrap();
        assert_eq!(written, line.len());
        assert_eq!(out, b"a [redacted] b\n");
    }

    #[test]
    fn the_level_comes_from_rust_log_else_lambdas_level_else_info() {
        let cases = [
            (Some("debug,hyper=info"), Some("ERROR"), "debug,hyper=info"),
            (None, Some("TRACE"), "trace"),
            (None, Some("DEBUG"), "debug"),
            (None, Some("info"), "info"),
            (None, Some("WARN"), "warn"),
            (None, Some("ERROR"), "error"),
            (None, Some("FATAL"), "error"),
            (None, Some("LOUD"), "info"),
            (Some(""), Some("WARN"), "warn"),
            (Some("  "), None, "info"),
            (None, None, "info"),
        ];
        for (rust_log, lambda, expected) in cases {
            let settings = LogSettings::from_vars(rust_log, lambda, None);
            assert_eq!(
                settings.filter, expected,
                "RUST_LOG={rust_log:?} AWS_LAMBDA_LOG_LEVEL={lambda:?}"
            );
            assert!(!settings.payloads);
        }
        for (value, on) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("yes", false),
            ("", false),
        ] {
            assert_eq!(
                LogSettings::from_vars(None, None, Some(value)).payloads,
                on,
                "{value:?}"
            );
        }
    }

    #[test]
    fn an_invalid_rust_log_falls_back_to_info_and_says_why() {
        let (_, invalid) = subscriber(std::io::sink, &LogSettings::from_vars(Some("=[{"), None, None));
        assert!(invalid.is_some());
        let (_, invalid) = subscriber(
            std::io::sink,
            &LogSettings::from_vars(Some("dealhook=debug"), None, None),
        );
        assert_eq!(invalid, None);
    }

    #[test]
    fn the_trace_id_is_the_root_of_the_trace_header() {
        assert_eq!(
            trace_root("Root=1-5759e988-bd86;Parent=53995c3f;Sampled=1"),
            "1-5759e988-bd86"
        );
        assert_eq!(trace_root("Parent=53995c3f; Root=1-abc;Sampled=0"), "1-abc");
        assert_eq!(trace_root("1-abc"), "1-abc");
    }

    /// Lines: every line of `text` that parses, with `marker` in it.
    fn marked(text: &str, marker: &str) -> Vec<serde_json::Value> {
        text.lines()
            .filter(|l| l.contains(marker))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn the_runtime_and_http_stacks_log_nothing_below_info_even_at_trace() {
        let capture = LogCapture::start();
        let marker = uuid::Uuid::new_v4().to_string();
        tracing::trace!(target: "lambda_runtime::layers::api_response", body = %marker, "raw JSON event received from Lambda");
        tracing::debug!(target: "lambda_runtime_api_client", headers = %marker, "request");
        tracing::trace!(target: "aws_sigv4::http_request::sign", canonical_request = %marker, "signing");
        tracing::debug!(target: "hyper_util::client", marker = %marker, "headers");
        tracing::trace!(target: "reqwest::connect", marker = %marker, "wire");
        tracing::info!(target: "lambda_runtime", marker = %marker, "info passes");
        tracing::trace!(target: "dealhook::anything", marker = %marker, "our own trace passes");
        let lines = marked(&capture.text(), &marker);
        let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
        assert_eq!(messages, ["info passes", "our own trace passes"]);

        // Even when RUST_LOG names the runtime's target at trace.
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let settings = LogSettings::from_vars(Some("trace,lambda_runtime=trace,aws_sigv4=trace"), None, None);
        let (subscriber, _) = subscriber(move || SharedBuffer(writer.clone()), &settings);
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = %marker, "raw JSON event received from Lambda");
            tracing::trace!(target: "aws_sigv4::http_request::sign", canonical_request = %marker, "signing");
            tracing::info!(target: "lambda_runtime", marker = %marker, "info passes");
        });
        let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
        let lines = marked(&text, &marker);
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["message"], "info passes");
    }

    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_the_outermost_request_and_trace_ids_and_fields_cannot_replace_them() {
        let capture = LogCapture::start();
        let marker = uuid::Uuid::new_v4().to_string();
        let runtime = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = %marker,
            xrayTraceId = "Root=1-aaa-bbb;Parent=1;Sampled=1"
        );
        let _runtime = runtime.enter();
        let delivery = tracing::info_span!(DELIVERY_SPAN, request_id = "the-original-one");
        let _delivery = delivery.enter();
        let call = tracing::info_span!("hubspot_create_deal", path = "/crm/v3/objects/deals", status = 201u64);
        let _call = call.enter();
        tracing::warn!(
            level = "quiet",
            requestId = "forged",
            count = 3u64,
            ok = true,
            "inside {}",
            "a call"
        );
        let lines = marked(&capture.text(), &marker);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["requestId"], marker.as_str());
        assert_eq!(line["xray_trace_id"], "1-aaa-bbb");
        assert_eq!(line["message"], "inside a call");
        assert_eq!((line["count"].as_u64(), line["ok"].as_bool()), (Some(3), Some(true)));
        assert_eq!(line["span"]["name"], "hubspot_create_deal");
        assert_eq!(line["span"]["status"], 201);
        let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys[..5],
            ["timestamp", "level", "message", "requestId", "xray_trace_id"]
        );
    }

    #[test]
    fn stage_spans_are_timed_into_the_delivery_and_hubspot_calls_counted() {
        let _capture = LogCapture::start();
        let delivery = tracing::info_span!(DELIVERY_SPAN, request_id = "timed");
        delivery.in_scope(|| {
            tracing::info_span!("map").in_scope(|| std::thread::sleep(Duration::from_millis(3)));
            tracing::info_span!("map").in_scope(|| std::thread::sleep(Duration::from_millis(2)));
            let record = tracing::info_span!(RECORD_SPAN, record = 0u64);
            record.in_scope(|| {
                let first = tracing::info_span!("hubspot_create_deal", status = tracing::field::Empty);
                first.record("status", 429u64);
                drop(first);
                let second = tracing::info_span!("hubspot_create_deal", status = tracing::field::Empty);
                second.in_scope(|| std::thread::sleep(Duration::from_millis(2)));
                second.record("status", 201u64);
                drop(second);
                drop(tracing::info_span!("hubspot_associate"));
            });
            let times = StageTimes::of(&record);
            assert_eq!((times.attempts, times.hubspot_status), (3, Some(201)));
            assert_eq!(times.stage("map"), None);
            drop(tracing::info_span!("not_a_stage"));
        });
        let times = StageTimes::of(&delivery);
        assert!(times.stage("map").unwrap() >= Duration::from_millis(5), "{times:?}");
        assert!(times.hubspot.unwrap() >= Duration::from_millis(2), "{times:?}");
        assert_eq!((times.attempts, times.hubspot_status), (3, Some(201)));
        assert_eq!(times.stage("verify"), None);
        assert_eq!(times.stages.len(), 1, "{times:?}");
        assert_eq!(StageTimes::of(&tracing::Span::none()), StageTimes::default());
    }
}
