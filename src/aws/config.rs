//! AWS SDK configuration shared by every adapter: bounded timeouts and retries so a dead or slow
//! endpoint costs seconds, not the whole Lambda invocation; and error descriptions that never carry
//! a response body (which, for Secrets Manager, could hold the secret).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Time allowed to open a TCP/TLS connection. AWS endpoints answer in milliseconds; two seconds
/// is plenty and still fails fast in a VPC without a route (where connects hang, not refuse).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for one attempt (connect, send, full response).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole call, retries and back-off included. Kept well below a webhook
/// sender's own timeout (often 10 s) so we still answer, if only with a 503.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// Attempts per call, the first included (standard retry mode: throttling, 5xx and I/O errors).
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts every dealhook AWS client uses (see the constants above).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry policy every dealhook AWS client uses: standard mode, [`MAX_ATTEMPTS`] attempts,
/// jittered exponential back-off from the SDK's default one second.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The SDK's default loader (region, credentials and `AWS_ENDPOINT_URL*` from the environment,
/// profile files, the Lambda container) with dealhook's timeouts and retries applied.
///
/// Our timeouts and retries win over `AWS_MAX_ATTEMPTS`/`AWS_RETRY_MODE` and profile settings:
/// they are sized for a Lambda invocation and are not a deployment knob. Callers (tests) may
/// override anything else, e.g. `.endpoint_url(…)`, `.region(…)`, `.credentials_provider(…)`.
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .retry_config(retry_config())
}

/// Loads the shared AWS configuration once per cold start ([`sdk_config_loader`] then `load`).
///
/// Never fails: a missing region or credentials surface as errors on the first call
/// (`SecretError::Unavailable`, `DeadLetterError`), not here.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// A one-line description of an SDK failure: the service's error code and message, or what kind
/// of transport failure it was. Never includes a response body, so no secret can reach it.
pub(crate) fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("UnknownError");
            match service.err().message() {
                Some(message) => format!("{code} (HTTP {status}): {message}"),
                None => format!("{code} (HTTP {status})"),
            }
        }
        SdkError::TimeoutError(_) => format!(
            "timed out (limits: {}s per attempt, {}s per call)",
            ATTEMPT_TIMEOUT.as_secs(),
            OPERATION_TIMEOUT.as_secs()
        ),
        // Connection refused, DNS, TLS, per-attempt timeout: the context chain names it; it holds
        // no response (none was received).
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(connector) => format!("could not reach the endpoint: {}", cause_chain(connector)),
            None => "could not reach the endpoint".to_owned(),
        },
        // The response could not be parsed: its body might be a successful answer carrying a
        // secret, so only the status is reported.
        SdkError::ResponseError(response) => {
            format!("unreadable response (HTTP {})", response.raw().status().as_u16())
        }
        // Built before anything was sent (missing region, credentials, invalid input): only our
        // own request data, which holds no secret.
        SdkError::ConstructionFailure(_) => format!("request not sent: {}", cause_chain(err)),
        // A kind added in a later SDK: we cannot know whether it carries a body, so say nothing more.
        _ => "unexpected SDK failure".to_owned(),
    }
}

/// `outer: inner: innermost`, each error's own message once.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their source's message in their own; keep each message once.
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sqs::operation::send_message::SendMessageError;

    use super::*;

    type Err = SdkError<SendMessageError, HttpResponse>;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), body.to_owned().into())
    }

    #[test]
    fn a_service_error_is_described_by_its_code_status_and_message() {
        let meta = ErrorMetadata::builder()
            .code("QueueDoesNotExist")
            .message("no queue")
            .build();
        let err: Err = SdkError::service_error(SendMessageError::generic(meta), response(400, "{}"));
        assert_eq!(describe_sdk_error(&err), "QueueDoesNotExist (HTTP 400): no queue");
    }

    #[test]
    fn an_unreadable_response_is_described_without_its_body() {
        let err: Err = SdkError::response_error("bad json near \"pat-secret\"", response(200, "pat-secret"));
        let text = describe_sdk_error(&err);
        assert_eq!(text, "unreadable response (HTTP 200)");
    }

    #[test]
    fn transport_failures_name_their_cause_once() {
        let err: Err = SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let text = describe_sdk_error(&err);
        assert!(text.starts_with("could not reach the endpoint: "), "{text}");
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");

        let err: Err = SdkError::timeout_error("slow");
        assert!(describe_sdk_error(&err).starts_with("timed out"));
        let err: Err = SdkError::construction_failure("no region");
        assert!(describe_sdk_error(&err).contains("no region"));
    }

    #[test]
    fn the_limits_bound_one_call() {
        let timeouts = timeout_config();
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(retry_config().max_attempts(), MAX_ATTEMPTS);
        assert!(
            ATTEMPT_TIMEOUT * MAX_ATTEMPTS >= OPERATION_TIMEOUT,
            "the call limit is what binds"
        );
    }
}
