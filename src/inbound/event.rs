//! Lambda events → [`Delivery`], by our own fallible code: every event, whatever its fields hold, becomes
//! a Delivery or a named [`MalformedEvent`] (answered `400 malformed_request`). Nothing here can panic.
//!
//! Why not `lambda_http`: its conversion to an `http::Request` panics on input real senders produce (a raw
//! space in `rawQueryString`, a `Host` or `X-Forwarded-Proto` the `url` crate rejects, a body flagged
//! base64 that is not), and rejects a whole event for one header `http` cannot hold. Here the event is read
//! as JSON and each field taken with fallible code.
//!
//! Shapes read (API Gateway and Lambda documentation, "payload format version"):
//! - `version: "2.0"` (HTTP API payload 2.0 and Lambda function URLs): `rawPath`, `rawQueryString`,
//!   `headers` (repeated headers comma-joined), `cookies`, `requestContext.http.method`, `body`,
//!   `isBase64Encoded`. Without a `version`, an event with `rawPath` or `requestContext.http` is read so too.
//! - `version: "1.0"` or none with `httpMethod` (REST API; HTTP API payload 1.0): `httpMethod`,
//!   `requestContext.path` (the path the sender called, stage included) or `path`, `headers` and
//!   `multiValueHeaders`, `multiValueQueryStringParameters` or `queryStringParameters` (already decoded by
//!   API Gateway), `body`, `isBase64Encoded`.
//! - Anything else (another `version`, no HTTP shape, not an object) is [`LambdaEvent::Unrecognised`].
//!   Queue mode adds its SQS event here as one more variant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::Delivery;

/// The invocation an event came with: what the Lambda runtime tells about it, apart from the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The Lambda request id (`Lambda-Runtime-Aws-Request-Id`); empty when not running under Lambda.
    pub request_id: String,
    /// When the invocation times out; `None` outside Lambda (see [`Invocation::from_lambda`]).
    pub deadline: Option<SystemTime>,
    /// The X-Ray trace header value (`Lambda-Runtime-Trace-Id`, else `_X_AMZN_TRACE_ID`), when tracing is on.
    pub xray_trace_id: Option<String>,
}

impl Invocation {
    /// A local run (`dealhook invoke`, tests): no request id, no deadline, no trace.
    pub fn local() -> Invocation {
        Invocation::default()
    }

    /// From the runtime's context. Its deadline is epoch milliseconds; anything before 2020 is not one
    /// (the `cargo lambda` emulator sends the timeout itself, `600000`; 0 means none) and is ignored.
    pub fn from_lambda(context: &lambda_runtime::Context) -> Invocation {
        Invocation {
            request_id: context.request_id.clone(),
            deadline: invocation_deadline(context.deadline),
            xray_trace_id: context
                .xray_trace_id
                .clone()
                .filter(|id| !id.is_empty())
                .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok().filter(|id| !id.is_empty())),
        }
    }

    /// The span an invocation's lines are logged in: `request_id` (the Lambda one, else `request_id`: API
    /// Gateway's or a local one) and `xray_trace_id`, which every line logged inside carries as
    /// `requestId` and `xray_trace_id` (see [`crate::telemetry`]).
    pub fn span(&self, request_id: &str) -> tracing::Span {
        let request_id = Some(self.request_id.as_str())
            .filter(|id| !id.is_empty())
            .unwrap_or(request_id);
        tracing::info_span!(
            "invocation",
            request_id = %request_id,
            xray_trace_id = self.xray_trace_id.as_deref()
        )
    }
}

/// Epoch milliseconds as a deadline, when plausible (see [`Invocation::from_lambda`]).
pub(crate) fn invocation_deadline(epoch_ms: u64) -> Option<SystemTime> {
    const JANUARY_2020_MS: u64 = 1_577_836_800_000;
    if epoch_ms < JANUARY_2020_MS {
        tracing::debug!(epoch_ms, "the invocation deadline is not an epoch time; ignored");
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_millis(epoch_ms))
}

/// Why an event could not become a Delivery. The message names the field and the rule, never a value
/// (a header or query value may be a credential): it is sent back in the `400` body and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct MalformedEvent {
    /// The event field, e.g. `requestContext.http.method` or `headers.x-hubspot-signature-v3`.
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

impl MalformedEvent {
    fn new(field: impl Into<String>, rule: impl Into<String>) -> MalformedEvent {
        MalformedEvent {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// The shape the front door expects the response in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// REST API and HTTP API payload 1.0: `statusCode`, `headers` (empty), `multiValueHeaders`, `body`,
    /// `isBase64Encoded`. `headers` stays empty because API Gateway merges both maps (duplicates otherwise).
    ApiGatewayV1,
    /// HTTP API payload 2.0 and function URLs: `statusCode`, `headers`, `multiValueHeaders` (empty),
    /// `cookies`, `body`, `isBase64Encoded`.
    ApiGatewayV2,
    /// Unknown sender: `statusCode`, `headers`, `body`, `isBase64Encoded`, which every HTTP front door reads.
    Plain,
}

impl ResponseFormat {
    /// The Lambda response JSON for `response` (a UTF-8 text body). Repeated header values are
    /// comma-joined where the format has one value per name. Same shapes `lambda_http` 1.3 produced.
    pub fn render(self, response: &http::Response<String>) -> Value {
        let status = response.status().as_u16();
        let headers = response.headers();
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        let single = || -> Map<String, Value> {
            headers
                .keys()
                .map(|name| {
                    let joined: Vec<String> = headers.get_all(name).iter().map(text).collect();
                    (name.as_str().to_owned(), Value::String(joined.join(", ")))
                })
                .collect()
        };
        let body = response.body().clone();
        match self {
            ResponseFormat::ApiGatewayV1 => {
                let multi: Map<String, Value> = headers
                    .keys()
                    .map(|name| {
                        let values: Vec<Value> = headers.get_all(name).iter().map(|v| text(v).into()).collect();
                        (name.as_str().to_owned(), Value::Array(values))
                    })
                    .collect();
                json!({ "statusCode": status, "headers": {}, "multiValueHeaders": multi, "body": body,
                        "isBase64Encoded": false })
            }
            ResponseFormat::ApiGatewayV2 => {
                json!({ "statusCode": status, "headers": single(), "multiValueHeaders": {}, "body": body,
                        "isBase64Encoded": false, "cookies": [] })
            }
            ResponseFormat::Plain => {
                json!({ "statusCode": status, "headers": single(), "body": body, "isBase64Encoded": false })
            }
        }
    }
}

/// One Lambda event, read.
#[derive(Debug)]
pub enum LambdaEvent {
    /// An HTTP request from API Gateway or a function URL (boxed: it is most of the enum's size).
    Http(Box<HttpEvent>),
    /// Not an event this function serves (another payload version, no HTTP shape): answered `400` in
    /// [`ResponseFormat::Plain`].
    Unrecognised(MalformedEvent),
}

/// An HTTP event: how to answer it, and the Delivery (or why there is none).
#[derive(Debug)]
pub struct HttpEvent {
    /// The response shape its front door expects.
    pub format: ResponseFormat,
    /// The request id for the answer and the logs: the Lambda one, else API Gateway's, else a local one.
    pub request_id: String,
    /// The delivery, or the field that made it unusable.
    pub delivery: Result<Delivery, MalformedEvent>,
}

impl LambdaEvent {
    /// Reads `event`. Never fails: an unusable event is a [`MalformedEvent`] inside the result.
    pub fn parse(event: &Value, invocation: &Invocation, received_at: DateTime<Utc>) -> LambdaEvent {
        let Some(object) = event.as_object() else {
            return LambdaEvent::Unrecognised(MalformedEvent::new("event", "is not a JSON object"));
        };
        let format = match object.get("version") {
            Some(Value::String(v)) if v == "2.0" => ResponseFormat::ApiGatewayV2,
            Some(Value::String(v)) if v == "1.0" => ResponseFormat::ApiGatewayV1,
            None | Some(Value::Null)
                if object.contains_key("httpMethod") || event.pointer("/requestContext/httpMethod").is_some() =>
            {
                ResponseFormat::ApiGatewayV1
            }
            None | Some(Value::Null)
                if object.contains_key("rawPath") || event.pointer("/requestContext/http").is_some() =>
            {
                ResponseFormat::ApiGatewayV2
            }
            None | Some(Value::Null) => {
                return LambdaEvent::Unrecognised(MalformedEvent::new(
                    "event",
                    "is not an API Gateway or function URL event (no `version`, `httpMethod` or `rawPath`)",
                ));
            }
            Some(_) => {
                return LambdaEvent::Unrecognised(MalformedEvent::new(
                    "version",
                    "this payload format version is not supported (1.0 or 2.0)",
                ));
            }
        };
        let request_id = request_id(event, invocation);
        let delivery = match format {
            ResponseFormat::ApiGatewayV1 => read_v1(object, event),
            _ => read_v2(object, event),
        }
        .map(|parts| Delivery {
            request_id: request_id.clone(),
            received_at,
            deadline: invocation.deadline,
            method: parts.method,
            path: parts.path,
            query: parts.query,
            headers: parts.headers,
            body: parts.body,
            redelivery: None,
        });
        LambdaEvent::Http(Box::new(HttpEvent {
            format,
            request_id,
            delivery,
        }))
    }
}

impl Delivery {
    /// The Delivery an HTTP event carries, or why there is none (an unrecognised event included).
    pub fn from_event(
        event: &Value,
        invocation: &Invocation,
        received_at: DateTime<Utc>,
    ) -> Result<Delivery, MalformedEvent> {
        match LambdaEvent::parse(event, invocation, received_at) {
            LambdaEvent::Http(http) => http.delivery,
            LambdaEvent::Unrecognised(why) => Err(why),
        }
    }
}

/// The Lambda request id, else API Gateway's `requestContext.requestId`, else `local-<uuid>`.
fn request_id(event: &Value, invocation: &Invocation) -> String {
    if !invocation.request_id.is_empty() {
        return invocation.request_id.clone();
    }
    event
        .pointer("/requestContext/requestId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("local-{}", uuid::Uuid::new_v4()), str::to_owned)
}

/// The request part of a Delivery.
struct Parts {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
}

fn read_v2(object: &Map<String, Value>, event: &Value) -> Result<Parts, MalformedEvent> {
    let method = method(event, &["/requestContext/http/method"], "requestContext.http.method")?;
    let path = first_string(event, &["/rawPath", "/requestContext/http/path"], "rawPath")?;
    let query = match object.get("rawQueryString") {
        // Kept exactly as the sender wrote it: URL-signing schemes sign these bytes.
        Some(Value::String(raw)) => Some(raw.clone()),
        None | Some(Value::Null) => canonical_query(object.get("queryStringParameters"), "queryStringParameters")?,
        Some(_) => return Err(MalformedEvent::new("rawQueryString", "is not a string")),
    }
    .filter(|q| !q.is_empty());
    let mut headers = HeaderMap::new();
    let mut skipped = 0;
    add_single_value_headers(&mut headers, object, |_| false, &mut skipped)?;
    add_cookies(&mut headers, object.get("cookies"))?;
    log_skipped(skipped);
    Ok(Parts {
        method,
        path,
        query,
        headers,
        body: body(object)?,
    })
}

fn read_v1(object: &Map<String, Value>, event: &Value) -> Result<Parts, MalformedEvent> {
    let method = method(event, &["/httpMethod", "/requestContext/httpMethod"], "httpMethod")?;
    let path = first_string(event, &["/requestContext/path", "/path"], "path")?;
    // The multi-value map holds every value; the single-value one only the last of each name.
    let multi = object_field(object, "multiValueQueryStringParameters")?;
    let query = if multi.is_empty() {
        canonical_query(object.get("queryStringParameters"), "queryStringParameters")?
    } else {
        canonical_query(
            object.get("multiValueQueryStringParameters"),
            "multiValueQueryStringParameters",
        )?
    };
    // multiValueHeaders holds every value; `headers` only the last of each name. A name only in
    // `headers` (hand-built events) is taken from there.
    let mut headers = HeaderMap::new();
    let mut skipped = 0;
    let multi = object_field(object, "multiValueHeaders")?;
    for (name, values) in multi {
        match values {
            Value::Null => {}
            Value::Array(values) => {
                for value in values {
                    let Value::String(value) = value else {
                        return Err(malformed_header(name, "holds a value that is not a string"));
                    };
                    add_header(&mut headers, name, value, &mut skipped)?;
                }
            }
            _ => return Err(malformed_header(name, "is not a list of strings")),
        }
    }
    let in_multi = |name: &str| multi.keys().any(|m| m.eq_ignore_ascii_case(name));
    add_single_value_headers(&mut headers, object, in_multi, &mut skipped)?;
    log_skipped(skipped);
    Ok(Parts {
        method,
        path,
        query,
        headers,
        body: body(object)?,
    })
}

/// Adds the event's `headers` (one string per name) to `headers`, but for the names `skip` says are
/// already there. A name HTTP cannot carry is counted in `skipped`; a value that is not a string or
/// that HTTP cannot carry is malformed (see [`add_header`]).
fn add_single_value_headers(
    headers: &mut HeaderMap,
    object: &Map<String, Value>,
    skip: impl Fn(&str) -> bool,
    skipped: &mut usize,
) -> Result<(), MalformedEvent> {
    for (name, value) in object_field(object, "headers")? {
        match value {
            _ if skip(name) => {}
            Value::Null => {}
            Value::String(value) => add_header(headers, name, value, skipped)?,
            _ => return Err(malformed_header(name, "is not a string")),
        }
    }
    Ok(())
}

static NO_FIELDS: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// An object field; absent or `null` is empty.
fn object_field<'e>(object: &'e Map<String, Value>, field: &str) -> Result<&'e Map<String, Value>, MalformedEvent> {
    match object.get(field) {
        Some(Value::Object(map)) => Ok(map),
        None | Some(Value::Null) => Ok(&NO_FIELDS),
        Some(_) => Err(MalformedEvent::new(field, "is not an object")),
    }
}

fn method(event: &Value, pointers: &[&str], field: &str) -> Result<Method, MalformedEvent> {
    let name = first_string(event, pointers, field)?;
    Method::from_bytes(name.as_bytes()).map_err(|_| MalformedEvent::new(field, "is not an HTTP method"))
}

/// The first of `pointers` that holds a string; `field` names it when none does.
fn first_string(event: &Value, pointers: &[&str], field: &str) -> Result<String, MalformedEvent> {
    for pointer in pointers {
        match event.pointer(pointer) {
            Some(Value::String(s)) => return Ok(s.clone()),
            None | Some(Value::Null) => {}
            // Named by where it is (`requestContext.path`), not by the field's short name.
            Some(_) => {
                let at = pointer.trim_start_matches('/').replace('/', ".");
                return Err(MalformedEvent::new(at, "is not a string"));
            }
        }
    }
    Err(MalformedEvent::new(field, "is missing"))
}

/// Adds one header. A name that is not an HTTP field name is skipped (counted): no scheme or source reads
/// such a header, so dropping it cannot change a verdict. A valid name whose value HTTP cannot carry
/// (control characters) makes the event malformed: skipping it could hide, say, a second signature header.
fn add_header(headers: &mut HeaderMap, name: &str, value: &str, skipped: &mut usize) -> Result<(), MalformedEvent> {
    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
        *skipped += 1;
        return Ok(());
    };
    let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
        malformed_header(
            name.as_str(),
            "holds a character a header cannot carry (a control character)",
        )
    })?;
    headers.append(name, value);
    Ok(())
}

fn malformed_header(name: &str, rule: &str) -> MalformedEvent {
    // Only a valid header name is echoed; anything else could be arbitrary text from the sender.
    let shown =
        HeaderName::from_bytes(name.as_bytes()).map_or_else(|_| "(an invalid name)".to_owned(), |n| n.to_string());
    MalformedEvent::new(format!("headers.{shown}"), rule)
}

fn log_skipped(skipped: usize) {
    if skipped > 0 {
        tracing::warn!(skipped, "headers whose names are not HTTP field names were ignored");
    }
}

/// HTTP API 2.0 passes cookies apart from `headers`: they become one `cookie` header, `; `-joined.
fn add_cookies(headers: &mut HeaderMap, cookies: Option<&Value>) -> Result<(), MalformedEvent> {
    let cookies = match cookies {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(cookies)) => cookies,
        Some(_) => return Err(MalformedEvent::new("cookies", "is not a list of strings")),
    };
    let mut all = Vec::with_capacity(cookies.len());
    for cookie in cookies {
        let Value::String(cookie) = cookie else {
            return Err(MalformedEvent::new("cookies", "holds a value that is not a string"));
        };
        all.push(cookie.as_str());
    }
    if all.is_empty() {
        return Ok(());
    }
    let value = HeaderValue::from_bytes(all.join("; ").as_bytes()).map_err(|_| {
        MalformedEvent::new(
            "cookies",
            "holds a character a header cannot carry (a control character)",
        )
    })?;
    headers.append(http::header::COOKIE, value);
    Ok(())
}

/// `body`, decoded from base64 when `isBase64Encoded` says so (standard alphabet, padded, as API Gateway
/// and function URLs encode).
fn body(object: &Map<String, Value>) -> Result<bytes::Bytes, MalformedEvent> {
    let encoded = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(MalformedEvent::new("isBase64Encoded", "is not true or false")),
    };
    let text = match object.get("body") {
        None | Some(Value::Null) => return Ok(bytes::Bytes::new()),
        Some(Value::String(text)) => text,
        Some(_) => return Err(MalformedEvent::new("body", "is not a string")),
    };
    if !encoded {
        return Ok(bytes::Bytes::from(text.clone().into_bytes()));
    }
    BASE64
        .decode(text)
        .map(bytes::Bytes::from)
        .map_err(|_| MalformedEvent::new("body", "is flagged isBase64Encoded but is not base64"))
}

/// Characters kept as they are in a rebuilt query: RFC 3986's unreserved set. Everything else is
/// %-encoded from UTF-8 with upper-case hex, a space as `%20`.
pub const QUERY_KEPT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The query string rebuilt from API Gateway's decoded parameters, for events that do not carry the raw
/// one (REST API; HTTP API events without `rawQueryString`): `name=value` pairs joined with `&`, in the
/// order the event's JSON lists them (and each name's values in their order), each name and value
/// %-encoded as [`QUERY_KEPT`] says. Deterministic; equal to what the sender sent when it encoded the
/// same way (see the README on `public_url:` for when it did not). Values may be a string (HTTP API 2.0
/// comma-joins repeats) or a list of strings (`multiValueQueryStringParameters`).
fn canonical_query(parameters: Option<&Value>, field: &str) -> Result<Option<String>, MalformedEvent> {
    let parameters = match parameters {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(parameters)) => parameters,
        Some(_) => return Err(MalformedEvent::new(field, "is not an object")),
    };
    let mut pairs = Vec::new();
    let mut push = |name: &str, value: &str| {
        pairs.push(format!(
            "{}={}",
            utf8_percent_encode(name, QUERY_KEPT),
            utf8_percent_encode(value, QUERY_KEPT)
        ));
    };
    for (name, values) in parameters {
        match values {
            Value::String(value) => push(name, value),
            Value::Array(values) => {
                for value in values {
                    let Value::String(value) = value else {
                        return Err(MalformedEvent::new(
                            format!("{field}.{name}"),
                            "holds a value that is not a string",
                        ));
                    };
                    push(name, value);
                }
            }
            Value::Null => {}
            _ => {
                return Err(MalformedEvent::new(
                    format!("{field}.{name}"),
                    "is not a string or a list of strings",
                ));
            }
        }
    }
    Ok((!pairs.is_empty()).then(|| pairs.join("&")))
}

#[cfg(test)]
mod tests;
