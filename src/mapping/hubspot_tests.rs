//! `hubspot:` in the mapping (top level and route): the API, `upsert_by`, their errors with line and
//! column, and `check`'s warning about the APIs HubSpot stops supporting in September 2027.

use serde_json::json;

use super::Mapping;
use crate::domain::{PropValue, Submission};
use crate::hubspot::{HubSpotApi, HubSpotOptions};

fn text(top: &str, route: &str, properties: &str) -> String {
    format!(
        "version: 1\n{top}routes:\n  r:\n    source: json\n    signature: none\n{route}    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        dealname: n\n{properties}"
    )
}

fn load(text: &str) -> Mapping {
    Mapping::from_yaml(text, "m.yaml").unwrap_or_else(|e| panic!("must load:\n{e}\n{text}"))
}

fn errors(text: &str) -> Vec<String> {
    let err = Mapping::from_yaml(text, "m.yaml").expect_err("must not load");
    err.errors().map(|d| d.in_file(&err.origin).to_string()).collect()
}

fn options(mapping: &Mapping) -> HubSpotOptions {
    mapping.route("r").unwrap().hubspot().clone()
}

#[test]
fn v1_is_the_default_and_each_api_is_read_at_the_route_or_the_top() {
    assert_eq!(options(&load(&text("", "", ""))), HubSpotOptions::default());
    for api in HubSpotApi::ALL {
        let route = load(&text("", &format!("    hubspot: {{ api: \"{api}\" }}\n"), ""));
        assert_eq!(options(&route).api, api);
        let top = load(&text(&format!("hubspot:\n  api: \"{api}\"\n"), "", ""));
        assert_eq!(options(&top).api, api);
    }
    // Unquoted 2026-03 is a string in YAML 1.2 too.
    assert_eq!(
        options(&load(&text("", "    hubspot: { api: 2026-03 }\n", ""))).api,
        HubSpotApi::V2026_03
    );
    let both = load(&text(
        "hubspot: { api: v3 }\n",
        "    hubspot: { api: \"2026-03\" }\n",
        "",
    ));
    assert_eq!(options(&both).api, HubSpotApi::V2026_03, "the route wins");
}

#[test]
fn bad_hubspot_keys_are_errors_at_their_line_and_column() {
    let cases = [
        (
            text("", "    hubspot: { api: v2 }\n", ""),
            "m.yaml:6:21: error: route r, hubspot.api: unknown HubSpot API \"v2\"",
        ),
        (
            text("", "    hubspot: { api: 3 }\n", ""),
            "m.yaml:6:21: error: route r, hubspot.api: expected v1, v3",
        ),
        (
            text("", "    hubspot: { apii: v3 }\n", ""),
            "m.yaml:6:16: error: route r: unknown key `apii` in `hubspot` (did you mean `api`?",
        ),
        (
            text("", "    hubspot: v3\n", ""),
            "m.yaml:6:14: error: route r: `hubspot` must be a map",
        ),
        (
            text("hubspot: { api: v9 }\n", "", ""),
            "m.yaml:2:17: error: hubspot.api: unknown HubSpot API \"v9\"",
        ),
        (
            text("", "    hubspot: { api: v3, upsert_by: dealstage }\n", ""),
            "m.yaml:6:36: error: route r, hubspot.upsert_by: `dealstage` is not unique to a deal",
        ),
    ];
    for (text, want) in cases {
        let errors = errors(&text);
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "want {want}\ngot {errors:#?}\n{text}"
        );
    }
}

#[test]
fn upsert_by_needs_a_crm_api_and_a_mapped_property() {
    let v1 = errors(&text(
        "",
        "    hubspot: { upsert_by: webhook_event_id }\n",
        "        webhook_event_id: x\n",
    ));
    assert!(
        v1.iter()
            .any(|e| e.contains("hubspot.upsert_by: `upsert_by` needs `api: v3`")),
        "{v1:#?}"
    );
    let unmapped = errors(&text(
        "",
        "    hubspot: { api: \"2026-03\", upsert_by: webhook_event_id }\n",
        "",
    ));
    assert!(
        unmapped
            .iter()
            .any(|e| e.starts_with("m.yaml:6:43: error: route r, hubspot.upsert_by: `upsert_by: webhook_event_id` names a property the route does not map")),
        "{unmapped:#?}"
    );
    let literal = errors(&text(
        "",
        "    hubspot: { api: v3, upsert_by: webhook_event_id }\n",
        "        webhook_event_id: same-for-every-delivery\n",
    ));
    assert!(
        literal
            .iter()
            .any(|e| e.contains("hubspot.upsert_by: `upsert_by: webhook_event_id` names a literal property")),
        "{literal:#?}"
    );
    let mapped = load(&text(
        "hubspot: { api: \"2026-03\" }\n",
        "    hubspot: { upsert_by: webhook_event_id }\n",
        "        webhook_event_id: \"{{ submission.id }}\"\n",
    ));
    assert_eq!(
        options(&mapped),
        HubSpotOptions {
            api: HubSpotApi::V2026_03,
            upsert_by: Some("webhook_event_id".to_owned()),
        }
    );
}

#[test]
fn the_upsert_key_is_required_when_mapping() {
    let mapping = load(&text(
        "",
        "    hubspot: { api: v3, upsert_by: webhook_event_id }\n",
        "        webhook_event_id: \"{{ submission.id }}\"\n",
    ));
    let route = mapping.route("r").unwrap();
    let submission = |id: Option<&str>| Submission {
        source: "json".to_owned(),
        id: id.map(str::to_owned),
        submitted_at: None,
        event_type: None,
        received_at: "2026-11-29T10:00:00Z".to_owned(),
        fields: Default::default(),
        raw: json!({}).into(),
    };
    let draft = route.map(&submission(Some("evt_1"))).unwrap();
    assert!(
        draft
            .properties
            .iter()
            .any(|p| p.name == "webhook_event_id" && p.value == PropValue::Text("evt_1".to_owned()))
    );
    let problems = route.map(&submission(None)).unwrap_err();
    assert_eq!(
        problems[0].field.as_deref(),
        Some("properties.webhook_event_id"),
        "{problems:?}"
    );
    assert_eq!(problems[0].code, "required");
}

#[test]
fn check_warns_on_every_v1_or_v3_route_but_not_on_2026_03() {
    let default = load(&text("", "", ""));
    let warnings: Vec<String> = default.legacy_api_warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("route r, hubspot.api: uses HubSpot's v1 API (the default)"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("September 2027"), "{warnings:?}");
    let at = &default.legacy_api_warnings()[0];
    assert_eq!(
        (at.line, at.column),
        (Some(3), Some(3)),
        "the default is reported at the route's name"
    );
    let v3 = load(&text("", "    hubspot: { api: v3 }\n", ""));
    let said = &v3.legacy_api_warnings()[0];
    assert_eq!((said.line, said.column), (Some(6), Some(21)));
    assert!(said.message.starts_with("uses HubSpot's v3 API,"), "{}", said.message);
    assert!(
        load(&text("", "    hubspot: { api: \"2026-03\" }\n", ""))
            .legacy_api_warnings()
            .is_empty()
    );
    assert!(
        default.warnings().iter().all(|w| !w.message.contains("2027")),
        "not a load warning"
    );
}
