//! The `dealhook` command line: `check` a mapping, `transform` an event into the HubSpot request,
//! `invoke` the real handler on an event, `replay` dead letters. Results on stdout, notes and logs on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Env, Mode};
use crate::inbound::{Delivery, Invocation};
use crate::mapping::{Mapping, Severity};
use crate::outcome::Outcome;

mod body;
pub mod init;
mod online;

/// Exit code: success (mapping valid, request built, deal created or dry run).
pub const EXIT_OK: u8 = 0;
/// Exit code: could not run (invalid mapping, unreadable or invalid event, bad configuration).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the delivery was dead-lettered (HTTP 202).
pub const EXIT_DEAD_LETTERED: u8 = 3;
/// Exit code: the delivery was rejected (HTTP 4xx).
pub const EXIT_REJECTED: u8 = 4;
/// Exit code: the sender would have been asked to retry (HTTP 503, or 409 while in progress).
pub const EXIT_RETRY_LATER: u8 = 5;
/// Exit code: authenticated, but no route on the endpoint matched (HTTP 200 `ignored`).
pub const EXIT_IGNORED: u8 = 6;
/// Exit code: `check --online` could not read the portal (no credential, credential refused, scopes
/// missing, HubSpot unavailable), so nothing was checked.
pub const EXIT_PORTAL_UNREADABLE: u8 = 7;

/// dealhook: turn webhooks into HubSpot deals.
#[derive(Debug, Parser)]
#[command(name = "dealhook", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok · 1 could not run (bad mapping, event or configuration) · 2 usage · \
3 dead-lettered (202) · 4 rejected (4xx) · 5 retry later (503, 409) · 6 ignored (no route matched) · \
7 the portal could not be read (check --online)";

const CHECK_HELP: &str = "\
Environment:
  DEALHOOK_MAPPING, DEALHOOK_MAPPING_YAML   the mapping when neither MAPPING nor --mapping is given
                                            (else the embedded mapping.yaml)
  HUBSPOT_ACCESS_TOKEN, HUBSPOT_SECRET_ID   with --online: the HubSpot credential
  HUBSPOT_BASE_URL                          with --online: HubSpot's API (default https://api.hubapi.com)

Examples:
  dealhook check --mapping mapping.yaml --secret secret.json
  dealhook check --online --mapping mapping.yaml --json > check-online.json

Exit codes: 0 valid · 1 errors (or a signing key the secret lacks) · 2 usage · 7 the portal could not be read";

const TRANSFORM_HELP: &str = "\
Environment:
  DEALHOOK_MAPPING, DEALHOOK_MAPPING_YAML   the mapping when --mapping is not given (else the embedded one)
  HUBSPOT_ACCESS_TOKEN, HUBSPOT_SECRET_ID   a credential, to resolve pipeline, stage and option labels
                                            through the portal (nothing is ever sent); signing keys are
                                            read (and signatures verified) only with HUBSPOT_SECRET_ID
  HUBSPOT_BASE_URL                          the URL shown in the request (default https://api.hubapi.com)

Examples:
  dealhook transform --mapping mapping.yaml --endpoint website-form --body form.txt --fields
  dealhook transform --mapping mapping.yaml --endpoint webflow --body submission.json
  dealhook transform examples/showcase/events/website-quote.json --mapping examples/showcase/mapping.yaml

Exit codes: 0 request built (or fields shown) · 1 could not run (bad mapping, unreadable file) · 2 usage ·
3 it would be dead-lettered · 4 rejected (4xx) · 5 retry later · 6 ignored (no route's `match` holds)";

const INVOKE_HELP: &str = "\
Environment:
  DEALHOOK_MAPPING, DEALHOOK_MAPPING_YAML   the mapping when --mapping is not given (else the embedded one)
  HUBSPOT_SECRET_ID                         the secret (HubSpot credential and signing keys): signatures
                                            are verified and deals created; without it, or with
                                            DEALHOOK_DRY_RUN, a dry run
  HUBSPOT_ACCESS_TOKEN                      a HubSpot credential instead (signatures are then NOT verified)
  HUBSPOT_BASE_URL, DEALHOOK_DLQ_URL        HubSpot's API; the dead-letter queue (else printed on stderr)
  DEALHOOK_IDEMPOTENCY_TABLE, DEALHOOK_MODE, DEALHOOK_QUEUE_URL, AWS_*   as on Lambda (README: Configuration)

Examples:
  dealhook invoke events/website-form.json
  dealhook invoke --mapping mapping.yaml --endpoint website-form --body form.txt --query token=…
  dealhook invoke --raw examples/showcase/events/stripe.json --mapping examples/showcase/mapping.yaml

Exit codes: 0 created or dry run · 1 could not run · 2 usage · 3 dead-lettered (202) · 4 rejected (4xx) ·
5 retry later (503, 409; an SQS batch with failures) · 6 ignored (no route's `match` holds)";

const INIT_HELP: &str = "\
Writes DIR/mapping.yaml (one signed route per provider, each named after it; with no --provider, a
plain HTML form route whose URL carries ?token=) and DIR/secret.json (the HubSpot credential to fill in
and exactly the signing keys those routes name; a `token` key is generated). Nothing is overwritten
without --force. Keep secret.json out of git (the repository's .gitignore lists it).

Providers: form, json, typeform, tally, webflow, jotform, stripe, standard-webhooks, github, hubspot

Example:
  dealhook init --provider webflow --provider stripe --dir my-hooks

Exit codes: 0 written · 1 a file exists (nothing written) or could not be written · 2 usage";

const REPLAY_HELP: &str = "\
Environment:
  DEALHOOK_DLQ_URL            the queue read when --from is not given, and where new letters go
  DEALHOOK_MAPPING, DEALHOOK_MAPPING_YAML   the mapping when --mapping is not given (else the embedded one)
  HUBSPOT_SECRET_ID, HUBSPOT_ACCESS_TOKEN   the HubSpot credential (required unless --dry-run)
  HUBSPOT_BASE_URL, DEALHOOK_PAYLOAD_BUCKET, DEALHOOK_IDEMPOTENCY_TABLE, AWS_*

Example:
  dealhook replay --from https://sqs.eu-west-1.amazonaws.com/123456789012/dealhook-dlq --reason mapping_failed

Exit codes: 0 every letter replayed ended in a deal (or was ignored, or made before) · 1 could not run
(no queue, no credential, invalid mapping, the queue unreadable) · 2 usage · 3 some still fail, cannot
be read, or were kept because their deal may exist · 5 some were left for later";

/// `--mapping FILE`, on every subcommand that loads a mapping.
#[derive(Debug, clap::Args)]
struct MappingArg {
    /// The mapping file (default: $DEALHOOK_MAPPING, else $DEALHOOK_MAPPING_YAML, else the embedded
    /// mapping.yaml: the mapping the function would run).
    #[arg(long = "mapping", value_name = "FILE")]
    mapping: Option<PathBuf>,
}

/// The delivery `transform` and `invoke` run: a Lambda event file, or a raw body they make one of.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("delivery").required(true).args(["event", "body"])))]
struct DeliveryArgs {
    /// A Lambda event file (API Gateway HTTP API v2, REST v1, or function URL; `invoke`: also an SQS
    /// batch). For a body as the sender posts it, use --body and --endpoint instead.
    event: Option<PathBuf>,
    /// A raw request body (the JSON or form the sender posts), sent as POST /hooks/NAME.
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    body: Option<PathBuf>,
    /// With --body: the endpoint (the NAME of POST /hooks/NAME; `dealhook check` lists them).
    #[arg(long, value_name = "NAME", requires = "body")]
    endpoint: Option<String>,
    /// With --body: its Content-Type (default: application/json for a JSON body, else
    /// application/x-www-form-urlencoded).
    #[arg(long, value_name = "TYPE", requires = "body")]
    content_type: Option<String>,
    /// With --body: a request header, NAME:VALUE (repeat it), e.g. a provider's signature header.
    #[arg(long = "header", value_name = "NAME:VALUE", requires = "body")]
    headers: Vec<body::Header>,
    /// With --body: the query string, e.g. token=… for a route with `signature: token`.
    #[arg(long, value_name = "QUERY", requires = "body")]
    query: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a starter mapping and a secret template for the providers you name.
    #[command(after_help = INIT_HELP)]
    Init {
        /// A provider to write a route for (repeat it); none: a plain HTML form.
        #[arg(long = "provider", value_name = "PROVIDER", value_parser = parse_source)]
        providers: Vec<crate::inbound::Source>,
        /// The directory to write mapping.yaml and secret.json in (created if missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Replace mapping.yaml and secret.json if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Validate a mapping offline: every error with its line, route and property.
    ///
    /// With --online, compare it with the HubSpot portal instead (credential as for `invoke`:
    /// HUBSPOT_ACCESS_TOKEN, or the secret HUBSPOT_SECRET_ID names): properties the portal lacks (with
    /// a near name), read-only and calculated properties, constants (literals, `map:` targets,
    /// `default:`) that are not options of an enumeration or that its type cannot take, pipelines and
    /// stages that are neither ids nor labels or lie outside their pipeline, `type:` contradicting the
    /// property's type, `upsert_by` without unique values; contact and company properties of the
    /// association blocks likewise. Templates are not checked. Reads pipelines and deal properties
    /// (scope crm.objects.deals.read, or crm.schemas.deals.read), and contact or company properties
    /// when association blocks set some (crm.objects.contacts.read / crm.objects.companies.read, or
    /// the crm.schemas.* read scopes).
    #[command(after_help = CHECK_HELP)]
    Check {
        /// The mapping file (the same as --mapping).
        #[arg(value_name = "MAPPING", conflicts_with = "mapping")]
        file: Option<PathBuf>,
        #[command(flatten)]
        mapping: MappingArg,
        /// A file holding the secret's JSON: also check its HubSpot credential and that every signing key
        /// the routes name is there and usable by its scheme.
        #[arg(long, value_name = "FILE", conflicts_with = "online")]
        secret: Option<PathBuf>,
        /// Compare the mapping with the HubSpot portal (reads its pipelines and properties).
        #[arg(long)]
        online: bool,
        /// With --online: print the findings as one JSON document on stdout (for CI).
        #[arg(long, requires = "online")]
        json: bool,
    },
    /// Print the HubSpot request a delivery would produce, without sending anything.
    ///
    /// The delivery is a Lambda event file, or a raw body with --body FILE --endpoint NAME. With
    /// --fields, print instead what the route's templates see: `fields` (the provider's normaliser's
    /// output), `submission` and `raw`, and the route whose `match` holds.
    #[command(after_help = TRANSFORM_HELP)]
    Transform {
        #[command(flatten)]
        delivery: DeliveryArgs,
        #[command(flatten)]
        mapping: MappingArg,
        /// Print what the templates see (`fields`, `submission`, `raw`) instead of the request.
        #[arg(long)]
        fields: bool,
    },
    /// Run the real handler on a delivery and print its response.
    ///
    /// The delivery is a Lambda event file (HTTP, or an SQS batch for queue mode's worker), or a raw
    /// body with --body FILE --endpoint NAME. The response is printed with its body as JSON; --raw
    /// prints the exact Lambda response (the body a JSON string). Without HUBSPOT_SECRET_ID or
    /// HUBSPOT_ACCESS_TOKEN this is a dry run; without DEALHOOK_DLQ_URL a dead letter is printed on
    /// stderr instead of sent.
    #[command(after_help = INVOKE_HELP)]
    Invoke {
        #[command(flatten)]
        delivery: DeliveryArgs,
        #[command(flatten)]
        mapping: MappingArg,
        /// Print the Lambda response exactly as the function returns it (the body a JSON string).
        #[arg(long)]
        raw: bool,
    },
    /// Run dead letters again through the current mapping: a fixed mapping fixes old failures.
    ///
    /// Reads the dead-letter queue (and, for big letters, DEALHOOK_PAYLOAD_BUCKET), runs each letter's
    /// delivery as received (its signature is not checked again) through the mapping the function
    /// would run (--mapping, else DEALHOOK_MAPPING, else DEALHOOK_MAPPING_YAML, else the embedded one),
    /// with the HubSpot credential of HUBSPOT_SECRET_ID or HUBSPOT_ACCESS_TOKEN (required unless
    /// --dry-run) and HUBSPOT_BASE_URL. A letter that becomes a deal (or is ignored, or whose deal was
    /// made before) is deleted; one that fails again gets a new letter, with its new error, on
    /// DEALHOOK_DLQ_URL (else the --from queue) and the old one is deleted; the rest are made visible
    /// again. With DEALHOOK_IDEMPOTENCY_TABLE a letter runs under the key it was received with, so no
    /// deal is made twice; without it, letters whose deal may exist (outcome_unknown, or a deal id in
    /// hubspot.done) are kept unless --force.
    #[command(after_help = REPLAY_HELP)]
    Replay {
        /// The dead-letter queue's URL (default: $DEALHOOK_DLQ_URL).
        #[arg(long, value_name = "QUEUE_URL")]
        from: Option<String>,
        #[command(flatten)]
        mapping: MappingArg,
        /// Stop after N letters were run again (letters skipped or unreadable are not counted).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Show what would be sent: nothing is sent to HubSpot, no letter written or deleted.
        #[arg(long)]
        dry_run: bool,
        /// Only letters with this reason (mapping_failed, hubspot_rejected, …); repeat it or separate
        /// reasons with commas.
        #[arg(long, value_name = "REASON", value_delimiter = ',', value_parser = parse_reason)]
        reason: Vec<crate::domain::Reason>,
        /// Without DEALHOOK_IDEMPOTENCY_TABLE, replay letters whose deal may exist too (it may be made twice).
        #[arg(long)]
        force: bool,
        /// Print the summary as one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn parse_reason(name: &str) -> Result<crate::domain::Reason, String> {
    name.trim()
        .parse()
        .map_err(|e: crate::domain::UnknownReason| e.to_string())
}

fn parse_source(name: &str) -> Result<crate::inbound::Source, String> {
    name.trim().parse().map_err(|_| {
        let known: Vec<&str> = crate::inbound::Source::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown provider {name:?}; known: {}", known.join(", "))
    })
}

/// Parses the arguments and runs the command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    let code = match cli.command {
        Command::Init { providers, dir, force } => match init::init(&dir, &providers, force) {
            Ok(written) => {
                print!("{}", init::next_steps(&written));
                EXIT_OK
            }
            Err(e) => fail(&e),
        },
        Command::Check {
            file,
            mapping,
            online: true,
            json,
            ..
        } => online::check_online(file.or(mapping.mapping).as_deref(), json).await,
        Command::Check {
            file, mapping, secret, ..
        } => check(file.or(mapping.mapping).as_deref(), secret.as_deref()),
        Command::Transform {
            delivery,
            mapping,
            fields,
        } => transform(&delivery, mapping.mapping.as_deref(), fields).await,
        Command::Invoke { delivery, mapping, raw } => invoke(&delivery, mapping.mapping.as_deref(), raw).await,
        Command::Replay {
            from,
            mapping,
            limit,
            dry_run,
            reason,
            force,
            json,
        } => {
            let options = crate::replay::ReplayOptions {
                limit,
                reasons: (!reason.is_empty()).then_some(reason),
                force,
            };
            replay(from, mapping.mapping.as_deref(), dry_run, &options, json).await
        }
    };
    ExitCode::from(code)
}

/// The process environment, with `--mapping` (when given) in place of `DEALHOOK_MAPPING`.
fn env_with(mapping: Option<&Path>) -> Result<Env, u8> {
    let mut env = Env::from_process().map_err(|e| fail(&e))?;
    if let Some(path) = mapping {
        env.mapping_path = Some(path.to_owned());
    }
    Ok(env)
}

fn check(path: Option<&Path>, secret: Option<&Path>) -> u8 {
    let env = match Env::from_process() {
        Ok(env) => env,
        Err(e) => return fail(&e),
    };
    let (origin, text) = match env.mapping_text(path) {
        Ok(source) => source,
        Err(e) => return fail(&e),
    };
    eprintln!("dealhook: checking {}", mapping_source(path, &env, &origin));
    let loaded: Result<Mapping, config::ConfigError> = Mapping::from_yaml(&text, &origin).map_err(Into::into);
    match loaded {
        Ok(mapping) => {
            let legacy = mapping.legacy_api_warnings();
            for warning in mapping.warnings().iter().chain(&legacy) {
                eprintln!("{}", warning.in_file(mapping.origin()));
            }
            if let Some(code) = check_secret(&mapping, secret) {
                return code;
            }
            println!(
                "{origin}: ok, {} endpoint(s), {} warning(s)",
                mapping.endpoints().count(),
                mapping.warnings().len() + legacy.len()
            );
            for endpoint in mapping.endpoints() {
                let signature = endpoint
                    .signature()
                    .map_or("unsigned".to_owned(), |s| format!("{s} signature"));
                let routes: Vec<&str> = endpoint.routes().map(|r| r.name()).collect();
                println!(
                    "  POST /hooks/{} ({}, {signature}) → {}",
                    endpoint.name(),
                    endpoint.source(),
                    routes.join(", ")
                );
            }
            let keys = mapping.signing_keys();
            if !keys.is_empty() && secret.is_none() {
                println!(
                    "  signing keys the secret must hold under \"signing\": {}",
                    keys.join(", ")
                );
            }
            EXIT_OK
        }
        Err(config::ConfigError::Mapping(e)) => {
            let errors = e.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            for diagnostic in &e.diagnostics {
                eprintln!("{}", diagnostic.in_file(&e.origin));
            }
            eprintln!("{origin}: {errors} error(s)");
            EXIT_FAILED
        }
        Err(e) => fail(&e),
    }
}

/// Which mapping `check` reads, in words: the file given, `DEALHOOK_MAPPING`'s file,
/// `DEALHOOK_MAPPING_YAML`, or the copy built into this binary (with a note that the file on disk may
/// differ, and whether `./mapping.yaml` does).
fn mapping_source(path: Option<&Path>, env: &Env, origin: &str) -> String {
    if path.is_some() {
        return origin.to_owned();
    }
    if env.mapping_path.is_some() {
        return format!("{origin} (named by DEALHOOK_MAPPING)");
    }
    if env.mapping_yaml.is_some() {
        return "the mapping in the environment variable DEALHOOK_MAPPING_YAML".to_owned();
    }
    let on_disk = match std::fs::read_to_string("mapping.yaml") {
        Ok(text) if text == crate::mapping::embedded_text() => "; ./mapping.yaml is the same".to_owned(),
        Ok(_) => "; ./mapping.yaml DIFFERS from it: run `dealhook check mapping.yaml` to check the file, and rebuild \
                  (or set DEALHOOK_MAPPING) to run it"
            .to_owned(),
        Err(_) => String::new(),
    };
    format!(
        "{origin}: the mapping.yaml built into this binary when it was compiled, which may differ from the file \
         on disk (give a file: `dealhook check FILE`){on_disk}"
    )
}

/// With `--secret FILE`: fails on a secret with no HubSpot credential, on signing keys the secret lacks
/// (suggesting a near key name it has) and on keys a route's scheme cannot use (empty, a Standard
/// Webhooks key that is not `whsec_` + base64); warns about doubtful keys, keys no route uses and values
/// too short to be scrubbed by value. `Some(exit code)` when the check failed.
fn check_secret(mapping: &Mapping, secret: Option<&Path>) -> Option<u8> {
    let path = secret?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(fail(&format!("cannot read the secret file {}: {e}", path.display()))),
    };
    let credentials = match crate::credentials::Credentials::parse(&text) {
        Ok(credentials) => credentials,
        Err(e) => return Some(fail(&format!("{}: {e}", path.display()))),
    };
    for name in credentials.too_short_to_scrub() {
        eprintln!(
            "{}: warning: {name} is shorter than {} characters, too short to be scrubbed from dead letters and \
             logs by value; use a longer key",
            path.display(),
            crate::credentials::scrub::MIN_SCRUBBED_LEN
        );
    }
    let file = path.display();
    let mut failed = false;
    let placeholders = placeholder_paths(&text);
    for at in &placeholders {
        eprintln!(
            "{file}: error: {at} is still the placeholder `dealhook init` wrote: put the real value there \
             (docs/hubspot-credential.md for the HubSpot credential, docs/providers.md for signing keys)"
        );
        failed = true;
    }
    if blank_token_beside_api_key(&text) {
        eprintln!(
            "{file}: warning: hubspot.accessToken is blank, so the legacy hubspot.hapikey is used; fill in the \
             token (docs/hubspot-credential.md) or remove the blank key"
        );
    }
    if credentials.hubspot.is_none() {
        eprintln!(
            "{file}: error: the secret holds no HubSpot credential, so no deal can be created: add \
             \"hubspot\": {{\"accessToken\": \"…\"}} (a Service Key or private app token), or \"hubspot\": \
             {{\"oauth\": {{\"clientId\", \"clientSecret\", \"refreshToken\"}}}} for a public app"
        );
        failed = true;
    }
    let missing = mapping.missing_signing_keys(&|key| credentials.signing.contains_key(key));
    for diagnostic in &missing {
        eprintln!("{}", diagnostic.in_file(mapping.origin()));
    }
    failed |= !missing.is_empty();
    let used = mapping.signing_keys();
    let unused: Vec<&str> = credentials
        .signing
        .keys()
        .map(String::as_str)
        .filter(|key| !used.contains(key))
        .collect();
    for key in used.iter().filter(|key| !credentials.signing.contains_key(**key)) {
        if let Some(near) = crate::mapping::nearest(key, unused.iter().copied()) {
            eprintln!("{file}: note: the secret has {near:?} under `signing`: did you mean {key:?}?");
        }
    }
    for (key, scheme) in mapping.signing_key_schemes() {
        let Some(value) = credentials.signing.get(key) else {
            continue;
        };
        if placeholders.contains(&format!("signing.{key}")) {
            continue;
        }
        match crate::inbound::verify::check_key(scheme, value) {
            Err(e) => {
                eprintln!(
                    "{file}: error: signing key {key:?} cannot verify {scheme} signatures ({e}); every delivery \
                     to its endpoints would be refused"
                );
                failed = true;
            }
            Ok(Some(doubt)) => eprintln!("{file}: warning: signing key {key:?} ({scheme}): {doubt}"),
            Ok(None) => {}
        }
    }
    let mut unused = unused;
    unused.sort_unstable();
    for key in unused {
        eprintln!(
            "{file}: note: signing key {key:?} is used by no route of {}",
            mapping.origin()
        );
    }
    failed.then_some(EXIT_FAILED)
}

/// Whether the secret's JSON `text` has a blank `hubspot.accessToken` beside a `hubspot.hapikey` that
/// is not: [`crate::credentials::Credentials::parse`] then uses the key, and a forgotten token would go
/// unnoticed.
fn blank_token_beside_api_key(text: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    let field = |name: &str| {
        value
            .pointer(&format!("/hubspot/{name}"))
            .and_then(serde_json::Value::as_str)
    };
    matches!(
        (field("accessToken"), field("hapikey")),
        (Some(token), Some(key)) if token.trim().is_empty() && !key.trim().is_empty()
    )
}

/// Where the secret's JSON `text` still holds a placeholder of [`init::secret_template`] (a string with
/// [`init::PLACEHOLDER_MARK`]), as dotted paths (`hubspot.accessToken`, `signing.webflow`), in document
/// order. The values themselves are never printed.
fn placeholder_paths(text: &str) -> Vec<String> {
    fn walk(value: &serde_json::Value, at: &str, found: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if s.contains(init::PLACEHOLDER_MARK) => found.push(at.to_owned()),
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    walk(value, &path, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        walk(&value, "", &mut found);
    }
    found
}

async fn transform(args: &DeliveryArgs, mapping: Option<&Path>, fields: bool) -> u8 {
    let env = match env_with(mapping) {
        Ok(env) => env,
        Err(code) => return code,
    };
    let event = match event_text(args) {
        Ok(text) => text,
        Err(message) => return fail(&message),
    };
    let delivery = match serde_json::from_str::<serde_json::Value>(&event) {
        Ok(value) => Delivery::from_event(&value, &Invocation::local(), chrono::Utc::now()),
        Err(e) => Err(crate::inbound::MalformedEvent {
            field: "event".to_owned(),
            rule: format!("is not JSON that can be read ({e})"),
        }),
    };
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err(malformed) => {
            eprintln!("rejected (400): {malformed} (malformed_request)");
            hint_if_not_http(args, &event);
            return EXIT_REJECTED;
        }
    };
    let (app, wiring, letters) = match config::build_app(
        &Env {
            dry_run: true,
            dlq_url: None,
            ..env.clone()
        },
        Mode::Local,
    )
    .await
    {
        Ok(built) => built,
        Err(e) => return fail(&e),
    };
    note_unverified(&app, wiring.skip_signatures, &delivery);
    if fields {
        return match app.submission_of(&delivery).await {
            Ok((submission, route)) => {
                if route.is_none() {
                    eprintln!("no route's `match` accepts this delivery; it would be ignored (200)");
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&seen_by_templates(&submission, route.as_deref())).unwrap_or_default()
                );
                EXIT_OK
            }
            Err(outcome) => {
                show_outcome(&outcome, letters.as_deref(), &env.hubspot_base_url);
                exit_code(&outcome)
            }
        };
    }
    let outcome = app.handle(&delivery).await;
    note_unresolved_labels(&app, &wiring).await;
    show_outcome(&outcome, letters.as_deref(), &env.hubspot_base_url);
    exit_code(&outcome)
}

/// What a route's templates see of a delivery (`transform --fields`), under the names they use:
/// `route` (the route whose `match` holds, or null), `submission` (its `id`, `event_type`,
/// `submitted_at`, `received_at`, `source`), `fields` (the normaliser's output) and `raw` (the decoded body).
pub fn seen_by_templates(submission: &crate::domain::Submission, route: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "route": route,
        "submission": {
            "source": submission.source,
            "id": submission.id,
            "event_type": submission.event_type,
            "submitted_at": submission.submitted_at,
            "received_at": submission.received_at,
        },
        "fields": submission.fields,
        "raw": submission.raw,
    })
}

/// `transform`'s report of an outcome: the planned calls on stdout, anything else on stderr.
fn show_outcome(outcome: &Outcome, letters: Option<&crate::aws::MemoryDeadLetters>, base_url: &str) {
    let route = || {
        letters
            .and_then(|letters| letters.sent().last().map(|letter| letter.delivery.route.clone()))
            .unwrap_or_default()
    };
    match outcome {
        Outcome::DryRun(calls) => {
            let out = planned(calls, base_url);
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Outcome::Records(records) if records.is_empty() => {
            eprintln!("the route's `for_each` gives no items for this delivery; it would be ignored (200)");
        }
        Outcome::Records(records) => {
            // Each record as a delivery of its own is shown: its calls, or why it would be dead-lettered.
            let route = route();
            let mut shown = Vec::with_capacity(records.len());
            for record in records {
                let mut entry = match &record.outcome {
                    Outcome::DryRun(calls) => planned(calls, base_url),
                    other => {
                        if let Outcome::DeadLettered { reason, errors, .. } = other {
                            eprintln!(
                                "route {route}, record {}: this record would be dead-lettered ({reason}):",
                                record.index
                            );
                            for problem in errors {
                                eprintln!("  {problem}");
                            }
                        }
                        other.body()
                    }
                };
                entry["index"] = serde_json::json!(record.index);
                shown.push(entry);
            }
            let out = serde_json::json!({ "records": shown });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Outcome::Rejected(rejection) => eprintln!(
            "rejected ({}): {} ({})",
            rejection.status.as_u16(),
            rejection.message,
            rejection.code
        ),
        Outcome::Ignored(unmatched) => {
            eprintln!("no route's `match` accepts this delivery; it would be ignored (200)");
            for route in unmatched {
                let saw: Vec<String> = route
                    .saw
                    .iter()
                    .map(|(path, value)| format!("{path} = {value}"))
                    .collect();
                eprintln!(
                    "  route {}: match: {}; saw {}",
                    route.route,
                    route.condition,
                    saw.join(", ")
                );
            }
        }
        Outcome::RetryLater { message, .. } => eprintln!("the sender would be asked to retry: {message}"),
        Outcome::DeadLettered { reason, errors, .. } => {
            eprintln!("route {}: this delivery would be dead-lettered ({reason}):", route());
            for problem in errors {
                eprintln!("  {problem}");
            }
        }
        // A dry run answers before anything is created or recorded.
        Outcome::Created(_)
        | Outcome::Replayed(_)
        | Outcome::InProgress { .. }
        | Outcome::Queued { .. }
        | Outcome::Deferred { .. } => {
            eprintln!("unexpected outcome of a dry run: {}", outcome.label());
        }
    }
}

/// The event `transform` and `invoke` run, as text: the event file's (checked to be JSON), or the
/// HTTP API event made of `--body` (see [`body::http_event`]).
fn event_text(args: &DeliveryArgs) -> Result<String, String> {
    match (&args.body, &args.endpoint, &args.event) {
        (Some(path), Some(endpoint), _) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read body file {}: {e}", path.display()))?;
            if args.content_type.is_none() {
                eprintln!(
                    "dealhook: sending {} as {} (--content-type to say otherwise)",
                    path.display(),
                    body::guess_content_type(&bytes)
                );
            }
            let request = body::RawRequest {
                body: bytes,
                endpoint: endpoint.clone(),
                content_type: args.content_type.clone(),
                headers: args.headers.clone(),
                query: args.query.clone(),
            };
            body::http_event(&request, chrono::Utc::now()).map(|event| event.to_string())
        }
        (_, _, Some(path)) => read_event_text(path),
        _ => Err("give a Lambda event file, or a raw body with --body FILE --endpoint NAME".to_owned()),
    }
}

/// When the event file is JSON but no Lambda HTTP event (most often: the sender's body itself), says
/// what to do instead.
fn hint_if_not_http(args: &DeliveryArgs, event: &str) {
    let Some(path) = &args.event else {
        return;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(event) else {
        return;
    };
    if let crate::inbound::LambdaEvent::Unrecognised(_) =
        crate::inbound::LambdaEvent::parse(&value, &Invocation::local(), chrono::Utc::now())
    {
        eprintln!("{}", not_http_hint(path));
    }
}

/// What to do with a file that is not a Lambda HTTP event.
fn not_http_hint(path: &Path) -> String {
    format!(
        "dealhook: {} is not a Lambda HTTP event (API Gateway or function URL); if it is the body the sender \
         posts, pass it as a raw body: --body {} --endpoint NAME (`dealhook check` lists the endpoints)",
        path.display(),
        path.display()
    )
}

/// In a local run without the secret, says that the signature of the delivery's endpoint is not
/// verified: only when that endpoint is signed (an unsigned one has nothing to verify).
fn note_unverified(app: &crate::App, skip_signatures: bool, delivery: &Delivery) {
    if !skip_signatures {
        return;
    }
    let scheme = crate::inbound::route_name(&delivery.path)
        .and_then(|name| app.mapping().endpoint(name))
        .and_then(|endpoint| endpoint.signature());
    if let Some(scheme) = scheme {
        eprintln!(
            "dealhook: the {scheme} signature is NOT verified in this local run: signing keys live in the secret \
             (set HUBSPOT_SECRET_ID to verify them)"
        );
    }
}

/// Says (once) when the portal's schema could not be read, so that labels went out as mapped: without
/// a credential locally (no portal is read then), or when HubSpot refused or failed the read.
async fn note_unresolved_labels(app: &crate::App, wiring: &config::Wiring) {
    let Some(portal) = app.portal().filter(|_| wiring.labels_resolved) else {
        eprintln!(
            "dealhook: pipeline, stage and option labels were NOT resolved to ids and values (no HubSpot \
             credential: set HUBSPOT_SECRET_ID or HUBSPOT_ACCESS_TOKEN to read the portal); the request shows \
             the values as mapped"
        );
        return;
    };
    for api in crate::hubspot::HubSpotApi::ALL {
        if let crate::hubspot::portal::SchemaStatus::Unavailable(why) = portal.status(api).await {
            eprintln!(
                "dealhook: pipeline, stage and option labels were NOT resolved to ids and values ({why}); \
                 the request shows the values as mapped"
            );
            return;
        }
    }
}

/// The calls of a dry run as `transform` prints them: the deal's request at the top (`method`, `url`,
/// `path`, `body`, as before the plan existed), then every call in order under `calls`.
fn planned(calls: &[crate::hubspot::PlannedCall], base_url: &str) -> serde_json::Value {
    let base = base_url.trim_end_matches('/');
    let show = |request: &crate::hubspot::HubSpotRequest| {
        serde_json::json!({
            "method": request.method,
            "url": format!("{base}{}", request.path),
            "path": request.path,
            "body": request.body,
        })
    };
    let mut out = crate::hubspot::plan::deal_request_of(calls)
        .map(show)
        .unwrap_or_default();
    out["calls"] = calls
        .iter()
        .map(|call| {
            let mut shown = show(&call.request);
            if let Some(when) = &call.when {
                shown["when"] = serde_json::Value::String(when.clone());
            }
            shown
        })
        .collect();
    out
}

/// The exit code for how a delivery ended (listed in `dealhook --help`); a replay as its first answer did.
/// A delivery of several records ([`Outcome::Records`]) exits as its status says: 0 when every record
/// was created (or planned), 3 when any was dead-lettered, 5 when the sender would retry, 6 with no items.
pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Records(records) if records.is_empty() => EXIT_IGNORED,
        Outcome::Records(_) => match outcome.status().as_u16() {
            200..=201 => EXIT_OK,
            202 => EXIT_DEAD_LETTERED,
            409 | 503 => EXIT_RETRY_LATER,
            _ => EXIT_REJECTED,
        },
        Outcome::Created(_) | Outcome::DryRun(_) | Outcome::Queued { .. } => EXIT_OK,
        Outcome::Ignored(_) => EXIT_IGNORED,
        Outcome::DeadLettered { .. } => EXIT_DEAD_LETTERED,
        Outcome::Rejected(_) => EXIT_REJECTED,
        Outcome::RetryLater { .. } | Outcome::InProgress { .. } | Outcome::Deferred { .. } => EXIT_RETRY_LATER,
        Outcome::Replayed(stored) => match stored.status {
            200..=201 => EXIT_OK,
            202 => EXIT_DEAD_LETTERED,
            _ => EXIT_REJECTED,
        },
    }
}

async fn invoke(args: &DeliveryArgs, mapping: Option<&Path>, raw: bool) -> u8 {
    let env = match env_with(mapping) {
        Ok(env) => env,
        Err(code) => return code,
    };
    let event = match event_text(args) {
        Ok(event) => event,
        Err(message) => return fail(&message),
    };
    let (app, wiring, memory_letters) = match config::build_app(&env, Mode::Local).await {
        Ok(built) => built,
        Err(e) => return fail(&e),
    };
    if wiring.dry_run {
        eprintln!(
            "dealhook: dry run (no HUBSPOT_SECRET_ID or HUBSPOT_ACCESS_TOKEN, or DEALHOOK_DRY_RUN set): \
             nothing is sent to HubSpot; the response body shows the request that would be sent"
        );
    }

    // An SQS batch (queue mode's work queue): the worker's entry point, in-process.
    if let Some(sqs) = sqs_event(&event) {
        let code = match app.handle_sqs_value(sqs, &Invocation::local()).await {
            Ok(answer) => {
                println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
                let failed = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                if failed == 0 { EXIT_OK } else { EXIT_RETRY_LATER }
            }
            Err(e) => fail(&format!("the worker's answer could not be written: {e}")),
        };
        show_memory_letters(memory_letters.as_deref());
        return code;
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event)
        && let Ok(delivery) = Delivery::from_event(&value, &Invocation::local(), chrono::Utc::now())
    {
        note_unverified(&app, wiring.skip_signatures, &delivery);
    }
    // The Lambda function's own entry point, so that every event gets the answer it would get there.
    let (outcome, lambda_response) = app.answer_event_text(&event, &Invocation::local()).await;
    note_unresolved_labels(&app, &wiring).await;
    let shown = if raw {
        lambda_response
    } else {
        readable(lambda_response)
    };
    println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    show_memory_letters(memory_letters.as_deref());
    if exit_code(&outcome) == EXIT_REJECTED {
        hint_if_not_http(args, &event);
    }
    exit_code(&outcome)
}

/// A Lambda response as `invoke` prints it by default: its `body`, a JSON string, replaced by the JSON
/// it holds (a body that is base64 or not JSON is left as it is). `--raw` prints the response as is.
pub fn readable(mut response: serde_json::Value) -> serde_json::Value {
    if response.get("isBase64Encoded").and_then(serde_json::Value::as_bool) == Some(true) {
        return response;
    }
    let parsed = response
        .get("body")
        .and_then(serde_json::Value::as_str)
        .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok());
    if let (Some(parsed), Some(object)) = (parsed, response.as_object_mut()) {
        object.insert("body".to_owned(), parsed);
    }
    response
}

/// `dealhook replay`: wires the app as `invoke` builds it (sync mode; a failure that may pass is
/// dead-lettered; new letters go to DEALHOOK_DLQ_URL, else the queue read), prints the summary.
async fn replay(
    from: Option<String>,
    mapping: Option<&Path>,
    dry_run: bool,
    options: &crate::replay::ReplayOptions,
    json: bool,
) -> u8 {
    let mut env = match env_with(mapping) {
        Ok(env) => env,
        Err(code) => return code,
    };
    let Some(from) = from.or_else(|| env.dlq_url.clone()) else {
        return fail(&"no dead-letter queue to replay: give --from QUEUE_URL (or set DEALHOOK_DLQ_URL)");
    };
    let dry_run = dry_run || env.dry_run;
    if !dry_run && env.hubspot_secret_id.is_none() && env.hubspot_access_token.is_none() {
        return fail(
            &"replay sends to HubSpot: set HUBSPOT_SECRET_ID (or HUBSPOT_ACCESS_TOKEN), or use --dry-run to see \
              what would be sent",
        );
    }
    env.dry_run = dry_run;
    env.delivery_mode = config::DeliveryMode::Sync;
    env.queue_url = None;
    if dry_run {
        // Nothing written anywhere: failures are counted, not sent; a dry run claims no key anyway.
        env.dlq_url = None;
        env.idempotency_table = None;
    } else if env.dlq_url.is_none() {
        env.dlq_url = Some(from.clone());
    }
    let (app, _, _) = match config::build_app(&env, Mode::Local).await {
        Ok(built) => built,
        Err(e) => return fail(&e),
    };
    let sdk = crate::aws::load_sdk_config().await;
    let payloads = env
        .payload_bucket
        .as_ref()
        .map(|bucket| crate::aws::S3Payloads::new(crate::aws::S3Payloads::client(&sdk), bucket.clone()));
    let letters = crate::replay::SqsLetters::new(aws_sdk_sqs::Client::new(&sdk), from);
    let summary = app
        .replay_queue(
            &letters,
            payloads.as_ref().map(|p| p as &dyn crate::aws::PayloadStore),
            options,
        )
        .await;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    } else {
        print!("{summary}");
    }
    summary.exit_code()
}

/// The event as an SQS batch (`Records` whose first `eventSource` is `aws:sqs`), or `None` for any
/// other event (an HTTP one, or anything the function answers 400).
fn sqs_event(event: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(event).ok()?;
    let first = value.get("Records")?.as_array()?.first()?;
    (first.get("eventSource")?.as_str()? == "aws:sqs").then_some(value)
}

/// Dead letters kept in memory (no `DEALHOOK_DLQ_URL`), printed so that a local run shows them.
fn show_memory_letters(letters: Option<&crate::aws::MemoryDeadLetters>) {
    for letter in letters.map(|l| l.sent()).unwrap_or_default() {
        eprintln!("dealhook: DEALHOOK_DLQ_URL is not set, so this dead letter was NOT sent to a queue:");
        eprintln!("{}", serde_json::to_string_pretty(&letter).unwrap_or_default());
    }
}

/// The event file's text, checked to be JSON (a file that is not is the user's mistake: exit 1).
/// Whether it is an event dealhook serves is the handler's to say (a 400), as on Lambda: JSON that
/// `serde_json::Value` cannot hold (a lone surrogate escape, very deep nesting) is such a 400.
fn read_event_text(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read event file {}: {e}", path.display()))?;
    serde_json::from_str::<&serde_json::value::RawValue>(&text).map_err(|e| {
        format!(
            "{} is not JSON ({e}), so it is no Lambda event; if it is the body the sender posts (a form's \
             `a=1&b=2`, say), pass it as a raw body: --body {} --endpoint NAME (`dealhook check` lists the \
             endpoints)",
            path.display(),
            path.display()
        )
    })?;
    Ok(text)
}

fn fail(error: &dyn std::fmt::Display) -> u8 {
    eprintln!("dealhook: {error}");
    EXIT_FAILED
}
