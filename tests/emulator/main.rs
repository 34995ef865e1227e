//! The shipped Lambda binary on the real runtime path: the release `bootstrap` that
//! `cargo lambda build --release --bin dealhook-http` produces, talking the Lambda Runtime API to
//! `cargo lambda watch --only-lambda-apis` (the emulator serves the API and starts nothing), with
//! every sample event in `examples/showcase/events/` sent by `cargo lambda invoke`, a mock HubSpot (wiremock) and
//! Secrets Manager / SQS on moto behind it. The in-process tests (`tests/api`) call the handler
//! directly; this one proves the artifact, its cold start and the runtime protocol.
//!
//! Needs `DEALHOOK_BOOTSTRAP` (path to the built bootstrap), `cargo lambda` and `moto_server` on
//! PATH: `scripts/test` provides all three. Without them the test is ignored (and says why); run
//! with `--ignored` but without `DEALHOOK_BOOTSTRAP`, it fails rather than pass vacuously.

#[allow(dead_code)] // shared with tests/api, which uses more of it
#[path = "../api/moto.rs"]
mod moto;
mod process;
#[allow(dead_code)] // shared with tests/api, which uses more of it
#[path = "../common/sample_events.rs"]
mod sample_events;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use dealhook::dead_letter::DeadLetter;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use process::Supervised;
use sample_events::PROVIDERS;

/// The function's name: the emulator routes by it (`/.rt/<name>/…` for the runtime,
/// `/2015-03-31/functions/<name>/invocations` for invokes). It must be a binary of this package.
const FUNCTION: &str = "dealhook-http";
/// A token that must never appear in the function's logs or responses.
const TOKEN: &str = "pat-na1-emulator-0000-SECRETTOKEN";
/// The deal id the mock HubSpot answers with.
const DEAL_ID: u64 = 4_242_001;
/// Bounded waits: the emulator runs `cargo metadata` first; CI machines are not idle.
const EMULATOR_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// One invoke, cold start included (the secret read, SDK clients, the mapping).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// What each committed event must get. Provider events (`PROVIDERS`) all create a deal. A file in
/// `examples/showcase/events/` with no expectation fails the test, so a new sample event cannot go untested.
const EXPECTED: [(&str, u16, &str); 6] = [
    ("website-quote.json", 200, "created"),
    // The plan of calls on the 2026-03 API: contact upsert, company search and create, the deal.
    ("website-lead.json", 200, "created"),
    ("website-quote-invalid.json", 202, "dead_lettered"),
    ("website-quote-rest-v1.json", 200, "created"),
    ("contact-form.json", 200, "created"),
    ("contact-form-function-url.json", 200, "created"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DEALHOOK_BOOTSTRAP and cargo-lambda: run scripts/test"]
async fn the_shipped_bootstrap_answers_every_sample_event_through_the_lambda_runtime_api() {
    let bootstrap = bootstrap_path();
    require_cargo_lambda();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulator");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("events")).expect("creating target/tmp/emulator");

    // Secrets Manager and SQS (moto), and HubSpot (wiremock): all on 127.0.0.1.
    let sdk = moto::sdk_config().await;
    let secret_id = moto::create_secret(&sdk, &secret_text()).await;
    let queue_url = moto::create_queue(&sdk, false).await;
    // Idempotency on, so the shipped wiring of DEALHOOK_IDEMPOTENCY_TABLE is exercised too (tests/api
    // checks that this schema is template.yaml's).
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let table = moto::create_table(&sdk, &[pair("id", "S")], &[pair("id", "HASH")], "expires_at").await;
    let hubspot = MockServer::start().await;
    let invocations = plan(&dir.join("events"));
    // Deals through the v1 API; website-lead's goes through the 2026-03 plan, mocked below.
    let creates = invocations
        .iter()
        .filter(|i| i.status == 200 && i.name != "website-lead.json")
        .count() as u64;
    let crm = "/crm/objects/2026-03";
    let bearer = format!("Bearer {TOKEN}");
    let answers = [
        (
            format!("{crm}/contacts/batch/upsert"),
            ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
                {"id": "501", "new": true, "properties": {"email": "ada.lovelace@acme-robotics.example"}}]})),
        ),
        (
            format!("{crm}/companies/search"),
            ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})),
        ),
        (
            format!("{crm}/companies"),
            ResponseTemplate::new(201).set_body_json(json!({"id": "601", "properties": {}})),
        ),
        (
            format!("{crm}/deals"),
            ResponseTemplate::new(201).set_body_json(json!({"id": DEAL_ID.to_string(), "properties": {}})),
        ),
    ];
    for (at, answer) in answers {
        Mock::given(method("POST"))
            .and(path(at.as_str()))
            .and(header("authorization", bearer.as_str()))
            .respond_with(answer)
            .expect(1)
            .mount(&hubspot)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "portalId": 62515, "dealId": DEAL_ID })))
        .expect(creates)
        .mount(&hubspot)
        .await;

    // The sample events are the showcase's: its mapping replaces the embedded starter.
    let showcase = showcase_dir().join("mapping.yaml");
    let mut stack = Stack::start(
        &dir,
        &bootstrap,
        &[
            ("DEALHOOK_MAPPING", showcase.to_str().expect("a UTF-8 path")),
            ("HUBSPOT_SECRET_ID", secret_id.as_str()),
            ("HUBSPOT_BASE_URL", hubspot.uri().as_str()),
            ("DEALHOOK_DLQ_URL", queue_url.as_str()),
            ("DEALHOOK_IDEMPOTENCY_TABLE", table.as_str()),
            ("AWS_ENDPOINT_URL", moto::endpoint()),
        ],
    );

    let mut request_ids = Vec::new();
    for invocation in &invocations {
        let response = stack.invoke(&invocation.file).await;
        let what = format!("{} ({})", invocation.name, invocation.file.display());
        assert_eq!(response.status, invocation.status, "{what}: {}", response.body_text);
        assert_eq!(
            response.body["status"], invocation.outcome,
            "{what}: {}",
            response.body_text
        );
        if invocation.status == 200 {
            assert_eq!(response.body["dealId"], DEAL_ID, "{what}");
        }
        if let Some(dealname) = invocation.dealname {
            let requests = hubspot.received_requests().await.unwrap_or_default();
            let last = requests.last().expect("HubSpot was called");
            assert_eq!(deal_name(&last.body), dealname, "{what}: the deal's name");
        }
        assert!(!response.raw.contains(TOKEN), "{what}: the token is in the response");
        let request_id = response
            .request_id
            .unwrap_or_else(|| panic!("{what}: no x-dealhook-request-id header in {}", response.raw));
        request_ids.push((what, request_id, response.status, response.body));
    }

    // The sender repeats a delivery that created a deal: same answer, marked a replay, and HubSpot is
    // not called again (`expect(creates)` above is verified below).
    let first = invocations
        .iter()
        .find(|i| i.status == 200)
        .expect("an event that creates a deal");
    let repeat = stack.invoke(&first.file).await;
    assert_eq!(
        (repeat.status, &repeat.body["dealId"]),
        (200, &json!(DEAL_ID)),
        "{}",
        repeat.raw
    );
    assert!(
        repeat.raw.contains("x-dealhook-idempotent-replay"),
        "a repeat is marked as a replay: {}",
        repeat.raw
    );

    // The dead-lettered delivery is on the queue, under the id the sender was given; nothing else is.
    let letters: Vec<DeadLetter> = moto::receive_all(&sdk, &queue_url)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("a dead letter is JSON"))
        .collect();
    let dead_lettered: Vec<&Value> = request_ids
        .iter()
        .filter(|(_, _, status, _)| *status == 202)
        .map(|(_, _, _, body)| body)
        .collect();
    assert_eq!(
        letters.len(),
        dead_lettered.len(),
        "one dead letter per 202: {letters:?}"
    );
    for (letter, body) in letters.iter().zip(&dead_lettered) {
        assert_eq!(letter.id, body["deadLetterId"].as_str().unwrap_or_default());
        assert_eq!(letter.reason.as_str(), "mapping_failed");
        assert_eq!(letter.delivery.route, "website-quote");
    }
    hubspot.verify().await;

    // Logs: JSON lines only, one `delivery` line per invocation carrying its request id, no secret.
    let (stdout, stderr) = (stack.bootstrap.stdout(), stack.bootstrap.stderr());
    let lines: Vec<Value> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("a log line that is not a JSON object: {line}"))
        })
        .collect();
    for (what, request_id, status, _) in &request_ids {
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "delivery" && l["requestId"] == request_id.as_str() && l["status"] == *status),
            "{what}: no `delivery` log line with requestId {request_id} and status {status}"
        );
    }
    let secrets = [TOKEN].into_iter().chain(PROVIDERS.iter().map(|p| p.key));
    for secret in secrets.filter(|s| s.len() >= 8) {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret ({}…) is in the function's logs",
            &secret[..4]
        );
    }
}

/// One event to invoke and what it must get.
struct Invocation {
    name: String,
    file: PathBuf,
    status: u16,
    outcome: &'static str,
    /// For provider events: the deal name their route makes.
    dealname: Option<&'static str>,
}

/// Every file in `examples/showcase/events/`, with its expectation. Provider events were signed when
/// they were recorded (`SIGNED_AT`); timestamped schemes (Webflow, Stripe, Standard Webhooks,
/// HubSpot) rightly reject them now as replays, so those are rebuilt by the same builders that
/// produced the committed files (same bodies, same headers, fresh timestamp and signature) and
/// written to `events_dir`. The rest are invoked exactly as committed.
fn plan(events_dir: &Path) -> Vec<Invocation> {
    let committed = showcase_dir().join("events");
    let mut names: Vec<String> = std::fs::read_dir(&committed)
        .unwrap_or_else(|e| panic!("{}: {e}", committed.display()))
        .map(|entry| {
            entry
                .expect("reading events/")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json") && name != "sample-secret.json")
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no events in {}", committed.display());
    let mut invocations: Vec<Invocation> = names
        .into_iter()
        .map(|name| {
            if let Some(p) = PROVIDERS.iter().find(|p| format!("{}.json", p.name) == name) {
                let file = if p.timestamped() {
                    let event = sample_events::event(
                        p,
                        sample_events::now(),
                        "checkout.session.completed",
                        &format!("emulator-{}", p.name),
                    );
                    let file = events_dir.join(&name);
                    std::fs::write(&file, serde_json::to_string_pretty(&event).expect("JSON"))
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    file
                } else {
                    committed.join(&name)
                };
                return Invocation {
                    name,
                    file,
                    status: 200,
                    outcome: "created",
                    dealname: Some(p.dealname),
                };
            }
            let (_, status, outcome) = EXPECTED.iter().find(|(n, _, _)| *n == name).unwrap_or_else(|| {
                panic!(
                    "examples/showcase/events/{name} has no expectation: add it to EXPECTED in tests/emulator/main.rs"
                )
            });
            Invocation {
                file: committed.join(&name),
                name,
                status: *status,
                outcome,
                dealname: None,
            }
        })
        .collect();
    invocations.extend(edge_cases(events_dir, &committed));
    invocations
}

/// Events that crashed the function when `lambda_http` read them (issue 10, item 1), derived from
/// `website-quote.json`: a raw space in `rawQueryString` must reach the normal pipeline (a deal; the body
/// differs from the sample's so idempotency does not take it for a repeat), and a body flagged base64
/// that is not must be answered `400 malformed_request`.
fn edge_cases(events_dir: &Path, committed: &Path) -> Vec<Invocation> {
    let path = committed.join("website-quote.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sample: Value = serde_json::from_str(&text).expect("website-quote.json is JSON");
    let mut raw_space = sample.clone();
    raw_space["rawQueryString"] = "utm_source=newsletter&utm_campaign=spring sale".into();
    let body = raw_space["body"]
        .as_str()
        .unwrap_or_default()
        .replace("40 seats", "41 seats");
    raw_space["body"] = body.into();
    let mut bad_base64 = sample;
    bad_base64["body"] = "not base64!".into();
    bad_base64["isBase64Encoded"] = true.into();
    [
        ("edge-raw-space-query.json", raw_space, 200, "created"),
        ("edge-bad-base64-body.json", bad_base64, 400, "rejected"),
    ]
    .into_iter()
    .map(|(name, event, status, outcome)| {
        let file = events_dir.join(name);
        std::fs::write(&file, serde_json::to_string_pretty(&event).expect("JSON"))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Invocation {
            name: name.to_owned(),
            file,
            status,
            outcome,
            dealname: None,
        }
    })
    .collect()
}

/// `examples/showcase/`: the mapping, events and sample secret this test runs.
fn showcase_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/showcase")
}

/// `examples/showcase/sample-secret.json` (every sample signing key) with [`TOKEN`] as the HubSpot token.
fn secret_text() -> String {
    let path = showcase_dir().join("sample-secret.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut secret: Value = serde_json::from_str(&text).expect("sample-secret.json is JSON");
    secret["hubspot"]["accessToken"] = TOKEN.into();
    secret.to_string()
}

fn deal_name(request_body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(request_body).unwrap_or_default();
    body["properties"]
        .as_array()
        .and_then(|props| props.iter().find(|p| p["name"] == "dealname"))
        .and_then(|p| p["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// `$DEALHOOK_BOOTSTRAP`, absolute, checked to exist and to be newer than the sources it was
/// built from (a stale artifact would test old code).
fn bootstrap_path() -> PathBuf {
    let Some(value) = std::env::var_os("DEALHOOK_BOOTSTRAP").filter(|v| !v.is_empty()) else {
        panic!(
            "DEALHOOK_BOOTSTRAP is not set. Build the shipped binary with \
             `cargo lambda build --release --bin dealhook-http` and run \
             `DEALHOOK_BOOTSTRAP=target/lambda/dealhook-http/bootstrap cargo test --test emulator -- --ignored` \
             (scripts/test does this)"
        )
    };
    let path = std::fs::canonicalize(&value)
        .unwrap_or_else(|e| panic!("DEALHOOK_BOOTSTRAP={}: {e}", PathBuf::from(&value).display()));
    let built = modified(&path);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("mapping.yaml"),
        root.join("examples/showcase/mapping.yaml"),
    ];
    collect_files(&root.join("src"), &mut inputs);
    if let Some(newer) = inputs.iter().find(|input| modified(input) > built) {
        panic!(
            "{} is older than {}: rebuild it with `cargo lambda build --release --bin dealhook-http`",
            path.display(),
            newer.display()
        );
    }
    path
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("reading src/").path();
        if path.is_dir() {
            collect_files(&path, into);
        } else {
            into.push(path);
        }
    }
}

/// Fails clearly when `cargo lambda` cannot run (cargo finds `cargo-lambda` on PATH).
fn require_cargo_lambda() {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|dir| dir.join("cargo-lambda").is_file());
    assert!(
        found,
        "cargo-lambda is not on PATH: `.venv/bin/pip install cargo-lambda==1.9.2` and put .venv/bin on \
         PATH (scripts/test does both)"
    );
}

/// A free port on 127.0.0.1: bind port 0, read what the OS picked, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("a bound socket has an address").port()
}

/// The emulator and the function under it. Dropping stops both; if the test is failing, every
/// log is printed first.
struct Stack {
    dir: PathBuf,
    port: u16,
    // Declared (so dropped) before the emulator: the function goes first.
    bootstrap: Supervised,
    emulator: Supervised,
    invokes: usize,
}

impl Stack {
    /// Starts `cargo lambda watch --only-lambda-apis` on a free port (another on a port race),
    /// waits until it serves, then starts the bootstrap pointed at it with `env` and the rest of
    /// a Lambda environment.
    fn start(dir: &Path, bootstrap: &Path, env: &[(&str, &str)]) -> Stack {
        let (emulator, port) = start_emulator(dir);
        let mut command = Command::new(bootstrap);
        command
            .current_dir(bootstrap.parent().expect("the bootstrap is in a directory"))
            // What Lambda itself sets (and what the emulator prints it expects).
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{FUNCTION}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "emulator")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("TZ", ":UTC")
            // AWS on moto: static credentials, never the instance metadata service.
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let bootstrap = Supervised::spawn("bootstrap", &command, true, dir);
        Stack {
            dir: dir.to_owned(),
            port,
            bootstrap,
            emulator,
            invokes: 0,
        }
    }

    /// `cargo lambda invoke <FUNCTION> --data-file <file>` against the emulator, bounded by
    /// [`INVOKE_TIMEOUT`]; fails at once if the bootstrap dies meanwhile.
    async fn invoke(&mut self, file: &Path) -> LambdaResponse {
        self.invokes += 1;
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        let stdout_path = self.dir.join(format!("invoke-{:02}-{stem}.stdout.log", self.invokes));
        let stderr_path = self.dir.join(format!("invoke-{:02}-{stem}.stderr.log", self.invokes));
        let create = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let port = self.port.to_string();
        // Output goes to files, not pipes, so a child is never blocked on a full pipe while we poll.
        let mut child = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                FUNCTION,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port,
            ])
            .arg("--data-file")
            .arg(file)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(create(&stdout_path))
            .stderr(create(&stderr_path))
            .spawn()
            .unwrap_or_else(|e| panic!("running cargo lambda invoke: {e}"));
        let deadline = Instant::now() + INVOKE_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for cargo lambda invoke") {
                break status;
            }
            if let Some(status) = self.bootstrap.exited() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the bootstrap exited ({status}) while {} was being invoked",
                    file.display()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} got no answer within {INVOKE_TIMEOUT:?}", file.display());
            }
            // An async sleep: the mock HubSpot runs on this runtime and must keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert!(
            status.success(),
            "cargo lambda invoke {} failed ({status}):\n{stdout}\n{stderr}",
            file.display()
        );
        LambdaResponse::parse(&stdout)
            .unwrap_or_else(|why| panic!("{}: {why}; invoke printed:\n{stdout}\n{stderr}", file.display()))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("==== logs of the emulator run ({})", self.dir.display());
            eprintln!("{}\n{}", self.emulator.logs(), self.bootstrap.logs());
            eprintln!("(moto's log: {}/moto-emulator.log)", env!("CARGO_TARGET_TMPDIR"));
        }
    }
}

/// Starts the emulator; retries on another port if it loses a race for the one it was given.
fn start_emulator(dir: &Path) -> (Supervised, u16) {
    let mut failures = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            // The emulator reads the package's metadata: which functions (binaries) it routes to.
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let mut emulator = Supervised::spawn("emulator", &command, false, dir);
        let deadline = Instant::now() + EMULATOR_READY_TIMEOUT;
        loop {
            if let Some(status) = emulator.exited() {
                failures.push_str(&format!("port {port}: exited ({status})\n{}\n", emulator.logs()));
                break;
            }
            // Its "starting Runtime server" line is logged just before it binds.
            let announced = emulator.stderr().contains("starting Runtime server")
                || emulator.stdout().contains("starting Runtime server");
            if announced && serves(port) {
                return (emulator, port);
            }
            if Instant::now() > deadline {
                panic!(
                    "cargo lambda watch did not serve on 127.0.0.1:{port} within {EMULATOR_READY_TIMEOUT:?}\n{}",
                    emulator.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("cargo lambda watch could not start:\n{failures}");
}

fn serves(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).is_ok()
}

/// The function's answer as the invoke printed it (an API Gateway / function URL response).
struct LambdaResponse {
    raw: String,
    status: u16,
    request_id: Option<String>,
    body_text: String,
    body: Value,
}

impl LambdaResponse {
    fn parse(stdout: &str) -> Result<LambdaResponse, String> {
        let response: Value =
            serde_json::from_str(stdout.trim()).map_err(|e| format!("the response is not JSON: {e}"))?;
        let status = response["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("no statusCode")?;
        let body_text = match (response["body"].as_str(), response["isBase64Encoded"].as_bool()) {
            (Some(body), Some(true)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|e| format!("the body is not base64: {e}"))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            (Some(body), _) => body.to_owned(),
            (None, _) => String::new(),
        };
        // HTTP API v2 and function URL answers carry `headers`; REST v1 answers carry
        // `multiValueHeaders` only (`headers` is empty there, as lambda_http made them).
        let find = |headers: &Value| {
            headers
                .as_object()?
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("x-dealhook-request-id"))
                .and_then(|(_, value)| value.as_str().or_else(|| value[0].as_str()))
                .map(str::to_owned)
        };
        let request_id = find(&response["headers"]).or_else(|| find(&response["multiValueHeaders"]));
        Ok(LambdaResponse {
            raw: stdout.to_owned(),
            status,
            request_id,
            body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
            body_text,
        })
    }
}
