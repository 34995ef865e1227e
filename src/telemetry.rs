//! Logging: JSON lines on stderr, one object per event, level from `RUST_LOG` (default `info`).
//! Callers never put a secret in a field; should one slip in anyway (an error quoting a body, a
//! URL), [`Scrubbing`] takes every known secret value out of each line before it is written.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::credentials::scrub;

/// Installs the JSON subscriber and, when the X-Ray daemon is named (`AWS_XRAY_DAEMON_ADDRESS`), the
/// X-Ray layer ([`crate::xray`]) with its own filter, so that `RUST_LOG` never hides a span from a trace.
/// Safe to call twice (the second call does nothing).
pub fn init() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(Scrubbing(std::io::stderr))
        .with_filter(filter);
    let xray = crate::xray::XrayLayer::from_env().map(|layer| layer.with_filter(crate::xray::xray_filter()));
    let _ = tracing_subscriber::registry().with(logs).with(xray).try_init();
}

/// A [`MakeWriter`] whose writers replace every secret value known to the process
/// ([`scrub::known_secrets`], fed by the secrets cache) with `[redacted]`, in any of the encodings
/// [`scrub::Scrubber`] matches (a JSON log line escapes `"`, `\` and controls).
///
/// tracing-subscriber's formatter hands each event to the writer in one `write_all` of the whole
/// line, so a value is never split across calls. With no secret known yet, a line costs one
/// read-locked pointer copy more than the plain writer; otherwise one scan of the line.
#[derive(Debug, Clone, Copy)]
pub struct Scrubbing<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbing<M> {
    type Writer = ScrubbingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter(self.0.make_writer())
    }
}

/// The writer of [`Scrubbing`]: scrubs each buffer it is given, then writes it whole.
#[derive(Debug)]
pub struct ScrubbingWriter<W>(W);

impl<W: Write> Write for ScrubbingWriter<W> {
    /// Reports the whole `buf` as written (its scrubbed form may be longer or shorter).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let scrubber = scrub::known_secrets();
        self.0.write_all(&scrubber.scrub_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
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
                    .with_writer(super::Scrubbing(move || Writer(writer.clone())))
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

#[cfg(test)]
mod tests {
    use super::capture::LogCapture;
    use super::*;

    #[test]
    fn a_secret_value_never_reaches_a_log_line_in_any_field() {
        let token = format!("pat-na1-log-{}", uuid::Uuid::new_v4());
        let key = format!("whsec/\"quoted\" {}", uuid::Uuid::new_v4());
        scrub::remember([token.as_str(), key.as_str()]);
        let capture = LogCapture::start();
        let url = format!(
            "https://x.test/hooks/j?token={}",
            percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
        );
        let span = tracing::info_span!("delivery", auth = %format!("Bearer {token}"));
        let _entered = span.enter();
        tracing::warn!(body = %format!("{{\"key\":\"{key}\"}}"), url = %url, "message quoting {token}");
        tracing::error!(error = ?key, "debug-formatted");
        let text = capture.text();
        assert!(text.contains("message quoting [redacted]"), "{text}");
        for secret in [&token, &key] {
            let id = secret
                .rsplit(' ')
                .next()
                .unwrap_or(secret)
                .rsplit('-')
                .next()
                .unwrap_or(secret);
            assert!(!text.contains(id), "{secret} reached the log: {text}");
        }
        assert!(text.matches("[redacted]").count() >= 5, "{text}");
        // Still one JSON object per line.
        for line in text
            .lines()
            .filter(|l| l.contains("debug-formatted") || l.contains("message quoting"))
        {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }

    #[test]
    fn with_no_secret_known_lines_pass_through_unchanged() {
        let mut out = Vec::new();
        let line = b"{\"message\":\"nothing secret here\"}\n";
        let written = ScrubbingWriter(&mut out).write(line).unwrap();
        assert_eq!(written, line.len());
        assert_eq!(out, line);
    }

    #[test]
    fn the_writer_reports_the_whole_buffer_written_even_when_scrubbing_changes_its_length() {
        let secret = format!("len-change-{}", uuid::Uuid::new_v4());
        scrub::remember([secret.as_str()]);
        let mut out = Vec::new();
        let line = format!("a {secret} b\n");
        let written = ScrubbingWriter(&mut out).write(line.as_bytes()).unwrap();
        assert_eq!(written, line.len());
        assert_eq!(out, b"a [redacted] b\n");
    }
}
