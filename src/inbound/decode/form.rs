//! Form bodies: `application/x-www-form-urlencoded` and `multipart/form-data` (multer), as one JSON
//! object of fields; repeated names become lists.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::FutureExt as _;
use percent_encoding::percent_decode;
use serde_json::map::Entry;
use serde_json::{Map, Value, json};

use super::{DecodeError, MAX_ECHOED_CONTENT_TYPE, MAX_FIELDS, MediaType, TOO_MANY_FIELDS, is_utf8_label, malformed};
use crate::domain::Problem;

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

pub(super) fn decode_urlencoded(body: &[u8]) -> Result<Value, DecodeError> {
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

pub(super) async fn decode_multipart(boundary: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
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
