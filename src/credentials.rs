//! Credentials read from the secret: the HubSpot token (or legacy API key) and the
//! per-route signing keys. Values stay wrapped in `SecretString`; `Debug` never prints them.
//! [`scrub`] takes every such value out of what dealhook stores or logs.

pub mod scrub;

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How dealhook authenticates to HubSpot.
#[derive(Debug, Clone)]
pub enum HubSpotAuth {
    /// Private-app or OAuth access token, sent as `Authorization: Bearer …`.
    AccessToken(SecretString),
    /// Legacy developer API key, sent as the `hapikey` query parameter.
    ApiKey(SecretString),
}

/// Everything read from the secret.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// HubSpot authentication; `None` when the secret holds none (dry runs only).
    pub hubspot: Option<HubSpotAuth>,
    /// Signing keys by name, as routes refer to them (`signing_secret:` in the mapping).
    pub signing: HashMap<String, SecretString>,
}

/// Why a secret's text could not be turned into [`Credentials`]. Never quotes the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// The secret is JSON but not of the documented shape.
    #[error("the secret is JSON but not of the expected shape: {0}")]
    Shape(String),
    /// `hubspot` holds neither `accessToken` nor `hapikey`.
    #[error("the secret's \"hubspot\" object has neither \"accessToken\" nor \"hapikey\"")]
    NoHubSpotCredential,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretDoc {
    #[serde(default)]
    hubspot: Option<HubSpotDoc>,
    #[serde(default)]
    signing: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HubSpotDoc {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    hapikey: Option<String>,
}

impl Credentials {
    /// Parses the secret's text: a JSON object
    /// `{"hubspot": {"accessToken": "…"} | {"hapikey": "…"}, "signing": {"<name>": "…"}}`,
    /// or a plain string, which is an access token.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(CredentialsError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Ok(Credentials::from_token(trimmed.to_owned()));
        }
        // serde_json's messages name the offending key or position, never the value.
        let doc: SecretDoc =
            serde_json::from_str(trimmed).map_err(|e| CredentialsError::Shape(strip_position_free(&e)))?;
        let hubspot = match doc.hubspot {
            None => None,
            Some(HubSpotDoc {
                access_token: Some(t), ..
            }) if !t.trim().is_empty() => Some(HubSpotAuth::AccessToken(SecretString::from(t.trim().to_owned()))),
            Some(HubSpotDoc { hapikey: Some(k), .. }) if !k.trim().is_empty() => {
                Some(HubSpotAuth::ApiKey(SecretString::from(k.trim().to_owned())))
            }
            Some(_) => return Err(CredentialsError::NoHubSpotCredential),
        };
        let signing = doc
            .signing
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        Ok(Credentials { hubspot, signing })
    }

    /// Every secret value in these credentials (HubSpot token or key, every signing key): what
    /// [`scrub`] must take out of logs and dead letters. A new kind of credential must add its
    /// values here.
    pub fn secret_values(&self) -> Vec<&str> {
        let hubspot = match &self.hubspot {
            Some(HubSpotAuth::AccessToken(value) | HubSpotAuth::ApiKey(value)) => Some(value.expose_secret()),
            None => None,
        };
        hubspot
            .into_iter()
            .chain(self.signing.values().map(ExposeSecret::expose_secret))
            .collect()
    }

    /// Where the secret holds a value too short to be scrubbed by value
    /// ([`scrub::MIN_SCRUBBED_LEN`]): `hubspot` or `signing.<name>`, sorted. Names only.
    pub fn too_short_to_scrub(&self) -> Vec<String> {
        let short = |value: &SecretString| value.expose_secret().len() < scrub::MIN_SCRUBBED_LEN;
        let mut names: Vec<String> = self
            .signing
            .iter()
            .filter(|(_, value)| short(value))
            .map(|(name, _)| format!("signing.{name}"))
            .collect();
        if let Some(HubSpotAuth::AccessToken(value) | HubSpotAuth::ApiKey(value)) = &self.hubspot
            && short(value)
        {
            names.push("hubspot".to_owned());
        }
        names.sort();
        names
    }

    /// Adds [`Self::secret_values`] to the process-wide set that logs and dead letters are
    /// scrubbed of ([`scrub::remember`]). Every [`crate::aws::SecretSource`] calls it on what it reads.
    pub fn remember_for_scrubbing(&self) {
        scrub::remember(self.secret_values());
    }

    /// Credentials holding only an access token (local runs: `HUBSPOT_ACCESS_TOKEN`).
    pub fn from_token(token: String) -> Credentials {
        Credentials {
            hubspot: Some(HubSpotAuth::AccessToken(SecretString::from(token))),
            signing: HashMap::new(),
        }
    }
}

/// serde_json errors about a wrong type quote the offending value ("invalid type: string \"abc\"");
/// keep only the category and position so a secret's value can never leak through.
fn strip_position_free(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        // These quote key names only.
        msg
    } else {
        format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_plain_string_is_an_access_token() {
        let c = Credentials::parse("  pat-na1-abc \n").unwrap();
        match c.hubspot {
            Some(HubSpotAuth::AccessToken(t)) => assert_eq!(t.expose_secret(), "pat-na1-abc"),
            other => panic!("expected an access token, got {other:?}"),
        }
    }

    #[test]
    fn the_json_shape_gives_token_and_signing_keys() {
        let c = Credentials::parse(r#"{"hubspot":{"accessToken":"tok"},"signing":{"typeform":"k1"}}"#).unwrap();
        assert!(matches!(c.hubspot, Some(HubSpotAuth::AccessToken(ref t)) if t.expose_secret() == "tok"));
        assert_eq!(c.signing["typeform"].expose_secret(), "k1");
    }

    #[test]
    fn the_legacy_hapikey_is_recognised() {
        let c = Credentials::parse(r#"{"hubspot":{"hapikey":"k-123"}}"#).unwrap();
        assert!(matches!(c.hubspot, Some(HubSpotAuth::ApiKey(ref k)) if k.expose_secret() == "k-123"));
    }

    #[test]
    fn a_secret_without_hubspot_has_no_hubspot_auth() {
        let c = Credentials::parse(r#"{"signing":{"a":"b"}}"#).unwrap();
        assert!(c.hubspot.is_none());
    }

    #[test]
    fn bad_secrets_are_errors_that_do_not_quote_the_value() {
        assert_eq!(Credentials::parse("  ").unwrap_err(), CredentialsError::Empty);
        assert_eq!(
            Credentials::parse(r#"{"hubspot":{}}"#).unwrap_err(),
            CredentialsError::NoHubSpotCredential
        );
        let err = Credentials::parse(r#"{"hubspot":{"accessToken":["very-secret-value"]}}"#).unwrap_err();
        assert!(!err.to_string().contains("very-secret-value"), "{err}");
        let err = Credentials::parse(r#"{"hubspot":"very-secret-value"}"#).unwrap_err();
        assert!(!err.to_string().contains("very-secret-value"), "{err}");
        let err = Credentials::parse(r#"{"hubspot":{"accesToken":"very-secret-value"}}"#).unwrap_err();
        assert!(err.to_string().contains("accesToken"), "names the unknown key: {err}");
        assert!(!err.to_string().contains("very-secret-value"), "{err}");
    }

    #[test]
    fn every_secret_value_is_listed_for_scrubbing_and_short_ones_are_named() {
        let c =
            Credentials::parse(r#"{"hubspot":{"hapikey":"hapikey-long-1"},"signing":{"a":"sig-a-long","b":"short"}}"#)
                .unwrap();
        let mut values = c.secret_values();
        values.sort();
        assert_eq!(values, ["hapikey-long-1", "short", "sig-a-long"]);
        assert_eq!(c.too_short_to_scrub(), ["signing.b"]);
        let c = Credentials::from_token("pat-na1-token-value".into());
        assert_eq!(c.secret_values(), ["pat-na1-token-value"]);
        assert!(c.too_short_to_scrub().is_empty());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = Credentials::parse(r#"{"hubspot":{"accessToken":"tok-xyz"},"signing":{"a":"sig-xyz"}}"#).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok-xyz") && !dbg.contains("sig-xyz"), "{dbg}");
    }
}
