//! Keeps the credential in use out of every text kept from an exchange with HubSpot (error
//! messages, bodies echoed back, transport errors): the secret as is and as it appears in a URL.

/// What replaces a secret found in any text we keep.
pub(crate) const REDACTED: &str = "[redacted]";

/// Replaces the secret (and its URL-encoded form) in any text we keep from an exchange.
pub(crate) struct Redactor<'a> {
    secret: &'a str,
    encoded: Option<String>,
}

impl<'a> Redactor<'a> {
    /// `encoded` is the secret as the URL spells it (an API key in `?hapikey=`), when it differs.
    pub(crate) fn new(secret: &'a str, encoded: Option<String>) -> Self {
        let encoded = encoded.filter(|e| e != secret && !e.is_empty());
        Redactor { secret, encoded }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = if self.secret.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.secret, REDACTED)
        };
        if let Some(encoded) = &self.encoded {
            text = text.replace(encoded.as_str(), REDACTED);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_and_its_url_form_are_replaced_everywhere() {
        let redactor = Redactor::new("a+b/c", Some("a%2Bb%2Fc".to_owned()));
        assert_eq!(
            redactor.redact("key a+b/c in ?hapikey=a%2Bb%2Fc and a+b/c"),
            "key [redacted] in ?hapikey=[redacted] and [redacted]"
        );
        assert_eq!(Redactor::new("", None).redact("nothing to hide"), "nothing to hide");
        assert_eq!(Redactor::new("s", Some("s".to_owned())).redact("s"), REDACTED);
    }
}
