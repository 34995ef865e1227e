//! Body decoding (stub).
/// stub
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct DecodeError;
/// stub
pub async fn decode(_content_type: Option<&str>, _body: &[u8]) -> Result<serde_json::Value, DecodeError> {
    Err(DecodeError)
}
