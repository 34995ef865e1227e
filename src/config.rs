//! Configuration: environment variables read once per cold start into typed settings, and
//! the wiring of real adapters from them. Secrets stay wrapped; nothing here logs a value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::aws::{
    DeadLetters, DynamoDbIdempotency, LazyClient, MemoryDeadLetters, PayloadStore, S3Payloads, SecretSource,
    SecretsManagerSource, SqsQueue, StaticSecrets,
};
use crate::credentials::Credentials;
use crate::hubspot::portal::{Portal, PortalConfig};
use crate::hubspot::{HubSpotClient, HubSpotClientConfig, RetryPolicy};
use crate::idempotency::Idempotency;
use crate::mapping::{Mapping, MappingLoadError};
use crate::metrics::{self, Metrics};
use crate::queue::WorkQueue;
use crate::worker::WorkerSetup;
use crate::{App, Settings};

/// Default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default time credentials stay cached before they are re-read.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);
/// The shortest idempotency TTL: Lambda's 15-minute maximum run, so no lock outlives its record.
pub const MIN_IDEMPOTENCY_TTL: Duration = Duration::from_secs(15 * 60);
/// Default HubSpot API base URL.
pub const DEFAULT_HUBSPOT_BASE_URL: &str = "https://api.hubapi.com";

/// Everything read from the environment. See the README's configuration table.
#[derive(Debug, Clone)]
pub struct Env {
    /// `HUBSPOT_SECRET_ID`: Secrets Manager id or ARN of the credentials.
    pub hubspot_secret_id: Option<String>,
    /// `HUBSPOT_ACCESS_TOKEN`: for local runs only, stands in for the secret.
    pub hubspot_access_token: Option<SecretString>,
    /// `HUBSPOT_BASE_URL`.
    pub hubspot_base_url: String,
    /// `DEALHOOK_DLQ_URL`: the dead-letter queue.
    pub dlq_url: Option<String>,
    /// `DEALHOOK_MAPPING`: a mapping file replacing the embedded one.
    pub mapping_path: Option<PathBuf>,
    /// `DEALHOOK_MAPPING_YAML`: the mapping's text inline (e.g. a SAM parameter); `DEALHOOK_MAPPING` wins.
    pub mapping_yaml: Option<String>,
    /// `DEALHOOK_DRY_RUN`: build the request, send nothing.
    pub dry_run: bool,
    /// `DEALHOOK_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `DEALHOOK_SECRET_TTL_SECONDS`.
    pub secret_ttl: Duration,
    /// `DEALHOOK_HUBSPOT_TIMEOUT_MS`: per-request timeout to HubSpot.
    pub hubspot_timeout: Duration,
    /// `DEALHOOK_IDEMPOTENCY_TABLE`: the DynamoDB table of idempotency records; unset, idempotency is off.
    pub idempotency_table: Option<String>,
    /// `DEALHOOK_IDEMPOTENCY_TTL_SECONDS`: how long a record lives; at least [`MIN_IDEMPOTENCY_TTL`] (900 s,
    /// Lambda's longest run, so no lock outlives its record), default 86 400 s.
    pub idempotency_ttl: Duration,
    /// `DEALHOOK_PAYLOAD_BUCKET`: the S3 bucket holding envelopes too big for a queue message; unset,
    /// such an envelope cannot be kept (the delivery is answered 503).
    pub payload_bucket: Option<String>,
    /// `DEALHOOK_MODE`: `sync` (the default: the HTTP function makes the deal) or `queue` (it puts the
    /// delivery on the work queue for the worker; see [`crate::queue`]).
    pub delivery_mode: DeliveryMode,
    /// `DEALHOOK_QUEUE_URL`: the work queue (queue mode, and the worker).
    pub queue_url: Option<String>,
    /// `DEALHOOK_MAX_RECEIVE_COUNT`: the work queue's redrive `maxReceiveCount`, so that the worker
    /// dead-letters a failure itself, with its reason, on a message's last receive.
    pub max_receive_count: Option<u32>,
    /// `DEALHOOK_METRICS_NAMESPACE`: the CloudWatch namespace of the EMF metrics (default `dealhook`;
    /// see [`crate::metrics::parse_namespace`]).
    pub metrics_namespace: String,
}

/// Where the HTTP function sends an accepted delivery (`DEALHOOK_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// To HubSpot, before answering (the default).
    #[default]
    Sync,
    /// To the work queue (`DEALHOOK_QUEUE_URL`); the worker makes the deal.
    Queue,
}

/// A configuration problem found at cold start (or by the CLI).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be used.
    #[error("{name} is invalid: {message}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// Which rule it broke.
        message: String,
    },
    /// A required variable is missing.
    #[error("{name} is not set: {why}")]
    Missing {
        /// Variable name.
        name: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// The mapping file could not be read.
    #[error("the mapping file {path} could not be read: {source}")]
    MappingUnreadable {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The mapping is invalid.
    #[error(transparent)]
    Mapping(#[from] MappingLoadError),
    /// `HUBSPOT_ACCESS_TOKEN` is neither a token nor a secret of the documented shape.
    #[error("HUBSPOT_ACCESS_TOKEN: {0}")]
    AccessToken(crate::credentials::CredentialsError),
    /// The HubSpot client could not be built.
    #[error("HUBSPOT_BASE_URL: {0}")]
    HubSpot(#[from] crate::hubspot::HubSpotConfigError),
}

/// Where the process runs: the Lambda function insists on a queue and credentials; the local CLI falls
/// back to a dry run and to showing dead letters instead of sending them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// AWS Lambda.
    Lambda,
    /// `dealhook invoke` / `transform` on a developer's machine.
    Local,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Result<Env, ConfigError> {
        Env::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Env, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(Env {
            hubspot_secret_id: get("HUBSPOT_SECRET_ID"),
            hubspot_access_token: get("HUBSPOT_ACCESS_TOKEN").map(SecretString::from),
            hubspot_base_url: get("HUBSPOT_BASE_URL").unwrap_or_else(|| DEFAULT_HUBSPOT_BASE_URL.to_owned()),
            dlq_url: get("DEALHOOK_DLQ_URL"),
            mapping_path: get("DEALHOOK_MAPPING").map(PathBuf::from),
            // Not trimmed: YAML is indentation-sensitive.
            mapping_yaml: lookup("DEALHOOK_MAPPING_YAML").filter(|v| !v.trim().is_empty()),
            dry_run: parse_bool("DEALHOOK_DRY_RUN", get("DEALHOOK_DRY_RUN"))?.unwrap_or(false),
            max_body_bytes: parse_number("DEALHOOK_MAX_BODY_BYTES", get("DEALHOOK_MAX_BODY_BYTES"))?
                .map(|n| n as usize)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            secret_ttl: parse_number("DEALHOOK_SECRET_TTL_SECONDS", get("DEALHOOK_SECRET_TTL_SECONDS"))?
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_SECRET_TTL),
            hubspot_timeout: parse_number("DEALHOOK_HUBSPOT_TIMEOUT_MS", get("DEALHOOK_HUBSPOT_TIMEOUT_MS"))?
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(10)),
            idempotency_table: get("DEALHOOK_IDEMPOTENCY_TABLE"),
            idempotency_ttl: parse_idempotency_ttl(get("DEALHOOK_IDEMPOTENCY_TTL_SECONDS"))?,
            payload_bucket: get("DEALHOOK_PAYLOAD_BUCKET"),
            delivery_mode: match get("DEALHOOK_MODE").map(|m| m.to_ascii_lowercase()).as_deref() {
                None | Some("sync") => DeliveryMode::Sync,
                Some("queue") => DeliveryMode::Queue,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "DEALHOOK_MODE",
                        message: format!("{other:?} is not a mode (sync or queue)"),
                    });
                }
            },
            queue_url: get("DEALHOOK_QUEUE_URL"),
            max_receive_count: parse_number("DEALHOOK_MAX_RECEIVE_COUNT", get("DEALHOOK_MAX_RECEIVE_COUNT"))?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            metrics_namespace: match get(metrics::NAMESPACE_VAR) {
                None => metrics::DEFAULT_NAMESPACE.to_owned(),
                Some(namespace) => metrics::parse_namespace(&namespace).map_err(|e| ConfigError::Invalid {
                    name: metrics::NAMESPACE_VAR,
                    message: e.to_string(),
                })?,
            },
        })
    }

    /// Loads the mapping named by `DEALHOOK_MAPPING`, else the one in `DEALHOOK_MAPPING_YAML`, else the
    /// embedded default.
    pub fn load_mapping(&self) -> Result<Mapping, ConfigError> {
        let (origin, text) = self.mapping_text(None)?;
        Ok(Mapping::from_yaml(&text, &origin)?)
    }

    /// The mapping's text and its name in messages: `path` (a command-line argument) if given, else
    /// `DEALHOOK_MAPPING`'s file, else `DEALHOOK_MAPPING_YAML`, else the embedded default: the one
    /// source every command (`check`, `check --online`, `invoke`, the function) uses.
    pub fn mapping_text(&self, path: Option<&std::path::Path>) -> Result<(String, String), ConfigError> {
        match (path.or(self.mapping_path.as_deref()), &self.mapping_yaml) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::MappingUnreadable {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok((path.display().to_string(), text))
            }
            (None, Some(text)) => Ok(("DEALHOOK_MAPPING_YAML".to_owned(), text.clone())),
            (None, None) => Ok((
                crate::mapping::EMBEDDED_ORIGIN.to_owned(),
                crate::mapping::embedded_text().to_owned(),
            )),
        }
    }

    /// Whether this run will send nothing to HubSpot: asked for, or (locally) no credential configured.
    pub fn is_dry_run(&self, mode: Mode) -> bool {
        self.dry_run || (mode == Mode::Local && self.hubspot_secret_id.is_none() && self.hubspot_access_token.is_none())
    }
}

fn parse_bool(name: &'static str, value: Option<String>) -> Result<Option<bool>, ConfigError> {
    value
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a boolean (true/false, 1/0)"),
            }),
        })
        .transpose()
}

fn parse_idempotency_ttl(value: Option<String>) -> Result<Duration, ConfigError> {
    const NAME: &str = "DEALHOOK_IDEMPOTENCY_TTL_SECONDS";
    match parse_number(NAME, value)? {
        None => Ok(crate::idempotency::DEFAULT_TTL),
        // Shorter than a lock could last, a record would expire while its delivery is in progress.
        Some(secs) if secs < MIN_IDEMPOTENCY_TTL.as_secs() => Err(ConfigError::Invalid {
            name: NAME,
            message: format!(
                "{secs} s is too short: records must outlive the function's longest run; use at least {}",
                MIN_IDEMPOTENCY_TTL.as_secs()
            ),
        }),
        Some(secs) => Ok(Duration::from_secs(secs)),
    }
}

fn parse_number(name: &'static str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|v| {
            v.parse::<u64>().map_err(|_| ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a whole number"),
            })
        })
        .transpose()
}

/// What `App::from_env` wired, for the CLI to tell the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wiring {
    /// Nothing is sent to HubSpot.
    pub dry_run: bool,
    /// Dead letters are kept in memory (not sent to SQS).
    pub dead_letters_in_memory: bool,
    /// Signatures are not verified (local runs without a secret).
    pub skip_signatures: bool,
    /// Pipeline, stage and option labels are resolved against the portal's schema. Not in a local run
    /// with neither `HUBSPOT_SECRET_ID` nor `HUBSPOT_ACCESS_TOKEN`: there is nothing to read it with.
    pub labels_resolved: bool,
}

/// At cold start: logs one error for each signing key the mapping names that the secret lacks (with
/// the routes and the line that name it). Never fatal: the endpoints that need a missing key answer
/// `503 signing_key_missing` (the sender retries, so nothing is lost once the key is added) and every
/// other endpoint is served. `dealhook check --secret` fails on the same finding, before a deploy.
/// A secret that cannot be read now is not fatal either: it is read again per delivery.
///
/// The secret is read even when no route is signed: the read warms the cache for the first delivery
/// and tells the log and dead-letter scrubbing which values to remove.
///
/// Without `HUBSPOT_SECRET_ID` (`from_secrets_manager` false) there is no secret to add a key to: the
/// keys can only come from `HUBSPOT_ACCESS_TOKEN` holding the secret's JSON, and the log says so.
async fn check_signing_keys(mapping: &Mapping, secrets: &dyn SecretSource, from_secrets_manager: bool) {
    match secrets.credentials().await {
        Ok(credentials) => {
            for missing in mapping.missing_signing_keys(&|key| credentials.signing.contains_key(key)) {
                if from_secrets_manager {
                    tracing::error!(
                        problem = %missing.in_file(mapping.origin()),
                        "the secret lacks a signing key the mapping names: the endpoints using it answer 503 \
                         signing_key_missing until it is added; every other endpoint is served"
                    );
                } else {
                    tracing::error!(
                        problem = %missing.in_file(mapping.origin()),
                        "HUBSPOT_SECRET_ID is not set, so no secret holds the signing keys the mapping names \
                         (HUBSPOT_ACCESS_TOKEN gives them only when it holds the secret's whole JSON): the \
                         endpoints using this key answer 503 signing_key_missing; set HUBSPOT_SECRET_ID \
                         (the template's HubSpotSecret parameter) to the secret that holds them"
                    );
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the secret could not be read at cold start; will retry per delivery");
        }
    }
}

/// The app of a Lambda function (`function` names it in the log: `dealhook`, `dealhook-worker`),
/// built from the process environment, or `None` when the configuration is invalid. That failure
/// is logged here, once, as a JSON line naming the variable and the fix; the binary then exits
/// with a failure status rather than returning the error from `main`, which would print it a
/// second time as a Rust `Debug` dump.
pub async fn lambda_app(function: &str) -> Option<App> {
    let built = match Env::from_process() {
        Ok(env) => build_app(&env, Mode::Lambda).await,
        Err(e) => Err(e),
    };
    match built {
        Ok((app, _, _)) => Some(app),
        Err(e) => {
            tracing::error!(error = %e, "{function} cannot start: configuration is invalid");
            None
        }
    }
}

/// Builds the app from the environment. In `Mode::Lambda` a dead-letter queue and credentials are
/// required (unless `DEALHOOK_DRY_RUN`), so that no accepted delivery can be lost.
/// Returns the in-memory dead letters when no queue is configured (local mode only).
pub async fn build_app(env: &Env, mode: Mode) -> Result<(App, Wiring, Option<Arc<MemoryDeadLetters>>), ConfigError> {
    let mapping = Arc::new(env.load_mapping()?);
    let dry_run = env.is_dry_run(mode);
    if mode == Mode::Lambda && !dry_run && env.hubspot_secret_id.is_none() && env.hubspot_access_token.is_none() {
        return Err(ConfigError::Missing {
            name: "HUBSPOT_SECRET_ID",
            why: "it names the Secrets Manager secret holding the HubSpot token (or set DEALHOOK_DRY_RUN=true)",
        });
    }
    if mode == Mode::Lambda && env.dlq_url.is_none() {
        return Err(ConfigError::Missing {
            name: "DEALHOOK_DLQ_URL",
            why: "without a dead-letter queue, deliveries that cannot become deals would be lost",
        });
    }
    if mode == Mode::Lambda && env.queue_url.is_some() && env.idempotency_table.is_none() {
        // SQS delivers at least once (and a worker's timeout hands the whole batch out again): without
        // the table, a work item delivered twice would make two deals.
        return Err(ConfigError::Missing {
            name: "DEALHOOK_IDEMPOTENCY_TABLE",
            why: "queue mode needs the idempotency table (deploy with Idempotency=enabled): SQS may deliver a \
                  work item more than once, and only the table keeps that from making a second deal",
        });
    }
    if env.delivery_mode == DeliveryMode::Queue && env.queue_url.is_none() {
        return Err(ConfigError::Missing {
            name: "DEALHOOK_QUEUE_URL",
            why: "DEALHOOK_MODE=queue puts deliveries on the work queue it names",
        });
    }
    let needs_aws = env.hubspot_secret_id.is_some()
        || env.dlq_url.is_some()
        || env.idempotency_table.is_some()
        || env.payload_bucket.is_some()
        || env.queue_url.is_some();
    let sdk = if needs_aws {
        Some(crate::aws::load_sdk_config().await)
    } else {
        None
    };

    let secrets = secret_source(env, sdk.as_ref())?;

    // Clients the first delivery does not need are built on first use (`LazyClient`): S3 (big payloads
    // only) and the dead-letter queue's SQS client; the work queue's shares it.
    let payloads: Option<Arc<dyn PayloadStore>> = match (&env.payload_bucket, &sdk) {
        (Some(bucket), Some(sdk)) => Some(Arc::new(S3Payloads::new(S3Payloads::lazy_client(sdk), bucket.clone()))),
        _ => None,
    };
    let sqs_client = sdk.as_ref().map(|sdk| LazyClient::new(sdk, aws_sdk_sqs::Client::new));
    let sqs_queue = |url: &String, sqs_client: &LazyClient<aws_sdk_sqs::Client>| {
        let queue = SqsQueue::new(sqs_client.clone(), url.clone());
        match &payloads {
            Some(payloads) => queue.with_payloads(payloads.clone()),
            None => queue,
        }
    };
    let mut memory_letters = None;
    let dead_letters: Arc<dyn DeadLetters> = match (&env.dlq_url, &sqs_client) {
        (Some(url), Some(client)) => Arc::new(sqs_queue(url, client)),
        _ => {
            let memory = Arc::new(MemoryDeadLetters::default());
            memory_letters = Some(memory.clone());
            memory
        }
    };

    let deals = Arc::new(hubspot_client(env)?);

    if mode == Mode::Lambda {
        check_signing_keys(&mapping, secrets.as_ref(), env.hubspot_secret_id.is_some()).await;
    }
    // Locally, without a secret there are no signing keys: signatures are skipped, loudly.
    let skip_signatures = mode == Mode::Local && env.hubspot_secret_id.is_none();
    let settings = Settings {
        max_body_bytes: env.max_body_bytes,
        dry_run,
        skip_signatures,
        // The default policy, estimating each request at the client's configured timeout.
        retry: RetryPolicy {
            request_timeout: env.hubspot_timeout,
            ..RetryPolicy::default()
        },
    };
    let labels_resolved =
        !(mode == Mode::Local && env.hubspot_secret_id.is_none() && env.hubspot_access_token.is_none());
    let wiring = Wiring {
        dry_run,
        dead_letters_in_memory: memory_letters.is_some(),
        skip_signatures,
        labels_resolved,
    };
    // Labels are resolved everywhere (Lambda, `invoke`, `transform`); the schema is read on first use.
    // Not in a local run with no credential at all: there is nothing to read the portal with, and the
    // CLI says so once instead of a failed read per delivery.
    let mut app = App::new(settings, mapping, secrets, deals, dead_letters);
    if labels_resolved {
        app = app.with_portal(Portal::new(PortalConfig::default()));
    }
    if let (Some(table), Some(sdk)) = (&env.idempotency_table, &sdk) {
        let store = DynamoDbIdempotency::new(aws_sdk_dynamodb::Client::new(sdk), table.clone());
        app = app.with_idempotency(Idempotency {
            store: Arc::new(store),
            ttl: env.idempotency_ttl,
        });
    }
    // The work queue: the HTTP function puts deliveries on it in queue mode; the worker (which runs
    // the same app) takes them and changes their visibility.
    if let (Some(url), Some(client)) = (&env.queue_url, &sqs_client) {
        let queue: Arc<dyn WorkQueue> = Arc::new(sqs_queue(url, client));
        if env.delivery_mode == DeliveryMode::Queue {
            app = app.with_queue(queue.clone());
        }
        app = app.with_worker(WorkerSetup {
            queue,
            payloads,
            max_receive_count: env.max_receive_count,
        });
    }
    // Metrics go to stdout on Lambda only: locally, stdout is the answer.
    if mode == Mode::Lambda {
        app = app.with_metrics(Metrics::new(env.metrics_namespace.clone(), metrics::Sink::Stdout));
    }
    Ok((app, wiring, memory_letters))
}

/// Where the HubSpot credential comes from: the Secrets Manager secret `HUBSPOT_SECRET_ID` names, else
/// `HUBSPOT_ACCESS_TOKEN` (read as the secret is), else nothing (an empty source).
fn secret_source(env: &Env, sdk: Option<&aws_config::SdkConfig>) -> Result<Arc<dyn SecretSource>, ConfigError> {
    Ok(match (&env.hubspot_secret_id, &env.hubspot_access_token, sdk) {
        (Some(id), _, Some(sdk)) => Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            id.clone(),
            env.secret_ttl,
        )),
        // Read as the secret is (a plain token, or the secret's JSON with OAuth or signing keys), so
        // that a JSON secret is never sent as a Bearer token.
        (_, Some(token), _) => {
            use secrecy::ExposeSecret as _;
            let credentials = Credentials::parse(token.expose_secret()).map_err(ConfigError::AccessToken)?;
            Arc::new(StaticSecrets::new(credentials))
        }
        _ => Arc::new(StaticSecrets::new(Credentials::default())),
    })
}

fn hubspot_client(env: &Env) -> Result<HubSpotClient, ConfigError> {
    Ok(HubSpotClient::new(HubSpotClientConfig {
        base_url: env.hubspot_base_url.clone(),
        request_timeout: env.hubspot_timeout,
        ..HubSpotClientConfig::default()
    })?)
}

/// The HubSpot client and the credential's source, as `invoke` has them (`HUBSPOT_SECRET_ID`, else
/// `HUBSPOT_ACCESS_TOKEN`; `HUBSPOT_BASE_URL`), for commands that only read from HubSpot
/// (`check --online`). `Ok(None)` when neither credential variable is set.
pub async fn hubspot_access(env: &Env) -> Result<Option<(Arc<dyn SecretSource>, HubSpotClient)>, ConfigError> {
    if env.hubspot_secret_id.is_none() && env.hubspot_access_token.is_none() {
        return Ok(None);
    }
    let sdk = match env.hubspot_secret_id {
        Some(_) => Some(crate::aws::load_sdk_config().await),
        None => None,
    };
    Ok(Some((secret_source(env, sdk.as_ref())?, hubspot_client(env)?)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::from_lookup(|name| map.get(name).cloned())
    }

    /// The cold-start check's error lines for a mapping with one signed route (key `typeform`) over a
    /// secret with no signing keys, read from Secrets Manager or not. The mapping's origin is unique, so
    /// only this call's lines are taken from the shared capture.
    async fn missing_key_lines(from_secrets_manager: bool) -> Vec<serde_json::Value> {
        let capture = crate::telemetry::capture::LogCapture::start();
        let origin = format!("missing-key-{}.yaml", uuid::Uuid::new_v4());
        let yaml = "version: 1\nroutes:\n  typeform:\n    source: typeform\n    signing_secret: typeform\n    \
                    deal:\n      dealstage: appointmentscheduled\n      properties:\n        dealname: x\n";
        let mapping = Mapping::from_yaml(yaml, &origin).unwrap();
        let secrets = StaticSecrets::new(Credentials::parse("pat-only-a-token").unwrap());
        check_signing_keys(&mapping, &secrets, from_secrets_manager).await;
        capture
            .text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["problem"].as_str().is_some_and(|p| p.contains(&origin)))
            .collect()
    }

    #[tokio::test]
    async fn a_missing_signing_key_is_blamed_on_the_secret_or_on_its_absence() {
        let from_secret = missing_key_lines(true).await;
        assert_eq!(from_secret.len(), 1, "{from_secret:?}");
        let message = from_secret[0]["message"].as_str().unwrap();
        assert!(message.starts_with("the secret lacks a signing key"), "{message}");
        assert!(from_secret[0]["problem"].as_str().unwrap().contains("typeform"));

        // HUBSPOT_ACCESS_TOKEN alone: there is no secret to add the key to, and the line says what to set.
        let no_secret = missing_key_lines(false).await;
        assert_eq!(no_secret.len(), 1, "{no_secret:?}");
        let message = no_secret[0]["message"].as_str().unwrap();
        assert!(message.starts_with("HUBSPOT_SECRET_ID is not set"), "{message}");
        assert!(message.contains("HubSpotSecret"), "{message}");
        assert!(!message.contains("pat-only-a-token"), "{message}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let e = env(&[]).unwrap();
        assert_eq!(e.hubspot_base_url, DEFAULT_HUBSPOT_BASE_URL);
        assert_eq!(e.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(!e.dry_run);
        assert!(e.is_dry_run(Mode::Local), "no credentials locally means a dry run");
        assert!(
            !e.is_dry_run(Mode::Lambda),
            "Lambda never falls back to a dry run silently"
        );
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_rule() {
        let err = env(&[("DEALHOOK_DRY_RUN", "maybe")]).unwrap_err().to_string();
        assert!(
            err.contains("DEALHOOK_DRY_RUN") && err.contains("not a boolean"),
            "{err}"
        );
        let err = env(&[("DEALHOOK_MAX_BODY_BYTES", "1MB")]).unwrap_err().to_string();
        assert!(
            err.contains("DEALHOOK_MAX_BODY_BYTES") && err.contains("whole number"),
            "{err}"
        );
    }

    #[test]
    fn idempotency_is_off_unless_a_table_is_named_and_records_live_a_day() {
        let e = env(&[]).unwrap();
        assert_eq!(e.idempotency_table, None);
        assert_eq!(e.idempotency_ttl, Duration::from_secs(86_400));
        let e = env(&[
            ("DEALHOOK_IDEMPOTENCY_TABLE", " dealhook-idempotency "),
            ("DEALHOOK_IDEMPOTENCY_TTL_SECONDS", "3600"),
        ])
        .unwrap();
        assert_eq!(e.idempotency_table.as_deref(), Some("dealhook-idempotency"));
        assert_eq!(e.idempotency_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn an_idempotency_ttl_shorter_than_a_lambda_run_is_refused() {
        let err = env(&[("DEALHOOK_IDEMPOTENCY_TTL_SECONDS", "60")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DEALHOOK_IDEMPOTENCY_TTL_SECONDS") && err.contains("at least 900"),
            "{err}"
        );
        assert!(env(&[("DEALHOOK_IDEMPOTENCY_TTL_SECONDS", "900")]).is_ok());
        let err = env(&[("DEALHOOK_IDEMPOTENCY_TTL_SECONDS", "1d")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn the_payload_bucket_is_optional_and_trimmed() {
        assert_eq!(env(&[]).unwrap().payload_bucket, None);
        assert_eq!(env(&[("DEALHOOK_PAYLOAD_BUCKET", "  ")]).unwrap().payload_bucket, None);
        let e = env(&[("DEALHOOK_PAYLOAD_BUCKET", " dealhook-payloads ")]).unwrap();
        assert_eq!(e.payload_bucket.as_deref(), Some("dealhook-payloads"));
    }

    #[test]
    fn an_access_token_ends_the_local_dry_run() {
        let e = env(&[("HUBSPOT_ACCESS_TOKEN", "pat-123")]).unwrap();
        assert!(!e.is_dry_run(Mode::Local));
        assert!(!format!("{e:?}").contains("pat-123"), "Debug must not print the token");
    }

    #[tokio::test]
    async fn lambda_mode_refuses_to_start_without_a_dead_letter_queue() {
        let e = env(&[("HUBSPOT_ACCESS_TOKEN", "pat-123")]).unwrap();
        let err = build_app(&e, Mode::Lambda).await.err().unwrap().to_string();
        assert!(err.contains("DEALHOOK_DLQ_URL"), "{err}");
    }

    /// SQS delivers at least once: queue mode and the worker refuse to start without the idempotency
    /// table (a fresh-user review made two deals from one work item delivered twice).
    #[tokio::test]
    async fn queue_mode_refuses_to_start_on_lambda_without_the_idempotency_table() {
        for mode in ["queue", "sync"] {
            let e = env(&[
                ("HUBSPOT_ACCESS_TOKEN", "pat-123"),
                ("DEALHOOK_DLQ_URL", "http://127.0.0.1:1/dlq"),
                ("DEALHOOK_QUEUE_URL", "http://127.0.0.1:1/work"),
                ("DEALHOOK_MODE", mode),
            ])
            .unwrap();
            let err = build_app(&e, Mode::Lambda).await.err().unwrap().to_string();
            assert!(err.contains("DEALHOOK_IDEMPOTENCY_TABLE"), "{mode}: {err}");
        }
        let bad = env(&[("DEALHOOK_MODE", "later")]).err().unwrap().to_string();
        assert!(bad.contains("DEALHOOK_MODE") && bad.contains("sync or queue"), "{bad}");
    }

    #[tokio::test]
    async fn the_metrics_namespace_defaults_to_dealhook_and_a_bad_one_is_named() {
        assert_eq!(env(&[]).unwrap().metrics_namespace, "dealhook");
        assert_eq!(
            env(&[("DEALHOOK_METRICS_NAMESPACE", " dealhook/prod ")])
                .unwrap()
                .metrics_namespace,
            "dealhook/prod"
        );
        for bad in ["AWS/Lambda", "deal$hook"] {
            let error = env(&[("DEALHOOK_METRICS_NAMESPACE", bad)]).err().unwrap().to_string();
            assert!(
                error.starts_with("DEALHOOK_METRICS_NAMESPACE is invalid"),
                "{bad}: {error}"
            );
        }
        // Only Lambda writes metrics: locally, stdout is the answer.
        let (app, _, _) = build_app(&env(&[]).unwrap(), Mode::Local).await.unwrap();
        assert!(!app.metrics().writes());
    }

    #[tokio::test]
    async fn lambda_mode_refuses_to_start_without_credentials() {
        let e = env(&[("DEALHOOK_DLQ_URL", "http://127.0.0.1:1/q")]).unwrap();
        let err = build_app(&e, Mode::Lambda).await.err().unwrap().to_string();
        assert!(err.contains("HUBSPOT_SECRET_ID"), "{err}");
    }

    #[tokio::test]
    async fn local_mode_without_anything_is_a_dry_run_with_dead_letters_in_memory() {
        let (_, wiring, memory) = build_app(&env(&[]).unwrap(), Mode::Local).await.unwrap();
        assert!(wiring.dry_run && wiring.dead_letters_in_memory && memory.is_some());
    }

    #[test]
    fn an_inline_mapping_replaces_the_embedded_one_and_its_errors_name_the_variable() {
        let yaml = "version: 1\nroutes:\n  only:\n    source: json\n    deal:\n      dealstage: s\n";
        let mapping = env(&[("DEALHOOK_MAPPING_YAML", yaml)]).unwrap().load_mapping().unwrap();
        assert_eq!(mapping.routes().map(|r| r.name()).collect::<Vec<_>>(), ["only"]);
        let err = env(&[("DEALHOOK_MAPPING_YAML", "version: 2\n")])
            .unwrap()
            .load_mapping()
            .unwrap_err();
        assert!(err.to_string().contains("DEALHOOK_MAPPING_YAML"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_mapping_file_is_named() {
        let e = env(&[("DEALHOOK_MAPPING", "/nonexistent/mapping.yaml")]).unwrap();
        let err = build_app(&e, Mode::Local).await.err().unwrap().to_string();
        assert!(err.contains("/nonexistent/mapping.yaml"), "{err}");
    }
}
