//! A route's endpoint, signature scheme, signing key, public URL and `match`.

use std::str::FromStr;

use super::*;

/// `endpoint:`: a name for `/hooks/{name}`, with the same rule as route names.
pub(crate) fn read_endpoint(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let NodeKind::Str(name) = &node.kind else {
        let found = node.kind.describe();
        report.error(at, node.loc, format!("expected an endpoint name, found {found}"));
        return None;
    };
    match check_url_name("endpoint", name) {
        Ok(()) => Some(name.clone()),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

/// `signature` and `signing_secret`, read each on its own and then checked together against
/// the source's default scheme. `None` where something was wrong (reported here).
pub(crate) fn read_auth(
    entries: &[(Key, Node)],
    key: &Key,
    source: Option<Source>,
    at: At<'_>,
    report: &mut Report,
) -> Option<AuthSpec> {
    let signature = find(entries, "signature").map(|(_, node)| (read_signature(node, at, report), node.loc));
    let secret = find(entries, "signing_secret").map(|(_, node)| (read_signing_key(node, at, report), node.loc));
    let (scheme, explicit) = match signature {
        Some((Some(scheme), loc)) => (scheme, Some(loc)),
        Some((None, _)) => return None,
        // Unknown source: already reported, and there is no default to check against.
        None => (Scheme::default_for(source?), None),
    };
    let secret = match secret {
        Some((Some(name), loc)) => Some((name, loc)),
        Some((None, _)) => return None,
        None => None,
    };
    match (scheme, &secret) {
        (Some(_), Some(_)) => {}
        (Some(scheme), None) => {
            report.error(
                at,
                key.loc,
                format!(
                    "verifies {scheme} signatures and needs `signing_secret: <key under signing in the secret>`, \
                     or `signature: none` to accept unsigned deliveries"
                ),
            );
            return None;
        }
        (None, Some((_, loc))) => {
            // Without an explicit `signature`, the source is known (its default was looked up).
            let message = match source.filter(|_| explicit.is_none()) {
                None => "`signing_secret` is set but `signature: none` accepts unsigned deliveries; remove one of them"
                    .to_owned(),
                Some(source) => format!(
                    "{source} routes are unsigned unless `signature:` names a scheme ({}); add one or remove \
                     `signing_secret`",
                    known_schemes()
                ),
            };
            report.error(at.field("signing_secret"), *loc, message);
            return None;
        }
        (None, None) => report.warning(
            at.field("signature"),
            explicit.unwrap_or(key.loc),
            "accepts unsigned deliveries: anyone who knows the URL can create deals (if the sender signs its \
             requests, set `signature:` and `signing_secret:`)",
        ),
    }
    let public_url = match find(entries, "public_url") {
        None => None,
        Some((_, node)) => Some(read_public_url(node, scheme, at, report)?),
    };
    Some(AuthSpec {
        scheme,
        signing_secret: secret,
        public_url,
    })
}

/// `public_url:`: an absolute URL (see [`PublicUrl::parse`]), only where the scheme signs the URL: elsewhere
/// it would be read by nothing, which is an error rather than a silent no-op.
pub(crate) fn read_public_url(
    node: &Node,
    scheme: Option<Scheme>,
    at: At<'_>,
    report: &mut Report,
) -> Option<PublicUrl> {
    let at = at.field("public_url");
    let NodeKind::Str(text) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected the URL the provider calls, found {found}"),
        );
        return None;
    };
    if scheme != Some(Scheme::HubSpotV3) {
        report.error(
            at,
            node.loc,
            format!(
                "only a scheme that signs the URL reads `public_url` (hubspot-v3); this route's is {}: remove it",
                scheme.map_or("none", Scheme::as_str)
            ),
        );
        return None;
    }
    match PublicUrl::parse(text) {
        Ok(url) => Some(url),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

pub(crate) fn known_schemes() -> String {
    Scheme::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// `signature:`: a scheme name or `none`. `Some(None)` is `none`; `None` an error.
pub(crate) fn read_signature(node: &Node, at: At<'_>, report: &mut Report) -> Option<Option<Scheme>> {
    let at = at.field("signature");
    match &node.kind {
        NodeKind::Str(s) if s == "none" => Some(None),
        NodeKind::Str(s) => match Scheme::from_str(s) {
            Ok(scheme) => Some(Some(scheme)),
            Err(unknown) => {
                report.error(at, node.loc, unknown.to_string());
                None
            }
        },
        other => {
            report.error(
                at,
                node.loc,
                format!(
                    "expected a signature scheme ({}) or `none`, found {}",
                    known_schemes(),
                    other.describe()
                ),
            );
            None
        }
    }
}

/// `signing_secret:`: the name of a key under `signing` in the secret.
pub(crate) fn read_signing_key(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let at = at.field("signing_secret");
    let NodeKind::Str(name) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected the name of a key under `signing` in the secret, found {found}"),
        );
        return None;
    };
    match check_signing_key(name) {
        Ok(()) => Some(name.clone()),
        Err(why) => {
            report.error(at, node.loc, why);
            None
        }
    }
}

/// `match:`: a Jinja expression without braces. Compiled later, in `route.rs`.
pub(crate) fn read_match(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let NodeKind::Str(expr) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected an expression such as `fields.form_id == \"abc\"`, found {found}"),
        );
        return None;
    };
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        report.error(at, node.loc, "empty `match:`; leave the key out to take every delivery");
        return None;
    }
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        report.error(
            at,
            node.loc,
            format!("`match` is an expression without `{{{{ }}}}`: write `{}`", inner.trim()),
        );
        return None;
    }
    Some(expr.clone())
}

/// `for_each:`: a Jinja expression without braces whose value is the list of items, one deal each
/// (`fields.orders`). Compiled later, in `route.rs`.
pub(crate) fn read_for_each(node: &Node, at: At<'_>, report: &mut Report) -> Option<String> {
    let NodeKind::Str(expr) = &node.kind else {
        let found = node.kind.describe();
        report.error(
            at,
            node.loc,
            format!("expected an expression giving a list, such as `fields.orders`, found {found}"),
        );
        return None;
    };
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        report.error(
            at,
            node.loc,
            "empty `for_each:`; leave the key out for one deal per delivery",
        );
        return None;
    }
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        report.error(
            at,
            node.loc,
            format!(
                "`for_each` is an expression without `{{{{ }}}}`: write `{}`",
                inner.trim()
            ),
        );
        return None;
    }
    Some(expr.clone())
}
