//! Sources: which kind of sender a route serves, and how its decoded body becomes a
//! Submission (`fields`, id, timestamps). Step 1 knows `json` and `form`.

use std::fmt;
use std::str::FromStr;

/// The kind of sender a route serves (`source:` in the mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Any JSON object; `fields` is the body object.
    Json,
    /// An HTML form (urlencoded or multipart); `fields` are the form fields.
    Form,
}

impl Source {
    /// Every source, in the order `check` lists them.
    pub const ALL: &'static [Source] = &[Source::Json, Source::Form];

    /// The name used in the mapping.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Json => "json",
            Source::Form => "form",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown source name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {name:?}; known sources: {}", Source::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownSource {
    /// The name that was given.
    pub name: String,
}

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL.iter().copied().find(|src| src.as_str() == s).ok_or_else(|| UnknownSource { name: s.to_owned() })
    }
}
