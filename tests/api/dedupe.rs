//! `dedupe:` ("one lead, one open deal") through the handler: real HTTP to a mock HubSpot on 2026-03,
//! idempotency on DynamoDB (moto) where concurrency is tested. Every CRM request is validated against
//! HubSpot's OpenAPI documents (`hubspot_wire::assert_valid`), the search's `sorts` aside (see
//! [`received`]).
//!
//! Cases (each a test): no deal yet → created; an open deal → updated (`then: update`) or left
//! (`then: skip`); a closed deal, one in another pipeline and one older than the window → the search
//! filters exclude each (so HubSpot answers none) → created; the filters a looser rule sends; the
//! search failing → dead letter, no deal; two concurrent deliveries for one contact → one create, the
//! other 409 or an update of the same deal, and the retry an update found by id while search lags
//! (in-memory store); the created deal remembered on DynamoDB for the next delivery.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dealhook::aws::MemoryIdempotency;
use dealhook::hubspot::HubSpotRequest;
use dealhook::idempotency::Idempotency;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Options, TestApp, TestResponse, spawn_app_with};
use crate::hubspot_wire::assert_valid;

const CRM: &str = "/crm/objects/2026-03";
const EMAIL: &str = "ada.lovelace@acme-robotics.example";
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn mapping() -> String {
    let route = |name: &str, dedupe: &str| {
        format!(
            r#"
  {name}:
    source: json
    signature: none
    hubspot: {{ api: "2026-03" }}
    dedupe: {dedupe}
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Lead: {{{{ fields.company }}}}"
        amount: "{{{{ fields.amount }}}}"
      associations:
        contacts:
          email: "{{{{ fields.email }}}}"
"#
        )
    };
    let mut text = "version: 1\nroutes:".to_owned();
    text += &route("lead", "{ by: contact, then: update }");
    text += &route("lead-skip", "{ then: skip }");
    text += &route(
        "lead-loose",
        "{ pipeline_only: false, open_only: false, within_days: 7 }",
    );
    text
}

async fn app(idempotency: bool) -> TestApp {
    spawn_app_with(Options {
        mapping: Some(mapping()),
        idempotency,
        ..Options::default()
    })
    .await
}

fn lead(id: &str) -> Value {
    json!({"id": id, "email": " Ada.Lovelace@Acme-Robotics.example ", "company": "Acme Robotics", "amount": "1200"})
}

async fn post(app: &TestApp, route: &str, body: &Value) -> TestResponse {
    app.post(route, "application/json", body.to_string().as_bytes()).await
}

async fn mount(server: &MockServer, verb: &str, at: &str, answer: ResponseTemplate, times: u64) {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(answer)
        .expect(times)
        .mount(server)
        .await;
}

fn contact_upserted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
        {"id": "501", "objectWriteTraceId": EMAIL, "new": false, "properties": {"email": EMAIL}}]}))
}

fn deals_found(ids: &[&str]) -> ResponseTemplate {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "properties": {"pipeline": "default", "hs_is_closed": "false",
                          "createdate": "2026-03-02T10:00:00.000Z"}})
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"total": ids.len(), "results": results}))
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"id": id, "properties": {}}))
}

fn updated(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"id": id, "properties": {}, "createdAt": "2026-03-02T10:00:00.000Z",
                                                    "updatedAt": "2026-03-02T10:00:00.000Z", "archived": false}),
    )
}

/// Every request the mock received; CRM ones validated against the OpenAPI documents. HubSpot's
/// documents type a search's `sorts` items as strings, which HubSpot does not read as a sort
/// (HubSpot/hubspot-api-nodejs#559, HubSpot/hubspot-api-ruby#257): the search is validated without
/// them, and its `sorts` checked against the search guide's object form here.
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
        let mut checked = request.clone();
        if checked.path.ends_with("/deals/search") {
            assert_eq!(
                checked.body["sorts"],
                json!([{"propertyName": "createdate", "direction": "DESCENDING"}])
            );
            checked.body["sorts"] = json!([]);
        }
        assert_valid(&checked);
    }
    requests
}

fn calls(requests: &[HubSpotRequest]) -> Vec<String> {
    requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn searches(requests: &[HubSpotRequest]) -> Vec<&HubSpotRequest> {
    requests.iter().filter(|r| r.path.ends_with("/deals/search")).collect()
}

/// The search's filters as `(property, operator, value)`.
fn filters(search: &HubSpotRequest) -> Vec<(String, String, String)> {
    let groups = search.body["filterGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "one group: the filters are ANDed");
    groups[0]["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().to_owned();
            (text("propertyName"), text("operator"), text("value"))
        })
        .collect()
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The `createdate GTE` value is `days` before now (within the test's run time).
fn assert_window(search: &HubSpotRequest, days: u64, started_ms: u64) {
    let since = filters(search)
        .into_iter()
        .find(|(p, o, _)| p == "createdate" && o == "GTE")
        .map(|(_, _, v)| v.parse::<u64>().unwrap())
        .expect("a createdate filter");
    let window = days * DAY_MS;
    assert!(
        since + window >= started_ms && since + window <= now_ms(),
        "createdate GTE {since} is not {days} days before the delivery"
    );
}

#[tokio::test]
async fn a_contact_without_a_deal_gets_a_new_one() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals/search"), deals_found(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("701"), 1).await;

    let response = post(&app, "lead", &lead("sub_1")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        (response.json["status"].as_str(), response.json["dealId"].as_u64()),
        (Some("created"), Some(701))
    );
    let requests = received(s).await;
    assert_eq!(
        calls(&requests),
        [
            format!("POST {CRM}/contacts/batch/upsert"),
            format!("POST {CRM}/deals/search"),
            format!("POST {CRM}/deals"),
        ]
    );
    // The new deal is linked to the contact inline (type 3), as without dedupe.
    assert_eq!(requests[2].body["associations"][0]["to"]["id"], "501");
}

#[tokio::test]
async fn an_open_deal_of_the_contact_is_updated_without_its_stage_and_linked() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    mount(
        s,
        "POST",
        &format!("{CRM}/deals/search"),
        deals_found(&["801", "799"]),
        1,
    )
    .await;
    mount(s, "PATCH", &format!("{CRM}/deals/801"), updated("801"), 1).await;
    let link = format!("{CRM}/deals/801/associations/default/contacts/501");
    mount(
        s,
        "PUT",
        &link,
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": []})),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals"), created("999"), 0).await;

    let response = post(&app, "lead", &lead("sub_2")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json, json!({"status": "updated", "dealId": 801}));
    let requests = received(s).await;
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(
        patch.body,
        json!({"properties": {"dealname": "Lead: Acme Robotics", "amount": "1200"}}),
        "no dealstage, no pipeline"
    );
}

/// A search result whose own properties contradict the filters (closed, or in another pipeline) is
/// not updated: HubSpot filters on its side, but dealhook checks what it is told (review of Step 7).
#[tokio::test]
async fn a_search_result_that_contradicts_the_filters_is_not_taken() {
    for (pipeline, closed) in [("default", "true"), ("87250318", "false")] {
        let app = app(false).await;
        let s = &app.hubspot;
        mount(
            s,
            "POST",
            &format!("{CRM}/contacts/batch/upsert"),
            contact_upserted(),
            1,
        )
        .await;
        let found = json!({"total": 1, "results": [{"id": "777", "properties": {"pipeline": pipeline,
                           "hs_is_closed": closed, "createdate": "2026-03-02T10:00:00.000Z"}}]});
        mount(
            s,
            "POST",
            &format!("{CRM}/deals/search"),
            ResponseTemplate::new(200).set_body_json(found),
            1,
        )
        .await;
        mount(s, "PATCH", &format!("{CRM}/deals/777"), updated("777"), 0).await;
        mount(s, "POST", &format!("{CRM}/deals"), created("901"), 1).await;

        let response = post(&app, "lead", &lead("sub_9")).await;
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(
            (response.json["status"].as_str(), response.json["dealId"].as_u64()),
            (Some("created"), Some(901)),
            "{pipeline} {closed}"
        );
        received(s).await;
    }
}

#[tokio::test]
async fn skip_answers_the_existing_deal_and_writes_nothing_to_it() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals/search"), deals_found(&["801"]), 1).await;
    mount(s, "PATCH", &format!("{CRM}/deals/801"), updated("801"), 0).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("999"), 0).await;

    let logs = crate::helpers::LogCapture::start();
    let response = post(&app, "lead-skip", &lead("sub_3")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        (response.json["status"].as_str(), response.json["dealId"].as_u64()),
        (Some("skipped"), Some(801))
    );
    assert_eq!(calls(&received(s).await).len(), 2, "the contact and the search only");
    assert!(logs.text().contains(r#""outcome":"skipped""#), "{}", logs.text());
}

/// A closed deal, one in another pipeline, one created before the window: the search's filters
/// exclude each (HubSpot then answers none), so the delivery creates a deal.
#[tokio::test]
async fn closed_other_pipeline_and_old_deals_are_filtered_out_and_a_deal_is_created() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals/search"), deals_found(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("702"), 1).await;

    let started = now_ms();
    let response = post(&app, "lead", &lead("sub_4")).await;
    assert_eq!(
        (response.status, response.json["status"].as_str()),
        (200, Some("created")),
        "{}",
        response.text
    );
    let requests = received(s).await;
    let search = searches(&requests)[0];
    let filters = filters(search);
    let has = |p: &str, o: &str, v: &str| {
        filters
            .iter()
            .any(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str()) == (p, o, v))
    };
    assert!(
        has("associations.contact", "EQ", "501"),
        "the contact's deals: {filters:?}"
    );
    assert!(
        has("hs_is_closed", "EQ", "false"),
        "a closed deal is excluded: {filters:?}"
    );
    assert!(
        has("pipeline", "EQ", "default"),
        "a deal in another pipeline is excluded: {filters:?}"
    );
    assert_window(search, 30, started); // a deal older than 30 days is excluded
}

#[tokio::test]
async fn a_looser_rule_drops_the_pipeline_and_open_filters_and_narrows_the_window() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    mount(s, "POST", &format!("{CRM}/deals/search"), deals_found(&[]), 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("703"), 1).await;

    let started = now_ms();
    let response = post(&app, "lead-loose", &lead("sub_5")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let requests = received(s).await;
    let search = searches(&requests)[0];
    let names: Vec<String> = filters(search).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ["associations.contact", "createdate"]);
    assert_window(search, 7, started);
}

#[tokio::test]
async fn a_search_that_fails_dead_letters_the_delivery_and_creates_nothing() {
    let app = app(false).await;
    let s = &app.hubspot;
    mount(
        s,
        "POST",
        &format!("{CRM}/contacts/batch/upsert"),
        contact_upserted(),
        1,
    )
    .await;
    let refused = ResponseTemplate::new(403).set_body_json(json!({"status": "error", "category": "MISSING_SCOPES",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "errors": [{"message": "missing", "context": {"requiredGranularScopes": ["crm.objects.deals.read"]}}]}));
    mount(s, "POST", &format!("{CRM}/deals/search"), refused, 1).await;
    mount(s, "POST", &format!("{CRM}/deals"), created("999"), 0).await;

    let response = post(&app, "lead", &lead("sub_6")).await;
    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json["reason"], "hubspot_unauthorized", "{}", response.text);
    let texts = app.dead_letter_texts().await;
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("crm.objects.deals.read"),
        "the scope to grant: {}",
        texts[0]
    );
    let letter: Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(
        letter["hubspot"]["done"],
        json!({"contactIds": [501], "companyIds": []}),
        "{letter:#}"
    );
}

/// HubSpot whose search lags (never finds the new deal) and whose deal create is slow, so that a
/// second delivery arrives while the first holds the contact's lock. The deal is `704`.
async fn mount_lagging_hubspot(s: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/contacts/batch/upsert")))
        .respond_with(contact_upserted())
        .mount(s)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/deals/search")))
        .respond_with(deals_found(&[]))
        .mount(s)
        .await;
    let slow = created("704").set_delay(Duration::from_millis(400));
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/deals")))
        .respond_with(slow)
        .mount(s)
        .await;
    let read =
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "startedAt": "2026-03-02T10:00:00Z",
        "completedAt": "2026-03-02T10:00:00Z",
        "results": [{"id": "704", "properties": {"pipeline": "default", "hs_is_closed": "false"}}]}));
    Mock::given(method("POST"))
        .and(path(format!("{CRM}/deals/batch/read")))
        .respond_with(read)
        .mount(s)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{CRM}/deals/704")))
        .respond_with(updated("704"))
        .mount(s)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{CRM}/deals/704/associations/default/contacts/501")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": []})))
        .mount(s)
        .await;
}

/// How many deals were created, every CRM request validated on the way.
async fn creates(s: &MockServer) -> usize {
    let requests = received(s).await;
    calls(&requests)
        .iter()
        .filter(|c| *c == &format!("POST {CRM}/deals"))
        .count()
}

/// Two deliveries for one contact at once (two forms, so two idempotency keys): one creates, the
/// other waits on the contact's lock (409) or, if it came second, updates the same deal. The retry of
/// a 409 finds the new deal by id although HubSpot's search still finds nothing. The in-memory store:
/// its claims are atomic, as DynamoDB's conditional puts are (moto's are not always under load).
#[tokio::test]
async fn two_concurrent_deliveries_for_one_contact_make_one_deal() {
    let mut app = app(false).await;
    app.app = app.app.with_idempotency(Idempotency {
        store: Arc::new(MemoryIdempotency::new()),
        ttl: Duration::from_secs(3600),
    });
    let s = &app.hubspot;
    mount_lagging_hubspot(s).await;

    let (a, b) = (lead("form_a"), lead("form_b"));
    let (first, second) = tokio::join!(post(&app, "lead", &a), post(&app, "lead", &b));
    let mut answers = [&first, &second].map(|r| (r.status, r.json["status"].as_str().map(str::to_owned)));
    answers.sort();
    let created = (200, Some("created".to_owned()));
    assert!(
        answers == [created.clone(), (200, Some("updated".to_owned()))] || answers[0] == created && answers[1].0 == 409,
        "{answers:?}: {} / {}",
        first.text,
        second.text
    );
    for response in [&first, &second].into_iter().filter(|r| r.status == 409) {
        assert!(response.headers.contains_key("retry-after"), "{:?}", response.headers);
    }
    for response in [&first, &second].into_iter().filter(|r| r.status == 200) {
        assert_eq!(response.json["dealId"], 704, "{}", response.text);
    }

    // The sender retries the form that waited (or sends a third): the deal is found by id.
    let again = post(&app, "lead", &lead("form_c")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        (again.json["status"].as_str(), again.json["dealId"].as_u64()),
        (Some("updated"), Some(704))
    );
    assert_eq!(creates(s).await, 1, "never a second create");
}

/// On DynamoDB (moto): the deal a delivery created is remembered in the table, so the next delivery
/// for the contact, while HubSpot's search still lags, reads it by id and updates it; the lock is
/// released after each delivery.
#[tokio::test]
async fn on_dynamodb_the_created_deal_is_remembered_for_the_next_delivery() {
    let app = app(true).await;
    let s = &app.hubspot;
    mount_lagging_hubspot(s).await;

    let first = post(&app, "lead", &lead("form_a")).await;
    assert_eq!(
        (first.status, first.json["status"].as_str()),
        (200, Some("created")),
        "{}",
        first.text
    );
    let second = post(&app, "lead", &lead("form_b")).await;
    assert_eq!(second.status, 200, "the lock was released: {}", second.text);
    assert_eq!(
        (second.json["status"].as_str(), second.json["dealId"].as_u64()),
        (Some("updated"), Some(704))
    );
    assert_eq!(creates(s).await, 1);
}

#[tokio::test]
async fn a_dry_run_lists_the_search_and_the_conditional_update_and_create() {
    let app = spawn_app_with(Options {
        mapping: Some(mapping()),
        dry_run: true,
        ..Options::default()
    })
    .await;
    let response = post(&app, "lead", &lead("sub_7")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let text = response.text.clone();
    let requests = response.json["requests"].as_array().unwrap_or_else(|| panic!("{text}"));
    let shown: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            format!("POST {CRM}/contacts/batch/upsert"),
            format!("POST {CRM}/deals/batch/read"),
            format!("POST {CRM}/deals/search"),
            format!("PATCH {CRM}/deals/{{dealId}}"),
            format!("PUT {CRM}/deals/{{dealId}}/associations/default/contacts/{{contactId}}"),
            format!("POST {CRM}/deals"),
        ]
    );
    assert_eq!(
        requests[3]["when"].as_str().map(|w| w.contains("if a deal is found")),
        Some(true),
        "{text}"
    );
    assert_eq!(
        requests[5]["when"]
            .as_str()
            .map(|w| w.starts_with("if no deal is found")),
        Some(true),
        "{text}"
    );
    assert_eq!(app.hubspot.received_requests().await.unwrap().len(), 0, "nothing sent");
}
