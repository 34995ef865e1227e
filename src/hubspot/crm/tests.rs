use serde_json::json;

use super::*;

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

/// Every way a batch answer can account (or fail to account) for an input.
mod batch_matching {
    use super::*;

    #[test]
    fn results_are_matched_by_trace_id_or_echoed_key_in_any_order() {
        let body = json!({"status": "COMPLETE", "results": [
            {"id": "2", "new": false, "objectWriteTraceId": "b@x.example", "properties": {}},
            {"id": "1", "new": true, "properties": {"email": "A@X.example"}}
        ]});
        let outcome = parse_batch_upsert(
            body.to_string().as_bytes(),
            "email",
            &keys(&["a@x.example", "b@x.example"]),
            normalise_email,
        )
        .unwrap();
        assert_eq!(
            outcome.get("a@x.example"),
            Some(&Ok(Upserted {
                id: 1,
                created: Some(true)
            }))
        );
        assert_eq!(
            outcome.get("b@x.example"),
            Some(&Ok(Upserted {
                id: 2,
                created: Some(false)
            }))
        );
    }

    #[test]
    fn errors_are_matched_by_trace_id_or_ids_and_the_rest_kept_unmatched() {
        let body = json!({"status": "COMPLETE", "results": [], "errors": [
            {"category": "OBJECT_NOT_FOUND", "message": "m", "context": {"ids": ["A@x.example"]}},
            {"category": "VALIDATION_ERROR", "message": "n", "context": {"objectWriteTraceId": ["someone-else"]}},
        ]});
        let outcome = parse_batch_upsert(
            body.to_string().as_bytes(),
            "email",
            &keys(&["a@x.example", "c@x.example"]),
            normalise_email,
        )
        .unwrap();
        assert!(
            matches!(outcome.get("a@x.example"), Some(Err(InputFailure::Rejected(b))) if b.category.as_deref() == Some("OBJECT_NOT_FOUND"))
        );
        assert_eq!(outcome.get("c@x.example"), Some(&Err(InputFailure::Missing)));
        assert_eq!(outcome.unmatched_errors.len(), 1);
    }

    #[test]
    fn two_records_for_one_key_are_conflicting_and_a_result_wins_over_an_error() {
        let body = json!({"results": [
            {"id": "1", "properties": {"k": "v"}}, {"id": "3", "objectWriteTraceId": "v"},
            {"id": "5", "properties": {"k": "w"}}
        ], "errors": [{"message": "late", "context": {"objectWriteTraceId": ["w"]}}]});
        let outcome = parse_batch_upsert(body.to_string().as_bytes(), "k", &keys(&["v", "w"]), str::to_owned).unwrap();
        assert_eq!(outcome.get("v"), Some(&Err(InputFailure::Conflicting(vec![1, 3]))));
        assert_eq!(outcome.get("w"), Some(&Ok(Upserted { id: 5, created: None })));
    }

    #[test]
    fn unreadable_answers_are_errors_not_guesses() {
        let parse = |b: &str| parse_batch_upsert(b.as_bytes(), "k", &keys(&["v"]), str::to_owned);
        assert!(matches!(parse("<html>"), Err(ResponseError::NotJson(_))));
        assert_eq!(parse("[]"), Err(ResponseError::NotAnObject));
        assert_eq!(parse(r#"{"results": {}}"#), Err(ResponseError::Missing("results list")));
        assert_eq!(
            parse(r#"{"results": [{"id": "-1"}]}"#),
            Err(ResponseError::InvalidId("results[].id"))
        );
        assert_eq!(
            parse(r#"{"results": [{"new": true}]}"#),
            Err(ResponseError::Missing("results[].id"))
        );
        // No results at all (catalog item 21): the input is missing, not a success.
        assert_eq!(
            parse(r#"{"status":"COMPLETE"}"#).unwrap().get("v"),
            Some(&Err(InputFailure::Missing))
        );
    }
}

#[test]
fn a_company_search_picks_the_lowest_id_and_refuses_unreadable_ids() {
    let found = parse_company_search(br#"{"total":3,"results":[{"id":"30"},{"id":"10"},{"id":"20"}]}"#).unwrap();
    assert_eq!(found, Some(CompanyMatch { id: 10, candidates: 3 }));
    assert_eq!(parse_company_search(br#"{"total":0,"results":[]}"#), Ok(None));
    assert_eq!(
        parse_company_search(br#"{"results":[{"id":"x"}]}"#),
        Err(ResponseError::InvalidId("results[].id"))
    );
    assert_eq!(
        parse_company_search(br#"{"total":0}"#),
        Err(ResponseError::Missing("results list"))
    );
}

#[test]
fn an_association_answer_without_errors_is_done() {
    assert_eq!(parse_association(br#"{"status":"COMPLETE","results":[]}"#), Ok(()));
    assert_eq!(parse_association(b""), Ok(()));
    assert!(parse_association(br#"{"errors":[{"message":"no"}]}"#).is_err());
}
