//! `dealhook check --online`: reads the portal's schema with the environment's credential and prints
//! what [`crate::mapping::online::check_online`] finds, as text or JSON. Never prints the credential.

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, EXIT_PORTAL_UNREADABLE, fail};
use crate::config::{self, Env};
use crate::credentials::HubSpotAuth;
use crate::hubspot::portal::{PortalSchema, SCHEMA_SCOPES, read_schema};
use crate::hubspot::{AuthSource as _, Deals, HubSpotApi, HubSpotError, ObjectType};
use crate::mapping::online::{SchemaNeeds, check_online as compare, schema_needs};
use crate::mapping::{Diagnostic, Mapping, Severity};

/// Scopes any one of which lets a credential read contact properties (the `security` alternatives of
/// `GET /crm/properties/2026-03/{objectType}`, narrowed to contacts).
const CONTACT_SCHEMA_SCOPES: [&str; 3] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
];
/// The same for company properties.
const COMPANY_SCHEMA_SCOPES: [&str; 3] = [
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.schemas.companies.read",
];

/// Runs `check --online [MAPPING] [--json]`; the exit code.
pub(super) async fn check_online(path: Option<&Path>, json_output: bool) -> u8 {
    let env = match Env::from_process() {
        Ok(env) => env,
        Err(e) => return fail(&e),
    };
    let (origin, text) = match env.mapping_text(path) {
        Ok(source) => source,
        Err(e) => return fail(&e),
    };
    // A mapping that does not load is reported as offline `check` reports it: the portal is not read.
    let mapping = match Mapping::from_yaml(&text, &origin) {
        Ok(mapping) => mapping,
        Err(e) => return report(&origin, &e.diagnostics, json_output, None),
    };
    let schemas = match read_portal(&env, &schema_needs(&text)).await {
        Ok(schemas) => schemas,
        Err(why) => {
            eprintln!("dealhook: check --online could not read the portal, nothing was checked: {why}");
            if json_output {
                // CI reading the JSON gets a document that says so, not an empty file.
                let out = json!({"mapping": origin, "error": why, "exitCode": EXIT_PORTAL_UNREADABLE});
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            return EXIT_PORTAL_UNREADABLE;
        }
    };
    let summary = schemas
        .values()
        .map(|s| {
            format!(
                "{} pipeline(s), {} deal properties",
                s.pipelines().len(),
                s.properties(ObjectType::Deal).map_or(0, <[_]>::len)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    // The offline findings too (load warnings, the APIs going away), so that the output is the whole
    // story whether or not the mapping loads, and sorted as offline `check` sorts them.
    // The offline guesses that defer to the portal (`check --online`) are answered by it below.
    let mut findings: Vec<Diagnostic> = mapping
        .warnings()
        .iter()
        .filter(|w| !crate::mapping::defers_to_online(w))
        .cloned()
        .collect();
    findings.extend(mapping.legacy_api_warnings());
    findings.extend(compare(&text, &schemas));
    findings.sort_by_key(|d| (d.line.unwrap_or(0), d.column.unwrap_or(0)));
    report(&origin, &findings, json_output, Some(&summary))
}

/// Prints the findings (text: one per line on stderr, a summary on stdout; JSON: one document on
/// stdout) and picks the exit code: 1 on any error.
fn report(origin: &str, findings: &[Diagnostic], json_output: bool, portal: Option<&str>) -> u8 {
    let errors = findings.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = findings.len() - errors;
    if json_output {
        let out = json!({
            "mapping": origin,
            "findings": findings.iter().map(|d| json!({
                "severity": d.severity.to_string(),
                "route": d.route,
                "field": d.field,
                "line": d.line,
                "column": d.column,
                "message": d.message,
            })).collect::<Vec<_>>(),
            "errors": errors,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for finding in findings {
            eprintln!("{}", finding.in_file(origin));
        }
        match portal {
            Some(portal) => {
                println!("{origin}: {errors} error(s), {warnings} warning(s) against the portal ({portal})")
            }
            None => eprintln!("{origin}: {errors} error(s)"),
        }
    }
    if errors > 0 { EXIT_FAILED } else { EXIT_OK }
}

/// The schema of each API the routes use, with contact and company properties where needed. `Err`: why
/// the portal could not be read, for a person (which credential is missing, which scopes to add).
async fn read_portal(env: &Env, needs: &SchemaNeeds) -> Result<HashMap<HubSpotApi, PortalSchema>, String> {
    let (secrets, client) = match config::hubspot_access(env).await {
        Ok(Some(access)) => access,
        Ok(None) => {
            return Err(
                "no HubSpot credential: set HUBSPOT_ACCESS_TOKEN (a private app or Service Key token) or \
                        HUBSPOT_SECRET_ID (the secret `invoke` and the Lambda function read)"
                    .to_owned(),
            );
        }
        Err(e) => return Err(e.to_string()),
    };
    let auth = secrets
        .hubspot_auth(false)
        .await
        .map_err(|why| format!("no HubSpot credential: {why}"))?;
    let mut schemas = HashMap::new();
    for &api in &needs.apis {
        let mut schema = read_schema(&client, api, &auth)
            .await
            .map_err(|e| explain(e, "pipelines and deal properties", &SCHEMA_SCOPES))?;
        if needs.contact_properties {
            let contacts = read_properties(&client, api, ObjectType::Contact, &auth, &CONTACT_SCHEMA_SCOPES).await?;
            schema = schema.with_properties(ObjectType::Contact, contacts);
        }
        if needs.company_properties {
            let companies = read_properties(&client, api, ObjectType::Company, &auth, &COMPANY_SCHEMA_SCOPES).await?;
            schema = schema.with_properties(ObjectType::Company, companies);
        }
        schemas.insert(api, schema);
    }
    Ok(schemas)
}

async fn read_properties(
    deals: &dyn Deals,
    api: HubSpotApi,
    object: ObjectType,
    auth: &HubSpotAuth,
    scopes: &[&str],
) -> Result<Vec<crate::hubspot::portal::PropertyDef>, String> {
    let what = match object {
        ObjectType::Contact => "contact properties",
        ObjectType::Company => "company properties",
        ObjectType::Deal => "deal properties",
    };
    deals
        .properties(api, object, auth)
        .await
        .map_err(|e| explain(e, what, scopes))
}

/// HubSpot's refusal in words that say what to do.
fn explain(error: HubSpotError, what: &str, scopes: &[&str]) -> String {
    let scopes = scopes.join(", ");
    match &error {
        HubSpotError::MissingScopes { .. } => {
            format!("reading the {what}: {error}; grant the credential any one of: {scopes}")
        }
        HubSpotError::Unauthorized { status, .. } => format!(
            "reading the {what}: HubSpot refused the credential (HTTP {status}): is the token valid and for this \
             portal? It needs any one of: {scopes}"
        ),
        _ => format!("reading the {what}: {error}"),
    }
}
