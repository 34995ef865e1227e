//! Stripe events: the Event envelope (`id`, `type`, `created`, `data.object`), with Checkout
//! Session details and amounts in major units. Problems, never panics, for other bodies.

use serde_json::{Map, Value};

use super::{Normalised, Source, epoch_seconds, insert_new, object, str_at, unexpected};
use crate::domain::Problem;

const SOURCE: Source = Source::Stripe;
/// The body is not a Stripe Event envelope.
const NOT_AN_EVENT: &str = "not_a_stripe_event";
/// An amount or currency of a Checkout Session cannot be read.
const INVALID_AMOUNT: &str = "invalid_amount";

/// Currencies whose API amounts are already whole units
/// (<https://docs.stripe.com/currencies#zero-decimal>). ISK, HUF and TWD are NOT here: they are
/// Stripe's "special cases", two-decimal in the API (`100` is 1 króna) though only whole units
/// can be charged (<https://docs.stripe.com/currencies#special-cases>,
/// <https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds>).
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
];
/// Currencies whose API amounts are thousandths (<https://docs.stripe.com/currencies#three-decimal>).
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// A Stripe Event (<https://docs.stripe.com/api/events/object>).
///
/// `fields`, for every event: `type` (the event type), `object` (= `data.object`, so
/// `{{ fields.object.customer }}` reads the object as Stripe sent it, amounts in minor units),
/// `livemode`, and `previous_attributes` when Stripe sends it (`*.updated` events).
///
/// When `data.object` is a Checkout Session (`checkout.session.completed`,
/// `…async_payment_succeeded`, …), also: `email` (`customer_details.email`, else
/// `customer_email`), `name` and `phone` (`customer_details`), `amount_total` and
/// `amount_subtotal` in MAJOR units as JSON numbers (1900 USD cents → `19`, 1999 → `19.99`; JPY
/// and the other zero-decimal currencies as sent; BHD and the other three-decimal currencies ÷
/// 1000), `currency` in UPPER case (ISO 4217, as HubSpot's `deal_currency_code` wants),
/// `payment_status`, `status`, `mode`, `customer`, `client_reference_id`, `metadata` (the object)
/// and each metadata key at top level unless one of these names has it. An amount that is not
/// an integer, or an amount without a currency, is the problem `invalid_amount`.
///
/// `id` is the event `id` (Stripe re-sends the same event, same id, on retries:
/// <https://docs.stripe.com/webhooks#handle-duplicate-events>); `submitted_at` is `created`
/// (epoch seconds); `event_type` is `type`.
pub(super) fn normalise(decoded: &Value) -> Result<Normalised, Vec<Problem>> {
    let body = object(SOURCE, decoded)?;
    let mut problems = Vec::new();
    let id = str_at(body, "id").filter(|id| !id.is_empty());
    if id.is_none() {
        problems.push(unexpected(
            SOURCE,
            NOT_AN_EVENT,
            "body.id",
            "the event id (a string)",
            body.get("id"),
        ));
    }
    let event_type = str_at(body, "type").filter(|t| !t.is_empty());
    if event_type.is_none() {
        let problem = unexpected(
            SOURCE,
            NOT_AN_EVENT,
            "body.type",
            "the event type (a string)",
            body.get("type"),
        );
        problems.push(problem);
    }
    let data_object = match body.get("data").and_then(|d| d.get("object")) {
        Some(Value::Object(object)) => Some(object),
        _ => {
            let got = match body.get("data") {
                Some(Value::Object(data)) => data.get("object"),
                other => other,
            };
            problems.push(unexpected(SOURCE, NOT_AN_EVENT, "body.data.object", "an object", got));
            None
        }
    };
    let (Some(id), Some(event_type), Some(data_object)) = (id, event_type, data_object) else {
        return Err(problems);
    };

    let mut fields = Map::new();
    fields.insert("type".into(), Value::String(event_type.to_owned()));
    fields.insert("object".into(), Value::Object(data_object.clone()));
    fields.insert("livemode".into(), body.get("livemode").cloned().unwrap_or(Value::Null));
    if let Some(previous) = body.get("data").and_then(|d| d.get("previous_attributes")) {
        fields.insert("previous_attributes".into(), previous.clone());
    }
    if str_at(data_object, "object") == Some("checkout.session") {
        checkout_session(data_object, &mut fields)?;
    }
    Ok(Normalised {
        fields,
        id: Some(id.to_owned()),
        submitted_at: epoch_seconds(body.get("created")),
        event_type: Some(event_type.to_owned()),
    })
}

/// The Checkout Session fields a deal usually needs.
fn checkout_session(session: &Map<String, Value>, fields: &mut Map<String, Value>) -> Result<(), Vec<Problem>> {
    let details = session.get("customer_details").and_then(Value::as_object);
    let detail = |key: &str| details.and_then(|d| d.get(key)).filter(|v| !v.is_null());
    let email = detail("email").or_else(|| session.get("customer_email"));
    let currency = str_at(session, "currency").map(str::to_ascii_uppercase);

    let mut problems = Vec::new();
    let mut amount = |key: &str| match major_units(session.get(key), currency.as_deref()) {
        Ok(value) => value,
        Err(expected) => {
            let path = format!("body.data.object.{key}");
            problems.push(unexpected(SOURCE, INVALID_AMOUNT, &path, expected, session.get(key)));
            Value::Null
        }
    };
    let amount_total = amount("amount_total");
    let amount_subtotal = amount("amount_subtotal");
    if !problems.is_empty() {
        return Err(problems);
    }

    let copy = |key: &str| session.get(key).cloned().unwrap_or(Value::Null);
    let named = [
        ("email", email.cloned().unwrap_or(Value::Null)),
        ("name", detail("name").cloned().unwrap_or(Value::Null)),
        ("phone", detail("phone").cloned().unwrap_or(Value::Null)),
        ("amount_total", amount_total),
        ("amount_subtotal", amount_subtotal),
        ("currency", currency.map_or(Value::Null, Value::String)),
        ("payment_status", copy("payment_status")),
        ("status", copy("status")),
        ("mode", copy("mode")),
        ("customer", copy("customer")),
        ("client_reference_id", copy("client_reference_id")),
        ("metadata", copy("metadata")),
    ];
    for (name, value) in named {
        fields.insert(name.into(), value);
    }
    if let Some(Value::Object(metadata)) = session.get("metadata") {
        for (key, value) in metadata {
            insert_new(fields, key, value);
        }
    }
    Ok(())
}

/// A Stripe amount (an integer in the currency's minor unit) in major units, as a JSON number:
/// an integer when it divides evenly, else the nearest float (which prints as the exact
/// decimal, `19.99`, for any amount below 2^53). `null` stays `null`. `Err` names what was expected.
fn major_units(amount: Option<&Value>, currency: Option<&str>) -> Result<Value, &'static str> {
    let minor = match amount {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::Number(n)) => n.as_i64().ok_or("an integer amount in minor units")?,
        Some(_) => return Err("an integer amount in minor units"),
    };
    let currency = currency.ok_or("an amount with a `currency`")?;
    let divisor: i64 = if ZERO_DECIMAL.contains(&currency) {
        1
    } else if THREE_DECIMAL.contains(&currency) {
        1000
    } else {
        100
    };
    if minor % divisor == 0 {
        Ok(Value::from(minor / divisor))
    } else {
        // Both are exact in f64 below 2^53, so the quotient is the double nearest the decimal.
        let major = minor as f64 / divisor as f64;
        Ok(serde_json::Number::from_f64(major).map_or(Value::Null, Value::Number))
    }
}

#[cfg(test)]
mod tests {
    use super::super::normalise as normalise_source;
    use super::super::testing::{codes, decode_json, delivery};
    use super::*;
    use serde_json::json;

    const SESSION_DATA: &[u8] =
        include_bytes!("../../../tests/fixtures/webhooks/stripe-checkout.session.completed.event-data.json");
    const INVOICEITEM_EVENT: &[u8] =
        include_bytes!("../../../tests/fixtures/webhooks/stripe-signed-vector.invoiceitem.created.json");

    /// The fixture's `data` wrapped in the Event envelope, decoded as production decodes it.
    async fn session_event() -> Value {
        let data: Value = serde_json::from_slice(SESSION_DATA).unwrap();
        let envelope = json!({"id": "evt_1LNkeTKXBGcbgpbZ", "object": "event", "api_version": "2020-08-27",
            "created": 1658353296, "livemode": false, "pending_webhooks": 1, "type": "checkout.session.completed",
            "data": data});
        decode_json(envelope.to_string().as_bytes()).await
    }

    #[tokio::test]
    async fn a_completed_checkout_session_gives_the_buyer_and_the_amount_in_major_units() {
        let body = session_event().await;
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        let f = &sub.fields;
        let cases = [
            ("email from customer_details", "email", json!("chris@gorails.com")),
            ("name", "name", json!("Chris Oliver")),
            ("phone absent is null", "phone", json!(null)),
            ("amount in dollars", "amount_total", json!(19)),
            ("subtotal in dollars", "amount_subtotal", json!(19)),
            ("currency upper case", "currency", json!("USD")),
            ("payment status", "payment_status", json!("paid")),
            ("customer", "customer", json!("cus_M5wW9RPFk9xNZ5")),
            ("client reference", "client_reference_id", json!(null)),
            ("metadata", "metadata", json!({})),
            ("type", "type", json!("checkout.session.completed")),
            ("livemode", "livemode", json!(false)),
        ];
        for (row, name, want) in cases {
            assert_eq!(f.get(name), Some(&want), "{row}: fields[{name:?}]");
        }
        assert_eq!(f["object"], body["data"]["object"], "fields.object is data.object");
        assert_eq!(f["object"]["amount_total"], 1900, "…in minor units, as sent");
        assert_eq!(sub.id.as_deref(), Some("evt_1LNkeTKXBGcbgpbZ"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2022-07-20T21:41:36.000Z"));
        assert_eq!(sub.event_type.as_deref(), Some("checkout.session.completed"));
        assert_eq!(*sub.raw, body);
    }

    #[tokio::test]
    async fn amounts_follow_the_currency_exponent() {
        let cases = [
            ("usd cents", "usd", json!(1999), json!(19.99)),
            ("usd whole", "usd", json!(1900), json!(19)),
            ("usd one cent", "usd", json!(1), json!(0.01)),
            ("jpy is zero-decimal", "jpy", json!(1900), json!(1900)),
            ("krw upper or lower", "KRW", json!(55000), json!(55000)),
            ("ugx is zero-decimal", "ugx", json!(10000), json!(10000)),
            ("isk stays two-decimal in the api", "isk", json!(50000), json!(500)),
            ("huf two-decimal", "huf", json!(12345), json!(123.45)),
            ("bhd is three-decimal", "bhd", json!(1250), json!(1.25)),
            ("kwd whole", "kwd", json!(5000), json!(5)),
            ("zero", "eur", json!(0), json!(0)),
            ("null stays null", "eur", json!(null), json!(null)),
        ];
        for (row, currency, minor, want) in cases {
            let mut body = session_event().await;
            body["data"]["object"]["currency"] = json!(currency);
            body["data"]["object"]["amount_total"] = minor;
            let f = normalise(&body).unwrap_or_else(|e| panic!("{row}: {e:?}")).fields;
            assert_eq!(f["amount_total"], want, "{row}");
            assert_eq!(f["amount_total"].to_string(), want.to_string(), "{row}: printed");
        }
    }

    #[tokio::test]
    async fn the_email_falls_back_to_customer_email_and_metadata_keys_surface() {
        let mut body = session_event().await;
        let session = &mut body["data"]["object"];
        session["customer_details"]["email"] = Value::Null;
        session["customer_email"] = json!("fallback@example.com");
        session["client_reference_id"] = json!("user-42");
        session["metadata"] = json!({"plan": "team", "email": "not the buyer", "seats": "12"});
        let f = normalise(&body).expect("normalises").fields;
        assert_eq!(f["email"], "fallback@example.com");
        assert_eq!(f["client_reference_id"], "user-42");
        assert_eq!(f["plan"], "team");
        assert_eq!(f["seats"], "12");
        assert_eq!(
            f["metadata"]["email"], "not the buyer",
            "a colliding key stays under metadata"
        );
    }

    #[tokio::test]
    async fn any_other_event_gives_its_type_and_object() {
        let body = decode_json(INVOICEITEM_EVENT).await;
        let sub = normalise_source(SOURCE, body.clone(), &delivery()).unwrap();
        let want = json!({"type": "invoiceitem.created", "object": body["data"]["object"], "livemode": false});
        assert_eq!(Value::Object((*sub.fields).clone()), want);
        assert_eq!(sub.id.as_deref(), Some("evt_123"));
        assert_eq!(sub.submitted_at.as_deref(), Some("2018-08-02T10:10:20.000Z"));
        assert_eq!(sub.event_type.as_deref(), Some("invoiceitem.created"));
    }

    #[tokio::test]
    async fn bodies_that_are_not_stripe_events_are_problems_naming_each_missing_part() {
        let data_only: Value = serde_json::from_slice(SESSION_DATA).unwrap();
        let cases = [
            (
                "the data part alone",
                data_only,
                vec!["body.id", "body.type", "body.data.object"],
            ),
            (
                "an empty object",
                json!({}),
                vec!["body.id", "body.type", "body.data.object"],
            ),
            (
                "data.object is a list",
                json!({"id": "evt_1", "type": "x", "data": {"object": []}}),
                vec!["body.data.object"],
            ),
            (
                "id is a number",
                json!({"id": 1, "type": "x", "data": {"object": {}}}),
                vec!["body.id"],
            ),
        ];
        for (row, body, fields) in cases {
            let problems = normalise_source(SOURCE, body, &delivery()).expect_err(row);
            let got: Vec<_> = problems.iter().map(|p| p.field.as_deref().unwrap_or("")).collect();
            assert_eq!(got, fields, "{row}");
            assert!(
                problems.iter().all(|p| p.code == "not_a_stripe_event"),
                "{row}: {problems:?}"
            );
        }
        let mut body = session_event().await;
        body["data"]["object"]["amount_total"] = json!(19.5);
        body["data"]["object"]["amount_subtotal"] = json!("1900");
        let problems = normalise(&body).expect_err("bad amounts");
        assert_eq!(codes(&problems), ["invalid_amount", "invalid_amount"]);
        body["data"]["object"]["amount_total"] = json!(1900);
        body["data"]["object"]["amount_subtotal"] = json!(1900);
        body["data"]["object"].as_object_mut().unwrap().remove("currency");
        let problems = normalise(&body).expect_err("no currency");
        assert_eq!(problems[0].field.as_deref(), Some("body.data.object.amount_total"));
    }
}
