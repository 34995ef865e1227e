//! `deal.associations` of a route: ids of existing records (as before), contacts by e-mail and
//! companies by domain. Read from the YAML (every problem at its node), compiled with the route's
//! templates, and evaluated into the DealDraft's [`Associations`]. Never calls HubSpot.

use std::sync::Arc;

use serde_json::Value;

use super::convert::ValueType;
use super::diagnostic::{At, Report};
use super::free_mail::FreeMailDomains;
use super::spec::{
    IdsSpec, Input, PropertySpec, ValueSpec, check_keys, check_property_name, expect_map, find, read_ids, read_value,
    scalar, show_node,
};
use super::template::{Templates, looks_like_template};
use super::value_rule::{Compiled, Eval, IdsRule, ValueRule, compile_ids, compile_value, keep};
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
    read_links(
        node,
        at,
        "associations.contacts",
        "email",
        report,
        |node, field, report| {
            let entries = expect_map(node, at.field(&field), "a contact", report)?;
            check_keys(entries, CONTACT_KEYS, at.field(&field), "in a contact", report);
            let email = read_key(
                entries,
                node,
                &field,
                "email",
                "the contact's e-mail address",
                at,
                report,
            );
            let properties = read_properties(entries, &field, "email", "contact", at, report);
            Some(ContactSpec {
                email: email?,
                properties: properties?,
                field,
            })
        },
    )
}

/// `associations.companies`: ids as before, `{ domain: …, create_missing: …, properties: … }`,
/// or a list mixing them.
pub(crate) fn read_companies(node: &Node, at: At<'_>, report: &mut Report) -> Option<CompaniesSpec> {
    read_links(
        node,
        at,
        "associations.companies",
        "domain",
        report,
        |node, field, report| {
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
            // A wrong value is reported, and the record still read as `false` so that the rest of it
            // is checked in the same run (the load fails on the error).
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
                create_missing: create_missing.unwrap_or(false),
                properties: properties?,
                field,
            })
        },
    )
}

/// A map is one record (`…[0]`); a list holds records (maps), id templates and literal ids; any
/// other value is ids as before. Items that are wrong are reported and left out, and the others
/// kept, so that compiling them reports their own errors in the same run (the load fails on any).
/// `None` only when nothing could be read.
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
    (ok || !links.ids.is_empty() || !links.records.is_empty()).then_some(links)
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
                key_loc: key.loc,
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
        let domain_loc = company.domain.loc;
        let domain = compile_key(
            &company.field,
            "domain",
            company.domain,
            at,
            templates,
            report,
            |text| CompanyDomain::parse(text).map(|_| ()).map_err(|e| e.to_string()),
        );
        if let Some(ValueRule {
            input: Compiled::Constant(Some(literal)),
            ..
        }) = &domain
            && let Ok(parsed) = CompanyDomain::parse(&literal.to_wire_string())
            && free_mail.contains(&parsed)
        {
            report.warning(
                at.field(&format!("{}.domain", company.field)),
                domain_loc,
                format!(
                    "{parsed} is a free-mail domain: no company is ever looked up or created for it (remove \
                     the block, or take it out of the list with `free_mail_domains: {{ remove: [{parsed}] }}`)"
                ),
            );
        }
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

/// YAML → compiled route → DealDraft for every shape of `associations` (issue 11, items 2–4),
/// and the load errors of each wrong shape with their line and column.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::domain::{
        Associations, CompanyDomain, CompanyLookup, ContactUpsert, DealDraft, Email, Problem, PropValue, Property,
        Submission,
    };
    use crate::mapping::{Mapping, OnAssociationFailure};

    /// A json route whose `deal.associations` is `associations` (YAML, indented by 8), after the
    /// top-level `top` (YAML at column 1, may be empty).
    fn mapping_text(top: &str, associations: &str) -> String {
        let mut text = format!(
            "version: 1\n{top}routes:\n  r:\n    source: json\n    signature: none\n    deal:\n      pipeline: p\n      \
             dealstage: s\n      associations:\n"
        );
        for line in associations.lines() {
            text.push_str(&format!("        {line}\n"));
        }
        text
    }

    fn load(text: &str) -> Mapping {
        Mapping::from_yaml(text, "m.yaml").unwrap_or_else(|e| panic!("must load:\n{e}\n{text}"))
    }

    fn submission(fields: Value) -> Submission {
        Submission {
            source: "json".into(),
            id: Some("evt-1".into()),
            submitted_at: None,
            event_type: None,
            received_at: "2026-11-29T10:00:00.000Z".into(),
            fields: fields.as_object().cloned().unwrap_or_default().into(),
            raw: fields.into(),
        }
    }

    fn map_with(top: &str, associations: &str, fields: Value) -> Result<DealDraft, Vec<Problem>> {
        load(&mapping_text(top, associations))
            .route("r")
            .unwrap()
            .map(&submission(fields))
    }

    fn map(associations: &str, fields: Value) -> Result<DealDraft, Vec<Problem>> {
        map_with("", associations, fields)
    }

    fn associations(associations: &str, fields: Value) -> Associations {
        map(associations, fields)
            .unwrap_or_else(|problems| panic!("{problems:#?}"))
            .associations
    }

    fn codes(problems: &[Problem]) -> Vec<(String, String)> {
        problems
            .iter()
            .map(|p| (p.field.clone().unwrap_or_default(), p.code.clone()))
            .collect()
    }

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    fn domain(text: &str) -> CompanyDomain {
        CompanyDomain::parse(text).unwrap()
    }

    fn text(name: &str, value: &str) -> Property {
        Property {
            name: name.into(),
            value: PropValue::Text(value.into()),
        }
    }

    const FORM_CONTACT: &str = "contacts:\n  email: \"{{ fields.email }}\"\n  properties:\n    \
                                firstname: \"{{ fields.first_name }}\"\n    lastname: \"{{ fields.last_name }}\"\n    \
                                phone: \"{{ fields.phone }}\"\n";

    #[test]
    fn a_form_lead_becomes_a_contact_upsert_by_e_mail() {
        let got = associations(
            FORM_CONTACT,
            json!({"email": " Ada.Lovelace@Example.COM ", "first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0000"}),
        );
        assert_eq!(
            got,
            Associations {
                contacts_by_email: vec![ContactUpsert {
                    email: email("ada.lovelace@example.com"),
                    properties: vec![
                        text("firstname", "Ada"),
                        text("lastname", "Lovelace"),
                        text("phone", "+44 20 7946 0000"),
                    ],
                }],
                ..Associations::default()
            }
        );
        assert!(!got.is_empty());
    }

    #[test]
    fn contact_properties_that_render_empty_are_left_out() {
        let got = associations(
            FORM_CONTACT,
            json!({"email": "ada@example.com", "first_name": "Ada", "phone": "  "}),
        );
        assert_eq!(got.contacts_by_email[0].properties, [text("firstname", "Ada")]);
    }

    #[test]
    fn contact_properties_use_the_typed_conversions_of_deal_properties() {
        let yaml = "contacts:\n  email: \"{{ fields.email }}\"\n  properties:\n    \
                    lifecyclestage: { from: \"{{ fields.stage }}\", map: { Lead: lead, Customer: customer } }\n    \
                    hs_lead_score: { from: \"{{ fields.score }}\", type: number }\n    \
                    date_of_birth: { from: \"{{ fields.born }}\", type: date, format: \"%d/%m/%Y\" }\n    \
                    newsletter: { from: \"{{ fields.news }}\", type: bool }\n    \
                    interests: \"{{ fields.interests }}\"\n";
        let got = associations(
            yaml,
            json!({"email": "ada@example.com", "stage": "Lead", "score": "1,250", "born": "10/12/1815", "news": "yes",
                   "interests": ["Engines", "Poetry"]}),
        );
        let values: Vec<(&str, &PropValue)> = got.contacts_by_email[0]
            .properties
            .iter()
            .map(|p| (p.name.as_str(), &p.value))
            .collect();
        assert_eq!(
            values,
            [
                ("lifecyclestage", &PropValue::Text("lead".into())),
                ("hs_lead_score", &PropValue::Number("1250".into())),
                ("date_of_birth", &PropValue::Date(-4_861_728_000_000)),
                ("newsletter", &PropValue::Bool(true)),
                ("interests", &PropValue::Text("Engines;Poetry".into())),
            ]
        );
        let problems = map(
            yaml,
            json!({"email": "ada@example.com", "stage": "Prospect", "score": "many"}),
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            [
                (
                    "associations.contacts[0].properties.lifecyclestage".into(),
                    "no_match".into()
                ),
                (
                    "associations.contacts[0].properties.hs_lead_score".into(),
                    "invalid_number".into()
                ),
            ]
        );
    }

    #[test]
    fn a_list_mixes_contacts_by_e_mail_literal_ids_and_id_templates() {
        let yaml = "contacts:\n  - 7\n  - \"{{ fields.vids }}\"\n  - email: \"{{ fields.email }}\"\n  - 8\n  - \
                    email: \"{{ fields.partner }}\"\n    properties: { firstname: \"{{ fields.partner_name }}\" }\n  - 7\n";
        let got = associations(
            yaml,
            json!({"vids": "9, 7", "email": "ADA@example.com", "partner": "bob@example.org", "partner_name": "Bob"}),
        );
        assert_eq!(
            got.contact_ids,
            [7, 8, 9],
            "literal ids first (in one rule, as before), then templates; no duplicates"
        );
        assert_eq!(
            got.contacts_by_email,
            [
                ContactUpsert {
                    email: email("ada@example.com"),
                    properties: vec![],
                },
                ContactUpsert {
                    email: email("bob@example.org"),
                    properties: vec![text("firstname", "Bob")],
                },
            ]
        );
    }

    #[test]
    fn the_same_e_mail_twice_is_one_contact_the_first() {
        let yaml = "contacts:\n  - email: \"{{ fields.a }}\"\n    properties: { firstname: First }\n  - email: \
                    \"{{ fields.b }}\"\n    properties: { firstname: Second }\n";
        let got = associations(yaml, json!({"a": "ada@example.com", "b": " ADA@Example.com"}));
        assert_eq!(got.contacts_by_email.len(), 1, "{got:?}");
        assert_eq!(got.contacts_by_email[0].properties, [text("firstname", "First")]);
    }

    /// An e-mail that renders empty: the contact is left out (the field is optional on most forms),
    /// unless the mapping says `required: true`.
    #[test]
    fn an_empty_e_mail_leaves_the_contact_out_unless_required() {
        for fields in [
            json!({}),
            json!({"email": ""}),
            json!({"email": "   "}),
            json!({"email": null}),
        ] {
            let got = associations(FORM_CONTACT, fields.clone());
            assert!(got.contacts_by_email.is_empty() && got.is_empty(), "{fields}: {got:?}");
        }
        let required = "contacts:\n  email: { from: \"{{ fields.email }}\", required: true }\n";
        let problems = map(required, json!({"email": " "})).unwrap_err();
        assert_eq!(
            codes(&problems),
            [("associations.contacts[0].email".into(), "required".into())]
        );
        let defaulted = "contacts:\n  email: { from: \"{{ fields.email }}\", default: leads@acme.example }\n";
        let got = associations(defaulted, json!({}));
        assert_eq!(got.contacts_by_email[0].email, email("leads@acme.example"));
    }

    #[test]
    fn an_invalid_e_mail_is_a_problem_naming_the_field_and_rule() {
        let problems = map(
            FORM_CONTACT,
            json!({"email": "ada at example.com", "first_name": "Ada"}),
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            [("associations.contacts[0].email".into(), "invalid_email".into())]
        );
        assert!(
            problems[0]
                .message
                .contains("\"ada at example.com\" is not an e-mail address"),
            "{}",
            problems[0].message
        );
        let list = "contacts:\n  - 5\n  - email: \"{{ fields.a }}\"\n  - email: \"{{ fields.b }}\"\n";
        let problems = map(list, json!({"a": "ada@example.com", "b": "bob@"})).unwrap_err();
        assert_eq!(
            codes(&problems),
            [("associations.contacts[2].email".into(), "invalid_email".into())]
        );
        let two = "contacts:\n  email: \"{{ fields.emails }}\"\n";
        let problems = map(two, json!({"emails": ["ada@example.com", "bob@example.com"]})).unwrap_err();
        assert_eq!(
            codes(&problems),
            [("associations.contacts[0].email".into(), "multiple_values".into())]
        );
    }

    #[test]
    fn every_problem_of_the_associations_is_reported_with_the_deals() {
        let yaml = "contacts:\n  email: \"{{ fields.email }}\"\n  properties: { hs_lead_score: { from: \
                    \"{{ fields.score }}\", type: number } }\ncompanies:\n  - \"{{ fields.company_id }}\"\n  - domain: \
                    \"{{ fields.website }}\"\n";
        let problems = map(
            yaml,
            json!({"email": "nope", "score": "x", "company_id": "abc", "website": "http://"}),
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            [
                ("associations.companies[0]".into(), "invalid_id".into()),
                ("associations.companies[1].domain".into(), "invalid_domain".into()),
                ("associations.contacts[0].email".into(), "invalid_email".into()),
                (
                    "associations.contacts[0].properties.hs_lead_score".into(),
                    "invalid_number".into()
                ),
            ]
        );
    }

    #[test]
    fn companies_are_found_by_a_normalised_domain() {
        let yaml = "companies:\n  domain: \"{{ fields.website }}\"\n  create_missing: true\n  properties:\n    \
                    name: \"{{ fields.company }}\"\n    industry: \"{{ fields.industry }}\"\n";
        for website in [
            "acme.example",
            "https://www.Acme.example/about?ref=x",
            "http://acme.example:8080",
            "ACME.EXAMPLE.",
            "ada@acme.example",
        ] {
            let got = associations(yaml, json!({"website": website, "company": "Acme Ltd"}));
            assert_eq!(
                got.companies_by_domain,
                [CompanyLookup {
                    domain: domain("acme.example"),
                    create_missing: true,
                    properties: vec![text("name", "Acme Ltd")],
                }],
                "{website}"
            );
        }
        let problems = map(yaml, json!({"website": "not a domain"})).unwrap_err();
        assert_eq!(
            codes(&problems),
            [("associations.companies[0].domain".into(), "invalid_domain".into())]
        );
        assert!(
            problems[0].message.contains("\"not a domain\" is not a company domain"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn create_missing_defaults_to_false_and_an_empty_domain_leaves_the_company_out() {
        let yaml = "companies:\n  - 42\n  - domain: \"{{ fields.website }}\"\n";
        let got = associations(yaml, json!({"website": "acme.example"}));
        assert_eq!(got.company_ids, [42]);
        assert_eq!(
            got.companies_by_domain,
            [CompanyLookup {
                domain: domain("acme.example"),
                create_missing: false,
                properties: vec![],
            }]
        );
        let got = associations(yaml, json!({"website": ""}));
        assert_eq!(
            (got.company_ids.as_slice(), got.companies_by_domain.len()),
            ([42].as_slice(), 0)
        );
        let same =
            "companies:\n  - domain: \"{{ fields.a }}\"\n    create_missing: true\n  - domain: \"{{ fields.b }}\"\n";
        let got = associations(same, json!({"a": "acme.example", "b": "https://www.acme.example/"}));
        assert_eq!(got.companies_by_domain.len(), 1, "one company per domain: {got:?}");
        assert!(got.companies_by_domain[0].create_missing, "the first wins");
    }

    /// The form-to-deal job: the company is taken from the e-mail's domain, so a gmail.com lead has
    /// no company, and the contact is still linked.
    const LEAD: &str = "contacts:\n  email: \"{{ fields.email }}\"\ncompanies:\n  domain: \"{{ fields.email }}\"\n  \
                        create_missing: true\n  properties: { name: \"{{ fields.company }}\" }\n";

    #[test]
    fn a_free_mail_domain_is_never_a_company_but_the_contact_is_linked() {
        for address in [
            "ada@gmail.com",
            "Ada@GoogleMail.com",
            "ada@gmx.de",
            "ada@yahoo.co.uk",
            "ada@proton.me",
        ] {
            let got = associations(LEAD, json!({"email": address, "company": "Acme"}));
            assert_eq!(got.contacts_by_email.len(), 1, "{address}");
            assert!(got.companies_by_domain.is_empty(), "{address}: {got:?}");
            let host = address.to_lowercase().split('@').nth(1).unwrap().to_owned();
            assert_eq!(got.skipped_free_mail_domains, [domain(&host)], "{address}");
        }
        let got = associations(LEAD, json!({"email": "ada@acme.example", "company": "Acme"}));
        assert_eq!(got.companies_by_domain[0].domain, domain("acme.example"));
        assert!(got.skipped_free_mail_domains.is_empty());
    }

    #[test]
    fn a_mapping_extends_or_trims_the_free_mail_list() {
        let extended = "free_mail_domains: [mail.example, \"freemail.*\"]\n";
        for address in ["ada@mail.example", "ada@freemail.co.uk", "ada@gmail.com"] {
            let got = map_with(extended, LEAD, json!({"email": address}))
                .unwrap()
                .associations;
            assert!(got.companies_by_domain.is_empty(), "{address}: {got:?}");
        }
        let got = map_with(extended, LEAD, json!({"email": "ada@acme.example"}))
            .unwrap()
            .associations;
        assert_eq!(got.companies_by_domain.len(), 1);
        let trimmed = "free_mail_domains: { remove: [web.de] }\n";
        let got = map_with(trimmed, LEAD, json!({"email": "kontakt@web.de"}))
            .unwrap()
            .associations;
        assert_eq!(got.companies_by_domain[0].domain, domain("web.de"));
        let got = map_with(trimmed, LEAD, json!({"email": "ada@gmx.de"}))
            .unwrap()
            .associations;
        assert!(got.companies_by_domain.is_empty());
    }

    #[test]
    fn literal_e_mails_and_domains_are_checked_when_the_mapping_loads() {
        let yaml = "contacts:\n  email: \" Leads@Acme.Example \"\ncompanies:\n  domain: https://www.acme.example/\n";
        let got = associations(yaml, json!({}));
        assert_eq!(got.contacts_by_email[0].email, email("leads@acme.example"));
        assert_eq!(got.companies_by_domain[0].domain, domain("acme.example"));
    }

    /// One run of `check` names every wrong item of a list, of either kind (read and compile errors),
    /// not only the first: an item that cannot be read is left out and the others still compiled.
    #[test]
    fn every_wrong_item_of_a_list_is_reported_in_one_run() {
        let yaml = "contacts:\n  - email: not-an-email\n  - emial: x@acme.example\n  - email: also-not\n\
                    companies:\n  - domain: acme..example\n    create_missing: maybe\n  - domain: \"a b\"\n";
        let errors = load_errors(&mapping_text("", yaml));
        let wanted = [
            "associations.contacts[0].email: \"not-an-email\" is not an e-mail address",
            "associations.contacts[1]: unknown key `emial`",
            "associations.contacts[2].email: \"also-not\" is not an e-mail address",
            "associations.companies[0].domain: \"acme..example\" is not a company domain",
            "associations.companies[0].create_missing: `create_missing` must be true or false",
            "associations.companies[1].domain: \"a b\" is not a company domain",
        ];
        for want in wanted {
            assert!(errors.iter().any(|e| e.contains(want)), "{want}\n{errors:#?}");
        }
    }

    /// A literal free-mail domain can never find a company: `check` says so (a warning, since the
    /// contact is still linked), and says how to allow it.
    #[test]
    fn a_literal_free_mail_domain_is_a_warning() {
        let mapping = load(&mapping_text("", "companies:\n  domain: Gmail.com\n"));
        let warnings: Vec<String> = mapping.warnings().iter().map(ToString::to_string).collect();
        let warning = warnings
            .iter()
            .find(|w| w.contains("associations.companies[0].domain"))
            .unwrap_or_else(|| panic!("{warnings:#?}"));
        assert!(warning.contains("gmail.com is a free-mail domain"), "{warning}");
        assert!(
            warning.contains("free_mail_domains: { remove: [gmail.com] }"),
            "{warning}"
        );
        let allowed = load(&mapping_text(
            "free_mail_domains:\n  remove: [gmail.com]\n",
            "companies:\n  domain: gmail.com\n",
        ));
        assert!(allowed.warnings().iter().all(|w| !w.message.contains("free-mail")));
        // A template is not judged at load: its value is only known per delivery.
        let template = load(&mapping_text("", "companies:\n  domain: \"{{ fields.email }}\"\n"));
        assert!(template.warnings().iter().all(|w| !w.message.contains("free-mail")));
    }

    fn load_errors(text: &str) -> Vec<String> {
        let err = Mapping::from_yaml(text, "m.yaml").expect_err("must not load");
        err.errors().map(ToString::to_string).collect()
    }

    /// Every wrong shape of a contact or company spec, each at its line and column. The
    /// associations start on line 10, their first key at column 9.
    #[test]
    fn wrong_shapes_are_load_errors_at_their_node() {
        let cases = [
            (
                "unknown key in a contact",
                "contacts:\n  email: \"{{ fields.email }}\"\n  firstname: \"{{ fields.name }}\"\n",
                "12:11",
                "route r, associations.contacts[0]: unknown key `firstname` in a contact (expected email, properties)",
            ),
            (
                "typo in a contact key",
                "contacts:\n  - emial: \"{{ fields.email }}\"\n",
                "11:13",
                "did you mean `email`",
            ),
            (
                "contact without email",
                "contacts:\n  properties: { firstname: Ada }\n",
                "11:11",
                "associations.contacts[0]: missing `email:`",
            ),
            (
                "typed e-mail",
                "contacts:\n  email: { from: \"{{ fields.email }}\", type: number }\n",
                "11:18",
                "associations.contacts[0].email: `email` is text; remove `type: number`",
            ),
            (
                "e-mail as a property",
                "contacts:\n  email: \"{{ fields.email }}\"\n  properties:\n    email: \"{{ fields.other }}\"\n",
                "13:13",
                "associations.contacts[0].properties.email: the contact's `email` is set with `email:`",
            ),
            (
                "bad contact property name",
                "contacts:\n  email: a@b.example\n  properties: { first-name: x }\n",
                "12:25",
                "contains '-'",
            ),
            (
                "contact properties not a map",
                "contacts:\n  email: a@b.example\n  properties: [firstname]\n",
                "12:23",
                "`properties` must be a map, found a list",
            ),
            (
                "literal invalid e-mail",
                "contacts:\n  email: ada.example.com\n",
                "11:18",
                "associations.contacts[0].email: \"ada.example.com\" is not an e-mail address: there is no `@`",
            ),
            (
                "null in a contact list",
                "contacts:\n  - 5\n  -\n",
                "12:12",
                "associations.contacts[1]: expected an id, a template or a map with `email:`, found nothing (null)",
            ),
            (
                "nested list",
                "contacts:\n  - [5]\n",
                "11:13",
                "expected an id, a template or a map with `email:`, found a list",
            ),
            (
                "create_missing as a string",
                "companies:\n  domain: acme.example\n  create_missing: \"yes\"\n",
                "12:27",
                "associations.companies[0].create_missing: `create_missing` must be true or false (a literal, not a \
                 template), found \"yes\"",
            ),
            (
                "create_missing as a template",
                "companies:\n  domain: acme.example\n  create_missing: \"{{ fields.create }}\"\n",
                "12:27",
                "must be true or false",
            ),
            (
                "company without domain",
                "companies:\n  - name: Acme\n",
                "11:13",
                "associations.companies[0]: missing `domain:`",
            ),
            (
                "unknown key in a company",
                "companies:\n  - domain: acme.example\n    name: Acme\n",
                "12:13",
                "unknown key `name` in a company (expected domain, create_missing, properties)",
            ),
            (
                "domain as a property",
                "companies:\n  domain: acme.example\n  properties: { domain: other.example }\n",
                "12:25",
                "the company's `domain` is set with `domain:`",
            ),
            (
                "literal invalid domain",
                "companies:\n  domain: localhost\n",
                "11:19",
                "\"localhost\" is not a company domain: a domain has at least two labels",
            ),
            (
                "invalid template in a contact",
                "contacts:\n  email: \"{{ fields.email \"\n",
                "11:18",
                "invalid template",
            ),
            (
                "unknown variable in a company property",
                "companies:\n  domain: acme.example\n  properties: { name: \"{{ feilds.name }}\" }\n",
                "12:31",
                "associations.companies[0].properties.name: invalid template",
            ),
        ];
        let mut wrong = Vec::new();
        for (name, yaml, position, want) in cases {
            let errors = load_errors(&mapping_text("", yaml));
            if !errors
                .iter()
                .any(|e| e.starts_with(&format!("{position}: error: ")) && e.contains(want))
            {
                wrong.push(format!("{name}: want {want:?} at {position}, got {errors:#?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn on_association_failure_is_report_by_default_or_dead_letter() {
        let route = |extra: &str| {
            format!(
                "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n{extra}    deal:\n      pipeline: p\n      \
                 dealstage: s\n      associations: {{ contacts: \"{{{{ fields.vid }}}}\" }}\n"
            )
        };
        let mapping = load(&route(""));
        assert_eq!(
            mapping.route("r").unwrap().on_association_failure(),
            OnAssociationFailure::Report
        );
        for (value, want) in [
            ("report", OnAssociationFailure::Report),
            ("dead_letter", OnAssociationFailure::DeadLetter),
        ] {
            let mapping = load(&route(&format!("    on_association_failure: {value}\n")));
            assert_eq!(mapping.route("r").unwrap().on_association_failure(), want, "{value}");
            assert_eq!(want.as_str(), value);
        }
        let errors = load_errors(&route("    on_association_failure: dead-letter\n"));
        assert_eq!(
            errors,
            ["6:29: error: route r, on_association_failure: expected report or dead_letter, found \"dead-letter\""]
        );
        let without = "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    \
                       on_association_failure: dead_letter\n    deal: { pipeline: p, dealstage: s }\n";
        let warnings: Vec<String> = load(without).warnings().iter().map(ToString::to_string).collect();
        assert!(
            warnings.iter().any(|w| w.starts_with(
                "6:29: warning: route r, on_association_failure: the route has no \
                                                   `associations`"
            )),
            "{warnings:#?}"
        );
    }

    /// Dead letters and `transform` carry the draft as JSON: the new parts are camelCase, left
    /// out when empty (so older dead letters keep their shape) and read back as empty.
    #[test]
    fn the_drafts_json_shape_carries_contacts_and_companies() {
        let draft = map(LEAD, json!({"email": "Ada@Acme.example", "company": "Acme"})).unwrap();
        let got = serde_json::to_value(&draft).unwrap();
        assert_eq!(
            got["associations"],
            json!({
                "companyIds": [],
                "contactIds": [],
                "contactsByEmail": [{"email": "ada@acme.example", "properties": []}],
                "companiesByDomain": [{
                    "domain": "acme.example",
                    "createMissing": true,
                    "properties": [{"name": "name", "value": {"type": "text", "value": "Acme"}}]
                }]
            })
        );
        assert_eq!(serde_json::from_value::<DealDraft>(got).unwrap(), draft);

        let free = map(LEAD, json!({"email": "ada@gmail.com"})).unwrap();
        let got = serde_json::to_value(&free).unwrap();
        assert_eq!(
            got["associations"],
            json!({
                "companyIds": [],
                "contactIds": [],
                "contactsByEmail": [{"email": "ada@gmail.com", "properties": []}],
                "skippedFreeMailDomains": ["gmail.com"]
            })
        );

        let older = json!({"dealstage": "s", "properties": [], "associations": {"companyIds": [1], "contactIds": []}});
        let read: DealDraft = serde_json::from_value(older.clone()).unwrap();
        assert_eq!(read.associations.company_ids, [1]);
        assert!(read.associations.contacts_by_email.is_empty());
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            older,
            "an older draft keeps its shape"
        );

        let forged = json!({"dealstage": "s", "properties": [], "associations": {"companyIds": [], "contactIds": [],
                            "contactsByEmail": [{"email": "not an e-mail", "properties": []}]}});
        assert!(
            serde_json::from_value::<DealDraft>(forged).is_err(),
            "a draft read back is checked too"
        );
    }
}
