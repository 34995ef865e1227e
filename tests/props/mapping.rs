//! Source normalisers and mapping evaluation over arbitrary values: a Submission or problems,
//! a DealDraft or problems; never a panic, never an empty problem list.

use dealhook::domain::Submission;
use dealhook::inbound::Source;
use dealhook::inbound::source::normalise;
use dealhook::mapping::Mapping;
use proptest::prelude::*;
use serde_json::Value;

use crate::arb;
use crate::pipeline::delivery;

fn mapping() -> &'static Mapping {
    static MAPPING: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
    MAPPING.get_or_init(|| crate::showcase_mapping().expect("the showcase mapping loads"))
}

/// Maps one Submission on every route, and selects on every endpoint of its source.
fn evaluate(submission: &Submission) {
    for route in mapping().routes() {
        match route.map(submission) {
            Ok(draft) => assert!(!draft.dealstage.is_empty(), "route {}: {draft:?}", route.name()),
            Err(problems) => {
                assert!(!problems.is_empty(), "route {}", route.name());
                for p in &problems {
                    assert!(
                        !p.code.is_empty() && !p.message.is_empty(),
                        "route {}: {p:?}",
                        route.name()
                    );
                }
            }
        }
    }
    for endpoint in mapping().endpoints() {
        match endpoint.select(submission) {
            Ok(Some(route)) => assert_eq!(route.endpoint(), endpoint.name()),
            // Every route on the endpoint has a `match` and none held: answered 200 ignored.
            Ok(None) => {}
            Err(problems) => {
                assert_eq!(problems.len(), 1);
                assert_eq!(problems[0].code, "match_error");
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn every_source_gives_a_submission_or_problems(value in prop_oneof![arb::object(), arb::value()], headers in any::<bool>()) {
        let d = delivery("/hooks/x", None, Vec::new(), headers);
        for &source in Source::ALL {
            match normalise(source, value.clone(), &d) {
                Ok(submission) => {
                    prop_assert_eq!(&submission.source, source.as_str());
                    prop_assert_eq!(&*submission.raw, &value);
                    prop_assert_eq!(&submission.received_at, &d.received_at_rfc3339());
                    evaluate(&submission);
                }
                Err(problems) => {
                    prop_assert!(!problems.is_empty(), "{}", source);
                    for p in &problems {
                        prop_assert!(!p.code.is_empty() && !p.message.is_empty(), "{}: {:?}", source, p);
                    }
                }
            }
        }
    }

    #[test]
    fn every_route_maps_any_submission_or_names_its_problems(
        fields in arb::object(),
        id in proptest::option::of("\\PC{0,10}"),
        event_type in proptest::option::of(prop_oneof![Just("checkout.session.completed".to_owned()), Just("invoice.paid".to_owned()), "\\PC{0,10}"]),
    ) {
        let Value::Object(map) = fields.clone() else { unreachable!("arb::object makes objects") };
        let submission = Submission {
            source: "json".into(),
            id,
            submitted_at: None,
            received_at: "2026-11-25T10:00:00.000Z".into(),
            event_type,
            fields: map.into(),
            raw: fields.into(),
        };
        evaluate(&submission);
    }
}
