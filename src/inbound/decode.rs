//! Body decoding: a Delivery's content type and raw bytes become one JSON value (JSON, urlencoded
//! form or multipart form). Strict about media types and UTF-8, bounded in work, and never panics
//! on request data; file contents are never kept (the raw body stays in the dead letter).

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::FutureExt as _;
use percent_encoding::percent_decode;
use serde_json::map::Entry;
use serde_json::{Map, Value, json};

use crate::domain::Problem;

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

/// The lowercased `type/subtype` of a Content-Type header (parameters dropped), or `None` when it
/// has none (blank, or not two tokens): `"Application/JSON; charset=utf-8"` → `application/json`.
pub fn media_type_essence(content_type: &str) -> Option<String> {
    MediaType::parse(content_type.trim()).map(|media| media.essence)
}

/// `utf-8` or `us-ascii` (a subset), any case.
fn is_utf8_label(label: &str) -> bool {
    let label = label.trim();
    label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("us-ascii")
}

/// A parsed Content-Type: lowercased `type/subtype` and its parameters (names lowercased).
#[derive(Debug, PartialEq)]
struct MediaType {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    /// `None` when there is no `type/subtype` of two non-empty tokens.
    fn parse(raw: &str) -> Option<MediaType> {
        let (essence, params) = raw.split_once(';').unwrap_or((raw, ""));
        let essence = essence.trim().to_ascii_lowercase();
        let (kind, subtype) = essence.split_once('/')?;
        let is_token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        };
        if !is_token(kind) || !is_token(subtype) {
            return None;
        }
        Some(MediaType {
            params: parse_params(params),
            essence,
        })
    }

    /// The first parameter of that (lowercase) name.
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn is_json(&self) -> bool {
        match self.essence.strip_prefix("application/") {
            Some(subtype) => subtype == "json" || subtype.strip_suffix("+json").is_some_and(|s| !s.is_empty()),
            None => false,
        }
    }
}

/// `; name=value; name="quoted \" value"`, leniently: a parameter without `=` is skipped, an
/// unterminated quoted string runs to the end.
fn parse_params(mut rest: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return params;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let (name, after_name) = rest.split_at(name_end);
        let name = name.trim().to_ascii_lowercase();
        let Some(value_and_tail) = after_name.strip_prefix('=') else {
            rest = after_name;
            continue;
        };
        let value_and_tail = value_and_tail.trim_start();
        let (value, tail) = match value_and_tail.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => {
                let end = value_and_tail.find(';').unwrap_or(value_and_tail.len());
                let (value, tail) = value_and_tail.split_at(end);
                (value.trim_end().to_owned(), tail)
            }
        };
        if !name.is_empty() {
            params.push((name, value));
        }
        rest = tail;
    }
}

/// Reads a quoted string after its opening quote: the value and what follows the closing quote.
fn unquote(quoted: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, quoted.get(i + 1..).unwrap_or("")),
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            c => value.push(c),
        }
    }
    (value, "")
}

fn decode_json(body: &[u8]) -> Result<Value, DecodeError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (offset, body) = match body.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, body),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to() + offset;
        malformed("invalid_utf8", format!("the body is not valid UTF-8 (at byte {at})"))
    })?;
    if text.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err(malformed("empty_body", "the body is empty"));
    }
    parse_json(text, MAX_JSON_DEPTH, MAX_JSON_VALUES)
}

/// Checks the structure limits, then parses. serde_json's own nesting limit (128) is reported as
/// `too_deep` too, should the limits ever be raised past it.
fn parse_json(text: &str, max_depth: usize, max_values: usize) -> Result<Value, DecodeError> {
    check_json_shape(text, max_depth, max_values)?;
    serde_json::from_str(text).map_err(|e| {
        if e.to_string().starts_with("recursion limit exceeded") {
            let message = format!(
                "the JSON body nests deeper than the parser's limit of 128 levels (line {} column {})",
                e.line(),
                e.column()
            );
            return DecodeError::LimitExceeded {
                code: TOO_DEEP,
                message,
            };
        }
        malformed("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

const TOO_DEEP: &str = "too_deep";
const TOO_MANY_FIELDS: &str = "too_many_fields";

/// One open object or array while scanning: where its key or index is, for the error's path.
struct Frame {
    object: bool,
    /// Array: the index of the current element. Object: members seen so far.
    index: usize,
    /// Object: the byte range of the current member's key (between its quotes), once read.
    key: Option<(usize, usize)>,
    /// Object: the next string is a key.
    expecting_key: bool,
}

/// One pass over the bytes of a JSON text (strings and escapes understood; nothing allocated but
/// one frame per level) that stops at the first level past `max_depth` or the first value past
/// `max_values`. Values are counted as objects' members and arrays' elements; syntax is not
/// checked here (serde_json does that next), so a broken body is judged by its brackets and commas.
fn check_json_shape(text: &str, max_depth: usize, max_values: usize) -> Result<(), DecodeError> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::with_capacity(max_depth.min(MAX_JSON_DEPTH));
    let mut values = 0usize;
    // Just after `[` or `{`: the next significant byte starts the first value, unless it closes.
    let mut opened = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        let starts_value = match b {
            b',' => true,
            b']' | b'}' => false,
            _ => opened,
        };
        opened = false;
        if starts_value && !stack.is_empty() {
            values += 1;
            if values > max_values {
                let (container, kind) = match stack.split_last() {
                    Some((last, outer)) => (pointer(text, outer), if last.object { "object" } else { "array" }),
                    None => (String::new(), "value"),
                };
                let message = format!(
                    "the JSON body holds more than {max_values} values (object members and array elements, \
                     counted together at every depth); the limit was passed at byte {i}, in the {kind} at {container}"
                );
                return Err(DecodeError::LimitExceeded {
                    code: TOO_MANY_FIELDS,
                    message,
                });
            }
        }
        match b {
            b'"' => {
                let start = i + 1;
                i = string_end(bytes, start);
                if let Some(frame) = stack.last_mut().filter(|f| f.object && f.expecting_key) {
                    frame.key = Some((start, i.min(bytes.len())));
                    frame.expecting_key = false;
                }
            }
            b'[' | b'{' => {
                if stack.len() >= max_depth {
                    let message = format!(
                        "the JSON body nests deeper than {max_depth} levels of objects and arrays; \
                         level {} opens at {} (byte {i})",
                        stack.len() + 1,
                        pointer(text, &stack)
                    );
                    return Err(DecodeError::LimitExceeded {
                        code: TOO_DEEP,
                        message,
                    });
                }
                stack.push(Frame {
                    object: b == b'{',
                    index: 0,
                    key: None,
                    expecting_key: b == b'{',
                });
                opened = true;
            }
            b']' | b'}' => {
                stack.pop();
            }
            b',' => {
                if let Some(frame) = stack.last_mut() {
                    frame.index += 1;
                    frame.expecting_key = frame.object;
                    frame.key = None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the closing quote of a string whose content starts at `start` (or the end).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A JSON pointer (RFC 6901) to where the scan is, for messages: keys as sent (escapes not
/// decoded), each cut to 40 characters; past 12 levels only the first 8 and last 3 are shown.
fn pointer(text: &str, stack: &[Frame]) -> String {
    let token = |frame: &Frame| -> String {
        if !frame.object {
            return frame.index.to_string();
        }
        let key = frame.key.and_then(|(start, end)| text.get(start..end)).unwrap_or("");
        let mut shown: String = key.chars().take(40).collect();
        if shown.len() < key.len() {
            shown.push('…');
        }
        shown.replace('~', "~0").replace('/', "~1")
    };
    if stack.is_empty() {
        return "the top level".to_owned();
    }
    let tokens: Vec<String> = if stack.len() > 12 {
        let head = stack.iter().take(8).map(token);
        let tail = stack.iter().skip(stack.len() - 3).map(token);
        head.chain(std::iter::once("…".to_owned())).chain(tail).collect()
    } else {
        stack.iter().map(token).collect()
    };
    format!("/{}", tokens.join("/"))
}

/// Form fields as they are parsed: repeated names become lists; counts toward [`MAX_FIELDS`].
#[derive(Default)]
struct Fields {
    map: Map<String, Value>,
    count: usize,
    problems: Vec<Problem>,
}

impl Fields {
    /// Counts one more field; `too_many_fields` past the limit. `at` says where the field
    /// starts, for the message.
    fn count_one(&mut self, at: impl FnOnce() -> String) -> Result<(), DecodeError> {
        self.count += 1;
        if self.count > MAX_FIELDS {
            let message = format!(
                "the form body has more than {MAX_FIELDS} fields (the limit); field {} {}",
                self.count,
                at()
            );
            return Err(DecodeError::LimitExceeded {
                code: TOO_MANY_FIELDS,
                message,
            });
        }
        Ok(())
    }

    /// Adds a value; a second value of the same name turns it into a list. Values are never
    /// arrays themselves, so an array always means "already a list".
    fn insert(&mut self, name: String, value: Value) {
        match self.map.entry(name) {
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
            Entry::Occupied(mut slot) => match slot.get_mut() {
                Value::Array(list) => list.push(value),
                first => {
                    let first = first.take();
                    slot.insert(Value::Array(vec![first, value]));
                }
            },
        }
    }

    fn not_utf8(&mut self, name: &str, what: &str) {
        let message = format!("the {what} of field {name:?} is not valid UTF-8");
        self.problems
            .push(Problem::at(format!("fields.{name}"), "invalid_utf8", message));
    }

    fn finish(self) -> Result<Value, DecodeError> {
        if self.problems.is_empty() {
            Ok(Value::Object(self.map))
        } else {
            Err(DecodeError::Malformed(self.problems))
        }
    }
}

fn decode_urlencoded(body: &[u8]) -> Result<Value, DecodeError> {
    let mut fields = Fields::default();
    let mut next_at = 0;
    for pair in body.split(|&b| b == b'&') {
        let at = next_at;
        next_at += pair.len() + 1;
        if pair.is_empty() {
            continue;
        }
        fields.count_one(|| format!("starts at byte {at}"))?;
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let raw_name = halves.next().unwrap_or_default();
        let raw_value = halves.next().unwrap_or_default();
        let Some(name) = form_decode(raw_name) else {
            // The name cannot be shown decoded; show it as sent.
            fields.not_utf8(&String::from_utf8_lossy(raw_name), "name");
            continue;
        };
        match form_decode(raw_value) {
            Some(value) => fields.insert(name, Value::String(value)),
            None => fields.not_utf8(&name, "value"),
        }
    }
    fields.finish()
}

/// `+` → space, then `%XX` → byte; `None` when the result is not UTF-8. `+` is replaced first so
/// that `%2B` stays a plus sign.
fn form_decode(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    String::from_utf8(percent_decode(&spaced).collect()).ok()
}

async fn decode_multipart(boundary: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
    let Some(boundary) = boundary.filter(|b| !b.is_empty()) else {
        return Err(malformed(
            "invalid_multipart",
            "the multipart/form-data content type has no boundary parameter",
        ));
    };
    if body.is_empty() {
        return Err(malformed("empty_body", "the body is empty"));
    }
    // The whole body is already in memory, so the parser never has to wait: poll it once, and
    // should it ever report "pending" (a parser bug), fail rather than hang until the deadline.
    parse_multipart(boundary, Bytes::copy_from_slice(body))
        .now_or_never()
        .unwrap_or_else(|| {
            Err(malformed(
                "invalid_multipart",
                "the multipart parser stopped before the end of the body",
            ))
        })
}

async fn parse_multipart(boundary: &str, body: Bytes) -> Result<Value, DecodeError> {
    let invalid = |e: multer::Error| malformed("invalid_multipart", format!("the multipart body is malformed: {e}"));
    let stream = futures_util::stream::iter([Ok::<Bytes, Infallible>(body)]);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Fields::default();
    while let Some(mut part) = multipart.next_field().await.map_err(invalid)? {
        fields.count_one(|| format!("is part {}", part.index() + 1))?;
        let Some(name) = part.name().map(str::to_owned) else {
            let message = format!(
                "part {} has no name in its Content-Disposition header",
                part.index() + 1
            );
            return Err(malformed("invalid_multipart", message));
        };
        let content_type = part
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());

        if let Some(filename) = part.file_name().map(str::to_owned) {
            // Count the upload's bytes without keeping them.
            let mut size = 0usize;
            while let Some(chunk) = part.chunk().await.map_err(invalid)? {
                size = size.saturating_add(chunk.len());
            }
            fields.insert(
                name,
                json!({ "filename": filename, "contentType": content_type, "size": size }),
            );
            continue;
        }

        let bytes = part.bytes().await.map_err(invalid)?;
        let declared = content_type
            .as_deref()
            .and_then(MediaType::parse)
            .and_then(|m| m.param("charset").map(str::to_owned));
        if let Some(charset) = declared.filter(|c| !is_utf8_label(c)) {
            fields.problems.push(unsupported_charset(&name, &charset));
        }
        match String::from_utf8(bytes.into()) {
            Ok(text) => {
                // HTML's `_charset_` field reports the encoding the browser used for the form.
                if name == "_charset_" && !is_utf8_label(&text) {
                    fields.problems.push(unsupported_charset(&name, &text));
                }
                fields.insert(name, Value::String(text));
            }
            Err(_) => fields.not_utf8(&name, "value"),
        }
    }
    fields.finish()
}

fn unsupported_charset(name: &str, charset: &str) -> Problem {
    let charset: String = charset.chars().take(MAX_ECHOED_CONTENT_TYPE).collect();
    let message = format!("field {name:?} is declared as {charset:?}; only UTF-8 is supported");
    Problem::at(format!("fields.{name}"), "unsupported_charset", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML_FORM: &[u8] = include_bytes!("../../tests/fixtures/inbound/html-form-urlencoded.body");
    const JOTFORM: &[u8] = include_bytes!("../../tests/fixtures/inbound/jotform-form_submission.multipart");
    const JOTFORM_BOUNDARY: &str = "------------------------J1JNT4vbVO4FCC1qLG4HSv";

    const FORM: &str = "application/x-www-form-urlencoded";
    const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    fn multipart_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    /// A browser-style multipart body (CRLF) from `(disposition params, part content type, data)`.
    fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (disposition, content_type, data) in parts {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n").as_bytes(),
            );
            if let Some(ct) = content_type {
                body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    /// The problems of a Malformed error, or a panic naming the row.
    fn problems_of(row: &str, result: Result<Value, DecodeError>) -> Vec<Problem> {
        match result {
            Err(DecodeError::Malformed(problems)) => problems,
            other => panic!("{row}: expected Malformed, got {other:?}"),
        }
    }

    fn codes(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[tokio::test]
    async fn json_media_types_match_case_insensitively_with_utf8_parameters() {
        let content_types = [
            "application/json",
            "Application/JSON",
            "  application/json  ",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; charset=us-ascii; foo=bar",
            "application/vnd.api+json",
            "application/cloudevents+json; charset=utf-8",
            "APPLICATION/MERGE-PATCH+JSON",
        ];
        for ct in content_types {
            let got = decode(Some(ct), br#"{"a":1}"#).await;
            assert_eq!(got, Ok(json!({"a": 1})), "content type {ct:?}");
        }
    }

    #[tokio::test]
    async fn any_json_value_is_returned_for_the_source_to_judge() {
        let cases: [(&str, &[u8], Value); 6] = [
            (
                "object",
                br#"{"email":"ada@example.com"}"#,
                json!({"email": "ada@example.com"}),
            ),
            ("array", b"[1,2]", json!([1, 2])),
            ("string", br#""hi""#, json!("hi")),
            ("number", b" 12.5 ", json!(12.5)),
            ("null", b"null", Value::Null),
            ("byte-order mark", b"\xEF\xBB\xBF{\"a\":true}", json!({"a": true})),
        ];
        for (row, body, want) in cases {
            assert_eq!(decode(Some("application/json"), body).await, Ok(want), "{row}");
        }
    }

    #[tokio::test]
    async fn unsupported_media_types_and_charsets_are_refused_with_415() {
        let content_types = [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/xml",
            "text/json",
            "multipart/mixed; boundary=x",
            "application/+json",
            "application/jsonx",
            "json",
            "/json",
            "application/",
            "application json",
            "application/json; charset=latin1",
            "application/json; charset=\"ISO-8859-1\"",
            "application/x-www-form-urlencoded; charset=windows-1252",
            "multipart/form-data; boundary=x; charset=shift_jis",
        ];
        for ct in content_types {
            let err = decode(Some(ct), br#"{"a":1}"#).await.expect_err(ct);
            assert_eq!(
                err,
                DecodeError::UnsupportedMediaType {
                    content_type: ct.to_owned()
                },
                "content type {ct:?}"
            );
            assert!(err.is_unsupported(), "{ct:?}: should be a 415");
            assert_eq!(codes(&err.problems()), ["unsupported_media_type"], "{ct:?}");
            assert!(
                err.to_string().contains("multipart/form-data"),
                "{ct:?}: message lists what is supported"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_or_blank_content_type_is_missing() {
        for (row, ct) in [("none", None), ("empty", Some("")), ("blank", Some("  \t"))] {
            let err = decode(ct, b"{}").await.expect_err(row);
            assert_eq!(err, DecodeError::MissingContentType, "{row}");
            assert!(err.is_unsupported(), "{row}");
            assert_eq!(codes(&err.problems()), ["missing_content_type"], "{row}");
        }
    }

    #[tokio::test]
    async fn a_long_content_type_is_cut_in_the_error() {
        let ct = format!("text/{}", "x".repeat(10_000));
        let Err(DecodeError::UnsupportedMediaType { content_type }) = decode(Some(&ct), b"").await else {
            panic!("expected UnsupportedMediaType");
        };
        assert_eq!(content_type.chars().count(), MAX_ECHOED_CONTENT_TYPE);
    }

    #[tokio::test]
    async fn empty_bodies_are_empty_body_except_an_empty_form_which_is_an_empty_object() {
        let mp = multipart_type();
        let malformed = [
            ("json, no bytes", "application/json", &b""[..]),
            ("json, whitespace", "application/json", &b" \r\n\t "[..]),
            ("json, only a byte-order mark", "application/json", &b"\xEF\xBB\xBF"[..]),
            ("multipart, no bytes", mp.as_str(), &b""[..]),
        ];
        for (row, ct, body) in malformed {
            let problems = problems_of(row, decode(Some(ct), body).await);
            assert_eq!(codes(&problems), ["empty_body"], "{row}");
            assert_eq!(problems[0].field.as_deref(), Some("body"), "{row}");
        }
        assert_eq!(decode(Some(FORM), b"").await, Ok(json!({})), "form, no bytes");
    }

    #[tokio::test]
    async fn invalid_json_is_malformed_with_its_line_and_column() {
        let cases: [(&str, &[u8], &str); 4] = [
            ("missing value", b"{\n  \"a\": 1,\n  \"b\": }", "line 3 column 8"),
            ("trailing comma", b"[1,2,]", "line 1 column 6"),
            ("truncated", b"{\"a\": [1, 2", "line 1 column 11"),
            ("two values", b"{} {}", "line 1 column 4"),
        ];
        for (row, body, position) in cases {
            let problems = problems_of(row, decode(Some("application/json"), body).await);
            assert_eq!(codes(&problems), ["invalid_json"], "{row}");
            assert!(
                problems[0].message.contains(position),
                "{row}: {:?} lacks {position:?}",
                problems[0].message
            );
        }
    }

    /// The code and message of a LimitExceeded error, or a panic naming the row.
    fn limit_of(row: &str, result: Result<Value, DecodeError>) -> (&'static str, String) {
        match result {
            Err(DecodeError::LimitExceeded { code, message }) => (code, message),
            other => panic!("{row}: expected LimitExceeded, got {other:?}"),
        }
    }

    fn nested(depth: usize) -> (String, String) {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        (arrays, objects)
    }

    #[tokio::test]
    async fn json_up_to_the_depth_limit_decodes_and_one_level_more_is_too_deep() {
        let (arrays, objects) = nested(MAX_JSON_DEPTH);
        for (row, body) in [("arrays", arrays), ("objects", objects)] {
            assert!(decode(Some("application/json"), body.as_bytes()).await.is_ok(), "{row}");
        }
        let (arrays, objects) = nested(MAX_JSON_DEPTH + 1);
        let cases = [
            ("arrays", arrays, "/0/0/0/0/0/0/0/0/…/0/0/0 (byte 64)"),
            ("objects", objects, "/a/a/a/a/a/a/a/a/…/a/a/a (byte 320)"),
        ];
        for (row, body, at) in cases {
            let (code, message) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
            assert_eq!(code, "too_deep", "{row}");
            assert!(message.contains("deeper than 64 levels"), "{row}: {message}");
            assert!(message.contains("level 65 opens at"), "{row}: {message}");
            assert!(message.ends_with(at), "{row}: {message}");
        }
    }

    #[tokio::test]
    async fn very_deep_json_is_too_deep_not_a_stack_overflow_whatever_follows() {
        let depth = 100_000;
        let (arrays, objects) = nested(depth);
        let unclosed = "[".repeat(depth);
        let broken_later = format!("{}{{\"a\": }}", "[".repeat(depth));
        for (row, body) in [
            ("arrays", arrays),
            ("objects", objects),
            ("unclosed", unclosed),
            ("syntax error past the limit", broken_later),
        ] {
            let (code, _) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
            assert_eq!(code, "too_deep", "{row}");
        }
    }

    #[test]
    fn the_parsers_own_nesting_limit_is_too_deep_as_well() {
        let (arrays, _) = nested(200);
        let (code, message) = limit_of("serde limit", parse_json(&arrays, 1_000, MAX_JSON_VALUES));
        assert_eq!(code, "too_deep");
        assert!(message.contains("128 levels"), "{message}");
    }

    #[tokio::test]
    async fn json_up_to_the_value_limit_decodes_and_one_more_is_too_many_fields() {
        let array = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        let object = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":null")).collect();
            format!("{{\"outer\":{{{}}}}}", members.join(","))
        };
        assert!(
            decode(Some("application/json"), array(MAX_JSON_VALUES).as_bytes())
                .await
                .is_ok()
        );
        // The outer member counts too.
        assert!(
            decode(Some("application/json"), object(MAX_JSON_VALUES - 1).as_bytes())
                .await
                .is_ok()
        );
        let cases = [
            (
                "array",
                array(MAX_JSON_VALUES + 1),
                "at byte 20000, in the array at the top level",
            ),
            ("object", object(MAX_JSON_VALUES), "in the object at /outer"),
        ];
        for (row, body, at) in cases {
            let (code, message) = limit_of(row, decode(Some("application/json"), body.as_bytes()).await);
            assert_eq!(code, "too_many_fields", "{row}");
            assert!(message.contains("more than 10000 values"), "{row}: {message}");
            assert!(message.contains(at), "{row}: {message}");
        }
    }

    #[test]
    fn the_shape_scan_skips_brackets_and_commas_inside_strings_and_escapes() {
        let text = r#"{"[[[": "]]],,,{{{", "esc\"aped[": ["\\", "\"[", "x"]}"#;
        assert_eq!(
            parse_json(text, 2, 5),
            Ok(json!({"[[[": "]]],,,{{{", "esc\"aped[": ["\\", "\"[", "x"]}))
        );
        let (code, message) = limit_of("values", parse_json(text, 2, 4));
        assert_eq!(code, "too_many_fields");
        assert!(message.contains(r#"in the array at /esc\"aped["#), "{message}");
        let (code, _) = limit_of("depth", parse_json(text, 1, 10));
        assert_eq!(code, "too_deep");
    }

    #[test]
    fn json_pointers_escape_and_cut_keys() {
        let long = "k".repeat(100);
        let text = format!(r#"{{"a/b~c": {{"{long}": [[1]]}}}}"#);
        let (_, message) = limit_of("depth", parse_json(&text, 3, 100));
        let want = format!("/a~1b~0c/{}…/0", "k".repeat(40));
        assert!(message.contains(&want), "{message}");
    }

    #[tokio::test]
    async fn json_that_is_not_utf8_is_invalid_utf8_with_its_offset() {
        let cases: [(&str, &[u8], &str); 2] = [
            ("latin-1 e-acute", b"{\"a\":\"caf\xE9\"}", "byte 9"),
            ("after a bom", b"\xEF\xBB\xBF\"\xFF\"", "byte 4"),
        ];
        for (row, body, at) in cases {
            let problems = problems_of(row, decode(Some("application/json"), body).await);
            assert_eq!(codes(&problems), ["invalid_utf8"], "{row}");
            assert!(problems[0].message.contains(at), "{row}: {}", problems[0].message);
        }
    }

    #[tokio::test]
    async fn urlencoded_forms_decode_like_a_browser_sends_them() {
        let cases: [(&str, &[u8], Value); 12] = [
            (
                "plus is a space",
                b"full+name=Ada+Lovelace",
                json!({"full name": "Ada Lovelace"}),
            ),
            (
                "percent-20 is a space",
                b"full%20name=Ada%20Lovelace",
                json!({"full name": "Ada Lovelace"}),
            ),
            ("percent-2B is a plus", b"phone=%2B44+20", json!({"phone": "+44 20"})),
            ("utf-8 escapes", b"city=Z%C3%BCrich", json!({"city": "Zürich"})),
            (
                "bad escape stays literal",
                b"a=100%&b=%zz",
                json!({"a": "100%", "b": "%zz"}),
            ),
            (
                "repeated keys become a list in order",
                b"t=b&x=1&t=a&t=c",
                json!({"t": ["b", "a", "c"], "x": "1"}),
            ),
            (
                "key without equals",
                b"subscribe&a=1",
                json!({"subscribe": "", "a": "1"}),
            ),
            ("empty value", b"a=", json!({"a": ""})),
            ("empty pairs are skipped", b"&a=1&&b=2&", json!({"a": "1", "b": "2"})),
            ("only separators", b"&&&", json!({})),
            ("second equals is part of the value", b"q=a=b", json!({"q": "a=b"})),
            ("empty name", b"=v", json!({"": "v"})),
        ];
        for (row, body, want) in cases {
            assert_eq!(decode(Some(FORM), body).await, Ok(want), "{row}");
        }
    }

    #[tokio::test]
    async fn urlencoded_bytes_that_are_not_utf8_name_each_field() {
        let body = b"ok=1&name=%FF&other=caf%E9&%FE%FF=x";
        let problems = problems_of("invalid utf-8", decode(Some(FORM), body).await);
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_deref()).collect();
        assert_eq!(
            fields,
            [Some("fields.name"), Some("fields.other"), Some("fields.%FE%FF")]
        );
        assert_eq!(codes(&problems), ["invalid_utf8"; 3]);
        assert!(problems[0].message.contains("\"name\""), "{}", problems[0].message);
    }

    #[tokio::test]
    async fn the_mdn_html_form_fixture_decodes_to_its_two_fields() {
        let got = decode(Some(FORM), HTML_FORM).await;
        assert_eq!(got, Ok(json!({"field1": "value1", "field2": "value2"})));
    }

    #[tokio::test]
    async fn more_fields_than_the_limit_are_too_many_fields() {
        let form_at_limit = vec!["a=1"; MAX_FIELDS].join("&");
        let form_over = vec!["a=1"; MAX_FIELDS + 1].join("&");
        let part = ("name=\"a\"", None, &b"1"[..]);
        let multipart_at_limit = multipart_body(&vec![part; MAX_FIELDS]);
        let multipart_over = multipart_body(&vec![part; MAX_FIELDS + 1]);
        let mp = multipart_type();
        let cases = [
            ("form at the limit", FORM, form_at_limit.as_bytes(), true),
            ("form over the limit", FORM, form_over.as_bytes(), false),
            (
                "multipart at the limit",
                mp.as_str(),
                multipart_at_limit.as_slice(),
                true,
            ),
            (
                "multipart over the limit",
                mp.as_str(),
                multipart_over.as_slice(),
                false,
            ),
        ];
        for (row, ct, body, ok) in cases {
            let got = decode(Some(ct), body).await;
            if ok {
                let value = got.unwrap_or_else(|e| panic!("{row}: {e}"));
                assert_eq!(value["a"].as_array().map(Vec::len), Some(MAX_FIELDS), "{row}");
            } else {
                let (code, message) = limit_of(row, got);
                assert_eq!(code, "too_many_fields", "{row}");
                assert!(message.contains("more than 1000 fields"), "{row}: {message}");
                let at = if ct == FORM {
                    "field 1001 starts at byte 4000"
                } else {
                    "field 1001 is part 1001"
                };
                assert!(message.contains(at), "{row}: {message}");
            }
        }
    }

    #[tokio::test]
    async fn a_browser_multipart_form_decodes_text_repeated_and_file_parts() {
        let body = multipart_body(&[
            ("name=\"_charset_\"", None, b"UTF-8"),
            ("name=\"email\"", None, b"ada@example.com"),
            ("name=\"city\"", None, "Zürich".as_bytes()),
            ("name=\"topic\"", None, b"sales"),
            ("name=\"message\"", None, b"line one\r\nline two"),
            ("name=\"topic\"", None, b"support"),
            (
                "name=\"brief\"; filename=\"brief.pdf\"",
                Some("application/pdf"),
                b"%PDF-1.4\r\n\x00\xFF binary",
            ),
            ("name=\"logo\"; filename=\"\"", Some("application/octet-stream"), b""),
            ("name=\"notes\"; filename=\"n.txt\"", None, b"abc"),
            ("name=\"empty\"", None, b""),
            ("name=\"typed\"", Some("text/plain; charset=UTF-8"), b"ok"),
        ]);
        let got = decode(Some(&multipart_type()), &body).await;
        let want = json!({
            "_charset_": "UTF-8",
            "email": "ada@example.com",
            "city": "Zürich",
            "topic": ["sales", "support"],
            "message": "line one\r\nline two",
            "brief": {"filename": "brief.pdf", "contentType": "application/pdf", "size": 19},
            "logo": {"filename": "", "contentType": "application/octet-stream", "size": 0},
            "notes": {"filename": "n.txt", "contentType": null, "size": 3},
            "empty": "",
            "typed": "ok",
        });
        assert_eq!(got, Ok(want));
    }

    #[tokio::test]
    async fn a_quoted_boundary_in_any_case_is_accepted() {
        let body = multipart_body(&[("name=\"a\"", None, b"1")]);
        let ct = format!("Multipart/Form-Data; Boundary=\"{BOUNDARY}\"");
        assert_eq!(decode(Some(&ct), &body).await, Ok(json!({"a": "1"})));
    }

    #[tokio::test]
    async fn broken_multipart_bodies_are_invalid_multipart() {
        let good = multipart_body(&[("name=\"a\"", None, b"1"), ("name=\"b\"", None, b"2")]);
        let truncated = &good[..good.len() - 20];
        let lf_only = String::from_utf8(good.clone()).unwrap().replace("\r\n", "\n");
        let nameless = format!("--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
        let other_boundary = good.clone();
        let mp = multipart_type();
        let cases: [(&str, &str, &[u8], &str); 7] = [
            ("no boundary", "multipart/form-data", &good, "no boundary"),
            (
                "empty boundary",
                "multipart/form-data; boundary=\"\"",
                &good,
                "no boundary",
            ),
            ("truncated", &mp, truncated, "incomplete"),
            ("lf line endings", &mp, lf_only.as_bytes(), "incomplete"),
            ("not multipart at all", &mp, b"a=1&b=2", "incomplete"),
            ("part without a name", &mp, nameless.as_bytes(), "part 1 has no name"),
            (
                "boundary does not match",
                "multipart/form-data; boundary=other",
                &other_boundary,
                "incomplete",
            ),
        ];
        for (row, ct, body, needle) in cases {
            let problems = problems_of(row, decode(Some(ct), body).await);
            assert_eq!(codes(&problems), ["invalid_multipart"], "{row}");
            assert!(
                problems[0].message.contains(needle),
                "{row}: {:?} lacks {needle:?}",
                problems[0].message
            );
        }
    }

    #[tokio::test]
    async fn multipart_text_that_is_not_utf8_or_declares_another_charset_is_reported_per_field() {
        let cases: [(&str, Vec<u8>, &str, &str); 3] = [
            (
                "latin-1 bytes",
                multipart_body(&[("name=\"city\"", None, b"Z\xFCrich")]),
                "invalid_utf8",
                "fields.city",
            ),
            (
                "part charset",
                multipart_body(&[("name=\"city\"", Some("text/plain; charset=iso-8859-1"), b"Zurich")]),
                "unsupported_charset",
                "fields.city",
            ),
            (
                "_charset_ field",
                multipart_body(&[
                    ("name=\"_charset_\"", None, b"windows-1252"),
                    ("name=\"a\"", None, b"1"),
                ]),
                "unsupported_charset",
                "fields._charset_",
            ),
        ];
        for (row, body, code, field) in cases {
            let problems = problems_of(row, decode(Some(&multipart_type()), &body).await);
            assert_eq!(codes(&problems), [code], "{row}");
            assert_eq!(problems[0].field.as_deref(), Some(field), "{row}");
        }
    }

    #[tokio::test]
    async fn the_jotform_fixture_decodes_with_raw_request_as_a_json_string() {
        // The fixture is stored with LF line endings; Jotform sends CRLF.
        let body = String::from_utf8(JOTFORM.to_vec()).unwrap().replace('\n', "\r\n");
        let ct = format!("multipart/form-data; boundary={JOTFORM_BOUNDARY}");
        let got = decode(Some(&ct), body.as_bytes()).await.unwrap();
        assert_eq!(got["formID"], "243231271343446");
        assert_eq!(got["submissionID"], "6084250982513018472");
        assert_eq!(got["formTitle"], "Tutor Appointment Form");
        let raw_request = got["rawRequest"].as_str().expect("rawRequest is a string");
        let inner: Value = serde_json::from_str(raw_request).expect("rawRequest holds JSON");
        assert!(inner.is_object(), "rawRequest holds a JSON object: {inner}");
    }

    #[test]
    fn content_type_parameters_are_parsed_leniently() {
        let cases = [
            ("plain", "a/b; x=1; y=2", vec![("x", "1"), ("y", "2")]),
            (
                "quoted with escapes and semicolon",
                r#"a/b; x="p\"q;r" ; y=2"#,
                vec![("x", "p\"q;r"), ("y", "2")],
            ),
            ("names lowercased", "a/b; CharSet=UTF-8", vec![("charset", "UTF-8")]),
            ("no value is skipped", "a/b; flag; x=1;;", vec![("x", "1")]),
            ("unterminated quote", "a/b; x=\"abc", vec![("x", "abc")]),
            ("empty name skipped", "a/b; =1; x=", vec![("x", "")]),
            ("multibyte", "a/b; x=\"ü\"", vec![("x", "ü")]),
        ];
        for (row, raw, want) in cases {
            let media = MediaType::parse(raw).unwrap_or_else(|| panic!("{row}: did not parse"));
            let got: Vec<_> = media.params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(got, want, "{row}");
            assert_eq!(media.essence, "a/b", "{row}");
        }
    }

    #[test]
    fn malformed_errors_are_not_unsupported_and_carry_their_problems() {
        let problems = vec![
            Problem::at("body", "invalid_json", "x"),
            Problem::at("fields.a", "invalid_utf8", "y"),
        ];
        let err = DecodeError::Malformed(problems.clone());
        assert!(!err.is_unsupported());
        assert_eq!(err.problems(), problems);
        assert_eq!(
            err.to_string(),
            "the body could not be decoded: body: x (invalid_json); fields.a: y (invalid_utf8)"
        );
    }

    #[test]
    fn the_decode_future_can_cross_threads() {
        fn assert_send<T: Send>(_: T) {}
        assert_send(decode(Some("application/json"), b"{}"));
    }
}
