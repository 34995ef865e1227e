//! The mapping spec: what the YAML says, checked for shape (known keys, names, types, sources)
//! with every problem reported at its node. Templates are compiled later, in `route.rs`.

use std::str::FromStr;

use serde_json::Value;

use super::associations::{CompaniesSpec, ContactsSpec, OnAssociationFailure, read_companies, read_contacts};
use super::convert::{Conversion, DateFormat, DecimalMark, ValueType, parse_timezone};
use super::diagnostic::{At, Report};
use super::free_mail::{FreeMailDomains, read_free_mail_domains};
use super::template::looks_like_template;
use super::yaml::{Key, Loc, Node, NodeKind};
use crate::hubspot::HubSpotApi;
use crate::inbound::Source;
use crate::inbound::verify::{PublicUrl, Scheme};

mod auth;
mod nodes;
mod value;

pub(crate) use auth::*;
pub(crate) use nodes::*;
pub(crate) use value::*;

/// The one version of the mapping language.
pub(crate) const VERSION: u64 = 1;

const TOP_KEYS: &[&str] = &["version", "hubspot", "routes", "free_mail_domains"];
const ROUTE_KEYS: &[&str] = &[
    "source",
    "endpoint",
    "signature",
    "signing_secret",
    "public_url",
    "match",
    "for_each",
    "hubspot",
    "on_association_failure",
    "deal",
    "dedupe",
];
const DEAL_KEYS: &[&str] = &["pipeline", "dealstage", "properties", "associations"];
const VALUE_KEYS: &[&str] = &[
    "from", "type", "format", "timezone", "decimal", "required", "map", "default",
];
const ASSOCIATION_KEYS: &[&str] = &["companies", "contacts"];
const HUBSPOT_KEYS: &[&str] = &["api", "upsert_by"];
const ON_ASSOCIATION_FAILURE: &[&str] = &["report", "dead_letter"];

/// A whole mapping file.
#[derive(Debug)]
pub(crate) struct MappingSpec {
    pub routes: Vec<RouteSpec>,
    /// `free_mail_domains:` applied to the built-in list.
    pub free_mail_domains: FreeMailDomains,
}

/// One route (`routes.<name>`). Fields are `None` where the file had an error.
#[derive(Debug)]
pub(crate) struct RouteSpec {
    pub name: String,
    /// Where the route's name is.
    pub loc: Loc,
    pub source: Option<Source>,
    /// Served at `/hooks/{endpoint}`: `endpoint:` or the route's name, with where it is said
    /// (the `endpoint:` value, else the route's name).
    pub endpoint: Option<(String, Loc)>,
    /// How deliveries are authenticated, once `signature` and `signing_secret` agree.
    pub auth: Option<AuthSpec>,
    /// `match:`, when the route has the key (even if its value was wrong).
    pub condition: Option<MatchSpec>,
    /// `for_each:`, when the route has the key (even if its value was wrong): one deal per item.
    pub for_each: Option<MatchSpec>,
    /// `hubspot:` of the route, with the top-level `hubspot:` filled in where the route is silent.
    pub hubspot: HubSpotSpec,
    /// `on_association_failure:`, and where it is said; `None` when absent or wrong (reported).
    pub on_association_failure: Option<(OnAssociationFailure, Loc)>,
    pub deal: Option<DealSpec>,
    /// `dedupe:` and where it is; `None` when absent or wrong (reported).
    pub dedupe: Option<(super::dedupe::Dedupe, Loc)>,
}

/// `hubspot:` (top level or route): which API, and the property to upsert deals by, each with
/// where it was said. A key the file does not set is `None`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HubSpotSpec {
    pub api: Option<(HubSpotApi, Loc)>,
    pub upsert_by: Option<(String, Loc)>,
}

impl HubSpotSpec {
    /// `self`, with `defaults` where `self` has nothing.
    fn or(self, defaults: &HubSpotSpec) -> HubSpotSpec {
        HubSpotSpec {
            api: self.api.or(defaults.api),
            upsert_by: self.upsert_by.or_else(|| defaults.upsert_by.clone()),
        }
    }
}

/// The effective signature scheme of a route and the key of its secret.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthSpec {
    /// `None`: unsigned (`signature: none`, or a json/form route without `signature`).
    pub scheme: Option<Scheme>,
    /// The key under `signing` in the secret, and where it is named; present iff `scheme` is.
    pub signing_secret: Option<(String, Loc)>,
    /// `public_url:`: the URL the provider calls, for a scheme that signs the URL (`hubspot-v3`).
    pub public_url: Option<PublicUrl>,
}

/// `match:` or `for_each:` of a route: an expression without braces.
#[derive(Debug)]
pub(crate) struct MatchSpec {
    /// The expression; `None` where the value was wrong (already reported).
    pub expr: Option<String>,
    pub loc: Loc,
}

/// `deal:` of a route.
#[derive(Debug)]
pub(crate) struct DealSpec {
    pub pipeline: Option<ValueSpec>,
    pub dealstage: Option<ValueSpec>,
    pub properties: Vec<PropertySpec>,
    pub companies: Option<CompaniesSpec>,
    pub contacts: Option<ContactsSpec>,
}

/// One entry of `properties:`.
#[derive(Debug)]
pub(crate) struct PropertySpec {
    pub name: String,
    /// Where the property's name is (its key under `properties:`).
    pub key_loc: Loc,
    pub value: ValueSpec,
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// A constant: a string without template syntax, a YAML number or boolean.
    Literal(Value),
    /// A Jinja template.
    Template(String),
}

/// A value spec: a scalar, or `{ from, type, format, timezone, decimal, required, map, default }`.
#[derive(Debug)]
pub(crate) struct ValueSpec {
    pub input: Input,
    /// Where `from` (or the scalar) is.
    pub loc: Loc,
    /// `type:` with its options (`format:`, `timezone:`, `decimal:`).
    pub conversion: Conversion,
    pub required: bool,
    pub lookup: Option<Vec<(Key, Value)>>,
    pub default: Option<(Value, Loc)>,
}

/// `associations.companies` / `associations.contacts`: a template or literal id(s).
#[derive(Debug)]
pub(crate) struct IdsSpec {
    pub input: Input,
    pub loc: Loc,
}

/// Reads the tree. Every problem goes to `report`; what could be read is returned so that
/// later stages can report their own problems too.
pub(crate) fn read(root: &Node, report: &mut Report) -> MappingSpec {
    let mut spec = MappingSpec {
        routes: Vec::new(),
        free_mail_domains: FreeMailDomains::builtin(),
    };
    let Some(entries) = expect_map(root, At::default(), "the mapping file", report) else {
        return spec;
    };
    check_keys(entries, TOP_KEYS, At::default(), "at the top level", report);

    match find(entries, "version") {
        None => report.error(At::default(), root.loc, format!("missing `version: {VERSION}`")),
        Some((_, node)) => {
            if !matches!(&node.kind, NodeKind::Number(n) if n.as_u64() == Some(VERSION)) {
                report.error(
                    At::default().field("version"),
                    node.loc,
                    format!(
                        "unsupported version {} (this dealhook reads version {VERSION})",
                        show_node(node)
                    ),
                );
            }
        }
    }

    let defaults = match find(entries, "hubspot") {
        Some((_, node)) => read_hubspot(node, At::default().field("hubspot"), report),
        None => HubSpotSpec::default(),
    };
    if let Some((_, node)) = find(entries, "free_mail_domains") {
        spec.free_mail_domains = read_free_mail_domains(node, report);
    }

    let Some((routes_key, routes)) = find(entries, "routes") else {
        report.error(
            At::default(),
            root.loc,
            "missing `routes:` (at least one route is required)",
        );
        return spec;
    };
    let Some(route_entries) = expect_map(routes, At::default().field("routes"), "`routes`", report) else {
        return spec;
    };
    if route_entries.is_empty() {
        report.error(
            At::default().field("routes"),
            routes_key.loc,
            "at least one route is required",
        );
    }
    for (key, node) in route_entries {
        let mut route = read_route(key, node, report);
        route.hubspot = std::mem::take(&mut route.hubspot).or(&defaults);
        spec.routes.push(route);
    }
    spec
}

/// `hubspot: { api: v1 | v3 | "2026-03", upsert_by: <deal property> }`. Problems are reported at
/// their node; what could be read is returned.
fn read_hubspot(node: &Node, at: At<'_>, report: &mut Report) -> HubSpotSpec {
    let mut spec = HubSpotSpec::default();
    let Some(entries) = expect_map(node, at, "`hubspot`", report) else {
        return spec;
    };
    check_keys(entries, HUBSPOT_KEYS, at, "in `hubspot`", report);
    if let Some((_, node)) = find(entries, "api") {
        let at = at.field("hubspot.api");
        match &node.kind {
            NodeKind::Str(name) => match HubSpotApi::from_str(name) {
                Ok(api) => spec.api = Some((api, node.loc)),
                Err(unknown) => report.error(at, node.loc, unknown.to_string()),
            },
            other => report.error(
                at,
                node.loc,
                format!(
                    "expected v1, v3 or \"2026-03\" (quoted: unquoted YAML may read a date as a number), found {}",
                    other.describe()
                ),
            ),
        }
    }
    if let Some((_, node)) = find(entries, "upsert_by") {
        let at = at.field("hubspot.upsert_by");
        match &node.kind {
            NodeKind::Str(name) => match check_property_name(name) {
                Ok(()) if matches!(name.as_str(), "dealstage" | "pipeline") => report.error(
                    at,
                    node.loc,
                    format!("`{name}` is not unique to a deal; upsert by a property with unique values"),
                ),
                Ok(()) => spec.upsert_by = Some((name.clone(), node.loc)),
                Err(why) => report.error(at, node.loc, why),
            },
            other => report.error(
                at,
                node.loc,
                format!(
                    "expected the name of a deal property with unique values, found {}",
                    other.describe()
                ),
            ),
        }
    }
    spec
}

fn read_route(key: &Key, node: &Node, report: &mut Report) -> RouteSpec {
    let name = key.name.as_str();
    let at = At::route(name);
    if let Err(why) = check_route_name(name) {
        report.error(at, key.loc, why);
    }
    let mut route = RouteSpec {
        name: name.to_owned(),
        loc: key.loc,
        source: None,
        endpoint: Some((name.to_owned(), key.loc)),
        auth: None,
        condition: None,
        for_each: None,
        hubspot: HubSpotSpec::default(),
        on_association_failure: None,
        deal: None,
        dedupe: None,
    };
    let Some(entries) = expect_map(node, at, "a route", report) else {
        return route;
    };
    check_keys(entries, ROUTE_KEYS, at, "in a route", report);

    let known = Source::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    match find(entries, "source") {
        None => report.error(at, key.loc, format!("missing `source:` (one of {known})")),
        Some((_, node)) => match &node.kind {
            NodeKind::Str(s) => match Source::from_str(s) {
                Ok(source) => route.source = Some(source),
                Err(unknown) => report.error(at.field("source"), node.loc, unknown.to_string()),
            },
            other => report.error(
                at.field("source"),
                node.loc,
                format!("expected a source name (one of {known}), found {}", other.describe()),
            ),
        },
    }

    if let Some((_, node)) = find(entries, "endpoint") {
        route.endpoint = read_endpoint(node, at.field("endpoint"), report).map(|name| (name, node.loc));
    }
    route.auth = read_auth(entries, key, route.source, at, report);
    route.condition = find(entries, "match").map(|(_, node)| MatchSpec {
        expr: read_match(node, at.field("match"), report),
        loc: node.loc,
    });
    route.for_each = find(entries, "for_each").map(|(_, node)| MatchSpec {
        expr: read_for_each(node, at.field("for_each"), report),
        loc: node.loc,
    });

    if let Some((_, node)) = find(entries, "hubspot") {
        route.hubspot = read_hubspot(node, at, report);
    }
    if let Some((_, node)) = find(entries, "on_association_failure") {
        route.on_association_failure = read_on_association_failure(node, at, report).map(|v| (v, node.loc));
    }

    if let Some((_, node)) = find(entries, "dedupe") {
        route.dedupe = super::dedupe::read_dedupe(node, at, report);
    }
    match find(entries, "deal") {
        None => report.error(at, key.loc, "missing `deal:` (with at least `dealstage:`)"),
        Some((deal_key, node)) => route.deal = read_deal(deal_key, node, at, report),
    }
    route
}

/// `on_association_failure: report | dead_letter`.
fn read_on_association_failure(node: &Node, at: At<'_>, report: &mut Report) -> Option<OnAssociationFailure> {
    let at = at.field("on_association_failure");
    let known = ON_ASSOCIATION_FAILURE.join(" or ");
    match &node.kind {
        NodeKind::Str(s) if s == "report" => Some(OnAssociationFailure::Report),
        NodeKind::Str(s) if s == "dead_letter" => Some(OnAssociationFailure::DeadLetter),
        _ => {
            report.error(at, node.loc, format!("expected {known}, found {}", show_node(node)));
            None
        }
    }
}

fn read_deal(deal_key: &Key, node: &Node, at: At<'_>, report: &mut Report) -> Option<DealSpec> {
    let entries = expect_map(node, at.field("deal"), "`deal`", report)?;
    check_keys(entries, DEAL_KEYS, at.field("deal"), "in `deal`", report);
    let mut deal = DealSpec {
        pipeline: None,
        dealstage: None,
        properties: Vec::new(),
        companies: None,
        contacts: None,
    };

    match find(entries, "dealstage") {
        None => report.error(
            at.field("dealstage"),
            deal_key.loc,
            "missing `dealstage:` (HubSpot requires a deal stage on every deal)",
        ),
        Some((_, node)) => deal.dealstage = read_id_value(node, at.field("dealstage"), report),
    }
    match find(entries, "pipeline") {
        None => report.warning(
            at.field("pipeline"),
            deal_key.loc,
            "no `pipeline:`; HubSpot will use the account's default pipeline (HubSpot recommends always \
             setting it, and the stage must belong to that pipeline)",
        ),
        Some((_, node)) => deal.pipeline = read_id_value(node, at.field("pipeline"), report),
    }

    if let Some((_, node)) = find(entries, "properties")
        && !matches!(node.kind, NodeKind::Null)
        && let Some(props) = expect_map(node, at.field("properties"), "`properties`", report)
    {
        for (key, value) in props {
            let field = format!("properties.{}", key.name);
            let at = at.field(&field);
            match key.name.as_str() {
                reserved @ ("dealstage" | "pipeline") => report.error(
                    at,
                    key.loc,
                    format!("`{reserved}` is set at deal level (`deal.{reserved}`), not under `properties`"),
                ),
                name => {
                    if let Err(why) = check_property_name(name) {
                        report.error(at, key.loc, why);
                    }
                }
            }
            if let Some(value) = read_value(value, at, report) {
                deal.properties.push(PropertySpec {
                    name: key.name.clone(),
                    key_loc: key.loc,
                    value,
                });
            }
        }
    }

    if let Some((_, node)) = find(entries, "associations")
        && !matches!(node.kind, NodeKind::Null)
        && let Some(assoc) = expect_map(node, at.field("associations"), "`associations`", report)
    {
        check_keys(
            assoc,
            ASSOCIATION_KEYS,
            at.field("associations"),
            "in `associations`",
            report,
        );
        if let Some((_, node)) = find(assoc, "companies") {
            deal.companies = read_companies(node, at, report);
        }
        if let Some((_, node)) = find(assoc, "contacts") {
            deal.contacts = read_contacts(node, at, report);
        }
    }
    Some(deal)
}

#[cfg(test)]
mod tests;
