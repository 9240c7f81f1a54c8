//! `[[sources]]`: where stories come from. `kind = "directory"` reads
//! Markdown files with TOML front matter from a folder; the remote kinds,
//! `wordpress` (a WordPress site's REST API) and `feed` (an upstream RSS,
//! Atom or JSON Feed), are polled over HTTP on the ingest schedule or on
//! their own. Each table is read by its kind, then checked against the
//! site's themes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::Theme;
use super::env::DEFAULT_HTTP_BACKOFF;
use super::spans::{Checks, Context};
use crate::model::{Language, ThemeSlug};
use crate::schedule::CronSchedule;

/// One `[[sources]]` table.
#[derive(Debug, Clone)]
pub enum Source {
    Directory(DirectorySource),
    WordPress(WordPressSource),
    Feed(FeedSource),
}

/// `kind = "directory"`: Markdown files with TOML front matter.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    /// As written in config.toml, for messages and the store's source key.
    pub path_as_written: String,
    /// Resolved against the config file's folder.
    pub path: PathBuf,
    /// Where each story lives, with `{slug}`, `{year}`, `{month}`, `{day}`
    /// and `{language}` placeholders; relative to `base_url` unless absolute.
    pub url: String,
}

/// `kind = "wordpress"`.
#[derive(Debug, Clone)]
pub struct WordPressSource {
    /// The site's address; posts are read from `<base_url>/wp-json/wp/v2/posts`.
    pub base_url: Url,
    pub remote: Remote,
}

/// `kind = "feed"`.
#[derive(Debug, Clone)]
pub struct FeedSource {
    /// The feed's address as configured (a permanent redirect is followed
    /// and remembered in the store, not here).
    pub url: Url,
    pub remote: Remote,
}

/// What every remote source has.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Themes given to every story of the source.
    pub themes: Vec<ThemeSlug>,
    /// Upstream categories (by slug or name) to themes.
    pub categories: BTreeMap<String, ThemeSlug>,
    /// Upstream tags (by slug or name) to themes (WordPress only).
    pub tags: BTreeMap<String, ThemeSlug>,
    /// Its own schedule; `None` polls on `[schedule] ingest`.
    pub schedule: Option<CronSchedule>,
    /// The language of its stories when upstream does not say.
    pub language: Option<Language>,
    /// Per HTTP request, connecting to the last byte.
    pub timeout: Duration,
    /// The largest answer read; a larger one is refused.
    pub max_bytes: u64,
    /// The pause after a failed try, doubled after each: 1 s, or
    /// `TIDINGS_HTTP_BACKOFF_MS` (tests shorten it; operators have no
    /// reason to), set by [`Config::with_environment`](super::Config::with_environment).
    pub backoff: Duration,
}

impl Source {
    /// A stable name for the source, stored with each of its stories.
    pub fn key(&self) -> String {
        match self {
            Source::Directory(d) => format!("directory:{}", d.path_as_written),
            Source::WordPress(w) => format!("wordpress:{}", w.base_url),
            Source::Feed(f) => format!("feed:{}", f.url),
        }
    }

    /// Polled over HTTP (wordpress, feed).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Source::Directory(_))
    }

    /// The source's own schedule, when it has one (else it is polled on
    /// `[schedule] ingest`).
    pub fn schedule(&self) -> Option<&CronSchedule> {
        self.remote().and_then(|r| r.schedule.as_ref())
    }

    /// What a remote source has; `None` for a directory.
    pub fn remote(&self) -> Option<&Remote> {
        match self {
            Source::Directory(_) => None,
            Source::WordPress(w) => Some(&w.remote),
            Source::Feed(f) => Some(&f.remote),
        }
    }

    pub(super) fn remote_mut(&mut self) -> Option<&mut Remote> {
        match self {
            Source::Directory(_) => None,
            Source::WordPress(w) => Some(&mut w.remote),
            Source::Feed(f) => Some(&mut f.remote),
        }
    }
}

impl Remote {
    /// The themes a story with these upstream terms gets: the source's own,
    /// then each mapped term, in order and without repeats. Terms match the
    /// map's keys by slug or name, ignoring case.
    pub fn themes_for<'a>(
        &self,
        categories: impl IntoIterator<Item = &'a str>,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ThemeSlug> {
        let mut out = self.themes.clone();
        let lookup = |map: &BTreeMap<String, ThemeSlug>, term: &str| {
            map.iter()
                .find(|(k, _)| k.to_lowercase() == term.to_lowercase())
                .map(|(_, v)| v.clone())
        };
        let mapped = categories
            .into_iter()
            .filter_map(|c| lookup(&self.categories, c))
            .chain(tags.into_iter().filter_map(|t| lookup(&self.tags, t)))
            .collect::<Vec<_>>();
        for t in mapped {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Reading: each table by its kind.

/// One `[[sources]]` table as read, before validation.
pub(super) enum RawSource {
    Directory(RawDirectorySource),
    Remote(RawRemoteSource),
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDirectorySource {
    #[allow(dead_code)]
    kind: String,
    path: String,
    #[serde(default = "default_story_url")]
    url: String,
}
const DIRECTORY_KEYS: &[&str] = &["kind", "path", "url"];

fn default_story_url() -> String {
    "/{slug}/".into()
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRemoteSource {
    kind: String,
    base_url: Option<String>,
    url: Option<String>,
    #[serde(default)]
    themes: Vec<String>,
    #[serde(default)]
    themes_from: RawThemesFrom,
    schedule: Option<String>,
    language: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: i64,
    #[serde(default = "default_max_size_mb")]
    max_size_mb: i64,
}

#[derive(Debug, Default, Deserialize)]
struct RawThemesFrom {
    #[serde(default)]
    categories: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

const WORDPRESS_KEYS: &[&str] = &[
    "kind",
    "base_url",
    "themes",
    "themes_from",
    "schedule",
    "language",
    "timeout",
    "max_size_mb",
];
const FEED_KEYS: &[&str] = &[
    "kind",
    "url",
    "themes",
    "themes_from",
    "schedule",
    "language",
    "timeout",
    "max_size_mb",
];
const SOURCE_KINDS: &[&str] = &["directory", "wordpress", "feed"];

fn default_timeout() -> i64 {
    30
}
fn default_max_size_mb() -> i64 {
    10
}

/// Reads the table `value` (at `key`) by its `kind`, with that kind's keys.
pub(super) fn read<'i>(
    cx: &mut Context,
    key: &str,
    value: &'i Spanned<DeValue<'i>>,
) -> Option<RawSource> {
    let kind = value.get_ref().get("kind");
    match kind.map(|k| (k.get_ref().as_str(), k.span())) {
        Some((Some("directory"), _)) => cx
            .section::<RawDirectorySource>(key, value, DIRECTORY_KEYS)
            .map(RawSource::Directory),
        Some((Some("wordpress"), _)) => cx
            .section::<RawRemoteSource>(key, value, WORDPRESS_KEYS)
            .map(RawSource::Remote),
        Some((Some("feed"), _)) => cx
            .section::<RawRemoteSource>(key, value, FEED_KEYS)
            .map(RawSource::Remote),
        Some((Some(other), span)) => {
            cx.problem(
                &format!("{key}.kind"),
                Some(span),
                format!(
                    "unknown source kind `{other}`; expected one of: {}",
                    SOURCE_KINDS.join(", ")
                ),
            );
            None
        }
        Some((None, span)) => {
            cx.problem(&format!("{key}.kind"), Some(span), "expected a string");
            None
        }
        None => {
            cx.problem(
                key,
                Some(value.span()),
                format!(
                    "missing field `kind`; expected one of: {}",
                    SOURCE_KINDS.join(", ")
                ),
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Validation.

/// The sources in config order. Directory paths resolve against `root`;
/// remote sources may name only the valid `themes`, and each is there once.
pub(super) fn validate(
    cx: &mut Context,
    raw: Vec<(usize, RawSource, Spanned<DeValue<'_>>)>,
    themes: &[Theme],
    root: &Path,
) -> Vec<Source> {
    let themes: Vec<ThemeSlug> = themes.iter().map(|t| t.slug.clone()).collect();
    let mut sources = Vec::new();
    // The key of each remote source, with its index.
    let mut remote_keys: HashMap<String, usize> = HashMap::new();
    for (i, raw, value) in raw {
        let key = format!("sources[{i}]");
        let raw = match raw {
            RawSource::Directory(raw) => {
                sources.push(validate_directory(cx, &key, raw, &value, root));
                continue;
            }
            RawSource::Remote(raw) => raw,
        };
        let Some(source) = validate_remote(cx, &key, raw, &value, &themes) else {
            continue;
        };
        if let Some(first) = remote_keys.get(&source.key()) {
            cx.problem(
                &key,
                Some(value.span()),
                format!(
                    "the same source as sources[{first}] ({}); each source once",
                    source.key()
                ),
            );
            continue;
        }
        remote_keys.insert(source.key(), i);
        sources.push(source);
    }
    sources
}

/// The problem of a config.toml without `[[sources]]`.
pub(super) fn missing(cx: &mut Context) {
    cx.problem(
        "sources",
        Some(0..0),
        "no [[sources]]: add one such as\n  [[sources]]\n  kind = \"directory\"\n  path = \"content/stories\"",
    );
}

/// A directory source; its problems (a path that is no folder, a bad URL
/// pattern) are reported, and the source is kept for the others' sake.
fn validate_directory(
    cx: &mut Context,
    key: &str,
    raw: RawDirectorySource,
    value: &Spanned<DeValue<'_>>,
    root: &Path,
) -> Source {
    let mut t = Checks::new(cx, key, value);
    let path = root.join(&raw.path);
    if !path.is_dir() {
        t.fail(
            "path",
            format!(
                "`{}` is not a directory (resolved to {}); expected the folder of story files",
                raw.path,
                path.display()
            ),
        );
    }
    t.check("url", check_url_pattern(&raw.url));
    Source::Directory(DirectorySource {
        path_as_written: raw.path,
        path,
        url: raw.url,
    })
}

const URL_PLACEHOLDERS: &[&str] = &["slug", "year", "month", "day", "language"];

fn check_url_pattern(pattern: &str) -> Result<(), String> {
    if !pattern.contains("{slug}") {
        return Err(format!(
            "`{pattern}` has no {{slug}}: every story needs its own URL, such as \"/stories/{{slug}}/\""
        ));
    }
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("`{pattern}` has a `{{` without a closing `}}`"));
        };
        let name = &rest[start + 1..start + len];
        if !URL_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}`; expected one of: {}",
                URL_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

/// A `wordpress` or `feed` source, when all of it is right.
fn validate_remote(
    cx: &mut Context,
    key: &str,
    raw: RawRemoteSource,
    value: &Spanned<DeValue<'_>>,
    themes: &[ThemeSlug],
) -> Option<Source> {
    let wordpress = raw.kind == "wordpress";
    let mut t = Checks::new(cx, key, value);
    let url = remote_url(&mut t, &raw, wordpress);
    let remote = remote_settings(&mut t, raw, themes, wordpress);
    if !t.ok {
        return None;
    }
    let url = url?;
    Some(if wordpress {
        Source::WordPress(WordPressSource {
            base_url: url,
            remote,
        })
    } else {
        Source::Feed(FeedSource { url, remote })
    })
}

/// The address polled: `base_url` of a WordPress site, `url` of a feed.
fn remote_url(t: &mut Checks, raw: &RawRemoteSource, wordpress: bool) -> Option<Url> {
    let (url_key, text, what, example) = if wordpress {
        (
            "base_url",
            &raw.base_url,
            "WordPress site's address",
            "https://cms.example.org",
        )
    } else {
        (
            "url",
            &raw.url,
            "feed's address",
            "https://partner.example.org/feed.xml",
        )
    };
    let Some(text) = text else {
        t.fail_table(format!(
            "missing field `{url_key}`; expected the {what} such as \"{example}\""
        ));
        return None;
    };
    let checked = match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        Ok(_) => Err(format!("`{text}` is not an http(s) URL")),
        Err(e) => Err(format!("`{text}` is not a URL: {e}")),
    };
    t.check(url_key, checked)
}

/// Everything of a remote source but its address. Its problems are
/// recorded in `t`; the value means something only when `t.ok`.
fn remote_settings(
    t: &mut Checks,
    raw: RawRemoteSource,
    themes: &[ThemeSlug],
    wordpress: bool,
) -> Remote {
    let own = theme_list(t, themes, &raw.themes);
    let categories = theme_map(t, themes, "categories", &raw.themes_from.categories);
    let tags = theme_map(t, themes, "tags", &raw.themes_from.tags);
    if !wordpress && !tags.is_empty() {
        t.fail(
            "themes_from.tags",
            "a feed has only categories (RSS <category>, Atom <category>, JSON Feed tags); \
             map them under themes_from.categories",
        );
    }
    let schedule = t.optional("schedule", raw.schedule.as_deref(), CronSchedule::parse);
    let language = t.optional("language", raw.language.as_deref(), Language::parse);
    if !(1..=600).contains(&raw.timeout) {
        let message = format!(
            "{} is out of range; expected seconds from 1 to 600",
            raw.timeout
        );
        t.fail("timeout", message);
    }
    if !(1..=1024).contains(&raw.max_size_mb) {
        let message = format!(
            "{} is out of range; expected megabytes from 1 to 1024",
            raw.max_size_mb
        );
        t.fail("max_size_mb", message);
    }
    Remote {
        themes: own,
        categories,
        tags,
        schedule,
        language,
        timeout: Duration::from_secs(raw.timeout as u64),
        max_bytes: raw.max_size_mb as u64 * 1024 * 1024,
        backoff: DEFAULT_HTTP_BACKOFF,
    }
}

/// The theme `slug` names, when it is one of `themes`; else a problem
/// about `sub`.
fn theme(t: &mut Checks, themes: &[ThemeSlug], sub: &str, slug: &str) -> Option<ThemeSlug> {
    let checked = ThemeSlug::parse(slug).and_then(|theme| {
        if themes.contains(&theme) {
            return Ok(theme);
        }
        let known: Vec<&str> = themes.iter().map(ThemeSlug::as_str).collect();
        Err(format!(
            "no theme `{slug}` in [[themes]]; expected one of: {}",
            known.join(", ")
        ))
    });
    t.check(sub, checked)
}

/// `themes = [...]`: the themes every story of the source gets.
fn theme_list(t: &mut Checks, themes: &[ThemeSlug], raw: &[String]) -> Vec<ThemeSlug> {
    let mut out = Vec::new();
    for (i, slug) in raw.iter().enumerate() {
        out.extend(theme(t, themes, &format!("themes[{i}]"), slug));
    }
    out
}

/// `themes_from.<which>`: upstream terms to themes.
fn theme_map(
    t: &mut Checks,
    themes: &[ThemeSlug],
    which: &str,
    raw: &BTreeMap<String, String>,
) -> BTreeMap<String, ThemeSlug> {
    let mut out = BTreeMap::new();
    for (term, slug) in raw {
        let sub = format!("themes_from.{which}.{term}");
        if let Some(theme) = theme(t, themes, &sub, slug) {
            out.insert(term.clone(), theme);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_patterns_need_slug_and_known_placeholders() {
        assert!(check_url_pattern("/{year}/{slug}/").is_ok());
        assert!(check_url_pattern("/stories/").is_err());
        assert!(check_url_pattern("/{slug}/{nope}").is_err());
    }
}
