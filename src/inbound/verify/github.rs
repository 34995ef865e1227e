//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`; no timestamp
//! (docs.github.com "Validating webhook deliveries"). The legacy SHA-1 `X-Hub-Signature` is ignored.

use std::time::SystemTime;

use hmac::Mac;
use secrecy::SecretString;

use super::{SignedRequest, VerifyError, decode_hex, mac, required_header, secret_bytes};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// What the header value starts with; the rest is hex.
pub const PREFIX: &str = "sha256=";

/// Verifies a GitHub delivery. `now` is unused (GitHub signs no timestamp).
///
/// Errors: `MissingHeader`/`DuplicateHeader` for the signature header, `MalformedHeader` when the
/// value lacks `sha256=` or is not hex, `Mismatch` otherwise, `InvalidKey` for an empty secret.
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, _now: SystemTime) -> Result<(), VerifyError> {
    let key = secret_bytes(key)?;
    let value = required_header(request.headers, SIGNATURE_HEADER)?;
    let encoded = value.strip_prefix(PREFIX).ok_or(VerifyError::MalformedHeader {
        header: SIGNATURE_HEADER,
        reason: "it does not start with `sha256=`",
    })?;
    let signature = decode_hex(SIGNATURE_HEADER, encoded)?;
    mac(key, &[request.body])?
        .verify_slice(&signature)
        .map_err(|_| VerifyError::Mismatch)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body`.
pub fn sign(key: &SecretString, body: &[u8]) -> Result<String, VerifyError> {
    let tag = mac(secret_bytes(key)?, &[body])?.finalize().into_bytes();
    Ok(format!("{PREFIX}{}", hex::encode(tag)))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn check(key: &SecretString, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
        let h = headers(&[("X-Hub-Signature-256", signature)]);
        verify(key, &request(&h, body), at_secs(NOW))
    }

    #[test]
    fn githubs_published_vector_verifies_byte_for_byte() {
        let v = Vector::find("github", "docs.github.com");
        assert!(v.published());
        assert_eq!(v.body(), b"Hello, World!");
        let signature = v.header("X-Hub-Signature-256");
        assert_eq!(sign(&v.secret(), &v.body()).unwrap(), signature);
        check(&v.secret(), &signature, &v.body()).unwrap();
        // GitHub sends lower-case hex; upper-case is the same bytes.
        let upper = format!("sha256={}", signature.trim_start_matches(PREFIX).to_uppercase());
        check(&v.secret(), &upper, &v.body()).unwrap();
    }

    #[test]
    fn a_signed_body_verifies() {
        let key = secret("It's a Secret to Everybody");
        check(&key, &sign(&key, b"{\"zen\":\"x\"}").unwrap(), b"{\"zen\":\"x\"}").unwrap();
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_a_mismatch() {
        let v = Vector::find("github", "");
        let signature = v.header("X-Hub-Signature-256");
        assert_eq!(
            check(&v.secret(), &signature, &tampered(&v.body())),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret("It's a Secret to Everybody."), &signature, &v.body()),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_truncated_or_foreign_signature_is_rejected() {
        let v = Vector::find("github", "");
        let signature = v.header("X-Hub-Signature-256");
        for cut in [
            PREFIX.len(),
            PREFIX.len() + 2,
            PREFIX.len() + 32,
            signature.len() - 2,
            signature.len() - 1,
        ] {
            let err = check(&v.secret(), &signature[..cut], &v.body()).unwrap_err();
            assert_rejected_signature(&err, &format!("cut at {cut}"));
        }
        let foreign = sign(&secret("someone else"), &v.body()).unwrap();
        assert_eq!(foreign.len(), signature.len());
        assert_eq!(check(&v.secret(), &foreign, &v.body()), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_missing_duplicated_or_malformed_header_is_named() {
        let key = secret("It's a Secret to Everybody");
        let body = b"Hello, World!";
        let good = sign(&key, body).unwrap();
        // Only the SHA-1 header: the SHA-256 one is still missing.
        let sha1_only = headers(&[("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59")]);
        assert_eq!(
            verify(&key, &request(&sha1_only, body), at_secs(NOW)),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        let twice = headers(&[("x-hub-signature-256", &good), ("x-hub-signature-256", &good)]);
        assert_eq!(
            verify(&key, &request(&twice, body), at_secs(NOW)),
            Err(VerifyError::DuplicateHeader(SIGNATURE_HEADER))
        );
        let not_hex = format!("sha256={}", "zz".repeat(32));
        for (what, value) in [
            ("no prefix", good.trim_start_matches(PREFIX)),
            ("not hex", not_hex.as_str()),
            ("odd length", "sha256=abc"),
            ("sha1 prefix", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
        ] {
            let err = check(&key, value, body).unwrap_err();
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
        let v = Vector::find("github", "");
        let signature = v.header("X-Hub-Signature-256");
        let key = "It's another Secret";
        let err = check(&secret(key), &signature, &v.body()).unwrap_err();
        assert_reveals_nothing(&err, &[key, &signature, signature.trim_start_matches(PREFIX)]);
    }
}
