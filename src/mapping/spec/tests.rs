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
