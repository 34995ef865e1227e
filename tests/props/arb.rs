//! Generators: JSON values (small, deep, wide, shaped like provider bodies), content types,
//! form bodies, deliveries.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Keys the normalisers look for, so that random bodies reach past the first shape check.
const PROVIDER_KEYS: &[&str] = &[
    "form_response",
    "answers",
    "definition",
    "fields",
    "hidden",
    "variables",
    "form_id",
    "token",
    "submitted_at",
    "landed_at",
    "field",
    "ref",
    "id",
    "type",
    "title",
    "text",
    "email",
    "choice",
    "choices",
    "labels",
    "number",
    "boolean",
    "date",
    "url",
    "eventId",
    "eventType",
    "createdAt",
    "data",
    "formName",
    "key",
    "label",
    "value",
    "options",
    "name",
    "payload",
    "siteId",
    "formId",
    "submittedAt",
    "rawRequest",
    "formID",
    "submissionID",
    "formTitle",
    "pretty",
    "object",
    "created",
    "amount_total",
    "currency",
    "customer_details",
    "action",
    "sender",
    "repository",
    "events",
    "subscriptionType",
    "objectId",
    "occurredAt",
    "eventId",
    "portalId",
    "propertyName",
    "propertyValue",
    "invoice_id",
];

/// A key: mostly ones providers use, sometimes anything.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(PROVIDER_KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => "q[0-9]{1,2}_[a-z]{1,6}",
    ]
}

/// A scalar: integers (floats do not round-trip exactly through text), strings incl. dates and
/// numbers as text, booleans, null.
pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC{0,20}".prop_map(Value::String),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?Z)?".prop_map(Value::String),
        "[0-9]{1,3}(,[0-9]{3})*(\\.[0-9]{1,2})?".prop_map(Value::String),
        "\\{\\{ ?[a-z.]{0,10} ?\\}\\}".prop_map(Value::String),
    ]
}

/// A JSON value of modest size and depth, shaped like webhook bodies.
pub fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object (what most sources want).
pub fn object() -> impl Strategy<Value = Value> {
    proptest::collection::vec((key(), value()), 0..10)
        .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>()))
}

/// A body: JSON of some kind, a form, or bytes.
#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

pub const BOUNDARY: &str = "----propBoundaryX7q2";

/// Content types: the supported ones (with parameters), near misses and garbage.
pub fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        Just(Some("application/vnd.api+json".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some(format!("multipart/form-data; boundary={BOUNDARY}"))),
        Just(Some("multipart/form-data".to_owned())),
        Just(Some("application/json; charset=latin-1".to_owned())),
        Just(Some("text/plain".to_owned())),
        Just(None),
        "\\PC{0,30}".prop_map(Some),
        "[a-z]{1,8}/[a-z+.-]{1,12}(; [a-z]{1,8}=\"?[^\"]{0,10}\"?){0,3}".prop_map(Some),
    ]
}

/// Urlencoded form pairs, percent-encoded the way browsers do.
pub fn form_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-z]{1,3}|\\PC{0,6}", "\\PC{0,12}"), 0..12)
}

pub fn urlencode(pairs: &[(String, String)]) -> Vec<u8> {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Multipart text parts: names without quotes or line breaks, any text values.
pub fn multipart_parts() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[A-Za-z0-9_. -]{1,10}", "\\PC{0,20}"), 1..8)
}

pub fn multipart(parts: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// What the decoder should make of form fields: repeated names become lists, in order.
pub fn grouped(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in pairs {
        match map.get_mut(name) {
            None => {
                map.insert(name.clone(), Value::String(value.clone()));
            }
            Some(Value::Array(list)) => list.push(Value::String(value.clone())),
            Some(first) => *first = Value::Array(vec![first.take(), Value::String(value.clone())]),
        }
    }
    Value::Object(map)
}

/// `depth` nested arrays around one array of `width` zeros: depth + width - 1 values in all.
pub fn nested_wide(depth: usize, width: usize) -> String {
    let zeros = vec!["0"; width].join(",");
    format!("{}{}{}", "[".repeat(depth), zeros, "]".repeat(depth))
}

/// Any body: valid JSON, JSON objects, forms, multipart, mutated or random bytes, with a content
/// type that usually (not always) fits.
pub fn body() -> impl Strategy<Value = Body> {
    let json = |v: Value| v.to_string().into_bytes();
    prop_oneof![
        3 => object().prop_map(move |v| Body { content_type: Some("application/json".into()), bytes: json(v) }),
        1 => value().prop_map(move |v| Body { content_type: Some("application/json".into()), bytes: json(v) }),
        1 => (1usize..90, 0usize..3).prop_map(|(depth, width)| Body {
            content_type: Some("application/json".into()),
            bytes: nested_wide(depth, width).into_bytes(),
        }),
        1 => form_pairs().prop_map(|pairs| Body {
            content_type: Some("application/x-www-form-urlencoded".into()),
            bytes: urlencode(&pairs),
        }),
        1 => multipart_parts().prop_map(|parts| Body {
            content_type: Some(format!("multipart/form-data; boundary={BOUNDARY}")),
            bytes: multipart(&parts),
        }),
        1 => (object(), proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)).prop_map(
            |(v, edits)| {
                let mut bytes = v.to_string().into_bytes();
                for (at, byte) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                Body { content_type: Some("application/json".into()), bytes }
            }
        ),
        1 => (content_type(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(content_type, bytes)| Body { content_type, bytes }),
    ]
}
