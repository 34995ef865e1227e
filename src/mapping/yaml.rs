//! The mapping file as a YAML tree with a line/column on every node and key, read with
//! serde-saphyr. Only syntax is checked here; what the keys mean is `spec.rs`'s business.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned};

/// Where a node starts in the file (1-based). Unknown when serde-saphyr cannot say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Loc {
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl From<Location> for Loc {
    fn from(l: Location) -> Self {
        // serde-saphyr reports line 0 for "unknown" (Location::UNKNOWN).
        let line = usize::try_from(l.line()).ok().filter(|&n| n > 0);
        let column = usize::try_from(l.column()).ok().filter(|_| line.is_some());
        Loc { line, column }
    }
}

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
}

/// A mapping key: always read as the string it is written as (`1.0`, `yes`, `true` stay text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub loc: Loc,
}

/// The YAML data model after YAML 1.2 core-schema resolution (see [`parse`] for the options).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Seq(Vec<Node>),
    /// In file order; duplicate keys are already rejected by the parser.
    Map(Vec<(Key, Node)>),
}

impl NodeKind {
    /// What the node is, for messages ("expected a map, found a list").
    pub fn describe(&self) -> &'static str {
        match self {
            NodeKind::Null => "nothing (null)",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Number(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }
}

/// A YAML syntax (or budget) error: where and what.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

/// Parses `text` into a tree.
///
/// Options: YAML 1.2 booleans only (`yes`/`no`/`on`/`off` stay strings, so they can be `map:`
/// keys), plain numbers with leading zeros stay strings (`01234` is a zip code, not 1234),
/// duplicate keys are errors, serde-saphyr's default budget guards against alias bombs.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let plain = err.without_snippet();
        SyntaxError {
            loc: err.location().map(Loc::from).unwrap_or_default(),
            message: serde_saphyr::DefaultMessageFormatter.format_message(plain).into_owned(),
        }
    })
}

/// The common causes of a syntax error at `loc` in `text`, as a hint for the message, and where to
/// report it: a tab in an indentation (YAML indents with spaces; reported at the first such tab, which
/// is where the fault is even when the parser stumbles later), a plain value that starts with `{{`
/// (a flow map to YAML) or holds `: ` (a nested key) on the error's line or the one before, else
/// indentation in general.
pub(crate) fn syntax_hint(text: &str, loc: Loc) -> (Loc, String) {
    for (index, line) in text.lines().enumerate() {
        let indent: String = line.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
        // The parser stops at the fault, or at the end of the line before it (a tab opening the next
        // line ends a plain scalar): a tab further down is not its cause.
        if loc.line.is_some_and(|l| index > l) {
            break;
        }
        if let Some(column) = indent.chars().position(|c| c == '\t') {
            let at = Loc {
                line: Some(index + 1),
                column: Some(column + 1),
            };
            return (at, "a tab in the indentation: YAML indents with spaces only".to_owned());
        }
    }
    let Some(error_line) = loc.line else {
        return (loc, INDENTATION_HINT.to_owned());
    };
    let lines: Vec<&str> = text.lines().collect();
    for line in [error_line, error_line.saturating_sub(1)] {
        let Some(content) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
            continue;
        };
        let Some((key, value)) = content.split_once(": ") else {
            continue;
        };
        let key = key.trim().trim_start_matches("- ");
        let value = value.trim();
        if value.starts_with("{{") || value.starts_with("{%") {
            return (
                loc,
                format!(
                    "line {line}: a value that starts with `{{{{` or `{{%` must be quoted, else YAML reads a map: \
                     `{key}: \"{value}\"` (inside, write `'` rather than `\"`)"
                ),
            );
        }
        let plain = !value.starts_with(['"', '\'', '{', '[', '|', '>']);
        if plain && (value.contains(": ") || value.ends_with(':')) {
            return (
                loc,
                format!("line {line}: a value holding `: ` must be quoted: `{key}: \"{value}\"`"),
            );
        }
    }
    (loc, INDENTATION_HINT.to_owned())
}

const INDENTATION_HINT: &str = "check the indentation (spaces only; a key's children indented more than the key, \
     siblings alike) and quote values that start with `{{`, `{`, `[`, `*`, `&`, `!`, `|`, `>`, `%`, `@` or hold `: `";

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        Ok(Node {
            kind: spanned.value,
            loc: spanned.referenced.into(),
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        serde_json::Number::from_f64(v)
            .map(NodeKind::Number)
            .ok_or_else(|| E::custom("non-finite numbers (.nan, .inf) are not supported"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(NodeKind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            let key = Key {
                name: key.value,
                loc: key.referenced.into(),
            };
            entries.push((key, value));
        }
        Ok(NodeKind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Node) -> (Option<usize>, Option<usize>) {
        (node.loc.line, node.loc.column)
    }

    #[test]
    fn nodes_and_keys_carry_their_line_and_column() {
        let root = parse("version: 1\nroutes:\n  a:\n    source: json\n").unwrap();
        let NodeKind::Map(top) = &root.kind else {
            panic!("root is not a map: {root:?}")
        };
        let (k, v) = &top[0];
        assert_eq!(
            (k.name.as_str(), k.loc.line, k.loc.column),
            ("version", Some(1), Some(1))
        );
        assert_eq!(v.kind, NodeKind::Number(1u64.into()));
        assert_eq!(at(v), (Some(1), Some(10)));
        let NodeKind::Map(routes) = &top[1].1.kind else {
            panic!("routes is not a map")
        };
        assert_eq!((routes[0].0.loc.line, routes[0].0.loc.column), (Some(3), Some(3)));
    }

    #[test]
    fn scalars_resolve_by_the_yaml_1_2_core_schema_without_surprises() {
        let cases = [
            ("a: yes", NodeKind::Str("yes".into())),
            ("a: no", NodeKind::Str("no".into())),
            ("a: true", NodeKind::Bool(true)),
            ("a: 01234", NodeKind::Str("01234".into())),
            ("a: -3", NodeKind::Number((-3i64).into())),
            ("a: '7'", NodeKind::Str("7".into())),
            ("a: ~", NodeKind::Null),
            ("a:", NodeKind::Null),
        ];
        for (text, want) in cases {
            let root = parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let NodeKind::Map(entries) = root.kind else {
                panic!("{text}: not a map")
            };
            assert_eq!(entries[0].1.kind, want, "{text}");
        }
    }

    #[test]
    fn keys_are_read_as_written() {
        let root = parse("{ 1.0: a, yes: b, true: c, 007: d }").unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(keys, ["1.0", "yes", "true", "007"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(&text).expect_err("too deep");
        assert_eq!(err.loc.line, Some(1), "{err:?}");
    }

    #[test]
    fn syntax_errors_report_line_and_column() {
        let cases = [
            ("unclosed flow list", "a: [1, 2\nb: 3\n", 2),
            ("duplicate key", "a: 1\na: 2\n", 2),
            ("unclosed quote", "a: \"x\n", 1),
            ("bad nesting", "a: b: c\n", 1),
        ];
        for (name, text, line) in cases {
            let err = parse(text).expect_err(name);
            assert_eq!(err.loc.line, Some(line), "{name}: {err:?}");
            assert!(err.loc.column.is_some(), "{name}: {err:?}");
            assert!(
                !err.message.contains("line"),
                "{name}: location is reported separately: {err:?}"
            );
        }
    }
}
