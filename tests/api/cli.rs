//! The `dealhook` binary as a user runs it: exit codes, stdout (results) and stderr (notes, logs).

use std::process::{Command, Output};

use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TOKEN;
use crate::moto;

/// Variables the CLI reads; cleared so the developer's own environment can't leak into a test.
const CLEARED: [&str; 10] = [
    "HUBSPOT_SECRET_ID",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_BASE_URL",
    "DEALHOOK_DLQ_URL",
    "DEALHOOK_MAPPING",
    "DEALHOOK_DRY_RUN",
    "DEALHOOK_MAX_BODY_BYTES",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "RUST_LOG",
];

pub fn dealhook(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dealhook"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for name in CLEARED {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied());
    command.output().expect("the dealhook binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The Lambda response printed by `invoke`, with its body parsed.
fn lambda_response(output: &Output) -> (u64, Value) {
    let response: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is the Lambda response JSON ({e}): {}", stdout(output)));
    let body = serde_json::from_str(response["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
    (response["statusCode"].as_u64().unwrap_or(0), body)
}

#[test]
fn check_accepts_the_default_mapping_and_warns_about_the_missing_pipeline() {
    let output = dealhook(&["check", "mapping.yaml"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("POST /hooks/website-quote"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("contact-form"),
        "warning names the route: {}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("pipeline"), "{}", stderr(&output));
}

#[test]
fn check_reports_every_error_with_its_location_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("dealhook-check-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        "version: 1\nroutes:\n  quote:\n    source: json\n    deal:\n      properties:\n        amount: { from: \"{{ fields.budget \", type: numbr }\n",
    )
    .unwrap();

    let output = dealhook(&["check", file.to_str().unwrap()], &[]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("dealstage"), "missing dealstage is reported: {err}");
    assert!(err.contains("numbr"), "the unknown type is reported: {err}");
    assert!(err.contains("broken.yaml:"), "errors carry the file: {err}");
}

#[test]
fn transform_prints_the_hubspot_request_without_sending_it() {
    let output = dealhook(
        &["transform", "events/website-quote.json"],
        &[("HUBSPOT_BASE_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let request: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], "http://127.0.0.1:9/deals/v1/deal/");
    assert_eq!(
        request["body"]["associations"]["associatedVids"],
        serde_json::json!([27136, 27137])
    );
}

#[test]
fn transform_lists_mapping_errors_and_exits_3() {
    let output = dealhook(&["transform", "events/website-quote-invalid.json"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("properties.amount"), "{}", stderr(&output));
}

#[test]
fn invoke_without_credentials_is_a_dry_run_that_says_so() {
    let output = dealhook(&["invoke", "events/website-quote.json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "dry_run");
    assert_eq!(body["request"]["path"], "/deals/v1/deal/");
    assert!(stderr(&output).contains("dry run"), "{}", stderr(&output));
}

#[test]
fn invoke_without_a_queue_shows_the_dead_letter_instead_of_sending_it() {
    let output = dealhook(&["invoke", "events/website-quote-invalid.json"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(status, 202);
    assert_eq!(body["reason"], "mapping_failed");
    let err = stderr(&output);
    assert!(err.contains("NOT sent"), "{err}");
    assert!(
        err.contains(body["deadLetterId"].as_str().unwrap()),
        "the shown letter is the one answered: {err}"
    );
}

#[test]
fn invoke_rejects_an_unreadable_event_file_with_exit_1() {
    let output = dealhook(&["invoke", "events/does-not-exist.json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("does-not-exist.json"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_against_mock_hubspot_and_moto_creates_the_deal_and_dead_letters_failures() {
    let sdk = moto::sdk_config().await;
    let secret = moto::create_secret(&sdk, &format!(r#"{{"hubspot":{{"accessToken":"{TOKEN}"}}}}"#)).await;
    let queue = moto::create_queue(&sdk, false).await;
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"portalId": 1, "dealId": 4242})))
        .expect(1)
        .mount(&hubspot)
        .await;
    let endpoint = moto::endpoint();
    let uri = hubspot.uri();
    let vars = [
        ("HUBSPOT_SECRET_ID", secret.as_str()),
        ("HUBSPOT_BASE_URL", uri.as_str()),
        ("DEALHOOK_DLQ_URL", queue.as_str()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("RUST_LOG", "trace"),
    ];

    let ok = tokio::task::block_in_place(|| dealhook(&["invoke", "events/website-quote.json"], &vars));
    let failed = tokio::task::block_in_place(|| dealhook(&["invoke", "events/website-quote-invalid.json"], &vars));

    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(
        lambda_response(&ok),
        (200, serde_json::json!({"status": "created", "dealId": 4242}))
    );
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    let messages = moto::receive_all(&sdk, &queue).await;
    assert_eq!(messages.len(), 1, "the failed delivery is on the queue");
    let logs = format!("{}{}", stderr(&ok), stderr(&failed));
    assert!(
        logs.lines()
            .any(|l| l.contains("\"outcome\":\"created\"") && l.contains("\"deal_id\":4242")),
        "{logs}"
    );
    for line in logs.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("log lines are JSON ({e}): {line}"));
    }
    assert!(!logs.contains(TOKEN), "the token leaked into the logs");
}

#[test]
fn check_with_the_sample_secret_finds_every_signing_key() {
    let output = dealhook(&["check", "mapping.yaml", "--secret", "events/sample-secret.json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn check_names_the_route_whose_signing_key_the_secret_lacks() {
    let dir = std::env::temp_dir().join(format!("dealhook-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret.json");
    std::fs::write(&file, r#"{"hubspot":{"accessToken":"x"},"signing":{"typeform":"k"}}"#).unwrap();

    let output = dealhook(&["check", "mapping.yaml", "--secret", file.to_str().unwrap()], &[]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("stripe") && err.contains("mapping.yaml:"),
        "names the route and line: {err}"
    );
    assert!(
        !err.contains("typeform:"),
        "the key that is there is not reported: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_function_refuses_to_start_when_the_secret_lacks_a_signing_key() {
    let sdk = moto::sdk_config().await;
    let secret = moto::create_secret(&sdk, r#"{"hubspot":{"accessToken":"x"},"signing":{"typeform":"k"}}"#).await;
    let queue = moto::create_queue(&sdk, false).await;
    let endpoint = moto::endpoint();
    let output = tokio::task::block_in_place(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dealhook-http"));
        for name in CLEARED {
            command.env_remove(name);
        }
        command
            .envs([
                ("HUBSPOT_SECRET_ID", secret.as_str()),
                ("DEALHOOK_DLQ_URL", queue.as_str()),
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                // Points the runtime client at a closed port, in case start-up were (wrongly) to succeed.
                ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
            ])
            .output()
            .unwrap()
    });
    assert!(!output.status.success(), "the function must not start");
    let err = stderr(&output);
    assert!(err.contains("signing keys") && err.contains("stripe"), "{err}");
    assert!(!err.contains("\"k\""), "{err}");
}
