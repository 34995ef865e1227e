//! YAML node helpers shared by the spec readers, and the name rules (routes, keys, properties).

use serde_json::Value;

use super::*;

/// A string, number or boolean as a JSON value.
pub(crate) fn scalar(node: &Node) -> Option<Value> {
    match &node.kind {
        NodeKind::Str(s) => Some(Value::String(s.clone())),
        NodeKind::Number(n) => Some(Value::Number(n.clone())),
        NodeKind::Bool(b) => Some(Value::Bool(*b)),
        NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
    }
}

pub(crate) fn show_node(node: &Node) -> String {
    match scalar(node) {
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => node.kind.describe().to_owned(),
    }
}

pub(crate) fn expect_map<'n>(node: &'n Node, at: At<'_>, what: &str, report: &mut Report) -> Option<&'n [(Key, Node)]> {
    match &node.kind {
        NodeKind::Map(entries) => Some(entries),
        other => {
            report.error(
                at,
                node.loc,
                format!("{what} must be a map, found {}", other.describe()),
            );
            None
        }
    }
}

pub(crate) fn find<'n>(entries: &'n [(Key, Node)], name: &str) -> Option<&'n (Key, Node)> {
    entries.iter().find(|(k, _)| k.name == name)
}

/// Reports every key not in `known`, at the key, with a suggestion for likely typos.
pub(crate) fn check_keys(entries: &[(Key, Node)], known: &[&str], at: At<'_>, place: &str, report: &mut Report) {
    for (key, _) in entries {
        if known.contains(&key.name.as_str()) {
            continue;
        }
        // Close enough to be a typo: a third of the longer name, at least two edits.
        let close = |k: &&&str| edit_distance(k, &key.name) <= (k.len().max(key.name.len()) / 3).max(2);
        let hint = known
            .iter()
            .filter(close)
            .min_by_key(|k| edit_distance(k, &key.name))
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default();
        report.error(
            at,
            key.loc,
            format!(
                "unknown key `{}` {place} ({hint}expected {})",
                key.name,
                known.join(", ")
            ),
        );
    }
}

/// The candidate closest to `name` when it is close enough to be a typo (as [`check_keys`] judges:
/// a third of the longer name, at least two edits), for "did you mean". `None` for `name` itself.
pub(crate) fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(c, name), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, for "did you mean".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut left = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let cost = if ca == *cb { diagonal } else { diagonal + 1 };
            let next = cost.min(up.saturating_add(1)).min(left + 1);
            diagonal = up;
            if let Some(slot) = row.get_mut(j + 1) {
                *slot = next;
            }
            left = next;
        }
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
    }
    row.last().copied().unwrap_or(0)
}

/// Route names appear in URLs (`/hooks/{name}`): `[A-Za-z0-9_-]+`.
pub(crate) fn check_route_name(name: &str) -> Result<(), String> {
    check_url_name("route", name)
}

/// Route and endpoint names (`what`) appear in URLs (`/hooks/{name}`): `[A-Za-z0-9_-]+`.
pub(crate) fn check_url_name(what: &str, name: &str) -> Result<(), String> {
    let rule = format!("{what} names are used in URLs (/hooks/{{name}}): use only letters, digits, '-' and '_'");
    if name.is_empty() {
        return Err(format!("empty {what} name; {rule}"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        Some(bad) => Err(format!("{what} name {name:?} contains {bad:?}; {rule}")),
        None => Ok(()),
    }
}

/// Keys under `signing` in the secret: `[A-Za-z0-9_.-]+`.
pub(crate) fn check_signing_key(name: &str) -> Result<(), String> {
    const RULE: &str = "signing_secret names a key under `signing` in the secret: use only letters, digits, \
                        '-', '_' and '.'";
    if name.is_empty() {
        return Err(format!("empty signing key name; {RULE}"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(bad) => Err(format!("signing key name {name:?} contains {bad:?}; {RULE}")),
        None => Ok(()),
    }
}

/// HubSpot internal property names: `[A-Za-z0-9_]+`.
pub(crate) fn check_property_name(name: &str) -> Result<(), String> {
    const RULE: &str = "HubSpot internal property names use only letters, digits and '_' (the \
                        internal name, not the label)";
    if name.is_empty() {
        return Err(format!("empty property name; {RULE}"));
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        Some(bad) => Err(format!("property name {name:?} contains {bad:?}; {RULE}")),
        None => Ok(()),
    }
}
