//! The plan of calls through the handler (real HTTP to a mock HubSpot, dead letters on moto): a
//! form lead with only an e-mail and a company becomes contact upsert → company search (→ create)
//! → deal (→ links), on v1 and on 2026-03, with every failure surfaced. Every CRM request body
//! received is validated against HubSpot's OpenAPI documents (`hubspot_wire::assert_valid`).
//!
//! Faults covered (each a test below): contact new / existing (v1 and 2026-03); company found /
//! created / not created (`create_missing: false`) / free-mail skipped; `upsert_by` twice → one
//! deal; the deal failing after the contact was upserted (dead letter with what was done); a 207
//! with the one contact failing (report mode → 200 with `associationCreateFailures`; dead-letter
//! mode → 202, no deal); a link failing after an upserted deal (dead-letter mode → 202 with the deal
//! id); a dry run listing every call.

use dealhook::hubspot::HubSpotRequest;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{LogCapture, Options, TestApp, spawn_app_with};
use crate::hubspot_wire::assert_valid;

pub(crate) const CRM: &str = "/crm/objects/2026-03";
const EMAIL: &str = "ada.lovelace@acme-robotics.example";

/// A mapping with one route per variant, all reading the website-lead body.
pub(crate) fn mapping() -> String {
    let route = |name: &str, extra: &str, create_missing: bool| {
        format!(
            r#"
  {name}:
    source: json
    signature: none
{extra}
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Lead: {{{{ fields.company }}}}"
        webhook_event_id: "{{{{ fields.id }}}}"
      associations:
        contacts:
          email: "{{{{ fields.email }}}}"
          properties:
            firstname: "{{{{ fields.first_name }}}}"
            phone: "{{{{ fields.phone }}}}"
        companies:
          domain: "{{{{ fields.website or fields.email }}}}"
          create_missing: {create_missing}
          properties:
            name: "{{{{ fields.company }}}}"
"#
        )
    };
    let mut text = "version: 1\nroutes:".to_owned();
    text += &route("lead", "    hubspot: { api: \"2026-03\" }", true);
    text += &route("lead-v1", "    hubspot: { api: v1 }", true);
    text += &route("lead-find-only", "    hubspot: { api: \"2026-03\" }", false);
    text += &route(
        "lead-find-strict",
        "    hubspot: { api: \"2026-03\" }\n    on_association_failure: dead_letter",
        false,
    );
    text += &route(
        "lead-strict",
        "    hubspot: { api: \"2026-03\" }\n    on_association_failure: dead_letter",
        true,
    );
    text += &route(
        "lead-upsert",
        "    hubspot: { api: \"2026-03\", upsert_by: webhook_event_id }\n    on_association_failure: dead_letter",
        true,
    );
    text
}

async fn app() -> TestApp {
    spawn_app_with(Options {
        mapping: Some(mapping()),
        ..Options::default()
    })
    .await
}

pub(crate) fn lead() -> Value {
    json!({"id": "sub_001", "email": " Ada.Lovelace@Acme-Robotics.example ", "first_name": "Ada", "phone": "",
           "company": "Acme Robotics", "website": "https://www.acme-robotics.example/"})
}

async fn post(app: &TestApp, route: &str, body: &Value) -> crate::helpers::TestResponse {
    app.post(route, "application/json", body.to_string().as_bytes()).await
}

pub(crate) fn contacts_upserted(id: &str, new: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
        {"id": id, "objectWriteTraceId": EMAIL, "new": new, "properties": {"email": EMAIL}}]}))
}

pub(crate) fn search_result(ids: &[&str]) -> ResponseTemplate {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "properties": {"domain": "acme-robotics.example"}}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"total": ids.len(), "results": results}))
}

pub(crate) fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"id": id, "properties": {}}))
}

async fn mount(server: &MockServer, verb: &str, at: &str, answer: ResponseTemplate, times: u64) {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(answer)
        .expect(times)
        .mount(server)
        .await;
}

/// The contact upsert answering `contact` (its id, and whether it is new) and the company search
/// finding `company`, each expected `times` times.
async fn mount_contact_and_company(s: &MockServer, contact: (&str, bool), company: &str, times: u64) {
    let upserted = contacts_upserted(contact.0, contact.1);
    mount(s, "POST", &format!("{CRM}/contacts/batch/upsert"), upserted, times).await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies/search"),
        search_result(&[company]),
        times,
    )
    .await;
}

/// Every request the mock received, as (method, path, JSON body); CRM ones validated against the
/// OpenAPI documents.
async fn received(server: &MockServer) -> Vec<HubSpotRequest> {
    let requests: Vec<HubSpotRequest> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| HubSpotRequest {
            method: r.method.to_string(),
            path: r.url.path().to_owned(),
            body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        })
        .collect();
    for request in requests.iter().filter(|r| r.path.starts_with("/crm/")) {
        assert_valid(request);
    }
    requests
}

fn calls(requests: &[HubSpotRequest]) -> Vec<String> {
    requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn deal_links(deal: &Value) -> Vec<(String, u64)> {
    deal["associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["to"]["id"].as_str().unwrap().to_owned(),
                a["types"][0]["associationTypeId"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_new_contact_and_a_new_company_end_as_one_linked_deal_on_2026_03() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("501", true),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/companies"), created("601"), 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("701"), 1).await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["dealId"], 701);
    assert!(
        response.json.get("associationCreateFailures").is_none(),
        "{}",
        response.text
    );

    let requests = received(s).await;
    assert_eq!(
        calls(&requests),
        [
            format!("POST {CRM}/contacts/batch/upsert"),
            format!("POST {CRM}/companies/search"),
            format!("POST {CRM}/companies"),
            format!("POST {CRM}/deals"),
        ]
    );
    let input = &requests[0].body["inputs"][0];
    assert_eq!(input["idProperty"], "email");
    assert_eq!(input["id"], EMAIL, "trimmed and lower-cased");
    assert_eq!(
        input["properties"],
        json!({"email": EMAIL, "firstname": "Ada"}),
        "empty phone left out"
    );
    assert_eq!(requests[2].body["properties"]["domain"], "acme-robotics.example");
    assert_eq!(requests[2].body["properties"]["name"], "Acme Robotics");
    assert_eq!(
        deal_links(&requests[3].body),
        [("501".to_owned(), 3), ("601".to_owned(), 5)],
        "deal→contact type 3, deal→company type 5"
    );
}

#[tokio::test]
async fn an_existing_contact_and_a_found_company_are_linked_and_nothing_is_created() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("502", false),
        1,
    )
    .await;
    // Two companies share the domain: the lowest id (the oldest) is chosen.
    mount(
        s,
        "POST",
        &format!("{CRM}/companies/search"),
        search_result(&["650", "602"]),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies"), created("999"), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("702"), 1).await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let requests = received(s).await;
    let deal = requests.iter().find(|r| r.path.ends_with("/deals")).unwrap();
    assert_eq!(deal_links(&deal.body), [("502".to_owned(), 3), ("602".to_owned(), 5)]);
}

#[tokio::test]
async fn on_v1_the_contact_goes_through_create_or_update_and_the_deal_lists_its_vid() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        // The e-mail is one percent-encoded path segment.
        "/contacts/v1/contact/createOrUpdate/email/ada.lovelace%40acme-robotics.example/",
        ResponseTemplate::new(200).set_body_json(json!({"vid": 3234574, "isNew": false})),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        "/crm/v3/objects/companies/search",
        search_result(&["603"]),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        "/deals/v1/deal/",
        ResponseTemplate::new(200).set_body_json(json!({"dealId": 703, "portalId": 62515})),
        1,
    )
    .await;

    let response = post(&app, "lead-v1", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["dealId"], 703);
    assert!(
        response.json.get("associationCreateFailures").is_none(),
        "{}",
        response.text
    );
    let requests = received(s).await;
    let contact = &requests[0].body["properties"];
    assert_eq!(contact[0], json!({"property": "email", "value": EMAIL}));
    let deal = requests.iter().find(|r| r.path == "/deals/v1/deal/").unwrap();
    assert_eq!(deal.body["associations"]["associatedVids"], json!([3234574]));
    assert_eq!(deal.body["associations"]["associatedCompanyIds"], json!([603]));
}

#[tokio::test]
async fn a_missing_company_is_not_created_without_create_missing_and_the_miss_is_reported() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("501", true),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/companies"), created("999"), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("704"), 1).await;

    let response = post(&app, "lead-find-only", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let failures = response.json["associationCreateFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{}", response.text);
    assert_eq!(failures[0]["call"], "company_search");
    assert_eq!(failures[0]["reason"], "not_found");
    assert_eq!(failures[0]["domain"], "acme-robotics.example");
    let requests = received(s).await;
    let deal = requests.iter().find(|r| r.path.ends_with("/deals")).unwrap();
    assert_eq!(
        deal_links(&deal.body),
        [("501".to_owned(), 3)],
        "the contact is still linked"
    );
}

#[tokio::test]
async fn a_missing_company_under_on_association_failure_dead_letter_is_association_not_found() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("501", true),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/companies"), created("999"), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("704"), 0).await;

    let response = post(&app, "lead-find-strict", &lead()).await;
    assert_eq!(response.status, 202, "{}", response.text);
    // HubSpot refused nothing: the reason says a record was missing, not that HubSpot rejected a request.
    assert_eq!(response.json["reason"], "association_not_found", "{}", response.text);
    let letters = app.dead_letters().await;
    assert_eq!(letters[0].reason.as_str(), "association_not_found");
    let hubspot = letters[0].hubspot.as_ref().unwrap();
    assert_eq!(hubspot.status, None);
    assert_eq!(hubspot.association_failures[0]["domain"], "acme-robotics.example");
    assert_eq!(hubspot.done.as_ref().unwrap().contact_ids, [501]);
    received(s).await;
}

#[tokio::test]
async fn a_free_mail_domain_is_never_looked_up_and_the_contact_is_still_linked() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        ResponseTemplate::new(200)
            .set_body_json(json!({"results": [{"id": "505", "objectWriteTraceId": "ada@gmail.com", "new": true}]})),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("705"), 1).await;

    let body = json!({"id": "sub_002", "email": "Ada@Gmail.com", "company": "Ada's garage"});
    let response = post(&app, "lead", &body).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let requests = received(s).await;
    assert_eq!(requests.len(), 2, "{:?}", calls(&requests));
    assert_eq!(deal_links(&requests[1].body), [("505".to_owned(), 3)]);
}

#[tokio::test]
async fn upsert_by_twice_makes_one_deal_and_links_it_each_time() {
    let app = app().await;
    let s = &app.hubspot;
    mount_contact_and_company(s, ("501", true), "601", 2).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("999"), 0).await;
    // HubSpot says `new: true` the first time and `new: false` after: the answers say created, then updated.
    let upserted = |new: bool| {
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
            {"id": "706", "objectWriteTraceId": "sub_001", "new": new,
             "properties": {"webhook_event_id": "sub_001"}}]}))
    };
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/deals/batch/upsert")))
        .respond_with(upserted(true))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(s)
        .await;
    mount(s, "POST", &format!("{CRM}/deals/batch/upsert"), upserted(false), 1).await;
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/crm/objects/2026-03/deals/706/associations/default/(contacts/501|companies/601)$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": []})))
        .expect(4)
        .mount(s)
        .await;

    for status in ["created", "updated"] {
        let response = post(&app, "lead-upsert", &lead()).await;
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(response.json["dealId"], 706);
        assert_eq!(response.json["status"], status, "{}", response.text);
    }
    let requests = received(s).await;
    let upserts: Vec<&HubSpotRequest> = requests
        .iter()
        .filter(|r| r.path.ends_with("/deals/batch/upsert"))
        .collect();
    assert_eq!(upserts.len(), 2);
    for upsert in upserts {
        assert_eq!(upsert.body["inputs"][0]["idProperty"], "webhook_event_id");
        assert_eq!(upsert.body["inputs"][0]["id"], "sub_001");
    }
}

#[tokio::test]
async fn a_deal_failing_after_the_contact_was_upserted_is_dead_lettered_with_what_was_done() {
    let app = app().await;
    let s = &app.hubspot;
    mount_contact_and_company(s, ("501", true), "601", 1).await;
    // A 500 after a create is not retried (the deal may exist).
    mount(
        s,
        "POST",
        &format!("{CRM}/deals"),
        ResponseTemplate::new(500).set_body_string("oops"),
        1,
    )
    .await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(
        response.json["reason"], "outcome_unknown",
        "a 500 after the create: the deal may exist"
    );
    let letters = app.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let hubspot = letters[0].hubspot.as_ref().unwrap();
    let done = hubspot.done.as_ref().expect("what was done is kept");
    assert_eq!(
        (done.contact_ids.as_slice(), done.company_ids.as_slice(), done.deal_id),
        (&[501][..], &[601][..], None)
    );
    let planned: Vec<&str> = letters[0]
        .hubspot_requests
        .iter()
        .map(|c| c.request.path.as_str())
        .collect();
    assert_eq!(
        planned,
        [
            "/crm/objects/2026-03/contacts/batch/upsert",
            "/crm/objects/2026-03/companies/search",
            "/crm/objects/2026-03/companies",
            "/crm/objects/2026-03/deals"
        ]
    );
    assert_eq!(
        letters[0].hubspot_request.as_ref().unwrap().path,
        "/crm/objects/2026-03/deals"
    );
    // `hubspot.attempts` counts every request the plan sent, not only the deal's.
    assert_eq!(
        letters[0].hubspot.as_ref().unwrap().attempts as usize,
        received(s).await.len(),
        "every request counts"
    );
}

/// A 207 naming the one contact as failed (catalog item 19).
fn contact_rejected() -> ResponseTemplate {
    ResponseTemplate::new(207).set_body_json(json!({"status": "COMPLETE", "results": [], "numErrors": 1,
        "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                    "context": {"objectWriteTraceId": [EMAIL]}}]}))
}

#[tokio::test]
async fn a_207_with_the_contact_failing_is_reported_and_the_deal_still_made_by_default() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_rejected(),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies/search"),
        search_result(&["601"]),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals"), created("707"), 1).await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let failures = response.json["associationCreateFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["call"], "contacts_upsert");
    assert_eq!(failures[0]["input"], 0);
    assert_eq!(failures[0]["reason"], "hubspot_rejected");
    assert!(
        !response.text.contains(EMAIL),
        "the e-mail is not echoed: {}",
        response.text
    );
    let requests = received(s).await;
    let deal = requests.iter().find(|r| r.path.ends_with("/deals")).unwrap();
    assert_eq!(deal_links(&deal.body), [("601".to_owned(), 5)]);
}

#[tokio::test]
async fn a_207_with_the_contact_failing_dead_letters_before_the_deal_with_on_association_failure_dead_letter() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_rejected(),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("999"), 0).await;

    let response = post(&app, "lead-strict", &lead()).await;
    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "hubspot_rejected");
    let letters = app.dead_letters().await;
    let hubspot = letters[0].hubspot.as_ref().unwrap();
    assert_eq!(hubspot.association_failures.len(), 1);
    assert_eq!(hubspot.done.as_ref().unwrap().deal_id, None);
    received(s).await;
}

#[tokio::test]
async fn a_link_failing_after_an_upserted_deal_dead_letters_with_the_deal_id() {
    let app = app().await;
    let s = &app.hubspot;
    mount_contact_and_company(s, ("501", true), "601", 1).await;
    mount(
        s,
        "POST",
        &format!("{CRM}/deals/batch/upsert"),
        ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"id": "708", "objectWriteTraceId": "sub_001", "new": true}]})),
        1,
    )
    .await;
    mount(
        s,
        "PUT",
        &format!("{CRM}/deals/708/associations/default/contacts/501"),
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": []})),
        1,
    )
    .await;
    mount(
        s,
        "PUT",
        &format!("{CRM}/deals/708/associations/default/companies/601"),
        ResponseTemplate::new(400).set_body_json(json!({"status": "error", "category": "VALIDATION_ERROR",
              "message": "invalid association"})),
        1,
    )
    .await;

    let response = post(&app, "lead-upsert", &lead()).await;
    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "hubspot_rejected");
    assert_eq!(
        response.json["dealId"], 708,
        "the deal exists: the sender is told its id"
    );
    let letters = app.dead_letters().await;
    let hubspot = letters[0].hubspot.as_ref().unwrap();
    assert_eq!(hubspot.done.as_ref().unwrap().deal_id, Some(708));
    assert_eq!(hubspot.association_failures[0]["call"], "association");
    assert_eq!(hubspot.association_failures[0]["object"], "company");
    received(s).await;
}

#[tokio::test]
async fn a_dry_run_of_the_website_lead_example_lists_every_call_in_order() {
    let app = spawn_app_with(Options {
        dry_run: true,
        ..Options::default()
    })
    .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&app.hubspot)
        .await;
    let response = app.invoke(&crate::helpers::sample_event("website-lead.json")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let requests = response.json["requests"].as_array().unwrap();
    let shown: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            format!("POST {CRM}/contacts/batch/upsert"),
            format!("POST {CRM}/companies/search"),
            format!("POST {CRM}/companies"),
            format!("POST {CRM}/deals"),
        ]
    );
    assert!(
        requests[2]["when"].as_str().unwrap().contains("no company"),
        "{}",
        response.text
    );
    assert_eq!(
        response.json["request"]["path"],
        format!("{CRM}/deals"),
        "kept for compatibility"
    );
    for request in requests {
        assert_valid(&serde_json::from_value(request.clone()).unwrap());
    }
}

/// Retries per call: the contact upsert is idempotent (retried after a 500), the company create is
/// not (a 500 may come after the write: not retried, reported), and the deal goes on.
#[tokio::test]
async fn an_idempotent_upsert_is_retried_after_a_500_and_a_create_is_not() {
    let app = app().await;
    let s = &app.hubspot;
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/contacts/batch/upsert")))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>"))
        .up_to_n_times(1)
        .expect(1)
        .mount(s)
        .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("501", true),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/companies/search"), search_result(&[]), 1).await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies"),
        ResponseTemplate::new(500).set_body_string("oops"),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals"), created("709"), 1).await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let failures = response.json["associationCreateFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{}", response.text);
    assert_eq!(
        (failures[0]["call"].as_str(), failures[0]["status"].as_u64()),
        (Some("company_create"), Some(500))
    );
    let requests = received(s).await;
    let deal = requests.iter().find(|r| r.path.ends_with("/deals")).unwrap();
    assert_eq!(deal_links(&deal.body), [("501".to_owned(), 3)]);
}

/// A portal that enforces unique company domains answers 409 when another delivery created the
/// company first: the plan searches again and links that one.
#[tokio::test]
async fn a_409_to_the_company_create_is_answered_by_searching_again() {
    let app = app().await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contacts_upserted("501", true),
        1,
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/companies/search")))
        .respond_with(search_result(&[]))
        .up_to_n_times(1)
        .expect(1)
        .mount(s)
        .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies/search"),
        search_result(&["610"]),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies"),
        ResponseTemplate::new(409).set_body_json(json!({
        "status": "error", "category": "CONFLICT", "message": "A company with this domain already exists"})),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals"), created("710"), 1).await;

    let response = post(&app, "lead", &lead()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response.json.get("associationCreateFailures").is_none(),
        "{}",
        response.text
    );
    let requests = received(s).await;
    let deal = requests.iter().find(|r| r.path.ends_with("/deals")).unwrap();
    assert_eq!(deal_links(&deal.body), [("501".to_owned(), 3), ("610".to_owned(), 5)]);
}

/// Personal data stays out of the log: a failing contact on 2026-03 and a v1 contact (whose path
/// carries the e-mail) log the call and the position, never the address.
#[tokio::test]
async fn no_log_line_names_the_contact_s_e_mail() {
    let logs = LogCapture::start();
    let app = app().await;
    let s = &app.hubspot;
    let email = "grace.hopper.logcheck@acme-robotics.example";
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/contacts/batch/upsert")))
        .respond_with(
            ResponseTemplate::new(207).set_body_json(json!({"results": [], "errors": [
            {"status": "error", "category": "VALIDATION_ERROR", "message": format!("{email} is not valid"),
             "context": {"objectWriteTraceId": [email]}}]})),
        )
        .mount(s)
        .await;
    Mock::given(path_regex("^/contacts/v1/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"vid": 1, "isNew": true})))
        .mount(s)
        .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/companies/search"),
        search_result(&["601"]),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        "/crm/v3/objects/companies/search",
        search_result(&["601"]),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals"), created("711"), 1).await;
    mount(
        s,
        "POST",
        "/deals/v1/deal/",
        ResponseTemplate::new(200).set_body_json(json!({"dealId": 712})),
        1,
    )
    .await;
    let body = json!({"id": "sub_009", "email": email, "company": "Acme", "website": "acme-robotics.example"});
    for route in ["lead", "lead-v1"] {
        let response = post(&app, route, &body).await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    let text = logs.text();
    assert!(text.contains("an association failed"), "the failure is logged");
    assert!(
        !text.contains("grace.hopper.logcheck"),
        "an e-mail reached the log:\n{text}"
    );
}

/// With idempotency on, a repeat of a delivery replays the stored answer and makes no call at all
/// (not even the contact upsert).
#[tokio::test]
async fn a_repeat_with_idempotency_makes_no_call_of_the_plan() {
    let app = spawn_app_with(Options {
        mapping: Some(mapping()),
        idempotency: true,
        ..Options::default()
    })
    .await;
    let s = &app.hubspot;
    mount_contact_and_company(s, ("501", true), "601", 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("713"), 1).await;
    let first = post(&app, "lead", &lead()).await;
    let again = post(&app, "lead", &lead()).await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.text);
    assert_eq!(again.json["dealId"], 713);
    assert_eq!(again.headers["x-dealhook-idempotent-replay"], "true");
    assert_eq!(received(s).await.len(), 3);
}

/// The issue's "done when": a signed Typeform submission carrying only an e-mail and a company name
/// ends as a deal linked to the upserted contact and the company of the e-mail's domain, on v1 and
/// on 2026-03 (fixture answers: `laura@example.com`, short text "Laura").
#[tokio::test]
async fn a_typeform_submission_with_only_an_e_mail_and_a_company_ends_as_a_linked_deal_on_v1_and_2026_03() {
    use crate::sample_events::{PROVIDERS, event, now, sample_secret};
    let typeform = PROVIDERS
        .iter()
        .find(|p| p.source == dealhook::inbound::Source::Typeform)
        .unwrap();
    for api in ["v1", "\"2026-03\""] {
        let mapping = format!(
            r#"version: 1
hubspot: {{ api: {api} }}
routes:
  typeform:
    source: typeform
    signing_secret: typeform
    deal:
      dealstage: appointmentscheduled
      properties:
        dealname: "Lead: {{{{ fields.readable_ref_short_text }}}}"
      associations:
        contacts:
          email: "{{{{ fields.readable_ref_email }}}}"
        companies:
          domain: "{{{{ fields.readable_ref_email }}}}"
          create_missing: true
          properties: {{ name: "{{{{ fields.readable_ref_short_text }}}}" }}
"#
        );
        let app = spawn_app_with(Options {
            secret: sample_secret().to_string(),
            mapping: Some(mapping),
            ..Options::default()
        })
        .await;
        let s = &app.hubspot;
        let v1 = api == "v1";
        let (companies, deals) = if v1 {
            ("/crm/v3/objects/companies", "/deals/v1/deal/")
        } else {
            ("/crm/objects/2026-03/companies", "/crm/objects/2026-03/deals")
        };
        if v1 {
            let contact = ResponseTemplate::new(200).set_body_json(json!({"vid": 801, "isNew": true}));
            mount(
                s,
                "POST",
                "/contacts/v1/contact/createOrUpdate/email/laura%40example.com/",
                contact,
                1,
            )
            .await;
            let deal = ResponseTemplate::new(200).set_body_json(json!({"dealId": 901, "portalId": 62515}));
            mount(s, "POST", deals, deal, 1).await;
        } else {
            let contact = ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
                {"id": "801", "new": true, "properties": {"email": "laura@example.com"}}]}));
            mount(s, "POST", &format!("{CRM}/contacts/batch/upsert"), contact, 1).await;
            mount(s, "POST", deals, created("901"), 1).await;
        }
        mount(s, "POST", &format!("{companies}/search"), search_result(&[]), 1).await;
        mount(s, "POST", companies, created("851"), 1).await;

        let response = app
            .invoke(&event(typeform, now(), "", "req-typeform").to_string())
            .await;

        assert_eq!(response.status, 200, "{api}: {}", response.text);
        assert_eq!(response.json["dealId"], 901, "{api}");
        assert!(
            response.json.get("associationCreateFailures").is_none(),
            "{api}: {}",
            response.text
        );
        let requests = received(s).await;
        let deal = requests.iter().find(|r| r.path == deals).unwrap();
        if v1 {
            assert_eq!(deal.body["associations"]["associatedVids"], json!([801]), "{api}");
            assert_eq!(deal.body["associations"]["associatedCompanyIds"], json!([851]), "{api}");
        } else {
            assert_eq!(
                deal_links(&deal.body),
                [("801".to_owned(), 3), ("851".to_owned(), 5)],
                "{api}"
            );
        }
        let company = requests.iter().find(|r| r.path == companies).unwrap();
        assert_eq!(company.body["properties"]["domain"], "example.com", "{api}");
        assert_eq!(company.body["properties"]["name"], "Laura", "{api}");
    }
}
