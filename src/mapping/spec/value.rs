//! Value specs (`from`, `type`, `format`, `timezone`, `decimal`, `map`, `default`, `required`) and ids.

use serde_json::Value;

use super::*;

/// `dealstage` and `pipeline`: value specs whose type can only be text (they are ids).
pub(crate) fn read_id_value(node: &Node, at: At<'_>, report: &mut Report) -> Option<ValueSpec> {
    let value = read_value(node, at, report)?;
    if value.conversion.kind != ValueType::Text {
        let field = at.field.unwrap_or_default();
        report.error(
            at,
            node.loc,
            format!(
                "{field} is an id, always text; remove `type: {}`",
                value.conversion.kind.as_str()
            ),
        );
    }
    Some(value)
}

/// A value spec: a scalar, or a map with `from`.
pub(crate) fn read_value(node: &Node, at: At<'_>, report: &mut Report) -> Option<ValueSpec> {
    let entries = match &node.kind {
        NodeKind::Map(entries) => entries,
        _ => {
            let input = read_input(node, at, report)?;
            return Some(ValueSpec {
                input,
                loc: node.loc,
                conversion: Conversion::plain(ValueType::Text),
                required: false,
                lookup: None,
                default: None,
            });
        }
    };
    check_keys(entries, VALUE_KEYS, at, "in a value", report);
    let mut ok = true;

    let (input, loc) = match find(entries, "from") {
        None => {
            report.error(at, node.loc, "missing `from:` (the template or literal to read)");
            (None, node.loc)
        }
        Some((_, from)) => (read_input(from, at, report), from.loc),
    };

    let kind = match find(entries, "type") {
        None => ValueType::Text,
        Some((_, node)) => {
            let name = match &node.kind {
                NodeKind::Str(s) => s.clone(),
                _ => show_node(node),
            };
            ValueType::parse(&name).unwrap_or_else(|| {
                let expected = ValueType::ALL.map(ValueType::as_str).join(", ");
                report.error(at, node.loc, format!("unknown type {name:?} (expected {expected})"));
                ok = false;
                ValueType::Text
            })
        }
    };

    // `format:`, `timezone:` and `decimal:` refine one type each; each is checked here, so a bad
    // pattern or zone name is a load error at its node, not a per-delivery one.
    let mut conversion = Conversion::plain(kind);
    conversion.format = read_option(entries, "format", kind, at, report, &mut ok, DateFormat::parse);
    conversion.timezone = read_option(entries, "timezone", kind, at, report, &mut ok, parse_timezone);
    conversion.decimal = read_option(entries, "decimal", kind, at, report, &mut ok, DecimalMark::parse);

    let required = match find(entries, "required") {
        None => false,
        Some((_, node)) => match node.kind {
            NodeKind::Bool(b) => b,
            _ => {
                report.error(
                    at,
                    node.loc,
                    format!("`required` must be true or false, found {}", show_node(node)),
                );
                ok = false;
                false
            }
        },
    };

    let lookup = match find(entries, "map") {
        None => None,
        Some((_, node)) => match &node.kind {
            NodeKind::Map(pairs) if !pairs.is_empty() => {
                let mut lookup = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    match scalar(value) {
                        Some(v) => lookup.push((key.clone(), v)),
                        None => {
                            report.error(
                                at,
                                value.loc,
                                format!(
                                    "`map` entry {:?} must map to a string, number or boolean, found {}",
                                    key.name,
                                    value.kind.describe()
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                Some(lookup)
            }
            other => {
                let found = match other {
                    NodeKind::Map(_) => "an empty map",
                    other => other.describe(),
                };
                report.error(
                    at,
                    node.loc,
                    format!("`map` must be a non-empty map of received value → value to send, found {found}"),
                );
                ok = false;
                None
            }
        },
    };

    let default = match find(entries, "default") {
        None => None,
        Some((_, node)) => match scalar(node) {
            Some(v) => Some((v, node.loc)),
            None => {
                let found = node.kind.describe();
                report.error(
                    at,
                    node.loc,
                    format!("`default` must be a string, number or boolean, found {found}"),
                );
                ok = false;
                None
            }
        },
    };

    let input = input?;
    ok.then_some(ValueSpec {
        input,
        loc,
        conversion,
        required,
        lookup,
        default,
    })
}

/// An option of a type (`format` and `timezone` for date and datetime, `decimal` for number):
/// a string that `parse` accepts, on a value of a type it applies to. Problems are reported at
/// the option's node and clear `ok`.
pub(crate) fn read_option<T>(
    entries: &[(Key, Node)],
    name: &str,
    kind: ValueType,
    at: At<'_>,
    report: &mut Report,
    ok: &mut bool,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let (_, node) = find(entries, name)?;
    let (applies, types) = match name {
        "decimal" => (kind == ValueType::Number, "`type: number`"),
        _ => (kind.is_temporal(), "`type: date` and `type: datetime`"),
    };
    let parsed = if !applies {
        Err(format!(
            "`{name}` applies to {types}; this value is `type: {}`",
            kind.as_str()
        ))
    } else {
        match &node.kind {
            NodeKind::Str(text) => parse(text),
            other => Err(format!("`{name}` must be a string, found {}", other.describe())),
        }
    };
    parsed
        .map_err(|why| {
            report.error(at, node.loc, why);
            *ok = false;
        })
        .ok()
}

/// `companies:` / `contacts:`: a template, an id, or a YAML list of ids.
pub(crate) fn read_ids(node: &Node, at: At<'_>, report: &mut Report) -> Option<IdsSpec> {
    let input = match &node.kind {
        NodeKind::Seq(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match scalar(item) {
                    Some(v) => values.push(v),
                    None => {
                        report.error(at, item.loc, format!("expected an id, found {}", item.kind.describe()));
                        return None;
                    }
                }
            }
            Input::Literal(Value::Array(values))
        }
        _ => read_input(node, at, report)?,
    };
    Some(IdsSpec { input, loc: node.loc })
}

/// A scalar used as input: strings with template syntax are templates, other scalars literals.
pub(crate) fn read_input(node: &Node, at: At<'_>, report: &mut Report) -> Option<Input> {
    match &node.kind {
        NodeKind::Str(s) if looks_like_template(s) => Some(Input::Template(s.clone())),
        _ => match scalar(node) {
            Some(value) => Some(Input::Literal(value)),
            None => {
                let found = node.kind.describe();
                report.error(
                    at,
                    node.loc,
                    format!("expected a template or a literal (string, number, boolean), found {found}"),
                );
                None
            }
        },
    }
}
