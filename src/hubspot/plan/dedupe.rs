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
            created_since_ms: epoch_millis(
                self.now
                    .checked_sub(self.rule.window())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            ),
        }
    }

    /// Whether a deal read by id passes the same filters as the search (its create date aside: it is
    /// remembered only for `within_days` after dealhook created it). An unknown `hs_is_closed` fails
    /// `open_only`.
    fn admits(&self, deal: &FoundDeal, draft: &DealDraft) -> bool {
        (!self.rule.open_only || deal.closed == Some(false))
            && (!self.rule.pipeline_only || deal.pipeline.as_deref() == Some(pipeline_of(draft).as_str()))
    }

    /// Whether a search result's own properties contradict the search's filters: closed under
    /// `open_only`, or in another pipeline under `pipeline_only`. Absent properties contradict nothing.
    fn contradicts(&self, deal: &FoundDeal, draft: &DealDraft) -> bool {
        (self.rule.open_only && deal.closed == Some(true))
            || (self.rule.pipeline_only
                && deal
                    .pipeline
                    .as_deref()
                    .is_some_and(|pipeline| pipeline != pipeline_of(draft)))
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
                tracing::info!(
                    deal_id = remembered,
                    "dedupe: the deal made for this contact still qualifies"
                );
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
        // HubSpot filtered on the server; a result whose own properties say otherwise (closed, or in
        // another pipeline) is not taken. One that leaves them out is (the filters asked for them).
        Ok(Some(deal)) if run.contradicts(&deal, draft) => {
            tracing::warn!(
                deal_id = deal.id,
                "dedupe: the search returned a deal its filters exclude (closed or in another pipeline); not using it"
            );
            Ok(None)
        }
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
pub(super) fn add_to_preview(
    calls: &mut Vec<PlannedCall>,
    api: HubSpotApi,
    draft: &DealDraft,
    rule: &Dedupe,
    now: SystemTime,
) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;
    use crate::credentials::HubSpotAuth;
    use crate::domain::{Associations, ContactUpsert, Email, PropValue, Property};
    use crate::hubspot::plan::write_deal;
    use crate::hubspot::{CreatedDeal, DealWrite, HubSpotError, HubSpotOptions, MemoryDeals, RetryPolicy};
    use crate::mapping::OnAssociationFailure;

    struct Auth;

    #[async_trait]
    impl AuthSource for Auth {
        async fn hubspot_auth(&self, _refresh: bool) -> Result<HubSpotAuth, String> {
            Ok(HubSpotAuth::AccessToken(SecretString::from("tok".to_owned())))
        }
    }

    const V3: HubSpotOptions = HubSpotOptions {
        api: HubSpotApi::V3,
        upsert_by: None,
    };

    fn lead(pipeline: Option<&str>) -> DealDraft {
        DealDraft {
            pipeline: pipeline.map(str::to_owned),
            dealstage: "appointmentscheduled".to_owned(),
            properties: vec![Property {
                name: "amount".to_owned(),
                value: PropValue::Number("12".to_owned()),
            }],
            associations: Associations {
                company_ids: vec![9],
                contacts_by_email: vec![ContactUpsert {
                    email: Email::parse("ada@acme.example").unwrap(),
                    properties: vec![],
                }],
                ..Associations::default()
            },
        }
    }

    async fn write(
        deals: &MemoryDeals,
        draft: &DealDraft,
        rule: &Dedupe,
        remembered: Option<u64>,
    ) -> Result<CreatedDeal, PlanError> {
        let policy = RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        let run = DedupeRun {
            rule,
            remembered,
            now: SystemTime::now(),
        };
        let on_failure = OnAssociationFailure::Report;
        write_deal(deals, &Auth, &V3, draft, on_failure, policy, None, Some(run)).await
    }

    fn skip() -> Dedupe {
        Dedupe {
            then: DedupeThen::Skip,
            ..Dedupe::default()
        }
    }

    #[tokio::test]
    async fn without_a_deal_the_contact_gets_one_and_the_second_form_updates_it() {
        let deals = MemoryDeals::new();
        let first = write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap();
        assert_eq!((first.deal_id, first.write), (1, DealWrite::Created));
        let second = write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap();
        assert_eq!((second.deal_id, second.write), (1, DealWrite::Updated));
        assert_eq!(deals.calls(), 1, "one create");
        let updates = deals.updates();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].0, 1);
        assert_eq!(
            serde_json::Value::Object(updates[0].1.clone()),
            json!({"amount": "12"}),
            "no stage or pipeline"
        );
        // The contact (1001) and the company (9), linked to the updated deal.
        assert_eq!(
            deals.links(),
            [
                ((ObjectType::Deal, 1), (ObjectType::Contact, 1001)),
                ((ObjectType::Deal, 1), (ObjectType::Company, 9))
            ]
        );
        assert_eq!(
            deals.plan_calls(),
            [
                "contacts",
                "search_deals",
                "contacts",
                "search_deals",
                "update_deal",
                "associate",
                "associate"
            ]
        );
    }

    #[tokio::test]
    async fn skip_writes_nothing_to_the_deal_found() {
        let deals = MemoryDeals::new();
        write(&deals, &lead(None), &skip(), None).await.unwrap();
        let second = write(&deals, &lead(None), &skip(), None).await.unwrap();
        assert_eq!((second.deal_id, second.write), (1, DealWrite::Skipped));
        assert_eq!((deals.calls(), deals.updates().len(), deals.links().len()), (1, 0, 0));
    }

    /// Deals that do not count, each making the next delivery create another.
    #[tokio::test]
    async fn a_closed_deal_or_one_in_another_pipeline_does_not_count() {
        let deals = MemoryDeals::new();
        write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap();
        deals.close_deal(1);
        let after_close = write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap();
        assert_eq!(
            (after_close.deal_id, after_close.write),
            (2, DealWrite::Created),
            "closed"
        );
        let other_pipeline = write(&deals, &lead(Some("renewals")), &Dedupe::default(), None)
            .await
            .unwrap();
        assert_eq!(
            (other_pipeline.deal_id, other_pipeline.write),
            (3, DealWrite::Created),
            "pipeline"
        );
        let any_pipeline = Dedupe {
            pipeline_only: false,
            ..Dedupe::default()
        };
        let found = write(&deals, &lead(None), &any_pipeline, None).await.unwrap();
        assert_eq!(
            (found.deal_id, found.write),
            (3, DealWrite::Updated),
            "the newest, any pipeline"
        );
        let closed_too = Dedupe {
            open_only: false,
            ..Dedupe::default()
        };
        deals.close_deal(2);
        let found = write(&deals, &lead(None), &closed_too, None).await.unwrap();
        assert_eq!(
            (found.deal_id, found.write),
            (2, DealWrite::Updated),
            "closed ones count"
        );
    }

    #[tokio::test]
    async fn a_remembered_deal_is_used_while_the_search_lags_and_only_while_it_qualifies() {
        let deals = MemoryDeals::new();
        write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap();
        deals.set_search_lag(true);
        let found = write(&deals, &lead(None), &Dedupe::default(), Some(1)).await.unwrap();
        assert_eq!((found.deal_id, found.write), (1, DealWrite::Updated));
        assert!(!deals.plan_calls().ends_with(&["search_deals"]));
        deals.close_deal(1);
        let created = write(&deals, &lead(None), &Dedupe::default(), Some(1)).await.unwrap();
        assert_eq!((created.deal_id, created.write), (2, DealWrite::Created));
        let gone = write(&deals, &lead(None), &Dedupe::default(), Some(99)).await.unwrap();
        assert_eq!(
            gone.write,
            DealWrite::Created,
            "a remembered deal that no longer exists"
        );
    }

    /// Failures before the decision: nothing is created.
    #[tokio::test]
    async fn without_the_contact_or_the_search_no_deal_is_written() {
        let unavailable = || HubSpotError::Unavailable {
            status: Some(500),
            message: "boom".to_owned(),
        };
        let deals = MemoryDeals::new();
        deals.fail_next(
            "contacts",
            HubSpotError::Rejected {
                status: 400,
                body: Default::default(),
                raw: String::new(),
            },
        );
        let error = write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap_err();
        assert!(
            matches!(error, PlanError::Associations { ref failures, .. } if failures.len() == 1),
            "{error:?}"
        );
        for _ in 0..10 {
            deals.fail_next("search_deals", unavailable());
        }
        let error = write(&deals, &lead(None), &Dedupe::default(), None).await.unwrap_err();
        let PlanError::HubSpot { error, done, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(error.status(), Some(500));
        assert_eq!((done.contact_ids, done.deal_id), (vec![1001], None));
        assert_eq!(deals.calls(), 0, "no create");
    }

    #[test]
    fn the_preview_lists_the_search_the_update_and_the_conditional_create() {
        let calls = crate::hubspot::plan::preview_deduped(&V3, &lead(None), Some(&Dedupe::default())).unwrap();
        let shown: Vec<(String, String, Option<&str>)> = calls
            .iter()
            .map(|c| (c.request.method.clone(), c.request.path.clone(), c.when.as_deref()))
            .collect();
        let paths: Vec<&str> = shown.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/crm/v3/objects/contacts/batch/upsert",
                "/crm/v3/objects/deals/batch/read",
                "/crm/v3/objects/deals/search",
                "/crm/v3/objects/deals/{dealId}",
                "/crm/v4/objects/deals/{dealId}/associations/default/contacts/{contactId}",
                "/crm/v4/objects/deals/{dealId}/associations/default/companies/{companyId}",
                "/crm/v3/objects/deals",
            ]
        );
        assert_eq!(
            calls[2].request.body["filterGroups"][0]["filters"][0]["value"],
            "{contactId}"
        );
        assert_eq!(calls[2].when, None);
        assert!(calls[3].when.as_deref().unwrap().contains("if a deal is found"));
        assert_eq!(calls[3].request.body, json!({"properties": {"amount": "12"}}));
        assert!(calls[6].when.as_deref().unwrap().starts_with("if no deal is found"));
        let skipped = crate::hubspot::plan::preview_deduped(&V3, &lead(None), Some(&skip())).unwrap();
        assert_eq!(skipped.len(), 4, "contacts, read, search, create: {skipped:#?}");
        assert_eq!(
            crate::hubspot::plan::deal_request_of(&calls).map(|r| r.path.as_str()),
            Some("/crm/v3/objects/deals")
        );
    }
}
