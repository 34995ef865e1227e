//! `dealhook init`: a starter mapping and a secret template for exactly the providers asked for.
//! Never overwrites a file unless told to (`--force`); never writes a real key (placeholders, or a
//! fresh random token for the schemes whose key the user invents).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::inbound::Source;

/// The route `init` writes for a provider: its name (also its endpoint and its signing key's name),
/// and its YAML block (indented under `routes:`).
struct Starter {
    name: &'static str,
    block: &'static str,
    /// The secret template's placeholder for the signing key, or `None` when the key is one the user
    /// invents (the `token` scheme): then `init` writes a fresh random token.
    placeholder: Option<&'static str>,
}

/// The source of the route written when no provider is given: a plain HTML form.
pub const DEFAULT_SOURCE: Source = Source::Form;

fn starter(source: Source) -> Starter {
    // Exhaustive on purpose: a new Source must get a starter route.
    match source {
        Source::Form => Starter {
            name: "website-form",
            block: r#"  website-form:                  # POST /hooks/website-form?token=<the secret's signing.website-form>
    source: form                 # an HTML form (urlencoded or multipart): `fields` are its inputs by name
    signature: token             # a form cannot sign: the URL's ?token= must equal the key
                                 # (it is in the page: it stops scanners, not readers; docs/providers.md)
    signing_secret: website-form
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: { from: "Website form: {{ fields.company or fields.email }}", required: true }
        description: "{{ fields.message }}"
"#,
            placeholder: None,
        },
        Source::Json => Starter {
            name: "json-webhook",
            block: r#"  json-webhook:                  # POST /hooks/json-webhook?token=<the secret's signing.json-webhook>
    source: json                 # any JSON object: `fields` is the body
    signature: token             # the URL's ?token= must equal the key
    signing_secret: json-webhook
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: { from: "Webhook: {{ fields.company or fields.email }}", required: true }
        description: "{{ fields.message }}"
"#,
            placeholder: None,
        },
        Source::Typeform => Starter {
            name: "typeform",
            block: r#"  typeform:                      # POST /hooks/typeform
    source: typeform             # `fields`: each answer by its field `ref` and id, hidden fields, form_id
    signing_secret: typeform     # Typeform: Connect → Webhooks → Edit → Secret
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Typeform {{ fields.form_id }}: {{ submission.id }}"
"#,
            placeholder: Some("REPLACE_WITH_THE_TYPEFORM_WEBHOOK_SECRET"),
        },
        Source::Tally => Starter {
            name: "tally",
            block: r#"  tally:                         # POST /hooks/tally
    source: tally                # `fields`: each question by key and by label, form_id, form_name
    signing_secret: tally        # Tally: Integrations → Webhooks → Signing secret
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "{{ fields.form_name }}: {{ submission.id }}"
"#,
            placeholder: Some("REPLACE_WITH_THE_TALLY_SIGNING_SECRET"),
        },
        Source::Webflow => Starter {
            name: "webflow",
            block: r#"  webflow:                       # POST /hooks/webflow
    source: webflow              # `fields`: the form's inputs by name, form_name, site_id, form_id
    signing_secret: webflow      # Webflow signs webhooks made through its API (the app's client secret)
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "Webflow {{ fields.form_name }}: {{ submission.id }}"
"#,
            placeholder: Some("REPLACE_WITH_THE_WEBFLOW_CLIENT_SECRET"),
        },
        Source::Jotform => Starter {
            name: "jotform",
            block: r#"  jotform:                       # POST /hooks/jotform?token=<the secret's signing.jotform>
    source: jotform              # `fields`: each question by name, form_id, form_title
    signing_secret: jotform      # Jotform cannot sign: the webhook URL carries the key as ?token=
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "{{ fields.form_title }}: {{ submission.id }}"
"#,
            placeholder: None,
        },
        Source::Stripe => Starter {
            name: "stripe",
            block: r#"  stripe:                        # POST /hooks/stripe
    source: stripe               # `fields` for Checkout Sessions: email, name, amount_total, currency
    signing_secret: stripe       # Stripe: Developers → Webhooks → the endpoint's whsec_… secret
    match: submission.event_type == "checkout.session.completed"   # other events: 200 ignored
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: closedwon
      properties:
        dealname: "Checkout: {{ fields.email }}"
        amount: { from: "{{ fields.amount_total }}", type: number }   # major units
        deal_currency_code: "{{ fields.currency | upper }}"
"#,
            placeholder: Some("whsec_REPLACE_WITH_THE_STRIPE_SIGNING_SECRET"),
        },
        Source::StandardWebhooks => Starter {
            name: "standard-webhooks",
            block: r#"  standard-webhooks:             # POST /hooks/standard-webhooks
    source: standard-webhooks    # Svix and other Standard Webhooks senders: `fields` is the body and data's keys
    signing_secret: standard-webhooks
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "{{ submission.event_type }} {{ submission.id }}"
"#,
            placeholder: Some("whsec_REPLACE_WITH_THE_SENDERS_SIGNING_SECRET"),
        },
        Source::GitHub => Starter {
            name: "github",
            block: r#"  github:                        # POST /hooks/github
    source: github               # submission.event_type is X-GitHub-Event plus .action
    signing_secret: github       # GitHub: Settings → Webhooks → Secret
    match: submission.event_type == "sponsorship.created"   # other events: 200 ignored
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: closedwon
      properties:
        dealname: "GitHub sponsor: {{ fields.sponsorship.sponsor.login }}"
        amount: { from: "{{ fields.sponsorship.tier.monthly_price_in_dollars }}", type: number }
"#,
            placeholder: Some("REPLACE_WITH_THE_GITHUB_WEBHOOK_SECRET"),
        },
        Source::HubSpot => Starter {
            name: "hubspot",
            block: r#"  hubspot:                       # POST /hooks/hubspot
    source: hubspot              # HubSpot app webhooks: `fields` are the first event's keys
    signing_secret: hubspot      # the app's client secret
    match: submission.event_type == "contact.creation"   # other events: 200 ignored
    hubspot: { api: "2026-03" }  # HubSpot's date-versioned API (v1 and v3 paths end in September 2027)
    deal:
      pipeline: default
      dealstage: appointmentscheduled
      properties:
        dealname: "New contact {{ fields.objectId }}"
      associations:
        contacts: "{{ fields.objectId }}"   # HubSpot's own id, from its signed body
"#,
            placeholder: Some("REPLACE_WITH_THE_HUBSPOT_APP_CLIENT_SECRET"),
        },
    }
}

/// What every placeholder of the secret template holds: `check --secret` refuses a secret that still has one.
pub const PLACEHOLDER_MARK: &str = "REPLACE_WITH_";

/// The placeholder written for the HubSpot credential in the secret template.
pub const HUBSPOT_PLACEHOLDER: &str = "REPLACE_WITH_YOUR_HUBSPOT_SERVICE_KEY_OR_PRIVATE_APP_TOKEN";

/// The providers asked for, in order, each once; none asked for is [`DEFAULT_SOURCE`].
fn chosen(providers: &[Source]) -> Vec<Source> {
    let mut chosen: Vec<Source> = Vec::with_capacity(providers.len());
    for &source in providers {
        if !chosen.contains(&source) {
            chosen.push(source);
        }
    }
    if chosen.is_empty() {
        chosen.push(DEFAULT_SOURCE);
    }
    chosen
}

/// The starter mapping for `providers` (none: a plain form route), as `init` writes it. The
/// repository's own `mapping.yaml` is this text for no provider (a test keeps them equal).
pub fn starter_mapping(providers: &[Source]) -> String {
    let chosen = chosen(providers);
    let names: Vec<&str> = chosen.iter().map(|s| s.as_str()).collect();
    let mut text = format!(
        "# dealhook mapping, written by `dealhook init` for: {}.\n\
         # Deployed as the function's mapping when it is the repository's mapping.yaml (see README).\n\
         # Each route verifies its deliveries with the key of the same name under \"signing\" in the secret.\n\
         # Check it:  dealhook check --mapping mapping.yaml --secret secret.json\n\
         # Try it:    dealhook transform --mapping mapping.yaml --endpoint {} --body YOUR-BODY.json --fields\n\
         # The language: docs/mapping.md; a route for every provider: examples/showcase/mapping.yaml.\n\
         version: 1\n\
         routes:\n",
        names.join(", "),
        starter(chosen.first().copied().unwrap_or(DEFAULT_SOURCE)).name,
    );
    for (i, source) in chosen.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(starter(*source).block);
    }
    text
}

/// The secret template for `providers`: the HubSpot credential placeholder and exactly the signing
/// keys their routes name. A key the user invents (the `token` scheme) is `token` fresh random hex;
/// the others are placeholders to replace with the provider's secret.
pub fn secret_template(providers: &[Source], token: &mut dyn FnMut() -> String) -> String {
    let mut signing = serde_json::Map::new();
    for source in chosen(providers) {
        let starter = starter(source);
        let value = starter.placeholder.map_or_else(&mut *token, str::to_owned);
        signing.insert(starter.name.to_owned(), value.into());
    }
    let secret = serde_json::json!({
        "hubspot": { "accessToken": HUBSPOT_PLACEHOLDER },
        "signing": signing,
    });
    serde_json::to_string_pretty(&secret).unwrap_or_default() + "\n"
}

/// A fresh random token (64 hex characters, from two v4 UUIDs: 244 random bits) for a key the user
/// invents and then puts in the sender's URL.
pub fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A file to write exists and `--force` was not given.
    #[error("{} exists: nothing was written (use --force to replace it, or --dir for another directory)", .0.display())]
    Exists(PathBuf),
    /// The directory or a file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What `init` wrote: the mapping's and the secret's paths, and the route names.
#[derive(Debug)]
pub struct Written {
    /// `DIR/mapping.yaml`.
    pub mapping: PathBuf,
    /// `DIR/secret.json`.
    pub secret: PathBuf,
    /// The routes (= endpoints = signing key names), in order.
    pub routes: Vec<&'static str>,
    /// The routes whose key was generated (the `token` scheme: the key goes in the sender's URL).
    pub tokens: Vec<&'static str>,
}

/// Writes `dir/mapping.yaml` and `dir/secret.json` for `providers`. Both are checked first: unless
/// `force`, an existing one means nothing is written ([`InitError::Exists`]).
pub fn init(dir: &Path, providers: &[Source], force: bool) -> Result<Written, InitError> {
    let mapping = dir.join("mapping.yaml");
    let secret = dir.join("secret.json");
    if !force && let Some(existing) = [&mapping, &secret].into_iter().find(|p| p.exists()) {
        return Err(InitError::Exists(existing.clone()));
    }
    std::fs::create_dir_all(dir).map_err(|source| InitError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| InitError::Write {
            path: path.to_owned(),
            source,
        })
    };
    write(&mapping, starter_mapping(providers))?;
    write(&secret, secret_template(providers, &mut random_token))?;
    Ok(Written {
        mapping,
        secret,
        routes: chosen(providers).into_iter().map(|s| starter(s).name).collect(),
        tokens: chosen(providers)
            .into_iter()
            .map(starter)
            .filter(|s| s.placeholder.is_none())
            .map(|s| s.name)
            .collect(),
    })
}

/// The next steps `init` prints after writing `written`.
pub fn next_steps(written: &Written) -> String {
    let mapping = written.mapping.display();
    let secret = written.secret.display();
    let first = written.routes.first().copied().unwrap_or("website-form");
    let mut out = String::new();
    let _ = writeln!(out, "wrote {mapping} (routes: {})", written.routes.join(", "));
    let _ = writeln!(
        out,
        "wrote {secret} (the HubSpot credential and the signing keys {}): keep it out of git",
        written.routes.join(", ")
    );
    let _ = writeln!(out, "\nNext:");
    let _ = writeln!(
        out,
        "  1. put your HubSpot credential and each provider's signing secret in {secret}"
    );
    for route in &written.tokens {
        let _ = writeln!(
            out,
            "     ({route}: a key was generated; the sender posts to …/hooks/{route}?token=<that key>)"
        );
    }
    let _ = writeln!(out, "  2. dealhook check --mapping {mapping} --secret {secret}");
    let _ = writeln!(
        out,
        "  3. dealhook transform --mapping {mapping} --endpoint {first} --body YOUR-BODY.json --fields\n     \
         (what your templates see; without --fields, the HubSpot request it would make)"
    );
    let _ = writeln!(
        out,
        "  4. deploy: make it the repository's mapping.yaml (embedded by `sam build`) or the template's\n     \
         MappingYaml parameter, store {secret} in Secrets Manager, then sam build && sam deploy --guided\n     \
         (docs/deploy.md)"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;

    #[test]
    fn every_source_has_a_starter_that_compiles_without_warnings() {
        for &source in Source::ALL {
            let text = starter_mapping(&[source]);
            let mapping = Mapping::from_yaml(&text, "init").unwrap_or_else(|e| panic!("{source}: {e}"));
            assert!(mapping.warnings().is_empty(), "{source}: {:?}", mapping.warnings());
            assert!(mapping.legacy_api_warnings().is_empty(), "{source}");
        }
    }

    #[test]
    fn every_starter_route_is_signed_and_its_key_is_in_the_secret_template() {
        for &source in Source::ALL {
            let mapping = Mapping::from_yaml(&starter_mapping(&[source]), "init").unwrap();
            let secret: serde_json::Value =
                serde_json::from_str(&secret_template(&[source], &mut || "tok".into())).unwrap();
            let keys: Vec<&String> = secret["signing"].as_object().unwrap().keys().collect();
            assert_eq!(keys, mapping.signing_keys(), "{source}");
            for endpoint in mapping.endpoints() {
                assert!(
                    endpoint.signature().is_some(),
                    "{source}: {} is unsigned",
                    endpoint.name()
                );
            }
            assert_eq!(secret["hubspot"]["accessToken"], HUBSPOT_PLACEHOLDER);
        }
    }

    #[test]
    fn providers_are_written_in_the_order_given_each_once() {
        let text = starter_mapping(&[Source::Webflow, Source::Stripe, Source::Webflow]);
        let mapping = Mapping::from_yaml(&text, "init").unwrap();
        let names: Vec<&str> = mapping.endpoints().map(|e| e.name()).collect();
        assert_eq!(names, ["webflow", "stripe"]);
        assert!(text.contains("written by `dealhook init` for: webflow, stripe."));
    }

    #[test]
    fn no_provider_is_the_plain_form_route_and_the_repositorys_mapping() {
        assert_eq!(starter_mapping(&[]), starter_mapping(&[Source::Form]));
        assert_eq!(
            include_str!("../../mapping.yaml"),
            starter_mapping(&[]),
            "the root mapping.yaml must be `dealhook init`'s starter (regenerate it with `dealhook init --force`)"
        );
        let embedded = Mapping::embedded().unwrap();
        assert_eq!(embedded.origin(), crate::mapping::EMBEDDED_ORIGIN);
        let names: Vec<&str> = embedded.endpoints().map(|e| e.name()).collect();
        assert_eq!(names, ["website-form"]);
    }

    #[test]
    fn a_token_key_is_generated_and_a_provider_key_is_a_placeholder() {
        let secret: serde_json::Value =
            serde_json::from_str(&secret_template(&[Source::Form, Source::Stripe], &mut random_token)).unwrap();
        let token = secret["signing"]["website-form"].as_str().unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            secret["signing"]["stripe"],
            "whsec_REPLACE_WITH_THE_STRIPE_SIGNING_SECRET"
        );
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let dir = std::env::temp_dir().join(format!("dealhook-init-{}", uuid::Uuid::new_v4()));
        init(&dir, &[Source::Webflow], false).unwrap();
        std::fs::write(dir.join("mapping.yaml"), "mine").unwrap();
        let err = init(&dir, &[Source::Stripe], false).unwrap_err();
        assert!(
            matches!(&err, InitError::Exists(p) if p.ends_with("mapping.yaml")),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(dir.join("mapping.yaml")).unwrap(), "mine");
        // Only the secret present: still nothing written.
        std::fs::remove_file(dir.join("mapping.yaml")).unwrap();
        assert!(
            matches!(init(&dir, &[Source::Stripe], false), Err(InitError::Exists(p)) if p.ends_with("secret.json"))
        );
        assert!(!dir.join("mapping.yaml").exists());
        let written = init(&dir, &[Source::Stripe], true).unwrap();
        assert_eq!(written.routes, ["stripe"]);
        assert!(
            std::fs::read_to_string(dir.join("mapping.yaml"))
                .unwrap()
                .contains("source: stripe")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
