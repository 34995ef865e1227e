//! The real `Deals`: one `reqwest::Client` per cold start, one `POST /deals/v1/deal/` per call, every
//! answer classified into a `HubSpotError`. The token or API key never reaches an error, `Debug` or log.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use tracing::field::Empty;

use super::{CreatedDeal, Deals, HubSpotError, HubSpotErrorBody, HubSpotRequest, OAuthTokens, oauth, v1};
use crate::credentials::HubSpotAuth;
use crate::domain::DealDraft;

/// `User-Agent` of every request (HubSpot asks integrations to name themselves).
pub const USER_AGENT: &str = concat!("dealhook/", env!("CARGO_PKG_VERSION"));

/// Most bytes read from a 2xx body. Larger than the error cap because HubSpot echoes every property
/// (with its history) and a long text property can push a genuine answer past 64 KiB.
const SUCCESS_BODY_LIMIT: usize = 1024 * 1024;
/// Most bytes read from any other body.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Most bytes of an error body kept as `Rejected::raw` (dead letters must stay small).
const RAW_LIMIT: usize = 16 * 1024;
/// Pooled connections idle longer than this are not reused: after a Lambda freeze the peer has
/// usually closed them, and a request written to a dead connection ends as `OutcomeUnknown`.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// What replaces a secret found in any text we keep.
const REDACTED: &str = "[redacted]";

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
    /// sent means HubSpot may have created the deal: `OutcomeUnknown`.
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
}

/// HubSpot over HTTPS, v1 deals API. Build once per cold start; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HubSpotClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base_url: String,
    create_url: Url,
    /// Access tokens of OAuth grants, cached for the cold start.
    oauth: OAuthTokens,
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
        let (base_url, create_url) = parse_base_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
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
            inner: Arc::new(Inner {
                http,
                base_url,
                create_url,
                oauth,
            }),
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

    async fn send_create(&self, draft: &DealDraft, auth: &HubSpotAuth) -> Result<CreatedDeal, HubSpotError> {
        let body = v1::create_request(draft).body;
        let mut url = self.inner.create_url.clone();
        // OAuth: the grant's access token for this call, cached or refreshed (see oauth.rs).
        let oauth_token = match auth {
            HubSpotAuth::OAuth(grant) => Some(self.inner.oauth.bearer(grant).await?),
            _ => None,
        };
        let (request, redactor) = match (auth, &oauth_token) {
            (HubSpotAuth::AccessToken(token), _) | (HubSpotAuth::OAuth(_), Some(token)) => {
                let secret = token.expose_secret();
                // Only the token's validity is reported, never the value itself.
                let mut value =
                    HeaderValue::try_from(format!("Bearer {secret}")).map_err(|_| HubSpotError::NoCredentials)?;
                value.set_sensitive(true);
                let request = self.inner.http.post(url).header(AUTHORIZATION, value);
                (request, Redactor::new(secret, None))
            }
            (HubSpotAuth::ApiKey(key), _) => {
                let secret = key.expose_secret();
                url.query_pairs_mut().append_pair("hapikey", secret);
                // The key as it appears in the URL, in case an answer echoes the request line.
                let encoded = url.query().and_then(|q| q.strip_prefix("hapikey=")).map(str::to_owned);
                (self.inner.http.post(url), Redactor::new(secret, encoded))
            }
            (HubSpotAuth::OAuth(_), None) => return Err(HubSpotError::NoCredentials),
        };

        let response = match request.json(&body).send().await {
            Ok(response) => response,
            Err(e) => return Err(send_error(e, &redactor)),
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        if status == StatusCode::UNAUTHORIZED
            && let Some(token) = &oauth_token
        {
            self.inner.oauth.invalidate(token); // the next attempt refreshes
        }
        let retry_after = wait_hint(response.headers(), SystemTime::now());
        let limit = if status.is_success() {
            SUCCESS_BODY_LIMIT
        } else {
            ERROR_BODY_LIMIT
        };
        let read = read_body(response, limit, &redactor).await;
        classify(status, retry_after, read, &redactor)
    }
}

#[async_trait]
impl Deals for HubSpotClient {
    fn preview(&self, draft: &DealDraft) -> HubSpotRequest {
        v1::create_request(draft)
    }

    /// One `POST /deals/v1/deal/`; never retries (the caller owns retries, see
    /// [`HubSpotError::is_retryable`]). 2xx with a readable `dealId` → `Ok`; 2xx otherwise →
    /// `OutcomeUnknown`; 401/403 → `Unauthorized`; 429 → `RateLimited` (with `Retry-After` in
    /// seconds or as an HTTP date); 5xx → `Unavailable`; any other status → `Rejected`. No
    /// connection (refused, DNS, TLS, connect timeout) → `Unavailable { status: None }`; a timeout
    /// or broken connection after sending → `OutcomeUnknown`. A token that is not a valid header
    /// value → `NoCredentials`.
    #[tracing::instrument(
        name = "hubspot_create_deal",
        skip_all,
        fields(path = v1::CREATE_DEAL_PATH, auth = auth_kind(auth), status = Empty, duration_ms = Empty)
    )]
    async fn create(&self, draft: &DealDraft, auth: &HubSpotAuth) -> Result<CreatedDeal, HubSpotError> {
        let started = Instant::now();
        let result = self.send_create(draft, auth).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::Span::current().record("duration_ms", elapsed_ms);
        match &result {
            Ok(created) => tracing::info!(deal_id = created.deal_id, "HubSpot created the deal"),
            Err(err) => tracing::warn!(reason = %err.reason(), error = %err, "HubSpot did not create the deal"),
        }
        result
    }
}

fn auth_kind(auth: &HubSpotAuth) -> &'static str {
    match auth {
        HubSpotAuth::AccessToken(_) => "access_token",
        HubSpotAuth::ApiKey(_) => "api_key",
        HubSpotAuth::OAuth(_) => "oauth",
    }
}

/// Checks the base URL and derives the create-deal URL from it. Messages never quote the URL.
fn parse_base_url(raw: &str) -> Result<(String, Url), HubSpotConfigError> {
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
    let create_url = Url::parse(&format!("{base}{}", v1::CREATE_DEAL_PATH))
        .map_err(|e| HubSpotConfigError::InvalidBaseUrl(e.to_string()))?;
    Ok((base.to_owned(), create_url))
}

/// Replaces the secret (and its URL-encoded form) in any text we keep from an exchange.
struct Redactor<'a> {
    secret: &'a str,
    encoded: Option<String>,
}

impl<'a> Redactor<'a> {
    fn new(secret: &'a str, encoded: Option<String>) -> Self {
        let encoded = encoded.filter(|e| e != secret && !e.is_empty());
        Redactor { secret, encoded }
    }

    fn redact(&self, text: &str) -> String {
        let mut text = if self.secret.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.secret, REDACTED)
        };
        if let Some(encoded) = &self.encoded {
            text = text.replace(encoded.as_str(), REDACTED);
        }
        text
    }
}

/// An error from `send()`: no answer arrived. Whether the request left decides the variant.
fn send_error(err: reqwest::Error, redactor: &Redactor<'_>) -> HubSpotError {
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
            message: format!("no answer in time, the deal may exist: {message}"),
        }
    } else {
        HubSpotError::OutcomeUnknown {
            status: None,
            message: format!("the connection failed after the request was sent, the deal may exist: {message}"),
        }
    }
}

/// The error and its causes on one line. Callers strip the URL first.
fn describe(err: &reqwest::Error) -> String {
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
                let room = limit - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
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

/// Turns an answer into the outcome the pipeline branches on.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    read: BodyRead,
    redactor: &Redactor<'_>,
) -> Result<CreatedDeal, HubSpotError> {
    let code = status.as_u16();
    if status.is_success() {
        let unknown = |why: String| HubSpotError::OutcomeUnknown {
            status: Some(code),
            message: format!("HTTP {code} but {why}; the deal may exist"),
        };
        if let Some(e) = read.error {
            return Err(unknown(format!("the body could not be read ({e})")));
        }
        if read.truncated {
            return Err(unknown(format!("the body is over {SUCCESS_BODY_LIMIT} bytes")));
        }
        return v1::parse_created(&read.bytes).map_err(|e| unknown(e.to_string()));
    }

    let text = redactor.redact(&String::from_utf8_lossy(&read.bytes));
    let body = v1::parse_error_body(text.as_bytes());
    Err(match code {
        401 | 403 => oauth::refusal(code, text.as_bytes(), body),
        429 => {
            // A 429 body naming the daily policy is as final for today as the daily header.
            let daily = v1::is_daily_limit(&read.bytes);
            let retry_after = if daily { Some(DAILY_LIMIT_WAIT) } else { retry_after };
            HubSpotError::RateLimited { retry_after, body }
        }
        500..=599 => HubSpotError::Unavailable {
            status: Some(code),
            message: status_message(status, &body),
        },
        _ => HubSpotError::Rejected {
            status: code,
            raw: bounded_raw(text, read.truncated),
            body,
        },
    })
}

fn status_message(status: StatusCode, body: &HubSpotErrorBody) -> String {
    let mut message = format!("HTTP {status}");
    if let Some(said) = &body.message {
        message.push_str(": ");
        message.push_str(truncate_at_char(said, 500));
    }
    message
}

/// `raw` for a dead letter: at most `RAW_LIMIT` bytes (on a character boundary), marked when cut.
fn bounded_raw(text: String, already_truncated: bool) -> String {
    if text.len() <= RAW_LIMIT && !already_truncated {
        return text;
    }
    format!("{}… [truncated]", truncate_at_char(&text, RAW_LIMIT))
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// HubSpot's rate-limit window headers (present on every answer to private-app and OAuth calls).
const RATE_LIMIT_REMAINING: &str = "x-hubspot-ratelimit-remaining";
const RATE_LIMIT_INTERVAL: &str = "x-hubspot-ratelimit-interval-milliseconds";

/// The daily limit's header: requests left until midnight in the account's time zone.
const RATE_LIMIT_DAILY_REMAINING: &str = "x-hubspot-ratelimit-daily-remaining";
/// The wait reported when the *daily* limit is spent: it resets at midnight in the account's time
/// zone (unknown here), so "a day" — longer than any invocation, so that no retry is attempted.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// How long the answer asks us to wait: [`DAILY_LIMIT_WAIT`] when the daily limit is spent
/// (`X-HubSpot-RateLimit-Daily-Remaining: 0`); else `Retry-After` when present; else, when the
/// rolling window is spent (`X-HubSpot-RateLimit-Remaining: 0`), its whole length, the longest it can
/// take to free up.
fn wait_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if text(RATE_LIMIT_DAILY_REMAINING).is_some_and(|left| left == "0") {
        return Some(DAILY_LIMIT_WAIT);
    }
    if let Some(after) = text(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, now)) {
        return Some(after);
    }
    if text(RATE_LIMIT_REMAINING)?.parse::<u64>().ok()? != 0 {
        return None;
    }
    text(RATE_LIMIT_INTERVAL)?
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is zero.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = SystemTime::from(chrono::DateTime::parse_from_rfc2822(value).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use secrecy::SecretString;
    use serde_json::{Value, json};
    use wiremock::matchers::query_param_is_missing;
    use wiremock::matchers::{any, bearer_token, body_json, header, header_regex, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::{Associations, PropValue, Property};

    const TOKEN: &str = "pat-na1-5e3b1c2d-0000-4a4a-9f9f-token-secret";
    const API_KEY: &str = "a1b2c3d4-hapikey-secret-e5f6";

    fn token() -> HubSpotAuth {
        HubSpotAuth::AccessToken(SecretString::from(TOKEN.to_owned()))
    }

    fn api_key() -> HubSpotAuth {
        HubSpotAuth::ApiKey(SecretString::from(API_KEY.to_owned()))
    }

    fn draft() -> DealDraft {
        DealDraft {
            pipeline: Some("default".to_owned()),
            dealstage: "appointmentscheduled".to_owned(),
            properties: vec![
                Property {
                    name: "dealname".to_owned(),
                    value: PropValue::Text("Ada's order".to_owned()),
                },
                Property {
                    name: "closedate".to_owned(),
                    value: PropValue::Date(1_733_011_200_000),
                },
            ],
            associations: Associations {
                company_ids: vec![8_954_037],
                contact_ids: vec![27_136],
            },
        }
    }

    fn client_for(base_url: String, request_timeout: Duration) -> HubSpotClient {
        HubSpotClient::new(HubSpotClientConfig {
            base_url,
            connect_timeout: Duration::from_secs(1),
            request_timeout,
        })
        .unwrap()
    }

    fn client(server: &MockServer) -> HubSpotClient {
        client_for(server.uri(), Duration::from_secs(5))
    }

    fn created_body() -> Value {
        json!({"portalId": 62_515, "dealId": 151_088, "isDeleted": false, "properties": {}, "imports": []})
    }

    /// One create call against a server that answers every request with `answer`, exactly once.
    async fn answer_with(answer: ResponseTemplate, auth: &HubSpotAuth) -> Result<CreatedDeal, HubSpotError> {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).expect(1).mount(&server).await;
        client(&server).create(&draft(), auth).await
    }

    fn validation_error_body() -> Value {
        json!({
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "079df615-35f9-46ed-80f9-d5930ce5c48d",
            "validationResults": [{
                "isValid": false,
                "message": "nope was not one of the allowed options: [appointmentscheduled, qualifiedtobuy]",
                "error": "INVALID_OPTION",
                "name": "dealstage"
            }],
            "requestId": "e942fbd1-1236-4c1d-b59c-ff44c89bf1c5"
        })
    }

    #[tokio::test]
    async fn create_sends_the_v1_request_with_a_bearer_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(bearer_token(TOKEN))
            .and(header_regex("user-agent", r"^dealhook/\d+\.\d+\.\d+"))
            .and(header("content-type", "application/json"))
            .and(header("accept", "application/json"))
            .and(query_param_is_missing("hapikey"))
            .and(body_json(v1::create_request(&draft()).body))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;

        let created = client(&server).create(&draft(), &token()).await.unwrap();
        assert_eq!(
            created,
            CreatedDeal {
                deal_id: 151_088,
                portal_id: Some(62_515),
                association_create_failures: vec![],
            }
        );
    }

    #[tokio::test]
    async fn an_api_key_goes_in_the_query_and_not_in_an_authorization_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(query_param("hapikey", API_KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;

        client(&server).create(&draft(), &api_key()).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        assert!(
            !requests[0].headers.contains_key("authorization"),
            "{:?}",
            requests[0].headers
        );
    }

    #[tokio::test]
    async fn a_base_url_with_a_path_prefix_and_a_trailing_slash_is_honoured() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/mock/deals/v1/deal/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(format!("{}/mock/", server.uri()), Duration::from_secs(5));
        assert_eq!(client.base_url(), format!("{}/mock", server.uri()));
        client.create(&draft(), &token()).await.unwrap();
    }

    #[tokio::test]
    async fn association_create_failures_are_returned_with_the_created_deal() {
        let failure = json!({"message": "Company 8954037 does not exist", "failureType": "OBJECT_NOT_FOUND", "objectType": "COMPANY", "objectId": 8_954_037});
        let body = json!({"portalId": 62_515, "dealId": 9, "associationCreateFailures": [failure.clone()]});
        let created = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap();
        assert_eq!(created.deal_id, 9);
        assert_eq!(created.association_create_failures, vec![failure]);
    }

    #[tokio::test]
    async fn a_hubspot_validation_error_is_rejected_and_names_the_property() {
        let answer = ResponseTemplate::new(400).set_body_json(validation_error_body());
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::Rejected { status, body, raw } = &err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(*status, 400);
        assert_eq!(body.message.as_deref(), Some("Property values were not valid"));
        assert_eq!(
            body.correlation_id.as_deref(),
            Some("079df615-35f9-46ed-80f9-d5930ce5c48d")
        );
        assert!(raw.contains("INVALID_OPTION"), "{raw}");
        assert!(!err.is_retryable());
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.as_deref(), Some("dealstage"));
        assert_eq!(problems[0].code, "INVALID_OPTION");
    }

    #[tokio::test]
    async fn a_non_json_400_is_rejected_with_its_raw_text() {
        let answer = ResponseTemplate::new(400).set_body_string("<html><body>Bad Request</body></html>");
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::Rejected { status, body, raw } = err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(status, 400);
        assert_eq!(body, HubSpotErrorBody::default());
        assert_eq!(raw, "<html><body>Bad Request</body></html>");
    }

    #[tokio::test]
    async fn refused_credentials_are_unauthorized() {
        for code in [401, 403] {
            let answer = ResponseTemplate::new(code).set_body_json(json!({
                "status": "error",
                "message": "Authentication credentials not found.",
                "correlationId": "c0ffee00-0000-0000-0000-000000000000",
                "category": "INVALID_AUTHENTICATION"
            }));
            let err = answer_with(answer, &token()).await.unwrap_err();
            match &err {
                HubSpotError::Unauthorized { status, body } => {
                    assert_eq!(*status, code);
                    assert_eq!(body.category.as_deref(), Some("INVALID_AUTHENTICATION"));
                }
                other => panic!("HTTP {code}: expected Unauthorized, got {other:?}"),
            }
            assert!(!err.is_retryable(), "HTTP {code}");
        }
    }

    #[tokio::test]
    async fn a_rate_limit_carries_retry_after_in_seconds() {
        let answer = ResponseTemplate::new(429)
            .insert_header("Retry-After", "7")
            .set_body_json(json!({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}));
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::RateLimited { retry_after, body } = &err else {
            panic!("expected RateLimited, got {err:?}");
        };
        assert_eq!(*retry_after, Some(Duration::from_secs(7)));
        assert_eq!(body.category.as_deref(), Some("RATE_LIMIT"));
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_rate_limit_without_retry_after_has_none() {
        let err = answer_with(ResponseTemplate::new(429), &token()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::RateLimited { retry_after: None, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_rate_limit_with_an_http_date_waits_until_then() {
        let at = SystemTime::now() + Duration::from_secs(120);
        let date = chrono::DateTime::<chrono::Utc>::from(at)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let answer = ResponseTemplate::new(429).insert_header("Retry-After", date.as_str());
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::RateLimited {
            retry_after: Some(wait),
            ..
        } = err
        else {
            panic!("expected RateLimited with a delay, got {err:?}");
        };
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after(" 30 ", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn server_errors_are_unavailable_and_only_gateway_errors_are_retryable() {
        for (code, retryable) in [(500, false), (501, false), (502, true), (503, true), (504, true)] {
            let err = answer_with(ResponseTemplate::new(code), &token()).await.unwrap_err();
            assert!(
                matches!(&err, HubSpotError::Unavailable { status: Some(s), .. } if *s == code),
                "HTTP {code}: {err:?}"
            );
            assert_eq!(err.is_retryable(), retryable, "HTTP {code}");
            // What is not retried because HubSpot may have written the deal is exactly what may exist.
            assert_eq!(err.may_have_created(), !retryable, "HTTP {code}");
        }
    }

    #[tokio::test]
    async fn a_spent_rate_limit_window_without_retry_after_waits_for_the_interval() {
        let answer = ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            .insert_header("X-HubSpot-RateLimit-Remaining", "0")
            .insert_header("X-HubSpot-RateLimit-Max", "100");
        let err = answer_with(answer, &token()).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(10)), "{err:?}");
    }

    #[tokio::test]
    async fn a_spent_daily_limit_is_not_waited_for_within_an_invocation() {
        let by_header = ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Daily", "250000")
            .insert_header("X-HubSpot-RateLimit-Daily-Remaining", "0")
            .insert_header("Retry-After", "1");
        let by_body = ResponseTemplate::new(429).set_body_json(serde_json::json!({
            "status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "DAILY"
        }));
        let ten_secondly = ResponseTemplate::new(429)
            .set_body_json(serde_json::json!({"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}));
        for (name, answer) in [("header", by_header), ("body", by_body)] {
            let err = answer_with(answer, &token()).await.unwrap_err();
            assert_eq!(err.retry_after(), Some(DAILY_LIMIT_WAIT), "{name}: {err:?}");
            let policy = crate::hubspot::RetryPolicy::default();
            assert_eq!(
                policy.next_wait(1, err.retry_after(), None, 1.0),
                None,
                "{name}: no retry"
            );
        }
        let err = answer_with(ten_secondly, &token()).await.unwrap_err();
        assert_eq!(err.retry_after(), None, "the rolling limit is retried as usual");
    }

    #[test]
    fn retry_after_wins_over_the_rate_limit_window() {
        let now = SystemTime::now();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let window = [
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
            ("x-hubspot-ratelimit-remaining", "0"),
        ];
        let mut with_retry_after = window.to_vec();
        with_retry_after.push(("retry-after", "2"));
        assert_eq!(
            wait_hint(&headers(&with_retry_after), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(wait_hint(&headers(&window), now), Some(Duration::from_secs(10)));
        let left = [window[0], ("x-hubspot-ratelimit-remaining", "3")];
        assert_eq!(wait_hint(&headers(&left), now), None, "requests left in the window");
        assert_eq!(wait_hint(&headers(&window[1..]), now), None, "no interval given");
        assert_eq!(wait_hint(&HeaderMap::new(), now), None);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_rejected() {
        let answer = ResponseTemplate::new(301).insert_header("Location", "https://example.com/deals/v1/deal/");
        let err = answer_with(answer, &token()).await.unwrap_err();
        assert!(matches!(err, HubSpotError::Rejected { status: 301, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_slower_than_the_request_timeout_leaves_the_outcome_unknown() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(created_body())
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(server.uri(), Duration::from_millis(300));
        let err = client.create(&draft(), &token()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::OutcomeUnknown { status: None, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(err.may_have_created());
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_was_sent_leaves_the_outcome_unknown() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let hang_up = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0_u8; 4096];
            let _ = std::io::Read::read(&mut socket, &mut request);
            // Closing without a word: HubSpot may or may not have acted on it.
        });
        let err = client_for(base_url, Duration::from_secs(5))
            .create(&draft(), &token())
            .await
            .unwrap_err();
        hang_up.join().unwrap();
        assert!(
            matches!(err, HubSpotError::OutcomeUnknown { status: None, .. }),
            "{err:?}"
        );
    }

    fn refused_base_url() -> String {
        // Bind a random OS port and free it again: nothing listens there afterwards.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_and_retryable() {
        let client = client_for(refused_base_url(), Duration::from_secs(5));
        let err = client.create(&draft(), &token()).await.unwrap_err();
        assert!(matches!(err, HubSpotError::Unavailable { status: None, .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(!err.may_have_created(), "nothing was sent");
    }

    #[tokio::test]
    async fn a_200_with_malformed_json_leaves_the_outcome_unknown() {
        for (name, body) in [
            ("truncated JSON", r#"{"portalId": 62515, "dealId": 15"#),
            ("no dealId", r#"{"portalId": 62515}"#),
            ("html", "<html>ok</html>"),
            ("empty", ""),
        ] {
            let err = answer_with(ResponseTemplate::new(200).set_body_string(body), &token())
                .await
                .unwrap_err();
            assert!(
                matches!(err, HubSpotError::OutcomeUnknown { status: Some(200), .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_error_body_is_truncated() {
        let huge = format!("{{\"message\":\"{}\"}}", "é".repeat(100 * 1024));
        let err = answer_with(ResponseTemplate::new(400).set_body_string(huge), &token())
            .await
            .unwrap_err();
        let HubSpotError::Rejected { raw, body, .. } = err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert!(raw.len() <= RAW_LIMIT + 32, "raw is {} bytes", raw.len());
        assert!(raw.ends_with("… [truncated]"), "{}", &raw[raw.len() - 40..]);
        assert_eq!(body, HubSpotErrorBody::default(), "a cut-off body is not JSON");
    }

    #[tokio::test]
    async fn a_large_success_body_within_the_cap_is_read() {
        let mut body = created_body();
        body["properties"] = json!({"description": {"value": "x".repeat(200 * 1024)}});
        let created = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap();
        assert_eq!(created.deal_id, 151_088);
    }

    #[tokio::test]
    async fn a_success_body_over_the_cap_leaves_the_outcome_unknown() {
        let mut body = created_body();
        body["properties"] = json!({"description": {"value": "x".repeat(SUCCESS_BODY_LIMIT)}});
        let err = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HubSpotError::OutcomeUnknown { status: Some(200), message } if message.contains("over")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_a_header_is_reported_without_sending() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let auth = HubSpotAuth::AccessToken(SecretString::from("tok\nen".to_owned()));
        let err = client(&server).create(&draft(), &auth).await.unwrap_err();
        assert!(matches!(err, HubSpotError::NoCredentials), "{err:?}");
    }

    /// A misbehaving server that echoes the credential back, in every place a body can hold text.
    fn echoing_answers(secret: &str) -> Vec<(&'static str, ResponseTemplate)> {
        let echo = json!({"status": "error", "message": format!("bad key {secret}"),
            "validationResults": [{"isValid": false, "name": "dealstage", "error": "INVALID_OPTION",
            "message": format!("POST /deals/v1/deal/?hapikey={secret} Authorization: Bearer {secret}")}]});
        vec![
            ("400 json", ResponseTemplate::new(400).set_body_json(echo.clone())),
            (
                "400 text",
                ResponseTemplate::new(400).set_body_string(format!("hapikey={secret}")),
            ),
            ("401", ResponseTemplate::new(401).set_body_json(echo.clone())),
            ("429", ResponseTemplate::new(429).set_body_json(echo.clone())),
            ("503", ResponseTemplate::new(503).set_body_json(echo)),
            (
                "200 junk",
                ResponseTemplate::new(200).set_body_string(format!("{{\"dealId\": \"{secret}\"}}")),
            ),
        ]
    }

    /// Every error, in both spellings, for both kinds of credential: the secret in use never shows.
    #[tokio::test]
    async fn no_error_text_contains_the_token_or_the_api_key() {
        for (secret, auth) in [(TOKEN, token()), (API_KEY, api_key())] {
            let mut errors = Vec::new();
            for (name, answer) in echoing_answers(secret) {
                errors.push((name, answer_with(answer, &auth).await.unwrap_err()));
            }
            let refused = client_for(refused_base_url(), Duration::from_secs(5));
            errors.push(("refused", refused.create(&draft(), &auth).await.unwrap_err()));

            let server = MockServer::start().await;
            Mock::given(any())
                .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
                .mount(&server)
                .await;
            let slow = client_for(server.uri(), Duration::from_millis(200));
            errors.push(("timeout", slow.create(&draft(), &auth).await.unwrap_err()));

            for (name, err) in &errors {
                let texts = [
                    err.to_string(),
                    format!("{err:?}"),
                    format!("{:?}", err.problems()),
                    serde_json::to_string(&err.problems()).unwrap(),
                ];
                for text in texts {
                    assert!(!text.contains(secret), "{name} with {auth:?}: secret in {text}");
                }
            }
            assert!(!format!("{auth:?} {:?}", client_for(server.uri(), Duration::from_secs(1))).contains(secret));
        }
    }

    #[tokio::test]
    async fn log_lines_carry_path_status_and_duration_but_no_secret() {
        let capture = crate::telemetry::capture::LogCapture::start();

        for (secret, auth) in [(TOKEN, token()), (API_KEY, api_key())] {
            for (_, answer) in echoing_answers(secret) {
                let _ = answer_with(answer, &auth).await;
            }
            let _ = answer_with(ResponseTemplate::new(200).set_body_json(created_body()), &auth).await;
        }

        let logs = capture.text();
        assert!(logs.contains("hubspot_create_deal"), "{logs}");
        assert!(logs.contains(r#""path":"/deals/v1/deal/""#), "{logs}");
        assert!(
            logs.contains(r#""status":400"#) && logs.contains(r#""status":200"#),
            "{logs}"
        );
        assert!(
            logs.contains(r#""auth":"api_key""#) && logs.contains(r#""deal_id":151088"#),
            "{logs}"
        );
        assert!(logs.contains("duration_ms"), "{logs}");
        assert!(!logs.contains(API_KEY) && !logs.contains(TOKEN), "{logs}");
    }

    #[test]
    fn bad_base_urls_are_rejected_by_new() {
        let cases = [
            "",
            "api.hubapi.com",
            "not a url",
            "ftp://api.hubapi.com",
            "file:///etc/passwd",
            "https://user:hunter2@api.hubapi.com",
            "https://api.hubapi.com?hapikey=abc",
            "https://api.hubapi.com/#frag",
        ];
        for base_url in cases {
            let config = HubSpotClientConfig {
                base_url: base_url.to_owned(),
                ..HubSpotClientConfig::default()
            };
            match HubSpotClient::new(config) {
                Err(HubSpotConfigError::InvalidBaseUrl(reason)) => {
                    assert!(
                        !reason.contains("hunter2") && !reason.contains("abc"),
                        "{base_url}: {reason}"
                    );
                }
                other => panic!("{base_url:?}: expected InvalidBaseUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn good_base_urls_are_accepted_without_their_trailing_slash() {
        for (given, kept) in [
            ("https://api.hubapi.com", "https://api.hubapi.com"),
            ("https://api.hubapi.com/", "https://api.hubapi.com"),
            ("http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix"),
        ] {
            let client = HubSpotClient::new(HubSpotClientConfig {
                base_url: given.to_owned(),
                ..HubSpotClientConfig::default()
            })
            .unwrap();
            assert_eq!(client.base_url(), kept);
        }
        assert_eq!(
            HubSpotClient::new(HubSpotClientConfig::default()).unwrap().base_url(),
            "https://api.hubapi.com"
        );
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        let config = HubSpotClientConfig {
            request_timeout: Duration::ZERO,
            ..HubSpotClientConfig::default()
        };
        assert!(matches!(
            HubSpotClient::new(config),
            Err(HubSpotConfigError::ZeroTimeout)
        ));
    }
}
