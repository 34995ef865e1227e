//! A compiled value spec ([`ValueRule`]): where a value comes from (a constant or a template), its
//! `map:`, `default:` and `type:`, and how a rendered value becomes a [`PropValue`] or a named
//! problem — item by item for lists. Also the compiled id rules of associations.

use std::collections::HashMap;

use serde_json::Value;

use super::convert::{Conversion, Invalid, MULTIPLE_VALUES, ValueType, is_blank, parse_ids, show, to_text};
use super::diagnostic::{At, Report};
use super::route::template_name;
use super::spec::{IdsSpec, Input, ValueSpec};
use super::template::{TemplateRef, Templates};
use crate::domain::{Problem, PropValue};

/// Keeps the value of a result and moves its problem to `problems`.
pub(super) fn keep<T>(result: Result<Option<T>, Problem>, problems: &mut Vec<Problem>) -> Option<T> {
    result.unwrap_or_else(|problem| {
        problems.push(problem);
        None
    })
}

/// A compiled value spec.
#[derive(Debug)]
pub(super) struct ValueRule {
    /// `dealstage`, `pipeline`, `properties.amount`: how problems name it.
    pub(super) field: String,
    pub(super) input: Compiled,
    conversion: Conversion,
    /// A list is a multi-select: its items are converted one by one and joined with `;`. True
    /// for text properties; `dealstage`, `pipeline` and typed values take one value.
    pub(super) multi: bool,
    pub(super) required: bool,
    lookup: Option<Lookup>,
    /// Used when the input is blank, or matches no `map` key (per item, for a list).
    default: Option<Value>,
}

#[derive(Debug)]
pub(super) enum Compiled {
    /// A literal, converted at load: the same for every delivery.
    Constant(Option<PropValue>),
    Template(TemplateRef),
}

#[derive(Debug)]
struct Lookup {
    by_key: HashMap<String, Value>,
    /// In file order, for `no_match` messages.
    keys: Vec<String>,
}

impl Lookup {
    /// The `map` value for a received value: its text, trimmed, exactly.
    fn get(&self, received: &Value) -> Option<&Value> {
        self.by_key.get(to_text(received).trim())
    }
}

#[derive(Debug)]
pub(super) struct IdsRule {
    field: String,
    input: IdsInput,
}

#[derive(Debug)]
enum IdsInput {
    Constant(Vec<u64>),
    Template(TemplateRef),
}

pub(super) struct Eval<'a> {
    pub(super) templates: &'a Templates,
    pub(super) ctx: &'a minijinja::Value,
}

impl Eval<'_> {
    /// `Ok(None)`: blank and not required, so the property is left out.
    pub(super) fn value(&self, rule: &ValueRule) -> Result<Option<PropValue>, Problem> {
        match &rule.input {
            Compiled::Constant(value) => Ok(value.clone()),
            Compiled::Template(template) => {
                let raw = self
                    .templates
                    .render(template, self.ctx)
                    .map_err(|message| Problem::at(&rule.field, "template_error", message))?;
                rule.finish(raw)
            }
        }
    }

    pub(super) fn ids(&self, rule: &IdsRule) -> Result<Vec<u64>, Problem> {
        match &rule.input {
            IdsInput::Constant(ids) => Ok(ids.clone()),
            IdsInput::Template(template) => {
                let raw = self
                    .templates
                    .render(template, self.ctx)
                    .map_err(|message| Problem::at(&rule.field, "template_error", message))?;
                ids_or_problem(&rule.field, &raw)
            }
        }
    }
}

/// Why one value (or one item of a list) did not convert.
enum ItemError {
    /// No `map` key and no `default`.
    Unmatched,
    /// The conversion refused it.
    Invalid(Invalid),
}

/// A list item that is not an option: `;` inside, or itself a list or an object.
const INVALID_OPTION: &str = "invalid_option";

impl ValueRule {
    /// Blank → `default`, or left out, or `required`. Else a list goes item by item (see
    /// [`ValueRule::finish_list`]) and one value through [`ValueRule::one`].
    fn finish(&self, raw: Value) -> Result<Option<PropValue>, Problem> {
        if is_blank(&raw) {
            return match &self.default {
                Some(default) => match self.convert(default) {
                    Ok(Some(value)) => Ok(Some(value)),
                    Ok(None) => self.nothing(),
                    Err(invalid) => Err(Problem::at(&self.field, invalid.code, invalid.message)),
                },
                None => self.nothing(),
            };
        }
        if let Value::Array(items) = &raw {
            return self.finish_list(items);
        }
        match self.one(&raw) {
            Ok(Some(value)) => Ok(Some(value)),
            Ok(None) => self.nothing(),
            Err(ItemError::Unmatched) => Err(self.no_match(&[raw], false)),
            Err(ItemError::Invalid(invalid)) => Err(Problem::at(&self.field, invalid.code, invalid.message)),
        }
    }

    /// One value or one list item: `map` (→ `default`, or [`ItemError::Unmatched`]), then the
    /// conversion. `Ok(None)` when a `map` value or the `default` is blank.
    ///
    /// This is the per-item step a portal schema (Step 7) joins: option labels become option
    /// values after `map`, and the schema's type applies where the mapping gives no `type:`.
    fn one(&self, received: &Value) -> Result<Option<PropValue>, ItemError> {
        let value = match &self.lookup {
            None => received,
            Some(lookup) => match (lookup.get(received), &self.default) {
                (Some(mapped), _) => mapped,
                (None, Some(default)) => default,
                (None, None) => return Err(ItemError::Unmatched),
            },
        };
        self.convert(value).map_err(ItemError::Invalid)
    }

    /// The conversion of a value that may be blank (a blank `map` value or `default`).
    fn convert(&self, value: &Value) -> Result<Option<PropValue>, Invalid> {
        if is_blank(value) {
            return Ok(None);
        }
        self.conversion.convert(value).map(Some)
    }

    /// Nothing to send: the problem `required`, or the property is left out.
    fn nothing(&self) -> Result<Option<PropValue>, Problem> {
        if self.required {
            Err(Problem::at(&self.field, "required", "is required but rendered empty"))
        } else {
            Ok(None)
        }
    }

    /// A non-blank list. Each item goes through [`ValueRule::one`] on its own: blank items are
    /// dropped, strings are trimmed, duplicates (after conversion) are dropped keeping the
    /// first. Then, in this order of problems: items without a `map` key (`no_match`, naming
    /// them all); for a multi-select, items that are lists or objects (`invalid_option`); for
    /// one-value rules, more than one distinct value (`multiple_values`); an item the
    /// conversion refuses (its code); for a multi-select, an item whose text holds `;`
    /// (`invalid_option`: HubSpot would read it as several options and has no escape). A
    /// multi-select is sent as the items joined with `;`; a one-value rule as its one value.
    fn finish_list(&self, items: &[Value]) -> Result<Option<PropValue>, Problem> {
        let mut values: Vec<(Value, PropValue)> = Vec::new();
        // One rule converts to one kind of value, so its wire text tells duplicates apart.
        let mut seen = std::collections::HashSet::new();
        let mut unmatched = Vec::new();
        let mut not_options = Vec::new();
        let mut invalid: Option<(Value, Invalid)> = None;
        let mut refused = 0;
        for item in items.iter().filter(|item| !is_blank(item)) {
            let item = match item {
                Value::String(s) => Value::String(s.trim().to_owned()),
                Value::Array(_) | Value::Object(_) if self.multi => {
                    not_options.push(item.clone());
                    continue;
                }
                other => other.clone(),
            };
            match self.one(&item) {
                Ok(Some(value)) => {
                    if seen.insert(value.to_wire_string()) {
                        values.push((item, value));
                    }
                }
                Ok(None) => {}
                Err(ItemError::Unmatched) => unmatched.push(item),
                Err(ItemError::Invalid(why)) => {
                    refused += 1;
                    invalid.get_or_insert((item, why));
                }
            }
        }
        if !unmatched.is_empty() {
            return Err(self.no_match(&unmatched, true));
        }
        if !not_options.is_empty() {
            return Err(Problem::at(
                &self.field,
                INVALID_OPTION,
                format!(
                    "{} a list or an object; each item of a multi-select must be one string, number or boolean",
                    items_phrase(&not_options, "is", "are")
                ),
            ));
        }
        if !self.multi && values.len() + refused > 1 {
            let what = match self.conversion.kind {
                ValueType::Text => "value".to_owned(),
                kind => format!("{} value", kind.as_str()),
            };
            return Err(Problem::at(
                &self.field,
                MULTIPLE_VALUES,
                format!(
                    "expected one {what}, got a list of {} different values: {}",
                    values.len() + refused,
                    show(&Value::Array(items.to_vec()))
                ),
            ));
        }
        if let Some((item, why)) = invalid {
            let message = if self.multi {
                format!("item {}: {}", show(&item), why.message)
            } else {
                why.message
            };
            return Err(Problem::at(&self.field, why.code, message));
        }
        if self.multi {
            let separated: Vec<Value> = values
                .iter()
                .filter(|(_, value)| value.to_wire_string().contains(';'))
                .map(|(item, _)| item.clone())
                .collect();
            if !separated.is_empty() {
                let first = separated.first().map(to_text).unwrap_or_default();
                let parts = first.split(';').filter(|p| !p.trim().is_empty()).count();
                return Err(Problem::at(
                    &self.field,
                    INVALID_OPTION,
                    format!(
                        "{} \";\", the separator of HubSpot's multi-select values, so HubSpot would read {} as {parts} \
                         options; there is no escape: map the item to an option value with `map:`, or rename the \
                         option where it is sent",
                        items_phrase(&separated, "contains", "contain"),
                        show(&Value::String(first.clone())),
                    ),
                ));
            }
            if values.is_empty() {
                return self.nothing();
            }
            let joined: Vec<String> = values.iter().map(|(_, value)| value.to_wire_string()).collect();
            return Ok(Some(PropValue::Text(joined.join(";"))));
        }
        match values.pop() {
            Some((_, value)) => Ok(Some(value)),
            None => self.nothing(),
        }
    }

    /// `no_match` for the received value, or (`list`) for each list item without a key.
    fn no_match(&self, received: &[Value], list: bool) -> Problem {
        let keys = self.lookup.as_ref().map(|l| l.keys.as_slice()).unwrap_or_default();
        no_match(&self.field, received, list, keys)
    }
}

/// `"x"` / `item "x"` / `items "x", "y"` followed by the verb for one or several.
fn items_phrase(items: &[Value], one: &str, several: &str) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|item| show(&Value::String(to_text(item).trim().to_owned())))
        .collect();
    match shown.as_slice() {
        [single] => format!("item {single} {one}"),
        _ => format!("items {} {several}", shown.join(", ")),
    }
}

/// `no_match`: the received value (`list` false) or the list items (`list` true) that have no
/// `map` key, and the keys the `map` has.
fn no_match(field: &str, received: &[Value], list: bool, keys: &[String]) -> Problem {
    const SHOWN: usize = 20;
    let mut accepted = keys
        .iter()
        .take(SHOWN)
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        accepted.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    let got = match received {
        [single] if !list => format!("{} matches", show(&Value::String(to_text(single).trim().to_owned()))),
        _ => items_phrase(received, "matches", "match"),
    };
    Problem::at(
        field,
        "no_match",
        format!("{got} no `map` key (accepted: {accepted}) and there is no `default`"),
    )
}

fn ids_or_problem(field: &str, raw: &Value) -> Result<Vec<u64>, Problem> {
    parse_ids(raw).map_err(|bad| {
        Problem::at(
            field,
            "invalid_id",
            format!(
                "not a HubSpot record id: {} (expected positive integers: one id, a list, or ids separated by \
                 commas, semicolons or spaces)",
                bad.join(", ")
            ),
        )
    })
}

pub(super) fn compile_value(
    field: &str,
    spec: ValueSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<ValueRule> {
    super::lint::check_value(field, &spec, at, report);
    let at = at.field(field);
    let mut ok = true;
    // Constants in `map` and `default` must convert to the declared type: check them now
    // rather than on the first delivery that needs them.
    let mut check_constant = |what: &str, value: &Value, loc| {
        if !is_blank(value)
            && let Err(invalid) = spec.conversion.convert(value)
        {
            report.error(at, loc, format!("{what}: {}", invalid.message));
            ok = false;
        }
    };
    if let Some((default, loc)) = &spec.default {
        check_constant("`default`", default, *loc);
    }
    let lookup = spec.lookup.map(|pairs| {
        let mut by_key = HashMap::with_capacity(pairs.len());
        let mut keys = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            check_constant(&format!("`map` value for {:?}", key.name), &value, key.loc);
            keys.push(key.name.clone());
            by_key.insert(key.name, value);
        }
        Lookup { by_key, keys }
    });

    let (input, literal) = match spec.input {
        Input::Template(source) => match templates.add(template_name(at, field), &source) {
            Ok(template) => (Compiled::Template(template), None),
            Err(error) => {
                report.template_error(at, spec.loc, "invalid template", &source, &error);
                ok = false;
                (Compiled::Constant(None), None)
            }
        },
        // Converted below, once the rule is complete.
        Input::Literal(value) => (Compiled::Constant(None), Some(value)),
    };
    let id = field == "dealstage" || field == "pipeline";
    let mut rule = ValueRule {
        field: field.to_owned(),
        input,
        multi: spec.conversion.kind == ValueType::Text && !id,
        conversion: spec.conversion,
        required: spec.required || field == "dealstage",
        lookup,
        default: spec.default.map(|(v, _)| v),
    };
    if let Some(literal) = literal {
        match rule.finish(literal) {
            Ok(value) => rule.input = Compiled::Constant(value),
            Err(problem) => {
                report.error(at, spec.loc, problem.message);
                ok = false;
            }
        }
    }
    ok.then_some(rule)
}

pub(super) fn compile_ids(
    field: &str,
    spec: IdsSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<IdsRule> {
    let at = at.field(field);
    let input = match spec.input {
        Input::Template(source) => match templates.add(template_name(at, field), &source) {
            Ok(template) => IdsInput::Template(template),
            Err(error) => {
                report.template_error(at, spec.loc, "invalid template", &source, &error);
                return None;
            }
        },
        Input::Literal(value) => match ids_or_problem(field, &value) {
            Ok(ids) => IdsInput::Constant(ids),
            Err(problem) => {
                report.error(at, spec.loc, problem.message);
                return None;
            }
        },
    };
    Some(IdsRule {
        field: field.to_owned(),
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(kind: ValueType, required: bool, lookup: &[(&str, Value)], default: Option<Value>) -> ValueRule {
        ValueRule {
            field: "properties.x".into(),
            input: Compiled::Constant(None),
            conversion: Conversion::plain(kind),
            multi: kind == ValueType::Text,
            required,
            lookup: (!lookup.is_empty()).then(|| Lookup {
                by_key: lookup.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                keys: lookup.iter().map(|(k, _)| k.to_string()).collect(),
            }),
            default,
        }
    }

    fn code(result: Result<Option<PropValue>, Problem>) -> String {
        result.map_or_else(|p| p.code, |v| format!("ok {v:?}"))
    }

    #[test]
    fn blank_input_uses_the_default_or_is_left_out_or_is_required() {
        let text = |s: &str| Ok(Some(PropValue::Text(s.into())));
        let cases = [
            (
                "blank, no default",
                rule(ValueType::Text, false, &[], None),
                json!(" "),
                Ok(None),
            ),
            (
                "blank, default",
                rule(ValueType::Text, false, &[], Some(json!("d"))),
                json!(null),
                text("d"),
            ),
            (
                "blank, required",
                rule(ValueType::Text, true, &[], None),
                json!([]),
                Err("required".to_string()),
            ),
            (
                "blank, required, default",
                rule(ValueType::Text, true, &[], Some(json!("d"))),
                json!(""),
                text("d"),
            ),
            (
                "blank skips the map",
                rule(ValueType::Text, false, &[("a", json!("A"))], None),
                json!(""),
                Ok(None),
            ),
        ];
        for (name, rule, input, want) in cases {
            let got = rule.finish(input).map_err(|p| p.code);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_map_is_applied_before_the_type() {
        let tiers = [("small", json!(1000)), ("large", json!("5,000"))];
        let cases = [
            (
                "mapped",
                rule(ValueType::Number, false, &tiers, None),
                json!("small"),
                "ok Some(Number(\"1000\"))",
            ),
            (
                "trimmed",
                rule(ValueType::Number, false, &tiers, None),
                json!(" large "),
                "ok Some(Number(\"5000\"))",
            ),
            (
                "no match",
                rule(ValueType::Number, false, &tiers, None),
                json!("medium"),
                "no_match",
            ),
            (
                "default",
                rule(ValueType::Number, false, &tiers, Some(json!(0))),
                json!("medium"),
                "ok Some(Number(\"0\"))",
            ),
            (
                "typed key",
                rule(ValueType::Text, false, &[("1", json!("one"))], None),
                json!(1),
                "ok Some(Text(\"one\"))",
            ),
        ];
        for (name, rule, input, want) in cases {
            assert_eq!(code(rule.finish(input)), want, "{name}");
        }
    }

    /// Every way `upsert_by` can name a property the route does not reliably fill.
    #[test]
    fn no_match_names_the_value_and_the_accepted_keys() {
        let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
        let problem = no_match("dealstage", &[json!(" gold ")], false, &keys);
        assert_eq!(problem.code, "no_match");
        assert_eq!(problem.field.as_deref(), Some("dealstage"));
        assert!(
            problem.message.starts_with("\"gold\" matches no `map` key"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("\"k0\", \"k1\"") && problem.message.contains("and 5 more"),
            "{}",
            problem.message
        );
        assert!(!problem.message.contains("\"k20\""), "{}", problem.message);
    }
}

/// Lists through every conversion (issue 10, item 2): multi-selects item by item, `;` inside
/// an item, empty and duplicate items, nested items, and lists where one value is expected.
#[cfg(test)]
mod multi_select_variants {
    use super::*;
    use crate::mapping::convert::DateFormat;
    use serde_json::json;

    fn rule(kind: ValueType, lookup: &[(&str, Value)], default: Option<Value>) -> ValueRule {
        ValueRule {
            field: "properties.services".into(),
            input: Compiled::Constant(None),
            conversion: Conversion::plain(kind),
            multi: kind == ValueType::Text,
            required: false,
            lookup: (!lookup.is_empty()).then(|| Lookup {
                by_key: lookup.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                keys: lookup.iter().map(|(k, _)| k.to_string()).collect(),
            }),
            default,
        }
    }

    fn services() -> Vec<(&'static str, Value)> {
        vec![
            ("Website redesign", json!("web_redesign")),
            ("SEO audit", json!("seo_audit")),
            ("Ads", json!("ads")),
            ("Paid ads", json!("ads")),
            ("Nothing", json!("")),
        ]
    }

    /// `Ok(wire text)` or `Err((code, phrases the message must hold))`.
    type Want = Result<&'static str, (&'static str, Vec<&'static str>)>;

    fn check(name: &str, rule: &ValueRule, input: Value, want: Want) {
        let got = rule.finish(input);
        match want {
            Ok(text) => assert_eq!(
                got.map(|v| v.map(|v| v.to_wire_string())),
                Ok(Some(text.to_owned())),
                "{name}"
            ),
            Err((code, phrases)) => {
                let problem = got.expect_err(name);
                assert_eq!(problem.code, code, "{name}: {}", problem.message);
                assert_eq!(problem.field.as_deref(), Some("properties.services"), "{name}");
                for phrase in phrases {
                    assert!(
                        problem.message.contains(phrase),
                        "{name}: {phrase:?} not in {}",
                        problem.message
                    );
                }
            }
        }
    }

    #[test]
    fn a_typeform_multiple_selection_is_mapped_item_by_item() {
        let input = json!(["Website redesign", "SEO audit"]);
        let without_default = rule(ValueType::Text, &services(), None);
        check(
            "no default",
            &without_default,
            input.clone(),
            Ok("web_redesign;seo_audit"),
        );
        let with_default = rule(ValueType::Text, &services(), Some(json!("other")));
        check("default unused", &with_default, input, Ok("web_redesign;seo_audit"));
    }

    #[test]
    fn a_jotform_checkbox_with_a_semicolon_is_an_error_naming_the_item() {
        let rule = rule(ValueType::Text, &[], None);
        check(
            "semicolon",
            &rule,
            json!(["Design; branding", "Web development"]),
            Err((
                "invalid_option",
                vec!["item \"Design; branding\" contains \";\"", "as 2 options", "map:"],
            )),
        );
    }

    #[test]
    fn every_list_variant_into_a_multi_select() {
        let mapped = rule(ValueType::Text, &services(), None);
        let defaulted = rule(ValueType::Text, &services(), Some(json!("other")));
        let plain = rule(ValueType::Text, &[], None);
        let one = rule(ValueType::Text, &[("1", json!("one"))], None);
        let renamed = rule(ValueType::Text, &[("Design; branding", json!("design"))], None);
        let both = rule(ValueType::Text, &[("Both", json!("a;b"))], None);
        let rows: Vec<(&str, &ValueRule, Value, Want)> = vec![
            ("one item", &mapped, json!(["SEO audit"]), Ok("seo_audit")),
            (
                "items are trimmed for the map",
                &mapped,
                json!([" SEO audit ", "Ads "]),
                Ok("seo_audit;ads"),
            ),
            (
                "map is case-sensitive",
                &mapped,
                json!(["seo audit"]),
                Err(("no_match", vec!["item \"seo audit\" matches no `map` key"])),
            ),
            (
                "every unmatched item is named",
                &mapped,
                json!(["Website redesign", "Branding", "Print"]),
                Err((
                    "no_match",
                    vec!["items \"Branding\", \"Print\" match no `map` key", "\"SEO audit\""],
                )),
            ),
            (
                "unmatched item takes the default",
                &defaulted,
                json!(["Branding", "SEO audit"]),
                Ok("other;seo_audit"),
            ),
            (
                "two unmatched items, one default",
                &defaulted,
                json!(["Branding", "Print", "Ads"]),
                Ok("other;ads"),
            ),
            ("duplicate items", &plain, json!(["a", "b", "a"]), Ok("a;b")),
            (
                "duplicates after the map",
                &mapped,
                json!(["Ads", "Paid ads", "SEO audit"]),
                Ok("ads;seo_audit"),
            ),
            ("duplicates after trimming", &plain, json!(["a", " a "]), Ok("a")),
            ("first order kept", &plain, json!(["c", "a", "c", "b"]), Ok("c;a;b")),
            (
                "empty items are dropped",
                &plain,
                json!(["a", "", null, "  ", "b"]),
                Ok("a;b"),
            ),
            (
                "an item mapped to nothing is dropped",
                &mapped,
                json!(["Nothing", "Ads"]),
                Ok("ads"),
            ),
            (
                "numbers and booleans as text",
                &plain,
                json!([1, 2.5, true]),
                Ok("1;2.5;true"),
            ),
            ("numbers through the map", &one, json!([1, "1"]), Ok("one")),
            (
                "inner spaces kept",
                &plain,
                json!(["Web development"]),
                Ok("Web development"),
            ),
            (
                "semicolon at the end",
                &plain,
                json!(["a;"]),
                Err(("invalid_option", vec!["item \"a;\""])),
            ),
            (
                "several items with semicolons",
                &plain,
                json!(["a;b", "c", "d;e"]),
                Err(("invalid_option", vec!["items \"a;b\", \"d;e\" contain"])),
            ),
            (
                "semicolon in an item the map renames is fine",
                &renamed,
                json!(["Design; branding"]),
                Ok("design"),
            ),
            (
                "semicolon in a map value",
                &both,
                json!(["Both"]),
                Err(("invalid_option", vec!["item \"Both\""])),
            ),
            (
                "nested list",
                &plain,
                json!(["a", ["b", "c"]]),
                Err(("invalid_option", vec!["is a list or an object"])),
            ),
            (
                "object item",
                &plain,
                json!([{"label": "a"}]),
                Err(("invalid_option", vec!["is a list or an object"])),
            ),
        ];
        for (name, rule, input, want) in rows {
            check(name, rule, input, want);
        }
    }

    #[test]
    fn blank_lists_are_blank_values() {
        let plain = rule(ValueType::Text, &[], None);
        for input in [json!([]), json!([null, "", " "])] {
            assert_eq!(plain.finish(input.clone()), Ok(None), "{input}");
        }
        let defaulted = rule(ValueType::Text, &services(), Some(json!("other")));
        assert_eq!(
            defaulted.finish(json!([])),
            Ok(Some(PropValue::Text("other".into()))),
            "an empty list takes the default"
        );
        let required = ValueRule {
            required: true,
            ..rule(ValueType::Text, &services(), None)
        };
        assert_eq!(
            required.finish(json!(["Nothing"])).map_err(|p| p.code),
            Err("required".into())
        );
    }

    #[test]
    fn a_single_string_is_one_value_even_with_separators() {
        // Only lists are split: a string is the value the template rendered (a template can
        // split it: `{{ fields.x | split(", ") }}`).
        let plain = rule(ValueType::Text, &[], None);
        check("already joined", &plain, json!("a;b"), Ok("a;b"));
        let mapped = rule(ValueType::Text, &services(), None);
        check(
            "joined string through a map",
            &mapped,
            json!("Website redesign;SEO audit"),
            Err(("no_match", vec!["\"Website redesign;SEO audit\" matches no `map` key"])),
        );
    }

    #[test]
    fn a_list_where_one_value_is_expected_needs_exactly_one_distinct_item() {
        let number = rule(ValueType::Number, &[], None);
        let date = rule(ValueType::Date, &[], None);
        let datetime = rule(ValueType::DateTime, &[], None);
        let boolean = rule(ValueType::Bool, &[], None);
        let tiers = rule(
            ValueType::Number,
            &[("small", json!(1000)), ("large", json!("5,000"))],
            None,
        );
        let stage = ValueRule {
            field: "properties.services".into(),
            multi: false,
            ..rule(ValueType::Text, &[], None)
        };
        let dec_15 = "1797292800000";
        let rows: Vec<(&str, &ValueRule, Value, Want)> = vec![
            ("one number", &number, json!(["1,200"]), Ok("1200")),
            (
                "two numbers",
                &number,
                json!(["1", "2"]),
                Err(("multiple_values", vec!["expected one number value, got a list of 2"])),
            ),
            ("the same number twice", &number, json!(["1,000", "1000"]), Ok("1000")),
            ("blank items around one", &number, json!(["", "7", null]), Ok("7")),
            (
                "one bad number",
                &number,
                json!(["abc"]),
                Err(("invalid_number", vec!["\"abc\""])),
            ),
            (
                "one good one bad",
                &number,
                json!(["1", "abc"]),
                Err(("multiple_values", vec!["got a list of 2"])),
            ),
            ("mapped to one", &tiers, json!(["large"]), Ok("5000")),
            (
                "mapped to two",
                &tiers,
                json!(["small", "large"]),
                Err(("multiple_values", vec!["[\"small\",\"large\"]"])),
            ),
            (
                "unmatched in a typed list",
                &tiers,
                json!(["medium"]),
                Err(("no_match", vec!["item \"medium\""])),
            ),
            ("one date", &date, json!(["20261215"]), Ok(dec_15)),
            (
                "two dates",
                &date,
                json!(["2026-12-15", "2026-12-16"]),
                Err(("multiple_values", vec!["one date value"])),
            ),
            (
                "the same date twice in two spellings",
                &date,
                json!(["2026-12-15", "20261215"]),
                Ok(dec_15),
            ),
            ("one datetime", &datetime, json!([1_797_292_800]), Ok(dec_15)),
            (
                "two datetimes",
                &datetime,
                json!([1_797_292_800, 1_797_292_801]),
                Err(("multiple_values", vec!["one datetime value"])),
            ),
            ("one bool", &boolean, json!(["yes"]), Ok("true")),
            ("yes in two spellings", &boolean, json!(["yes", "Y"]), Ok("true")),
            (
                "yes and no",
                &boolean,
                json!(["yes", "no"]),
                Err(("multiple_values", vec!["one bool value"])),
            ),
            (
                "nested list into a number",
                &number,
                json!([[1]]),
                Err(("multiple_values", vec!["a list of 1"])),
            ),
            ("one id", &stage, json!(["qualifiedtobuy"]), Ok("qualifiedtobuy")),
            (
                "two ids",
                &stage,
                json!(["a", "b"]),
                Err(("multiple_values", vec!["expected one value"])),
            ),
        ];
        for (name, rule, input, want) in rows {
            check(name, rule, input, want);
        }
    }

    #[test]
    fn a_long_list_is_deduplicated_quickly() {
        let items: Vec<Value> = (0..50_000).map(|i| json!(format!("option_{}", i % 25_000))).collect();
        let start = std::time::Instant::now();
        let joined = rule(ValueType::Text, &[], None)
            .finish(Value::Array(items))
            .unwrap()
            .unwrap();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(joined.to_wire_string().split(';').count(), 25_000);
    }

    #[test]
    fn list_items_use_the_format_of_the_rule() {
        let rule = ValueRule {
            conversion: Conversion {
                format: Some(DateFormat::parse("%d/%m/%Y").unwrap()),
                ..Conversion::plain(ValueType::Date)
            },
            ..rule(ValueType::Date, &[], None)
        };
        check("formatted item", &rule, json!(["15/12/2026"]), Ok("1797292800000"));
    }
}
