//! Standard Webhooks (standardwebhooks.com, Svix): `webhook-id`, `webhook-timestamp` (s) and a space-separated
//! `webhook-signature` list of `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")>`; key from `whsec_<base64>`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Mac;
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use super::{SignedRequest, VerifyError, check_window, mac, optional_header, parse_timestamp, tag, tag_matches};

/// The message id header (also the sender's idempotency key).
pub const ID_HEADER: &str = "webhook-id";
/// The attempt time header, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature list header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Svix's branded names, read when the `webhook-*` one is absent.
pub const SVIX_ID_HEADER: &str = "svix-id";
/// See [`SVIX_ID_HEADER`].
pub const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";
/// See [`SVIX_ID_HEADER`].
pub const SVIX_SIGNATURE_HEADER: &str = "svix-signature";
/// The prefix of a serialised symmetric secret; the rest is base64.
pub const SECRET_PREFIX: &str = "whsec_";
/// The symmetric signature identifier; others (`v1a` asymmetric, future versions) are ignored.
pub const VERSION: &str = "v1";
/// How far the timestamp may be from `now`, either way (the reference libraries use 5 minutes).
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The HMAC key: the secret without `whsec_` (optional), base64-decoded.
pub(super) fn key_bytes(key: &SecretString) -> Result<Vec<u8>, VerifyError> {
    let secret = key.expose_secret().trim();
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    if encoded.is_empty() {
        return Err(VerifyError::InvalidKey { reason: "it is empty" });
    }
    BASE64.decode(encoded).map_err(|_| VerifyError::InvalidKey {
        reason: "a Standard Webhooks secret is `whsec_` followed by base64, and this one is not base64",
    })
}

/// The `webhook-*` header, or its `svix-*` twin when the former is absent.
fn header<'h>(headers: &'h HeaderMap, name: &'static str, svix: &'static str) -> Result<&'h str, VerifyError> {
    match optional_header(headers, name)? {
        Some(value) => Ok(value),
        None => optional_header(headers, svix)?.ok_or(VerifyError::MissingHeader(name)),
    }
}

/// Verifies a Standard Webhooks (or Svix) delivery at `now`. Any `v1` entry may match (senders list one
/// per active secret while rotating).
///
/// Each `webhook-*` header is read, falling back to `svix-*`; absent both, `MissingHeader` names the
/// `webhook-*` one. `InvalidKey` when the secret is not (`whsec_`-prefixed) base64. `MalformedHeader`
/// for a non-integer timestamp or a list with no `v1` entry; a non-base64 `v1` is `MalformedHeader`
/// only when no other `v1` matches. Then `Mismatch`, then the window (`Stale`, `Future`).
pub fn verify(key: &SecretString, request: &SignedRequest<'_>, now: SystemTime) -> Result<(), VerifyError> {
    let key = key_bytes(key)?;
    let id = header(request.headers, ID_HEADER, SVIX_ID_HEADER)?;
    let timestamp = header(request.headers, TIMESTAMP_HEADER, SVIX_TIMESTAMP_HEADER)?;
    let list = header(request.headers, SIGNATURE_HEADER, SVIX_SIGNATURE_HEADER)?;
    let seconds = parse_timestamp(TIMESTAMP_HEADER, timestamp)?;

    let candidates: Vec<&str> = list
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .map(|(_, signature)| signature)
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason: "it has no `v1,` signature",
        });
    }

    let expected = tag(&key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", request.body])?;
    let mut undecodable = false;
    let mut matched = false;
    for candidate in candidates {
        match BASE64.decode(candidate) {
            Ok(signature) => matched |= tag_matches(&expected, &signature),
            Err(_) => undecodable = true,
        }
    }
    if !matched {
        return Err(if undecodable {
            VerifyError::MalformedHeader {
                header: SIGNATURE_HEADER,
                reason: "a `v1,` signature is not base64",
            }
        } else {
            VerifyError::Mismatch
        });
    }
    check_window(seconds.saturating_mul(1000), now, TOLERANCE)
}

/// The `webhook-signature` value (`v1,<base64>`) a sender would send for message `id` at `timestamp`
/// (Unix seconds). `InvalidKey` when the secret is not base64.
pub fn sign(key: &SecretString, id: &str, timestamp: u64, body: &[u8]) -> Result<String, VerifyError> {
    let t = timestamp.to_string();
    let tag = mac(&key_bytes(key)?, &[id.as_bytes(), b".", t.as_bytes(), b".", body])?
        .finalize()
        .into_bytes();
    Ok(format!("{VERSION},{}", BASE64.encode(tag)))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const T: u64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn check(key: &str, id: &str, timestamp: &str, signature: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ]);
        verify(&secret(key), &request(&h, body), at_secs(now))
    }

    #[test]
    fn both_published_vectors_verify_byte_for_byte() {
        for source in ["javascript", "libraries/rust"] {
            let v = Vector::find("standard-webhooks", source);
            assert!(v.published(), "{source}");
            let (id, timestamp) = (v.header("webhook-id"), v.header("webhook-timestamp"));
            let signature = v.header("webhook-signature");
            let t: u64 = timestamp.parse().unwrap();
            let key = v.json["secret"].as_str().unwrap().to_owned();
            assert_eq!(sign(&v.secret(), &id, t, &v.body()).unwrap(), signature, "{source}");
            check(&key, &id, &timestamp, &signature, &v.body(), t).unwrap_or_else(|e| panic!("{source}: {e}"));
            // The vectors are old: at the real clock they are stale, not mismatched.
            let err = check(&key, &id, &timestamp, &signature, &v.body(), t + 86_400).unwrap_err();
            assert!(matches!(err, VerifyError::Stale { .. }), "{source}: {err:?}");
        }
    }

    #[test]
    fn a_secret_without_the_whsec_prefix_is_the_same_key() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let bare = KEY.trim_start_matches(SECRET_PREFIX);
        check(bare, ID, &T.to_string(), &signature, BODY, T).unwrap();
    }

    #[test]
    fn a_secret_that_is_not_base64_is_a_configuration_error() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        for bad in ["whsec_not base64!", "whsec_", "whsec_abc"] {
            let err = check(bad, ID, &T.to_string(), &signature, BODY, T).unwrap_err();
            assert!(matches!(err, VerifyError::InvalidKey { .. }), "{bad:?}: {err:?}");
            assert_eq!(err.code(), "invalid_signing_key");
            assert!(sign(&secret(bad), ID, T, BODY).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn svix_branded_headers_are_accepted() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        let h = headers(&[("svix-id", ID), ("svix-timestamp", &ts), ("svix-signature", &signature)]);
        verify(&secret(KEY), &request(&h, BODY), at_secs(T)).unwrap();
    }

    #[test]
    fn several_signatures_verify_when_one_matches() {
        // svix rust/src/webhooks.rs test_verify_with_multiple_signatures, with our clock.
        let good = sign(&secret(KEY), ID, T, BODY).unwrap();
        let list = format!(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {good} v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE="
        );
        check(KEY, ID, &T.to_string(), &list, BODY, T).unwrap();

        let none_match =
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        assert_eq!(
            check(KEY, ID, &T.to_string(), none_match, BODY, T),
            Err(VerifyError::Mismatch)
        );
        // A garbage v1 next to a good one does not spoil it.
        check(KEY, ID, &T.to_string(), &format!("v1,@@@ {good}"), BODY, T).unwrap();
    }

    #[test]
    fn the_right_signature_under_another_version_is_not_accepted() {
        let good = sign(&secret(KEY), ID, T, BODY).unwrap();
        let v2 = good.replacen("v1,", "v2,", 1);
        let err = check(KEY, ID, &T.to_string(), &v2, BODY, T).unwrap_err();
        assert!(matches!(err, VerifyError::MalformedHeader { .. }), "{err:?}");
    }

    #[test]
    fn old_and_future_timestamps_are_rejected_at_five_minutes() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        check(KEY, ID, &ts, &signature, BODY, T + 300).unwrap();
        check(KEY, ID, &ts, &signature, BODY, T - 300).unwrap();
        assert_eq!(
            check(KEY, ID, &ts, &signature, BODY, T + 301),
            Err(VerifyError::Stale {
                skew_s: 301,
                window_s: 300
            })
        );
        assert_eq!(
            check(KEY, ID, &ts, &signature, BODY, T - 301),
            Err(VerifyError::Future {
                skew_s: 301,
                window_s: 300
            })
        );
    }

    #[test]
    fn a_signature_for_another_timestamp_or_id_is_a_mismatch() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        assert_eq!(
            check(KEY, ID, &(T + 1).to_string(), &signature, BODY, T),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(KEY, "msg_other", &T.to_string(), &signature, BODY, T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_a_mismatch() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        assert_eq!(
            check(KEY, ID, &ts, &signature, &tampered(BODY), T),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ID, &ts, &signature, BODY, T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_partial_signature_is_rejected() {
        // svix rust/src/webhooks.rs test_verify_partial_signature: `v1,` alone, and the first 8 characters.
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        for partial in [
            "v1,",
            &signature[..8],
            &signature[..signature.len() - 4],
            &signature[..signature.len() - 1],
        ] {
            let err = check(KEY, ID, &ts, partial, BODY, T).unwrap_err();
            assert_rejected_signature(&err, partial);
        }
        let foreign = sign(&secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), ID, T, BODY).unwrap();
        assert_eq!(foreign.len(), signature.len());
        assert_eq!(check(KEY, ID, &ts, &foreign, BODY, T), Err(VerifyError::Mismatch));
    }

    #[test]
    fn each_missing_header_is_named() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        let all = [
            ("webhook-id", ID),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", signature.as_str()),
        ];
        for (i, missing) in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER].into_iter().enumerate() {
            let rest: Vec<(&str, &str)> = all
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let h = headers(&rest);
            assert_eq!(
                verify(&secret(KEY), &request(&h, BODY), at_secs(T)),
                Err(VerifyError::MissingHeader(missing))
            );
        }
    }

    #[test]
    fn a_duplicated_header_is_ambiguous() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        let h = headers(&[
            ("webhook-id", ID),
            ("webhook-id", "msg_other"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &signature),
        ]);
        assert_eq!(
            verify(&secret(KEY), &request(&h, BODY), at_secs(T)),
            Err(VerifyError::DuplicateHeader(ID_HEADER))
        );
        // Signatures go in one space-separated header, not in repeated headers.
        let h = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &signature),
            ("webhook-signature", &signature),
        ]);
        assert_eq!(
            verify(&secret(KEY), &request(&h, BODY), at_secs(T)),
            Err(VerifyError::DuplicateHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let ts = T.to_string();
        for (timestamp, list, header) in [
            ("1649367553.0", signature.as_str(), TIMESTAMP_HEADER),
            ("-1", signature.as_str(), TIMESTAMP_HEADER),
            ("2022-04-07T21:39:13Z", signature.as_str(), TIMESTAMP_HEADER),
            (ts.as_str(), "v1,@@@not-base64@@@", SIGNATURE_HEADER),
            (
                ts.as_str(),
                "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
                SIGNATURE_HEADER,
            ),
            (ts.as_str(), "", SIGNATURE_HEADER),
        ] {
            let err = check(KEY, ID, timestamp, list, BODY, T).unwrap_err();
            assert!(
                matches!(err, VerifyError::MalformedHeader { header: h, .. } if h == header),
                "{timestamp:?}/{list:?}: {err:?}"
            );
        }
    }

    #[test]
    fn errors_reveal_neither_key_nor_signature() {
        let signature = sign(&secret(KEY), ID, T, BODY).unwrap();
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for now in [T, T + 10_000] {
            let err = check(other, ID, &T.to_string(), &signature, BODY, now).unwrap_err();
            assert_reveals_nothing(&err, &[KEY, other, &signature, &signature[3..]]);
        }
        let err = check("whsec_not base64!", ID, &T.to_string(), &signature, BODY, T).unwrap_err();
        assert_reveals_nothing(&err, &["whsec_not base64!", "not base64!"]);
    }
}
