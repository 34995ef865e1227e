//! `deal.associations` of a route: ids of existing records (as before), contacts by e-mail and
//! companies by domain. Read from the YAML (every problem at its node), compiled with the route's
//! templates, and evaluated into the DealDraft's [`Associations`]. Never calls HubSpot.

use std::sync::Arc;

use serde_json::Value;

use super::convert::ValueType;
use super::diagnostic::{At, Report};
use super::free_mail::FreeMailDomains;
use super::route::{Compiled, Eval, IdsRule, ValueRule, compile_ids, compile_value, keep};
use super::spec::{
    IdsSpec, Input, PropertySpec, ValueSpec, check_keys, check_property_name, expect_map, find, read_ids, read_value,
    scalar, show_node,
};
use super::template::{Templates, looks_like_template};
use super::yaml::{Node, NodeKind};
use crate::domain::{Associations, CompanyDomain, CompanyLookup, ContactUpsert, Email, Problem, Property};

/// What a failed association makes of a delivery (`on_association_failure:` of a route).
/// An association fails when a contact upsert, a company search or create, or a link fails
/// (on v1, also HubSpot's `associationCreateFailures`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OnAssociationFailure {
    /// `report` (the default): the deal stands; the failures are in the `200 created` body as
    /// `associationCreateFailures`, logged as a warning, and in the dead letter if there is one.
    #[default]
    Report,
    /// `dead_letter`: the delivery is a failure (`202 dead_lettered`), with the deal id if the deal exists.
    DeadLetter,
}

impl OnAssociationFailure {
    /// The mapping's spelling: `report` or `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnAssociationFailure::Report => "report",
            OnAssociationFailure::DeadLetter => "dead_letter",
        }
    }
}

const CONTACT_KEYS: &[&str] = &["email", "properties"];
const COMPANY_KEYS: &[&str] = &["domain", "create_missing", "properties"];

/// `associations.contacts` or `associations.companies` as written.
#[derive(Debug)]
pub(crate) struct LinksSpec<R> {
    /// Ids of existing records, each with the field that names it in problems: the literal ids
    /// together (at `associations.contacts`, as before), each template on its own
    /// (`associations.contacts`, or `associations.contacts[2]` in a list).
    pub ids: Vec<(String, IdsSpec)>,
    /// Records found by e-mail or domain, in file order.
    pub records: Vec<R>,
}

/// `associations.contacts`.
pub(crate) type ContactsSpec = LinksSpec<ContactSpec>;
/// `associations.companies`.
pub(crate) type CompaniesSpec = LinksSpec<CompanySpec>;

/// `{ email, properties }`.
#[derive(Debug)]
pub(crate) struct ContactSpec {
    /// `associations.contacts[0]`: problems name `….email` and `….properties.<name>`.
    pub field: String,
    pub email: ValueSpec,
    pub properties: Vec<PropertySpec>,
}

/// `{ domain, create_missing, properties }`.
#[derive(Debug)]
pub(crate) struct CompanySpec {
    /// `associations.companies[0]`.
    pub field: String,
    pub domain: ValueSpec,
    pub create_missing: bool,
    pub properties: Vec<PropertySpec>,
}

/// `associations.contacts`: ids as before, `{ email: …, properties: … }`, or a list mixing them.
pub(crate) fn read_contacts(node: &Node, at: At<'_>, report: &mut Report) -> Option<ContactsSpec> {
    read_links(node, at, "associations.contacts", "email", report, |node, field, report| {
        let entries = expect_map(node, at.field(&field), "a contact", report)?;
        check_keys(entries, CONTACT_KEYS, at.field(&field), "in a contact", report);
        let email = read_key(entries, node, &field, "email", "the contact's e-mail address", at, report);
        let properties = read_properties(entries, &field, "email", "contact", at, report);
        Some(ContactSpec {
            email: email?,
            properties: properties?,
            field,
        })
    })
}

/// `associations.companies`: ids as before, `{ domain: …, create_missing: …, properties: … }`,
/// or a list mixing them.
pub(crate) fn read_companies(node: &Node, at: At<'_>, report: &mut Report) -> Option<CompaniesSpec> {
    read_links(node, at, "associations.companies", "domain", report, |node, field, report| {
        let entries = expect_map(node, at.field(&field), "a company", report)?;
        check_keys(entries, COMPANY_KEYS, at.field(&field), "in a company", report);
        let domain = read_key(
            entries,
            node,
            &field,
            "domain",
            "the company's domain, a URL or an e-mail address",
            at,
            report,
        );
        let create_missing = match find(entries, "create_missing") {
            None => Some(false),
            Some((_, node)) => match node.kind {
                NodeKind::Bool(b) => Some(b),
                _ => {
                    let field = format!("{field}.create_missing");
                    report.error(
                        at.field(&field),
                        node.loc,
                        format!(
                            "`create_missing` must be true or false (a literal, not a template), found {}",
                            show_node(node)
                        ),
                    );
                    None
                }
            },
        };
        let properties = read_properties(entries, &field, "domain", "company", at, report);
        Some(CompanySpec {
            domain: domain?,
            create_missing: create_missing?,
            properties: properties?,
            field,
        })
    })
}

/// A map is one record (`…[0]`); a list holds records (maps), id templates and literal ids; any
/// other value is ids as before. `None` when something was wrong (reported).
fn read_links<R>(
    node: &Node,
    at: At<'_>,
    base: &str,
    record_key: &str,
    report: &mut Report,
    mut read_record: impl FnMut(&Node, String, &mut Report) -> Option<R>,
) -> Option<LinksSpec<R>> {
    let mut links = LinksSpec {
        ids: Vec::new(),
        records: Vec::new(),
    };
    let mut ok = true;
    match &node.kind {
        NodeKind::Map(_) => match read_record(node, format!("{base}[0]"), report) {
            Some(record) => links.records.push(record),
            None => ok = false,
        },
        NodeKind::Seq(items) => {
            let mut literals = Vec::new();
            let mut literal_slot = None;
            for (i, item) in items.iter().enumerate() {
                let field = format!("{base}[{i}]");
                match &item.kind {
                    NodeKind::Map(_) => match read_record(item, field, report) {
                        Some(record) => links.records.push(record),
                        None => ok = false,
                    },
                    NodeKind::Str(s) if looks_like_template(s) => links.ids.push((
                        field,
                        IdsSpec {
                            input: Input::Template(s.clone()),
                            loc: item.loc,
                        },
                    )),
                    _ => match scalar(item) {
                        Some(value) => {
                            literal_slot.get_or_insert(links.ids.len());
                            literals.push(value);
                        }
                        None => {
                            report.error(
                                at.field(&field),
                                item.loc,
                                format!(
                                    "expected an id, a template or a map with `{record_key}:`, found {}",
                                    item.kind.describe()
                                ),
                            );
                            ok = false;
                        }
                    },
                }
            }
            if let Some(slot) = literal_slot {
                let ids = IdsSpec {
                    input: Input::Literal(Value::Array(literals)),
                    loc: node.loc,
                };
                links.ids.insert(slot, (base.to_owned(), ids));
            }
        }
        _ => match read_ids(node, at.field(base), report) {
            Some(ids) => links.ids.push((base.to_owned(), ids)),
            None => ok = false,
        },
    }
    ok.then_some(links)
}

/// `email:` / `domain:`: a required value spec of type text.
fn read_key(
    entries: &[(super::yaml::Key, Node)],
    node: &Node,
    field: &str,
    key: &str,
    what: &str,
    at: At<'_>,
    report: &mut Report,
) -> Option<ValueSpec> {
    let Some((_, value)) = find(entries, key) else {
        report.error(
            at.field(field),
            node.loc,
            format!("missing `{key}:` ({what}, e.g. `\"{{{{ fields.{key} }}}}\"`)"),
        );
        return None;
    };
    let key_field = format!("{field}.{key}");
    let spec = read_value(value, at.field(&key_field), report)?;
    if spec.conversion.kind != ValueType::Text {
        report.error(
            at.field(&key_field),
            value.loc,
            format!("`{key}` is text; remove `type: {}`", spec.conversion.kind.as_str()),
        );
        return None;
    }
    Some(spec)
}

/// `properties:` of a contact or company: HubSpot internal names → value specs, as for deals;
/// `reserved` (`email`, `domain`) is set by its own key.
fn read_properties(
    entries: &[(super::yaml::Key, Node)],
    field: &str,
    reserved: &str,
    what: &str,
    at: At<'_>,
    report: &mut Report,
) -> Option<Vec<PropertySpec>> {
    let mut properties = Vec::new();
    let Some((_, node)) = find(entries, "properties") else {
        return Some(properties);
    };
    if matches!(node.kind, NodeKind::Null) {
        return Some(properties);
    }
    let props_field = format!("{field}.properties");
    let props = expect_map(node, at.field(&props_field), "`properties`", report)?;
    let mut ok = true;
    for (key, value) in props {
        let property_field = format!("{props_field}.{}", key.name);
        let at = at.field(&property_field);
        if key.name == reserved {
            report.error(
                at,
                key.loc,
                format!("the {what}'s `{reserved}` is set with `{reserved}:`, not under `properties`"),
            );
            ok = false;
        } else if let Err(why) = check_property_name(&key.name) {
            report.error(at, key.loc, why);
            ok = false;
        }
        match read_value(value, at, report) {
            Some(value) => properties.push(PropertySpec {
                name: key.name.clone(),
                value,
            }),
            None => ok = false,
        }
    }
    ok.then_some(properties)
}

/// Compiled `associations.contacts`.
#[derive(Debug)]
pub(super) struct ContactsRule {
    ids: Vec<IdsRule>,
    contacts: Vec<ContactRule>,
}

#[derive(Debug)]
struct ContactRule {
    email: ValueRule,
    properties: Vec<(String, ValueRule)>,
}

/// Compiled `associations.companies`, with the mapping's free-mail domains.
#[derive(Debug)]
pub(super) struct CompaniesRule {
    ids: Vec<IdsRule>,
    companies: Vec<CompanyRule>,
    free_mail: Arc<FreeMailDomains>,
}

#[derive(Debug)]
struct CompanyRule {
    domain: ValueRule,
    create_missing: bool,
    properties: Vec<(String, ValueRule)>,
}

/// Compiles `associations.contacts`; a literal e-mail is checked now. `None` on any error (reported).
pub(super) fn compile_contacts(
    spec: ContactsSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<ContactsRule> {
    let mut ok = true;
    let ids = compile_id_rules(spec.ids, at, templates, report, &mut ok);
    let mut contacts = Vec::with_capacity(spec.records.len());
    for contact in spec.records {
        let email = compile_key(&contact.field, "email", contact.email, at, templates, report, |text| {
            Email::parse(text).map(|_| ()).map_err(|e| e.to_string())
        });
        let properties = compile_properties(&contact.field, contact.properties, at, templates, report);
        match (email, properties) {
            (Some(email), Some(properties)) => contacts.push(ContactRule { email, properties }),
            _ => ok = false,
        }
    }
    ok.then_some(ContactsRule { ids, contacts })
}

/// Compiles `associations.companies`; a literal domain is checked now. `None` on any error (reported).
pub(super) fn compile_companies(
    spec: CompaniesSpec,
    free_mail: &Arc<FreeMailDomains>,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<CompaniesRule> {
    let mut ok = true;
    let ids = compile_id_rules(spec.ids, at, templates, report, &mut ok);
    let mut companies = Vec::with_capacity(spec.records.len());
    for company in spec.records {
        let domain = compile_key(&company.field, "domain", company.domain, at, templates, report, |text| {
            CompanyDomain::parse(text).map(|_| ()).map_err(|e| e.to_string())
        });
        let properties = compile_properties(&company.field, company.properties, at, templates, report);
        match (domain, properties) {
            (Some(domain), Some(properties)) => companies.push(CompanyRule {
                domain,
                create_missing: company.create_missing,
                properties,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(CompaniesRule {
        ids,
        companies,
        free_mail: Arc::clone(free_mail),
    })
}

fn compile_id_rules(
    specs: Vec<(String, IdsSpec)>,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
    ok: &mut bool,
) -> Vec<IdsRule> {
    let mut rules = Vec::with_capacity(specs.len());
    for (field, spec) in specs {
        match compile_ids(&field, spec, at, templates, report) {
            Some(rule) => rules.push(rule),
            None => *ok = false,
        }
    }
    rules
}

/// `email` / `domain`: one value (a list must come down to one), checked by `check` at load
/// when it is a literal.
fn compile_key(
    record_field: &str,
    key: &str,
    spec: ValueSpec,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
    check: impl Fn(&str) -> Result<(), String>,
) -> Option<ValueRule> {
    let field = format!("{record_field}.{key}");
    let loc = spec.loc;
    let mut rule = compile_value(&field, spec, at, templates, report)?;
    rule.multi = false;
    if let Compiled::Constant(Some(value)) = &rule.input
        && let Err(why) = check(&value.to_wire_string())
    {
        report.error(at.field(&field), loc, why);
        return None;
    }
    Some(rule)
}

fn compile_properties(
    record_field: &str,
    specs: Vec<PropertySpec>,
    at: At<'_>,
    templates: &mut Templates,
    report: &mut Report,
) -> Option<Vec<(String, ValueRule)>> {
    let mut ok = true;
    let mut rules = Vec::with_capacity(specs.len());
    for p in specs {
        let field = format!("{record_field}.properties.{}", p.name);
        match compile_value(&field, p.value, at, templates, report) {
            Some(rule) => rules.push((p.name, rule)),
            None => ok = false,
        }
    }
    ok.then_some(rules)
}

/// Adds the ids not yet in `list`, keeping the first of each.
fn push_new(list: &mut Vec<u64>, ids: Vec<u64>) {
    for id in ids {
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

/// Properties that render empty are left out, as for deals.
fn properties(eval: &Eval<'_>, rules: &[(String, ValueRule)], problems: &mut Vec<Problem>) -> Vec<Property> {
    rules
        .iter()
        .filter_map(|(name, rule)| {
            keep(eval.value(rule), problems).map(|value| Property {
                name: name.clone(),
                value,
            })
        })
        .collect()
}

impl ContactsRule {
    /// Adds ids and contacts to `out`. An e-mail that renders empty (and is not `required`) leaves
    /// its contact out, without a problem; an invalid one is `invalid_email`. The same e-mail twice
    /// is one contact (the first, with its properties).
    pub(super) fn map(&self, eval: &Eval<'_>, out: &mut Associations, problems: &mut Vec<Problem>) {
        for rule in &self.ids {
            if let Some(ids) = keep(eval.ids(rule).map(Some), problems) {
                push_new(&mut out.contact_ids, ids);
            }
        }
        for contact in &self.contacts {
            let email = match eval.value(&contact.email) {
                Ok(None) => continue,
                Ok(Some(value)) => Email::parse(&value.to_wire_string())
                    .map_err(|e| problems.push(Problem::at(&contact.email.field, "invalid_email", e.to_string())))
                    .ok(),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            };
            let properties = properties(eval, &contact.properties, problems);
            if let Some(email) = email
                && !out.contacts_by_email.iter().any(|c| c.email == email)
            {
                out.contacts_by_email.push(ContactUpsert { email, properties });
            }
        }
    }
}

impl CompaniesRule {
    /// Adds ids and companies to `out`. A domain that renders empty (and is not `required`) leaves
    /// its company out, without a problem; an invalid one is `invalid_domain`; a free-mail one is
    /// left out and listed in `skipped_free_mail_domains` (its properties are not evaluated). The
    /// same domain twice is one company (the first).
    pub(super) fn map(&self, eval: &Eval<'_>, out: &mut Associations, problems: &mut Vec<Problem>) {
        for rule in &self.ids {
            if let Some(ids) = keep(eval.ids(rule).map(Some), problems) {
                push_new(&mut out.company_ids, ids);
            }
        }
        for company in &self.companies {
            let domain = match eval.value(&company.domain) {
                Ok(None) => continue,
                Ok(Some(value)) => CompanyDomain::parse(&value.to_wire_string())
                    .map_err(|e| problems.push(Problem::at(&company.domain.field, "invalid_domain", e.to_string())))
                    .ok(),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            };
            if let Some(free) = domain.as_ref().filter(|d| self.free_mail.contains(d)) {
                if !out.skipped_free_mail_domains.contains(free) {
                    out.skipped_free_mail_domains.push(free.clone());
                }
                continue;
            }
            let properties = properties(eval, &company.properties, problems);
            if let Some(domain) = domain
                && !out.companies_by_domain.iter().any(|c| c.domain == domain)
            {
                out.companies_by_domain.push(CompanyLookup {
                    domain,
                    create_missing: company.create_missing,
                    properties,
                });
            }
        }
    }
}
