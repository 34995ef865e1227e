//! The whole pipeline (`App::handle`) with in-memory fakes: every outcome is one of the
//! contract's, rejections are the JSON error contract, and a deal or a dead letter exists exactly
//! when the outcome says so.

use dealhook::Outcome;
use dealhook::credentials::Credentials;
use dealhook::inbound::Delivery;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::Value;

use crate::{Fakes, arb};

const MAX_BODY_BYTES: usize = 4 * 1024;

/// A POST to `path`; `provider_headers` adds the ids and event names some sources read.
pub fn delivery(path: &str, content_type: Option<&str>, body: Vec<u8>, provider_headers: bool) -> Delivery {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(ct).ok()) {
        headers.insert("content-type", ct);
    }
    if provider_headers {
        for (name, value) in [
            ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            ("x-github-event", "sponsorship"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Delivery {
        request_id: "req-prop".into(),
        received_at: chrono::Utc::now(),
        deadline: None,
        method: Method::POST,
        path: path.into(),
        query: None,
        headers,
        body: bytes::Bytes::from(body),
        redelivery: None,
    }
}

fn fakes() -> Fakes {
    // Random bodies must reach decoding: no signature could be right.
    Fakes::new(MAX_BODY_BYTES, true, Credentials::from_token("tok".into()))
}

fn endpoints() -> Vec<String> {
    crate::showcase_mapping()
        .expect("the showcase mapping loads")
        .endpoints()
        .map(|e| e.name().to_owned())
        .collect()
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn every_delivery_ends_in_one_contracted_outcome(
        endpoint in proptest::sample::select(endpoints()),
        body in prop_oneof![
            9 => arb::body(),
            1 => (0usize..4).prop_map(|extra| arb::Body {
                content_type: Some("application/json".into()),
                bytes: vec![b' '; MAX_BODY_BYTES - 1 + extra],
            }),
        ],
        provider_headers in any::<bool>(),
    ) {
        let f = fakes();
        let size = body.bytes.len();
        let d = delivery(&format!("/hooks/{endpoint}"), body.content_type.as_deref(), body.bytes, provider_headers);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let outcome = runtime.block_on(f.app.handle(&d));
        let response = outcome.to_response(&d.request_id);
        let status = response.status().as_u16();
        let json: Value = serde_json::from_slice(response.body().as_ref()).expect("every response is JSON");
        let deals = f.deals.deals().len();
        let letters = f.letters.sent().len();

        prop_assert_eq!(size > MAX_BODY_BYTES, status == 413, "size {} got {}", size, status);
        match &outcome {
            Outcome::Created(deal) => {
                prop_assert_eq!(status, 200);
                prop_assert_eq!((deals, letters), (1, 0));
                prop_assert_eq!(&json["status"], "created");
                prop_assert_eq!(&json["dealId"], &Value::from(deal.deal_id));
            }
            Outcome::DeadLettered { reason, errors, dead_letter_id, .. } => {
                prop_assert_eq!(status, 202);
                prop_assert_eq!((deals, letters), (0, 1));
                prop_assert_eq!(&f.letters.sent()[0].id, dead_letter_id);
                prop_assert!(!errors.is_empty(), "{}", reason);
                prop_assert!(["decode_failed", "match_failed", "mapping_failed"].contains(&reason.as_str()), "{}", reason);
                prop_assert_eq!(&json["status"], "dead_lettered");
            }
            Outcome::Ignored(_) => {
                prop_assert_eq!(status, 200);
                prop_assert_eq!((deals, letters), (0, 0));
                prop_assert_eq!(&json["status"], "ignored");
            }
            Outcome::Rejected(rejection) => {
                prop_assert!([400, 413, 415].contains(&status), "{:?}", rejection);
                prop_assert_eq!((deals, letters), (0, 0));
                let Value::Object(top) = &json else { panic!("{json}") };
                prop_assert_eq!(top.len(), 2, "{}", json);
                prop_assert_eq!(&json["status"], "rejected");
                let Value::Object(error) = &json["error"] else { panic!("{json}") };
                prop_assert_eq!(error.len(), 2, "{}", json);
                prop_assert!(json["error"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{}", json);
                prop_assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", json);
                if status == 400 {
                    prop_assert!(["too_deep", "too_many_fields"].contains(&rejection.code), "{:?}", rejection);
                }
            }
            other => prop_assert!(false, "outside the contract here: {:?}", other),
        }
    }
}
