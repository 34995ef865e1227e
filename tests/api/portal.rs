//! Labels through the handler: a mock HubSpot serves the portal's pipelines and deal properties
//! (tests/fixtures/portal, validated against HubSpot's OpenAPI response schemas) and receives deals
//! whose stages, pipelines and options were written as the labels people see.
//!
//! Covered: labels resolved end to end (2026-03 and v1 routes, the request HubSpot receives); the
//! schema read once for many deliveries, again after the TTL, and not by every one of concurrent
//! first deliveries; unknown stage, pipeline and option labels dead-lettered with useful messages; one
//! re-read when a label is unknown (and not more than once per interval); a schema read failing (500,
//! 403 MISSING_SCOPES) degrading to pass-through with exactly one warning; a dry run showing the
//! resolved values; the GETs dealhook builds checked against HubSpot's documents.

use std::time::Duration;

use dealhook::hubspot::portal::{PortalConfig, pipelines_request, properties_request};
use dealhook::hubspot::{HubSpotApi, HubSpotRequest, ObjectType};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{LogCapture, Options, TestApp, TestResponse, spawn_app_with};
use crate::hubspot_wire::{assert_valid, assert_valid_answer};

const PIPELINES: &str = include_str!("../fixtures/portal/pipelines.json");
const PROPERTIES: &str = include_str!("../fixtures/portal/deal-properties.json");

fn pipelines() -> Value {
    serde_json::from_str(PIPELINES).unwrap()
}

fn properties() -> Value {
    serde_json::from_str(PROPERTIES).unwrap()
}

/// One route per test (their names tell the log lines of parallel tests apart), reading labels.
fn mapping() -> String {
    let route = |name: &str, api: &str| {
        format!(
            r#"
  {name}:
    source: json
    signature: none
    hubspot: {{ api: "{api}" }}
    deal:
      pipeline: "{{{{ fields.pipeline }}}}"
      dealstage: "{{{{ fields.stage }}}}"
      properties:
        dealname: "{{{{ fields.name }}}}"
        dealtype: "{{{{ fields.type }}}}"
        products_of_interest: "{{{{ fields.products }}}}"
        amount: "{{{{ fields.amount }}}}"
"#
        )
    };
    let mut text = "version: 1\nroutes:".to_owned();
    for (name, api) in [
        ("portal-2026", "2026-03"),
        ("portal-v1", "v1"),
        ("portal-unknown", "2026-03"),
        ("portal-reread", "2026-03"),
        ("portal-ttl", "2026-03"),
        ("portal-stampede", "2026-03"),
        ("portal-500", "2026-03"),
        ("portal-403", "v3"),
        ("portal-dry", "2026-03"),
    ] {
        text += &route(name, api);
    }
    text
}

async fn app_with(config: PortalConfig, dry_run: bool) -> TestApp {
    spawn_app_with(Options {
        mapping: Some(mapping()),
        portal: Some(config),
        dry_run,
        ..Options::default()
    })
    .await
}

async fn app() -> TestApp {
    app_with(PortalConfig::default(), false).await
}

/// Labels as a form sends them: the partner pipeline's "Qualified To Buy" (the Sales Pipeline has a
/// stage of that label too), option labels, a multi-select, an amount with a thousands separator.
fn lead() -> Value {
    json!({"pipeline": "Partner Deals", "stage": "Qualified To Buy", "name": "Acme order",
           "type": "New Business", "products": ["CRM Suite", "sales hub"], "amount": "12,500.50"})
}

async fn post(app: &TestApp, route: &str, body: &Value) -> TestResponse {
    app.post(route, "application/json", body.to_string().as_bytes()).await
}

/// Serves the schema on `api`'s paths, each read expected `times` times.
async fn mount_schema(server: &MockServer, api: HubSpotApi, times: u64) {
    for (request, body) in [
        (pipelines_request(api), pipelines()),
        (properties_request(api, ObjectType::Deal), properties()),
    ] {
        Mock::given(method("GET"))
            .and(path(request.path.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(times)
            .mount(server)
            .await;
    }
}

async fn mount_deal_create(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path("/crm/objects/2026-03/deals"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "40123456789", "properties": {}})))
        .expect(times)
        .mount(server)
        .await;
}

/// The JSON bodies of the requests the mock received at `at`.
async fn bodies(server: &MockServer, at: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Warnings about a failed schema read logged while serving `route`.
fn schema_warnings(logs: &LogCapture, route: &str) -> usize {
    logs.text()
        .lines()
        .filter(|l| {
            l.contains("\"WARN\"") && l.contains("could not be read") && l.contains(&format!("\"route\":\"{route}\""))
        })
        .count()
}

#[test]
fn the_schema_gets_and_the_served_documents_match_hubspot_s_openapi_documents() {
    for api in HubSpotApi::ALL {
        let pipelines_get = pipelines_request(api);
        assert_valid(&pipelines_get);
        assert_valid_answer(&pipelines_get, 200, &pipelines());
        for object in [ObjectType::Deal, ObjectType::Contact, ObjectType::Company] {
            let properties_get = properties_request(api, object);
            assert_valid(&properties_get);
            assert_valid_answer(&properties_get, 200, &properties());
        }
    }
    let wrong = HubSpotRequest {
        method: "GET".to_owned(),
        path: "/crm/pipelines/2026-03/deals".to_owned(),
        body: Value::Null,
    };
    let refused = std::panic::catch_unwind(|| assert_valid_answer(&wrong, 200, &json!({"results": [{"id": "x"}]})));
    assert!(
        refused.is_err(),
        "a pipeline without its required fields is not HubSpot's shape"
    );
}

#[tokio::test]
async fn labels_become_ids_and_option_values_in_the_request_hubspot_receives() {
    let app = app().await;
    mount_schema(&app.hubspot, HubSpotApi::V2026_03, 1).await;
    mount_deal_create(&app.hubspot, 2).await;

    let first = post(&app, "portal-2026", &lead()).await;
    let again = post(
        &app,
        "portal-2026",
        &json!({"stage": "Closed Won", "type": "existingbusiness"}),
    )
    .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(again.status, 200, "{}", again.text);
    let sent = bodies(&app.hubspot, "/crm/objects/2026-03/deals").await;
    assert_eq!(
        sent[0]["properties"],
        json!({"pipeline": "87250318", "dealstage": "161845224", "dealname": "Acme order",
               "dealtype": "newbusiness", "products_of_interest": "crm;sales_hub", "amount": "12500.5"})
    );
    // No pipeline: the stage is the default pipeline's, which the deal then names.
    assert_eq!(
        sent[1]["properties"],
        json!({"pipeline": "default", "dealstage": "closedwon", "dealtype": "existingbusiness"})
    );
    for body in &sent {
        assert_valid(&HubSpotRequest {
            method: "POST".to_owned(),
            path: "/crm/objects/2026-03/deals".to_owned(),
            body: body.clone(),
        });
    }
}

#[tokio::test]
async fn a_v1_route_reads_the_v3_schema_and_sends_the_resolved_values() {
    let app = app().await;
    mount_schema(&app.hubspot, HubSpotApi::V3, 1).await;
    Mock::given(method("POST"))
        .and(path("/deals/v1/deal/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"portalId": 62515, "dealId": 151088})))
        .expect(1)
        .mount(&app.hubspot)
        .await;

    let response = post(&app, "portal-v1", &lead()).await;

    assert_eq!(response.status, 200, "{}", response.text);
    let sent = bodies(&app.hubspot, "/deals/v1/deal/").await;
    let properties: Vec<(String, String)> = sent[0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("pipeline", "87250318"),
        ("dealstage", "161845224"),
        ("dealtype", "newbusiness"),
        ("products_of_interest", "crm;sales_hub"),
    ] {
        assert!(
            properties.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {properties:?}"
        );
    }
}

#[tokio::test]
async fn unknown_labels_and_options_are_dead_lettered_with_what_the_portal_has() {
    let app = app().await;
    mount_schema(&app.hubspot, HubSpotApi::V2026_03, 1).await;
    mount_deal_create(&app.hubspot, 0).await;

    let stage = post(
        &app,
        "portal-unknown",
        &json!({"pipeline": "Partner Deals", "stage": "Negotiation"}),
    )
    .await;
    let option = post(
        &app,
        "portal-unknown",
        &json!({"stage": "closedwon", "type": "Upsell", "products": "CRM Suite;CMS"}),
    )
    .await;

    assert_eq!(stage.status, 202, "{}", stage.text);
    assert_eq!(stage.json["reason"], "mapping_failed");
    assert_eq!(stage.json["errors"][0]["field"], "dealstage");
    assert_eq!(stage.json["errors"][0]["code"], "unknown_stage");
    let message = stage.json["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"Negotiation\"")
            && message.contains("the stages of \"Partner Deals\"")
            && message.contains("\"Qualified To Buy\" (161845224)"),
        "{message}"
    );
    assert_eq!(option.status, 202, "{}", option.text);
    let errors: Vec<(&str, &str)> = option.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            ("properties.dealtype", "invalid_option"),
            ("properties.products_of_interest", "invalid_option")
        ]
    );
    assert!(
        option.text.contains("\\\"CMS\\\" is neither") || option.text.contains("\"CMS\" is neither"),
        "{}",
        option.text
    );
    let letters = app.dead_letters().await;
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| l.reason.as_str() == "mapping_failed"));
    assert!(letters[0].errors[0].message.contains("Negotiation"));
}

#[tokio::test]
async fn an_unknown_label_makes_one_re_read_and_a_stage_added_since_is_found() {
    let app = app_with(
        PortalConfig {
            reread_interval: Duration::ZERO,
            ..PortalConfig::default()
        },
        false,
    )
    .await;
    let request = pipelines_request(HubSpotApi::V2026_03);
    let mut newer = pipelines();
    newer["results"][1]["stages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "161845299", "label": "Negotiation", "displayOrder": 4, "metadata": {"isClosed": "false", "probability": "0.7"},
                     "createdAt": "2026-11-29T08:00:00Z", "updatedAt": "2026-11-29T08:00:00Z", "archived": false,
                     "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}));
    assert_valid_answer(&request, 200, &newer);
    Mock::given(method("GET"))
        .and(path(request.path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(pipelines()))
        .up_to_n_times(1)
        .expect(1)
        .mount(&app.hubspot)
        .await;
    Mock::given(method("GET"))
        .and(path(request.path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(newer))
        .expect(1)
        .mount(&app.hubspot)
        .await;
    Mock::given(method("GET"))
        .and(path(
            properties_request(HubSpotApi::V2026_03, ObjectType::Deal).path.as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(properties()))
        .expect(2)
        .mount(&app.hubspot)
        .await;
    mount_deal_create(&app.hubspot, 1).await;

    let response = post(
        &app,
        "portal-reread",
        &json!({"pipeline": "Partner Deals", "stage": "negotiation"}),
    )
    .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let sent = bodies(&app.hubspot, "/crm/objects/2026-03/deals").await;
    assert_eq!(sent[0]["properties"]["dealstage"], "161845299");
}

#[tokio::test]
async fn unknown_labels_re_read_at_most_once_per_interval() {
    let app = app().await; // 30 s between re-reads
    mount_schema(&app.hubspot, HubSpotApi::V2026_03, 1).await;
    mount_deal_create(&app.hubspot, 0).await;
    for stage in ["Negotiation", "Bogus", "Nope"] {
        let response = post(&app, "portal-unknown", &json!({"stage": stage})).await;
        assert_eq!(response.status, 202, "{stage}: {}", response.text);
    }
    // `expect(1)` on each schema read is checked when the mock server drops.
}

#[tokio::test]
async fn the_schema_is_read_again_after_its_ttl() {
    let app = app_with(
        PortalConfig {
            ttl: Duration::from_millis(300),
            ..PortalConfig::default()
        },
        false,
    )
    .await;
    mount_schema(&app.hubspot, HubSpotApi::V2026_03, 2).await;
    mount_deal_create(&app.hubspot, 3).await;
    assert_eq!(post(&app, "portal-ttl", &lead()).await.status, 200);
    assert_eq!(post(&app, "portal-ttl", &lead()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(post(&app, "portal-ttl", &lead()).await.status, 200);
}

#[tokio::test]
async fn concurrent_first_deliveries_wait_for_one_read() {
    let app = app().await;
    for request in [
        pipelines_request(HubSpotApi::V2026_03),
        properties_request(HubSpotApi::V2026_03, ObjectType::Deal),
    ] {
        let body = if request.path.contains("pipelines") {
            pipelines()
        } else {
            properties()
        };
        Mock::given(method("GET"))
            .and(path(request.path.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(body)
                    .set_delay(Duration::from_millis(300)),
            )
            .expect(1)
            .mount(&app.hubspot)
            .await;
    }
    mount_deal_create(&app.hubspot, 4).await;
    let lead = lead();
    let (a, b, c, d) = tokio::join!(
        post(&app, "portal-stampede", &lead),
        post(&app, "portal-stampede", &lead),
        post(&app, "portal-stampede", &lead),
        post(&app, "portal-stampede", &lead),
    );
    for response in [a, b, c, d] {
        assert_eq!(response.status, 200, "{}", response.text);
    }
    let sent = bodies(&app.hubspot, "/crm/objects/2026-03/deals").await;
    assert!(
        sent.iter().all(|b| b["properties"]["dealstage"] == "161845224"),
        "{sent:?}"
    );
}

/// The schema cannot be read: deliveries go on with the values as mapped, one warning in all.
mod schema_unavailable {
    use super::*;

    async fn passes_through_with_one_warning(route: &str, api: HubSpotApi, answer: ResponseTemplate) -> String {
        let logs = LogCapture::start();
        let app = app().await;
        for request in [pipelines_request(api), properties_request(api, ObjectType::Deal)] {
            Mock::given(method("GET"))
                .and(path(request.path.as_str()))
                .respond_with(answer.clone())
                .expect(1)
                .mount(&app.hubspot)
                .await;
        }
        let at = if api == HubSpotApi::V3 {
            "/crm/v3/objects/deals"
        } else {
            "/crm/objects/2026-03/deals"
        };
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "40123456789", "properties": {}})))
            .expect(3)
            .mount(&app.hubspot)
            .await;

        for _ in 0..3 {
            let response = post(&app, route, &lead()).await;
            assert_eq!(response.status, 200, "{route}: {}", response.text);
        }

        let sent = bodies(&app.hubspot, at).await;
        assert_eq!(
            sent[2]["properties"]["dealstage"], "Qualified To Buy",
            "{route}: as mapped, for HubSpot to judge"
        );
        assert_eq!(sent[2]["properties"]["dealtype"], "New Business");
        assert_eq!(schema_warnings(&logs, route), 1, "{route}: {}", logs.text());
        logs.text()
    }

    #[tokio::test]
    async fn a_500_degrades_to_pass_through_with_one_warning() {
        let answer = ResponseTemplate::new(500).set_body_json(json!({"status": "error",
            "message": "internal error", "correlationId": "7b3c9d0e-1111-4222-8333-944455556666", "category": "UNKNOWN"}));
        passes_through_with_one_warning("portal-500", HubSpotApi::V2026_03, answer).await;
    }

    #[tokio::test]
    async fn missing_scopes_degrade_to_pass_through_with_one_warning_naming_them() {
        let answer = ResponseTemplate::new(403).set_body_json(json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": "2d1f2c59-0000-4cd8-9d0b-b1f0f5f3a8c1",
            "errors": [{"message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": ["crm.schemas.deals.read"]}}],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES"
        }));
        let logs = passes_through_with_one_warning("portal-403", HubSpotApi::V3, answer).await;
        let warning = logs
            .lines()
            .find(|l| l.contains("\"route\":\"portal-403\"") && l.contains("could not be read"))
            .unwrap();
        assert!(
            warning.contains("crm.schemas.deals.read") && warning.contains("missing_scopes"),
            "{warning}"
        );
        assert!(!logs.contains(crate::helpers::TOKEN));
    }
}

#[tokio::test]
async fn a_dry_run_shows_the_resolved_values() {
    let app = app_with(PortalConfig::default(), true).await;
    mount_schema(&app.hubspot, HubSpotApi::V2026_03, 1).await;
    mount_deal_create(&app.hubspot, 0).await;

    let response = post(&app, "portal-dry", &lead()).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["status"], "dry_run");
    assert_eq!(
        response.json["request"]["body"]["properties"],
        json!({"pipeline": "87250318", "dealstage": "161845224", "dealname": "Acme order",
               "dealtype": "newbusiness", "products_of_interest": "crm;sales_hub", "amount": "12500.5"})
    );
}

#[test]
fn transform_without_a_credential_says_once_that_labels_were_not_resolved() {
    let output = crate::cli::dealhook(
        &[
            "transform",
            "--mapping",
            "examples/showcase/mapping.yaml",
            "examples/showcase/events/website-quote.json",
        ],
        &[("HUBSPOT_BASE_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", crate::cli::stderr(&output));
    let stderr = crate::cli::stderr(&output);
    assert_eq!(stderr.matches("labels were NOT resolved").count(), 1, "{stderr}");
    assert!(stderr.contains("no HubSpot credential"), "{stderr}");
}
