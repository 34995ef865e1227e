//! Endpoints: the routes served at one `/hooks/{endpoint}`, which share one source, signature
//! scheme and signing key (a delivery is verified and decoded once), and pick a route by `match`.

use std::sync::Arc;

use super::diagnostic::{At, Report};
use super::route::Route;
use super::spec::{AuthSpec, RouteSpec};
use super::template::Scope;
use super::yaml::Loc;
use crate::domain::{Problem, Submission, Unmatched};
use crate::inbound::Source;
use crate::inbound::verify::{PublicUrl, Scheme};

/// The routes served at one `POST /hooks/{name}`, in file order. They share the source, the
/// signature scheme and the signing key, so the pipeline verifies and decodes a delivery once
/// per endpoint and then picks a route with [`Endpoint::select`].
#[derive(Debug)]
pub struct Endpoint {
    name: String,
    source: Source,
    signature: Option<Scheme>,
    signing_secret: Option<String>,
    public_url: Option<PublicUrl>,
    routes: Vec<Arc<Route>>,
}

impl Endpoint {
    /// The endpoint's name, as in `/hooks/{name}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of sender every route of this endpoint serves: how its body is normalised.
    pub fn source(&self) -> Source {
        self.source
    }

    /// How deliveries are authenticated; `None` means unsigned (`signature: none`, or a
    /// `json`/`form` route without `signature`), and `check` warns about it.
    pub fn signature(&self) -> Option<Scheme> {
        self.signature
    }

    /// The key under `signing` in the secret that holds the signing secret; `Some` exactly
    /// when [`Endpoint::signature`] is.
    pub fn signing_secret(&self) -> Option<&str> {
        self.signing_secret.as_deref()
    }

    /// The URL the provider calls, when the mapping declares it (`public_url:`, hubspot-v3 only): URL
    /// signatures are checked against it instead of the URL rebuilt from the event.
    pub fn public_url(&self) -> Option<&PublicUrl> {
        self.public_url.as_ref()
    }

    /// The routes served here, in file order (the order [`Endpoint::select`] tries them).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|r| &**r)
    }

    /// The first route whose `match` is truthy (or that has none). `Ok(None)` = no route
    /// matched (the pipeline answers 200 ignored). A `match` that fails to evaluate is a
    /// Problem (field `match`, code `match_error`, naming the route) and stops selection:
    /// a later route is not tried, since the failing one might have been meant to match.
    pub fn select(&self, submission: &Submission) -> Result<Option<&Route>, Vec<Problem>> {
        if let [only] = self.routes.as_slice()
            && !only.has_condition()
        {
            return Ok(Some(only));
        }
        let scope = Scope::new(submission);
        for route in &self.routes {
            match route.matches(&scope) {
                Ok(true) => return Ok(Some(route)),
                Ok(false) => {}
                Err(problem) => return Err(vec![problem]),
            }
        }
        Ok(None)
    }

    /// For a delivery [`Endpoint::select`] found no route for: each route's `match` and what the
    /// paths it reads held (see [`Unmatched`]), in file order, for the `ignored` answer.
    pub fn unmatched(&self, submission: &Submission) -> Vec<Unmatched> {
        let scope = Scope::new(submission);
        self.routes.iter().filter_map(|route| route.unmatched(&scope)).collect()
    }
}

/// Groups compiled routes by endpoint, in file order of each endpoint's first route. Only
/// called when [`check`] found nothing wrong, so the routes of one endpoint agree.
pub(crate) fn group(routes: Vec<Route>) -> (Vec<Arc<Route>>, Vec<Endpoint>) {
    let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for route in &routes {
        match endpoints.iter_mut().find(|e| e.name == route.endpoint()) {
            Some(endpoint) => endpoint.routes.push(Arc::clone(route)),
            None => endpoints.push(Endpoint {
                name: route.endpoint().to_owned(),
                source: route.source(),
                signature: route.scheme(),
                signing_secret: route.signing_secret().map(|(key, _)| key.clone()),
                public_url: route.public_url().cloned(),
                routes: vec![Arc::clone(route)],
            }),
        }
    }
    (routes, endpoints)
}

/// Checks the routes of each endpoint against each other: the same source, scheme and signing
/// key as the endpoint's first route, and no route after one without `match` (it would never
/// be reached). Works on the spec, so that these errors come together with all others; parts
/// that had errors of their own are not compared.
pub(crate) fn check(routes: &[RouteSpec], report: &mut Report) {
    let mut groups: Vec<(&str, Vec<&RouteSpec>)> = Vec::new();
    for route in routes {
        let Some((endpoint, _)) = &route.endpoint else {
            continue;
        };
        match groups.iter_mut().find(|(name, _)| name == endpoint) {
            Some((_, members)) => members.push(route),
            None => groups.push((endpoint, vec![route])),
        }
    }
    for (endpoint, members) in &groups {
        let Some((first, rest)) = members.split_first() else {
            continue;
        };
        for route in rest {
            let differences = differences(first, route);
            if differences.is_empty() {
                continue;
            }
            let loc = route.endpoint.as_ref().map_or(route.loc, |(_, loc)| *loc);
            report.error(
                At::route(&route.name).field("endpoint"),
                loc,
                format!(
                    "shares /hooks/{endpoint} with route {}{} but {}: the routes of one endpoint are verified \
                     and decoded once, so their source, signature, signing_secret and public_url must be the same",
                    first.name,
                    on_line(first.loc),
                    differences.join(", and ")
                ),
            );
        }
        let Some(position) = members.iter().position(|r| r.condition.is_none()) else {
            continue;
        };
        let Some(taker) = members.get(position) else {
            continue;
        };
        for route in members.iter().skip(position + 1) {
            report.error(
                At::route(&route.name),
                route.loc,
                format!(
                    "is never reached: route {}{} comes before it on /hooks/{endpoint} and has no `match:`, so it \
                     takes every delivery; give route {} a `match:` or move it after the others",
                    taker.name,
                    on_line(taker.loc),
                    taker.name
                ),
            );
        }
    }
}

/// Warns at each endpoint that shares its signing key with an earlier one, unless every endpoint
/// sharing it uses a scheme that signs the URL ([`Scheme::signs_url`]): the signature then proves
/// the sender but not which endpoint it meant, so a delivery signed for either is accepted by both
/// (and mapped by the other's routes).
pub(crate) fn check_shared_keys(routes: &[RouteSpec], report: &mut Report) {
    /// An endpoint using a key: its name, its first route naming the key, the scheme, where.
    type User<'a> = (&'a str, &'a RouteSpec, Scheme, Loc);
    let mut by_key: Vec<(&str, Vec<User<'_>>)> = Vec::new();
    for route in routes {
        let (Some((endpoint, _)), Some(auth)) = (&route.endpoint, &route.auth) else {
            continue;
        };
        let (Some(scheme), Some((key, loc))) = (auth.scheme, &auth.signing_secret) else {
            continue;
        };
        let users = match by_key.iter_mut().find(|(k, _)| k == key) {
            Some((_, users)) => users,
            None => {
                by_key.push((key, Vec::new()));
                match by_key.last_mut() {
                    Some((_, users)) => users,
                    None => continue,
                }
            }
        };
        if !users.iter().any(|(e, ..)| e == endpoint) {
            users.push((endpoint, route, scheme, *loc));
        }
    }
    for (key, users) in &by_key {
        // Only a pair of which both schemes sign the URL is safe: a signature over the body (or over
        // the same material under another encoding, as Typeform's and Tally's) made for one endpoint
        // can be presented at the other.
        for (i, (endpoint, route, scheme, loc)) in users.iter().enumerate() {
            let earlier = users.get(..i).unwrap_or_default();
            let Some((first_endpoint, first, first_scheme, _)) = earlier
                .iter()
                .find(|(_, _, s, _)| !(s.signs_url() && scheme.signs_url()))
            else {
                continue;
            };
            let unsigned = if scheme.signs_url() { first_scheme } else { scheme };
            report.warning(
                At::route(&route.name).field("signing_secret"),
                *loc,
                format!(
                    "/hooks/{endpoint} shares the signing key {key:?} with /hooks/{first_endpoint} (route {}{}), and \
                     the {unsigned} scheme does not sign the URL: a signature made for one endpoint may be valid at \
                     the other; give each endpoint its own key",
                    first.name,
                    on_line(first.loc),
                ),
            );
        }
    }
}

/// What `route` has differently from `first` (compared only where both are known).
fn differences(first: &RouteSpec, route: &RouteSpec) -> Vec<String> {
    let mut found = Vec::new();
    let theirs = &first.name;
    if let (Some(a), Some(b)) = (first.source, route.source)
        && a != b
    {
        found.push(format!("its source is {b} where route {theirs}'s is {a}"));
    }
    if let (Some(a), Some(b)) = (&first.auth, &route.auth) {
        if a.scheme != b.scheme {
            found.push(format!(
                "its signature is {} where route {theirs}'s is {}",
                scheme_name(b.scheme),
                scheme_name(a.scheme)
            ));
        }
        let key = |auth: &AuthSpec| auth.signing_secret.as_ref().map(|(k, _)| k.clone());
        if key(a) != key(b) {
            found.push(format!(
                "its signing_secret is {} where route {theirs}'s is {}",
                key_name(key(b)),
                key_name(key(a))
            ));
        }
        if a.public_url != b.public_url {
            let url = |u: &Option<PublicUrl>| u.as_ref().map_or_else(|| "not set".to_owned(), |u| format!("{u}"));
            found.push(format!(
                "its public_url is {} where route {theirs}'s is {}",
                url(&b.public_url),
                url(&a.public_url)
            ));
        }
    }
    found
}

fn scheme_name(scheme: Option<Scheme>) -> &'static str {
    scheme.map_or("none", Scheme::as_str)
}

fn key_name(key: Option<String>) -> String {
    key.map_or_else(|| "not set".to_owned(), |k| format!("{k:?}"))
}

fn on_line(loc: Loc) -> String {
    loc.line.map(|line| format!(" (line {line})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::mapping::Mapping;

    fn shared_key_warnings(yaml: &str) -> Vec<(Option<String>, String)> {
        let mapping = Mapping::from_yaml(yaml, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
        mapping
            .warnings()
            .iter()
            .filter(|w| w.message.contains("shares the signing key"))
            .map(|w| (w.route.clone(), w.message.clone()))
            .collect()
    }

    fn routes(pairs: &[(&str, &str, &str, &str)]) -> String {
        let mut yaml = String::from("version: 1\nroutes:\n");
        for (name, source, signature, key) in pairs {
            yaml.push_str(&format!(
                "  {name}:\n    source: {source}\n    signature: {signature}\n    signing_secret: {key}\n    \
                 deal: {{ pipeline: default, dealstage: s }}\n"
            ));
        }
        yaml
    }

    #[test]
    fn endpoints_sharing_a_key_under_a_scheme_that_does_not_sign_the_url_are_warned_about() {
        type Route<'a> = (&'a str, &'a str, &'a str, &'a str);
        let cases: [(&str, Vec<Route<'_>>, Vec<&str>); 7] = [
            (
                "two typeform endpoints, one key",
                vec![("a", "typeform", "typeform", "k"), ("b", "typeform", "typeform", "k")],
                vec!["b"],
            ),
            (
                "three token endpoints, one key",
                vec![
                    ("a", "jotform", "token", "k"),
                    ("b", "jotform", "token", "k"),
                    ("c", "jotform", "token", "k"),
                ],
                vec!["b", "c"],
            ),
            (
                "one key under two schemes",
                vec![("a", "typeform", "typeform", "k"), ("b", "tally", "tally", "k")],
                vec!["b"],
            ),
            (
                "hubspot-v3 signs the URL",
                vec![("a", "hubspot", "hubspot-v3", "k"), ("b", "hubspot", "hubspot-v3", "k")],
                vec![],
            ),
            (
                "hubspot-v3 and a body-only scheme",
                vec![("a", "hubspot", "hubspot-v3", "k"), ("b", "github", "github", "k")],
                vec!["b"],
            ),
            (
                "a body-only scheme, then hubspot-v3 routes: only the pairs with the body-only one",
                vec![
                    ("a", "typeform", "typeform", "k"),
                    ("b", "hubspot", "hubspot-v3", "k"),
                    ("c", "hubspot", "hubspot-v3", "k"),
                ],
                vec!["b", "c"],
            ),
            (
                "a key each",
                vec![("a", "typeform", "typeform", "k1"), ("b", "typeform", "typeform", "k2")],
                vec![],
            ),
        ];
        for (row, pairs, warned) in cases {
            let got = shared_key_warnings(&routes(&pairs));
            let routes: Vec<&str> = got.iter().filter_map(|(r, _)| r.as_deref()).collect();
            assert_eq!(routes, warned, "{row}: {got:?}");
            for (_, message) in &got {
                assert!(
                    message.contains("/hooks/a") && message.contains("\"k\""),
                    "{row}: {message}"
                );
                assert!(message.contains("does not sign the URL"), "{row}: {message}");
                assert!(!message.contains("hubspot-v3 scheme does not"), "{row}: {message}");
            }
        }
    }

    #[test]
    fn routes_of_one_endpoint_share_its_key_without_a_warning() {
        let yaml = r#"version: 1
routes:
  a:
    source: typeform
    endpoint: tf
    signing_secret: k
    match: fields.x == 1
    deal: { pipeline: default, dealstage: s }
  b:
    source: typeform
    endpoint: tf
    signing_secret: k
    deal: { pipeline: default, dealstage: s }
"#;
        assert!(shared_key_warnings(yaml).is_empty());
    }

    #[test]
    fn the_showcase_mapping_shares_no_key_between_endpoints() {
        assert!(shared_key_warnings(include_str!("../../examples/showcase/mapping.yaml")).is_empty());
    }
}
