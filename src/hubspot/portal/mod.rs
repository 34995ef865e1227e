//! The portal's schema: its deal pipelines with their stages, and the properties of deals (and, read
//! on demand, of contacts and companies), with the lookups that turn what people see in HubSpot (a
//! stage's label, an option's label) into what the API takes (the stage's id, the option's value).
//! Pure: request builders, answer parsers and lookups here; the cache that reads them once per cold
//! start is [`Portal`]. Nothing here panics on an odd answer: an unreadable body is an error.

mod cache;

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::crm::{ResponseError, json_object};
use super::{HubSpotApi, HubSpotRequest, ObjectType};

pub use cache::{Portal, PortalConfig, SCHEMA_SCOPES, SchemaStatus, read_schema};

/// One deal pipeline (an entry of `CollectionResponsePipelineNoPaging.results` in HubSpot's pipelines
/// documents).
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Its id: `default` for the portal's first pipeline, digits for the others.
    pub id: String,
    /// The label HubSpot shows ("Sales Pipeline"); unique among the portal's pipelines.
    pub label: String,
    /// `displayOrder`, when given.
    pub display_order: Option<i64>,
    /// Its stages, as HubSpot listed them (archived ones left out).
    pub stages: Vec<Stage>,
}

/// One stage of a pipeline (`PipelineStage`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its id (`appointmentscheduled`, `qualifiedtobuy`, or digits in other pipelines).
    pub id: String,
    /// The label HubSpot shows ("Qualified To Buy"); unique within its pipeline only.
    pub label: String,
    /// `metadata.isClosed` (HubSpot sends the string `"true"` or `"false"`), when given.
    pub is_closed: Option<bool>,
    /// `metadata.probability`, 0.0 to 1.0 (a string in HubSpot's answer), when given.
    pub probability: Option<f64>,
}

/// A property's data type: HubSpot's `type`. Unknown types are kept by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyKind {
    /// `string`.
    String,
    /// `number`.
    Number,
    /// `date`: midnight UTC of a calendar day, as epoch milliseconds.
    Date,
    /// `datetime`: an instant, as epoch milliseconds.
    DateTime,
    /// `enumeration`: one of `options` (several, `;`-separated, for `fieldType: checkbox`).
    Enumeration,
    /// `bool`.
    Bool,
    /// `phone_number`.
    PhoneNumber,
    /// Any other type (`json`, `object_coordinates`, …), by HubSpot's name.
    Other(String),
}

impl PropertyKind {
    /// The kind HubSpot's `type` names.
    pub fn parse(name: &str) -> PropertyKind {
        match name {
            "string" => PropertyKind::String,
            "number" => PropertyKind::Number,
            "date" => PropertyKind::Date,
            "datetime" => PropertyKind::DateTime,
            "enumeration" => PropertyKind::Enumeration,
            "bool" => PropertyKind::Bool,
            "phone_number" => PropertyKind::PhoneNumber,
            other => PropertyKind::Other(other.to_owned()),
        }
    }

    /// HubSpot's name for it.
    pub fn as_str(&self) -> &str {
        match self {
            PropertyKind::String => "string",
            PropertyKind::Number => "number",
            PropertyKind::Date => "date",
            PropertyKind::DateTime => "datetime",
            PropertyKind::Enumeration => "enumeration",
            PropertyKind::Bool => "bool",
            PropertyKind::PhoneNumber => "phone_number",
            PropertyKind::Other(name) => name,
        }
    }
}

impl fmt::Display for PropertyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One option of an enumeration property (`Option` in HubSpot's properties documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyOption {
    /// What HubSpot shows ("New Business").
    pub label: String,
    /// What the API takes (`newbusiness`).
    pub value: String,
    /// Hidden from HubSpot's UI (still a valid value).
    pub hidden: bool,
}

/// One property of an object type (`Property` in HubSpot's properties documents).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    /// Internal name (`dealtype`), the name the API takes.
    pub name: String,
    /// What HubSpot shows ("Deal Type").
    pub label: String,
    /// `type`.
    pub kind: PropertyKind,
    /// `fieldType` (`select`, `radio`, `checkbox`, `booleancheckbox`, `text`, `date`, …).
    pub field_type: String,
    /// `options` (empty for non-enumerations).
    pub options: Vec<PropertyOption>,
    /// `modificationMetadata.readOnlyValue`: HubSpot refuses (or ignores) values written to it.
    pub read_only_value: bool,
    /// `calculated`: HubSpot computes it.
    pub calculated: bool,
    /// `hasUniqueValue`: usable as `upsert_by`.
    pub has_unique_value: bool,
    /// `hubspotDefined`: one of HubSpot's default properties.
    pub hubspot_defined: bool,
}

impl PropertyDef {
    /// A multi-select: an enumeration shown as checkboxes, whose value is options joined with `;`.
    pub fn is_multi_select(&self) -> bool {
        self.kind == PropertyKind::Enumeration && self.field_type == "checkbox"
    }

    /// The option value `value` stands for: `value` itself when it is an option's value (exactly, or
    /// trimmed), else the value of the one option whose label equals it (case-insensitive, trimmed).
    /// Hidden options count. Neither, or a label several options share (with different values), is
    /// an [`UnknownOption`] listing the options.
    pub fn option_value(&self, value: &str) -> Result<&str, UnknownOption> {
        let found = find(
            &self.options,
            value,
            |o: &PropertyOption| o.value.as_str(),
            |o| o.label.as_str(),
        );
        found.map(|o| o.value.as_str()).map_err(|ambiguous| UnknownOption {
            property: self.name.clone(),
            value: value.trim().to_owned(),
            options: self
                .options
                .iter()
                .map(|o| (o.label.clone(), o.value.clone()))
                .collect(),
            ambiguous,
        })
    }
}

impl Pipeline {
    /// The stage `value` names in this pipeline: its id first (exactly, or trimmed), else its label
    /// (case-insensitive, trimmed). A value that is both one stage's id and another's label means the
    /// id. Stages of other pipelines are never found here (two pipelines may each have a "Qualified To
    /// Buy" stage, with different ids).
    pub fn stage(&self, value: &str) -> Result<&Stage, UnknownLabel> {
        find(&self.stages, value, |s: &Stage| s.id.as_str(), |s| s.label.as_str()).map_err(|ambiguous| UnknownLabel {
            what: LabelKind::Stage,
            value: value.trim().to_owned(),
            pipeline: Some(self.label.clone()),
            known: self.stages.iter().map(|s| (s.label.clone(), s.id.clone())).collect(),
            ambiguous,
        })
    }
}

/// What the portal holds that a deal's values are checked against: its deal pipelines and the
/// properties of the object types read (deals always; contacts and companies when asked for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortalSchema {
    pipelines: Vec<Pipeline>,
    properties: HashMap<ObjectType, Vec<PropertyDef>>,
}

impl PortalSchema {
    /// A schema of deal pipelines and deal properties.
    pub fn new(pipelines: Vec<Pipeline>, deal_properties: Vec<PropertyDef>) -> PortalSchema {
        PortalSchema {
            pipelines,
            properties: HashMap::from([(ObjectType::Deal, deal_properties)]),
        }
    }

    /// Adds (or replaces) the properties of `object` (e.g. contacts, read for `check --online`).
    pub fn with_properties(mut self, object: ObjectType, properties: Vec<PropertyDef>) -> PortalSchema {
        self.properties.insert(object, properties);
        self
    }

    /// The deal pipelines, in HubSpot's order.
    pub fn pipelines(&self) -> &[Pipeline] {
        &self.pipelines
    }

    /// The pipeline HubSpot puts a deal in when it names none: the one with id `default` (every
    /// portal's first pipeline), else the first by `displayOrder` (ties by label, as HubSpot sorts).
    pub fn default_pipeline(&self) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == "default").or_else(|| {
            self.pipelines.iter().min_by(|a, b| {
                (a.display_order.unwrap_or(i64::MAX), &a.label).cmp(&(b.display_order.unwrap_or(i64::MAX), &b.label))
            })
        })
    }

    /// The pipeline `value` names: its id first (exactly, or trimmed), else its label
    /// (case-insensitive, trimmed). A value that is both an id and a label means the id.
    pub fn pipeline(&self, value: &str) -> Result<&Pipeline, UnknownLabel> {
        find(
            &self.pipelines,
            value,
            |p: &Pipeline| p.id.as_str(),
            |p| p.label.as_str(),
        )
        .map_err(|ambiguous| UnknownLabel {
            what: LabelKind::Pipeline,
            value: value.trim().to_owned(),
            pipeline: None,
            known: self.pipelines.iter().map(|p| (p.label.clone(), p.id.clone())).collect(),
            ambiguous,
        })
    }

    /// The stage `value` names inside `pipeline` (see [`Pipeline::stage`]).
    pub fn stage<'a>(&self, pipeline: &'a Pipeline, value: &str) -> Result<&'a Stage, UnknownLabel> {
        pipeline.stage(value)
    }

    /// The pipeline that has a stage with id `id`, if any (the first, should ids repeat).
    pub fn pipeline_of_stage_id(&self, id: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.stages.iter().any(|s| s.id == id))
    }

    /// The property `name` of `object`; `None` when the portal has none by that name, or when
    /// `object`'s properties were not read (see [`Self::properties`]).
    pub fn property(&self, object: ObjectType, name: &str) -> Option<&PropertyDef> {
        self.properties.get(&object)?.iter().find(|p| p.name == name)
    }

    /// Every property of `object`, or `None` when they were not read.
    pub fn properties(&self, object: ObjectType) -> Option<&[PropertyDef]> {
        self.properties.get(&object).map(Vec::as_slice)
    }
}

/// What an [`UnknownLabel`] failed to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// A deal pipeline.
    Pipeline,
    /// A stage of a pipeline.
    Stage,
}

/// A pipeline or stage that no id or label of the portal names (or a label several share).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct UnknownLabel {
    /// A pipeline or a stage.
    pub what: LabelKind,
    /// The value looked up, trimmed.
    pub value: String,
    /// For a stage: the label of the pipeline it was looked up in.
    pub pipeline: Option<String>,
    /// What there is: `(label, id)`, in HubSpot's order.
    pub known: Vec<(String, String)>,
    /// True when the label names several (with different ids), so the id must be used.
    pub ambiguous: bool,
}

impl fmt::Display for UnknownLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, known) = match (&self.what, &self.pipeline) {
            (LabelKind::Pipeline, _) => ("deal pipeline".to_owned(), "the portal's pipelines".to_owned()),
            (LabelKind::Stage, Some(pipeline)) => (
                format!("stage of pipeline {pipeline:?}"),
                format!("the stages of {pipeline:?}"),
            ),
            (LabelKind::Stage, None) => ("stage".to_owned(), "the stages".to_owned()),
        };
        if self.ambiguous {
            write!(f, "the label {:?} names several of {known}; use the id", self.value)?;
        } else {
            write!(f, "no {what} has the id or label {:?}", self.value)?;
        }
        write!(f, " ({known}: {})", list(&self.known))
    }
}

/// A value that is neither the value nor the label of an option of an enumeration property (or a
/// label several options share).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownOption {
    /// The property's internal name.
    pub property: String,
    /// The value looked up, trimmed.
    pub value: String,
    /// The property's options: `(label, value)`, in HubSpot's order.
    pub options: Vec<(String, String)>,
    /// True when the label is that of several options with different values.
    pub ambiguous: bool,
}

impl fmt::Display for UnknownOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ambiguous {
            write!(
                f,
                "{:?} is the label of several options of {}; use the option's value",
                self.value, self.property
            )?;
        } else {
            write!(
                f,
                "{:?} is neither the value nor the label of an option of {}",
                self.value, self.property
            )?;
        }
        write!(f, " (options: {})", list(&self.options))
    }
}

/// Most entries an error lists before saying how many more there are.
const LISTED: usize = 20;

/// `"Label" (id), …` for at most [`LISTED`] entries, then `and N more`; `none` when empty.
fn list(entries: &[(String, String)]) -> String {
    if entries.is_empty() {
        return "none".to_owned();
    }
    let mut shown: Vec<String> = entries
        .iter()
        .take(LISTED)
        .map(|(label, id)| format!("{label:?} ({id})"))
        .collect();
    if entries.len() > LISTED {
        shown.push(format!("and {} more", entries.len() - LISTED));
    }
    shown.join(", ")
}

/// The item `value` names: by id (exactly, then trimmed), else by label (case-insensitive, trimmed).
/// `Err(false)`: none; `Err(true)`: the label of several items with different ids.
fn find<'a, T>(
    items: &'a [T],
    value: &str,
    id: impl Fn(&T) -> &str,
    label: impl Fn(&T) -> &str,
) -> Result<&'a T, bool> {
    let trimmed = value.trim();
    if let Some(item) = items
        .iter()
        .find(|i| id(i) == value)
        .or_else(|| items.iter().find(|i| id(i) == trimmed))
    {
        return Ok(item);
    }
    let wanted = trimmed.to_lowercase();
    let mut matches = items.iter().filter(|i| label(i).trim().to_lowercase() == wanted);
    let Some(first) = matches.next() else {
        return Err(false);
    };
    if matches.any(|other| id(other) != id(first)) {
        return Err(true);
    }
    Ok(first)
}

// ---- requests and answers ---------------------------------------------------------------------

/// `GET` of the deal pipelines with their stages: `/crm/v3/pipelines/deals` for v1 and v3 routes
/// (v1 has no pipelines API of its own worth using), `/crm/pipelines/2026-03/deals` for 2026-03.
pub fn pipelines_request(api: HubSpotApi) -> HubSpotRequest {
    let prefix = match api {
        HubSpotApi::V1 | HubSpotApi::V3 => "/crm/v3/pipelines",
        HubSpotApi::V2026_03 => "/crm/pipelines/2026-03",
    };
    get(format!("{prefix}/deals"))
}

/// `GET` of every (unarchived) property of `object`: `/crm/v3/properties/{objectType}` for v1 and v3
/// routes, `/crm/properties/2026-03/{objectType}` for 2026-03.
pub fn properties_request(api: HubSpotApi, object: ObjectType) -> HubSpotRequest {
    let prefix = match api {
        HubSpotApi::V1 | HubSpotApi::V3 => "/crm/v3/properties",
        HubSpotApi::V2026_03 => "/crm/properties/2026-03",
    };
    get(format!("{prefix}/{}", object.path_name()))
}

fn get(path: String) -> HubSpotRequest {
    HubSpotRequest {
        method: "GET".to_owned(),
        path,
        body: Value::Null,
    }
}

/// Reads the answer to [`pipelines_request`] (`{"results": [Pipeline…]}`). Archived pipelines and
/// stages, and entries without a string `id` and `label`, are left out (nothing can be sent to them);
/// absent optional fields are `None`. A body that is not JSON, or has no `results` list, is an error.
pub fn parse_pipelines(body: &[u8]) -> Result<Vec<Pipeline>, ResponseError> {
    let pipelines = results(body)?
        .iter()
        .filter_map(Value::as_object)
        .filter(|p| !archived(p))
        .filter_map(|p| {
            let stages = match p.get("stages") {
                Some(Value::Array(stages)) => stages
                    .iter()
                    .filter_map(Value::as_object)
                    .filter(|s| !archived(s))
                    .filter_map(parse_stage)
                    .collect(),
                _ => Vec::new(),
            };
            Some(Pipeline {
                id: text(p, "id")?,
                label: text(p, "label")?,
                display_order: p.get("displayOrder").and_then(Value::as_i64),
                stages,
            })
        })
        .collect();
    Ok(pipelines)
}

fn parse_stage(stage: &Map<String, Value>) -> Option<Stage> {
    let metadata = stage.get("metadata").and_then(Value::as_object);
    let meta = |key: &str| metadata.and_then(|m| m.get(key));
    Some(Stage {
        id: text(stage, "id")?,
        label: text(stage, "label")?,
        is_closed: meta("isClosed").and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
        probability: meta("probability").and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
    })
}

/// Reads the answer to [`properties_request`] (`{"results": [Property…]}`). Archived properties and
/// entries without a string `name` are left out; a missing `label` is the name, a missing `type`
/// [`PropertyKind::Other`] `""`, missing flags `false`; options without a string `value` are left out
/// (a missing option label is its value). A body that is not JSON, or has no `results` list, is an error.
pub fn parse_properties(body: &[u8]) -> Result<Vec<PropertyDef>, ResponseError> {
    let properties = results(body)?
        .iter()
        .filter_map(Value::as_object)
        .filter(|p| !archived(p))
        .filter_map(|p| {
            let name = text(p, "name")?;
            let flag =
                |object: &Map<String, Value>, key: &str| object.get(key).and_then(Value::as_bool).unwrap_or(false);
            let options = match p.get("options") {
                Some(Value::Array(options)) => options
                    .iter()
                    .filter_map(Value::as_object)
                    .filter_map(|o| {
                        let value = text(o, "value")?;
                        Some(PropertyOption {
                            label: text(o, "label").unwrap_or_else(|| value.clone()),
                            value,
                            hidden: flag(o, "hidden"),
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let read_only_value = p
                .get("modificationMetadata")
                .and_then(Value::as_object)
                .is_some_and(|m| flag(m, "readOnlyValue"));
            Some(PropertyDef {
                label: text(p, "label").unwrap_or_else(|| name.clone()),
                kind: PropertyKind::parse(&text(p, "type").unwrap_or_default()),
                field_type: text(p, "fieldType").unwrap_or_default(),
                options,
                read_only_value,
                calculated: flag(p, "calculated"),
                has_unique_value: flag(p, "hasUniqueValue"),
                hubspot_defined: flag(p, "hubspotDefined"),
                name,
            })
        })
        .collect();
    Ok(properties)
}

fn results(body: &[u8]) -> Result<Vec<Value>, ResponseError> {
    match json_object(body)?.remove("results") {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(ResponseError::Missing("results list")),
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn archived(object: &Map<String, Value>) -> bool {
    object.get("archived").and_then(Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests;
