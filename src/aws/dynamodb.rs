//! Idempotency records in a DynamoDB table (`DEALHOOK_IDEMPOTENCY_TABLE`, declared in template.yaml).
//!
//! One item per delivery key, all attributes top-level so that conditions can read them:
//!
//! | attribute         | type | meaning                                                   |
//! |-------------------|------|-----------------------------------------------------------|
//! | `id`              | S    | the key (partition key; see [`IdempotencyKey`])           |
//! | `state`           | S    | `in_progress` or `completed`                              |
//! | `owner`           | S    | the attempt holding the lock (a random token)             |
//! | `lock_until`      | N    | epoch milliseconds when the lock lapses (the deadline)    |
//! | `expires_at`      | N    | epoch seconds after which the item is treated as absent; the table's TTL attribute |
//! | `response_status` | N    | the stored HTTP status (completed only)                   |
//! | `response_body`   | S    | the stored JSON body (completed only)                     |
//!
//! A claim is one conditional `PutItem` (atomic: of two concurrent claims one wins); when it
//! loses, one strongly consistent `GetItem` says why. Completion and release are conditional on
//! `owner`, so an attempt never settles a lock it no longer holds. The function needs
//! `dynamodb:GetItem`, `PutItem` and `DeleteItem` on this table and nothing else.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::config::describe_sdk_error;
use crate::idempotency::{
    Claim, IdempotencyError, IdempotencyKey, IdempotencyStore, StoredResponse, epoch_millis, epoch_seconds,
};

/// The partition key attribute (template.yaml declares the same).
pub const KEY_ATTRIBUTE: &str = "id";
/// The TTL attribute (template.yaml enables TTL on it).
pub const TTL_ATTRIBUTE: &str = "expires_at";

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// Who may take a key: nobody holds it, it expired, or its lock lapsed.
const CLAIM_CONDITION: &str =
    "attribute_not_exists(#id) OR #exp < :now_s OR (#state = :in_progress AND #lock < :now_ms)";

/// Idempotency records in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbIdempotency {
    /// Records in `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoDbIdempotency {
            client,
            table: table.into(),
        }
    }

    /// The table's name, as given.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn error(&self, what: &str, message: String) -> IdempotencyError {
        IdempotencyError {
            message: format!("{what} on table {}: {message}", self.table),
        }
    }

    /// Why a claim lost: the record as it is now.
    #[tracing::instrument(skip_all, fields(aws_service = "DynamoDB", aws_operation = "GetItem"))]
    async fn current(&self, key: &IdempotencyKey) -> Result<Option<HashMap<String, AttributeValue>>, IdempotencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", describe_sdk_error(&e)))?;
        Ok(output.item)
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A record that lost a claim, read back as a [`Claim`]. `Ok(None)`: it is gone (expired or released
/// in between), so the claim may be tried again.
fn reading(item: &HashMap<String, AttributeValue>, now: SystemTime) -> Result<Option<Claim>, String> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
    let number = |name: &str| -> Result<u64, String> {
        let raw = item.get(name).and_then(|v| v.as_n().ok());
        raw.and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the record has no numeric `{name}`"))
    };
    if SystemTime::UNIX_EPOCH + Duration::from_secs(number(TTL_ATTRIBUTE)?) <= now {
        return Ok(None);
    }
    match text("state") {
        Some(COMPLETED) => {
            let status = u16::try_from(number("response_status")?).map_err(|_| "response_status is not a status")?;
            let body = text("response_body").ok_or("a completed record has no response_body")?;
            let body = serde_json::from_str(body).map_err(|e| format!("response_body is not JSON: {e}"))?;
            Ok(Some(Claim::Completed(StoredResponse { status, body })))
        }
        Some(IN_PROGRESS) => {
            let until = SystemTime::UNIX_EPOCH + Duration::from_millis(number("lock_until")?);
            Ok((until > now).then_some(Claim::InProgress { until }))
        }
        other => Err(format!("the record's state is {other:?}")),
    }
}

#[async_trait]
impl IdempotencyStore for DynamoDbIdempotency {
    #[tracing::instrument(skip_all, fields(aws_service = "DynamoDB", aws_operation = "PutItem"))]
    async fn claim(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        lock_until: SystemTime,
        expires_at: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        // Twice at most: a record that vanishes between the failed put and the read (expired,
        // released) is claimed again once; if that races too, the sender is asked to retry.
        for _ in 0..2 {
            let now = SystemTime::now();
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(KEY_ATTRIBUTE, s(key.as_str()))
                .item("state", s(IN_PROGRESS))
                .item("owner", s(owner))
                .item("lock_until", n(epoch_millis(lock_until)))
                .item(TTL_ATTRIBUTE, n(epoch_seconds(expires_at)))
                .condition_expression(CLAIM_CONDITION)
                .set_expression_attribute_names(Some(names(&[
                    ("#id", KEY_ATTRIBUTE),
                    ("#exp", TTL_ATTRIBUTE),
                    ("#state", "state"),
                    ("#lock", "lock_until"),
                ])))
                .expression_attribute_values(":now_s", n(epoch_seconds(now)))
                .expression_attribute_values(":now_ms", n(epoch_millis(now)))
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::Acquired),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(self.error("PutItem", describe_sdk_error(&e))),
            }
            let Some(item) = self.current(key).await? else { continue };
            match reading(&item, SystemTime::now()) {
                Ok(Some(claim)) => return Ok(claim),
                Ok(None) => continue,
                Err(why) => return Err(self.error("reading the record", why)),
            }
        }
        Ok(Claim::InProgress {
            until: SystemTime::now() + Duration::from_secs(1),
        })
    }

    #[tracing::instrument(skip_all, fields(aws_service = "DynamoDB", aws_operation = "PutItem"))]
    async fn complete(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        response: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(key.as_str()))
            .item("state", s(COMPLETED))
            .item("owner", s(owner))
            .item("lock_until", n(0))
            .item(TTL_ATTRIBUTE, n(epoch_seconds(expires_at)))
            .item("response_status", n(u64::from(response.status)))
            .item("response_body", s(&response.body.to_string()))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    self.error("PutItem", format!("the lock on {key} is no longer this attempt's"))
                }
                _ => self.error("PutItem", describe_sdk_error(&e)),
            })
    }

    #[tracing::instrument(skip_all, fields(aws_service = "DynamoDB", aws_operation = "DeleteItem"))]
    async fn release(&self, key: &IdempotencyKey, owner: &str) -> Result<(), IdempotencyError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key.as_str()))
            .condition_expression("#owner = :owner AND #state = :in_progress")
            .set_expression_attribute_names(Some(names(&[("#owner", "owner"), ("#state", "state")])))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Not ours any more (lapsed and taken over): nothing to release.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error("DeleteItem", describe_sdk_error(&e))),
        }
    }

    /// One unconditional `PutItem` of a completed record (no owner, no lock).
    #[tracing::instrument(skip_all, fields(aws_service = "DynamoDB", aws_operation = "PutItem"))]
    async fn remember(
        &self,
        key: &IdempotencyKey,
        value: &StoredResponse,
        expires_at: SystemTime,
    ) -> Result<(), IdempotencyError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(key.as_str()))
            .item("state", s(COMPLETED))
            .item("owner", s(""))
            .item("lock_until", n(0))
            .item(TTL_ATTRIBUTE, n(epoch_seconds(expires_at)))
            .item("response_status", n(u64::from(value.status)))
            .item("response_body", s(&value.body.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutItem", describe_sdk_error(&e)))
    }

    /// One strongly consistent `GetItem`: a completed, unexpired record's response.
    async fn recall(&self, key: &IdempotencyKey) -> Result<Option<StoredResponse>, IdempotencyError> {
        let Some(item) = self.current(key).await? else {
            return Ok(None);
        };
        match reading(&item, SystemTime::now()) {
            Ok(Some(Claim::Completed(stored))) => Ok(Some(stored)),
            Ok(_) => Ok(None),
            Err(why) => Err(self.error("reading the record", why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_completed_record_reads_as_its_response() {
        let record = item(&[
            ("state", s(COMPLETED)),
            (TTL_ATTRIBUTE, n(2_000)),
            ("response_status", n(200)),
            ("response_body", s(r#"{"status":"created","dealId":5}"#)),
        ]);
        let claim = reading(&record, at(1_000)).unwrap();
        assert_eq!(
            claim,
            Some(Claim::Completed(StoredResponse {
                status: 200,
                body: json!({"status":"created","dealId":5}),
            }))
        );
    }

    #[test]
    fn a_live_lock_reads_as_in_progress_until_it_lapses() {
        let record = item(&[
            ("state", s(IN_PROGRESS)),
            (TTL_ATTRIBUTE, n(90_000)),
            ("lock_until", n(1_500_000)),
        ]);
        assert_eq!(
            reading(&record, at(1_000)).unwrap(),
            Some(Claim::InProgress { until: at(1_500) })
        );
        assert_eq!(reading(&record, at(1_500)).unwrap(), None, "a lapsed lock can be taken");
    }

    #[test]
    fn an_expired_record_reads_as_absent_whatever_its_state() {
        let record = item(&[
            ("state", s(COMPLETED)),
            (TTL_ATTRIBUTE, n(1_000)),
            ("response_status", n(200)),
            ("response_body", s("{}")),
        ]);
        assert_eq!(reading(&record, at(1_000)).unwrap(), None);
    }

    #[test]
    fn a_malformed_record_is_an_error_naming_what_is_wrong() {
        let no_ttl = item(&[("state", s(COMPLETED))]);
        assert!(reading(&no_ttl, at(1)).unwrap_err().contains("expires_at"));
        let bad_state = item(&[("state", s("weird")), (TTL_ATTRIBUTE, n(10))]);
        assert!(reading(&bad_state, at(1)).unwrap_err().contains("weird"));
        let bad_body = item(&[
            ("state", s(COMPLETED)),
            (TTL_ATTRIBUTE, n(10)),
            ("response_status", n(200)),
            ("response_body", s("{not json")),
        ]);
        assert!(reading(&bad_body, at(1)).unwrap_err().contains("response_body"));
        let bad_status = item(&[
            ("state", s(COMPLETED)),
            (TTL_ATTRIBUTE, n(10)),
            ("response_status", n(70_000)),
            ("response_body", s("{}")),
        ]);
        assert!(reading(&bad_status, at(1)).unwrap_err().contains("response_status"));
    }
}
