//! JSON bodies: structure limits checked by one pass over the bytes before parsing, then serde_json.

use serde_json::Value;

use super::{DecodeError, MAX_JSON_DEPTH, MAX_JSON_VALUES, TOO_DEEP, TOO_MANY_FIELDS, malformed};

pub(super) fn decode_json(body: &[u8]) -> Result<Value, DecodeError> {
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
pub(super) fn parse_json(text: &str, max_depth: usize, max_values: usize) -> Result<Value, DecodeError> {
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
    // Strings are most of a body's bytes: jump to the next quote or backslash (memchr's SIMD search).
    while let Some(offset) = bytes.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
        i += offset;
        match bytes.get(i) {
            Some(b'"') => return i,
            _ => i += 2,
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
