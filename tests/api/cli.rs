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

    let output = dealhook(&["check", "mapping.yaml"], &[("DEALHOOK_MAPPING_YAML", broken)]);
    assert_eq!(output.status.code(), Some(0), "a named file wins: {}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("mapping.yaml: ok"));
}

/// Queue mode's worker runs in-process when `invoke` is given an SQS event: each work item is run (a
/// dry run here, without credentials) and a message that is not an envelope is reported for retry.
#[test]
fn invoke_runs_the_worker_on_an_sqs_event() {
    let output = dealhook(&["invoke", "tests/fixtures/queue/sqs-event.json"], &[]);
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

/// `events/website-quote.json` with `change` applied, written to a fresh temporary file.
fn edited_event(name: &str, change: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("{}/events/website-quote.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
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
    let output = dealhook(&["invoke", file.to_str().unwrap()], &[]);
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
    let output = dealhook(&["invoke", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let (status, body) = lambda_response(&output);
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("malformed_request")),
        "{body}"
    );
    let output = dealhook(&["transform", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("malformed_request"), "{}", stderr(&output));
}

#[test]
fn invoke_rejects_an_event_file_that_is_not_json_with_exit_1() {
    let dir = std::env::temp_dir().join(format!("dealhook-event-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-json.json");
    std::fs::write(&file, "{ not json").unwrap();
    let output = dealhook(&["invoke", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is not JSON"), "{}", stderr(&output));
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

    let output = tokio::task::block_in_place(|| dealhook(&["invoke", "events/website-quote.json"], &vars));

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
    std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
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
