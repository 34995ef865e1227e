//! Memory fakes (stub).
/// stub
pub struct MemoryDeadLetters;
/// stub
pub struct MemorySecrets;
