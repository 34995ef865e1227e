//! Outcome: how every delivery ends, and the one place that turns it into an HTTP status
//! and JSON body (DESIGN.md's response contract). Bodies never carry a secret or a cause chain.

use http::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::domain::{Problem, Reason, Unmatched};
use crate::hubspot::{CreatedDeal, PlannedCall, plan};

/// Set (`true`) on a response that repeats the stored response of a completed delivery.
pub const REPLAY_HEADER: &str = "x-dealhook-idempotent-replay";

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The deal was created (`200`).
    Created(CreatedDeal),
    /// Dry run: every call that would have been made, in order (`200`, `"status":"dry_run"`; see
    /// [`plan::preview`]).
    DryRun(Vec<PlannedCall>),
    /// Not turned into a deal; the delivery is in the dead-letter queue (`202`).
    DeadLettered {
        /// Why (`mapping_failed`, `hubspot_rejected`, …).
        reason: Reason,
        /// The dead letter's id.
        dead_letter_id: String,
        /// Every error.
        errors: Vec<Problem>,
        /// The deal, when it exists all the same (only an association failed, under
        /// `on_association_failure: dead_letter`): answered as `dealId`.
        deal_id: Option<u64>,
    },
    /// Authenticated, but no route on the endpoint matched it (`200`, `"status":"ignored"`); logged, not stored.
    /// Holds each route's `match` and what it read from the delivery, answered as `routes` (to the
    /// sender only: the values are the delivery's own, and logs carry only the label).
    Ignored(Vec<Unmatched>),
    /// Answered and not stored: bad signature, unknown route, wrong method, a body over a structure
    /// limit, too large, unsupported type (`4xx`).
    Rejected(Rejection),
    /// A repeat of a completed delivery (idempotency): the response first given, again, with
    /// `x-dealhook-idempotent-replay: true`. HubSpot was not called.
    Replayed(StoredResponse),
    /// A repeat of a delivery another attempt is still working on (idempotency): `409` with
    /// `Retry-After`, nothing done.
    InProgress {
        /// Seconds until that attempt's lock expires (at least 1).
        retry_after_secs: u64,
    },
    /// Neither a deal nor a dead letter could be written: the sender must retry (`503`).
    RetryLater {
        /// Why (`dead_letter_unavailable`).
        code: &'static str,
        /// A fixed sentence for the sender (never a cause: those go to the log).
        message: &'static str,
    },
    /// Queue mode: authenticated, decoded and mapped, and put on the work queue for the worker
    /// (`202 {"status":"queued","id":…}`, the work item's id).
    Queued {
        /// The work item's id.
        id: String,
    },
    /// A delivery run again from the work queue failed in a way that may pass (HubSpot unavailable or
    /// rate-limited, the secret or the idempotency table unreadable) and is left on the queue for SQS to
    /// deliver again, after `retry_after` when HubSpot said how long to wait. Only the worker sees it
    /// (`503` if it were answered).
    Deferred {
        /// Why.
        reason: Reason,
        /// How long to keep the message invisible, when known.
        retry_after: Option<std::time::Duration>,
    },
    /// A delivery on a route with `for_each`: one outcome per item, in list order. Its status is the
    /// most pressing of theirs (`503` over `409` over `202` over `200`), so `200` means every record
    /// made its deal (or, in a dry run, its plan) and `202` that some were dead-lettered; with no
    /// items, `200 ignored`. The body lists every record (see [`Outcome::body`]).
    Records(Vec<RecordOutcome>),
}

/// How one record (one `for_each` item) of a delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOutcome {
    /// The item's 0-based index in the `for_each` list (`item_index` in templates).
    pub index: usize,
    /// The record's own outcome: [`Outcome::Created`], [`Outcome::DryRun`], [`Outcome::DeadLettered`]
    /// (one dead letter per record), [`Outcome::Replayed`], [`Outcome::InProgress`] or
    /// [`Outcome::RetryLater`]. Never [`Outcome::Records`].
    pub outcome: Outcome,
}

impl RecordOutcome {
    /// The record's entry in the response's `records`: `index`, then the body its outcome alone
    /// would have (`status`, `dealId`, `deadLetterId`, `errors`, …), and `"replayed": true` for a
    /// record answered from the idempotency store.
    pub fn body(&self) -> Value {
        let mut entry = serde_json::Map::new();
        entry.insert("index".into(), json!(self.index));
        if let Value::Object(fields) = self.outcome.body() {
            entry.extend(fields);
        }
        if matches!(self.outcome, Outcome::Replayed(_)) {
            entry.insert("replayed".into(), Value::Bool(true));
        }
        Value::Object(entry)
    }

    /// The record's status word, as its entry says it (`created`, `dead_lettered`, …).
    fn status_word(&self) -> String {
        match &self.outcome {
            Outcome::Replayed(stored) => stored
                .body
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("replayed")
                .to_owned(),
            other => other.label().to_owned(),
        }
    }
}

/// How pressing a status is for the sender: a retry (5xx), then a refusal (4xx, a 409), then a dead
/// letter (202), then success.
fn urgency(status: StatusCode) -> u8 {
    match status.as_u16() {
        500.. => 4,
        400..=499 => 3,
        202 => 2,
        _ => 1,
    }
}

/// The record that decides a delivery's status ([`Outcome::Records`]): the first with the most pressing one.
fn deciding(records: &[RecordOutcome]) -> Option<&RecordOutcome> {
    records
        .iter()
        .rev()
        .max_by_key(|record| urgency(record.outcome.status()))
}

/// A request answered with a 4xx and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`unknown_route`, `method_not_allowed`, …).
    pub code: &'static str,
    /// Which rule was broken, for a person.
    pub message: String,
}

impl Rejection {
    /// `404`: the path is not `/hooks/{route}` or the route is not configured.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
        }
    }

    /// `401`: the signature (or token) is missing, malformed, wrong or stale.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
        }
    }

    /// `405`: only POST is accepted.
    pub fn method_not_allowed(method: &http::Method) -> Self {
        Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: format!("method {method} is not allowed; webhooks are delivered with POST"),
        }
    }

    /// `400`: the body's shape is over a structure limit (too deep, too many fields); the
    /// message says which limit, its value and where.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// `400 malformed_request`: the Lambda event cannot be read as an HTTP request (a missing method, a
    /// body flagged base64 that is not, a header HTTP cannot carry, an unknown payload version, …); the
    /// message names the event field and the rule, never a value.
    pub fn malformed_request(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_request",
            message: message.into(),
        }
    }

    /// `413`: the body is over the limit.
    pub fn too_large(size: usize, limit: usize) -> Self {
        Rejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("the body is {size} bytes; the limit is {limit} bytes"),
        }
    }

    /// `415`: the content type cannot be decoded.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: message.into(),
        }
    }
}

impl Outcome {
    /// The HTTP status of this outcome.
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Created(_) | Outcome::DryRun(_) | Outcome::Ignored(_) => StatusCode::OK,
            Outcome::DeadLettered { .. } | Outcome::Queued { .. } => StatusCode::ACCEPTED,
            Outcome::Deferred { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Rejected(r) => r.status,
            Outcome::RetryLater { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Replayed(stored) => StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
            Outcome::InProgress { .. } => StatusCode::CONFLICT,
            Outcome::Records(records) => deciding(records).map_or(StatusCode::OK, |r| r.outcome.status()),
        }
    }

    /// A short label for logs and metrics: `created` (or `updated`, a deal upserted by `upsert_by`), `dry_run`, `ignored`, `dead_lettered`, `rejected`,
    /// `retry_later`, `replayed`, `in_progress`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Created(deal) => deal.write.as_str(),
            Outcome::DryRun(_) => "dry_run",
            Outcome::Ignored(_) => "ignored",
            Outcome::DeadLettered { .. } => "dead_lettered",
            Outcome::Rejected(_) => "rejected",
            Outcome::RetryLater { .. } => "retry_later",
            Outcome::Replayed(_) => "replayed",
            Outcome::InProgress { .. } => "in_progress",
            Outcome::Queued { .. } => "queued",
            Outcome::Deferred { .. } => "deferred",
            Outcome::Records(records) => match self.status().as_u16() {
                _ if records.is_empty() => "ignored",
                500.. => "retry_later",
                409 => "in_progress",
                202 => "dead_lettered",
                _ if records.iter().all(|r| matches!(r.outcome, Outcome::DryRun(_))) => "dry_run",
                _ => "created",
            },
        }
    }

    /// The JSON body of the response contract.
    pub fn body(&self) -> Value {
        match self {
            Outcome::Created(deal) => {
                let mut body = json!({ "status": deal.write.as_str(), "dealId": deal.deal_id });
                if !deal.association_create_failures.is_empty() {
                    body["associationCreateFailures"] = Value::Array(deal.association_create_failures.clone());
                }
                body
            }
            Outcome::DryRun(calls) => json!({
                "status": "dry_run",
                "message": "dry run: nothing was sent to HubSpot; these are the calls dealhook would make, in order",
                "request": plan::deal_request_of(calls),
                "requests": calls,
            }),
            Outcome::Ignored(unmatched) => {
                let mut body = json!({
                    "status": "ignored",
                    "message": "no route on this endpoint matches this delivery; it was not stored",
                });
                if !unmatched.is_empty() {
                    body["routes"] = json!(unmatched);
                }
                body
            }
            Outcome::DeadLettered {
                reason,
                dead_letter_id,
                errors,
                deal_id,
            } => {
                let mut body = json!({
                    "status": "dead_lettered",
                    "reason": reason,
                    "message": reason.message(),
                    "deadLetterId": dead_letter_id,
                    "errors": errors_for_the_sender(*reason, errors),
                });
                if let Some(deal_id) = deal_id {
                    body["dealId"] = json!(deal_id);
                }
                body
            }
            Outcome::Rejected(r) => json!({
                "status": "rejected",
                "error": { "code": r.code, "message": r.message },
            }),
            Outcome::RetryLater { code, message } => json!({
                "status": "retry_later",
                "error": { "code": code, "message": message },
            }),
            Outcome::Replayed(stored) => stored.body.clone(),
            Outcome::InProgress { retry_after_secs } => json!({
                "status": "in_progress",
                "error": {
                    "code": "delivery_in_progress",
                    "message": format!(
                        "this delivery is being processed by an earlier attempt; retry in {retry_after_secs} s"
                    ),
                },
            }),
            Outcome::Queued { id } => json!({
                "status": "queued",
                "id": id,
                "message": "accepted: the deal will be created from the work queue",
            }),
            Outcome::Deferred { reason, .. } => json!({
                "status": "retry_later",
                "error": { "code": reason, "message": reason.message() },
            }),
            Outcome::Records(records) => self.records_body(records),
        }
    }

    /// The body of [`Outcome::Records`]: `status` (as [`Outcome::label`]), a `message` (or, for a retry,
    /// the deciding record's `error`), `records` (each [`RecordOutcome::body`], in list order) and
    /// `counts` (how many records ended in each status).
    fn records_body(&self, records: &[RecordOutcome]) -> Value {
        let status = self.label();
        let mut counts = serde_json::Map::new();
        for record in records {
            let entry = counts.entry(record.status_word()).or_insert(json!(0));
            *entry = json!(entry.as_u64().unwrap_or_default() + 1);
        }
        let total = records.len();
        let mut body = json!({
            "status": status,
            "records": records.iter().map(RecordOutcome::body).collect::<Vec<_>>(),
            "counts": counts,
        });
        let dead_lettered = records
            .iter()
            .filter(|r| r.outcome.status() == StatusCode::ACCEPTED)
            .count();
        let message = match status {
            "ignored" => Some("the route's `for_each` gave no items; nothing was created or stored".to_owned()),
            "dry_run" => Some(
                "dry run: nothing was sent to HubSpot; each record lists the calls dealhook would make, in order"
                    .to_owned(),
            ),
            "created" => Some(format!(
                "all {total} records of this delivery (one per `for_each` item) were created"
            )),
            "dead_lettered" => Some(format!(
                "{dead_lettered} of {total} records could not become deals and were kept as dead letters \
                 (see each record); the others were not affected"
            )),
            _ => None,
        };
        match (message, deciding(records).map(|r| r.outcome.body())) {
            (Some(message), _) => body["message"] = Value::String(message),
            (None, Some(deciding)) => {
                if let Some(error) = deciding.get("error") {
                    body["error"] = error.clone();
                }
            }
            (None, None) => {}
        }
        body
    }

    /// The HTTP response: status, JSON body, `Content-Type`, and `Allow` / `Retry-After` where they apply.
    /// [`crate::inbound::ResponseFormat::render`] turns it into the Lambda response of the event's format.
    pub fn to_response(&self, request_id: &str) -> Response<String> {
        let mut response = Response::new(self.body().to_string());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-dealhook-request-id", id);
        }
        match self {
            Outcome::Rejected(r) if r.status == StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Outcome::RetryLater { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            }
            Outcome::Replayed(_) => {
                headers.insert(REPLAY_HEADER, HeaderValue::from_static("true"));
            }
            Outcome::InProgress { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Outcome::Records(records) => {
                let retry_after = match self.status() {
                    StatusCode::SERVICE_UNAVAILABLE => Some(30),
                    StatusCode::CONFLICT => records
                        .iter()
                        .filter_map(|r| match r.outcome {
                            Outcome::InProgress { retry_after_secs } => Some(retry_after_secs),
                            _ => None,
                        })
                        .max(),
                    _ => None,
                };
                if let Some(secs) = retry_after {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                if !records.is_empty() && records.iter().all(|r| matches!(r.outcome, Outcome::Replayed(_))) {
                    headers.insert(REPLAY_HEADER, HeaderValue::from_static("true"));
                }
            }
            _ => {}
        }
        response
    }
}

/// A response kept for repeats of a completed delivery (see [`crate::idempotency`]): what the
/// first answer was, so that a repeat gets it again ([`Outcome::Replayed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The HTTP status first answered.
    pub status: u16,
    /// The JSON body first answered.
    pub body: Value,
}

impl StoredResponse {
    /// What `outcome` answered.
    pub fn of(outcome: &Outcome) -> StoredResponse {
        StoredResponse {
            status: outcome.status().as_u16(),
            body: outcome.body(),
        }
    }
}

/// The errors a `202 dead_lettered` answer shows. Errors about the delivery's own content (decode,
/// match, mapping) are shown whole: which field, which rule. HubSpot's refusal shows which property
/// and HubSpot's code, with a fixed sentence. Anything else is about the deployment (Secrets
/// Manager, DynamoDB, HubSpot's availability, whose texts may name an ARN, an account, a table or a
/// URL) and shows nothing beyond the reason's fixed message: the causes are in the dead letter.
fn errors_for_the_sender(reason: Reason, errors: &[Problem]) -> Vec<Problem> {
    if reason.concerns_the_delivery() {
        return errors.to_vec();
    }
    if reason != Reason::HubSpotRejected {
        return Vec::new();
    }
    errors
        .iter()
        .filter_map(|problem| {
            let field = problem.field.as_ref()?;
            // `associations.contact` / `associations.company`: a record to link, not a deal property.
            let message = if field.starts_with("associations.") {
                "HubSpot refused a request for a record to link; the dead letter holds HubSpot's answer"
            } else {
                "HubSpot rejected this property's value; the dead letter holds HubSpot's answer"
            };
            Some(Problem::at(field.clone(), problem.code.clone(), message))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hubspot::HubSpotRequest;

    #[test]
    fn a_stored_response_is_the_status_and_body_first_answered() {
        let created = Outcome::Created(CreatedDeal {
            write: crate::hubspot::DealWrite::Created,
            deal_id: 7,
            portal_id: None,
            association_create_failures: vec![],
        });
        let kept = StoredResponse::of(&created);
        assert_eq!(kept.status, 200);
        assert_eq!(kept.body, serde_json::json!({"status": "created", "dealId": 7}));
        let letter = Outcome::DeadLettered {
            reason: Reason::OutcomeUnknown,
            dead_letter_id: "dl".into(),
            errors: vec![Problem::general("x", "y")],
            deal_id: None,
        };
        let kept = StoredResponse::of(&letter);
        assert_eq!(kept.status, 202);
        assert_eq!(kept.body["deadLetterId"], "dl");
    }

    fn body_of(response: &Response<String>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn every_outcome_has_the_contracted_status_and_body() {
        let deal = CreatedDeal {
            write: crate::hubspot::DealWrite::Created,
            deal_id: 42,
            portal_id: Some(7),
            association_create_failures: vec![],
        };
        let cases: Vec<(&str, Outcome, u16, Value)> = vec![
            (
                "created",
                Outcome::Created(deal.clone()),
                200,
                json!({"status":"created","dealId":42}),
            ),
            (
                "created with association failures",
                Outcome::Created(CreatedDeal {
                    association_create_failures: vec![json!({"id":"9"})],
                    ..deal
                }),
                200,
                json!({"status":"created","dealId":42,"associationCreateFailures":[{"id":"9"}]}),
            ),
            (
                "dead lettered",
                Outcome::DeadLettered {
                    reason: crate::domain::Reason::MappingFailed,
                    dead_letter_id: "dl-1".into(),
                    errors: vec![Problem::at("properties.amount", "invalid_number", "bad")],
                    deal_id: None,
                },
                202,
                json!({"status":"dead_lettered","reason":"mapping_failed",
                       "message":"the delivery could not be mapped to a deal; it was kept as a dead letter",
                       "deadLetterId":"dl-1",
                       "errors":[{"field":"properties.amount","code":"invalid_number","message":"bad"}]}),
            ),
            (
                "dead lettered: the secret could not be read (the cause stays in the dead letter)",
                Outcome::DeadLettered {
                    reason: crate::domain::Reason::SecretUnavailable,
                    dead_letter_id: "dl-2".into(),
                    errors: vec![Problem::general(
                        "secret_unavailable",
                        "the secret arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-AbCdEf could not be read",
                    )],
                    deal_id: None,
                },
                202,
                json!({"status":"dead_lettered","reason":"secret_unavailable",
                       "message":"the HubSpot credential could not be read; the delivery was kept as a dead letter",
                       "deadLetterId":"dl-2","errors":[]}),
            ),
            (
                "dead lettered: HubSpot refused a property (which one and HubSpot's code; not its text)",
                Outcome::DeadLettered {
                    reason: crate::domain::Reason::HubSpotRejected,
                    dead_letter_id: "dl-3".into(),
                    errors: vec![
                        Problem::at("dealtype", "INVALID_OPTION", "portal 62515 has no option foo"),
                        Problem::general("hubspot_rejected", "HubSpot said: correlationId 1234"),
                    ],
                    deal_id: None,
                },
                202,
                json!({"status":"dead_lettered","reason":"hubspot_rejected",
                       "message":"HubSpot rejected a request for this delivery (the deal, a contact, a company or a link); it was kept as a dead letter",
                       "deadLetterId":"dl-3",
                       "errors":[{"field":"dealtype","code":"INVALID_OPTION",
                                  "message":"HubSpot rejected this property's value; the dead letter holds HubSpot's answer"}]}),
            ),
            (
                "rejected",
                Outcome::Rejected(Rejection::not_found("unknown_route", "no route x")),
                404,
                json!({"status":"rejected","error":{"code":"unknown_route","message":"no route x"}}),
            ),
            (
                "ignored",
                Outcome::Ignored(Vec::new()),
                200,
                json!({"status":"ignored","message":"no route on this endpoint matches this delivery; it was not stored"}),
            ),
            (
                "unauthorized",
                Outcome::Rejected(Rejection::unauthorized(
                    "invalid_signature",
                    "typeform signature check failed",
                )),
                401,
                json!({"status":"rejected","error":{"code":"invalid_signature","message":"typeform signature check failed"}}),
            ),
            (
                "bad request",
                Outcome::Rejected(Rejection::bad_request("too_deep", "nests deeper than 64 levels")),
                400,
                json!({"status":"rejected","error":{"code":"too_deep","message":"nests deeper than 64 levels"}}),
            ),
            (
                "malformed request",
                Outcome::Rejected(Rejection::malformed_request(
                    "body: is flagged isBase64Encoded but is not base64",
                )),
                400,
                json!({"status":"rejected","error":{"code":"malformed_request",
                       "message":"body: is flagged isBase64Encoded but is not base64"}}),
            ),
            (
                "retry later",
                Outcome::RetryLater {
                    code: "dead_letter_unavailable",
                    message: "try again",
                },
                503,
                json!({"status":"retry_later","error":{"code":"dead_letter_unavailable","message":"try again"}}),
            ),
        ];
        for (name, outcome, status, body) in cases {
            let response = outcome.to_response("req-1");
            assert_eq!(response.status().as_u16(), status, "{name}: status");
            assert_eq!(body_of(&response), body, "{name}: body");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{name}: content type"
            );
            assert_eq!(
                response.headers()["x-dealhook-request-id"],
                "req-1",
                "{name}: request id"
            );
        }
    }

    #[test]
    fn method_not_allowed_says_which_method_is_allowed() {
        let response = Outcome::Rejected(Rejection::method_not_allowed(&http::Method::GET)).to_response("r");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }

    #[test]
    fn retry_later_tells_the_sender_when() {
        let response = Outcome::RetryLater {
            code: "dead_letter_unavailable",
            message: "x",
        }
        .to_response("r");
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }

    #[test]
    fn a_replay_repeats_the_stored_answer_and_says_so() {
        let stored = StoredResponse {
            status: 202,
            body: json!({"status":"dead_lettered","reason":"outcome_unknown","deadLetterId":"dl-1","errors":[]}),
        };
        let response = Outcome::Replayed(stored.clone()).to_response("req-2");
        assert_eq!(response.status().as_u16(), 202);
        assert_eq!(body_of(&response), stored.body);
        assert_eq!(response.headers()[REPLAY_HEADER], "true");
        assert_eq!(
            response.headers()["x-dealhook-request-id"],
            "req-2",
            "this request's id, not the first's"
        );
        assert!(
            !Outcome::Created(CreatedDeal {
                write: crate::hubspot::DealWrite::Created,
                deal_id: 1,
                portal_id: None,
                association_create_failures: vec![],
            })
            .to_response("r")
            .headers()
            .contains_key(REPLAY_HEADER)
        );
    }

    #[test]
    fn a_delivery_in_progress_is_a_conflict_with_a_time_to_retry() {
        let outcome = Outcome::InProgress { retry_after_secs: 12 };
        let response = outcome.to_response("r");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "12");
        let body = body_of(&response);
        assert_eq!(body["status"], "in_progress");
        assert_eq!(body["error"]["code"], "delivery_in_progress");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| m.contains("12 s")),
            "{body}"
        );
        assert_eq!(outcome.label(), "in_progress");
    }

    fn record(index: usize, outcome: Outcome) -> RecordOutcome {
        RecordOutcome { index, outcome }
    }

    fn created(deal_id: u64) -> Outcome {
        Outcome::Created(CreatedDeal {
            write: crate::hubspot::DealWrite::Created,
            deal_id,
            portal_id: None,
            association_create_failures: vec![],
        })
    }

    fn mapping_failed(id: &str) -> Outcome {
        Outcome::DeadLettered {
            reason: Reason::MappingFailed,
            dead_letter_id: id.into(),
            errors: vec![Problem::at(
                "properties.amount",
                "invalid_number",
                "\"lots\" is not a number",
            )],
            deal_id: None,
        }
    }

    /// Every mix of record outcomes a `for_each` delivery can end in: the status is the most pressing
    /// record's, the body lists every record with its index, and `counts` adds them up.
    #[test]
    fn a_delivery_of_records_answers_for_every_record() {
        let all_created = Outcome::Records(vec![record(0, created(11)), record(1, created(12))]);
        let response = all_created.to_response("r");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body_of(&response),
            json!({"status": "created",
                   "message": "all 2 records of this delivery (one per `for_each` item) were created",
                   "records": [{"index": 0, "status": "created", "dealId": 11},
                               {"index": 1, "status": "created", "dealId": 12}],
                   "counts": {"created": 2}})
        );
        assert!(!response.headers().contains_key(REPLAY_HEADER));
        assert_eq!(all_created.label(), "created");

        let one_failed = Outcome::Records(vec![
            record(0, created(11)),
            record(1, mapping_failed("dl-1")),
            record(2, created(13)),
        ]);
        let body = one_failed.body();
        assert_eq!(one_failed.status(), StatusCode::ACCEPTED);
        assert_eq!(one_failed.label(), "dead_lettered");
        assert_eq!(body["status"], "dead_lettered");
        assert_eq!(body["counts"], json!({"created": 2, "dead_lettered": 1}));
        assert!(
            body["message"].as_str().unwrap().starts_with("1 of 3 records"),
            "{body}"
        );
        assert_eq!(
            body["records"][1],
            json!({"index": 1, "status": "dead_lettered", "reason": "mapping_failed",
                   "message": "the delivery could not be mapped to a deal; it was kept as a dead letter",
                   "deadLetterId": "dl-1",
                   "errors": [{"field": "properties.amount", "code": "invalid_number",
                               "message": "\"lots\" is not a number"}]})
        );
        assert_eq!(body["records"][2]["dealId"], 13);

        let none = Outcome::Records(vec![]);
        assert_eq!(none.status(), StatusCode::OK);
        assert_eq!(none.label(), "ignored");
        assert_eq!(
            none.body(),
            json!({"status": "ignored", "message": "the route's `for_each` gave no items; nothing was created or stored",
                   "records": [], "counts": {}})
        );
    }

    #[test]
    fn a_record_the_sender_must_retry_decides_the_status_and_its_header() {
        let in_progress = Outcome::Records(vec![
            record(0, created(11)),
            record(1, Outcome::InProgress { retry_after_secs: 4 }),
            record(2, mapping_failed("dl-2")),
            record(3, Outcome::InProgress { retry_after_secs: 9 }),
        ]);
        let response = in_progress.to_response("r");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "9", "the longest wait");
        let body = body_of(&response);
        assert_eq!(body["status"], "in_progress");
        assert_eq!(body["error"]["code"], "delivery_in_progress");
        assert_eq!(body["records"].as_array().unwrap().len(), 4);

        let unstored = Outcome::Records(vec![
            record(0, Outcome::InProgress { retry_after_secs: 4 }),
            record(
                1,
                Outcome::RetryLater {
                    code: "dead_letter_unavailable",
                    message: "the delivery could not be processed or stored; please retry later",
                },
            ),
        ]);
        let response = unstored.to_response("r");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let body = body_of(&response);
        assert_eq!(body["status"], "retry_later");
        assert_eq!(body["error"]["code"], "dead_letter_unavailable");
        assert_eq!(unstored.label(), "retry_later");
    }

    #[test]
    fn records_answered_from_the_idempotency_store_say_so() {
        let stored = |status: u16, body: Value| Outcome::Replayed(StoredResponse { status, body });
        let repeat = Outcome::Records(vec![
            record(0, stored(200, json!({"status": "created", "dealId": 11}))),
            record(
                1,
                stored(202, json!({"status": "dead_lettered", "deadLetterId": "dl-1"})),
            ),
        ]);
        let response = repeat.to_response("r");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[REPLAY_HEADER], "true");
        let body = body_of(&response);
        assert_eq!(
            body["records"][0],
            json!({"index": 0, "status": "created", "dealId": 11, "replayed": true})
        );
        assert_eq!(body["counts"], json!({"created": 1, "dead_lettered": 1}));
        assert_eq!(repeat.label(), "dead_lettered");
        // Partly replayed: the response is not a replay as a whole.
        let mixed = Outcome::Records(vec![
            record(0, stored(200, json!({"status": "created", "dealId": 11}))),
            record(1, created(12)),
        ]);
        let response = mixed.to_response("r");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key(REPLAY_HEADER));
        assert_eq!(mixed.label(), "created");
    }

    #[test]
    fn a_dry_run_of_records_lists_each_records_calls() {
        let call = PlannedCall {
            request: HubSpotRequest {
                method: "POST".into(),
                path: "/deals/v1/deal/".into(),
                body: json!({"a": 1}),
            },
            when: None,
        };
        let planned = Outcome::Records(vec![
            record(0, Outcome::DryRun(vec![call.clone()])),
            record(1, Outcome::DryRun(vec![call])),
        ]);
        assert_eq!(planned.status(), StatusCode::OK);
        assert_eq!(planned.label(), "dry_run");
        let body = planned.body();
        assert_eq!(body["status"], "dry_run");
        assert_eq!(body["records"][1]["index"], 1);
        assert_eq!(body["records"][1]["requests"][0]["path"], "/deals/v1/deal/");
        assert_eq!(body["counts"], json!({"dry_run": 2}));
    }

    #[test]
    fn a_dry_run_shows_the_request() {
        let request = HubSpotRequest {
            method: "POST".into(),
            path: "/deals/v1/deal/".into(),
            body: json!({"a":1}),
        };
        let link = HubSpotRequest {
            method: "PUT".into(),
            path: "/crm/v4/objects/deals/{dealId}/associations/default/contacts/{contactId}".into(),
            body: Value::Null,
        };
        let calls = vec![
            PlannedCall {
                request: request.clone(),
                when: None,
            },
            PlannedCall {
                request: link,
                when: Some("once per contact (1)".into()),
            },
        ];
        let body = Outcome::DryRun(calls).body();
        assert_eq!(body["status"], "dry_run");
        assert_eq!(body["requests"].as_array().unwrap().len(), 2);
        assert_eq!(body["requests"][1]["when"], "once per contact (1)");
        assert_eq!(body["requests"][1]["method"], "PUT");
        assert_eq!(body["request"]["path"], "/deals/v1/deal/");
        assert_eq!(body["request"]["body"], json!({"a":1}));
    }
}
