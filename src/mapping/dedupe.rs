//! `dedupe:` of a route ("one lead, one open deal"): read from the YAML with every problem at its
//! node, and the compiled [`Dedupe`] the plan acts on. Never calls HubSpot.
//!
//! ```yaml
//! dedupe: { by: contact, pipeline_only: true, open_only: true, within_days: 30, then: update }
//! ```
//!
//! Every key is optional (`dedupe: {}` takes every default): `by: contact` (the only key for now),
//! `pipeline_only: true`, `open_only: true`, `within_days: 30` (1 to 3650), `then: update`. The route
//! needs a contact (`associations.contacts` with an `email`, or a contact id), and cannot also
//! say `hubspot.upsert_by` (both choose which deal to write).

use super::associations::ContactsSpec;
use super::diagnostic::{At, Report, Severity};
use super::spec::{HubSpotSpec, check_keys, expect_map, find, show_node};
use super::yaml::{Loc, Node, NodeKind};
use crate::domain::{Associations, Problem};

const DEDUPE_KEYS: &[&str] = &["by", "pipeline_only", "open_only", "within_days", "then"];
/// The longest window `within_days` takes: ten years.
pub const MAX_WITHIN_DAYS: u32 = 3650;
/// `within_days` when the mapping does not say.
pub const DEFAULT_WITHIN_DAYS: u32 = 30;

/// What a route does when a delivery's contact already has a matching deal (`dedupe.then`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DedupeThen {
    /// `update` (the default): the deal gets the mapped properties, except `dealstage` and
    /// `pipeline` (a second form must not move a deal back to the first stage), and is linked to
    /// the delivery's contacts and companies. Answered `200 {"status":"updated"}`.
    #[default]
    Update,
    /// `skip`: nothing is written to the deal. Answered `200 {"status":"skipped"}`.
    Skip,
}

impl DedupeThen {
    /// The mapping's spelling: `update` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupeThen::Update => "update",
            DedupeThen::Skip => "skip",
        }
    }
}

/// A route's `dedupe:`: which of the contact's deals count as "the same lead's deal".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dedupe {
    /// Only deals in the draft's pipeline (`default` when the draft names none) count.
    pub pipeline_only: bool,
    /// Only open deals count (HubSpot's calculated `hs_is_closed` is `false`).
    pub open_only: bool,
    /// Only deals created within this many days count (1 to [`MAX_WITHIN_DAYS`]).
    pub within_days: u32,
    /// What to do with the deal found.
    pub then: DedupeThen,
}

impl Default for Dedupe {
    fn default() -> Self {
        Dedupe {
            pipeline_only: true,
            open_only: true,
            within_days: DEFAULT_WITHIN_DAYS,
            then: DedupeThen::Update,
        }
    }
}

impl Dedupe {
    /// The window as a duration (`within_days` × 24 h).
    pub fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.within_days) * 24 * 60 * 60)
    }
}

/// Reads `dedupe:` of a route. Problems are reported at their node (field `dedupe.<key>`); `None`
/// when any was found (the load then fails).
pub(crate) fn read_dedupe(node: &Node, at: At<'_>, report: &mut Report) -> Option<(Dedupe, Loc)> {
    let entries = expect_map(node, at.field("dedupe"), "`dedupe`", report)?;
    let errors_before = error_count(report);
    check_keys(entries, DEDUPE_KEYS, at.field("dedupe"), "in `dedupe`", report);
    let mut dedupe = Dedupe::default();
    if let Some((_, node)) = find(entries, "by")
        && !matches!(&node.kind, NodeKind::Str(s) if s == "contact")
    {
        report.error(
            at.field("dedupe.by"),
            node.loc,
            format!(
                "expected `contact` (the only key deals are deduplicated by), found {}",
                show_node(node)
            ),
        );
    }
    let flag = |name: &str, field: &str, report: &mut Report| match find(entries, name) {
        None => Some(true),
        Some((_, node)) => match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                report.error(
                    at.field(field),
                    node.loc,
                    format!("expected true or false, found {}", show_node(node)),
                );
                None
            }
        },
    };
    dedupe.pipeline_only = flag("pipeline_only", "dedupe.pipeline_only", report).unwrap_or(true);
    dedupe.open_only = flag("open_only", "dedupe.open_only", report).unwrap_or(true);
    if let Some((_, node)) = find(entries, "within_days") {
        let days = match &node.kind {
            NodeKind::Number(n) => n.as_u64().filter(|d| (1..=u64::from(MAX_WITHIN_DAYS)).contains(d)),
            _ => None,
        };
        match days.and_then(|d| u32::try_from(d).ok()) {
            Some(days) => dedupe.within_days = days,
            None => report.error(
                at.field("dedupe.within_days"),
                node.loc,
                format!(
                    "expected a whole number of days from 1 to {MAX_WITHIN_DAYS}, found {}",
                    show_node(node)
                ),
            ),
        }
    }
    if let Some((_, node)) = find(entries, "then") {
        match &node.kind {
            NodeKind::Str(s) if s == "update" => dedupe.then = DedupeThen::Update,
            NodeKind::Str(s) if s == "skip" => dedupe.then = DedupeThen::Skip,
            _ => report.error(
                at.field("dedupe.then"),
                node.loc,
                format!("expected update or skip, found {}", show_node(node)),
            ),
        }
    }
    (error_count(report) == errors_before).then_some((dedupe, node.loc))
}

/// The contact a delivery's deals are looked up by: the draft's first contact by e-mail (upserted
/// first, so its id is known before the deal), else its first literal contact id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupeContact {
    /// The e-mail of `associations.contacts_by_email[0]` (already trimmed and lower-cased).
    Email(String),
    /// `associations.contact_ids[0]`.
    Id(u64),
}

impl DedupeContact {
    /// The contact `associations` dedupe by; `None` when the draft has none.
    pub fn of(associations: &Associations) -> Option<DedupeContact> {
        match (associations.contacts_by_email.first(), associations.contact_ids.first()) {
            (Some(contact), _) => Some(DedupeContact::Email(contact.email.as_str().to_owned())),
            (None, Some(id)) => Some(DedupeContact::Id(*id)),
            (None, None) => None,
        }
    }

    /// A stable text for keys: `email:<address>` or `id:<contact id>` (hashed before it is stored).
    pub fn key_text(&self) -> String {
        match self {
            DedupeContact::Email(email) => format!("email:{email}"),
            DedupeContact::Id(id) => format!("id:{id}"),
        }
    }
}

/// At map time: a route with `dedupe` needs a contact in every draft (the problem `required` at
/// `dedupe`, e.g. when the e-mail template rendered empty), else its deals could not be found.
pub(crate) fn check_contact(associations: &Associations, problems: &mut Vec<Problem>) {
    if DedupeContact::of(associations).is_none() {
        problems.push(Problem::at(
            "dedupe",
            "required",
            "`dedupe: { by: contact }` needs a contact (an e-mail or a contact id), and this delivery has none",
        ));
    }
}

/// At load: `dedupe` needs a contact in `associations.contacts` (an `email` record or an id), and
/// does not go with `hubspot.upsert_by` (both choose the deal to write). False when a rule is broken
/// (reported at `dedupe`).
pub(crate) fn check_route(
    dedupe: Option<(Dedupe, Loc)>,
    hubspot: &HubSpotSpec,
    contacts: Option<&ContactsSpec>,
    at: At<'_>,
    report: &mut Report,
) -> bool {
    let Some((_, loc)) = dedupe else {
        return true;
    };
    let at = at.field("dedupe");
    let mut sound = true;
    if !contacts.is_some_and(|c| !c.ids.is_empty() || !c.records.is_empty()) {
        report.error(
            at,
            loc,
            "`dedupe: { by: contact }` needs a contact: add `associations.contacts` with an `email` (or a contact id)",
        );
        sound = false;
    }
    if hubspot.upsert_by.is_some() {
        report.error(
            at,
            loc,
            "`dedupe` and `hubspot.upsert_by` both choose which deal to write; use one of them",
        );
        sound = false;
    }
    sound
}

fn error_count(report: &Report) -> usize {
    report.items.iter().filter(|d| d.severity == Severity::Error).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::yaml::parse;

    fn read_text(yaml: &str) -> (Option<Dedupe>, Vec<String>) {
        let mut report = Report::default();
        let node = parse(yaml).unwrap();
        let read = read_dedupe(&node, At::route("r"), &mut report);
        (
            read.map(|(d, _)| d),
            report.items.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn an_empty_dedupe_takes_every_default() {
        let (dedupe, problems) = read_text("{}");
        assert_eq!(problems, Vec::<String>::new());
        let dedupe = dedupe.unwrap();
        assert_eq!(dedupe, Dedupe::default());
        assert!(dedupe.pipeline_only && dedupe.open_only);
        assert_eq!((dedupe.within_days, dedupe.then), (30, DedupeThen::Update));
    }

    #[test]
    fn every_key_is_read() {
        let (dedupe, problems) =
            read_text("{by: contact, pipeline_only: false, open_only: false, within_days: 3650, then: skip}");
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(
            dedupe,
            Some(Dedupe {
                pipeline_only: false,
                open_only: false,
                within_days: 3650,
                then: DedupeThen::Skip
            })
        );
        assert_eq!(Dedupe::default().window(), std::time::Duration::from_secs(30 * 86_400));
    }

    /// Each wrong value, with the line and column and the words its message must have.
    #[test]
    fn each_wrong_value_is_an_error_at_its_node() {
        let cases = [
            (
                "unknown key",
                "{by: contact, within: 3}",
                "1:15",
                "unknown key `within` in `dedupe`",
            ),
            ("by company", "{by: company}", "1:6", "expected `contact`"),
            ("by a number", "{by: 1}", "1:6", "expected `contact`"),
            ("zero days", "{within_days: 0}", "1:15", "from 1 to 3650, found 0"),
            ("negative days", "{within_days: -5}", "1:15", "from 1 to 3650, found -5"),
            (
                "too many days",
                "{within_days: 3651}",
                "1:15",
                "from 1 to 3650, found 3651",
            ),
            ("fractional days", "{within_days: 1.5}", "1:15", "found 1.5"),
            ("days as text", "{within_days: \"30\"}", "1:15", "found \"30\""),
            (
                "then create",
                "{then: create}",
                "1:8",
                "expected update or skip, found \"create\"",
            ),
            (
                "open_only text",
                "{open_only: yes please}",
                "1:13",
                "expected true or false",
            ),
            (
                "pipeline_only number",
                "{pipeline_only: 1}",
                "1:17",
                "expected true or false, found 1",
            ),
            ("not a map", "contact", "1:1", "`dedupe`"),
        ];
        for (name, yaml, loc, words) in cases {
            let (dedupe, problems) = read_text(yaml);
            assert_eq!(dedupe, None, "{name}: read despite the error");
            assert_eq!(problems.len(), 1, "{name}: {problems:?}");
            assert!(problems[0].contains(loc), "{name}: not at {loc}: {}", problems[0]);
            assert!(problems[0].contains(words), "{name}: {}", problems[0]);
        }
    }

    fn load(route_extra: &str, associations: &str) -> Result<crate::mapping::Mapping, Vec<String>> {
        let text = format!(
            "version: 1\nroutes:\n  lead:\n    source: json\n{route_extra}    deal:\n      pipeline: default\n      dealstage: s\n{associations}"
        );
        crate::mapping::Mapping::from_yaml(&text, "m.yaml")
            .map_err(|e| e.errors().map(|d| d.in_file("m.yaml").to_string()).collect())
    }

    #[test]
    fn a_route_with_dedupe_and_a_contact_loads_and_says_its_rule() {
        let contacts = "      associations:\n        contacts: { email: \"{{ fields.email }}\" }\n";
        let mapping = load("    dedupe: { then: skip, within_days: 7 }\n", contacts).unwrap();
        let route = mapping.routes().next().unwrap();
        assert_eq!(
            route.dedupe(),
            Some(&Dedupe {
                within_days: 7,
                then: DedupeThen::Skip,
                ..Dedupe::default()
            })
        );
        let by_id = "      associations:\n        contacts: \"{{ fields.contact_id }}\"\n";
        assert!(
            load("    dedupe: {}\n", by_id).is_ok(),
            "a contact id template is a contact"
        );
        assert!(load("", contacts).unwrap().routes().next().unwrap().dedupe().is_none());
    }

    /// Routes `dedupe` cannot work on, each an error at `dedupe` (line 5, column 13).
    #[test]
    fn dedupe_without_a_contact_or_with_upsert_by_is_a_load_error() {
        let companies = "      associations:\n        companies: { domain: acme.example }\n";
        let contacts = "      associations:\n        contacts: { email: \"{{ fields.email }}\" }\n";
        let cases = [
            ("no associations", "    dedupe: {}\n", "", "needs a contact"),
            ("companies only", "    dedupe: {}\n", companies, "needs a contact"),
            (
                "with upsert_by",
                "    dedupe: {}\n    hubspot: { api: v3, upsert_by: webhook_event_id }\n",
                contacts,
                "use one of them",
            ),
        ];
        for (name, extra, associations, words) in cases {
            let errors = load(extra, associations)
                .err()
                .unwrap_or_else(|| panic!("{name}: loaded"));
            let hit = errors
                .iter()
                .find(|e| e.contains(words))
                .unwrap_or_else(|| panic!("{name}: {errors:?}"));
            assert!(
                hit.starts_with("m.yaml:5:13: error: route lead, dedupe:"),
                "{name}: {hit}"
            );
        }
    }

    #[test]
    fn a_delivery_whose_contact_renders_empty_is_a_required_problem_at_dedupe() {
        let contacts = "      associations:\n        contacts: { email: \"{{ fields.email }}\" }\n";
        let mapping = load("    dedupe: {}\n", contacts).unwrap();
        let route = mapping.routes().next().unwrap();
        let submission = |fields: serde_json::Value| crate::domain::Submission {
            source: "json".into(),
            id: Some("evt-1".into()),
            submitted_at: None,
            event_type: None,
            received_at: "2026-11-29T10:00:00.000Z".into(),
            fields: fields.as_object().cloned().unwrap_or_default().into(),
            raw: fields.into(),
        };
        let problems = route.map(&submission(serde_json::json!({"email": ""}))).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].field.as_deref(), problems[0].code.as_str()),
            (Some("dedupe"), "required")
        );
        let draft = route
            .map(&submission(serde_json::json!({"email": "Ada@Example.com"})))
            .unwrap();
        assert_eq!(
            DedupeContact::of(&draft.associations),
            Some(DedupeContact::Email("ada@example.com".to_owned()))
        );
    }
}
