//! Inbound: the Delivery (raw bytes + headers as received), routing by path, body decoding
//! and source normalisers. Never parses before the size limit is checked; never imports hubspot.

pub mod decode;
pub mod source;
pub mod verify;

use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, Method};
use lambda_http::{Body, Request, RequestExt};

pub use decode::{DecodeError, decode};
pub use source::Source;

/// One HTTP request as received, before anything is trusted or parsed.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Lambda request id (or the API Gateway one, or a local id): ties logs, responses and dead letters.
    pub request_id: String,
    /// When the request reached dealhook.
    pub received_at: DateTime<Utc>,
    /// The invocation deadline, when running under Lambda.
    pub deadline: Option<std::time::SystemTime>,
    /// HTTP method.
    pub method: Method,
    /// Path as delivered (may include a stage prefix).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body bytes exactly as sent (API Gateway's base64 already decoded).
    pub body: bytes::Bytes,
}

impl Delivery {
    /// Builds a Delivery from a `lambda_http` request (HTTP API v2, REST v1 or function URL).
    pub fn from_lambda(req: Request, received_at: DateTime<Utc>) -> Delivery {
        let request_id = request_id(&req);
        let deadline = req.lambda_context_ref().and_then(|c| invocation_deadline(c.deadline));
        let (parts, body) = req.into_parts();
        let body = match body {
            Body::Empty => bytes::Bytes::new(),
            Body::Text(s) => bytes::Bytes::from(s),
            Body::Binary(b) => bytes::Bytes::from(b),
            // Body is non_exhaustive; any future variant is treated as its bytes.
            #[allow(unreachable_patterns)]
            other => bytes::Bytes::copy_from_slice(other.as_ref()),
        };
        Delivery {
            request_id,
            received_at,
            deadline,
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
        }
    }

    /// The `Content-Type` header, if present and readable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// `received_at` in RFC 3339 (milliseconds, `Z`).
    pub fn received_at_rfc3339(&self) -> String {
        self.received_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// Lambda gives the deadline in epoch milliseconds. Anything before 2020 is not one: the
/// `cargo lambda` emulator sends the timeout itself (`600000`), and 0 means "none"; taking those for
/// deadlines would leave no time at all, so they are ignored (no deadline, as in local runs).
fn invocation_deadline(epoch_ms: u64) -> Option<std::time::SystemTime> {
    const JANUARY_2020_MS: u64 = 1_577_836_800_000;
    if epoch_ms < JANUARY_2020_MS {
        tracing::debug!(epoch_ms, "the invocation deadline is not an epoch time; ignored");
        return None;
    }
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms))
}

fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.lambda_context_ref().filter(|c| !c.request_id.is_empty()) {
        return ctx.request_id.clone();
    }
    let apigw = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        _ => None,
    };
    apigw
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4()))
}

/// The route name of a path `…/hooks/{route}` (any stage prefix, one optional trailing slash).
/// `None` when the path is not of that shape.
pub fn route_name(path: &str) -> Option<&str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let (head, route) = path.rsplit_once('/')?;
    let hooks = head.rsplit('/').next()?;
    (hooks == "hooks" && !route.is_empty()).then_some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_read_from_hooks_paths() {
        let cases = [
            ("/hooks/website-quote", Some("website-quote")),
            ("/hooks/website-quote/", Some("website-quote")),
            ("/prod/hooks/contact-form", Some("contact-form")),
            ("/hooks/", None),
            ("/hooks", None),
            ("/other/website-quote", None),
            ("/hooks/a/b", None),
            ("/", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(route_name(path), want, "path {path:?}");
        }
    }

    #[test]
    fn only_epoch_milliseconds_are_taken_for_the_invocation_deadline() {
        let real = 1_795_593_400_663;
        assert_eq!(
            invocation_deadline(real),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(real))
        );
        assert_eq!(
            invocation_deadline(600_000),
            None,
            "cargo lambda's emulator sends its timeout"
        );
        assert_eq!(invocation_deadline(0), None);
    }

    #[test]
    fn a_v2_event_becomes_a_delivery_with_raw_bytes_and_the_apigw_request_id() {
        let event = r#"{"version":"2.0","routeKey":"POST /hooks/{route}","rawPath":"/hooks/contact-form",
          "rawQueryString":"a=1","headers":{"content-type":"text/plain"},
          "requestContext":{"accountId":"1","apiId":"x","domainName":"d","domainPrefix":"d",
            "http":{"method":"POST","path":"/hooks/contact-form","protocol":"HTTP/1.1","sourceIp":"1.2.3.4","userAgent":"t"},
            "requestId":"req-123","routeKey":"POST /hooks/{route}","stage":"$default","time":"t","timeEpoch":0},
          "body":"aGk=","isBase64Encoded":true}"#;
        let req = lambda_http::request::from_str(event).unwrap();
        let d = Delivery::from_lambda(req, Utc::now());
        assert_eq!(d.method, Method::POST);
        assert_eq!(d.path, "/hooks/contact-form");
        assert_eq!(d.query.as_deref(), Some("a=1"));
        assert_eq!(&d.body[..], b"hi");
        assert_eq!(d.request_id, "req-123");
        assert_eq!(d.content_type(), Some("text/plain"));
    }
}
