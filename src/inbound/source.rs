//! Sources (stub).
/// stub
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// JSON body
    Json,
    /// Form body
    Form,
}
