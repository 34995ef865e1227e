//! Webflow: `x-webflow-signature: <hex HMAC-SHA256(secret, "{x-webflow-timestamp}:{raw body}")>`, the
//! timestamp in milliseconds, 5 minutes either way (developers.webflow.com "Validating request signatures").

use std::time::{Duration, SystemTime};

use hmac::Mac;
use secrecy::SecretString;

use super::{
    SignedRequest, VerifyError, check_window, decode_hex, mac, parse_timestamp, required_header, secret_bytes,
};

/// The header carrying the signature (hex).
pub const SIGNATURE_HEADER: &str = "x-webflow-signature";
/// The header carrying the send time, Unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-webflow-timestamp";
/// How far the timestamp may be from `now`, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Verifies a Webflow delivery at `now`.
///
/// Both headers are required (`MissingHeader`, `DuplicateHeader`); a non-integer timestamp or
/// non-hex signature is `MalformedHeader`; then the signature (`Mismatch`), then the window
/// (`Stale`, `Future`). Webflow signs only for OAuth-app and newer site webhooks; a route whose
/// webhook carries no signature cannot use this scheme.
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, now: SystemTime) -> Result<(), VerifyError> {
    let key = secret_bytes(key)?;
    let timestamp = required_header(request.headers, TIMESTAMP_HEADER)?;
    let signature = required_header(request.headers, SIGNATURE_HEADER)?;
    let timestamp_ms = parse_timestamp(TIMESTAMP_HEADER, timestamp)?;
    let signature = decode_hex(SIGNATURE_HEADER, signature)?;
    mac(key, &[timestamp.as_bytes(), b":", request.body])?
        .verify_slice(&signature)
        .map_err(|_| VerifyError::Mismatch)?;
    check_window(timestamp_ms, now, TOLERANCE)
}

/// The `x-webflow-signature` value Webflow would send for `body` with `x-webflow-timestamp: {timestamp_ms}`.
pub fn sign(key: &SecretString, body: &[u8], timestamp_ms: u64) -> Result<String, VerifyError> {
    let timestamp = timestamp_ms.to_string();
    let tag = mac(secret_bytes(key)?, &[timestamp.as_bytes(), b":", body])?
        .finalize()
        .into_bytes();
    Ok(hex::encode(tag))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// The regression vector's timestamp, ms.
    const T: u64 = 1_722_370_035_277;

    fn check(
        key: &SecretString,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), VerifyError> {
        let h = headers(&[("x-webflow-timestamp", timestamp), ("x-webflow-signature", signature)]);
        verify(key, &request(&h, body), at_ms(now_ms))
    }

    #[test]
    fn the_regression_vector_verifies_byte_for_byte() {
        let v = Vector::find("webflow", "");
        assert!(!v.published(), "Webflow publishes no vector; this one is self-computed");
        assert_eq!(v.header("x-webflow-timestamp"), T.to_string());
        let signature = v.header("x-webflow-signature");
        assert_eq!(sign(&v.secret(), &v.body(), T).unwrap(), signature);
        check(&v.secret(), &T.to_string(), &signature, &v.body(), T).unwrap();
    }

    #[test]
    fn a_signed_body_verifies_within_the_window() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        for now in [T - 300_000, T - 1, T, T + 1, T + 300_000] {
            check(&key, &T.to_string(), &signature, b"{}", now).unwrap_or_else(|e| panic!("now {now}: {e}"));
        }
    }

    #[test]
    fn old_and_future_timestamps_are_rejected_with_their_skew() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        assert_eq!(
            check(&key, &T.to_string(), &signature, b"{}", T + 300_001),
            Err(VerifyError::Stale {
                skew_s: 301,
                window_s: 300
            })
        );
        assert_eq!(
            check(&key, &T.to_string(), &signature, b"{}", T + 3_600_000),
            Err(VerifyError::Stale {
                skew_s: 3600,
                window_s: 300
            })
        );
        assert_eq!(
            check(&key, &T.to_string(), &signature, b"{}", T - 300_001),
            Err(VerifyError::Future {
                skew_s: 301,
                window_s: 300
            })
        );
    }

    #[test]
    fn a_timestamp_in_seconds_is_read_as_milliseconds_and_is_stale() {
        // A sender (or a guess) using seconds: signed correctly, but 1970-01-20 in ms.
        let key = secret("your_client_secret");
        let seconds = T / 1000;
        let signature = sign(&key, b"{}", seconds).unwrap();
        let err = check(&key, &seconds.to_string(), &signature, b"{}", T).unwrap_err();
        assert!(matches!(err, VerifyError::Stale { .. }), "{err:?}");
    }

    #[test]
    fn a_signature_for_another_timestamp_is_a_mismatch() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        assert_eq!(
            check(&key, &(T + 1).to_string(), &signature, b"{}", T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_a_mismatch() {
        let v = Vector::find("webflow", "");
        let signature = v.header("x-webflow-signature");
        assert_eq!(
            check(&v.secret(), &T.to_string(), &signature, &tampered(&v.body()), T),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret("your_client_secret2"), &T.to_string(), &signature, &v.body(), T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_truncated_or_foreign_signature_is_rejected() {
        let v = Vector::find("webflow", "");
        let signature = v.header("x-webflow-signature");
        for cut in [0, 2, 32, 62, 63] {
            let err = check(&v.secret(), &T.to_string(), &signature[..cut], &v.body(), T).unwrap_err();
            assert_rejected_signature(&err, &format!("cut at {cut}"));
        }
        let foreign = sign(&secret("someone else"), &v.body(), T).unwrap();
        assert_eq!(foreign.len(), signature.len());
        assert_eq!(
            check(&v.secret(), &T.to_string(), &foreign, &v.body(), T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn each_missing_header_is_named() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        let ts = T.to_string();
        for (present, missing) in [
            (("x-webflow-signature", signature.as_str()), TIMESTAMP_HEADER),
            (("x-webflow-timestamp", ts.as_str()), SIGNATURE_HEADER),
        ] {
            let h = headers(&[present]);
            assert_eq!(
                verify(&key, &request(&h, b"{}"), at_ms(T)),
                Err(VerifyError::MissingHeader(missing))
            );
        }
    }

    #[test]
    fn a_duplicated_header_is_ambiguous() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        let ts = T.to_string();
        let later = (T + 1).to_string();
        for (h, name) in [
            (
                headers(&[
                    ("x-webflow-timestamp", &ts),
                    ("x-webflow-timestamp", &later),
                    ("x-webflow-signature", &signature),
                ]),
                TIMESTAMP_HEADER,
            ),
            (
                headers(&[
                    ("x-webflow-timestamp", &ts),
                    ("x-webflow-signature", &signature),
                    ("X-Webflow-Signature", &signature),
                ]),
                SIGNATURE_HEADER,
            ),
        ] {
            assert_eq!(
                verify(&key, &request(&h, b"{}"), at_ms(T)),
                Err(VerifyError::DuplicateHeader(name))
            );
        }
    }

    #[test]
    fn malformed_headers_are_named() {
        let key = secret("your_client_secret");
        let signature = sign(&key, b"{}", T).unwrap();
        let ts = T.to_string();
        let not_hex = "zz".repeat(32);
        for (timestamp, sig, header) in [
            ("1722370035.277", signature.as_str(), TIMESTAMP_HEADER),
            ("-1722370035277", signature.as_str(), TIMESTAMP_HEADER),
            ("", signature.as_str(), TIMESTAMP_HEADER),
            (ts.as_str(), not_hex.as_str(), SIGNATURE_HEADER),
            (ts.as_str(), "abc", SIGNATURE_HEADER),
        ] {
            let err = check(&key, timestamp, sig, b"{}", T).unwrap_err();
            assert!(
                matches!(err, VerifyError::MalformedHeader { header: h, .. } if h == header),
                "{timestamp:?}/{sig:?}: {err:?}"
            );
        }
    }

    #[test]
    fn errors_reveal_neither_key_nor_signature() {
        let v = Vector::find("webflow", "");
        let signature = v.header("x-webflow-signature");
        let key = "your_client_secret_other";
        for now in [T, T + 10_000_000] {
            let err = check(&secret(key), &T.to_string(), &signature, &v.body(), now).unwrap_err();
            assert_reveals_nothing(&err, &[key, &signature]);
        }
    }
}
