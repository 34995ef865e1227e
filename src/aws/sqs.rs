//! SQS (stub).
/// stub
pub struct SqsDeadLetters;
