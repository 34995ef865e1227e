//! The plan of calls for one deal and how each call is made. In order:
//!
//! 1. contacts by e-mail: one `…/contacts/batch/upsert` (`idProperty: email`; v3/2026-03), or v1's
//!    `createOrUpdate/email/{email}/` per contact;
//! 2. companies by domain: `…/companies/search`, then `…/companies` when none is found and the
//!    mapping says `create_missing: true`;
//! 3. the deal: created with inline associations to the ids found plus the draft's literal ids
//!    (v1's `associatedVids`/`associatedCompanyIds`, v3/2026-03's `associations`), or, with
//!    `upsert_by`, batch-upserted and then linked with one `PUT …/associations/default/…` per record
//!    (a batch upsert input has no associations).
//!
//! Every call is retried as [`RetryPolicy`] says (`Caller::call`), never past the invocation's deadline
//! less the policy's margin (the time kept to write a dead letter); a refused credential is re-read
//! once for the whole plan. Idempotent calls (upserts by e-mail or by `upsert_by`, searches, link
//! `PUT`s) are also retried after a 500 or an unknown outcome
//! ([`HubSpotError::is_retryable_if_idempotent`]); the creates (deal, company) only as today.
//!
//! A failed contact upsert, company search or create, or link is an [`AssociationFailure`]: with
//! [`OnAssociationFailure::Report`] the deal is still made and the failure listed in
//! [`CreatedDeal::association_create_failures`]; with [`OnAssociationFailure::DeadLetter`] the plan
//! stops ([`PlanError::Associations`]): before the deal when a contact or company failed, or after
//! it (with its id) when a link failed. A deal call that fails after contacts or companies were
//! written is [`PlanError::HubSpot`] with [`PlanProgress`]: upserts are idempotent by e-mail and the
//! company is found by domain next time, so a redrive duplicates nothing.
//!
//! Companies: HubSpot's search lags writes by seconds (catalog item 14) and `domain` is not a unique
//! key (item 17), so two deliveries for the same new domain a few seconds apart can each find none
//! and each create a company. The plan narrows this (it creates only when the search found none, it
//! always picks the lowest id among matches so later deliveries converge on the oldest record, and a
//! `409` to the create — a portal that enforces unique domains — is answered by searching again and
//! using what it finds) but cannot close it: the residual risk is a duplicate company for bursts of
//! leads from one new domain, which HubSpot's "merge companies" resolves. README "The plan of calls" ("Companies created twice").

mod caller;
mod dedupe;

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::crm::{self, ContactInput, MissingUpsertKey};
use super::{
    CreatedDeal, Deals, HubSpotApi, HubSpotError, HubSpotOptions, HubSpotRequest, ObjectType, RetryPolicy, v1,
};
use crate::credentials::HubSpotAuth;
use crate::domain::{CompanyLookup, DealDraft};
use crate::mapping::OnAssociationFailure;
use caller::{Caller, Failed};
pub use dedupe::DedupeRun;

/// Where the HubSpot credential comes from (the secret, in production): the cached one, or
/// (`refresh`) one read anew after HubSpot refused the cached one.
#[async_trait]
pub trait AuthSource: Send + Sync {
    /// The credential, or why there is none (a sentence for the log and the dead letter that never
    /// holds a secret value).
    async fn hubspot_auth(&self, refresh: bool) -> Result<HubSpotAuth, String>;
}

/// Why the plan did not end in a deal that stands.
#[derive(Debug)]
pub enum PlanError {
    /// The credential could not be had (the message never holds the secret).
    Credential(String),
    /// A call HubSpot failed that the plan cannot go on without (the deal's, or, when the credential
    /// is refused for good, any): the error, the number of requests sent for that call, and what
    /// was written before it.
    HubSpot {
        /// HubSpot's error.
        error: HubSpotError,
        /// Requests the whole plan sent, the failed call's included.
        attempts: u32,
        /// What the plan wrote before it.
        done: PlanProgress,
        /// The association failures before it (the dead letter lists them too).
        failures: Vec<AssociationFailure>,
    },
    /// `on_association_failure: dead_letter` and an association failed: the failures, and what was
    /// written (`done.deal_id` when the deal exists).
    Associations {
        /// Every association failure, in call order (at least one).
        failures: Vec<AssociationFailure>,
        /// Requests the whole plan sent.
        attempts: u32,
        /// What the plan wrote.
        done: PlanProgress,
    },
}

/// What a plan wrote before it stopped: kept in the dead letter (`hubspot.done`) so the operator
/// (and a redrive) knows which records exist. Upserts and searches are keyed by e-mail and domain,
/// so a redrive finds the same contacts and companies again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanProgress {
    /// Contacts upserted (their ids), in mapping order.
    #[serde(default)]
    pub contact_ids: Vec<u64>,
    /// Companies found or created (their ids), in mapping order.
    #[serde(default)]
    pub company_ids: Vec<u64>,
    /// The deal, when it was created or upserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<u64>,
}

impl PlanProgress {
    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.contact_ids.is_empty() && self.company_ids.is_empty() && self.deal_id.is_none()
    }
}

/// One association that could not be made: the JSON entry for `associationCreateFailures`, and
/// HubSpot's error when there was one (for the dead letter's reason).
#[derive(Debug, Clone)]
pub struct AssociationFailure {
    /// `{"call": "contacts_upsert"|"contact_v1"|"company_search"|"company_create"|"association",
    /// "object": "contact"|"company", "input": N (position among the mapping's contacts or
    /// companies), "domain": D (companies), "status": S, "reason": R, "message": M}`. Never holds
    /// a secret; the e-mail is left out (its position says which).
    pub entry: Value,
    /// HubSpot's error, when the failure is one (`None`: e.g. no company with the domain and
    /// `create_missing: false`).
    pub error: Option<HubSpotError>,
}

impl AssociationFailure {
    fn new(call: &str, object: ObjectType, input: usize, error: Option<HubSpotError>, message: String) -> Self {
        let mut entry = serde_json::Map::new();
        entry.insert("call".to_owned(), json!(call));
        entry.insert("object".to_owned(), json!(object_name(object)));
        entry.insert("input".to_owned(), json!(input));
        if let Some(error) = &error {
            if let Some(status) = error.status() {
                entry.insert("status".to_owned(), json!(status));
            }
            entry.insert("reason".to_owned(), json!(error.reason().as_str()));
        } else {
            entry.insert("reason".to_owned(), json!("not_found"));
        }
        entry.insert("message".to_owned(), json!(message));
        // The log never names the e-mail (personal data): the call, the position and the status.
        // HubSpot's category and, for MISSING_SCOPES, the scopes it named: what an operator needs to fix
        // it from the log alone. HubSpot's message is not logged (it may quote the record's values).
        let scopes = match &error {
            Some(HubSpotError::MissingScopes { scopes, .. }) => Some(scopes.join(" ")),
            _ => None,
        };
        let category = error.as_ref().and_then(HubSpotError::category);
        tracing::warn!(
            call,
            input,
            status = error.as_ref().and_then(HubSpotError::status),
            reason = error.as_ref().map_or("not_found", |e| e.reason().as_str()),
            category,
            scopes,
            "an association failed"
        );
        AssociationFailure {
            entry: Value::Object(entry),
            error,
        }
    }

    fn with_domain(mut self, domain: &str) -> Self {
        if let Value::Object(entry) = &mut self.entry {
            entry.insert("domain".to_owned(), json!(domain));
        }
        self
    }
}

fn object_name(object: ObjectType) -> &'static str {
    match object {
        ObjectType::Deal => "deal",
        ObjectType::Contact => "contact",
        ObjectType::Company => "company",
    }
}

/// One call of the plan as a dry run, `transform` and a dead letter show it: the request, and when it
/// is made only under a condition, which (`when`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCall {
    /// The request (paths of links carry `{dealId}`/`{contactId}`/`{companyId}` for ids known only then).
    #[serde(flatten)]
    pub request: HubSpotRequest,
    /// When the call is made: absent for always; e.g. "if the search finds no company".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// Every call the plan would make for `draft`, in order (no I/O): the contact upsert(s), each
/// company's search (and create, if missing), the deal, and the links an upserted deal needs. The
/// deal's request lists only the draft's literal ids: the ids found on the way are added when sent.
/// Fails only when `options.upsert_by` names a property the draft lacks.
pub fn preview(options: &HubSpotOptions, draft: &DealDraft) -> Result<Vec<PlannedCall>, MissingUpsertKey> {
    let api = options.api;
    let always = |request| PlannedCall { request, when: None };
    let mut calls = Vec::new();
    let contacts = contact_inputs(draft);
    if !contacts.is_empty() {
        if api == HubSpotApi::V1 {
            calls.extend(contacts.iter().map(|c| always(v1::contact_request(c))));
        } else {
            calls.push(always(crm::contacts_upsert_request(api, &contacts)));
        }
    }
    for company in &draft.associations.companies_by_domain {
        let domain = company.domain.as_str();
        calls.push(always(crm::company_search_request(api, domain)));
        if company.create_missing {
            calls.push(PlannedCall {
                request: crm::company_create_request(api, domain, &company_properties(company)),
                when: Some(format!("if the search finds no company with the domain {domain}")),
            });
        }
    }
    calls.push(always(crm::deal_request(options, draft)?));
    if api != HubSpotApi::V1 && options.upsert_by.is_some() {
        let link = |to: ObjectType, placeholder: &str| HubSpotRequest {
            method: "PUT".to_owned(),
            path: format!(
                "{}/{}/{{dealId}}/associations/default/{}/{placeholder}",
                api.associations_prefix(),
                ObjectType::Deal.path_name(),
                to.path_name()
            ),
            body: Value::Null,
        };
        let links = draft.associations.contact_ids.len() + contacts.len();
        if links > 0 {
            calls.push(PlannedCall {
                request: link(ObjectType::Contact, "{contactId}"),
                when: Some(format!("once per contact ({links})")),
            });
        }
        let links = draft.associations.company_ids.len() + draft.associations.companies_by_domain.len();
        if links > 0 {
            calls.push(PlannedCall {
                request: link(ObjectType::Company, "{companyId}"),
                when: Some(format!("once per company ({links})")),
            });
        }
    } else if (!contacts.is_empty() || !draft.associations.companies_by_domain.is_empty())
        && let Some(deal) = calls.last_mut()
    {
        deal.when = Some("with associations also to the contacts and companies found above".to_owned());
    }
    Ok(calls)
}

/// [`preview`] for a route with `dedupe:` (see `dedupe.rs`): also the read of a remembered deal and
/// the search after the contacts, the update (`then: update`) and its links, each with its `when`.
pub fn preview_deduped(
    options: &HubSpotOptions,
    draft: &DealDraft,
    dedupe: Option<&crate::mapping::Dedupe>,
) -> Result<Vec<PlannedCall>, MissingUpsertKey> {
    let mut calls = preview(options, draft)?;
    if let Some(rule) = dedupe {
        dedupe::add_to_preview(&mut calls, options.api, draft, rule, SystemTime::now());
    }
    Ok(calls)
}

/// The deal's call among a plan's calls ([`preview`]'s order: contacts, companies, the deal, then
/// only `PUT` links): the last one that is not a `PUT`.
pub fn deal_request_of(calls: &[PlannedCall]) -> Option<&HubSpotRequest> {
    calls.iter().rev().map(|c| &c.request).find(|r| r.method != "PUT")
}

/// The draft's contacts as the wire layer takes them (e-mails are already checked by the mapping;
/// one the wire rules refuse is skipped here and never sent — the mapping's rule is the stricter).
fn contact_inputs(draft: &DealDraft) -> Vec<ContactInput> {
    draft
        .associations
        .contacts_by_email
        .iter()
        .filter_map(|c| {
            let properties = c
                .properties
                .iter()
                .map(|p| (p.name.clone(), p.value.to_wire_string()))
                .collect();
            ContactInput::new(c.email.as_str(), properties).ok()
        })
        .collect()
}

fn company_properties(company: &CompanyLookup) -> Vec<(String, String)> {
    company
        .properties
        .iter()
        .map(|p| (p.name.clone(), p.value.to_wire_string()))
        .collect()
}

/// Runs the plan for `draft` (see the module's doc): contacts, companies, the deal, links. Each call
/// is retried as `policy` says, all within `deadline` (the invocation's; `None` locally) less the
/// policy's margin; an attempt still waiting for HubSpot then is abandoned as
/// [`HubSpotError::OutcomeUnknown`]. A refused credential is read anew once (rotation) and the call
/// tried once more, straight away. `on_failure` is the route's `on_association_failure`.
pub async fn create_deal<A: AuthSource + ?Sized>(
    deals: &dyn Deals,
    auth_source: &A,
    options: &HubSpotOptions,
    draft: &DealDraft,
    on_failure: OnAssociationFailure,
    policy: RetryPolicy,
    deadline: Option<SystemTime>,
) -> Result<CreatedDeal, PlanError> {
    write_deal(deals, auth_source, options, draft, on_failure, policy, deadline, None).await
}

/// [`create_deal`], with `dedupe` (a route's `dedupe:`; see `dedupe.rs`): after the contacts, the
/// contact's deal is looked for, and when found updated (`write: Updated`) or left (`write: Skipped`)
/// instead of a new one created.
#[allow(clippy::too_many_arguments)] // create_deal's arguments and the one dedupe adds
pub async fn write_deal<A: AuthSource + ?Sized>(
    deals: &dyn Deals,
    auth_source: &A,
    options: &HubSpotOptions,
    draft: &DealDraft,
    on_failure: OnAssociationFailure,
    policy: RetryPolicy,
    deadline: Option<SystemTime>,
    dedupe: Option<DedupeRun<'_>>,
) -> Result<CreatedDeal, PlanError> {
    // A draft the deal cannot be built from (no `upsert_by` value) is a mapping error: nothing is
    // sent, not even the contacts.
    if let Err(missing) = crm::deal_request(options, draft) {
        return Err(PlanError::HubSpot {
            error: HubSpotError::Unbuildable(missing),
            attempts: 0,
            done: PlanProgress::default(),
            failures: Vec::new(),
        });
    }
    let mut caller = Caller::new(auth_source, policy, deadline).await?;
    let api = options.api;
    let mut done = PlanProgress::default();
    let mut failures: Vec<AssociationFailure> = Vec::new();
    let stop_early = on_failure == OnAssociationFailure::DeadLetter;
    let fatal = |error, attempts, done: &PlanProgress, failures: &mut Vec<AssociationFailure>| PlanError::HubSpot {
        error,
        attempts,
        done: done.clone(),
        failures: std::mem::take(failures),
    };

    // 1. Contacts.
    let contacts = contact_inputs(draft);
    if api == HubSpotApi::V1 {
        for (input, contact) in contacts.iter().enumerate() {
            let result = caller
                .call("contact_v1", true, |auth| async move {
                    deals.create_or_update_contact_v1(contact, &auth).await
                })
                .await;
            match result {
                Ok(vid) => done.contact_ids.push(vid.vid),
                Err(Failed::Credential(message)) => return Err(PlanError::Credential(message)),
                Err(Failed::HubSpot(error)) if is_terminal(&error) => {
                    return Err(fatal(error, caller.sent, &done, &mut failures));
                }
                Err(Failed::HubSpot(error)) => {
                    let message = error.to_string();
                    failures.push(AssociationFailure::new(
                        "contact_v1",
                        ObjectType::Contact,
                        input,
                        Some(error),
                        message,
                    ));
                }
            }
        }
    } else if !contacts.is_empty() {
        let result = caller
            .call("contacts_upsert", true, |auth| {
                let contacts = &contacts;
                async move { deals.upsert_contacts(api, contacts, &auth).await }
            })
            .await;
        match result {
            Ok(outcome) => {
                for (input, contact) in contacts.iter().enumerate() {
                    match outcome.get(contact.email()) {
                        Some(Ok(upserted)) => done.contact_ids.push(upserted.id),
                        Some(Err(failure)) => failures.push(input_failure(input, failure)),
                        None => failures.push(input_failure(input, &crm::InputFailure::Missing)),
                    }
                }
            }
            Err(Failed::Credential(message)) => return Err(PlanError::Credential(message)),
            Err(Failed::HubSpot(error)) if is_terminal(&error) => {
                return Err(fatal(error, caller.sent, &done, &mut failures));
            }
            Err(Failed::HubSpot(error)) => {
                for input in 0..contacts.len() {
                    let message = error.to_string();
                    failures.push(AssociationFailure::new(
                        "contacts_upsert",
                        ObjectType::Contact,
                        input,
                        Some(error.clone()),
                        message,
                    ));
                }
            }
        }
    }
    if stop_early && !failures.is_empty() {
        return Err(PlanError::Associations {
            failures,
            done,
            attempts: caller.sent,
        });
    }

    // 1b. Dedupe: the contact's deal, if it has one; `then: skip` stops here.
    let existing = match &dedupe {
        Some(run) => dedupe::find_existing(&mut caller, deals, api, draft, run, &done, &mut failures).await?,
        None => None,
    };
    if let (Some(deal_id), Some(DedupeRun { rule, .. })) = (existing, &dedupe)
        && rule.then == crate::mapping::DedupeThen::Skip
    {
        return Ok(CreatedDeal {
            deal_id,
            write: super::DealWrite::Skipped,
            portal_id: None,
            association_create_failures: failures.into_iter().map(|f| f.entry).collect(),
        });
    }

    // 2. Companies.
    for (input, company) in draft.associations.companies_by_domain.iter().enumerate() {
        match find_or_create_company(&mut caller, deals, api, company).await {
            Ok(Some(id)) => done.company_ids.push(id),
            Ok(None) => failures.push(
                AssociationFailure::new(
                    "company_search",
                    ObjectType::Company,
                    input,
                    None,
                    "no company has this domain, and the route does not create missing ones (create_missing: false)"
                        .to_owned(),
                )
                .with_domain(company.domain.as_str()),
            ),
            Err((_, Failed::Credential(message))) => return Err(PlanError::Credential(message)),
            Err((_, Failed::HubSpot(error))) if is_terminal(&error) => {
                return Err(fatal(error, caller.sent, &done, &mut failures));
            }
            Err((call, Failed::HubSpot(error))) => {
                let message = error.to_string();
                failures.push(
                    AssociationFailure::new(call, ObjectType::Company, input, Some(error), message)
                        .with_domain(company.domain.as_str()),
                );
            }
        }
    }
    if stop_early && !failures.is_empty() {
        return Err(PlanError::Associations {
            failures,
            done,
            attempts: caller.sent,
        });
    }

    // 3. The deal, linked to the literal ids and the ones found.
    let mut resolved = draft.clone();
    resolved.associations.contact_ids.extend(&done.contact_ids);
    resolved.associations.company_ids.extend(&done.company_ids);
    dedup_keep_order(&mut resolved.associations.contact_ids);
    dedup_keep_order(&mut resolved.associations.company_ids);
    let upsert = api != HubSpotApi::V1 && options.upsert_by.is_some();
    let result = match existing {
        // Dedupe found it: an update (idempotent), linked below like an upserted deal.
        Some(deal_id) => {
            let properties = crm::deal_update_properties(crm::deal_properties(&resolved));
            let updated = if properties.is_empty() {
                Ok(())
            } else {
                caller
                    .call("deal_update", true, |auth| {
                        let properties = &properties;
                        async move { deals.update_deal(api, deal_id, properties, &auth).await }
                    })
                    .await
            };
            updated.map(|()| CreatedDeal {
                deal_id,
                write: super::DealWrite::Updated,
                portal_id: None,
                association_create_failures: Vec::new(),
            })
        }
        None => {
            caller
                .call("deal", upsert, |auth| {
                    let resolved = &resolved;
                    async move { deals.create(options, resolved, &auth).await }
                })
                .await
        }
    };
    let mut deal = match result {
        Ok(deal) => deal,
        Err(Failed::Credential(message)) => return Err(PlanError::Credential(message)),
        Err(Failed::HubSpot(error)) => return Err(fatal(error, caller.sent, &done, &mut failures)),
    };
    done.deal_id = Some(deal.deal_id);
    // v1 reports the links it could not make in its own answer.
    for entry in std::mem::take(&mut deal.association_create_failures) {
        tracing::warn!(call = "deal", "HubSpot could not make an association of the new deal");
        failures.push(AssociationFailure { entry, error: None });
    }

    // 4. Links, for an upserted deal (its batch input has no associations) or an updated one.
    if upsert || existing.is_some() {
        let links = resolved
            .associations
            .contact_ids
            .iter()
            .map(|id| (ObjectType::Contact, *id))
            .chain(
                resolved
                    .associations
                    .company_ids
                    .iter()
                    .map(|id| (ObjectType::Company, *id)),
            );
        let (mut contacts_seen, mut companies_seen) = (0, 0);
        for (to, id) in links {
            let input = match to {
                ObjectType::Contact => &mut contacts_seen,
                _ => &mut companies_seen,
            };
            let position = *input;
            *input += 1;
            let deal_id = deal.deal_id;
            let result = caller
                .call("association", true, |auth| async move {
                    deals.associate(api, (ObjectType::Deal, deal_id), (to, id), &auth).await
                })
                .await;
            match result {
                Ok(()) => {}
                Err(Failed::Credential(message)) => return Err(PlanError::Credential(message)),
                Err(Failed::HubSpot(error)) => {
                    let message = error.to_string();
                    failures.push(AssociationFailure::new(
                        "association",
                        to,
                        position,
                        Some(error),
                        message,
                    ));
                }
            }
        }
    }
    if stop_early && !failures.is_empty() {
        return Err(PlanError::Associations {
            failures,
            done,
            attempts: caller.sent,
        });
    }
    deal.association_create_failures = failures.into_iter().map(|f| f.entry).collect();
    Ok(deal)
}

/// Errors after which no further call can succeed: the credential refused for good (after the
/// re-read) or a spent daily limit. Anything else on a contact or company is an association failure
/// and the plan goes on — also missing scopes (the deal needs other scopes than contacts and
/// companies; the failure names the ones HubSpot wants) and no time left (the deal call then finds
/// none either and ends the plan).
fn is_terminal(error: &HubSpotError) -> bool {
    matches!(
        error,
        HubSpotError::Unauthorized { .. } | HubSpotError::OAuthRefused { .. } | HubSpotError::NoCredentials
    ) || matches!(error, HubSpotError::RateLimited { retry_after: Some(wait), .. } if *wait >= super::DAILY_LIMIT_WAIT)
}

fn input_failure(input: usize, failure: &crm::InputFailure) -> AssociationFailure {
    let (message, error) = match failure {
        crm::InputFailure::Rejected(body) => (
            body.message
                .clone()
                .unwrap_or_else(|| "HubSpot rejected this contact".to_owned()),
            Some(HubSpotError::Rejected {
                status: 207,
                body: body.clone(),
                raw: serde_json::to_string(body).unwrap_or_default(),
            }),
        ),
        crm::InputFailure::Missing => (
            "HubSpot's answer names no record for this contact; it may or may not have been written".to_owned(),
            Some(HubSpotError::OutcomeUnknown {
                status: Some(200),
                message: "no result for this contact".to_owned(),
            }),
        ),
        crm::InputFailure::Conflicting(ids) => (
            format!("HubSpot's answer names several contacts for this e-mail ({ids:?})"),
            Some(HubSpotError::OutcomeUnknown {
                status: Some(200),
                message: "several results for this contact".to_owned(),
            }),
        ),
    };
    AssociationFailure::new("contacts_upsert", ObjectType::Contact, input, error, message)
}

/// The company with `company`'s domain: found by search, else created when `create_missing`
/// (a `409` to the create is answered by searching once more), else `None`. On failure, the call
/// that failed and why.
async fn find_or_create_company<A: AuthSource + ?Sized>(
    caller: &mut Caller<'_, A>,
    deals: &dyn Deals,
    api: HubSpotApi,
    company: &CompanyLookup,
) -> Result<Option<u64>, (&'static str, Failed)> {
    let domain = company.domain.as_str();
    let search = move |auth: HubSpotAuth| async move { deals.search_company(api, domain, &auth).await };
    if let Some(found) = caller
        .call("company_search", true, search)
        .await
        .map_err(|f| ("company_search", f))?
    {
        return Ok(Some(found.id));
    }
    if !company.create_missing {
        return Ok(None);
    }
    let properties = company_properties(company);
    let created = caller
        .call("company_create", false, |auth| {
            let properties = &properties;
            async move { deals.create_company(api, domain, properties, &auth).await }
        })
        .await;
    match created {
        Ok(id) => Ok(Some(id)),
        // A portal that enforces unique domains answers 409 when another delivery created it first.
        Err(Failed::HubSpot(HubSpotError::Rejected { status: 409, .. })) => {
            match caller
                .call("company_search", true, search)
                .await
                .map_err(|f| ("company_search", f))?
            {
                Some(found) => Ok(Some(found.id)),
                None => Err((
                    "company_create",
                    Failed::HubSpot(HubSpotError::OutcomeUnknown {
                        status: Some(409),
                        message: "HubSpot says the company exists, but the search does not find it yet".to_owned(),
                    }),
                )),
            }
        }
        Err(failure) => Err(("company_create", failure)),
    }
}

fn dedup_keep_order(ids: &mut Vec<u64>) {
    let mut seen = Vec::with_capacity(ids.len());
    ids.retain(|id| {
        let fresh = !seen.contains(id);
        seen.push(*id);
        fresh
    });
}

#[cfg(test)]
mod tests;
