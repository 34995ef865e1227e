//! Own overhead per delivery: from the Lambda event's JSON text to the serialised Lambda response
//! (event parse, verify, decode, normalise, select, map, plan, serialise), with in-memory fakes for
//! the secret and dead letters and a dry run for HubSpot (the response carries the request that would
//! be sent, so it is built and serialised in full).
//!
//! `cargo bench --bench delivery` runs divan's statistics, then a percentile pass (divan reports
//! median and mean, not p99): every iteration timed on its own, p50 and p99 per event, printed as a
//! table and written to `target/bench/delivery.json` for `scripts/bench`, with the thread's mean CPU
//! time per delivery beside them. Environment:
//! - `DEALHOOK_BENCH_ONLY=p`: the percentile pass alone;
//! - `DEALHOOK_BENCH_EVENTS=a,b`: those events only in the percentile pass (with
//!   `DEALHOOK_BENCH_ONLY=p`, to profile one);
//! - `DEALHOOK_BENCH_SAMPLES=N`: exactly N timed iterations per event, with no time limit.
//!
//! Without `--bench` (`cargo test --all-targets`), each event is answered once and checked: fast, and
//! no Python.
//!
//! The sample events are the files of [`SAMPLES`]`.events`, with the mapping and secret they belong
//! to; events whose signature covers a timestamp are signed again at the current time (same body,
//! same key), as the emulator test does, since a five-day-old Stripe signature is rejected.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dealhook::aws::{DeadLetterError, DeadLetters, MemorySecrets};
use dealhook::credentials::Credentials;
use dealhook::dead_letter::DeadLetter;
use dealhook::hubspot::{MemoryDeals, RetryPolicy};
use dealhook::inbound::Invocation;
use dealhook::mapping::Mapping;
use dealhook::{App, Settings};
use serde_json::Value;

/// The binaries' allocator (src/bin), so the figures are those of what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../tests/common/sample_events.rs"]
mod sample_events;

/// Where the sample events are, and the mapping and secret they belong to: the ONE place to change
/// when they move.
struct Samples {
    /// Every `*.json` here except the secret is a sample event.
    events: &'static str,
    mapping: &'static str,
    secret: &'static str,
}

const SAMPLES: Samples = Samples {
    events: "examples/showcase/events",
    mapping: "examples/showcase/mapping.yaml",
    secret: "examples/showcase/sample-secret.json",
};

/// The sample event the 100 KB one is made from (its body replaced).
const LARGE_FROM: &str = "website-quote.json";
/// The size of the large event's body, in bytes (at least).
const LARGE_BODY_BYTES: usize = 100 * 1024;
/// The large event's name in the table.
const LARGE_NAME: &str = "website-quote-100k";

/// Percentile pass: at most this many timed iterations per event, and at most this long.
const MAX_SAMPLES: usize = 20_000;
const MAX_TIME: Duration = Duration::from_secs(3);
/// Untimed iterations first (caches, the allocator's pools, the secret's first read).
const WARM_UP: usize = 200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One event to answer: its name, its JSON text and the status it must get.
struct Event {
    name: String,
    text: String,
    body_bytes: usize,
}

/// A dead-letter queue that serialises the envelope (as the SQS adapter does) and keeps nothing, so
/// that millions of iterations do not grow memory.
struct SerialisingSink;

#[async_trait]
impl DeadLetters for SerialisingSink {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let text = serde_json::to_string(letter).map_err(|e| DeadLetterError { message: e.to_string() })?;
        std::hint::black_box(text);
        Ok(())
    }
}

fn app() -> App {
    let mapping_path = root().join(SAMPLES.mapping);
    let text = std::fs::read_to_string(&mapping_path).unwrap_or_else(|e| panic!("{}: {e}", mapping_path.display()));
    let mapping = Mapping::from_yaml(&text, SAMPLES.mapping).unwrap_or_else(|e| panic!("{e}"));
    let secret = std::fs::read_to_string(root().join(SAMPLES.secret)).unwrap();
    let credentials = Credentials::parse(&secret).unwrap_or_else(|e| panic!("{}: {e}", SAMPLES.secret));
    App::new(
        Settings {
            max_body_bytes: dealhook::config::DEFAULT_MAX_BODY_BYTES,
            dry_run: true,
            skip_signatures: false,
            retry: RetryPolicy::default(),
        },
        Arc::new(mapping),
        Arc::new(MemorySecrets::new(credentials)),
        Arc::new(MemoryDeals::default()),
        Arc::new(SerialisingSink),
    )
}

/// The sample events in name order, timestamped ones signed again now, then the 100 KB one.
fn events() -> Vec<Event> {
    let dir = root().join(SAMPLES.events);
    let secret = Path::new(SAMPLES.secret).file_name();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| Some(name.as_os_str()) != secret)
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no sample events in {}", dir.display());
    let mut events: Vec<Event> = names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let text = resigned(name, &text).unwrap_or(text);
            let stem = name.trim_end_matches(".json").to_owned();
            event(stem, text)
        })
        .collect();
    let from = std::fs::read_to_string(dir.join(LARGE_FROM)).unwrap();
    events.push(event(LARGE_NAME.to_owned(), large(&from)));
    events
}

fn event(name: String, text: String) -> Event {
    let json: Value = serde_json::from_str(&text).unwrap();
    let body = json["body"].as_str().unwrap_or_default();
    let body_bytes = match json["isBase64Encoded"].as_bool() {
        Some(true) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_or(body.len(), |b| b.len())
        }
        _ => body.len(),
    };
    Event { name, text, body_bytes }
}

/// A provider's sample event signed again at the current time, when its scheme signs a timestamp.
/// The event rebuilt at the committed time must be the committed file, so only the time changes.
fn resigned(name: &str, committed: &str) -> Option<String> {
    let p = sample_events::PROVIDERS
        .iter()
        .find(|p| format!("{}.json", p.name) == name && p.timestamped())?;
    let committed: Value = serde_json::from_str(committed).unwrap();
    let request_id = committed["requestContext"]["requestId"].as_str().unwrap_or_default();
    let event_type = "checkout.session.completed";
    let then = sample_events::event(p, sample_events::SIGNED_AT, event_type, request_id);
    assert_eq!(
        then, committed,
        "{name} is not what tests/common/sample_events.rs builds"
    );
    Some(sample_events::event(p, sample_events::now(), event_type, request_id).to_string())
}

/// `from` with a JSON body of at least [`LARGE_BODY_BYTES`]: its fields plus answers to many more
/// questions (a long form), each a sentence.
fn large(from: &str) -> String {
    let mut event: Value = serde_json::from_str(from).unwrap();
    let mut body: serde_json::Map<String, Value> = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let mut i = 0;
    while serde_json::to_string(&body).unwrap().len() < LARGE_BODY_BYTES {
        for _ in 0..64 {
            i += 1;
            body.insert(
                format!("question_{i:04}"),
                Value::from(format!(
                    "Answer {i}: we would like to know more about seats, SSO and the onboarding plan."
                )),
            );
        }
    }
    let text = serde_json::to_string(&body).unwrap();
    event["headers"]["content-length"] = Value::from(text.len().to_string());
    event["body"] = Value::from(text);
    event.to_string()
}

/// The serialised Lambda response to `text`, as the runtime would send it back.
fn answer(runtime: &tokio::runtime::Runtime, app: &App, invocation: &Invocation, text: &str) -> String {
    let (_, response) = runtime.block_on(app.answer_event_text(text, invocation));
    serde_json::to_string(&response).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn invocation() -> Invocation {
    Invocation {
        request_id: "bench".to_owned(),
        ..Invocation::default()
    }
}

/// What the response must say: a dry run (the request built), or for the invalid sample a dead letter.
/// Returns the response's body.
fn check(event: &Event, response: &str) -> Value {
    let response: Value = serde_json::from_str(response).unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let expected = if event.name.ends_with("-invalid") {
        "dead_lettered"
    } else {
        "dry_run"
    };
    assert_eq!(body["status"], expected, "{}: {body}", event.name);
    body
}

/// Each event's HubSpot deal request body, in `target/bench/requests/<event>.json`: what the Python
/// peer's must equal (`scripts/bench`).
fn write_requests(events: &[Event]) {
    let dir = root().join("target/bench/requests");
    std::fs::create_dir_all(&dir).unwrap();
    let (app, runtime, invocation) = (app(), runtime(), invocation());
    for event in events {
        let body = check(event, &answer(&runtime, &app, &invocation, &event.text));
        if body["status"] == "dry_run" {
            let request = serde_json::to_string_pretty(&body["request"]["body"]).unwrap();
            std::fs::write(dir.join(format!("{}.json", event.name)), request).unwrap();
        }
    }
}

/// p50 and p99 of each event, one timed iteration per sample.
struct Percentiles {
    name: String,
    body_bytes: usize,
    samples: usize,
    p50: Duration,
    p99: Duration,
    /// The thread's CPU time over the timed iterations, divided by their number: unlike p50/p99 it
    /// leaves out the time the thread waited for a core, so it is the steadier figure on a shared
    /// machine. `None` where `/proc/thread-self/schedstat` cannot be read.
    cpu_mean: Option<Duration>,
}

/// The calling thread's time on a CPU so far: the first field of `/proc/thread-self/schedstat`
/// (nanoseconds; Linux with schedstats, as on Lambda and CI).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest rank: the smallest sample with at least p % of the samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn percentile_pass(events: &[Event]) -> Vec<Percentiles> {
    let app = app();
    let runtime = runtime();
    let invocation = invocation();
    let mut out = Vec::new();
    // `DEALHOOK_BENCH_EVENTS=typeform,tally`: those events only (to profile one at a time).
    let only = std::env::var("DEALHOOK_BENCH_EVENTS").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|list| list.split(',').any(|n| n == name));
    if let Some(list) = &only {
        let unknown: Vec<&str> = list
            .split(',')
            .filter(|n| !events.iter().any(|e| e.name == *n))
            .collect();
        assert!(
            unknown.is_empty(),
            "DEALHOOK_BENCH_EVENTS names no such event: {unknown:?} (the events: {:?})",
            events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>()
        );
    }
    for event in events.iter().filter(|e| wanted(&e.name)) {
        for _ in 0..WARM_UP {
            std::hint::black_box(answer(&runtime, &app, &invocation, &event.text));
        }
        // `DEALHOOK_BENCH_SAMPLES=N`: exactly N timed iterations, whatever they take (so that runs
        // compared with `perf stat` do the same work).
        let fixed: Option<usize> = std::env::var("DEALHOOK_BENCH_SAMPLES").ok().map(|n| match n.parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("DEALHOOK_BENCH_SAMPLES={n:?}: a number of iterations, at least 1"),
        });
        let (max_samples, max_time) = fixed.map_or((MAX_SAMPLES, MAX_TIME), |n| (n, Duration::MAX));
        let mut samples = Vec::with_capacity(max_samples);
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        while samples.len() < max_samples && started.elapsed() < max_time {
            let t = Instant::now();
            let response = answer(&runtime, &app, &invocation, std::hint::black_box(&event.text));
            samples.push(t.elapsed());
            drop(std::hint::black_box(response));
        }
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        let cpu_mean = cpu.map(|cpu| cpu / samples.len().max(1) as u32);
        samples.sort_unstable();
        out.push(Percentiles {
            cpu_mean,
            name: event.name.clone(),
            body_bytes: event.body_bytes,
            samples: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
        });
    }
    out
}

fn report(rows: &[Percentiles]) {
    println!("\nper-delivery overhead (one timed iteration per sample)");
    println!(
        "{:<32} {:>9} {:>8} {:>10} {:>10} {:>10}",
        "event", "body B", "samples", "p50 µs", "p99 µs", "CPU µs"
    );
    for r in rows {
        println!(
            "{:<32} {:>9} {:>8} {:>10.1} {:>10.1} {:>10}",
            r.name,
            r.body_bytes,
            r.samples,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.cpu_mean
                .map_or("–".to_owned(), |cpu| format!("{:.1}", cpu.as_secs_f64() * 1e6))
        );
    }
    let json: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "event": r.name, "body_bytes": r.body_bytes, "samples": r.samples,
                "p50_us": r.p50.as_secs_f64() * 1e6, "p99_us": r.p99.as_secs_f64() * 1e6,
                "cpu_mean_us": r.cpu_mean.map(|cpu| cpu.as_secs_f64() * 1e6),
            })
        })
        .collect();
    // scripts/bench reads the events (and their secret) from here, for the Python peer.
    let json = serde_json::json!({ "events": SAMPLES.events, "secret": SAMPLES.secret, "rows": json });
    let dir = root().join("target/bench");
    let file = dir.join("delivery.json");
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(&file, serde_json::to_string_pretty(&json).unwrap()).is_ok()
    {
        println!("written to {}", file.display());
    }
}

static EVENTS: std::sync::LazyLock<Vec<Event>> = std::sync::LazyLock::new(events);

fn names() -> Vec<&'static str> {
    EVENTS.iter().map(|e| e.name.as_str()).collect()
}

#[divan::bench(args = names())]
fn delivery(bencher: divan::Bencher, name: &str) {
    let event = EVENTS.iter().find(|e| e.name == name).unwrap();
    let app = app();
    let runtime = runtime();
    let invocation = invocation();
    bencher.bench_local(|| answer(&runtime, &app, &invocation, divan::black_box(&event.text)));
}

/// What the runtime's `block_on` of a ready future costs: included in every figure above.
#[divan::bench]
fn block_on_overhead(bencher: divan::Bencher) {
    let runtime = runtime();
    bencher.bench_local(|| runtime.block_on(async { divan::black_box(1) }));
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        // Test mode (`cargo test --all-targets`): every event answered once, as expected.
        let app = app();
        let runtime = runtime();
        let invocation = invocation();
        for event in EVENTS.iter() {
            check(event, &answer(&runtime, &app, &invocation, &event.text));
        }
        assert!(
            EVENTS
                .iter()
                .any(|e| e.name == LARGE_NAME && e.body_bytes >= LARGE_BODY_BYTES)
        );
        println!("bench delivery: {} events answered as expected", EVENTS.len());
        return;
    }
    write_requests(&EVENTS);
    if std::env::var("DEALHOOK_BENCH_ONLY").as_deref() != Ok("p") {
        divan::main();
    }
    report(&percentile_pass(&EVENTS));
}
