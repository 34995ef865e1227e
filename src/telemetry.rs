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

/// Test support: one process-wide JSON subscriber writing into memory. A global subscriber,
/// not `set_default`, because tracing caches callsite interest across threads, so scoped
/// subscribers miss events when tests run in parallel.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex, OnceLock};

    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

    /// Everything logged from now on (by any test in this process).
    pub(crate) struct LogCapture {
        start: usize,
    }

    impl LogCapture {
        /// Installs the subscriber on first use and marks where this capture starts.
        pub(crate) fn start() -> LogCapture {
            let buffer = BUFFER.get_or_init(|| {
                let buffer = Arc::new(Mutex::new(Vec::new()));
                let writer = buffer.clone();
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_max_level(tracing::Level::TRACE)
                    .with_writer(move || Writer(writer.clone()))
                    .finish();
                let _ = tracing::subscriber::set_global_default(subscriber);
                buffer
            });
            LogCapture {
                start: buffer.lock().unwrap_or_else(|e| e.into_inner()).len(),
            }
        }

        /// The log text written since `start`.
        pub(crate) fn text(&self) -> String {
            let buffer = BUFFER
                .get()
                .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .unwrap_or_default();
            String::from_utf8_lossy(buffer.get(self.start..).unwrap_or_default()).into_owned()
        }
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
