//! Envelopes on an SQS queue — dead letters on the dead-letter queue, queue mode's work items on the
//! work queue: one message per envelope, body = the envelope's JSON, or a pointer to it in S3 when it is
//! over the queue's limit. Never drops an envelope silently: anything that cannot be stored (too big
//! without a bucket, bucket or queue down) is an error.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::config::describe_sdk_error;
use super::payloads::{ATTR_PAYLOAD_SIZE, PayloadStore, envelope_key};
use super::{DeadLetterError, DeadLetters, LazyClient};
use crate::dead_letter::DeadLetter;
use crate::queue::{MAX_DELAY, MAX_VISIBILITY, QueueError, WorkItem, WorkQueue};

/// FIFO message group ids: 1–128 characters of ASCII letters, digits and punctuation.
const MAX_GROUP_ID_CHARS: usize = 128;

/// Writes dead letters to an SQS queue (standard or FIFO).
///
/// Each letter is one message whose body is the envelope's JSON, with string attributes
/// [`Self::ATTR_VERSION`], [`Self::ATTR_REASON`] and [`Self::ATTR_ROUTE`] for filtering and alarms. On a FIFO queue
/// (URL ending in `.fifo`) the group is the route and the deduplication id is the letter id, so a
/// retried send of the same letter is stored once.
///
/// A letter over the size limit (body plus attributes, counted as SQS counts them: [`message_size`])
/// is stored whole in the payload store ([`Self::with_payloads`]) under
/// [`envelope_key`](super::envelope_key), and the message body is a
/// [`PayloadPointer`](super::PayloadPointer) in the SQS Extended Client format, with the same three
/// attributes plus [`ATTR_PAYLOAD_SIZE`] (`Number`, the envelope's size in bytes). Consumers read
/// either kind with [`resolve`](super::resolve).
#[derive(Clone)]
pub struct SqsQueue {
    client: LazyClient<aws_sdk_sqs::Client>,
    queue_url: String,
    fifo: bool,
    max_bytes: usize,
    payloads: Option<Arc<dyn PayloadStore>>,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("queue_url", &self.queue_url)
            .field("fifo", &self.fifo)
            .field("max_bytes", &self.max_bytes)
            .field("payloads", &self.payloads.is_some())
            .finish_non_exhaustive()
    }
}

impl SqsQueue {
    /// SQS's maximum message size (body plus attributes), raised from 256 KiB to 1 MiB in 2025;
    /// the default limit.
    pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
    /// Message attribute: the envelope format version (`DeadLetter::version`).
    pub const ATTR_VERSION: &str = "dealhook-version";
    /// Message attribute: the failure category (`DeadLetter::reason`).
    pub const ATTR_REASON: &str = "dealhook-reason";
    /// Message attribute: the route the delivery came in on.
    pub const ATTR_ROUTE: &str = "dealhook-route";

    /// Writes to `queue_url` with `client` (built, or built on first use: [`LazyClient`]); the size
    /// limit is [`Self::MAX_MESSAGE_BYTES`].
    pub fn new(client: impl Into<LazyClient<aws_sdk_sqs::Client>>, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        SqsQueue {
            client: client.into(),
            fifo: queue_url.ends_with(".fifo"),
            queue_url,
            max_bytes: Self::MAX_MESSAGE_BYTES,
            payloads: None,
        }
    }

    /// Stores letters over the size limit in `payloads` and sends a pointer instead
    /// (`DEALHOOK_PAYLOAD_BUCKET`). Without it such a letter is refused (the delivery is answered 503).
    pub fn with_payloads(mut self, payloads: Arc<dyn PayloadStore>) -> Self {
        self.payloads = Some(payloads);
        self
    }

    /// Sets the largest message (body plus attributes, in bytes) this adapter will send, for a
    /// queue whose `MaximumMessageSize` is below SQS's maximum. Bigger letters are refused before
    /// anything is sent.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The queue's URL, as given.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    fn error(message: impl Into<String>) -> DeadLetterError {
        DeadLetterError {
            message: message.into(),
        }
    }
}

#[async_trait]
impl DeadLetters for SqsQueue {
    /// Sends `letter` as one message. Errors (nothing was stored, the caller should answer 503):
    /// the message would exceed the size limit (checked before sending), or SQS refused or could
    /// not be reached (the message names SQS's error code and message).
    #[tracing::instrument(
        skip_all,
        fields(aws_service = "SQS", aws_operation = "SendMessage", route = %letter.delivery.route, reason = %letter.reason, letter_id = %letter.id)
    )]
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let body = serde_json::to_string(letter)
            .map(escape_sqs_forbidden)
            .map_err(|e| Self::error(format!("the envelope could not be serialised: {e}")))?;
        let attributes = [
            (Self::ATTR_VERSION, letter.version.to_string()),
            (Self::ATTR_REASON, letter.reason.as_str().to_owned()),
            (Self::ATTR_ROUTE, letter.delivery.route.clone()),
        ];
        let sent = self
            .send_envelope(
                body,
                &attributes,
                &letter.created_at,
                &letter.id,
                &letter.delivery.route,
                None,
            )
            .await
            .map_err(Self::error)?;
        tracing::info!(message_id = %sent.0, size = sent.1, "dead letter written");
        Ok(())
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    /// Sends `item` as one message (the envelope's JSON, or a pointer to it in S3 when it is over the
    /// queue's size limit), with the version and route attributes.
    #[tracing::instrument(skip_all, fields(aws_service = "SQS", aws_operation = "SendMessage", route = %item.delivery.route, item_id = %item.id))]
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        self.send_item(item, None).await
    }

    #[tracing::instrument(skip_all, fields(aws_service = "SQS", aws_operation = "SendMessage"))]
    async fn requeue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError> {
        self.send_item(item, Some(delay)).await
    }

    #[tracing::instrument(skip_all, fields(aws_service = "SQS", aws_operation = "ChangeMessageVisibility"))]
    async fn delay(&self, receipt_handle: &str, after: Duration) -> Result<(), QueueError> {
        let seconds = i32::try_from(after.min(MAX_VISIBILITY).as_secs()).unwrap_or(i32::MAX);
        self.client
            .get()
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                QueueError(format!(
                    "SQS ChangeMessageVisibility failed: {}",
                    describe_sdk_error(&e)
                ))
            })
    }
}

impl SqsQueue {
    /// Sends a work item, delayed by `delay` when given (a rate-limited item queued anew).
    async fn send_item(&self, item: &WorkItem, delay: Option<Duration>) -> Result<(), QueueError> {
        let body = serde_json::to_string(item)
            .map(escape_sqs_forbidden)
            .map_err(|e| QueueError(format!("the work item could not be serialised: {e}")))?;
        let attributes = [
            (Self::ATTR_VERSION, item.version.to_string()),
            (Self::ATTR_ROUTE, item.delivery.route.clone()),
        ];
        let (message_id, size) = self
            .send_envelope(
                body,
                &attributes,
                &item.created_at,
                &item.id,
                &item.delivery.route,
                delay,
            )
            .await
            .map_err(QueueError)?;
        tracing::info!(%message_id, size, delay_s = delay.map(|d| d.as_secs()), "work item queued");
        Ok(())
    }

    /// Sends one envelope's JSON `body` with string `attributes` (empty values left out): inline when
    /// it fits the size limit, else stored in S3 with a pointer sent instead (see
    /// [`super::payloads`]). `created_at` and `id` name the S3 object; on a FIFO queue `group` is the
    /// message group and `id` the deduplication id. The message id and size sent, or why nothing was
    /// (a sentence for the log that may name the queue). `delay`: SQS's `DelaySeconds` (at most 15
    /// minutes; not on a FIFO queue, which has only a queue-wide delay).
    async fn send_envelope(
        &self,
        body: String,
        attributes: &[(&'static str, String)],
        created_at: &str,
        id: &str,
        group: &str,
        delay: Option<Duration>,
    ) -> Result<(String, usize), String> {
        let mut attributes: Vec<Attribute> = attributes
            .iter()
            // SQS refuses empty attribute values; the body holds everything anyway.
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| Attribute::string(name, replace_sqs_forbidden(value)))
            .collect();

        let inline_size = message_size(&body, &attributes);
        let (body, size) = if inline_size <= self.max_bytes {
            (body, inline_size)
        } else {
            let Some(payloads) = &self.payloads else {
                tracing::error!(
                    size = inline_size,
                    max = self.max_bytes,
                    "envelope too large for the queue and no payload bucket configured: set \
                     DEALHOOK_PAYLOAD_BUCKET (the template's PayloadBucket) so that big envelopes are kept in S3; \
                     the sender is answered 503 and will retry"
                );
                return Err(format!(
                    "the envelope is {inline_size} bytes, over the queue's {} byte limit, and no payload \
                     bucket is configured (DEALHOOK_PAYLOAD_BUCKET); nothing was sent",
                    self.max_bytes
                ));
            };
            let envelope_bytes = body.len();
            let key = envelope_key(created_at, id);
            let pointer = payloads.put(&key, body.into_bytes()).await.map_err(|e| {
                tracing::warn!(error = %e, "envelope payload not stored");
                e.to_string()
            })?;
            tracing::info!(payload = %pointer, bytes = envelope_bytes, "envelope payload stored");
            attributes.push(Attribute::number(ATTR_PAYLOAD_SIZE, envelope_bytes));
            let body = pointer.to_message_body();
            let size = message_size(&body, &attributes);
            if size > self.max_bytes {
                // Only with a limit set absurdly low: the pointer is a few hundred bytes.
                return Err(format!(
                    "even the pointer message is {size} bytes, over the queue's {} byte limit; the payload is at \
                     {pointer} but no message was sent",
                    self.max_bytes
                ));
            }
            (body, size)
        };

        let mut request = self
            .client
            .get()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        for attribute in attributes {
            let value = MessageAttributeValue::builder()
                .data_type(attribute.data_type)
                .string_value(attribute.value)
                .build()
                .map_err(|e| format!("message attribute {}: {e}", attribute.name))?;
            request = request.message_attributes(attribute.name, value);
        }
        if self.fifo {
            request = request.message_group_id(group_id(group)).message_deduplication_id(id);
        } else if let Some(delay) = delay {
            let seconds = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(0);
            request = request.delay_seconds(seconds);
        }
        let output = request.send().await.map_err(|e| {
            let message = describe_sdk_error(&e);
            tracing::warn!(error = %message, "envelope not written");
            format!("SQS send failed: {message}")
        })?;
        Ok((output.message_id().unwrap_or_default().to_owned(), size))
    }
}

/// One message attribute as it will be sent (`String` or `Number`, both carried as a string value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    name: &'static str,
    data_type: &'static str,
    value: String,
}

impl Attribute {
    fn string(name: &'static str, value: String) -> Attribute {
        Attribute {
            name,
            data_type: "String",
            value,
        }
    }

    fn number(name: &'static str, value: usize) -> Attribute {
        Attribute {
            name,
            data_type: "Number",
            value: value.to_string(),
        }
    }
}

/// A message's size as SQS counts it against `MaximumMessageSize`: the body's UTF-8 bytes plus, for
/// each attribute, the bytes of its name, its data type and its value (SQS Developer Guide, "Amazon
/// SQS message attributes": "the message size … includes the message body and the message attributes";
/// each attribute counts name, type and value).
pub(crate) fn message_size(body: &str, attributes: &[Attribute]) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|a| a.name.len() + a.data_type.len() + a.value.len())
            .sum::<usize>()
}

/// Whether SQS accepts `c` in a message: `#x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–`.
fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// serde_json already escapes control characters, but writes U+FFFE and U+FFFF raw, which SQS
/// refuses. In serde_json output they can only occur inside strings, where `\uFFFE` is the same
/// JSON value; so the body stays byte-for-byte what serde_json wrote in every other case.
fn escape_sqs_forbidden(json: String) -> String {
    if json.chars().all(sqs_allows) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if sqs_allows(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04X}", u32::from(c)));
        }
    }
    out
}

/// Attribute values are plain strings (for filtering only): replace what SQS refuses.
fn replace_sqs_forbidden(value: &str) -> String {
    value
        .chars()
        .map(|c| if sqs_allows(c) { c } else { char::REPLACEMENT_CHARACTER })
        .collect()
}

/// A FIFO message group id for `route`: the route itself when valid (route names are), otherwise
/// a cleaned-up copy, so an odd route name cannot make the letter unstorable.
fn group_id(route: &str) -> String {
    let cleaned: String = route
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_GROUP_ID_CHARS)
        .collect();
    if cleaned.is_empty() { "_".to_owned() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_json_is_left_byte_for_byte_alone() {
        let json = r#"{"a":"héllo \u0001 😀","b":[1,2]}"#.to_owned();
        assert_eq!(escape_sqs_forbidden(json.clone()), json);
    }

    #[test]
    fn noncharacters_sqs_refuses_are_escaped_to_the_same_json_value() {
        let value = serde_json::json!({"header": "a\u{FFFF}b\u{FFFE}"});
        let json = serde_json::to_string(&value).unwrap();
        let escaped = escape_sqs_forbidden(json);
        assert!(escaped.chars().all(sqs_allows), "{escaped:?}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn attribute_values_lose_only_the_refused_characters() {
        assert_eq!(replace_sqs_forbidden("ok\u{0}x"), "ok\u{FFFD}x");
        assert_eq!(replace_sqs_forbidden("route-1"), "route-1");
    }

    #[test]
    fn group_ids_are_always_valid() {
        assert_eq!(group_id("website-quote"), "website-quote");
        assert_eq!(group_id(""), "_");
        assert_eq!(group_id("a b\u{e9}"), "a_b_");
        assert_eq!(group_id(&"x".repeat(300)).len(), MAX_GROUP_ID_CHARS);
    }

    /// The size arithmetic, case by case: SQS counts UTF-8 bytes of the body and of each attribute's
    /// name, type and value.
    mod message_sizes {
        use super::*;

        #[test]
        fn a_body_alone_counts_its_utf8_bytes_not_its_characters() {
            assert_eq!(message_size("", &[]), 0);
            assert_eq!(message_size("{}", &[]), 2);
            assert_eq!(message_size("\u{e9}", &[]), 2, "é is two bytes");
            assert_eq!(message_size("\u{1F600}", &[]), 4, "an emoji is four bytes");
        }

        #[test]
        fn each_attribute_counts_its_name_type_and_value() {
            let route = Attribute::string("dealhook-route", "r\u{e9}".to_owned());
            assert_eq!(message_size("{}", std::slice::from_ref(&route)), 2 + 14 + 6 + 3);
            let size = Attribute::number(ATTR_PAYLOAD_SIZE, 1_048_577);
            assert_eq!(message_size("", std::slice::from_ref(&size)), 19 + 6 + 7);
            assert_eq!(message_size("{}", &[route, size]), 2 + 23 + 32);
        }
    }

    #[test]
    fn fifo_is_recognised_from_the_queue_url() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_sqs::Client::from_conf(conf);
        assert!(SqsQueue::new(client.clone(), "https://sqs/1/q.fifo").fifo);
        let standard = SqsQueue::new(client, "https://sqs/1/q");
        assert!(!standard.fifo);
        assert_eq!(standard.queue_url(), "https://sqs/1/q");
        assert_eq!(standard.max_bytes, SqsQueue::MAX_MESSAGE_BYTES);
        assert_eq!(standard.with_max_bytes(10).max_bytes, 10);
    }
}
