//! Scrubbing by value: every known secret value is replaced by `[redacted]` wherever it appears in
//! bytes or text dealhook stores or logs, as is or in the encodings senders and loggers put it in.
//! Never panics on any input; never keeps a copy of a secret it was not given.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

/// What replaces a secret value (the whole encoded occurrence).
pub const REDACTED: &str = "[redacted]";

/// Secret values shorter than this are not scrubbed by value: a 5-character key would also
/// match innocent text (words, ids) and mangle every dead letter. Such values are still redacted
/// by name (headers, query parameters); `check --secret` and the cold start warn about them.
pub const MIN_SCRUBBED_LEN: usize = 8;

/// How many values the process-wide registry keeps ([`remember`]); the oldest go first. Each
/// secret rotation or OAuth access token adds a few, so this covers days of a warm function.
pub const MAX_REMEMBERED: usize = 256;

/// A set of secret values to take out of text.
///
/// An occurrence is matched byte by byte, where each byte of the value may appear as:
/// - itself;
/// - percent-encoded, `%XX` in either hex case, or `+` for a space (form encoding), or twice
///   percent-encoded (`%25XX`: a URL inside a URL's query);
/// - JSON-escaped: `\/`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, or `\u00XX` for ASCII bytes;
///   and `"`, `/`, `\` escaped twice (JSON quoted in JSON, a `Debug` string in a JSON log line);
///
/// so any mix of these is found (a `?token=` URL JSON-encoded in a Jotform body, a value in a JSON
/// log line). Base64 forms are not searched: base64 of a value depends on the bytes before it, so
/// only a whole base64-encoded credential could be found, and no sender or log puts one there
/// (an `Authorization: Basic` header is redacted by name). A value's non-ASCII characters are also
/// found `\u`-escaped, all of them in one hex case (`\u00e9`, or a surrogate pair beyond U+FFFF),
/// as PHP and Python write JSON by default; a value whose characters are escaped in mixed ways is not.
///
/// Values shorter than [`MIN_SCRUBBED_LEN`] bytes are ignored. Matching is case-sensitive (secrets
/// are), except for hex digits in escapes.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Longest first, so that a value containing another is taken out whole.
    needles: Vec<Box<[u8]>>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber").field("values", &self.needles.len()).finish()
    }
}

impl Scrubber {
    /// A scrubber for `values` (those shorter than [`MIN_SCRUBBED_LEN`] are dropped, duplicates merged).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Scrubber {
        let mut needles: Vec<Box<[u8]>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SCRUBBED_LEN)
            .flat_map(|v| {
                // A value with non-ASCII characters is also looked for with them `\u`-escaped, as
                // PHP's json_encode and Python's json.dumps write them by default (either hex case).
                let escaped =
                    (!v.is_ascii()).then(|| [json_escape_non_ascii(v, false), json_escape_non_ascii(v, true)]);
                std::iter::once(Box::from(v.as_bytes()))
                    .chain(escaped.into_iter().flatten().map(|e| Box::from(e.into_bytes())))
            })
            .collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Scrubber { needles }
    }

    /// True when there is nothing to scrub (then every call returns its input untouched, at once).
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `bytes` with every occurrence replaced by [`REDACTED`]; borrowed when there was none.
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut scratch = Scratch::default();
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            let found = self.needles.iter().find_map(|n| scratch.match_at(bytes, i, n));
            match found {
                Some(end) => {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
                    out.extend_from_slice(bytes.get(copied..i).unwrap_or_default());
                    out.extend_from_slice(REDACTED.as_bytes());
                    copied = end;
                    i = end.max(i + 1);
                }
                None => i += 1,
            }
        }
        match out {
            None => Cow::Borrowed(bytes),
            Some(mut out) => {
                out.extend_from_slice(bytes.get(copied..).unwrap_or_default());
                Cow::Owned(out)
            }
        }
    }

    /// `text` with every occurrence replaced by [`REDACTED`]; borrowed when there was none.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // A match starts at a character's first byte or an ASCII escape and ends after a whole
            // character, so this stays UTF-8; lossy only to never panic.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Scrubs every string and every object key in `value`, in place. True when anything changed.
    pub fn scrub_json(&self, value: &mut Value) -> bool {
        if self.is_empty() {
            return false;
        }
        match value {
            Value::String(s) => match self.scrub_str(s) {
                Cow::Borrowed(_) => false,
                Cow::Owned(clean) => {
                    *s = clean;
                    true
                }
            },
            Value::Array(items) => items.iter_mut().fold(false, |changed, v| self.scrub_json(v) | changed),
            Value::Object(map) => {
                let mut changed = false;
                let old = std::mem::take(map);
                for (key, mut v) in old {
                    changed |= self.scrub_json(&mut v);
                    let key = match self.scrub_str(&key) {
                        Cow::Borrowed(_) => key,
                        Cow::Owned(clean) => {
                            changed = true;
                            clean
                        }
                    };
                    map.insert(key, v);
                }
                changed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
}

/// Reusable buffers for the matcher, so that scanning allocates nothing per position.
#[derive(Default)]
struct Scratch {
    now: Vec<usize>,
    next: Vec<usize>,
}

impl Scratch {
    /// Where an encoded occurrence of `needle` starting at `start` ends (the furthest end when
    /// several encodings match), or `None`.
    fn match_at(&mut self, hay: &[u8], start: usize, needle: &[u8]) -> Option<usize> {
        let (&first, _) = needle.split_first()?;
        // The cheap test that rejects almost every position.
        let head = *hay.get(start)?;
        if head != first && head != b'%' && head != b'\\' && !(first == b' ' && head == b'+') {
            return None;
        }
        self.now.clear();
        self.now.push(start);
        for &byte in needle {
            self.next.clear();
            for &at in &self.now {
                for end in encodings_at(hay, at, byte).into_iter().flatten() {
                    if !self.next.contains(&end) {
                        self.next.push(end);
                    }
                }
            }
            if self.next.is_empty() {
                return None;
            }
            std::mem::swap(&mut self.now, &mut self.next);
        }
        self.now.iter().copied().max()
    }
}

/// The ends of every encoding of `byte` that starts at `at` in `hay` (see [`Scrubber`]).
fn encodings_at(hay: &[u8], at: usize, byte: u8) -> [Option<usize>; 5] {
    let get = |i: usize| hay.get(at + i).copied();
    let mut ends = [None; 5];
    if get(0) == Some(byte) || (byte == b' ' && get(0) == Some(b'+')) {
        ends[0] = Some(at + 1);
    }
    if get(0) == Some(b'%') {
        if hex_byte(get(1), get(2)) == Some(byte) {
            ends[1] = Some(at + 3);
        }
        if hex_byte(get(1), get(2)) == Some(b'%') && hex_byte(get(3), get(4)) == Some(byte) {
            ends[2] = Some(at + 5);
        }
    }
    if get(0) == Some(b'\\') {
        let short = match byte {
            b'/' | b'"' | b'\\' => Some(byte),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            _ => None,
        };
        if short.is_some() && get(1) == short {
            ends[3] = Some(at + 2);
        } else if byte.is_ascii()
            && get(1) == Some(b'u')
            && hex_byte(get(2), get(3)) == Some(0)
            && hex_byte(get(4), get(5)) == Some(byte)
        {
            ends[3] = Some(at + 6);
        }
        // Escaped twice (JSON in JSON, or a Debug string in a JSON log line): `\\\"`, `\\\/`, `\\\\`.
        let twice: &[u8] = match byte {
            b'"' => b"\\\\\\\"",
            b'/' => b"\\\\\\/",
            b'\\' => b"\\\\\\\\",
            _ => b"",
        };
        if !twice.is_empty() && hay.get(at..at + twice.len()) == Some(twice) {
            ends[4] = Some(at + twice.len());
        }
    }
    ends
}

/// `value` with every non-ASCII character as a JSON `\uXXXX` escape (UTF-16, so characters beyond
/// U+FFFF become a surrogate pair), in upper- or lower-case hex.
fn json_escape_non_ascii(value: &str, upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            if upper {
                out.push_str(&format!("\\u{unit:04X}"));
            } else {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn hex_byte(high: Option<u8>, low: Option<u8>) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    Some(digit(high?)? * 16 + digit(low?)?)
}

// ---- the process-wide registry ---------------------------------------------------------------

/// Every secret value this process has read (or obtained, such as OAuth access tokens), oldest
/// first, and the scrubber built from them.
#[derive(Default)]
struct Known {
    values: VecDeque<Box<str>>,
    scrubber: Arc<Scrubber>,
}

fn known() -> &'static RwLock<Known> {
    static KNOWN: OnceLock<RwLock<Known>> = OnceLock::new();
    KNOWN.get_or_init(RwLock::default)
}

/// Adds secret values to the process-wide set that [`known_secrets`] scrubs (log lines, dead
/// letters). The secrets cache calls it on every read; anything else that obtains a secret (an
/// OAuth access token from a refresh) must call it before the value can reach a log or a letter.
/// Values already known cost a lookup; short ones ([`MIN_SCRUBBED_LEN`]) are ignored. Old values
/// are kept (a rotated-out key is still a secret) up to [`MAX_REMEMBERED`].
pub fn remember<'a>(values: impl IntoIterator<Item = &'a str>) {
    let fresh: Vec<&str> = {
        let known = known().read().unwrap_or_else(|e| e.into_inner());
        values
            .into_iter()
            .filter(|v| v.len() >= MIN_SCRUBBED_LEN && !known.values.iter().any(|k| &**k == *v))
            .collect()
    };
    if fresh.is_empty() {
        return;
    }
    let mut known = known().write().unwrap_or_else(|e| e.into_inner());
    for value in fresh {
        if !known.values.iter().any(|k| &**k == value) {
            known.values.push_back(Box::from(value));
        }
    }
    while known.values.len() > MAX_REMEMBERED {
        known.values.pop_front();
    }
    known.scrubber = Arc::new(Scrubber::new(known.values.iter().map(|v| &**v)));
}

/// The scrubber for every value [`remember`]ed so far (empty, and free to use, before any).
pub fn known_secrets() -> Arc<Scrubber> {
    Arc::clone(&known().read().unwrap_or_else(|e| e.into_inner()).scrubber)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y/with+odd\"chars and space";

    fn scrub(values: &[&str], text: &str) -> String {
        Scrubber::new(values.iter().copied()).scrub_str(text).into_owned()
    }

    /// Every encoding of a value the scrubber is meant to find, each in some surrounding text.
    #[test]
    fn each_encoding_of_a_value_is_redacted() {
        let percent_upper: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
        let percent_lower: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
        let form = percent_encoding::utf8_percent_encode(KEY, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%20", "+");
        let double = percent_encoding::utf8_percent_encode(
            &percent_encoding::utf8_percent_encode(KEY, percent_encoding::NON_ALPHANUMERIC).to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let json = serde_json::to_string(KEY).unwrap();
        let json_slash = json.replace('/', "\\/");
        let json_unicode: String = KEY.bytes().map(|b| format!("\\u{:04x}", b)).collect();
        let json_of_url = serde_json::to_string(&format!("https://x.test/h?token={form}")).unwrap();
        let cases: Vec<(&str, String)> = vec![
            ("as is", KEY.to_owned()),
            ("percent, upper hex", percent_upper),
            ("percent, lower hex", percent_lower),
            ("form encoding, + for space", form),
            ("percent-encoded twice", double),
            ("JSON string", json),
            ("JSON with \\/", json_slash),
            ("JSON \\u00XX", json_unicode),
            (
                "JSON in JSON",
                serde_json::to_string(&serde_json::to_string(KEY).unwrap()).unwrap(),
            ),
            ("Debug in JSON", serde_json::to_string(&format!("{KEY:?}")).unwrap()),
            ("a form-encoded URL in JSON", json_of_url),
        ];
        for (row, encoded) in cases {
            let text = format!("before {encoded} after");
            let got = scrub(&[KEY], &text);
            assert!(got.contains(REDACTED), "{row}: {got}");
            assert!(got.starts_with("before ") && got.ends_with(" after"), "{row}: {got}");
            assert!(!got.contains("k3y"), "{row}: {got}");
        }
    }

    #[test]
    fn a_mix_of_encodings_in_one_occurrence_is_found() {
        // The `/` JSON-escaped, the `+` percent-encoded, the space as `+`, the rest literal.
        let text = r#"{"u":"k3y\/with%2Bodd\"chars+and%20space"}"#;
        assert_eq!(scrub(&[KEY], text), r#"{"u":"[redacted]"}"#);
    }

    #[test]
    fn text_without_a_known_value_is_returned_untouched_and_borrowed() {
        let scrubber = Scrubber::new(["secret-value-1"]);
        for text in [
            "",
            "secret-value",
            "SECRET-VALUE-1",
            "secret-value-2",
            "%",
            "\\u00",
            "%2",
            "\\",
        ] {
            assert!(
                matches!(scrubber.scrub_str(text), Cow::Borrowed(_)),
                "{text:?} was changed"
            );
        }
        assert!(matches!(Scrubber::default().scrub_bytes(b"anything"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_are_not_scrubbed_and_the_floor_is_inclusive() {
        let short = "a".repeat(MIN_SCRUBBED_LEN - 1);
        let floor = "b".repeat(MIN_SCRUBBED_LEN);
        let scrubber = Scrubber::new([short.as_str(), floor.as_str()]);
        assert_eq!(scrubber.scrub_str(&short), short);
        assert_eq!(scrubber.scrub_str(&floor), REDACTED);
        assert!(Scrubber::new(["1234567"]).is_empty());
    }

    #[test]
    fn every_occurrence_and_every_value_is_redacted_longest_first() {
        let text = "a=secret-one&b=secret-one-longer&c=secret-two secret-one";
        assert_eq!(
            scrub(&["secret-one", "secret-two", "secret-one-longer"], text),
            "a=[redacted]&b=[redacted]&c=[redacted] [redacted]"
        );
    }

    #[test]
    fn adjacent_and_overlapping_occurrences_leave_no_fragment() {
        assert_eq!(scrub(&["abababab"], "abababababababab"), "[redacted][redacted]");
        assert_eq!(scrub(&["abababab"], "ababababab"), "[redacted]ab");
    }

    #[test]
    fn values_with_escape_characters_themselves_are_found() {
        for value in ["100%pure%25x", "back\\slash\\\\", "plus+plus+"] {
            let json = serde_json::to_string(value).unwrap();
            let form = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
            for text in [value.to_owned(), json.clone(), form] {
                let got = scrub(&[value], &text);
                assert!(
                    !got.contains("pure") && !got.contains("slash") && !got.contains("plus"),
                    "{value}: {got}"
                );
            }
        }
    }

    #[test]
    fn non_ascii_values_are_found_literally_and_percent_encoded() {
        let value = "clé-secrète-ü";
        let encoded = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(scrub(&[value], &format!("x {value} y")), "x [redacted] y");
        assert_eq!(scrub(&[value], &format!("x {encoded} y")), "x [redacted] y");
        // The result is UTF-8 even when a non-ASCII neighbour touches the match.
        assert_eq!(scrub(&[value], &format!("é{value}é")), "é[redacted]é");
    }

    #[test]
    fn non_ascii_values_are_found_with_their_characters_u_escaped() {
        // The review's input: a Jotform key with an accent, inside a body PHP json_encode'd.
        let key = "Tokénwithaccent123";
        let rows = [
            ("lower-case \\u", "{\"rawRequest\":\"?token=Tok\\u00e9nwithaccent123\"}"),
            ("upper-case \\u", "{\"rawRequest\":\"?token=Tok\\u00E9nwithaccent123\"}"),
            ("as is", "{\"rawRequest\":\"?token=Tokénwithaccent123\"}"),
        ];
        for (name, text) in rows {
            assert_eq!(scrub(&[key], text), "{\"rawRequest\":\"?token=[redacted]\"}", "{name}");
        }
        // Beyond U+FFFF: a surrogate pair.
        let astral = "key-with-\u{1F511}-emoji";
        assert_eq!(scrub(&[astral], "x key-with-\\ud83d\\udd11-emoji y"), "x [redacted] y");
        assert_eq!(json_escape_non_ascii("aé\u{1F511}", false), "a\\u00e9\\ud83d\\udd11");
    }

    #[test]
    fn json_values_are_scrubbed_in_strings_and_keys_and_nothing_else_changes() {
        let scrubber = Scrubber::new(["hidden-value-9"]);
        let mut value = serde_json::json!({
            "url": "https://x.test/?token=hidden-value-9",
            "hidden-value-9": [1, true, null, "ok", {"deep": "a hidden-value-9 b"}],
        });
        assert!(scrubber.scrub_json(&mut value));
        assert_eq!(
            value,
            serde_json::json!({
                "url": "https://x.test/?token=[redacted]",
                "[redacted]": [1, true, null, "ok", {"deep": "a [redacted] b"}],
            })
        );
        assert!(!scrubber.scrub_json(&mut value), "nothing left to change");
    }

    #[test]
    fn hostile_inputs_neither_panic_nor_take_long() {
        let scrubber = Scrubber::new(["%%%%%%%%", "\\\\\\\\\\\\\\\\", "++++++++", "        "]);
        let hay: Vec<u8> = b"%25%2525\\\\\\u005c++%20"
            .iter()
            .cycle()
            .take(200_000)
            .copied()
            .collect();
        let started = std::time::Instant::now();
        let _ = scrubber.scrub_bytes(&hay);
        let _ = scrubber.scrub_bytes(&[0xff, 0xfe, b'%', b'\\', b'u']);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_megabyte_without_secrets_is_scanned_quickly() {
        let scrubber = Scrubber::new(["pat-na1-0000-secret", "whsec_abcdefgh", "jotform-token-1"]);
        let body = "name=Ada+Lovelace&email=ada%40example.com&".repeat(25_000);
        let started = std::time::Instant::now();
        assert!(matches!(scrubber.scrub_str(&body), Cow::Borrowed(_)));
        // Generous for debug builds on a shared machine; a release build takes a few milliseconds.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_registry_scrubs_what_it_was_told_and_keeps_old_values() {
        let old = format!("rotated-out-{}", uuid::Uuid::new_v4());
        let new = format!("rotated-in-{}", uuid::Uuid::new_v4());
        remember([old.as_str(), "short"]);
        remember([new.as_str()]);
        remember([new.as_str()]);
        let scrubber = known_secrets();
        assert_eq!(
            scrubber.scrub_str(&format!("{old} {new} short")),
            "[redacted] [redacted] short"
        );
    }

    #[test]
    fn debug_output_shows_no_value() {
        let shown = format!("{:?}", Scrubber::new(["visible-if-leaked"]));
        assert!(!shown.contains("visible"), "{shown}");
    }
}
