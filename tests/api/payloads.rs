//! Dead letters too big for a queue message, on the wire (moto's SQS and S3): stored whole in S3 with
//! a pointer on the queue, read back byte for byte by `resolve`; inline up to the limit; a 503 when
//! the bucket cannot be written or none is configured; no secret in the stored object.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::Message;
use dealhook::aws::{
    ATTR_PAYLOAD_SIZE, DeadLetters, PayloadError, PayloadPointer, ResolveError, S3Payloads, SqsQueue, resolve,
};
use dealhook::dead_letter::DeadLetter;
use dealhook::domain::{Problem, Reason};
use dealhook::inbound::Delivery;
use wiremock::Mock;
use wiremock::ResponseTemplate;
use wiremock::matchers::method;

use crate::helpers::{LogCapture, Options, TOKEN, TestApp, spawn_app_with};
use crate::moto;

/// A body of this size is about 1.07 MB once base64-encoded into the envelope: over SQS's 1 MiB.
const BIG_BODY_BYTES: usize = 800 * 1024;

/// An 800 KB JSON body the default mapping's `website-quote` route refuses (no e-mail, amount not a
/// number), so the delivery is dead-lettered without calling HubSpot; `notes` fills it up.
fn big_invalid_quote(extra: &str) -> Vec<u8> {
    let head = format!(r#"{{"company":"Initech","budget":"about 10k","extra":"{extra}","notes":""#);
    let tail = r#""}"#;
    let mut body = head.into_bytes();
    body.resize(BIG_BODY_BYTES - tail.len(), b'n');
    body.extend_from_slice(tail.as_bytes());
    assert_eq!(body.len(), BIG_BODY_BYTES);
    body
}

/// An app whose body limit lets an 800 KB delivery in, dead-lettering big letters into `bucket`.
async fn app_with_bucket(bucket: Option<String>) -> TestApp {
    let t = spawn_app_with(Options {
        max_body_bytes: 2 * 1024 * 1024,
        payload_bucket: bucket,
        ..Options::default()
    })
    .await;
    // Mapping fails before HubSpot: any call would be a bug.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&t.hubspot)
        .await;
    t
}

/// The message's string and number attributes as (name, value), as a consumer hands them to `resolve`.
fn string_attributes(message: &Message) -> Vec<(&str, &str)> {
    message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name.as_str(), value.string_value()?)))
        .collect()
}

fn attribute<'a>(message: &'a Message, name: &str) -> Option<(&'a str, &'a str)> {
    let value = message.message_attributes()?.get(name)?;
    Some((value.data_type(), value.string_value()?))
}

async fn object(sdk: &SdkConfig, bucket: &str, key: &str) -> Vec<u8> {
    let out = S3Payloads::client(sdk)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("reading s3://{bucket}/{key}: {e:?}"));
    out.body.collect().await.unwrap().to_vec()
}

#[tokio::test]
async fn an_800_kb_delivery_is_dead_lettered_through_s3_and_resolves_byte_for_byte() {
    let sdk = moto::sdk_config().await;
    let bucket = moto::create_bucket(&sdk).await;
    let t = app_with_bucket(Some(bucket.clone())).await;
    let body = big_invalid_quote("plain");

    let response = t.post("website-quote", "application/json", &body).await;

    assert_eq!(
        response.status,
        202,
        "{}",
        &response.text[..response.text.len().min(500)]
    );
    assert_eq!(response.json["status"], "dead_lettered");
    assert_eq!(response.json["reason"], "mapping_failed");
    let id = response.json["deadLetterId"].as_str().unwrap();

    let messages = moto::receive_all(&t.sdk, &t.queue_url).await;
    assert_eq!(messages.len(), 1, "one message");
    let message = &messages[0];
    let pointer = PayloadPointer::from_message_body(message.body().unwrap())
        .expect("the message is a pointer")
        .unwrap();
    assert_eq!(pointer.bucket, bucket);
    let today = chrono::Utc::now().format("%Y/%m/%d");
    assert_eq!(pointer.key, format!("dealhook/envelopes/{today}/{id}.json"));
    assert_eq!(attribute(message, "dealhook-version"), Some(("String", "1")));
    assert_eq!(
        attribute(message, "dealhook-reason"),
        Some(("String", "mapping_failed"))
    );
    assert_eq!(attribute(message, "dealhook-route"), Some(("String", "website-quote")));

    let stored = object(&t.sdk, &bucket, &pointer.key).await;
    let size = stored.len().to_string();
    assert_eq!(attribute(message, ATTR_PAYLOAD_SIZE), Some(("Number", size.as_str())));
    assert!(
        stored.len() > SqsQueue::MAX_MESSAGE_BYTES,
        "the envelope ({} bytes) is over the limit",
        stored.len()
    );

    let store = S3Payloads::new(S3Payloads::client(&t.sdk), &bucket);
    let envelope = resolve(message.body().unwrap(), string_attributes(message), &store)
        .await
        .unwrap();
    assert_eq!(envelope.as_bytes(), stored, "resolve gives the object byte for byte");
    let letter: DeadLetter = serde_json::from_str(&envelope).unwrap();
    assert_eq!(
        envelope,
        serde_json::to_string(&letter).unwrap(),
        "the object is the envelope's JSON, as an inline message would carry it"
    );
    assert_eq!(letter.id, id);
    assert_eq!(letter.body().unwrap(), body, "the delivery's body, byte for byte");
    assert!(!letter.delivery.body_redacted);
}

#[tokio::test]
async fn the_stored_envelope_holds_no_secret() {
    let sdk = moto::sdk_config().await;
    let bucket = moto::create_bucket(&sdk).await;
    let t = app_with_bucket(Some(bucket.clone())).await;
    // The token arrives in the Authorization header (the harness sends it) and inside the body.
    let body = big_invalid_quote(TOKEN);

    let response = t.post("website-quote", "application/json", &body).await;

    assert_eq!(
        response.status,
        202,
        "{}",
        &response.text[..response.text.len().min(500)]
    );
    let messages = moto::receive_all(&t.sdk, &t.queue_url).await;
    let pointer = PayloadPointer::from_message_body(messages[0].body().unwrap())
        .unwrap()
        .unwrap();
    let stored = String::from_utf8(object(&t.sdk, &bucket, &pointer.key).await).unwrap();
    assert!(!stored.contains(TOKEN), "the token is not in the object's text");
    let letter: DeadLetter = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        letter.delivery.headers["authorization"],
        dealhook::dead_letter::REDACTED
    );
    let kept = letter.body().unwrap();
    assert!(letter.delivery.body_redacted, "the body was redacted");
    assert!(
        !kept.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token is not in the decoded body"
    );
    for m in &messages {
        assert!(!format!("{m:?}").contains(TOKEN), "nor in the message");
    }
}

#[tokio::test]
async fn an_unwritable_bucket_answers_503_and_nothing_reaches_the_queue() {
    // A bucket that does not exist: S3 refuses the put (NoSuchBucket).
    let t = app_with_bucket(Some(moto::unique_name("missing"))).await;

    let response = t
        .post("website-quote", "application/json", &big_invalid_quote("x"))
        .await;

    assert_eq!(response.status, 503, "{}", response.text);
    assert_eq!(response.json["status"], "retry_later");
    assert!(
        moto::receive_all(&t.sdk, &t.queue_url).await.is_empty(),
        "no pointer to nothing"
    );
}

#[tokio::test]
async fn without_a_bucket_a_big_letter_answers_503_and_the_log_says_to_configure_one() {
    let t = app_with_bucket(None).await;
    let logs = LogCapture::start();

    let response = t
        .post("website-quote", "application/json", &big_invalid_quote("x"))
        .await;

    assert_eq!(response.status, 503, "{}", response.text);
    assert!(moto::receive_all(&t.sdk, &t.queue_url).await.is_empty());
    assert!(
        logs.text().contains("set DEALHOOK_PAYLOAD_BUCKET"),
        "the log says what to do"
    );
}

// ---- The adapter at the limit --------------------------------------------------------------------

fn small_letter() -> DeadLetter {
    let delivery = Delivery {
        request_id: "req-1".into(),
        received_at: chrono::Utc::now(),
        deadline: None,
        method: http::Method::POST,
        path: "/hooks/r".into(),
        query: None,
        headers: http::HeaderMap::new(),
        // Big enough that a pointer message is smaller than the letter.
        body: bytes::Bytes::from(format!(
            r#"{{"email":"ada@example.com","notes":"{}"}}"#,
            "n".repeat(400)
        )),
        redelivery: None,
    };
    DeadLetter::new(
        &delivery,
        "r",
        Reason::MappingFailed,
        vec![Problem::at("properties.amount", "not_a_number", "not a number")],
    )
}

/// The letter's size counted independently of the adapter: body plus each attribute's name, type
/// and value, in UTF-8 bytes.
fn inline_size(letter: &DeadLetter) -> usize {
    serde_json::to_string(letter).unwrap().len()
        + [
            ("dealhook-version", "1"),
            ("dealhook-reason", "mapping_failed"),
            ("dealhook-route", "r"),
        ]
        .iter()
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum::<usize>()
}

#[tokio::test]
async fn a_letter_at_or_just_under_the_limit_is_inline_and_one_byte_over_is_a_pointer() {
    let cfg = moto::sdk_config().await;
    let bucket = moto::create_bucket(&cfg).await;
    let store = S3Payloads::new(S3Payloads::client(&cfg), &bucket);
    let letter = small_letter();
    let size = inline_size(&letter);
    let json = serde_json::to_string(&letter).unwrap();

    for (name, max, inline) in [
        ("just under", size + 1, true),
        ("at the limit", size, true),
        ("one byte over", size - 1, false),
    ] {
        let url = moto::create_queue(&cfg, false).await;
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url)
            .with_max_bytes(max)
            .with_payloads(std::sync::Arc::new(store.clone()));

        queue.send(&letter).await.unwrap_or_else(|e| panic!("{name}: {e}"));

        let messages = moto::receive_all(&cfg, &url).await;
        assert_eq!(messages.len(), 1, "{name}");
        let body = messages[0].body().unwrap();
        if inline {
            assert_eq!(body, json, "{name}: the envelope itself");
            assert_eq!(attribute(&messages[0], ATTR_PAYLOAD_SIZE), None, "{name}");
        } else {
            assert!(PayloadPointer::from_message_body(body).is_some(), "{name}: {body}");
            let size = json.len().to_string();
            assert_eq!(
                attribute(&messages[0], ATTR_PAYLOAD_SIZE),
                Some(("Number", size.as_str())),
                "{name}"
            );
        }
        let resolved = resolve(body, string_attributes(&messages[0]), &store).await.unwrap();
        assert_eq!(resolved, json, "{name}: resolved");
    }
}

#[tokio::test]
async fn a_big_letter_on_a_fifo_queue_keeps_its_group_and_deduplication_id() {
    let cfg = moto::sdk_config().await;
    let bucket = moto::create_bucket(&cfg).await;
    let url = moto::create_queue(&cfg, true).await;
    let letter = small_letter();
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url)
        .with_max_bytes(inline_size(&letter) - 1)
        .with_payloads(std::sync::Arc::new(S3Payloads::new(S3Payloads::client(&cfg), &bucket)));

    queue.send(&letter).await.unwrap();
    queue.send(&letter).await.unwrap();

    let messages = moto::receive_all(&cfg, &url).await;
    assert_eq!(messages.len(), 1, "deduplicated by letter id");
    assert!(PayloadPointer::from_message_body(messages[0].body().unwrap()).is_some());
}

#[tokio::test]
async fn an_unreachable_s3_endpoint_fails_the_letter_within_seconds_and_sends_nothing() {
    let cfg = moto::sdk_config().await;
    let url = moto::create_queue(&cfg, false).await;
    let unreachable = moto::unreachable_endpoint_config().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&cfg), &url)
        .with_max_bytes(200)
        .with_payloads(std::sync::Arc::new(S3Payloads::new(
            S3Payloads::client(&unreachable),
            "bucket",
        )));

    let started = Instant::now();
    let err = queue.send(&small_letter()).await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.message.contains("could not reach"), "{err}");
    assert!(moto::receive_all(&cfg, &url).await.is_empty());
}

// ---- Reading back ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_object_resolves_to_a_named_not_found() {
    let cfg = moto::sdk_config().await;
    let bucket = moto::create_bucket(&cfg).await;
    let store = S3Payloads::new(S3Payloads::client(&cfg), &bucket);
    let gone = PayloadPointer {
        bucket: bucket.clone(),
        key: "dealhook/envelopes/2020/01/01/gone.json".into(),
    };

    let err = resolve(&gone.to_message_body(), [], &store).await.unwrap_err();

    assert!(matches!(err, ResolveError::Store(PayloadError::NotFound(_))), "{err:?}");
}

#[tokio::test]
async fn objects_are_written_with_sse_s3_as_json() {
    let cfg = moto::sdk_config().await;
    let bucket = moto::create_bucket(&cfg).await;
    let store = S3Payloads::new(S3Payloads::client(&cfg), &bucket);

    let pointer = dealhook::aws::PayloadStore::put(&store, "dealhook/envelopes/k.json", b"{}".to_vec())
        .await
        .unwrap();

    let head = S3Payloads::client(&cfg)
        .head_object()
        .bucket(&bucket)
        .key(&pointer.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("AES256"));
    assert_eq!(head.content_type(), Some("application/json"));
}
