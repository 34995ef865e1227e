//! The plan against the in-memory HubSpot: order, what each failure makes of the delivery, the
//! credential re-read once for the whole plan, and nothing sent for an unbuildable deal. (The
//! wire, retries over HTTP and the handler: tests/api/plan.rs.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;

use super::*;
use crate::domain::{Associations, CompanyDomain, ContactUpsert, Email, PropValue, Property};
use crate::hubspot::{HubSpotErrorBody, MemoryDeals};

struct Auth {
    reads: AtomicUsize,
    refreshes: AtomicUsize,
}

#[async_trait]
impl AuthSource for Auth {
    async fn hubspot_auth(&self, refresh: bool) -> Result<HubSpotAuth, String> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(HubSpotAuth::AccessToken(SecretString::from("tok".to_owned())))
    }
}

fn auth() -> Auth {
    Auth {
        reads: AtomicUsize::new(0),
        refreshes: AtomicUsize::new(0),
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
        ..RetryPolicy::default()
    }
}

fn lead(create_missing: bool) -> DealDraft {
    DealDraft {
        pipeline: None,
        dealstage: "new".to_owned(),
        properties: vec![Property {
            name: "webhook_event_id".to_owned(),
            value: PropValue::Text("evt_1".to_owned()),
        }],
        associations: Associations {
            contact_ids: vec![7],
            contacts_by_email: vec![ContactUpsert {
                email: Email::parse("ada@acme.example").unwrap(),
                properties: vec![],
            }],
            companies_by_domain: vec![CompanyLookup {
                domain: CompanyDomain::parse("acme.example").unwrap(),
                create_missing,
                properties: vec![],
            }],
            ..Associations::default()
        },
    }
}

fn api(api: HubSpotApi, upsert_by: Option<&str>) -> HubSpotOptions {
    HubSpotOptions {
        api,
        upsert_by: upsert_by.map(str::to_owned),
    }
}

fn unauthorized() -> HubSpotError {
    HubSpotError::Unauthorized {
        status: 401,
        body: HubSpotErrorBody::default(),
    }
}

async fn run(
    deals: &MemoryDeals,
    options: &HubSpotOptions,
    draft: &DealDraft,
    on_failure: OnAssociationFailure,
) -> Result<CreatedDeal, PlanError> {
    create_deal(deals, &auth(), options, draft, on_failure, policy(), None).await
}

#[tokio::test]
async fn contacts_then_companies_then_the_deal_linked_to_what_was_found_and_the_literal_ids() {
    let deals = MemoryDeals::new();
    let deal = run(
        &deals,
        &api(HubSpotApi::V2026_03, None),
        &lead(true),
        OnAssociationFailure::Report,
    )
    .await
    .unwrap();
    assert_eq!(deals.plan_calls(), ["contacts", "search", "create_company"]);
    assert!(deal.association_create_failures.is_empty());
    let (_, sent) = &deals.deals()[0];
    assert_eq!(sent.associations.contact_ids, [7, 1001]);
    assert_eq!(sent.associations.company_ids, [2001]);
}

#[tokio::test]
async fn an_upserted_deal_is_linked_afterwards_one_put_per_record() {
    let deals = MemoryDeals::new();
    let options = api(HubSpotApi::V2026_03, Some("webhook_event_id"));
    run(&deals, &options, &lead(true), OnAssociationFailure::Report)
        .await
        .unwrap();
    let links: Vec<(ObjectType, u64)> = deals.links().into_iter().map(|(_, to)| to).collect();
    assert_eq!(
        links,
        [
            (ObjectType::Contact, 7),
            (ObjectType::Contact, 1001),
            (ObjectType::Company, 2001)
        ]
    );
}

#[tokio::test]
async fn a_deal_that_cannot_be_built_sends_nothing_at_all() {
    let deals = MemoryDeals::new();
    let mut draft = lead(true);
    draft.properties.clear();
    let options = api(HubSpotApi::V2026_03, Some("webhook_event_id"));
    let err = run(&deals, &options, &draft, OnAssociationFailure::Report)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlanError::HubSpot { error: HubSpotError::Unbuildable(_), attempts: 0, done, .. } if done.is_empty()),
        "{err:?}"
    );
    assert!(deals.plan_calls().is_empty());
    assert_eq!(deals.calls(), 0);
}

#[tokio::test]
async fn the_credential_is_re_read_once_for_the_whole_plan() {
    let deals = MemoryDeals::new();
    deals.fail_next("contacts", unauthorized());
    deals.fail_next("search", unauthorized());
    let source = auth();
    let err = create_deal(
        &deals,
        &source,
        &api(HubSpotApi::V2026_03, None),
        &lead(true),
        OnAssociationFailure::Report,
        policy(),
        None,
    )
    .await
    .unwrap_err();
    // The contacts' 401 re-reads the secret; the search's second 401 ends the plan (no second
    // re-read), with the contact upserted kept as done.
    assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
    match err {
        PlanError::HubSpot { error, done, .. } => {
            assert!(matches!(error, HubSpotError::Unauthorized { .. }));
            assert_eq!(done.contact_ids, [1001]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(deals.calls(), 0, "no deal");
}

#[tokio::test]
async fn a_company_not_found_without_create_missing_is_reported_or_dead_letters() {
    let deals = MemoryDeals::new();
    let options = api(HubSpotApi::V2026_03, None);
    let deal = run(&deals, &options, &lead(false), OnAssociationFailure::Report)
        .await
        .unwrap();
    assert_eq!(deal.association_create_failures.len(), 1);
    assert_eq!(deal.association_create_failures[0]["reason"], "not_found");
    assert_eq!(deal.association_create_failures[0]["domain"], "acme.example");

    let deals = MemoryDeals::new();
    let err = run(&deals, &options, &lead(false), OnAssociationFailure::DeadLetter)
        .await
        .unwrap_err();
    match err {
        PlanError::Associations { failures, done, .. } => {
            assert_eq!(failures.len(), 1);
            assert_eq!((done.contact_ids.as_slice(), done.deal_id), (&[1001][..], None));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(deals.calls(), 0, "dead_letter stops before the deal");
}

#[tokio::test]
async fn a_failed_link_in_dead_letter_mode_carries_the_deal_id() {
    let deals = MemoryDeals::new();
    deals.fail_next(
        "associate",
        HubSpotError::Rejected {
            status: 400,
            body: HubSpotErrorBody::default(),
            raw: String::new(),
        },
    );
    let options = api(HubSpotApi::V2026_03, Some("webhook_event_id"));
    let err = run(&deals, &options, &lead(true), OnAssociationFailure::DeadLetter)
        .await
        .unwrap_err();
    match err {
        PlanError::Associations { failures, done, .. } => {
            assert_eq!(done.deal_id, Some(1));
            assert_eq!(failures[0].entry["call"], "association");
            assert_eq!(deals.links().len(), 2, "the other links are still made");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_preview_lists_v1_contacts_one_call_each_and_the_links_of_an_upsert() {
    let mut draft = lead(false);
    draft.associations.contacts_by_email.push(ContactUpsert {
        email: Email::parse("bob@acme.example").unwrap(),
        properties: vec![],
    });
    let v1 = preview(&HubSpotOptions::default(), &draft).unwrap();
    let paths: Vec<&str> = v1.iter().map(|c| c.request.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/contacts/v1/contact/createOrUpdate/email/ada%40acme.example/",
            "/contacts/v1/contact/createOrUpdate/email/bob%40acme.example/",
            "/crm/v3/objects/companies/search",
            "/deals/v1/deal/"
        ]
    );
    let upsert = preview(&api(HubSpotApi::V2026_03, Some("webhook_event_id")), &draft).unwrap();
    let last: Vec<(&str, Option<&str>)> = upsert
        .iter()
        .rev()
        .take(2)
        .map(|c| (c.request.method.as_str(), c.when.as_deref()))
        .collect();
    assert_eq!(
        last,
        [
            ("PUT", Some("once per company (1)")),
            ("PUT", Some("once per contact (3)"))
        ]
    );
    assert_eq!(
        deal_request_of(&upsert).unwrap().path,
        "/crm/objects/2026-03/deals/batch/upsert"
    );
}
