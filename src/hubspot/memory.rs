//! In-memory `Deals` for unit tests: records every draft it is asked to create and answers with
//! sequential deal ids, scripted results, or a standing failure. Never touches the network.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::crm::{self, BatchOutcome, CompanyMatch, ContactInput, MissingUpsertKey, Upserted};
use super::portal::{Pipeline, PortalSchema, PropertyDef};
use super::v1::ContactVid;
use super::{CreatedDeal, DealWrite, Deals, HubSpotApi, HubSpotError, HubSpotOptions, HubSpotRequest, ObjectType};
use crate::credentials::HubSpotAuth;
use crate::domain::DealDraft;

/// A fake HubSpot. Each `create` call is answered, in this order of precedence, by:
/// 1. the next result queued with [`MemoryDeals::push_result`] (consumed),
/// 2. the standing failure set with [`MemoryDeals::fail_with`] (every call until cleared),
/// 3. a new deal with the next sequential id (1, 2, 3, …).
///
/// Every call is recorded, whatever its answer; successful ones also appear in [`MemoryDeals::deals`].
#[derive(Debug, Default)]
pub struct MemoryDeals {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    asked: Vec<DealDraft>,
    deals: Vec<(u64, DealDraft)>,
    scripted: VecDeque<Result<CreatedDeal, HubSpotError>>,
    failure: Option<HubSpotError>,
    last_id: u64,
    /// Contacts by e-mail (their id is 1000 + position), companies by domain (2000 + position).
    contacts: Vec<String>,
    companies: Vec<String>,
    links: Vec<((ObjectType, u64), (ObjectType, u64))>,
    /// Failures queued per plan call (`contacts`, `search`, `create_company`, `associate`).
    call_failures: BTreeMap<&'static str, VecDeque<HubSpotError>>,
    plan_calls: Vec<&'static str>,
    /// The portal's schema ([`MemoryDeals::set_schema`]); `None` answers schema reads with a 404.
    schema: Option<PortalSchema>,
    /// Schema reads (`pipelines` and `properties` calls), in call order.
    schema_reads: Vec<&'static str>,
    /// `dedupe`: deals closed with [`MemoryDeals::close_deal`], whether searches see nothing
    /// (HubSpot's indexing lag), and every update made, in call order.
    closed: Vec<u64>,
    search_lags: bool,
    updates: Vec<(u64, serde_json::Map<String, serde_json::Value>)>,
}

impl MemoryDeals {
    /// An empty fake that creates every deal it is asked for.
    pub fn new() -> MemoryDeals {
        MemoryDeals::default()
    }

    /// Every draft `create` was called with, in call order, including calls that were answered
    /// with an error (so a retried delivery shows up once per attempt).
    pub fn created(&self) -> Vec<DealDraft> {
        self.lock().asked.clone()
    }

    /// How many times `create` was called.
    pub fn calls(&self) -> usize {
        self.lock().asked.len()
    }

    /// The deals that "exist": `(deal id, draft)` for every call answered with `Ok`, in call order.
    pub fn deals(&self) -> Vec<(u64, DealDraft)> {
        self.lock().deals.clone()
    }

    /// Makes every later call fail with `err` (after any scripted results), until [`Self::succeed`].
    pub fn fail_with(&self, err: HubSpotError) {
        self.lock().failure = Some(err);
    }

    /// Clears the standing failure set by [`Self::fail_with`].
    pub fn succeed(&self) {
        self.lock().failure = None;
    }

    /// Queues the answer to one later call (first in, first out), e.g. a 429 then a success.
    pub fn push_result(&self, result: Result<CreatedDeal, HubSpotError>) {
        self.lock().scripted.push_back(result);
    }

    /// Queues a failure for the next plan call named `call`: `contacts` (upsert, v1 or batch),
    /// `search`, `create_company`, `associate`, (`dedupe`) `search_deals`, `read_deal`, `update_deal`; or
    /// for the next schema read, `pipelines` or `properties`.
    pub fn fail_next(&self, call: &'static str, err: HubSpotError) {
        self.lock().call_failures.entry(call).or_default().push_back(err);
    }

    /// The plan calls made other than the deal's, by name, in call order.
    pub fn plan_calls(&self) -> Vec<&'static str> {
        self.lock().plan_calls.clone()
    }

    /// Companies that "exist", by domain, in creation order (seed one with [`Self::add_company`]).
    pub fn companies(&self) -> Vec<String> {
        self.lock().companies.clone()
    }

    /// Makes a company with `domain` exist (its id is 2000 + position); returns the id.
    pub fn add_company(&self, domain: &str) -> u64 {
        let mut state = self.lock();
        state.companies.push(domain.to_owned());
        2000 + state.companies.len() as u64
    }

    /// Marks a deal closed (`hs_is_closed: true`) for later searches and reads.
    pub fn close_deal(&self, deal_id: u64) {
        self.lock().closed.push(deal_id);
    }

    /// `true`: searches find nothing, as HubSpot's search does for seconds after a write (reads
    /// still see every deal).
    pub fn set_search_lag(&self, lags: bool) {
        self.lock().search_lags = lags;
    }

    /// Updates made with `update_deal`: `(deal id, properties)`, in call order.
    pub fn updates(&self) -> Vec<(u64, serde_json::Map<String, serde_json::Value>)> {
        self.lock().updates.clone()
    }

    /// Links made with `associate`, in call order.
    pub fn links(&self) -> Vec<((ObjectType, u64), (ObjectType, u64))> {
        self.lock().links.clone()
    }

    /// Makes schema reads answer with `schema` (pipelines, and the properties of the object types it
    /// holds; other object types have none). Without it they answer 404, so values pass through.
    pub fn set_schema(&self, schema: PortalSchema) {
        self.lock().schema = Some(schema);
    }

    /// How many schema reads (`pipelines` or `properties`) were made; a failure queued with
    /// [`Self::fail_next`] under `pipelines` or `properties` answers the next one.
    pub fn schema_reads(&self) -> usize {
        self.lock().schema_reads.len()
    }

    /// Records a schema read and answers with its queued failure, if any, else the schema (or a 404).
    fn schema_read(&self, call: &'static str) -> Result<PortalSchema, HubSpotError> {
        let mut state = self.lock();
        state.schema_reads.push(call);
        if let Some(err) = state.call_failures.get_mut(call).and_then(VecDeque::pop_front) {
            return Err(err);
        }
        state.schema.clone().ok_or_else(super::no_schema)
    }

    /// Records a plan call and answers with its queued failure, if any.
    fn plan_call(&self, call: &'static str) -> Result<MutexGuard<'_, State>, HubSpotError> {
        let mut state = self.lock();
        state.plan_calls.push(call);
        match state.call_failures.get_mut(call).and_then(VecDeque::pop_front) {
            Some(err) => Err(err),
            None => Ok(state),
        }
    }

    /// A test that panicked while holding the lock must not hide this fake's record from the next one.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Deals for MemoryDeals {
    fn preview(&self, options: &HubSpotOptions, draft: &DealDraft) -> Result<HubSpotRequest, MissingUpsertKey> {
        crm::deal_request(options, draft)
    }

    /// Answers as the type's doc says; like the real client, a draft without its `upsert_by` value
    /// is `Unbuildable` (and recorded as asked).
    async fn create(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
        _auth: &HubSpotAuth,
    ) -> Result<CreatedDeal, HubSpotError> {
        let buildable = crm::deal_request(options, draft).map(|_| ());
        let mut state = self.lock();
        if let Err(missing) = buildable {
            state.asked.push(draft.clone());
            return Err(HubSpotError::Unbuildable(missing));
        }
        state.asked.push(draft.clone());
        let result = match state.scripted.pop_front() {
            Some(scripted) => scripted,
            None => match &state.failure {
                Some(err) => Err(err.clone()),
                None => {
                    state.last_id += 1;
                    Ok(CreatedDeal {
                        write: DealWrite::Created,
                        deal_id: state.last_id,
                        portal_id: None,
                        association_create_failures: Vec::new(),
                    })
                }
            },
        };
        if let Ok(created) = &result {
            state.deals.push((created.deal_id, draft.clone()));
        }
        result
    }

    async fn upsert_contacts(
        &self,
        _api: HubSpotApi,
        contacts: &[ContactInput],
        _auth: &HubSpotAuth,
    ) -> Result<BatchOutcome, HubSpotError> {
        let mut state = self.plan_call("contacts")?;
        let inputs = contacts
            .iter()
            .map(|c| {
                let created = !state.contacts.iter().any(|e| e == c.email());
                if created {
                    state.contacts.push(c.email().to_owned());
                }
                let id = contact_id(&state.contacts, c.email());
                (
                    c.email().to_owned(),
                    Ok(Upserted {
                        id,
                        created: Some(created),
                    }),
                )
            })
            .collect();
        Ok(BatchOutcome {
            inputs,
            unmatched_errors: Vec::new(),
        })
    }

    async fn create_or_update_contact_v1(
        &self,
        contact: &ContactInput,
        _auth: &HubSpotAuth,
    ) -> Result<ContactVid, HubSpotError> {
        let mut state = self.plan_call("contacts")?;
        let created = !state.contacts.iter().any(|e| e == contact.email());
        if created {
            state.contacts.push(contact.email().to_owned());
        }
        Ok(ContactVid {
            vid: contact_id(&state.contacts, contact.email()),
            created: Some(created),
        })
    }

    async fn search_company(
        &self,
        _api: HubSpotApi,
        domain: &str,
        _auth: &HubSpotAuth,
    ) -> Result<Option<CompanyMatch>, HubSpotError> {
        let state = self.plan_call("search")?;
        Ok(state.companies.iter().position(|d| d == domain).map(|i| CompanyMatch {
            id: 2001 + i as u64,
            candidates: 1,
        }))
    }

    async fn create_company(
        &self,
        _api: HubSpotApi,
        domain: &str,
        _properties: &[(String, String)],
        _auth: &HubSpotAuth,
    ) -> Result<u64, HubSpotError> {
        let mut state = self.plan_call("create_company")?;
        state.companies.push(domain.to_owned());
        Ok(2000 + state.companies.len() as u64)
    }

    async fn associate(
        &self,
        _api: HubSpotApi,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
        _auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        let mut state = self.plan_call("associate")?;
        state.links.push((from, to));
        Ok(())
    }

    async fn pipelines(&self, _api: HubSpotApi, _auth: &HubSpotAuth) -> Result<Vec<Pipeline>, HubSpotError> {
        Ok(self.schema_read("pipelines")?.pipelines().to_vec())
    }

    async fn properties(
        &self,
        _api: HubSpotApi,
        object: ObjectType,
        _auth: &HubSpotAuth,
    ) -> Result<Vec<PropertyDef>, HubSpotError> {
        let schema = self.schema_read("properties")?;
        Ok(schema
            .properties(object)
            .map(<[PropertyDef]>::to_vec)
            .unwrap_or_default())
    }
    /// The newest deal (highest id) linked to the contact, in the pipeline and open as asked;
    /// every deal counts as created now. Nothing while [`MemoryDeals::set_search_lag`] is on.
    async fn search_deals(
        &self,
        _api: HubSpotApi,
        search: &crm::DealSearch,
        _auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        let state = self.plan_call("search_deals")?;
        if state.search_lags {
            return Ok(None);
        }
        Ok(state
            .deals
            .iter()
            .rev()
            .map(|(id, draft)| found(&state, *id, draft))
            .find(|(deal, draft)| {
                draft.associations.contact_ids.contains(&search.contact_id)
                    && search
                        .pipeline
                        .as_ref()
                        .is_none_or(|p| Some(p) == deal.pipeline.as_ref())
                    && (!search.open_only || deal.closed == Some(false))
            })
            .map(|(deal, _)| deal))
    }

    async fn read_deal(
        &self,
        _api: HubSpotApi,
        deal_id: u64,
        _auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        let state = self.plan_call("read_deal")?;
        Ok(state
            .deals
            .iter()
            .find(|(id, _)| *id == deal_id)
            .map(|(id, draft)| found(&state, *id, draft).0))
    }

    async fn update_deal(
        &self,
        _api: HubSpotApi,
        deal_id: u64,
        properties: &serde_json::Map<String, serde_json::Value>,
        _auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        let mut state = self.plan_call("update_deal")?;
        state.updates.push((deal_id, properties.clone()));
        Ok(())
    }
}

/// A fake deal as a search or read shows it (with its draft, for the contact filter).
fn found<'a>(state: &State, id: u64, draft: &'a DealDraft) -> (crm::FoundDeal, &'a DealDraft) {
    let deal = crm::FoundDeal {
        id,
        createdate: None,
        pipeline: Some(
            draft
                .pipeline
                .clone()
                .unwrap_or_else(|| crm::DEFAULT_PIPELINE.to_owned()),
        ),
        closed: Some(state.closed.contains(&id)),
    };
    (deal, draft)
}

/// A fake contact's id: 1000 + its position (1-based) among the contacts upserted so far.
fn contact_id(contacts: &[String], email: &str) -> u64 {
    1001 + contacts.iter().position(|e| e == email).unwrap_or(contacts.len()) as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;
    use crate::domain::Associations;
    use crate::hubspot::HubSpotErrorBody;

    fn draft(stage: &str) -> DealDraft {
        DealDraft {
            pipeline: None,
            dealstage: stage.to_owned(),
            properties: vec![],
            associations: Associations::default(),
        }
    }

    fn auth() -> HubSpotAuth {
        HubSpotAuth::AccessToken(SecretString::from("test-token".to_owned()))
    }

    fn rate_limited() -> HubSpotError {
        HubSpotError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
            body: HubSpotErrorBody::default(),
        }
    }

    #[tokio::test]
    async fn memory_deals_records_drafts_and_hands_out_sequential_ids() {
        let deals = MemoryDeals::new();
        let first = deals
            .create(&HubSpotOptions::default(), &draft("a"), &auth())
            .await
            .unwrap();
        let second = deals
            .create(&HubSpotOptions::default(), &draft("b"), &auth())
            .await
            .unwrap();
        assert_eq!((first.deal_id, second.deal_id), (1, 2));
        assert_eq!(deals.created(), vec![draft("a"), draft("b")]);
        assert_eq!(deals.deals(), vec![(1, draft("a")), (2, draft("b"))]);
    }

    #[tokio::test]
    async fn scripted_results_are_replayed_in_order_before_the_default() {
        let deals = MemoryDeals::new();
        deals.push_result(Err(rate_limited()));
        deals.push_result(Ok(CreatedDeal {
            write: DealWrite::Created,
            deal_id: 151_088,
            portal_id: Some(62_515),
            association_create_failures: vec![],
        }));
        let first = deals.create(&HubSpotOptions::default(), &draft("a"), &auth()).await;
        assert!(matches!(first, Err(HubSpotError::RateLimited { .. })), "{first:?}");
        let second = deals
            .create(&HubSpotOptions::default(), &draft("a"), &auth())
            .await
            .unwrap();
        assert_eq!(second.deal_id, 151_088);
        let third = deals
            .create(&HubSpotOptions::default(), &draft("c"), &auth())
            .await
            .unwrap();
        assert_eq!(third.deal_id, 1, "back to sequential ids once the script is used up");
        assert_eq!(deals.calls(), 3);
        assert_eq!(deals.deals(), vec![(151_088, draft("a")), (1, draft("c"))]);
    }

    #[tokio::test]
    async fn a_standing_failure_answers_every_call_until_cleared() {
        let deals = MemoryDeals::new();
        deals.fail_with(HubSpotError::Unavailable {
            status: Some(503),
            message: "down".to_owned(),
        });
        for _ in 0..2 {
            let err = deals
                .create(&HubSpotOptions::default(), &draft("a"), &auth())
                .await
                .unwrap_err();
            assert_eq!(err.status(), Some(503));
        }
        assert_eq!(deals.created().len(), 2, "failed attempts are recorded too");
        assert!(deals.deals().is_empty());
        deals.succeed();
        assert_eq!(
            deals
                .create(&HubSpotOptions::default(), &draft("a"), &auth())
                .await
                .unwrap()
                .deal_id,
            1
        );
    }

    #[test]
    fn memory_deals_previews_the_request_of_the_route_s_api() {
        let d = draft("a");
        let v1 = HubSpotOptions::default();
        assert_eq!(
            MemoryDeals::new().preview(&v1, &d),
            Ok(crate::hubspot::v1::create_request(&d))
        );
        let current = HubSpotOptions {
            api: crate::hubspot::HubSpotApi::V2026_03,
            upsert_by: None,
        };
        assert_eq!(
            MemoryDeals::new().preview(&current, &d).unwrap().path,
            "/crm/objects/2026-03/deals"
        );
    }

    #[tokio::test]
    async fn a_draft_without_its_upsert_key_is_unbuildable_and_nothing_is_created() {
        let deals = MemoryDeals::new();
        let options = HubSpotOptions {
            api: crate::hubspot::HubSpotApi::V2026_03,
            upsert_by: Some("webhook_event_id".to_owned()),
        };
        let err = deals.create(&options, &draft("a"), &auth()).await.unwrap_err();
        assert!(
            matches!(&err, HubSpotError::Unbuildable(m) if m.property == "webhook_event_id"),
            "{err:?}"
        );
        assert_eq!(err.reason(), crate::domain::Reason::MappingFailed);
        assert!(deals.deals().is_empty());
        assert_eq!(deals.calls(), 1);
    }
}
