//! Inbound: the Delivery (raw bytes + headers as received), routing by path, body decoding
//! and source normalisers. Never parses before the size limit is checked; never imports hubspot.

pub mod decode;
pub mod event;
pub mod source;
pub mod verify;

use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, Method};

pub use decode::{DecodeError, decode};
pub use event::{Invocation, LambdaEvent, MalformedEvent, ResponseFormat};
pub use source::Source;

/// What [`Delivery::content_type`] gives for a Content-Type header that is not visible ASCII.
pub const UNREADABLE_CONTENT_TYPE: &str = "(a Content-Type that is not ASCII)";

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
    /// The path the sender called: `rawPath` (HTTP API 2.0, function URL) or `requestContext.path` (REST
    /// API, stage included). Any text: an odd one is simply no `/hooks/{endpoint}` (404).
    pub path: String,
    /// The query string without `?`, `None` when empty: `rawQueryString` byte for byte (HTTP API 2.0,
    /// function URL), or rebuilt from the decoded parameters in a canonical form (REST API; see
    /// [`event`]). Any text, raw spaces and non-ASCII included.
    pub query: Option<String>,
    /// Request headers (see [`event`] for headers `http` cannot hold).
    pub headers: HeaderMap,
    /// The body bytes exactly as sent (API Gateway's base64 already decoded).
    pub body: bytes::Bytes,
    /// Set when the delivery is run again from an envelope (queue mode's worker, `dealhook replay`):
    /// it was authenticated when received. `None` for a request from a sender.
    pub redelivery: Option<crate::queue::Redelivery>,
}

impl Delivery {
    /// The `Content-Type` header, if present and readable.
    ///
    /// A header that is there but not visible ASCII (RFC 9110 media types are ASCII) reads as
    /// [`UNREADABLE_CONTENT_TYPE`], which no decoder accepts: the answer is then a 415 that says so,
    /// not "no Content-Type".
    pub fn content_type(&self) -> Option<&str> {
        let value = self.headers.get(http::header::CONTENT_TYPE)?;
        Some(value.to_str().unwrap_or(UNREADABLE_CONTENT_TYPE))
    }

    /// `received_at` in RFC 3339 (milliseconds, `Z`).
    pub fn received_at_rfc3339(&self) -> String {
        self.received_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
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
}
