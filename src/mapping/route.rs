//! A compiled route: value rules with their templates compiled and constants pre-converted,
//! its `match` condition, and `Route::map`, which turns one Submission into a DealDraft or
//! every Problem it has.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::convert::{ValueType, is_blank, parse_ids, show, to_text};
use super::diagnostic::{At, Report};
use super::spec::{IdsSpec, Input, MatchSpec, RouteSpec, ValueSpec};
use super::template::{Scope, TemplateRef, Templates, context};
use super::yaml::Loc;
use crate::domain::{Associations, DealDraft, Problem, PropValue, Property, Submission};
use crate::inbound::Source;
use crate::inbound::verify::{PublicUrl, Scheme};

/// One configured route: which deliveries to `/hooks/{endpoint}` it takes (`match`), and how
/// they are mapped into a DealDraft.
#[derive(Debug)]
pub struct Route {
    name: String,
    source: Source,
    endpoint: String,
    scheme: Option<Scheme>,
    /// The key under `signing` in the secret, and where the file names it.
    signing_secret: Option<(String, Loc)>,
    /// `public_url:` (hubspot-v3 routes only).
    public_url: Option<PublicUrl>,
    condition: Option<TemplateRef>,
    pipeline: Option<ValueRule>,
    dealstage: ValueRule,
    properties: Vec<(String, ValueRule)>,
    companies: Option<IdsRule>,
    contacts: Option<IdsRule>,
    templates: Arc<Templates>,
}

impl Route {
    /// The route's name (in messages, logs and dead letters).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of sender this route serves.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The endpoint the route is served at, as in `/hooks/{endpoint}`: `endpoint:`, or the
    /// route's name when the file does not say.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    pub(crate) fn signing_secret(&self) -> Option<&(String, Loc)> {
        self.signing_secret.as_ref()
    }

    pub(crate) fn public_url(&self) -> Option<&PublicUrl> {
        self.public_url.as_ref()
    }

    pub(crate) fn has_condition(&self) -> bool {
        self.condition.is_some()
    }

    /// Whether this route takes the delivery: no `match`, or a truthy one (Jinja truthiness:
    /// undefined, `none`, `false`, `0`, `""` and empty lists are false). An evaluation failure
    /// is the problem `match_error` at `match`, naming the route.
    pub(crate) fn matches(&self, scope: &Scope) -> Result<bool, Problem> {
        let Some(condition) = &self.condition else {
            return Ok(true);
        };
        self.templates
            .evaluate(condition, &scope.context(&self.name))
            .map(|value| value.is_true())
            .map_err(|message| {
                Problem::at(
                    "match",
                    "match_error",
                    format!("route {}: `match` could not be evaluated: {message}", self.name),
                )
            })
    }

    /// Maps one Submission. All problems of the delivery are collected and returned together,
    /// each naming its field (`dealstage`, `properties.amount`, `associations.companies`) and
    /// its rule code (`required`, `no_match`, `invalid_number`, `invalid_date`,
    /// `invalid_datetime`, `invalid_bool`, `invalid_id`, `template_error`).
    pub fn map(&self, submission: &Submission) -> Result<DealDraft, Vec<Problem>> {
        let ctx = context(&self.name, submission);
        let eval = Eval {
            templates: &self.templates,
            ctx: &ctx,
        };
        let mut problems = Vec::new();

        let pipeline = self
            .pipeline
            .as_ref()
            .and_then(|rule| keep(eval.value(rule), &mut problems))
            .map(|v| v.to_wire_string().trim().to_owned());
        let dealstage = keep(eval.value(&self.dealstage), &mut problems).map(|v| v.to_wire_string().trim().to_owned());

        let mut properties = Vec::with_capacity(self.properties.len());
        for (name, rule) in &self.properties {
            if let Some(value) = keep(eval.value(rule), &mut problems) {
                properties.push(Property {
                    name: name.clone(),
                    value,
                });
            }
        }

        let mut associations = Associations::default();
        if let Some(rule) = &self.companies {
            associations.company_ids = keep(eval.ids(rule).map(Some), &mut problems).unwrap_or_default();
        }
        if let Some(rule) = &self.contacts {
            associations.contact_ids = keep(eval.ids(rule).map(Some), &mut problems).unwrap_or_default();
        }

        match dealstage {
            Some(dealstage) if problems.is_empty() => Ok(DealDraft {
                pipeline,
                dealstage,
                properties,
                associations,
            }),
            Some(_) => Err(problems),
            None => {
                // The stage rule is always `required`, so this is already reported; but a
                // DealDraft without a stage must never slip through with an empty problem list.
                if !problems.iter().any(|p| p.field.as_deref() == Some("dealstage")) {
                    problems.push(Problem::at("dealstage", "required", "is required but rendered empty"));
                }
                Err(problems)
            }
        }
    }
}

/// Keeps the value of a result and moves its problem to `problems`.
fn keep<T>(result: Result<Option<T>, Problem>, problems: &mut Vec<Problem>) -> Option<T> {
    result.unwrap_or_else(|problem| {
        problems.push(problem);
        None
    })
}

/// A compiled value spec.
#[derive(Debug)]
struct ValueRule {
    /// `dealstage`, `pipeline`, `properties.amount`: how problems name it.
    field: String,
    input: Compiled,
    kind: ValueType,
    required: bool,
    lookup: Option<Lookup>,
    /// Used when the input is blank, or matches no `map` key.
    default: Option<Value>,
}

#[derive(Debug)]
enum Compiled {
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

#[derive(Debug)]
struct IdsRule {
    field: String,
    input: IdsInput,
}

#[derive(Debug)]
enum IdsInput {
    Constant(Vec<u64>),
    Template(TemplateRef),
}

struct Eval<'a> {
    templates: &'a Templates,
    ctx: &'a minijinja::Value,
}

impl Eval<'_> {
    /// `Ok(None)`: blank and not required, so the property is left out.
    fn value(&self, rule: &ValueRule) -> Result<Option<PropValue>, Problem> {
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

    fn ids(&self, rule: &IdsRule) -> Result<Vec<u64>, Problem> {
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

impl ValueRule {
    /// Blank → default, or left out, or `required`; else `map` lookup (→ default or
    /// `no_match`); then the type conversion.
    fn finish(&self, raw: Value) -> Result<Option<PropValue>, Problem> {
        let value = if is_blank(&raw) {
            match &self.default {
                Some(default) => default.clone(),
                None if self.required => {
                    return Err(Problem::at(&self.field, "required", "is required but rendered empty"));
                }
                None => return Ok(None),
            }
        } else if let Some(lookup) = &self.lookup {
            let key = to_text(&raw);
            match (lookup.by_key.get(key.trim()), &self.default) {
                (Some(mapped), _) => mapped.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => return Err(no_match(&self.field, &raw, &lookup.keys)),
            }
        } else {
            raw
        };
        if is_blank(&value) {
            // Only reachable through a blank `map` value or `default`: treat like blank input.
            return if self.required {
                Err(Problem::at(&self.field, "required", "is required but rendered empty"))
            } else {
                Ok(None)
            };
        }
        self.kind
            .convert(&value)
            .map(Some)
            .map_err(|invalid| Problem::at(&self.field, invalid.code, invalid.message))
    }
}

fn no_match(field: &str, raw: &Value, keys: &[String]) -> Problem {
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
    let got = show(&Value::String(to_text(raw).trim().to_owned()));
    Problem::at(
        field,
        "no_match",
        format!("{got} matches no `map` key (accepted: {accepted}) and there is no `default`"),
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

/// The compiled parts of a route, before the shared templates are attached.
struct Parts {
    name: String,
    source: Source,
    endpoint: String,
    scheme: Option<Scheme>,
    signing_secret: Option<(String, Loc)>,
    public_url: Option<PublicUrl>,
    condition: Option<TemplateRef>,
    pipeline: Option<ValueRule>,
    dealstage: ValueRule,
    properties: Vec<(String, ValueRule)>,
    companies: Option<IdsRule>,
    contacts: Option<IdsRule>,
}

/// Compiles every route; reports template and constant errors. Routes with any error are
/// left out (the caller fails the load when the report has errors).
pub(crate) fn compile(specs: Vec<RouteSpec>, report: &mut Report) -> Vec<Route> {
    let mut templates = Templates::new();
    let parts: Vec<Parts> = specs
        .into_iter()
        .filter_map(|spec| compile_route(spec, &mut templates, report))
        .collect();
    let templates = Arc::new(templates);
    parts
        .into_iter()
        .map(|p| Route {
            name: p.name,
            source: p.source,
            endpoint: p.endpoint,
            scheme: p.scheme,
            signing_secret: p.signing_secret,
            public_url: p.public_url,
            condition: p.condition,
            pipeline: p.pipeline,
            dealstage: p.dealstage,
            properties: p.properties,
            companies: p.companies,
            contacts: p.contacts,
            templates: Arc::clone(&templates),
        })
        .collect()
}

/// Compiles every part (so each reports its errors), then assembles them if all are sound.
fn compile_route(spec: RouteSpec, templates: &mut Templates, report: &mut Report) -> Option<Parts> {
    let at = At::route(&spec.name);
    // `match` first, so that its errors are reported even when the route has no `deal`.
    let condition = spec.condition.map(|c| compile_match(c, at, templates, report));
    // Whatever is missing here was already reported by `spec::read`.
    let deal = spec.deal?;
    let mut sound = condition.as_ref().is_none_or(Option::is_some);
    let mut check = |compiled: Option<ValueRule>| {
        sound &= compiled.is_some();
        compiled
    };
    let pipeline = deal
        .pipeline
        .map(|v| check(compile_value("pipeline", v, at, templates, report)));
    let dealstage = deal
        .dealstage
        .map(|v| check(compile_value("dealstage", v, at, templates, report)));
    let mut properties = Vec::with_capacity(deal.properties.len());
    for p in deal.properties {
        if let Some(rule) = check(compile_value(
            &format!("properties.{}", p.name),
            p.value,
            at,
            templates,
            report,
        )) {
            properties.push((p.name, rule));
        }
    }
    let mut companies = None;
    if let Some(ids) = deal.companies {
        companies = compile_ids("associations.companies", ids, at, templates, report);
        sound &= companies.is_some();
    }
    let mut contacts = None;
    if let Some(ids) = deal.contacts {
        contacts = compile_ids("associations.contacts", ids, at, templates, report);
        sound &= contacts.is_some();
    }
    let (true, Some(source), Some(Some(dealstage)), Some((endpoint, _)), Some(auth)) =
        (sound, spec.source, dealstage, spec.endpoint, spec.auth)
    else {
        return None;
    };
    Some(Parts {
        name: spec.name,
        source,
        endpoint,
        scheme: auth.scheme,
        signing_secret: auth.signing_secret,
        public_url: auth.public_url,
        condition: condition.flatten(),
        pipeline: pipeline.flatten(),
        dealstage,
        properties,
        companies,
        contacts,
    })
}

fn template_name(at: At<'_>, field: &str) -> String {
    format!("{}/{field}", at.route.unwrap_or_default())
}

fn compile_value(
    field: &str,
    spec: ValueSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<ValueRule> {
    let at = at.field(field);
    let mut ok = true;
    // Constants in `map` and `default` must convert to the declared type: check them now
    // rather than on the first delivery that needs them.
    let mut check_constant = |what: &str, value: &Value, loc| {
        if !is_blank(value)
            && let Err(invalid) = spec.kind.convert(value)
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
            Err(message) => {
                report.error(at, spec.loc, format!("invalid template: {message}"));
                ok = false;
                (Compiled::Constant(None), None)
            }
        },
        // Converted below, once the rule is complete.
        Input::Literal(value) => (Compiled::Constant(None), Some(value)),
    };
    let mut rule = ValueRule {
        field: field.to_owned(),
        input,
        kind: spec.kind,
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

/// `match:`; `None` when it was wrong (reported).
fn compile_match(spec: MatchSpec, at: At<'_>, templates: &mut Templates, report: &mut Report) -> Option<TemplateRef> {
    let expr = spec.expr?;
    let at = at.field("match");
    match templates.add_expression(template_name(at, "match"), &expr) {
        Ok(template) => Some(template),
        Err(message) => {
            report.error(at, spec.loc, format!("invalid `match` expression: {message}"));
            None
        }
    }
}

fn compile_ids(
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
            Err(message) => {
                report.error(at, spec.loc, format!("invalid template: {message}"));
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
            kind,
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

    #[test]
    fn no_match_names_the_value_and_the_accepted_keys() {
        let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
        let problem = no_match("dealstage", &json!(" gold "), &keys);
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
