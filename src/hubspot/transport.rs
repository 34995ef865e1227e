//! The transport: one `reqwest::Client` per cold start, one HTTP exchange per call. Sends a
//! [`HubSpotRequest`] with the credential, reads the answer within a size cap, and hands a 2xx body
//! back or classifies any other answer ([`answer::classify_failure`]). Never retries. The token or
//! API key never reaches an error, `Debug` or log (see [`Redactor`]).

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::redact::Redactor;
use super::{HubSpotError, HubSpotRequest, OAuthTokens, answer};
use crate::credentials::HubSpotAuth;

/// `User-Agent` of every request (HubSpot asks integrations to name themselves).
pub const USER_AGENT: &str = concat!("dealhook/", env!("CARGO_PKG_VERSION"));

/// Most bytes read from a 2xx body. Larger than the error cap because HubSpot echoes every property
/// (with its history) and a long text property can push a genuine answer past 64 KiB.
pub(crate) const SUCCESS_BODY_LIMIT: usize = 1024 * 1024;
/// Most bytes read from a 2xx answer to a schema read (pipelines, properties): a portal with many
/// custom properties and options lists more than a record answer ever holds.
pub(crate) const SCHEMA_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Most bytes read from any other body.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Pooled connections idle longer than this are not reused: after a Lambda freeze the peer has
/// usually closed them, and a request written to a dead connection ends as `OutcomeUnknown`.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how patiently the client talks to HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpotClientConfig {
    /// `http`/`https` URL with a host and optional path prefix, no query (`HUBSPOT_BASE_URL`);
    /// a trailing slash is ignored.
    pub base_url: String,
    /// Limit on establishing the connection (DNS, TCP, TLS). Running out means the request was
    /// never sent: `Unavailable`, safe to retry.
    pub connect_timeout: Duration,
    /// Limit on the whole exchange, connect to last body byte. Running out after the request was
    /// sent means HubSpot may have acted on it: `OutcomeUnknown`.
    pub request_timeout: Duration,
}

impl Default for HubSpotClientConfig {
    /// `https://api.hubapi.com`, 3 s to connect, 10 s in all.
    fn default() -> Self {
        HubSpotClientConfig {
            base_url: "https://api.hubapi.com".to_owned(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a [`HubSpotClient`] could not be built. Never quotes the base URL (it could carry credentials).
#[derive(Debug, thiserror::Error)]
pub enum HubSpotConfigError {
    /// The base URL is unusable.
    #[error("invalid HubSpot base URL: {0}")]
    InvalidBaseUrl(String),
    /// A timeout is zero.
    #[error("HubSpot timeouts must be greater than zero")]
    ZeroTimeout,
    /// The HTTP client (TLS setup) could not be built.
    #[error("could not build the HTTP client for HubSpot")]
    Client(#[source] reqwest::Error),
    /// The TLS configuration could not be built (the crypto provider lacks the default TLS versions).
    #[error("could not configure TLS for HubSpot")]
    Tls(#[source] rustls::Error),
}

/// The TLS configuration of the HubSpot client: rustls with aws-lc (the provider reqwest and the AWS
/// SDK already use), TLS 1.2 and 1.3, HTTP/1.1, trusting the Mozilla root program as compiled into
/// `webpki-roots`. reqwest's default (`rustls-platform-verifier`) reads and parses the system's CA
/// bundle when the client is built: about 2 ms of CPU at every cold start, for the public CA that
/// signs api.hubapi.com either way. A TLS-inspecting proxy with a private CA is therefore not trusted.
fn tls_config() -> Result<rustls::ClientConfig, HubSpotConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(HubSpotConfigError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // reqwest is built without HTTP/2: offer what it speaks.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// HubSpot over HTTPS. Build once per cold start; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HubSpotClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base_url: String,
    /// Access tokens of OAuth grants, cached for the cold start.
    oauth: OAuthTokens,
}

/// A 2xx answer: its status and its whole body (at most 1 MiB; a longer one is `OutcomeUnknown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The 2xx status (HubSpot answers 200 where its documents say 201, and 207 for partial batches:
    /// callers check the body, not the code; catalog item 21).
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HubSpotClient {
    /// Validates the configuration and builds the HTTP client (no I/O).
    ///
    /// Redirects are not followed: a 3xx answer means a misconfigured base URL and is reported
    /// as `Rejected` rather than silently replayed as a `GET`.
    pub fn new(config: HubSpotClientConfig) -> Result<HubSpotClient, HubSpotConfigError> {
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return Err(HubSpotConfigError::ZeroTimeout);
        }
        let base_url = parse_base_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HubSpotConfigError::Client(e.without_url()))?;
        let oauth = OAuthTokens::new(http.clone(), &base_url)?;
        Ok(HubSpotClient {
            inner: Arc::new(Inner { http, base_url, oauth }),
        })
    }

    /// The OAuth access tokens this client uses for [`HubSpotAuth::OAuth`] (shared by its clones).
    pub fn oauth(&self) -> &OAuthTokens {
        &self.inner.oauth
    }

    /// The base URL in use, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Sends one request and returns its 2xx answer; never retries (the caller owns retries, see
    /// [`HubSpotError::is_retryable`]).
    ///
    /// The body is sent as JSON unless it is `null` (then no body). No connection (refused, DNS, TLS,
    /// connect timeout) → `Unavailable { status: None }`; a timeout or broken connection after
    /// sending → `OutcomeUnknown`; a 2xx whose body cannot be read whole → `OutcomeUnknown`; any other
    /// status → [`answer::classify_failure`]. A token that is not a valid header value →
    /// `NoCredentials` (nothing sent). `subject` names what may exist after an unknown outcome
    /// ("the deal"), for the error message.
    ///
    /// An OAuth grant is first exchanged for an access token ([`OAuthTokens::bearer`]: cached, or
    /// refreshed; its errors, e.g. `OAuthRefused`, come back with nothing sent to the CRM). A 401 to
    /// that token makes the next call refresh it ([`OAuthTokens::invalidate`]).
    pub async fn send(&self, request: &HubSpotRequest, auth: &HubSpotAuth) -> Result<Answer, HubSpotError> {
        self.send_about(request, auth, "HubSpot's record").await
    }

    pub(crate) async fn send_about(
        &self,
        request: &HubSpotRequest,
        auth: &HubSpotAuth,
        subject: &str,
    ) -> Result<Answer, HubSpotError> {
        self.send_limited(request, auth, subject, SUCCESS_BODY_LIMIT).await
    }

    /// [`Self::send_about`] reading at most `success_limit` bytes of a 2xx body.
    pub(crate) async fn send_limited(
        &self,
        request: &HubSpotRequest,
        auth: &HubSpotAuth,
        subject: &str,
        success_limit: usize,
    ) -> Result<Answer, HubSpotError> {
        let not_sent = |why: String| HubSpotError::Unavailable {
            status: None,
            message: format!("the request was not sent: {why}"),
        };
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| not_sent(format!("{:?} is not an HTTP method", request.method)))?;
        let url = Url::parse(&format!("{}{}", self.inner.base_url, request.path))
            .map_err(|e| not_sent(format!("the path does not make a URL ({e})")))?;
        let span = tracing::Span::current();
        span.record("method", method.as_str());
        span.record("url", traced_url(&url).as_str());
        // OAuth: the grant's access token for this call, cached or refreshed (see oauth.rs).
        let oauth_token = match auth {
            HubSpotAuth::OAuth(grant) => Some(self.inner.oauth.bearer(grant).await?),
            HubSpotAuth::AccessToken(_) | HubSpotAuth::ApiKey(_) => None,
        };
        let (builder, redactor) = authorize(&self.inner.http, method, url, auth, oauth_token.as_ref())?;
        let builder = match &request.body {
            Value::Null => builder,
            body => builder.json(body),
        };

        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return Err(send_error(e, &redactor, subject)),
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        if status == StatusCode::UNAUTHORIZED
            && let Some(token) = &oauth_token
        {
            self.inner.oauth.invalidate(token); // the next attempt refreshes
        }
        let wait = answer::wait_hint(response.headers(), SystemTime::now());
        let limit = if status.is_success() {
            success_limit
        } else {
            ERROR_BODY_LIMIT
        };
        let read = read_body(response, limit, &redactor).await;
        let code = status.as_u16();
        if status.is_success() {
            let unknown = |why: String| HubSpotError::OutcomeUnknown {
                status: Some(code),
                message: format!("HTTP {code} but {why}; {subject} may exist"),
            };
            if let Some(e) = read.error {
                return Err(unknown(format!("the body could not be read ({e})")));
            }
            if read.truncated {
                return Err(unknown(format!("the body is over {success_limit} bytes")));
            }
            return Ok(Answer {
                status: code,
                body: read.bytes,
            });
        }
        let text = redactor.redact(&String::from_utf8_lossy(&read.bytes));
        Err(answer::classify_failure(code, wait, &text, read.truncated))
    }
}

/// Puts the credential on the request: a Bearer token (private app, Service Key, or the OAuth access
/// token `oauth_token` obtained for an [`HubSpotAuth::OAuth`] grant) in `Authorization`, marked
/// sensitive; a legacy API key as `?hapikey=`. Returns the request and the redactor for everything
/// kept from the exchange. A token that is not a valid header value, or a grant without its access
/// token, is `NoCredentials` (its value is never reported). The one place a credential meets a
/// request.
fn authorize<'a>(
    http: &reqwest::Client,
    method: Method,
    mut url: Url,
    auth: &'a HubSpotAuth,
    oauth_token: Option<&'a SecretString>,
) -> Result<(reqwest::RequestBuilder, Redactor<'a>), HubSpotError> {
    match (auth, oauth_token) {
        (HubSpotAuth::AccessToken(token), _) | (HubSpotAuth::OAuth(_), Some(token)) => {
            let secret = token.expose_secret();
            let mut value =
                HeaderValue::try_from(format!("Bearer {secret}")).map_err(|_| HubSpotError::NoCredentials)?;
            value.set_sensitive(true);
            let request = http.request(method, url).header(AUTHORIZATION, value);
            Ok((request, Redactor::new(secret, None)))
        }
        (HubSpotAuth::ApiKey(key), _) => {
            let secret = key.expose_secret();
            url.query_pairs_mut().append_pair("hapikey", secret);
            // The key as it appears in the URL, in case an answer echoes the request line.
            let encoded = url.query().and_then(|q| q.strip_prefix("hapikey=")).map(str::to_owned);
            Ok((http.request(method, url), Redactor::new(secret, encoded)))
        }
        (HubSpotAuth::OAuth(_), None) => Err(HubSpotError::NoCredentials),
    }
}

/// Checks the base URL. Messages never quote the URL.
fn parse_base_url(raw: &str) -> Result<String, HubSpotConfigError> {
    let invalid = |reason: &str| HubSpotConfigError::InvalidBaseUrl(reason.to_owned());
    let base = raw.trim().trim_end_matches('/');
    let url = Url::parse(base).map_err(|e| HubSpotConfigError::InvalidBaseUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query string or fragment"));
    }
    Ok(base.to_owned())
}

/// An error from `send()`: no answer arrived. Whether the request left decides the variant.
fn send_error(err: reqwest::Error, redactor: &Redactor<'_>, subject: &str) -> HubSpotError {
    let err = err.without_url();
    let message = redactor.redact(&describe(&err));
    if err.is_connect() || err.is_builder() {
        // Refused, DNS, TLS handshake or connect timeout: nothing reached HubSpot.
        HubSpotError::Unavailable {
            status: None,
            message: format!("the request was not sent: {message}"),
        }
    } else if err.is_timeout() {
        HubSpotError::OutcomeUnknown {
            status: None,
            message: format!("no answer in time, {subject} may exist: {message}"),
        }
    } else {
        HubSpotError::OutcomeUnknown {
            status: None,
            message: format!("the connection failed after the request was sent, {subject} may exist: {message}"),
        }
    }
}

/// The error and its causes on one line. Callers strip the URL first.
pub(super) fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A response body read up to a cap.
struct BodyRead {
    bytes: Vec<u8>,
    /// More bytes followed the cap and were not read.
    truncated: bool,
    /// Reading stopped on this error (already redacted, no URL).
    error: Option<String>,
}

async fn read_body(mut response: reqwest::Response, limit: usize, redactor: &Redactor<'_>) -> BodyRead {
    let expected = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(expected.min(limit));
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(bytes.len());
                if chunk.len() > room {
                    bytes.extend_from_slice(chunk.get(..room).unwrap_or_default());
                    // Dropping the response here closes the connection instead of draining it.
                    return BodyRead {
                        bytes,
                        truncated: true,
                        error: None,
                    };
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => {
                return BodyRead {
                    bytes,
                    truncated: false,
                    error: None,
                };
            }
            Err(e) => {
                return BodyRead {
                    bytes,
                    truncated: false,
                    error: Some(redactor.redact(&describe(&e.without_url()))),
                };
            }
        }
    }
}

/// `url` as a trace shows it (the `url` field of a `hubspot_*` span, X-Ray's `http.request.url`):
/// scheme, host, port and path only (no user info, no query: no credential), with the e-mail address
/// of v1's `…/createOrUpdate/email/{email}/` replaced by `{email}` (a payload value, personal data).
pub(crate) fn traced_url(url: &Url) -> String {
    let mut path = String::with_capacity(url.path().len());
    let mut after_email = false;
    for (index, segment) in url.path().split('/').enumerate() {
        if index > 0 {
            path.push('/');
        }
        path.push_str(if after_email && !segment.is_empty() {
            "{email}"
        } else {
            segment
        });
        after_email = segment == "email";
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}{path}", url.scheme(), url.host_str().unwrap_or_default())
}

#[cfg(test)]
mod traced_url_tests {
    use super::*;

    #[test]
    fn a_traced_url_keeps_scheme_host_port_and_path_only() {
        let cases = [
            (
                "https://user:pass@api.hubapi.com/crm/v3/objects/deals?hapikey=k-1",
                "https://api.hubapi.com/crm/v3/objects/deals",
            ),
            (
                "http://127.0.0.1:8080/prefix/crm/v3/objects/deals/42#frag",
                "http://127.0.0.1:8080/prefix/crm/v3/objects/deals/42",
            ),
            (
                "https://api.hubapi.com/contacts/v1/contact/createOrUpdate/email/ada%40example.com/",
                "https://api.hubapi.com/contacts/v1/contact/createOrUpdate/email/{email}/",
            ),
        ];
        for (url, traced) in cases {
            assert_eq!(traced_url(&Url::parse(url).unwrap()), traced, "{url}");
        }
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// The HubSpot client's trust store is compiled in (no CA bundle read at cold start) and holds the
    /// whole Mozilla root program; it speaks HTTP/1.1 as reqwest (built without HTTP/2) does.
    #[test]
    fn the_tls_configuration_trusts_the_compiled_in_roots_and_offers_http_1_1() {
        let config = tls_config().unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(
            webpki_roots::TLS_SERVER_ROOTS.len() > 100,
            "the Mozilla program has well over 100 roots"
        );
        assert!(HubSpotClient::new(HubSpotClientConfig::default()).is_ok());
    }
}
