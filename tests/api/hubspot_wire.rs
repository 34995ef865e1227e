//! The HubSpot wire layer on the wire: every request dealhook builds for v1, v3 and 2026-03 is
//! checked against HubSpot's OpenAPI documents (tests/fixtures/hubspot-openapi: the operation found
//! by method and path, its request body validated with unknown keys refused), then sent by the real
//! client to a mock HubSpot (wiremock) that answers as HubSpot does, including the answers of
//! `shared/hubspot-responses.md` ("catalog item N") that apply to single calls.

use std::path::Path;
use std::time::Duration;

use dealhook::credentials::HubSpotAuth;
use dealhook::domain::{Associations, DealDraft, PropValue, Property, Reason};
use dealhook::hubspot::crm::{self, ContactInput, InputFailure, Upserted};
use dealhook::hubspot::{
    DAILY_LIMIT_WAIT, Deals, HubSpotApi, HubSpotClient, HubSpotClientConfig, HubSpotError, HubSpotOptions,
    HubSpotRequest, ObjectType, RetryPolicy, v1,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{any, bearer_token, body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "pat-na1-11111111-2222-4333-8444-wire-test-token";
const CRM: [HubSpotApi; 2] = [HubSpotApi::V3, HubSpotApi::V2026_03];

fn auth() -> HubSpotAuth {
    HubSpotAuth::AccessToken(SecretString::from(TOKEN.to_owned()))
}

fn client(server: &MockServer) -> HubSpotClient {
    HubSpotClient::new(HubSpotClientConfig {
        base_url: server.uri(),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn draft() -> DealDraft {
    DealDraft {
        pipeline: Some("default".to_owned()),
        dealstage: "appointmentscheduled".to_owned(),
        properties: vec![
            Property {
                name: "dealname".to_owned(),
                value: PropValue::Text("Ada's order".to_owned()),
            },
            Property {
                name: "amount".to_owned(),
                value: PropValue::Number("12500.5".to_owned()),
            },
            Property {
                name: "closedate".to_owned(),
                value: PropValue::Date(1_733_011_200_000),
            },
            Property {
                name: "webhook_event_id".to_owned(),
                value: PropValue::Text("evt_001".to_owned()),
            },
        ],
        associations: Associations {
            company_ids: vec![8_954_037],
            contact_ids: vec![27_136, 27_137],
            ..Associations::default()
        },
    }
}

fn options(api: HubSpotApi, upsert_by: Option<&str>) -> HubSpotOptions {
    HubSpotOptions {
        api,
        upsert_by: upsert_by.map(str::to_owned),
    }
}

fn contacts() -> Vec<ContactInput> {
    vec![
        ContactInput::new(
            " Ada.Lovelace+hubspot@Example.COM ",
            vec![
                ("firstname".to_owned(), "Ada".to_owned()),
                ("phone".to_owned(), String::new()),
            ],
        )
        .unwrap(),
        ContactInput::new("grace@example.org", vec![("lastname".to_owned(), "Hopper".to_owned())]).unwrap(),
    ]
}

// ---- OpenAPI validation ----------------------------------------------------------------------

/// The OpenAPI document that describes `request` (by API version and object type).
fn document_for(request: &HubSpotRequest) -> &'static str {
    let p = request.path.as_str();
    match () {
        _ if p.starts_with("/crm/objects/2026-03/") && p.contains("/associations/") => "2026-03/associations.json",
        _ if p.starts_with("/crm/objects/2026-03/deals") => "2026-03/deals.json",
        _ if p.starts_with("/crm/objects/2026-03/contacts") => "2026-03/contacts.json",
        _ if p.starts_with("/crm/objects/2026-03/companies") => "2026-03/companies.json",
        _ if p.starts_with("/crm/pipelines/2026-03/") => "2026-03/pipelines.json",
        _ if p.starts_with("/crm/properties/2026-03/") => "2026-03/properties.json",
        _ if p.starts_with("/crm/v3/pipelines/") => "pipelines.json",
        _ if p.starts_with("/crm/v3/properties/") => "properties.json",
        _ if p.starts_with("/crm/v4/") => "associations.json",
        _ if p.starts_with("/crm/v3/objects/deals") => "deals.json",
        _ if p.starts_with("/crm/v3/objects/contacts") => "contacts.json",
        // No v3 companies document: 2026-03's has the v3 schemas (see SOURCES.md).
        _ if p.starts_with("/crm/v3/objects/companies") => "2026-03/companies.json",
        _ => panic!("no OpenAPI document for {p}"),
    }
}

fn load(name: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hubspot-openapi")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// Whether a concrete path matches a document's path template (`{x}` matches one segment; the
/// documents spell deals `0-3`, dealhook the documented alias `deals`; v3 companies are looked up
/// under 2026-03's prefix).
fn path_matches(template: &str, concrete: &str) -> bool {
    let concrete = concrete.replace("/crm/v3/objects/companies", "/crm/objects/2026-03/companies");
    let t: Vec<&str> = template.split('/').collect();
    let c: Vec<&str> = concrete.split('/').collect();
    t.len() == c.len()
        && t.iter().zip(&c).all(|(t, c)| {
            (t.starts_with('{') && t.ends_with('}') && !c.is_empty()) || t == c || (*t == "0-3" && *c == "deals")
        })
}

/// Every object schema that does not say otherwise refuses unknown keys, so that a misspelt key
/// fails validation instead of being ignored as OpenAPI allows.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Validates `request` against its operation in the OpenAPI document: the path and method must
/// exist; a body must match the operation's request body schema (`$ref`s resolved within the
/// document), and an operation without one must get no body.
pub(crate) fn assert_valid(request: &HubSpotRequest) {
    let name = document_for(request);
    let mut doc = load(name);
    let method = request.method.to_ascii_lowercase();
    let (template, operation) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, ops)| path_matches(template, &request.path) && ops.get(&method).is_some())
        .map(|(t, ops)| (t.clone(), ops[&method].clone()))
        .unwrap_or_else(|| panic!("{name} has no {} {}", request.method, request.path));
    let schema = operation
        .pointer("/requestBody/content/application~1json/schema")
        .cloned();
    let Some(schema) = schema else {
        assert_eq!(request.body, Value::Null, "{template} takes no body");
        return;
    };
    close_objects(&mut doc);
    // The document itself is the root, so that `#/components/schemas/…` resolves.
    let mut root = doc;
    root.as_object_mut().unwrap().remove("paths");
    for (key, value) in schema.as_object().unwrap() {
        root[key] = value.clone();
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&request.body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} {} against {name} {template}: {errors:#?}\n{:#}",
        request.method,
        request.path,
        request.body
    );
}

/// Validates an answer HubSpot would give to `request` (method and path as [`assert_valid`] finds
/// them) against the operation's response schema for `status`, so that what a mock HubSpot serves is
/// shaped as HubSpot documents it. Unknown keys are allowed here (HubSpot adds fields).
pub(crate) fn assert_valid_answer(request: &HubSpotRequest, status: u16, body: &Value) {
    let name = document_for(request);
    let doc = load(name);
    let method = request.method.to_ascii_lowercase();
    let (template, operation) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, ops)| path_matches(template, &request.path) && ops.get(&method).is_some())
        .map(|(t, ops)| (t.clone(), ops[&method].clone()))
        .unwrap_or_else(|| panic!("{name} has no {} {}", request.method, request.path));
    let pointer = format!("/responses/{status}/content/application~1json/schema");
    let schema = operation
        .pointer(&pointer)
        .cloned()
        .unwrap_or_else(|| panic!("{name} {template} documents no {status} answer"));
    let mut root = doc;
    root.as_object_mut().unwrap().remove("paths");
    for (key, value) in schema.as_object().unwrap() {
        root[key] = value.clone();
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "answer to {} {} against {name} {template}: {errors:#?}",
        request.method,
        request.path
    );
}

#[test]
fn the_validator_refuses_what_hubspot_would_refuse() {
    let mut request = crm::deal_create_request(HubSpotApi::V2026_03, &draft());
    request.body["properties"]["amount"] = json!(12500.5);
    let refused = std::panic::catch_unwind(|| assert_valid(&request));
    assert!(refused.is_err(), "a number where the schema wants a string");
    let mut request = crm::deal_create_request(HubSpotApi::V3, &draft());
    request.body["assocations"] = json!([]);
    assert!(
        std::panic::catch_unwind(|| assert_valid(&request)).is_err(),
        "a misspelt key"
    );
    let mut request = crm::deal_create_request(HubSpotApi::V3, &draft());
    request.body.as_object_mut().unwrap().remove("associations");
    assert!(
        std::panic::catch_unwind(|| assert_valid(&request)).is_err(),
        "a required key missing"
    );
    let mut request = crm::deal_create_request(HubSpotApi::V3, &draft());
    request.path = "/crm/v3/objects/deal".to_owned();
    assert!(
        std::panic::catch_unwind(|| assert_valid(&request)).is_err(),
        "an unknown path"
    );
}

#[test]
fn every_crm_request_body_matches_hubspot_s_openapi_documents() {
    for api in CRM {
        let requests = [
            crm::deal_create_request(api, &draft()),
            crm::deal_create_request(
                api,
                &DealDraft {
                    associations: Associations::default(),
                    ..draft()
                },
            ),
            crm::deal_upsert_request(api, &draft(), "webhook_event_id").unwrap(),
            crm::contacts_upsert_request(api, &contacts()),
            crm::company_search_request(api, "acme.example"),
            crm::company_create_request(api, "acme.example", &[("name".to_owned(), "Acme".to_owned())]),
            crm::association_request(api, ObjectType::Deal, 40_123_456_789, ObjectType::Contact, 51),
            crm::association_request(api, ObjectType::Deal, 40_123_456_789, ObjectType::Company, 8_954_037),
        ];
        for request in &requests {
            assert_valid(request);
        }
    }
    // v1 routes link after the fact through v4, as v3 routes do.
    assert_valid(&crm::association_request(
        HubSpotApi::V1,
        ObjectType::Deal,
        1,
        ObjectType::Contact,
        2,
    ));
}

#[test]
fn deal_bodies_per_version() {
    let v3 = crm::deal_create_request(HubSpotApi::V3, &draft());
    let current = crm::deal_create_request(HubSpotApi::V2026_03, &draft());
    assert_eq!(
        (v3.method.as_str(), v3.path.as_str()),
        ("POST", "/crm/v3/objects/deals")
    );
    assert_eq!(current.path, "/crm/objects/2026-03/deals");
    assert_eq!(
        v3.body, current.body,
        "the versions differ in the path only (catalog item 24)"
    );
    let link = |id: &str, type_id: u32| json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]});
    assert_eq!(
        current.body,
        json!({
            "properties": {"pipeline": "default", "dealstage": "appointmentscheduled", "dealname": "Ada's order",
                           "amount": "12500.5", "closedate": "1733011200000", "webhook_event_id": "evt_001"},
            "associations": [link("27136", 3), link("27137", 3), link("8954037", 5)]
        })
    );
    // v1 is untouched.
    assert_eq!(
        crm::deal_request(&HubSpotOptions::default(), &draft()).unwrap(),
        v1::create_request(&draft())
    );
    let upsert = crm::deal_request(&options(HubSpotApi::V2026_03, Some("webhook_event_id")), &draft()).unwrap();
    assert_eq!(upsert.path, "/crm/objects/2026-03/deals/batch/upsert");
    assert_eq!(upsert.body["inputs"][0]["idProperty"], "webhook_event_id");
    assert_eq!(upsert.body["inputs"][0]["id"], "evt_001");
    let missing = crm::deal_request(&options(HubSpotApi::V3, Some("external_id")), &draft()).unwrap_err();
    assert_eq!(missing.property, "external_id");
}

#[test]
fn contacts_are_keyed_by_lower_cased_e_mail_without_repeats_or_empty_values() {
    let mut list = contacts();
    list.push(ContactInput::new("GRACE@example.org", vec![]).unwrap());
    let request = crm::contacts_upsert_request(HubSpotApi::V2026_03, &list);
    assert_eq!(request.path, "/crm/objects/2026-03/contacts/batch/upsert");
    assert_eq!(
        request.body,
        json!({"inputs": [
            {"idProperty": "email", "id": "ada.lovelace+hubspot@example.com", "objectWriteTraceId": "ada.lovelace+hubspot@example.com",
             "properties": {"email": "ada.lovelace+hubspot@example.com", "firstname": "Ada"}},
            {"idProperty": "email", "id": "grace@example.org", "objectWriteTraceId": "grace@example.org",
             "properties": {"email": "grace@example.org", "lastname": "Hopper"}}
        ]})
    );
}

/// Invalid e-mails are refused before anything is built, each naming its rule.
#[test]
fn invalid_e_mails_are_named_errors() {
    for (email, rule) in [
        ("", "it has no @"),
        ("ada", "it has no @"),
        ("ada@", "the domain needs a dot and no empty part"),
        (
            "@example.com",
            "the part before @ is empty or longer than 64 characters",
        ),
        ("ada@example", "the domain needs a dot and no empty part"),
        ("ada@@example.com", "it has more than one @"),
        ("ada lovelace@example.com", "it contains a space or a control character"),
        ("ada@example..com", "the domain needs a dot and no empty part"),
    ] {
        let err = ContactInput::new(email, vec![]).unwrap_err();
        assert_eq!(err.0, rule, "{email:?}");
    }
}

#[test]
fn domains_are_normalised_as_hubspot_stores_them() {
    for (raw, want) in [
        ("acme.example", "acme.example"),
        ("https://www.Acme.Example/contact?x=1", "acme.example"),
        ("http://user@acme.example:8080/", "acme.example"),
        ("acme.example.", "acme.example"),
        (" EU.acme.example ", "eu.acme.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ] {
        assert_eq!(crm::normalise_domain(raw).as_deref(), Ok(want), "{raw:?}");
    }
    for raw in [
        "",
        "localhost",
        "acme..example",
        "-acme.example",
        "bücher.example",
        "acme .example",
        "https://",
    ] {
        assert!(crm::normalise_domain(raw).is_err(), "{raw:?}");
    }
}

// ---- On the wire ------------------------------------------------------------------------------

fn created_object(id: &str) -> Value {
    json!({"id": id, "properties": {}, "createdAt": "2026-11-29T10:00:00.000Z", "updatedAt": "2026-11-29T10:00:00.000Z", "archived": false})
}

#[tokio::test]
async fn a_deal_is_created_on_each_crm_version_with_inline_associations() {
    for api in CRM {
        let server = MockServer::start().await;
        let expected = crm::deal_create_request(api, &draft());
        Mock::given(method("POST"))
            .and(path(expected.path.as_str()))
            .and(bearer_token(TOKEN))
            .and(body_json(&expected.body))
            .respond_with(ResponseTemplate::new(201).set_body_json(created_object("40123456789")))
            .expect(1)
            .mount(&server)
            .await;
        let created = client(&server)
            .create(&options(api, None), &draft(), &auth())
            .await
            .unwrap();
        assert_eq!(created.deal_id, 40_123_456_789, "{api}");
        assert!(created.association_create_failures.is_empty());
    }
}

/// Catalog item 21: HubSpot answers 200 where its documents say 201; any 2xx with an id is a deal.
#[tokio::test]
async fn a_200_for_a_201_still_creates_the_deal_and_a_2xx_without_an_id_is_unknown() {
    for (answer, ok) in [
        (ResponseTemplate::new(200).set_body_json(created_object("7")), true),
        (
            ResponseTemplate::new(201).set_body_json(json!({"properties": {}})),
            false,
        ),
        (
            ResponseTemplate::new(201).set_body_json(json!({"id": "not-a-number"})),
            false,
        ),
        (ResponseTemplate::new(201).set_body_string("<html>ok</html>"), false),
    ] {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&server).await;
        let result = client(&server)
            .create(&options(HubSpotApi::V2026_03, None), &draft(), &auth())
            .await;
        match (ok, result) {
            (true, Ok(created)) => assert_eq!(created.deal_id, 7),
            (false, Err(err @ HubSpotError::OutcomeUnknown { .. })) => assert!(err.may_have_created()),
            (_, other) => panic!("{other:?}"),
        }
    }
}

fn upsert_answer(status: u16, results: Value, errors: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "status": "COMPLETE", "results": results, "errors": errors, "numErrors": errors.as_array().map_or(0, Vec::len),
        "startedAt": "2026-11-29T10:00:00.000Z", "completedAt": "2026-11-29T10:00:00.300Z"
    }))
}

fn upserted(id: &str, new: bool, properties: Value) -> Value {
    json!({"id": id, "new": new, "properties": properties, "createdAt": "2026-11-29T10:00:00.000Z",
           "updatedAt": "2026-11-29T10:00:00.000Z", "archived": false})
}

/// Issue item 5: upserting by `webhook_event_id` twice gives one deal (HubSpot's `new` says which).
#[tokio::test]
async fn a_deal_upserted_twice_by_its_event_id_is_one_deal() {
    for api in CRM {
        let server = MockServer::start().await;
        let expected = crm::deal_upsert_request(api, &draft(), "webhook_event_id").unwrap();
        Mock::given(method("POST"))
            .and(path(expected.path.as_str()))
            .and(body_json(&expected.body))
            .respond_with(upsert_answer(
                200,
                json!([upserted("40123456789", false, json!({"webhook_event_id": "evt_001"}))]),
                json!([]),
            ))
            .expect(2)
            .mount(&server)
            .await;
        let client = client(&server);
        let by = options(api, Some("webhook_event_id"));
        let first = client.create(&by, &draft(), &auth()).await.unwrap();
        let second = client.create(&by, &draft(), &auth()).await.unwrap();
        assert_eq!(
            (first.deal_id, second.deal_id),
            (40_123_456_789, 40_123_456_789),
            "{api}"
        );
    }
}

/// Catalog item 19: a 207 with the deal's error (matched by objectWriteTraceId) is a rejection
/// naming the property; catalog item 21: a 200 naming no deal is an unknown outcome.
#[tokio::test]
async fn a_deal_upsert_207_is_a_named_rejection_and_an_empty_200_is_unknown() {
    let error = json!({"status": "error", "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Enter a number\",\"error\":\"INVALID_DOUBLE\",\"name\":\"amount\"}]",
        "context": {"objectWriteTraceId": ["evt_001"]}});
    let cases = [
        (upsert_answer(207, json!([]), json!([error])), "rejected"),
        (upsert_answer(200, json!([]), json!([])), "unknown"),
        (
            upsert_answer(
                200,
                json!([upserted("9", true, json!({"webhook_event_id": "evt_999"}))]),
                json!([]),
            ),
            "unknown",
        ),
    ];
    for (answer, want) in cases {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&server).await;
        let err = client(&server)
            .create(
                &options(HubSpotApi::V2026_03, Some("webhook_event_id")),
                &draft(),
                &auth(),
            )
            .await
            .unwrap_err();
        match (want, &err) {
            ("rejected", HubSpotError::Rejected { status: 207, .. }) => {
                let problems = err.problems();
                assert_eq!(problems[0].field.as_deref(), Some("amount"), "{problems:?}");
                assert_eq!(problems[0].code, "INVALID_DOUBLE");
            }
            ("unknown", HubSpotError::OutcomeUnknown { .. }) => {}
            _ => panic!("{want}: {err:?}"),
        }
    }
}

/// Issue item 2 and catalog items 18, 19: a new and an existing contact, answered out of order with
/// HubSpot's own spelling of the e-mail, and a 207 where one input failed.
#[tokio::test]
async fn contacts_are_upserted_and_matched_by_e_mail_not_by_position() {
    for api in CRM {
        let server = MockServer::start().await;
        let expected = crm::contacts_upsert_request(api, &contacts());
        Mock::given(method("POST"))
            .and(path(expected.path.as_str()))
            .and(body_json(&expected.body))
            .respond_with(upsert_answer(
                200,
                json!([
                    upserted("52", false, json!({"email": "Grace@Example.org"})),
                    upserted("51", true, json!({"email": "ada.lovelace+hubspot@example.com"}))
                ]),
                json!([]),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server)
            .upsert_contacts(api, &contacts(), &auth())
            .await
            .unwrap();
        assert_eq!(
            outcome.get("ada.lovelace+hubspot@example.com"),
            Some(&Ok(Upserted {
                id: 51,
                created: Some(true)
            }))
        );
        assert_eq!(
            outcome.get("grace@example.org"),
            Some(&Ok(Upserted {
                id: 52,
                created: Some(false)
            }))
        );
    }

    let server = MockServer::start().await;
    let error = json!({"status": "error", "category": "VALIDATION_ERROR", "message": "Email address grace@example.org is invalid",
                       "errors": [{"message": "invalid", "code": "INVALID_EMAIL", "context": {"propertyName": ["email"]}}],
                       "context": {"objectWriteTraceId": ["grace@example.org"]}});
    Mock::given(any())
        .respond_with(upsert_answer(207, json!([]), json!([error])))
        .mount(&server)
        .await;
    let outcome = client(&server)
        .upsert_contacts(HubSpotApi::V2026_03, &contacts(), &auth())
        .await
        .unwrap();
    assert_eq!(
        outcome.get("ada.lovelace+hubspot@example.com"),
        Some(&Err(InputFailure::Missing))
    );
    let Some(Err(InputFailure::Rejected(body))) = outcome.get("grace@example.org") else {
        panic!("{outcome:?}");
    };
    assert_eq!(body.validation_results[0].error.as_deref(), Some("INVALID_EMAIL"));
}

/// v1's createOrUpdate: the e-mail is one path segment, `+` and `@` percent-encoded.
#[tokio::test]
async fn a_v1_contact_is_created_or_updated_by_its_encoded_e_mail() {
    let contact = ContactInput::new(
        "Ada.Lovelace+hubspot@Example.com",
        vec![("firstname".to_owned(), "Ada".to_owned())],
    )
    .unwrap();
    let request = v1::contact_request(&contact);
    assert_eq!(
        request.path,
        "/contacts/v1/contact/createOrUpdate/email/ada.lovelace%2Bhubspot%40example.com/"
    );
    assert_eq!(
        request.body,
        json!({"properties": [{"property": "email", "value": "ada.lovelace+hubspot@example.com"},
                              {"property": "firstname", "value": "Ada"}]})
    );
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/contacts/v1/contact/createOrUpdate/email/ada.lovelace%2Bhubspot%40example.com/",
        ))
        .and(body_json(&request.body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"vid": 3234574, "isNew": false})))
        .expect(1)
        .mount(&server)
        .await;
    let written = client(&server)
        .create_or_update_contact_v1(&contact, &auth())
        .await
        .unwrap();
    assert_eq!((written.vid, written.created), (3_234_574, Some(false)));
    let raw = server.received_requests().await.unwrap();
    assert!(
        raw[0].url.path().contains("%2B") && raw[0].url.path().contains("%40"),
        "{}",
        raw[0].url
    );
}

/// Issue item 3: a company found (the oldest of duplicates), none found, then created; the link after.
#[tokio::test]
async fn companies_are_searched_by_domain_created_and_linked() {
    for api in CRM {
        let server = MockServer::start().await;
        let search = crm::company_search_request(api, "acme.example");
        Mock::given(method("POST"))
            .and(path(search.path.as_str()))
            .and(body_json(&search.body))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 2, "results": [
                created_object("8954099"), created_object("8954037")]})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(search.path.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
            .mount(&server)
            .await;
        let create = crm::company_create_request(api, "acme.example", &[("name".to_owned(), "Acme".to_owned())]);
        Mock::given(method("POST"))
            .and(path(create.path.as_str()))
            .and(body_json(&create.body))
            .respond_with(ResponseTemplate::new(201).set_body_json(created_object("8954100")))
            .expect(1)
            .mount(&server)
            .await;
        let link = crm::association_request(api, ObjectType::Deal, 40_123_456_789, ObjectType::Company, 8_954_100);
        Mock::given(method("PUT"))
            .and(path(link.path.as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [],
                "startedAt": "2026-11-29T10:00:00.000Z", "completedAt": "2026-11-29T10:00:00.100Z"})),
            )
            .expect(1)
            .mount(&server)
            .await;

        let client = client(&server);
        let found = client
            .search_company(api, "acme.example", &auth())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, found.candidates), (8_954_037, 2), "{api}: the lowest id");
        assert_eq!(client.search_company(api, "acme.example", &auth()).await.unwrap(), None);
        let id = client
            .create_company(api, "acme.example", &[("name".to_owned(), "Acme".to_owned())], &auth())
            .await
            .unwrap();
        assert_eq!(id, 8_954_100);
        client
            .associate(
                api,
                (ObjectType::Deal, 40_123_456_789),
                (ObjectType::Company, id),
                &auth(),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_association_answer_listing_errors_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [],
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "One or more associations are invalid",
                        "context": {"INVALID_OBJECT_IDS": ["CONTACT=51 is not valid"]}}],
            "startedAt": "2026-11-29T10:00:00.000Z", "completedAt": "2026-11-29T10:00:00.100Z"})))
        .mount(&server)
        .await;
    let err = client(&server)
        .associate(
            HubSpotApi::V2026_03,
            (ObjectType::Deal, 1),
            (ObjectType::Contact, 51),
            &auth(),
        )
        .await
        .unwrap_err();
    let HubSpotError::Rejected { body, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(body.details.context["INVALID_OBJECT_IDS"], ["CONTACT=51 is not valid"]);
}

// ---- Catalog answers that apply to single calls -----------------------------------------------

async fn answer_to_deal(answer: ResponseTemplate) -> HubSpotError {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).expect(1).mount(&server).await;
    client(&server)
        .create(&options(HubSpotApi::V2026_03, None), &draft(), &auth())
        .await
        .unwrap_err()
}

/// Catalog item 3: the `DAILY` policy is not retried within the invocation.
#[tokio::test]
async fn catalog_3_a_daily_limit_is_not_retried() {
    let err = answer_to_deal(ResponseTemplate::new(429).set_body_json(json!({"status": "error",
        "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
        "correlationId": "3f2a9c1e-0b7d-4e5a-9c61-2d8e4f7a1b03", "policyName": "DAILY"})))
    .await;
    assert_eq!(err.retry_after(), Some(DAILY_LIMIT_WAIT));
    assert_eq!(err.reason(), Reason::HubSpotRateLimited);
    assert_eq!(RetryPolicy::default().next_wait(1, err.retry_after(), None, 0.5), None);
}

/// Catalog item 4: a 500 naming a rate limit is a rate limit (retryable); a bare 500 is not retried.
#[tokio::test]
async fn catalog_4_a_500_naming_a_rate_limit_is_rate_limited() {
    let err = answer_to_deal(ResponseTemplate::new(500).set_body_json(json!({"status": "error",
        "message": "You have reached your secondly limit.", "category": "RATE_LIMITS"})))
    .await;
    assert!(matches!(err, HubSpotError::RateLimited { .. }), "{err:?}");
    assert!(err.is_retryable());
    let err = answer_to_deal(ResponseTemplate::new(500).set_body_json(json!({"status": "error",
        "message": "internal error", "correlationId": "3f2a9c1e-0b7d-4e5a-9c61-2d8e4f7a1b04"})))
    .await;
    assert!(
        matches!(err, HubSpotError::Unavailable { status: Some(500), .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable() && err.may_have_created());
    assert!(err.is_retryable_if_idempotent(), "an upsert may be repeated");
}

/// Catalog item 6: 423 Locked, with a JSON body and with none, waits at least 2 s and is retried.
#[tokio::test]
async fn catalog_6_locked_is_retried_after_two_seconds() {
    for answer in [
        ResponseTemplate::new(423).set_body_json(json!({"status": "error", "message": "locked", "correlationId": "c"})),
        ResponseTemplate::new(423),
        ResponseTemplate::new(423).insert_header("Retry-After", "5"),
    ] {
        let err = answer_to_deal(answer).await;
        assert!(matches!(err, HubSpotError::Locked { .. }), "{err:?}");
        assert!(err.is_retryable() && !err.may_have_created());
        assert!(err.retry_after() >= Some(Duration::from_secs(2)), "{err:?}");
        let wait = RetryPolicy::default()
            .next_wait(1, err.retry_after(), None, 0.0)
            .unwrap();
        assert!(wait >= Duration::from_secs(2));
        // A dead letter after the retries keeps HubSpot's body when it sent one.
        let kept = dealhook::dead_letter::HubSpotFailure::of(&err, 4).body;
        if kept.is_object() {
            assert_eq!(kept["correlationId"], "c", "{kept}");
        } else {
            assert!(kept.as_str().unwrap().contains("423"), "{kept}");
        }
    }
}

/// Catalog item 7: HTML 5xx bodies are read by status, named by their title, never parsed as JSON;
/// edge errors are retried, 524 (origin still working) is not.
#[tokio::test]
async fn catalog_7_html_5xx_bodies() {
    for (code, title, retryable) in [
        (502, "502 Bad Gateway", true),
        (521, "521 Web server is down", true),
        (524, "524 Origin Time-out", false),
    ] {
        let page = format!(
            "<html>\n<head><title>{title}</title></head>\n<body bgcolor=\"white\">\n<center><h1>{title}</h1></center>"
        );
        let err = answer_to_deal(
            ResponseTemplate::new(code)
                .insert_header("content-type", "text/html")
                .set_body_string(page),
        )
        .await;
        let HubSpotError::Unavailable { message, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(message.ends_with(title), "{message}");
        assert!(!message.contains("<html>"), "{message}");
        assert_eq!(err.is_retryable(), retryable, "{code}");
    }
}

/// Catalog item 11: MISSING_SCOPES is not retried (not even by re-reading the secret), and its
/// scopes reach the problems and the error body kept for the dead letter.
#[tokio::test]
async fn catalog_11_missing_scopes_keep_the_scope_list() {
    let err = answer_to_deal(ResponseTemplate::new(403).set_body_json(json!({
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "correlationId": "019e63ab-0000-7000-8000-000000000011",
        "errors": [{"message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": ["crm.objects.deals.write", "crm.objects.contacts.write"]}}],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES"})))
    .await;
    let HubSpotError::MissingScopes { body, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        body.details.required_scopes,
        ["crm.objects.deals.write", "crm.objects.contacts.write"]
    );
    assert!(!err.is_retryable());
    assert_eq!(err.reason(), Reason::HubSpotUnauthorized);
    let problems = err.problems();
    assert_eq!(problems[0].code, "missing_scopes");
    assert!(
        problems[0]
            .message
            .contains("crm.objects.deals.write, crm.objects.contacts.write"),
        "{problems:?}"
    );
    let kept = serde_json::to_value(body).unwrap();
    assert_eq!(
        kept["requiredScopes"],
        json!(["crm.objects.deals.write", "crm.objects.contacts.write"])
    );
    // The dead letter keeps HubSpot's parsed body, not only dealhook's sentence.
    let failure = dealhook::dead_letter::HubSpotFailure::of(&err, 1);
    assert_eq!(failure.status, Some(403));
    assert_eq!(failure.body["category"], "MISSING_SCOPES", "{}", failure.body);
    assert_eq!(failure.body["correlationId"], "019e63ab-0000-7000-8000-000000000011");
    assert_eq!(
        failure.body["requiredScopes"],
        json!(["crm.objects.deals.write", "crm.objects.contacts.write"])
    );
    // The older shape (`requiredScopes`).
    let err = answer_to_deal(ResponseTemplate::new(403).set_body_json(json!({"status": "error",
        "message": "This oauth-token (…) does not have proper permissions! (requires any of [contacts])",
        "category": "MISSING_SCOPES", "context": {"requiredScopes": ["contacts"]}})))
    .await;
    assert!(err.to_string().ends_with("contacts"), "{err}");
}

/// Catalog item 12: a v3 validation error names the property from `errors[]`.
#[tokio::test]
async fn catalog_12_v3_validation_errors_name_the_property() {
    let err = answer_to_deal(ResponseTemplate::new(400).set_body_json(json!({"status":"error",
        "message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"lead_source_x\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"lead_source_x\"}]",
        "correlationId":"3f2a9c1e-0b7d-4e5a-9c61-2d8e4f7a1b12",
        "errors":[{"message":"Property \"lead_source_x\" does not exist","code":"PROPERTY_DOESNT_EXIST","context":{"propertyName":["lead_source_x"]}}],
        "category":"VALIDATION_ERROR"})))
    .await;
    let HubSpotError::Rejected { body, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(body.category.as_deref(), Some("VALIDATION_ERROR"));
    assert_eq!(
        body.correlation_id.as_deref(),
        Some("3f2a9c1e-0b7d-4e5a-9c61-2d8e4f7a1b12")
    );
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field.as_deref(), Some("lead_source_x"));
    assert_eq!(problems[0].code, "PROPERTY_DOESNT_EXIST");
}

/// Catalog item 23: an invalid association in the create body fails the whole create (400), with
/// its `context` kept.
#[tokio::test]
async fn catalog_23_an_invalid_inline_association_is_a_rejection_with_context() {
    let err = answer_to_deal(ResponseTemplate::new(400).set_body_json(json!({"status":"error",
        "message":"One or more associations are invalid","correlationId":"8db60c8c-0000-4000-8000-000000000023",
        "context":{"INVALID_OBJECT_IDS":["CONTACT=51234567 is not valid"],"objectId":["51234567"],"objectType":["CONTACT"]},
        "category":"VALIDATION_ERROR"})))
    .await;
    let HubSpotError::Rejected { body, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(body.details.context["objectId"], ["51234567"]);
    assert!(!err.is_retryable());
}
