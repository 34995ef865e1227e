//! The integration harness: a real `App` wired to a mock HubSpot (wiremock on loopback) and
//! real Secrets Manager / SQS on the moto server that `moto.rs` starts. One helper per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use dealhook::aws::{DynamoDbIdempotency, S3Payloads, SecretError, SecretSource, SecretsManagerSource, SqsQueue};
use dealhook::credentials::Credentials;
use dealhook::dead_letter::DeadLetter;
use dealhook::hubspot::portal::{Portal, PortalConfig};
use dealhook::hubspot::{HubSpotClient, HubSpotClientConfig, RetryPolicy};
use dealhook::idempotency::Idempotency;
use dealhook::inbound::Invocation;
use dealhook::mapping::Mapping;
use dealhook::metrics::{Metrics, Sink};
use dealhook::worker::WorkerSetup;
use dealhook::{App, Settings};
use serde_json::Value;
use wiremock::MockServer;

use crate::moto;
use crate::sample_events::lambda_v2_event;

/// A token that must never appear in a log line, a response or a dead letter.
pub const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-SECRETTOKEN";

/// One running app and the systems around it.
pub struct TestApp {
    /// The app under test.
    pub app: App,
    /// Mock HubSpot.
    pub hubspot: MockServer,
    /// The emulator's SDK config.
    pub sdk: SdkConfig,
    /// The dead-letter queue.
    pub queue_url: String,
    /// The secret's id.
    pub secret_id: String,
    /// The app's secret source, counting calls (read it directly to warm the cache).
    pub secrets: Arc<CountingSecrets>,
    /// Each invocation's deadline, this far after it is invoked ([`Options::deadline`]).
    pub deadline: Option<Duration>,
    /// Queue mode ([`Options::queue_mode`]): the work queue `app` puts deliveries on.
    pub work_queue_url: Option<String>,
    /// Queue mode: the worker, an app built like `app` (same secret, HubSpot, dead-letter queue, table and
    /// bucket) with [`WorkerSetup`] on the work queue.
    pub worker: Option<App>,
}

/// Queue mode for [`spawn_app_with`]: `app` answers `202 queued` and puts the work item on a fresh work
/// queue on moto; [`TestApp::worker`] consumes it.
#[derive(Debug, Clone, Copy)]
pub struct QueueMode {
    /// The work queue's `VisibilityTimeout` in seconds (moto's default is 30).
    pub visibility_timeout_s: u32,
    /// The worker's [`WorkerSetup::max_receive_count`] (`DEALHOOK_MAX_RECEIVE_COUNT`).
    pub max_receive_count: Option<u32>,
}

/// Options for [`spawn_app_with`].
pub struct Options {
    /// The secret's text.
    pub secret: String,
    /// Use this queue URL instead of a fresh queue.
    pub queue_url: Option<String>,
    /// SDK config for SQS (e.g. an unreachable endpoint).
    pub sqs_sdk: Option<SdkConfig>,
    /// Dry run.
    pub dry_run: bool,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Secret id override (e.g. one that does not exist).
    pub secret_id: Option<String>,
    /// SDK config for Secrets Manager (e.g. an unreachable endpoint); the secret is still created on moto.
    pub secrets_sdk: Option<SdkConfig>,
    /// HubSpot base URL override (e.g. a port nobody listens on); the mock still starts, unused.
    pub hubspot_base_url: Option<String>,
    /// The HubSpot client's request timeout, also the retry policy's `request_timeout` (unless `retry` is given).
    pub hubspot_request_timeout: Duration,
    /// The whole retry policy, instead of the harness's (10–50 ms waits, default attempts and margin).
    pub retry: Option<RetryPolicy>,
    /// Give each invocation a Lambda context whose deadline is this far after it is invoked.
    pub deadline: Option<Duration>,
    /// Idempotency records in a fresh table on moto (created from template.yaml's schema).
    pub idempotency: bool,
    /// SDK config for the idempotency store (e.g. an unreachable endpoint); implies `idempotency`.
    pub idempotency_sdk: Option<SdkConfig>,
    /// A mapping (YAML text) instead of the embedded one.
    pub mapping: Option<String>,
    /// Resolve labels against the portal's schema, cached as this says (`None`: drafts go out as mapped).
    pub portal: Option<PortalConfig>,
    /// Keep dead letters too big for a message in this bucket on moto (`DEALHOOK_PAYLOAD_BUCKET`).
    pub payload_bucket: Option<String>,
    /// Queue mode (`DEALHOOK_MODE=queue`) with a worker (`None`: sync mode).
    pub queue_mode: Option<QueueMode>,
    /// Where the app's (and the worker's) EMF metrics go, under the namespace `dealhook-api-test`.
    pub metrics: Option<Sink>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secret: format!(r#"{{"hubspot":{{"accessToken":"{TOKEN}"}}}}"#),
            queue_url: None,
            sqs_sdk: None,
            dry_run: false,
            max_body_bytes: 1024 * 1024,
            secret_id: None,
            secrets_sdk: None,
            hubspot_base_url: None,
            hubspot_request_timeout: Duration::from_secs(2),
            retry: None,
            deadline: None,
            idempotency: false,
            idempotency_sdk: None,
            mapping: None,
            portal: None,
            payload_bucket: None,
            queue_mode: None,
            metrics: None,
        }
    }
}

/// An app with the default mapping, a fresh secret holding [`TOKEN`] and a fresh queue.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// An app built from `options`.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let sdk = moto::sdk_config().await;
    let hubspot = MockServer::start().await;
    let secret_id = match options.secret_id {
        Some(id) => id,
        None => moto::create_secret(&sdk, &options.secret).await,
    };
    let queue_url = match options.queue_url {
        Some(url) => url,
        None => moto::create_queue(&sdk, false).await,
    };
    let sqs_sdk = options.sqs_sdk.unwrap_or_else(|| sdk.clone());
    let secrets_sdk = options.secrets_sdk.unwrap_or_else(|| sdk.clone());
    let secrets = Arc::new(CountingSecrets::new(SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&secrets_sdk),
        secret_id.clone(),
        Duration::from_secs(300),
    )));
    let payloads = options
        .payload_bucket
        .as_ref()
        .map(|bucket| Arc::new(S3Payloads::new(S3Payloads::client(&sdk), bucket)));
    let idempotency_table = match options.idempotency || options.idempotency_sdk.is_some() {
        true => Some(crate::idempotency::create_table(&sdk).await),
        false => None,
    };
    let store_sdk = options.idempotency_sdk.clone().unwrap_or_else(|| sdk.clone());
    let hubspot_base_url = options.hubspot_base_url.clone().unwrap_or_else(|| hubspot.uri());
    // The webhook function and, in queue mode, the worker: two apps over the same systems, as deployed.
    let build = || {
        let mut app = App::new(
            Settings {
                max_body_bytes: options.max_body_bytes,
                dry_run: options.dry_run,
                skip_signatures: false,
                retry: options.retry.unwrap_or(RetryPolicy {
                    base: Duration::from_millis(10),
                    cap: Duration::from_millis(50),
                    request_timeout: options.hubspot_request_timeout,
                    ..RetryPolicy::default()
                }),
            },
            Arc::new(match &options.mapping {
                Some(text) => Mapping::from_yaml(text, "test mapping").expect("the test mapping compiles"),
                None => crate::sample_events::showcase_mapping().expect("the showcase mapping compiles"),
            }),
            secrets.clone(),
            Arc::new(
                HubSpotClient::new(HubSpotClientConfig {
                    base_url: hubspot_base_url.clone(),
                    request_timeout: options.hubspot_request_timeout,
                    ..HubSpotClientConfig::default()
                })
                .expect("the HubSpot base URL is valid"),
            ),
            Arc::new({
                let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sqs_sdk), queue_url.clone());
                match &payloads {
                    Some(payloads) => queue.with_payloads(payloads.clone()),
                    None => queue,
                }
            }),
        );
        if let Some(config) = options.portal {
            app = app.with_portal(Portal::new(config));
        }
        if let Some(sink) = &options.metrics {
            app = app.with_metrics(Metrics::new("dealhook-api-test", sink.clone()));
        }
        if let Some(table) = &idempotency_table {
            app = app.with_idempotency(Idempotency {
                store: Arc::new(DynamoDbIdempotency::new(
                    aws_sdk_dynamodb::Client::new(&store_sdk),
                    table.clone(),
                )),
                ttl: Duration::from_secs(3600),
            });
        }
        app
    };
    let mut app = build();
    let (mut work_queue_url, mut worker) = (None, None);
    if let Some(mode) = options.queue_mode {
        let url = moto::create_work_queue(&sdk, mode.visibility_timeout_s).await;
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url.clone());
        let queue = Arc::new(match &payloads {
            Some(payloads) => queue.with_payloads(payloads.clone()),
            None => queue,
        });
        app = app.with_queue(queue.clone());
        worker = Some(build().with_worker(WorkerSetup {
            queue,
            payloads: payloads.clone().map(|p| p as Arc<dyn dealhook::aws::PayloadStore>),
            max_receive_count: mode.max_receive_count,
        }));
        work_queue_url = Some(url);
    }
    TestApp {
        app,
        hubspot,
        sdk,
        queue_url,
        secret_id,
        secrets,
        deadline: options.deadline,
        work_queue_url,
        worker,
    }
}

/// The app's [`SecretSource`], counting how often the pipeline asked for a forced re-read.
pub struct CountingSecrets {
    inner: SecretsManagerSource,
    refreshes: AtomicUsize,
}

impl CountingSecrets {
    fn new(inner: SecretsManagerSource) -> Self {
        CountingSecrets {
            inner,
            refreshes: AtomicUsize::new(0),
        }
    }

    /// How many times `refresh` (a forced re-read) was called.
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SecretSource for CountingSecrets {
    async fn credentials(&self) -> Result<Arc<Credentials>, SecretError> {
        self.inner.credentials().await
    }

    async fn refresh(&self) -> Result<Arc<Credentials>, SecretError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.inner.refresh().await
    }

    async fn reread_rate_limited(&self) -> Result<Arc<Credentials>, SecretError> {
        self.inner.reread_rate_limited().await
    }
}

/// A response as the tests see it.
pub struct TestResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: http::HeaderMap,
    /// The body's raw text.
    pub text: String,
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub json: Value,
}

impl TestResponse {
    /// Reads a Lambda response (statusCode, headers / multiValueHeaders, body).
    pub fn from_lambda(response: &Value) -> TestResponse {
        let status = response["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("a statusCode");
        let mut headers = http::HeaderMap::new();
        let mut add = |name: &str, value: &Value| {
            if let (Ok(name), Some(value)) = (http::HeaderName::from_bytes(name.as_bytes()), value.as_str()) {
                headers.append(name, http::HeaderValue::from_str(value).expect("a header value"));
            }
        };
        for (name, value) in response["headers"].as_object().into_iter().flatten() {
            add(name, value);
        }
        for (name, values) in response["multiValueHeaders"].as_object().into_iter().flatten() {
            for value in values.as_array().into_iter().flatten() {
                add(name, value);
            }
        }
        assert_eq!(response["isBase64Encoded"], false, "dealhook answers text: {response}");
        let text = response["body"].as_str().expect("a body").to_owned();
        TestResponse {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }
}

impl TestApp {
    /// Sends a Lambda event (JSON text) through the real entry point (`App::handle_event`), with an
    /// invocation carrying the deadline when [`Options::deadline`] was set.
    pub async fn invoke(&self, event: &str) -> TestResponse {
        let event: Value = serde_json::from_str(event).expect("a Lambda event is JSON");
        let invocation = Invocation {
            deadline: self.deadline.map(|after| SystemTime::now() + after),
            ..Invocation::local()
        };
        self.invoke_value(&event, &invocation).await
    }

    /// Sends a Lambda event through the real entry point and reads its Lambda response (any of the
    /// three shapes: headers from `headers` and `multiValueHeaders`).
    pub async fn invoke_value(&self, event: &Value, invocation: &Invocation) -> TestResponse {
        let response = self.app.handle_event(event, invocation).await;
        TestResponse::from_lambda(&response)
    }

    /// Posts `body` to `/hooks/{route}` as an HTTP API v2 event.
    pub async fn post(&self, route: &str, content_type: &str, body: &[u8]) -> TestResponse {
        self.invoke(&v2_event("POST", &format!("/hooks/{route}"), Some(content_type), body))
            .await
    }

    /// Every dead letter on the queue, parsed.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        moto::receive_all(&self.sdk, &self.queue_url)
            .await
            .into_iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("a dead letter is JSON"))
            .collect()
    }

    /// The raw text of every message on the queue.
    pub async fn dead_letter_texts(&self) -> Vec<String> {
        moto::receive_all(&self.sdk, &self.queue_url)
            .await
            .into_iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A realistic API Gateway HTTP API (payload 2.0) event carrying an `Authorization` header (to test
/// redaction); the body is sent base64-encoded.
pub fn v2_event(method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> String {
    let mut headers = vec![("authorization".to_owned(), format!("Bearer {TOKEN}"))];
    if let Some(ct) = content_type {
        headers.push(("content-type".to_owned(), ct.to_owned()));
    }
    let request_id = format!("test-{}", uuid::Uuid::new_v4());
    lambda_v2_event(method, path, "", &headers, body, &request_id).to_string()
}

/// A sample event from `examples/showcase/events/`.
pub fn sample_event(name: &str) -> String {
    let path = format!("{}/examples/showcase/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Captures log lines from the moment it starts. The subscriber is process-wide (installed once),
/// not `set_default`: tracing caches callsite interest across threads, so scoped subscribers miss
/// events when tests run in parallel. Lines from other tests running meanwhile are included.
pub struct LogCapture {
    start: usize,
}

static LOG_BUFFER: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

impl LogCapture {
    /// Starts capturing JSON log lines at TRACE level, formatted and capped as in production
    /// ([`dealhook::telemetry::subscriber`]).
    pub fn start() -> LogCapture {
        let buffer = LOG_BUFFER.get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = buffer.clone();
            let settings = dealhook::telemetry::LogSettings::from_vars(Some("trace"), None, None);
            let (subscriber, _) = dealhook::telemetry::subscriber(move || BufferWriter(writer.clone()), &settings);
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in this binary");
            buffer
        });
        LogCapture {
            start: buffer.lock().unwrap_or_else(|e| e.into_inner()).len(),
        }
    }

    /// Everything logged since `start`.
    pub fn text(&self) -> String {
        let buffer = LOG_BUFFER
            .get()
            .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        String::from_utf8_lossy(buffer.get(self.start..).unwrap_or_default()).into_owned()
    }
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
