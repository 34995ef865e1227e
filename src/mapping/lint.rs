//! Load-time warnings about what the portal may refuse, judged without the portal: a misspelt HubSpot
//! default deal property, a stage or pipeline written as a label, a `map:` without `default:`. Only
//! warnings (the portal may have the custom property or the label); `check --online` decides.

use serde_json::Value;

use super::diagnostic::{At, Report};
use super::spec::{DealSpec, Input, ValueSpec, nearest};

/// HubSpot's default deal properties that a mapping may set (internal names). Source: HubSpot's
/// knowledge base "HubSpot's default deal properties"
/// (<https://knowledge.hubspot.com/crm-deals/hubspots-default-deal-properties>), whose labels are these
/// names in `GET /crm/v3/properties/deals` (`hubspotDefined: true`); a few more are read-only there. Used only for
/// "did you mean": a name not in this list may be a custom property of the portal.
pub const DEFAULT_DEAL_PROPERTIES: &[&str] = &[
    "amount",
    "closed_lost_reason",
    "closed_won_reason",
    "closedate",
    "createdate",
    "deal_currency_code",
    "dealname",
    "dealstage",
    "dealtype",
    "description",
    "hs_acv",
    "hs_analytics_source",
    "hs_arr",
    "hs_campaign",
    "hs_forecast_amount",
    "hs_forecast_probability",
    "hs_manual_forecast_category",
    "hs_mrr",
    "hs_next_step",
    "hs_priority",
    "hs_tcv",
    "hubspot_owner_id",
    "hubspot_team_id",
    "pipeline",
];

/// The stages of HubSpot's default deal pipeline (id `default`, "Sales Pipeline"): `(id, label)` as a
/// new portal has them (HubSpot's knowledge base "Set up and customize your deal pipelines and deal
/// stages"; the ids are what `GET /crm/v3/pipelines/deals` answers for that pipeline).
pub const DEFAULT_PIPELINE_STAGES: &[(&str, &str)] = &[
    ("appointmentscheduled", "Appointment Scheduled"),
    ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"),
    ("contractsent", "Contract Sent"),
    ("closedwon", "Closed Won"),
    ("closedlost", "Closed Lost"),
];

/// The default pipeline's id and label.
const DEFAULT_PIPELINE: (&str, &str) = ("default", "Sales Pipeline");

/// The words every warning of this file that the portal can settle ends with; see [`defers_to_online`].
const ONLINE: &str = "run `dealhook check --online` to confirm";

/// Whether `warning` is a guess of this file that `check --online` settles with the portal's own names
/// (a near default property, a label): `check --online` leaves it out and reports what the portal says.
pub fn defers_to_online(warning: &super::Diagnostic) -> bool {
    warning.severity == super::Severity::Warning && warning.message.contains(ONLINE)
}

/// Warnings about one route's deal (before it is compiled).
pub(super) fn check_deal(deal: &DealSpec, at: At<'_>, report: &mut Report) {
    for property in &deal.properties {
        let name = property.name.as_str();
        if DEFAULT_DEAL_PROPERTIES.contains(&name) {
            continue;
        }
        if let Some(near) = nearest(name, DEFAULT_DEAL_PROPERTIES.iter().copied()) {
            report.warning(
                at.field(&format!("properties.{name}")),
                property.key_loc,
                format!(
                    "`{name}` is not one of HubSpot's default deal properties: did you mean `{near}`? HubSpot \
                     refuses a property the portal does not have (every delivery is dead-lettered \
                     `hubspot_rejected`); if `{name}` is a custom property of your portal, {ONLINE} it"
                ),
            );
        }
    }
    for (field, spec) in [("pipeline", &deal.pipeline), ("dealstage", &deal.dealstage)] {
        if let Some(spec) = spec {
            check_id(field, spec, at, report);
        }
    }
}

/// `pipeline`/`dealstage` constants (literal, `map:` targets, `default:`) that look like labels.
fn check_id(field: &str, spec: &ValueSpec, at: At<'_>, report: &mut Report) {
    let at = at.field(field);
    let mut constants: Vec<(&Value, super::yaml::Loc)> = Vec::new();
    if let Input::Literal(value) = &spec.input {
        constants.push((value, spec.loc));
    }
    for (key, value) in spec.lookup.iter().flatten() {
        constants.push((value, key.loc));
    }
    if let Some((value, loc)) = &spec.default {
        constants.push((value, *loc));
    }
    for (value, loc) in constants {
        let Some(text) = value.as_str().map(str::trim) else {
            continue;
        };
        if !looks_like_label(text) {
            continue;
        }
        let known = match field {
            "pipeline" => [DEFAULT_PIPELINE]
                .iter()
                .find(|(_, label)| label.eq_ignore_ascii_case(text)),
            _ => DEFAULT_PIPELINE_STAGES
                .iter()
                .find(|(_, label)| label.eq_ignore_ascii_case(text)),
        };
        let id = known.map_or(String::new(), |(id, _)| {
            format!(" (in a new portal's default pipeline its id is `{id}`)")
        });
        report.warning(
            at,
            loc,
            format!(
                "{text:?} looks like a label, not an id{id}. dealhook turns labels into ids by reading the \
                 portal's pipelines at run time (README \"Labels and options\"); while the portal cannot be read \
                 (no read scope, HubSpot down) the label is sent as is, HubSpot refuses it and the delivery is \
                 dead-lettered. Write the id, or {ONLINE} the label"
            ),
        );
    }
}

/// HubSpot's pipeline and stage ids are lower-case words or numbers (`default`, `qualifiedtobuy`,
/// `161845224`); a label is what people read (`Qualified To Buy`): it has a space or a capital.
fn looks_like_label(text: &str) -> bool {
    !text.is_empty() && text.chars().any(|c| c.is_whitespace() || c.is_uppercase())
}

/// A `map:` without `default:`: a value that is not one of its keys is the problem `no_match`, which
/// dead-letters the delivery.
pub(super) fn check_value(field: &str, spec: &ValueSpec, at: At<'_>, report: &mut Report) {
    let (Some(lookup), None, Input::Template(_)) = (&spec.lookup, &spec.default, &spec.input) else {
        return;
    };
    let keys: Vec<&str> = lookup.iter().map(|(key, _)| key.name.as_str()).take(5).collect();
    let more = if lookup.len() > keys.len() { ", …" } else { "" };
    report.warning(
        at.field(field),
        spec.loc,
        format!(
            "`map:` without `default:`: a value that is not one of its keys ({}{more}) is the problem `no_match` \
             and the delivery is dead-lettered; add `default: <value>` for the others",
            keys.join(", "),
        ),
    );
}
