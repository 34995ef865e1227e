//! `for_each` through the handler: one deal per item over real HTTP to a mock HubSpot, dead letters
//! on moto's SQS, idempotency in moto's DynamoDB.
//!
//! Cases: three items (three deals, each body checked, `item` and `item_index` rendered); one item
//! refused by HubSpot (two deals, `202`, one dead letter naming the record); no items (`200
//! ignored`, nothing sent or stored); over the limit (`400`, nothing sent); the whole delivery
//! repeated (no second deal), and repeated after a record failed (only that record is retried); a
//! dry run (each record's calls); the plan per record on the 2026-03 API (a contact per item).

use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Options, TestApp, TestResponse, spawn_app_with};

const DEALS_V1: &str = "/deals/v1/deal/";

const MAPPING: &str = r#"
version: 1
routes:
  orders:
    source: json
    signature: none
    for_each: fields.orders
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Order {{ item.id }} (#{{ item_index }}) for {{ fields.customer }}"
        amount: { from: "{{ item.total }}", type: number }
  leads:
    source: json
    signature: none
    hubspot: { api: "2026-03" }
    for_each: fields.people
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Lead: {{ item.name }}"
      associations:
        contacts:
          email: "{{ item.email }}"
"#;

async fn app(idempotency: bool, dry_run: bool) -> TestApp {
    spawn_app_with(Options {
        mapping: Some(MAPPING.to_owned()),
        idempotency,
        dry_run,
        ..Options::default()
    })
    .await
}

fn orders(items: &[(&str, Value)]) -> Vec<u8> {
    let orders: Vec<Value> = items
        .iter()
        .map(|(id, total)| json!({"id": id, "total": total}))
        .collect();
    json!({"customer": "Acme", "orders": orders}).to_string().into_bytes()
}

fn three() -> Vec<u8> {
    orders(&[("A-1", json!("1,200")), ("A-2", json!(80)), ("A-3", json!(5))])
}

async fn post(t: &TestApp, route: &str, body: &[u8]) -> TestResponse {
    t.post(route, "application/json", body).await
}

/// HubSpot creates the deal of order `id` (its dealname names it) as `deal_id`, `times` times.
async fn creates(t: &TestApp, dealname: &str, deal_id: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .and(body_string_contains(dealname))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"dealId": deal_id, "portalId": 62515})))
        .expect(times)
        .mount(&t.hubspot)
        .await;
}

/// The bodies of the deal creations HubSpot received, in order.
async fn deal_bodies(t: &TestApp) -> Vec<Value> {
    t.hubspot
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == DEALS_V1)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn property(body: &Value, name: &str) -> Value {
    body["properties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| p["value"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn three_items_make_three_deals_each_from_its_own_item() {
    let t = app(false, false).await;
    creates(&t, "Order A-1 (#0)", 101, 1).await;
    creates(&t, "Order A-2 (#1)", 102, 1).await;
    creates(&t, "Order A-3 (#2)", 103, 1).await;

    let response = post(&t, "orders", &three()).await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.json,
        json!({"status": "created",
               "message": "all 3 records of this delivery (one per `for_each` item) were created",
               "records": [{"index": 0, "status": "created", "dealId": 101},
                           {"index": 1, "status": "created", "dealId": 102},
                           {"index": 2, "status": "created", "dealId": 103}],
               "counts": {"created": 3}})
    );
    let bodies = deal_bodies(&t).await;
    let sent: Vec<(Value, Value)> = bodies
        .iter()
        .map(|b| (property(b, "dealname"), property(b, "amount")))
        .collect();
    assert_eq!(
        sent,
        [
            (json!("Order A-1 (#0) for Acme"), json!("1200")),
            (json!("Order A-2 (#1) for Acme"), json!("80")),
            (json!("Order A-3 (#2) for Acme"), json!("5")),
        ],
        "in list order, each with its item's values"
    );
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn one_refused_item_is_dead_lettered_alone_and_the_others_are_created() {
    let t = app(false, false).await;
    creates(&t, "Order A-1 (#0)", 101, 1).await;
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .and(body_string_contains("Order A-2 (#1)"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "message": "Property values were not valid", "correlationId": "c-1",
            "validationResults": [{"isValid": false, "message": "80 is too small", "error": "INVALID_AMOUNT",
                                   "name": "amount"}]})))
        .expect(1)
        .mount(&t.hubspot)
        .await;
    creates(&t, "Order A-3 (#2)", 103, 1).await;

    let response = post(&t, "orders", &three()).await;

    assert_eq!(response.status, 202, "{}", response.text);
    let body = &response.json;
    assert_eq!(body["status"], "dead_lettered");
    assert_eq!(body["counts"], json!({"created": 2, "dead_lettered": 1}));
    assert_eq!(body["records"][0]["dealId"], 101);
    assert_eq!(body["records"][2]["dealId"], 103);
    let failed = &body["records"][1];
    assert_eq!(
        (failed["index"].clone(), failed["status"].clone()),
        (json!(1), json!("dead_lettered"))
    );
    assert_eq!(failed["reason"], "hubspot_rejected");

    let letters = t.dead_letters().await;
    assert_eq!(letters.len(), 1, "only the failed record is dead-lettered");
    let letter = &letters[0];
    assert_eq!(failed["deadLetterId"], letter.id.as_str());
    assert_eq!(
        letter.record,
        Some(dealhook::dead_letter::ForEachRecord { index: 1, count: 3 })
    );
    assert_eq!(letter.reason.as_str(), "hubspot_rejected");
    assert_eq!(letter.hubspot.as_ref().and_then(|h| h.status), Some(400));
    let draft = letter.deal_draft.as_ref().expect("the record's draft");
    assert!(
        draft
            .properties
            .iter()
            .any(|p| p.value.to_wire_string() == "Order A-2 (#1) for Acme"),
        "{draft:?}"
    );
    assert_eq!(
        letter.body().unwrap(),
        three(),
        "the whole delivery, for a replay of record 1"
    );
    assert_eq!(letter.delivery.route, "orders");
}

#[tokio::test]
async fn no_items_is_ignored_and_nothing_is_sent_or_stored() {
    let t = app(false, false).await;
    for body in [
        &br#"{"orders": []}"#[..],
        br#"{"orders": null}"#,
        br#"{"customer": "Acme"}"#,
    ] {
        let response = post(&t, "orders", body).await;
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(response.json["status"], "ignored");
        assert_eq!(
            response.json["message"],
            "the route's `for_each` gave no items; nothing was created or stored"
        );
        assert_eq!(response.json["records"], json!([]));
    }
    assert!(t.hubspot.received_requests().await.unwrap_or_default().is_empty());
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn more_items_than_the_limit_is_a_400_and_nothing_is_sent() {
    let t = app(false, false).await;
    let items: Vec<(String, Value)> = (0..=dealhook::mapping::MAX_RECORDS)
        .map(|i| (format!("B-{i}"), json!(1)))
        .collect();
    let items: Vec<(&str, Value)> = items.iter().map(|(id, total)| (id.as_str(), total.clone())).collect();

    let response = post(&t, "orders", &orders(&items)).await;

    assert_eq!(response.status, 400, "{}", response.text);
    assert_eq!(response.json["status"], "rejected");
    assert_eq!(response.json["error"]["code"], "too_many_records");
    assert_eq!(
        response.json["error"]["message"],
        "the route's `for_each` gave 101 items; at most 100 are taken per delivery, so nothing was created: \
         send smaller batches"
    );
    assert!(t.hubspot.received_requests().await.unwrap_or_default().is_empty());
    assert!(t.dead_letters().await.is_empty());
}

#[tokio::test]
async fn the_same_delivery_twice_makes_no_second_deal_for_any_record() {
    let t = app(true, false).await;
    creates(&t, "Order A-1 (#0)", 101, 1).await;
    creates(&t, "Order A-2 (#1)", 102, 1).await;
    creates(&t, "Order A-3 (#2)", 103, 1).await;

    let first = post(&t, "orders", &three()).await;
    let second = post(&t, "orders", &three()).await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.headers["x-dealhook-idempotent-replay"], "true");
    let ids = |r: &TestResponse| -> Vec<Value> {
        r.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dealId"].clone())
            .collect()
    };
    assert_eq!(ids(&second), ids(&first));
    assert_eq!(second.json["records"][0]["replayed"], true);
    assert_eq!(deal_bodies(&t).await.len(), 3, "each deal once");
}

#[tokio::test]
async fn a_repeat_after_one_record_failed_retries_only_that_record() {
    let t = app(true, false).await;
    creates(&t, "Order A-1 (#0)", 101, 1).await;
    // HubSpot refuses order A-2 once (say, a property was fixed in the portal in between), then takes it.
    Mock::given(method("POST"))
        .and(path(DEALS_V1))
        .and(body_string_contains("Order A-2 (#1)"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "error", "message": "not valid"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&t.hubspot)
        .await;
    creates(&t, "Order A-2 (#1)", 102, 1).await;
    creates(&t, "Order A-3 (#2)", 103, 1).await;

    let first = post(&t, "orders", &three()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let second = post(&t, "orders", &three()).await;

    assert_eq!(second.status, 200, "{}", second.text);
    let records = second.json["records"].as_array().unwrap();
    assert_eq!(records[0]["replayed"], true);
    assert_eq!(
        records[1],
        json!({"index": 1, "status": "created", "dealId": 102}),
        "retried"
    );
    assert_eq!(records[2]["replayed"], true);
    assert!(
        !second.headers.contains_key("x-dealhook-idempotent-replay"),
        "not all replayed"
    );
    assert_eq!(deal_bodies(&t).await.len(), 4, "orders A-1 and A-3 once, A-2 twice");
    assert_eq!(t.dead_letters().await.len(), 1, "the first attempt's");
}

#[tokio::test]
async fn a_dry_run_shows_each_records_calls_and_sends_nothing() {
    let t = app(false, true).await;
    let body = orders(&[("A-1", json!(10)), ("A-2", json!("lots"))]);

    let response = post(&t, "orders", &body).await;

    assert_eq!(response.status, 202, "record 1 does not map: {}", response.text);
    let records = response.json["records"].as_array().unwrap();
    assert_eq!(records[0]["status"], "dry_run");
    assert_eq!(records[0]["request"]["path"], DEALS_V1);
    assert_eq!(
        property(&records[0]["request"]["body"], "dealname"),
        "Order A-1 (#0) for Acme"
    );
    assert_eq!(records[1]["status"], "dead_lettered");
    assert_eq!(records[1]["errors"][0]["field"], "properties.amount");
    assert!(t.hubspot.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn each_record_runs_the_whole_plan_on_the_2026_03_api() {
    let t = app(false, false).await;
    let crm = "/crm/objects/2026-03";
    for (n, email) in [(1, "ada@example.com"), (2, "grace@example.com")] {
        Mock::given(method("POST"))
            .and(path(format!("{crm}/contacts/batch/upsert")))
            .and(body_string_contains(email))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
                {"id": format!("50{n}"), "new": true, "properties": {"email": email}}]})),
            )
            .expect(1)
            .mount(&t.hubspot)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{crm}/deals")))
            .and(body_string_contains(format!("\"50{n}\"")))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": format!("90{n}"), "properties": {}})))
            .expect(1)
            .mount(&t.hubspot)
            .await;
    }
    let body = json!({"people": [{"name": "Ada", "email": "ada@example.com"},
                                 {"name": "Grace", "email": "grace@example.com"}]});

    let response = post(&t, "leads", body.to_string().as_bytes()).await;

    assert_eq!(response.status, 200, "{}", response.text);
    let ids: Vec<Value> = response.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dealId"].clone())
        .collect();
    assert_eq!(ids, [json!(901), json!(902)], "each deal linked to its own contact");
}

/// `dealhook transform` on a delivery to a `for_each` route: each record's calls, or why it would be
/// dead-lettered, and the exit code of the whole (3: one record would be dead-lettered).
#[test]
fn transform_shows_each_records_calls() {
    let dir = std::env::temp_dir().join(format!("dealhook-for-each-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let event = |name: &str, body: &[u8]| {
        let file = dir.join(name);
        let text = crate::helpers::v2_event("POST", "/hooks/orders", Some("application/json"), body);
        std::fs::write(&file, text).unwrap();
        file.to_string_lossy().into_owned()
    };
    let vars = [
        ("DEALHOOK_MAPPING", mapping.to_str().unwrap()),
        ("HUBSPOT_BASE_URL", "http://127.0.0.1:9"),
    ];

    let good = event("three.json", &three());
    let output = crate::cli::dealhook(&["transform", &good], &vars);
    assert_eq!(output.status.code(), Some(0), "{}", crate::cli::stderr(&output));
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    let records = shown["records"].as_array().expect("a list of records");
    assert_eq!(records.len(), 3);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["index"], i);
        assert_eq!(record["url"], "http://127.0.0.1:9/deals/v1/deal/");
        assert_eq!(record["calls"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            property(&record["body"], "dealname"),
            format!("Order A-{} (#{i}) for Acme", i + 1)
        );
    }

    let bad = event("bad.json", &orders(&[("A-1", json!(1)), ("A-2", json!("lots"))]));
    let output = crate::cli::dealhook(&["transform", &bad], &vars);
    assert_eq!(output.status.code(), Some(3), "{}", crate::cli::stderr(&output));
    let stderr = crate::cli::stderr(&output);
    assert!(
        stderr.contains("route orders, record 1: this record would be dead-lettered (mapping_failed)")
            && stderr.contains("properties.amount"),
        "{stderr}"
    );

    let none = event("none.json", br#"{"orders": []}"#);
    let output = crate::cli::dealhook(&["transform", &none], &vars);
    assert_eq!(output.status.code(), Some(6), "{}", crate::cli::stderr(&output));
}
