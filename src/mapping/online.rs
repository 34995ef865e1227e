//! `dealhook check --online`: a mapping compared with the portal it will write to (its pipelines and
//! the properties of deals, contacts and companies), every mismatch reported at its line and column.
//! Pure: the schema is read by the caller. Only what the file fixes is checked (literals, `map:`
//! targets, `default:`); templates are known only per delivery and are left to the runtime checks.
//!
//! # What is an error, what a warning
//!
//! Errors are what HubSpot would refuse (or silently not store), on every delivery that reaches them:
//!
//! - a property the portal does not list (`PROPERTY_DOESNT_EXIST`), with a "did you mean" for a near
//!   name. HubSpot's properties list leaves out properties holding sensitive data (catalog item 25 of
//!   `hubspot-responses.md`): the message says so, and such a property is the one false alarm;
//! - a read-only (`modificationMetadata.readOnlyValue`) or calculated property;
//! - a constant that is not an option of an enumeration property (each `;` item of a multi-select);
//!   an option's label is fine on a deal property (dealhook sends the option's value), not on a
//!   contact or company property (sent as written: HubSpot wants the value);
//! - a constant the property's type cannot take (`"soon"` for a `number`, without `type:`);
//! - a `pipeline:` or `dealstage:` constant that is neither an id nor a label, a stage outside the
//!   deal's pipeline (the literal `pipeline:`, else the portal's default pipeline);
//! - a `type:` that contradicts the property's type: `number`, `date`, `datetime` or `bool` on a
//!   property of another of those types or an enumeration (except `number` on an enumeration whose
//!   option values are all numbers, and `bool` on one whose options are `true` and `false`), and
//!   `datetime` on a `date` property (HubSpot takes only midnight UTC there: use `type: date`).
//!   `date` on a `datetime` property is fine (midnight UTC of the day is an instant);
//! - `hubspot.upsert_by` naming a property the portal lacks or one without unique values.
//!
//! Warnings are what works but is probably not meant: a typed value (`number`, `date`, `datetime`,
//! `bool`) on a `string` or `phone_number` property, sent as that type's text; a stage that belongs
//! to another pipeline than the default one on a route without `pipeline:` (HubSpot decides).

use std::collections::HashMap;

use serde_json::Value;

use super::convert::{Conversion, ValueType};
use super::diagnostic::{At, Diagnostic, Report};
use super::resolve::option_value;
use super::spec::{self, DealSpec, Input, PropertySpec, RouteSpec, ValueSpec, edit_distance};
use super::yaml::{self, Loc};
use crate::hubspot::portal::{Pipeline, PortalSchema, PropertyDef, PropertyKind};
use crate::hubspot::{HubSpotApi, ObjectType};

/// What `check --online` must read from the portal to check a mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaNeeds {
    /// The APIs whose schema the routes use, each once: [`HubSpotApi::V3`] stands for v1 and v3 routes
    /// (both read the v3 paths, see [`crate::hubspot::portal::pipelines_request`]), then
    /// [`HubSpotApi::V2026_03`].
    pub apis: Vec<HubSpotApi>,
    /// Some `associations.contacts` record sets contact properties.
    pub contact_properties: bool,
    /// Some `associations.companies` record sets company properties.
    pub company_properties: bool,
}

/// The portal schema a route with `api` is checked against: v1 and v3 share the v3 one.
pub fn schema_api(api: HubSpotApi) -> HubSpotApi {
    match api {
        HubSpotApi::V1 | HubSpotApi::V3 => HubSpotApi::V3,
        HubSpotApi::V2026_03 => HubSpotApi::V2026_03,
    }
}

/// What the portal must be asked for to check the mapping in `text` (nothing for a file that does not
/// parse: `check` reports that offline).
pub fn schema_needs(text: &str) -> SchemaNeeds {
    let mut needs = SchemaNeeds::default();
    let Ok(root) = yaml::parse(text) else {
        return needs;
    };
    let spec = spec::read(&root, &mut Report::default());
    for route in &spec.routes {
        let api = schema_api(route.hubspot.api.map(|(api, _)| api).unwrap_or_default());
        if !needs.apis.contains(&api) {
            needs.apis.push(api);
        }
        if let Some(deal) = &route.deal {
            needs.contact_properties |= deal
                .contacts
                .as_ref()
                .is_some_and(|c| c.records.iter().any(|r| !r.properties.is_empty()));
            needs.company_properties |= deal
                .companies
                .as_ref()
                .is_some_and(|c| c.records.iter().any(|r| !r.properties.is_empty()));
        }
    }
    needs
        .apis
        .sort_by_key(|api| HubSpotApi::ALL.iter().position(|a| a == api));
    needs
}

/// Compares the mapping in `text` with the portal: `schemas` holds the schema of each API the routes
/// use, keyed as [`schema_api`] says (a route whose schema is missing is not checked). Findings are
/// sorted as offline `check`'s are (by line and column); see the module documentation for what each
/// one means. A file that does not parse gives its syntax error (offline `check` reports more).
pub fn check_online(text: &str, schemas: &HashMap<HubSpotApi, PortalSchema>) -> Vec<Diagnostic> {
    let mut report = Report::default();
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(syntax) => {
            report.error(At::default(), syntax.loc, format!("YAML syntax: {}", syntax.message));
            return report.into_sorted();
        }
    };
    let spec = spec::read(&root, &mut Report::default());
    for route in &spec.routes {
        let api = schema_api(route.hubspot.api.map(|(api, _)| api).unwrap_or_default());
        if let Some(schema) = schemas.get(&api) {
            check_route(route, schema, &mut report);
        }
    }
    report.into_sorted()
}

fn check_route(route: &RouteSpec, schema: &PortalSchema, report: &mut Report) {
    let at = At::route(&route.name);
    if let Some((name, loc)) = &route.hubspot.upsert_by {
        check_upsert_by(name, *loc, schema, at.field("hubspot.upsert_by"), report);
    }
    let Some(deal) = &route.deal else {
        return;
    };
    check_pipeline_and_stage(deal, schema, at, report);
    for property in &deal.properties {
        let field = format!("properties.{}", property.name);
        check_property(property, ObjectType::Deal, schema, at.field(&field), report);
    }
    if let Some(contacts) = &deal.contacts {
        for record in &contacts.records {
            for property in &record.properties {
                let field = format!("{}.properties.{}", record.field, property.name);
                check_property(property, ObjectType::Contact, schema, at.field(&field), report);
            }
        }
    }
    if let Some(companies) = &deal.companies {
        for record in &companies.records {
            for property in &record.properties {
                let field = format!("{}.properties.{}", record.field, property.name);
                check_property(property, ObjectType::Company, schema, at.field(&field), report);
            }
        }
    }
}

fn check_upsert_by(name: &str, loc: Loc, schema: &PortalSchema, at: At<'_>, report: &mut Report) {
    let Some(properties) = schema.properties(ObjectType::Deal) else {
        return;
    };
    match properties.iter().find(|p| p.name == name) {
        None => report.error(at, loc, unknown_property(name, ObjectType::Deal, properties)),
        Some(def) if !def.has_unique_value => report.error(
            at,
            loc,
            format!(
                "deal property {name} does not have unique values in the portal (hasUniqueValue is false), so \
                 HubSpot cannot upsert by it; create a property with unique values (e.g. an event id)"
            ),
        ),
        Some(_) => {}
    }
}

/// The constants a value spec can send, each with where it is written: the literal (when no `map:`
/// looks it up), every `map:` target and the `default:`. Blank ones (nothing is sent) are left out.
fn constants(value: &ValueSpec) -> Vec<(String, Loc)> {
    let mut out = Vec::new();
    let mut push = |constant: &Value, loc: Loc| {
        if let Ok(text) = Conversion::plain(ValueType::Text).convert(constant) {
            let text = text.to_wire_string();
            if !text.trim().is_empty() {
                out.push((text, loc));
            }
        }
    };
    match (&value.input, &value.lookup) {
        (Input::Literal(literal), None) => push(literal, value.loc),
        (_, Some(lookup)) => {
            for (key, target) in lookup {
                push(target, key.loc);
            }
        }
        (Input::Template(_), None) => {}
    }
    if let Some((default, loc)) = &value.default {
        push(default, *loc);
    }
    out
}

fn check_pipeline_and_stage(deal: &DealSpec, schema: &PortalSchema, at: At<'_>, report: &mut Report) {
    if schema.pipelines().is_empty() {
        return; // nothing to compare with (an odd answer): the runtime passes values through, too
    }
    // The pipeline every stage must belong to, when the file fixes it.
    let mut pipeline: Option<&Pipeline> = None;
    let mut fixed = true;
    match &deal.pipeline {
        None => pipeline = schema.default_pipeline(),
        Some(spec) => {
            fixed = matches!(spec.input, Input::Literal(_)) && spec.lookup.is_none();
            for (value, loc) in constants(spec) {
                match schema.pipeline(&value) {
                    Ok(found) if fixed => pipeline = Some(found),
                    Ok(_) => {}
                    Err(unknown) => report.error(at.field("pipeline"), loc, unknown.to_string()),
                }
            }
            if !fixed {
                pipeline = None;
            }
        }
    }
    let Some(stage) = &deal.dealstage else {
        return;
    };
    let at = at.field("dealstage");
    for (value, loc) in constants(stage) {
        match (pipeline, fixed) {
            (Some(pipeline), _) => match pipeline.stage(&value) {
                Ok(_) => {}
                // As at runtime: without `pipeline:`, another pipeline's stage id passes (HubSpot decides).
                Err(_) if deal.pipeline.is_none() && schema.pipeline_of_stage_id(value.trim()).is_some() => {
                    let other = schema
                        .pipeline_of_stage_id(value.trim())
                        .map_or("", |p| p.label.as_str());
                    report.warning(
                        at,
                        loc,
                        format!(
                            "stage {:?} belongs to pipeline {other:?}, not to the default pipeline {:?}; set \
                             `pipeline:` so that HubSpot puts the deal where its stage is",
                            value.trim(),
                            pipeline.label
                        ),
                    );
                }
                Err(unknown) => report.error(at, loc, unknown.to_string()),
            },
            // The pipeline of a `pipeline:` literal that does not exist (reported) or of one the
            // delivery picks: the stage must at least be a stage of some pipeline.
            (None, _) => {
                if !schema.pipelines().iter().any(|p| p.stage(&value).is_ok()) {
                    let known: Vec<String> = schema
                        .pipelines()
                        .iter()
                        .map(|p| format!("{:?}: {}", p.label, p.stages.len()))
                        .collect();
                    report.error(
                        at,
                        loc,
                        format!(
                            "no stage of any pipeline has the id or label {:?} (pipelines and their number of \
                             stages: {})",
                            value.trim(),
                            known.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

fn object_name(object: ObjectType) -> &'static str {
    match object {
        ObjectType::Deal => "deal",
        ObjectType::Contact => "contact",
        ObjectType::Company => "company",
    }
}

fn unknown_property(name: &str, object: ObjectType, properties: &[PropertyDef]) -> String {
    let what = object_name(object);
    // Close enough to be a typo: a third of the longer name, at least two edits (as for keys).
    let near = properties
        .iter()
        .map(|p| (edit_distance(&p.name, name), p))
        .filter(|(d, p)| *d <= (p.name.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p);
    match near {
        Some(p) => format!(
            "the portal has no {what} property {name} (did you mean {}, \"{}\"?); HubSpot rejects unknown \
             properties",
            p.name, p.label
        ),
        None => format!(
            "the portal lists no {what} property {name}; HubSpot rejects unknown properties (properties \
             holding sensitive data are not listed: if {name} is one, this is a false alarm)"
        ),
    }
}

fn check_property(property: &PropertySpec, object: ObjectType, schema: &PortalSchema, at: At<'_>, report: &mut Report) {
    let Some(properties) = schema.properties(object) else {
        return;
    };
    let name = property.name.as_str();
    let Some(def) = properties.iter().find(|p| p.name == name) else {
        report.error(at, property.key_loc, unknown_property(name, object, properties));
        return;
    };
    let what = object_name(object);
    if def.calculated || def.read_only_value {
        let why = if def.calculated {
            "calculated by HubSpot"
        } else {
            "read-only"
        };
        report.error(
            at,
            property.key_loc,
            format!("{what} property {name} is {why}: HubSpot refuses or ignores values written to it; remove it"),
        );
        return;
    }
    let value = &property.value;
    let declared = value.conversion.kind;
    if declared != ValueType::Text {
        check_type(def, declared, value.loc, at, report);
        return; // the constants were converted to the declared type at load; the type's check says it all
    }
    for (constant, loc) in constants(value) {
        if def.kind == PropertyKind::Enumeration {
            check_options(def, object, &constant, loc, at, report);
        } else if let Some(kind) = conversion_of(&def.kind)
            && let Err(invalid) = Conversion::plain(kind).convert(&Value::String(constant.clone()))
        {
            report.error(
                at,
                loc,
                format!(
                    "{} ({name} is a {} property in the portal and the mapping gives no `type:`)",
                    invalid.message, def.kind
                ),
            );
        }
    }
}

/// The mapping's conversion for a HubSpot type, where it has one (as the runtime applies it).
fn conversion_of(kind: &PropertyKind) -> Option<ValueType> {
    match kind {
        PropertyKind::Number => Some(ValueType::Number),
        PropertyKind::Date => Some(ValueType::Date),
        PropertyKind::DateTime => Some(ValueType::DateTime),
        PropertyKind::Bool => Some(ValueType::Bool),
        _ => None,
    }
}

fn check_options(def: &PropertyDef, object: ObjectType, constant: &str, loc: Loc, at: At<'_>, report: &mut Report) {
    let items: Vec<&str> = if def.is_multi_select() {
        constant.split(';').map(str::trim).filter(|i| !i.is_empty()).collect()
    } else {
        vec![constant]
    };
    for item in items {
        match option_value(def, item) {
            Err(unknown) => report.error(at, loc, unknown.to_string()),
            // Only deal properties have their option labels resolved (see `resolve`).
            Ok(value) if object != ObjectType::Deal && value != item => report.error(
                at,
                loc,
                format!(
                    "{:?} is the label of option {value:?} of {} property {}; {} properties are sent as written, \
                     so write the option's value {value:?}",
                    item.trim(),
                    object_name(object),
                    def.name,
                    object_name(object)
                ),
            ),
            Ok(_) => {}
        }
    }
}

fn check_type(def: &PropertyDef, declared: ValueType, loc: Loc, at: At<'_>, report: &mut Report) {
    let numeric_options = !def.options.is_empty() && def.options.iter().all(|o| o.value.trim().parse::<f64>().is_ok());
    let boolean_options =
        def.options.iter().any(|o| o.value == "true") && def.options.iter().any(|o| o.value == "false");
    let fits = match (&def.kind, declared) {
        (_, ValueType::Text) => Some(true),
        (PropertyKind::String | PropertyKind::PhoneNumber, _) => None,
        (PropertyKind::Other(_), _) => Some(true), // a type dealhook does not know: HubSpot judges
        (PropertyKind::Number, ValueType::Number) => Some(true),
        (PropertyKind::Date, ValueType::Date) => Some(true),
        (PropertyKind::DateTime, ValueType::Date | ValueType::DateTime) => Some(true),
        (PropertyKind::Bool, ValueType::Bool) => Some(true),
        (PropertyKind::Enumeration, ValueType::Number) => Some(numeric_options),
        (PropertyKind::Enumeration, ValueType::Bool) => Some(boolean_options),
        _ => Some(false),
    };
    let declared = declared.as_str();
    match fits {
        Some(true) => {}
        None => report.warning(
            at,
            loc,
            format!(
                "`type: {declared}` on {}, a {} property in the portal: the value is sent as text, written as \
                 `type: {declared}` normalises it; remove `type:` if that is not meant",
                def.name, def.kind
            ),
        ),
        Some(false) => {
            let hint = match (&def.kind, declared) {
                (PropertyKind::Date, "datetime") => {
                    "; HubSpot takes only midnight UTC on a date property: use `type: date`".to_owned()
                }
                (PropertyKind::Enumeration, _) => format!(
                    "; remove `type:` (the value must be one of its options: {})",
                    def.options
                        .iter()
                        .map(|o| o.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (kind, _) => match conversion_of(kind) {
                    Some(fitting) => format!("; use `type: {}` or none", fitting.as_str()),
                    None => String::new(),
                },
            };
            report.error(
                at,
                loc,
                format!(
                    "`type: {declared}` contradicts the property: {} has type {} in the portal{hint}",
                    def.name, def.kind
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
