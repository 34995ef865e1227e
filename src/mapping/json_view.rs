//! A lazy, read-only view of a JSON value for templates: what `fields` and `raw` are in a template's
//! context.
//!
//! Converting a whole submission (raw body included) into minijinja values on every delivery was the
//! largest part of mapping's cost (a profile of the Typeform sample: ~15 % of the delivery in map
//! inserts and string copies), while templates read a handful of fields. A [`JsonView`] converts
//! only what a template reads, when it reads it: a scalar becomes a minijinja value, an object or
//! array another view sharing the same document.
//!
//! It behaves exactly as the eager conversion (`Value::from(Serde(&json))`) did, which the tests
//! below check template by template: objects are maps (`ObjectRepr::Map`) enumerated in minijinja's
//! key order (its maps are `BTreeMap`s here: keys sorted by bytes), arrays are sequences, and numbers
//! keep serde_json's kinds (`u64`, then `i64`, then `f64`).

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value as Json;

/// One step from a view's document to the node it shows.
#[derive(Debug, Clone)]
enum Step {
    Key(Arc<str>),
    Index(usize),
}

/// A shared JSON document: a value (`raw`), or an object's members (`fields`), each shared with the
/// [`Submission`](crate::domain::Submission) it belongs to, so a view costs no copy.
#[derive(Debug, Clone)]
enum Root {
    Value(Arc<Json>),
    Object(Arc<serde_json::Map<String, Json>>),
}

/// What a view shows: an object's members or an array's items (a view is never made of a scalar;
/// `Other` only for a path that is not there, which cannot happen).
enum Node<'a> {
    Object(&'a serde_json::Map<String, Json>),
    Array(&'a [Json]),
    Other,
}

/// An object or array inside a shared JSON document, by its path from the document's root.
#[derive(Debug)]
pub(crate) struct JsonView {
    root: Root,
    path: Vec<Step>,
}

/// `json` as templates see it: a scalar converted, an object or array as a lazy [`JsonView`].
pub(crate) fn view(root: Arc<Json>) -> Value {
    let node = match &*root {
        Json::Object(_) | Json::Array(_) => None,
        scalar => Some(scalar_value(scalar)),
    };
    node.unwrap_or_else(|| {
        Value::from_object(JsonView {
            root: Root::Value(root),
            path: Vec::new(),
        })
    })
}

/// An object's members as templates see the object: [`view`] of `Json::Object(members)`, without
/// building that value.
pub(crate) fn view_object(members: Arc<serde_json::Map<String, Json>>) -> Value {
    Value::from_object(JsonView {
        root: Root::Object(members),
        path: Vec::new(),
    })
}

/// A JSON scalar as serde's conversion makes it (`serialize_u64`/`i64`/`f64`, `str`, `bool`, `none`).
fn scalar_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::from(f),
            // Not reachable without serde_json's arbitrary_precision; its text is what serde gives then.
            (None, None, None) => Value::from(n.to_string()),
        },
        Json::String(s) => Value::from(s.as_str()),
        // Containers are views (see `JsonView::child`).
        Json::Array(_) | Json::Object(_) => Value::UNDEFINED,
    }
}

impl JsonView {
    /// The node this view shows. The path was taken from the same immutable document, so it is
    /// always there; `Null` (never reached) keeps this infallible.
    fn node(&self) -> Node<'_> {
        let (mut node, path) = match &self.root {
            Root::Value(value) => (&**value, &self.path[..]),
            Root::Object(members) => match self.path.split_first() {
                None => return Node::Object(members),
                Some((Step::Key(key), rest)) => (members.get(&**key).unwrap_or(&Json::Null), rest),
                Some((Step::Index(_), _)) => (&Json::Null, &[][..]),
            },
        };
        for step in path {
            let next = match (step, node) {
                (Step::Key(key), Json::Object(map)) => map.get(&**key),
                (Step::Index(index), Json::Array(items)) => items.get(*index),
                _ => None,
            };
            node = next.unwrap_or(&Json::Null);
        }
        match node {
            Json::Object(map) => Node::Object(map),
            Json::Array(items) => Node::Array(items),
            _ => Node::Other,
        }
    }

    /// The value of `child`, found at `step` below this view.
    fn child(&self, step: Step, child: &Json) -> Value {
        match child {
            Json::Object(_) | Json::Array(_) => {
                let mut path = Vec::with_capacity(self.path.len() + 1);
                path.extend(self.path.iter().cloned());
                path.push(step);
                Value::from_object(JsonView {
                    root: self.root.clone(),
                    path,
                })
            }
            scalar => scalar_value(scalar),
        }
    }

    fn get_by_str(&self, key: &str) -> Option<Value> {
        match self.node() {
            Node::Object(map) => {
                let child = map.get(key)?;
                Some(self.child(Step::Key(Arc::from(key)), child))
            }
            _ => None,
        }
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Node::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.node() {
            Node::Object(_) => self.get_by_str(key.as_str()?),
            Node::Array(items) => {
                let index = key.as_usize()?;
                let child = items.get(index)?;
                Some(self.child(Step::Index(index), child))
            }
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.get_by_str(key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Node::Array(items) => Enumerator::Seq(items.len()),
            Node::Object(map) => {
                // minijinja's maps are BTreeMaps: keys in byte order, as `Value::cmp` orders strings.
                let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                keys.sort_unstable();
                Enumerator::Values(keys.into_iter().map(Value::from).collect())
            }
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node() {
            Node::Array(items) => Some(items.len()),
            Node::Object(map) => Some(map.len()),
            _ => Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The view renders every template exactly as the eager conversion it replaced: the same output,
    //! the same value (single expressions), the same error. Variants: scalars and containers at the
    //! root, nested objects and arrays, key order (insertion vs sorted, non-ASCII), index access
    //! (positive, negative, out of range, by string on an array, by number on an object), iteration
    //! and its filters, comparisons between a view and an eager value, truthiness, serialisation.
    use std::sync::Arc;

    use minijinja::Value;
    use minijinja::value::Serde;
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    use super::{view, view_object};
    use crate::mapping::template::Templates;

    /// Templates over every way a template can read a value.
    const TEMPLATES: &[&str] = &[
        "{{ fields }}",
        "{{ fields | tojson }}",
        "{{ fields | tojson(2) }}",
        "{{ fields | pprint }}",
        "{{ fields | string }}",
        "{{ fields | length }}",
        "{{ fields | count }}",
        "{{ fields | list }}",
        "{{ fields | items | list }}",
        "{{ fields | dictsort }}",
        "{{ fields | reverse | list }}",
        "{{ fields | sort | list }}",
        "{{ fields | unique | list }}",
        "{{ fields | first }}",
        "{{ fields | last }}",
        "{{ fields | min }}",
        "{{ fields | max }}",
        "{{ fields | join(',') }}",
        "{{ fields | batch(2) | list }}",
        "{{ fields | map(attribute='a') | list }}",
        "{{ fields | selectattr('a') | list }}",
        "{{ fields | default('none given') }}",
        "{{ fields | sum }}",
        "{% for k in fields %}[{{ k }}={{ fields[k] }}]{% endfor %}",
        "{% for k, v in fields | items %}{{ loop.index }}:{{ k }}={{ v }};{% endfor %}",
        "{% if fields %}truthy{% else %}falsy{% endif %}",
        "{{ fields.a }}",
        "{{ fields.a.b }}",
        "{{ fields['a'] }}",
        "{{ fields['é'] }}",
        "{{ fields[0] }}",
        "{{ fields[1][0] }}",
        "{{ fields[-1] }}",
        "{{ fields[10] }}",
        "{{ fields['0'] }}",
        "{{ 'a' in fields }}",
        "{{ 1 in fields }}",
        "{{ fields == raw }}",
        "{{ fields != {} }}",
        "{{ fields == [] }}",
        "{{ fields < raw }}",
        "{{ [fields, raw] | unique | list | length }}",
        "{{ fields is mapping }}",
        "{{ fields is sequence }}",
        "{{ fields is iterable }}",
        "{{ fields is number }}",
        "{{ fields is string }}",
        "{{ fields ~ '' }}",
        "{{ fields | upper }}",
        "{{ fields.a | float }}",
        "{{ fields + 1 }}",
        "{{ fields[1:] | list }}",
        "{{ fields | items | list }}",
        "{{ fields | list }}",
        "{{ fields | dictsort }}",
        "{{ fields['a'] }}",
        "{{ dict(fields) }}",
    ];

    /// How `fields` reaches the templates: converted eagerly (the reference), as a [`view`] (`raw`, and
    /// any document), or as a [`view_object`] of an object's members (`fields`).
    #[derive(Clone, Copy, Debug)]
    enum Made {
        Eager,
        View,
        ViewObject,
    }

    fn render_all(doc: &Json, made: Made) -> Vec<Result<Json, String>> {
        let mut templates = Templates::new();
        let refs: Vec<_> = TEMPLATES
            .iter()
            .enumerate()
            .map(|(i, source)| templates.add(format!("t{i}"), source).unwrap())
            .collect();
        let eager = Value::from(Serde(doc));
        let fields = match (made, doc) {
            (Made::View, _) => view(Arc::new(doc.clone())),
            (Made::ViewObject, Json::Object(members)) => view_object(Arc::new(members.clone())),
            (Made::ViewObject, _) => panic!("view_object is only made of objects"),
            (Made::Eager, _) => eager.clone(),
        };
        let ctx = minijinja::context! { fields => fields, raw => eager, route => "r" };
        refs.iter().map(|t| templates.render(t, &ctx)).collect()
    }

    fn same(doc: &Json) {
        let eager = render_all(doc, Made::Eager);
        let mut lazy = vec![Made::View];
        if doc.is_object() {
            lazy.push(Made::ViewObject);
        }
        for made in lazy {
            let rendered = render_all(doc, made);
            for ((source, e), l) in TEMPLATES.iter().zip(&eager).zip(&rendered) {
                assert_eq!(l, e, "{source} over {doc}, {made:?}");
            }
        }
    }

    #[test]
    fn scalars_at_the_root() {
        for doc in [
            json!(null),
            json!(true),
            json!(0),
            json!(-3),
            json!(u64::MAX),
            json!(1.5),
            json!(""),
            json!("text"),
        ] {
            same(&doc);
        }
    }

    #[test]
    fn containers_nested_and_keyed_out_of_order() {
        for doc in [
            json!({}),
            json!([]),
            json!({"b": 1, "a": {"b": [1, 2, {"c": null}]}, "é": "x", "0": "zero", "A": true}),
            json!([3, [1, 2], {"a": 1}, "s", null, -1.25]),
            json!([{"a": 2}, {"a": 1}, {"b": 3}]),
            json!({"z": {"y": {"x": {"w": [[], {}]}}}}),
            json!([[1], [1], "1", 1]),
        ] {
            same(&doc);
        }
    }

    fn json_strategy() -> impl Strategy<Value = Json> {
        let key = prop::sample::select(vec!["a", "b", "B", "0", "1", "", "é", "a b", "zz"]);
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<u64>().prop_map(Json::from),
            (-1.0e6f64..1.0e6).prop_map(Json::from),
            prop::sample::select(vec!["", "a", "B", "1", "text with spaces", "ünï"]).prop_map(Json::from),
        ];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((key.clone(), inner), 0..4)
                    .prop_map(|entries| Json::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn any_document_renders_as_the_eager_conversion_did(doc in json_strategy()) {
            same(&doc);
        }
    }
}
