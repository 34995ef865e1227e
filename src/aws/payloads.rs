//! Payloads too big for a queue message, kept whole in S3 while the message carries a pointer, in the
//! format of the SQS Extended Client libraries (Java `amazon-sqs-java-extended-client-lib`, Python
//! `amazon-sqs-extended-client`). Never returns a payload other than the one the pointer names.
//!
//! Writing: [`super::SqsQueue::with_payloads`] offloads an envelope over the queue's limit.
//! Reading: every consumer of those messages (the queue-mode worker, `dealhook replay`) passes each
//! message through [`resolve`], which returns the envelope's JSON whether it came inline or by pointer.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::LazyClient;
use super::config::describe_sdk_error;

/// The pointer's class name in the Extended Client format (`payload-offloading-java-common-lib-for-aws`,
/// used by the Java library since 2.0 and by the Python library). Written by dealhook.
pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
/// The class name Java Extended Client 1.x wrote; accepted when reading.
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
/// Message attribute (`Number`) on a pointer message: the offloaded payload's size in bytes. Its
/// presence is how the Extended Client libraries recognise a pointer.
pub const ATTR_PAYLOAD_SIZE: &str = "ExtendedPayloadSize";
/// The same attribute as Java Extended Client 1.x named it; accepted when reading.
pub const LEGACY_ATTR_PAYLOAD_SIZE: &str = "SQSLargePayloadSize";
/// Where envelopes go in the bucket: `dealhook/envelopes/{yyyy}/{mm}/{dd}/{id}.json`. The template's
/// IAM statement grants `s3:PutObject` on `dealhook/*` only.
pub const ENVELOPE_KEY_PREFIX: &str = "dealhook/envelopes/";
/// The largest payload [`S3Payloads::get`] reads (64 MiB): far above any envelope (a Lambda request is
/// at most 6 MB; base64 adds a third), low enough that a wrong object cannot exhaust the function's memory.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Where one payload is: an S3 bucket and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadPointer {
    /// The bucket's name.
    pub bucket: String,
    /// The object's key.
    pub key: String,
}

impl PayloadPointer {
    /// The message body that stands for the payload:
    /// `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"…","s3Key":"…"}]`.
    pub fn to_message_body(&self) -> String {
        serde_json::json!([POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}]).to_string()
    }

    /// Reads a message body as a pointer: `None` when it is not one (an envelope is a JSON object, a
    /// pointer a two-item array whose first item is [`POINTER_CLASS`] or [`LEGACY_POINTER_CLASS`]);
    /// an error when it is one but its bucket or key is missing, empty or not a string.
    pub fn from_message_body(body: &str) -> Option<Result<PayloadPointer, ResolveError>> {
        // Cheap test first: inline envelopes can be close to 1 MiB and are objects.
        if !body.trim_start().starts_with('[') {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let items = value.as_array()?;
        let class = items.first()?.as_str()?;
        if class != POINTER_CLASS && class != LEGACY_POINTER_CLASS {
            return None;
        }
        let malformed = |message: &str| {
            Some(Err(ResolveError::MalformedPointer {
                message: message.to_owned(),
            }))
        };
        let [_, fields] = items.as_slice() else {
            return malformed("a pointer is [class, {\"s3BucketName\", \"s3Key\"}]: it has not two items");
        };
        let field = |name: &str| fields.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        match (field("s3BucketName"), field("s3Key")) {
            (Some(bucket), Some(key)) => Some(Ok(PayloadPointer {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })),
            (None, _) => malformed("s3BucketName is missing, empty or not a string"),
            (_, None) => malformed("s3Key is missing, empty or not a string"),
        }
    }
}

impl std::fmt::Display for PayloadPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why a payload could not be stored or read. Messages name the object and the store's error, never
/// the payload.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PayloadError {
    /// Storing failed: nothing was stored (or a partial object is invisible: S3 puts are atomic).
    #[error("the payload could not be stored at s3://{bucket}/{key}: {message}")]
    Put {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What went wrong (S3's error code and message, or the transport failure).
        message: String,
    },
    /// The object does not exist (expired by the lifecycle rule, deleted, or never written).
    #[error("no payload at {0}: expired (see the bucket's lifecycle rule), deleted, or never written")]
    NotFound(PayloadPointer),
    /// Reading failed for another reason (denied, unreachable, too big).
    #[error("the payload at {pointer} could not be read: {message}")]
    Get {
        /// The object.
        pointer: PayloadPointer,
        /// What went wrong.
        message: String,
    },
    /// The pointer names a bucket other than the store's: refused, so that a message cannot make
    /// dealhook read any object its role happens to reach.
    #[error("the pointer names {pointer}, but payloads are read from bucket {bucket} only")]
    ForeignBucket {
        /// The object named.
        pointer: PayloadPointer,
        /// The store's bucket.
        bucket: String,
    },
}

/// Where payloads too big for a queue message are kept.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// Stores `bytes` under `key` (replacing any object there); `Ok` means it is durably stored.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<PayloadPointer, PayloadError>;
    /// The bytes stored at `pointer`, exactly.
    async fn get(&self, pointer: &PayloadPointer) -> Result<Vec<u8>, PayloadError>;
}

/// The key of an envelope's object: `dealhook/envelopes/{yyyy}/{mm}/{dd}/{id}.json`, dated by the
/// envelope's `created_at` (RFC 3339; today, UTC, when it is not one: the date only sorts the
/// objects). Characters of `id` other than ASCII letters, digits, `-` and `_` become `_` (letter ids
/// are UUIDs), so the key stays under the prefix whatever the id.
pub fn envelope_key(created_at: &str, id: &str) -> String {
    let date = chrono::DateTime::parse_from_rfc3339(created_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let mut id: String = id
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        id = uuid::Uuid::new_v4().to_string();
    }
    format!("{ENVELOPE_KEY_PREFIX}{}/{id}.json", date.format("%Y/%m/%d"))
}

/// Why a queue message could not be turned back into its envelope.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The body is a pointer, but not a usable one.
    #[error("the message is a malformed payload pointer: {message}")]
    MalformedPointer {
        /// Which part is wrong.
        message: String,
    },
    /// The message has the payload-size attribute, but its body is not a pointer.
    #[error("the message has the {attribute} attribute but its body is not a payload pointer")]
    NotAPointer {
        /// The attribute's name.
        attribute: &'static str,
    },
    /// The payload-size attribute is not a whole number.
    #[error("the {attribute} attribute is {value:?}, not a whole number of bytes")]
    BadSize {
        /// The attribute's name.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
    /// The object is not the size the message says: it was replaced or truncated.
    #[error("the payload at {pointer} is {actual} bytes, but the message says {declared}")]
    SizeMismatch {
        /// The object.
        pointer: PayloadPointer,
        /// The attribute's value.
        declared: u64,
        /// The object's size.
        actual: u64,
    },
    /// The object is not UTF-8 text (an envelope is JSON).
    #[error("the payload at {0} is not UTF-8 text")]
    NotText(PayloadPointer),
    /// The store failed (not found, denied, unreachable, another bucket).
    #[error(transparent)]
    Store(#[from] PayloadError),
}

/// The envelope JSON a queue message stands for: its body as is, or, when the body is a payload
/// pointer (see [`PayloadPointer::from_message_body`]), the object it names, read from `store`.
///
/// For every consumer of dead-letter or work-queue messages (the worker, `dealhook replay`); call it
/// before parsing the envelope. `attributes` are the message's string attributes as (name, value)
/// (`Number` attributes are strings too): from the SDK's `Message::message_attributes` or the Lambda
/// event's `messageAttributes`, taking each value's `string_value`. Only [`ATTR_PAYLOAD_SIZE`] (or
/// [`LEGACY_ATTR_PAYLOAD_SIZE`]) is read: when present, the body must be a pointer and the object must
/// have that size. The object is not deleted: the lifecycle rule expires it, so a message that fails
/// again (or is redriven) still finds its payload.
///
/// Errors: the pointer or the attribute is malformed, the object is missing (expired), in another
/// bucket, of another size or not UTF-8, or the store failed (transient: retry the message later).
pub async fn resolve<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    store: &dyn PayloadStore,
) -> Result<String, ResolveError> {
    let mut declared = None;
    for (name, value) in attributes {
        let attribute = match name {
            ATTR_PAYLOAD_SIZE => ATTR_PAYLOAD_SIZE,
            LEGACY_ATTR_PAYLOAD_SIZE => LEGACY_ATTR_PAYLOAD_SIZE,
            _ => continue,
        };
        let size = value.trim().parse::<u64>().map_err(|_| ResolveError::BadSize {
            attribute,
            value: value.to_owned(),
        })?;
        declared = Some((attribute, size));
    }
    let pointer = match (PayloadPointer::from_message_body(body), declared) {
        (None, None) => return Ok(body.to_owned()),
        (None, Some((attribute, _))) => return Err(ResolveError::NotAPointer { attribute }),
        (Some(pointer), _) => pointer?,
    };
    let bytes = store.get(&pointer).await?;
    let actual = bytes.len() as u64;
    if let Some((_, declared)) = declared
        && declared != actual
    {
        return Err(ResolveError::SizeMismatch {
            pointer,
            declared,
            actual,
        });
    }
    String::from_utf8(bytes).map_err(|_| ResolveError::NotText(pointer))
}

/// Payloads in one S3 bucket. Objects are written with `x-amz-server-side-encryption: AES256` (SSE-S3,
/// what the template's bucket uses; a bucket policy may require the header) and
/// `Content-Type: application/json`.
#[derive(Debug, Clone)]
pub struct S3Payloads {
    client: LazyClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3Payloads {
    /// Stores in and reads from `bucket` with `client` (built, or built on first use: [`LazyClient`];
    /// see [`Self::lazy_client`]).
    pub fn new(client: impl Into<LazyClient<aws_sdk_s3::Client>>, bucket: impl Into<String>) -> Self {
        S3Payloads {
            client: client.into(),
            bucket: bucket.into(),
        }
    }

    /// An S3 client from the shared configuration. With a custom endpoint (`AWS_ENDPOINT_URL`, a local
    /// emulator on 127.0.0.1), requests are path-style (`http://host/bucket/key`): a bucket-named
    /// host (`bucket.127.0.0.1`) resolves nowhere.
    pub fn client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// [`Self::client`], built when a payload is first stored or read: most deliveries never need S3.
    pub fn lazy_client(sdk: &SdkConfig) -> LazyClient<aws_sdk_s3::Client> {
        LazyClient::new(sdk, Self::client)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl PayloadStore for S3Payloads {
    #[tracing::instrument(skip_all, fields(aws_service = "S3", aws_operation = "PutObject", bucket = %self.bucket, key = %key, bytes = bytes.len()))]
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<PayloadPointer, PayloadError> {
        self.client
            .get()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| {
                let message = describe_sdk_error(&e);
                tracing::warn!(error = %message, "payload not stored");
                PayloadError::Put {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    message,
                }
            })?;
        Ok(PayloadPointer {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        })
    }

    #[tracing::instrument(skip_all, fields(aws_service = "S3", aws_operation = "GetObject", payload = %pointer))]
    async fn get(&self, pointer: &PayloadPointer) -> Result<Vec<u8>, PayloadError> {
        if pointer.bucket != self.bucket {
            return Err(PayloadError::ForeignBucket {
                pointer: pointer.clone(),
                bucket: self.bucket.clone(),
            });
        }
        let failed = |message: String| PayloadError::Get {
            pointer: pointer.clone(),
            message,
        };
        let output = self
            .client
            .get()
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(service) if service.is_no_such_key() => PayloadError::NotFound(pointer.clone()),
                _ => failed(describe_sdk_error(&e)),
            })?;
        if let Some(length) = output.content_length().and_then(|n| u64::try_from(n).ok())
            && length > MAX_PAYLOAD_BYTES
        {
            return Err(failed(format!(
                "it is {length} bytes, over the {MAX_PAYLOAD_BYTES} byte limit"
            )));
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| failed(format!("the object's body could not be read: {e}")))?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::MemoryPayloads;

    fn pointer(key: &str) -> PayloadPointer {
        PayloadPointer {
            bucket: MemoryPayloads::BUCKET.to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn the_pointer_is_the_extended_client_format() {
        let body = pointer("dealhook/envelopes/2026/01/02/x.json").to_message_body();
        assert_eq!(
            body,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"memory-payloads","s3Key":"dealhook/envelopes/2026/01/02/x.json"}]"#
        );
        let back = PayloadPointer::from_message_body(&body).unwrap().unwrap();
        assert_eq!(back, pointer("dealhook/envelopes/2026/01/02/x.json"));
    }

    #[test]
    fn the_legacy_java_pointer_is_read() {
        let body = r#" ["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#;
        let read = PayloadPointer::from_message_body(body).unwrap().unwrap();
        assert_eq!((read.bucket.as_str(), read.key.as_str()), ("b", "k"));
    }

    /// Malformed pointers, each variant named.
    mod malformed_pointers {
        use super::*;

        const CASES: [(&str, &str, &str); 5] = [
            (
                "no fields",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer"]"#,
                "not two items",
            ),
            (
                "no bucket",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3Key":"k"}]"#,
                "s3BucketName",
            ),
            (
                "empty key",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":""}]"#,
                "s3Key",
            ),
            (
                "key not a string",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":7}]"#,
                "s3Key",
            ),
            (
                "three items",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"},1]"#,
                "not two items",
            ),
        ];

        #[test]
        fn each_is_an_error_naming_what_is_wrong() {
            for (name, body, expected) in CASES {
                let err = PayloadPointer::from_message_body(body)
                    .unwrap_or_else(|| panic!("{name}: not recognised as a pointer"))
                    .unwrap_err();
                assert!(err.to_string().contains(expected), "{name}: {err}");
            }
        }

        #[test]
        fn bodies_that_are_not_pointers_are_not_read_as_pointers() {
            for body in [
                r#"{"version":1}"#,
                "[]",
                r#"["something else",{"s3BucketName":"b","s3Key":"k"}]"#,
                "[not json",
                "",
            ] {
                assert!(PayloadPointer::from_message_body(body).is_none(), "{body:?}");
            }
        }
    }

    #[test]
    fn keys_are_dated_and_stay_under_the_prefix_whatever_the_id() {
        assert_eq!(
            envelope_key("2026-03-09T23:30:00-02:00", "0b6f-AA_1"),
            "dealhook/envelopes/2026/03/10/0b6f-AA_1.json",
            "dated in UTC"
        );
        let odd = envelope_key("2026-03-09T00:00:00Z", "../../etc/passwd");
        assert_eq!(odd, "dealhook/envelopes/2026/03/09/______etc_passwd.json");
        let today = chrono::Utc::now().format("%Y/%m/%d").to_string();
        let undated = envelope_key("yesterday", "id");
        assert!(
            undated.starts_with(&format!("dealhook/envelopes/{today}/")),
            "{undated}"
        );
        let empty = envelope_key("2026-03-09T00:00:00Z", "");
        assert!(
            empty.starts_with("dealhook/envelopes/2026/03/09/") && empty.len() > 40,
            "{empty}"
        );
    }

    #[tokio::test]
    async fn an_inline_body_is_returned_as_is() {
        let store = MemoryPayloads::new();
        let body = r#"{"version":1,"id":"x"}"#;
        assert_eq!(resolve(body, [], &store).await.unwrap(), body);
        assert_eq!(
            resolve(body, [("dealhook-reason", "mapping_failed")], &store)
                .await
                .unwrap(),
            body
        );
    }

    #[tokio::test]
    async fn a_pointer_is_read_back_exactly() {
        let store = MemoryPayloads::new();
        let envelope = "{\"body\":\"h\u{e9}llo\"}";
        let pointer = store.put("dealhook/envelopes/k.json", envelope.into()).await.unwrap();
        let size = envelope.len().to_string();
        for attribute in [ATTR_PAYLOAD_SIZE, LEGACY_ATTR_PAYLOAD_SIZE] {
            let read = resolve(&pointer.to_message_body(), [(attribute, size.as_str())], &store).await;
            assert_eq!(read.unwrap(), envelope, "{attribute}");
        }
        // A pointer that lost its attribute (e.g. copied by hand) is still read.
        assert_eq!(resolve(&pointer.to_message_body(), [], &store).await.unwrap(), envelope);
    }

    /// The ways a pointer message can fail to resolve, each named.
    mod resolve_faults {
        use super::*;

        #[tokio::test]
        async fn a_missing_object_is_not_found() {
            let store = MemoryPayloads::new();
            let err = resolve(&pointer("gone").to_message_body(), [], &store)
                .await
                .unwrap_err();
            assert!(matches!(err, ResolveError::Store(PayloadError::NotFound(_))), "{err:?}");
            assert!(err.to_string().contains("s3://memory-payloads/gone"), "{err}");
        }

        #[tokio::test]
        async fn an_object_of_another_size_is_refused() {
            let store = MemoryPayloads::new();
            let p = store.put("k", b"{}".to_vec()).await.unwrap();
            let err = resolve(&p.to_message_body(), [(ATTR_PAYLOAD_SIZE, "3")], &store)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    ResolveError::SizeMismatch {
                        declared: 3,
                        actual: 2,
                        ..
                    }
                ),
                "{err:?}"
            );
        }

        #[tokio::test]
        async fn a_size_attribute_that_is_not_a_number_is_refused() {
            let store = MemoryPayloads::new();
            let p = store.put("k", b"{}".to_vec()).await.unwrap();
            let err = resolve(&p.to_message_body(), [(ATTR_PAYLOAD_SIZE, "2 bytes")], &store)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("\"2 bytes\""), "{err}");
        }

        #[tokio::test]
        async fn a_size_attribute_on_an_inline_body_is_refused() {
            let store = MemoryPayloads::new();
            let err = resolve("{}", [(ATTR_PAYLOAD_SIZE, "2")], &store).await.unwrap_err();
            assert!(matches!(err, ResolveError::NotAPointer { .. }), "{err:?}");
        }

        #[tokio::test]
        async fn a_pointer_to_another_bucket_is_refused() {
            let store = MemoryPayloads::new();
            let other = PayloadPointer {
                bucket: "someone-elses".into(),
                key: "k".into(),
            };
            let err = resolve(&other.to_message_body(), [], &store).await.unwrap_err();
            assert!(
                matches!(err, ResolveError::Store(PayloadError::ForeignBucket { .. })),
                "{err:?}"
            );
        }

        #[tokio::test]
        async fn an_object_that_is_not_text_is_refused() {
            let store = MemoryPayloads::new();
            let p = store.put("k", vec![0xff, 0xfe]).await.unwrap();
            let err = resolve(&p.to_message_body(), [], &store).await.unwrap_err();
            assert!(matches!(err, ResolveError::NotText(_)), "{err:?}");
        }

        #[tokio::test]
        async fn a_failing_store_is_an_error() {
            let store = MemoryPayloads::new();
            let p = store.put("k", b"{}".to_vec()).await.unwrap();
            store.set_failing(true);
            let err = resolve(&p.to_message_body(), [], &store).await.unwrap_err();
            assert!(matches!(err, ResolveError::Store(PayloadError::Get { .. })), "{err:?}");
        }

        #[tokio::test]
        async fn a_malformed_pointer_is_refused() {
            let store = MemoryPayloads::new();
            let body = r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{}]"#;
            let err = resolve(body, [], &store).await.unwrap_err();
            assert!(matches!(err, ResolveError::MalformedPointer { .. }), "{err:?}");
        }
    }
}
