//! `dedupe:` in the plan ("one lead, one open deal"): after the contacts, the contact's deal is looked
//! for — first the one dealhook remembers creating for this contact (read by id: HubSpot's search lags
//! writes by seconds, catalog item 14), then `…/deals/search` on `associations.contact` with the
//! route's pipeline, open and create-date filters. When one is found, `then: update` patches it
//! (without `dealstage` and `pipeline`) and links the delivery's contacts and companies, and
//! `then: skip` writes nothing more; otherwise the deal is created as without `dedupe`.
//!
//! A search alone cannot stop two deliveries a second apart from both creating: that is the
//! pipeline's contact lock ([`crate::dedupe`]), which also supplies the remembered deal.

use std::time::SystemTime;

use serde_json::Value;

use super::caller::{Caller, Failed};
use super::{AuthSource, PlanError, PlanProgress, PlannedCall, contact_inputs};
use crate::domain::DealDraft;
use crate::hubspot::crm::{self, DealSearch, FoundDeal};
use crate::hubspot::{Deals, HubSpotApi, HubSpotRequest, ObjectType};
use crate::idempotency::epoch_millis;
use crate::mapping::{Dedupe, DedupeContact, DedupeThen};

use super::AssociationFailure;

/// `dedupe` for one run of the plan: the route's rule, the deal dealhook remembers creating for this
/// contact (from the idempotency table; `None` without one), and the time the window ends at.
#[derive(Debug, Clone, Copy)]
pub struct DedupeRun<'a> {
    /// The route's `dedupe:`.
    pub rule: &'a Dedupe,
    /// A deal dealhook created for this route and contact within the window, if it remembers one.
    pub remembered: Option<u64>,
    /// Now: the window is `within_days` back from here.
    pub now: SystemTime,
}

impl DedupeRun<'_> {
    /// The search for `contact_id`'s deals this run admits (pipeline: the draft's, or `default`).
    pub fn search(&self, contact_id: u64, draft: &DealDraft) -> DealSearch {
        DealSearch {
            contact_id,
            pipeline: self.rule.pipeline_only.then(|| pipeline_of(draft)),
            open_only: self.rule.open_only,
            created_since_ms: epoch_millis(self.now.checked_sub(self.rule.window()).unwrap_or(SystemTime::UNIX_EPOCH)),
        }
    }

    /// Whether a deal read by id passes the same filters as the search (its create date aside: it is
    /// remembered only for `within_days` after dealhook created it). An unknown `hs_is_closed` fails
    /// `open_only`.
    fn admits(&self, deal: &FoundDeal, draft: &DealDraft) -> bool {
        (!self.rule.open_only || deal.closed == Some(false))
            && (!self.rule.pipeline_only || deal.pipeline.as_deref() == Some(pipeline_of(draft).as_str()))
    }
}

fn pipeline_of(draft: &DealDraft) -> String {
    draft
        .pipeline
        .clone()
        .unwrap_or_else(|| crm::DEFAULT_PIPELINE.to_owned())
}

/// The deal `dedupe` chose for this delivery, if any: the remembered one when it still qualifies,
/// else the newest the search finds. Needs the draft's dedupe contact's id: when it was to be
/// upserted by e-mail and that failed, the plan stops ([`PlanError::Associations`]) rather than
/// create a deal it could never find again. A failed read or search stops it too
/// ([`PlanError::HubSpot`]): without it, a create could be the duplicate `dedupe` exists to prevent.
pub(super) async fn find_existing<A: AuthSource + ?Sized>(
    caller: &mut Caller<'_, A>,
    deals: &dyn Deals,
    api: HubSpotApi,
    draft: &DealDraft,
    run: &DedupeRun<'_>,
    done: &PlanProgress,
    failures: &mut Vec<AssociationFailure>,
) -> Result<Option<u64>, PlanError> {
    let fatal = |error, caller: &Caller<'_, A>, failures: &mut Vec<AssociationFailure>| PlanError::HubSpot {
        error,
        attempts: caller.sent,
        done: done.clone(),
        failures: std::mem::take(failures),
    };
    let contact_id = match DedupeContact::of(&draft.associations) {
        Some(DedupeContact::Id(id)) => Some(id),
        // Input 0 is upserted first, so when it did not fail its id is the first one recorded.
        Some(DedupeContact::Email(_)) if !failures.iter().any(is_first_contact) => done.contact_ids.first().copied(),
        _ => None,
    };
    let Some(contact_id) = contact_id else {
        tracing::warn!("dedupe: the delivery's contact could not be upserted; no deal is written");
        return Err(PlanError::Associations {
            failures: std::mem::take(failures),
            attempts: caller.sent,
            done: done.clone(),
        });
    };
    if let Some(remembered) = run.remembered {
        let read = caller
            .call("deal_read", true, |auth| async move {
                deals.read_deal(api, remembered, &auth).await
            })
            .await;
        match read {
            Ok(Some(deal)) if run.admits(&deal, draft) => {
                tracing::info!(deal_id = remembered, "dedupe: the deal made for this contact still qualifies");
                return Ok(Some(remembered));
            }
            Ok(_) => tracing::info!(
                deal_id = remembered,
                "dedupe: the deal made for this contact is gone, closed or moved; searching"
            ),
            Err(Failed::Credential(message)) => return Err(PlanError::Credential(message)),
            Err(Failed::HubSpot(error)) => return Err(fatal(error, caller, failures)),
        }
    }
    let search = run.search(contact_id, draft);
    let found = caller
        .call("deal_search", true, |auth| {
            let search = &search;
            async move { deals.search_deals(api, search, &auth).await }
        })
        .await;
    match found {
        Ok(found) => {
            tracing::info!(found = found.is_some(), "dedupe: searched the contact's deals");
            Ok(found.map(|deal| deal.id))
        }
        Err(Failed::Credential(message)) => Err(PlanError::Credential(message)),
        Err(Failed::HubSpot(error)) => Err(fatal(error, caller, failures)),
    }
}

/// Whether an association failure is the first contact's (input 0).
fn is_first_contact(failure: &AssociationFailure) -> bool {
    failure.entry.get("object").and_then(Value::as_str) == Some("contact")
        && failure.entry.get("input").and_then(Value::as_u64) == Some(0)
}

/// Adds `dedupe`'s calls to a preview ([`super::preview`]'s calls, without `upsert_by`): the read of a
/// remembered deal and the search after the contacts, the update and its links before the create, and
/// the condition on the create.
pub(super) fn add_to_preview(calls: &mut Vec<PlannedCall>, api: HubSpotApi, draft: &DealDraft, rule: &Dedupe, now: SystemTime) {
    let contacts = contact_inputs(draft).len();
    let after_contacts = match (api, contacts) {
        (_, 0) => 0,
        (HubSpotApi::V1, n) => n,
        _ => 1,
    }
    .min(calls.len());
    let run = DedupeRun {
        rule,
        remembered: None,
        now,
    };
    let contact = match DedupeContact::of(&draft.associations) {
        Some(DedupeContact::Id(id)) => id.to_string(),
        _ => "{contactId}".to_owned(),
    };
    let search = crm::deal_search_request_for(api, &contact, &run.search(0, draft));
    let read = PlannedCall {
        request: crm::deal_read_request(api, 0),
        when: Some(
            "if the idempotency table remembers a deal dealhook created for this contact: read by id \
             (`inputs: [{\"id\": \"{dealId}\"}]`), and used if still open and in the pipeline (then no search)"
                .to_owned(),
        ),
    };
    let mut read = read;
    read.request.body["inputs"] = serde_json::json!([{"id": "{dealId}"}]);
    calls.insert(after_contacts, read);
    calls.insert(
        after_contacts + 1,
        PlannedCall {
            request: search,
            when: None,
        },
    );
    let Some(create) = calls.iter().rposition(|c| c.request.method != "PUT") else {
        return;
    };
    let also = calls[create].when.take();
    calls[create].when = Some(match also {
        Some(also) => format!("if no deal is found ({also})"),
        None => "if no deal is found".to_owned(),
    });
    if rule.then == DedupeThen::Skip {
        return;
    }
    let properties = crm::deal_update_properties(crm::deal_properties(draft));
    let mut update = vec![PlannedCall {
        request: crm::deal_update_request(api, "{dealId}", properties),
        when: Some("if a deal is found (`then: update`; dealstage and pipeline are left as they are)".to_owned()),
    }];
    let link = |to: ObjectType, placeholder: &str, count: usize| PlannedCall {
        request: HubSpotRequest {
            method: "PUT".to_owned(),
            path: format!(
                "{}/{}/{{dealId}}/associations/default/{}/{placeholder}",
                api.associations_prefix(),
                ObjectType::Deal.path_name(),
                to.path_name()
            ),
            body: Value::Null,
        },
        when: Some(format!("if a deal is found: once per {} ({count})", to.path_name())),
    };
    let contact_links = draft.associations.contact_ids.len() + contacts;
    if contact_links > 0 {
        update.push(link(ObjectType::Contact, "{contactId}", contact_links));
    }
    let company_links = draft.associations.company_ids.len() + draft.associations.companies_by_domain.len();
    if company_links > 0 {
        update.push(link(ObjectType::Company, "{companyId}", company_links));
    }
    calls.splice(create..create, update);
}
