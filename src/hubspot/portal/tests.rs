//! The portal's schema: parsers (HubSpot's answers and odd ones), lookups and their errors, and the
//! cache's reads, re-reads, failures and back-off (against `MemoryDeals`, on tokio's paused clock).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use secrecy::SecretString;

use super::*;
use crate::credentials::HubSpotAuth;
use crate::hubspot::{AuthSource, HubSpotError, HubSpotErrorBody, MemoryDeals};
use crate::telemetry::capture::LogCapture;

const PIPELINES: &str = include_str!("../../../tests/fixtures/portal/pipelines.json");
const PROPERTIES: &str = include_str!("../../../tests/fixtures/portal/deal-properties.json");

fn schema() -> PortalSchema {
    PortalSchema::new(
        parse_pipelines(PIPELINES.as_bytes()).unwrap(),
        parse_properties(PROPERTIES.as_bytes()).unwrap(),
    )
}

fn property(name: &str) -> PropertyDef {
    schema().property(ObjectType::Deal, name).unwrap().clone()
}

// ---- parsers ----------------------------------------------------------------------------------

#[test]
fn pipelines_are_read_with_their_stages_and_archived_stages_left_out() {
    let pipelines = parse_pipelines(PIPELINES.as_bytes()).unwrap();
    let ids: Vec<&str> = pipelines.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["default", "87250318", "87250319"]);
    let sales = &pipelines[0];
    assert_eq!(sales.label, "Sales Pipeline");
    assert_eq!(sales.display_order, Some(0));
    let stages: Vec<&str> = sales.stages.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        stages,
        [
            "appointmentscheduled",
            "qualifiedtobuy",
            "contractsent",
            "closedwon",
            "closedlost"
        ],
        "the archived presentationscheduled is left out"
    );
    assert_eq!(
        sales.stages[3],
        Stage {
            id: "closedwon".to_owned(),
            label: "Closed Won".to_owned(),
            is_closed: Some(true),
            probability: Some(1.0),
        }
    );
    assert_eq!(sales.stages[1].is_closed, Some(false));
    assert_eq!(sales.stages[1].probability, Some(0.4));
}

#[test]
fn properties_are_read_with_kind_options_and_flags() {
    let schema = schema();
    let dealtype = schema.property(ObjectType::Deal, "dealtype").unwrap();
    assert_eq!(dealtype.kind, PropertyKind::Enumeration);
    assert_eq!(dealtype.field_type, "radio");
    assert_eq!(dealtype.label, "Deal Type");
    assert_eq!(
        dealtype.options[0],
        PropertyOption {
            label: "New Business".to_owned(),
            value: "newbusiness".to_owned(),
            hidden: false
        }
    );
    assert!(!dealtype.is_multi_select());
    let products = schema.property(ObjectType::Deal, "products_of_interest").unwrap();
    assert!(products.is_multi_select());
    assert!(products.options[2].hidden, "Service Hub is hidden");
    let unique = schema.property(ObjectType::Deal, "webhook_event_id").unwrap();
    assert!(unique.has_unique_value && !unique.hubspot_defined);
    let closed = schema.property(ObjectType::Deal, "hs_is_closed").unwrap();
    assert_eq!(closed.kind, PropertyKind::Bool);
    assert!(closed.read_only_value && closed.calculated && closed.hubspot_defined);
    assert_eq!(
        schema.property(ObjectType::Deal, "amount").unwrap().kind,
        PropertyKind::Number
    );
    assert_eq!(
        schema.property(ObjectType::Deal, "closedate").unwrap().kind,
        PropertyKind::DateTime
    );
    assert_eq!(
        schema.property(ObjectType::Deal, "contract_start").unwrap().kind,
        PropertyKind::Date
    );
    assert_eq!(schema.property(ObjectType::Deal, "old_field"), None, "archived");
    assert_eq!(schema.property(ObjectType::Deal, "nope"), None);
    assert_eq!(
        schema.property(ObjectType::Contact, "dealname"),
        None,
        "contacts were not read"
    );
    assert_eq!(schema.properties(ObjectType::Contact), None);
}

#[test]
fn every_hubspot_type_has_a_kind_and_unknown_ones_keep_their_name() {
    for (name, kind) in [
        ("string", PropertyKind::String),
        ("number", PropertyKind::Number),
        ("date", PropertyKind::Date),
        ("datetime", PropertyKind::DateTime),
        ("enumeration", PropertyKind::Enumeration),
        ("bool", PropertyKind::Bool),
        ("phone_number", PropertyKind::PhoneNumber),
        (
            "object_coordinates",
            PropertyKind::Other("object_coordinates".to_owned()),
        ),
        ("json", PropertyKind::Other("json".to_owned())),
    ] {
        assert_eq!(PropertyKind::parse(name), kind, "{name}");
        assert_eq!(kind.as_str(), name);
    }
}

/// Odd answers: unreadable bodies are errors, odd entries are skipped or read with defaults; nothing
/// panics.
mod odd_answers {
    use super::*;

    #[test]
    fn unreadable_bodies_are_errors() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for (name, body) in [
            ("empty", ""),
            ("html", "<html>Bad gateway</html>"),
            ("truncated", r#"{"results": [{"id": "default""#),
            ("an array", "[]"),
            ("no results", r#"{"total": 0}"#),
            ("results not a list", r#"{"results": {"id": "default"}}"#),
            ("results null", r#"{"results": null}"#),
            ("not UTF-8", "\u{0}\u{1}"),
            ("deep nesting", deep.as_str()),
        ] {
            assert!(parse_pipelines(body.as_bytes()).is_err(), "pipelines, {name}");
            assert!(parse_properties(body.as_bytes()).is_err(), "properties, {name}");
        }
        assert!(parse_pipelines(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn pipeline_entries_without_an_id_or_label_are_skipped_and_missing_fields_are_none() {
        let body = serde_json::json!({"results": [
            "not an object",
            {"label": "No id"},
            {"id": 5, "label": "Numeric id"},
            {"id": "archived", "label": "Gone", "archived": true, "stages": []},
            {"id": "bare", "label": "Bare"},
            {"id": "odd", "label": "Odd", "displayOrder": "first", "stages": [
                {"id": "s1", "label": "One"},
                {"id": "s2", "label": "Two", "metadata": {"isClosed": true, "probability": 0.5}},
                {"id": "s3", "label": "Three", "metadata": {"isClosed": "maybe", "probability": "high"}},
                {"id": "s4", "label": "Four", "metadata": "closed"},
                {"label": "No id"},
                42
            ]},
            {"id": "stages-not-a-list", "label": "X", "stages": {"id": "s"}}
        ]});
        let pipelines = parse_pipelines(body.to_string().as_bytes()).unwrap();
        let ids: Vec<&str> = pipelines.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["bare", "odd", "stages-not-a-list"]);
        assert_eq!(pipelines[0].stages, vec![]);
        assert_eq!(pipelines[0].display_order, None);
        let odd = &pipelines[1];
        assert_eq!(odd.display_order, None);
        let read: Vec<(&str, Option<bool>, Option<f64>)> = odd
            .stages
            .iter()
            .map(|s| (s.id.as_str(), s.is_closed, s.probability))
            .collect();
        assert_eq!(
            read,
            [
                ("s1", None, None),
                ("s2", Some(true), Some(0.5)),
                ("s3", None, None),
                ("s4", None, None)
            ]
        );
        assert!(pipelines[2].stages.is_empty());
    }

    #[test]
    fn property_entries_without_a_name_are_skipped_and_missing_fields_take_defaults() {
        let body = serde_json::json!({"results": [
            {"label": "No name", "type": "string"},
            7,
            {"name": "bare"},
            {"name": "odd", "type": "enumeration", "fieldType": "select", "hasUniqueValue": "yes",
             "modificationMetadata": {"readOnlyValue": "true"},
             "options": [{"value": "a"}, {"label": "No value"}, {"label": "B", "value": "b", "hidden": true}, null]},
            {"name": "options-not-a-list", "type": "enumeration", "options": "a;b"}
        ]});
        let properties = parse_properties(body.to_string().as_bytes()).unwrap();
        let names: Vec<&str> = properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bare", "odd", "options-not-a-list"]);
        let bare = &properties[0];
        assert_eq!(bare.label, "bare");
        assert_eq!(bare.kind, PropertyKind::Other(String::new()));
        assert_eq!(bare.field_type, "");
        assert!(!bare.read_only_value && !bare.calculated && !bare.has_unique_value && !bare.hubspot_defined);
        let odd = &properties[1];
        assert!(
            !odd.has_unique_value && !odd.read_only_value,
            "flags are JSON booleans only"
        );
        assert_eq!(
            odd.options,
            vec![
                PropertyOption {
                    label: "a".to_owned(),
                    value: "a".to_owned(),
                    hidden: false
                },
                PropertyOption {
                    label: "B".to_owned(),
                    value: "b".to_owned(),
                    hidden: true
                },
            ]
        );
        assert!(properties[2].options.is_empty());
    }
}

// ---- lookups ----------------------------------------------------------------------------------

#[test]
fn a_pipeline_is_found_by_id_or_by_label_ignoring_case_and_surrounding_spaces() {
    let schema = schema();
    for value in [
        "87250318",
        " 87250318 ",
        "Partner Deals",
        "partner deals",
        "  PARTNER DEALS\t",
    ] {
        assert_eq!(
            schema.pipeline(value).map(|p| p.id.as_str()),
            Ok("87250318"),
            "{value:?}"
        );
    }
    assert_eq!(schema.pipeline("Sales Pipeline").map(|p| p.id.as_str()), Ok("default"));
}

#[test]
fn a_value_that_is_an_id_and_a_label_means_the_id() {
    let schema = schema();
    // "default" is the Sales Pipeline's id and the label of pipeline 87250319.
    assert_eq!(schema.pipeline("default").map(|p| p.id.as_str()), Ok("default"));
    assert_eq!(
        schema.pipeline("DEFAULT").map(|p| p.id.as_str()),
        Ok("87250319"),
        "not an id: a label"
    );
    // In Partner Deals, "161845226" is one stage's id and another's label.
    let partner = schema.pipeline("Partner Deals").unwrap();
    assert_eq!(
        partner.stage("161845226").map(|s| s.label.as_str()),
        Ok("Contract Sent")
    );
}

#[test]
fn a_stage_label_is_resolved_inside_its_pipeline() {
    let schema = schema();
    let sales = schema.pipeline("default").unwrap();
    let partner = schema.pipeline("Partner Deals").unwrap();
    assert_eq!(
        schema.stage(sales, "Qualified To Buy").map(|s| s.id.as_str()),
        Ok("qualifiedtobuy")
    );
    assert_eq!(
        schema.stage(partner, "qualified to buy ").map(|s| s.id.as_str()),
        Ok("161845224")
    );
    assert_eq!(sales.stage("closedwon").map(|s| s.id.as_str()), Ok("closedwon"));
    // Another pipeline's stage id is not a stage of this one.
    let err = partner.stage("qualifiedtobuy").unwrap_err();
    assert_eq!(err.what, LabelKind::Stage);
    assert_eq!(err.pipeline.as_deref(), Some("Partner Deals"));
}

#[test]
fn unknown_names_list_what_there_is() {
    let schema = schema();
    let err = schema.pipeline(" Enterprise ").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no deal pipeline has the id or label \"Enterprise\" (the portal's pipelines: \"Sales Pipeline\" (default), \
         \"Partner Deals\" (87250318), \"default\" (87250319))"
    );
    let sales = schema.pipeline("default").unwrap();
    let err = sales.stage("Qualified").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no stage of pipeline \"Sales Pipeline\" has the id or label \"Qualified\" (the stages of \"Sales Pipeline\": \
         \"Appointment Scheduled\" (appointmentscheduled), \"Qualified To Buy\" (qualifiedtobuy), \"Contract Sent\" \
         (contractsent), \"Closed Won\" (closedwon), \"Closed Lost\" (closedlost))"
    );
    assert!(
        sales.stage("Presentation Scheduled").is_err(),
        "archived stages are not offered"
    );
}

#[test]
fn a_label_several_share_is_ambiguous_and_asks_for_the_id() {
    let stage = |id: &str, label: &str| Stage {
        id: id.to_owned(),
        label: label.to_owned(),
        is_closed: None,
        probability: None,
    };
    let pipeline = Pipeline {
        id: "p".to_owned(),
        label: "P".to_owned(),
        display_order: None,
        stages: vec![stage("1", "Won"), stage("2", "won ")],
    };
    let err = pipeline.stage("Won").unwrap_err();
    assert!(err.ambiguous);
    assert!(
        err.to_string()
            .starts_with("the label \"Won\" names several of the stages of \"P\"; use the id"),
        "{err}"
    );
    assert_eq!(pipeline.stage("2").map(|s| s.id.as_str()), Ok("2"));
}

#[test]
fn the_default_pipeline_is_default_else_the_first_by_display_order() {
    let schema = schema();
    assert_eq!(schema.default_pipeline().map(|p| p.id.as_str()), Some("default"));
    let pipeline = |id: &str, label: &str, order: Option<i64>| Pipeline {
        id: id.to_owned(),
        label: label.to_owned(),
        display_order: order,
        stages: vec![],
    };
    let others = PortalSchema::new(
        vec![
            pipeline("3", "Zeta", Some(1)),
            pipeline("1", "Unordered", None),
            pipeline("2", "Alpha", Some(1)),
        ],
        vec![],
    );
    assert_eq!(
        others.default_pipeline().map(|p| p.id.as_str()),
        Some("2"),
        "ties by label"
    );
    assert_eq!(PortalSchema::default().default_pipeline(), None);
}

#[test]
fn an_option_value_passes_and_a_label_becomes_its_value() {
    let dealtype = property("dealtype");
    for (given, value) in [
        ("newbusiness", "newbusiness"),
        (" existingbusiness ", "existingbusiness"),
        ("New Business", "newbusiness"),
        ("new business", "newbusiness"),
        ("  EXISTING BUSINESS ", "existingbusiness"),
    ] {
        assert_eq!(dealtype.option_value(given), Ok(value), "{given:?}");
    }
    assert_eq!(
        property("products_of_interest").option_value("Service Hub"),
        Ok("service_hub"),
        "hidden"
    );
}

#[test]
fn an_unknown_option_names_the_property_and_lists_its_options() {
    let err = property("dealtype").option_value(" Upsell ").unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"Upsell\" is neither the value nor the label of an option of dealtype (options: \"New Business\" \
         (newbusiness), \"Existing Business\" (existingbusiness))"
    );
    assert!(!err.ambiguous);
}

#[test]
fn long_lists_are_cut_and_say_how_many_more() {
    let options = (1..=45)
        .map(|i| PropertyOption {
            label: format!("Option {i}"),
            value: format!("o{i}"),
            hidden: false,
        })
        .collect();
    let def = PropertyDef {
        options,
        ..property("dealtype")
    };
    let text = def.option_value("Option 99").unwrap_err().to_string();
    assert!(text.contains("\"Option 20\" (o20), and 25 more)"), "{text}");
    assert!(!text.contains("Option 21"), "{text}");
}

#[test]
fn a_label_of_several_options_is_ambiguous_but_one_option_listed_twice_is_not() {
    let option = |label: &str, value: &str| PropertyOption {
        label: label.to_owned(),
        value: value.to_owned(),
        hidden: false,
    };
    let def = PropertyDef {
        options: vec![
            option("Web", "web"),
            option("web", "website"),
            option("Mail", "mail"),
            option("MAIL", "mail"),
        ],
        ..property("dealtype")
    };
    let err = def.option_value("WEB").unwrap_err();
    assert!(err.ambiguous);
    assert!(
        err.to_string().contains("is the label of several options of dealtype"),
        "{err}"
    );
    assert_eq!(def.option_value("mail"), Ok("mail"));
    assert_eq!(def.option_value("Mail "), Ok("mail"));
}

#[test]
fn requests_go_to_the_route_api_s_paths_without_a_body() {
    for (api, pipelines, properties) in [
        (HubSpotApi::V1, "/crm/v3/pipelines/deals", "/crm/v3/properties/contacts"),
        (HubSpotApi::V3, "/crm/v3/pipelines/deals", "/crm/v3/properties/contacts"),
        (
            HubSpotApi::V2026_03,
            "/crm/pipelines/2026-03/deals",
            "/crm/properties/2026-03/contacts",
        ),
    ] {
        let request = pipelines_request(api);
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", pipelines),
            "{api}"
        );
        assert_eq!(request.body, Value::Null);
        assert_eq!(properties_request(api, ObjectType::Contact).path, properties, "{api}");
    }
    assert_eq!(
        properties_request(HubSpotApi::V3, ObjectType::Deal).path,
        "/crm/v3/properties/deals"
    );
}

// ---- the cache --------------------------------------------------------------------------------

struct Token;

#[async_trait]
impl AuthSource for Token {
    async fn hubspot_auth(&self, _refresh: bool) -> Result<HubSpotAuth, String> {
        Ok(HubSpotAuth::AccessToken(SecretString::from(
            "portal-test-token".to_owned(),
        )))
    }
}

struct NoCredential;

#[async_trait]
impl AuthSource for NoCredential {
    async fn hubspot_auth(&self, _refresh: bool) -> Result<HubSpotAuth, String> {
        Err("the secret holds no HubSpot credential".to_owned())
    }
}

fn deals_with_schema() -> MemoryDeals {
    let deals = MemoryDeals::new();
    deals.set_schema(schema());
    deals
}

fn config() -> PortalConfig {
    PortalConfig {
        ttl: Duration::from_secs(600),
        reread_interval: Duration::from_secs(30),
        retry_after_failure: Duration::from_secs(60),
        read_timeout: Duration::from_secs(2),
    }
}

fn unavailable(marker: &str) -> HubSpotError {
    HubSpotError::Unavailable {
        status: Some(500),
        message: format!("HTTP 500 Internal Server Error: {marker}"),
    }
}

/// Warnings about failed schema reads that carry `marker`.
fn warnings(logs: &LogCapture, marker: &str) -> usize {
    logs.text()
        .lines()
        .filter(|l| l.contains("\"WARN\"") && l.contains("could not be read") && l.contains(marker))
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_schema_is_read_once_and_kept_for_the_ttl() {
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    assert_eq!(portal.status(HubSpotApi::V3).await, SchemaStatus::NotRead);
    let first = portal.schema(HubSpotApi::V3, &deals, &Token, None).await.unwrap();
    assert_eq!(deals.schema_reads(), 2, "pipelines and deal properties");
    assert_eq!(first.pipelines().len(), 3);
    for _ in 0..5 {
        let again = portal.schema(HubSpotApi::V1, &deals, &Token, None).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "v1 and v3 share the schema read from the v3 paths"
        );
    }
    assert_eq!(deals.schema_reads(), 2);
    portal.schema(HubSpotApi::V2026_03, &deals, &Token, None).await.unwrap();
    assert_eq!(deals.schema_reads(), 4, "2026-03 routes read the date-versioned paths");
    tokio::time::advance(Duration::from_secs(599)).await;
    portal.schema(HubSpotApi::V3, &deals, &Token, None).await.unwrap();
    assert_eq!(deals.schema_reads(), 4);
    tokio::time::advance(Duration::from_secs(2)).await;
    let fresh = portal.schema(HubSpotApi::V3, &deals, &Token, None).await.unwrap();
    assert_eq!(deals.schema_reads(), 6, "read again after the TTL");
    assert!(!Arc::ptr_eq(&first, &fresh));
    assert_eq!(portal.status(HubSpotApi::V3).await, SchemaStatus::Read);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_uses_make_one_read() {
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    let read = || portal.schema(HubSpotApi::V3, &deals, &Token, None);
    let (a, b, c, d, e) = tokio::join!(read(), read(), read(), read(), read());
    assert!([a, b, c, d, e].iter().all(Option::is_some));
    assert_eq!(deals.schema_reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_gives_no_schema_warns_once_and_is_tried_again_after_the_back_off() {
    let logs = LogCapture::start();
    let marker = "portal-unit-500-a1";
    let deals = deals_with_schema();
    deals.fail_next("pipelines", unavailable(marker));
    let portal = Portal::new(config());
    for _ in 0..5 {
        assert!(portal.schema(HubSpotApi::V3, &deals, &Token, None).await.is_none());
    }
    assert_eq!(deals.schema_reads(), 2, "no read within the back-off");
    assert_eq!(warnings(&logs, marker), 1, "{}", logs.text());
    assert!(matches!(portal.status(HubSpotApi::V3).await, SchemaStatus::Unavailable(why) if why.contains(marker)));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(
        portal.schema(HubSpotApi::V3, &deals, &Token, None).await.is_some(),
        "the failure was queued once"
    );
    assert_eq!(deals.schema_reads(), 4);
}

#[tokio::test(start_paused = true)]
async fn failures_after_the_first_warn_no_more_until_a_read_succeeds() {
    let logs = LogCapture::start();
    let marker = "portal-unit-500-b2";
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    for _ in 0..3 {
        deals.fail_next("pipelines", unavailable(marker));
        assert!(portal.schema(HubSpotApi::V3, &deals, &Token, None).await.is_none());
        tokio::time::advance(Duration::from_secs(61)).await;
    }
    assert_eq!(deals.schema_reads(), 6, "one read per back-off period");
    assert_eq!(warnings(&logs, marker), 1, "{}", logs.text());
    assert!(portal.schema(HubSpotApi::V3, &deals, &Token, None).await.is_some());
    deals.fail_next("properties", unavailable(marker));
    tokio::time::advance(Duration::from_secs(601)).await;
    let stale = portal.schema(HubSpotApi::V3, &deals, &Token, None).await;
    assert!(stale.is_some(), "a failed re-read after the TTL keeps the older schema");
    assert_eq!(warnings(&logs, marker), 2, "a new run of failures warns again");
}

#[tokio::test(start_paused = true)]
async fn missing_scopes_are_named_in_the_one_warning() {
    let logs = LogCapture::start();
    let deals = deals_with_schema();
    let scope = "crm.schemas.deals.read-unit-c3";
    deals.fail_next(
        "properties",
        HubSpotError::MissingScopes {
            status: 403,
            scopes: vec![scope.to_owned()],
            body: HubSpotErrorBody::default(),
        },
    );
    let portal = Portal::new(config());
    assert!(
        portal
            .schema(HubSpotApi::V2026_03, &deals, &Token, None)
            .await
            .is_none()
    );
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains(scope))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("missing_scopes") && line.contains("crm.objects.deals.write"),
        "{line}"
    );
    assert_eq!(warnings(&logs, scope), 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_credential_there_is_no_schema_and_the_status_says_why() {
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    assert!(
        portal
            .schema(HubSpotApi::V1, &deals, &NoCredential, None)
            .await
            .is_none()
    );
    assert_eq!(deals.schema_reads(), 0, "nothing was asked of HubSpot");
    match portal.status(HubSpotApi::V3).await {
        SchemaStatus::Unavailable(why) => assert!(why.contains("no HubSpot credential"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_portal_without_a_schema_configured_answers_like_a_404_and_values_pass() {
    let deals = MemoryDeals::new();
    let portal = Portal::new(config());
    assert!(portal.schema(HubSpotApi::V3, &deals, &Token, None).await.is_none());
    match portal.status(HubSpotApi::V3).await {
        SchemaStatus::Unavailable(why) => assert!(why.contains("404"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn no_read_is_tried_when_the_deadline_leaves_too_little_time() {
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    let deadline = SystemTime::now() + Duration::from_millis(300); // a quarter is 75 ms
    assert!(
        portal
            .schema(HubSpotApi::V3, &deals, &Token, Some(deadline))
            .await
            .is_none()
    );
    assert_eq!(deals.schema_reads(), 0);
    assert_eq!(
        portal.status(HubSpotApi::V3).await,
        SchemaStatus::NotRead,
        "not a failure: tried later"
    );
    let deadline = SystemTime::now() + Duration::from_secs(3);
    assert!(
        portal
            .schema(HubSpotApi::V3, &deals, &Token, Some(deadline))
            .await
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn a_re_read_happens_at_most_once_per_interval() {
    let deals = deals_with_schema();
    let portal = Portal::new(config());
    let first = portal.schema(HubSpotApi::V3, &deals, &Token, None).await.unwrap();
    assert!(
        portal
            .reread(HubSpotApi::V3, &deals, &Token, None, &first)
            .await
            .is_none(),
        "just read"
    );
    assert_eq!(deals.schema_reads(), 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    let second = portal
        .reread(HubSpotApi::V3, &deals, &Token, None, &first)
        .await
        .unwrap();
    assert_eq!(deals.schema_reads(), 4);
    // Another delivery that still holds the first schema gets the second without a read.
    let again = portal
        .reread(HubSpotApi::V3, &deals, &Token, None, &first)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&second, &again));
    assert!(
        portal
            .reread(HubSpotApi::V3, &deals, &Token, None, &second)
            .await
            .is_none()
    );
    assert_eq!(deals.schema_reads(), 4);
}
