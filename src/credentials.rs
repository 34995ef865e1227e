//! Credentials read from the secret: the HubSpot token (Service Key or private-app token), the
//! OAuth grant of a public app, or the legacy API key, and the per-route signing keys. Values stay wrapped in `SecretString`; `Debug` never prints them.
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
    /// A public app's OAuth grant: exchanged for short-lived access tokens (sent as `Bearer`) by
    /// [`crate::hubspot::OAuthTokens`].
    OAuth(OAuthCredentials),
}

/// A public app's OAuth grant, as the secret holds it under `hubspot.oauth`: the app's client id
/// and secret (HubSpot: the app's Auth settings) and the refresh token its installation returned.
///
/// All three are treated as secrets: the client secret and the refresh token are (together they
/// mint access tokens for the account); the client id is not confidential in OAuth (it is in the
/// install URL), but dealhook never needs to show it, so it is scrubbed like the others.
#[derive(Debug, Clone)]
pub struct OAuthCredentials {
    /// The app's client id (`clientId`).
    pub client_id: SecretString,
    /// The app's client secret (`clientSecret`).
    pub client_secret: SecretString,
    /// The refresh token of the app's installation in the account (`refreshToken`).
    pub refresh_token: SecretString,
}

impl OAuthCredentials {
    /// The three values with the secret's key for each, in the secret's order.
    pub fn named_values(&self) -> [(&'static str, &str); 3] {
        [
            ("clientId", self.client_id.expose_secret()),
            ("clientSecret", self.client_secret.expose_secret()),
            ("refreshToken", self.refresh_token.expose_secret()),
        ]
    }
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
    /// The secret starts like a JSON object (`{`) but is not valid JSON: where (never what).
    #[error("the secret starts with `{{` but is not valid JSON: {0}")]
    Syntax(String),
    /// The secret is JSON but not of the documented shape.
    #[error("the secret is JSON but not of the expected shape: {0}")]
    Shape(String),
    /// `hubspot` holds neither `accessToken`, `hapikey` nor `oauth`.
    #[error("the secret's \"hubspot\" object has neither \"accessToken\", \"hapikey\" nor \"oauth\"")]
    NoHubSpotCredential,
    /// `hubspot.oauth` sits beside `accessToken` or `hapikey`: which one to use would be a guess.
    #[error(
        "the secret's \"hubspot\" object holds \"oauth\" and also \"accessToken\" or \"hapikey\": keep only the one to use"
    )]
    AmbiguousHubSpotCredential,
    /// `hubspot.accessToken` or `hubspot.hapikey` is there but empty or blank, and no other credential is
    /// usable (names the key).
    #[error("the secret's \"hubspot.{0}\" is empty")]
    EmptyHubSpotValue(&'static str),
    /// A value of `hubspot.oauth` is empty (names the key, never a value).
    #[error("the secret's \"hubspot.oauth.{0}\" is empty")]
    EmptyOAuthValue(&'static str),
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
    #[serde(default)]
    oauth: Option<OAuthDoc>,
}

/// `hubspot.oauth`: every key required (serde names a missing one, never a value).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OAuthDoc {
    client_id: String,
    client_secret: String,
    refresh_token: String,
}

impl OAuthDoc {
    fn parse(self) -> Result<OAuthCredentials, CredentialsError> {
        let value = |text: String, key: &'static str| {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Err(CredentialsError::EmptyOAuthValue(key));
            }
            Ok(SecretString::from(trimmed.to_owned()))
        };
        Ok(OAuthCredentials {
            client_id: value(self.client_id, "clientId")?,
            client_secret: value(self.client_secret, "clientSecret")?,
            refresh_token: value(self.refresh_token, "refreshToken")?,
        })
    }
}

impl Credentials {
    /// Parses the secret's text: a JSON object
    /// `{"hubspot": {"accessToken": "…"} | {"hapikey": "…"} | {"oauth": {"clientId": "…",
    /// "clientSecret": "…", "refreshToken": "…"}}, "signing": {"<name>": "…"}}`, or a plain string,
    /// which is an access token. `oauth` beside another credential is an error.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(CredentialsError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Ok(Credentials::from_token(trimmed.to_owned()));
        }
        // serde_json's messages name the offending key or position, never the value.
        let doc: SecretDoc = serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                CredentialsError::Syntax(format!(
                    "{} at line {} column {}",
                    match e.classify() {
                        serde_json::error::Category::Eof => "it ends early",
                        _ => "a syntax error",
                    },
                    e.line(),
                    e.column()
                ))
            }
            _ => CredentialsError::Shape(strip_position_free(&e)),
        })?;
        let hubspot = match doc.hubspot {
            None => None,
            Some(HubSpotDoc {
                oauth: Some(oauth),
                access_token,
                hapikey,
            }) => {
                if access_token.is_some() || hapikey.is_some() {
                    return Err(CredentialsError::AmbiguousHubSpotCredential);
                }
                Some(HubSpotAuth::OAuth(oauth.parse()?))
            }
            Some(HubSpotDoc {
                access_token: Some(t), ..
            }) if !t.trim().is_empty() => Some(HubSpotAuth::AccessToken(SecretString::from(t.trim().to_owned()))),
            Some(HubSpotDoc { hapikey: Some(k), .. }) if !k.trim().is_empty() => {
                Some(HubSpotAuth::ApiKey(SecretString::from(k.trim().to_owned())))
            }
            // Present but blank: say which, not that there is none.
            Some(HubSpotDoc {
                access_token: Some(_), ..
            }) => return Err(CredentialsError::EmptyHubSpotValue("accessToken")),
            Some(HubSpotDoc { hapikey: Some(_), .. }) => return Err(CredentialsError::EmptyHubSpotValue("hapikey")),
            Some(_) => return Err(CredentialsError::NoHubSpotCredential),
        };
        let signing = doc
            .signing
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        Ok(Credentials { hubspot, signing })
    }

    /// Every secret value in these credentials (HubSpot token or key, the three OAuth values, every
    /// signing key): what [`scrub`] must take out of logs and dead letters. A new kind of credential
    /// must add its values here. (Access tokens obtained with an OAuth grant are not in the secret:
    /// [`crate::hubspot::OAuthTokens`] remembers each for scrubbing as it arrives.)
    pub fn secret_values(&self) -> Vec<&str> {
        self.hubspot_values()
            .into_iter()
            .map(|(_, value)| value)
            .chain(self.signing.values().map(ExposeSecret::expose_secret))
            .collect()
    }

    /// The HubSpot credential's values, each with its name in the secret (`hubspot`, or
    /// `hubspot.oauth.<key>`).
    fn hubspot_values(&self) -> Vec<(String, &str)> {
        match &self.hubspot {
            Some(HubSpotAuth::AccessToken(value) | HubSpotAuth::ApiKey(value)) => {
                vec![("hubspot".to_owned(), value.expose_secret())]
            }
            Some(HubSpotAuth::OAuth(oauth)) => oauth
                .named_values()
                .into_iter()
                .map(|(key, value)| (format!("hubspot.oauth.{key}"), value))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Where the secret holds a value too short to be scrubbed by value
    /// ([`scrub::MIN_SCRUBBED_LEN`]): `hubspot`, `hubspot.oauth.<key>` or `signing.<name>`, sorted.
    /// Names only.
    pub fn too_short_to_scrub(&self) -> Vec<String> {
        let short = |value: &str| value.len() < scrub::MIN_SCRUBBED_LEN;
        let mut names: Vec<String> = self
            .signing
            .iter()
            .filter(|(_, value)| short(value.expose_secret()))
            .map(|(name, _)| format!("signing.{name}"))
            .chain(
                self.hubspot_values()
                    .into_iter()
                    .filter(|(_, value)| short(value))
                    .map(|(name, _)| name),
            )
            .collect();
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
        // A credential given but blank is named as such: alone, beside another blank one, or with
        // only spaces. A usable one beside a blank one is used.
        for (secret, key) in [
            (r#"{"hubspot":{"accessToken":""}}"#, "accessToken"),
            (r#"{"hubspot":{"accessToken":"   "}}"#, "accessToken"),
            (r#"{"hubspot":{"hapikey":""}}"#, "hapikey"),
            (r#"{"hubspot":{"accessToken":"","hapikey":" "}}"#, "accessToken"),
        ] {
            let err = Credentials::parse(secret).unwrap_err();
            assert_eq!(err, CredentialsError::EmptyHubSpotValue(key), "{secret}");
            assert_eq!(err.to_string(), format!("the secret's \"hubspot.{key}\" is empty"));
        }
        let c = Credentials::parse(r#"{"hubspot":{"accessToken":"","hapikey":"k-1"}}"#).unwrap();
        assert!(matches!(c.hubspot, Some(HubSpotAuth::ApiKey(_))));
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

    const OAUTH: &str = r#"{"hubspot":{"oauth":{"clientId":"5f2c1a9e-client-id","clientSecret":"client-secret-0e9d","refreshToken":"na1-refresh-7b7e-4c"}},"signing":{"a":"sig-a-long"}}"#;

    #[test]
    fn the_oauth_shape_gives_the_three_values_trimmed() {
        let c = Credentials::parse(&OAUTH.replace("5f2c1a9e-client-id", " 5f2c1a9e-client-id\\n")).unwrap();
        let Some(HubSpotAuth::OAuth(oauth)) = &c.hubspot else {
            panic!("expected an OAuth grant, got {:?}", c.hubspot);
        };
        assert_eq!(
            oauth.named_values(),
            [
                ("clientId", "5f2c1a9e-client-id"),
                ("clientSecret", "client-secret-0e9d"),
                ("refreshToken", "na1-refresh-7b7e-4c"),
            ]
        );
        assert_eq!(c.signing["a"].expose_secret(), "sig-a-long");
    }

    /// Every way the `oauth` object can be wrong, each named without quoting a value.
    #[test]
    fn bad_oauth_shapes_are_named_errors_that_do_not_quote_values() {
        let cases: [(&str, &str, Option<CredentialsError>); 7] = [
            (
                "refresh token missing",
                r#"{"hubspot":{"oauth":{"clientId":"id-value-1","clientSecret":"very-secret-value"}}}"#,
                None,
            ),
            (
                "empty client secret",
                r#"{"hubspot":{"oauth":{"clientId":"id-value-1","clientSecret":"  ","refreshToken":"very-secret-value"}}}"#,
                Some(CredentialsError::EmptyOAuthValue("clientSecret")),
            ),
            (
                "empty client id",
                r#"{"hubspot":{"oauth":{"clientId":"","clientSecret":"very-secret-value","refreshToken":"r-value-1"}}}"#,
                Some(CredentialsError::EmptyOAuthValue("clientId")),
            ),
            (
                "unknown key",
                r#"{"hubspot":{"oauth":{"clientId":"id-value-1","clientSecret":"very-secret-value","refreshToken":"r","accessToken":"x"}}}"#,
                None,
            ),
            ("not an object", r#"{"hubspot":{"oauth":"very-secret-value"}}"#, None),
            (
                "a number for the refresh token",
                r#"{"hubspot":{"oauth":{"clientId":"id-value-1","clientSecret":"very-secret-value","refreshToken":12345678}}}"#,
                None,
            ),
            (
                "beside an access token",
                r#"{"hubspot":{"accessToken":"pat-na1-x","oauth":{"clientId":"id-value-1","clientSecret":"very-secret-value","refreshToken":"r-value-1"}}}"#,
                Some(CredentialsError::AmbiguousHubSpotCredential),
            ),
        ];
        for (row, text, expected) in &cases {
            let err = Credentials::parse(text).unwrap_err();
            if let Some(expected) = expected {
                assert_eq!(&err, expected, "{row}");
            }
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("very-secret-value"), "{row}: {shown}");
            assert!(!shown.contains("12345678"), "{row}: {shown}");
        }
        let err = Credentials::parse(cases[0].1).unwrap_err();
        assert!(err.to_string().contains("refreshToken"), "names the missing key: {err}");
        let err = Credentials::parse(cases[3].1).unwrap_err();
        assert!(err.to_string().contains("accessToken"), "names the unknown key: {err}");
    }

    #[test]
    fn the_oauth_values_are_listed_for_scrubbing_and_short_ones_are_named() {
        let c = Credentials::parse(OAUTH).unwrap();
        let mut values = c.secret_values();
        values.sort();
        assert_eq!(
            values,
            [
                "5f2c1a9e-client-id",
                "client-secret-0e9d",
                "na1-refresh-7b7e-4c",
                "sig-a-long"
            ]
        );
        assert!(c.too_short_to_scrub().is_empty());
        let c = Credentials::parse(
            r#"{"hubspot":{"oauth":{"clientId":"id","clientSecret":"client-secret-0e9d","refreshToken":"short"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.too_short_to_scrub(),
            ["hubspot.oauth.clientId", "hubspot.oauth.refreshToken"]
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("client-secret-0e9d") && !dbg.contains("short"), "{dbg}");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = Credentials::parse(r#"{"hubspot":{"accessToken":"tok-xyz"},"signing":{"a":"sig-xyz"}}"#).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok-xyz") && !dbg.contains("sig-xyz"), "{dbg}");
    }
}
