//! Body decoding: a Delivery's content type and raw bytes become one JSON value (JSON, urlencoded
//! form or multipart form). Strict about media types and UTF-8, bounded in work, and never panics
//! on request data; file contents are never kept (the raw body stays in the dead letter).

use serde_json::Value;

use crate::domain::Problem;

mod form;
mod json;
mod media_type;

use form::{decode_multipart, decode_urlencoded};
use json::decode_json;
pub use media_type::media_type_essence;
use media_type::{MediaType, is_utf8_label};

/// The most fields (urlencoded pairs or multipart parts) one form body may carry; one more is
/// `too_many_fields` ([`DecodeError::LimitExceeded`], answered 400). Counted while parsing, so a
/// hostile body stops early.
pub const MAX_FIELDS: usize = 1_000;

/// The deepest a JSON body may nest objects and arrays: `{"a":[1]}` is 2 levels; level 65 is
/// `too_deep` ([`DecodeError::LimitExceeded`], answered 400). Webhook bodies use a handful.
pub const MAX_JSON_DEPTH: usize = 64;

/// The most values one JSON body may hold, counting every object member and every array element
/// at any depth (`{"a":[1,2]}` holds 3); one more is `too_many_fields` ([`DecodeError::LimitExceeded`],
/// answered 400). The largest provider events (a GitHub pull request, a HubSpot batch of 100)
/// hold a few thousand.
pub const MAX_JSON_VALUES: usize = 10_000;

/// What we accept, for 415 messages.
const SUPPORTED: &str =
    "application/json (or application/*+json), application/x-www-form-urlencoded or multipart/form-data, in UTF-8";

/// A Content-Type is echoed in errors up to this many characters.
const MAX_ECHOED_CONTENT_TYPE: usize = 200;

/// The `field` of problems about the body as a whole.
const BODY: &str = "body";

/// The 400 codes of the structure limits.
const TOO_DEEP: &str = "too_deep";
const TOO_MANY_FIELDS: &str = "too_many_fields";

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// There is no `Content-Type` header, or it is blank. Answered 415; nothing is stored.
    #[error("the request has no Content-Type header; send {}", SUPPORTED)]
    MissingContentType,
    /// The media type is not one we decode, cannot be parsed, or declares a charset other than
    /// UTF-8 or US-ASCII. Answered 415; nothing is stored.
    #[error("content type {content_type:?} is not supported; send {}", SUPPORTED)]
    UnsupportedMediaType {
        /// The header as sent (trimmed; cut to 200 characters).
        content_type: String,
    },
    /// The media type is fine but the body is not (codes: `empty_body`, `invalid_json`,
    /// `invalid_utf8`, `invalid_multipart`, `unsupported_charset`).
    /// The delivery is dead-lettered. Never empty.
    #[error("the body could not be decoded: {}", join(.0))]
    Malformed(Vec<Problem>),
    /// The body's shape is over a structure limit: `too_deep` (JSON nested deeper than
    /// [`MAX_JSON_DEPTH`]) or `too_many_fields` (more than [`MAX_JSON_VALUES`] JSON values, or more
    /// than [`MAX_FIELDS`] form fields). Found before the body is parsed, so a hostile body costs
    /// one pass over its bytes. Answered 400; nothing is stored (a hostile shape is not worth a
    /// dead letter). The message names the limit, its value and where it was passed.
    #[error("{message}")]
    LimitExceeded {
        /// `too_deep` or `too_many_fields`.
        code: &'static str,
        /// Which limit, its value and where in the body (a JSON pointer and byte offset, or the
        /// field number).
        message: String,
    },
}

impl DecodeError {
    /// True when the request is refused with 415 (missing or unsupported content type) rather
    /// than dead-lettered.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            DecodeError::MissingContentType | DecodeError::UnsupportedMediaType { .. }
        )
    }

    /// The error as problems: one `content-type` problem (`missing_content_type` or
    /// `unsupported_media_type`) for a 415, the body problems of `Malformed`, or one `body`
    /// problem for `LimitExceeded`.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            DecodeError::MissingContentType => {
                vec![Problem::at("content-type", "missing_content_type", self.to_string())]
            }
            DecodeError::UnsupportedMediaType { .. } => {
                vec![Problem::at("content-type", "unsupported_media_type", self.to_string())]
            }
            DecodeError::Malformed(problems) => problems.clone(),
            DecodeError::LimitExceeded { code, message } => vec![Problem::at(BODY, *code, message.clone())],
        }
    }
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

fn malformed(code: &str, message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(vec![Problem::at(BODY, code, message)])
}

/// Decodes a body by its content type into one JSON value.
///
/// - `application/json` and `application/*+json`: any JSON value (the source decides what it
///   accepts). A leading UTF-8 byte-order mark is ignored. Empty or whitespace-only →
///   `empty_body`; bytes that are not UTF-8 → `invalid_utf8`; nesting deeper than
///   [`MAX_JSON_DEPTH`] → `too_deep`, more than [`MAX_JSON_VALUES`] members and elements →
///   `too_many_fields` (both [`DecodeError::LimitExceeded`], checked by one pass over the bytes
///   before parsing, whatever else is wrong with the body); bad JSON → `invalid_json` with line
///   and column.
/// - `application/x-www-form-urlencoded`: an object of strings; `+` is a space, `%XX` is decoded
///   (a `%` not followed by two hex digits stays literal), a key without `=` has value `""`,
///   empty pairs are skipped, repeated keys become a list in order, an empty body is `{}`.
///   Names or values that are not UTF-8 once decoded → `invalid_utf8` naming each field.
/// - `multipart/form-data` (needs `boundary`, else `invalid_multipart`; CRLF line endings as on
///   the wire): text parts are strings (UTF-8, else `invalid_utf8`), parts with a filename
///   (even an empty one, as browsers send for an empty file input) become
///   `{"filename", "contentType" (the part's header or null), "size" (bytes)}`, repeated names
///   become a list. A part without a name, or any parse error → `invalid_multipart`. A part
///   declaring a charset other than UTF-8/US-ASCII, or a `_charset_` field naming one →
///   `unsupported_charset` (the field is still decoded as UTF-8 and kept). Empty body →
///   `empty_body`.
/// - Urlencoded and multipart: more than [`MAX_FIELDS`] fields → `too_many_fields`
///   ([`DecodeError::LimitExceeded`]).
///
/// Media types match case-insensitively and may carry parameters; a `charset` parameter other
/// than `utf-8` or `us-ascii` is unsupported. Anything else, including `text/plain` that holds
/// JSON, is refused: [`DecodeError::UnsupportedMediaType`], or
/// [`DecodeError::MissingContentType`] for `None` or a blank header.
pub async fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
    let raw = content_type
        .map(str::trim)
        .filter(|ct| !ct.is_empty())
        .ok_or(DecodeError::MissingContentType)?;
    let unsupported = || DecodeError::UnsupportedMediaType {
        content_type: raw.chars().take(MAX_ECHOED_CONTENT_TYPE).collect(),
    };
    let media = MediaType::parse(raw).ok_or_else(unsupported)?;
    if let Some(charset) = media.param("charset")
        && !is_utf8_label(charset)
    {
        return Err(unsupported());
    }
    if media.is_json() {
        decode_json(body)
    } else if media.essence == "application/x-www-form-urlencoded" {
        decode_urlencoded(body)
    } else if media.essence == "multipart/form-data" {
        decode_multipart(media.param("boundary"), body).await
    } else {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests;
