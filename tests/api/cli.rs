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

/// The showcase mapping, whose routes the sample events in `examples/showcase/events/` are for.
const SHOWCASE: &str = "examples/showcase/mapping.yaml";

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

/// The Lambda response printed by `invoke` (its body shown as JSON, not `--raw`): status and body.
fn lambda_response(output: &Output) -> (u64, Value) {
    let response: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is the Lambda response JSON ({e}): {}", stdout(output)));
    assert!(response["body"].is_object(), "the body is shown as JSON: {response}");
    (response["statusCode"].as_u64().unwrap_or(0), response["body"].clone())
}

#[test]
fn check_accepts_the_showcase_mapping_and_warns_about_the_missing_pipeline() {
    let output = dealhook(&["check", SHOWCASE], &[]);
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

/// `check` checks the mapping the function would run: `DEALHOOK_MAPPING_YAML` when no file is named
/// (a fresh-user review found it checking the embedded mapping instead and saying "ok"). A file named
/// on the command line, or in `DEALHOOK_MAPPING`, still wins.
#[test]
fn check_checks_the_inline_mapping_the_function_would_run() {
    let broken = "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    on_association_failure: deadletter\n    deal:\n      dealstage: s\n";
    let output = dealhook(&["check"], &[("DEALHOOK_MAPPING_YAML", broken)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("DEALHOOK_MAPPING_YAML:6:"),
        "the inline mapping is named: {err}"
    );
    assert!(err.contains("deadletter"), "{err}");

    let output = dealhook(&["check", SHOWCASE], &[("DEALHOOK_MAPPING_YAML", broken)]);
    assert_eq!(output.status.code(), Some(0), "a named file wins: {}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("examples/showcase/mapping.yaml: ok"));
}

/// Queue mode's worker runs in-process when `invoke` is given an SQS event: each work item is run (a
/// dry run here, without credentials) and a message that is not an envelope is reported for retry.
#[test]
fn invoke_runs_the_worker_on_an_sqs_event() {
    let output = dealhook(
        &["invoke", "--mapping", SHOWCASE, "tests/fixtures/queue/sqs-event.json"],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(5),
        "one message left for retry: {}",
        stderr(&output)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "1e5c2b8f-0000-4000-8000-000000000002"}]})
    );
}

#[test]
fn transform_prints_the_hubspot_request_without_sending_it() {
    let output = dealhook(
        &[
            "transform",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/website-quote.json",
        ],
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
    let output = dealhook(
        &[
            "transform",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/website-quote-invalid.json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("properties.amount"), "{}", stderr(&output));
}

#[test]
fn invoke_without_credentials_is_a_dry_run_that_says_so() {
    let output = dealhook(
        &[
            "invoke",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/website-quote.json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "dry_run");
    assert_eq!(body["request"]["path"], "/deals/v1/deal/");
    assert!(stderr(&output).contains("dry run"), "{}", stderr(&output));
}

#[test]
fn invoke_without_a_queue_shows_the_dead_letter_instead_of_sending_it() {
    let output = dealhook(
        &[
            "invoke",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/website-quote-invalid.json",
        ],
        &[],
    );
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
    let output = dealhook(
        &[
            "invoke",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/does-not-exist.json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("does-not-exist.json"), "{}", stderr(&output));
}

/// `examples/showcase/events/website-quote.json` with `change` applied, written to a fresh temporary file.
fn edited_event(name: &str, change: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!(
        "{}/examples/showcase/events/website-quote.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    change(&mut event);
    let dir = std::env::temp_dir().join(format!("dealhook-event-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, event.to_string()).unwrap();
    file
}

#[test]
fn invoke_answers_the_raw_space_query_with_the_normal_pipeline() {
    // The issue's failing input: lambda_http panicked on it, so `invoke` died without an answer.
    let file = edited_event("raw-space.json", |e| {
        e["rawQueryString"] = "utm_source=newsletter&utm_campaign=spring sale".into();
    });
    let output = dealhook(&["invoke", "--mapping", SHOWCASE, file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!((status, &body["status"]), (200, &Value::from("dry_run")), "{body}");
}

#[test]
fn invoke_and_transform_answer_a_malformed_event_400_and_exit_4() {
    let file = edited_event("bad-base64.json", |e| {
        e["body"] = "not base64!".into();
        e["isBase64Encoded"] = true.into();
    });
    let output = dealhook(&["invoke", "--mapping", SHOWCASE, file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("malformed_request")),
        "{body}"
    );
    let output = dealhook(&["transform", "--mapping", SHOWCASE, file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("malformed_request"), "{}", stderr(&output));
}

#[test]
fn invoke_rejects_an_event_file_that_is_not_json_with_exit_1() {
    let dir = std::env::temp_dir().join(format!("dealhook-event-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-json.json");
    // Variants: broken JSON, and a form body passed as if it were an event (found by a fresh-user
    // review: no hint was given then); both for invoke and transform.
    for (text, command) in [
        ("{ not json", "invoke"),
        ("company=Acme&email=ada%40acme.example", "invoke"),
        ("company=Acme&email=ada%40acme.example", "transform"),
    ] {
        std::fs::write(&file, text).unwrap();
        let output = dealhook(&[command, "--mapping", SHOWCASE, file.to_str().unwrap()], &[]);
        assert_eq!(output.status.code(), Some(1), "{text}");
        let err = stderr(&output);
        assert!(err.contains("is not JSON"), "{err}");
        assert!(
            err.contains(&format!("--body {} --endpoint NAME", file.display())),
            "{err}"
        );
    }
}

/// `HUBSPOT_ACCESS_TOKEN` stands in for the secret and is read like it: a secret's JSON with an
/// OAuth grant is exchanged for a token, never sent as a Bearer value itself (review of Step 6).
#[tokio::test(flavor = "multi_thread")]
async fn invoke_reads_an_oauth_secret_in_hubspot_access_token_and_exchanges_it() {
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/2026-03/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-exchanged-0001", "refresh_token": "refresh-token-zyxwvuts",
            "expires_in": 1800, "token_type": "bearer"})))
        .expect(1)
        .mount(&hubspot)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .and(header("authorization", "Bearer at-exchanged-0001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"portalId": 1, "dealId": 4243})))
        .expect(1)
        .mount(&hubspot)
        .await;
    let uri = hubspot.uri();
    let secret = r#"{"hubspot":{"oauth":{"clientId":"client-id-1234567","clientSecret":"client-secret-abcdefgh","refreshToken":"refresh-token-zyxwvuts"}}}"#;
    let vars = [("HUBSPOT_BASE_URL", uri.as_str()), ("HUBSPOT_ACCESS_TOKEN", secret)];

    let output = tokio::task::block_in_place(|| {
        dealhook(
            &[
                "invoke",
                "--mapping",
                SHOWCASE,
                "examples/showcase/events/website-quote.json",
            ],
            &vars,
        )
    });

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        lambda_response(&output),
        (200, serde_json::json!({"status": "created", "dealId": 4243}))
    );
    let requests = hubspot.received_requests().await.unwrap_or_default();
    for request in &requests {
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(!authorization.contains("client-secret"), "{authorization}");
        assert!(!authorization.contains("refresh-token"), "{authorization}");
    }
    let text = format!("{}{}", stdout(&output), stderr(&output));
    for value in ["client-secret-abcdefgh", "refresh-token-zyxwvuts", "at-exchanged-0001"] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
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

    let ok = tokio::task::block_in_place(|| {
        dealhook(
            &[
                "invoke",
                "--mapping",
                SHOWCASE,
                "examples/showcase/events/website-quote.json",
            ],
            &vars,
        )
    });
    let failed = tokio::task::block_in_place(|| {
        dealhook(
            &[
                "invoke",
                "--mapping",
                SHOWCASE,
                "examples/showcase/events/website-quote-invalid.json",
            ],
            &vars,
        )
    });

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
    let output = dealhook(
        &["check", SHOWCASE, "--secret", "examples/showcase/sample-secret.json"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn check_names_the_route_whose_signing_key_the_secret_lacks() {
    let dir = std::env::temp_dir().join(format!("dealhook-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret.json");
    std::fs::write(&file, r#"{"hubspot":{"accessToken":"x"},"signing":{"typeform":"k"}}"#).unwrap();

    let output = dealhook(&["check", SHOWCASE, "--secret", file.to_str().unwrap()], &[]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("stripe") && err.contains("examples/showcase/mapping.yaml:"),
        "names the route and line: {err}"
    );
    assert!(
        !err.contains("typeform:"),
        "the key that is there is not reported: {err}"
    );
}

/// A HubSpot credential given but blank: `check --secret` names it (the root mapping has one route,
/// `website-form`, signed with the key of that name). Variants: a blank token alone (error), a blank
/// token beside a usable legacy key (warning: the key is used), a usable token (neither).
#[test]
fn check_names_a_blank_hubspot_credential() {
    let dir = std::env::temp_dir().join(format!("dealhook-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let signing = r#""signing":{"website-form":"a-long-enough-token-123"}"#;
    let cases = [
        (
            r#"{"accessToken":"  "}"#,
            Some(1),
            Some("\"hubspot.accessToken\" is empty"),
            None,
        ),
        (
            r#"{"accessToken":"","hapikey":"legacy-key-123456"}"#,
            Some(0),
            None,
            Some("hubspot.accessToken is blank, so the legacy hubspot.hapikey is used"),
        ),
        (r#"{"accessToken":"pat-na1-123456"}"#, Some(0), None, None),
    ];
    for (hubspot, code, error, warning) in cases {
        let file = dir.join("secret.json");
        std::fs::write(&file, format!(r#"{{"hubspot":{hubspot},{signing}}}"#)).unwrap();
        let output = dealhook(
            &["check", "--mapping", "mapping.yaml", "--secret", file.to_str().unwrap()],
            &[],
        );
        let err = stderr(&output);
        assert_eq!(output.status.code(), code, "{hubspot}: {err}");
        if let Some(error) = error {
            assert!(err.contains(error), "{hubspot}: {err}");
        }
        assert_eq!(
            err.contains("is blank, so the legacy"),
            warning.is_some(),
            "{hubspot}: {err}"
        );
        if let Some(warning) = warning {
            assert!(err.contains(warning), "{hubspot}: {err}");
        }
        assert!(
            !err.contains("legacy-key-123456") && !err.contains("pat-na1-123456"),
            "{err}"
        );
    }
}

/// The Lambda Runtime API's paths (what the function polls for events and posts answers to).
const NEXT_INVOCATION: &str = "/2018-06-01/runtime/invocation/next";

/// Serves `events` (request ids `inv-0`, `inv-1`, …) to the function one by one through a fake Lambda
/// Runtime API on loopback; later polls hang. Returns the server, to read the posted answers from.
async fn runtime_api(events: &[String]) -> MockServer {
    let runtime = MockServer::start().await;
    for (i, event) in events.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(NEXT_INVOCATION))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(event.clone(), "application/json")
                    .insert_header("lambda-runtime-aws-request-id", format!("inv-{i}").as_str())
                    .insert_header("lambda-runtime-deadline-ms", "0")
                    .insert_header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:f",
                    ),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&runtime)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(NEXT_INVOCATION))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)))
        .with_priority(2)
        .mount(&runtime)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&runtime)
        .await;
    runtime
}

/// The answer the function posted for invocation `id`, waiting up to 20 s for it.
async fn posted_answer(runtime: &MockServer, id: &str) -> Value {
    let wanted = format!("/2018-06-01/runtime/invocation/{id}/response");
    for _ in 0..200 {
        let requests = runtime.received_requests().await.unwrap_or_default();
        if let Some(request) = requests.iter().find(|r| r.url.path() == wanted) {
            return serde_json::from_slice(&request.body).expect("the answer is JSON");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the function posted no answer for {id}");
}

fn event_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/examples/showcase/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signing_key_missing_from_the_secret_stops_its_endpoints_and_the_function_serves_the_others() {
    let sdk = moto::sdk_config().await;
    let secret = moto::create_secret(
        &sdk,
        r#"{"hubspot":{"accessToken":"x"},"signing":{"typeform":"k-typeform-signing-key"}}"#,
    )
    .await;
    let queue = moto::create_queue(&sdk, false).await;
    // A delivery to an endpoint whose key is missing (stripe), an unsigned one (website-quote), and one
    // whose JSON serde_json::Value cannot hold (a lone surrogate escape): the runtime must hand that
    // to dealhook, which answers it.
    let lone_surrogate =
        event_file("website-quote.json").replacen("\"rawQueryString\": \"\"", "\"rawQueryString\": \"a=\\ud800\"", 1);
    let runtime = runtime_api(&[
        event_file("stripe.json"),
        event_file("website-quote.json"),
        lone_surrogate,
    ])
    .await;
    let runtime_address = runtime.address().to_string();
    let mut function = Command::new(env!("CARGO_BIN_EXE_dealhook-http"));
    for name in CLEARED {
        function.env_remove(name);
    }
    let mut function = function
        .envs([
            ("HUBSPOT_SECRET_ID", secret.as_str()),
            (
                "DEALHOOK_MAPPING",
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples/showcase/mapping.yaml"),
            ),
            ("DEALHOOK_DLQ_URL", queue.as_str()),
            ("DEALHOOK_DRY_RUN", "true"),
            ("AWS_ENDPOINT_URL", moto::endpoint()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_LAMBDA_RUNTIME_API", runtime_address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "dealhook-test"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the function starts");

    let stopped = posted_answer(&runtime, "inv-0").await;
    let served = posted_answer(&runtime, "inv-1").await;
    let unreadable = posted_answer(&runtime, "inv-2").await;
    let _ = function.kill();
    let output = function.wait_with_output().unwrap();

    let body = |answer: &Value| -> Value { serde_json::from_str(answer["body"].as_str().unwrap_or("")).unwrap() };
    assert_eq!(stopped["statusCode"], 503, "{stopped}");
    assert_eq!(body(&stopped)["error"]["code"], "signing_key_missing");
    assert_eq!(served["statusCode"], 200, "{served}");
    assert_eq!(body(&served)["status"], "dry_run");
    assert_eq!(unreadable["statusCode"], 400, "{unreadable}");
    assert_eq!(body(&unreadable)["error"]["code"], "malformed_request");
    // One error line per missing key at cold start, naming the key, never a key's value.
    let logs = format!("{}{}", stdout(&output), stderr(&output));
    let missing = [
        "tally",
        "webflow",
        "jotform",
        "stripe",
        "billing",
        "github",
        "hubspot-app",
    ];
    for key in missing {
        let lines = logs
            .lines()
            .filter(|l| l.contains("\"ERROR\"") && l.contains(&format!("no key \\\"{key}\\\" under")))
            .count();
        assert_eq!(lines, 1, "one error for the missing key {key}: {logs}");
    }
    assert!(
        !logs.contains("no key \\\"typeform\\\""),
        "typeform's key is there: {logs}"
    );
    assert!(!logs.contains("k-typeform-signing-key"), "{logs}");
}

/// A Lambda function that cannot start says so once, as one JSON log line naming the variable, and
/// exits with a failure status: never a second copy of the error as a Rust `Debug` dump. Variants:
/// each binary; a variable missing (no dead-letter queue), a variable that does not parse
/// (`DEALHOOK_DRY_RUN=maybe`), a mapping that does not load.
#[test]
fn a_function_that_cannot_start_logs_its_error_once_as_json() {
    // (case, environment, what the error names)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 3] = [
        (
            "no dead-letter queue",
            &[("HUBSPOT_ACCESS_TOKEN", "pat-x")],
            "DEALHOOK_DLQ_URL",
        ),
        (
            "a value that does not parse",
            &[("DEALHOOK_DRY_RUN", "maybe")],
            "DEALHOOK_DRY_RUN",
        ),
        (
            "a mapping that does not load",
            &[
                ("DEALHOOK_MAPPING_YAML", "version: 1\nroutes: {}\n"),
                ("DEALHOOK_DRY_RUN", "true"),
            ],
            "routes",
        ),
    ];
    for binary in [
        env!("CARGO_BIN_EXE_dealhook-http"),
        env!("CARGO_BIN_EXE_dealhook-worker"),
    ] {
        for (name, envs, named) in cases {
            let mut command = Command::new(binary);
            for variable in CLEARED {
                command.env_remove(variable);
            }
            let output = command
                .env_remove("DEALHOOK_MAPPING_YAML")
                .env_remove("DEALHOOK_MODE")
                .envs(envs.iter().copied())
                .output()
                .unwrap();
            let case = format!("{binary} / {name}");
            assert_eq!(output.status.code(), Some(1), "{case}: {}", stderr(&output));
            let text = format!("{}{}", stdout(&output), stderr(&output));
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{case}: one line, not {lines:#?}");
            let line: Value =
                serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {text}"));
            assert_eq!(line["level"], "ERROR", "{case}: {line}");
            assert!(
                line["message"].as_str().unwrap_or("").contains("cannot start"),
                "{case}: {line}"
            );
            assert!(line["error"].as_str().unwrap_or("").contains(named), "{case}: {line}");
        }
    }
}
/// A fresh temporary directory.
fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every provider `init` knows, as `--provider` takes them.
const PROVIDERS: [&str; 10] = [
    "form",
    "json",
    "typeform",
    "tally",
    "webflow",
    "jotform",
    "stripe",
    "standard-webhooks",
    "github",
    "hubspot",
];

/// The README's first command, from a fresh clone: the starter event through the embedded starter
/// mapping (a dry run), saying that its token is not verified locally.
#[test]
fn the_readme_first_command_runs_the_starter_event_on_the_embedded_mapping() {
    let output = dealhook(&["invoke", "events/website-form.json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "dry_run");
    assert_eq!(
        body["request"]["body"]["properties"]["dealname"],
        "Website form: Acme Robotics"
    );
    assert!(
        stderr(&output).contains("the token signature is NOT verified"),
        "{}",
        stderr(&output)
    );
    let output = dealhook(&["check", "--secret", "events/sample-secret.json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("mapping.yaml (embedded): ok, 1 endpoint(s), 0 warning(s)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn init_writes_a_mapping_that_checks_and_a_secret_with_exactly_its_keys_for_every_provider() {
    for provider in PROVIDERS {
        let dir = temp_dir("dealhook-init");
        let output = dealhook(&["init", "--provider", provider, "--dir", dir.to_str().unwrap()], &[]);
        assert_eq!(output.status.code(), Some(0), "{provider}: {}", stderr(&output));
        let mapping = dir.join("mapping.yaml");
        let secret = dir.join("secret.json");
        let check_with = |secret: &std::path::Path| {
            dealhook(
                &[
                    "check",
                    "--mapping",
                    mapping.to_str().unwrap(),
                    "--secret",
                    secret.to_str().unwrap(),
                ],
                &[],
            )
        };
        // As written, the secret still holds init's placeholders: `check --secret` refuses it, naming
        // each placeholder's place (and no other fault), never its value.
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&secret).unwrap()).unwrap();
        let refused = check_with(&secret);
        assert_eq!(refused.status.code(), Some(1), "{provider}: {}", stderr(&refused));
        let errors = stderr(&refused).lines().filter(|l| l.contains(": error: ")).count();
        let mut placeholders = vec!["hubspot.accessToken".to_owned()];
        for (key, value) in written["signing"].as_object().unwrap() {
            if value.as_str().unwrap().contains("REPLACE_WITH_") {
                placeholders.push(format!("signing.{key}"));
            }
        }
        assert_eq!(errors, placeholders.len(), "{provider}: {}", stderr(&refused));
        for at in &placeholders {
            assert!(
                stderr(&refused).contains(&format!("error: {at} is still the placeholder")),
                "{provider}: {at}: {}",
                stderr(&refused)
            );
        }
        assert!(!stderr(&refused).contains("REPLACE_WITH_"), "{}", stderr(&refused));
        // With real-looking values in their place, the same check passes.
        let mut filled = written.clone();
        filled["hubspot"]["accessToken"] = "pat-na1-00000000-0000-0000-0000-000000000000".into();
        for (_, value) in filled["signing"].as_object_mut().unwrap() {
            if value.as_str().unwrap().contains("REPLACE_WITH_") {
                // A Standard Webhooks/Stripe-style `whsec_` + base64 secret suits every scheme.
                *value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into();
            }
        }
        let filled_path = dir.join("filled.json");
        std::fs::write(&filled_path, filled.to_string()).unwrap();
        let check = check_with(&filled_path);
        assert_eq!(check.status.code(), Some(0), "{provider}: {}", stderr(&check));
        assert!(
            stdout(&check).contains("0 warning(s)"),
            "{provider}: {}",
            stdout(&check)
        );
        assert!(
            stdout(&check).contains(" signature) →"),
            "{provider}: signed: {}",
            stdout(&check)
        );
        let secret: Value = serde_json::from_str(&std::fs::read_to_string(&secret).unwrap()).unwrap();
        let keys: Vec<&String> = secret["signing"].as_object().unwrap().keys().collect();
        let endpoint = stdout(&check)
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("POST /hooks/")
                    .map(|rest| rest.split(' ').next().unwrap().to_owned())
            })
            .unwrap();
        assert_eq!(
            keys,
            [&endpoint],
            "{provider}: the secret holds the route's key, and only it"
        );
        assert!(
            secret["hubspot"]["accessToken"]
                .as_str()
                .unwrap()
                .starts_with("REPLACE_WITH"),
            "{provider}: {secret}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn init_writes_the_providers_asked_for_prints_next_steps_and_never_overwrites_without_force() {
    let dir = temp_dir("dealhook-init");
    let d = dir.to_str().unwrap();
    let output = dealhook(
        &["init", "--provider", "webflow", "--provider", "stripe", "--dir", d],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    for step in [
        "dealhook check --mapping",
        "--secret",
        "dealhook transform",
        "--body",
        "deploy",
    ] {
        assert!(out.contains(step), "next steps mention {step}: {out}");
    }
    let mapping = std::fs::read_to_string(dir.join("mapping.yaml")).unwrap();
    assert!(
        mapping.contains("source: webflow") && mapping.contains("source: stripe"),
        "{mapping}"
    );
    assert!(!mapping.contains("source: form"), "{mapping}");
    let secret: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("secret.json")).unwrap()).unwrap();
    let keys: Vec<&String> = secret["signing"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["webflow", "stripe"]);

    std::fs::write(dir.join("mapping.yaml"), "my own mapping").unwrap();
    let again = dealhook(&["init", "--provider", "tally", "--dir", d], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("exists") && stderr(&again).contains("--force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("mapping.yaml")).unwrap(),
        "my own mapping"
    );

    let forced = dealhook(&["init", "--provider", "tally", "--dir", d, "--force"], &[]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(
        std::fs::read_to_string(dir.join("mapping.yaml"))
            .unwrap()
            .contains("source: tally")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn init_names_the_known_providers_for_an_unknown_one() {
    let output = dealhook(&["init", "--provider", "webfow", "--dir", "/nonexistent"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("webflow, jotform"), "{}", stderr(&output));
}

#[test]
fn the_gitignore_keeps_the_secret_init_writes_out_of_git() {
    let ignore = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "secret.json"), "{ignore}");
}

#[test]
fn check_takes_the_mapping_as_a_flag_or_an_argument_but_not_both() {
    let output = dealhook(&["check", "--mapping", SHOWCASE], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("examples/showcase/mapping.yaml: ok"),
        "{}",
        stdout(&output)
    );
    let output = dealhook(&["check", "--online", "--mapping", "/nonexistent/m.yaml"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("/nonexistent/m.yaml"), "{}", stderr(&output));
    let output = dealhook(&["check", SHOWCASE, "--mapping", SHOWCASE], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn replay_uses_the_mapping_flag() {
    let output = dealhook(
        &[
            "replay",
            "--mapping",
            "/nonexistent/m.yaml",
            "--dry-run",
            "--from",
            "http://127.0.0.1:9/q",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("/nonexistent/m.yaml"), "{}", stderr(&output));
}

/// The body of `examples/showcase/events/website-quote.json`, as the sender posts it, in a file.
fn quote_body() -> std::path::PathBuf {
    let event: Value = serde_json::from_str(&event_file("website-quote.json")).unwrap();
    let file = temp_dir("dealhook-body").join("quote.json");
    std::fs::write(&file, event["body"].as_str().unwrap()).unwrap();
    file
}

#[test]
fn transform_and_invoke_take_a_raw_body_and_build_the_event_themselves() {
    let body = quote_body();
    let body = body.to_str().unwrap();
    let args = ["--mapping", SHOWCASE, "--body", body, "--endpoint", "website-quote"];
    let output = dealhook(
        &[&["transform"][..], &args].concat(),
        &[("HUBSPOT_BASE_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let request: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(request["url"], "http://127.0.0.1:9/deals/v1/deal/");
    assert_eq!(
        request["body"]["associations"]["associatedVids"],
        serde_json::json!([27136, 27137])
    );
    assert!(stderr(&output).contains("as application/json"), "{}", stderr(&output));

    let output = dealhook(&[&["invoke"][..], &args].concat(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, answer) = lambda_response(&output);
    assert_eq!((status, &answer["status"]), (200, &Value::from("dry_run")), "{answer}");
}

#[test]
fn a_form_body_goes_with_its_query_headers_and_guessed_content_type() {
    let file = temp_dir("dealhook-body").join("form.txt");
    std::fs::write(&file, "company=Acme+Robotics&email=ada%40example.com&message=Hi").unwrap();
    let output = dealhook(
        &[
            "invoke",
            "--body",
            file.to_str().unwrap(),
            "--endpoint",
            "website-form",
            "--query",
            "token=whatever",
            "--header",
            "User-Agent: a-test",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (_, answer) = lambda_response(&output);
    assert_eq!(
        answer["request"]["body"]["properties"]["dealname"],
        "Website form: Acme Robotics"
    );
    assert!(
        stderr(&output).contains("as application/x-www-form-urlencoded"),
        "{}",
        stderr(&output)
    );
    // Told another type, the body is read as that type: JSON it is not, so it is dead-lettered.
    let output = dealhook(
        &[
            "transform",
            "--mapping",
            SHOWCASE,
            "--body",
            file.to_str().unwrap(),
            "--endpoint",
            "website-quote",
            "--content-type",
            "application/json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("decode_failed"), "{}", stderr(&output));
}

#[test]
fn transform_fields_shows_what_the_templates_see() {
    let output = dealhook(
        &[
            "transform",
            "--fields",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/webflow.json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["route"], "webflow");
    assert_eq!(seen["submission"]["source"], "webflow");
    assert!(seen["submission"]["id"].is_string(), "{seen}");
    assert!(
        seen["fields"]["form_name"].is_string(),
        "the normaliser's fields: {seen}"
    );
    assert!(seen["raw"].is_object(), "{seen}");

    let file = temp_dir("dealhook-body").join("form.txt");
    std::fs::write(&file, "Company+name=Acme&products=crm&products=cms").unwrap();
    let output = dealhook(
        &[
            "transform",
            "--fields",
            "--body",
            file.to_str().unwrap(),
            "--endpoint",
            "website-form",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["route"], "website-form");
    assert_eq!(seen["fields"]["Company name"], "Acme", "{seen}");

    // A delivery no route takes still shows its fields (to write the `match`), and says so.
    let file = temp_dir("dealhook-body").join("event.json");
    std::fs::write(
        &file,
        r#"{"id":"evt_1","object":"event","type":"customer.created","created":1795598047,"data":{"object":{"id":"cus_1","object":"customer","email":"ada@example.com"}}}"#,
    )
    .unwrap();
    let output = dealhook(
        &[
            "transform",
            "--fields",
            "--mapping",
            SHOWCASE,
            "--body",
            file.to_str().unwrap(),
            "--endpoint",
            "stripe",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["route"], Value::Null, "{seen}");
    assert_eq!(seen["submission"]["event_type"], "customer.created", "{seen}");
    assert!(stderr(&output).contains("it would be ignored"), "{}", stderr(&output));
}

#[test]
fn invoke_shows_the_body_as_json_and_raw_shows_the_exact_lambda_response() {
    let pretty = dealhook(&["invoke", "events/website-form.json"], &[]);
    let raw = dealhook(&["invoke", "--raw", "events/website-form.json"], &[]);
    assert_eq!(raw.status.code(), Some(0), "{}", stderr(&raw));
    let pretty: Value = serde_json::from_slice(&pretty.stdout).unwrap();
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let body = raw["body"]
        .as_str()
        .expect("--raw: the body is the JSON string Lambda returns");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), pretty["body"]);
    assert_eq!(raw["statusCode"], pretty["statusCode"]);
    assert_eq!(raw["headers"], pretty["headers"]);
}

#[test]
fn the_unverified_signature_notice_appears_only_for_a_signed_route() {
    let unsigned = dealhook(
        &[
            "invoke",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/website-quote.json",
        ],
        &[],
    );
    assert_eq!(unsigned.status.code(), Some(0), "{}", stderr(&unsigned));
    assert!(
        !stderr(&unsigned).contains("NOT verified in this local run"),
        "{}",
        stderr(&unsigned)
    );
    let signed = dealhook(
        &[
            "invoke",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/typeform.json",
        ],
        &[],
    );
    assert!(
        stderr(&signed).contains("the typeform signature is NOT verified in this local run"),
        "{}",
        stderr(&signed)
    );
    let transform = dealhook(
        &[
            "transform",
            "--mapping",
            SHOWCASE,
            "examples/showcase/events/typeform.json",
        ],
        &[],
    );
    assert!(stderr(&transform).contains("NOT verified"), "{}", stderr(&transform));
}

/// The mistake a new user makes first: the sender's body given where an event goes.
#[test]
fn a_body_given_as_an_event_says_to_pass_it_with_body_and_endpoint() {
    let body = quote_body();
    for command in ["invoke", "transform"] {
        let output = dealhook(&[command, body.to_str().unwrap()], &[]);
        assert_eq!(output.status.code(), Some(4), "{command}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains("is not a Lambda HTTP event"), "{command}: {err}");
        assert!(
            err.contains(&format!("--body {} --endpoint NAME", body.display())),
            "{command}: {err}"
        );
    }
}

/// Each way the delivery's arguments can be wrong, each with its exit code and message.
#[test]
fn delivery_arguments_that_do_not_fit_are_refused() {
    let body = quote_body();
    let body = body.to_str().unwrap();
    for (args, code, want) in [
        (vec!["transform"], 2, "--body"),
        (vec!["transform", "--body", body], 2, "--endpoint"),
        (vec!["invoke", "--endpoint", "website-form"], 2, "--body"),
        (
            vec!["invoke", "events/website-form.json", "--body", body, "--endpoint", "x"],
            2,
            "cannot be used with",
        ),
        (
            vec!["invoke", "events/website-form.json", "--query", "a=b"],
            2,
            "--body",
        ),
        (
            vec!["invoke", "--body", body, "--endpoint", "x", "--header", "nocolon"],
            2,
            "NAME:VALUE",
        ),
        (
            vec!["invoke", "--body", body, "--endpoint", "a/b"],
            1,
            "is not an endpoint name",
        ),
        (
            vec!["invoke", "--body", "/nonexistent/b.json", "--endpoint", "x"],
            1,
            "cannot read body file",
        ),
    ] {
        let output = dealhook(&args, &[]);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(want), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn every_subcommand_help_has_its_environment_an_example_and_its_exit_codes() {
    for command in ["init", "check", "transform", "invoke", "replay"] {
        let output = dealhook(&[command, "--help"], &[]);
        assert_eq!(output.status.code(), Some(0), "{command}");
        let help = stdout(&output);
        assert!(help.contains("Exit codes: 0"), "{command}: {help}");
        assert!(
            help.contains(&format!("dealhook {command} ")),
            "{command}: an example: {help}"
        );
        if command != "init" {
            assert!(help.contains("Environment:"), "{command}: {help}");
            assert!(help.contains("DEALHOOK_MAPPING"), "{command}: {help}");
            assert!(help.contains("--mapping <FILE>"), "{command}: {help}");
        }
    }
    let help = stdout(&dealhook(&["invoke", "--help"], &[]));
    for flag in [
        "--body <FILE>",
        "--endpoint <NAME>",
        "--content-type",
        "--header <NAME:VALUE>",
        "--query",
        "--raw",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    assert!(stdout(&dealhook(&["transform", "--help"], &[])).contains("--fields"));
    assert!(stdout(&dealhook(&["init", "--help"], &[])).contains("--provider <PROVIDER>"));
}

/// A file in a fresh temporary directory, for the tests below.
fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dealhook-check-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

/// Issue 15: `check` names what it checked: a file, DEALHOOK_MAPPING_YAML, or the copy built into the
/// binary, which may differ from the file on disk (here it is the same file).
#[test]
fn check_says_which_mapping_it_checked() {
    let output = dealhook(&["check"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(
            "dealhook: checking mapping.yaml (embedded): the mapping.yaml built into this binary when it was \
             compiled, which may differ from the file on disk"
        ),
        "{err}"
    );
    assert!(err.contains("./mapping.yaml is the same"), "{err}");

    let inline = "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    deal: { pipeline: default, dealstage: closedwon }\n";
    let output = dealhook(&["check"], &[("DEALHOOK_MAPPING_YAML", inline)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("dealhook: checking the mapping in the environment variable DEALHOOK_MAPPING_YAML"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).starts_with("DEALHOOK_MAPPING_YAML: ok"),
        "{}",
        stdout(&output)
    );

    let file = temp_file("mine.yaml", inline);
    let output = dealhook(&["check"], &[("DEALHOOK_MAPPING", file.to_str().unwrap())]);
    assert!(
        stderr(&output).contains(&format!(
            "dealhook: checking {} (named by DEALHOOK_MAPPING)",
            file.display()
        )),
        "{}",
        stderr(&output)
    );
}

/// Issue 15's mistakes, each of which dead-letters every delivery, in one mapping: two errors (exit 1)
/// and three warnings, each at its line and column.
#[test]
fn check_catches_what_fails_every_delivery() {
    let mapping = r#"version: 1
routes:
  demo:
    source: json
    signature: none
    deal:
      pipeline: Sales Pipeline
      dealstage: { from: "{{ fields.size }}", map: { small: appointmentscheduled } }
      properties:
        dealname: "{{ fields.company | defualt('Demo request') }}"
        dealnmae: "{{ fields.company }}"
        description: "{{ fields.path.split('/') | last }}"
"#;
    let file = temp_file("demo.yaml", mapping);
    let output = dealhook(&["check", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let name = file.display();
    for want in [
        format!(
            "{name}:7:17: warning: route demo, pipeline: \"Sales Pipeline\" looks like a label, not an id (in a new \
             portal's default pipeline its id is `default`)"
        ),
        format!("{name}:8:26: warning: route demo, dealstage: `map:` without `default:`"),
        format!(
            "{name}:10:40: error: route demo, properties.dealname: invalid template: unknown filter `defualt` (did \
             you mean `default`?)"
        ),
        format!(
            "{name}:11:9: warning: route demo, properties.dealnmae: `dealnmae` is not one of HubSpot's default \
             deal properties: did you mean `dealname`?"
        ),
        format!("{name}:12:38: error: route demo, properties.description: invalid template: unknown method `.split()`"),
        format!("{name}: 2 error(s)"),
    ] {
        assert!(err.contains(&want), "want {want}\n in {err}");
    }
}

/// `check --secret`, each variant of a secret that cannot serve the mapping: no HubSpot credential,
/// an empty key, a Standard Webhooks key that is not base64, a misspelt key name (with the near name),
/// plus notes that do not fail: a Stripe key that is not a `whsec_` secret, a key no route uses.
#[test]
fn check_secret_fails_on_a_secret_that_cannot_serve_the_mapping() {
    let mapping = "version: 1\nroutes:\n  pay:\n    source: stripe\n    signing_secret: stripe\n    deal: { pipeline: \
                   default, dealstage: closedwon }\n  billing:\n    source: standard-webhooks\n    signing_secret: \
                   billing\n    deal: { pipeline: default, dealstage: closedwon }\n  forms:\n    source: typeform\n    \
                   signing_secret: typeform\n    deal: { pipeline: default, dealstage: closedwon }\n";
    let mapping = temp_file("m.yaml", mapping);
    let check = |secret: &str| {
        let secret = temp_file("secret.json", secret);
        dealhook(
            &["check", mapping.to_str().unwrap(), "--secret", secret.to_str().unwrap()],
            &[],
        )
    };
    let good = r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typeform":"0123456789abcdef"}}"#;
    let output = check(good);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let cases: [(&str, i32, &str); 7] = [
        (
            r#"{"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typeform":"0123456789abcdef"}}"#,
            1,
            "error: the secret holds no HubSpot credential, so no deal can be created",
        ),
        (
            r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typeform":"  "}}"#,
            1,
            "error: signing key \"typeform\" cannot verify typeform signatures (the route's signing secret is unusable: it is empty)",
        ),
        (
            r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_not base64!","typeform":"0123456789abcdef"}}"#,
            1,
            "error: signing key \"billing\" cannot verify standard-webhooks signatures",
        ),
        (
            r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typefrom":"0123456789abcdef"}}"#,
            1,
            "note: the secret has \"typefrom\" under `signing`: did you mean \"typeform\"?",
        ),
        (
            r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"sk_live_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typeform":"0123456789abcdef"}}"#,
            0,
            "warning: signing key \"stripe\" (stripe): Stripe's endpoint signing secrets start with `whsec_`",
        ),
        (
            r#"{"hubspot":{"accessToken":"pat-na1-0123456789"},"signing":{"stripe":"whsec_0123456789abcdef","billing":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","typeform":"0123456789abcdef","old-form":"0123456789abcdef"}}"#,
            0,
            "note: signing key \"old-form\" is used by no route",
        ),
        (
            "{\n  \"hubspot\": {\"accessToken\": \"pat-na1-0123456789\"},\n  \"signing\": {\"stripe\": \"whsec_x\",}\n}",
            1,
            "the secret starts with `{` but is not valid JSON: a syntax error at line 3 column",
        ),
    ];
    for (secret, code, want) in cases {
        let output = check(secret);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{want}: {err}");
        assert!(err.contains(want), "want {want}\n in {err}");
        for value in [
            "0123456789abcdef",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "pat-na1-0123456789",
            "sk_live",
        ] {
            assert!(!err.contains(value), "a secret value leaked: {err}");
        }
    }
}
