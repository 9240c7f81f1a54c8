//! Subscribers as operators give them: the parts of a sign-up typed on the
//! command line or read from a CSV row, checked against the config
//! ([`Choice`]), and import and export ([`io`]). The types are in
//! [`crate::model`]; storage in `store::subscribers`.

pub mod io;

use std::fmt;

use crate::config::{Config, Digest};
use crate::model::{Language, NewSubscriber, Status, SubscriberEmail, ThemeSlug};

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
        let email = SubscriberEmail::parse(self.email).map_err(|e| {
            let typed = self.email.trim();
            if typed.is_empty() {
                err("email", e)
            } else {
                err(
                    "email",
                    format!("`{}` is {e}", crate::model::problem::printable(typed)),
                )
            }
        })?;
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
