//! Logging: JSON lines on stderr, one object per event, level from `RUST_LOG` (default `info`).
//! Callers never put a secret in a field; this module adds none.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Safe to call twice (the second call does nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
