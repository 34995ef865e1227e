//! Stripe: `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>…]`, each v1 a hex HMAC-SHA256 keyed with the
//! whole `whsec_…` string over `"{t}.{raw body}"`; other schemes (v0) ignored; 300 s (stripe.com/docs/webhooks).

use std::time::{Duration, SystemTime};

use hmac::Mac;
use secrecy::SecretString;

use super::{
    SignedRequest, VerifyError, check_window, mac, parse_timestamp, required_header, secret_bytes, tag, tag_matches,
};

/// The header carrying timestamp and signatures.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// The only signature scheme Stripe uses for live events; `v0` (test-mode legacy) and others are ignored.
pub const SCHEME: &str = "v1";
/// How far `t` may be from `now`, either way (Stripe's libraries default to 300 s).
pub const TOLERANCE: Duration = Duration::from_secs(300);
/// How Stripe's endpoint signing secrets begin (the key is the whole string, prefix included).
pub const SECRET_PREFIX: &str = "whsec_";

/// Verifies a Stripe delivery at `now`. Any `v1` entry may match (Stripe sends one per active secret
/// while a secret is rolled).
///
/// `MalformedHeader` when `t=` is missing, repeated or not an integer, or when there is no `v1=`;
/// a non-hex `v1` is `MalformedHeader` only when no other `v1` matches. Then `Mismatch`, then the
/// window (`Stale`, `Future`; Stripe's own libraries check only the stale side).
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, now: SystemTime) -> Result<(), VerifyError> {
    let key = secret_bytes(key)?;
    let value = required_header(request.headers, SIGNATURE_HEADER)?;
    let malformed = |reason| VerifyError::MalformedHeader {
        header: SIGNATURE_HEADER,
        reason,
    };

    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in value.split(',') {
        // Stripe: split on `,`, then each element on the first `=`; discard everything but t and v1.
        let Some((name, val)) = item.trim().split_once('=') else {
            continue;
        };
        match name {
            "t" if timestamp.replace(val).is_some() => return Err(malformed("it has more than one `t=`")),
            SCHEME => candidates.push(val),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("it has no `t=` timestamp"))?;
    let seconds = parse_timestamp(SIGNATURE_HEADER, timestamp)?;
    if candidates.is_empty() {
        return Err(malformed("it has no `v1=` signature"));
    }

    let expected = tag(key, &[timestamp.as_bytes(), b".", request.body])?;
    let mut undecodable = false;
    let mut matched = false;
    for candidate in candidates {
        match hex::decode(candidate) {
            Ok(signature) => matched |= tag_matches(&expected, &signature),
            Err(_) => undecodable = true,
        }
    }
    if !matched {
        return Err(if undecodable {
            malformed("a `v1=` signature is not hex")
        } else {
            VerifyError::Mismatch
        });
    }
    check_window(seconds.saturating_mul(1000), now, TOLERANCE)
}

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp` (Unix seconds):
/// `t={timestamp},v1={hex}`. `key` is the endpoint's `whsec_…` secret, used as is.
pub fn sign(key: &SecretString, body: &[u8], timestamp: u64) -> Result<String, VerifyError> {
    let t = timestamp.to_string();
    let tag = mac(secret_bytes(key)?, &[t.as_bytes(), b".", body])?
        .finalize()
        .into_bytes();
    Ok(format!("t={t},{SCHEME}={}", hex::encode(tag)))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// The published vector's `t`.
    const T: u64 = 1_533_204_620;
    const KEY: &str = "whsec_test_secret_for_dealhook";

    fn check(key: &SecretString, header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        let h = headers(&[("Stripe-Signature", header)]);
        verify(key, &request(&h, body), at_secs(now))
    }

    fn v1_of(header: &str) -> &str {
        header.split(',').find_map(|i| i.strip_prefix("v1=")).unwrap()
    }

    #[test]
    fn the_published_vector_verifies_and_its_v0_entry_is_ignored() {
        let v = Vector::find("stripe", "async-stripe");
        assert!(v.published());
        let header = v.header("Stripe-Signature");
        assert!(header.contains(",v0="), "the vector carries a v0 entry");
        check(&v.secret(), &header, &v.body(), T).unwrap();
        // sign() reproduces the v1 part exactly.
        let ours = sign(&v.secret(), &v.body(), T).unwrap();
        assert!(header.starts_with(&ours), "{ours} vs {header}");
    }

    #[test]
    fn the_whole_whsec_string_is_the_key() {
        let body = b"{\"id\":\"evt_1\"}";
        let header = sign(&secret(KEY), body, T).unwrap();
        check(&secret(KEY), &header, body, T).unwrap();
        // Not base64-decoded, not stripped of its prefix.
        let stripped = secret(KEY.trim_start_matches("whsec_"));
        assert_eq!(check(&stripped, &header, body, T), Err(VerifyError::Mismatch));
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let body = b"{\"id\":\"evt_1\"}";
        let good = sign(&secret(KEY), body, T).unwrap();
        let other = sign(&secret("whsec_old_secret"), body, T).unwrap();
        let header = format!(
            "t={T},v1={},v0={},v1={}, v2=ignored, junk",
            v1_of(&other),
            "0".repeat(64),
            v1_of(&good)
        );
        check(&secret(KEY), &header, body, T).unwrap();

        let none_match = format!("t={T},v1={},v1={}", v1_of(&other), "ab".repeat(32));
        assert_eq!(check(&secret(KEY), &none_match, body, T), Err(VerifyError::Mismatch));

        // A garbage v1 next to a good one does not spoil it; alone it is malformed.
        let with_garbage = format!("t={T},v1=zz,v1={}", v1_of(&good));
        check(&secret(KEY), &with_garbage, body, T).unwrap();
        let err = check(&secret(KEY), &format!("t={T},v1=zz,v1={}", v1_of(&other)), body, T).unwrap_err();
        assert!(matches!(err, VerifyError::MalformedHeader { .. }), "{err:?}");
    }

    #[test]
    fn the_right_signature_under_v0_is_not_accepted() {
        let body = b"{}";
        let good = sign(&secret(KEY), body, T).unwrap();
        let header = format!("t={T},v0={}", v1_of(&good));
        let err = check(&secret(KEY), &header, body, T).unwrap_err();
        assert!(matches!(err, VerifyError::MalformedHeader { .. }), "{err:?}");
    }

    #[test]
    fn old_and_future_timestamps_are_rejected_at_300_seconds() {
        let body = b"{}";
        let header = sign(&secret(KEY), body, T).unwrap();
        check(&secret(KEY), &header, body, T + 300).unwrap();
        check(&secret(KEY), &header, body, T - 300).unwrap();
        assert_eq!(
            check(&secret(KEY), &header, body, T + 301),
            Err(VerifyError::Stale {
                skew_s: 301,
                window_s: 300
            })
        );
        assert_eq!(
            check(&secret(KEY), &header, body, T - 301),
            Err(VerifyError::Future {
                skew_s: 301,
                window_s: 300
            })
        );
    }

    #[test]
    fn a_signature_for_another_timestamp_is_a_mismatch() {
        let body = b"{}";
        let header = sign(&secret(KEY), body, T).unwrap();
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(check(&secret(KEY), &moved, body, T), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_a_mismatch() {
        let v = Vector::find("stripe", "");
        let header = v.header("Stripe-Signature");
        assert_eq!(
            check(&v.secret(), &header, &tampered(&v.body()), T),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret("secret2"), &header, &v.body(), T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_truncated_or_foreign_signature_is_rejected() {
        let body = b"{}";
        let good = sign(&secret(KEY), body, T).unwrap();
        let sig = v1_of(&good);
        for cut in [0, 2, 32, 62, 63] {
            let err = check(&secret(KEY), &format!("t={T},v1={}", &sig[..cut]), body, T).unwrap_err();
            assert_rejected_signature(&err, &format!("cut at {cut}"));
        }
        let foreign = sign(&secret("whsec_someone_else"), body, T).unwrap();
        assert_eq!(foreign.len(), good.len());
        assert_eq!(check(&secret(KEY), &foreign, body, T), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_missing_duplicated_or_malformed_header_is_named() {
        let body = b"{}";
        let good = sign(&secret(KEY), body, T).unwrap();
        let none = headers(&[]);
        assert_eq!(
            verify(&secret(KEY), &request(&none, body), at_secs(T)),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        let twice = headers(&[("stripe-signature", &good), ("stripe-signature", &good)]);
        assert_eq!(
            verify(&secret(KEY), &request(&twice, body), at_secs(T)),
            Err(VerifyError::DuplicateHeader(SIGNATURE_HEADER))
        );
        let sig = v1_of(&good);
        for (what, header) in [
            ("missing t=", format!("v1={sig}")),
            ("two t=", format!("t={T},t={T},v1={sig}")),
            ("t not a number", format!("t=abc,v1={sig}")),
            ("t negative", format!("t=-{T},v1={sig}")),
            ("no v1", format!("t={T}")),
            ("v1 not hex", format!("t={T},v1={}", "zz".repeat(32))),
            ("empty", String::new()),
        ] {
            let err = check(&secret(KEY), &header, body, T).unwrap_err();
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
        let v = Vector::find("stripe", "");
        let header = v.header("Stripe-Signature");
        let key = "whsec_not_the_right_one";
        for now in [T, T + 10_000] {
            let err = check(&secret(key), &header, &v.body(), now).unwrap_err();
            assert_reveals_nothing(&err, &[key, &header, v1_of(&header)]);
        }
    }
}
