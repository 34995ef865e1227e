//! Credentials read from the secret: the HubSpot token (or legacy API key) and the
//! per-route signing keys. Values stay wrapped in `SecretString`; `Debug` never prints them.

use std::collections::HashMap;

use secrecy::SecretString;
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
    fn debug_output_hides_the_token() {
        let c = Credentials::parse(r#"{"hubspot":{"accessToken":"tok-xyz"},"signing":{"a":"sig-xyz"}}"#).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok-xyz") && !dbg.contains("sig-xyz"), "{dbg}");
    }
}
