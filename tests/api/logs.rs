//! The function's log lines under the real Lambda runtime at `RUST_LOG=trace`: a child process (this test
//! binary, run again on one test) serves one invocation from a local Runtime API, with `telemetry::init`
//! reading its level from the environment as on Lambda. No line may hold the event's signature header,
//! query token or body values (at trace, `lambda_runtime` would log the raw event), and every line from
//! the moment the invocation starts carries its `requestId` and `xray_trace_id`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dealhook::aws::{MemoryDeadLetters, MemorySecrets};
use dealhook::credentials::Credentials;
use dealhook::hubspot::{HubSpotClient, HubSpotClientConfig, RetryPolicy};
use dealhook::inbound::Invocation;
use dealhook::{App, Settings};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHILD: &str = "DEALHOOK_TEST_LOG_CHILD";
const REQUEST_ID: &str = "req-runtime-trace-1";
const TRACE_HEADER: &str = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1";
const SIGNATURE: &str = "sha256=SIGVALUE0f3c9a";
const QUERY_TOKEN: &str = "QTOKEN7d2e41";
const BODY_VALUE: &str = "BODYVALUE-ada-lovelace";
const HUBSPOT_TOKEN: &str = "pat-na1-logs-child-SECRET";

fn event() -> Value {
    json!({
        "version": "2.0",
        "rawPath": "/hooks/website-quote",
        "rawQueryString": format!("token={QUERY_TOKEN}"),
        "headers": {
            "content-type": "application/json",
            "x-hub-signature-256": SIGNATURE,
            "authorization": format!("Bearer {QUERY_TOKEN}")
        },
        "requestContext": {"http": {"method": "POST"}, "requestId": "apigw-1"},
        "body": json!({"company": BODY_VALUE, "plan": "team", "budget": "1,000"}).to_string(),
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_the_runtime_logs_no_header_token_or_body_and_every_line_has_the_request_id() {
    if let Ok(runtime_api) = std::env::var(CHILD) {
        return child(&runtime_api).await;
    }
    let runtime = MockServer::start().await;
    let deadline_ms = (chrono::Utc::now() + chrono::Duration::seconds(60)).timestamp_millis();
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("lambda-runtime-aws-request-id", REQUEST_ID)
                .insert_header("lambda-runtime-deadline-ms", deadline_ms.to_string().as_str())
                .insert_header("lambda-runtime-trace-id", TRACE_HEADER)
                .insert_header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:dealhook",
                )
                .set_body_json(event()),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&runtime)
        .await;
    // The next invocation never comes: the child stops itself once it has answered.
    Mock::given(method("GET"))
        .and(path("/2018-06-01/runtime/invocation/next"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .with_priority(2)
        .mount(&runtime)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/2018-06-01/runtime/invocation/.*/response$"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&runtime)
        .await;

    let exe = std::env::current_exe().expect("the test binary");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([
                "logs::at_trace_level_the_runtime_logs_no_header_token_or_body_and_every_line_has_the_request_id",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "dealhook")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RUST_LOG", "trace")
            .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
            .env_remove("DEALHOOK_LOG_PAYLOADS")
            .output()
            .map(|output| (output, runtime))
    })
    .await
    .expect("the child ran")
    .expect("the child started");
    let (output, runtime) = output;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the child failed: {stderr}");
    let answers: Vec<Value> = runtime
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    assert_eq!(answers.len(), 1, "one answer posted to the Runtime API");
    assert_eq!(answers[0]["statusCode"], 202, "dead-lettered: {}", answers[0]);

    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for secret in [SIGNATURE, QUERY_TOKEN, BODY_VALUE, HUBSPOT_TOKEN, "SIGVALUE"] {
        assert!(!stderr.contains(secret), "{secret} is in the logs:\n{stderr}");
    }
    let first = lines
        .iter()
        .position(|l| l.get("requestId").is_some())
        .unwrap_or_else(|| panic!("no line with a requestId:\n{stderr}"));
    let last = lines
        .iter()
        .rposition(|l| l.get("requestId").is_some())
        .unwrap_or(first);
    // From the invocation's first line to its last (after it, the child's own test harness logs).
    let invocation = &lines[first..=last];
    assert!(invocation.len() >= 2, "the delivery's lines: {invocation:?}");
    for line in invocation {
        assert_eq!(line["requestId"], REQUEST_ID, "{line}");
        assert_eq!(line["xray_trace_id"], "1-67891233-abcdef012345678912345678", "{line}");
    }
    let summary = invocation
        .iter()
        .find(|l| l["message"] == "delivery")
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    assert_eq!(summary["outcome"], "dead_lettered");
    assert_eq!(summary["reason"], "hubspot_rejected");
    assert_eq!(summary["hubspot_status"], 400);
    assert_eq!(summary["attempts"], 1);
    for stage in [
        "hubspot_ms",
        "dead_letter_ms",
        "verify_ms",
        "decode_ms",
        "map_ms",
        "duration_ms",
    ] {
        assert!(summary[stage].is_f64(), "{stage}: {summary}");
    }
    assert!(
        invocation.iter().any(|l| l["span"]["name"] == "hubspot_create_deal"),
        "a line from the HubSpot call's span: {invocation:?}"
    );
}

/// The child: the app with a local HubSpot that refuses the deal quoting the body's value (so that the
/// delivery is dead-lettered), run by `lambda_runtime` until it has answered one invocation.
async fn child(_: &str) {
    dealhook::telemetry::init();
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error",
            "message": format!("Property values were not valid: {BODY_VALUE} is not allowed"),
            "category": "VALIDATION_ERROR"
        })))
        .mount(&hubspot)
        .await;
    let app = App::new(
        Settings {
            max_body_bytes: 1024 * 1024,
            dry_run: false,
            skip_signatures: false,
            retry: RetryPolicy::default(),
        },
        Arc::new(crate::sample_events::showcase_mapping().expect("the showcase mapping")),
        Arc::new(MemorySecrets::new(Credentials::from_token(HUBSPOT_TOKEN.to_owned()))),
        Arc::new(
            HubSpotClient::new(HubSpotClientConfig {
                base_url: hubspot.uri(),
                ..HubSpotClientConfig::default()
            })
            .expect("the HubSpot base URL is valid"),
        ),
        Arc::new(MemoryDeadLetters::default()),
    );
    let app = &app;
    let answered = Arc::new(tokio::sync::Notify::new());
    let done = answered.clone();
    let handler = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Box<serde_json::value::RawValue>>| {
            let done = done.clone();
            async move {
                let invocation = Invocation::from_lambda(&event.context);
                let (_, response) = app.answer_event_text(event.payload.get(), &invocation).await;
                done.notify_one();
                Ok::<Value, std::convert::Infallible>(response)
            }
        },
    );
    tokio::select! {
        result = lambda_runtime::run(handler) => panic!("the runtime stopped: {result:?}"),
        // The runtime posts the answer right after the handler returns.
        () = async { answered.notified().await; tokio::time::sleep(Duration::from_millis(500)).await } => {}
    }
}
