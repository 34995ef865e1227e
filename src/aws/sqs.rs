//! Dead letters on an SQS queue: one message per envelope, body = the envelope's JSON.
//! Never drops a letter silently: anything that cannot be stored (too big, queue down) is an error.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::config::describe_sdk_error;
use super::{DeadLetterError, DeadLetters};
use crate::dead_letter::DeadLetter;

/// FIFO message group ids: 1–128 characters of ASCII letters, digits and punctuation.
const MAX_GROUP_ID_CHARS: usize = 128;

/// Writes dead letters to an SQS queue (standard or FIFO).
///
/// Each letter is one message whose body is the envelope's JSON, with string attributes
/// [`Self::ATTR_VERSION`], [`Self::ATTR_REASON`] and [`Self::ATTR_ROUTE`] for filtering and alarms. On a FIFO queue
/// (URL ending in `.fifo`) the group is the route and the deduplication id is the letter id, so a
/// retried send of the same letter is stored once.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
    max_bytes: usize,
}

impl SqsDeadLetters {
    /// SQS's maximum message size (body plus attributes), raised from 256 KiB to 1 MiB in 2025;
    /// the default limit.
    pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
    /// Message attribute: the envelope format version (`DeadLetter::version`).
    pub const ATTR_VERSION: &str = "dealhook-version";
    /// Message attribute: the failure category (`DeadLetter::reason`).
    pub const ATTR_REASON: &str = "dealhook-reason";
    /// Message attribute: the route the delivery came in on.
    pub const ATTR_ROUTE: &str = "dealhook-route";

    /// Writes to `queue_url` with `client`; the size limit is [`Self::MAX_MESSAGE_BYTES`].
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        SqsDeadLetters {
            client,
            fifo: queue_url.ends_with(".fifo"),
            queue_url,
            max_bytes: Self::MAX_MESSAGE_BYTES,
        }
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
impl DeadLetters for SqsDeadLetters {
    /// Sends `letter` as one message. Errors (nothing was stored, the caller should answer 503):
    /// the message would exceed the size limit (checked before sending), or SQS refused or could
    /// not be reached (the message names SQS's error code and message).
    #[tracing::instrument(
        skip_all,
        fields(route = %letter.delivery.route, reason = %letter.reason, letter_id = %letter.id)
    )]
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let body = serde_json::to_string(letter)
            .map(escape_sqs_forbidden)
            .map_err(|e| Self::error(format!("the envelope could not be serialised: {e}")))?;

        let mut attributes = Vec::with_capacity(3);
        for (name, value) in [
            (Self::ATTR_VERSION, letter.version.to_string()),
            (Self::ATTR_REASON, letter.reason.as_str().to_owned()),
            (Self::ATTR_ROUTE, letter.delivery.route.clone()),
        ] {
            // SQS refuses empty attribute values; the body holds everything anyway.
            if value.is_empty() {
                continue;
            }
            let value = replace_sqs_forbidden(&value);
            let size = name.len() + "String".len() + value.len();
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Self::error(format!("message attribute {name}: {e}")))?;
            attributes.push((name, attribute, size));
        }

        let size = body.len() + attributes.iter().map(|(_, _, size)| size).sum::<usize>();
        if size > self.max_bytes {
            tracing::warn!(size, max = self.max_bytes, "dead letter too large for the queue");
            return Err(Self::error(format!(
                "the envelope is {size} bytes, over the queue's {} byte limit; nothing was sent",
                self.max_bytes
            )));
        }

        let mut request = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        for (name, attribute, _) in attributes {
            request = request.message_attributes(name, attribute);
        }
        if self.fifo {
            request = request
                .message_group_id(group_id(&letter.delivery.route))
                .message_deduplication_id(&letter.id);
        }
        let output = request.send().await.map_err(|e| {
            let message = describe_sdk_error(&e);
            tracing::warn!(error = %message, "dead letter not written");
            Self::error(format!("SQS send failed: {message}"))
        })?;
        tracing::info!(
            message_id = output.message_id().unwrap_or_default(),
            size,
            "dead letter written"
        );
        Ok(())
    }
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

    #[test]
    fn fifo_is_recognised_from_the_queue_url() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_sqs::Client::from_conf(conf);
        assert!(SqsDeadLetters::new(client.clone(), "https://sqs/1/q.fifo").fifo);
        let standard = SqsDeadLetters::new(client, "https://sqs/1/q");
        assert!(!standard.fifo);
        assert_eq!(standard.queue_url(), "https://sqs/1/q");
        assert_eq!(standard.max_bytes, SqsDeadLetters::MAX_MESSAGE_BYTES);
        assert_eq!(standard.with_max_bytes(10).max_bytes, 10);
    }
}
