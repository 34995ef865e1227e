//! E-mail addresses and company domains as dealhook sends them to HubSpot: parsed once, normalised
//! (trimmed, lower case), and never holding a value HubSpot would refuse or match wrongly.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3: a 256-octet path minus `<>`).
const EMAIL_MAX_LENGTH: usize = 254;

/// A contact's e-mail address: trimmed and lower-cased (HubSpot compares e-mails case-insensitively
/// and upserts by the lower-case form; `shared/hubspot-responses.md` item 18).
///
/// Accepted: `local@host.tld` where the local part is an unquoted RFC 5322 dot-atom of at most 64
/// characters (the `email_address` crate's rule: letters, digits and ``!#$%&'*+-/=?^_`{|}~``, dots
/// between atoms, non-ASCII letters allowed) and the host is a [`CompanyDomain`]-valid name with at
/// least two labels; at most 254 characters in all. Refused, although RFC 5322 allows them, because a
/// web form's e-mail field never means them and HubSpot has no use for them: quoted local parts
/// (`"a b"@x.com`), IP literals (`a@[192.0.2.1]`), display names (`Ada <ada@x.com>`), single-label
/// hosts (`a@localhost`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a text is not an [`Email`]; `Display` is a sentence naming the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an e-mail address: {why}")]
pub struct InvalidEmail {
    /// The text as received (trimmed).
    pub value: String,
    /// Which rule it breaks.
    pub why: String,
}

impl Email {
    /// Trims, lower-cases and checks `text` (rules on [`Email`]).
    pub fn parse(text: &str) -> Result<Email, InvalidEmail> {
        let trimmed = text.trim();
        let invalid = |why: &str| InvalidEmail {
            value: trimmed.to_owned(),
            why: why.to_owned(),
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let lower = trimmed.to_lowercase();
        if lower.chars().count() > EMAIL_MAX_LENGTH {
            return Err(invalid("longer than 254 characters"));
        }
        let Some((local, host)) = lower.rsplit_once('@') else {
            return Err(invalid("there is no `@`"));
        };
        if local.starts_with('"') {
            return Err(invalid("quoted local parts are not accepted"));
        }
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            allow_long_local_parts: false,
        };
        if let Err(error) = email_address::EmailAddress::parse_with_options(&lower, options) {
            let why = match error {
                email_address::Error::LocalPartEmpty => "nothing before the `@`".to_owned(),
                email_address::Error::LocalPartTooLong => "more than 64 characters before the `@`".to_owned(),
                email_address::Error::UnsupportedDisplayName | email_address::Error::MissingEndBracket => {
                    "write the address alone, without a name or `<>`".to_owned()
                }
                email_address::Error::UnsupportedDomainLiteral => "IP addresses are not accepted as host".to_owned(),
                email_address::Error::DomainEmpty => "nothing after the `@`".to_owned(),
                other => other.to_string().trim_end_matches('.').to_lowercase(),
            };
            return Err(invalid(&why));
        }
        // email_address accepts `_`, `$`, … in host labels; HubSpot and DNS do not.
        if let Err(why) = host_name(host) {
            return Err(invalid(&format!("its host {host:?}: {why}")));
        }
        Ok(Email(lower))
    }

    /// The address, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@` (lower case, as written: not converted to punycode).
    pub fn host(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, host)| host)
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Email::parse(&text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A company's domain as HubSpot's `domain` property should hold it (`shared/hubspot-responses.md`
/// item 17: search is an exact match on the stored string): the host name only, lower case,
/// internationalised names in their ASCII (punycode) form, without `www.`.
///
/// [`CompanyDomain::parse`] reads what forms hold: `acme.example`, `https://www.Acme.example:8443/about?x#y`,
/// `acme.example.` and an e-mail address (`ada@acme.example`: the part after the last `@`). A
/// subdomain stays as written (`eu.acme.example` is not `acme.example`): without the public suffix
/// list dealhook cannot tell `eu.acme.example` from `acme.co.uk`, and HubSpot does not merge them either.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CompanyDomain(String);

/// Why a text is not a [`CompanyDomain`]; `Display` is a sentence naming the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a company domain: {why}")]
pub struct InvalidDomain {
    /// The text as received (trimmed).
    pub value: String,
    /// Which rule it breaks.
    pub why: String,
}

impl CompanyDomain {
    /// Normalises `text` in this order: trim; drop a scheme (`https://`, `//`); cut at the first `/`,
    /// `?` or `#`; keep what follows the last `@` (an e-mail address, or user info in a URL); drop a
    /// `:port`; drop one trailing `.`; drop a leading `www.`; then IDNA (UTS 46) to ASCII, which
    /// lower-cases and refuses anything but letters, digits and inner hyphens in labels of at most 63
    /// characters, 253 in all. The result needs two labels at least and a top-level label that is
    /// not all digits (so no IP addresses, no `localhost`).
    pub fn parse(text: &str) -> Result<CompanyDomain, InvalidDomain> {
        let trimmed = text.trim();
        let invalid = |why: String| InvalidDomain {
            value: trimmed.to_owned(),
            why,
        };
        let mut rest = trimmed;
        if let Some((scheme, after)) = rest.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            rest = after;
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after;
        }
        let rest = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let rest = match rest.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            Some(_) => return Err(invalid("`:` is only allowed before a port number".to_owned())),
            None => rest,
        };
        let rest = rest.strip_suffix('.').unwrap_or(rest);
        if rest.is_empty() {
            return Err(invalid("there is no host name in it".to_owned()));
        }
        let host = host_name(rest).map_err(invalid)?;
        let host = match host.strip_prefix("www.") {
            Some(bare) if bare.contains('.') => bare.to_owned(),
            _ => host,
        };
        Ok(CompanyDomain(host))
    }

    /// The domain (lower-case ASCII).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CompanyDomain {
    type Error = InvalidDomain;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        CompanyDomain::parse(&text)
    }
}

impl From<CompanyDomain> for String {
    fn from(domain: CompanyDomain) -> String {
        domain.0
    }
}

impl fmt::Display for CompanyDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host name in its ASCII form, or why not (see [`CompanyDomain::parse`] for the rules).
fn host_name(text: &str) -> Result<String, String> {
    let ascii = idna::domain_to_ascii_strict(text).map_err(|_| {
        "a host name has labels of letters, digits and inner hyphens (at most 63 characters each, 253 in \
         all), separated by dots"
            .to_owned()
    })?;
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err("a domain has at least two labels, as in `acme.example`".to_owned());
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err("IP addresses are not domains".to_owned());
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let cases = [
            ("ada@example.com", "ada@example.com"),
            ("  Ada.Lovelace@Example.COM \n", "ada.lovelace@example.com"),
            ("ADA+quotes@Sub.Example.co.uk", "ada+quotes@sub.example.co.uk"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("jörg@müller.example", "jörg@müller.example"),
            ("a@b-c.example", "a@b-c.example"),
        ];
        for (input, want) in cases {
            let email = Email::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(email.as_str(), want, "{input:?}");
        }
        assert_eq!(Email::parse("Ada@Acme.Example").unwrap().host(), "acme.example");
    }

    /// Every way an e-mail field goes wrong in practice, each refused with its rule.
    #[test]
    fn invalid_emails_name_the_rule() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.example", "b.".repeat(130));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("   ", "empty"),
            ("ada", "no `@`"),
            ("ada.example.com", "no `@`"),
            ("@example.com", "nothing before the `@`"),
            ("ada@", "nothing after the `@`"),
            ("ada@localhost", "domain"),
            ("ada@example", "domain"),
            ("ada@exa mple.com", "invalid character"),
            ("ada lovelace@example.com", "invalid character"),
            ("ada..l@example.com", "invalid"),
            (".ada@example.com", "invalid"),
            ("ada@@example.com", "invalid"),
            ("\"ada l\"@example.com", "quoted local parts"),
            ("Ada <ada@example.com>", "without a name"),
            ("ada@[192.0.2.1]", "IP addresses"),
            ("ada@192.0.2.1", "IP addresses"),
            ("ada@exa_mple.com", "host \"exa_mple.com\""),
            ("ada@-example.com", "invalid character"),
            ("ada@example..com", "sub-domain"),
            ("ada@example.com,bob@example.com", "invalid character"),
            (&long_local, "more than 64"),
            (&long_total, "longer than 254"),
        ];
        for (input, want) in cases {
            let err = Email::parse(input).expect_err(input).to_string();
            assert!(
                err.to_lowercase().contains(&want.to_lowercase()),
                "{input:?}: want {want:?} in {err:?}"
            );
            assert!(err.contains("is not an e-mail address"), "{err}");
        }
    }

    #[test]
    fn company_domains_are_normalised_from_what_forms_hold() {
        let cases = [
            ("acme.example", "acme.example"),
            ("Acme.Example", "acme.example"),
            ("  acme.example  ", "acme.example"),
            ("www.acme.example", "acme.example"),
            ("WWW.Acme.Example.", "acme.example"),
            ("https://www.acme.example", "acme.example"),
            ("http://acme.example/", "acme.example"),
            ("https://www.acme.example:8443/about/us?x=1#team", "acme.example"),
            ("acme.example:80", "acme.example"),
            ("acme.example/contact", "acme.example"),
            ("//acme.example/x", "acme.example"),
            ("HTTPS://ACME.EXAMPLE", "acme.example"),
            ("ftp://files.acme.example", "files.acme.example"),
            ("ada@acme.example", "acme.example"),
            ("Ada.Lovelace@WWW.Acme.Example", "acme.example"),
            ("https://user:pw@acme.example/x", "acme.example"),
            ("eu.acme.example", "eu.acme.example"),
            ("acme.co.uk", "acme.co.uk"),
            ("www.example", "www.example"),
            ("münchen.example", "xn--mnchen-3ya.example"),
            ("MÜNCHEN.example", "xn--mnchen-3ya.example"),
            ("xn--mnchen-3ya.example", "xn--mnchen-3ya.example"),
            ("acme-corp.example", "acme-corp.example"),
            ("3m.com", "3m.com"),
        ];
        for (input, want) in cases {
            let domain = CompanyDomain::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(domain.as_str(), want, "{input:?}");
        }
    }

    /// Every kind of text that is no company domain, each refused with its rule.
    #[test]
    fn invalid_domains_name_the_rule() {
        let long_label = format!("{}.example", "a".repeat(64));
        let cases: Vec<(&str, &str)> = vec![
            ("", "no host name"),
            ("https://", "no host name"),
            ("https:///path", "no host name"),
            ("ada@", "no host name"),
            ("acme", "two labels"),
            ("localhost", "two labels"),
            ("www.", "two labels"),
            (".acme.example", "labels"),
            ("acme..example", "labels"),
            ("acme example.com", "labels of letters"),
            ("acme_corp.example", "labels of letters"),
            ("-acme.example", "inner hyphens"),
            ("acme-.example", "inner hyphens"),
            ("acme.example:http", "port number"),
            ("[2001:db8::1]", "port number"),
            ("192.0.2.1", "IP addresses"),
            ("http://192.0.2.1:8080/", "IP addresses"),
            (&long_label, "63 characters"),
            ("acme.example, other.example", "labels of letters"),
        ];
        for (input, want) in cases {
            let err = CompanyDomain::parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input:?}: want {want:?} in {err:?}");
            assert!(err.contains("is not a company domain"), "{err}");
        }
    }

    #[test]
    fn serde_checks_what_it_reads() {
        let email: Email = serde_json::from_str("\"Ada@Example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"ada@example.com\"");
        assert!(serde_json::from_str::<Email>("\"not an e-mail\"").is_err());
        let domain: CompanyDomain = serde_json::from_str("\"https://www.Acme.example/\"").unwrap();
        assert_eq!(serde_json::to_string(&domain).unwrap(), "\"acme.example\"");
        assert!(serde_json::from_str::<CompanyDomain>("\"localhost\"").is_err());
    }
}
