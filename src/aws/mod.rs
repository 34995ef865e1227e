//! AWS adapters: the secret (Secrets Manager, cached), the dead-letter queue (SQS), payloads too big
//! for a message (S3) and idempotency records (DynamoDB). Ports are traits named for what the pipeline needs (the idempotency port lives
//! in [`crate::idempotency`]); each has a real and an in-memory version.

mod config;
mod dynamodb;
mod lazy;
mod memory;
mod payloads;
mod secrets;
mod sqs;

use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use config::describe_sdk_error;
pub use config::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, MAX_ATTEMPTS, OPERATION_TIMEOUT, load_sdk_config, retry_config,
    sdk_config_loader, timeout_config,
};
pub use dynamodb::DynamoDbIdempotency;
pub use lazy::LazyClient;
pub use memory::{MemoryDeadLetters, MemoryIdempotency, MemoryPayloads, MemoryRecord, MemorySecrets};
pub use payloads::{
    ATTR_PAYLOAD_SIZE, ENVELOPE_KEY_PREFIX, LEGACY_ATTR_PAYLOAD_SIZE, LEGACY_POINTER_CLASS, MAX_PAYLOAD_BYTES,
    POINTER_CLASS, PayloadError, PayloadPointer, PayloadStore, ResolveError, S3Payloads, envelope_key, resolve,
};
pub use secrets::{REREAD_INTERVAL, RereadLimit, SecretsManagerSource, StaticSecrets};
pub use sqs::SqsQueue;

use crate::credentials::Credentials;
use crate::dead_letter::DeadLetter;

/// Why credentials could not be had. Messages never contain secret material.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// The secret store could not be reached or refused the call.
    #[error("the secret {secret_id} could not be read: {message}")]
    Unavailable {
        /// The secret's id or ARN (not secret).
        secret_id: String,
        /// What went wrong.
        message: String,
    },
    /// The secret was read but is not of the documented shape.
    #[error("the secret {secret_id} is malformed: {message}")]
    Malformed {
        /// The secret's id or ARN.
        secret_id: String,
        /// What is wrong with it (never quoting it).
        message: String,
    },
}

/// Where credentials come from. Implementations cache; `refresh` forces a new read.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current credentials (cached after the first read).
    async fn credentials(&self) -> Result<Arc<Credentials>, SecretError>;
    /// Reads again, bypassing the cache (after HubSpot refused the token, for rotation); on failure the cached
    /// value is kept for `credentials` but this call fails.
    async fn refresh(&self) -> Result<Arc<Credentials>, SecretError>;

    /// After a signature failed with the cached signing key (it may have been rotated): the credentials read
    /// anew, but at most once per [`REREAD_INTERVAL`] across all deliveries ([`RereadLimit`]), so a flood of
    /// bad signatures cannot hammer the store; within the interval, or when the read fails, the cached ones
    /// (which another delivery's re-read may just have renewed). Fails only as `credentials` does.
    /// The default never re-reads (fixed credentials have nothing to re-read).
    async fn reread_rate_limited(&self) -> Result<Arc<Credentials>, SecretError> {
        self.credentials().await
    }
}

/// The HubSpot credential is the secret's `hubspot` part: read from the cache, or anew after HubSpot
/// refused it (rotation).
#[async_trait]
impl crate::hubspot::AuthSource for dyn SecretSource {
    async fn hubspot_auth(&self, refresh: bool) -> Result<crate::credentials::HubSpotAuth, String> {
        let read = if refresh {
            self.refresh().await
        } else {
            self.credentials().await
        };
        let credentials = read.map_err(|e| {
            tracing::error!(error = %e, "credentials could not be read");
            e.to_string()
        })?;
        credentials.hubspot.clone().ok_or_else(|| {
            "the secret holds no HubSpot credential (hubspot.accessToken, hubspot.hapikey or hubspot.oauth)".to_owned()
        })
    }
}

/// Why a dead letter could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the dead letter could not be written: {message}")]
pub struct DeadLetterError {
    /// What went wrong (no secrets: the envelope is redacted before it gets here).
    pub message: String,
}

/// Where deliveries that could not become deals are kept.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Writes one envelope. `Ok` means it is durably stored.
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError>;
}
