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
    "hubspot",
    "on_association_failure",
    "deal",
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
    /// `hubspot:` of the route, with the top-level `hubspot:` filled in where the route is silent.
    pub hubspot: HubSpotSpec,
    /// `on_association_failure:`, and where it is said; `None` when absent or wrong (reported).
    pub on_association_failure: Option<(OnAssociationFailure, Loc)>,
    pub deal: Option<DealSpec>,
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

/// `match:` of a route.
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
        hubspot: HubSpotSpec::default(),
        on_association_failure: None,
        deal: None,
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

    if let Some((_, node)) = find(entries, "hubspot") {
        route.hubspot = read_hubspot(node, at, report);
    }
    if let Some((_, node)) = find(entries, "on_association_failure") {
        route.on_association_failure = read_on_association_failure(node, at, report).map(|v| (v, node.loc));
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

/// `endpoint:`: a name for `/hooks/{name}`, with the same rule as route names.
fn read_endpoint(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let NodeKind::Str(name) = &node.kind else {
        let found = node.kind.describe();
        report.error(at, node.loc, format!("expected an endpoint name, found {found}"));
        return None;
    };
    match check_url_name("endpoint", name) {
        Ok(()) => Some(name.clone()),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

/// `signature` and `signing_secret`, read each on its own and then checked together against
/// the source's default scheme. `None` where something was wrong (reported here).
fn read_auth(
    entries: &[(Key, Node)],
    key: &Key,
    source: Option<Source>,
    at: At<'_>,
    report: &mut Report,
) -> Option<AuthSpec> {
    let signature = find(entries, "signature").map(|(_, node)| (read_signature(node, at, report), node.loc));
    let secret = find(entries, "signing_secret").map(|(_, node)| (read_signing_key(node, at, report), node.loc));
    let (scheme, explicit) = match signature {
        Some((Some(scheme), loc)) => (scheme, Some(loc)),
        Some((None, _)) => return None,
        // Unknown source: already reported, and there is no default to check against.
        None => (Scheme::default_for(source?), None),
    };
    let secret = match secret {
        Some((Some(name), loc)) => Some((name, loc)),
        Some((None, _)) => return None,
        None => None,
    };
    match (scheme, &secret) {
        (Some(_), Some(_)) => {}
        (Some(scheme), None) => {
            report.error(
                at,
                key.loc,
                format!(
                    "verifies {scheme} signatures and needs `signing_secret: <key under signing in the secret>`, \
                     or `signature: none` to accept unsigned deliveries"
                ),
            );
            return None;
        }
        (None, Some((_, loc))) => {
            // Without an explicit `signature`, the source is known (its default was looked up).
            let message = match source.filter(|_| explicit.is_none()) {
                None => "`signing_secret` is set but `signature: none` accepts unsigned deliveries; remove one of them"
                    .to_owned(),
                Some(source) => format!(
                    "{source} routes are unsigned unless `signature:` names a scheme ({}); add one or remove \
                     `signing_secret`",
                    known_schemes()
                ),
            };
            report.error(at.field("signing_secret"), *loc, message);
            return None;
        }
        (None, None) => report.warning(
            at.field("signature"),
            explicit.unwrap_or(key.loc),
            "accepts unsigned deliveries: anyone who knows the URL can create deals (if the sender signs its \
             requests, set `signature:` and `signing_secret:`)",
        ),
    }
    let public_url = match find(entries, "public_url") {
        None => None,
        Some((_, node)) => Some(read_public_url(node, scheme, at, report)?),
    };
    Some(AuthSpec {
        scheme,
        signing_secret: secret,
        public_url,
    })
}

/// `public_url:`: an absolute URL (see [`PublicUrl::parse`]), only where the scheme signs the URL: elsewhere
/// it would be read by nothing, which is an error rather than a silent no-op.
fn read_public_url(node: &Node, scheme: Option<Scheme>, at: At<'_>, report: &mut Report) -> Option<PublicUrl> {
    let at = at.field("public_url");
    let NodeKind::Str(text) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected the URL the provider calls, found {found}"),
        );
        return None;
    };
    if scheme != Some(Scheme::HubSpotV3) {
        report.error(
            at,
            node.loc,
            format!(
                "only a scheme that signs the URL reads `public_url` (hubspot-v3); this route's is {}: remove it",
                scheme.map_or("none", Scheme::as_str)
            ),
        );
        return None;
    }
    match PublicUrl::parse(text) {
        Ok(url) => Some(url),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

fn known_schemes() -> String {
    Scheme::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// `signature:`: a scheme name or `none`. `Some(None)` is `none`; `None` an error.
fn read_signature(node: &Node, at: At<'_>, report: &mut Report) -> Option<Option<Scheme>> {
    let at = at.field("signature");
    match &node.kind {
        NodeKind::Str(s) if s == "none" => Some(None),
        NodeKind::Str(s) => match Scheme::from_str(s) {
            Ok(scheme) => Some(Some(scheme)),
            Err(unknown) => {
                report.error(at, node.loc, unknown.to_string());
                None
            }
        },
        other => {
            report.error(
                at,
                node.loc,
                format!(
                    "expected a signature scheme ({}) or `none`, found {}",
                    known_schemes(),
                    other.describe()
                ),
            );
            None
        }
    }
}

/// `signing_secret:`: the name of a key under `signing` in the secret.
fn read_signing_key(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let at = at.field("signing_secret");
    let NodeKind::Str(name) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected the name of a key under `signing` in the secret, found {found}"),
        );
        return None;
    };
    match check_signing_key(name) {
        Ok(()) => Some(name.clone()),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

/// `match:`: a Jinja expression without braces. Compiled later, in `route.rs`.
fn read_match(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let NodeKind::Str(expr) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected an expression such as `fields.form_id == \"abc\"`, found {found}"),
        );
        return None;
    };
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        report.error(at, node.loc, "empty `match:`; leave the key out to take every delivery");
        return None;
    }
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        report.error(
            at,
            node.loc,
            format!("`match` is an expression without `{{{{ }}}}`: write `{}`", inner.trim()),
        );
        return None;
    }
    Some(expr.clone())
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

/// `dealstage` and `pipeline`: value specs whose type can only be text (they are ids).
fn read_id_value(node: &Node, at: At<'_>, report: &mut Report) -> Option<ValueSpec> {
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
pub(super) fn read_value(node: &Node, at: At<'_>, report: &mut Report) -> Option<ValueSpec> {
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
fn read_option<T>(
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
pub(super) fn read_ids(node: &Node, at: At<'_>, report: &mut Report) -> Option<IdsSpec> {
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
pub(super) fn read_input(node: &Node, at: At<'_>, report: &mut Report) -> Option<Input> {
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

/// A string, number or boolean as a JSON value.
pub(super) fn scalar(node: &Node) -> Option<Value> {
    match &node.kind {
        NodeKind::Str(s) => Some(Value::String(s.clone())),
        NodeKind::Number(n) => Some(Value::Number(n.clone())),
        NodeKind::Bool(b) => Some(Value::Bool(*b)),
        NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
    }
}

pub(super) fn show_node(node: &Node) -> String {
    match scalar(node) {
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => node.kind.describe().to_owned(),
    }
}

pub(super) fn expect_map<'n>(node: &'n Node, at: At<'_>, what: &str, report: &mut Report) -> Option<&'n [(Key, Node)]> {
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

pub(super) fn find<'n>(entries: &'n [(Key, Node)], name: &str) -> Option<&'n (Key, Node)> {
    entries.iter().find(|(k, _)| k.name == name)
}

/// Reports every key not in `known`, at the key, with a suggestion for likely typos.
pub(super) fn check_keys(entries: &[(Key, Node)], known: &[&str], at: At<'_>, place: &str, report: &mut Report) {
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

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
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
fn check_url_name(what: &str, name: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::yaml::parse;

    fn read_text(text: &str) -> (MappingSpec, Report) {
        let mut report = Report::default();
        let spec = read(&parse(text).unwrap(), &mut report);
        (spec, report)
    }

    fn messages(report: &Report) -> Vec<String> {
        report.items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_minimal_route_reads_cleanly_but_warns_about_the_pipeline_and_unsigned_deliveries() {
        let (spec, report) = read_text("version: 1\nroutes:\n  r:\n    source: form\n    deal:\n      dealstage: s\n");
        assert_eq!(messages(&report).len(), 2, "{:?}", messages(&report));
        assert!(!report.has_errors());
        let fields: Vec<_> = report.items.iter().map(|d| d.field.as_deref()).collect();
        assert_eq!(fields, [Some("signature"), Some("pipeline")]);
        let route = &spec.routes[0];
        assert_eq!(route.source, Some(Source::Form));
        let stage = route.deal.as_ref().and_then(|d| d.dealstage.as_ref()).unwrap();
        assert_eq!(stage.input, Input::Literal(Value::String("s".into())));
    }

    #[test]
    fn shape_errors_are_reported_at_their_node() {
        let cases = [
            (
                "version 2",
                "version: 2\nroutes: {r: {source: json, deal: {dealstage: s, pipeline: p}}}",
                "1:10",
                "unsupported version 2",
            ),
            (
                "no version",
                "routes: {r: {source: json, deal: {dealstage: s, pipeline: p}}}",
                "1:1",
                "missing `version: 1`",
            ),
            ("no routes", "version: 1\n", "1:1", "missing `routes:`"),
            ("empty routes", "version: 1\nroutes: {}\n", "2:1", "at least one route"),
            (
                "top-level typo",
                "version: 1\nrouts: {}\n",
                "2:1",
                "did you mean `routes`",
            ),
            (
                "route typo",
                "version: 1\nroutes:\n  r:\n    source: json\n    sorce: x\n    deal: {dealstage: s, pipeline: p}\n",
                "5:5",
                "unknown key `sorce` in a route",
            ),
            (
                "value typo",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: {from: s, requird: true}\n",
                "7:28",
                "did you mean `required`",
            ),
            (
                "source missing",
                "version: 1\nroutes:\n  r:\n    deal: {dealstage: s, pipeline: p}\n",
                "3:3",
                "missing `source:` (one of json, form",
            ),
            (
                "unknown source",
                "version: 1\nroutes:\n  r:\n    source: jsn\n    deal: {dealstage: s, pipeline: p}\n",
                "4:13",
                "known sources: json, form",
            ),
            (
                "bad route name",
                "version: 1\nroutes:\n  web quote:\n    source: json\n    deal: {dealstage: s, pipeline: p}\n",
                "3:3",
                "contains ' '",
            ),
            (
                "dealstage missing",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n",
                "5:5",
                "missing `dealstage:`",
            ),
            (
                "reserved property",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        dealstage: x\n",
                "9:9",
                "set at deal level",
            ),
            (
                "bad property name",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        deal-name: x\n",
                "9:9",
                "contains '-'",
            ),
            (
                "unknown type",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        amount: {from: x, type: numbr}\n",
                "9:33",
                "unknown type \"numbr\" (expected text, number, date, datetime, bool)",
            ),
            (
                "typed stage",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: {from: s, type: number}\n",
                "7:18",
                "always text",
            ),
            (
                "required not bool",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        a: {from: x, required: maybe}\n",
                "9:32",
                "true or false",
            ),
            (
                "empty map",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: {from: s, map: {}}\n",
                "7:33",
                "non-empty map",
            ),
            (
                "no from",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: {type: text}\n",
                "7:18",
                "missing `from:`",
            ),
            (
                "null value",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage:\n",
                "7:16",
                "found nothing (null)",
            ),
            (
                "list value",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: [a]\n",
                "7:18",
                "found a list",
            ),
            (
                "association typo",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      associations: {company: x}\n",
                "8:22",
                "did you mean `companies`",
            ),
            (
                "deal not a map",
                "version: 1\nroutes:\n  r:\n    source: json\n    deal: s\n",
                "5:11",
                "`deal` must be a map",
            ),
        ];
        for (name, text, position, want) in cases {
            let (_, report) = read_text(text);
            let found = messages(&report);
            assert!(
                found
                    .iter()
                    .any(|m| m.starts_with(&format!("{position}: error")) && m.contains(want)),
                "{name}: want {want:?} at {position}, got {found:#?}"
            );
        }
    }

    #[test]
    fn value_specs_read_every_key() {
        let text = "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      properties:\n        n: 5\n        b: true\n        t: \"{{ fields.x }}\"\n        full: {from: \"{{ fields.y }}\", type: number, required: true, map: {a: 1, b: x}, default: 0}\n";
        let (spec, report) = read_text(text);
        assert!(!report.has_errors(), "{:?}", messages(&report));
        let props = &spec.routes[0].deal.as_ref().unwrap().properties;
        let names: Vec<_> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n", "b", "t", "full"]);
        assert_eq!(props[0].value.input, Input::Literal(serde_json::json!(5)));
        assert_eq!(props[1].value.input, Input::Literal(serde_json::json!(true)));
        assert_eq!(props[2].value.input, Input::Template("{{ fields.x }}".into()));
        let full = &props[3].value;
        assert_eq!((full.conversion.kind, full.required), (ValueType::Number, true));
        let lookup: Vec<_> = full
            .lookup
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.name.as_str(), v.clone()))
            .collect();
        assert_eq!(lookup, [("a", serde_json::json!(1)), ("b", serde_json::json!("x"))]);
        assert_eq!(
            full.default.as_ref().map(|(v, _)| v.clone()),
            Some(serde_json::json!(0))
        );
    }

    #[test]
    fn names_are_checked_and_the_failing_rule_is_named() {
        assert!(check_route_name("website-quote_2").is_ok());
        assert!(check_property_name("hs_custom_1").is_ok());
        let cases = [
            (check_route_name("a/b"), "contains '/'"),
            (check_route_name(""), "empty route name"),
            (check_route_name("café"), "contains 'é'"),
            (check_property_name("deal name"), "contains ' '"),
            (check_property_name("deal-name"), "contains '-'"),
            (check_property_name(""), "empty property name"),
        ];
        for (result, want) in cases {
            let err = result.expect_err(want);
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn typos_get_suggestions() {
        assert_eq!(edit_distance("required", "requird"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    fn hubspot_route(source: &str, public_url: &str) -> String {
        format!(
            "version: 1\nroutes:\n  r:\n    source: {source}\n    signing_secret: k\n    public_url: {public_url}\n    \
             deal:\n      pipeline: p\n      dealstage: s\n"
        )
    }

    #[test]
    fn public_url_is_read_for_hubspot_v3_routes() {
        for url in [
            "https://api.example.com/crm/hooks/r",
            "https://api.example.com/crm/hooks/r?portalId=1&src=a%20b",
            "http://localhost:9000/hooks/r",
        ] {
            let (spec, report) = read_text(&hubspot_route("hubspot", url));
            assert!(!report.has_errors(), "{url}: {:?}", messages(&report));
            let auth = spec.routes[0].auth.as_ref().unwrap();
            assert_eq!(auth.public_url.as_ref().map(PublicUrl::as_str).as_deref(), Some(url));
        }
    }

    #[test]
    fn a_public_url_that_is_not_one_or_that_nothing_reads_is_an_error() {
        let cases = [
            (
                "typeform",
                "https://h.example/hooks/r",
                "only a scheme that signs the URL",
            ),
            ("hubspot", "1", "expected the URL the provider calls"),
            ("hubspot", "not-a-url", "must start with https://"),
            ("hubspot", "/hooks/r", "must start with https://"),
            ("hubspot", "https://", "not a URL"),
            ("hubspot", "ftp://h.example/hooks/r", "https://"),
            ("hubspot", "https://user@h.example/hooks/r", "user info"),
            ("hubspot", "https://h.example/hooks/r#x", "fragment"),
            ("hubspot", "\"https://h.example/café\"", "visible ASCII"),
            ("hubspot", "\"https://h.example/a b\"", "visible ASCII"),
        ];
        for (source, url, want) in cases {
            let (_, report) = read_text(&hubspot_route(source, url));
            let errors: Vec<_> = report
                .items
                .iter()
                .filter(|d| d.severity == super::super::Severity::Error)
                .collect();
            assert_eq!(errors.len(), 1, "{url}: {:?}", messages(&report));
            assert_eq!(errors[0].field.as_deref(), Some("public_url"), "{url}");
            assert!(errors[0].to_string().contains(want), "{url}: {}", errors[0]);
        }
    }

    #[test]
    fn the_routes_of_one_endpoint_must_agree_on_public_url() {
        let text = "version: 1\nroutes:\n  a:\n    source: hubspot\n    signing_secret: k\n    endpoint: hs\n    \
                    public_url: https://h.example/x/hooks/hs\n    match: \"true\"\n    deal: { pipeline: p, dealstage: s }\n  \
                    b:\n    source: hubspot\n    signing_secret: k\n    endpoint: hs\n    deal: { pipeline: p, dealstage: s }\n";
        let err = crate::mapping::Mapping::from_yaml(text, "m.yaml").expect_err("must not load");
        let errors: Vec<String> = err.errors().map(ToString::to_string).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("its public_url is not set where route a's is https://h.example/x/hooks/hs")),
            "{errors:?}"
        );
        let same = text.replace("    deal: { pipeline: p, dealstage: s }\n  \n", "");
        let same = same.replacen(
            "endpoint: hs\n    deal",
            "endpoint: hs\n    public_url: https://h.example/x/hooks/hs\n    deal",
            1,
        );
        let mapping = crate::mapping::Mapping::from_yaml(&same, "m.yaml").unwrap_or_else(|e| panic!("{e}\n{same}"));
        let endpoint = mapping.endpoint("hs").unwrap();
        assert_eq!(
            endpoint.public_url().map(PublicUrl::as_str).as_deref(),
            Some("https://h.example/x/hooks/hs")
        );
    }
}
