//! Secrets (stub).
/// stub
pub struct SecretsManagerSource;
/// stub
pub struct StaticSecrets;
