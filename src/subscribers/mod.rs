//! Digest subscribers: the address type, the status, and the parsing of
//! what an operator types or imports (themes, language, digest) against
//! the config. Storage lives in `store::subscribers`; CSV and JSON in
//! [`io`].

pub mod io;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Digest};
use crate::story::{Language, ThemeSlug};

/// An email address, parsed once: trimmed, the domain lower-cased and in
/// ASCII (IDN), checked by lettre's address rules. Two addresses that
/// differ only in letter case are the same subscriber ([`key`](Self::key)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, String> {
        let s = input.trim();
        let bad = |why: &str| format!("`{s}` is not an email address: {why}");
        if s.is_empty() {
            return Err("the email address is empty".into());
        }
        if s.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces or control characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("the part before @ must be 1 to 64 characters"));
        }
        let domain = idna::domain_to_ascii(domain)
            .map_err(|_| bad("the domain is not a valid (international) domain name"))?;
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(bad("the domain needs a dot, such as example.org"));
        }
        let address = lettre::Address::new(local, &domain).map_err(|e| bad(&e.to_string()))?;
        Ok(SubscriberEmail(address.to_string()))
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

/// The parts of a sign-up as typed (CLI flags, a CSV row), checked
/// against the config.
pub struct Choice<'a> {
    pub email: &'a str,
    /// Theme slugs separated by `,` or `;`.
    pub themes: &'a str,
    /// Empty for the site's language.
    pub language: &'a str,
    /// Empty for the first digest.
    pub digest: &'a str,
}

/// What is wrong with a choice: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Choice<'_> {
    /// Parses every part; the first problem found is returned.
    pub fn parse(
        &self,
        config: &Config,
        status: Status,
        consent_source: &str,
    ) -> Result<NewSubscriber, ChoiceError> {
        let err = |field, message: String| ChoiceError { field, message };
        let email = SubscriberEmail::parse(self.email).map_err(|e| err("email", e))?;
        let digest = match self.digest.trim() {
            "" => config.digest(None),
            id => config.digest(Some(id)),
        }
        .ok_or_else(|| {
            let known: Vec<&str> = config.digests.iter().map(|d| d.id.as_str()).collect();
            if known.is_empty() {
                err(
                    "digest",
                    "no [[digests]] in config.toml: add one before adding subscribers".into(),
                )
            } else {
                err(
                    "digest",
                    format!(
                        "unknown digest `{}`; expected one of: {}",
                        self.digest.trim(),
                        known.join(", ")
                    ),
                )
            }
        })?;
        let themes = parse_themes(config, self.themes).map_err(|e| err("themes", e))?;
        let language =
            parse_language(config, digest, self.language).map_err(|e| err("language", e))?;
        Ok(NewSubscriber {
            email,
            status,
            themes,
            language,
            digest: digest.id.clone(),
            consent_source: consent_source.to_owned(),
        })
    }
}

/// Theme slugs separated by `,` or `;`, each configured; order kept,
/// repeats dropped; at least one.
pub fn parse_themes(config: &Config, text: &str) -> Result<Vec<ThemeSlug>, String> {
    let mut themes: Vec<ThemeSlug> = Vec::new();
    for name in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let slug = ThemeSlug::parse(name)
            .ok()
            .filter(|s| config.theme(s).is_some())
            .ok_or_else(|| {
                let known: Vec<&str> = config.themes.iter().map(|t| t.slug.as_str()).collect();
                format!(
                    "unknown theme `{name}`; expected one of: {}",
                    known.join(", ")
                )
            })?;
        if !themes.contains(&slug) {
            themes.push(slug);
        }
    }
    if themes.is_empty() {
        return Err("no themes: choose at least one".into());
    }
    Ok(themes)
}

/// A language the digest can be sent in; empty means the site's.
pub fn parse_language(config: &Config, digest: &Digest, text: &str) -> Result<Language, String> {
    let text = text.trim();
    let site = config.site.language.as_str();
    let wanted = if text.is_empty() { site } else { text };
    let allowed = digest.languages(site);
    if allowed.iter().any(|l| l == wanted) {
        Language::parse(wanted)
    } else {
        Err(format!(
            "unknown language `{wanted}`; the digest `{}` is written in: {}",
            digest.id,
            allowed.join(", ")
        ))
    }
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
    fn statuses_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("gone".parse::<Status>().is_err());
    }
}
