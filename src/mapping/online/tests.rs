use super::*;
use crate::hubspot::portal::{parse_pipelines, parse_properties};

const PIPELINES: &str = include_str!("../../../tests/fixtures/portal/pipelines.json");
const DEALS: &str = include_str!("../../../tests/fixtures/portal/deal-properties.json");
const CONTACTS: &str = include_str!("../../../tests/fixtures/portal/contact-properties.json");
const COMPANIES: &str = include_str!("../../../tests/fixtures/portal/company-properties.json");

fn schema() -> PortalSchema {
    PortalSchema::new(
        parse_pipelines(PIPELINES.as_bytes()).unwrap(),
        parse_properties(DEALS.as_bytes()).unwrap(),
    )
    .with_properties(ObjectType::Contact, parse_properties(CONTACTS.as_bytes()).unwrap())
    .with_properties(ObjectType::Company, parse_properties(COMPANIES.as_bytes()).unwrap())
}

/// A mapping of one 2026-03 route `r` whose `deal:` block is `deal` (indented under `deal:`, from line 7).
fn mapping(deal: &str) -> String {
    let mut text =
        "version: 1\nroutes:\n  r:\n    source: json\n    hubspot: { api: \"2026-03\" }\n    deal:\n".to_owned();
    for line in deal.lines() {
        text.push_str("      ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn findings(text: &str) -> Vec<String> {
    let schemas = HashMap::from([(HubSpotApi::V2026_03, schema())]);
    check_online(text, &schemas).iter().map(ToString::to_string).collect()
}

/// Each case: what it is, the `deal:` block, and the one finding expected (a fragment of it), or none.
fn assert_cases(cases: &[(&str, &str, Option<&str>)]) {
    for (what, deal, want) in cases {
        let got = findings(&mapping(deal));
        match want {
            None => assert!(got.is_empty(), "{what}: expected no finding, got {got:#?}"),
            Some(want) => {
                assert_eq!(got.len(), 1, "{what}: expected one finding with {want:?}, got {got:#?}");
                assert!(got[0].contains(want), "{what}: expected {want:?} in {:?}", got[0]);
            }
        }
    }
}

const STAGE: &str = "pipeline: default\ndealstage: appointmentscheduled\n";

mod properties {
    use super::*;

    #[test]
    fn unknown_properties_are_errors_at_their_key_with_a_near_name() {
        let text = mapping(&format!(
            "{STAGE}properties:\n  dealname: Acme\n  amout: \"{{{{ fields.a }}}}\"\n"
        ));
        assert_eq!(
            findings(&text),
            [
                "11:9: error: route r, properties.amout: the portal has no deal property amout (did you mean amount, \
                 \"Amount\"?); HubSpot rejects unknown properties"
            ]
        );
    }

    #[test]
    fn variants() {
        assert_cases(&[
            (
                "a known property",
                &format!("{STAGE}properties: {{ dealname: Acme }}"),
                None,
            ),
            (
                "a name nothing is near says sensitive properties are not listed",
                &format!("{STAGE}properties: {{ xyzzy_plugh_count: 1 }}"),
                Some("properties holding sensitive data are not listed"),
            ),
            (
                "a calculated, read-only property",
                &format!("{STAGE}properties: {{ hs_is_closed: \"true\" }}"),
                Some("deal property hs_is_closed is calculated by HubSpot: HubSpot refuses or ignores"),
            ),
            (
                "a template for an unknown property is still an unknown property",
                &format!("{STAGE}properties: {{ dealnme: \"{{{{ fields.n }}}}\" }}"),
                Some("did you mean dealname"),
            ),
            (
                "a contact property that is read-only (not calculated)",
                &format!(
                    "{STAGE}associations:\n  contacts: {{ email: a@example.com, properties: {{ hs_object_id: 5 }} }}"
                ),
                Some("associations.contacts[0].properties.hs_object_id: contact property hs_object_id is read-only"),
            ),
            (
                "an unknown contact property",
                &format!(
                    "{STAGE}associations:\n  contacts: {{ email: a@example.com, properties: {{ frstname: Ada }} }}"
                ),
                Some("the portal has no contact property frstname (did you mean firstname"),
            ),
            (
                "a calculated company property",
                &format!(
                    "{STAGE}associations:\n  companies: {{ domain: acme.example, properties: {{ hs_num_open_deals: 1 }} }}"
                ),
                Some("company property hs_num_open_deals is calculated"),
            ),
            (
                "known contact and company properties",
                &format!(
                    "{STAGE}associations:\n  contacts: {{ email: a@example.com, properties: {{ firstname: Ada }} }}\n  \
                     companies: {{ domain: acme.example, properties: {{ name: Acme }} }}"
                ),
                None,
            ),
        ]);
    }
}

mod options {
    use super::*;

    #[test]
    fn variants() {
        assert_cases(&[
            (
                "an option value",
                &format!("{STAGE}properties: {{ dealtype: newbusiness }}"),
                None,
            ),
            (
                "an option label on a deal property is resolved at runtime",
                &format!("{STAGE}properties: {{ dealtype: new business }}"),
                None,
            ),
            (
                "neither value nor label, with the options listed",
                &format!("{STAGE}properties: {{ dealtype: renewal }}"),
                Some(
                    "properties.dealtype: \"renewal\" is neither the value nor the label of an option of dealtype \
                     (options: \"New Business\" (newbusiness), \"Existing Business\" (existingbusiness))",
                ),
            ),
            (
                "a multi-select item by item: labels and values fine",
                &format!("{STAGE}properties: {{ products_of_interest: \"crm suite; sales_hub\" }}"),
                None,
            ),
            (
                "a multi-select with one bad item names that item",
                &format!("{STAGE}properties: {{ products_of_interest: \"crm;marketing_hub\" }}"),
                Some("\"marketing_hub\" is neither the value nor the label of an option of products_of_interest"),
            ),
            (
                "a map target that is not an option, at its key",
                &format!(
                    "{STAGE}properties:\n  lead_source:\n    from: \"{{{{ fields.src }}}}\"\n    map: {{ web: website, fair: trade_show }}"
                ),
                Some("12:32: error: route r, properties.lead_source: \"trade_show\" is neither"),
            ),
            (
                "a default that is not an option, at the default",
                &format!("{STAGE}properties:\n  lead_source: {{ from: \"{{{{ fields.src }}}}\", default: cold_call }}"),
                Some("10:59: error: route r, properties.lead_source: \"cold_call\" is neither"),
            ),
            (
                "a template alone is not checked",
                &format!("{STAGE}properties: {{ lead_source: \"{{{{ fields.src }}}}\" }}"),
                None,
            ),
            (
                "a boolean checkbox takes the mapping's boolean words",
                &format!("{STAGE}properties: {{ is_priority: \"yes\" }}"),
                None,
            ),
            (
                "a contact property's option label is not resolved: the value must be written",
                &format!(
                    "{STAGE}associations:\n  contacts: {{ email: a@example.com, properties: {{ lifecyclestage: Lead }} }}"
                ),
                Some(
                    "\"Lead\" is the label of option \"lead\" of contact property lifecyclestage; contact properties \
                     are sent as written, so write the option's value \"lead\"",
                ),
            ),
            (
                "a company option value",
                &format!(
                    "{STAGE}associations:\n  companies: {{ domain: a.example, properties: {{ industry: RETAIL }} }}"
                ),
                None,
            ),
        ]);
    }
}

mod pipelines_and_stages {
    use super::*;

    #[test]
    fn variants() {
        assert_cases(&[
            ("ids", "pipeline: \"87250318\"\ndealstage: \"161845224\"", None),
            ("labels", "pipeline: Partner Deals\ndealstage: qualified to buy", None),
            (
                "an unknown pipeline, with the pipelines listed",
                "pipeline: Partners\ndealstage: \"161845224\"",
                Some("7:17: error: route r, pipeline: no deal pipeline has the id or label \"Partners\""),
            ),
            (
                "a stage of another pipeline: outside its pipeline",
                "pipeline: Partner Deals\ndealstage: appointmentscheduled",
                Some(
                    "8:18: error: route r, dealstage: no stage of pipeline \"Partner Deals\" has the id or label \
                     \"appointmentscheduled\"",
                ),
            ),
            (
                "without pipeline: a stage label of the default pipeline",
                "dealstage: Contract Sent",
                None,
            ),
            (
                "without pipeline: another pipeline's stage id is a warning",
                "dealstage: \"161845227\"",
                Some(
                    "warning: route r, dealstage: stage \"161845227\" belongs to pipeline \"Partner Deals\", not to \
                     the default pipeline \"Sales Pipeline\"",
                ),
            ),
            (
                "a stage map target outside the literal pipeline",
                "pipeline: default\ndealstage: { from: \"{{ fields.s }}\", map: { won: closedwon, part: \"161845227\" } }",
                Some("no stage of pipeline \"Sales Pipeline\" has the id or label \"161845227\""),
            ),
            (
                "a templated pipeline: the stage must be some pipeline's",
                "pipeline: \"{{ fields.p }}\"\ndealstage: Negotiation",
                Some("no stage of any pipeline has the id or label \"Negotiation\""),
            ),
            (
                "a pipeline map target that does not exist",
                "pipeline: { from: \"{{ fields.p }}\", map: { a: default, b: Resellers } }\ndealstage: closedwon",
                Some("no deal pipeline has the id or label \"Resellers\""),
            ),
        ]);
    }
}

mod types {
    use super::*;

    #[test]
    fn variants() {
        let typed = |property: &str, kind: &str| {
            format!("{STAGE}properties:\n  {property}: {{ from: \"{{{{ fields.x }}}}\", type: {kind} }}")
        };
        assert_cases(&[
            ("number on number", &typed("amount", "number"), None),
            ("date on date", &typed("contract_start", "date"), None),
            ("date on datetime", &typed("closedate", "date"), None),
            ("datetime on datetime", &typed("closedate", "datetime"), None),
            ("bool on a boolean checkbox", &typed("is_priority", "bool"), None),
            ("text on anything", &typed("amount", "text"), None),
            (
                "number on an enumeration",
                &typed("dealtype", "number"),
                Some("`type: number` contradicts the property: dealtype has type enumeration in the portal"),
            ),
            (
                "datetime on date",
                &typed("contract_start", "datetime"),
                Some("HubSpot takes only midnight UTC on a date property: use `type: date`"),
            ),
            (
                "bool on number",
                &typed("amount", "bool"),
                Some(
                    "10:25: error: route r, properties.amount: `type: bool` contradicts the property: amount has \
                     type number in the portal; use `type: number` or none",
                ),
            ),
            (
                "number on a string is a warning",
                &typed("dealname", "number"),
                Some("warning: route r, properties.dealname: `type: number` on dealname, a string property"),
            ),
            (
                "an untyped constant the property's type cannot take",
                &format!("{STAGE}properties: {{ amount: soon }}"),
                Some("amount is a number property in the portal and the mapping gives no `type:`"),
            ),
            (
                "an untyped constant it can take",
                &format!("{STAGE}properties: {{ amount: \"12,500.50\" }}"),
                None,
            ),
        ]);
    }
}

mod upsert_by {
    use super::*;

    fn with_upsert(name: &str) -> String {
        mapping(STAGE).replace(
            "hubspot: { api: \"2026-03\" }",
            &format!("hubspot: {{ api: \"2026-03\", upsert_by: {name} }}"),
        )
    }

    #[test]
    fn variants() {
        assert!(findings(&with_upsert("webhook_event_id")).is_empty());
        assert_eq!(
            findings(&with_upsert("dealname")),
            [
                "5:43: error: route r, hubspot.upsert_by: deal property dealname does not have unique values in the \
              portal (hasUniqueValue is false), so HubSpot cannot upsert by it; create a property with unique \
              values (e.g. an event id)"
            ]
        );
        let unknown = findings(&with_upsert("webhook_event"));
        assert!(unknown[0].contains("did you mean webhook_event_id"), "{unknown:?}");
    }
}

#[test]
fn routes_are_checked_against_their_api_s_schema_and_v1_reads_v3() {
    let text = "version: 1\nroutes:\n  old:\n    source: json\n    deal: { pipeline: default, dealstage: nope }\n  \
                new:\n    source: json\n    hubspot: { api: \"2026-03\" }\n    deal: { pipeline: default, dealstage: nope }\n";
    let only_v3 = HashMap::from([(HubSpotApi::V3, schema())]);
    let got: Vec<String> = check_online(text, &only_v3).iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].starts_with("5:43: error: route old, dealstage:"), "{got:#?}");
    assert_eq!(
        schema_needs(text),
        SchemaNeeds {
            apis: vec![HubSpotApi::V3, HubSpotApi::V2026_03],
            contact_properties: false,
            company_properties: false
        }
    );
}

#[test]
fn contact_and_company_properties_are_needed_only_when_association_blocks_set_some() {
    let needs = schema_needs(&mapping(&format!(
        "{STAGE}associations:\n  contacts: {{ email: a@example.com, properties: {{ firstname: Ada }} }}\n  \
         companies: {{ domain: a.example }}"
    )));
    assert_eq!(needs.apis, [HubSpotApi::V2026_03]);
    assert!(needs.contact_properties && !needs.company_properties, "{needs:?}");
}
