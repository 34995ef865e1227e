//! OAuth for public apps: the secret's refresh token is exchanged at HubSpot's token endpoint for
//! short-lived access tokens, cached until shortly before they expire, one refresh at a time for
//! all concurrent requests. Also how a refused credential (401/403, `MISSING_SCOPES`) is classified.
//! Never puts a grant value or an access token in a log line, an error or a `Debug` string.

use std::error::Error as _;
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

use super::{HubSpotConfigError, HubSpotError, HubSpotErrorBody};
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
    #[tracing::instrument(name = "hubspot_oauth_refresh", skip_all, fields(path = TOKEN_PATH, status = Empty, duration_ms = Empty))]
    async fn exchange(&self, grant: &OAuthCredentials, refresh_token: &SecretString) -> Result<TokenAnswer, HubSpotError> {
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
        let sent = self.shared.http.post(self.shared.token_url.clone()).form(&form).send().await;
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
    let err = err.without_url();
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
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the body is not JSON: {:?} error at line {} column {}", e.classify(), e.line(), e.column()))?;
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

// ---- refused credentials on CRM calls --------------------------------------------------------

/// Most scopes kept from a `MISSING_SCOPES` answer, and most characters of each.
const SCOPES_LIMIT: usize = 50;
const SCOPE_LEN_LIMIT: usize = 200;

/// A CRM call answered 401 or 403: [`HubSpotError::MissingScopes`] for a 403 whose body has
/// `category: MISSING_SCOPES` or names scopes (not retried: no refresh or re-read can add a scope),
/// else [`HubSpotError::Unauthorized`] (a refresh or re-read may help once). `raw` is the body,
/// already redacted.
pub(crate) fn refusal(status: u16, raw: &[u8], body: HubSpotErrorBody) -> HubSpotError {
    if status == 403 {
        let scopes = missing_scopes(raw);
        if body.category.as_deref() == Some("MISSING_SCOPES") || !scopes.is_empty() {
            return HubSpotError::MissingScopes { status, scopes, body };
        }
    }
    HubSpotError::Unauthorized { status, body }
}

/// The scopes a `MISSING_SCOPES` body names, in order, without duplicates: from
/// `errors[].context.requiredGranularScopes` (2026-03 answers), `context.requiredScopes` (older
/// answers) and `context.missingScopes` (HubSpot's OpenAPI `Error` example), at either level.
fn missing_scopes(raw: &[u8]) -> Vec<String> {
    const KEYS: [&str; 3] = ["requiredGranularScopes", "requiredScopes", "missingScopes"];
    let Ok(body) = serde_json::from_slice::<Value>(raw) else {
        return Vec::new();
    };
    let contexts = std::iter::once(body.get("context")).chain(
        body.get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| e.get("context")),
    );
    let mut scopes: Vec<String> = Vec::new();
    for context in contexts.flatten() {
        for key in KEYS {
            let named = context.get(key).and_then(Value::as_array).into_iter().flatten();
            for scope in named.filter_map(Value::as_str).map(str::trim) {
                if !scope.is_empty() && scopes.len() < SCOPES_LIMIT && !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.chars().take(SCOPE_LEN_LIMIT).collect());
                }
            }
        }
    }
    scopes
}
