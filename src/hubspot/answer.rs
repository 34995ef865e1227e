//! HubSpot's answers, classified: error bodies of every API version read into one
//! [`HubSpotErrorBody`], statuses and bodies turned into the [`HubSpotError`] the pipeline branches
//! on, and the wait an answer asks for. Pure functions, no I/O. The rules follow
//! `shared/hubspot-responses.md` (cited as "catalog item N").

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::{ErrorDetail, ErrorDetails, HubSpotError, HubSpotErrorBody, ValidationResult};

/// Most bytes of an error body kept as `Rejected::raw` (dead letters must stay small, but a
/// 300-character cut loses the property name and code: catalog item 12).
pub(crate) const RAW_LIMIT: usize = 16 * 1024;

/// The wait reported when the *daily* limit is spent: it resets at midnight in the account's time
/// zone (unknown here), so "a day" — longer than any invocation, so that no retry is attempted.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The wait after a 429 of the `TEN_SECONDLY_ROLLING` policy without `Retry-After` or rate-limit
/// headers: the window's length (catalog item 1).
pub const TEN_SECONDLY_WAIT: Duration = Duration::from_secs(10);

/// The wait after a 429 of the search endpoints' `SECONDLY` policy without headers (catalog item 2).
pub const SECONDLY_WAIT: Duration = Duration::from_secs(1);

/// How long a `423 Locked` is waited for at least: "Locks will last for 2 seconds" (HubSpot's
/// error-handling guide; catalog item 6).
pub const LOCKED_WAIT: Duration = Duration::from_secs(2);

/// HubSpot's rate-limit window headers (present on most answers to private-app and OAuth calls,
/// never on search answers: every one is optional, catalog item 5).
const RATE_LIMIT_REMAINING: &str = "x-hubspot-ratelimit-remaining";
const RATE_LIMIT_INTERVAL: &str = "x-hubspot-ratelimit-interval-milliseconds";
/// The daily limit's header: requests left until midnight in the account's time zone.
const RATE_LIMIT_DAILY_REMAINING: &str = "x-hubspot-ratelimit-daily-remaining";

/// The prefix of a v3 validation message that embeds v1-style results as JSON (catalog item 12).
const EMBEDDED_RESULTS_PREFIX: &str = "Property values were not valid: ";

/// The context keys HubSpot names required scopes under: `requiredGranularScopes` (2026-03),
/// `requiredScopes` (older answers), `missingScopes` (the OpenAPI `Error` example). Catalog item 11.
const SCOPE_KEYS: [&str; 3] = ["requiredGranularScopes", "requiredScopes", "missingScopes"];
/// Most scopes kept from an error body, and most characters of each (a body is HubSpot's to fill:
/// what reaches a dead letter stays bounded).
const SCOPES_LIMIT: usize = 50;
const SCOPE_LEN_LIMIT: usize = 200;

/// Reads HubSpot's JSON error body, in any of its shapes:
/// - v1: `{"status":"error","message":…,"correlationId":…,"validationResults":[…],"requestId":…}`;
/// - rate limits: `{"errorType":"RATE_LIMIT","policyName":"DAILY",…}` (`errorType` stands in for
///   `category` when that is absent);
/// - v3 and 2026-03 (`Error` in the OpenAPI documents): `{"category":…,"subCategory":…,
///   "correlationId":…,"message":…,"errors":[{"message","code","in","subCategory","context"}],
///   "context":{…: [..]},"links":{…}}`.
///
/// Never fails: a body that is not JSON, or fields of an unexpected type, give an empty or partial
/// [`HubSpotErrorBody`] (the caller keeps the raw text). `validationResults` that are not objects are
/// skipped. When the body has no `validationResults`, they are taken from `errors[]` entries naming a
/// `context.propertyName`, else from the JSON list a v3 message embeds after
/// `Property values were not valid: ` (catalog item 12). Scopes are gathered from the context keys of
/// the body and of every `errors[]` entry, in order, trimmed, without empty ones or repeats, at most
/// 50 of at most 200 characters each (catalog item 11).
pub fn parse_error_body(body: &[u8]) -> HubSpotErrorBody {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => error_body(&object),
        _ => HubSpotErrorBody::default(),
    }
}

/// [`parse_error_body`] on an already parsed object (batch answers carry one per failed input).
pub fn error_body(object: &serde_json::Map<String, Value>) -> HubSpotErrorBody {
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let errors: Vec<ErrorDetail> = object
        .get("errors")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(error_detail).collect())
        .unwrap_or_default();
    let context = object.get("context").map(context_map).unwrap_or_default();
    let message = text("message");

    let mut validation_results: Vec<ValidationResult> = object
        .get("validationResults")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(validation_result).collect())
        .unwrap_or_default();
    if validation_results.is_empty() {
        validation_results = errors
            .iter()
            .filter_map(|detail| {
                let name = detail.context.get("propertyName")?.first()?.clone();
                Some(ValidationResult {
                    name: Some(name),
                    error: detail.code.clone(),
                    message: Some(detail.message.clone()),
                    is_valid: Some(false),
                })
            })
            .collect();
    }
    if validation_results.is_empty()
        && let Some(embedded) = message.as_deref().and_then(|m| m.strip_prefix(EMBEDDED_RESULTS_PREFIX))
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(embedded)
    {
        validation_results = items.iter().filter_map(validation_result).collect();
    }

    let mut required_scopes: Vec<String> = Vec::new();
    for map in std::iter::once(&context).chain(errors.iter().map(|e| &e.context)) {
        for key in SCOPE_KEYS {
            for scope in map.get(key).into_iter().flatten().map(|s| s.trim()) {
                let scope: String = scope.chars().take(SCOPE_LEN_LIMIT).collect();
                if !scope.is_empty() && required_scopes.len() < SCOPES_LIMIT && !required_scopes.contains(&scope) {
                    required_scopes.push(scope);
                }
            }
        }
    }

    HubSpotErrorBody {
        message,
        correlation_id: text("correlationId"),
        validation_results,
        category: text("category").or_else(|| text("errorType")),
        details: Box::new(ErrorDetails {
            sub_category: object.get("subCategory").and_then(sub_category),
            policy_name: text("policyName"),
            errors,
            context,
            required_scopes,
        }),
    }
}

fn validation_result(item: &Value) -> Option<ValidationResult> {
    let object = item.as_object()?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(ValidationResult {
        name: text("name"),
        error: text("error"),
        message: text("message"),
        is_valid: object.get("isValid").and_then(Value::as_bool),
    })
}

fn error_detail(item: &Value) -> Option<ErrorDetail> {
    let object = item.as_object()?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(ErrorDetail {
        message: text("message").unwrap_or_default(),
        code: text("code"),
        location: text("in"),
        sub_category: object.get("subCategory").and_then(sub_category),
        context: object.get("context").map(context_map).unwrap_or_default(),
    })
}

/// `subCategory` is a string in `Error` and an object in `StandardError`: kept as text either way.
fn sub_category(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Object(o) if o.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// `context` is `{key: [string]}` in the documents; a scalar is kept as a one-item list and
/// non-string items as their JSON text, so nothing HubSpot said is lost.
fn context_map(value: &Value) -> BTreeMap<String, Vec<String>> {
    let Some(object) = value.as_object() else {
        return BTreeMap::new();
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    object
        .iter()
        .map(|(key, value)| {
            let items = match value {
                Value::Array(items) => items.iter().map(text).collect(),
                Value::Null => Vec::new(),
                other => vec![text(other)],
            };
            (key.clone(), items)
        })
        .collect()
}

/// Whether a 429's body names the daily limit (`"policyName":"DAILY"`), which resets at midnight.
pub fn is_daily_limit(body: &[u8]) -> bool {
    parse_error_body(body).details.policy_name.as_deref() == Some("DAILY")
}

/// Whether an error body names a rate limit: `category` (or `errorType`) `RATE_LIMITS`/`RATE_LIMIT`,
/// a `policyName`, or a message such as "You have reached your secondly limit." Catalog items 2, 4.
fn names_rate_limit(body: &HubSpotErrorBody) -> bool {
    let category = body.category.as_deref().unwrap_or_default();
    category.starts_with("RATE_LIMIT")
        || body.details.policy_name.is_some()
        || body.message.as_deref().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("reached your") && m.contains("limit")
        })
}

/// A call answered 401 or 403: [`HubSpotError::MissingScopes`] for a 403 whose body has
/// `category: MISSING_SCOPES` or names scopes (not retried: no refresh or re-read can add a scope),
/// with the scopes [`parse_error_body`] gathered; else [`HubSpotError::Unauthorized`] (an OAuth
/// refresh or a re-read of the secret may help once). Catalog item 11.
fn refusal(status: u16, body: HubSpotErrorBody) -> HubSpotError {
    if status == 403 && (body.category.as_deref() == Some("MISSING_SCOPES") || !body.details.required_scopes.is_empty())
    {
        let scopes = body.details.required_scopes.clone();
        return HubSpotError::MissingScopes { status, scopes, body };
    }
    HubSpotError::Unauthorized { status, body }
}

/// Turns a non-2xx answer into the error the pipeline branches on. `text` is the body, already
/// redacted; `truncated` says it was cut at the read limit; `wait` is [`wait_hint`] of the headers.
///
/// - 401 → `Unauthorized`; 403 naming missing scopes → `MissingScopes` (never retried, scopes kept:
///   catalog item 11); other 403 → `Unauthorized`.
/// - 423 → `Locked`, waited for at least [`LOCKED_WAIT`] (catalog item 6).
/// - 429 → `RateLimited`; a body or header naming the daily limit waits [`DAILY_LIMIT_WAIT`], which
///   no retry policy waits for (catalog item 3).
/// - 477 (Migration in Progress) → `Unavailable`, not retried: its `Retry-After` is hours (catalog item 7).
/// - 5xx whose body names a rate limit → `RateLimited` (catalog item 4); other 5xx → `Unavailable`,
///   its message HubSpot's `message`, or an HTML page's `<title>` (catalog item 7), never the page.
/// - any other status → `Rejected`, with the bounded raw text for the dead letter.
pub fn classify_failure(status: u16, wait: Option<Duration>, text: &str, truncated: bool) -> HubSpotError {
    let body = parse_error_body(text.as_bytes());
    match status {
        401 | 403 => refusal(status, body),
        423 => HubSpotError::Locked {
            retry_after: wait.unwrap_or_default().max(LOCKED_WAIT),
            body,
        },
        429 => rate_limited(wait, body),
        // 477 Migration in Progress: the account is being moved, typically for hours (catalog item
        // 7). Nothing was written; not waited for within an invocation.
        477 => HubSpotError::Unavailable {
            status: Some(477),
            message: match wait {
                Some(wait) => format!(
                    "HTTP 477 Migration in Progress: HubSpot is moving the account and asks to retry in {} s; \
                     nothing was written, redrive the dead letter then",
                    wait.as_secs()
                ),
                None => "HTTP 477 Migration in Progress: HubSpot is moving the account; nothing was written, \
                         redrive the dead letter later"
                    .to_owned(),
            },
        },
        500..=599 if names_rate_limit(&body) => rate_limited(wait, body),
        500..=599 => HubSpotError::Unavailable {
            status: Some(status),
            message: status_message(status, &body, text),
        },
        _ => HubSpotError::Rejected {
            status,
            raw: bounded_raw(text, truncated),
            body,
        },
    }
}

/// How long a rolling window lasts when a 429 names it but no header says how long to wait
/// (catalog items 1 and 2): `TEN_SECONDLY_ROLLING` (the per-app burst budget) 10 s, `SECONDLY` (search
/// endpoints, about 5 per second per account) 1 s. HubSpot's Node SDK waits the same.
fn window_of(body: &HubSpotErrorBody) -> Option<Duration> {
    let message = body.message.as_deref().unwrap_or_default().to_ascii_lowercase();
    match body.details.policy_name.as_deref() {
        Some("TEN_SECONDLY_ROLLING") => Some(TEN_SECONDLY_WAIT),
        Some("SECONDLY") => Some(SECONDLY_WAIT),
        _ if message.contains("ten_secondly_rolling") => Some(TEN_SECONDLY_WAIT),
        _ if message.contains("secondly limit") => Some(SECONDLY_WAIT),
        _ => None,
    }
}

fn rate_limited(wait: Option<Duration>, body: HubSpotErrorBody) -> HubSpotError {
    // A body naming the daily policy is as final for today as the daily header.
    let retry_after = if body.details.policy_name.as_deref() == Some("DAILY") {
        Some(DAILY_LIMIT_WAIT)
    } else {
        wait.or_else(|| window_of(&body))
    };
    HubSpotError::RateLimited { retry_after, body }
}

/// `HTTP 502 Bad Gateway: <HubSpot's message or the HTML page's title>`, bounded.
fn status_message(status: u16, body: &HubSpotErrorBody, text: &str) -> String {
    let mut message = match reqwest::StatusCode::from_u16(status) {
        Ok(code) => format!("HTTP {code}"),
        Err(_) => format!("HTTP {status}"),
    };
    if let Some(said) = body.message.as_deref().or_else(|| html_title(text)) {
        message.push_str(": ");
        message.push_str(truncate_at_char(said, 500));
    }
    message
}

/// The `<title>` of an HTML error page (Cloudflare's and nginx's 5xx and 414 pages have one).
fn html_title(text: &str) -> Option<&str> {
    let head = truncate_at_char(text, 4096);
    let lower = head.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower.get(start..)?.find("</title>")?;
    head.get(start..end).map(str::trim).filter(|t| !t.is_empty())
}

/// `raw` for a dead letter: at most `RAW_LIMIT` bytes (on a character boundary), marked when cut.
pub(crate) fn bounded_raw(text: &str, already_truncated: bool) -> String {
    if text.len() <= RAW_LIMIT && !already_truncated {
        return text.to_owned();
    }
    format!("{}… [truncated]", truncate_at_char(text, RAW_LIMIT))
}

pub(crate) fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// How long the answer asks us to wait: [`DAILY_LIMIT_WAIT`] when the daily limit is spent
/// (`X-HubSpot-RateLimit-Daily-Remaining: 0`); else `Retry-After` when present; else, when the
/// rolling window is spent (`X-HubSpot-RateLimit-Remaining: 0`), its whole length, the longest it can
/// take to free up. Every header is optional and read case-insensitively (catalog item 5).
pub fn wait_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if text(RATE_LIMIT_DAILY_REMAINING).is_some_and(|left| left == "0") {
        return Some(DAILY_LIMIT_WAIT);
    }
    if let Some(after) = text(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, now)) {
        return Some(after);
    }
    if text(RATE_LIMIT_REMAINING)?.parse::<u64>().ok()? != 0 {
        return None;
    }
    text(RATE_LIMIT_INTERVAL)?
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is zero.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = SystemTime::from(chrono::DateTime::parse_from_rfc2822(value).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape of error body HubSpot sends, read into one type.
    mod error_bodies {
        use super::*;

        #[test]
        fn a_v3_error_keeps_category_sub_category_errors_and_context() {
            let body = parse_error_body(
                br#"{"status":"error","message":"Invalid input","correlationId":"aeb5f871-7f07-4993-9211-075dc63e7cbf",
                    "category":"VALIDATION_ERROR","subCategory":"crm.properties.INVALID",
                    "errors":[{"message":"discount was not a valid number","code":"INVALID_INTEGER","in":"discount",
                               "context":{"propertyName":["discount"]}}],
                    "context":{"objectWriteTraceId":["evt_1"]},"links":{"knowledge-base":"https://example.invalid"}}"#,
            );
            assert_eq!(body.category.as_deref(), Some("VALIDATION_ERROR"));
            assert_eq!(body.details.sub_category.as_deref(), Some("crm.properties.INVALID"));
            assert_eq!(body.details.context["objectWriteTraceId"], ["evt_1"]);
            assert_eq!(body.details.errors.len(), 1);
            assert_eq!(body.details.errors[0].location.as_deref(), Some("discount"));
            assert_eq!(
                body.validation_results,
                vec![ValidationResult {
                    name: Some("discount".to_owned()),
                    error: Some("INVALID_INTEGER".to_owned()),
                    message: Some("discount was not a valid number".to_owned()),
                    is_valid: Some(false),
                }]
            );
        }

        #[test]
        fn a_message_only_validation_error_is_read_from_its_embedded_json() {
            let body = parse_error_body(
                br#"{"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Email address ada@example.<INVALID TLD> is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]"}"#,
            );
            assert_eq!(body.validation_results.len(), 1);
            assert_eq!(body.validation_results[0].name.as_deref(), Some("email"));
            assert_eq!(body.validation_results[0].error.as_deref(), Some("INVALID_EMAIL"));
        }

        #[test]
        fn odd_types_are_kept_as_text_and_never_fail() {
            let body = parse_error_body(
                br#"{"subCategory":{"a":1},"context":{"expire time":"2026-03-10T23:04:41.164Z","n":[1,"x"],"z":null},
                    "errors":["not an object",{"code":5}],"message":"Property values were not valid: [oops"}"#,
            );
            assert_eq!(body.details.sub_category.as_deref(), Some(r#"{"a":1}"#));
            assert_eq!(body.details.context["expire time"], ["2026-03-10T23:04:41.164Z"]);
            assert_eq!(body.details.context["n"], ["1", "x"]);
            assert!(body.details.context["z"].is_empty());
            assert_eq!(body.details.errors.len(), 1, "the non-object entry is skipped");
            assert!(body.validation_results.is_empty());
            assert_eq!(parse_error_body(b"<html>"), HubSpotErrorBody::default());
        }

        #[test]
        fn scopes_are_gathered_from_every_key_once() {
            let body = parse_error_body(
                br#"{"category":"MISSING_SCOPES","context":{"missingScopes":["a","b"]},
                    "errors":[{"message":"m","context":{"requiredGranularScopes":["b","c"],"requiredScopes":["d"]}}]}"#,
            );
            assert_eq!(body.details.required_scopes, ["a", "b", "c", "d"]);
        }

        #[test]
        fn a_v1_body_serialises_as_before() {
            let body =
                parse_error_body(br#"{"status":"error","message":"m","correlationId":"c","validationResults":[]}"#);
            assert_eq!(
                serde_json::to_value(&body).unwrap(),
                serde_json::json!({"message":"m","correlationId":"c","validationResults":[],"category":null})
            );
        }
    }

    /// Status and body to error, for each answer kind of the catalog that applies to one call.
    mod classification {
        use serde_json::json;

        use super::*;

        #[test]
        fn each_status_family_gets_its_variant() {
            let json = |s: &str| s.to_owned();
            let cases: Vec<(u16, String, &str)> = vec![
                (401, json(r#"{"category":"EXPIRED_AUTHENTICATION"}"#), "Unauthorized"),
                (403, json(r#"{"category":"INVALID_AUTHENTICATION"}"#), "Unauthorized"),
                (403, json(r#"{"category":"MISSING_SCOPES"}"#), "MissingScopes"),
                (
                    403,
                    json(r#"{"context":{"requiredScopes":["contacts"]}}"#),
                    "MissingScopes",
                ),
                (423, String::new(), "Locked"),
                (429, String::new(), "RateLimited"),
                (
                    500,
                    json(r#"{"errorType":"RATE_LIMIT","policyName":"SECONDLY"}"#),
                    "RateLimited",
                ),
                (
                    503,
                    json(r#"{"message":"You have reached your ten_secondly_rolling limit."}"#),
                    "RateLimited",
                ),
                (500, json(r#"{"message":"internal error"}"#), "Unavailable"),
                (
                    414,
                    json("<html><head><title>414 Request-URI Too Large</title></head></html>"),
                    "Rejected",
                ),
                (
                    409,
                    json(r#"{"category":"CONFLICT","message":"Contact already exists. Existing ID: 5"}"#),
                    "Rejected",
                ),
            ];
            for (status, text, want) in cases {
                let err = classify_failure(status, None, &text, false);
                let got = format!("{err:?}");
                assert!(got.starts_with(want), "{status} {text}: {got}");
            }
        }

        /// Catalog items 1 and 2: a rolling-window 429 with no header to say how long waits for its window.
        #[test]
        fn a_rolling_window_429_without_headers_waits_for_its_window() {
            let cases = [
                (
                    r#"{"errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING","message":"You have reached your ten_secondly_rolling limit."}"#,
                    Some(TEN_SECONDLY_WAIT),
                ),
                (
                    r#"{"message":"You have reached your ten_secondly_rolling limit."}"#,
                    Some(TEN_SECONDLY_WAIT),
                ),
                (
                    r#"{"errorType":"RATE_LIMIT","policyName":"SECONDLY"}"#,
                    Some(SECONDLY_WAIT),
                ),
                (
                    r#"{"category":"RATE_LIMITS","message":"You have reached your secondly limit."}"#,
                    Some(SECONDLY_WAIT),
                ),
                (r#"{"status":"error"}"#, None),
                ("", None),
            ];
            for (text, want) in cases {
                assert_eq!(classify_failure(429, None, text, false).retry_after(), want, "{text}");
            }
            // A header's hint wins over the policy's window.
            let asked = Some(Duration::from_secs(3));
            assert_eq!(classify_failure(429, asked, cases[0].0, false).retry_after(), asked);
        }

        /// Catalog item 7: a 477 is a refusal for now (nothing written, not retried within the
        /// invocation), and says when to redrive.
        #[test]
        fn a_477_migration_in_progress_is_unavailable_and_says_when_to_redrive() {
            let err = classify_failure(477, Some(Duration::from_secs(3600)), "", false);
            assert!(
                matches!(&err, HubSpotError::Unavailable { status: Some(477), message } if message.contains("retry in 3600 s")),
                "{err:?}"
            );
            assert!(!err.is_retryable() && !err.may_have_created() && !err.is_retryable_if_idempotent());
            assert_eq!(err.reason(), crate::domain::Reason::HubSpotUnavailable);
            let err = classify_failure(477, None, "<html></html>", false);
            assert!(err.to_string().contains("Migration in Progress"), "{err}");
        }

        #[test]
        fn a_daily_policy_in_a_500_or_429_waits_a_day() {
            for status in [429, 500] {
                let err = classify_failure(status, Some(Duration::from_secs(1)), r#"{"policyName":"DAILY"}"#, false);
                assert_eq!(err.retry_after(), Some(DAILY_LIMIT_WAIT), "{status}");
            }
        }

        #[test]
        fn locked_waits_at_least_two_seconds_or_longer_if_asked() {
            assert_eq!(classify_failure(423, None, "", false).retry_after(), Some(LOCKED_WAIT));
            let asked = Some(Duration::from_secs(9));
            assert_eq!(classify_failure(423, asked, "", false).retry_after(), asked);
        }

        #[test]
        fn an_html_title_is_found_only_where_it_is() {
            assert_eq!(
                html_title("<HTML><TITLE> 502 Bad Gateway </TITLE>"),
                Some("502 Bad Gateway")
            );
            assert_eq!(html_title("<title></title>"), None);
            assert_eq!(html_title("<title>never closed"), None);
            assert_eq!(html_title("plain text"), None);
            let err = classify_failure(599, None, "x", false);
            assert!(err.to_string().contains("HTTP 599"), "{err}");
        }

        #[test]
        fn a_403_naming_scopes_is_missing_scopes_in_each_shape_and_anything_else_unauthorized() {
            let granular = json!({"status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "correlationId": "019e63ab-0000-7000-8000-000000000011",
                "errors": [{"message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": ["crm.objects.deals.write", "crm.objects.deals.sensitive.write.v2"]}}],
                "links": {"scopes": "https://developers.hubspot.com/scopes"}, "category": "MISSING_SCOPES"});
            let older = json!({"status": "error", "message": "missing scopes", "category": "MISSING_SCOPES",
                "context": {"requiredScopes": ["contacts"]}});
            let spec = json!({"message": "m", "category": "MISSING_SCOPES", "correlationId": "c",
                "context": {"missingScopes": ["crm.objects.companies.read", "crm.objects.companies.read"]}});
            let bare = json!({"status": "error", "message": "m", "category": "MISSING_SCOPES"});
            let uncategorised = json!({"status": "error", "errors": [{"context": {"requiredScopes": ["tickets"]}}]});
            let cases: [(&str, u16, Value, Option<&[&str]>); 7] = [
                (
                    "2026-03 granular",
                    403,
                    granular,
                    Some(&["crm.objects.deals.write", "crm.objects.deals.sensitive.write.v2"]),
                ),
                ("older requiredScopes", 403, older, Some(&["contacts"])),
                (
                    "the spec's missingScopes, deduplicated",
                    403,
                    spec,
                    Some(&["crm.objects.companies.read"]),
                ),
                ("category without a list", 403, bare.clone(), Some(&[])),
                ("a list without the category", 403, uncategorised, Some(&["tickets"])),
                ("a 401 is never missing scopes", 401, bare, None),
                (
                    "a 403 of another kind",
                    403,
                    json!({"status": "error", "message": "forbidden"}),
                    None,
                ),
            ];
            for (row, status, body, expected) in cases {
                let raw = body.to_string();
                let err = classify_failure(status, None, &raw, false);
                match expected {
                    Some(scopes) => {
                        let HubSpotError::MissingScopes { scopes: got, .. } = &err else {
                            panic!("{row}: expected MissingScopes, got {err:?}");
                        };
                        assert_eq!(got, scopes, "{row}");
                        assert_eq!(err.reason(), crate::domain::Reason::HubSpotUnauthorized, "{row}");
                        assert!(!err.is_retryable(), "{row}");
                        let problems = err.problems();
                        assert_eq!(problems.len(), 1, "{row}");
                        assert_eq!(problems[0].code, "missing_scopes", "{row}");
                        for scope in scopes {
                            assert!(problems[0].message.contains(scope), "{row}: {}", problems[0].message);
                        }
                    }
                    None => assert!(matches!(err, HubSpotError::Unauthorized { .. }), "{row}: {err:?}"),
                }
            }
            // Not JSON at all.
            assert!(matches!(
                classify_failure(403, None, "<html>Forbidden</html>", false),
                HubSpotError::Unauthorized { status: 403, .. }
            ));
        }

        /// What HubSpot puts in a scope list is bounded before it reaches an error or a dead letter:
        /// blanks skipped, padding trimmed, at most 50 scopes of at most 200 characters.
        #[test]
        fn scope_lists_are_trimmed_and_bounded() {
            let many: Vec<String> = (0..60).map(|n| format!("scope.{n}")).collect();
            let long = "s".repeat(300);
            let body = json!({"category": "MISSING_SCOPES",
                "context": {"requiredScopes": ["  contacts ", "", "   ", "contacts", long]},
                "errors": [{"context": {"missingScopes": many}}]});
            let err = classify_failure(403, None, &body.to_string(), false);
            let HubSpotError::MissingScopes { scopes, body, .. } = &err else {
                panic!("expected MissingScopes, got {err:?}");
            };
            assert_eq!(scopes.len(), 50);
            assert_eq!(scopes[0], "contacts");
            assert_eq!(scopes[1], "s".repeat(200));
            assert_eq!(scopes[2], "scope.0");
            assert_eq!(scopes[49], "scope.47");
            assert_eq!(scopes, &body.details.required_scopes, "one list, kept twice");
        }
    }
}
