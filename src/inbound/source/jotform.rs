//! Jotform webhooks: the multipart form's `rawRequest` JSON, with `qN_` prefixes stripped and
//! name-like answers flattened (`name.first`, `name`). Problems, never panics, for other bodies.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Normalised, Source, id_text, insert_new, object, str_at, unexpected};
use crate::domain::Problem;

const SOURCE: Source = Source::Jotform;
/// The body has no `rawRequest` field.
const NOT_A_SUBMISSION: &str = "not_a_jotform_submission";
/// `rawRequest` is there but is not a JSON object.
const INVALID_RAW_REQUEST: &str = "invalid_raw_request";

/// Names that always hold submission metadata (`null` when absent).
const RESERVED: [&str; 4] = ["form_id", "submission_id", "form_title", "pretty"];

/// A Jotform webhook (multipart/form-data, the only type a Jotform route accepts) whose
/// `rawRequest` part holds the answers as JSON, keyed `q<number>_<name>`.
///
/// `fields`, in this order (first come, first served after the reserved names):
/// - `form_id` (`formID`), `submission_id` (`submissionID`), `form_title` (`formTitle`),
///   `pretty` (Jotform's one-line `Label:Value, …` summary, as sent).
/// - each `qN_name` answer under `name` (prefix stripped). An answer that is an object (a full
///   name `{first, last}`, an address, …) is also filed part by part as `name.first`,
///   `name.last`, …, and `name` is its non-empty text parts joined by a space (`"Ada
///   Lovelace"`); a date `{month, day, year}` is `YYYY-MM-DD` when all three are filled. Lists
///   (checkboxes) stay lists. Two answers that strip to the same name: the first (in
///   `rawRequest` order) wins; the other stays in `raw`.
/// - the other keys of `rawRequest` as sent: Jotform puts upload URLs there without a prefix
///   (`identityProof: [urls]`), next to its own bookkeeping (`slug`, `path`, …).
///
/// A mapping reaches a dotted name with brackets: `{{ fields["name.first"] }}`.
///
/// `id` is `submissionID` (the same on every retry of the submission). Jotform sends no
/// submission time, so `submitted_at` is empty; `event_type` is the `event` field when Jotform
/// fills it (it is usually blank).
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let request: Cow<'_, Map<String, Value>> = match body.get("rawRequest") {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            // serde_json stops at 128 levels of nesting, so a hostile rawRequest cannot overflow.
            Ok(Value::Object(request)) => Cow::Owned(request),
            Ok(other) => {
                let problem = unexpected(
                    SOURCE,
                    INVALID_RAW_REQUEST,
                    "body.rawRequest",
                    "a JSON object",
                    Some(&other),
                );
                return Err(vec![problem]);
            }
            Err(e) => {
                let message = format!("the jotform source expects JSON in body.rawRequest: {e}");
                return Err(vec![Problem::at("body.rawRequest", INVALID_RAW_REQUEST, message)]);
            }
        },
        // A JSON-posted variant may carry it already parsed.
        Some(Value::Object(request)) => Cow::Borrowed(request),
        other => {
            let expected = "a Jotform webhook body with a `rawRequest` field holding the answers as JSON";
            return Err(vec![unexpected(
                SOURCE,
                NOT_A_SUBMISSION,
                "body.rawRequest",
                expected,
                other,
            )]);
        }
    };

    let mut fields = Map::new();
    for (name, key) in [
        ("form_id", "formID"),
        ("submission_id", "submissionID"),
        ("form_title", "formTitle"),
        ("pretty", "pretty"),
    ] {
        fields.insert(name.into(), body.get(key).cloned().unwrap_or(Value::Null));
    }
    let mut file = |name: &str, value: &Value| {
        if !RESERVED.contains(&name) {
            insert_new(&mut fields, name, value);
        }
    };
    for (key, value) in request.iter() {
        let Some(name) = question_name(key) else { continue };
        match value {
            Value::Object(parts) => {
                file(name, &Value::String(joined(parts)));
                for (part, value) in parts {
                    file(&format!("{name}.{part}"), value);
                }
            }
            value => file(name, value),
        }
    }
    for (key, value) in request.iter().filter(|(key, _)| question_name(key).is_none()) {
        file(key, value);
    }

    Ok(Normalised {
        fields,
        id: id_text(body.get("submissionID")),
        submitted_at: None,
        event_type: str_at(body, "event")
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned),
    })
}

/// `q12_email` → `email`; `None` for keys without a `q<digits>_` prefix (or with nothing after it).
fn question_name(key: &str) -> Option<&str> {
    let rest = key.strip_prefix('q')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let name = rest.get(digits..)?.strip_prefix('_')?;
    (digits > 0 && !name.is_empty()).then_some(name)
}

/// The text of an object answer: `YYYY-MM-DD` for a filled date, else its non-empty text parts
/// joined by a space.
fn joined(parts: &Map<String, Value>) -> String {
    let part = |key| str_at(parts, key).map(str::trim).filter(|s| !s.is_empty());
    if let (Some(year), Some(month), Some(day)) = (part("year"), part("month"), part("day")) {
        return format!("{year}-{month:0>2}-{day:0>2}");
    }
    let texts: Vec<&str> = parts
        .values()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    texts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, delivery};
    use super::*;
    use serde_json::json;

    const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/jotform-form_submission.multipart");
    const BOUNDARY: &str = "------------------------J1JNT4vbVO4FCC1qLG4HSv";

    /// The fixture decoded as production decodes it: CRLF line endings, as on the wire.
    async fn fixture() -> Value {
        let body = String::from_utf8(FIXTURE.to_vec()).unwrap().replace('\n', "\r\n");
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        crate::inbound::decode(Some(&content_type), body.as_bytes())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_fixture_flattens_its_raw_request_into_named_fields() {
        let body = fixture().await;
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        let f = &sub.fields;
        let cases = [
            ("first name part", "studentsName.first", json!("Niloth")),
            ("last name part", "studentsName.last", json!("P")),
            ("whole name", "studentsName", json!("Niloth P")),
            ("simple answer", "typeOf", json!("Online Tutoring")),
            ("another", "subjectFor", json!("Math")),
            ("grade", "grade", json!("12")),
            ("empty text", "description", json!("")),
            ("unfilled date", "date", json!("")),
            ("unfilled date part", "date.year", json!("")),
            ("object parts", "appointment.duration", json!("60")),
            ("form id", "form_id", json!("243231271343446")),
            ("submission id", "submission_id", json!("6084250982513018472")),
            ("form title", "form_title", json!("Tutor Appointment Form")),
            (
                "unprefixed upload urls",
                "reports",
                json!([
                    "https://www.jotform.com/uploads/UserNiloth/243231271343446/6111139644845227685/Report%20Card.pdf"
                ]),
            ),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert!(
            f["pretty"]
                .as_str()
                .unwrap()
                .starts_with("Student's Name:Niloth P, Type of Tutoring:Online Tutoring"),
            "pretty is reachable: {}",
            f["pretty"]
        );
        assert_eq!(f["identityProof"].as_array().map(Vec::len), Some(2));
        assert_eq!(sub.id.as_deref(), Some("6084250982513018472"));
        assert_eq!(sub.submitted_at, None);
        assert_eq!(sub.event_type, None, "the fixture's event field is blank");
        assert_eq!(*sub.raw, body);
    }

    #[test]
    fn prefixes_are_stripped_dates_joined_and_the_first_of_a_name_wins() {
        let raw_request = json!({
            "q4_email": "ada@example.com",
            "q7_email": "second@example.com",
            "q5_when": {"month": "3", "day": "14", "year": "2025"},
            "q6_services": ["Audit", "Training"],
            "q8_address": {"addr_line1": "1 Main St", "addr_line2": "", "city": "Leeds"},
            "q9_": "no name",
            "qx_odd": "not a question",
            "q10_form_id": "a question named like metadata",
        })
        .to_string();
        let body = json!({"formID": "1", "submissionID": "2", "rawRequest": raw_request, "event": "submit"});
        let got = normalise(&body).expect("normalises");
        let f = &got.fields;
        let cases = [
            ("stripped", "email", json!("ada@example.com")),
            ("date", "when", json!("2025-03-14")),
            ("date part", "when.month", json!("3")),
            ("list stays a list", "services", json!(["Audit", "Training"])),
            ("address joined", "address", json!("1 Main St Leeds")),
            ("unprefixed keys as sent", "q9_", json!("no name")),
            ("not a q-number prefix", "qx_odd", json!("not a question")),
            ("reserved name keeps metadata", "form_id", json!("1")),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert_eq!(got.id.as_deref(), Some("2"));
        assert_eq!(got.event_type.as_deref(), Some("submit"));
    }

    #[test]
    fn bodies_without_a_usable_raw_request_are_problems() {
        let cases = [
            ("no rawRequest", json!({"formID": "1"}), "not_a_jotform_submission"),
            (
                "rawRequest is a number",
                json!({"rawRequest": 5}),
                "not_a_jotform_submission",
            ),
            (
                "rawRequest is not json",
                json!({"rawRequest": "{not json"}),
                "invalid_raw_request",
            ),
            (
                "rawRequest is a json list",
                json!({"rawRequest": "[1,2]"}),
                "invalid_raw_request",
            ),
            (
                "rawRequest nests too deep",
                json!({"rawRequest": "[".repeat(10_000)}),
                "invalid_raw_request",
            ),
            ("an array", json!([]), "not_an_object"),
        ];
        for (row, body, code) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            assert_eq!(codes(&problems), [code], "{row}");
        }
    }

    #[test]
    fn question_names_need_a_number_and_a_name() {
        let cases = [
            ("q3_name", Some("name")),
            ("q12_e_mail", Some("e_mail")),
            ("q_name", None),
            ("q3name", None),
            ("q3_", None),
            ("name", None),
            ("", None),
            ("q3_ü", Some("ü")),
        ];
        for (key, want) in cases {
            assert_eq!(question_name(key), want, "{key:?}");
        }
    }
}
