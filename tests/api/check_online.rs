//! `dealhook check --online` as a user runs it, against a mock HubSpot serving the portal fixtures: the
//! findings for a broken mapping line by line (text and JSON), and a portal that cannot be read.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli::{dealhook, stderr};
use crate::helpers::TOKEN;

const PIPELINES: &str = include_str!("../fixtures/portal/pipelines.json");
const DEALS: &str = include_str!("../fixtures/portal/deal-properties.json");
const CONTACTS: &str = include_str!("../fixtures/portal/contact-properties.json");
const COMPANIES: &str = include_str!("../fixtures/portal/company-properties.json");
const BROKEN: &str = "tests/fixtures/check-online/broken.yaml";

async fn portal() -> MockServer {
    let hubspot = MockServer::start().await;
    for (at, body) in [
        ("/crm/pipelines/2026-03/deals", PIPELINES),
        ("/crm/properties/2026-03/deals", DEALS),
        ("/crm/properties/2026-03/contacts", CONTACTS),
    ] {
        Mock::given(method("GET"))
            .and(path(at))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&hubspot)
            .await;
    }
    hubspot
}

fn run(hubspot: &MockServer, args: &[&str]) -> std::process::Output {
    let uri = hubspot.uri();
    tokio::task::block_in_place(|| {
        dealhook(
            args,
            &[("HUBSPOT_BASE_URL", uri.as_str()), ("HUBSPOT_ACCESS_TOKEN", TOKEN)],
        )
    })
}

const EXPECTED: [&str; 9] = [
    "tests/fixtures/check-online/broken.yaml:3:3: warning: route partner-lead, signature: accepts unsigned \
     deliveries: anyone who knows the URL can create deals (if the sender signs its requests, set `signature:` and \
     `signing_secret:`)",
    "tests/fixtures/check-online/broken.yaml:5:43: error: route partner-lead, hubspot.upsert_by: deal property dealname \
     does not have unique values in the portal (hasUniqueValue is false), so HubSpot cannot upsert by it; create a \
     property with unique values (e.g. an event id)",
    "tests/fixtures/check-online/broken.yaml:8:18: error: route partner-lead, dealstage: no stage of pipeline \
     \"Partner Deals\" has the id or label \"appointmentscheduled\" (the stages of \"Partner Deals\": \"Qualified To \
     Buy\" (161845224), \"161845226\" (161845225), \"Contract Sent\" (161845226), \"Closed Won\" (161845227))",
    "tests/fixtures/check-online/broken.yaml:11:9: error: route partner-lead, properties.amout: the portal has no deal \
     property amout (did you mean amount, \"Amount\"?); HubSpot rejects unknown properties",
    "tests/fixtures/check-online/broken.yaml:12:19: error: route partner-lead, properties.dealtype: \"renewal\" is \
     neither the value nor the label of an option of dealtype (options: \"New Business\" (newbusiness), \"Existing \
     Business\" (existingbusiness))",
    "tests/fixtures/check-online/broken.yaml:13:9: error: route partner-lead, properties.hs_is_closed: deal property \
     hs_is_closed is calculated by HubSpot: HubSpot refuses or ignores values written to it; remove it",
    "tests/fixtures/check-online/broken.yaml:14:31: error: route partner-lead, properties.products_of_interest: \
     \"marketing_hub\" is neither the value nor the label of an option of products_of_interest (options: \"CRM \
     Suite\" (crm), \"Sales Hub\" (sales_hub), \"Service Hub\" (service_hub), \"Legacy\" (legacy))",
    "tests/fixtures/check-online/broken.yaml:15:28: error: route partner-lead, properties.closedate: `type: number` \
     contradicts the property: closedate has type datetime in the portal; use `type: datetime` or none",
    "tests/fixtures/check-online/broken.yaml:17:80: error: route partner-lead, \
     associations.contacts[0].properties.lifecyclestage: \"Lead\" is the label of option \"lead\" of contact property \
     lifecyclestage; contact properties are sent as written, so write the option's value \"lead\"",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_mapping_gets_every_portal_mismatch_line_by_line_and_exit_1() {
    let hubspot = portal().await;

    let output = run(&hubspot, &["check", "--online", BROKEN]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(lines, EXPECTED, "{err}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "tests/fixtures/check-online/broken.yaml: 8 error(s), 1 warning(s) against the portal (3 pipeline(s), 11 \
         deal properties)"
    );
    assert!(!err.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_json_the_findings_are_one_document_for_ci() {
    let hubspot = portal().await;

    let output = run(&hubspot, &["check", "--online", "--json", BROKEN]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["mapping"], BROKEN);
    assert_eq!(report["errors"], 8);
    assert_eq!(report["warnings"], 1, "the offline warnings are in the document too");
    let findings = report["findings"].as_array().unwrap();
    let shown: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{BROKEN}:{}:{}: {}: route {}, {}: {}",
                f["line"],
                f["column"],
                f["severity"].as_str().unwrap(),
                f["route"].as_str().unwrap(),
                f["field"].as_str().unwrap(),
                f["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(shown, EXPECTED);
    assert_eq!(
        findings[1],
        json!({"severity": "error", "route": "partner-lead", "field": "hubspot.upsert_by", "line": 5, "column": 43,
               "message": EXPECTED[1].split("hubspot.upsert_by: ").nth(1).unwrap()})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_that_matches_the_portal_passes() {
    let hubspot = MockServer::start().await;
    let documents = [
        ("pipelines", "deals", PIPELINES),
        ("properties", "deals", DEALS),
        ("properties", "contacts", CONTACTS),
        ("properties", "companies", COMPANIES),
    ];
    for (at, body) in documents.iter().flat_map(|(api, object, body)| {
        [
            (format!("/crm/v3/{api}/{object}"), *body),
            (format!("/crm/{api}/2026-03/{object}"), *body),
        ]
    }) {
        Mock::given(method("GET"))
            .and(path(at.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .up_to_n_times(1)
            .mount(&hubspot)
            .await;
    }
    // A v1 route (the v3 paths) and a 2026-03 route with association blocks: each document read once per
    // API (contact and company properties too, for both, once any route needs them).
    let output = run(
        &hubspot,
        &["check", "--online", "tests/fixtures/check-online/good.yaml"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error:"), "{}", stderr(&output));
    assert_eq!(hubspot.received_requests().await.unwrap().len(), 8);
}

/// The portal cannot be read: a distinct exit code and a sentence saying what to do; nothing checked.
mod unreadable_portal {
    use super::*;

    async fn refusing(status: u16, body: Value) -> MockServer {
        let hubspot = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&hubspot)
            .await;
        hubspot
    }

    fn assert_unreadable(output: &std::process::Output, says: &[&str]) {
        assert_eq!(output.status.code(), Some(7), "{}", stderr(output));
        let err = stderr(output);
        for phrase in says {
            assert!(err.contains(phrase), "{phrase:?} in {err}");
        }
        assert!(err.contains("nothing was checked"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
        // With `--json`, one document that says so (CI reading it gets no empty file); else nothing.
        if output.stdout.is_empty() {
            return;
        }
        let document: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(document["exitCode"], 7, "{document}");
        assert!(document["error"].as_str().unwrap().contains(says[0]), "{document}");
        assert!(!document.to_string().contains(TOKEN));
    }

    #[test]
    fn without_a_credential() {
        let output = dealhook(
            &["check", "--online", BROKEN],
            &[("HUBSPOT_BASE_URL", "http://127.0.0.1:9")],
        );
        assert_unreadable(&output, &["no HubSpot credential", "HUBSPOT_ACCESS_TOKEN"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_401() {
        let hubspot = refusing(
            401,
            json!({"status": "error", "message": "Authentication credentials not found.",
                   "correlationId": "5e2d1f7a-0000-4b7c-8a9d-123456789abc", "category": "INVALID_AUTHENTICATION"}),
        )
        .await;
        let output = run(&hubspot, &["check", "--online", BROKEN]);
        assert_unreadable(
            &output,
            &["HubSpot refused the credential (HTTP 401)", "crm.schemas.deals.read"],
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_403_missing_scopes_names_them() {
        let hubspot = refusing(
            403,
            json!({"status": "error",
                   "message": "This app hasn't been granted all required scopes to make this call.",
                   "correlationId": "2d1f2c59-0000-4cd8-9d0b-b1f0f5f3a8c1",
                   "errors": [{"message": "One or more of the following scopes are required.",
                               "context": {"requiredGranularScopes": ["crm.schemas.deals.read"]}}],
                   "category": "MISSING_SCOPES"}),
        )
        .await;
        let output = run(&hubspot, &["check", "--online", "--json", BROKEN]);
        assert!(
            !output.stdout.is_empty(),
            "--json prints a document even when the portal is unreadable"
        );
        assert_unreadable(
            &output,
            &[
                "MISSING_SCOPES",
                "HubSpot names: crm.schemas.deals.read",
                "any one of: crm.objects.deals.read, crm.objects.deals.write, crm.schemas.deals.read",
            ],
        );
    }
}
