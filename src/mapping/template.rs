//! Jinja templates (minijinja): one `Environment` per Mapping, every template compiled at load.
//! Rendering is bounded by fuel and a recursion limit, does no I/O and never panics.
//!
//! Fuel bounds what minijinja builds step by step (loops, strings, `"x" * n`, `range`), but a
//! value can be large without having been built item by item: `[big_list] * 1000` is a lazy
//! repetition of up to 100 million items, and a list that holds another twice per level
//! (`{% set l = [l, l] %}`) doubles for one statement. minijinja serialises such a
//! value in one step and only then charges fuel, so printing it, `tojson`, `pprint`, `string`
//! or `sum` over it would run for minutes and use gigabytes. Each of these first walks the
//! value within [`MAX_VALUE_ITEMS`], [`MAX_VALUE_BYTES`] and [`MAX_VALUE_DEPTH`] and fails with
//! a `template_error` past them. Still unbounded (minijinja 3.1 converts or compares without
//! fuel, and filters cannot intercept operators): `~`, `==`/`in` and string filters (`lower`,
//! `replace`, …) applied to such a value. Reaching those takes a deliberate template: no input
//! can make a value large (bodies are capped in size, depth and value count).

use minijinja::value::{Kwargs, Rest, Serde, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use serde::Serialize;

use std::sync::Arc;

use super::json_view;
use crate::domain::Submission;

mod names;

/// Why a template cannot be compiled: a sentence, and where in the template the fault is when known
/// (1-based line and column in characters; the column counts from the expression for a `match:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub message: String,
    pub position: Option<(usize, usize)>,
}

impl From<String> for TemplateError {
    fn from(message: String) -> TemplateError {
        TemplateError {
            message,
            position: None,
        }
    }
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Fuel per render: roughly this many instructions, or 64 times as many bytes of data made,
/// whichever runs out first. Enough for any sane field template over a 10 MB body; a runaway
/// loop stops within tens of milliseconds.
pub(crate) const FUEL: u64 = 250_000;

/// Nesting depth allowed during a render (loops, ifs, includes).
pub(crate) const RECURSION_LIMIT: usize = 64;

/// The most items (values at any depth, counted each time they are reached) a value may have
/// to be printed, returned or serialised (`tojson`, `pprint`, `string`, `sum`).
pub(crate) const MAX_VALUE_ITEMS: usize = 100_000;

/// The most bytes of text (strings, map keys, `tojson`/`pprint` indentation) such a value may hold.
pub(crate) const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// The deepest such a value may nest.
pub(crate) const MAX_VALUE_DEPTH: usize = 128;

/// The widest indentation `tojson` accepts.
pub(crate) const MAX_JSON_INDENT: usize = 16;

/// The variables a template sees, besides minijinja's globals (`range`, `dict`; not `namespace`,
/// see [`Templates::new`]).
pub(crate) const CONTEXT_VARIABLES: [&str; 4] = ["fields", "raw", "submission", "route"];

/// The variables a template of a route with `for_each` also sees: the item of its record, and the
/// item's 0-based index in the list.
pub(crate) const RECORD_VARIABLES: [&str; 2] = ["item", "item_index"];

/// The compiled templates of one mapping.
#[derive(Debug)]
pub(crate) struct Templates {
    env: Environment<'static>,
    /// Whether templates compiled now may use [`RECORD_VARIABLES`] (see [`Templates::set_record_variables`]).
    record_variables: bool,
}

/// A compiled template, by name, and how its result is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateRef {
    name: String,
    single_expression: bool,
    has_expressions: bool,
}

/// What the formatter saw during one render, kept in the render's State.
#[derive(Default)]
struct Emitted {
    non_blank: usize,
    first: Option<Value>,
}

impl Templates {
    /// An environment configured for mappings: undefined values chain (`fields.a.b` on
    /// missing data is empty), no auto-escaping, bounded evaluation, `none` prints as nothing
    /// and `default` also replaces `none` (JSON `null` is how webhooks say "not given").
    /// `tojson`, `pprint`, `string` and `sum` check the size of their value first (see the
    /// module's doc), and there is no `namespace`.
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_formatter(format_and_record);
        env.add_filter("default", default_filter);
        env.add_filter("d", default_filter);
        env.add_filter("tojson", tojson_filter);
        env.add_filter("pprint", pprint_filter);
        env.add_filter("string", string_filter);
        env.add_filter("sum", sum_filter);
        // A namespace is the only way to carry a value from one loop turn to the next, which is
        // what it takes to nest a list thousands deep (`ns.l = [ns.l]`: dropping it then
        // overflows the stack and aborts the process) or to double it per turn. Mappings read
        // one submission and need neither; a template that names it fails to load.
        env.remove_global("namespace");
        Templates {
            env,
            record_variables: false,
        }
    }

    /// Lets the templates compiled from now on use [`RECORD_VARIABLES`] (`on`: the deal's templates of
    /// a route with `for_each`), or makes them unknown variables again. A route's `match` and
    /// `for_each` are compiled with it off: they are evaluated once per delivery, before any item.
    pub fn set_record_variables(&mut self, on: bool) {
        self.record_variables = on;
    }

    /// Compiles `source` under `name` (unique per mapping, e.g. `website-quote/properties.amount`).
    /// Errors are a sentence: minijinja's syntax message, the unknown variables it uses (with
    /// undefined values chaining, a misspelt `field.x` would otherwise be silently empty), or the
    /// filters, tests and methods the environment does not have (`names.rs`; with the position of
    /// the first).
    pub fn add(&mut self, name: String, source: &str) -> Result<TemplateRef, TemplateError> {
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|e| describe_error(&e, source))?;
        let template = self.env.get_template(&name).map_err(|e| describe_error(&e, source))?;
        let globals: Vec<String> = self.env.globals().map(|(n, _)| n.to_owned()).collect();
        let known =
            |v: &str| CONTEXT_VARIABLES.contains(&v) || (self.record_variables && RECORD_VARIABLES.contains(&v));
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !known(v) && !globals.contains(v))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            let plural = if unknown.len() == 1 { "" } else { "s" };
            let seen = match self.record_variables {
                true => [CONTEXT_VARIABLES.as_slice(), RECORD_VARIABLES.as_slice()]
                    .concat()
                    .join(", "),
                false => CONTEXT_VARIABLES.join(", "),
            };
            let hint = if !self.record_variables && unknown.iter().any(|v| RECORD_VARIABLES.contains(&v.as_str())) {
                "; `item` and `item_index` exist only in the `deal` of a route with `for_each`"
            } else {
                ""
            };
            return Err(TemplateError::from(format!(
                "unknown variable{plural} {} (templates see {seen}{hint})",
                unknown.join(", "),
            )));
        }
        let unknown_names = names::unknown_names(&self.env, &template);
        if let Some(first) = unknown_names.first() {
            let message: Vec<&str> = unknown_names.iter().map(|u| u.message.as_str()).collect();
            return Err(TemplateError {
                message: message.join("; "),
                position: first.line.zip(first.column),
            });
        }
        Ok(TemplateRef {
            name,
            single_expression: is_single_expression(source),
            has_expressions: has_expressions(source),
        })
    }

    /// Compiles a `match:` expression (Jinja without braces, `fields.form_id == "lT4Z3j"`) under
    /// `name`. It is checked as one standalone expression first (so `a }}{{ b` cannot sneak in),
    /// then stored as the template `{{ EXPR }}`, whose single printed value [`Templates::evaluate`]
    /// reads back. Same variable rules as templates.
    pub fn add_expression(&mut self, name: String, expr: &str) -> Result<TemplateRef, TemplateError> {
        // Only a syntax check: minijinja's `Expression` borrows the environment, so it is not kept.
        if let Err(e) = self.env.compile_expression(expr) {
            return Err(describe_error(&e, expr).into());
        }
        // The spaces matter: `{{-1 …` would be whitespace control, `{{ -1 …` is a negative number.
        let template = self
            .add(name, &format!("{{{{ {expr} }}}}"))
            .map_err(|e| TemplateError {
                // Positions in the expression as written, without the `{{ ` put in front of it.
                position: e.position.map(|(line, column)| match line {
                    1 => (1, column.saturating_sub(3).max(1)),
                    _ => (line, column),
                }),
                ..e
            })?;
        Ok(TemplateRef {
            single_expression: true,
            has_expressions: true,
            ..template
        })
    }

    /// The variable paths an expression reads (`fields.form_id`, `submission.event_type`: attribute
    /// chains, in name order), each compiled as an expression of its own under `{name}#{path}`, so
    /// that an `ignored` answer can show what the expression saw. A path that fails to compile is
    /// left out (it cannot: it was read from an expression that compiled).
    pub fn add_paths(&mut self, name: &str, expr: &str) -> Vec<(String, TemplateRef)> {
        let mut paths: Vec<String> = match self.env.compile_expression(expr) {
            Ok(compiled) => compiled.undeclared_variables(true).into_iter().collect(),
            Err(_) => return Vec::new(),
        };
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let template = self.add_expression(format!("{name}#{path}"), &path).ok()?;
                Some((path, template))
            })
            .collect()
    }

    /// Evaluates a template made by [`Templates::add_expression`] and returns the expression's
    /// value as minijinja sees it (undefined when nothing was printed), for Jinja truthiness.
    pub fn evaluate(&self, expression: &TemplateRef, context: &Value) -> Result<Value, String> {
        let compiled = self
            .env
            .get_template(&expression.name)
            .map_err(|e| describe_error(&e, ""))?;
        let captured = compiled
            .render_captured(context.clone())
            .map_err(|e| describe_error(&e, compiled.source()))?;
        let first = captured
            .state()
            .get_extension::<Emitted>()
            .and_then(|e| e.first.clone());
        Ok(first.unwrap_or(Value::UNDEFINED))
    }

    /// Renders `template` against `context` (see [`context`]).
    ///
    /// A single-expression template (`{{ fields.vids }}`) yields its value with its type, so a
    /// list stays a list; undefined and `none` become `null`. Any other template yields its
    /// output as a string, or `null` when it has `{{ … }}` expressions and every one it
    /// evaluated printed nothing but whitespace (`"Inbound: {{ fields.name }}"` with no name).
    /// Errors (fuel, unknown filter, bad operation) are a sentence for a Problem.
    pub fn render(&self, template: &TemplateRef, context: &Value) -> Result<serde_json::Value, String> {
        let compiled = self
            .env
            .get_template(&template.name)
            .map_err(|e| describe_error(&e, ""))?;
        let captured = compiled
            .render_captured(context.clone())
            .map_err(|e| describe_error(&e, compiled.source()))?;
        let emitted = captured.state().get_extension::<Emitted>();
        if template.single_expression {
            let value = emitted.and_then(|e| e.first.as_ref());
            return Ok(value.map(value_to_json).unwrap_or(serde_json::Value::Null));
        }
        let non_blank = emitted.map_or(0, |e| e.non_blank);
        if template.has_expressions && non_blank == 0 {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::Value::String(captured.into_output()))
    }
}

/// What templates see of one Submission: `fields` and `raw` as lazy views (see [`json_view`]),
/// converted only where a template reads them; every route's `match` and templates then share it
/// (minijinja values are reference-counted, so cloning is cheap).
pub(crate) struct Scope {
    fields: Value,
    raw: Value,
    submission: Value,
}

impl Scope {
    pub fn new(submission: &Submission) -> Scope {
        #[derive(Serialize)]
        struct Meta<'a> {
            id: Option<&'a str>,
            source: &'a str,
            submitted_at: Option<&'a str>,
            received_at: &'a str,
            event_type: Option<&'a str>,
        }
        let meta = Meta {
            id: submission.id.as_deref(),
            source: &submission.source,
            submitted_at: submission.submitted_at.as_deref(),
            received_at: &submission.received_at,
            event_type: submission.event_type.as_deref(),
        };
        Scope {
            fields: json_view::view_object(Arc::clone(&submission.fields)),
            raw: json_view::view(Arc::clone(&submission.raw)),
            submission: Value::from(Serde(&meta)),
        }
    }

    /// The template context for one route.
    pub fn context(&self, route: &str) -> Value {
        minijinja::context! {
            fields => self.fields.clone(),
            raw => self.raw.clone(),
            submission => self.submission.clone(),
            route => route,
        }
    }

    /// The template context for one record of a route with `for_each`: [`Scope::context`] with
    /// `item` (the item's value) and `item_index` (its 0-based index in the list).
    pub fn record_context(&self, route: &str, item: &Value, index: usize) -> Value {
        minijinja::context! {
            fields => self.fields.clone(),
            raw => self.raw.clone(),
            submission => self.submission.clone(),
            route => route,
            item => item.clone(),
            item_index => index,
        }
    }
}

/// The template context for one Submission on one route.
pub(crate) fn context(route: &str, submission: &Submission) -> Value {
    Scope::new(submission).context(route)
}

/// True when a string is a template rather than a literal: it has `{{`, `{%` or `{#`.
pub(crate) fn looks_like_template(text: &str) -> bool {
    ["{{", "{%", "{#"].iter().any(|m| text.contains(m))
}

/// Exactly one `{{ … }}` (with optional `-`/`+` whitespace control) and only whitespace around it.
fn is_single_expression(source: &str) -> bool {
    let Some(inner) = source.trim().strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) else {
        return false;
    };
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    !inner.trim().is_empty() && !["{{", "}}", "{%", "%}", "{#", "#}"].iter().any(|m| inner.contains(m))
}

/// Whether the template prints any `{{ … }}` (comments aside).
fn has_expressions(source: &str) -> bool {
    let mut rest = source;
    loop {
        let expr = rest.find("{{");
        let comment = rest.find("{#");
        match (expr, comment) {
            (Some(e), Some(c)) if c < e => match rest.get(c..).and_then(|r| r.find("#}")) {
                Some(end) => rest = rest.get(c + end + 2..).unwrap_or_default(),
                None => return false,
            },
            (Some(_), _) => return true,
            (None, _) => return false,
        }
    }
}

fn is_blank_value(value: &Value) -> bool {
    if value.is_undefined() || value.is_none() {
        return true;
    }
    match value.as_str() {
        Some(s) => s.trim().is_empty(),
        None => value.kind() == minijinja::value::ValueKind::Seq && value.len() == Some(0),
    }
}

/// Prints values like minijinja does, except that blanks (undefined, `none`, empty lists)
/// print nothing, and records what was printed for [`Templates::render`].
fn format_and_record(out: &mut minijinja::Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let blank = is_blank_value(value);
    let emitted = state.get_or_insert_extension_with(Emitted::default);
    if emitted.first.is_none() {
        emitted.first = Some(value.clone());
    }
    if blank {
        return Ok(());
    }
    emitted.non_blank += 1;
    check_size(value, 0)?;
    minijinja::escape_formatter(out, state, value)
}

/// Walks `value` (without recursion) and fails once it has more than [`MAX_VALUE_ITEMS`] items,
/// [`MAX_VALUE_BYTES`] of text or [`MAX_VALUE_DEPTH`] levels; `indent` bytes per level and item
/// are counted as text (pretty-printed output). Shared parts count each time they are reached.
fn check_size(value: &Value, indent: usize) -> Result<(), Error> {
    let too_large = |what: String| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("the value is too large to print or serialise: {what}"),
        )
    };
    let mut items = 0usize;
    let mut bytes = 0usize;
    let mut stack: Vec<(Value, minijinja::value::ValueIter)> = Vec::new();
    let mut next = Some(value.clone());
    loop {
        if let Some(item) = next.take() {
            items += 1;
            if items > MAX_VALUE_ITEMS {
                return Err(too_large(format!("more than {MAX_VALUE_ITEMS} items")));
            }
            let text = item.as_str().map_or(0, str::len) + item.as_bytes().map_or(0, <[u8]>::len);
            bytes = bytes
                .saturating_add(text)
                .saturating_add(indent.saturating_mul(stack.len()));
            if bytes > MAX_VALUE_BYTES {
                return Err(too_large(format!("more than {MAX_VALUE_BYTES} bytes")));
            }
            if matches!(item.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) {
                if stack.len() >= MAX_VALUE_DEPTH {
                    return Err(too_large(format!("nested deeper than {MAX_VALUE_DEPTH} levels")));
                }
                let iter = item.try_iter()?;
                stack.push((item, iter));
            }
        }
        let Some((container, iter)) = stack.last_mut() else {
            return Ok(());
        };
        match iter.next() {
            Some(key) if container.kind() == ValueKind::Map => {
                bytes = bytes.saturating_add(key.as_str().map_or(0, str::len));
                next = Some(container.get_item(&key).unwrap_or_default());
            }
            Some(element) => next = Some(element),
            None => {
                stack.pop();
            }
        }
    }
}

/// minijinja's `tojson`, for values within [`check_size`] (indentation counted) and an indent
/// of at most [`MAX_JSON_INDENT`].
fn tojson_filter(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let width = match &indent {
        Some(v) if v.kind() == ValueKind::Bool => usize::from(v.is_true()) * 2,
        Some(v) => usize::try_from(v.clone())?,
        None => 0,
    };
    if width > MAX_JSON_INDENT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: an indent of {width} is over the limit of {MAX_JSON_INDENT}"),
        ));
    }
    check_size(value, width)?;
    minijinja::filters::tojson(value, indent, Kwargs::from_iter(std::iter::empty::<(&str, Value)>()))
}

/// minijinja's `pprint` (four spaces per level), for values within [`check_size`].
fn pprint_filter(value: &Value) -> Result<String, Error> {
    check_size(value, 4)?;
    Ok(minijinja::filters::pprint(value))
}

/// minijinja's `string`, for values within [`check_size`].
fn string_filter(state: &State, value: &Value) -> Result<Value, Error> {
    check_size(value, 0)?;
    minijinja::filters::string(state, value)
}

/// minijinja's `sum`, for values within [`check_size`] (adding lists copies them each time).
fn sum_filter(
    state: &State,
    values: Value,
    attribute: Option<&str>,
    start: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_size(&values, 0)?;
    minijinja::filters::sum(state, values, attribute, start, kwargs)
}

/// Jinja's `default`, but `none` counts as missing too.
fn default_filter(state: &State, value: &Value, args: Rest<Value>) -> Result<Value, Error> {
    let value = if value.is_none() { &Value::UNDEFINED } else { value };
    minijinja::filters::default(state, value, args)
}

pub(crate) fn value_to_json(value: &Value) -> serde_json::Value {
    if value.is_undefined() || value.is_none() {
        return serde_json::Value::Null;
    }
    // Values that have no JSON form (e.g. maps with non-string keys) fall back to their text.
    serde_json::to_value(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()))
}

/// minijinja's message without its "(in name:line)" suffix, which names our internal template
/// name; the line is added when the template spans several lines.
fn describe_error(err: &Error, source: &str) -> String {
    let mut message = match (err.kind(), err.detail()) {
        (ErrorKind::OutOfFuel, _) => "the template used up its evaluation budget (it loops or builds too much)".into(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    if let Some(line) = err.line().filter(|_| source.contains('\n')) {
        message.push_str(&format!(" (template line {line})"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn submission(fields: serde_json::Value) -> Submission {
        Submission {
            source: "json".into(),
            id: Some("evt-1".into()),
            submitted_at: None,
            received_at: "2026-11-25T10:00:00.000Z".into(),
            event_type: Some("form_response".into()),
            fields: fields.as_object().cloned().unwrap_or_default().into(),
            raw: fields.into(),
        }
    }

    fn render_one(source: &str, fields: serde_json::Value) -> Result<serde_json::Value, String> {
        let mut templates = Templates::new();
        let t = templates.add("r/f".into(), source).map_err(|e| e.message)?;
        templates.render(&t, &context("r", &submission(fields)))
    }

    #[test]
    fn single_expressions_keep_the_type_of_their_value() {
        let fields = json!({"vids": [1, "2"], "n": 12.5, "b": true, "s": "x", "o": {"k": 1}, "nul": null});
        let cases = [
            ("{{ fields.vids }}", json!([1, "2"])),
            ("  {{- fields.vids -}}  ", json!([1, "2"])),
            ("{{ fields.n }}", json!(12.5)),
            ("{{ fields.b }}", json!(true)),
            ("{{ fields.s }}", json!("x")),
            ("{{ fields.o }}", json!({"k": 1})),
            ("{{ fields.nul }}", json!(null)),
            ("{{ fields.missing.deeper }}", json!(null)),
            ("{{ fields.vids | length }}", json!(2)),
            ("{{ fields.s if fields.b else 1 }}", json!("x")),
        ];
        for (source, want) in cases {
            assert_eq!(render_one(source, fields.clone()), Ok(want), "template {source:?}");
        }
    }

    #[test]
    fn mixed_templates_are_text_and_empty_only_when_every_expression_is() {
        let fields = json!({"name": "Ada", "blank": "  ", "nul": null, "list": []});
        let cases = [
            ("Inbound: {{ fields.name }}", json!("Inbound: Ada")),
            ("Inbound: {{ fields.missing }}", json!(null)),
            (
                "Inbound: {{ fields.blank }}{{ fields.nul }}{{ fields.list }}",
                json!(null),
            ),
            ("{{ fields.missing }} / {{ fields.name }}", json!(" / Ada")),
            (
                "Inbound: {% if fields.missing %}{{ fields.missing }}{% endif %}",
                json!(null),
            ),
            ("{% if fields.name %}yes{% endif %}", json!("yes")),
            ("{# {{ fields.x }} #}plain", json!("plain")),
            ("{{ fields.nul | default('quote') }}!", json!("quote!")),
            ("{{ fields.missing | d('x') }}", json!("x")),
        ];
        for (source, want) in cases {
            assert_eq!(render_one(source, fields.clone()), Ok(want), "template {source:?}");
        }
    }

    #[test]
    fn the_context_has_fields_raw_submission_and_route() {
        let got = render_one(
            "{{ fields.a }}|{{ raw.a }}|{{ submission.id }}|{{ submission.source }}|{{ submission.received_at }}|{{ route }}",
            json!({"a": "A"}),
        );
        assert_eq!(got, Ok(json!("A|A|evt-1|json|2026-11-25T10:00:00.000Z|r")));
    }

    #[test]
    fn syntax_errors_and_unknown_variables_fail_at_compile_time() {
        let cases = [
            ("{{ fields.x ", "syntax error"),
            ("{% for %}", "syntax error"),
            ("{{ field.x }}", "unknown variable field"),
            ("{{ a }}{{ b }}", "unknown variables a, b"),
        ];
        for (source, want) in cases {
            let err = Templates::new().add("r/f".into(), source).expect_err(source).message;
            assert!(err.contains(want), "template {source:?}: {err}");
            assert!(!err.contains("r/f"), "template {source:?}: internal name leaked: {err}");
        }
        let err = Templates::new()
            .add("r/f".into(), "{% set ns = namespace(n=0) %}{{ ns.n }}")
            .expect_err("namespace")
            .message;
        assert!(err.contains("unknown variable namespace"), "{err}");
        for fine in [
            "{% set x = 1 %}{{ x }}",
            "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}",
        ] {
            assert!(Templates::new().add("r/f".into(), fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn runaway_templates_run_out_of_fuel_quickly() {
        let start = std::time::Instant::now();
        let source = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let err = render_one(source, json!({})).expect_err("must not finish");
        assert!(err.contains("evaluation budget"), "{err}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }

    /// Each template would run for minutes or allocate gigabytes if it were not stopped.
    #[test]
    fn runaway_templates_end_in_an_error_quickly() {
        let big = "([range(100000)] * 1000)";
        let doubled = format!("{{% set l = [1] %}}{}", "{% set l = [l, l] %}".repeat(40));
        let nested = format!("{{% set l = [] %}}{}", "{% set l = [l] %}".repeat(200));
        let cases: Vec<(String, &str)> = vec![
            // Bounded by fuel.
            (r#"{{ "x" * 1000000000 }}"#.into(), "evaluation budget"),
            ("{{ range(1000000000) | length }}".into(), "range has too many elements"),
            (
                format!(r#"{{% set s = "x" %}}{}"#, "{% set s = s ~ s %}".repeat(64)),
                "evaluation budget",
            ),
            (r#"{{ "a\nb" | indent(1000000000) }}"#.into(), "evaluation budget"),
            (r#"{{ "%1000000000s" | format("x") }}"#.into(), "evaluation budget"),
            (
                r#"{{ ("x" * 1000) | replace("", "y" * 1000) | replace("", "z" * 1000) }}"#.into(),
                "evaluation budget",
            ),
            (
                r#"{{ ("x " * 1000000) | split | list | length }}"#.into(),
                "evaluation budget",
            ),
            (
                "{% for i in [1] recursive %}{{ loop([i, i]) }}{% endfor %}".into(),
                "recursion limit",
            ),
            // Bounded by the size check: lazily repeated lists.
            ("x{{ [range(100000)] * 100000 }}".into(), "more than 100000 items"),
            ("{{ [range(100000)] * 100000 }}".into(), "more than 100000 items"),
            (format!("{{{{ {big} | tojson }}}}"), "more than 100000 items"),
            (format!("{{{{ {big} | pprint }}}}"), "more than 100000 items"),
            (format!("{{{{ {big} | string | length }}}}"), "more than 100000 items"),
            (
                format!("{{{{ {big} | sum(start=[]) | length }}}}"),
                "more than 100000 items",
            ),
            // Shared parts: 2^40 items for 40 statements.
            (format!("{doubled}{{{{ l }}}}"), "more than 100000 items"),
            (format!("{doubled}x{{{{ l }}}}"), "more than 100000 items"),
            (format!("{doubled}{{{{ l | tojson }}}}"), "more than 100000 items"),
            // Depth, and output size through indentation.
            (format!("{nested}{{{{ l }}}}"), "nested deeper than 128 levels"),
            (format!("{nested}{{{{ l | tojson }}}}"), "nested deeper than 128 levels"),
            (
                "{{ [[1]] | tojson(indent=100000000) }}".into(),
                "indent of 100000000 is over the limit of 16",
            ),
            (
                "{{ ([[[[[[[[[[range(1000) | list]]]]]]]]]] * 50) | tojson(indent=16) }}".into(),
                "more than 4194304 bytes",
            ),
        ];
        for (source, want) in cases {
            let start = std::time::Instant::now();
            let err = render_one(&source, json!({})).expect_err(&source);
            let took = start.elapsed();
            assert!(err.contains(want), "template {source:?}: {err}");
            assert!(
                took < std::time::Duration::from_secs(3),
                "template {source:?} took {took:?}"
            );
        }
    }

    #[test]
    fn bounded_filters_keep_minijinjas_output_for_values_within_the_limits() {
        let fields = json!({"a": [1, "<b>"], "o": {"k": null}});
        let cases = [
            (
                "{{ fields | tojson }}",
                json!(r#"{"a": [1, "\u003cb\u003e"], "o": {"k": null}}"#),
            ),
            (
                "{{ fields.a | tojson(indent=2) }}",
                json!("[\n  1,\n  \"\\u003cb\\u003e\"\n]"),
            ),
            (
                "{{ fields.a | tojson(true) }}",
                json!("[\n  1,\n  \"\\u003cb\\u003e\"\n]"),
            ),
            ("{{ fields.o | pprint }}", json!("{\n    'k': None,\n}")),
            ("{{ fields.a | string }}", json!("[1, '<b>']")),
            ("{{ [1, 2, 3] | sum }}", json!(6)),
            ("{{ [[1], [2]] | sum(start=[]) }}", json!([1, 2])),
            ("{{ range(100000) | list | length }}", json!(100000)),
        ];
        for (source, want) in cases {
            assert_eq!(render_one(source, fields.clone()), Ok(want), "template {source:?}");
        }
        let err = render_one("{{ fields | tojson(indent=2, nope=1) }}", fields).expect_err("unknown kwarg");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn render_errors_are_sentences() {
        let cases = [
            ("{{ 1 / 0 }}", "invalid operation"),
            ("line one\n{{ fields.x + 'a' }}", "template line 2"),
        ];
        for (source, want) in cases {
            let err = render_one(source, json!({"x": 1, "s": "t"})).expect_err(source);
            assert!(err.contains(want), "template {source:?}: {err}");
        }
    }

    #[test]
    fn single_expressions_are_recognised() {
        let cases = [
            ("{{ a }}", true),
            (" {{- a | join(',') -}}\n", true),
            ("{{ a }}{{ b }}", false),
            ("x {{ a }}", false),
            ("{{ a }} {% if b %}{% endif %}", false),
            ("{{ }}", false),
            ("plain", false),
        ];
        for (source, want) in cases {
            assert_eq!(is_single_expression(source), want, "{source:?}");
        }
    }

    #[test]
    fn expressions_are_checked_as_one_expression_and_evaluate_to_their_value() {
        let mut templates = Templates::new();
        let ctx = context("r", &submission(json!({"form_id": "abc", "n": 3})));
        let cases = [
            ("fields.form_id == \"abc\"", true),
            ("fields.form_id == \"}}\"", false),
            ("fields.n > 2 and route == \"r\"", true),
            ("fields.missing", false),
            ("submission.event_type", true),
            ("-1 > fields.n", false),
        ];
        for (i, (expr, want)) in cases.into_iter().enumerate() {
            let t = templates
                .add_expression(format!("r/match{i}"), expr)
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            let value = templates.evaluate(&t, &ctx).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(value.is_true(), want, "{expr}");
        }
        for (expr, want) in [
            ("fields.a }}{{ fields.b", "unexpected input after expression"),
            ("fields.a ==", "syntax error"),
            ("{% if x %}", "syntax error"),
            ("form_id == 1", "unknown variable form_id"),
        ] {
            let err = templates.add_expression("r/bad".into(), expr).expect_err(expr).message;
            assert!(err.contains(want), "{expr}: {err}");
        }
    }
}
