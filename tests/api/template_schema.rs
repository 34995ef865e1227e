//! PLACEHOLDER until the template's table lands: replaced by the reading of template.yaml.

/// The idempotency table's declared schema.
pub struct TableSchema {
    /// (attribute, type).
    pub attributes: Vec<(String, String)>,
    /// (attribute, key type).
    pub key: Vec<(String, String)>,
    /// The TTL attribute.
    pub ttl_attribute: String,
}

/// The idempotency table's schema.
pub fn idempotency_table_schema() -> TableSchema {
    TableSchema {
        attributes: vec![("id".into(), "S".into())],
        key: vec![("id".into(), "HASH".into())],
        ttl_attribute: "expires_at".into(),
    }
}
