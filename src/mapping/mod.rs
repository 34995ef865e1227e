//! Mapping: the spec in `mapping.yaml` (read with serde-saphyr), compiled once per cold start
//! into routes that turn a Submission into a DealDraft. Never parses anything per request.
//!
//! # The language
//!
//! ```yaml
//! version: 1                       # must be 1
//! routes:                          # at least one; names are [A-Za-z0-9_-]+ (they are URLs)
//!   website-quote:
//!     source: json                 # required; a known Source (json, form, …)
//!     deal:
//!       pipeline: default          # value spec; optional but recommended (warning without)
//!       dealstage: { from: "{{ fields.plan }}", map: { team: presentationscheduled }, default: appointmentscheduled }
//!       properties:                # HubSpot internal names ([A-Za-z0-9_]+), sent in this order
//!         amount: { from: "{{ fields.budget }}", type: number, required: true }
//!       associations:
//!         companies: "{{ fields.hubspot_company_id }}"
//!         contacts: "{{ fields.hubspot_vids }}"
//! ```
//!
//! Unknown keys anywhere are errors (with a "did you mean"), as are misspelt template
//! variables: templates see only `fields`, `raw`, `submission` (`id`, `source`,
//! `submitted_at`, `received_at`, `event_type`) and `route`, plus minijinja's globals (`range`, `dict`, …).
//! Every problem in a file is reported at once, each with its line and column.
//!
//! ## Value specs
//!
//! A scalar or `{ from, type, required, map, default }`. A string containing `{{`, `{%` or
//! `{#` is a Jinja template; any other string, number or boolean is a literal (YAML 1.2:
//! `yes`/`no` are strings, `01234` keeps its zero). Literals are converted at load, so a bad
//! literal (or `map` value, or `default`) is a load error, not a per-delivery one.
//!
//! Evaluation of one value, per delivery:
//! 1. Render `from`. A template that is exactly one `{{ expression }}` (whitespace and
//!    `{{-`/`-}}` allowed) yields the expression's value with its type: a JSON list stays a
//!    list, a number a number. Any other template yields its text output, which counts as
//!    empty when every `{{ … }}` it evaluated printed only whitespace (so `"Inbound: {{
//!    fields.name }}"` without a name is empty); with no `{{ … }}` at all, when the output
//!    is whitespace. In output, `none` (JSON `null`) and undefined print as nothing, and
//!    `default(x)` also replaces `none`. Lists in mixed text print in minijinja's own form;
//!    use `| join(", ")` for anything else.
//! 2. Empty (null, blank string, empty list/object) → `default` if given; else the
//!    property is left out, or, with `required: true`, the problem `required`.
//!    `dealstage` is always required; an empty `pipeline` is left out.
//! 3. `map`: the value's text, trimmed, is looked up (exact, case-sensitive); no match →
//!    `default` if given, else the problem `no_match` listing the accepted keys.
//! 4. `type` converts (see `convert.rs`): `text` (default; lists become `a;b;c`, HubSpot's
//!    multi-select separator), `number` (`invalid_number`), `date` (`invalid_date`),
//!    `datetime` (`invalid_datetime`), `bool` (`invalid_bool`). `dealstage` and `pipeline`
//!    are ids: text only, trimmed.
//!
//! Associations (`companies`, `contacts`) take a template or literal: one id, a list, or a
//! string of ids separated by commas, semicolons or whitespace; empty → none; duplicates are
//! dropped; anything else is the problem `invalid_id` naming every bad item.
//!
//! Render failures (fuel exhausted, unknown filter, …) are the problem `template_error`.
//! Templates are bounded by fuel and a recursion limit (see `template.rs`).

mod convert;
mod diagnostic;
mod route;
mod spec;
mod template;
mod yaml;

pub use diagnostic::{Diagnostic, MappingLoadError, Severity};
pub use route::Route;

use diagnostic::{At, Report};

/// The origin used for [`Mapping::embedded`] in messages.
pub const EMBEDDED_ORIGIN: &str = "mapping.yaml (embedded)";

/// The default mapping, embedded at build time.
const EMBEDDED: &str = include_str!("../../mapping.yaml");

/// A compiled mapping: every route, ready to map submissions. Built once per cold start and
/// shared (`Arc<Mapping>`) by all invocations; it is immutable, `Send` and `Sync`.
#[derive(Debug)]
pub struct Mapping {
    origin: String,
    routes: Vec<Route>,
    warnings: Vec<Diagnostic>,
}

impl Mapping {
    /// Parses and compiles a mapping. Collects every error (YAML syntax, unknown keys,
    /// semantic, template) before failing; the error also carries the warnings.
    /// `origin` names the file in messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Mapping, MappingLoadError> {
        let fail = |diagnostics| MappingLoadError {
            origin: origin.to_owned(),
            diagnostics,
        };
        let mut report = Report::default();
        let root = match yaml::parse(text) {
            Ok(root) => root,
            Err(syntax) => {
                report.error(At::default(), syntax.loc, format!("YAML syntax: {}", syntax.message));
                return Err(fail(report.into_sorted()));
            }
        };
        let spec = spec::read(&root, &mut report);
        let routes = route::compile(spec.routes, &mut report);
        if report.has_errors() {
            return Err(fail(report.into_sorted()));
        }
        Ok(Mapping {
            origin: origin.to_owned(),
            routes,
            warnings: report.into_sorted(),
        })
    }

    /// The default mapping embedded at build time (`mapping.yaml` at the repository root).
    pub fn embedded() -> Result<Mapping, MappingLoadError> {
        Mapping::from_yaml(EMBEDDED, EMBEDDED_ORIGIN)
    }

    /// The route called `name`, if configured.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name() == name)
    }

    /// Every route, in file order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Warnings found while loading (e.g. a route without `pipeline`).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The file name used in messages; pair with [`Diagnostic::in_file`] to print warnings.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Associations, DealDraft, Problem, PropValue, Property, Submission};
    use crate::inbound::Source;
    use serde_json::{Value, json};

    const DEC_1_2026_MS: i64 = 1_796_083_200_000;

    fn submission(source: &str, fields: Value) -> Submission {
        Submission {
            source: source.into(),
            id: Some("evt-1".into()),
            submitted_at: Some("2026-11-25T09:59:58Z".into()),
            received_at: "2026-11-25T10:00:00.000Z".into(),
            event_type: Some("form_response".into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            raw: fields,
        }
    }

    fn embedded() -> Mapping {
        Mapping::embedded().unwrap_or_else(|e| panic!("embedded mapping must load:\n{e}"))
    }

    fn map(route: &str, fields: Value) -> Result<DealDraft, Vec<Problem>> {
        let mapping = embedded();
        let route = mapping.route(route).unwrap();
        let source = route.source().as_str().to_owned();
        route.map(&submission(&source, fields))
    }

    fn prop(name: &str, value: PropValue) -> Property {
        Property {
            name: name.into(),
            value,
        }
    }

    fn text(s: &str) -> PropValue {
        PropValue::Text(s.into())
    }

    /// `(field, code)` of each problem, for compact assertions.
    fn codes(problems: &[Problem]) -> Vec<(String, String)> {
        problems
            .iter()
            .map(|p| (p.field.clone().unwrap_or_default(), p.code.clone()))
            .collect()
    }

    fn load_errors(text: &str) -> Vec<String> {
        let err = Mapping::from_yaml(text, "m.yaml").expect_err("must not load");
        err.errors().map(|d| d.in_file(&err.origin).to_string()).collect()
    }

    #[test]
    fn the_embedded_mapping_loads_with_one_warning_for_the_missing_pipeline() {
        let mapping = embedded();
        let names: Vec<_> = mapping.routes().map(|r| (r.name(), r.source())).collect();
        assert_eq!(names, [("website-quote", Source::Json), ("contact-form", Source::Form)]);
        assert_eq!(mapping.origin(), EMBEDDED_ORIGIN);
        let warnings = mapping.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        let w = &warnings[0];
        assert_eq!(
            (w.severity, w.route.as_deref(), w.field.as_deref()),
            (Severity::Warning, Some("contact-form"), Some("pipeline"))
        );
        assert!(w.line.is_some() && w.column.is_some(), "{w:?}");
        assert!(
            w.in_file(mapping.origin())
                .to_string()
                .starts_with("mapping.yaml (embedded):")
        );
        assert!(mapping.route("nope").is_none());
    }

    #[test]
    fn a_mapping_is_shareable_across_invocations() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mapping>();
        assert_send_sync::<std::sync::Arc<Mapping>>();
    }

    #[test]
    fn a_website_quote_becomes_the_expected_deal() {
        let got = map(
            "website-quote",
            json!({
                "company": "Acme GmbH",
                "plan": "enterprise",
                "budget": "12,500.50",
                "decision_date": "2026-12-01",
                "message": "",
                "hubspot_company_id": "4242",
                "hubspot_vids": [101, "102", 101],
                "email": "ada@example.com"
            }),
        );
        let want = DealDraft {
            pipeline: Some("default".into()),
            dealstage: "qualifiedtobuy".into(),
            properties: vec![
                prop("dealname", text("Acme GmbH – enterprise")),
                prop("amount", PropValue::Number("12500.5".into())),
                prop("closedate", PropValue::Date(DEC_1_2026_MS)),
                prop("dealtype", text("newbusiness")),
            ],
            associations: Associations {
                company_ids: vec![4242],
                contact_ids: vec![101, 102],
            },
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn the_deal_stage_is_mapped_or_defaulted() {
        let cases = [
            ("enterprise", json!("enterprise"), "qualifiedtobuy"),
            ("team, padded", json!(" team "), "presentationscheduled"),
            ("unknown plan", json!("starter"), "appointmentscheduled"),
            ("case differs", json!("Team"), "appointmentscheduled"),
            ("no plan", json!(null), "appointmentscheduled"),
        ];
        for (name, plan, want) in cases {
            let deal = map("website-quote", json!({"company": "Acme", "plan": plan}))
                .unwrap_or_else(|p| panic!("{name}: {p:?}"));
            assert_eq!(deal.dealstage, want, "{name}");
        }
    }

    #[test]
    fn a_sparse_website_quote_leaves_empty_values_out() {
        let deal = map("website-quote", json!({"company": "Acme", "hubspot_vids": 7})).unwrap();
        assert_eq!(
            deal.properties,
            [
                prop("dealname", text("Acme – quote")),
                prop("dealtype", text("newbusiness"))
            ]
        );
        assert_eq!(deal.associations.contact_ids, [7]);
        assert!(deal.associations.company_ids.is_empty());
    }

    #[test]
    fn a_contact_form_needs_a_name() {
        let deal = map("contact-form", json!({"name": "Ada Lovelace"})).unwrap();
        assert_eq!(deal.pipeline, None);
        assert_eq!(deal.dealstage, "appointmentscheduled");
        assert_eq!(deal.properties, [prop("dealname", text("Inbound: Ada Lovelace"))]);
        assert!(deal.associations.is_empty());

        for (name, fields) in [
            ("missing", json!({})),
            ("blank", json!({"name": "  "})),
            ("null", json!({"name": null})),
        ] {
            let problems = map("contact-form", fields).expect_err(name);
            assert_eq!(
                codes(&problems),
                [("properties.dealname".into(), "required".into())],
                "{name}"
            );
        }
    }

    #[test]
    fn every_problem_of_a_delivery_is_reported_together() {
        let problems = map(
            "website-quote",
            json!({
                "company": "Acme",
                "budget": "12,50",
                "decision_date": "next week",
                "hubspot_company_id": "42, abc",
                "hubspot_vids": [1, {"vid": 2}]
            }),
        )
        .expect_err("four problems");
        let want = [
            ("properties.amount", "invalid_number"),
            ("properties.closedate", "invalid_date"),
            ("associations.companies", "invalid_id"),
            ("associations.contacts", "invalid_id"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(codes(&problems), want);
        let companies = &problems[2].message;
        assert!(
            companies.contains("\"abc\"") && !companies.contains("42"),
            "{companies}"
        );
        assert!(problems[0].message.contains("\"12,50\""), "{}", problems[0].message);
    }

    const TYPED: &str = r#"
version: 1
routes:
  r:
    source: json
    deal:
      pipeline: "{{ fields.pipeline }}"
      dealstage:
        from: "{{ fields.stage }}"
        map: { a: stage_a, b: stage_b }
      properties:
        n: { from: "{{ fields.n }}", type: number }
        d: { from: "{{ fields.d }}", type: date }
        dt: { from: "{{ fields.dt }}", type: datetime }
        b: { from: "{{ fields.b }}", type: bool }
        t: "{{ fields.t }}"
        tier: { from: "{{ fields.size }}", map: { small: 1000, large: 5000 }, type: number, default: 0 }
        lit_n: 42
        lit_b: false
"#;

    /// A property whose template would loop 10^10 times.
    const RUNAWAY: &str = "        runaway: \"{% for i in range(100000) %}{% for j in range(100000) %}{{ fields.t }}{% endfor %}{% endfor %}\"\n";

    fn typed(fields: Value) -> Result<DealDraft, Vec<Problem>> {
        typed_with(TYPED, fields)
    }

    fn typed_with(text: &str, fields: Value) -> Result<DealDraft, Vec<Problem>> {
        let mapping = Mapping::from_yaml(text, "typed.yaml").unwrap_or_else(|e| panic!("{e}"));
        mapping.route("r").unwrap().map(&submission("json", fields))
    }

    #[test]
    fn typed_properties_convert_their_values() {
        let mut fields = json!({
            "pipeline": " sales ", "stage": "b", "n": "-1,234.50", "d": "2026-12-01T23:30:00-08:00",
            "dt": 1_796_130_000, "b": "Yes", "t": ["x", "y"], "size": "large"
        });
        let deal = typed(fields.clone()).unwrap();
        assert_eq!(deal.pipeline.as_deref(), Some("sales"));
        assert_eq!(deal.dealstage, "stage_b");
        assert_eq!(
            deal.properties,
            [
                prop("n", PropValue::Number("-1234.5".into())),
                prop("d", PropValue::Date(DEC_1_2026_MS)),
                prop("dt", PropValue::DateTime(DEC_1_2026_MS + 13 * 3_600_000)),
                prop("b", PropValue::Bool(true)),
                prop("t", text("x;y")),
                prop("tier", PropValue::Number("5000".into())),
                prop("lit_n", text("42")),
                prop("lit_b", text("false")),
            ]
        );
        fields["size"] = json!("medium");
        fields["pipeline"] = json!(null);
        let deal = typed(fields).unwrap();
        assert_eq!(deal.pipeline, None, "an empty pipeline is left out");
        assert!(
            deal.properties.contains(&prop("tier", PropValue::Number("0".into()))),
            "default when no match"
        );
    }

    #[test]
    fn bad_values_and_a_runaway_template_are_problems_not_panics_or_hangs() {
        let start = std::time::Instant::now();
        let problems = typed_with(
            &format!("{TYPED}{RUNAWAY}"),
            json!({
                "stage": "c", "n": "abc", "d": "2026-13-01", "dt": "soon", "b": "maybe", "t": "x"
            }),
        )
        .expect_err("problems");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
        let want = [
            ("dealstage", "no_match"),
            ("properties.n", "invalid_number"),
            ("properties.d", "invalid_date"),
            ("properties.dt", "invalid_datetime"),
            ("properties.b", "invalid_bool"),
            ("properties.runaway", "template_error"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(codes(&problems), want);
        assert!(
            problems[0].message.contains("\"c\"") && problems[0].message.contains("\"a\", \"b\""),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn an_empty_stage_is_a_required_problem() {
        let problems = typed(json!({"t": "x"})).expect_err("no stage");
        assert!(
            codes(&problems).contains(&("dealstage".into(), "required".into())),
            "{problems:?}"
        );
    }

    #[test]
    fn a_yaml_syntax_error_is_reported_with_line_and_column() {
        let errors = load_errors("version: 1\nroutes:\n  r:\n    source: [json\n    deal: {}\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("m.yaml:5:"), "{errors:?}");
        assert!(errors[0].contains("error: YAML syntax:"), "{errors:?}");
    }

    #[test]
    fn an_empty_file_is_an_error() {
        for text in ["", "# only a comment\n", "[]"] {
            let errors = load_errors(text);
            assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
            assert!(
                errors[0].contains("the mapping file must be a map"),
                "{text:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn every_load_error_in_a_file_is_collected_with_its_location() {
        let text = r#"version: 1
routes:
  good:
    source: json
    deal:
      pipeline: default
      dealstage: s
      properties:
        amount: { from: "{{ fields.budget }}", type: numbr }
        closedate: { from: "{{ fields.date ", type: date }
        dealstage: x
        typo: { from: x, requird: true }
  "bad route":
    source: jsonn
    deal:
      pipeline: p
      properties:
        dealname: "{{ field.name }}"
"#;
        let errors = load_errors(text);
        let want = [
            (
                "m.yaml:9:54: error: route good, properties.amount:",
                "unknown type \"numbr\" (expected text, number, date, datetime, bool)",
            ),
            (
                "m.yaml:10:28: error: route good, properties.closedate:",
                "invalid template: syntax error",
            ),
            (
                "m.yaml:11:9: error: route good, properties.dealstage:",
                "set at deal level",
            ),
            (
                "m.yaml:12:26: error: route good, properties.typo:",
                "unknown key `requird`",
            ),
            ("m.yaml:13:3: error: route bad route:", "contains ' '"),
            (
                "m.yaml:14:13: error: route bad route, source:",
                "unknown source \"jsonn\"; known sources: json, form",
            ),
            (
                "m.yaml:15:5: error: route bad route, dealstage:",
                "missing `dealstage:`",
            ),
            (
                "m.yaml:18:19: error: route bad route, properties.dealname:",
                "unknown variable field",
            ),
        ];
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for ((prefix, message), got) in want.iter().zip(&errors) {
            assert!(
                got.starts_with(prefix) && got.contains(message),
                "want {prefix} … {message}\n got {got}"
            );
        }
    }

    #[test]
    fn bad_constants_are_load_errors() {
        let text = r#"version: 1
routes:
  r:
    source: json
    deal:
      pipeline: p
      dealstage: s
      properties:
        n: { from: twelve, type: number }
        m: { from: "{{ fields.x }}", type: number, map: { a: lots }, default: none }
        r: { from: "", required: true }
      associations:
        companies: [1, abc]
"#;
        let errors = load_errors(text);
        let want = [
            ("m.yaml:9:20:", "expected a number"),
            ("m.yaml:10:59:", "`map` value for \"a\""),
            ("m.yaml:10:79:", "`default`"),
            ("m.yaml:11:20:", "required"),
            ("m.yaml:13:20:", "not a HubSpot record id: \"abc\""),
        ];
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for ((prefix, message), got) in want.iter().zip(&errors) {
            assert!(
                got.starts_with(prefix) && got.contains(message),
                "want {prefix} … {message}\n got {got}"
            );
        }
    }

    #[test]
    fn literal_association_ids_are_accepted() {
        let text = "version: 1\nroutes:\n  r:\n    source: json\n    deal:\n      pipeline: p\n      dealstage: s\n      associations:\n        companies: [1, \"2\", 1]\n        contacts: 3\n";
        let deal = Mapping::from_yaml(text, "m.yaml")
            .unwrap()
            .route("r")
            .unwrap()
            .map(&submission("json", json!({})))
            .unwrap();
        assert_eq!(
            deal.associations,
            Associations {
                company_ids: vec![1, 2],
                contact_ids: vec![3]
            }
        );
    }
}
