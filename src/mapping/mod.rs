//! Mapping: the spec in `mapping.yaml` (read with serde-saphyr), compiled once per cold start
//! into endpoints and routes that turn a Submission into a DealDraft. Never parses anything per
//! request.
//!
//! The language (routes, `match`, value specs, typed conversions, lists, labels, associations,
//! `hubspot:`, `for_each`, `dedupe`) is documented for users in `docs/mapping.md`, whose whole
//! mappings `tests/api/docs.rs` loads. Here: the spec (`spec/`), compilation and evaluation of one
//! route ([`Route`], `route.rs`, `value_rule.rs`, `template.rs`), typed conversions (`convert/`),
//! contacts and companies (`associations.rs`, [`DEFAULT_FREE_MAIL_DOMAINS`]), endpoints and `match`
//! ([`Endpoint`]), `dedupe` ([`Dedupe`]), label resolution (`resolve`) and `check --online` (`online`).
//! Every problem in a file is reported at once, each with its line and column.

mod associations;
mod convert;
mod dedupe;
mod diagnostic;
mod endpoint;
mod free_mail;
mod json_view;
mod lint;
pub mod online;
pub mod resolve;
mod route;
mod spec;
mod template;
mod value_rule;
mod yaml;

use std::collections::BTreeSet;
use std::sync::Arc;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod for_each_tests;
#[cfg(test)]
mod hubspot_tests;

pub use associations::OnAssociationFailure;
pub use dedupe::{DEFAULT_WITHIN_DAYS, Dedupe, DedupeContact, DedupeThen, MAX_WITHIN_DAYS};
pub use diagnostic::{Diagnostic, MappingLoadError, Severity};
pub use endpoint::Endpoint;
pub use free_mail::{DEFAULT_FREE_MAIL_DOMAINS, WILDCARD_SECOND_LEVELS};
pub use lint::{DEFAULT_DEAL_PROPERTIES, DEFAULT_PIPELINE_STAGES, defers_to_online};
pub use route::{ForEachError, Items, MAX_RECORDS, Route};

/// Names longer than this (bytes) get no "did you mean": the edit distance costs their length times
/// each candidate's, and a real typo of an endpoint name is short.
pub(crate) const MAX_NAME_FOR_SUGGESTION: usize = 64;

use diagnostic::{At, Report};
pub(crate) use spec::nearest;

/// The origin used for [`Mapping::embedded`] in messages.
pub const EMBEDDED_ORIGIN: &str = "mapping.yaml (embedded)";

/// The default mapping, embedded at build time.
const EMBEDDED: &str = include_str!("../../mapping.yaml");

/// The text of the embedded default mapping (`mapping.yaml` at the repository root), named
/// [`EMBEDDED_ORIGIN`] in messages.
pub fn embedded_text() -> &'static str {
    EMBEDDED
}

/// A compiled mapping: every route, ready to map submissions. Built once per cold start and
/// shared (`Arc<Mapping>`) by all invocations; it is immutable, `Send` and `Sync`.
#[derive(Debug)]
pub struct Mapping {
    origin: String,
    /// In file order; each is also held by its endpoint.
    routes: Vec<Arc<Route>>,
    endpoints: Vec<Endpoint>,
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
        let mut report = Report::on_text(text);
        let root = match yaml::parse(text) {
            Ok(root) => root,
            Err(syntax) => {
                let (loc, hint) = yaml::syntax_hint(text, syntax.loc);
                let message = match loc == syntax.loc {
                    true => format!("YAML syntax: {} (hint: {hint})", syntax.message),
                    false => format!("YAML syntax: {hint} (the parser says: {})", syntax.message),
                };
                report.error(At::default(), loc, message);
                return Err(fail(report.into_sorted()));
            }
        };
        let spec = spec::read(&root, &mut report);
        endpoint::check(&spec.routes, &mut report);
        endpoint::check_shared_keys(&spec.routes, &mut report);
        let free_mail = Arc::new(spec.free_mail_domains);
        let routes = route::compile(spec.routes, &free_mail, &mut report);
        if report.has_errors() {
            return Err(fail(report.into_sorted()));
        }
        let (routes, endpoints) = endpoint::group(routes);
        Ok(Mapping {
            origin: origin.to_owned(),
            routes,
            endpoints,
            warnings: report.into_sorted(),
        })
    }

    /// The default mapping embedded at build time (`mapping.yaml` at the repository root).
    pub fn embedded() -> Result<Mapping, MappingLoadError> {
        Mapping::from_yaml(EMBEDDED, EMBEDDED_ORIGIN)
    }

    /// The route called `name` (its name in the file, not its endpoint), if configured.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes().find(|r| r.name() == name)
    }

    /// Every route, in file order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|r| &**r)
    }

    /// The endpoint served at `POST /hooks/{name}`, if configured.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name() == name)
    }

    /// Every endpoint, in the file order of its first route.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter()
    }

    /// Every signing key name routes refer to (sorted, deduplicated): the keys the secret
    /// must have under `signing`.
    pub fn signing_keys(&self) -> Vec<&str> {
        let keys: BTreeSet<&str> = self
            .routes()
            .filter_map(|r| r.signing_secret().map(|(key, _)| key.as_str()))
            .collect();
        keys.into_iter().collect()
    }

    /// Errors (with the route and the line of its `signing_secret`) for every key `has_key`
    /// says is missing: one per key, at the first route that names it (the message lists the
    /// others). Empty when the secret has every key. For cold start and `check`.
    pub fn missing_signing_keys(&self, has_key: &dyn Fn(&str) -> bool) -> Vec<Diagnostic> {
        let mut report = Report::default();
        let mut seen: Vec<&str> = Vec::new();
        for route in self.routes() {
            let Some((key, loc)) = route.signing_secret() else {
                continue;
            };
            if seen.contains(&key.as_str()) || has_key(key) {
                continue;
            }
            seen.push(key);
            let others: Vec<&str> = self
                .routes()
                .filter(|r| r.name() != route.name() && r.signing_secret().is_some_and(|(k, _)| k == key))
                .map(Route::name)
                .collect();
            let also = match others.as_slice() {
                [] => String::new(),
                [one] => format!(" (route {one} names it too)"),
                many => format!(" (routes {} name it too)", many.join(", ")),
            };
            report.error(
                At::route(route.name()).field("signing_secret"),
                *loc,
                format!(
                    "the secret has no key {key:?} under `signing`, so deliveries to /hooks/{} cannot be \
                     verified{also}",
                    route.endpoint()
                ),
            );
        }
        report.into_sorted()
    }

    /// `check`'s warnings about HubSpot APIs going away: one per route on v1 or v3 (v1 is the
    /// default), at its `hubspot.api` when the file says it, else at the route's name. HubSpot's changelog "Legacy APIs and
    /// Apps: What's Going Unsupported and When" ends support for those paths in September 2027.
    /// Not load warnings, so that a cold start does not repeat them on every route.
    pub fn legacy_api_warnings(&self) -> Vec<Diagnostic> {
        let mut report = Report::default();
        for route in self.routes() {
            let api = route.hubspot().api;
            if !api.is_legacy() {
                continue;
            }
            // Said in the file: there; the default: at the route, which is what moving it changes.
            let (loc, default) = match route.hubspot_api_loc() {
                Some(loc) => (loc, ""),
                None => (route.loc(), " (the default)"),
            };
            report.warning(
                At::route(route.name()).field("hubspot.api"),
                loc,
                format!(
                    "uses HubSpot's {api} API{default}, whose paths HubSpot stops supporting in September 2027 \
                     (changelog \"Legacy APIs and Apps: What's Going Unsupported and When\"); move to \
                     `hubspot: {{ api: \"2026-03\" }}`"
                ),
            );
        }
        report.into_sorted()
    }

    /// Every signing key name routes refer to, with the scheme that uses it (sorted by key; a key two
    /// schemes share is listed once per scheme): what `check --secret` checks each key against.
    pub fn signing_key_schemes(&self) -> Vec<(&str, crate::inbound::verify::Scheme)> {
        let mut pairs: Vec<(&str, crate::inbound::verify::Scheme)> = self
            .endpoints()
            .filter_map(|e| e.signing_secret().zip(e.signature()))
            .collect();
        pairs.sort_by_key(|(key, scheme)| (*key, scheme.as_str()));
        pairs.dedup();
        pairs
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
    use crate::domain::{Associations, DealDraft, Problem, PropValue, Property, Submission, Unmatched};
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
            fields: fields.as_object().cloned().unwrap_or_default().into(),
            raw: fields.into(),
        }
    }

    fn embedded() -> Mapping {
        crate::tests::showcase().unwrap_or_else(|e| panic!("the showcase mapping must load:\n{e}"))
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
    fn the_showcase_mapping_loads_warning_about_the_missing_pipeline_and_unsigned_routes() {
        let mapping = embedded();
        let names: Vec<_> = mapping.routes().take(2).map(|r| (r.name(), r.source())).collect();
        assert_eq!(names, [("website-quote", Source::Json), ("contact-form", Source::Form)]);
        let sources: Vec<Source> = mapping.endpoints().map(|e| e.source()).collect();
        for source in Source::ALL {
            assert!(
                sources.contains(source),
                "the default mapping has an example route for {source}"
            );
        }
        assert_eq!(mapping.origin(), "examples/showcase/mapping.yaml");
        let warnings: Vec<_> = mapping
            .warnings()
            .iter()
            .map(|w| (w.severity, w.route.as_deref(), w.field.as_deref()))
            .collect();
        assert_eq!(
            warnings,
            [
                (Severity::Warning, Some("website-quote"), Some("signature")),
                (Severity::Warning, Some("contact-form"), Some("signature")),
                (Severity::Warning, Some("contact-form"), Some("pipeline")),
                (Severity::Warning, Some("website-lead"), Some("signature")),
            ],
            "{:#?}",
            mapping.warnings()
        );
        for w in mapping.warnings() {
            assert!(w.line.is_some() && w.column.is_some(), "{w:?}");
            assert!(
                w.in_file(mapping.origin())
                    .to_string()
                    .starts_with("examples/showcase/mapping.yaml:")
            );
        }
        assert!(mapping.warnings()[0].message.contains("accepts unsigned deliveries"));
        assert!(mapping.route("nope").is_none());
        let endpoints: Vec<_> = mapping
            .endpoints()
            .take(3)
            .map(|e| (e.name(), e.source(), e.signature()))
            .collect();
        assert_eq!(
            endpoints,
            [
                ("website-quote", Source::Json, None),
                ("contact-form", Source::Form, None),
                ("typeform", Source::Typeform, Some(Scheme::Typeform)),
            ]
        );
        let typeform: Vec<&str> = mapping
            .endpoint("typeform")
            .unwrap()
            .routes()
            .map(|r| r.name())
            .collect();
        assert_eq!(
            typeform,
            ["typeform-demo-request", "typeform-any-form"],
            "one endpoint, two forms"
        );
        assert_eq!(
            mapping.signing_keys(),
            [
                "billing",
                "github",
                "hubspot-app",
                "jotform",
                "stripe",
                "tally",
                "typeform",
                "webflow"
            ]
        );
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
                ..Associations::default()
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

    /// The example route for the form-to-deal job: only an e-mail and a company name come in.
    #[test]
    fn a_website_lead_becomes_a_contact_by_e_mail_and_a_company_by_domain() {
        let event: Value =
            serde_json::from_str(include_str!("../../examples/showcase/events/website-lead.json")).unwrap();
        let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        let deal = map("website-lead", body).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(deal.properties, [prop("dealname", text("Lead: Acme Robotics"))]);
        let contacts = &deal.associations.contacts_by_email;
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].email.as_str(), "ada.lovelace@acme-robotics.example");
        assert_eq!(
            contacts[0].properties,
            [prop("firstname", text("Ada")), prop("lastname", text("Lovelace"))],
            "the empty phone is left out"
        );
        let companies = &deal.associations.companies_by_domain;
        assert_eq!(companies.len(), 1);
        assert_eq!(companies[0].domain.as_str(), "acme-robotics.example");
        assert!(companies[0].create_missing);
        assert_eq!(companies[0].properties, [prop("name", text("Acme Robotics"))]);
        assert!(deal.associations.company_ids.is_empty() && deal.associations.contact_ids.is_empty());

        let gmail = map("website-lead", json!({"email": "ada@gmail.com"})).unwrap();
        assert_eq!(
            gmail.associations.contacts_by_email.len(),
            1,
            "the contact is still linked"
        );
        assert!(gmail.associations.companies_by_domain.is_empty());
        assert_eq!(gmail.associations.skipped_free_mail_domains[0].as_str(), "gmail.com");
        assert_eq!(gmail.properties, [prop("dealname", text("Lead: ada@gmail.com"))]);

        let problems = map("website-lead", json!({"email": "ada(at)acme.example"})).unwrap_err();
        assert_eq!(
            codes(&problems),
            [
                (
                    "associations.companies[0].domain".to_owned(),
                    "invalid_domain".to_owned()
                ),
                ("associations.contacts[0].email".to_owned(), "invalid_email".to_owned()),
            ]
        );
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
                contact_ids: vec![3],
                ..Associations::default()
            }
        );
    }

    // ---- Step 2: signatures, endpoints and `match` ----

    use crate::inbound::verify::Scheme;

    /// A mapping of `routes` (YAML, indented by four spaces under `routes:`), each given a
    /// minimal deal after its own keys.
    fn with_routes(routes: &[(&str, &str)]) -> String {
        let mut text = String::from("version: 1\nroutes:\n");
        for (name, keys) in routes {
            text.push_str(&format!("  {name}:\n"));
            for line in keys.lines() {
                text.push_str(&format!("    {line}\n"));
            }
            text.push_str("    deal: { pipeline: p, dealstage: \"{{ route }}\" }\n");
        }
        text
    }

    fn load(text: &str) -> Mapping {
        Mapping::from_yaml(text, "m.yaml").unwrap_or_else(|e| panic!("must load:\n{e}\n{text}"))
    }

    fn warnings(mapping: &Mapping) -> Vec<String> {
        mapping.warnings().iter().map(ToString::to_string).collect()
    }

    fn delivery(source: &str, event_type: Option<&str>, fields: Value) -> Submission {
        Submission {
            event_type: event_type.map(str::to_owned),
            ..submission(source, fields)
        }
    }

    /// Asserts that `errors` are exactly `want` (prefix, part of the message), in order.
    fn assert_errors(errors: &[String], want: &[(&str, &str)]) {
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for ((prefix, message), got) in want.iter().zip(errors) {
            assert!(
                got.starts_with(prefix) && got.contains(message),
                "want {prefix} … {message}\n got {got}"
            );
        }
    }

    #[test]
    fn each_source_gets_its_default_signature_scheme() {
        for &source in Source::ALL {
            let keys = match Scheme::default_for(source) {
                Some(_) => format!("source: {source}\nsigning_secret: {source}"),
                None => format!("source: {source}"),
            };
            let mapping = load(&with_routes(&[("r", &keys)]));
            let endpoint = mapping.endpoint("r").unwrap_or_else(|| panic!("{source}: no endpoint"));
            assert_eq!(endpoint.source(), source, "{source}");
            assert_eq!(endpoint.signature(), Scheme::default_for(source), "{source}");
            let want_key = Scheme::default_for(source).map(|_| source.as_str());
            assert_eq!(endpoint.signing_secret(), want_key, "{source}");
            let unsigned_warning = warnings(&mapping)
                .iter()
                .any(|w| w.contains("accepts unsigned deliveries"));
            assert_eq!(
                unsigned_warning,
                want_key.is_none(),
                "{source}: {:?}",
                warnings(&mapping)
            );
        }
        assert_eq!(Scheme::default_for(Source::Typeform), Some(Scheme::Typeform));
        assert_eq!(Scheme::default_for(Source::Json), None);
    }

    #[test]
    fn an_explicit_scheme_overrides_the_default() {
        let mapping = load(&with_routes(&[(
            "r",
            "source: json\nsignature: standard-webhooks\nsigning_secret: svix.main",
        )]));
        let endpoint = mapping.endpoint("r").unwrap();
        assert_eq!(endpoint.signature(), Some(Scheme::StandardWebhooks));
        assert_eq!(endpoint.signing_secret(), Some("svix.main"));
        assert!(warnings(&mapping).is_empty(), "{:?}", warnings(&mapping));
    }

    #[test]
    fn a_provider_route_without_a_signing_secret_is_an_error() {
        let errors = load_errors(&with_routes(&[("typeform-leads", "source: typeform")]));
        assert_errors(
            &errors,
            &[(
                "m.yaml:3:3: error: route typeform-leads:",
                "verifies typeform signatures and needs `signing_secret: <key under signing in the secret>`, or \
                 `signature: none` to accept unsigned deliveries",
            )],
        );
        let errors = load_errors(&with_routes(&[("r", "source: json\nsignature: stripe")]));
        assert_errors(
            &errors,
            &[("m.yaml:3:3: error: route r:", "verifies stripe signatures")],
        );
    }

    #[test]
    fn signature_none_warns_and_is_an_error_with_a_signing_secret() {
        let mapping = load(&with_routes(&[("r", "source: stripe\nsignature: none")]));
        assert_eq!(mapping.endpoint("r").unwrap().signature(), None);
        assert_eq!(mapping.endpoint("r").unwrap().signing_secret(), None);
        let w = mapping.warnings();
        assert_eq!(w.len(), 1, "{w:#?}");
        assert_eq!(w[0].field.as_deref(), Some("signature"));
        assert_eq!((w[0].line, w[0].column), (Some(5), Some(16)), "at the `none`");
        assert!(
            w[0].message
                .starts_with("accepts unsigned deliveries: anyone who knows the URL can create deals"),
            "{}",
            w[0].message
        );

        let errors = load_errors(&with_routes(&[(
            "r",
            "source: stripe\nsignature: none\nsigning_secret: stripe",
        )]));
        assert_errors(
            &errors,
            &[(
                "m.yaml:6:21: error: route r, signing_secret:",
                "`signature: none` accepts unsigned deliveries",
            )],
        );
    }

    #[test]
    fn an_unknown_scheme_is_an_error_listing_the_known_ones() {
        let errors = load_errors(&with_routes(&[(
            "r",
            "source: stripe\nsignature: strype\nsigning_secret: stripe",
        )]));
        assert_errors(
            &errors,
            &[(
                "m.yaml:5:16: error: route r, signature:",
                "unknown signature scheme \"strype\"; known schemes: typeform, tally, webflow, stripe",
            )],
        );
        assert!(errors[0].contains("`none`"), "{}", errors[0]);
        let errors = load_errors(&with_routes(&[("r", "source: json\nsignature: [stripe]")]));
        assert_errors(&errors, &[("m.yaml:5:16:", "expected a signature scheme")]);
    }

    #[test]
    fn a_json_route_without_signature_warns_and_one_with_only_a_signing_secret_is_an_error() {
        let mapping = load(&with_routes(&[("r", "source: json")]));
        let w = mapping.warnings();
        assert_eq!(w.len(), 1, "{w:#?}");
        assert_eq!(
            (w[0].route.as_deref(), w[0].field.as_deref()),
            (Some("r"), Some("signature"))
        );
        assert_eq!((w[0].line, w[0].column), (Some(3), Some(3)), "at the route");
        assert!(w[0].message.contains("anyone who knows the URL can create deals"));

        let errors = load_errors(&with_routes(&[("r", "source: form\nsigning_secret: web")]));
        assert_errors(
            &errors,
            &[(
                "m.yaml:5:21: error: route r, signing_secret:",
                "form routes are unsigned unless `signature:` names a scheme",
            )],
        );
    }

    #[test]
    fn endpoint_and_signing_key_names_are_checked() {
        let errors = load_errors(&with_routes(&[
            ("a", "source: json\nendpoint: \"web/quote\""),
            ("b", "source: stripe\nsigning_secret: \"stripe key\""),
            ("c", "source: stripe\nsigning_secret: \"\""),
            ("d", "source: json\nendpoint: 7"),
        ]));
        assert_errors(
            &errors,
            &[
                (
                    "m.yaml:5:15: error: route a, endpoint:",
                    "endpoint name \"web/quote\" contains '/'",
                ),
                ("m.yaml:9:21: error: route b, signing_secret:", "contains ' '"),
                (
                    "m.yaml:13:21: error: route c, signing_secret:",
                    "empty signing key name",
                ),
                (
                    "m.yaml:17:15: error: route d, endpoint:",
                    "expected an endpoint name, found a number",
                ),
            ],
        );
        let mapping = load(&with_routes(&[(
            "r",
            "source: stripe\nsigning_secret: Stripe_live-2.key",
        )]));
        assert_eq!(mapping.signing_keys(), ["Stripe_live-2.key"]);
    }

    const TWO_FORMS: &str = r#"version: 1
routes:
  demo-request:
    source: typeform
    endpoint: typeform
    signing_secret: typeform
    match: fields.form_id == "lT4Z3j"
    deal: { pipeline: p, dealstage: demo }
  newsletter-upgrade:
    source: typeform
    endpoint: typeform
    signing_secret: typeform
    match: fields.form_id in ["Xy12ab", "Zz99cd"]
    deal: { pipeline: p, dealstage: "{{ route }}" }
  website-quote:
    source: json
    signature: none
    deal: { pipeline: p, dealstage: quote }
"#;

    #[test]
    fn two_typeform_routes_on_one_endpoint_are_told_apart_by_match() {
        let mapping = load(TWO_FORMS);
        let endpoints: Vec<_> = mapping.endpoints().map(Endpoint::name).collect();
        assert_eq!(endpoints, ["typeform", "website-quote"]);
        let typeform = mapping.endpoint("typeform").unwrap();
        assert_eq!(
            (typeform.source(), typeform.signature(), typeform.signing_secret()),
            (Source::Typeform, Some(Scheme::Typeform), Some("typeform"))
        );
        let routes: Vec<_> = typeform.routes().map(|r| (r.name(), r.endpoint())).collect();
        assert_eq!(
            routes,
            [("demo-request", "typeform"), ("newsletter-upgrade", "typeform")]
        );
        assert!(
            mapping.endpoint("demo-request").is_none(),
            "routes with `endpoint:` are not served by name"
        );
        assert_eq!(mapping.route("demo-request").map(Route::endpoint), Some("typeform"));
        assert_eq!(mapping.signing_keys(), ["typeform"]);

        let cases = [
            ("the demo form", json!({"form_id": "lT4Z3j"}), Some("demo-request")),
            (
                "a newsletter form",
                json!({"form_id": "Zz99cd"}),
                Some("newsletter-upgrade"),
            ),
            ("another form", json!({"form_id": "other"}), None),
            ("no form id", json!({}), None),
            ("a case variant", json!({"form_id": "lt4z3j"}), None),
        ];
        for (name, fields, want) in cases {
            let submission = delivery("typeform", Some("form_response"), fields);
            let got = typeform.select(&submission).unwrap_or_else(|p| panic!("{name}: {p:?}"));
            assert_eq!(got.map(Route::name), want, "{name}");
            if let Some(route) = got {
                let deal = route.map(&submission).unwrap_or_else(|p| panic!("{name}: {p:?}"));
                let stage = if route.name() == "demo-request" {
                    "demo"
                } else {
                    route.name()
                };
                assert_eq!(deal.dealstage, stage, "{name}");
            }
        }
        let quote = mapping.endpoint("website-quote").unwrap();
        let got = quote.select(&delivery("json", None, json!({}))).unwrap();
        assert_eq!(
            got.map(Route::name),
            Some("website-quote"),
            "a route without match takes everything"
        );
    }

    #[test]
    fn a_catch_all_route_may_come_last_on_its_endpoint() {
        let mapping = load(&with_routes(&[
            ("special", "source: json\nendpoint: in\nmatch: fields.vip"),
            ("in", "source: json"),
        ]));
        let endpoint = mapping.endpoint("in").unwrap();
        let pick = |fields| {
            endpoint
                .select(&delivery("json", None, fields))
                .unwrap()
                .map(Route::name)
        };
        assert_eq!(pick(json!({"vip": true})), Some("special"));
        assert_eq!(pick(json!({"vip": ""})), Some("in"), "blank strings are falsy");
        assert_eq!(pick(json!({"vip": []})), Some("in"), "empty lists are falsy");
        assert_eq!(pick(json!({})), Some("in"));
    }

    #[test]
    fn a_route_after_a_catch_all_on_the_same_endpoint_is_an_error() {
        let errors = load_errors(&with_routes(&[
            ("all", "source: json\nendpoint: in"),
            ("one", "source: json\nendpoint: in\nmatch: fields.x == 1"),
            ("two", "source: json\nendpoint: in\nmatch: fields.x == 2"),
        ]));
        assert_errors(
            &errors,
            &[
                (
                    "m.yaml:7:3: error: route one:",
                    "is never reached: route all (line 3) comes before it on /hooks/in and has no `match:`",
                ),
                ("m.yaml:12:3: error: route two:", "route all (line 3)"),
            ],
        );
    }

    #[test]
    fn routes_sharing_an_endpoint_must_agree_on_source_signature_and_secret() {
        let errors = load_errors(&with_routes(&[
            (
                "tf-a",
                "source: typeform\nendpoint: forms\nsigning_secret: typeform\nmatch: fields.a",
            ),
            (
                "tf-b",
                "source: typeform\nendpoint: forms\nsigning_secret: typeform-2\nmatch: fields.b",
            ),
            (
                "tally",
                "source: tally\nendpoint: forms\nsigning_secret: typeform\nmatch: fields.c",
            ),
            ("forms", "source: typeform\nsignature: none"),
        ]));
        assert_errors(
            &errors,
            &[
                (
                    "m.yaml:11:15: error: route tf-b, endpoint:",
                    "shares /hooks/forms with route tf-a (line 3) but its signing_secret is \"typeform-2\" where \
                     route tf-a's is \"typeform\"",
                ),
                (
                    "m.yaml:17:15: error: route tally, endpoint:",
                    "its source is tally where route tf-a's is typeform, and its signature is tally where route \
                     tf-a's is typeform",
                ),
                (
                    "m.yaml:21:3: error: route forms, endpoint:",
                    "its signature is none where route tf-a's is typeform, and its signing_secret is not set",
                ),
            ],
        );
    }

    #[test]
    fn a_match_syntax_error_is_a_load_error_at_its_line() {
        let errors = load_errors(&with_routes(&[
            ("a", "source: json\nendpoint: in\nmatch: fields.form_id == "),
            ("b", "source: json\nendpoint: in\nmatch: form_id == \"x\""),
            ("c", "source: json\nendpoint: in\nmatch: \"{{ fields.x }}\""),
            ("d", "source: json\nendpoint: in\nmatch: fields.a }}{{ fields.b"),
            ("e", "source: json\nendpoint: in\nmatch: \"\""),
            ("f", "source: json\nendpoint: in\nmatch: true"),
        ]));
        assert_errors(
            &errors,
            &[
                (
                    "m.yaml:6:12: error: route a, match:",
                    "invalid `match` expression: syntax error",
                ),
                ("m.yaml:11:12: error: route b, match:", "unknown variable form_id"),
                (
                    "m.yaml:16:12: error: route c, match:",
                    "without `{{ }}`: write `fields.x`",
                ),
                (
                    "m.yaml:21:12: error: route d, match:",
                    "unexpected input after expression",
                ),
                ("m.yaml:26:12: error: route e, match:", "empty `match:`"),
                ("m.yaml:31:12: error: route f, match:", "expected an expression"),
            ],
        );
    }

    #[test]
    fn a_match_can_read_the_event_type_and_strings_with_braces() {
        let mapping = load(&with_routes(&[
            (
                "checkout",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\n\
                 match: submission.event_type == \"checkout.session.completed\"",
            ),
            (
                "braces",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\nmatch: 'fields.note == \"}}\"'",
            ),
            (
                "negative",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\nmatch: -1 > fields.amount | default(0)",
            ),
        ]));
        let stripe = mapping.endpoint("stripe").unwrap();
        let pick = |event_type, fields| {
            stripe
                .select(&delivery("stripe", event_type, fields))
                .unwrap()
                .map(Route::name)
        };
        assert_eq!(pick(Some("checkout.session.completed"), json!({})), Some("checkout"));
        assert_eq!(pick(Some("invoice.paid"), json!({})), None);
        assert_eq!(pick(None, json!({})), None);
        assert_eq!(pick(Some("invoice.paid"), json!({"note": "}}"})), Some("braces"));
        assert_eq!(pick(Some("refund"), json!({"amount": -5})), Some("negative"));
        assert_eq!(pick(Some("refund"), json!({"amount": 5})), None);
    }

    /// What an `ignored` answer shows of each route's `match`. Variants: a path that holds text, a
    /// path that is absent (`null`), two paths of one expression (name order), a filter over a path,
    /// a long text (cut), a long list (summarised), a short list (as it is), a route without `match`
    /// (not listed), several routes (file order).
    #[test]
    fn an_unmatched_delivery_shows_what_each_match_saw() {
        let mapping = load(&with_routes(&[
            (
                "checkout",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\n\
                 match: submission.event_type == \"checkout.session.completed\"",
            ),
            (
                "big",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\n\
                 match: fields.plan == \"team\" and fields.amount | default(0) > 100",
            ),
            (
                "tagged",
                "source: stripe\nendpoint: stripe\nsigning_secret: stripe\nmatch: '\"vip\" in fields.tags'",
            ),
        ]));
        let stripe = mapping.endpoint("stripe").unwrap();
        let long = "x".repeat(Unmatched::MAX_VALUE_CHARS + 50);
        let many: Vec<String> = (0..100).map(|i| format!("tag{i}")).collect();
        let cases = [
            (
                "text, absent, two paths, short list",
                json!({"plan": "solo", "tags": ["a", "b"]}),
                Some("invoice.paid"),
                json!([
                    {"route": "checkout", "match": "submission.event_type == \"checkout.session.completed\"",
                     "saw": {"submission.event_type": "invoice.paid"}},
                    {"route": "big", "match": "fields.plan == \"team\" and fields.amount | default(0) > 100",
                     "saw": {"fields.amount": null, "fields.plan": "solo"}},
                    {"route": "tagged", "match": "\"vip\" in fields.tags", "saw": {"fields.tags": ["a", "b"]}},
                ]),
            ),
            (
                "absent event type, long text cut, long list summarised",
                json!({"plan": long, "amount": 5, "tags": many}),
                None,
                json!([
                    {"route": "checkout", "match": "submission.event_type == \"checkout.session.completed\"",
                     "saw": {"submission.event_type": null}},
                    {"route": "big", "match": "fields.plan == \"team\" and fields.amount | default(0) > 100",
                     "saw": {"fields.amount": 5, "fields.plan": format!("{}…", "x".repeat(Unmatched::MAX_VALUE_CHARS))}},
                    {"route": "tagged", "match": "\"vip\" in fields.tags", "saw": {"fields.tags": "(a list of 100 items)"}},
                ]),
            ),
        ];
        for (name, fields, event_type, expected) in cases {
            let submission = delivery("stripe", event_type, fields);
            assert_eq!(stripe.select(&submission).unwrap().map(Route::name), None, "{name}");
            assert_eq!(json!(stripe.unmatched(&submission)), expected, "{name}");
        }
        // A route without `match` takes every delivery, so it never shows here; nor does an endpoint
        // whose only route has none.
        let plain = load(&with_routes(&[("plain", "source: json")]));
        let plain = plain.endpoint("plain").unwrap();
        assert!(plain.unmatched(&delivery("plain", None, json!({}))).is_empty());
    }

    #[test]
    fn a_match_that_fails_to_evaluate_is_a_problem_not_a_panic() {
        let mapping = load(&with_routes(&[
            ("broken", "source: json\nendpoint: in\nmatch: fields.n / 0 > 1"),
            (
                "runaway",
                "source: json\nmatch: range(100000) | map('string') | join | length > 0",
            ),
            ("in", "source: json"),
        ]));
        let endpoint = mapping.endpoint("in").unwrap();
        let problems = endpoint
            .select(&delivery("json", None, json!({"n": 4})))
            .expect_err("division by zero");
        assert_eq!(codes(&problems), [("match".to_string(), "match_error".to_string())]);
        assert!(
            problems[0].message.starts_with("route broken: "),
            "{}",
            problems[0].message
        );

        let problems = endpoint
            .select(&delivery("json", None, json!({"n": "four"})))
            .expect_err("a string divided");
        assert!(problems[0].message.contains("route broken"), "{}", problems[0].message);

        let start = std::time::Instant::now();
        let problems = mapping
            .endpoint("runaway")
            .unwrap()
            .select(&delivery("json", None, json!({})))
            .expect_err("out of fuel");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(codes(&problems), [("match".to_string(), "match_error".to_string())]);
        assert!(
            problems[0].message.starts_with("route runaway: "),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn missing_signing_keys_name_the_route_and_the_line() {
        let mapping = load(&with_routes(&[
            (
                "tf-a",
                "source: typeform\nendpoint: forms\nsigning_secret: typeform\nmatch: fields.a",
            ),
            ("tf-b", "source: typeform\nendpoint: forms\nsigning_secret: typeform"),
            ("pay", "source: stripe\nsigning_secret: stripe"),
            ("gh", "source: github\nsigning_secret: github"),
            ("web", "source: form"),
        ]));
        assert_eq!(mapping.signing_keys(), ["github", "stripe", "typeform"]);
        assert!(mapping.missing_signing_keys(&|_| true).is_empty());

        let missing = mapping.missing_signing_keys(&|key| key == "stripe");
        let shown: Vec<String> = missing.iter().map(|d| d.in_file("m.yaml").to_string()).collect();
        assert_errors(
            &shown,
            &[
                (
                    "m.yaml:6:21: error: route tf-a, signing_secret:",
                    "the secret has no key \"typeform\" under `signing`, so deliveries to /hooks/forms cannot be \
                     verified (route tf-b names it too)",
                ),
                (
                    "m.yaml:20:21: error: route gh, signing_secret:",
                    "no key \"github\" under `signing`",
                ),
            ],
        );
        assert!(missing.iter().all(|d| d.severity == Severity::Error));
    }

    #[test]
    fn signature_endpoint_and_match_errors_are_collected_in_one_load_error() {
        let errors = load_errors(&with_routes(&[
            ("a", "source: typeform"),
            ("b", "source: stripe\nsignature: none\nsigning_secret: s"),
            ("c", "source: json\nsignature: hmac"),
            ("d", "source: json\nendpoint: shared"),
            ("e", "source: form\nendpoint: shared\nmatch: fields.x =="),
            ("f", "source: json\nmatch: fields.x\nsignin_secret: x"),
        ]));
        assert_errors(
            &errors,
            &[
                ("m.yaml:3:3: error: route a:", "needs `signing_secret:"),
                ("m.yaml:9:21: error: route b, signing_secret:", "`signature: none`"),
                (
                    "m.yaml:13:16: error: route c, signature:",
                    "unknown signature scheme \"hmac\"",
                ),
                ("m.yaml:19:3: error: route e:", "never reached"),
                (
                    "m.yaml:21:15: error: route e, endpoint:",
                    "its source is form where route d's is json",
                ),
                ("m.yaml:22:12: error: route e, match:", "syntax error"),
                ("m.yaml:27:5: error: route f:", "did you mean `signing_secret`?"),
            ],
        );
    }

    // ---- Step 5: multi-selects, digit dates, `format:`, `timezone:`, `decimal:` ----

    /// One json route `r` whose `properties:` are `properties` (indented by eight spaces).
    fn with_properties(properties: &str) -> String {
        format!(
            "version: 1\nroutes:\n  r:\n    source: json\n    signature: none\n    deal:\n      pipeline: p\n      \
             dealstage: s\n      properties:\n{properties}"
        )
    }

    /// The properties of the deal route `r` of `yaml` makes from `fields`, or its problems.
    fn deal_properties(yaml: &str, fields: Value) -> Result<Vec<Property>, Vec<Problem>> {
        let mapping = Mapping::from_yaml(yaml, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
        mapping
            .route("r")
            .unwrap()
            .map(&submission("json", fields))
            .map(|deal| deal.properties)
    }

    const SERVICES: &str = "        services:\n          from: \"{{ fields.services }}\"\n          map: { \"Website redesign\": web_redesign, \"SEO audit\": seo_audit }\n";

    #[test]
    fn a_typeform_multiple_selection_becomes_option_values_item_by_item() {
        // Typeform's `choices` answer is a list of labels (see `typeform.rs`).
        let fields = json!({"services": ["Website redesign", "SEO audit"]});
        let want = vec![prop("services", text("web_redesign;seo_audit"))];
        let without_default = with_properties(SERVICES);
        assert_eq!(deal_properties(&without_default, fields.clone()), Ok(want.clone()));
        let with_default = with_properties(&format!("{SERVICES}          default: other\n"));
        assert_eq!(
            deal_properties(&with_default, fields),
            Ok(want),
            "the default replaces no known item"
        );
        let problems = deal_properties(&without_default, json!({"services": ["Website redesign", "Logo"]}))
            .expect_err("an item without a key");
        assert_eq!(
            codes(&problems),
            [("properties.services".to_owned(), "no_match".to_owned())]
        );
        assert!(
            problems[0].message.starts_with("item \"Logo\" matches no `map` key"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_joined_string_is_one_value_unless_the_template_splits_it() {
        let split = with_properties(
            "        services:\n          from: \"{{ fields.services | split(', ') }}\"\n          map: { \"Website redesign\": web_redesign, \"SEO audit\": seo_audit }\n        \
             lines: \"{{ fields.lines | lines }}\"\n",
        );
        let fields = json!({"services": "Website redesign, SEO audit", "lines": "Design\nPrint\n"});
        assert_eq!(
            deal_properties(&split, fields),
            Ok(vec![
                prop("services", text("web_redesign;seo_audit")),
                prop("lines", text("Design;Print")),
            ])
        );
        let whole = with_properties(SERVICES);
        let problems =
            deal_properties(&whole, json!({"services": "Website redesign, SEO audit"})).expect_err("one value");
        assert_eq!(
            codes(&problems),
            [("properties.services".to_owned(), "no_match".to_owned())]
        );
    }

    #[test]
    fn a_jotform_checkbox_holding_a_semicolon_is_a_problem_naming_property_and_item() {
        // Jotform checkboxes stay lists (see `jotform.rs`).
        let yaml = with_properties("        services: \"{{ fields.services }}\"\n");
        let problems = deal_properties(&yaml, json!({"services": ["Design; branding", "Web development"]}))
            .expect_err("a semicolon inside an option");
        assert_eq!(
            codes(&problems),
            [("properties.services".to_owned(), "invalid_option".to_owned())]
        );
        assert!(
            problems[0]
                .to_string()
                .starts_with("properties.services: item \"Design; branding\" contains \";\""),
            "{}",
            problems[0]
        );
        let fine = deal_properties(&yaml, json!({"services": ["Design", "Web development", "Design"]}));
        assert_eq!(fine, Ok(vec![prop("services", text("Design;Web development"))]));
    }

    #[test]
    fn dates_written_as_digits_are_read_as_the_issue_says() {
        let yaml = with_properties("        closedate: { from: \"{{ fields.d }}\", type: date }\n");
        let day = |fields| deal_properties(&yaml, fields);
        // 2026-12-15T00:00:00Z is 20,802 days after the epoch: 20802 × 86,400,000 ms.
        assert_eq!(20_802 * 86_400_000_i64, 1_797_292_800_000);
        assert_eq!(
            day(json!({"d": "20261215"})),
            Ok(vec![prop("closedate", PropValue::Date(1_797_292_800_000))])
        );
        for bad in ["202612", "99999", "7"] {
            let problems = day(json!({ "d": bad })).expect_err(bad);
            assert_eq!(
                codes(&problems),
                [("properties.closedate".to_owned(), "invalid_date".to_owned())],
                "{bad}"
            );
        }
    }

    #[test]
    fn format_and_timezone_read_dates_the_way_the_form_writes_them() {
        let yaml = with_properties(
            "        day_first: { from: \"{{ fields.d }}\", type: date, format: \"%d/%m/%Y\" }\n        \
             month_first: { from: \"{{ fields.d }}\", type: date, format: \"%m/%d/%Y\" }\n        \
             meeting: { from: \"{{ fields.at }}\", type: datetime, format: \"%d.%m.%Y %H:%M\", timezone: Europe/Paris }\n",
        );
        let properties = deal_properties(&yaml, json!({"d": "03/04/2026", "at": "15.12.2026 14:30"}));
        assert_eq!(
            properties,
            Ok(vec![
                prop("day_first", PropValue::Date(1_775_174_400_000)),
                prop("month_first", PropValue::Date(1_772_582_400_000)),
                // 14:30 in Paris in December (+01:00) is 13:30Z.
                prop("meeting", PropValue::DateTime(1_797_341_400_000)),
            ])
        );
        let without_format = with_properties("        d: { from: \"{{ fields.d }}\", type: date }\n");
        let problems = deal_properties(&without_format, json!({"d": "03/04/2026"})).expect_err("ambiguous");
        assert_eq!(problems[0].code, "invalid_date");
        assert!(problems[0].message.contains("set `format:`"), "{}", problems[0].message);
        let overlap =
            deal_properties(&yaml, json!({"d": "03/04/2026", "at": "25.10.2026 02:30"})).expect_err("fall back");
        assert_eq!(
            codes(&overlap),
            [("properties.meeting".to_owned(), "ambiguous_local_time".to_owned())]
        );
    }

    #[test]
    fn numbers_with_currency_spaces_and_decimal_commas_are_read() {
        let yaml = with_properties(
            "        amount: { from: \"{{ fields.n }}\", type: number }\n        \
             eu: { from: \"{{ fields.eu }}\", type: number, decimal: \",\" }\n",
        );
        for (input, want) in [("$1,200.00", "1200"), ("€ 1 200", "1200"), ("1200 EUR", "1200")] {
            let properties = deal_properties(&yaml, json!({ "n": input, "eu": "12.500,50" }));
            assert_eq!(
                properties,
                Ok(vec![
                    prop("amount", PropValue::Number(want.into())),
                    prop("eu", PropValue::Number("12500.5".into())),
                ]),
                "{input}"
            );
        }
        let problems = deal_properties(&yaml, json!({"n": "1.200", "eu": "1,5"})).expect_err("ambiguous");
        assert_eq!(
            codes(&problems),
            [("properties.amount".to_owned(), "invalid_number".to_owned())]
        );
        assert!(problems[0].message.contains("`decimal:"), "{}", problems[0].message);
    }

    #[test]
    fn type_options_are_checked_at_load_with_their_location() {
        let yaml = with_properties(
            "        a: { from: x, format: \"%d/%m/%Y\" }\n        \
             b: { from: \"{{ fields.b }}\", type: number, timezone: UTC }\n        \
             c: { from: \"{{ fields.c }}\", type: date, decimal: \",\" }\n        \
             d: { from: \"{{ fields.d }}\", type: date, format: \"%d/%m\" }\n        \
             e: { from: \"{{ fields.e }}\", type: datetime, timezone: europe/paris }\n        \
             f: { from: \"{{ fields.f }}\", type: number, decimal: \";\" }\n        \
             g: { from: \"{{ fields.g }}\", type: date, format: 12 }\n        \
             h: { from: \"{{ fields.h }}\", type: date, format: \"%d.%m.%Y\", default: \"2026-12-15\" }\n        \
             i: { from: \"{{ fields.i }}\", type: date, format: \"%d.%m.%Y\", map: { soon: \"15.12.2026\" } }\n",
        );
        assert_errors(
            &load_errors(&yaml),
            &[
                (
                    "m.yaml:10:31: error: route r, properties.a:",
                    "`format` applies to `type: date` and `type: datetime`; this value is `type: text`",
                ),
                ("m.yaml:11:62: error: route r, properties.b:", "`timezone` applies to"),
                (
                    "m.yaml:12:59: error: route r, properties.c:",
                    "`decimal` applies to `type: number`",
                ),
                ("m.yaml:13:58: error: route r, properties.d:", "must give a whole date"),
                (
                    "m.yaml:14:64: error: route r, properties.e:",
                    "did you mean \"Europe/Paris\"?",
                ),
                ("m.yaml:15:61: error: route r, properties.f:", "\".\" or \",\""),
                (
                    "m.yaml:16:58: error: route r, properties.g:",
                    "`format` must be a string",
                ),
                (
                    "m.yaml:17:79: error: route r, properties.h:",
                    "`default`: expected a value in the `format` \"%d.%m.%Y\"",
                ),
            ],
        );
    }
}
