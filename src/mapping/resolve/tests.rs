//! Resolution of mapped drafts against a portal's schema (tests/fixtures/portal): pipelines and stages
//! by label, option labels, multi-selects, boolean checkboxes, schema-driven conversions, and each kind
//! of unknown name, with the problems it gives.

use serde_json::{Value, json};

use super::*;
use crate::domain::Submission;
use crate::hubspot::portal::{parse_pipelines, parse_properties};
use crate::mapping::Mapping;

const PIPELINES: &str = include_str!("../../../tests/fixtures/portal/pipelines.json");
const PROPERTIES: &str = include_str!("../../../tests/fixtures/portal/deal-properties.json");

const MAPPING: &str = r#"
version: 1
routes:
  r:
    source: json
    signature: none
    deal:
      pipeline: "{{ fields.pipeline }}"
      dealstage: "{{ fields.stage }}"
      properties:
        dealname: "{{ fields.name }}"
        amount: "{{ fields.amount }}"
        seats: { from: "{{ fields.seats }}", type: number }
        closedate: "{{ fields.close }}"
        contract_start: "{{ fields.start }}"
        dealtype: "{{ fields.type }}"
        products_of_interest: "{{ fields.products }}"
        is_priority: "{{ fields.priority }}"
        is_priority_typed: { from: "{{ fields.priority_typed }}", type: bool }
        not_in_the_portal: "{{ fields.other }}"
"#;

fn schema() -> PortalSchema {
    let schema = PortalSchema::new(
        parse_pipelines(PIPELINES.as_bytes()).unwrap(),
        parse_properties(PROPERTIES.as_bytes()).unwrap(),
    );
    // A typed bool property that is a booleancheckbox in HubSpot.
    let mut typed = schema.property(ObjectType::Deal, "is_priority").unwrap().clone();
    typed.name = "is_priority_typed".to_owned();
    let mut properties = schema.properties(ObjectType::Deal).unwrap().to_vec();
    properties.push(typed);
    schema.with_properties(ObjectType::Deal, properties)
}

/// The route's draft for `fields` (it must map), resolved against the test portal.
fn resolved(fields: Value) -> Result<DealDraft, Vec<Problem>> {
    let mapping = Mapping::from_yaml(MAPPING, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
    let route = mapping.route("r").unwrap();
    let submission = Submission {
        source: "json".to_owned(),
        id: None,
        submitted_at: None,
        event_type: None,
        received_at: "2026-11-25T10:00:00.000Z".to_owned(),
        fields: fields.as_object().cloned().unwrap_or_default().into(),
        raw: fields.into(),
    };
    let draft = route
        .map(&submission)
        .unwrap_or_else(|p| panic!("the test fields must map: {p:?}"));
    resolve(draft, &schema())
}

fn stage_of(fields: Value) -> (Option<String>, String) {
    let draft = resolved(fields).unwrap_or_else(|p| panic!("{p:?}"));
    (draft.pipeline, draft.dealstage)
}

fn value_of(fields: Value, name: &str) -> Option<PropValue> {
    let draft = resolved(fields).unwrap_or_else(|p| panic!("{p:?}"));
    draft.properties.into_iter().find(|p| p.name == name).map(|p| p.value)
}

fn problems(fields: Value) -> Vec<Problem> {
    resolved(fields).expect_err("must not resolve")
}

fn text(s: &str) -> Option<PropValue> {
    Some(PropValue::Text(s.to_owned()))
}

fn some(pipeline: &str, stage: &str) -> (Option<String>, String) {
    (Some(pipeline.to_owned()), stage.to_owned())
}

/// Pipelines and stages: by id or label, the stage inside its pipeline, the default pipeline.
mod stages {
    use super::*;

    #[test]
    fn one_stage_label_resolves_to_a_different_id_in_each_pipeline() {
        let cases = [
            ("Sales Pipeline", "Qualified To Buy", some("default", "qualifiedtobuy")),
            ("Partner Deals", "Qualified To Buy", some("87250318", "161845224")),
            (" partner deals ", "qualified to buy", some("87250318", "161845224")),
            ("87250318", "161845224", some("87250318", "161845224")),
            ("default", "closedwon", some("default", "closedwon")),
            ("DEFAULT", "New", some("87250319", "161845300")),
            ("Partner Deals", "161845226", some("87250318", "161845226")),
        ];
        for (pipeline, stage, expected) in cases {
            assert_eq!(
                stage_of(json!({"pipeline": pipeline, "stage": stage})),
                expected,
                "{pipeline:?} / {stage:?}"
            );
        }
    }

    #[test]
    fn without_a_pipeline_the_stage_is_looked_up_in_the_default_pipeline() {
        // A label: resolved in "default", which the draft then names.
        assert_eq!(stage_of(json!({"stage": "Closed Won"})), some("default", "closedwon"));
        // An id: untouched, and the draft still names no pipeline.
        assert_eq!(stage_of(json!({"stage": "closedwon"})), (None, "closedwon".to_owned()));
        // Another pipeline's stage id passes untouched: HubSpot decides.
        assert_eq!(stage_of(json!({"stage": "161845227"})), (None, "161845227".to_owned()));
    }

    #[test]
    fn an_unknown_pipeline_is_named_and_its_stage_not_looked_up() {
        let found = problems(json!({"pipeline": "Enterprise", "stage": "Nope"}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field.as_deref(), Some("pipeline"));
        assert_eq!(found[0].code, UNKNOWN_PIPELINE);
        assert!(
            found[0].message.contains("\"Enterprise\"") && found[0].message.contains("\"Partner Deals\" (87250318)"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn an_unknown_stage_lists_the_stages_of_the_deal_s_pipeline() {
        for (fields, pipeline) in [
            (
                json!({"pipeline": "Partner Deals", "stage": "Negotiation"}),
                "Partner Deals",
            ),
            // Another pipeline's stage id, with a pipeline named: not a stage of it.
            (
                json!({"pipeline": "Partner Deals", "stage": "qualifiedtobuy"}),
                "Partner Deals",
            ),
            (json!({"stage": "Negotiation"}), "Sales Pipeline"),
        ] {
            let found = problems(fields.clone());
            assert_eq!(found.len(), 1, "{fields}: {found:?}");
            assert_eq!(found[0].field.as_deref(), Some("dealstage"));
            assert_eq!(found[0].code, UNKNOWN_STAGE);
            assert!(
                found[0].message.contains(&format!("the stages of \"{pipeline}\"")),
                "{fields}: {}",
                found[0].message
            );
        }
    }
}

/// Enumerations: option values pass, labels become values, multi-selects item by item.
mod options {
    use super::*;

    #[test]
    fn an_option_label_becomes_its_value_and_a_value_passes() {
        for (given, sent) in [
            ("New Business", "newbusiness"),
            ("  existing business ", "existingbusiness"),
            ("newbusiness", "newbusiness"),
        ] {
            assert_eq!(
                value_of(json!({"stage": "closedwon", "type": given}), "dealtype"),
                text(sent),
                "{given:?}"
            );
        }
    }

    #[test]
    fn multi_select_items_are_resolved_one_by_one_and_duplicates_dropped() {
        let cases = [
            (json!("CRM Suite;sales_hub"), "crm;sales_hub"),
            (json!(["Sales Hub", " crm suite ", "crm"]), "sales_hub;crm"),
            (json!("Service Hub"), "service_hub"),
            (json!("legacy"), "legacy"),
        ];
        for (given, sent) in cases {
            assert_eq!(
                value_of(json!({"stage": "closedwon", "products": given}), "products_of_interest"),
                text(sent),
                "{given}"
            );
        }
    }

    #[test]
    fn every_item_that_is_not_an_option_is_named_with_the_options() {
        let found = problems(json!({"stage": "closedwon", "products": ["Sales Hub", "Marketing Hub", "CMS"]}));
        let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(found.len(), 2, "{messages:?}");
        assert!(found.iter().all(|p| p.code == INVALID_OPTION));
        assert!(
            found
                .iter()
                .all(|p| p.field.as_deref() == Some("properties.products_of_interest"))
        );
        assert!(
            messages[0].starts_with("\"Marketing Hub\" is neither"),
            "{}",
            messages[0]
        );
        assert!(messages[1].starts_with("\"CMS\" is neither"), "{}", messages[1]);
        assert!(
            messages[0].contains("\"CRM Suite\" (crm), \"Sales Hub\" (sales_hub)"),
            "{}",
            messages[0]
        );
    }

    #[test]
    fn an_unknown_single_option_is_an_invalid_option_of_the_property() {
        let found = problems(json!({"stage": "closedwon", "type": "Upsell"}));
        assert_eq!(
            found,
            vec![Problem::at(
                "properties.dealtype",
                INVALID_OPTION,
                "\"Upsell\" is neither the value nor the label of an option of dealtype (options: \"New Business\" \
                 (newbusiness), \"Existing Business\" (existingbusiness))"
            )]
        );
    }

    #[test]
    fn a_boolean_checkbox_takes_its_labels_and_the_mapping_s_boolean_words() {
        for (given, sent) in [
            ("Yes", "true"),
            ("no", "false"),
            ("on", "true"),
            ("0", "false"),
            ("true", "true"),
        ] {
            assert_eq!(
                value_of(json!({"stage": "closedwon", "priority": given}), "is_priority"),
                text(sent),
                "{given:?}"
            );
        }
        let found = problems(json!({"stage": "closedwon", "priority": "maybe"}));
        assert_eq!(found[0].code, INVALID_OPTION);
        // A `type: bool` value is an option value already: left as the mapping made it.
        assert_eq!(
            value_of(
                json!({"stage": "closedwon", "priority_typed": "yes"}),
                "is_priority_typed"
            ),
            Some(PropValue::Bool(true))
        );
    }
}

/// Where the mapping leaves a value as text, the property's type in HubSpot picks the conversion.
mod conversions {
    use super::*;

    #[test]
    fn text_values_of_typed_properties_are_converted_by_the_mapping_s_rules() {
        let fields = json!({
            "stage": "closedwon",
            "amount": "12,500.50",
            "close": "2026-12-01T10:30:00+01:00",
            "start": "2026-12-01",
            "name": "12",
            "seats": "7"
        });
        let draft = resolved(fields).unwrap();
        let value = |name: &str| {
            draft
                .properties
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.clone())
        };
        assert_eq!(value("amount"), Some(PropValue::Number("12500.5".to_owned())));
        assert_eq!(value("closedate"), Some(PropValue::DateTime(1_796_117_400_000)));
        assert_eq!(value("contract_start"), Some(PropValue::Date(1_796_083_200_000)));
        assert_eq!(value("dealname"), text("12"), "a string property stays text");
        assert_eq!(
            value("seats"),
            Some(PropValue::Number("7".to_owned())),
            "typed by the mapping"
        );
    }

    #[test]
    fn a_value_that_does_not_convert_is_the_mapping_s_error_naming_hubspot_s_type() {
        let found = problems(json!({"stage": "closedwon", "amount": "lots", "start": "someday"}));
        let codes: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.field.as_deref().unwrap_or_default(), p.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("properties.amount", "invalid_number"),
                ("properties.contract_start", "invalid_date")
            ]
        );
        assert!(
            found[0].message.contains("amount is a number property in HubSpot"),
            "{}",
            found[0].message
        );
    }
}

#[test]
fn properties_the_portal_does_not_know_pass_untouched() {
    assert_eq!(
        value_of(
            json!({"stage": "closedwon", "other": "New Business"}),
            "not_in_the_portal"
        ),
        text("New Business")
    );
}

#[test]
fn every_problem_of_a_draft_is_reported_together() {
    let found = problems(json!({"pipeline": "Nope", "stage": "x", "type": "Upsell", "amount": "n/a"}));
    let fields: Vec<&str> = found.iter().filter_map(|p| p.field.as_deref()).collect();
    assert_eq!(fields, ["pipeline", "properties.amount", "properties.dealtype"]);
}

#[test]
fn an_empty_portal_changes_nothing() {
    let mapping = Mapping::from_yaml(MAPPING, "m.yaml").unwrap();
    let route = mapping.route("r").unwrap();
    let fields = json!({"pipeline": "Sales", "stage": "Won", "type": "New Business", "amount": "1,5"});
    let submission = Submission {
        source: "json".to_owned(),
        id: None,
        submitted_at: None,
        event_type: None,
        received_at: "2026-11-25T10:00:00.000Z".to_owned(),
        fields: fields.as_object().cloned().unwrap_or_default().into(),
        raw: fields.into(),
    };
    let draft = route.map(&submission).unwrap();
    assert_eq!(resolve(draft.clone(), &PortalSchema::default()), Ok(draft));
}
