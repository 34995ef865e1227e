//! The AWS adapters on the wire, against the moto emulator: the Secrets Manager cache and the SQS
//! dead-letter queue, including the ways they break.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept};
use aws_sdk_secretsmanager::error::BoxError;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use dealhook::aws::{DeadLetters, SecretError, SecretSource, SecretsManagerSource, SqsQueue};
use dealhook::credentials::{Credentials, HubSpotAuth};
use dealhook::dead_letter::DeadLetter;
use dealhook::domain::Problem;
use dealhook::inbound::Delivery;
use secrecy::ExposeSecret;

use crate::moto;

/// Generous: three attempts with back-off take a few seconds; the machines are shared and noisy.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(15);
const HOUR: Duration = Duration::from_secs(3600);

/// Counts `GetSecretValue` calls (one per operation, retries not counted separately).
#[derive(Debug, Clone, Default)]
struct CountCalls(Arc<AtomicUsize>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl CountCalls {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A source for `secret_id` whose reads are counted.
fn source(cfg: &SdkConfig, secret_id: &str, ttl: Duration) -> (SecretsManagerSource, CountCalls) {
    let calls = CountCalls::default();
    let conf = aws_sdk_secretsmanager::config::Builder::from(cfg)
        .interceptor(calls.clone())
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(conf);
    (SecretsManagerSource::new(client, secret_id, ttl), calls)
}

fn token(c: &Credentials) -> &str {
    match &c.hubspot {
        Some(HubSpotAuth::AccessToken(t)) => t.expose_secret(),
        other => panic!("expected an access token, got {other:?}"),
    }
}

fn letter(route: &str, body: &[u8]) -> DeadLetter {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    let delivery = Delivery {
        request_id: "req-1".into(),
        received_at: chrono::Utc::now(),
        deadline: None,
        method: http::Method::POST,
        path: format!("/hooks/{route}"),
        query: Some("form=7".into()),
        headers,
        body: bytes::Bytes::copy_from_slice(body),
        redelivery: None,
    };
    DeadLetter::new(
        &delivery,
        route,
        dealhook::domain::Reason::MappingFailed,
        vec![Problem::at(
            "properties.amount",
            "not_a_number",
            "\"abc\" is not a number",
        )],
    )
}

fn attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    let value = message.message_attributes.as_ref()?.get(name)?;
    assert_eq!(value.data_type(), "String", "{name} is a string attribute");
    value.string_value().map(str::to_owned)
}

// ---- Secrets Manager -------------------------------------------------------------------------

#[tokio::test]
async fn a_secret_is_read_and_parsed() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(
        &cfg,
        r#"{"hubspot":{"accessToken":"pat-1"},"signing":{"jotform":"k-1"}}"#,
    )
    .await;
    let (secrets, _) = source(&cfg, &id, HOUR);

    let creds = secrets.credentials().await.unwrap();

    assert_eq!(token(&creds), "pat-1");
    assert_eq!(creds.signing["jotform"].expose_secret(), "k-1");
}

#[tokio::test]
async fn credentials_are_cached_until_refresh_reads_the_rotated_secret() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-old").await;
    let (secrets, calls) = source(&cfg, &id, HOUR);
    assert_eq!(calls.get(), 0, "nothing is read before first use");

    assert_eq!(token(&secrets.credentials().await.unwrap()), "pat-old");
    moto::put_secret(&cfg, &id, "pat-new").await;
    assert_eq!(
        token(&secrets.credentials().await.unwrap()),
        "pat-old",
        "served from the cache"
    );
    assert_eq!(calls.get(), 1);

    assert_eq!(token(&secrets.refresh().await.unwrap()), "pat-new");
    assert_eq!(
        token(&secrets.credentials().await.unwrap()),
        "pat-new",
        "the refresh is cached"
    );
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_zero_ttl_re_reads_on_every_call() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-old").await;
    let (secrets, calls) = source(&cfg, &id, Duration::ZERO);

    assert_eq!(token(&secrets.credentials().await.unwrap()), "pat-old");
    moto::put_secret(&cfg, &id, "pat-new").await;
    assert_eq!(token(&secrets.credentials().await.unwrap()), "pat-new");
    assert_eq!(calls.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_all_succeed_with_one_read() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-shared").await;
    let (secrets, calls) = source(&cfg, &id, HOUR);
    let secrets = Arc::new(secrets);

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let secrets = Arc::clone(&secrets);
            tokio::spawn(async move { secrets.credentials().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(token(&task.await.unwrap().unwrap()), "pat-shared");
    }
    assert_eq!(calls.get(), 1, "twenty concurrent misses share one GetSecretValue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_all_get_the_rotated_secret() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-old").await;
    let (secrets, _) = source(&cfg, &id, HOUR);
    let secrets = Arc::new(secrets);
    secrets.credentials().await.unwrap();
    moto::put_secret(&cfg, &id, "pat-new").await;

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let secrets = Arc::clone(&secrets);
            tokio::spawn(async move { secrets.refresh().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(token(&task.await.unwrap().unwrap()), "pat-new");
    }
}

#[tokio::test]
async fn a_missing_secret_is_unavailable_and_the_error_holds_no_secret_text() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-deleted-value").await;
    moto::delete_secret(&cfg, &id).await;
    let (secrets, _) = source(&cfg, &id, HOUR);

    let err = secrets.credentials().await.unwrap_err();

    let SecretError::Unavailable { secret_id, message } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(secret_id, &id);
    assert!(
        message.contains("ResourceNotFoundException"),
        "names the service's code: {message}"
    );
    assert!(!format!("{err} {err:?}").contains("pat-deleted-value"), "{err:?}");
}

#[tokio::test]
async fn a_malformed_json_secret_is_malformed_and_not_quoted() {
    let cfg = moto::sdk_config().await;
    for (name, text) in [
        ("wrong type", r#"{"hubspot":{"accessToken":["pat-very-secret"]}}"#),
        ("truncated", r#"{"hubspot":{"accessToken":"pat-very-secret""#),
        ("wrong shape", r#"{"hubspot":"pat-very-secret"}"#),
    ] {
        let id = moto::create_secret(&cfg, text).await;
        let (secrets, _) = source(&cfg, &id, HOUR);

        let err = secrets.credentials().await.unwrap_err();

        assert!(matches!(err, SecretError::Malformed { .. }), "{name}: {err:?}");
        assert!(!format!("{err} {err:?}").contains("pat-very-secret"), "{name}: {err:?}");
    }
}

#[tokio::test]
async fn a_binary_only_secret_is_malformed() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_binary_secret(&cfg, b"pat-in-binary").await;
    let (secrets, _) = source(&cfg, &id, HOUR);

    let err = secrets.credentials().await.unwrap_err();

    let SecretError::Malformed { message, .. } = &err else {
        panic!("expected Malformed, got {err:?}");
    };
    assert!(message.contains("SecretBinary"), "{message}");
    assert!(!format!("{err:?}").contains("pat-in-binary"));
}

#[tokio::test]
async fn a_stale_value_is_served_when_a_re_read_fails_but_refresh_reports_it() {
    let cfg = moto::sdk_config().await;
    let id = moto::create_secret(&cfg, "pat-before-outage").await;
    let (secrets, calls) = source(&cfg, &id, Duration::ZERO);
    assert_eq!(token(&secrets.credentials().await.unwrap()), "pat-before-outage");
    moto::delete_secret(&cfg, &id).await;

    assert_eq!(token(&secrets.credentials().await.unwrap()), "pat-before-outage");
    assert_eq!(calls.get(), 2, "the re-read was attempted");

    let err = secrets.refresh().await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("pat-before-outage"));
    assert_eq!(
        token(&secrets.credentials().await.unwrap()),
        "pat-before-outage",
        "a failed refresh keeps the cached value"
    );
}

#[tokio::test]
async fn an_unreachable_secrets_endpoint_is_unavailable_within_seconds() {
    let cfg = moto::unreachable_endpoint_config().await;
    let (secrets, _) = source(&cfg, "dealhook/hubspot", HOUR);

    let started = Instant::now();
    let err = secrets.credentials().await.unwrap_err();

    assert!(started.elapsed() < UNREACHABLE_LIMIT, "took {:?}", started.elapsed());
    let SecretError::Unavailable { message, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("could not reach"), "{message}");
}

// ---- SQS dead letters ------------------------------------------------------------------------

#[tokio::test]
async fn a_dead_letter_arrives_as_its_json_with_filter_attributes() {
    let cfg = moto::sdk_config().await;
    let url = moto::create_queue(&cfg, false).await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url);
    let letter = letter("website-quote", br#"{"email":"ada@example.com"}"#);

    queue.send(&letter).await.unwrap();

    let messages = moto::receive_all(&cfg, &url).await;
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap();
    assert_eq!(
        body,
        serde_json::to_string(&letter).unwrap(),
        "the body is the envelope's JSON"
    );
    assert_eq!(serde_json::from_str::<DeadLetter>(body).unwrap(), letter);
    assert_eq!(attribute(&messages[0], "dealhook-version").as_deref(), Some("1"));
    assert_eq!(
        attribute(&messages[0], "dealhook-reason").as_deref(),
        Some("mapping_failed")
    );
    assert_eq!(
        attribute(&messages[0], "dealhook-route").as_deref(),
        Some("website-quote")
    );
    assert_eq!(queue.queue_url(), url);
}

#[tokio::test]
async fn a_fifo_queue_groups_letters_by_route_and_stores_a_resent_letter_once() {
    let cfg = moto::sdk_config().await;
    let url = moto::create_queue(&cfg, true).await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url);
    let letter = letter("stripe", b"{}");

    queue.send(&letter).await.unwrap();
    queue.send(&letter).await.unwrap();

    let messages = moto::receive_all(&cfg, &url).await;
    assert_eq!(messages.len(), 1, "deduplicated by letter id");
    let system = messages[0].attributes.as_ref().unwrap();
    assert_eq!(system[&MessageSystemAttributeName::MessageGroupId], "stripe");
    assert_eq!(system[&MessageSystemAttributeName::MessageDeduplicationId], letter.id);
    assert_eq!(
        serde_json::from_str::<DeadLetter>(messages[0].body().unwrap()).unwrap(),
        letter
    );
}

#[tokio::test]
async fn sending_to_a_nonexistent_queue_is_an_error_naming_the_cause() {
    let cfg = moto::sdk_config().await;
    let url = format!("{}/123456789012/{}", moto::endpoint(), moto::unique_name("missing"));
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), url);

    let err = queue.send(&letter("r", b"{}")).await.unwrap_err();

    assert!(
        err.message.contains("QueueDoesNotExist") || err.message.contains("NonExistentQueue"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_queue_endpoint_is_an_error_within_seconds() {
    let cfg = moto::unreachable_endpoint_config().await;
    let url = format!("{}/123456789012/dlq", cfg.endpoint_url().unwrap());
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), url);

    let started = Instant::now();
    let err = queue.send(&letter("r", b"{}")).await.unwrap_err();

    assert!(started.elapsed() < UNREACHABLE_LIMIT, "took {:?}", started.elapsed());
    assert!(err.message.contains("could not reach"), "{err}");
}

#[tokio::test]
async fn an_oversized_letter_is_refused_and_nothing_is_sent() {
    let cfg = moto::sdk_config().await;
    let url = moto::create_queue(&cfg, false).await;
    let client = aws_sdk_sqs::Client::new(&cfg);
    // SQS's 1 MiB limit: a 1 MiB body is over it once base64-encoded into the envelope.
    let huge = letter("r", &vec![b'x'; SqsQueue::MAX_MESSAGE_BYTES]);
    // A queue configured smaller: the limit set here applies.
    let small = letter("r", &[b'x'; 2048]);

    let err = SqsQueue::new(client.clone(), &url).send(&huge).await.unwrap_err();
    assert!(err.message.contains("1048576 byte limit"), "{err}");
    let err = SqsQueue::new(client, &url)
        .with_max_bytes(2048)
        .send(&small)
        .await
        .unwrap_err();
    assert!(err.message.contains("2048 byte limit"), "{err}");

    assert!(
        moto::receive_all(&cfg, &url).await.is_empty(),
        "nothing reached the queue"
    );
}

#[tokio::test]
async fn a_letter_at_the_limit_is_sent() {
    let cfg = moto::sdk_config().await;
    let url = moto::create_queue(&cfg, false).await;
    let letter = letter("r", b"{}");
    let size = serde_json::to_string(&letter).unwrap().len()
        + [
            ("dealhook-version", "1"),
            ("dealhook-reason", "mapping_failed"),
            ("dealhook-route", "r"),
        ]
        .iter()
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum::<usize>();
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url).with_max_bytes(size);

    queue.send(&letter).await.unwrap();

    assert_eq!(moto::receive_all(&cfg, &url).await.len(), 1);
}
