//! The real [`Deals`] and the other calls a delivery makes, each one HTTP exchange through the
//! transport ([`HubSpotClient::send`]) between a builder and a parser of `v1`/`crm`. Never retries:
//! the caller owns retries (see [`HubSpotError::is_retryable`] and
//! [`HubSpotError::is_retryable_if_idempotent`]).

use std::time::Instant;

use async_trait::async_trait;
use tracing::field::Empty;

use super::crm::{self, BatchOutcome, CompanyMatch, ContactInput, MissingUpsertKey};
use super::transport::SCHEMA_BODY_LIMIT;
use super::v1::{self, ContactVid};
use super::{
    CreatedDeal, Deals, HubSpotApi, HubSpotClient, HubSpotError, HubSpotOptions, HubSpotRequest, ObjectType, portal,
};
use crate::credentials::HubSpotAuth;
use crate::domain::DealDraft;

#[async_trait]
impl Deals for HubSpotClient {
    fn preview(&self, options: &HubSpotOptions, draft: &DealDraft) -> Result<HubSpotRequest, MissingUpsertKey> {
        crm::deal_request(options, draft)
    }

    /// One request ([`crm::deal_request`]): v1 `POST /deals/v1/deal/`, v3/2026-03 create, or their
    /// batch upsert with `upsert_by`. 2xx with a readable deal id → `Ok`; 2xx otherwise →
    /// `OutcomeUnknown`; a 207 naming an error for the deal → `Rejected`; other answers as
    /// [`HubSpotClient::send`] classifies them. A draft without the `upsert_by` value → `Unbuildable`
    /// (nothing sent).
    #[tracing::instrument(
        name = "hubspot_create_deal",
        skip_all,
        fields(path = Empty, api = %options.api, auth = auth_kind(auth), method = Empty, url = Empty, status = Empty, duration_ms = Empty)
    )]
    async fn create(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
        auth: &HubSpotAuth,
    ) -> Result<CreatedDeal, HubSpotError> {
        let started = Instant::now();
        let result = self.send_deal(options, draft, auth).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::Span::current().record("duration_ms", elapsed_ms);
        match &result {
            Ok(created) => tracing::info!(
                deal_id = created.deal_id,
                write = created.write.as_str(),
                "HubSpot wrote the deal"
            ),
            // One attempt of possibly several (the plan retries): not yet the delivery's outcome.
            // HubSpot's message may quote the values it refused (an e-mail, a name): DEBUG, on request only.
            Err(err) => {
                tracing::warn!(
                    reason = %err.reason(),
                    status = err.status(),
                    category = err.category(),
                    "the deal call failed"
                );
                if crate::telemetry::payloads_logged() {
                    tracing::debug!(error = %err, "the deal call failed: HubSpot's answer (DEALHOOK_LOG_PAYLOADS)");
                }
            }
        }
        result
    }

    async fn upsert_contacts(
        &self,
        api: HubSpotApi,
        contacts: &[ContactInput],
        auth: &HubSpotAuth,
    ) -> Result<BatchOutcome, HubSpotError> {
        HubSpotClient::upsert_contacts(self, api, contacts, auth).await
    }

    async fn create_or_update_contact_v1(
        &self,
        contact: &ContactInput,
        auth: &HubSpotAuth,
    ) -> Result<ContactVid, HubSpotError> {
        HubSpotClient::create_or_update_contact_v1(self, contact, auth).await
    }

    async fn search_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        auth: &HubSpotAuth,
    ) -> Result<Option<CompanyMatch>, HubSpotError> {
        HubSpotClient::search_company(self, api, domain, auth).await
    }

    async fn create_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        properties: &[(String, String)],
        auth: &HubSpotAuth,
    ) -> Result<u64, HubSpotError> {
        HubSpotClient::create_company(self, api, domain, properties, auth).await
    }

    async fn associate(
        &self,
        api: HubSpotApi,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        HubSpotClient::associate(self, api, from, to, auth).await
    }

    async fn pipelines(&self, api: HubSpotApi, auth: &HubSpotAuth) -> Result<Vec<portal::Pipeline>, HubSpotError> {
        HubSpotClient::pipelines(self, api, auth).await
    }

    async fn properties(
        &self,
        api: HubSpotApi,
        object: ObjectType,
        auth: &HubSpotAuth,
    ) -> Result<Vec<portal::PropertyDef>, HubSpotError> {
        HubSpotClient::properties(self, api, object, auth).await
    }

    async fn search_deals(
        &self,
        api: HubSpotApi,
        search: &crm::DealSearch,
        auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        HubSpotClient::search_deals(self, api, search, auth).await
    }

    async fn read_deal(
        &self,
        api: HubSpotApi,
        deal_id: u64,
        auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        HubSpotClient::read_deal(self, api, deal_id, auth).await
    }

    async fn update_deal(
        &self,
        api: HubSpotApi,
        deal_id: u64,
        properties: &serde_json::Map<String, serde_json::Value>,
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        HubSpotClient::update_deal(self, api, deal_id, properties, auth).await
    }
}

impl HubSpotClient {
    async fn send_deal(
        &self,
        options: &HubSpotOptions,
        draft: &DealDraft,
        auth: &HubSpotAuth,
    ) -> Result<CreatedDeal, HubSpotError> {
        let request = crm::deal_request(options, draft).map_err(HubSpotError::Unbuildable)?;
        tracing::Span::current().record("path", request.path.as_str());
        let answer = self.send_about(&request, auth, "the deal").await?;
        let unknown = |why: String| HubSpotError::OutcomeUnknown {
            status: Some(answer.status),
            message: format!("HTTP {} but {why}; the deal may exist", answer.status),
        };
        match (options.api, &options.upsert_by) {
            (HubSpotApi::V1, _) => v1::parse_created(&answer.body).map_err(|e| unknown(e.to_string())),
            (_, None) => crm::parse_created_deal(&answer.body).map_err(|e| unknown(e.to_string())),
            (_, Some(property)) => {
                let key = crm::deal_properties(draft)
                    .get(property)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                crm::parse_deal_upsert(answer.status, &answer.body, property, &key)
            }
        }
    }

    /// Upserts contacts by e-mail in one `POST …/contacts/batch/upsert` ([`crm::contacts_upsert_request`];
    /// v3 or 2026-03). Every input gets an outcome, matched by lower-cased e-mail
    /// ([`crm::parse_contacts_upsert`]); an answer that cannot be read → `OutcomeUnknown` (upserts are
    /// idempotent: it may be sent again, see [`HubSpotError::is_retryable_if_idempotent`]).
    #[tracing::instrument(name = "hubspot_upsert_contacts", skip_all, fields(api = %api, contacts = contacts.len(), method = Empty, url = Empty, status = Empty))]
    pub async fn upsert_contacts(
        &self,
        api: HubSpotApi,
        contacts: &[ContactInput],
        auth: &HubSpotAuth,
    ) -> Result<BatchOutcome, HubSpotError> {
        let request = crm::contacts_upsert_request(api, contacts);
        let answer = self.send_about(&request, auth, "the contacts").await?;
        crm::parse_contacts_upsert(&answer.body, contacts)
            .map_err(|e| unreadable(answer.status, &e, "the contacts may have been written"))
    }

    /// v1's `POST /contacts/v1/contact/createOrUpdate/email/{email}/` ([`v1::contact_request`]) for one
    /// contact: its `vid`. Idempotent by e-mail.
    #[tracing::instrument(name = "hubspot_contact_v1", skip_all, fields(method = Empty, url = Empty, status = Empty))]
    pub async fn create_or_update_contact_v1(
        &self,
        contact: &ContactInput,
        auth: &HubSpotAuth,
    ) -> Result<ContactVid, HubSpotError> {
        let request = v1::contact_request(contact);
        let answer = self.send_about(&request, auth, "the contact").await?;
        v1::parse_contact(&answer.body).map_err(|e| unreadable(answer.status, &e, "the contact may have been written"))
    }

    /// Searches companies by domain ([`crm::company_search_request`]): the chosen one, or `None`.
    /// A read: an unreadable answer is `OutcomeUnknown` only in name (nothing was written), and may
    /// be retried.
    #[tracing::instrument(name = "hubspot_search_company", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn search_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        auth: &HubSpotAuth,
    ) -> Result<Option<CompanyMatch>, HubSpotError> {
        let request = crm::company_search_request(api, domain);
        let answer = self.send_about(&request, auth, "nothing (a search)").await?;
        crm::parse_company_search(&answer.body)
            .map_err(|e| unreadable(answer.status, &e, "nothing was written (a search)"))
    }

    /// Creates a company ([`crm::company_create_request`]): its id. Not idempotent: after a 5xx or
    /// an unknown outcome the company may exist (search again rather than create again).
    #[tracing::instrument(name = "hubspot_create_company", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn create_company(
        &self,
        api: HubSpotApi,
        domain: &str,
        properties: &[(String, String)],
        auth: &HubSpotAuth,
    ) -> Result<u64, HubSpotError> {
        let request = crm::company_create_request(api, domain, properties);
        let answer = self.send_about(&request, auth, "the company").await?;
        crm::parse_created_object(&answer.body).map_err(|e| unreadable(answer.status, &e, "the company may exist"))
    }

    /// Links two records with the default association ([`crm::association_request`]). Idempotent.
    /// A 2xx listing `errors` → `Rejected` with HubSpot's first error.
    #[tracing::instrument(name = "hubspot_associate", skip_all, fields(api = %api, from = from.path_name(), to = to.path_name(), method = Empty, url = Empty, status = Empty))]
    pub async fn associate(
        &self,
        api: HubSpotApi,
        (from, from_id): (ObjectType, u64),
        (to, to_id): (ObjectType, u64),
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        let request = crm::association_request(api, from, from_id, to, to_id);
        let answer = self.send_about(&request, auth, "the association").await?;
        crm::parse_association(&answer.body).map_err(|body| HubSpotError::Rejected {
            status: answer.status,
            raw: serde_json::to_string(&body).unwrap_or_default(),
            body,
        })
    }
}

impl HubSpotClient {
    /// Searches a contact's deals ([`crm::deal_search_request`]): the newest admitted, or `None`. A
    /// read: an unreadable answer is `OutcomeUnknown` only in name (nothing was written), and may be
    /// retried.
    #[tracing::instrument(name = "hubspot_search_deals", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn search_deals(
        &self,
        api: HubSpotApi,
        search: &crm::DealSearch,
        auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        let request = crm::deal_search_request(api, search);
        let answer = self.send_about(&request, auth, "nothing (a search)").await?;
        crm::parse_deal_search(&answer.body)
            .map_err(|e| unreadable(answer.status, &e, "nothing was written (a search)"))
    }

    /// Reads one deal ([`crm::deal_read_request`]): `None` when HubSpot has no such deal. A read.
    #[tracing::instrument(name = "hubspot_read_deal", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn read_deal(
        &self,
        api: HubSpotApi,
        deal_id: u64,
        auth: &HubSpotAuth,
    ) -> Result<Option<crm::FoundDeal>, HubSpotError> {
        let request = crm::deal_read_request(api, deal_id);
        let answer = self.send_about(&request, auth, "nothing (a read)").await?;
        crm::parse_deal_read(&answer.body, deal_id)
            .map_err(|e| unreadable(answer.status, &e, "nothing was written (a read)"))
    }

    /// Updates a deal's properties ([`crm::deal_update_request`]). Any 2xx is success (the body is
    /// not needed). Idempotent: the same values may be sent again.
    #[tracing::instrument(name = "hubspot_update_deal", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn update_deal(
        &self,
        api: HubSpotApi,
        deal_id: u64,
        properties: &serde_json::Map<String, serde_json::Value>,
        auth: &HubSpotAuth,
    ) -> Result<(), HubSpotError> {
        let request = crm::deal_update_request(api, &deal_id.to_string(), properties.clone());
        self.send_about(&request, auth, "the deal's update").await.map(|_| ())
    }

    /// The portal's deal pipelines ([`portal::pipelines_request`], [`portal::parse_pipelines`]). A read:
    /// an unreadable 2xx answer is `OutcomeUnknown` only in name (nothing was written).
    #[tracing::instrument(name = "hubspot_pipelines", skip_all, fields(api = %api, method = Empty, url = Empty, status = Empty))]
    pub async fn pipelines(&self, api: HubSpotApi, auth: &HubSpotAuth) -> Result<Vec<portal::Pipeline>, HubSpotError> {
        let request = portal::pipelines_request(api);
        let answer = self
            .send_limited(&request, auth, "nothing (a read)", SCHEMA_BODY_LIMIT)
            .await?;
        portal::parse_pipelines(&answer.body).map_err(|e| unreadable(answer.status, &e, "nothing was written (a read)"))
    }

    /// The properties of `object` ([`portal::properties_request`], [`portal::parse_properties`]). A read,
    /// as [`Self::pipelines`].
    #[tracing::instrument(name = "hubspot_properties", skip_all, fields(api = %api, object = object.path_name(), method = Empty, url = Empty, status = Empty))]
    pub async fn properties(
        &self,
        api: HubSpotApi,
        object: ObjectType,
        auth: &HubSpotAuth,
    ) -> Result<Vec<portal::PropertyDef>, HubSpotError> {
        let request = portal::properties_request(api, object);
        let answer = self
            .send_limited(&request, auth, "nothing (a read)", SCHEMA_BODY_LIMIT)
            .await?;
        portal::parse_properties(&answer.body)
            .map_err(|e| unreadable(answer.status, &e, "nothing was written (a read)"))
    }
}

/// A 2xx answer that could not be read: `OutcomeUnknown`, saying what HubSpot may (or did not) write.
fn unreadable(status: u16, error: &dyn std::fmt::Display, consequence: &str) -> HubSpotError {
    HubSpotError::OutcomeUnknown {
        status: Some(status),
        message: format!("HTTP {status} but {error}; {consequence}"),
    }
}

fn auth_kind(auth: &HubSpotAuth) -> &'static str {
    match auth {
        HubSpotAuth::AccessToken(_) => "access_token",
        HubSpotAuth::ApiKey(_) => "api_key",
        HubSpotAuth::OAuth(_) => "oauth",
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use secrecy::SecretString;
    use serde_json::{Value, json};
    use wiremock::matchers::query_param_is_missing;
    use wiremock::matchers::{any, bearer_token, body_json, header, header_regex, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use std::time::{Duration, SystemTime};

    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;
    use crate::domain::{Associations, PropValue, Property};
    use crate::hubspot::answer::{RAW_LIMIT, parse_retry_after, wait_hint};
    use crate::hubspot::transport::SUCCESS_BODY_LIMIT;
    use crate::hubspot::{DAILY_LIMIT_WAIT, HubSpotClientConfig, HubSpotConfigError, HubSpotErrorBody};

    const V1: HubSpotOptions = HubSpotOptions {
        api: HubSpotApi::V1,
        upsert_by: None,
    };

    const TOKEN: &str = "pat-na1-5e3b1c2d-0000-4a4a-9f9f-token-secret";
    const API_KEY: &str = "a1b2c3d4-hapikey-secret-e5f6";

    fn token() -> HubSpotAuth {
        HubSpotAuth::AccessToken(SecretString::from(TOKEN.to_owned()))
    }

    fn api_key() -> HubSpotAuth {
        HubSpotAuth::ApiKey(SecretString::from(API_KEY.to_owned()))
    }

    fn draft() -> DealDraft {
        DealDraft {
            pipeline: Some("default".to_owned()),
            dealstage: "appointmentscheduled".to_owned(),
            properties: vec![
                Property {
                    name: "dealname".to_owned(),
                    value: PropValue::Text("Ada's order".to_owned()),
                },
                Property {
                    name: "closedate".to_owned(),
                    value: PropValue::Date(1_733_011_200_000),
                },
            ],
            associations: Associations {
                company_ids: vec![8_954_037],
                contact_ids: vec![27_136],
                ..Associations::default()
            },
        }
    }

    fn client_for(base_url: String, request_timeout: Duration) -> HubSpotClient {
        HubSpotClient::new(HubSpotClientConfig {
            base_url,
            connect_timeout: Duration::from_secs(1),
            request_timeout,
        })
        .unwrap()
    }

    fn client(server: &MockServer) -> HubSpotClient {
        client_for(server.uri(), Duration::from_secs(5))
    }

    fn created_body() -> Value {
        json!({"portalId": 62_515, "dealId": 151_088, "isDeleted": false, "properties": {}, "imports": []})
    }

    /// One create call against a server that answers every request with `answer`, exactly once.
    async fn answer_with(answer: ResponseTemplate, auth: &HubSpotAuth) -> Result<CreatedDeal, HubSpotError> {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).expect(1).mount(&server).await;
        client(&server).create(&V1, &draft(), auth).await
    }

    fn validation_error_body() -> Value {
        json!({
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "079df615-35f9-46ed-80f9-d5930ce5c48d",
            "validationResults": [{
                "isValid": false,
                "message": "nope was not one of the allowed options: [appointmentscheduled, qualifiedtobuy]",
                "error": "INVALID_OPTION",
                "name": "dealstage"
            }],
            "requestId": "e942fbd1-1236-4c1d-b59c-ff44c89bf1c5"
        })
    }

    #[tokio::test]
    async fn create_sends_the_v1_request_with_a_bearer_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(bearer_token(TOKEN))
            .and(header_regex("user-agent", r"^dealhook/\d+\.\d+\.\d+"))
            .and(header("content-type", "application/json"))
            .and(header("accept", "application/json"))
            .and(query_param_is_missing("hapikey"))
            .and(body_json(v1::create_request(&draft()).body))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;

        let created = client(&server).create(&V1, &draft(), &token()).await.unwrap();
        assert_eq!(
            created,
            CreatedDeal {
                write: crate::hubspot::DealWrite::Created,
                deal_id: 151_088,
                portal_id: Some(62_515),
                association_create_failures: vec![],
            }
        );
    }

    #[tokio::test]
    async fn an_api_key_goes_in_the_query_and_not_in_an_authorization_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/deals/v1/deal/"))
            .and(query_param("hapikey", API_KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;

        client(&server).create(&V1, &draft(), &api_key()).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        assert!(
            !requests[0].headers.contains_key("authorization"),
            "{:?}",
            requests[0].headers
        );
    }

    #[tokio::test]
    async fn a_base_url_with_a_path_prefix_and_a_trailing_slash_is_honoured() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/mock/deals/v1/deal/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(created_body()))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(format!("{}/mock/", server.uri()), Duration::from_secs(5));
        assert_eq!(client.base_url(), format!("{}/mock", server.uri()));
        client.create(&V1, &draft(), &token()).await.unwrap();
    }

    #[tokio::test]
    async fn association_create_failures_are_returned_with_the_created_deal() {
        let failure = json!({"message": "Company 8954037 does not exist", "failureType": "OBJECT_NOT_FOUND", "objectType": "COMPANY", "objectId": 8_954_037});
        let body = json!({"portalId": 62_515, "dealId": 9, "associationCreateFailures": [failure.clone()]});
        let created = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap();
        assert_eq!(created.deal_id, 9);
        assert_eq!(created.association_create_failures, vec![failure]);
    }

    #[tokio::test]
    async fn a_hubspot_validation_error_is_rejected_and_names_the_property() {
        let answer = ResponseTemplate::new(400).set_body_json(validation_error_body());
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::Rejected { status, body, raw } = &err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(*status, 400);
        assert_eq!(body.message.as_deref(), Some("Property values were not valid"));
        assert_eq!(
            body.correlation_id.as_deref(),
            Some("079df615-35f9-46ed-80f9-d5930ce5c48d")
        );
        assert!(raw.contains("INVALID_OPTION"), "{raw}");
        assert!(!err.is_retryable());
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.as_deref(), Some("dealstage"));
        assert_eq!(problems[0].code, "INVALID_OPTION");
    }

    #[tokio::test]
    async fn a_non_json_400_is_rejected_with_its_raw_text() {
        let answer = ResponseTemplate::new(400).set_body_string("<html><body>Bad Request</body></html>");
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::Rejected { status, body, raw } = err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(status, 400);
        assert_eq!(body, HubSpotErrorBody::default());
        assert_eq!(raw, "<html><body>Bad Request</body></html>");
    }

    #[tokio::test]
    async fn refused_credentials_are_unauthorized() {
        for code in [401, 403] {
            let answer = ResponseTemplate::new(code).set_body_json(json!({
                "status": "error",
                "message": "Authentication credentials not found.",
                "correlationId": "c0ffee00-0000-0000-0000-000000000000",
                "category": "INVALID_AUTHENTICATION"
            }));
            let err = answer_with(answer, &token()).await.unwrap_err();
            match &err {
                HubSpotError::Unauthorized { status, body } => {
                    assert_eq!(*status, code);
                    assert_eq!(body.category.as_deref(), Some("INVALID_AUTHENTICATION"));
                }
                other => panic!("HTTP {code}: expected Unauthorized, got {other:?}"),
            }
            assert!(!err.is_retryable(), "HTTP {code}");
        }
    }

    #[tokio::test]
    async fn a_rate_limit_carries_retry_after_in_seconds() {
        let answer = ResponseTemplate::new(429)
            .insert_header("Retry-After", "7")
            .set_body_json(json!({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}));
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::RateLimited { retry_after, body } = &err else {
            panic!("expected RateLimited, got {err:?}");
        };
        assert_eq!(*retry_after, Some(Duration::from_secs(7)));
        assert_eq!(body.category.as_deref(), Some("RATE_LIMIT"));
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_rate_limit_without_retry_after_has_none() {
        let err = answer_with(ResponseTemplate::new(429), &token()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::RateLimited { retry_after: None, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_rate_limit_with_an_http_date_waits_until_then() {
        let at = SystemTime::now() + Duration::from_secs(120);
        let date = chrono::DateTime::<chrono::Utc>::from(at)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let answer = ResponseTemplate::new(429).insert_header("Retry-After", date.as_str());
        let err = answer_with(answer, &token()).await.unwrap_err();
        let HubSpotError::RateLimited {
            retry_after: Some(wait),
            ..
        } = err
        else {
            panic!("expected RateLimited with a delay, got {err:?}");
        };
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after(" 30 ", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn server_errors_are_unavailable_and_only_gateway_errors_are_retryable() {
        for (code, retryable) in [(500, false), (501, false), (502, true), (503, true), (504, true)] {
            let err = answer_with(ResponseTemplate::new(code), &token()).await.unwrap_err();
            assert!(
                matches!(&err, HubSpotError::Unavailable { status: Some(s), .. } if *s == code),
                "HTTP {code}: {err:?}"
            );
            assert_eq!(err.is_retryable(), retryable, "HTTP {code}");
            // What is not retried because HubSpot may have written the deal is exactly what may exist.
            assert_eq!(err.may_have_created(), !retryable, "HTTP {code}");
        }
    }

    #[tokio::test]
    async fn a_spent_rate_limit_window_without_retry_after_waits_for_the_interval() {
        let answer = ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            .insert_header("X-HubSpot-RateLimit-Remaining", "0")
            .insert_header("X-HubSpot-RateLimit-Max", "100");
        let err = answer_with(answer, &token()).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(10)), "{err:?}");
    }

    #[tokio::test]
    async fn a_spent_daily_limit_is_not_waited_for_within_an_invocation() {
        let by_header = ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Daily", "250000")
            .insert_header("X-HubSpot-RateLimit-Daily-Remaining", "0")
            .insert_header("Retry-After", "1");
        let by_body = ResponseTemplate::new(429).set_body_json(serde_json::json!({
            "status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "DAILY"
        }));
        let ten_secondly = ResponseTemplate::new(429)
            .set_body_json(serde_json::json!({"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}));
        for (name, answer) in [("header", by_header), ("body", by_body)] {
            let err = answer_with(answer, &token()).await.unwrap_err();
            assert_eq!(err.retry_after(), Some(DAILY_LIMIT_WAIT), "{name}: {err:?}");
            let policy = crate::hubspot::RetryPolicy::default();
            assert_eq!(
                policy.next_wait(1, err.retry_after(), None, 1.0),
                None,
                "{name}: no retry"
            );
        }
        let err = answer_with(ten_secondly, &token()).await.unwrap_err();
        assert_eq!(
            err.retry_after(),
            Some(crate::hubspot::answer::TEN_SECONDLY_WAIT),
            "the rolling limit is retried after its window"
        );
    }

    #[test]
    fn retry_after_wins_over_the_rate_limit_window() {
        let now = SystemTime::now();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let window = [
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
            ("x-hubspot-ratelimit-remaining", "0"),
        ];
        let mut with_retry_after = window.to_vec();
        with_retry_after.push(("retry-after", "2"));
        assert_eq!(
            wait_hint(&headers(&with_retry_after), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(wait_hint(&headers(&window), now), Some(Duration::from_secs(10)));
        let left = [window[0], ("x-hubspot-ratelimit-remaining", "3")];
        assert_eq!(wait_hint(&headers(&left), now), None, "requests left in the window");
        assert_eq!(wait_hint(&headers(&window[1..]), now), None, "no interval given");
        assert_eq!(wait_hint(&HeaderMap::new(), now), None);
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_rejected() {
        let answer = ResponseTemplate::new(301).insert_header("Location", "https://example.com/deals/v1/deal/");
        let err = answer_with(answer, &token()).await.unwrap_err();
        assert!(matches!(err, HubSpotError::Rejected { status: 301, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_slower_than_the_request_timeout_leaves_the_outcome_unknown() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(created_body())
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(server.uri(), Duration::from_millis(300));
        let err = client.create(&V1, &draft(), &token()).await.unwrap_err();
        assert!(
            matches!(err, HubSpotError::OutcomeUnknown { status: None, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(err.may_have_created());
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_was_sent_leaves_the_outcome_unknown() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let hang_up = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0_u8; 4096];
            let _ = std::io::Read::read(&mut socket, &mut request);
            // Closing without a word: HubSpot may or may not have acted on it.
        });
        let err = client_for(base_url, Duration::from_secs(5))
            .create(&V1, &draft(), &token())
            .await
            .unwrap_err();
        hang_up.join().unwrap();
        assert!(
            matches!(err, HubSpotError::OutcomeUnknown { status: None, .. }),
            "{err:?}"
        );
    }

    fn refused_base_url() -> String {
        // Bind a random OS port and free it again: nothing listens there afterwards.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_and_retryable() {
        let client = client_for(refused_base_url(), Duration::from_secs(5));
        let err = client.create(&V1, &draft(), &token()).await.unwrap_err();
        assert!(matches!(err, HubSpotError::Unavailable { status: None, .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(!err.may_have_created(), "nothing was sent");
    }

    #[tokio::test]
    async fn a_200_with_malformed_json_leaves_the_outcome_unknown() {
        for (name, body) in [
            ("truncated JSON", r#"{"portalId": 62515, "dealId": 15"#),
            ("no dealId", r#"{"portalId": 62515}"#),
            ("html", "<html>ok</html>"),
            ("empty", ""),
        ] {
            let err = answer_with(ResponseTemplate::new(200).set_body_string(body), &token())
                .await
                .unwrap_err();
            assert!(
                matches!(err, HubSpotError::OutcomeUnknown { status: Some(200), .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_error_body_is_truncated() {
        let huge = format!("{{\"message\":\"{}\"}}", "é".repeat(100 * 1024));
        let err = answer_with(ResponseTemplate::new(400).set_body_string(huge), &token())
            .await
            .unwrap_err();
        let HubSpotError::Rejected { raw, body, .. } = err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert!(raw.len() <= RAW_LIMIT + 32, "raw is {} bytes", raw.len());
        assert!(raw.ends_with("… [truncated]"), "{}", &raw[raw.len() - 40..]);
        assert_eq!(body, HubSpotErrorBody::default(), "a cut-off body is not JSON");
    }

    #[tokio::test]
    async fn a_large_success_body_within_the_cap_is_read() {
        let mut body = created_body();
        body["properties"] = json!({"description": {"value": "x".repeat(200 * 1024)}});
        let created = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap();
        assert_eq!(created.deal_id, 151_088);
    }

    #[tokio::test]
    async fn a_success_body_over_the_cap_leaves_the_outcome_unknown() {
        let mut body = created_body();
        body["properties"] = json!({"description": {"value": "x".repeat(SUCCESS_BODY_LIMIT)}});
        let err = answer_with(ResponseTemplate::new(200).set_body_json(body), &token())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HubSpotError::OutcomeUnknown { status: Some(200), message } if message.contains("over")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_a_header_is_reported_without_sending() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let auth = HubSpotAuth::AccessToken(SecretString::from("tok\nen".to_owned()));
        let err = client(&server).create(&V1, &draft(), &auth).await.unwrap_err();
        assert!(matches!(err, HubSpotError::NoCredentials), "{err:?}");
    }

    /// A misbehaving server that echoes the credential back, in every place a body can hold text.
    fn echoing_answers(secret: &str) -> Vec<(&'static str, ResponseTemplate)> {
        let echo = json!({"status": "error", "message": format!("bad key {secret}"),
            "validationResults": [{"isValid": false, "name": "dealstage", "error": "INVALID_OPTION",
            "message": format!("POST /deals/v1/deal/?hapikey={secret} Authorization: Bearer {secret}")}]});
        vec![
            ("400 json", ResponseTemplate::new(400).set_body_json(echo.clone())),
            (
                "400 text",
                ResponseTemplate::new(400).set_body_string(format!("hapikey={secret}")),
            ),
            ("401", ResponseTemplate::new(401).set_body_json(echo.clone())),
            ("429", ResponseTemplate::new(429).set_body_json(echo.clone())),
            ("503", ResponseTemplate::new(503).set_body_json(echo)),
            (
                "200 junk",
                ResponseTemplate::new(200).set_body_string(format!("{{\"dealId\": \"{secret}\"}}")),
            ),
        ]
    }

    /// Every error, in both spellings, for both kinds of credential: the secret in use never shows.
    #[tokio::test]
    async fn no_error_text_contains_the_token_or_the_api_key() {
        for (secret, auth) in [(TOKEN, token()), (API_KEY, api_key())] {
            let mut errors = Vec::new();
            for (name, answer) in echoing_answers(secret) {
                errors.push((name, answer_with(answer, &auth).await.unwrap_err()));
            }
            let refused = client_for(refused_base_url(), Duration::from_secs(5));
            errors.push(("refused", refused.create(&V1, &draft(), &auth).await.unwrap_err()));

            let server = MockServer::start().await;
            Mock::given(any())
                .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
                .mount(&server)
                .await;
            let slow = client_for(server.uri(), Duration::from_millis(200));
            errors.push(("timeout", slow.create(&V1, &draft(), &auth).await.unwrap_err()));

            for (name, err) in &errors {
                let texts = [
                    err.to_string(),
                    format!("{err:?}"),
                    format!("{:?}", err.problems()),
                    serde_json::to_string(&err.problems()).unwrap(),
                ];
                for text in texts {
                    assert!(!text.contains(secret), "{name} with {auth:?}: secret in {text}");
                }
            }
            assert!(!format!("{auth:?} {:?}", client_for(server.uri(), Duration::from_secs(1))).contains(secret));
        }
    }

    #[tokio::test]
    async fn log_lines_carry_path_status_and_duration_but_no_secret() {
        let capture = crate::telemetry::capture::LogCapture::start();

        for (secret, auth) in [(TOKEN, token()), (API_KEY, api_key())] {
            for (_, answer) in echoing_answers(secret) {
                let _ = answer_with(answer, &auth).await;
            }
            let _ = answer_with(ResponseTemplate::new(200).set_body_json(created_body()), &auth).await;
        }

        let logs = capture.text();
        assert!(logs.contains("hubspot_create_deal"), "{logs}");
        assert!(logs.contains(r#""path":"/deals/v1/deal/""#), "{logs}");
        assert!(
            logs.contains(r#""status":400"#) && logs.contains(r#""status":200"#),
            "{logs}"
        );
        assert!(
            logs.contains(r#""auth":"api_key""#) && logs.contains(r#""deal_id":151088"#),
            "{logs}"
        );
        assert!(logs.contains("duration_ms"), "{logs}");
        assert!(!logs.contains(API_KEY) && !logs.contains(TOKEN), "{logs}");
    }

    #[test]
    fn bad_base_urls_are_rejected_by_new() {
        let cases = [
            "",
            "api.hubapi.com",
            "not a url",
            "ftp://api.hubapi.com",
            "file:///etc/passwd",
            "https://user:hunter2@api.hubapi.com",
            "https://api.hubapi.com?hapikey=abc",
            "https://api.hubapi.com/#frag",
        ];
        for base_url in cases {
            let config = HubSpotClientConfig {
                base_url: base_url.to_owned(),
                ..HubSpotClientConfig::default()
            };
            match HubSpotClient::new(config) {
                Err(HubSpotConfigError::InvalidBaseUrl(reason)) => {
                    assert!(
                        !reason.contains("hunter2") && !reason.contains("abc"),
                        "{base_url}: {reason}"
                    );
                }
                other => panic!("{base_url:?}: expected InvalidBaseUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn good_base_urls_are_accepted_without_their_trailing_slash() {
        for (given, kept) in [
            ("https://api.hubapi.com", "https://api.hubapi.com"),
            ("https://api.hubapi.com/", "https://api.hubapi.com"),
            ("http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix"),
        ] {
            let client = HubSpotClient::new(HubSpotClientConfig {
                base_url: given.to_owned(),
                ..HubSpotClientConfig::default()
            })
            .unwrap();
            assert_eq!(client.base_url(), kept);
        }
        assert_eq!(
            HubSpotClient::new(HubSpotClientConfig::default()).unwrap().base_url(),
            "https://api.hubapi.com"
        );
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        let config = HubSpotClientConfig {
            request_timeout: Duration::ZERO,
            ..HubSpotClientConfig::default()
        };
        assert!(matches!(
            HubSpotClient::new(config),
            Err(HubSpotConfigError::ZeroTimeout)
        ));
    }
}
