//! Tally `FORM_RESPONSE` webhooks: fields keyed by key and by label, option ids resolved to
//! their texts (choices, checkboxes, ranking, matrix). Problems, never panics, for other bodies.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Normalised, Source, id_text, insert_new, object, rfc3339, str_at, unexpected};
use crate::domain::Problem;

const SOURCE: Source = Source::Tally;
/// The body has no `data` object with a `fields` list.
const NOT_A_RESPONSE: &str = "not_a_tally_response";
/// One entry of `data.fields` is not shaped like a Tally field.
const INVALID_FIELD: &str = "invalid_field";

/// Names that always hold response metadata (`null`, or `{}` for the two collections, when
/// absent). A question labelled like one of these stays reachable by its key.
const RESERVED: [&str; 7] = [
    "form_id",
    "form_name",
    "response_id",
    "submission_id",
    "respondent_id",
    "hidden",
    "calculated",
];

/// A Tally webhook body (<https://tally.so/help/webhooks>, "Example webhook event").
///
/// `fields`, in this order (first come, first served after the reserved names):
/// - `form_id`, `form_name`, `response_id`, `submission_id`, `respondent_id` (from `data`);
///   `hidden` = `{label: value}` of the `HIDDEN_FIELDS` entries and `calculated` = the same for
///   `CALCULATED_FIELDS` (both also filed like any other field).
/// - each entry of `data.fields` under its `key` and then under its `label` (labels can repeat:
///   the first one wins; the key always works). Values:
///   - `MULTIPLE_CHOICE`, `DROPDOWN`: the selected option's text; a list of texts when several
///     are selected (multi-select setting); `null` when none.
///   - `CHECKBOXES`, `MULTI_SELECT`, `RANKING`: always a list of texts (ranking in rank order).
///     Tally also sends one boolean field per checkbox option (`key_<optionId>`, label
///     `Checkboxes (Soccer)`): those stay booleans.
///   - `MATRIX`: `{row text: [column texts]}`.
///   - `FILE_UPLOAD`, `SIGNATURE`: the list of file objects as sent (`{id, name, url,
///     mimeType, size}`), so `fields["File upload"][0].url` is the link.
///   - `PAYMENT`: Tally sends separate fields (`Payment (price)`, `Payment (currency)`, …);
///     each is filed as sent.
///   - anything else (text, number, email, date, rating, …): the value as sent.
///   - an id that is not among the field's options stays the id (Tally's "other" answers).
///
/// `id` is `eventId`: Tally retries (automatically and through its API) re-send the same event
/// (<https://developers.tally.so/api-reference/endpoint/webhooks/events/retry>); without it,
/// `data.responseId`. `submitted_at` is `data.createdAt` (when the response was submitted),
/// else the event's `createdAt`; `event_type` is `eventType`.
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let Some(Value::Object(data)) = body.get("data") else {
        let expected = "a Tally webhook body with a `data` object";
        return Err(vec![unexpected(
            SOURCE,
            NOT_A_RESPONSE,
            "body.data",
            expected,
            body.get("data"),
        )]);
    };
    let Some(Value::Array(entries)) = data.get("fields") else {
        let expected = "a list of fields";
        let problem = unexpected(SOURCE, NOT_A_RESPONSE, "body.data.fields", expected, data.get("fields"));
        return Err(vec![problem]);
    };

    let mut problems = Vec::new();
    let mut filed = Vec::new();
    let (mut hidden, mut calculated) = (Map::new(), Map::new());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("body.data.fields[{i}]");
        match read_field(entry, &at) {
            Ok(field) => {
                let collection = match field.kind {
                    "HIDDEN_FIELDS" => Some(&mut hidden),
                    "CALCULATED_FIELDS" => Some(&mut calculated),
                    _ => None,
                };
                if let Some(collection) = collection {
                    let name = field.label.unwrap_or(field.key);
                    collection.entry(name).or_insert_with(|| field.value.clone());
                }
                filed.push(field);
            }
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut fields = Map::new();
    for (name, key) in [
        ("form_id", "formId"),
        ("form_name", "formName"),
        ("response_id", "responseId"),
        ("submission_id", "submissionId"),
        ("respondent_id", "respondentId"),
    ] {
        fields.insert(name.into(), data.get(key).cloned().unwrap_or(Value::Null));
    }
    fields.insert("hidden".into(), Value::Object(hidden));
    fields.insert("calculated".into(), Value::Object(calculated));
    for field in &filed {
        for name in [Some(field.key), field.label].into_iter().flatten() {
            if !RESERVED.contains(&name) {
                insert_new(&mut fields, name, &field.value);
            }
        }
    }

    Ok(Normalised {
        fields,
        id: id_text(body.get("eventId")).or_else(|| id_text(data.get("responseId"))),
        submitted_at: rfc3339(data.get("createdAt")).or_else(|| rfc3339(body.get("createdAt"))),
        event_type: str_at(body, "eventType").map(str::to_owned),
    })
}

/// One entry of `data.fields`, read.
struct Field<'a> {
    key: &'a str,
    label: Option<&'a str>,
    kind: &'a str,
    value: Value,
}

fn read_field<'a>(entry: &'a Value, at: &str) -> Result<Field<'a>, Problem> {
    let Some(entry) = entry.as_object() else {
        return Err(unexpected(SOURCE, INVALID_FIELD, at, "a field object", Some(entry)));
    };
    let Some(key) = str_at(entry, "key").filter(|k| !k.is_empty()) else {
        let path = format!("{at}.key");
        return Err(unexpected(
            SOURCE,
            INVALID_FIELD,
            &path,
            "the field's key",
            entry.get("key"),
        ));
    };
    let label = str_at(entry, "label").filter(|l| !l.is_empty());
    let kind = str_at(entry, "type").unwrap_or("");
    let value = entry.get("value").unwrap_or(&Value::Null);
    let path = format!("{at}.value");
    let value = match kind {
        "MULTIPLE_CHOICE" | "DROPDOWN" => match texts(value, &options(entry, "options"), &path)? {
            Value::Array(mut texts) if texts.len() == 1 => texts.pop().unwrap_or(Value::Null),
            Value::Array(texts) if texts.is_empty() => Value::Null,
            other => other,
        },
        // A per-option checkbox field carries a boolean, not ids: it stays as sent.
        "CHECKBOXES" if value.is_boolean() => value.clone(),
        "CHECKBOXES" | "MULTI_SELECT" | "RANKING" => texts(value, &options(entry, "options"), &path)?,
        "MATRIX" => matrix(entry, value, &path)?,
        _ => value.clone(),
    };
    Ok(Field {
        key,
        label,
        kind,
        value,
    })
}

/// `[{id, text}]` as id → text; malformed entries are skipped (the ids then stay ids).
fn options<'a>(entry: &'a Map<String, Value>, list: &str) -> HashMap<&'a str, &'a str> {
    let options = entry.get(list).and_then(Value::as_array).into_iter().flatten();
    options
        .filter_map(|o| Some((o.get("id")?.as_str()?, o.get("text")?.as_str()?)))
        .collect()
}

/// Selected ids (a list, or one id) → a list of texts; `null` stays `null`.
fn texts(value: &Value, options: &HashMap<&str, &str>, path: &str) -> Result<Value, Problem> {
    let text = |id: &str| Value::String(options.get(id).copied().unwrap_or(id).to_owned());
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(id) => Ok(Value::Array(vec![text(id)])),
        Value::Array(ids) => ids
            .iter()
            .map(|id| id.as_str().map(text))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array)
            .ok_or_else(|| unexpected(SOURCE, INVALID_FIELD, path, "a list of option ids", Some(value))),
        other => Err(unexpected(
            SOURCE,
            INVALID_FIELD,
            path,
            "a list of option ids",
            Some(other),
        )),
    }
}

/// `{rowId: [columnId]}` → `{row text: [column texts]}`.
fn matrix(entry: &Map<String, Value>, value: &Value, path: &str) -> Result<Value, Problem> {
    let selected = match value {
        Value::Null => return Ok(Value::Null),
        Value::Object(selected) => selected,
        other => {
            let expected = "an object of row ids to column ids";
            return Err(unexpected(SOURCE, INVALID_FIELD, path, expected, Some(other)));
        }
    };
    let (rows, columns) = (options(entry, "rows"), options(entry, "columns"));
    let mut out = Map::new();
    for (row, cells) in selected {
        let row = rows.get(row.as_str()).copied().unwrap_or(row);
        let cells = texts(cells, &columns, &format!("{path}.{row}"))?;
        out.entry(row).or_insert(cells);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery};
    use super::*;
    use serde_json::json;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/tally-form_response.json");

    #[tokio::test]
    async fn the_docs_example_event_files_each_field_by_key_and_label_with_option_texts() {
        let body = decode_json(FIXTURE).await;
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        let f = &sub.fields;
        let cases = [
            ("email by label", "Email", json!("alice@example.com")),
            ("email by key", "question_w4Q4Xn", json!("alice@example.com")),
            ("text", "Text", json!("Hello")),
            ("number", "Number", json!(10)),
            ("multiple choice is the text", "Multiple choice", json!("In progress")),
            ("dropdown is the text", "question_n9BqQm", json!("Hard")),
            ("checkboxes are texts", "Checkboxes", json!(["Swimming", "Skiing"])),
            (
                "per-option checkbox stays a boolean",
                "Checkboxes (Soccer)",
                json!(false),
            ),
            (
                "per-option checkbox by key",
                "question_wQ1K7w_cb33303b-4e9d-4bb3-8b51-f16acbf573fe",
                json!(true),
            ),
            (
                "multi-select in selection order",
                "Multi-select",
                json!(["Surf", "Golf"]),
            ),
            ("ranking in rank order", "Ranking", json!(["Pear", "Apple", "Banana"])),
            (
                "matrix rows to column texts",
                "Matrix",
                json!({"Quality": ["Satisfied"], "Speed": ["Neutral"]}),
            ),
            ("payment price", "Payment (price)", json!(9)),
            ("payment currency", "Payment (currency)", json!("USD")),
            ("hidden field by label", "utm_campaign", json!("newsletter")),
            ("calculated field", "Score", json!(20)),
            ("hidden collection", "hidden", json!({"utm_campaign": "newsletter"})),
            (
                "calculated collection",
                "calculated",
                json!({"Score": 20, "Type": "Hard"}),
            ),
            ("form id", "form_id", json!("VwbNEw")),
            ("form name", "form_name", json!("Webhook payload")),
            ("response id", "response_id", json!("2wgx4n")),
            ("respondent id", "respondent_id", json!("dwQKYm")),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        let upload = &f["File upload"][0];
        assert_eq!(upload["name"], "Tally_Icon.png", "file uploads stay objects");
        assert_eq!(upload["mimeType"], "image/png");
        assert_eq!(upload["size"], 16233);
        assert!(upload["url"].as_str().unwrap().ends_with("/Tally_Icon.png"));

        assert_eq!(sub.id.as_deref(), Some("a4cb511e-d513-4fa5-baee-b815d718dfd1"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2023-06-28T15:00:21.000Z"));
        assert_eq!(sub.event_type.as_deref(), Some("FORM_RESPONSE"));
        assert_eq!(*sub.raw, body);
    }

    #[test]
    fn choices_resolve_leniently_and_repeated_labels_keep_the_first() {
        let options = json!([{"id": "a", "text": "Alpha"}, {"id": "b", "text": "Beta"}, {"id": 3}]);
        let body = json!({"eventId": "e1", "data": {"responseId": "r1", "fields": [
            {"key": "q1", "label": "Pick", "type": "MULTIPLE_CHOICE", "value": ["a", "b"], "options": options},
            {"key": "q2", "label": "Pick", "type": "DROPDOWN", "value": "b", "options": options},
            {"key": "q3", "label": "None", "type": "DROPDOWN", "value": [], "options": options},
            {"key": "q4", "label": "Unanswered", "type": "CHECKBOXES", "value": null, "options": options},
            {"key": "q5", "label": "Other", "type": "MULTI_SELECT", "value": ["zzz"], "options": options},
            {"key": "q6", "label": "No options", "type": "RANKING", "value": ["a"]},
            {"key": "q7", "type": "INPUT_TEXT", "value": "no label"},
            {"key": "form_name", "label": "form_id", "type": "INPUT_TEXT", "value": "reserved"},
        ]}});
        let f = normalise(&body).expect("normalises").fields;
        let cases = [
            ("several selected stay a list", "Pick", json!(["Alpha", "Beta"])),
            ("one id as a string", "q2", json!("Beta")),
            ("none selected is null", "None", json!(null)),
            ("unanswered is null", "Unanswered", json!(null)),
            ("an unknown id stays the id", "Other", json!(["zzz"])),
            ("no options: ids stay ids", "No options", json!(["a"])),
            ("no label: by key only", "q7", json!("no label")),
            ("reserved names keep metadata", "form_id", json!(null)),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert_eq!(f["response_id"], "r1");
    }

    #[tokio::test]
    async fn bodies_that_are_not_tally_responses_are_problems_naming_the_path() {
        let typeform = decode_json(include_bytes!(
            "../../../tests/fixtures/webhooks/typeform-form_response.json"
        ))
        .await;
        let cases = [
            ("a typeform body", typeform, "not_a_tally_response", "body.data"),
            ("an empty object", json!({}), "not_a_tally_response", "body.data"),
            ("an array", json!([]), "not_an_object", "body"),
            (
                "data without fields",
                json!({"data": {}}),
                "not_a_tally_response",
                "body.data.fields",
            ),
            (
                "fields is an object",
                json!({"data": {"fields": {"a": 1}}}),
                "not_a_tally_response",
                "body.data.fields",
            ),
            (
                "a field that is a string",
                json!({"data": {"fields": ["x"]}}),
                "invalid_field",
                "body.data.fields[0]",
            ),
            (
                "a field without a key",
                json!({"data": {"fields": [{"label": "x", "value": 1}]}}),
                "invalid_field",
                "body.data.fields[0].key",
            ),
            (
                "choice ids that are numbers",
                json!({"data": {"fields": [{"key": "k", "type": "CHECKBOXES", "value": [1]}]}}),
                "invalid_field",
                "body.data.fields[0].value",
            ),
            (
                "a matrix that is a list",
                json!({"data": {"fields": [{"key": "k", "type": "MATRIX", "value": ["x"]}]}}),
                "invalid_field",
                "body.data.fields[0].value",
            ),
        ];
        for (row, body, code, field) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            assert_eq!(codes(&problems), [code], "{row}");
            assert_eq!(problems[0].field.as_deref(), Some(field), "{row}");
        }
    }
}
