//! Tally: `Tally-Signature: <base64 HMAC-SHA256(secret, raw body)>`, no prefix, no timestamp
//! (tally.so/help/webhooks). We hash the raw bytes, which is what Tally's `JSON.stringify` example yields
//! for the compact JSON Tally sends.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Mac;
use secrecy::SecretString;

use super::{SignedRequest, VerifyError, decode_base64, mac, required_header, secret_bytes};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tally-Signature";

/// Verifies a Tally delivery. `now` is unused (Tally signs no timestamp).
///
/// Errors: `MissingHeader`/`DuplicateHeader` for the signature header, `MalformedHeader` when it is
/// not base64, `Mismatch` otherwise, `InvalidKey` for an empty secret.
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, _now: SystemTime) -> Result<(), VerifyError> {
    let key = secret_bytes(key)?;
    let value = required_header(request.headers, SIGNATURE_HEADER)?;
    let signature = decode_base64(SIGNATURE_HEADER, value)?;
    mac(key, &[request.body])?
        .verify_slice(&signature)
        .map_err(|_| VerifyError::Mismatch)
}

/// The `Tally-Signature` value Tally would send for `body`.
pub fn sign(key: &SecretString, body: &[u8]) -> Result<String, VerifyError> {
    let tag = mac(secret_bytes(key)?, &[body])?.finalize().into_bytes();
    Ok(BASE64.encode(tag))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn check(key: &SecretString, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
        let h = headers(&[("Tally-Signature", signature)]);
        verify(key, &request(&h, body), at_secs(NOW))
    }

    #[test]
    fn the_regression_vector_verifies_byte_for_byte() {
        let v = Vector::find("tally", "");
        assert!(!v.published(), "Tally publishes no vector; this one is self-computed");
        let signature = v.header("Tally-Signature");
        assert_eq!(sign(&v.secret(), &v.body()).unwrap(), signature);
        check(&v.secret(), &signature, &v.body()).unwrap();
    }

    #[test]
    fn a_signed_body_verifies() {
        let key = secret("YOUR_SIGNING_SECRET");
        check(&key, &sign(&key, b"{\"a\":1}").unwrap(), b"{\"a\":1}").unwrap();
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_a_mismatch() {
        let v = Vector::find("tally", "");
        let signature = v.header("Tally-Signature");
        assert_eq!(
            check(&v.secret(), &signature, &tampered(&v.body())),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret("YOUR_SIGNING_SECRET!"), &signature, &v.body()),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_truncated_or_foreign_signature_is_rejected() {
        let v = Vector::find("tally", "");
        let signature = v.header("Tally-Signature");
        for cut in [0, 4, 40, signature.len() - 1, signature.len() - 4] {
            let err = check(&v.secret(), &signature[..cut], &v.body()).unwrap_err();
            assert_rejected_signature(&err, &format!("cut at {cut}"));
        }
        let foreign = sign(&secret("someone else"), &v.body()).unwrap();
        assert_eq!(foreign.len(), signature.len());
        assert_eq!(check(&v.secret(), &foreign, &v.body()), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_missing_duplicated_or_malformed_header_is_named() {
        let key = secret("YOUR_SIGNING_SECRET");
        let body = b"{}";
        let none = headers(&[]);
        assert_eq!(
            verify(&key, &request(&none, body), at_secs(NOW)),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        let good = sign(&key, body).unwrap();
        let twice = headers(&[("tally-signature", &good), ("tally-signature", &good)]);
        assert_eq!(
            verify(&key, &request(&twice, body), at_secs(NOW)),
            Err(VerifyError::DuplicateHeader(SIGNATURE_HEADER))
        );
        for (what, value) in [
            ("a typeform-style prefix", format!("sha256={good}")),
            ("not base64", "!!!!".to_owned()),
        ] {
            let err = check(&key, &value, body).unwrap_err();
            assert!(
                matches!(
                    err,
                    VerifyError::MalformedHeader {
                        header: SIGNATURE_HEADER,
                        ..
                    }
                ),
                "{what}: {err:?}"
            );
        }
    }

    #[test]
    fn errors_reveal_neither_key_nor_signature() {
        let v = Vector::find("tally", "");
        let signature = v.header("Tally-Signature");
        let key = "YOUR_SIGNING_SECRET-2";
        let err = check(&secret(key), &signature, &v.body()).unwrap_err();
        assert_reveals_nothing(&err, &[key, &signature]);
    }
}
