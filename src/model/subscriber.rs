//! Digest subscribers: the address type (one canonical form per inbox),
//! the status, and a subscriber as stored or about to be.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Language, ThemeSlug};

/// An email address in its one canonical form, so that one inbox is one
/// subscriber: trimmed; a quoted local part that needs no quoting
/// (`"ann"@…`, `"a\nn"@…`) unquoted; the domain lower-cased and in ASCII
/// (IDN). Two addresses that differ only in letter case are the same
/// subscriber ([`key`](Self::key)).
///
/// Refused, because no relay delivers to them as the sender means or they
/// only serve to smuggle text: IP-literal domains (`a@[192.0.2.1]`),
/// quoted local parts that need their quotes (spaces, `<`, `,`, `@` …),
/// comments, and anything lettre cannot send to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct SubscriberEmail(String);

/// Characters of an unquoted local part besides letters and digits
/// (RFC 5322 `atext`).
const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";

/// Why an address is refused. Messages never repeat the address (they
/// may reach a log); callers that echo it to its author add it (see
/// [`crate::subscribers::Choice::parse`]).
fn refuse(why: &str) -> String {
    format!("not an email address: {why}")
}

/// The local part without quotes that change nothing, or why it cannot be.
fn canonical_local(local: &str) -> Result<String, String> {
    let unquoted = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped) => out.push(escaped),
                        None => return Err(refuse("the quoted part before @ ends in \\")),
                    },
                    '"' => return Err(refuse("a quote inside the quoted part before @")),
                    c => out.push(c),
                }
            }
            out
        }
        None if local.contains(['"', '\\']) => {
            return Err(refuse("quotes or backslashes in the part before @"));
        }
        None => local.to_owned(),
    };
    let dot_atom = !unquoted.is_empty()
        && !unquoted.starts_with('.')
        && !unquoted.ends_with('.')
        && !unquoted.contains("..")
        && unquoted
            .chars()
            .all(|c| c == '.' || c.is_alphanumeric() || ATEXT.contains(c) || !c.is_ascii());
    if !dot_atom {
        return Err(refuse(
            "the part before @ holds characters that only work in quotes (spaces, <, >, \
             commas, @ …); such addresses are not accepted",
        ));
    }
    Ok(unquoted)
}

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("the email address is empty".into());
        }
        if s.len() > 254 {
            return Err(refuse("longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("it contains spaces or control characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| refuse("no @"))?;
        if domain.starts_with('[') {
            return Err(refuse(
                "the domain is an IP address in brackets; use a domain name",
            ));
        }
        let local = canonical_local(local)?;
        if local.len() > 64 {
            return Err(refuse("the part before @ is longer than 64 characters"));
        }
        let domain = idna::domain_to_ascii(domain)
            .map_err(|_| refuse("the domain is not a valid (international) domain name"))?;
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(refuse("the domain needs a dot, such as example.org"));
        }
        let address = lettre::Address::new(&local, &domain).map_err(|e| refuse(&e.to_string()))?;
        let canonical = address.to_string();
        if canonical.len() > 254 {
            return Err(refuse("longer than 254 characters"));
        }
        Ok(SubscriberEmail(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is decided on: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl From<SubscriberEmail> for String {
    fn from(e: SubscriberEmail) -> String {
        e.0
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` (an error from a mail server, say) with every occurrence of
/// `address` (in any letter case) replaced by `<address>`, for the log,
/// which never holds a subscriber's address.
pub fn redact(text: &str, address: &str) -> String {
    if address.is_empty() {
        return text.to_owned();
    }
    // ASCII lower-casing keeps byte offsets, so indices carry over.
    let haystack = text.to_ascii_lowercase();
    let needle = address.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(at) = haystack[from..].find(&needle) {
        out.push_str(&text[from..from + at]);
        out.push_str("<address>");
        from += at + needle.len();
    }
    out.push_str(&text[from..]);
    out
}

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Signed up, not yet confirmed: gets nothing but the confirmation.
    Pending,
    /// Gets the digest.
    Active,
    /// Left; kept so that the address is not mailed again.
    Unsubscribed,
    /// Its address was permanently rejected by the receiving server.
    Bounced,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Active,
        Status::Unsubscribed,
        Status::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a status: expected pending, active, unsubscribed or bounced")
            })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber about to be stored.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: SubscriberEmail,
    pub status: Status,
    pub themes: Vec<ThemeSlug>,
    pub language: Language,
    pub digest: String,
    /// How consent was given: "cli", "import:FILE", "web", ...
    pub consent_source: String,
}

/// A stored subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    #[serde(skip)]
    pub id: i64,
    pub email: String,
    pub status: Status,
    pub themes: Vec<ThemeSlug>,
    pub language: Language,
    pub digest: String,
    pub consent_at: DateTime<Utc>,
    pub consent_source: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_their_domain_normalized() {
        let e = SubscriberEmail::parse("  Anna.Lind@Exempel.SE ").unwrap();
        assert_eq!(e.as_str(), "Anna.Lind@exempel.se");
        assert_eq!(e.key(), "anna.lind@exempel.se");
        let idn = SubscriberEmail::parse("kalle@bäckström.se").unwrap();
        assert_eq!(idn.as_str(), "kalle@xn--bckstrm-5wa1o.se");
    }

    #[test]
    fn bad_addresses_say_why() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a b@example.org",
            "a@localhost",
            "a@ex..org",
            "a@example.org\r\nBcc: x@y.org",
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quotes_that_change_nothing_are_removed() {
        for same in [
            "victim@example.org",
            "\"victim\"@example.org",
            "\"v\\ictim\"@example.org",
            "\"\\victim\"@example.org",
            " \"victim\"@EXAMPLE.org ",
        ] {
            let e = SubscriberEmail::parse(same).unwrap_or_else(|e| panic!("{same}: {e}"));
            assert_eq!(e.as_str(), "victim@example.org", "{same}");
        }
        assert_eq!(
            SubscriberEmail::parse("\"Ann.Lind\"@example.org")
                .unwrap()
                .key(),
            "ann.lind@example.org"
        );
        assert_eq!(
            SubscriberEmail::parse("o'brien+news@example.org")
                .unwrap()
                .as_str(),
            "o'brien+news@example.org"
        );
    }

    #[test]
    fn addresses_no_relay_delivers_as_meant_are_refused() {
        for bad in [
            "test@[127.0.0.1]",
            "test@[IPv6:::1]",
            "\"<attacker@evil.org>\"@example.org",
            "\"a,b\"@example.org",
            "\"a b\"@example.org",
            "\"a\"b\"@example.org",
            "\"ann\"\\@example.org",
            "a\\b@example.org",
            "(comment)ann@example.org",
            "\".ann\"@example.org",
            "\"ann..lind\"@example.org",
            "\"\"@example.org",
        ] {
            let e = SubscriberEmail::parse(bad);
            assert!(e.is_err(), "{bad:?} accepted as {e:?}");
            let message = e.unwrap_err();
            assert!(
                !message.contains("attacker") && !message.contains("ann"),
                "the message repeats the input: {message}"
            );
        }
    }

    #[test]
    fn addresses_are_redacted_in_any_letter_case() {
        assert_eq!(
            redact(
                "550 5.1.1 <Ann@Example.org>: unknown; ann@example.org",
                "ann@example.org"
            ),
            "550 5.1.1 <<address>>: unknown; <address>"
        );
        assert_eq!(redact("nothing here", "ann@example.org"), "nothing here");
    }

    #[test]
    fn statuses_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("gone".parse::<Status>().is_err());
    }
}
