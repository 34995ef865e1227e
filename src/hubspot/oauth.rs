//! OAuth for public apps: the secret's refresh token is exchanged at HubSpot's token endpoint for
//! short-lived access tokens, cached until shortly before they expire, one refresh at a time for
//! all concurrent requests. Never puts a grant value or an access token in a log line, an error or
//! a `Debug` string. (How a CRM call's 401/403 is classified, `MISSING_SCOPES` included, is
//! [`super::answer::classify_failure`]'s; the transport's `authorize` asks [`OAuthTokens`] for the
//! bearer token.)

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::field::Empty;

use super::{HubSpotConfigError, HubSpotError};
use crate::credentials::OAuthCredentials;
use crate::credentials::scrub::{self, Scrubber};

/// The token endpoint below `HUBSPOT_BASE_URL`. The date-versioned one: HubSpot's 2026-03 OAuth
/// document (`oauth.json`, `POST /oauth/2026-03/token`, a form-encoded body and no query parameters)
/// replaces `/oauth/v1/token`, which HubSpot's v1 OAuth migration guide says stops working on
/// 2027-02-16. Both take the same four fields for a refresh and answer the same JSON.
pub const TOKEN_PATH: &str = "/oauth/2026-03/token";

/// An access token is refreshed this long before `expires_in` says it expires (or halfway through
/// its life, if that is sooner), so that no request starts with a token about to lapse: HubSpot's
/// tokens live 1800 s, so a refresh every 25 minutes.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// When a refresh fails for a reason that may pass (429, 5xx, no connection) while the cached token
/// has at least this long left, that token is used rather than failing the delivery.
pub const STILL_USABLE: Duration = Duration::from_secs(30);

/// Most bytes read from a token endpoint answer (a real one is well under 2 KiB).
const BODY_LIMIT: usize = 64 * 1024;
/// Most characters of HubSpot's own message kept in an error.
const MESSAGE_LIMIT: usize = 500;

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Access tokens for OAuth grants, shared by every request of a cold start (clones share the cache).
///
/// [`Self::bearer`] answers from the cache while the token is fresh; otherwise one caller exchanges
/// the refresh token (`POST {HUBSPOT_BASE_URL}/oauth/2026-03/token`, form-encoded
/// `grant_type=refresh_token`, `client_id`, `client_secret`, `refresh_token`) while the others wait for
/// its answer. Every token obtained is given to [`scrub::remember`] before anything else is done
/// with it. The cache and a refusal are tied to the grant's three values: when the secret changes,
/// the next call exchanges the new grant.
#[derive(Clone)]
pub struct OAuthTokens {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    token_url: Url,
    now: Clock,
    state: Mutex<State>,
    /// Held while a refresh is under way, so that concurrent callers wait for it and take its token.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The grant HubSpot refused for good, and the error to answer with until the secret changes.
    refused: Option<(Grant, HubSpotError)>,
    /// A refresh token HubSpot returned in place of the secret's, for the grant it replaces.
    rotated: Option<(Grant, SecretString)>,
    /// Exchanges sent (answered or not), for tests and the log.
    exchanges: u64,
}

struct Cached {
    grant: Grant,
    access_token: SecretString,
    refresh_at: Instant,
    expires_at: Instant,
}

/// A SHA-256 digest of a grant's three values: tells whether the secret still holds the grant a
/// token or a refusal came from, without keeping another copy of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant([u8; 32]);

impl Grant {
    fn of(credentials: &OAuthCredentials) -> Grant {
        let mut digest = Sha256::new();
        for (_, value) in credentials.named_values() {
            // Length-prefixed, so that no two different triples hash alike.
            digest.update((value.len() as u64).to_be_bytes());
            digest.update(value.as_bytes());
        }
        Grant(digest.finalize().into())
    }
}

impl fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("token_url", &self.shared.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl OAuthTokens {
    /// Tokens from `{base_url}/oauth/2026-03/token` over `http` (its timeouts bound each exchange).
    /// `base_url` is the client's, already checked (no trailing slash, no query).
    pub fn new(http: reqwest::Client, base_url: &str) -> Result<OAuthTokens, HubSpotConfigError> {
        Self::with_clock(http, base_url, Arc::new(Instant::now))
    }

    /// As [`Self::new`], with the clock that decides expiry (tests move it forward).
    pub(crate) fn with_clock(
        http: reqwest::Client,
        base_url: &str,
        now: Clock,
    ) -> Result<OAuthTokens, HubSpotConfigError> {
        let token_url = Url::parse(&format!("{}{TOKEN_PATH}", base_url.trim_end_matches('/')))
            .map_err(|e| HubSpotConfigError::InvalidBaseUrl(e.to_string()))?;
        Ok(OAuthTokens {
            shared: Arc::new(Shared {
                http,
                token_url,
                now,
                state: Mutex::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// An access token for `grant`, to send as `Authorization: Bearer …`: the cached one until
    /// [`REFRESH_AHEAD`] before it expires, else a fresh one (one exchange for all concurrent
    /// callers). Cancel-safe: a caller dropped mid-refresh lets the next one refresh.
    ///
    /// Errors, all with nothing sent to the CRM:
    /// - [`HubSpotError::OAuthRefused`]: the token endpoint refused the grant (400/401/403, or any
    ///   other unexpected 3xx/4xx). Not retryable; the same grant is answered with the same error,
    ///   without asking HubSpot again, until the secret holds another one.
    /// - [`HubSpotError::RateLimited`] (429, with `Retry-After` when given) and
    ///   [`HubSpotError::Unavailable`] `{ status: None }` (5xx, no connection, a timeout, or a 2xx
    ///   without a usable token: the message names the field): retryable. If the cached token still
    ///   has [`STILL_USABLE`] left, it is returned instead (and a warning logged).
    pub async fn bearer(&self, grant: &OAuthCredentials) -> Result<SecretString, HubSpotError> {
        let id = Grant::of(grant);
        if let Some(token) = self.cached(id, |c, now| now < c.refresh_at) {
            return Ok(token);
        }
        let _turn = self.shared.refreshing.lock().await;
        // Whoever had the turn before may just have refreshed (or been refused).
        if let Some(token) = self.cached(id, |c, now| now < c.refresh_at) {
            return Ok(token);
        }
        if let Some((refused, error)) = &self.state().refused
            && *refused == id
        {
            return Err(error.clone());
        }
        let refresh_token = {
            let state = self.state();
            match &state.rotated {
                Some((for_grant, rotated)) if *for_grant == id => rotated.clone(),
                _ => grant.refresh_token.clone(),
            }
        };
        let sent_at = (self.shared.now)();
        self.state().exchanges += 1;
        match self.exchange(grant, &refresh_token).await {
            Ok(answer) => Ok(self.store(id, &refresh_token, sent_at, answer)),
            Err(error @ HubSpotError::OAuthRefused { .. }) => {
                tracing::error!(error = %error, "HubSpot refused the OAuth refresh token: re-authorise the app and update the secret");
                let mut state = self.state();
                state.refused = Some((id, error.clone()));
                state.cached = None;
                Err(error)
            }
            Err(error) => {
                if let Some(token) = self.cached(id, |c, now| now + STILL_USABLE < c.expires_at) {
                    tracing::warn!(error = %error, "the OAuth refresh failed; using the current access token until it expires");
                    return Ok(token);
                }
                Err(error)
            }
        }
    }

    /// Forgets `token` if it is the cached one (HubSpot answered 401 to it), so that the next
    /// [`Self::bearer`] refreshes. A token already replaced is ignored: several requests refused
    /// with the same old token cause one refresh, not one each.
    pub fn invalidate(&self, token: &SecretString) {
        let mut state = self.state();
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.access_token.expose_secret() == token.expose_secret())
        {
            state.cached = None;
        }
    }

    /// How many exchanges were sent so far (answered or not).
    pub fn exchanges(&self) -> u64 {
        self.state().exchanges
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, id: Grant, usable: impl Fn(&Cached, Instant) -> bool) -> Option<SecretString> {
        let now = (self.shared.now)();
        let state = self.state();
        let cached = state.cached.as_ref()?;
        (cached.grant == id && usable(cached, now)).then(|| cached.access_token.clone())
    }

    fn store(&self, id: Grant, used: &SecretString, sent_at: Instant, answer: TokenAnswer) -> SecretString {
        // Timed from when the request left: the token's life started no earlier.
        let ahead = REFRESH_AHEAD.min(answer.expires_in / 2);
        // `expires_in` is at most a year (parse_answer), so this never falls back.
        let expires_at = sent_at.checked_add(answer.expires_in).unwrap_or(sent_at);
        let mut state = self.state();
        state.refused = None;
        if let Some(new) = answer.refresh_token
            && new.expose_secret() != used.expose_secret()
        {
            tracing::warn!(
                "HubSpot returned a different OAuth refresh token; it is used for the next refreshes of this \
                 instance, but the secret still holds the old one"
            );
            state.rotated = Some((id, new));
        }
        state.cached = Some(Cached {
            grant: id,
            access_token: answer.access_token.clone(),
            refresh_at: expires_at - ahead,
            expires_at,
        });
        tracing::info!(
            expires_in_s = answer.expires_in.as_secs(),
            "HubSpot OAuth access token obtained"
        );
        answer.access_token
    }

    /// One `POST` to the token endpoint, its answer classified.
    #[tracing::instrument(name = "hubspot_oauth_refresh", skip_all, fields(method = "POST", path = TOKEN_PATH, status = Empty, duration_ms = Empty))]
    async fn exchange(
        &self,
        grant: &OAuthCredentials,
        refresh_token: &SecretString,
    ) -> Result<TokenAnswer, HubSpotError> {
        let scrubber = Scrubber::new(
            grant
                .named_values()
                .into_iter()
                .map(|(_, value)| value)
                .chain([refresh_token.expose_secret()]),
        );
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", grant.client_id.expose_secret()),
            ("client_secret", grant.client_secret.expose_secret()),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        let started = std::time::Instant::now();
        let sent = self
            .shared
            .http
            .post(self.shared.token_url.clone())
            .form(&form)
            .send()
            .await;
        let result = match sent {
            Err(e) => Err(unreachable(e, &scrubber)),
            Ok(response) => {
                let status = response.status();
                tracing::Span::current().record("status", status.as_u16());
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match read_capped(response).await {
                    Ok(bytes) => classify(status, retry_after, &bytes, &scrubber),
                    Err(why) => Err(unavailable(format!(
                        "HTTP {status} but the body could not be read ({})",
                        scrubber.scrub_str(&why)
                    ))),
                }
            }
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::Span::current().record("duration_ms", elapsed_ms);
        if let Err(error) = &result {
            tracing::warn!(reason = %error.reason(), error = %error, "the OAuth token exchange failed");
        }
        result
    }
}

/// A usable answer of the token endpoint.
struct TokenAnswer {
    access_token: SecretString,
    expires_in: Duration,
    refresh_token: Option<SecretString>,
}

/// A failure that may pass (the exchange can be repeated): retryable, and no CRM request was sent.
fn unavailable(what: String) -> HubSpotError {
    HubSpotError::Unavailable {
        status: None,
        message: format!("HubSpot's OAuth token endpoint failed: {what}; no CRM request was sent"),
    }
}

/// No answer: refused connection, DNS, TLS, a timeout, a broken connection. Repeating a refresh
/// is harmless, so all of these are retryable.
fn unreachable(err: reqwest::Error, scrubber: &Scrubber) -> HubSpotError {
    let text = super::transport::describe(&err.without_url());
    unavailable(format!("no answer ({})", scrubber.scrub_str(&text)))
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_LIMIT.saturating_sub(bytes.len());
                bytes.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                if chunk.len() > room {
                    return Ok(bytes);
                }
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err(e.without_url().to_string()),
        }
    }
}

/// Turns the token endpoint's answer into a token or the error the caller branches on.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: &[u8],
    scrubber: &Scrubber,
) -> Result<TokenAnswer, HubSpotError> {
    let code = status.as_u16();
    if status.is_success() {
        return parse_answer(bytes).map_err(|why| {
            unavailable(format!(
                "HTTP {code} without a usable access token ({})",
                scrubber.scrub_str(&why)
            ))
        });
    }
    let text = scrubber.scrub_str(&String::from_utf8_lossy(bytes)).into_owned();
    let said = ErrorSaid::read(text.as_bytes());
    match code {
        429 => Err(HubSpotError::RateLimited {
            retry_after,
            body: serde_json::from_str(&text).unwrap_or_default(),
        }),
        500..=599 => Err(unavailable(format!("HTTP {code}{}", said.suffix()))),
        400 | 401 | 403 => Err(HubSpotError::OAuthRefused {
            status: code,
            code: said.code.clone(),
            message: format!(
                "{}; check the secret's hubspot.oauth values: a revoked or expired refresh token (the app was \
                 uninstalled, or its scopes changed) needs the app installed again and the new refresh token \
                 stored in the secret",
                said.message.as_deref().unwrap_or("no message")
            ),
        }),
        _ => Err(HubSpotError::OAuthRefused {
            status: code,
            code: said.code.clone(),
            message: format!(
                "unexpected answer from {TOKEN_PATH}{}; check HUBSPOT_BASE_URL",
                said.suffix()
            ),
        }),
    }
}

/// What an error answer of the token endpoint says, in either shape HubSpot uses: RFC 6749
/// (`error`, `error_description`) or its own (`status`, `message`; `category` on newer answers).
#[derive(Debug, Default)]
struct ErrorSaid {
    code: Option<String>,
    message: Option<String>,
}

impl ErrorSaid {
    fn read(bytes: &[u8]) -> ErrorSaid {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
            return ErrorSaid::default();
        };
        let text = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(MESSAGE_LIMIT).collect::<String>())
        };
        let status = text("status").filter(|s| !s.eq_ignore_ascii_case("error"));
        ErrorSaid {
            code: text("error").or(status).or_else(|| text("category")),
            message: text("error_description").or_else(|| text("message")),
        }
    }

    fn suffix(&self) -> String {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => format!(": {code}: {message}"),
            (Some(said), None) | (None, Some(said)) => format!(": {said}"),
            (None, None) => String::new(),
        }
    }
}

/// Reads a 2xx answer (`AccessTokenResponse` in HubSpot's 2026-03 document): `access_token` a
/// non-empty string usable in a header, `expires_in` a positive whole number of seconds,
/// `token_type` `bearer` if given, `refresh_token` optional (a `client_credentials` answer has none).
/// The access token is remembered for scrubbing as soon as it is read. Errors name the field and
/// the rule, never a value.
fn parse_answer(bytes: &[u8]) -> Result<TokenAnswer, String> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the body is not JSON: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(body) = body else {
        return Err("the body is not a JSON object".to_owned());
    };
    let access_token = match body.get("access_token") {
        None | Some(Value::Null) => return Err("access_token is missing".to_owned()),
        Some(Value::String(token)) => token,
        Some(_) => return Err("access_token is not a string".to_owned()),
    };
    scrub::remember([access_token.as_str()]);
    if access_token.is_empty() {
        return Err("access_token is empty".to_owned());
    }
    if HeaderValue::try_from(format!("Bearer {access_token}")).is_err() {
        return Err("access_token holds characters an HTTP header cannot carry".to_owned());
    }
    let refresh_token = match body.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if token.is_empty() => None,
        Some(Value::String(token)) => {
            scrub::remember([token.as_str()]);
            Some(SecretString::from(token.clone()))
        }
        Some(_) => return Err("refresh_token is not a string".to_owned()),
    };
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => return Err("expires_in is missing".to_owned()),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|&s| s > 0)
            .ok_or_else(|| "expires_in is not a positive whole number of seconds".to_owned())?,
        Some(_) => return Err("expires_in is not a number".to_owned()),
    };
    // A lifetime beyond a year is not HubSpot's (1800 s) and would overflow the clock's arithmetic.
    if expires_in > 366 * 24 * 3600 {
        return Err("expires_in is over a year".to_owned());
    }
    match body.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err("token_type is not \"bearer\"".to_owned()),
    }
    Ok(TokenAnswer {
        access_token: SecretString::from(access_token.clone()),
        expires_in: Duration::from_secs(expires_in),
        refresh_token,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use serde_json::json;
    use wiremock::matchers::{bearer_token, body_string_contains, method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::*;
    use crate::hubspot::{Deals, HubSpotClient, HubSpotClientConfig};

    const CLIENT_ID: &str = "7d0c5a3e-0000-4a4a-9f9f-client-id";
    const CLIENT_SECRET: &str = "b7f0e1d2-client-secret-9c9c";
    const REFRESH: &str = "na1-refresh-6a1b-2c3d-4e5f-token";

    /// The n-th access token an [`Issuer`] hands out (long, as HubSpot's are: up to 300 characters).
    fn access(n: usize) -> String {
        format!("CJaccess-{n}-5e3b1c2d-0000-4a4a-{}", "x".repeat(200))
    }

    fn grant() -> OAuthCredentials {
        grant_with(REFRESH)
    }

    fn grant_with(refresh_token: &str) -> OAuthCredentials {
        OAuthCredentials {
            client_id: SecretString::from(CLIENT_ID.to_owned()),
            client_secret: SecretString::from(CLIENT_SECRET.to_owned()),
            refresh_token: SecretString::from(refresh_token.to_owned()),
        }
    }

    /// HubSpot's 2026-03 OAuth document (copied from the shared specs; see tests/fixtures).
    fn oauth_doc() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/hubspot-openapi/2026-03/oauth.json")).unwrap()
    }

    /// A successful answer, as `AccessTokenResponse` in the document describes it.
    fn answer(access_token: &str, expires_in: u64) -> Value {
        json!({
            "access_token": access_token, "expires_in": expires_in, "refresh_token": REFRESH,
            "token_type": "bearer", "token_use": "access_token", "hub_id": 62515,
            "scopes": ["oauth", "crm.objects.deals.write"], "user_id": 1234
        })
    }

    #[test]
    fn the_mock_answer_has_every_field_the_document_requires() {
        let doc = oauth_doc();
        let schema = &doc["components"]["schemas"]["AccessTokenResponse"];
        let body = answer(&access(1), 1800);
        for field in schema["required"].as_array().unwrap() {
            let field = field.as_str().unwrap();
            assert!(body.get(field).is_some(), "the mock answer lacks {field}");
        }
        for (field, value) in body.as_object().unwrap() {
            let kind = schema["properties"][field]["type"]
                .as_str()
                .unwrap_or_else(|| panic!("{field} not in the schema"));
            let fits = match kind {
                "string" => value.is_string(),
                "integer" => value.is_i64(),
                "array" => value.is_array(),
                other => panic!("{field}: type {other}"),
            };
            assert!(fits, "{field} is not a {kind}");
        }
        assert_eq!(schema["properties"]["token_use"]["enum"], json!(["access_token"]));
    }

    /// Hands out access(1), access(2), … with `expires_in`, after `delay`.
    struct Issuer {
        issued: AtomicUsize,
        expires_in: u64,
        delay: Duration,
    }

    impl Issuer {
        fn new(expires_in: u64) -> Issuer {
            Issuer {
                issued: AtomicUsize::new(0),
                expires_in,
                delay: Duration::ZERO,
            }
        }
    }

    impl Respond for Issuer {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(answer(&access(n), self.expires_in))
                .set_delay(self.delay)
        }
    }

    /// A clock that only moves when told to.
    #[derive(Clone)]
    struct TestClock {
        start: Instant,
        offset_ms: Arc<AtomicU64>,
    }

    impl TestClock {
        fn new() -> TestClock {
            TestClock {
                start: Instant::now(),
                offset_ms: Arc::new(AtomicU64::new(0)),
            }
        }

        /// Sets the clock to `secs` after its start.
        fn set(&self, secs: u64) {
            self.offset_ms.store(secs * 1000, Ordering::SeqCst);
        }

        fn clock(&self) -> Clock {
            let this = self.clone();
            Arc::new(move || this.start + Duration::from_millis(this.offset_ms.load(Ordering::SeqCst)))
        }
    }

    fn http(request_timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn tokens_at(base_url: &str, clock: &TestClock) -> OAuthTokens {
        OAuthTokens::with_clock(http(Duration::from_secs(5)), base_url, clock.clock()).unwrap()
    }

    async fn token_endpoint(server: &MockServer, answer: impl Respond + 'static) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(answer)
            .mount(server)
            .await;
    }

    fn exchanges_seen(requests: &[Request]) -> usize {
        requests.iter().filter(|r| r.url.path() == TOKEN_PATH).count()
    }

    /// The request body, form-decoded.
    fn form_fields(request: &Request) -> Vec<(String, String)> {
        let body = String::from_utf8(request.body.clone()).unwrap();
        let url = Url::parse(&format!("http://form.invalid/?{body}")).unwrap();
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn the_first_use_exchanges_the_refresh_token_as_the_2026_03_document_describes() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        let tokens = tokens_at(&server.uri(), &TestClock::new());

        let token = tokens.bearer(&grant()).await.unwrap();
        assert_eq!(token.expose_secret(), access(1));
        assert_eq!(
            scrub::known_secrets().scrub_str(&access(1)),
            scrub::REDACTED,
            "remembered for scrubbing"
        );

        let requests = server.received_requests().await.unwrap();
        let [request] = requests.as_slice() else {
            panic!("expected one request, got {}", requests.len());
        };
        // What the document says of this operation: POST, no parameters, a form body of strings.
        let doc = oauth_doc();
        let operation = &doc["paths"][TOKEN_PATH]["post"];
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(operation["parameters"], json!([]));
        assert_eq!(request.url.query(), None, "no query parameters");
        let content = operation["requestBody"]["content"].as_object().unwrap();
        let media_type = request.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(
            content.contains_key(media_type),
            "{media_type} is not one the document lists"
        );
        let schema = &content[media_type]["schema"];
        let fields = form_fields(request);
        for (name, value) in &fields {
            let property = &schema["properties"][name];
            assert_eq!(property["type"], "string", "{name} is not a field of the document");
            if let Some(allowed) = property["enum"].as_array() {
                assert!(
                    allowed.contains(&json!(value)),
                    "{name}={value} is not one of {allowed:?}"
                );
            }
        }
        let mut fields = fields;
        fields.sort();
        let expected = [
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
        ];
        assert_eq!(
            fields,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())),
            "exactly the refresh grant's fields, once each"
        );
        assert_eq!(tokens.exchanges(), 1);
    }

    #[tokio::test]
    async fn a_token_is_cached_until_shortly_before_expires_in_and_then_refreshed() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        let clock = TestClock::new();
        let tokens = tokens_at(&server.uri(), &clock);

        // HubSpot's 1800 s: refreshed REFRESH_AHEAD (300 s) before, at 1500 s.
        for (at, expected, exchanges) in [
            (0, 1, 1),
            (1, 1, 1),
            (1000, 1, 1),
            (1499, 1, 1),
            (1500, 2, 2),
            (1501, 2, 2),
            (2999, 2, 2),
            (3000, 3, 3),
        ] {
            clock.set(at);
            let token = tokens.bearer(&grant()).await.unwrap();
            assert_eq!(token.expose_secret(), access(expected), "at {at} s");
            assert_eq!(tokens.exchanges(), exchanges, "at {at} s");
        }
        assert_eq!(exchanges_seen(&server.received_requests().await.unwrap()), 3);
    }

    #[tokio::test]
    async fn a_short_lived_token_is_refreshed_halfway_through_its_life() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(60)).await;
        let clock = TestClock::new();
        let tokens = tokens_at(&server.uri(), &clock);
        for (at, expected) in [(0, 1), (29, 1), (30, 2), (59, 2), (60, 3)] {
            clock.set(at);
            assert_eq!(
                tokens.bearer(&grant()).await.unwrap().expose_secret(),
                access(expected),
                "at {at} s"
            );
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_refresh() {
        let server = MockServer::start().await;
        let issuer = Issuer {
            delay: Duration::from_millis(300),
            ..Issuer::new(1800)
        };
        token_endpoint(&server, issuer).await;
        let tokens = tokens_at(&server.uri(), &TestClock::new());

        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let tokens = tokens.clone();
            callers.spawn(async move { tokens.bearer(&grant()).await.map(|t| t.expose_secret().to_owned()) });
        }
        let got: Vec<String> = callers.join_all().await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 12);
        assert!(got.iter().all(|t| *t == access(1)), "every caller gets the one token");
        assert_eq!(exchanges_seen(&server.received_requests().await.unwrap()), 1);
    }

    #[tokio::test]
    async fn a_401_refreshes_once_however_many_requests_saw_it() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        let tokens = tokens_at(&server.uri(), &TestClock::new());
        let first = tokens.bearer(&grant()).await.unwrap();

        // Several requests were refused with the same token.
        tokens.invalidate(&first);
        tokens.invalidate(&first);
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let tokens = tokens.clone();
            callers.spawn(async move { tokens.bearer(&grant()).await.map(|t| t.expose_secret().to_owned()) });
        }
        for got in callers.join_all().await {
            assert_eq!(got.unwrap(), access(2));
        }
        // A late 401 for the old token does not throw away the new one.
        tokens.invalidate(&first);
        assert_eq!(tokens.bearer(&grant()).await.unwrap().expose_secret(), access(2));
        assert_eq!(tokens.exchanges(), 2);
        assert_eq!(exchanges_seen(&server.received_requests().await.unwrap()), 2);
    }

    fn created_deal() -> Value {
        json!({"portalId": 62515, "dealId": 151088, "isDeleted": false, "properties": {}, "imports": []})
    }

    fn expired_body() -> Value {
        json!({"status": "error", "message": "The OAuth token used to make this call expired 0 second(s) ago.",
            "correlationId": "019cd9fe-0000-7000-8000-000000000008", "category": "EXPIRED_AUTHENTICATION",
            "context": {"expire time": ["2026-03-10T23:04:41.164Z"]}})
    }

    fn draft() -> crate::domain::DealDraft {
        crate::domain::DealDraft {
            pipeline: Some("default".to_owned()),
            dealstage: "appointmentscheduled".to_owned(),
            properties: vec![],
            associations: crate::domain::Associations::default(),
        }
    }

    fn client(server: &MockServer) -> HubSpotClient {
        HubSpotClient::new(HubSpotClientConfig {
            base_url: server.uri(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    /// The deal endpoint refuses access(1) as expired and accepts access(2).
    async fn deal_endpoint_refusing_the_first_token(server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(bearer_token(access(1)))
            .respond_with(ResponseTemplate::new(401).set_body_json(expired_body()))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(bearer_token(access(2)))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_deal()))
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn the_client_sends_the_access_token_and_a_401_makes_its_next_attempt_refresh() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        deal_endpoint_refusing_the_first_token(&server).await;
        let client = client(&server);
        let auth = crate::credentials::HubSpotAuth::OAuth(grant());
        let v1 = crate::hubspot::HubSpotOptions::default();

        let err = client.create(&v1, &draft(), &auth).await.unwrap_err();
        assert!(matches!(err, HubSpotError::Unauthorized { status: 401, .. }), "{err:?}");
        let created = client.create(&v1, &draft(), &auth).await.unwrap();
        assert_eq!(created.deal_id, 151_088);
        assert_eq!(client.oauth().exchanges(), 2);
        // A third call uses the cached second token.
        client.create(&v1, &draft(), &auth).await.unwrap();
        assert_eq!(client.oauth().exchanges(), 2);
    }

    /// The token goes on every call of the transport, whatever the API version: a 2026-03 deal
    /// create and a company search share one exchange, and nothing else authenticates them.
    #[tokio::test]
    async fn every_call_of_the_transport_carries_the_access_token() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        Mock::given(method("POST"))
            .and(path("/crm/objects/2026-03/deals"))
            .and(bearer_token(access(1)))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "151088", "properties": {}})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/crm/objects/2026-03/companies/search"))
            .and(bearer_token(access(1)))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 1, "results": [{"id": "77"}]})))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server);
        let auth = crate::credentials::HubSpotAuth::OAuth(grant());
        let options = crate::hubspot::HubSpotOptions {
            api: crate::hubspot::HubSpotApi::V2026_03,
            upsert_by: None,
        };

        let created = client.create(&options, &draft(), &auth).await.unwrap();
        assert_eq!(created.deal_id, 151_088);
        let company = client
            .search_company(crate::hubspot::HubSpotApi::V2026_03, "acme.example", &auth)
            .await
            .unwrap();
        assert!(company.is_some(), "{company:?}");
        assert_eq!(client.oauth().exchanges(), 1);
    }

    /// The refusals HubSpot documents or was seen to send, in both error shapes.
    fn refusals() -> Vec<(&'static str, u16, ResponseTemplate, Option<&'static str>)> {
        vec![
            (
                "v1 shape",
                400,
                ResponseTemplate::new(400).set_body_json(
                    json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}),
                ),
                Some("BAD_REFRESH_TOKEN"),
            ),
            (
                "2026-03 shape",
                400,
                ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant",
                    "error_description": "refresh token is invalid, expired or revoked",
                    "status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid, expired or revoked"})),
                Some("invalid_grant"),
            ),
            (
                "wrong client secret",
                401,
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client",
                    "error_description": "client authentication failed"})),
                Some("invalid_client"),
            ),
            (
                "400, not JSON",
                400,
                ResponseTemplate::new(400).set_body_string("Bad Request"),
                None,
            ),
            (
                "404: a wrong base URL",
                404,
                ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"),
                None,
            ),
        ]
    }

    #[tokio::test]
    async fn a_refused_refresh_token_is_terminal_and_is_not_sent_again_until_the_secret_changes() {
        for (row, status, refusal, code) in refusals() {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path(TOKEN_PATH))
                .and(body_string_contains(format!("refresh_token={REFRESH}")))
                .respond_with(refusal)
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path(TOKEN_PATH))
                .and(body_string_contains("refresh_token=na1-reinstalled-0000-token"))
                .respond_with(Issuer::new(1800))
                .expect(1)
                .mount(&server)
                .await;
            let tokens = tokens_at(&server.uri(), &TestClock::new());

            let err = tokens.bearer(&grant()).await.unwrap_err();
            let HubSpotError::OAuthRefused {
                status: got,
                code: got_code,
                ..
            } = &err
            else {
                panic!("{row}: expected OAuthRefused, got {err:?}");
            };
            assert_eq!((*got, got_code.as_deref()), (status, code), "{row}");
            assert_eq!(err.reason(), crate::domain::Reason::HubSpotUnauthorized, "{row}");
            assert!(!err.is_retryable() && !err.may_have_created(), "{row}");
            assert_eq!(err.problems()[0].code, "reauth_required", "{row}");
            // Asked again (another delivery, a retry): the same answer, without asking HubSpot.
            let again = tokens.bearer(&grant()).await.unwrap_err();
            assert_eq!(again.to_string(), err.to_string(), "{row}");
            // The secret now holds the refresh token of a new installation.
            let token = tokens.bearer(&grant_with("na1-reinstalled-0000-token")).await.unwrap();
            assert_eq!(token.expose_secret(), access(1), "{row}");
            assert_eq!(tokens.exchanges(), 2, "{row}");
            server.verify().await;
        }
    }

    /// Everything the token endpoint can answer that may pass: retryable, and no deal was sent.
    #[tokio::test]
    async fn token_endpoint_failures_that_may_pass_are_retryable() {
        let rate_limit = json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"});
        let cases = [
            (
                "500 json",
                ResponseTemplate::new(500).set_body_json(json!({"status": "error", "message": "internal error"})),
                None,
            ),
            (
                "502 html",
                ResponseTemplate::new(502).set_body_string("<html><h1>502 Bad Gateway</h1></html>"),
                None,
            ),
            ("503 empty", ResponseTemplate::new(503), None),
            ("504", ResponseTemplate::new(504), None),
            (
                "429 with Retry-After",
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "7")
                    .set_body_json(rate_limit.clone()),
                Some(Some(7)),
            ),
            (
                "429 without",
                ResponseTemplate::new(429).set_body_json(rate_limit),
                Some(None),
            ),
        ];
        for (row, failure, rate_limited) in cases {
            let server = MockServer::start().await;
            Mock::given(any_token_request())
                .respond_with(failure)
                .mount(&server)
                .await;
            let tokens = tokens_at(&server.uri(), &TestClock::new());
            let err = tokens.bearer(&grant()).await.unwrap_err();
            match rate_limited {
                Some(after) => {
                    assert!(matches!(err, HubSpotError::RateLimited { .. }), "{row}: {err:?}");
                    assert_eq!(err.retry_after(), after.map(Duration::from_secs), "{row}");
                }
                None => assert!(
                    matches!(&err, HubSpotError::Unavailable { status: None, message } if message.contains("no CRM request was sent")),
                    "{row}: {err:?}"
                ),
            }
            assert!(err.is_retryable(), "{row}");
            assert!(!err.may_have_created(), "{row}");
            // Not remembered as a refusal: the next call asks again.
            let _ = tokens.bearer(&grant()).await;
            assert_eq!(exchanges_seen(&server.received_requests().await.unwrap()), 2, "{row}");
        }
    }

    fn any_token_request() -> impl wiremock::Match {
        path(TOKEN_PATH)
    }

    #[tokio::test]
    async fn no_connection_and_a_timeout_are_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let tokens = tokens_at(&refused, &TestClock::new());
        let err = tokens.bearer(&grant()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::Unavailable { status: None, .. }) && err.is_retryable(),
            "{err:?}"
        );

        let server = MockServer::start().await;
        token_endpoint(
            &server,
            Issuer {
                delay: Duration::from_secs(3),
                ..Issuer::new(1800)
            },
        )
        .await;
        let tokens = OAuthTokens::with_clock(
            http(Duration::from_millis(200)),
            &server.uri(),
            TestClock::new().clock(),
        )
        .unwrap();
        let err = tokens.bearer(&grant()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::Unavailable { status: None, .. }) && err.is_retryable(),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_falls_back_to_the_current_token_while_it_lasts() {
        let server = MockServer::start().await;
        Mock::given(any_token_request())
            .respond_with(Issuer::new(1800))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(any_token_request())
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let clock = TestClock::new();
        let tokens = tokens_at(&server.uri(), &clock);
        assert_eq!(tokens.bearer(&grant()).await.unwrap().expose_secret(), access(1));
        clock.set(1500);
        assert_eq!(
            tokens.bearer(&grant()).await.unwrap().expose_secret(),
            access(1),
            "5 minutes left: still used"
        );
        clock.set(1800 - 30);
        let err = tokens.bearer(&grant()).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(tokens.exchanges(), 3);
    }

    /// Every way a 2xx answer can lack a usable token: a named, retryable error that shows no value.
    #[tokio::test]
    async fn malformed_token_answers_are_named_retryable_errors() {
        let token = access(9);
        let with = |key: &str, value: Value| {
            let mut body = answer(&token, 1800);
            body[key] = value;
            body.to_string()
        };
        let without = |key: &str| {
            let mut body = answer(&token, 1800);
            body.as_object_mut().unwrap().remove(key);
            body.to_string()
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("empty body", String::new(), "not JSON"),
            ("html", "<html>ok</html>".to_owned(), "not JSON"),
            (
                "truncated",
                answer(&token, 1800).to_string()[..40].to_owned(),
                "not JSON",
            ),
            ("an array", "[]".to_owned(), "not a JSON object"),
            ("no access_token", without("access_token"), "access_token is missing"),
            (
                "null access_token",
                with("access_token", Value::Null),
                "access_token is missing",
            ),
            (
                "numeric access_token",
                with("access_token", json!(12345)),
                "access_token is not a string",
            ),
            (
                "empty access_token",
                with("access_token", json!("")),
                "access_token is empty",
            ),
            (
                "access_token with a newline",
                with("access_token", json!(format!("{token}\nX-Injected: 1"))),
                "HTTP header",
            ),
            ("no expires_in", without("expires_in"), "expires_in is missing"),
            ("expires_in 0", with("expires_in", json!(0)), "positive whole number"),
            (
                "negative expires_in",
                with("expires_in", json!(-5)),
                "positive whole number",
            ),
            (
                "fractional expires_in",
                with("expires_in", json!(1.5)),
                "positive whole number",
            ),
            (
                "expires_in as a string",
                with("expires_in", json!("1800")),
                "expires_in is not a number",
            ),
            (
                "expires_in of centuries",
                with("expires_in", json!(10_u64.pow(12))),
                "over a year",
            ),
            ("token_type mac", with("token_type", json!("mac")), "token_type"),
            (
                "numeric refresh_token",
                with("refresh_token", json!(5)),
                "refresh_token is not a string",
            ),
        ];
        for (row, body, named) in cases {
            let server = MockServer::start().await;
            Mock::given(any_token_request())
                .respond_with(ResponseTemplate::new(200).set_body_string(body))
                .mount(&server)
                .await;
            let err = tokens_at(&server.uri(), &TestClock::new())
                .bearer(&grant())
                .await
                .unwrap_err();
            let HubSpotError::Unavailable { status: None, message } = &err else {
                panic!("{row}: expected Unavailable, got {err:?}");
            };
            assert!(message.contains(named), "{row}: {message}");
            assert!(err.is_retryable(), "{row}");
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("CJaccess") && !shown.contains(REFRESH) && !shown.contains(CLIENT_SECRET),
                "{row}: {shown}"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_without_a_refresh_token_is_used_and_the_secret_s_is_kept() {
        let server = MockServer::start().await;
        let mut body = answer(&access(1), 1800);
        body.as_object_mut().unwrap().remove("refresh_token");
        Mock::given(any_token_request())
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let clock = TestClock::new();
        let tokens = tokens_at(&server.uri(), &clock);
        assert_eq!(tokens.bearer(&grant()).await.unwrap().expose_secret(), access(1));
        clock.set(1500);
        tokens.bearer(&grant()).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        assert!(
            requests
                .iter()
                .all(|r| form_fields(r).contains(&("refresh_token".to_owned(), REFRESH.to_owned())))
        );
    }

    #[tokio::test]
    async fn a_new_refresh_token_in_an_answer_is_used_for_the_next_refresh() {
        let server = MockServer::start().await;
        let rotated = "na1-rotated-8f8f-0000-token";
        let mut body = answer(&access(1), 1800);
        body["refresh_token"] = json!(rotated);
        Mock::given(any_token_request())
            .and(body_string_contains(format!("refresh_token={REFRESH}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(any_token_request())
            .and(body_string_contains(format!("refresh_token={rotated}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer(&access(2), 1800)))
            .expect(1)
            .mount(&server)
            .await;
        let clock = TestClock::new();
        let tokens = tokens_at(&server.uri(), &clock);
        tokens.bearer(&grant()).await.unwrap();
        assert_eq!(scrub::known_secrets().scrub_str(rotated), scrub::REDACTED);
        clock.set(1500);
        assert_eq!(tokens.bearer(&grant()).await.unwrap().expose_secret(), access(2));
        server.verify().await;
    }

    #[tokio::test]
    async fn a_changed_secret_gets_its_own_token() {
        let server = MockServer::start().await;
        token_endpoint(&server, Issuer::new(1800)).await;
        let tokens = tokens_at(&server.uri(), &TestClock::new());
        assert_eq!(tokens.bearer(&grant()).await.unwrap().expose_secret(), access(1));
        let other = grant_with("na1-other-install-0000-token");
        assert_eq!(tokens.bearer(&other).await.unwrap().expose_secret(), access(2));
        assert_eq!(tokens.bearer(&other).await.unwrap().expose_secret(), access(2));
        assert_eq!(tokens.exchanges(), 2);
    }

    /// The grant's values quoted back by the token endpoint are taken out at the source, before any
    /// process-wide scrubbing: in every kind of error the exchange makes.
    #[test]
    fn values_quoted_by_the_token_endpoint_never_reach_an_error() {
        let echo = format!(
            "{CLIENT_ID} {CLIENT_SECRET} {REFRESH} client_secret%3D{}",
            CLIENT_SECRET.replace('-', "%2D")
        );
        let scrubber = Scrubber::new([CLIENT_ID, CLIENT_SECRET, REFRESH]);
        let body = json!({"error": "invalid_grant", "error_description": echo, "message": echo}).to_string();
        for status in [400, 401, 404, 429, 500, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            let Err(err) = classify(status, None, body.as_bytes(), &scrubber) else {
                panic!("{status}: expected an error");
            };
            let shown = format!("{err} {err:?} {:?}", err.problems());
            for secret in [CLIENT_ID, CLIENT_SECRET, REFRESH] {
                assert!(!shown.contains(secret), "{status}: {shown}");
            }
        }
    }

    // ---- through the pipeline: logs, answers and dead letters ----

    mod pipeline {
        use http::{HeaderMap, HeaderValue, Method};

        use super::*;
        use crate::aws::{MemoryDeadLetters, MemorySecrets};
        use crate::credentials::{Credentials, HubSpotAuth};
        use crate::domain::Reason;
        use crate::hubspot::RetryPolicy;
        use crate::inbound::Delivery;
        use crate::{App, Outcome, Settings};

        const REVOKED: &str = "na1-revoked-7777-0000-token";

        fn app_for(server: &MockServer, refresh_token: &str) -> (App, Arc<MemoryDeadLetters>) {
            let credentials = Credentials {
                hubspot: Some(HubSpotAuth::OAuth(grant_with(refresh_token))),
                ..Credentials::default()
            };
            let letters = Arc::new(MemoryDeadLetters::default());
            let app = App::new(
                Settings {
                    max_body_bytes: 4096,
                    dry_run: false,
                    skip_signatures: false,
                    retry: RetryPolicy {
                        max_attempts: 3,
                        base: Duration::from_millis(10),
                        cap: Duration::from_millis(50),
                        margin: Duration::from_millis(100),
                        request_timeout: Duration::from_secs(5),
                        random: || 1.0,
                    },
                },
                Arc::new(crate::tests::showcase().unwrap()),
                Arc::new(MemorySecrets::new(credentials)),
                Arc::new(client(server)),
                letters.clone(),
            );
            (app, letters)
        }

        fn quote() -> Delivery {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            Delivery {
                request_id: "req-oauth".into(),
                received_at: chrono::Utc::now(),
                deadline: None,
                method: Method::POST,
                path: "/hooks/website-quote".into(),
                query: None,
                headers,
                body: bytes::Bytes::from_static(br#"{"company":"Acme","plan":"team","budget":"1,000"}"#),
                redelivery: None,
            }
        }

        /// Every value of the grants and every access token these tests hand out.
        fn secrets() -> Vec<String> {
            vec![
                CLIENT_ID.to_owned(),
                CLIENT_SECRET.to_owned(),
                REFRESH.to_owned(),
                REVOKED.to_owned(),
                access(1),
                access(2),
            ]
        }

        /// A misbehaving HubSpot that quotes every secret back (but the revoked refresh token, which
        /// the deployment of the first delivery never held).
        fn echo() -> String {
            secrets()
                .into_iter()
                .filter(|s| s != REVOKED)
                .collect::<Vec<_>>()
                .join(" ")
        }

        #[tokio::test]
        async fn a_401_refreshes_through_the_retry_loop_and_the_deal_is_created() {
            let server = MockServer::start().await;
            token_endpoint(&server, Issuer::new(1800)).await;
            deal_endpoint_refusing_the_first_token(&server).await;
            let (app, letters) = app_for(&server, REFRESH);
            let outcome = app.handle(&quote()).await;
            assert!(
                matches!(outcome, Outcome::Created(ref deal) if deal.deal_id == 151_088),
                "{outcome:?}"
            );
            assert!(letters.sent().is_empty());
            assert_eq!(exchanges_seen(&server.received_requests().await.unwrap()), 2);
        }

        /// A refresh, a 401, a second refresh, a rejection quoting every secret; then a refused
        /// refresh token quoted back in the refusal: no value reaches a log line, an answer or a
        /// dead letter, and the refusal is a clear `hubspot_unauthorized` letter, asked once.
        #[tokio::test]
        async fn no_grant_value_or_access_token_reaches_a_log_an_answer_or_a_dead_letter() {
            let capture = crate::telemetry::capture::LogCapture::start();
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path(TOKEN_PATH))
                .and(body_string_contains(format!("refresh_token={REFRESH}")))
                .respond_with(Issuer::new(1800))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path(TOKEN_PATH))
                .and(body_string_contains(format!("refresh_token={REVOKED}")))
                .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                    "error": "invalid_grant", "status": "BAD_REFRESH_TOKEN",
                    "error_description": format!("refresh token is invalid, expired or revoked: {}", secrets().join(" ")),
                    "message": "refresh token is invalid, expired or revoked"})))
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/deals/v1/deal/"))
                .and(bearer_token(access(1)))
                .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                    "status": "error", "category": "EXPIRED_AUTHENTICATION",
                    "message": format!("The OAuth token used to make this call expired: {}", echo())})))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/deals/v1/deal/"))
                .and(bearer_token(access(2)))
                .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                    "status": "error", "message": format!("Property values were not valid: {}", echo()),
                    "validationResults": [{"isValid": false, "name": "dealstage", "error": "INVALID_OPTION",
                        "message": echo()}]})))
                .mount(&server)
                .await;

            let mut shown = Vec::new();
            let (app, letters) = app_for(&server, REFRESH);
            let outcome = app.handle(&quote()).await;
            assert!(
                matches!(
                    outcome,
                    Outcome::DeadLettered {
                        reason: Reason::HubSpotRejected,
                        ..
                    }
                ),
                "{outcome:?}"
            );
            shown.push(outcome.to_response("req-oauth").into_body());

            let (app, revoked_letters) = app_for(&server, REVOKED);
            for _ in 0..2 {
                let outcome = app.handle(&quote()).await;
                assert!(
                    matches!(
                        outcome,
                        Outcome::DeadLettered {
                            reason: Reason::HubSpotUnauthorized,
                            ..
                        }
                    ),
                    "{outcome:?}"
                );
                shown.push(outcome.to_response("req-oauth").into_body());
            }
            let refused = revoked_letters.sent();
            assert_eq!(refused.len(), 2);
            let letter = &refused[0];
            assert_eq!(letter.errors[0].code, "reauth_required", "{letter:?}");
            assert!(letter.errors[0].message.contains("invalid_grant"), "{letter:?}");
            assert_eq!(
                letter.hubspot.as_ref().map(|h| (h.status, h.attempts)),
                Some((Some(400), 1))
            );
            server.verify().await; // the refused token was sent once, for two deliveries

            for letter in letters.sent().iter().chain(&refused) {
                shown.push(serde_json::to_string(letter).unwrap());
            }
            shown.push(capture.text());
            let logs = capture.text();
            assert!(logs.contains("hubspot_oauth_refresh"), "{logs}");
            for text in &shown {
                for secret in secrets() {
                    assert!(!text.contains(&secret), "{secret} in {text}");
                }
            }
        }
    }
}
