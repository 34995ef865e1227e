//! A mapped DealDraft made ready for the portal it goes to: pipeline and stage labels become ids,
//! option labels become option values, and where the mapping gives no `type:` the property's type in
//! HubSpot picks the conversion. Pure ([`resolve`]); [`resolve_in_portal`] adds the portal's cached
//! schema. A value is never guessed: what the schema does not know is a named mapping error, and
//! without a schema the draft goes out as mapped.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::Route;
use super::convert::{Conversion, ValueType};
use crate::domain::{DealDraft, Problem, PropValue, Property};
use crate::hubspot::portal::{Portal, PortalSchema, PropertyDef, PropertyKind, UnknownOption};
use crate::hubspot::{AuthSource, Deals, ObjectType};

/// Problem code: `pipeline` is neither the id nor the label of one of the portal's deal pipelines.
pub const UNKNOWN_PIPELINE: &str = "unknown_pipeline";
/// Problem code: `dealstage` is neither the id nor the label of a stage of the deal's pipeline.
pub const UNKNOWN_STAGE: &str = "unknown_stage";
/// Problem code: a value of an enumeration property is neither an option's value nor its label
/// (the code the mapping gives a multi-select item that cannot be an option).
pub const INVALID_OPTION: &str = "invalid_option";

/// The draft with the portal's names, or every problem found (all of them, not the first).
///
/// - `pipeline`: an id passes; a label (case-insensitive, trimmed) becomes its pipeline's id; a value
///   that is both an id and a label means the id. Else `unknown_pipeline` at `pipeline`.
/// - `dealstage`: looked up INSIDE the deal's pipeline (two pipelines may each have a "Qualified To
///   Buy" stage, with different ids), id first, then label. A draft without a pipeline goes to the
///   portal's default pipeline (id `default`, else the first by `displayOrder`): its stages are
///   looked up, and when a label is resolved the draft names that pipeline, so that HubSpot puts the
///   deal where its stage is; the id of another pipeline's stage passes untouched (HubSpot decides).
///   Else `unknown_stage` at `dealstage`, listing the pipeline's stages.
/// - deal properties of the schema's type `number`, `date`, `datetime` or `bool` whose value the
///   mapping left as text (no `type:`, or `type: text`; a typed value is never text) are converted by the mapping's own rules (a `date` is
///   midnight UTC, a `datetime` exact epoch ms); a value that does not convert is the error the
///   mapping gives with that `type:` (`invalid_number`, …).
/// - enumeration properties: each value (each `;`-separated item of a multi-select, `fieldType:
///   checkbox`; duplicates dropped) that is an option's value passes, an option's label becomes its
///   value; for a `booleancheckbox`, the mapping's boolean words (`yes`, `on`, `1`, …) are also read.
///   Else `invalid_option` at `properties.{name}`, listing the options.
/// - properties the schema does not know pass untouched (HubSpot answers for them; `check --online`
///   reports them before deployment).
pub fn resolve(mut draft: DealDraft, schema: &PortalSchema) -> Result<DealDraft, Vec<Problem>> {
    let mut problems = Vec::new();
    resolve_stage(&mut draft, schema, &mut problems);
    let properties = std::mem::take(&mut draft.properties);
    draft.properties = properties
        .into_iter()
        .map(|property| resolve_property(property, schema, &mut problems))
        .collect();
    if problems.is_empty() { Ok(draft) } else { Err(problems) }
}

/// [`resolve`] against `portal`'s schema for the route's API (read with `deals` and `auth` when not
/// cached; see [`Portal::schema`]). Without a schema, the draft as mapped. When the schema does not
/// know a pipeline, stage or option, it is read again once (rate-limited, see [`Portal::reread`]) and
/// the draft resolved against the new one: a stage or option added in HubSpot since the last read.
pub async fn resolve_in_portal<A: AuthSource + ?Sized>(
    portal: &Portal,
    deals: &dyn Deals,
    auth: &A,
    route: &Route,
    draft: DealDraft,
    deadline: Option<SystemTime>,
) -> Result<DealDraft, Vec<Problem>> {
    let api = route.hubspot().api;
    let Some(schema) = portal.schema(api, deals, auth, deadline).await else {
        return Ok(draft);
    };
    match resolve(draft.clone(), &schema) {
        Err(problems) if problems.iter().any(is_unknown_name) => {
            let fresh: Option<Arc<PortalSchema>> = portal.reread(api, deals, auth, deadline, &schema).await;
            match fresh {
                Some(fresh) => resolve(draft, &fresh),
                None => Err(problems),
            }
        }
        result => result,
    }
}

/// Whether a problem is a name the schema did not know (which a newer schema may know).
fn is_unknown_name(problem: &Problem) -> bool {
    [UNKNOWN_PIPELINE, UNKNOWN_STAGE, INVALID_OPTION].contains(&problem.code.as_str())
}

fn resolve_stage(draft: &mut DealDraft, schema: &PortalSchema, problems: &mut Vec<Problem>) {
    if schema.pipelines().is_empty() {
        return; // a portal that lists no pipeline (an odd answer): HubSpot answers for both
    }
    let pipeline = match draft.pipeline.as_deref() {
        Some(value) => match schema.pipeline(value) {
            Ok(pipeline) => {
                draft.pipeline = Some(pipeline.id.clone());
                pipeline
            }
            Err(unknown) => {
                // The stage cannot be looked up without its pipeline; the pipeline's problem says why.
                problems.push(Problem::at("pipeline", UNKNOWN_PIPELINE, unknown.to_string()));
                return;
            }
        },
        None => match schema.default_pipeline() {
            Some(pipeline) => pipeline,
            None => return,
        },
    };
    match pipeline.stage(&draft.dealstage) {
        Ok(stage) if stage.id == draft.dealstage => {}
        Ok(stage) => {
            if draft.pipeline.is_none() {
                draft.pipeline = Some(pipeline.id.clone());
            }
            draft.dealstage = stage.id.clone();
        }
        Err(_) if draft.pipeline.is_none() && schema.pipeline_of_stage_id(draft.dealstage.trim()).is_some() => {}
        Err(unknown) => problems.push(Problem::at("dealstage", UNKNOWN_STAGE, unknown.to_string())),
    }
}

fn resolve_property(property: Property, schema: &PortalSchema, problems: &mut Vec<Problem>) -> Property {
    let Some(def) = schema.property(ObjectType::Deal, &property.name) else {
        return property;
    };
    let field = format!("properties.{}", property.name);
    let mut value = property.value;
    if let PropValue::Text(text) = &value
        && !text.trim().is_empty()
        && let Some(kind) = conversion_of(&def.kind)
    {
        match Conversion::plain(kind).convert(&Value::String(text.clone())) {
            Ok(converted) => value = converted,
            Err(invalid) => {
                let message = format!(
                    "{} ({} is a {} property in HubSpot and the mapping gives no `type:`)",
                    invalid.message, def.name, def.kind
                );
                problems.push(Problem::at(field, invalid.code, message));
                return Property {
                    name: property.name,
                    value,
                };
            }
        }
    }
    if def.kind == PropertyKind::Enumeration {
        value = option_values(def, value, &field, problems);
    }
    Property {
        name: property.name,
        value,
    }
}

/// The mapping's conversion for a HubSpot type, where it has one.
fn conversion_of(kind: &PropertyKind) -> Option<ValueType> {
    match kind {
        PropertyKind::Number => Some(ValueType::Number),
        PropertyKind::Date => Some(ValueType::Date),
        PropertyKind::DateTime => Some(ValueType::DateTime),
        PropertyKind::Bool => Some(ValueType::Bool),
        _ => None,
    }
}

/// The option values `value` stands for (see [`resolve`]); the value unchanged when it already is
/// one, or when it is blank.
fn option_values(def: &PropertyDef, value: PropValue, field: &str, problems: &mut Vec<Problem>) -> PropValue {
    let wire = value.to_wire_string();
    if wire.trim().is_empty() {
        return value;
    }
    let resolved = if def.is_multi_select() {
        let mut values: Vec<&str> = Vec::new();
        let mut unknown = Vec::new();
        for item in wire.split(';').map(str::trim).filter(|item| !item.is_empty()) {
            match option_value(def, item) {
                Ok(option) if !values.contains(&option) => values.push(option),
                Ok(_) => {}
                Err(why) => unknown.push(why),
            }
        }
        if unknown.is_empty() {
            Ok(values.join(";"))
        } else {
            Err(unknown)
        }
    } else {
        option_value(def, &wire).map(str::to_owned).map_err(|why| vec![why])
    };
    match resolved {
        Ok(resolved) if resolved == wire => value,
        Ok(resolved) => PropValue::Text(resolved),
        Err(unknown) => {
            problems.extend(
                unknown
                    .into_iter()
                    .map(|why| Problem::at(field, INVALID_OPTION, why.to_string())),
            );
            value
        }
    }
}

/// [`PropertyDef::option_value`], and for a `booleancheckbox` the boolean words the mapping reads.
pub(crate) fn option_value<'a>(def: &'a PropertyDef, item: &str) -> Result<&'a str, UnknownOption> {
    def.option_value(item).or_else(|unknown| {
        if def.field_type != "booleancheckbox" {
            return Err(unknown);
        }
        match Conversion::plain(ValueType::Bool).convert(&Value::String(item.to_owned())) {
            Ok(PropValue::Bool(b)) => def.option_value(if b { "true" } else { "false" }).map_err(|_| unknown),
            _ => Err(unknown),
        }
    })
}

#[cfg(test)]
mod tests;
