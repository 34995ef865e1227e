//! Free-mail domains (`gmail.com`, `gmx.*`, …): a company "found by domain" from such a domain
//! would be every customer of that provider, so those domains are never looked up or created.
//! The built-in list, and the top-level `free_mail_domains:` that adds to it or removes from it.

use std::collections::BTreeSet;

use super::diagnostic::{At, Report};
use super::spec::{check_keys, expect_map, find};
use super::yaml::{Node, NodeKind};
use crate::domain::CompanyDomain;

/// The built-in free-mail domains. `name.*` stands for `name.<tld>` and `name.<sld>.<tld>` where
/// `<sld>` is one of [`WILDCARD_SECOND_LEVELS`] (`gmx.de`, `yahoo.co.uk`, `hotmail.com.br`), not
/// for other subdomains. Chosen as providers whose addresses are personal, and whose own staff
/// write from another domain (so `google.com`, `microsoft.com`, `zoho.com` are not here).
pub const DEFAULT_FREE_MAIL_DOMAINS: &[&str] = &[
    // Google, Microsoft, Yahoo, Apple, AOL
    "gmail.com",
    "googlemail.com",
    "outlook.*",
    "hotmail.*",
    "live.*",
    "msn.com",
    "windowslive.com",
    "yahoo.*",
    "ymail.com",
    "rocketmail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.*",
    "aim.com",
    // Privacy-focused and independent providers
    "proton.me",
    "protonmail.com",
    "protonmail.ch",
    "pm.me",
    "tutanota.com",
    "tutanota.de",
    "tuta.io",
    "tuta.com",
    "zohomail.com",
    "fastmail.com",
    "fastmail.fm",
    "hushmail.com",
    "mail.com",
    "gmx.*",
    // Germany, France, Italy, Central Europe
    "web.de",
    "t-online.de",
    "freenet.de",
    "posteo.de",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "libero.it",
    "virgilio.it",
    "tiscali.it",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "interia.pl",
    "onet.pl",
    // Russia
    "mail.ru",
    "inbox.ru",
    "list.ru",
    "bk.ru",
    "internet.ru",
    "yandex.*",
    "ya.ru",
    "rambler.ru",
    // China, Korea, India
    "qq.com",
    "foxmail.com",
    "163.com",
    "126.com",
    "yeah.net",
    "sina.com",
    "sina.cn",
    "sohu.com",
    "aliyun.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "rediffmail.com",
    // Internet providers' mailboxes (North America, UK, Australia, Brazil)
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "bellsouth.net",
    "cox.net",
    "charter.net",
    "shaw.ca",
    "rogers.com",
    "sympatico.ca",
    "btinternet.com",
    "virginmedia.com",
    "blueyonder.co.uk",
    "bigpond.com",
    "optusnet.com.au",
    "uol.com.br",
    "bol.com.br",
    "terra.com.br",
];

/// The labels a `name.*` entry allows between the name and a country's top-level domain
/// (`yahoo.co.uk`, `hotmail.com.br`, `yahoo.co.jp`, `yahoo.ne.jp`).
pub const WILDCARD_SECOND_LEVELS: &[&str] = &["co", "com", "net", "org", "ne", "or"];

const KEYS: &[&str] = &["add", "remove"];

/// The free-mail domains in force: exact domains, and `name.*` entries by their name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FreeMailDomains {
    exact: BTreeSet<String>,
    /// `gmx` for `gmx.*`.
    wildcards: BTreeSet<String>,
}

/// One entry of a list, normalised.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Exact(String),
    Wildcard(String),
}

impl Entry {
    /// `gmail.com`, `GMail.com.`, `gmx.*`; the name of a wildcard needs no dot (`gmx`).
    fn parse(text: &str) -> Result<Entry, String> {
        let trimmed = text.trim();
        match trimmed.strip_suffix(".*") {
            Some(name) => {
                // `.example` only lends the name a top-level label, to be checked as a domain.
                let probe = CompanyDomain::parse(&format!("{name}.example")).map_err(|e| e.why)?;
                match probe.as_str().strip_suffix(".example") {
                    Some(name) if !name.is_empty() && !trimmed.contains(['/', '@', ':']) => {
                        Ok(Entry::Wildcard(name.to_owned()))
                    }
                    _ => Err("write `name.*` with a plain name, as in `gmx.*`".to_owned()),
                }
            }
            None if trimmed.contains('*') => Err("`*` may only stand for the last labels, as in `gmx.*`".to_owned()),
            None => CompanyDomain::parse(trimmed)
                .map(|d| Entry::Exact(d.as_str().to_owned()))
                .map_err(|e| e.why),
        }
    }
}

impl FreeMailDomains {
    /// [`DEFAULT_FREE_MAIL_DOMAINS`].
    pub fn builtin() -> FreeMailDomains {
        let mut domains = FreeMailDomains {
            exact: BTreeSet::new(),
            wildcards: BTreeSet::new(),
        };
        for entry in DEFAULT_FREE_MAIL_DOMAINS.iter().filter_map(|e| Entry::parse(e).ok()) {
            domains.insert(entry);
        }
        domains
    }

    fn insert(&mut self, entry: Entry) {
        match entry {
            Entry::Exact(d) => self.exact.insert(d),
            Entry::Wildcard(name) => self.wildcards.insert(name),
        };
    }

    fn remove(&mut self, entry: &Entry) -> bool {
        match entry {
            Entry::Exact(d) => self.exact.remove(d),
            Entry::Wildcard(name) => self.wildcards.remove(name),
        }
    }

    /// Whether `domain` is a free-mail domain: an exact entry, or `name.<tld>` /
    /// `name.<sld>.<tld>` of a `name.*` entry (see [`WILDCARD_SECOND_LEVELS`]).
    pub fn contains(&self, domain: &CompanyDomain) -> bool {
        let domain = domain.as_str();
        if self.exact.contains(domain) {
            return true;
        }
        self.wildcards.iter().any(|name| {
            let Some(rest) = domain.strip_prefix(name.as_str()).and_then(|r| r.strip_prefix('.')) else {
                return false;
            };
            match rest.split('.').collect::<Vec<_>>().as_slice() {
                [_tld] => true,
                [sld, _tld] => WILDCARD_SECOND_LEVELS.contains(sld),
                _ => false,
            }
        })
    }
}

/// `free_mail_domains:` at the top level: a list of domains added to the built-in list, or
/// `{ add: [...], remove: [...] }`, where `remove` names built-in entries as the list spells them
/// (`web.de`, `gmx.*`) and anything else there is an error (it would silently do nothing).
/// Problems are reported at their node; what could be read is applied.
pub(crate) fn read_free_mail_domains(node: &Node, report: &mut Report) -> FreeMailDomains {
    let at = At::default().field("free_mail_domains");
    let mut domains = FreeMailDomains::builtin();
    match &node.kind {
        NodeKind::Seq(_) => {
            for entry in read_entries(node, at, report) {
                domains.insert(entry);
            }
        }
        NodeKind::Map(_) => {
            let Some(entries) = expect_map(node, at, "`free_mail_domains`", report) else {
                return domains;
            };
            check_keys(entries, KEYS, at, "in `free_mail_domains`", report);
            if let Some((_, list)) = find(entries, "remove") {
                let builtin = FreeMailDomains::builtin();
                for (entry, loc) in read_entries_at(list, at, report) {
                    let known = match &entry {
                        Entry::Exact(d) => builtin.exact.contains(d),
                        Entry::Wildcard(name) => builtin.wildcards.contains(name),
                    };
                    if known {
                        domains.remove(&entry);
                    } else {
                        report.error(
                            at,
                            loc,
                            "`remove` names an entry that is not in the built-in list (write it as the list does, \
                             e.g. `web.de` or `gmx.*`; the list is in the README)",
                        );
                    }
                }
            }
            if let Some((_, list)) = find(entries, "add") {
                for entry in read_entries(list, at, report) {
                    domains.insert(entry);
                }
            }
        }
        other => report.error(
            at,
            node.loc,
            format!(
                "expected a list of domains to add, or `{{ add: [...], remove: [...] }}`, found {}",
                other.describe()
            ),
        ),
    }
    domains
}

fn read_entries(node: &Node, at: At<'_>, report: &mut Report) -> Vec<Entry> {
    read_entries_at(node, at, report).into_iter().map(|(e, _)| e).collect()
}

fn read_entries_at(node: &Node, at: At<'_>, report: &mut Report) -> Vec<(Entry, super::yaml::Loc)> {
    let NodeKind::Seq(items) = &node.kind else {
        report.error(
            at,
            node.loc,
            format!("expected a list of domains, found {}", node.kind.describe()),
        );
        return Vec::new();
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match &item.kind {
            NodeKind::Str(text) => match Entry::parse(text) {
                Ok(entry) => entries.push((entry, item.loc)),
                Err(why) => report.error(at, item.loc, format!("{text:?} is not a domain: {why}")),
            },
            other => report.error(
                at,
                item.loc,
                format!("expected a domain such as `mail.example`, found {}", other.describe()),
            ),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::yaml::parse;

    fn domain(text: &str) -> CompanyDomain {
        CompanyDomain::parse(text).unwrap()
    }

    #[test]
    fn every_builtin_entry_is_valid() {
        for entry in DEFAULT_FREE_MAIL_DOMAINS {
            assert!(Entry::parse(entry).is_ok(), "{entry}");
        }
        let builtin = FreeMailDomains::builtin();
        assert_eq!(
            builtin.exact.len() + builtin.wildcards.len(),
            DEFAULT_FREE_MAIL_DOMAINS.len(),
            "no duplicates"
        );
    }

    #[test]
    fn the_builtin_list_knows_the_issues_examples_and_not_companies() {
        let builtin = FreeMailDomains::builtin();
        for free in [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "hotmail.co.uk",
            "live.com",
            "yahoo.com",
            "yahoo.co.jp",
            "yahoo.com.br",
            "icloud.com",
            "aol.com",
            "proton.me",
            "protonmail.com",
            "gmx.de",
            "gmx.net",
            "gmx.at",
            "web.de",
            "mail.ru",
            "yandex.ru",
            "yandex.com",
            "qq.com",
            "163.com",
        ] {
            assert!(builtin.contains(&domain(free)), "{free} is free mail");
        }
        for company in [
            "acme.example",
            "google.com",
            "microsoft.com",
            "zoho.com",
            "gmx.acme.com",
            "mail.gmail.com",
            "gmail.com.evil.example",
            "yahooinc.com",
            "mygmx.de",
            "live.nation.example",
            "ad.mail.ru",
        ] {
            assert!(!builtin.contains(&domain(company)), "{company} is not free mail");
        }
    }

    fn read_text(text: &str) -> (FreeMailDomains, Vec<String>) {
        let mut report = Report::default();
        let root = parse(text).unwrap();
        let domains = read_free_mail_domains(&root, &mut report);
        (domains, report.items.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_list_adds_to_the_builtin_one() {
        let (domains, errors) = read_text("[Mail.Example, \"www.post.example.\", \"freemail.*\"]");
        assert!(errors.is_empty(), "{errors:?}");
        for free in [
            "mail.example",
            "post.example",
            "freemail.de",
            "freemail.co.uk",
            "gmail.com",
        ] {
            assert!(domains.contains(&domain(free)), "{free}");
        }
        assert!(!domains.contains(&domain("acme.example")));
    }

    #[test]
    fn add_and_remove_change_the_builtin_list() {
        let (domains, errors) = read_text("{ add: [mail.example], remove: [web.de, \"gmx.*\"] }");
        assert!(errors.is_empty(), "{errors:?}");
        assert!(domains.contains(&domain("mail.example")));
        assert!(!domains.contains(&domain("web.de")));
        assert!(!domains.contains(&domain("gmx.de")));
        assert!(domains.contains(&domain("gmail.com")));
    }

    /// Every wrong shape of `free_mail_domains`, each at its node.
    #[test]
    fn wrong_entries_are_errors_at_their_node() {
        let cases = [
            ("mail.example", "1:1", "expected a list of domains to add"),
            (
                "[localhost]",
                "1:2",
                "\"localhost\" is not a domain: a domain has at least two labels",
            ),
            ("[\"*.example\"]", "1:2", "`*` may only stand for the last labels"),
            ("[\"a.*.example\"]", "1:2", "`*` may only stand for the last labels"),
            (
                "[\"https://x.example/*\"]",
                "1:2",
                "`*` may only stand for the last labels",
            ),
            ("[\".*\"]", "1:2", "not a domain"),
            ("[1]", "1:2", "expected a domain such as"),
            ("{ remove: [acme.example] }", "1:12", "not in the built-in list"),
            ("{ remove: [gmx.de] }", "1:12", "not in the built-in list"),
            ("{ ad: [a.example] }", "1:3", "did you mean `add`"),
            ("{ add: a.example }", "1:8", "expected a list of domains"),
        ];
        for (text, position, want) in cases {
            let (_, errors) = read_text(text);
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("{position}: error: free_mail_domains: ")) && e.contains(want)),
                "{text}: want {want:?} at {position}, got {errors:#?}"
            );
        }
    }
}
