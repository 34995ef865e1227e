//! Content-Type headers: the media type's essence and parameters (RFC 9110 §8.3), read leniently.

/// The lowercased `type/subtype` of a Content-Type header (parameters dropped), or `None` when it
/// has none (blank, or not two tokens): `"Application/JSON; charset=utf-8"` → `application/json`.
pub fn media_type_essence(content_type: &str) -> Option<String> {
    MediaType::parse(content_type.trim()).map(|media| media.essence)
}

/// `utf-8` or `us-ascii` (a subset), any case.
pub(super) fn is_utf8_label(label: &str) -> bool {
    let label = label.trim();
    label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("us-ascii")
}

/// A parsed Content-Type: lowercased `type/subtype` and its parameters (names lowercased).
#[derive(Debug, PartialEq)]
pub(super) struct MediaType {
    pub(super) essence: String,
    pub(super) params: Vec<(String, String)>,
}

impl MediaType {
    /// `None` when there is no `type/subtype` of two non-empty tokens.
    pub(super) fn parse(raw: &str) -> Option<MediaType> {
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
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn is_json(&self) -> bool {
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
