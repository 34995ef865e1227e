//! Typeform `form_response` webhooks: answers keyed by field ref and by field id, hidden fields,
//! variables and score, in both the older and newer payload shapes. Problems, never panics.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Normalised, Source, insert_new, object, rfc3339, str_at, unexpected};
use crate::domain::Problem;

const SOURCE: Source = Source::Typeform;
/// The body has no `form_response` object (or one of its parts is not what the docs say).
const NOT_A_RESPONSE: &str = "not_a_typeform_response";
/// One answer is not shaped like a Typeform answer.
const INVALID_ANSWER: &str = "invalid_answer";

/// Names that always hold response metadata (`null` when absent). An answer whose ref is one of
/// these stays reachable by its field id; a hidden field of that name under `hidden`.
const RESERVED: [&str; 6] = ["form_id", "response_id", "hidden", "variables", "calculated", "score"];

/// A Typeform webhook body (<https://www.typeform.com/developers/webhooks/example-payload/>).
///
/// `fields`, in this order (first come, first served after the reserved names):
/// - `form_id` (`form_response.form_id`), `response_id` (`form_response.token`),
///   `hidden` (the hidden-fields object), `variables` (`{key: value}` from `variables[]`),
///   `calculated` (the object) and `score` (`calculated.score`).
/// - every answer under its field **ref** (from the answer's `field.ref`, or for older payloads
///   whose answers carry only `field.id`, from `definition.fields`) and under its field **id**.
///   Values by answer type: `text`, `email`, `url`, `file_url`, `phone_number`, `date` → string;
///   `number` → number; `boolean` → boolean; `choice` → its label (or the `other` text);
///   `choices` → list of labels, with the `other` text last; `payment` → the object as sent
///   (`{amount, last4, name, success}`); any other type (`multi_format`, future ones) → the
///   value under the key named by its type, as sent (every Typeform answer holds its value
///   there). `answer_url`, `choice.id`/`ref` and `response_url` of newer payloads are accepted
///   and left in `raw`.
/// - each hidden field at top level, unless an answer (or a reserved name) has that name.
///
/// `id` is `form_response.token`, the response's own id: it is the same in every retry of a
/// response, whereas the docs describe `event_id` only as the webhook's unique id. Events other
/// than `form_response` (e.g. `form_response_partial`) get `{event_type}:{token}`, so a partial
/// and the completed response never share an idempotency key. Without a token, `event_id`.
/// `submitted_at` is `form_response.submitted_at`; `event_type` is `event_type`.
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let Some(Value::Object(response)) = body.get("form_response") else {
        let expected = "a Typeform webhook body with a `form_response` object";
        return Err(vec![unexpected(
            SOURCE,
            NOT_A_RESPONSE,
            "body.form_response",
            expected,
            body.get("form_response"),
        )]);
    };
    let mut problems = Vec::new();
    let mut fields = Map::new();

    let form_id = response
        .get("form_id")
        .or_else(|| response.get("definition").and_then(|d| d.get("id")));
    fields.insert("form_id".into(), form_id.cloned().unwrap_or(Value::Null));
    fields.insert(
        "response_id".into(),
        response.get("token").cloned().unwrap_or(Value::Null),
    );
    let hidden = optional_object(response, "hidden", &mut problems);
    fields.insert("hidden".into(), hidden.cloned().map_or(Value::Null, Value::Object));
    let variables = variables(response, &mut problems);
    fields.insert("variables".into(), variables.map_or(Value::Null, Value::Object));
    let calculated = optional_object(response, "calculated", &mut problems);
    fields.insert(
        "calculated".into(),
        calculated.cloned().map_or(Value::Null, Value::Object),
    );
    let score = calculated.and_then(|c| c.get("score")).cloned();
    fields.insert("score".into(), score.unwrap_or(Value::Null));

    let refs = refs_by_id(response);
    match response.get("answers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(answers)) => {
            for (i, answer) in answers.iter().enumerate() {
                let at = format!("body.form_response.answers[{i}]");
                match read_answer(answer, &at, &refs) {
                    Ok((names, value)) => {
                        for name in names.iter().filter(|n| !RESERVED.contains(&n.as_str())) {
                            insert_new(&mut fields, name, &value);
                        }
                    }
                    Err(problem) => problems.push(problem),
                }
            }
        }
        other => problems.push(unexpected(
            SOURCE,
            NOT_A_RESPONSE,
            "body.form_response.answers",
            "a list of answers",
            other,
        )),
    }
    for (name, value) in hidden.into_iter().flatten() {
        if !RESERVED.contains(&name.as_str()) {
            insert_new(&mut fields, name, value);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let event_type = str_at(body, "event_type").map(str::to_owned);
    let id = match (
        str_at(response, "token").filter(|t| !t.is_empty()),
        event_type.as_deref(),
    ) {
        (Some(token), None | Some("form_response")) => Some(token.to_owned()),
        (Some(token), Some(other)) => Some(format!("{other}:{token}")),
        (None, _) => str_at(body, "event_id").map(str::to_owned),
    };
    Ok(Normalised {
        fields,
        id,
        submitted_at: rfc3339(response.get("submitted_at")),
        event_type,
    })
}

/// `form_response[key]` as an object; absent or `null` is `None`, anything else a problem.
fn optional_object<'a>(
    response: &'a Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    match response.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        other => {
            let path = format!("body.form_response.{key}");
            problems.push(unexpected(SOURCE, NOT_A_RESPONSE, &path, "an object", other));
            None
        }
    }
}

/// `variables: [{key, type, <type>: value}]` as `{key: value}`.
fn variables(response: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<Map<String, Value>> {
    let items = match response.get("variables") {
        None | Some(Value::Null) => return None,
        Some(Value::Array(items)) => items,
        other => {
            let path = "body.form_response.variables";
            problems.push(unexpected(SOURCE, NOT_A_RESPONSE, path, "a list of variables", other));
            return None;
        }
    };
    let mut variables = Map::new();
    for (i, item) in items.iter().enumerate() {
        let key = item.as_object().and_then(|v| str_at(v, "key"));
        let Some(key) = key else {
            let path = format!("body.form_response.variables[{i}].key");
            let got = item.as_object().map_or(Some(item), |v| v.get("key"));
            problems.push(unexpected(SOURCE, NOT_A_RESPONSE, &path, "a variable name", got));
            continue;
        };
        // Like answers, a variable holds its value under the key named by its type.
        let value = item
            .get("type")
            .and_then(Value::as_str)
            .and_then(|kind| item.get(kind))
            .cloned()
            .unwrap_or(Value::Null);
        variables.entry(key).or_insert(value);
    }
    Some(variables)
}

/// Field id → ref, from `definition.fields` (older answers carry only `field.id`). Lenient: the
/// definition is descriptive, so malformed entries are skipped rather than reported.
fn refs_by_id(response: &Map<String, Value>) -> HashMap<&str, &str> {
    let definitions = response
        .get("definition")
        .and_then(|d| d.get("fields"))
        .and_then(Value::as_array);
    definitions
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("id")?.as_str()?, f.get("ref")?.as_str()?)))
        .collect()
}

/// One answer: the names it is filed under (ref, then id) and its value.
fn read_answer(answer: &Value, at: &str, refs: &HashMap<&str, &str>) -> Result<(Vec<String>, Value), Problem> {
    let Some(answer) = answer.as_object() else {
        return Err(unexpected(SOURCE, INVALID_ANSWER, at, "an answer object", Some(answer)));
    };
    let field = answer.get("field").and_then(Value::as_object);
    let id = field.and_then(|f| str_at(f, "id")).filter(|s| !s.is_empty());
    let field_ref = field
        .and_then(|f| str_at(f, "ref"))
        .or_else(|| id.and_then(|id| refs.get(id).copied()))
        .filter(|s| !s.is_empty());
    let names: Vec<String> = field_ref.into_iter().chain(id).map(str::to_owned).collect();
    if names.is_empty() {
        let path = format!("{at}.field");
        let expected = "a `field` object with an `id` or a `ref`";
        return Err(unexpected(SOURCE, INVALID_ANSWER, &path, expected, answer.get("field")));
    }
    let Some(kind) = str_at(answer, "type") else {
        let path = format!("{at}.type");
        return Err(unexpected(
            SOURCE,
            INVALID_ANSWER,
            &path,
            "an answer type",
            answer.get("type"),
        ));
    };
    let path = format!("{at}.{kind}");
    let raw = answer.get(kind);
    let wrong = |expected: &str| unexpected(SOURCE, INVALID_ANSWER, &path, expected, raw);
    let value = match (kind, raw) {
        ("text" | "email" | "url" | "file_url" | "phone_number" | "date", Some(v @ Value::String(_))) => v.clone(),
        ("text" | "email" | "url" | "file_url" | "phone_number" | "date", _) => return Err(wrong("a string")),
        ("number", Some(v @ Value::Number(_))) => v.clone(),
        ("number", _) => return Err(wrong("a number")),
        ("boolean", Some(v @ Value::Bool(_))) => v.clone(),
        ("boolean", _) => return Err(wrong("a boolean")),
        ("choice", Some(Value::Object(choice))) => match str_at(choice, "label").or_else(|| str_at(choice, "other")) {
            Some(label) => Value::String(label.to_owned()),
            None => return Err(wrong("a choice with a `label` or `other` text")),
        },
        ("choice", _) => return Err(wrong("a choice object")),
        ("choices", Some(Value::Object(choices))) => choice_labels(choices)
            .ok_or_else(|| wrong("choices with a list of `labels` (texts) and/or an `other` text"))?,
        ("choices", _) => return Err(wrong("a choices object")),
        ("payment", Some(v @ Value::Object(_))) => v.clone(),
        ("payment", _) => return Err(wrong("a payment object")),
        (_, Some(v)) => v.clone(),
        (_, None) => return Err(wrong(&format!("the answer's value under `{kind}`"))),
    };
    Ok((names, value))
}

/// `{labels: [..], other: ".."}` → the labels, then the other text; `None` if malformed or empty.
fn choice_labels(choices: &Map<String, Value>) -> Option<Value> {
    let mut labels = match choices.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(labels)) if labels.iter().all(Value::is_string) => labels.clone(),
        Some(_) => return None,
    };
    match choices.get("other") {
        None | Some(Value::Null) => {}
        Some(other @ Value::String(_)) => labels.push(other.clone()),
        Some(_) => return None,
    }
    (!labels.is_empty() || choices.contains_key("labels")).then_some(Value::Array(labels))
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery};
    use super::*;
    use serde_json::json;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/typeform-form_response.json");

    async fn fixture() -> Value {
        decode_json(FIXTURE).await
    }

    #[tokio::test]
    async fn the_docs_example_payload_files_each_answer_under_its_ref_and_its_id() {
        let sub = normalise_source(SOURCE, fixture().await, &delivery()).unwrap();
        let f = &sub.fields;
        let cases = [
            ("email by ref", "readable_ref_email", json!("laura@example.com")),
            ("email by id", "SMEUb7VJz92Q", json!("laura@example.com")),
            ("short text by ref", "readable_ref_short_text", json!("Laura")),
            ("date", "readable_ref_date", json!("2005-10-15")),
            ("choices", "readable_ref_picture_choice", json!(["London", "Sydney"])),
            ("choice", "readable_ref_multiple_choice", json!("London")),
            ("number", "readable_ref_number1", json!(5)),
            ("legal is a boolean", "readable_ref_legal", json!(true)),
            ("yes/no false", "RUqkXSeXBXSd", json!(false)),
            ("opinion scale", "readable_ref_opinion_scale", json!(2)),
            (
                "url with its ref on the answer",
                "readable_ref_calendly",
                json!("https://calendly.com/scheduled_events/EVENT_TYPE/invitees/INVITEE"),
            ),
            ("form id", "form_id", json!("lT4Z3j")),
            ("response id", "response_id", json!("a3a12ec67a1365927098a606107fac15")),
            ("hidden object", "hidden", json!({"user_id": "abc123456"})),
            ("hidden field at top level", "user_id", json!("abc123456")),
            ("variables", "variables", json!({"score": 4, "name": "typeform"})),
            ("calculated", "calculated", json!({"score": 9})),
            ("score", "score", json!(9)),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert_eq!(sub.id.as_deref(), Some("a3a12ec67a1365927098a606107fac15"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2018-01-18T18:17:02.000Z"));
        assert_eq!(sub.event_type.as_deref(), Some("form_response"));
        assert_eq!(sub.source, "typeform");
        assert_eq!(*sub.raw, fixture().await, "raw is the whole decoded body");
    }

    #[tokio::test]
    async fn newer_payloads_with_choice_ids_answer_urls_and_other_choices_are_read_too() {
        let mut body = fixture().await;
        let response = &mut body["form_response"];
        response["response_url"] = json!("https://admin.typeform.com/form/lT4Z3j/results#responses");
        response["answers"] = json!([
            {"type": "choice", "choice": {"id": "eXnU3oA141Cg", "ref": "238d", "label": "London"},
             "field": {"id": "k6TP9oLGgHjl", "type": "multiple_choice", "ref": "city"},
             "answer_url": "https://admin.typeform.com/form/lT4Z3j/results#responses/x"},
            {"type": "choice", "choice": {"other": "Lisbon"}, "field": {"id": "f2", "ref": "other_city"}},
            {"type": "choices", "choices": {"ids": ["a", "b"], "labels": ["Red", "Blue"], "refs": ["r", "b"],
             "other": "Teal"}, "field": {"id": "f3", "ref": "colours"}},
            {"type": "choices", "choices": {"other": "Only other"}, "field": {"id": "f4", "ref": "only_other"}},
            {"type": "phone_number", "phone_number": "+442071234567", "field": {"id": "f5", "ref": "phone"}},
            {"type": "file_url", "file_url": "https://api.typeform.com/responses/files/x/cv.pdf",
             "field": {"id": "f6", "ref": "cv"}},
            {"type": "payment", "payment": {"amount": "1.00", "last4": "4242", "name": "John Doe", "success": true},
             "field": {"id": "f7", "ref": "deposit"}},
            {"type": "multi_format", "multi_format": {"video_url": "https://v", "text": "hello"},
             "field": {"id": "f8", "ref": "pitch"}},
            {"type": "email", "email": "first@example.com", "field": {"id": "f9", "ref": "user_id"}},
            {"type": "email", "email": "second@example.com", "field": {"id": "f10", "ref": "city"}},
            {"type": "text", "text": "not metadata", "field": {"id": "f11", "ref": "score"}},
        ]);
        let sub = normalise_source(SOURCE, body, &delivery()).unwrap();
        let f = &sub.fields;
        let cases = [
            ("choice with id and ref", "city", json!("London")),
            ("other choice", "other_city", json!("Lisbon")),
            ("choices with other last", "colours", json!(["Red", "Blue", "Teal"])),
            ("choices with only other", "only_other", json!(["Only other"])),
            ("phone", "phone", json!("+442071234567")),
            (
                "file url",
                "cv",
                json!("https://api.typeform.com/responses/files/x/cv.pdf"),
            ),
            (
                "payment object",
                "deposit",
                json!({"amount": "1.00", "last4": "4242", "name": "John Doe", "success": true}),
            ),
            (
                "multi format",
                "pitch",
                json!({"video_url": "https://v", "text": "hello"}),
            ),
            ("an answer beats a hidden field", "user_id", json!("first@example.com")),
            ("the first answer wins a ref", "f10", json!("second@example.com")),
            ("a reserved name keeps its metadata", "score", json!(9)),
            ("…and the answer is reachable by id", "f11", json!("not metadata")),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert_eq!(f["hidden"]["user_id"], "abc123456", "the hidden object still holds it");
    }

    #[tokio::test]
    async fn a_partial_response_gets_an_id_apart_from_the_completed_one() {
        let mut body = fixture().await;
        body["event_type"] = json!("form_response_partial");
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        assert_eq!(
            sub.id.as_deref(),
            Some("form_response_partial:a3a12ec67a1365927098a606107fac15")
        );
        body["form_response"].as_object_mut().unwrap().remove("token");
        let sub = normalise_source(SOURCE, body, &delivery()).unwrap();
        assert_eq!(sub.id.as_deref(), Some("LtWXD3crgy"), "without a token, the event id");
    }

    #[tokio::test]
    async fn bodies_that_are_not_typeform_responses_are_problems_naming_the_path() {
        let tally = decode_json(include_bytes!(
            "../../../tests/fixtures/webhooks/tally-form_response.json"
        ))
        .await;
        let cases = [
            ("a tally body", tally, "not_a_typeform_response", "body.form_response"),
            (
                "an empty object",
                json!({}),
                "not_a_typeform_response",
                "body.form_response",
            ),
            ("an array", json!([{"form_response": {}}]), "not_an_object", "body"),
            (
                "form_response is a string",
                json!({"form_response": "x"}),
                "not_a_typeform_response",
                "body.form_response",
            ),
            (
                "answers is an object",
                json!({"form_response": {"answers": {}}}),
                "not_a_typeform_response",
                "body.form_response.answers",
            ),
            (
                "hidden is a list",
                json!({"form_response": {"hidden": []}}),
                "not_a_typeform_response",
                "body.form_response.hidden",
            ),
            (
                "a variable without a key",
                json!({"form_response": {"variables": [{"type": "number", "number": 1}]}}),
                "not_a_typeform_response",
                "body.form_response.variables[0].key",
            ),
        ];
        for (row, body, code, field) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            assert_eq!(codes(&problems), [code], "{row}");
            assert_eq!(problems[0].field.as_deref(), Some(field), "{row}");
        }
    }

    #[test]
    fn answers_of_unexpected_types_are_one_problem_each() {
        let answers = json!([
            "not an object",
            {"type": "email", "email": 5, "field": {"id": "a"}},
            {"type": "number", "number": "5", "field": {"id": "b"}},
            {"type": "boolean", "boolean": "yes", "field": {"id": "c"}},
            {"type": "choice", "choice": {"id": "x"}, "field": {"id": "d"}},
            {"type": "choices", "choices": {"labels": [1, 2]}, "field": {"id": "e"}},
            {"type": "text", "text": "no field"},
            {"text": "no type", "field": {"id": "g"}},
            {"type": "mystery", "field": {"id": "h"}},
            {"type": "payment", "payment": "1.00", "field": {"id": "i"}},
            {"type": "text", "text": "fine", "field": {"id": "ok"}},
        ]);
        let body = json!({"event_type": "form_response", "form_response": {"answers": answers}});
        let problems = normalise(&body).expect_err("problems");
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_deref().unwrap_or("")).collect();
        assert_eq!(
            fields,
            [
                "body.form_response.answers[0]",
                "body.form_response.answers[1].email",
                "body.form_response.answers[2].number",
                "body.form_response.answers[3].boolean",
                "body.form_response.answers[4].choice",
                "body.form_response.answers[5].choices",
                "body.form_response.answers[6].field",
                "body.form_response.answers[7].type",
                "body.form_response.answers[8].mystery",
                "body.form_response.answers[9].payment",
            ]
        );
        assert!(problems.iter().all(|p| p.code == "invalid_answer"), "{problems:?}");
        assert!(
            problems[1]
                .message
                .ends_with("expects a string at body.form_response.answers[1].email, got a number"),
            "{}",
            problems[1].message
        );
    }

    #[test]
    fn a_response_without_answers_or_metadata_still_normalises() {
        let got = normalise(&json!({"form_response": {}})).expect("normalises");
        let want = json!({"form_id": null, "response_id": null, "hidden": null, "variables": null,
                          "calculated": null, "score": null});
        assert_eq!(Value::Object(got.fields), want);
        assert_eq!((got.id, got.submitted_at, got.event_type), (None, None, None));
    }
}
