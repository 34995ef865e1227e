//! `--body FILE --endpoint NAME`: a raw request body (what the sender posts) made into the API Gateway
//! HTTP API (payload 2.0) event the function would receive, so that trying a form needs no event file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// One `--header NAME:VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name, lower-cased (as API Gateway hands it over).
    pub name: String,
    /// Its value, trimmed.
    pub value: String,
}

impl std::str::FromStr for Header {
    type Err = String;

    /// `NAME:VALUE` (the first `:` splits), e.g. `Stripe-Signature: t=1,v1=ab`.
    fn from_str(text: &str) -> Result<Header, String> {
        let Some((name, value)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} is not NAME:VALUE (e.g. --header 'x-webflow-timestamp: 1764064447000')"
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{name:?} is not a header name (NAME:VALUE, the name without spaces)"
            ));
        }
        Ok(Header {
            name: name.to_ascii_lowercase(),
            value: value.trim().to_owned(),
        })
    }
}

/// A raw delivery as the command line describes it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The body's bytes, as the sender posts them.
    pub body: Vec<u8>,
    /// The endpoint: the request goes to `POST /hooks/{endpoint}`.
    pub endpoint: String,
    /// `--content-type`; `None`: guessed from the body (see [`guess_content_type`]).
    pub content_type: Option<String>,
    /// `--header`s, in order.
    pub headers: Vec<Header>,
    /// `--query` (without the `?`), e.g. `token=…` for a route signed with `signature: token`.
    pub query: Option<String>,
}

/// The content type for a body given none: `application/json` when it is JSON, else
/// `application/x-www-form-urlencoded` (what an HTML form posts).
pub fn guess_content_type(body: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    }
}

/// The HTTP API payload 2.0 event for `request`, received at `now`: `POST /hooks/{endpoint}`, its
/// headers (with `content-type`), query and body (base64 when it is not UTF-8). An endpoint that is
/// empty or holds `/`, `?` or `#` is refused: no URL of the function would reach it.
pub fn http_event(request: &RawRequest, now: DateTime<Utc>) -> Result<Value, String> {
    let endpoint = request.endpoint.as_str();
    if endpoint.is_empty() || endpoint.contains(['/', '?', '#']) || endpoint.chars().any(char::is_whitespace) {
        return Err(format!(
            "--endpoint {endpoint:?} is not an endpoint name: give the NAME of POST /hooks/NAME (`dealhook check` lists them)"
        ));
    }
    let path = format!("/hooks/{endpoint}");
    let mut headers = Map::new();
    let content_type = request
        .content_type
        .clone()
        .unwrap_or_else(|| guess_content_type(&request.body).to_owned());
    headers.insert("content-type".to_owned(), content_type.into());
    headers.insert("host".to_owned(), "localhost".into());
    headers.insert("x-forwarded-proto".to_owned(), "https".into());
    for header in &request.headers {
        // A repeated header is comma-joined, as API Gateway does for payload 2.0.
        let joined = match headers.get(&header.name).and_then(Value::as_str) {
            Some(before) if header.name != "content-type" && header.name != "host" => {
                format!("{before},{}", header.value)
            }
            _ => header.value.clone(),
        };
        headers.insert(header.name.clone(), joined.into());
    }
    let (body, is_base64) = match std::str::from_utf8(&request.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (BASE64.encode(&request.body), true),
    };
    let query = request.query.as_deref().unwrap_or("").trim_start_matches('?');
    Ok(json!({
        "version": "2.0",
        "routeKey": "POST /hooks/{route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": { "method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1" },
            "requestId": format!("local-{}", uuid::Uuid::new_v4()),
            "routeKey": "POST /hooks/{route}",
            "stage": "$default",
            "timeEpoch": now.timestamp_millis(),
        },
        "pathParameters": { "route": endpoint },
        "body": body,
        "isBase64Encoded": is_base64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{Delivery, Invocation};

    fn request(body: &[u8]) -> RawRequest {
        RawRequest {
            body: body.to_vec(),
            endpoint: "webflow".into(),
            content_type: None,
            headers: vec![],
            query: None,
        }
    }

    fn delivery(request: &RawRequest) -> Delivery {
        let event = http_event(request, Utc::now()).unwrap();
        Delivery::from_event(&event, &Invocation::local(), Utc::now()).unwrap()
    }

    #[test]
    fn a_json_body_becomes_a_post_to_its_endpoint_as_json() {
        let d = delivery(&request(br#"{"Email": "ada@example.com"}"#));
        assert_eq!(d.path, "/hooks/webflow");
        assert_eq!(d.method, http::Method::POST);
        assert_eq!(d.content_type(), Some("application/json"));
        assert_eq!(&d.body[..], br#"{"Email": "ada@example.com"}"#);
    }

    #[test]
    fn a_body_that_is_not_json_is_sent_as_a_form_unless_told() {
        let d = delivery(&request(b"name=Ada&email=ada%40example.com"));
        assert_eq!(d.content_type(), Some("application/x-www-form-urlencoded"));
        let mut told = request(b"--x\r\n");
        told.content_type = Some("multipart/form-data; boundary=x".into());
        assert_eq!(delivery(&told).content_type(), Some("multipart/form-data; boundary=x"));
    }

    #[test]
    fn headers_query_and_binary_bodies_arrive_as_given() {
        let mut r = request(&[0xff, 0x00, 0x41]);
        r.headers = vec!["X-Webflow-Timestamp: 1764064447000".parse().unwrap()];
        r.query = Some("?token=abc".into());
        let d = delivery(&r);
        assert_eq!(d.headers["x-webflow-timestamp"], "1764064447000");
        assert_eq!(&d.body[..], [0xff, 0x00, 0x41]);
        assert_eq!(d.query.as_deref(), Some("token=abc"));
    }

    /// Each way a `--header` or `--endpoint` can be wrong, with the message naming it.
    #[test]
    fn malformed_headers_and_endpoints_are_named() {
        for (text, want) in [
            ("no-colon", "is not NAME:VALUE"),
            (": value", "is not a header name"),
            ("two words: v", "is not a header name"),
        ] {
            let err = text.parse::<Header>().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        for endpoint in ["", "a/b", "a?b", "a b"] {
            let mut r = request(b"{}");
            r.endpoint = endpoint.into();
            let err = http_event(&r, Utc::now()).unwrap_err();
            assert!(err.contains("is not an endpoint name"), "{endpoint:?}: {err}");
        }
    }
}
