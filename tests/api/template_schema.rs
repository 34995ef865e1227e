//! The idempotency table as `template.yaml` declares it, for tests that make a table of their own
//! (on moto): created from [`idempotency_table_schema`], it has the key the deployed table has, so
//! the code is tested against the schema that ships rather than a copy of it.
//!
//! The table is the one the webhook function's `DEALHOOK_IDEMPOTENCY_TABLE` names
//! ([`Template::idempotency_table`]); the template is read as `tests/api/template.rs` reads it.

use crate::template::{Node, Template, template_text};

/// (attribute name, attribute type) or (attribute name, key type) pairs, as declared.
pub type Pairs = Vec<(String, String)>;

/// The idempotency table's `AttributeDefinitions` as (name, type) and `KeySchema` as
/// (name, key type), in the order the template declares them: `([("id", "S")], [("id", "HASH")])`.
/// Panics when the template has no idempotency table.
pub fn idempotency_table_schema() -> (Pairs, Pairs) {
    let t = Template::parse(&template_text());
    let table = declared_table(&t);
    key_schema(table)
}

/// The attribute the table's `TimeToLiveSpecification` names (`expires_at`, epoch seconds).
/// Panics when the template has no idempotency table or the table has no TTL attribute.
pub fn idempotency_ttl_attribute() -> String {
    let t = Template::parse(&template_text());
    ttl_attribute(declared_table(&t))
        .unwrap_or_else(|| panic!("template.yaml: the idempotency table has no TimeToLiveSpecification.AttributeName"))
        .to_owned()
}

fn declared_table(t: &Template) -> &Node {
    let (_, table) = t
        .idempotency_table()
        .unwrap_or_else(|e| panic!("template.yaml declares no idempotency table: {e}"));
    t.resource(table).expect("the table is a resource of the template")
}

/// (`AttributeDefinitions` as (name, type), `KeySchema` as (name, key type)) of an
/// `AWS::DynamoDB::Table` resource. A value that is not a plain string is given as written
/// (e.g. `!Ref P`), so that a check comparing it with a name reports what it found.
pub(crate) fn key_schema(table: &Node) -> (Pairs, Pairs) {
    let pairs = |property: &str, second: &str| -> Pairs {
        let items = table.at(&["Properties", property]).map(Node::alternatives);
        let text = |node: Option<&Node>| match node {
            Some(n) => n.text().map(str::to_owned).unwrap_or_else(|| n.to_string()),
            None => "(missing)".to_owned(),
        };
        items
            .unwrap_or_default()
            .into_iter()
            .map(|item| (text(item.get("AttributeName")), text(item.get(second))))
            .collect()
    };
    (
        pairs("AttributeDefinitions", "AttributeType"),
        pairs("KeySchema", "KeyType"),
    )
}

/// `TimeToLiveSpecification.AttributeName` of a table, when TTL is declared.
pub(crate) fn ttl_attribute(table: &Node) -> Option<&str> {
    table
        .at(&["Properties", "TimeToLiveSpecification", "AttributeName"])
        .and_then(Node::text)
}

#[test]
fn the_idempotency_table_schema_is_read_from_the_template() {
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let (attributes, keys) = idempotency_table_schema();
    assert_eq!(attributes, [pair("id", "S")]);
    assert_eq!(keys, [pair("id", "HASH")]);
    assert_eq!(idempotency_ttl_attribute(), "expires_at");
}
