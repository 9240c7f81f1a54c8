//! The `Story` every source produces, and the small types parsed once at the
//! edge: [`StoryId`] and [`ThemeSlug`] (and [`super::Language`]).
//!
//! Past the sources, no code handles a raw string where one of these types
//! belongs; each has a private field and a `parse` constructor that says
//! what was expected.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Language;

/// Whether `s` is made of `[a-z0-9-]`, starts and ends with a letter or
/// digit, and is 1 to 100 characters long.
fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A theme's slug: `[a-z0-9-]+`, used in feed paths (`themes/<slug>/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThemeSlug(String);

impl ThemeSlug {
    pub fn parse(s: &str) -> Result<Self, String> {
        if is_slug(s) {
            Ok(ThemeSlug(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a valid theme slug: expected lowercase letters a-z, digits and \
                 hyphens, such as `agenda-2030`"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ThemeSlug {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ThemeSlug::parse(&s)
    }
}

impl From<ThemeSlug> for String {
    fn from(s: ThemeSlug) -> String {
        s.0
    }
}

impl fmt::Display for ThemeSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A story's identity. Derived from the slug when a story is first seen (or
/// given by the editor as `id`), stored, and never changed afterwards: feed
/// guids and digest editions hang on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoryId(String);

impl StoryId {
    /// Letters, digits, `-`, `_` and `.`; 1 to 200 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        StoryId::check(s)?;
        Ok(StoryId(s.to_owned()))
    }

    fn check(s: &str) -> Result<(), String> {
        let ok = !s.is_empty()
            && s.len() <= 200
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a valid story id: expected ASCII letters, digits, `-`, `_` or `.`"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StoryId {
    type Error = String;
    /// Without a copy: every stored id is read this way at each ingest.
    fn try_from(s: String) -> Result<Self, String> {
        StoryId::check(&s)?;
        Ok(StoryId(s))
    }
}

impl From<StoryId> for String {
    fn from(s: StoryId) -> String {
        s.0
    }
}

impl fmt::Display for StoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A story as a source delivers it: parsed, rendered to sanitized HTML with
/// absolute links, and ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    /// The id the editor gave, if any; otherwise the store assigns one.
    pub id: Option<StoryId>,
    pub slug: String,
    /// Absolute URL of the story on the site.
    pub url: String,
    pub title: String,
    /// Plain text.
    pub summary: String,
    /// Sanitized HTML with absolute URLs. Empty for a story whose body
    /// is rendered when shown (`body_source`) until it is.
    pub body_html: String,
    /// Where a story file's body comes from, when it is rendered on
    /// demand rather than stored: see [`BodySource`]. `None`: `body_html`
    /// is the body (remote sources).
    #[serde(default)]
    pub body_source: Option<BodySource>,
    pub language: Option<Language>,
    pub authors: Vec<String>,
    pub themes: Vec<ThemeSlug>,
    /// Absolute URL.
    pub image: Option<String>,
    pub image_alt: Option<String>,
    pub published: DateTime<Utc>,
    /// The editor's own `updated` time, if given.
    pub updated: Option<DateTime<Utc>>,
    /// The editor asked for it to lead the digest (`featured = true`).
    #[serde(default)]
    pub featured: bool,
    /// Where the story came from (a file path, a URL), for messages.
    pub origin: String,
    /// What the source knows of the item's version without reading it (a
    /// file's modification time and size), so an unchanged item need not
    /// be parsed again. Not part of the content.
    pub stamp: Option<String>,
}

/// A body rendered when a feed or an edition shows it, from the
/// Markdown of the story's file (its `origin`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodySource {
    /// SHA-256 of the Markdown body as read at ingest, in hex: what the
    /// story's content hash covers instead of the rendered body.
    pub hash: String,
    /// What the rendering in `body_html` was made from, when it holds one
    /// (a hash of the program, the site's address, the story's URL and
    /// `hash`); a rendering with another key is made again.
    #[serde(skip)]
    pub rendered: Option<String>,
    /// The Markdown as read at ingest; never stored.
    #[serde(skip)]
    pub markdown: Option<String>,
}

impl Story {
    /// A hash of everything a reader sees, so that a changed story can be
    /// told from an unchanged one without comparing fields one by one.
    /// Each field is length-prefixed, so no two stories hash alike by
    /// moving text from one field to the next.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        fn field(h: &mut Sha256, bytes: &[u8]) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        fn opt(h: &mut Sha256, s: Option<&str>) {
            match s {
                Some(s) => field(h, s.as_bytes()),
                None => h.update([0xff]),
            }
        }
        let mut h = Sha256::new();
        opt(&mut h, self.id.as_ref().map(StoryId::as_str));
        for text in [&self.slug, &self.url, &self.title, &self.summary] {
            field(&mut h, text.as_bytes());
        }
        // A body rendered on demand is known by its Markdown's hash; a
        // stored body by itself (so that stories stored before bodies were
        // rendered on demand keep their hash).
        match &self.body_source {
            Some(source) => field(&mut h, format!("markdown:{}", source.hash).as_bytes()),
            None => field(&mut h, self.body_html.as_bytes()),
        }
        opt(&mut h, self.language.as_ref().map(Language::as_str));
        field(&mut h, &(self.authors.len() as u64).to_le_bytes());
        for a in &self.authors {
            field(&mut h, a.as_bytes());
        }
        field(&mut h, &(self.themes.len() as u64).to_le_bytes());
        for t in &self.themes {
            field(&mut h, t.as_str().as_bytes());
        }
        opt(&mut h, self.image.as_deref());
        opt(&mut h, self.image_alt.as_deref());
        field(&mut h, self.published.to_rfc3339().as_bytes());
        opt(&mut h, self.updated.map(|u| u.to_rfc3339()).as_deref());
        // Only when set, so that stories stored before the flag existed
        // keep their hash (and are not taken for edited).
        if self.featured {
            field(&mut h, b"featured");
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_slugs_are_lowercase_ascii_with_hyphens() {
        assert!(ThemeSlug::parse("agenda-2030").is_ok());
        for bad in ["", "Agenda", "miljö", "a b", "-a", "a-", "a/b"] {
            assert!(ThemeSlug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn languages_are_loose_bcp47() {
        for good in ["sv", "en", "pt-BR", "zh-Hant"] {
            assert!(Language::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "S", "swedish", "sv_SE", "EN"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn story_ids_reject_spaces_and_slashes() {
        assert!(StoryId::parse("vaxjo-an-giang_2.1").is_ok());
        assert!(StoryId::parse("a b").is_err());
        assert!(StoryId::parse("a/b").is_err());
    }
}
