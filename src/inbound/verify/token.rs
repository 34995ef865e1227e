//! Query token, for senders with no signing scheme (Jotform): the route's secret must equal the URL's `token`
//! query parameter. Weaker than a signature (the body is not covered, the URL may be logged): use it only there.

use std::time::SystemTime;

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{SignedRequest, VerifyError, secret_bytes};

/// The query parameter carrying the token.
pub const PARAMETER: &str = "token";

/// A query component decoded as `application/x-www-form-urlencoded` does: `+` is a space, then %-escapes.
fn form_decode(component: &str) -> Vec<u8> {
    percent_decode_str(&component.replace('+', " ")).collect()
}

/// Verifies that `request.query` carries `token=<the route's secret>` (percent-decoded, `+` as space).
/// `now` is unused.
///
/// `MissingToken` when there is no `token` parameter (or no query), `DuplicateHeader("token")` when
/// there are several, `Mismatch` when it differs. The comparison is constant-time and, because it
/// compares SHA-256 digests, does not reveal the secret's length either.
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, _now: SystemTime) -> Result<(), VerifyError> {
    let secret = secret_bytes(key)?;
    let mut token = None;
    for pair in request.query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(name) == PARAMETER.as_bytes() && token.replace(form_decode(value)).is_some() {
            return Err(VerifyError::DuplicateHeader(PARAMETER));
        }
    }
    let token = token.ok_or(VerifyError::MissingToken)?;
    if bool::from(Sha256::digest(secret).ct_eq(&Sha256::digest(&token))) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The query string (`token=<percent-encoded secret>`) to append to a route's URL, e.g. in the
/// Jotform webhook settings.
pub fn sign(key: &SecretString) -> Result<String, VerifyError> {
    secret_bytes(key)?;
    Ok(format!(
        "{PARAMETER}={}",
        utf8_percent_encode(key.expose_secret(), NON_ALPHANUMERIC)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const KEY: &str = "s3cr3t/t0ken+with=odd&chars é";

    fn check(key: &str, query: Option<&str>) -> Result<(), VerifyError> {
        let h = headers(&[]);
        let mut req = request(&h, b"{}");
        req.query = query;
        verify(&secret(key), &req, at_secs(0))
    }

    #[test]
    fn the_token_from_sign_verifies() {
        let query = sign(&secret(KEY)).unwrap();
        assert!(!query.contains(' ') && !query.contains('é'), "{query}");
        check(KEY, Some(&query)).unwrap();
        check(KEY, Some(&format!("formID=1&{query}&x=y"))).unwrap();
    }

    #[test]
    fn the_token_is_percent_decoded_with_plus_as_space() {
        check("a b:c", Some("token=a+b%3Ac")).unwrap();
        check("a b:c", Some("token=a%20b%3ac")).unwrap();
        check("plain", Some("token=plain")).unwrap();
        check("a+b", Some("token=a%2Bb")).unwrap();
        assert_eq!(check("a+b", Some("token=a+b")), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_wrong_or_partial_token_is_a_mismatch() {
        for query in ["token=plai", "token=plainx", "token=PLAIN", "token=", "token"] {
            assert_eq!(check("plain", Some(query)), Err(VerifyError::Mismatch), "{query}");
        }
    }

    #[test]
    fn a_missing_token_is_named() {
        for query in [
            None,
            Some(""),
            Some("formID=1"),
            Some("tokens=plain"),
            Some("Token=plain"),
            Some("&&"),
        ] {
            assert_eq!(check("plain", query), Err(VerifyError::MissingToken), "{query:?}");
        }
    }

    #[test]
    fn a_repeated_token_is_ambiguous() {
        for query in [
            "token=plain&token=plain",
            "token=x&token=plain",
            "tok%65n=plain&token=plain",
        ] {
            assert_eq!(
                check("plain", Some(query)),
                Err(VerifyError::DuplicateHeader(PARAMETER)),
                "{query}"
            );
        }
    }

    #[test]
    fn errors_reveal_neither_key_nor_token() {
        let sent = "an-attacker-guess-token";
        for err in [
            check(KEY, Some(&format!("token={sent}"))).unwrap_err(),
            check(KEY, Some(&format!("token={sent}&token={sent}"))).unwrap_err(),
            check(KEY, None).unwrap_err(),
        ] {
            assert_reveals_nothing(&err, &[KEY, sent, "s3cr3t"]);
        }
    }

    #[test]
    fn the_token_verifies_from_a_rest_event_whose_query_was_rebuilt() {
        use crate::inbound::{Delivery, Invocation};
        for (secret_value, multi) in [
            (KEY, serde_json::json!({ "formID": ["1"], "token": [KEY] })),
            ("a+b", serde_json::json!({ "token": ["a+b"] })),
            (
                "plain",
                serde_json::json!({ "token": ["plain"], "other": ["spring sale"] }),
            ),
        ] {
            let event = serde_json::json!({
                "httpMethod": "POST", "path": "/hooks/jotform", "multiValueQueryStringParameters": multi,
                "body": "", "isBase64Encoded": false
            });
            let delivery = Delivery::from_event(&event, &Invocation::local(), chrono::Utc::now()).unwrap();
            let request = SignedRequest::from_delivery(&delivery, None);
            assert_eq!(
                verify(&secret(secret_value), &request, at_secs(0)),
                Ok(()),
                "{secret_value}"
            );
        }
    }
}
