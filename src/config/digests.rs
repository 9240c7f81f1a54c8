//! `[[digests]]`: the periodic emails, each with its schedule, title and
//! subject in the languages its subscribers may choose.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::Localized;
use super::spans::{Checks, Context};
use crate::schedule::CronSchedule;

/// One `[[digests]]` table.
#[derive(Debug, Clone)]
pub struct Digest {
    /// `[a-z0-9-]+`, unique.
    pub id: String,
    pub title: Localized,
    /// When the service (`tidings run`, a later version) sends it, read in
    /// `[site] timezone`.
    pub schedule: CronSchedule,
    /// Tera template text per language, with `lead` (the lead story's
    /// title), `count` (the reader's new stories), `themes` (their themes'
    /// titles), `period`, `site` and `digest` (the titles). Default:
    /// [`DEFAULT_SUBJECT`].
    pub subject: Localized,
    /// Default true: no email to a subscriber with nothing new.
    pub skip_if_empty: bool,
    /// Default 10.
    pub max_stories_per_theme: usize,
}

impl Digest {
    /// The languages this digest can be sent in: those its title has a
    /// text for (all the site's supported ones when it has one text).
    pub fn languages(&self, site_language: &str) -> Vec<String> {
        let mut langs: Vec<String> = self.title.languages().map(str::to_owned).collect();
        if langs.is_empty() {
            langs = vec![site_language.to_owned(), "sv".into(), "en".into()];
            langs.dedup();
        }
        langs
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDigest {
    id: String,
    title: Localized,
    #[serde(default = "default_schedule")]
    schedule: String,
    subject: Option<Localized>,
    #[serde(default = "default_true")]
    skip_if_empty: bool,
    #[serde(default = "default_max_stories")]
    max_stories_per_theme: i64,
}
pub(super) const DIGEST_KEYS: &[&str] = &[
    "id",
    "title",
    "schedule",
    "subject",
    "skip_if_empty",
    "max_stories_per_theme",
];

/// The subject when a digest sets none: the lead story's title first (what
/// makes a reader open it), then the digest and the period.
pub const DEFAULT_SUBJECT: &str = "{% if lead %}{{ lead }} | {% endif %}{{ digest }} {{ period }}";

fn default_schedule() -> String {
    "0 8 1 * *".into()
}
fn default_true() -> bool {
    true
}
fn default_max_stories() -> i64 {
    10
}

/// The digests whose id is valid and unique, in config order. Each needs
/// a title in `site_language` (when `[site]` could be read).
pub(super) fn validate(
    cx: &mut Context,
    raw: Vec<(usize, RawDigest, Spanned<DeValue<'_>>)>,
    site_language: Option<&str>,
) -> Vec<Digest> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, raw, value) in raw {
        let key = format!("digests[{i}]");
        let mut t = Checks::new(cx, &key, &value);
        out.extend(validate_digest(&mut t, raw, &mut seen, site_language));
    }
    out
}

/// One digest; its id is added to `seen`. The first wrong id, count or
/// schedule ends its checks.
fn validate_digest(
    t: &mut Checks,
    raw: RawDigest,
    seen: &mut HashSet<String>,
    site_language: Option<&str>,
) -> Option<Digest> {
    if crate::model::ThemeSlug::parse(&raw.id).is_err() {
        t.fail(
            "id",
            format!("`{}` is not a valid digest id: expected lowercase letters, digits and hyphens, such as \"monthly\"", raw.id),
        );
        return None;
    }
    if !seen.insert(raw.id.clone()) {
        t.fail(
            "id",
            format!(
                "duplicate digest id `{}`: each digest needs its own id",
                raw.id
            ),
        );
        return None;
    }
    let max_stories_per_theme =
        t.range("max_stories_per_theme", raw.max_stories_per_theme, 1, 1000);
    if !t.ok {
        return None;
    }
    if let Some(lang) = site_language
        && !raw.title.has(lang)
    {
        t.fail(
            "title",
            format!("missing a title in `{lang}`, the site's language ([site] language)"),
        );
    }
    let schedule = t.check("schedule", CronSchedule::parse(&raw.schedule))?;
    let subject = raw
        .subject
        .unwrap_or_else(|| raw.title.map(|_| DEFAULT_SUBJECT.to_owned()));
    Some(Digest {
        id: raw.id,
        title: raw.title,
        schedule,
        subject,
        skip_if_empty: raw.skip_if_empty,
        max_stories_per_theme: max_stories_per_theme as usize,
    })
}
