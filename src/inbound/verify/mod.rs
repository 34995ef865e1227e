//! Verify: is this Delivery from the sender it claims to be? One file per signature scheme, each over
//! the RAW body bytes, compared in constant time. Never parses the body, never echoes a key or signature.

pub mod github;
pub mod hubspot;
pub mod standard_webhooks;
pub mod stripe;
pub mod tally;
pub mod token;
pub mod typeform;
pub mod webflow;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::inbound::{Delivery, Source};

/// How a route authenticates deliveries (`signature:` in the mapping; providers have a default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, body)>`; no timestamp.
    Typeform,
    /// `Tally-Signature: <base64 HMAC-SHA256(secret, body)>`; no timestamp.
    Tally,
    /// `x-webflow-signature: <hex HMAC-SHA256(secret, "{ms}:{body}")>` with `x-webflow-timestamp` (ms).
    Webflow,
    /// `Stripe-Signature: t=…,v1=…`: hex HMAC-SHA256 over `"{t}.{body}"`.
    Stripe,
    /// Standard Webhooks (Svix and others): `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; no timestamp.
    GitHub,
    /// HubSpot `X-HubSpot-Signature-v3` over method + URL + body + `X-HubSpot-Request-Timestamp`.
    HubSpotV3,
    /// No signature: the secret must equal the URL's `token` query parameter (Jotform).
    QueryToken,
}

impl Scheme {
    /// Every scheme, in the order error messages and `check` list them.
    pub const ALL: &'static [Scheme] = &[
        Scheme::Typeform,
        Scheme::Tally,
        Scheme::Webflow,
        Scheme::Stripe,
        Scheme::StandardWebhooks,
        Scheme::GitHub,
        Scheme::HubSpotV3,
        Scheme::QueryToken,
    ];

    /// The name used in the mapping (`signature: stripe`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Typeform => "typeform",
            Scheme::Tally => "tally",
            Scheme::Webflow => "webflow",
            Scheme::Stripe => "stripe",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::GitHub => "github",
            Scheme::HubSpotV3 => "hubspot-v3",
            Scheme::QueryToken => "token",
        }
    }

    /// Whether the signature covers the URL the sender called, path included, so that a delivery
    /// signed for one endpoint fails on another with the same key. Only `hubspot-v3` does. The
    /// `token` scheme's token is in the URL but proves nothing about the path: the same token works
    /// on every endpoint that shares it. `check` warns when endpoints share a key otherwise.
    pub fn signs_url(self) -> bool {
        // Exhaustive on purpose: a new scheme must decide.
        match self {
            Scheme::HubSpotV3 => true,
            Scheme::Typeform
            | Scheme::Tally
            | Scheme::Webflow
            | Scheme::Stripe
            | Scheme::StandardWebhooks
            | Scheme::GitHub
            | Scheme::QueryToken => false,
        }
    }

    /// The scheme a provider source signs with; `None` for `json` and `form`, which carry no
    /// signature of their own (a route may still name one with `signature:`).
    pub fn default_for(source: Source) -> Option<Scheme> {
        // Exhaustive on purpose: a new Source must decide its default here.
        match source {
            Source::Json | Source::Form => None,
            Source::Typeform => Some(Scheme::Typeform),
            Source::Tally => Some(Scheme::Tally),
            Source::Webflow => Some(Scheme::Webflow),
            Source::Jotform => Some(Scheme::QueryToken),
            Source::Stripe => Some(Scheme::Stripe),
            Source::StandardWebhooks => Some(Scheme::StandardWebhooks),
            Source::GitHub => Some(Scheme::GitHub),
            Source::HubSpot => Some(Scheme::HubSpotV3),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scheme name. `none` is not a scheme: the mapping reads it as "no verification"
/// before asking [`Scheme::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signature scheme {name:?}; known schemes: {}; or `none` to disable verification",
    Scheme::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownScheme {
    /// The name that was given.
    pub name: String,
}

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Exact, case-sensitive names as [`Scheme::as_str`] prints them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .iter()
            .copied()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| UnknownScheme { name: s.to_owned() })
    }
}

/// Why a delivery was not authenticated. Messages name the header and the rule, never a signature,
/// a key or a token: they may reach a 401 body and the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("header `{0}` is missing")]
    MissingHeader(&'static str),
    /// A header that must appear once appears more than once (ambiguous: which one was signed?).
    /// For [`Scheme::QueryToken`] the name is the `token` query parameter.
    #[error("`{0}` is given more than once")]
    DuplicateHeader(&'static str),
    /// A header is present but not in the scheme's format (prefix, hex, base64, timestamp, …).
    #[error("header `{header}` is malformed: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The route's signing secret cannot be used (empty, or a `whsec_` secret that is not base64):
    /// a configuration problem, not the sender's.
    #[error("the route's signing secret is unusable: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Well-formed, but no signature matched the request.
    #[error("no signature matches the request")]
    Mismatch,
    /// The signature matched but its timestamp is older than the window allows (a replay, or a
    /// sender clock far behind).
    #[error("the signed timestamp is {skew_s}s old, outside the {window_s}s window")]
    Stale {
        /// How old, in whole seconds (rounded up).
        skew_s: i64,
        /// The window, in seconds.
        window_s: i64,
    },
    /// The signature matched but its timestamp is further in the future than the window allows.
    #[error("the signed timestamp is {skew_s}s in the future, outside the {window_s}s window")]
    Future {
        /// How far ahead, in whole seconds (rounded up).
        skew_s: i64,
        /// The window, in seconds.
        window_s: i64,
    },
    /// [`Scheme::QueryToken`]: the URL has no `token` query parameter.
    #[error("the `token` query parameter is missing")]
    MissingToken,
}

impl VerifyError {
    /// The reason code for the 401 body: `missing_signature`, `malformed_signature`,
    /// `invalid_signature`, `stale_timestamp` or `invalid_signing_key`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) | VerifyError::MissingToken => "missing_signature",
            VerifyError::DuplicateHeader(_) | VerifyError::MalformedHeader { .. } => "malformed_signature",
            VerifyError::InvalidKey { .. } => "invalid_signing_key",
            VerifyError::Mismatch => "invalid_signature",
            VerifyError::Stale { .. } | VerifyError::Future { .. } => "stale_timestamp",
        }
    }
}

/// What a scheme looks at: the request as the sender made it.
pub struct SignedRequest<'a> {
    /// HTTP method, e.g. `POST` (HubSpot v3 signs it).
    pub method: &'a str,
    /// The full URL the sender called, query included (HubSpot v3 signs it).
    pub url: String,
    /// Request headers (names are case-insensitive).
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?` (the token scheme reads it).
    pub query: Option<&'a str>,
    /// The body bytes exactly as received.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// From a Delivery. Without `public_url`, `url = "{x-forwarded-proto or https}://{host header}{path}{?query}"`:
    /// the first entry of a comma-separated `x-forwarded-proto` is used; a missing or unreadable `host`
    /// header leaves the host empty (a scheme that signs the URL then reports `Mismatch`). The path is
    /// the Delivery's (the one the sender called, as the event gives it) and the query the Delivery's
    /// (byte for byte from HTTP API 2.0 and function URL events; rebuilt in a canonical form from REST
    /// API events, see [`crate::inbound::event`]).
    ///
    /// With the endpoint's [`PublicUrl`] (`public_url:` in the mapping), its scheme, host and path replace
    /// the request's. If it declares a query too, that query is used verbatim when the request carries
    /// the same parameters (compared decoded, in any order: a REST API event cannot give the order or the
    /// encoding back); when they differ, the request's own query is used (and a signature over the
    /// declared URL then does not match).
    pub fn from_delivery(delivery: &'a Delivery, public_url: Option<&PublicUrl>) -> SignedRequest<'a> {
        let query = delivery.query.as_deref().filter(|q| !q.is_empty());
        let mut url = match public_url {
            Some(public) => public.base.clone(),
            None => {
                let header = |name: &str| delivery.headers.get(name).and_then(|v| v.to_str().ok());
                let proto = header("x-forwarded-proto")
                    .and_then(|p| p.split(',').next())
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .unwrap_or("https");
                let host = header("host").map(str::trim).unwrap_or("");
                format!("{proto}://{host}{}", delivery.path)
            }
        };
        let declared = public_url.and_then(|p| p.query.as_deref());
        let signed_query = match (declared, query) {
            (Some(declared), Some(sent)) if query_pairs(declared) == query_pairs(sent) => Some(declared),
            (Some(declared), None) if query_pairs(declared).is_empty() => Some(declared),
            _ => query,
        };
        if let Some(q) = signed_query {
            url.push('?');
            url.push_str(q);
        }
        SignedRequest {
            method: delivery.method.as_str(),
            url,
            headers: &delivery.headers,
            query: delivery.query.as_deref(),
            body: &delivery.body,
        }
    }
}

/// The parameters of a query, decoded as `application/x-www-form-urlencoded` (`+` is a space, then
/// %-escapes), sorted: equal for two spellings of the same parameters.
fn query_pairs(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |part: &str| -> Vec<u8> { percent_encoding::percent_decode_str(&part.replace('+', " ")).collect() };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect();
    pairs.sort();
    pairs
}

/// The URL a provider calls, as the mapping declares it (`public_url:`), for schemes that sign the URL
/// ([`Scheme::HubSpotV3`]) where the event cannot give it back: a custom domain with a base path mapping
/// (API Gateway strips the base path), or a REST API event (whose query is decoded, unordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `scheme://host[:port]/path`, as written.
    base: String,
    /// The query as written (without `?`), when the URL has one.
    query: Option<String>,
}

impl PublicUrl {
    /// Reads an absolute `http(s)` URL written as the provider is given it: visible ASCII only
    /// (%-encode the rest, as the provider sends it), a host, no user info, no fragment. The error
    /// says which rule it breaks.
    pub fn parse(text: &str) -> Result<PublicUrl, &'static str> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a URL is visible ASCII without spaces: %-encode other characters as the provider sends them");
        }
        if text.contains('#') {
            return Err("a URL the provider calls has no fragment (`#…`)");
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|_| "not a URL: write it as `https://host/path`, exactly as the provider is given it")?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) {
            return Err("the URL must start with https:// (or http://)");
        }
        match uri.authority() {
            None => return Err("the URL has no host"),
            Some(a) if a.host().is_empty() => return Err("the URL has no host"),
            Some(a) if a.as_str().contains('@') => return Err("the URL must not carry user info (`user@`)"),
            Some(_) => {}
        }
        let (base, query) = match text.split_once('?') {
            Some((base, query)) => (base, Some(query).filter(|q| !q.is_empty())),
            None => (text, None),
        };
        Ok(PublicUrl {
            base: base.to_owned(),
            query: query.map(str::to_owned),
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.base),
            None => self.base.clone(),
        }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// Verifies one request. `key` is the route's signing secret; `now` is injected so replay windows
/// test deterministically.
///
/// Header problems are reported before the signature is checked; for timestamped schemes the
/// signature is checked before the window, so `Stale`/`Future` mean "authentic but outside the
/// window" and an unauthenticated request is always `Mismatch` (or a header error).
pub fn verify(
    scheme: Scheme,
    key: &SecretString,
    request: &SignedRequest<'_>,
    now: SystemTime,
) -> Result<(), VerifyError> {
    match scheme {
        Scheme::Typeform => typeform::verify(key, request, now),
        Scheme::Tally => tally::verify(key, request, now),
        Scheme::Webflow => webflow::verify(key, request, now),
        Scheme::Stripe => stripe::verify(key, request, now),
        Scheme::StandardWebhooks => standard_webhooks::verify(key, request, now),
        Scheme::GitHub => github::verify(key, request, now),
        Scheme::HubSpotV3 => hubspot::verify(key, request, now),
        Scheme::QueryToken => token::verify(key, request, now),
    }
}

/// Whether `key` can verify deliveries of `scheme`, for `check --secret`: `Err` when every delivery
/// would be answered `invalid_signing_key` (an empty key; a Standard Webhooks key that is not
/// `whsec_` + base64), `Ok(Some(doubt))` for a key that works but is probably not the provider's
/// signing secret (a Stripe key without Stripe's `whsec_` prefix, e.g. an API key `sk_…`), else `Ok(None)`.
pub fn check_key(scheme: Scheme, key: &SecretString) -> Result<Option<&'static str>, VerifyError> {
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks::key_bytes(key).map(|_| None),
        Scheme::Stripe => {
            secret_bytes(key)?;
            let doubt = "Stripe's endpoint signing secrets start with `whsec_` (Dashboard → Developers → Webhooks → \
                         the endpoint → Signing secret); this one does not, so it is probably not one";
            Ok((!key.expose_secret().trim().starts_with(stripe::SECRET_PREFIX)).then_some(doubt))
        }
        _ => secret_bytes(key).map(|_| None),
    }
}

// ---- shared by the scheme files -------------------------------------------------------------

/// HMAC-SHA256 from RustCrypto.
type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The secret's bytes; an empty (or all-whitespace) secret would let anyone sign.
fn secret_bytes(key: &SecretString) -> Result<&[u8], VerifyError> {
    let secret = key.expose_secret();
    if secret.trim().is_empty() {
        return Err(VerifyError::InvalidKey { reason: "it is empty" });
    }
    Ok(secret.as_bytes())
}

/// An HMAC-SHA256 over the concatenation of `parts`, keyed with `key`.
fn mac(key: &[u8], parts: &[&[u8]]) -> Result<HmacSha256, VerifyError> {
    // HMAC accepts keys of any length; the error arm only keeps this free of `expect`.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| VerifyError::InvalidKey {
        reason: "HMAC-SHA256 rejected its length",
    })?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac)
}

/// The 32-byte HMAC-SHA256 tag over the concatenation of `parts`.
fn tag(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, VerifyError> {
    Ok(mac(key, parts)?.finalize().into_bytes().to_vec())
}

/// Constant-time equality of a computed tag and a candidate; different lengths never match.
fn tag_matches(expected: &[u8], candidate: &[u8]) -> bool {
    expected.len() == candidate.len() && bool::from(expected.ct_eq(candidate))
}

/// The one value of a header that must appear at most once; `None` when absent.
/// Surrounding whitespace is trimmed; a value that is not visible ASCII is malformed.
fn optional_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::DuplicateHeader(name));
    }
    let value = value.to_str().map_err(|_| VerifyError::MalformedHeader {
        header: name,
        reason: "it is not visible ASCII",
    })?;
    Ok(Some(value.trim()))
}

/// Like [`optional_header`], but absence is `MissingHeader`.
fn required_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    optional_header(headers, name)?.ok_or(VerifyError::MissingHeader(name))
}

/// A Unix timestamp as sent: ASCII digits only (no sign, no spaces, no exponent), at most 18 of them.
fn parse_timestamp(header: &'static str, value: &str) -> Result<u64, VerifyError> {
    let malformed = VerifyError::MalformedHeader {
        header,
        reason: "the timestamp is not a non-negative integer",
    };
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    value.parse().map_err(|_| malformed)
}

/// Checks that `timestamp_ms` lies within `window` of `now`, both ways; the edges are inside.
fn check_window(timestamp_ms: u64, now: SystemTime, window: Duration) -> Result<(), VerifyError> {
    let now_ms: i128 = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::try_from(since.as_millis()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_millis()).unwrap_or(i128::MAX),
    };
    let window_ms = i128::try_from(window.as_millis()).unwrap_or(i128::MAX);
    let window_s = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    let age_ms = now_ms - i128::from(timestamp_ms);
    let whole_seconds = |ms: i128| i64::try_from((ms + 999) / 1000).unwrap_or(i64::MAX);
    if age_ms > window_ms {
        Err(VerifyError::Stale {
            skew_s: whole_seconds(age_ms),
            window_s,
        })
    } else if -age_ms > window_ms {
        Err(VerifyError::Future {
            skew_s: whole_seconds(-age_ms),
            window_s,
        })
    } else {
        Ok(())
    }
}

/// Lower- or upper-case hex.
fn decode_hex(header: &'static str, value: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(value).map_err(|_| VerifyError::MalformedHeader {
        header,
        reason: "the signature is not hex",
    })
}

/// Standard base64 with canonical padding.
fn decode_base64(header: &'static str, value: &str) -> Result<Vec<u8>, VerifyError> {
    BASE64.decode(value).map_err(|_| VerifyError::MalformedHeader {
        header,
        reason: "the signature is not base64",
    })
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Test helpers shared by the scheme files: fixtures, vectors, requests, clocks.

    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use http::{HeaderMap, HeaderName, HeaderValue};
    use secrecy::SecretString;
    use serde_json::Value;

    use super::{SignedRequest, VerifyError};

    const VECTORS: &str = include_str!("../../../tests/fixtures/webhooks/signature-vectors.json");

    /// A fixture body by file name (tests/fixtures/webhooks/).
    pub fn fixture(name: &str) -> &'static [u8] {
        match name {
            "github-vector.body" => include_bytes!("../../../tests/fixtures/webhooks/github-vector.body"),
            "standard-webhooks-vector.body" => {
                include_bytes!("../../../tests/fixtures/webhooks/standard-webhooks-vector.body")
            }
            "stripe-signed-vector.invoiceitem.created.json" => {
                include_bytes!("../../../tests/fixtures/webhooks/stripe-signed-vector.invoiceitem.created.json")
            }
            "typeform-form_response.json" => {
                include_bytes!("../../../tests/fixtures/webhooks/typeform-form_response.json")
            }
            "tally-form_response.json" => include_bytes!("../../../tests/fixtures/webhooks/tally-form_response.json"),
            "webflow-form_submission-v2-email-form.json" => {
                include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v2-email-form.json")
            }
            "hubspot-webhook-contact.creation.json" => {
                include_bytes!("../../../tests/fixtures/webhooks/hubspot-webhook-contact.creation.json")
            }
            other => panic!("no fixture {other:?} in tests/fixtures/webhooks"),
        }
    }

    /// One vector of signature-vectors.json, picked by the start of its `scheme` (and `source`).
    pub struct Vector {
        /// The whole JSON object.
        pub json: Value,
    }

    impl Vector {
        /// The first vector whose `scheme` starts with `scheme` and whose `source` contains `source`.
        pub fn find(scheme: &str, source: &str) -> Vector {
            let all: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
            let json = all
                .into_iter()
                .find(|v| {
                    v["scheme"].as_str().unwrap().starts_with(scheme) && v["source"].as_str().unwrap().contains(source)
                })
                .unwrap_or_else(|| panic!("no vector {scheme:?} / {source:?}"));
            Vector { json }
        }

        /// The signing secret.
        pub fn secret(&self) -> SecretString {
            SecretString::from(self.json["secret"].as_str().unwrap().to_owned())
        }

        /// The body: `body_file` from the fixtures, or `body_inline`.
        pub fn body(&self) -> Vec<u8> {
            match self.json["body_file"].as_str() {
                Some(file) => fixture(file).to_vec(),
                None => self.json["body_inline"].as_str().unwrap().as_bytes().to_vec(),
            }
        }

        /// A header of `headers` or `expected_header`, looked up case-insensitively.
        pub fn header(&self, name: &str) -> String {
            for section in ["headers", "expected_header"] {
                if let Some(map) = self.json[section].as_object()
                    && let Some((_, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
                {
                    return v.as_str().unwrap().to_owned();
                }
            }
            panic!("vector has no header {name:?}")
        }

        /// Whether the vector was published by the provider (else self-computed, a regression vector).
        pub fn published(&self) -> bool {
            self.json["published"].as_bool().unwrap()
        }
    }

    /// A HeaderMap from (name, value) pairs; repeated names are appended, not replaced.
    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// A POST request with these headers and body.
    pub fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            url: "https://hooks.example.com/hooks/test".to_owned(),
            headers,
            query: None,
            body,
        }
    }

    /// A secret.
    pub fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// `secs` seconds after the epoch.
    pub fn at_secs(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// `ms` milliseconds after the epoch.
    pub fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// The body with one byte changed.
    pub fn tampered(body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        let i = out.len() / 2;
        out[i] ^= 0x01;
        out
    }

    /// Asserts the error is a rejection of the signature's shape or value (truncations may be either).
    pub fn assert_rejected_signature(err: &VerifyError, what: &str) {
        assert!(
            matches!(err, VerifyError::Mismatch | VerifyError::MalformedHeader { .. }),
            "{what}: expected Mismatch or MalformedHeader, got {err:?}"
        );
    }

    /// Asserts neither the message nor the Debug form of `err` contains any of `secrets`.
    pub fn assert_reveals_nothing(err: &VerifyError, secrets: &[&str]) {
        let shown = format!("{err} / {err:?}");
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(!shown.contains(secret), "error {shown:?} reveals {secret:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bytes::Bytes;
    use chrono::Utc;
    use http::Method;

    use super::testkit::*;
    use super::*;

    #[test]
    fn scheme_names_round_trip_and_are_unique() {
        let mut seen = HashSet::new();
        for scheme in Scheme::ALL {
            assert_eq!(scheme.as_str().parse::<Scheme>(), Ok(*scheme), "{scheme}");
            assert_eq!(scheme.to_string(), scheme.as_str());
            assert!(seen.insert(scheme.as_str()), "{scheme} listed twice");
        }
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn an_unknown_scheme_lists_the_names_and_mentions_none() {
        let err = "hmac".parse::<Scheme>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"hmac\""), "{msg}");
        for scheme in Scheme::ALL {
            assert!(msg.contains(scheme.as_str()), "{msg} lacks {scheme}");
        }
        assert!(msg.contains("`none`"), "{msg}");
        assert!(
            "none".parse::<Scheme>().is_err(),
            "`none` is the mapping's word, not a scheme"
        );
        assert!("Stripe".parse::<Scheme>().is_err(), "names are case-sensitive");
    }

    #[test]
    fn each_provider_source_has_its_scheme_and_generic_sources_have_none() {
        let cases = [
            (Source::Json, None),
            (Source::Form, None),
            (Source::Typeform, Some(Scheme::Typeform)),
            (Source::Tally, Some(Scheme::Tally)),
            (Source::Webflow, Some(Scheme::Webflow)),
            (Source::Jotform, Some(Scheme::QueryToken)),
            (Source::Stripe, Some(Scheme::Stripe)),
            (Source::StandardWebhooks, Some(Scheme::StandardWebhooks)),
            (Source::GitHub, Some(Scheme::GitHub)),
            (Source::HubSpot, Some(Scheme::HubSpotV3)),
        ];
        assert_eq!(cases.len(), Source::ALL.len(), "a source is missing from this table");
        for (source, want) in cases {
            assert_eq!(Scheme::default_for(source), want, "source {source}");
        }
    }

    #[test]
    fn error_codes_are_the_401_reason_codes() {
        let cases = [
            (VerifyError::MissingHeader("x"), "missing_signature"),
            (VerifyError::MissingToken, "missing_signature"),
            (VerifyError::DuplicateHeader("x"), "malformed_signature"),
            (
                VerifyError::MalformedHeader {
                    header: "x",
                    reason: "r",
                },
                "malformed_signature",
            ),
            (VerifyError::InvalidKey { reason: "r" }, "invalid_signing_key"),
            (VerifyError::Mismatch, "invalid_signature"),
            (
                VerifyError::Stale {
                    skew_s: 301,
                    window_s: 300,
                },
                "stale_timestamp",
            ),
            (
                VerifyError::Future {
                    skew_s: 301,
                    window_s: 300,
                },
                "stale_timestamp",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err:?}");
        }
    }

    fn delivery(headers: &[(&str, &str)], path: &str, query: Option<&str>) -> Delivery {
        Delivery {
            request_id: "req-1".to_owned(),
            received_at: Utc::now(),
            deadline: None,
            method: Method::POST,
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers: testkit::headers(headers),
            body: Bytes::from_static(b"{}"),
            redelivery: None,
        }
    }

    #[test]
    fn from_delivery_builds_the_url_the_sender_called() {
        let cases = [
            (
                "host only: https assumed",
                delivery(&[("host", "hooks.example.com")], "/hooks/deals", None),
                "https://hooks.example.com/hooks/deals",
            ),
            (
                "with a query",
                delivery(
                    &[("host", "hooks.example.com")],
                    "/hooks/deals",
                    Some("token=abc&x=%3A"),
                ),
                "https://hooks.example.com/hooks/deals?token=abc&x=%3A",
            ),
            (
                "x-forwarded-proto wins",
                delivery(
                    &[("host", "localhost:9000"), ("x-forwarded-proto", "http")],
                    "/prod/hooks/deals",
                    None,
                ),
                "http://localhost:9000/prod/hooks/deals",
            ),
            (
                "first of a forwarded-proto list",
                delivery(
                    &[("host", "h.example"), ("x-forwarded-proto", "https, http")],
                    "/hooks/a",
                    Some("b=1"),
                ),
                "https://h.example/hooks/a?b=1",
            ),
            (
                "an empty query adds no `?`",
                delivery(&[("host", "h.example")], "/hooks/a", Some("")),
                "https://h.example/hooks/a",
            ),
        ];
        for (name, d, want) in cases {
            let req = SignedRequest::from_delivery(&d, None);
            assert_eq!(req.url, want, "{name}");
            assert_eq!(req.method, "POST", "{name}");
            assert_eq!(req.query, d.query.as_deref(), "{name}");
            assert_eq!(req.body, b"{}", "{name}");
        }
    }

    #[test]
    fn an_empty_secret_is_a_configuration_error_for_every_scheme() {
        let h = headers(&[]);
        let req = request(&h, b"{}");
        for scheme in Scheme::ALL {
            for blank in ["", "   "] {
                let err = verify(*scheme, &secret(blank), &req, at_secs(0)).unwrap_err();
                assert!(matches!(err, VerifyError::InvalidKey { .. }), "{scheme}: {err:?}");
                assert_eq!(err.code(), "invalid_signing_key");
            }
        }
    }

    /// A correctly signed request for each scheme, at `NOW`.
    const NOW_S: u64 = 1_700_000_000;
    const KEY: &str = "whsec_c2VjcmV0LWtleS1mb3ItZGVhbGhvb2stdGVzdHM=";

    fn signed(scheme: Scheme, body: &[u8]) -> (HeaderMap, Option<String>) {
        let key = secret(KEY);
        let ms = NOW_S * 1000;
        let h = match scheme {
            Scheme::Typeform => headers(&[("typeform-signature", &typeform::sign(&key, body).unwrap())]),
            Scheme::Tally => headers(&[("tally-signature", &tally::sign(&key, body).unwrap())]),
            Scheme::Webflow => headers(&[
                ("x-webflow-timestamp", &ms.to_string()),
                ("x-webflow-signature", &webflow::sign(&key, body, ms).unwrap()),
            ]),
            Scheme::Stripe => headers(&[("stripe-signature", &stripe::sign(&key, body, NOW_S).unwrap())]),
            Scheme::StandardWebhooks => headers(&[
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &NOW_S.to_string()),
                (
                    "webhook-signature",
                    &standard_webhooks::sign(&key, "msg_1", NOW_S, body).unwrap(),
                ),
            ]),
            Scheme::GitHub => headers(&[("x-hub-signature-256", &github::sign(&key, body).unwrap())]),
            Scheme::HubSpotV3 => headers(&[
                ("x-hubspot-request-timestamp", &ms.to_string()),
                (
                    "x-hubspot-signature-v3",
                    &hubspot::sign(&key, "POST", "https://hooks.example.com/hooks/test", body, ms).unwrap(),
                ),
            ]),
            Scheme::QueryToken => headers(&[]),
        };
        let query = (scheme == Scheme::QueryToken).then(|| format!("token={}", KEY.replace('=', "%3D")));
        (h, query)
    }

    #[test]
    fn every_scheme_accepts_its_own_signature_and_rejects_a_tampered_body() {
        for scheme in Scheme::ALL {
            let body = br#"{"email":"ada@example.com"}"#;
            let (h, query) = signed(*scheme, body);
            let mut req = request(&h, body);
            req.query = query.as_deref();
            verify(*scheme, &secret(KEY), &req, at_secs(NOW_S)).unwrap_or_else(|e| panic!("{scheme}: {e}"));

            if *scheme != Scheme::QueryToken {
                let other = tampered(body);
                req.body = &other;
                let err = verify(*scheme, &secret(KEY), &req, at_secs(NOW_S)).unwrap_err();
                assert_eq!(err, VerifyError::Mismatch, "{scheme}");
            }
        }
    }

    #[test]
    fn no_error_message_reveals_the_key_or_a_signature() {
        let body = br#"{"email":"ada@example.com"}"#;
        for scheme in Scheme::ALL {
            let (good, query) = signed(*scheme, body);
            let sent: Vec<String> = good.values().map(|v| v.to_str().unwrap().to_owned()).collect();
            let mut secrets: Vec<&str> = vec![KEY, "c2VjcmV0LWtleS1mb3ItZGVhbGhvb2stdGVzdHM"];
            secrets.extend(sent.iter().map(String::as_str));
            // Signature parts on their own (after `sha256=`, `v1=`, `v1,`).
            let parts: Vec<String> = sent
                .iter()
                .flat_map(|v| v.split([',', '=', ' ']).map(str::to_owned).collect::<Vec<_>>())
                .collect();
            secrets.extend(parts.iter().map(String::as_str));

            // Wrong key, tampered body, an hour late, garbage in every header, the key itself as a signature.
            let mut failures = Vec::new();
            let wrong = secret("whsec_d3Jvbmcta2V5LWZvci1kZWFsaG9vay10ZXN0cw==");
            let mut req = request(&good, body);
            req.query = query.as_deref();
            failures.push(verify(*scheme, &wrong, &req, at_secs(NOW_S)));
            let other = tampered(body);
            req.body = &other;
            failures.push(verify(*scheme, &secret(KEY), &req, at_secs(NOW_S)));
            req.body = body;
            failures.push(verify(*scheme, &secret(KEY), &req, at_secs(NOW_S + 3600)));
            for garbage in [KEY, "sha256=!!!", "t=x,v1=zz", "v1,@@@"] {
                let mut h = good.clone();
                for value in h.values_mut() {
                    *value = http::HeaderValue::from_str(garbage).unwrap();
                }
                let mut req = request(&h, body);
                let q = format!("token={garbage}x");
                req.query = Some(&q);
                failures.push(verify(*scheme, &secret(KEY), &req, at_secs(NOW_S)));
            }
            // Schemes without a timestamp (or, for the token, without a body signature) accept some.
            let errors: Vec<VerifyError> = failures.into_iter().filter_map(Result::err).collect();
            assert!(errors.len() >= 5, "{scheme}: only {} failures", errors.len());
            for err in errors {
                assert_reveals_nothing(&err, &secrets);
            }
        }
    }

    #[test]
    fn the_window_check_is_inclusive_at_the_edges_and_rounds_skew_up() {
        let window = Duration::from_secs(300);
        let now = at_ms(1_000_000_000);
        assert_eq!(check_window(1_000_000_000 - 300_000, now, window), Ok(()));
        assert_eq!(check_window(1_000_000_000 + 300_000, now, window), Ok(()));
        assert_eq!(
            check_window(1_000_000_000 - 300_001, now, window),
            Err(VerifyError::Stale {
                skew_s: 301,
                window_s: 300
            })
        );
        assert_eq!(
            check_window(1_000_000_000 + 300_001, now, window),
            Err(VerifyError::Future {
                skew_s: 301,
                window_s: 300
            })
        );
        // A clock before 1970 cannot make anything valid by accident.
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1000);
        assert!(matches!(
            check_window(0, before_epoch, window),
            Err(VerifyError::Future { .. })
        ));
    }

    #[test]
    fn timestamps_are_plain_digits() {
        for bad in ["", "-1", "+5", " 5", "1e3", "12.5", "0x10", "1234567890123456789"] {
            assert!(parse_timestamp("t", bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse_timestamp("t", "0"), Ok(0));
        assert_eq!(parse_timestamp("t", "1722370035277"), Ok(1_722_370_035_277));
    }
}
