//! X-Ray: the spans of a sampled invocation sent to the X-Ray daemon as subsegments of the segment Lambda
//! made for the invocation. Never blocks, never fails a delivery, never sends a header, body or secret.
//!
//! With `Tracing: Active` (or an upstream that sampled the request and `PassThrough`), Lambda creates the
//! function's segment itself and gives each invocation its trace header (`Root=1-…;Parent=…;Sampled=1`,
//! the runtime's `Lambda-Runtime-Trace-Id`, [`crate::inbound::Invocation::xray_trace_id`]) and the
//! process the daemon's address (`AWS_XRAY_DAEMON_ADDRESS`, UDP). A span carrying the header in its
//! [`TRACE_FIELD`] field (the `invocation` span) makes its descendants subsegments of that segment: each is
//! kept in the span's extensions while open and, when it closes, embedded in its parent's document; a span
//! whose parent is the carrier is sent as one document (`{"format": "json", "version": 1}\n` + JSON) in one
//! non-blocking UDP datagram, so one delivery is one datagram unless it outgrows [`CHILDREN_BUDGET`].
//!
//! Why our own [`tracing_subscriber::Layer`] (about 400 lines) and no crate: OpenTelemetry
//! (`opentelemetry` + `tracing-opentelemetry` + `opentelemetry-aws`' propagator and id generator) has no
//! X-Ray exporter, only OTLP, which needs the ADOT collector layer in the function (tens of MB, its own
//! cold start) and pulls in an SDK, gRPC or HTTP exporters and a batch processor: against the size
//! and cold-start targets. The X-Ray daemon clients (`xray-lite` 0.0.9, 2024, one release; `xray-tracing`
//! 0.0.1, on http 0.2 and rand 0.8) are unmaintained and have no `tracing` layer, so they would still need
//! this layer around them. The daemon protocol is one documented JSON document per datagram; serde_json,
//! std's UDP socket and uuid's random numbers (all in the tree) are all it needs.
//!
//! Cost when not traced: without `AWS_XRAY_DAEMON_ADDRESS` the layer is not installed ([`XrayLayer::from_env`]
//! is `None`). Installed, with no sampled invocation in progress every callback returns after one atomic
//! load (a span declaring [`TRACE_FIELD`] also costs one scan of its field names): measured on this machine
//! as no difference within noise (README, `### Traces`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The span field carrying the invocation's trace header (`Root=1-…;Parent=…;Sampled=1`).
pub const TRACE_FIELD: &str = "xray_trace_id";

/// The environment variable naming the daemon (`host:port`, or `tcp:host:port udp:host:port`).
pub const DAEMON_ADDRESS_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// What precedes every document sent to the daemon.
pub const DAEMON_HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// Most bytes of children a document embeds before further children are sent as documents of their own
/// (independent subsegments naming their parent): the daemon takes at most 64 KiB per datagram.
pub const CHILDREN_BUDGET: usize = 32 * 1024;

/// Longest annotation value kept (X-Ray indexes annotations; longer values are cut, on a char boundary).
const ANNOTATION_MAX: usize = 250;

/// A parsed X-Ray trace header, as Lambda gives it to each invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `Root`: the trace id, `1-{8 hex: epoch seconds}-{24 hex}`.
    pub root: String,
    /// `Parent`: the id (16 hex) of the segment our subsegments belong to (Lambda's function segment).
    pub parent: u64,
    /// `Sampled=1`. Anything else (`0`, `?`, absent) is not sampled: nothing is sent.
    pub sampled: bool,
}

impl TraceHeader {
    /// Reads `Root=…;Parent=…;Sampled=…` (any order, other keys such as `Lineage` ignored, spaces around
    /// parts allowed). `None` when `Root` or `Parent` is missing or not in X-Ray's format: such a header
    /// cannot name a segment, so nothing is traced.
    pub fn parse(text: &str) -> Option<TraceHeader> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in text.split(';') {
            let (key, value) = part.trim().split_once('=')?;
            match key.trim() {
                "Root" => root = Some(value.trim()),
                "Parent" => parent = Some(value.trim()),
                "Sampled" => sampled = value.trim() == "1",
                _ => {}
            }
        }
        let root = root.filter(|r| is_trace_id(r))?;
        let parent = parent
            .filter(|p| p.len() == 16 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|p| u64::from_str_radix(p, 16).ok())?;
        Some(TraceHeader {
            root: root.to_owned(),
            parent,
            sampled,
        })
    }
}

/// `1-` + 8 hex digits + `-` + 24 hex digits.
fn is_trace_id(text: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = text.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(random), None) if hex(time, 8) && hex(random, 24)
    )
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`'s value: `host:port`, or the `udp:` part of
/// `tcp:host:port udp:host:port`. `None` for anything else (no address is guessed).
pub fn daemon_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    let udp = if text.contains(' ') || text.starts_with("udp:") || text.starts_with("tcp:") {
        text.split_whitespace().find_map(|part| part.strip_prefix("udp:"))?
    } else {
        text
    };
    udp.to_socket_addrs().ok()?.next()
}

/// The [`Layer`] sending sampled invocations' spans to the daemon (see the module's doc). Install it with
/// [`xray_filter`] so that only dealhook's own spans (and its warnings and errors) reach it.
#[derive(Debug)]
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
    /// Sampled invocations in progress (carrier spans open). At 0, every callback returns after this one
    /// atomic load: the cost of the layer outside a sampled invocation.
    carriers: AtomicUsize,
}

impl XrayLayer {
    /// The layer for the daemon named by `AWS_XRAY_DAEMON_ADDRESS`, or `None` when it is unset or not an
    /// address (then tracing costs nothing), or no UDP socket can be opened.
    pub fn from_env() -> Option<XrayLayer> {
        let text = std::env::var(DAEMON_ADDRESS_VAR).ok()?;
        XrayLayer::new(daemon_address(&text)?).ok()
    }

    /// A layer sending to `daemon` from a fresh non-blocking UDP socket (an ephemeral port of the same
    /// address family). Fails only if the socket cannot be opened.
    pub fn new(daemon: SocketAddr) -> io::Result<XrayLayer> {
        let local: SocketAddr = match daemon {
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(_) => ([0u16; 8], 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        // A full send buffer drops the document rather than waiting: a trace is never worth a delay.
        socket.set_nonblocking(true)?;
        Ok(XrayLayer {
            socket,
            daemon,
            carriers: AtomicUsize::new(0),
        })
    }

    /// One document to the daemon, as an independent subsegment of `parent_id`. Errors (no daemon, full
    /// buffer) are dropped: a delivery never waits or fails for its trace.
    fn send(&self, mut document: Map<String, Value>, trace_id: &str, parent_id: u64) {
        document.insert("type".into(), "subsegment".into());
        document.insert("trace_id".into(), trace_id.into());
        document.insert("parent_id".into(), hex_id(parent_id).into());
        let mut datagram = DAEMON_HEADER.as_bytes().to_vec();
        if serde_json::to_writer(&mut datagram, &document).is_ok() {
            let _ = self.socket.send_to(&datagram, self.daemon);
        }
    }
}

/// The per-layer filter for [`XrayLayer`]: dealhook's spans at INFO and above (stage and call spans), and
/// its warnings and errors (which flag a subsegment); nothing from other crates (the SDK's, hyper's and the
/// runtime's own spans are not ours to report). Decided once per callsite (`Interest::always`/`never`), so
/// a filtered-out span or event never reaches the layer.
pub fn xray_filter() -> XrayFilter {
    XrayFilter
}

/// See [`xray_filter`].
#[derive(Debug, Clone, Copy)]
pub struct XrayFilter;

impl XrayFilter {
    fn wants(metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("dealhook")
            && if metadata.is_span() {
                *metadata.level() <= Level::INFO
            } else {
                *metadata.level() <= Level::WARN
            }
    }
}

impl<S> Filter<S> for XrayFilter {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        XrayFilter::wants(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        match XrayFilter::wants(metadata) {
            true => Interest::always(),
            false => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
}

/// Held by the span carrying a sampled trace header: its descendants are traced.
struct Carrier {
    trace_id: Arc<str>,
    parent: u64,
}

/// An open traced span: a subsegment in the making.
struct Open {
    trace_id: Arc<str>,
    id: u64,
    parent_id: u64,
    name: &'static str,
    start: f64,
    fields: Fields,
    /// The worst warning or error logged in the span itself.
    worst: Option<Level>,
    children: Vec<Value>,
    children_bytes: usize,
}

/// The span fields a subsegment reports; all others (request ids, counts, anything a payload could reach)
/// are never read.
#[derive(Default)]
struct Fields {
    /// HTTP status of a HubSpot call.
    status: Option<u64>,
    /// HTTP method of a HubSpot call.
    method: Option<String>,
    /// URL of a HubSpot call, without query or credentials (src/hubspot/transport.rs).
    url: Option<String>,
    /// Path of a call without `url` (the OAuth token endpoint).
    path: Option<String>,
    /// `SQS`, `S3`, `DynamoDB`, `SecretsManager`: an AWS call, named as X-Ray's SDKs name them.
    aws_service: Option<String>,
    /// The AWS API operation (`SendMessage`).
    aws_operation: Option<String>,
    /// The route (mapping name or endpoint) of a delivery: an annotation.
    route: Option<String>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status = u64::try_from(value).ok();
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "method" => &mut self.method,
            "url" => &mut self.url,
            "path" => &mut self.path,
            "aws_service" => &mut self.aws_service,
            "aws_operation" => &mut self.aws_operation,
            "route" => &mut self.route,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here; only the names above are formatted, never any other field.
        if matches!(
            field.name(),
            "method" | "url" | "path" | "aws_service" | "aws_operation" | "route"
        ) {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Reads only [`TRACE_FIELD`].
struct TraceField(Option<String>);

impl Visit for TraceField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == TRACE_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == TRACE_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let traced = self.carriers.load(Ordering::Relaxed) > 0;
        if !traced && attrs.metadata().fields().field(TRACE_FIELD).is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let inherited = span.parent().filter(|_| traced).and_then(|parent| {
            let extensions = parent.extensions();
            if let Some(open) = extensions.get::<Open>() {
                Some((open.trace_id.clone(), open.id))
            } else {
                extensions.get::<Carrier>().map(|c| (c.trace_id.clone(), c.parent))
            }
        });
        if let Some((trace_id, parent_id)) = inherited {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(Open {
                trace_id,
                id: new_id(),
                parent_id,
                name: attrs.metadata().name(),
                start: epoch_seconds(SystemTime::now()),
                fields,
                worst: None,
                children: Vec::new(),
                children_bytes: 0,
            });
        } else if attrs.metadata().fields().field(TRACE_FIELD).is_some() {
            let mut header = TraceField(None);
            attrs.record(&mut header);
            if let Some(header) = header.0.as_deref().and_then(TraceHeader::parse).filter(|h| h.sampled) {
                span.extensions_mut().insert(Carrier {
                    trace_id: header.root.into(),
                    parent: header.parent,
                });
                self.carriers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.carriers.load(Ordering::Relaxed) > 0
            && let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut open.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if self.carriers.load(Ordering::Relaxed) > 0
            && let Some(span) = ctx.event_span(event)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
            && open.worst.is_none_or(|worst| level < worst)
        {
            open.worst = Some(level);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.carriers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let open = {
            let mut extensions = span.extensions_mut();
            if extensions.remove::<Carrier>().is_some() {
                self.carriers.fetch_sub(1, Ordering::Relaxed);
            }
            extensions.remove::<Open>()
        };
        let Some(open) = open else { return };
        let (trace_id, parent_id) = (open.trace_id.clone(), open.parent_id);
        let document = open.document(epoch_seconds(SystemTime::now()));
        if let Some(parent) = span.parent() {
            let mut extensions = parent.extensions_mut();
            if let Some(parent) = extensions.get_mut::<Open>() {
                let bytes = serde_json::to_vec(&document).map(|b| b.len()).unwrap_or(usize::MAX);
                if parent.children_bytes.saturating_add(bytes) <= CHILDREN_BUDGET {
                    parent.children_bytes += bytes;
                    parent.children.push(Value::Object(document));
                    return;
                }
            }
        }
        self.send(document, &trace_id, parent_id);
    }
}

impl Open {
    /// The subsegment document (without `type`, `trace_id` and `parent_id`, which only an independent one
    /// carries), ended at `end`.
    fn document(self, end: f64) -> Map<String, Value> {
        let fields = self.fields;
        let mut document = Map::new();
        let name = fields.aws_service.clone().unwrap_or_else(|| self.name.to_owned());
        document.insert("name".into(), name.into());
        document.insert("id".into(), hex_id(self.id).into());
        document.insert("start_time".into(), self.start.into());
        document.insert("end_time".into(), end.max(self.start).into());
        let http_call = fields.url.is_some() || fields.path.is_some() || self.name.starts_with("hubspot_");
        let (mut error, mut fault, mut throttle) = (false, false, false);
        match fields.status {
            Some(429) => (error, throttle) = (true, true),
            Some(400..=499) => error = true,
            Some(500..=599) => fault = true,
            // A call that got no answer and said so (warning or error) failed on the way: a fault.
            None if http_call => fault = self.worst.is_some(),
            _ => {}
        }
        if self.worst == Some(Level::ERROR) {
            fault = true;
        }
        if fields.aws_service.is_some() {
            document.insert("namespace".into(), "aws".into());
            if let Some(operation) = &fields.aws_operation {
                document.insert("aws".into(), json!({ "operation": operation }));
            }
        } else if http_call {
            document.insert("namespace".into(), "remote".into());
            let mut request = Map::new();
            if let Some(method) = fields.method {
                request.insert("method".into(), method.into());
            }
            if let Some(url) = fields.url.or(fields.path) {
                request.insert("url".into(), url.into());
            }
            let mut http = Map::new();
            http.insert("request".into(), Value::Object(request));
            if let Some(status) = fields.status {
                http.insert("response".into(), json!({ "status": status }));
            }
            document.insert("http".into(), Value::Object(http));
        }
        for (flag, set) in [("error", error), ("fault", fault), ("throttle", throttle)] {
            if set {
                document.insert(flag.into(), true.into());
            }
        }
        if let Some(route) = fields.route.filter(|r| !r.is_empty()) {
            document.insert(
                "annotations".into(),
                json!({ "route": truncate(&route, ANNOTATION_MAX) }),
            );
        }
        if !self.children.is_empty() {
            document.insert("subsegments".into(), Value::Array(self.children));
        }
        document
    }
}

/// A random non-zero 64-bit id (X-Ray's 16 hex digits).
fn new_id() -> u64 {
    let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
    (high ^ low).max(1)
}

fn hex_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Seconds since the epoch, with microseconds, as X-Ray's `start_time` and `end_time`.
fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests;
