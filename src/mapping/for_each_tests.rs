//! `for_each:` in the mapping: reading and compiling it (errors with line and column, `item` and
//! `item_index` only where there are items), and evaluating it into items, each mapped on its own.
//!
//! Faults covered: the value is not a string, is empty, has braces, is not an expression, names an
//! unknown variable or `item`; `item` used in `match` or on a route without `for_each`; at run time,
//! a value that is an object, text or a number, an expression that fails, no items (`none`,
//! undefined, `[]`), exactly [`MAX_RECORDS`] and one more, an item whose mapping fails among good
//! ones, an index past the items.

use serde_json::{Value, json};

use super::{ForEachError, MAX_RECORDS, Mapping, Route};
use crate::domain::{DealDraft, Problem, PropValue, Submission};

fn text(for_each: &str, properties: &str) -> String {
    format!(
        "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n{for_each}    deal:\n      pipeline: p\n      \
         dealstage: s\n      properties:\n{properties}"
    )
}

fn load(text: &str) -> Mapping {
    Mapping::from_yaml(text, "m.yaml").unwrap_or_else(|e| panic!("must load:\n{e}\n{text}"))
}

fn errors(text: &str) -> Vec<String> {
    let err = Mapping::from_yaml(text, "m.yaml").expect_err("must not load");
    err.errors().map(|d| d.in_file(&err.origin).to_string()).collect()
}

fn submission(fields: Value) -> Submission {
    Submission {
        source: "json".into(),
        id: Some("order-batch-7".into()),
        submitted_at: None,
        received_at: "2026-11-25T10:00:00.000Z".into(),
        event_type: None,
        fields: fields.as_object().cloned().unwrap_or_default().into(),
        raw: fields.into(),
    }
}

/// Every record of `fields` on route `r`, mapped.
fn records(route: &Route, fields: Value) -> Result<Vec<Result<DealDraft, Vec<Problem>>>, ForEachError> {
    let items = route.items(&submission(fields))?.expect("the route has for_each");
    Ok((0..items.len()).map(|i| route.map_item(&items, i)).collect())
}

fn dealname(draft: &DealDraft) -> String {
    draft
        .properties
        .iter()
        .find(|p| p.name == "dealname")
        .map(|p| p.value.to_wire_string())
        .unwrap_or_default()
}

const ORDER: &str = "        dealname: \"Order {{ item.id }} ({{ item_index }}) for {{ fields.customer }}\"\n        \
                     amount: { from: \"{{ item.total }}\", type: number }\n";

#[test]
fn each_item_is_mapped_with_item_and_item_index_beside_the_delivery() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let route = mapping.route("r").unwrap();
    assert!(route.has_for_each());
    let fields = json!({"customer": "Acme", "orders": [
        {"id": "A-1", "total": "1,200"}, {"id": "A-2", "total": 80}, {"id": "A-3", "total": "0.5"}]});
    let drafts: Vec<DealDraft> = records(route, fields)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let names: Vec<String> = drafts.iter().map(dealname).collect();
    assert_eq!(
        names,
        [
            "Order A-1 (0) for Acme",
            "Order A-2 (1) for Acme",
            "Order A-3 (2) for Acme"
        ]
    );
    let amounts: Vec<PropValue> = drafts.iter().map(|d| d.properties[1].value.clone()).collect();
    assert_eq!(
        amounts,
        [
            PropValue::Number("1200".into()),
            PropValue::Number("80".into()),
            PropValue::Number("0.5".into())
        ]
    );
}

#[test]
fn a_route_without_for_each_has_no_items_and_maps_as_before() {
    let mapping = load(&text("", "        dealname: \"{{ fields.name }}\"\n"));
    let route = mapping.route("r").unwrap();
    assert!(!route.has_for_each());
    assert!(route.items(&submission(json!({"name": "x"}))).unwrap().is_none());
}

#[test]
fn hubspots_batched_events_make_one_record_each() {
    let mapping = load(&text(
        "    for_each: fields.events\n",
        "        dealname: \"New contact {{ item.objectId }}\"\n",
    ));
    let route = mapping.route("r").unwrap();
    // What the hubspot source makes of a batch: the first event's keys, and `events`.
    let fields = json!({"objectId": 1, "events": [{"objectId": 1}, {"objectId": 2}]});
    let names: Vec<String> = records(route, fields)
        .unwrap()
        .iter()
        .map(|d| dealname(d.as_ref().unwrap()))
        .collect();
    assert_eq!(names, ["New contact 1", "New contact 2"]);
}

#[test]
fn item_index_is_a_number_templates_can_count_with() {
    let mapping = load(&text(
        "    for_each: fields.orders
",
        "        dealname: \"{{ item_index + 1 }} of {{ fields.orders | length }}\"\n",
    ));
    let names: Vec<String> = records(mapping.route("r").unwrap(), json!({"orders": ["a", "b"]}))
        .unwrap()
        .iter()
        .map(|d| dealname(d.as_ref().unwrap()))
        .collect();
    assert_eq!(names, ["1 of 2", "2 of 2"]);
}

#[test]
fn for_each_errors_are_reported_at_their_line_and_column() {
    let dealname = "        dealname: n\n";
    let cases = [
        (
            text("    for_each: [a]\n", dealname),
            "m.yaml:6:15: error: route r, for_each: expected an expression giving a list",
        ),
        (
            text("    for_each: \" \"\n", dealname),
            "m.yaml:6:15: error: route r, for_each: empty `for_each:`",
        ),
        (
            text("    for_each: \"{{ fields.orders }}\"\n", dealname),
            "m.yaml:6:15: error: route r, for_each: `for_each` is an expression without `{{ }}`: write `fields.orders`",
        ),
        (
            text("    for_each: fields.orders ==\n", dealname),
            "m.yaml:6:15: error: route r, for_each: invalid `for_each` expression: syntax error",
        ),
        (
            text("    for_each: orders\n", dealname),
            "m.yaml:6:15: error: route r, for_each: invalid `for_each` expression: unknown variable orders",
        ),
        (
            text("    for_each: item.lines\n", dealname),
            "m.yaml:6:15: error: route r, for_each: invalid `for_each` expression: unknown variable item",
        ),
        (
            text("    for_eatch: fields.orders\n", dealname),
            "did you mean `for_each`",
        ),
    ];
    for (text, want) in cases {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{want}: {errors:#?}");
        assert!(errors[0].contains(want), "want {want}\n got {}", errors[0]);
    }
}

/// `item` where there are no items is an unknown variable, as any misspelt variable is: a load
/// error (the template would otherwise be silently empty), with a hint.
#[test]
fn item_outside_a_for_each_route_is_an_unknown_variable() {
    let cases = [
        (
            "route without for_each",
            text("", "        dealname: \"{{ item.id }}\"\n"),
            "m.yaml:10:19: error: route r, properties.dealname: invalid template: unknown variable item",
        ),
        (
            "item_index without for_each",
            text("", "        dealname: \"#{{ item_index }}\"\n"),
            "unknown variable item_index",
        ),
        (
            "item in match",
            text(
                "    match: item.id == 1\n    for_each: fields.orders\n",
                "        dealname: \"{{ item.id }}\"\n",
            ),
            "m.yaml:6:12: error: route r, match: invalid `match` expression: unknown variable item",
        ),
        (
            "item in an association",
            format!(
                "{}      associations:\n        contacts: \"{{{{ item.vid }}}}\"\n",
                text("", "        dealname: n\n")
            ),
            "associations.contacts: invalid template: unknown variable item",
        ),
    ];
    for (name, text, want) in cases {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{name}: {errors:#?}");
        assert!(errors[0].contains(want), "{name}: want {want}\n got {}", errors[0]);
        assert!(
            errors[0].contains("`item` and `item_index` exist only in the `deal` of a route with `for_each`"),
            "{name}: no hint in {}",
            errors[0]
        );
    }
    // The next route, without for_each, does not inherit `item` from one with it.
    let two = format!(
        "{}  s:\n    source: json\n    signature: none\n    deal:\n      pipeline: p\n      dealstage: \"{{{{ item }}}}\"\n",
        text("    for_each: fields.orders\n", "        dealname: \"{{ item.id }}\"\n")
    );
    let errors = errors(&two);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("route s, dealstage: invalid template: unknown variable item"),
        "{}",
        errors[0]
    );
}

#[test]
fn item_in_associations_of_a_for_each_route_is_known() {
    let text = format!(
        "{}      associations:\n        contacts: \"{{{{ item.vid }}}}\"\n",
        text("    for_each: fields.orders\n", "        dealname: n\n")
    );
    let mapping = load(&text);
    let drafts = records(mapping.route("r").unwrap(), json!({"orders": [{"vid": 5}, {"vid": 6}]})).unwrap();
    let vids: Vec<Vec<u64>> = drafts
        .into_iter()
        .map(|d| d.unwrap().associations.contact_ids)
        .collect();
    assert_eq!(vids, [vec![5], vec![6]]);
}

#[test]
fn no_items_is_an_empty_list_of_records() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let route = mapping.route("r").unwrap();
    for (name, fields) in [
        ("missing", json!({})),
        ("null", json!({"orders": null})),
        ("empty list", json!({"orders": []})),
    ] {
        let items = route.items(&submission(fields)).unwrap().unwrap();
        assert!(items.is_empty(), "{name}");
        assert_eq!(items.len(), 0, "{name}");
    }
}

#[test]
fn a_value_that_is_not_a_list_is_a_problem_at_for_each() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let route = mapping.route("r").unwrap();
    let cases = [
        ("one object", json!({"orders": {"id": "A-1"}}), "got an object"),
        ("text", json!({"orders": "A-1,A-2"}), "got the text \"A-1,A-2\""),
        ("number", json!({"orders": 3}), "got number 3"),
        ("boolean", json!({"orders": true}), "got bool true"),
    ];
    for (name, fields, want) in cases {
        let Err(ForEachError::Invalid(problem)) = route.items(&submission(fields)) else {
            panic!("{name}: must be a problem");
        };
        assert_eq!(problem.field.as_deref(), Some("for_each"), "{name}");
        assert_eq!(problem.code, "not_a_list", "{name}");
        assert!(
            problem.message.contains("`for_each` must give a list of items") && problem.message.contains(want),
            "{name}: {}",
            problem.message
        );
    }
}

#[test]
fn a_for_each_that_fails_to_evaluate_is_a_problem_at_for_each() {
    // Dividing by zero fails on every delivery, but only when evaluated (an unknown filter is a load error).
    let mapping = load(&text("    for_each: fields.orders + 1 / 0\n", ORDER));
    let Err(ForEachError::Invalid(problem)) = mapping.route("r").unwrap().items(&submission(json!({"orders": []})))
    else {
        panic!("must be a problem");
    };
    assert_eq!(
        (problem.field.as_deref(), problem.code.as_str()),
        (Some("for_each"), "for_each_error")
    );
    assert!(problem.message.contains("invalid operation"), "{}", problem.message);
}

#[test]
fn more_items_than_the_limit_is_too_many() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let route = mapping.route("r").unwrap();
    let orders = |n: usize| json!({"orders": (0..n).map(|i| json!({"id": i})).collect::<Vec<_>>()});
    let at_limit = route.items(&submission(orders(MAX_RECORDS))).unwrap().unwrap();
    assert_eq!(at_limit.len(), MAX_RECORDS);
    assert_eq!(
        route.items(&submission(orders(MAX_RECORDS + 1))).unwrap_err(),
        ForEachError::TooMany {
            count: MAX_RECORDS + 1,
            limit: MAX_RECORDS
        }
    );
    assert_eq!(
        route.items(&submission(orders(5000))).unwrap_err(),
        ForEachError::TooMany {
            count: 5000,
            limit: MAX_RECORDS
        }
    );
    // A list built by the expression (no length known up front) is cut as well.
    let built = load(&text(
        "    for_each: range(1000)\n",
        "        dealname: \"{{ item }}\"\n",
    ));
    let got = built.route("r").unwrap().items(&submission(json!({})));
    assert!(
        matches!(got, Err(ForEachError::TooMany { limit: MAX_RECORDS, .. })),
        "{got:?}"
    );
}

#[test]
fn one_items_mapping_failure_leaves_the_others_mapped() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let fields = json!({"customer": "Acme", "orders": [{"id": "A-1", "total": 5}, {"id": "A-2", "total": "lots"},
                                                      {"id": "A-3", "total": 7}]});
    let records = records(mapping.route("r").unwrap(), fields).unwrap();
    assert!(records[0].is_ok() && records[2].is_ok(), "{records:?}");
    let problems = records[1].as_ref().unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].field.as_deref(), problems[0].code.as_str()),
        (Some("properties.amount"), "invalid_number")
    );
}

#[test]
fn an_index_past_the_items_is_a_problem_not_a_panic() {
    let mapping = load(&text("    for_each: fields.orders\n", ORDER));
    let route = mapping.route("r").unwrap();
    let items = route
        .items(&submission(json!({"orders": [{"id": 1}]})))
        .unwrap()
        .unwrap();
    let problems = route.map_item(&items, 1).unwrap_err();
    assert_eq!(problems[0].code, "no_such_item");
}

/// `for_each` with `dedupe`: a warning that only the idempotency table keeps records of one delivery
/// for the same contact from each making a deal (a fresh-user review saw three deals for one contact).
#[test]
fn for_each_with_dedupe_warns_that_only_the_idempotency_table_keeps_one_deal() {
    let with = |for_each: &str| {
        format!(
            "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n{for_each}    dedupe: {{}}\n    deal:\n      \
             pipeline: p\n      dealstage: s\n      associations:\n        contacts: {{ email: \"{{{{ fields.email }}}}\" }}\n"
        )
    };
    let warned = |mapping: &Mapping| {
        mapping
            .warnings()
            .iter()
            .any(|w| w.field.as_deref() == Some("dedupe") && w.message.contains("DEALHOOK_IDEMPOTENCY_TABLE"))
    };
    assert!(warned(&load(&with("    for_each: fields.orders\n"))));
    assert!(!warned(&load(&with(""))), "dedupe alone: no warning");
}
