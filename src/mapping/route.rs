//! A compiled route: its value rules (see `value_rule.rs`) with their templates compiled and
//! constants pre-converted, its `match` condition and `for_each`, and `Route::map`, which turns one
//! Submission into a DealDraft or every Problem it has.

use std::sync::Arc;

use serde_json::Value;

use super::associations::{CompaniesRule, ContactsRule, OnAssociationFailure, compile_companies, compile_contacts};
use super::convert::show;
use super::diagnostic::{At, Report};
use super::free_mail::FreeMailDomains;
use super::spec::{HubSpotSpec, MatchSpec, RouteSpec};
use super::template::{Scope, TemplateRef, Templates, context, value_to_json};
use super::value_rule::{Compiled, Eval, ValueRule, compile_value, keep};
use super::yaml::Loc;
use crate::domain::{Associations, DealDraft, Problem, Property, Submission, Unmatched};
use crate::hubspot::{HubSpotApi, HubSpotOptions};
use crate::inbound::Source;
use crate::inbound::verify::{PublicUrl, Scheme};

/// One configured route: which deliveries to `/hooks/{endpoint}` it takes (`match`), and how
/// they are mapped into a DealDraft.
#[derive(Debug)]
pub struct Route {
    name: String,
    /// Where the route's name is in the file.
    loc: Loc,
    source: Source,
    endpoint: String,
    scheme: Option<Scheme>,
    /// The key under `signing` in the secret, and where the file names it.
    signing_secret: Option<(String, Loc)>,
    /// `public_url:` (hubspot-v3 routes only).
    public_url: Option<PublicUrl>,
    condition: Option<Condition>,
    /// `for_each:`: the expression whose items each make a deal.
    for_each: Option<TemplateRef>,
    /// `hubspot:` (the route's, over the top-level default).
    hubspot: HubSpotOptions,
    hubspot_api_loc: Option<Loc>,
    pipeline: Option<ValueRule>,
    dealstage: ValueRule,
    properties: Vec<(String, ValueRule)>,
    companies: Option<CompaniesRule>,
    contacts: Option<ContactsRule>,
    on_association_failure: OnAssociationFailure,
    /// `dedupe:`: one open deal per contact.
    dedupe: Option<super::Dedupe>,
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

    /// Which HubSpot API the route's calls go to, and the property deals are upserted by
    /// (`hubspot:`; v1 and no upsert when the file does not say).
    pub fn hubspot(&self) -> &HubSpotOptions {
        &self.hubspot
    }

    /// Where the route's `hubspot.api` is said (`None`: the default), for `check`'s warnings.
    pub(crate) fn hubspot_api_loc(&self) -> Option<Loc> {
        self.hubspot_api_loc
    }

    /// Where the route's name is in the file.
    pub(crate) fn loc(&self) -> Loc {
        self.loc
    }

    pub(crate) fn has_condition(&self) -> bool {
        self.condition.is_some()
    }

    /// Whether the route makes one deal per item of a list (`for_each:`) rather than one per delivery.
    pub fn has_for_each(&self) -> bool {
        self.for_each.is_some()
    }

    /// What a failed association (a contact upsert, a company search or create, a link) makes of
    /// the delivery: `on_association_failure:`, default [`OnAssociationFailure::Report`].
    pub fn on_association_failure(&self) -> OnAssociationFailure {
        self.on_association_failure
    }

    /// `dedupe:`: which of the contact's deals a delivery updates (or skips) instead of creating one;
    /// `None` when the route always creates.
    pub fn dedupe(&self) -> Option<&super::Dedupe> {
        self.dedupe.as_ref()
    }

    /// Whether this route takes the delivery: no `match`, or a truthy one (Jinja truthiness:
    /// undefined, `none`, `false`, `0`, `""` and empty lists are false). An evaluation failure
    /// is the problem `match_error` at `match`, naming the route.
    pub(crate) fn matches(&self, scope: &Scope) -> Result<bool, Problem> {
        let Some(condition) = &self.condition else {
            return Ok(true);
        };
        self.templates
            .evaluate(&condition.template, &scope.context(&self.name))
            .map(|value| value.is_true())
            .map_err(|message| {
                Problem::at(
                    "match",
                    "match_error",
                    format!("route {}: `match` could not be evaluated: {message}", self.name),
                )
            })
    }

    /// What this route's `match` read from a delivery it did not take (`None` for a route without
    /// `match`): for the `ignored` answer. A path that fails to evaluate shows as `null`.
    pub(crate) fn unmatched(&self, scope: &Scope) -> Option<Unmatched> {
        let condition = self.condition.as_ref()?;
        let context = scope.context(&self.name);
        let saw = condition
            .paths
            .iter()
            .map(|(path, template)| {
                let value = self
                    .templates
                    .evaluate(template, &context)
                    .unwrap_or(minijinja::Value::UNDEFINED);
                (path.clone(), shown(value_to_json(&value)))
            })
            .collect();
        Some(Unmatched {
            route: self.name.clone(),
            condition: condition.expr.clone(),
            saw,
        })
    }

    /// Maps one Submission. All problems of the delivery are collected and returned together,
    /// each naming its field (`dealstage`, `properties.amount`, `associations.companies`) and
    /// its rule code (`required`, `no_match`, `invalid_number`, `invalid_date`,
    /// `invalid_datetime`, `invalid_bool`, `invalid_id`, `template_error`; for contacts and
    /// companies, `associations.contacts[0].email` with `invalid_email` and
    /// `associations.companies[0].domain` with `invalid_domain`).
    pub fn map(&self, submission: &Submission) -> Result<DealDraft, Vec<Problem>> {
        self.map_in(&context(&self.name, submission))
    }

    /// The items of a route with `for_each` (`Ok(None)` for a route without): the expression's
    /// value, which must be a list (`none`, undefined or `[]` is no items). A value that is not a
    /// list, or an expression that fails to evaluate, is a problem at `for_each` (`not_a_list`,
    /// `for_each_error`); more than [`MAX_RECORDS`] items is [`ForEachError::TooMany`].
    pub fn items(&self, submission: &Submission) -> Result<Option<Items>, ForEachError> {
        let Some(for_each) = &self.for_each else {
            return Ok(None);
        };
        let scope = Scope::new(submission);
        let value = self
            .templates
            .evaluate(for_each, &scope.context(&self.name))
            .map_err(|message| {
                ForEachError::Invalid(Problem::at(
                    "for_each",
                    "for_each_error",
                    format!("route {}: `for_each` could not be evaluated: {message}", self.name),
                ))
            })?;
        let items: Vec<minijinja::Value> = match value.kind() {
            minijinja::value::ValueKind::Undefined | minijinja::value::ValueKind::None => Vec::new(),
            minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable => {
                let iter = value.try_iter().map_err(|e| {
                    ForEachError::Invalid(Problem::at(
                        "for_each",
                        "for_each_error",
                        format!("route {}: the items of `for_each` could not be read: {e}", self.name),
                    ))
                })?;
                // One past the limit is enough to know it is over (the template's own size check
                // already bounds the list).
                let items: Vec<minijinja::Value> = iter.take(MAX_RECORDS + 1).collect();
                if items.len() > MAX_RECORDS {
                    let count = value.len().unwrap_or(items.len());
                    return Err(ForEachError::TooMany {
                        count,
                        limit: MAX_RECORDS,
                    });
                }
                items
            }
            kind => {
                let shown = show(&serde_json::to_value(&value).unwrap_or_else(|_| Value::String(value.to_string())));
                let got = match kind {
                    minijinja::value::ValueKind::Map => "an object".to_owned(),
                    minijinja::value::ValueKind::String => format!("the text {shown}"),
                    other => format!("{other} {shown}"),
                };
                return Err(ForEachError::Invalid(Problem::at(
                    "for_each",
                    "not_a_list",
                    format!(
                        "route {}: `for_each` must give a list of items (one deal each), got {got}",
                        self.name
                    ),
                )));
            }
        };
        Ok(Some(Items { scope, items }))
    }

    /// Maps the record of item `index` of `items` (see [`Route::items`]): as [`Route::map`], with
    /// `item` and `item_index` in the templates' context. An index past the items is the problem
    /// `no_such_item` at `for_each`.
    pub fn map_item(&self, items: &Items, index: usize) -> Result<DealDraft, Vec<Problem>> {
        let Some(item) = items.items.get(index) else {
            let message = format!("there is no item {index}: `for_each` gave {} items", items.len());
            return Err(vec![Problem::at("for_each", "no_such_item", message)]);
        };
        self.map_in(&items.scope.record_context(&self.name, item, index))
    }

    /// Maps one template context (a delivery's, or one of its records').
    fn map_in(&self, ctx: &minijinja::Value) -> Result<DealDraft, Vec<Problem>> {
        let eval = Eval {
            templates: &self.templates,
            ctx,
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
            rule.map(&eval, &mut associations, &mut problems);
        }
        if let Some(rule) = &self.contacts {
            rule.map(&eval, &mut associations, &mut problems);
        }

        if self.dedupe.is_some() {
            super::dedupe::check_contact(&associations, &mut problems);
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

/// The most items one delivery's `for_each` may give: more is answered `400 too_many_records`, with
/// nothing created, rather than running out of the invocation's time halfway through the list.
pub const MAX_RECORDS: usize = 100;

/// The items of one delivery on a route with `for_each` ([`Route::items`]), each the record of one deal
/// ([`Route::map_item`]), with what templates see of the delivery (converted once for all items).
pub struct Items {
    scope: Scope,
    items: Vec<minijinja::Value>,
}

impl Items {
    /// How many items (records) there are; at most [`MAX_RECORDS`].
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when `for_each` gave no items (`none`, undefined or `[]`).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The items are delivery data: their count only.
        f.debug_struct("Items").field("len", &self.items.len()).finish()
    }
}

/// Why a route's `for_each` gave no usable list of items.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForEachError {
    /// The expression failed, or its value is not a list: a mapping problem at `for_each` (the
    /// delivery is dead-lettered, `mapping_failed`).
    #[error("{0}")]
    Invalid(Problem),
    /// More items than [`MAX_RECORDS`] (`count` is how many, or at least `limit + 1`): answered 400.
    #[error("`for_each` gave {count} items; the limit is {limit} per delivery")]
    TooMany {
        /// How many items the list has.
        count: usize,
        /// [`MAX_RECORDS`].
        limit: usize,
    },
}

/// The compiled parts of a route, before the shared templates are attached.
struct Parts {
    name: String,
    loc: Loc,
    source: Source,
    endpoint: String,
    scheme: Option<Scheme>,
    signing_secret: Option<(String, Loc)>,
    public_url: Option<PublicUrl>,
    condition: Option<Condition>,
    for_each: Option<TemplateRef>,
    hubspot: HubSpotOptions,
    hubspot_api_loc: Option<Loc>,
    pipeline: Option<ValueRule>,
    dealstage: ValueRule,
    properties: Vec<(String, ValueRule)>,
    companies: Option<CompaniesRule>,
    contacts: Option<ContactsRule>,
    on_association_failure: OnAssociationFailure,
    dedupe: Option<super::Dedupe>,
}

/// Compiles every route; reports template and constant errors. Routes with any error are
/// left out (the caller fails the load when the report has errors). `free_mail` is the
/// mapping's list of free-mail domains, shared by every route's companies.
pub(crate) fn compile(specs: Vec<RouteSpec>, free_mail: &Arc<FreeMailDomains>, report: &mut Report) -> Vec<Route> {
    let mut templates = Templates::new();
    let parts: Vec<Parts> = specs
        .into_iter()
        .filter_map(|spec| compile_route(spec, free_mail, &mut templates, report))
        .collect();
    let templates = Arc::new(templates);
    parts
        .into_iter()
        .map(|p| Route {
            name: p.name,
            loc: p.loc,
            source: p.source,
            endpoint: p.endpoint,
            scheme: p.scheme,
            signing_secret: p.signing_secret,
            public_url: p.public_url,
            condition: p.condition,
            for_each: p.for_each,
            hubspot: p.hubspot,
            hubspot_api_loc: p.hubspot_api_loc,
            pipeline: p.pipeline,
            dealstage: p.dealstage,
            properties: p.properties,
            companies: p.companies,
            contacts: p.contacts,
            on_association_failure: p.on_association_failure,
            dedupe: p.dedupe,
            templates: Arc::clone(&templates),
        })
        .collect()
}

/// Compiles every part (so each reports its errors), then assembles them if all are sound.
fn compile_route(
    spec: RouteSpec,
    free_mail: &Arc<FreeMailDomains>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<Parts> {
    let at = At::route(&spec.name);
    // `match` first, so that its errors are reported even when the route has no `deal`.
    let condition = spec.condition.map(|c| compile_match(c, at, templates, report));
    let for_each = spec.for_each.map(|f| compile_for_each(f, at, templates, report));
    // Whatever is missing here was already reported by `spec::read`.
    let deal = spec.deal?;
    super::lint::check_deal(&deal, at, report);
    let mut sound = condition.as_ref().is_none_or(Option::is_some) && for_each.as_ref().is_none_or(Option::is_some);
    // The deal's templates see `item` and `item_index` on a route with `for_each` (even a wrong one,
    // so that its templates are not reported as well).
    templates.set_record_variables(for_each.is_some());
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
    sound &= check_upsert_by(&spec.hubspot, &mut properties, at, report);
    if let (Some((_, loc)), Some(_)) = (&spec.dedupe, &for_each) {
        // Records of one delivery run one after another: a later record for the same contact finds the
        // deal an earlier one made only through the idempotency table (HubSpot's search lags writes).
        report.warning(
            at.field("dedupe"),
            *loc,
            "with `for_each`, records of one delivery for the same contact each make a deal unless the \
             idempotency table is configured (DEALHOOK_IDEMPOTENCY_TABLE, the template's `Idempotency`): only it \
             lets a later record find the deal an earlier one made, since HubSpot's search lags writes by seconds",
        );
    }
    sound &= super::dedupe::check_route(spec.dedupe, &spec.hubspot, deal.contacts.as_ref(), at, report);
    let mut companies = None;
    if let Some(spec) = deal.companies {
        companies = compile_companies(spec, free_mail, at, templates, report);
        sound &= companies.is_some();
    }
    let mut contacts = None;
    if let Some(spec) = deal.contacts {
        contacts = compile_contacts(spec, at, templates, report);
        sound &= contacts.is_some();
    }
    templates.set_record_variables(false);
    if let Some((_, loc)) = spec.on_association_failure
        && companies.is_none()
        && contacts.is_none()
        && sound
    {
        report.warning(
            at.field("on_association_failure"),
            loc,
            "the route has no `associations`, so `on_association_failure` has nothing to act on",
        );
    }
    let (true, Some(source), Some(Some(dealstage)), Some((endpoint, _)), Some(auth)) =
        (sound, spec.source, dealstage, spec.endpoint, spec.auth)
    else {
        return None;
    };
    Some(Parts {
        name: spec.name,
        loc: spec.loc,
        source,
        endpoint,
        scheme: auth.scheme,
        signing_secret: auth.signing_secret,
        public_url: auth.public_url,
        condition: condition.flatten(),
        for_each: for_each.flatten(),
        hubspot: HubSpotOptions {
            api: spec.hubspot.api.as_ref().map(|(api, _)| *api).unwrap_or_default(),
            upsert_by: spec.hubspot.upsert_by.map(|(name, _)| name),
        },
        hubspot_api_loc: spec.hubspot.api.map(|(_, loc)| loc),
        pipeline: pipeline.flatten(),
        dealstage,
        properties,
        companies,
        contacts,
        on_association_failure: spec.on_association_failure.map(|(v, _)| v).unwrap_or_default(),
        dedupe: spec.dedupe.map(|(dedupe, _)| dedupe),
    })
}

/// `hubspot.upsert_by` needs the v3 or 2026-03 API (v1 has no upsert) and a mapped property, which
/// becomes `required` (a deal without its upsert key cannot be sent). False when it broke a rule.
fn check_upsert_by(
    hubspot: &HubSpotSpec,
    properties: &mut [(String, ValueRule)],
    at: At<'_>,
    report: &mut Report,
) -> bool {
    let Some((name, loc)) = &hubspot.upsert_by else {
        return true;
    };
    let at = at.field("hubspot.upsert_by");
    let api = hubspot.api.as_ref().map(|(api, _)| *api).unwrap_or_default();
    if api == HubSpotApi::V1 {
        report.error(
            at,
            *loc,
            "`upsert_by` needs `api: v3` or `api: \"2026-03\"` (the v1 deals API has no upsert)",
        );
        return false;
    }
    match properties.iter_mut().find(|(property, _)| property == name) {
        Some((_, rule)) if matches!(rule.input, Compiled::Constant(_)) => {
            report.error(
                at,
                *loc,
                format!(
                    "`upsert_by: {name}` names a literal property: every delivery would update the same deal; \
                     map it from the delivery, e.g. `\"{{{{ submission.id }}}}\"`"
                ),
            );
            false
        }
        Some((_, rule)) => {
            rule.required = true;
            true
        }
        None => {
            report.error(
                at,
                *loc,
                format!(
                    "`upsert_by: {name}` names a property the route does not map: add `{name}` under \
                     `deal.properties` (e.g. from `{{{{ submission.id }}}}`)"
                ),
            );
            false
        }
    }
}

pub(super) fn template_name(at: At<'_>, field: &str) -> String {
    format!("{}/{field}", at.route.unwrap_or_default())
}

/// `match:`; `None` when it was wrong (reported).
fn compile_match(spec: MatchSpec, at: At<'_>, templates: &mut Templates, report: &mut Report) -> Option<Condition> {
    let expr = spec.expr?;
    let at = at.field("match");
    let name = template_name(at, "match");
    match templates.add_expression(name.clone(), &expr) {
        Ok(template) => {
            let paths = templates.add_paths(&name, &expr);
            Some(Condition { expr, template, paths })
        }
        Err(error) => {
            report.template_error(at, spec.loc, "invalid `match` expression", &expr, &error);
            None
        }
    }
}

/// A compiled `match:`: the expression as written, its template, and the variable paths it reads
/// (for [`Route::unmatched`]).
#[derive(Debug)]
struct Condition {
    expr: String,
    template: TemplateRef,
    paths: Vec<(String, TemplateRef)>,
}

/// A value as an `ignored` answer shows it: as it is up to [`Unmatched::MAX_VALUE_CHARS`] characters
/// of JSON; longer text cut with `…`, a longer list or object replaced by a sentence giving its size.
fn shown(value: Value) -> Value {
    use Value as Json;
    let max = Unmatched::MAX_VALUE_CHARS;
    match value {
        Json::String(text) if text.chars().count() > max => {
            Json::String(format!("{}…", text.chars().take(max).collect::<String>()))
        }
        Json::Array(items) if serde_json::to_string(&items).map_or(0, |t| t.chars().count()) > max => {
            Json::String(format!("(a list of {} items)", items.len()))
        }
        Json::Object(members) if serde_json::to_string(&members).map_or(0, |t| t.chars().count()) > max => {
            Json::String(format!("(an object with {} keys)", members.len()))
        }
        other => other,
    }
}

/// `for_each:`; `None` when it was wrong (reported). It sees what `match` sees (not `item`).
fn compile_for_each(
    spec: MatchSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<TemplateRef> {
    let expr = spec.expr?;
    let at = at.field("for_each");
    match templates.add_expression(template_name(at, "for_each"), &expr) {
        Ok(template) => Some(template),
        Err(error) => {
            report.template_error(at, spec.loc, "invalid `for_each` expression", &expr, &error);
            None
        }
    }
}
