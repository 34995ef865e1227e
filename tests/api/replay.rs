//! `dealhook replay` as a user runs it: the real binary against dead letters on moto's SQS (and S3),
//! a mock HubSpot and, where said, the idempotency table. A fixed mapping turns old failures into
//! deals; what still fails stays (as a new letter with its new error); `--reason` filters; a dry run
//! changes nothing; a big letter comes back from S3; a copy of a letter makes no second deal.

use std::process::{Command, Output};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use dealhook::dead_letter::DeadLetter;

use crate::helpers::{Options, TOKEN, TestApp, spawn_app_with};
use crate::moto;

/// The mapping as first deployed: `amount` read from `budget`, which senders fill with words.
const BROKEN: &str = r#"
version: 1
routes:
  quote:
    source: json
    signature: none
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Quote for {{ fields.company }}"
        amount: { from: "{{ fields.budget }}", type: number }
"#;

/// The fix: `amount` read from `amount`.
const FIXED: &str = r#"
version: 1
routes:
  quote:
    source: json
    signature: none
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Quote for {{ fields.company }}"
        amount: { from: "{{ fields.amount }}", type: number }
"#;

/// Fails under [`BROKEN`], makes a deal under [`FIXED`].
const FIXABLE: &str = r#"{"company":"Initech","budget":"about 10k","amount":"10000"}"#;
/// Fails under both.
const HOPELESS: &str = r#"{"company":"Hooli","budget":"lots","amount":"ten thousand"}"#;

/// An app with the broken mapping, whose dead letters go to a fresh queue (and big ones to `bucket`).
async fn broken_app(bucket: Option<String>) -> TestApp {
    spawn_app_with(Options {
        mapping: Some(BROKEN.to_owned()),
        max_body_bytes: 2 * 1024 * 1024,
        payload_bucket: bucket,
        ..Options::default()
    })
    .await
}

/// Posts `body` to the broken app: it must be dead-lettered (`mapping_failed`); the letter's id.
async fn dead_letter(t: &TestApp, body: &[u8]) -> String {
    let response = t.post("quote", "application/json", body).await;
    assert_eq!(
        response.status,
        202,
        "{}",
        &response.text[..response.text.len().min(300)]
    );
    assert_eq!(response.json["reason"], "mapping_failed");
    response.json["deadLetterId"].as_str().unwrap().to_owned()
}

/// A mock HubSpot answering the v1 deal create with deal 4242, expecting `deals` calls.
async fn hubspot(deals: u64) -> MockServer {
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"portalId": 1, "dealId": 4242})))
        .expect(deals)
        .mount(&hubspot)
        .await;
    hubspot
}

/// Runs `dealhook replay --from QUEUE --json ARGS` with only the variables given (and the emulator's).
fn replay(queue: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dealhook"));
    command
        .args(["replay", "--from", queue, "--json"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs([
            ("AWS_ENDPOINT_URL", moto::endpoint()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .envs(vars.iter().copied());
    tokio::task::block_in_place(|| command.output().expect("the dealhook binary runs"))
}

/// The summary printed on stdout, with stderr in the panic message if it is not JSON.
fn summary(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is the summary JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The variables of a real replay with the fixed mapping, against `hubspot`.
fn fixed_vars(hubspot: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("DEALHOOK_MAPPING_YAML", FIXED.to_owned()),
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("HUBSPOT_BASE_URL", hubspot.uri()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The letters on the queue, (id, reason), left visible (one receive: a test queue holds a few).
async fn letters(t: &TestApp) -> Vec<(String, String)> {
    let out = aws_sdk_sqs::Client::new(&t.sdk)
        .receive_message()
        .queue_url(&t.queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, String)> = out
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let letter: DeadLetter = serde_json::from_str(m.body().unwrap()).unwrap();
            (letter.id, letter.reason.as_str().to_owned())
        })
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_mapping_turns_the_letter_into_a_deal_and_the_still_broken_one_stays_with_its_new_error() {
    let t = broken_app(None).await;
    let fixable = dead_letter(&t, FIXABLE.as_bytes()).await;
    let hopeless = dead_letter(&t, HOPELESS.as_bytes()).await;
    let hubspot = hubspot(1).await;

    let output = replay(&t.queue_url, &[], &borrowed(&fixed_vars(&hubspot)));

    assert_eq!(output.status.code(), Some(3), "one still fails: {}", stderr(&output));
    let s = summary(&output);
    assert_eq!(s["read"], 2, "{s}");
    assert_eq!(s["replayed"], 2, "{s}");
    assert_eq!(s["created"], 1, "{s}");
    assert_eq!(s["stillFailing"], serde_json::json!({"mapping_failed": 1}), "{s}");
    assert_eq!(
        s["deleted"], 2,
        "the deal's letter, and the old letter of the one that failed again: {s}"
    );
    let left = letters(&t).await;
    assert_eq!(left.len(), 1, "one letter, the new one: {left:?}");
    assert_ne!(left[0].0, fixable);
    assert_ne!(left[0].0, hopeless, "the old letter was replaced by a new one");
    assert_eq!(left[0].1, "mapping_failed");
    let requests = hubspot.received_requests().await.unwrap();
    let deal = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/deals/v1/deal/")
        .unwrap();
    let body: Value = serde_json::from_slice(&deal.body).unwrap();
    let amount = body["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "amount")
        .unwrap();
    assert_eq!(amount["value"], "10000", "the fixed mapping's amount: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_letter_carries_the_new_error() {
    let t = broken_app(None).await;
    dead_letter(&t, HOPELESS.as_bytes()).await;
    let hubspot = hubspot(0).await;

    let output = replay(&t.queue_url, &[], &borrowed(&fixed_vars(&hubspot)));

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let fields: Vec<String> = letters[0].errors.iter().map(|p| format!("{p:?}")).collect();
    assert!(
        fields.iter().any(|p| p.contains("amount")),
        "the new error names the property: {fields:?}"
    );
    let body = String::from_utf8(letters[0].body().unwrap()).unwrap();
    assert_eq!(body, HOPELESS, "the delivery is kept byte for byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn reason_filters_the_letters_replayed() {
    let t = broken_app(None).await;
    let id = dead_letter(&t, FIXABLE.as_bytes()).await;
    let hubspot = hubspot(1).await;
    let vars = fixed_vars(&hubspot);

    let skipped = replay(&t.queue_url, &["--reason", "hubspot_rejected"], &borrowed(&vars));

    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let s = summary(&skipped);
    assert_eq!(
        (s["skippedByReason"].as_u64(), s["replayed"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(
        letters(&t).await,
        [(id, "mapping_failed".to_owned())],
        "left, visible again at once"
    );

    let chosen = replay(
        &t.queue_url,
        &["--reason", "hubspot_rejected,mapping_failed"],
        &borrowed(&vars),
    );

    assert_eq!(chosen.status.code(), Some(0), "{}", stderr(&chosen));
    let s = summary(&chosen);
    assert_eq!(
        (s["created"].as_u64(), s["deleted"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(letters(&t).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_sends_nothing_and_deletes_nothing() {
    let t = broken_app(None).await;
    let fixable = dead_letter(&t, FIXABLE.as_bytes()).await;
    let hopeless = dead_letter(&t, HOPELESS.as_bytes()).await;
    let hubspot = hubspot(0).await;

    let output = replay(&t.queue_url, &["--dry-run"], &borrowed(&fixed_vars(&hubspot)));

    assert_eq!(
        output.status.code(),
        Some(3),
        "one would still fail: {}",
        stderr(&output)
    );
    let s = summary(&output);
    assert_eq!(s["dryRun"], true);
    assert_eq!(s["wouldSend"], 1, "{s}");
    assert_eq!(s["stillFailing"], serde_json::json!({"mapping_failed": 1}), "{s}");
    assert_eq!(s["deleted"], 0, "{s}");
    let mut expected = vec![
        (fixable, "mapping_failed".to_owned()),
        (hopeless, "mapping_failed".to_owned()),
    ];
    expected.sort();
    assert_eq!(letters(&t).await, expected, "the same two letters, no new one");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_credential_replay_refuses_to_run_unless_dry() {
    let t = broken_app(None).await;
    dead_letter(&t, FIXABLE.as_bytes()).await;

    let output = replay(&t.queue_url, &[], &[("DEALHOOK_MAPPING_YAML", FIXED)]);

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("HUBSPOT_SECRET_ID"), "{}", stderr(&output));
    assert_eq!(letters(&t).await.len(), 1, "nothing was read away");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_800_kb_letter_kept_in_s3_is_replayed_into_a_deal() {
    let sdk = moto::sdk_config().await;
    let bucket = moto::create_bucket(&sdk).await;
    let t = broken_app(Some(bucket.clone())).await;
    let mut body = br#"{"company":"Initech","budget":"about 10k","amount":"10000","notes":""#.to_vec();
    body.resize(800 * 1024 - 2, b'n');
    body.extend_from_slice(br#""}"#);
    dead_letter(&t, &body).await;
    let messages = moto::receive_all(&sdk, &t.queue_url).await;
    assert!(
        dealhook::aws::PayloadPointer::from_message_body(messages[0].body().unwrap()).is_some(),
        "the letter went through S3"
    );
    // Visible again for the replay.
    for message in &messages {
        aws_sdk_sqs::Client::new(&sdk)
            .change_message_visibility()
            .queue_url(&t.queue_url)
            .receipt_handle(message.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    let hubspot = hubspot(1).await;
    let mut vars = fixed_vars(&hubspot);
    vars.push(("DEALHOOK_PAYLOAD_BUCKET", bucket));

    let output = replay(&t.queue_url, &[], &borrowed(&vars));

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let s = summary(&output);
    assert_eq!(
        (s["created"].as_u64(), s["deleted"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(moto::receive_all(&sdk, &t.queue_url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_idempotency_table_a_copy_of_a_letter_makes_no_second_deal() {
    let t = broken_app(None).await;
    dead_letter(&t, FIXABLE.as_bytes()).await;
    // The same letter twice on the queue (a redrive that ran twice, a copy sent by hand).
    let client = aws_sdk_sqs::Client::new(&t.sdk);
    let original = moto::receive_all(&t.sdk, &t.queue_url).await.remove(0);
    let text = original.body().unwrap().to_owned();
    client
        .delete_message()
        .queue_url(&t.queue_url)
        .receipt_handle(original.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        client
            .send_message()
            .queue_url(&t.queue_url)
            .message_body(&text)
            .send()
            .await
            .unwrap();
    }
    let table = crate::idempotency::create_table(&t.sdk).await;
    let hubspot = hubspot(1).await;
    let mut vars = fixed_vars(&hubspot);
    vars.push(("DEALHOOK_IDEMPOTENCY_TABLE", table));

    let output = replay(&t.queue_url, &[], &borrowed(&vars));

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let s = summary(&output);
    assert_eq!(s["replayed"], 2, "{s}");
    assert_eq!(
        (s["created"].as_u64(), s["alreadyDone"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["deleted"], 2, "{s}");
    assert!(letters(&t).await.is_empty());
    // Once more, nothing left: exit 0, nothing sent (wiremock's expect(1) checks on drop).
    let again = replay(&t.queue_url, &[], &borrowed(&vars));
    assert_eq!(summary(&again)["read"], 0);
}
