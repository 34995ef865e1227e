//! The AWS emulator for integration tests: one moto server per test binary on a free loopback port
//! (or the one at `DEALHOOK_TEST_AWS_ENDPOINT`), SDK configs pointing at it, and small helpers.
//! Nothing here ever talks to real AWS: every config carries an explicit loopback endpoint.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

/// Points the tests at an already running emulator instead of starting one.
const ENDPOINT_VAR: &str = "DEALHOOK_TEST_AWS_ENDPOINT";
/// The moto executable to run, when not `moto_server` on PATH.
const MOTO_VAR: &str = "MOTO_SERVER";
/// moto is ready in about a second on an idle machine; CI machines are not idle.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REGION: &str = "us-east-1";

/// The emulator this test binary uses.
struct Emulator {
    endpoint: String,
    /// The `sh` running moto and our end of its stdin pipe, never written. Statics are never
    /// dropped, but the kernel closes the pipe when the test process ends, however it ends: the
    /// watcher in [`RUN_MOTO`] then reads EOF and kills moto. `None` when the emulator is not ours.
    _lifeline: Option<(Child, ChildStdin)>,
}

/// The emulator's endpoint (`http://127.0.0.1:PORT`), starting moto on first use.
/// If it cannot start, every test using it panics with the same message (no second attempt).
pub fn endpoint() -> &'static str {
    static EMULATOR: OnceLock<Result<Emulator, String>> = OnceLock::new();
    let emulator = EMULATOR.get_or_init(|| match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Ok(Emulator {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
            _lifeline: None,
        }),
        _ => start_moto(),
    });
    match emulator {
        Ok(emulator) => &emulator.endpoint,
        Err(why) => panic!("{why}"),
    }
}

/// An SDK config for the emulator: dealhook's timeouts and retries, static `test`/`test`
/// credentials, region us-east-1.
pub async fn sdk_config() -> SdkConfig {
    config_for(endpoint()).await
}

/// An SDK config pointing at a loopback port nobody listens on: every call fails to connect.
pub async fn unreachable_endpoint_config() -> SdkConfig {
    // Use a random OS port, then release it: connections to it are refused straight away.
    let port = free_port();
    config_for(&format!("http://127.0.0.1:{port}")).await
}

async fn config_for(endpoint: &str) -> SdkConfig {
    dealhook::aws::sdk_config_loader()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "dealhook-tests"))
        .load()
        .await
}

/// A name no other test uses: the emulator is shared by every test in the binary.
pub fn unique_name(kind: &str) -> String {
    format!("dealhook-test-{kind}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a secret holding `text` under a unique name; returns its ARN.
pub async fn create_secret(cfg: &SdkConfig, text: &str) -> String {
    let out = aws_sdk_secretsmanager::Client::new(cfg)
        .create_secret()
        .name(unique_name("secret"))
        .secret_string(text)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a secret in the emulator: {}", DisplayErrorContext(e)));
    out.arn().expect("CreateSecret returns an ARN").to_owned()
}

/// Creates a secret holding only `SecretBinary`; returns its ARN.
pub async fn create_binary_secret(cfg: &SdkConfig, bytes: &[u8]) -> String {
    let out = aws_sdk_secretsmanager::Client::new(cfg)
        .create_secret()
        .name(unique_name("secret"))
        .secret_binary(Blob::new(bytes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a binary secret in the emulator: {}", DisplayErrorContext(e)));
    out.arn().expect("CreateSecret returns an ARN").to_owned()
}

/// Stores a new version of the secret (a rotation).
pub async fn put_secret(cfg: &SdkConfig, secret_id: &str, text: &str) {
    aws_sdk_secretsmanager::Client::new(cfg)
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(text)
        .send()
        .await
        .unwrap_or_else(|e| panic!("updating a secret in the emulator: {}", DisplayErrorContext(e)));
}

/// Deletes the secret at once (no recovery window): later reads fail.
pub async fn delete_secret(cfg: &SdkConfig, secret_id: &str) {
    aws_sdk_secretsmanager::Client::new(cfg)
        .delete_secret()
        .secret_id(secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("deleting a secret in the emulator: {}", DisplayErrorContext(e)));
}

/// Creates a queue with a unique name (FIFO, without content-based deduplication, if `fifo`);
/// returns its URL.
pub async fn create_queue(cfg: &SdkConfig, fifo: bool) -> String {
    let client = aws_sdk_sqs::Client::new(cfg);
    let mut request = client.create_queue();
    if fifo {
        request = request
            .queue_name(format!("{}.fifo", unique_name("dlq")))
            .attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        request = request.queue_name(unique_name("dlq"));
    }
    let out = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a queue in the emulator: {}", DisplayErrorContext(e)));
    out.queue_url().expect("CreateQueue returns a URL").to_owned()
}

/// Creates a standard queue with a unique name and this `VisibilityTimeout` (seconds), as the template's
/// work queue is; returns its URL.
pub async fn create_work_queue(cfg: &SdkConfig, visibility_timeout_s: u32) -> String {
    let out = aws_sdk_sqs::Client::new(cfg)
        .create_queue()
        .queue_name(unique_name("work"))
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_s.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a work queue in the emulator: {}", DisplayErrorContext(e)));
    out.queue_url().expect("CreateQueue returns a URL").to_owned()
}

/// Creates an on-demand DynamoDB table with a unique name, these `(attribute, type)` definitions,
/// `(attribute, key type)` key schema and TTL attribute; returns its name.
pub async fn create_table(
    cfg: &SdkConfig,
    attributes: &[(String, String)],
    key: &[(String, String)],
    ttl: &str,
) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let client = aws_sdk_dynamodb::Client::new(cfg);
    let name = unique_name("idempotency");
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind) in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .expect("a complete attribute definition"),
        );
    }
    for (attribute, kind) in key {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(attribute)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .expect("a complete key element"),
        );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a table in the emulator: {}", DisplayErrorContext(e)));
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(ttl)
        .enabled(true)
        .build()
        .expect("a complete TTL specification");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .unwrap_or_else(|e| panic!("enabling TTL in the emulator: {}", DisplayErrorContext(e)));
    name
}

/// Creates a bucket with a unique name (path-style, as dealhook's S3 client talks to an emulator);
/// returns its name.
pub async fn create_bucket(cfg: &SdkConfig) -> String {
    // Bucket names: lower case, at most 63 characters.
    let name = format!("dealhook-test-{}", uuid::Uuid::new_v4().simple());
    dealhook::aws::S3Payloads::client(cfg)
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a bucket in the emulator: {}", DisplayErrorContext(e)));
    name
}

/// Every message currently visible on the queue, with all message and system attributes.
/// Received messages stay invisible for the queue's visibility timeout (30 s), so this drains.
pub async fn receive_all(cfg: &SdkConfig, queue_url: &str) -> Vec<Message> {
    let client = aws_sdk_sqs::Client::new(cfg);
    let mut all = Vec::new();
    // Bounded: a test queue holds a handful of messages.
    for _ in 0..100 {
        let out = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receiving from the emulator: {}", DisplayErrorContext(e)));
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
    panic!("{queue_url} did not drain in 100 receives");
}

/// A free port on 127.0.0.1: bind port 0, read what the OS picked, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("a bound socket has an address").port()
}

/// `$MOTO_SERVER`, else `moto_server` on PATH; a clear message if neither.
fn moto_executable() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(MOTO_VAR).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "moto_server not found (set {MOTO_VAR}, or {ENDPOINT_VAR} to use a running emulator). \
                 Run the tests with `scripts/test`, which installs moto into .venv and puts it on PATH."
            )
        })
}

/// Runs moto under `sh`: moto in the background, a watcher that kills it when stdin (a pipe only
/// this process holds) reaches EOF, i.e. when the test process ends, however it ends. `sh` itself
/// exits when moto does, so an early death (bad install, port taken) is noticed at once.
const RUN_MOTO: &str = r#"
exec 3<&0 0</dev/null
"$0" -H 127.0.0.1 -p "$1" 3<&- &
pid=$!
{ read -r _ignored <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
"#;

fn start_moto() -> Result<Emulator, String> {
    let exe = moto_executable()?;
    let port = free_port();
    // One log per test binary (`moto-api.log`, `moto-emulator.log`): both include this file.
    let log_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{}.log", env!("CARGO_CRATE_NAME")));
    let with_log = |what: String| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!("{what}. Log {}:\n{log}", log_path.display())
    };
    let mut log = File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let _ = writeln!(log, "dealhook test harness: {} on 127.0.0.1:{port}", exe.display());
    let log_err = log
        .try_clone()
        .map_err(|e| format!("duplicating the log handle: {e}"))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(RUN_MOTO)
        .arg(&exe)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .map_err(|e| format!("starting {} through sh: {e}", exe.display()))?;
    let lifeline = child.stdin.take().ok_or("sh has no stdin pipe")?;

    let deadline = Instant::now() + READY_TIMEOUT;
    while !is_ready(port) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(with_log(format!("moto ({}) exited early ({status})", exe.display())));
        }
        if Instant::now() > deadline {
            // Dropping the lifeline stops it.
            return Err(with_log(format!(
                "moto ({}) did not answer on 127.0.0.1:{port} within {READY_TIMEOUT:?}",
                exe.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Emulator {
        endpoint: format!("http://127.0.0.1:{port}"),
        _lifeline: Some((child, lifeline)),
    })
}

/// Whether moto answers its dashboard with a 200 (not merely whether something listens).
fn is_ready(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head.ends_with(b"200")
}
