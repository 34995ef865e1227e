//! Webflow `form_submission` webhooks, v2 (`{triggerType, payload}`) and v1 (`{name, site, data,
//! d, _id}`): the form's `data` as `fields`. Problems, never panics, for other bodies.

use serde_json::{Map, Value};

use super::{Normalised, Source, id_text, insert_new, object, rfc3339, str_at, unexpected};
use crate::domain::Problem;

const SOURCE: Source = Source::Webflow;
/// The body is neither a v2 nor a v1 form submission.
const NOT_A_SUBMISSION: &str = "not_a_webflow_submission";

/// Names that always hold submission metadata (`null` when absent, as `form_id` in v1). A form
/// input named like one of these is left in `raw` only.
const RESERVED: [&str; 3] = ["form_name", "site_id", "form_id"];

/// A Webflow form submission: v2 (<https://developers.webflow.com/data/reference/webhooks/events/form-submission>)
/// or the older v1 shape still sent by v1-era webhooks.
///
/// `fields`: `form_name` (`name`), `site_id` (`siteId`; v1 `site`), `form_id` (`formId`; v1
/// has none), then every key of `data` exactly as the form names its inputs (`First Name`,
/// `Email 2`, …) with its value as sent.
///
/// `id` is the submission's id (`payload.id`; v1 `_id`), the same on every retry.
/// `submitted_at` is `submittedAt` (v1 `d`). `event_type` is `triggerType`, or `form_submission`
/// for v1 (which has none).
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    // v1 bodies always carry `_id` and `site`; anything without them is read as (a broken) v2.
    let v2 = !(body.contains_key("_id") || body.contains_key("site")) || body.contains_key("payload");
    let (submission, path) = if v2 {
        match body.get("payload") {
            Some(Value::Object(payload)) => (payload, "body.payload"),
            other => {
                let expected =
                    "a Webflow form submission: v2 `{triggerType, payload}` or v1 `{name, site, data, d, _id}`";
                return Err(vec![unexpected(
                    SOURCE,
                    NOT_A_SUBMISSION,
                    "body.payload",
                    expected,
                    other,
                )]);
            }
        }
    } else {
        (body, "body")
    };
    let Some(Value::Object(data)) = submission.get("data") else {
        let expected = match str_at(body, "triggerType") {
            Some(trigger) if v2 && trigger != "form_submission" => {
                format!("the form's `data` object (this is a {trigger:?} event, not form_submission)")
            }
            _ => "the form's `data` object".to_owned(),
        };
        let data_path = format!("{path}.data");
        return Err(vec![unexpected(
            SOURCE,
            NOT_A_SUBMISSION,
            &data_path,
            &expected,
            submission.get("data"),
        )]);
    };

    let (site, id, submitted_at) = if v2 {
        ("siteId", "id", "submittedAt")
    } else {
        ("site", "_id", "d")
    };
    let mut fields = Map::new();
    for (name, key) in [("form_name", "name"), ("site_id", site), ("form_id", "formId")] {
        fields.insert(name.into(), submission.get(key).cloned().unwrap_or(Value::Null));
    }
    for (name, value) in data {
        if !RESERVED.contains(&name.as_str()) {
            insert_new(&mut fields, name, value);
        }
    }
    let event_type = if v2 {
        str_at(body, "triggerType").map(str::to_owned)
    } else {
        Some("form_submission".to_owned())
    };
    Ok(Normalised {
        fields,
        id: id_text(submission.get(id)),
        submitted_at: rfc3339(submission.get(submitted_at)),
        event_type,
    })
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery};
    use super::*;
    use serde_json::json;

    const V2: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v2.json");
    const V2_EMAIL_FORM: &[u8] =
        include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v2-email-form.json");
    const V1: &[u8] = include_bytes!("../../../tests/fixtures/webhooks/webflow-form_submission-v1.json");

    #[tokio::test]
    async fn v2_and_v1_fixtures_give_the_form_data_with_their_metadata() {
        let cases = [
            (
                "v2 contact form",
                V2,
                json!({"form_name": "Contact Us", "site_id": "65427cf400e02b306eaa049c",
                       "form_id": "65429eadebe8a9f3a30f62d0", "First Name": "Zaphod", "Last Name": "Beeblebrox",
                       "email": "zaphod@heartofgold.ai", "Phone Number": 15550000000_u64}),
                "6321ca84df3949bfc6752327",
                "2022-09-14T12:35:16.117Z",
            ),
            (
                "v2 captured email form",
                V2_EMAIL_FORM,
                json!({"form_name": "Email Form", "site_id": "65427cf400e02b306eaa049c",
                       "form_id": "65429eadebe8a9f3a30f62d7", "Email 2": "hello@gmail.com"}),
                "66a947f35b9d7ba400e22733",
                "2024-07-30T20:07:15.220Z",
            ),
            (
                "v1",
                V1,
                json!({"form_name": "Sample Form", "site_id": "62749158efef318abc8d5a0f", "form_id": null,
                       "name": "Some One", "email": "some.one@home.com"}),
                "6321ca84df3949bfc6752327",
                "2022-09-14T12:35:16.117Z",
            ),
        ];
        for (row, bytes, fields, id, at) in cases {
            let body = decode_json(bytes).await;
            let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap_or_else(|e| panic!("{row}: {e:?}"));
            assert_eq!(Value::Object((*sub.fields).clone()), fields, "{row}");
            assert_eq!(sub.id.as_deref(), Some(id), "{row}");
            assert_eq!(sub.submitted_at.as_deref(), Some(at), "{row}");
            assert_eq!(sub.event_type.as_deref(), Some("form_submission"), "{row}");
            assert_eq!(*sub.raw, body, "{row}");
        }
    }

    #[test]
    fn a_form_input_named_like_metadata_does_not_replace_it() {
        let body = json!({"triggerType": "form_submission", "payload": {"name": "Quote", "formId": "f1",
            "data": {"form_id": "typed by a visitor", "Budget": "5000"}}});
        let fields = normalise(&body).expect("normalises").fields;
        assert_eq!(fields["form_id"], "f1");
        assert_eq!(fields["Budget"], "5000");
    }

    #[tokio::test]
    async fn bodies_that_are_not_form_submissions_are_problems_naming_the_path() {
        let tally = decode_json(include_bytes!(
            "../../../tests/fixtures/webhooks/tally-form_response.json"
        ))
        .await;
        let cases = [
            ("a tally body", tally, "body.payload"),
            ("an empty object", json!({}), "body.payload"),
            (
                "v2 without payload",
                json!({"triggerType": "form_submission"}),
                "body.payload",
            ),
            (
                "v2 payload is a list",
                json!({"triggerType": "form_submission", "payload": []}),
                "body.payload",
            ),
            (
                "another trigger",
                json!({"triggerType": "site_publish", "payload": {"domains": []}}),
                "body.payload.data",
            ),
            (
                "v1 data is a string",
                json!({"name": "F", "_id": "1", "data": "x"}),
                "body.data",
            ),
        ];
        for (row, body, field) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            assert_eq!(codes(&problems), ["not_a_webflow_submission"], "{row}");
            assert_eq!(problems[0].field.as_deref(), Some(field), "{row}");
        }
        let problems = normalise(&json!({"triggerType": "site_publish", "payload": {}})).expect_err("site_publish");
        assert!(
            problems[0].message.contains("\"site_publish\" event"),
            "{}",
            problems[0].message
        );
    }
}
