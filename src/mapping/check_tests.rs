//! What `check` catches at load that would fail every delivery (issue 15, item 3): unknown filters,
//! tests and methods (errors, at their line and column in the file), a misspelt default deal
//! property, a stage or pipeline written as a label, a `map:` without `default:` (warnings).

use super::*;

/// A one-route mapping whose deal has `deal` (indented under `deal:`).
fn with_deal(deal: &str) -> String {
    format!("version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    deal:\n{deal}")
}

/// Every diagnostic (errors and warnings) of `text`, as `check` prints them.
fn findings(text: &str) -> Vec<String> {
    let diagnostics = match Mapping::from_yaml(text, "m.yaml") {
        Ok(mapping) => mapping.warnings().to_vec(),
        Err(e) => e.diagnostics,
    };
    diagnostics
        .iter()
        .map(|d| d.in_file("m.yaml").to_string())
        // Every route here is unsigned on purpose.
        .filter(|d| !d.contains("accepts unsigned deliveries"))
        .collect()
}

/// The inputs, each at the name's own line and column in the file: a double-quoted scalar,
/// a single-quoted one, a block scalar, a `match:` (column counted in the file, not in `{{ … }}`).
#[test]
fn unknown_template_names_are_errors_at_their_place_in_the_file() {
    let cases = [
        (
            "      pipeline: default\n      dealstage: appointmentscheduled\n      properties:\n        \
             dealname: \"{{ fields.company | defualt('Website lead') }}\"\n",
            "m.yaml:10:40: error: route r, properties.dealname: invalid template: unknown filter `defualt` (did \
             you mean `default`?)",
        ),
        (
            "      pipeline: default\n      dealstage: appointmentscheduled\n      properties:\n        \
             description: '{{ fields.path.split(\"/\") | last }}'\n",
            "m.yaml:10:38: error: route r, properties.description: invalid template: unknown method `.split()`",
        ),
        (
            "      pipeline: default\n      dealstage: appointmentscheduled\n      properties:\n        \
             description: |\n          Form: {{ fields.form }}\n          {% if fields.x is defnied %}x{% endif %}\n",
            "m.yaml:12:29: error: route r, properties.description: invalid template: unknown test `defnied` (did \
             you mean `is defined`?)",
        ),
    ];
    for (deal, want) in cases {
        let got = findings(&with_deal(deal));
        assert!(got.iter().any(|f| f.starts_with(want)), "want {want}\n got {got:#?}");
    }
    let matched = "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    match: fields.plan | lowr == \
                   \"team\"\n    deal: { pipeline: default, dealstage: appointmentscheduled }\n";
    let got = findings(matched);
    assert!(
        got.iter().any(|f| f.starts_with(
            "m.yaml:6:26: error: route r, match: invalid `match` expression: unknown filter `lowr` (did you mean \
             `lower`?)"
        )),
        "{got:#?}"
    );
}

/// A template line the file holds only with escapes (`\"` in a double-quoted scalar) is found at its
/// node, with the position inside the template.
#[test]
fn a_template_with_escapes_is_reported_at_its_node_with_the_template_position() {
    let deal = "      dealstage: appointmentscheduled\n      properties:\n        dealname: \"{{ fields.a | \
                replace(\\\"x\\\", \\\"y\\\") | uppr }}\"\n";
    let got = findings(&with_deal(deal));
    assert!(
        got.iter().any(|f| f.starts_with(
            "m.yaml:9:19: error: route r, properties.dealname: invalid template: \
                                          unknown filter `uppr` (did you mean `upper`?) (template line 1, column 35)"
        )),
        "{got:#?}"
    );
}

/// Variants of a property name: a misspelt default property (the issue's `dealnmae`), another, a
/// custom property (not near any default: nothing said), a default property (nothing said).
#[test]
fn a_misspelt_default_deal_property_is_a_warning_with_the_default_name() {
    let deal = "      pipeline: default\n      dealstage: appointmentscheduled\n      properties:\n        dealnmae: \
                \"{{ fields.company }}\"\n        closdate: \"{{ fields.d }}\"\n        lead_source_detail: x\n        \
                amount: 1\n";
    let got = findings(&with_deal(deal));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with(
            "m.yaml:10:9: warning: route r, properties.dealnmae: `dealnmae` is not one of HubSpot's default deal \
             properties: did you mean `dealname`?"
        ),
        "{got:#?}"
    );
    assert!(got[0].contains("run `dealhook check --online`"), "{}", got[0]);
    assert!(got[1].contains("`closdate` is not one of HubSpot's default deal properties: did you mean `closedate`?"));
    assert!(
        Mapping::from_yaml(&with_deal(deal), "m.yaml").is_ok(),
        "a warning, not an error"
    );
}

/// Variants: a stage label (a default stage's: its id is named), a custom label, a pipeline label,
/// labels as `map:` targets and `default:`; ids (`default`, `qualifiedtobuy`, `161845224`) and
/// templates say nothing.
#[test]
fn a_stage_or_pipeline_written_as_a_label_is_a_warning_pointing_to_check_online() {
    let deal = "      pipeline: Sales Pipeline\n      dealstage: Qualified To Buy\n";
    let got = findings(&with_deal(deal));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with(
            "m.yaml:7:17: warning: route r, pipeline: \"Sales Pipeline\" looks like a label, not an id (in a new \
             portal's default pipeline its id is `default`)"
        ),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with(
            "m.yaml:8:18: warning: route r, dealstage: \"Qualified To Buy\" looks like a label, not an id (in a \
             new portal's default pipeline its id is `qualifiedtobuy`)"
        ),
        "{got:#?}"
    );
    for finding in &got {
        assert!(
            finding.contains("`dealhook check --online`") && finding.contains("sent as is"),
            "{finding}"
        );
    }
    let mapped = "      pipeline: \"87250318\"\n      dealstage:\n        from: \"{{ fields.plan }}\"\n        map: { \
                  team: Partner Demo, solo: \"161845224\" }\n        default: Inbound Lead\n";
    let got = findings(&with_deal(mapped));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].contains("\"Partner Demo\" looks like a label, not an id. dealhook"),
        "{got:#?}"
    );
    assert!(got[1].contains("\"Inbound Lead\" looks like a label"), "{got:#?}");
    for ids in [
        "      pipeline: default\n      dealstage: qualifiedtobuy\n",
        "      pipeline: \"87250318\"\n      dealstage: \"161845224\"\n",
        "      pipeline: \"{{ fields.p }}\"\n      dealstage: \"{{ fields.Stage }}\"\n",
    ] {
        assert_eq!(findings(&with_deal(ids)), Vec::<String>::new(), "{ids}");
    }
}

/// Variants: `map:` without `default:` on the stage and on a property (warned, naming the keys), with
/// `default:` (nothing), on a literal (nothing: the literal is looked up at load).
#[test]
fn a_map_without_default_is_a_warning_with_the_fix() {
    let deal = "      pipeline: default\n      dealstage:\n        from: \"{{ fields.plan }}\"\n        map: { team: \
                presentationscheduled, solo: appointmentscheduled }\n      properties:\n        dealtype: { from: \
                \"{{ fields.kind }}\", map: { new: newbusiness }, default: existingbusiness }\n        hs_priority: \
                { from: \"{{ fields.p }}\", map: { a: high, b: low, c: medium, d: high, e: low, f: low } }\n";
    let got = findings(&with_deal(deal));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with(
            "m.yaml:9:15: warning: route r, dealstage: `map:` without `default:`: a value that is not one of its \
             keys (team, solo) is the problem `no_match` and the delivery is dead-lettered; add `default: <value>`"
        ),
        "{got:#?}"
    );
    assert!(
        got[1].contains("properties.hs_priority: `map:` without `default:`"),
        "{got:#?}"
    );
    assert!(got[1].contains("(a, b, c, d, e, …)"), "{got:#?}");
}

/// Variants of a YAML syntax error: a tab in the indentation (reported at the tab), an unquoted
/// template, an unquoted value holding `: `, other indentation faults (the general hint).
#[test]
fn yaml_syntax_errors_get_a_hint() {
    let cases = [
        (
            "      pipeline: default\n\t  dealstage: s\n",
            "m.yaml:8:1: error: YAML syntax: a tab in the indentation: YAML indents with spaces only",
        ),
        (
            "      pipeline: default\n      dealstage: s\n      properties:\n        dealname: {{ fields.company }}\n",
            "a value that starts with `{{` or `{%` must be quoted, else YAML reads a map: `dealname: \"{{ \
             fields.company }}\"`",
        ),
        (
            "      pipeline: default\n      dealstage: s\n      properties:\n        description: Note: call back\n",
            "a value holding `: ` must be quoted: `description: \"Note: call back\"`",
        ),
        (
            "      pipeline: default\n     dealstage: s\n",
            "check the indentation (spaces only",
        ),
    ];
    for (deal, want) in cases {
        let got = findings(&with_deal(deal));
        assert_eq!(got.len(), 1, "{deal:?}: {got:#?}");
        assert!(got[0].contains(want), "{deal:?}\n want {want}\n got {}", got[0]);
        assert!(got[0].contains("YAML syntax"), "{}", got[0]);
    }
}
