//! Credentials from AWS Secrets Manager, read lazily and cached (one read at a time), or fixed ones.
//! Secret text goes straight into `Credentials::parse`; it never reaches an error, a log or a span.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant as TokioInstant;

use super::config::describe_sdk_error;
use super::{SecretError, SecretSource};
use crate::credentials::Credentials;

/// Credentials read from one Secrets Manager secret (`GetSecretValue` → `SecretString` →
/// [`Credentials::parse`]), cached for a TTL.
///
/// - The first call reads; concurrent first callers wait for that one read (single flight).
/// - After the TTL the next call re-reads. If that fails (store unreachable, or a rotation left a
///   malformed secret), the previous value is served with a warning, and the next attempt waits
///   [`Self::STALE_RETRY_INTERVAL`] or the TTL, whichever is shorter.
/// - [`SecretSource::refresh`] always re-reads (after HubSpot refused the token) and fails if the
///   read fails; the previous value then stays cached. A refresh that finds a read which started
///   after it was requested (another caller's, while it waited) returns that value instead of
///   reading again, so a burst of 401s costs one read.
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    reread_limit: RereadLimit,
    // Held across the read: that is what makes concurrent misses share one read.
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    credentials: Arc<Credentials>,
    /// When the read that produced this value started.
    read_started: Instant,
    /// When the next read is due; `None` when the TTL is too large to represent (never).
    next_read: Option<Instant>,
}

impl Cached {
    fn is_due(&self, now: Instant) -> bool {
        self.next_read.is_some_and(|due| now >= due)
    }
}

impl SecretsManagerSource {
    /// After a failed re-read the stale value is served, and the store is asked again no sooner
    /// than this (or the TTL, if shorter), so a dead endpoint does not add a timeout to every call.
    pub const STALE_RETRY_INTERVAL: Duration = Duration::from_secs(30);

    /// A source reading `secret_id` (name or ARN) with `client`; nothing is read until first use.
    /// A `ttl` of zero re-reads on every call (still serving the last value if a read fails).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>, ttl: Duration) -> Self {
        SecretsManagerSource {
            client,
            secret_id: secret_id.into(),
            ttl,
            reread_limit: RereadLimit::new(REREAD_INTERVAL),
            cache: Mutex::new(None),
        }
    }

    /// The secret's id or ARN, as given.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The cache lifetime, as given.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn cached(&self, credentials: Arc<Credentials>, read_started: Instant) -> Cached {
        Cached {
            credentials,
            read_started,
            next_read: read_started.checked_add(self.ttl),
        }
    }

    /// One `GetSecretValue`, parsed. The secret's text lives only inside this function. Its span is the
    /// `secret` stage of a delivery (a cached read is no read, and no stage).
    #[tracing::instrument(name = "secret", skip_all, fields(aws_service = "SecretsManager", aws_operation = "GetSecretValue", secret_id = %self.secret_id))]
    async fn read(&self) -> Result<Arc<Credentials>, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                secret_id: self.secret_id.clone(),
                message: describe_sdk_error(&e),
            })?;
        let Some(text) = output.secret_string() else {
            return Err(self.malformed(if output.secret_binary().is_some() {
                "it holds SecretBinary; dealhook reads SecretString only".to_owned()
            } else {
                "it has no SecretString".to_owned()
            }));
        };
        let credentials = Credentials::parse(text).map_err(|e| self.malformed(e.to_string()))?;
        credentials.remember_for_scrubbing();
        for name in credentials.too_short_to_scrub() {
            tracing::warn!(
                secret_id = %self.secret_id,
                value = %name,
                "this value of the secret is shorter than {} characters, too short to be scrubbed from dead \
                 letters and logs by value: use a longer key",
                crate::credentials::scrub::MIN_SCRUBBED_LEN
            );
        }
        tracing::debug!(
            has_hubspot = credentials.hubspot.is_some(),
            signing_keys = credentials.signing.len(),
            "secret read"
        );
        Ok(Arc::new(credentials))
    }

    fn malformed(&self, message: String) -> SecretError {
        SecretError::Malformed {
            secret_id: self.secret_id.clone(),
            message,
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    /// Cached credentials, read on first use and again after the TTL. Fails only when there is no
    /// value at all yet and the read fails; once a value has been read, failures serve it stale.
    async fn credentials(&self) -> Result<Arc<Credentials>, SecretError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(c) = cache.as_ref()
            && !c.is_due(now)
        {
            return Ok(Arc::clone(&c.credentials));
        }
        match self.read().await {
            Ok(credentials) => {
                *cache = Some(self.cached(Arc::clone(&credentials), now));
                Ok(credentials)
            }
            Err(error) => {
                let Some(stale) = cache.as_mut() else {
                    return Err(error);
                };
                tracing::warn!(
                    secret_id = %self.secret_id,
                    error = %error,
                    "re-reading the secret failed; serving the previously read value"
                );
                stale.next_read = Instant::now().checked_add(self.ttl.min(Self::STALE_RETRY_INTERVAL));
                Ok(Arc::clone(&stale.credentials))
            }
        }
    }

    /// Re-reads now, whatever the TTL. Fails if the read fails (the cached value is kept, so
    /// [`SecretSource::credentials`] keeps answering). Concurrent refreshes share one read.
    async fn refresh(&self) -> Result<Arc<Credentials>, SecretError> {
        let requested = Instant::now();
        let mut cache = self.cache.lock().await;
        // Someone else read while we waited for the lock: that read began after our request,
        // so it is at least as new as the one we would make.
        if let Some(c) = cache.as_ref().filter(|c| c.read_started >= requested) {
            return Ok(Arc::clone(&c.credentials));
        }
        let started = Instant::now();
        let credentials = self.read().await?;
        *cache = Some(self.cached(Arc::clone(&credentials), started));
        Ok(credentials)
    }

    /// A forced re-read when [`RereadLimit`] allows one, else (or when it fails) the cached value.
    async fn reread_rate_limited(&self) -> Result<Arc<Credentials>, SecretError> {
        if !self.reread_limit.try_acquire() {
            return self.credentials().await;
        }
        tracing::info!(
            secret_id = %self.secret_id,
            "a signature did not verify with the cached signing key, or the key is not in it: re-reading the secret in case it was rotated or added"
        );
        match self.refresh().await {
            Ok(credentials) => Ok(credentials),
            Err(error) => {
                tracing::warn!(secret_id = %self.secret_id, error = %error, "re-reading the secret failed");
                self.credentials().await
            }
        }
    }
}

/// How often a signature failure may force a re-read of the secret: once per 30 s. A rotated
/// signing key is picked up by the first delivery signed with it (instead of after the cache's TTL),
/// while a flood of bad signatures costs at most two reads a minute.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// Lets one caller through per interval, across threads: the first call passes, then none until the
/// interval has passed since the last one that did. On tokio's clock, so tests can pause it.
#[derive(Debug)]
pub struct RereadLimit {
    interval: Duration,
    last: std::sync::Mutex<Option<TokioInstant>>,
}

impl RereadLimit {
    /// A limit of one pass per `interval` (zero: every call passes).
    pub fn new(interval: Duration) -> Self {
        RereadLimit {
            interval,
            last: std::sync::Mutex::new(None),
        }
    }

    /// True (and the interval starts again) when the last pass is at least `interval` ago.
    pub fn try_acquire(&self) -> bool {
        let now = TokioInstant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

impl fmt::Debug for SecretsManagerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerSource")
            .field("secret_id", &self.secret_id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Fixed credentials: local runs (`HUBSPOT_ACCESS_TOKEN`) and dry runs (no HubSpot credential).
/// Never fails; [`SecretSource::refresh`] returns the same value, as there is nothing to re-read.
#[derive(Debug, Clone)]
pub struct StaticSecrets {
    credentials: Arc<Credentials>,
}

impl StaticSecrets {
    /// Serves `credentials` forever (and remembers their values for scrubbing).
    pub fn new(credentials: Credentials) -> Self {
        credentials.remember_for_scrubbing();
        StaticSecrets {
            credentials: Arc::new(credentials),
        }
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn credentials(&self) -> Result<Arc<Credentials>, SecretError> {
        Ok(Arc::clone(&self.credentials))
    }

    async fn refresh(&self) -> Result<Arc<Credentials>, SecretError> {
        Ok(Arc::clone(&self.credentials))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::credentials::HubSpotAuth;

    fn token(c: &Credentials) -> &str {
        match &c.hubspot {
            Some(HubSpotAuth::AccessToken(t)) => t.expose_secret(),
            other => panic!("expected an access token, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn static_secrets_serve_and_refresh_the_same_credentials() {
        let source = StaticSecrets::new(Credentials::from_token("tok".into()));
        assert_eq!(token(&source.credentials().await.unwrap()), "tok");
        assert_eq!(token(&source.refresh().await.unwrap()), "tok");
    }

    #[tokio::test(start_paused = true)]
    async fn the_reread_limit_lets_one_call_through_per_interval() {
        let limit = RereadLimit::new(REREAD_INTERVAL);
        assert!(limit.try_acquire(), "the first call passes");
        assert!(!limit.try_acquire(), "a second one at once does not");
        tokio::time::advance(REREAD_INTERVAL - Duration::from_millis(1)).await;
        assert!(!limit.try_acquire(), "nor one just inside the interval");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limit.try_acquire(), "one at the interval passes");
        assert!(!limit.try_acquire());
        let open = RereadLimit::new(Duration::ZERO);
        assert!(open.try_acquire() && open.try_acquire(), "a zero interval never limits");
    }

    #[tokio::test]
    async fn concurrent_callers_get_one_pass_per_interval() {
        let limit = Arc::new(RereadLimit::new(REREAD_INTERVAL));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let limit = Arc::clone(&limit);
                tokio::spawn(async move { limit.try_acquire() })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            passed += usize::from(task.await.unwrap());
        }
        assert_eq!(passed, 1);
    }

    #[test]
    fn a_huge_ttl_never_expires_instead_of_overflowing() {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::from_conf(conf), "id", Duration::MAX);
        let cached = source.cached(Arc::new(Credentials::default()), Instant::now());
        assert!(cached.next_read.is_none());
        assert!(!cached.is_due(Instant::now()));
    }

    #[test]
    fn debug_output_names_the_secret_id_only() {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let source =
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::from_conf(conf), "my-id", Duration::ZERO);
        assert!(format!("{source:?}").contains("my-id"));
    }
}
