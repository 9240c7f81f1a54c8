//! `config.toml`: the operator's description of the site, its themes, its
//! sources, the feeds and the store.
//!
//! Loading happens in two steps. The file is parsed once into a spanned TOML
//! tree; each section (and each element of `[[themes]]` and `[[sources]]`)
//! is then deserialized on its own, so one bad section does not hide the
//! problems of the others. Unknown keys are collected with `serde_ignored`
//! rather than `deny_unknown_fields`, which would stop at the first one.
//! Finally [`validate`](RawConfig::validate) turns the raw strings into
//! typed values (`Url`, `Tz`, `ThemeSlug`, ...). Every problem carries the
//! file, line, column and key, and all of them are returned together.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use url::Url;

use crate::model::problem::{Problem, Problems};
use mail::{DIGEST_KEYS, MAIL_KEYS, RawDigest, RawMail};
pub use mail::{Digest, Dkim, Mail, Tls, Transport};

pub mod env;
mod mail;
mod service;
mod sources;
use crate::model::{Language, ThemeSlug};
use service::{HTTP_KEYS, RawHttp, RawSchedule, SCHEDULE_KEYS};
pub use service::{Http, Schedule};
use sources::{FEED_KEYS, RawRemoteSource, Remotes, WORDPRESS_KEYS};
pub use sources::{FeedSource, Remote, WordPressSource};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    /// The folder holding it; relative paths in the file are relative to it.
    pub root: PathBuf,
    pub site: Site,
    pub themes: Vec<Theme>,
    pub sources: Vec<Source>,
    pub feeds: Feeds,
    pub storage: Storage,
    /// `[mail]`, when the site sends email.
    pub mail: Option<Mail>,
    /// `[[digests]]`, in config order.
    pub digests: Vec<Digest>,
    /// `[schedule]`, for `tidings run`.
    pub schedule: Schedule,
    /// `[http]`, for `tidings run`.
    pub http: Http,
}

/// `[site]`.
#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    /// Absolute, with a path ending in `/`.
    pub base_url: Url,
    /// Default `sv`. Theme titles and feed languages follow it.
    pub language: Language,
    /// Default `UTC`. Dates without an offset are read in it.
    pub timezone: Tz,
    /// Default empty.
    pub description: String,
    /// Default empty.
    pub author: String,
}

/// One `[[themes]]` table.
#[derive(Debug, Clone)]
pub struct Theme {
    pub slug: ThemeSlug,
    pub title: Localized,
    /// Default empty.
    pub description: Localized,
}

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
    pub fn schedule(&self) -> Option<&crate::schedule::CronSchedule> {
        match self {
            Source::Directory(_) => None,
            Source::WordPress(w) => w.remote.schedule.as_ref(),
            Source::Feed(f) => f.remote.schedule.as_ref(),
        }
    }
}

/// `[feeds]`.
#[derive(Debug, Clone)]
pub struct Feeds {
    /// Default `feeds`, resolved against the config file's folder.
    pub dir: PathBuf,
    /// Default 50: the newest N stories in each feed.
    pub items: usize,
    /// Default true: full body as well as the summary.
    pub full_content: bool,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Default `sqlite://tidings.db`; a relative SQLite path is resolved
    /// against the config file's folder.
    pub url: StorageUrl,
}

#[derive(Clone, PartialEq, Eq)]
pub enum StorageUrl {
    Sqlite(PathBuf),
    /// `postgres://user[:password]@host[:port]/database[?…]`; the password
    /// may instead come from `PGPASSWORD`.
    Postgres(String),
}

impl fmt::Display for StorageUrl {
    /// The URL without its password, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StorageUrl::Postgres(url) => match Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://…"),
            },
        }
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUrl({self})")
    }
}

/// Text in several languages: `{ sv = "…", en = "…" }`, or one string for
/// all languages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Localized(BTreeMap<String, String>);

impl Localized {
    /// The text in `language`, else the first one there is (by language
    /// code), else the empty string.
    pub fn get(&self, language: &str) -> &str {
        self.0
            .get(language)
            .or_else(|| self.0.get(""))
            .or_else(|| self.0.values().next())
            .map_or("", String::as_str)
    }

    pub fn has(&self, language: &str) -> bool {
        self.0.contains_key(language) || self.0.contains_key("")
    }

    /// The languages given explicitly (not the one-string-for-all form).
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str).filter(|k| !k.is_empty())
    }

    /// The same texts, each changed by `f`.
    pub fn map(&self, f: impl Fn(&str) -> String) -> Localized {
        Localized(self.0.iter().map(|(k, v)| (k.clone(), f(v))).collect())
    }
}

impl<'de> Deserialize<'de> for Localized {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Localized;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a table of strings by language such as { sv = \"…\", en = \"…\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Localized, E> {
                Ok(Localized(BTreeMap::from([(
                    String::new(),
                    crate::model::text::clean_line(s),
                )])))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Localized, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    Language::parse(&k).map_err(de::Error::custom)?;
                    out.insert(k, crate::model::text::clean_line(&v));
                }
                Ok(Localized(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Raw sections, as serde sees them.

#[derive(Debug, Deserialize)]
struct RawSite {
    title: String,
    base_url: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    author: String,
}
const SITE_KEYS: &[&str] = &[
    "title",
    "base_url",
    "language",
    "timezone",
    "description",
    "author",
];

fn default_language() -> String {
    "sv".into()
}
fn default_timezone() -> String {
    "UTC".into()
}

#[derive(Debug, Deserialize)]
struct RawTheme {
    slug: String,
    title: Localized,
    #[serde(default)]
    description: Localized,
}
const THEME_KEYS: &[&str] = &["slug", "title", "description"];

#[derive(Debug, Deserialize)]
struct RawDirectorySource {
    #[allow(dead_code)]
    kind: String,
    path: String,
    #[serde(default = "default_story_url")]
    url: String,
}
const DIRECTORY_KEYS: &[&str] = &["kind", "path", "url"];
const SOURCE_KINDS: &[&str] = &["directory", "wordpress", "feed"];

/// One `[[sources]]` table as read, before validation.
enum RawSource {
    Directory(RawDirectorySource),
    Remote(RawRemoteSource),
}

fn default_story_url() -> String {
    "/{slug}/".into()
}

#[derive(Debug, Deserialize)]
struct RawFeeds {
    #[serde(default = "default_feeds_dir")]
    dir: String,
    #[serde(default = "default_items")]
    items: i64,
    #[serde(default = "default_true")]
    full_content: bool,
}
const FEEDS_KEYS: &[&str] = &["dir", "items", "full_content"];

impl Default for RawFeeds {
    fn default() -> Self {
        RawFeeds {
            dir: default_feeds_dir(),
            items: default_items(),
            full_content: true,
        }
    }
}
fn default_feeds_dir() -> String {
    "feeds".into()
}
fn default_items() -> i64 {
    50
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct RawStorage {
    #[serde(default = "default_storage_url")]
    url: String,
}
const STORAGE_KEYS: &[&str] = &["url"];

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            url: default_storage_url(),
        }
    }
}
fn default_storage_url() -> String {
    "sqlite://tidings.db".into()
}

const SECTIONS: &[&str] = &[
    "site", "themes", "sources", "feeds", "storage", "mail", "digests", "schedule", "http",
];

// ---------------------------------------------------------------------------
// Loading.

impl Config {
    /// Reads, parses and validates `path`, returning every problem found.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                return Err(Problems(vec![Problem::new(
                    path,
                    format!("cannot read the config file: {}", io_reason(&e)),
                )]));
            }
        };
        Config::from_str(path, &text)
    }

    /// Parses and validates config text as if read from `path`.
    pub fn from_str(path: &Path, text: &str) -> Result<Config, Problems> {
        let mut cx = Context {
            file: path.to_path_buf(),
            text,
            problems: Problems::default(),
        };
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                cx.problems.push(
                    Problem::new(path, format!("invalid TOML: {}", e.message().trim()))
                        .at_span(text, e.span()),
                );
                return Err(cx.problems);
            }
        };
        let raw = cx.read_sections(root.get_ref());
        let config = raw.validate(&mut cx);
        if cx.problems.is_empty() {
            Ok(config.expect("validation without problems yields a config"))
        } else {
            Err(cx.problems.sorted())
        }
    }

    /// The digest with `id`, or the first one when `id` is `None`.
    pub fn digest(&self, id: Option<&str>) -> Option<&Digest> {
        match id {
            Some(id) => self.digests.iter().find(|d| d.id == id),
            None => self.digests.first(),
        }
    }

    /// Where the service is reached from outside: `[http] public_url`,
    /// else `[site] base_url`. Links to its pages start with it.
    pub fn public_url(&self) -> &Url {
        self.http.public_url.as_ref().unwrap_or(&self.site.base_url)
    }

    /// The theme with `slug`, if configured.
    pub fn theme(&self, slug: &ThemeSlug) -> Option<&Theme> {
        self.themes.iter().find(|t| &t.slug == slug)
    }
}

fn io_reason(e: &std::io::Error) -> String {
    // fs_err's message repeats the path; the kind is what the operator needs.
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

struct Context<'a> {
    file: PathBuf,
    text: &'a str,
    problems: Problems,
}

/// Raw sections, each `None` when it was absent or could not be read.
struct RawConfig<'i> {
    root: Option<&'i DeTable<'i>>,
    site: Option<(RawSite, Spanned<DeValue<'i>>)>,
    themes: Vec<(usize, RawTheme, Spanned<DeValue<'i>>)>,
    sources: Vec<(usize, RawSource, Spanned<DeValue<'i>>)>,
    feeds: Option<(RawFeeds, Option<Spanned<DeValue<'i>>>)>,
    storage: Option<(RawStorage, Option<Spanned<DeValue<'i>>>)>,
    mail: Option<(RawMail, Spanned<DeValue<'i>>)>,
    digests: Vec<(usize, RawDigest, Spanned<DeValue<'i>>)>,
    schedule: Option<(RawSchedule, Spanned<DeValue<'i>>)>,
    http: Option<(RawHttp, Spanned<DeValue<'i>>)>,
    any_section_failed: bool,
}

impl<'a> Context<'a> {
    fn problem(&mut self, key: &str, span: Option<Range<usize>>, message: impl Into<String>) {
        let mut p = Problem::new(&self.file, message).at_span(self.text, span);
        if !key.is_empty() {
            p = p.key(key);
        }
        self.problems.push(p);
    }

    fn read_sections<'i>(&mut self, root: &'i DeTable<'i>) -> RawConfig<'i> {
        let mut raw = RawConfig {
            root: Some(root),
            site: None,
            themes: Vec::new(),
            sources: Vec::new(),
            feeds: Some((RawFeeds::default(), None)),
            storage: Some((RawStorage::default(), None)),
            mail: None,
            digests: Vec::new(),
            schedule: None,
            http: None,
            any_section_failed: false,
        };
        for (key, value) in root {
            let name = key.get_ref().as_ref();
            match name {
                "site" => {
                    raw.site = self
                        .section::<RawSite>("site", value, SITE_KEYS)
                        .map(|s| (s, value.clone()));
                    raw.any_section_failed |= raw.site.is_none();
                }
                "feeds" => {
                    raw.feeds = self
                        .section::<RawFeeds>("feeds", value, FEEDS_KEYS)
                        .map(|s| (s, Some(value.clone())));
                    raw.any_section_failed |= raw.feeds.is_none();
                }
                "storage" => {
                    raw.storage = self
                        .section::<RawStorage>("storage", value, STORAGE_KEYS)
                        .map(|s| (s, Some(value.clone())));
                    raw.any_section_failed |= raw.storage.is_none();
                }
                "schedule" => {
                    raw.schedule = self
                        .section::<RawSchedule>("schedule", value, SCHEDULE_KEYS)
                        .map(|s| (s, value.clone()));
                    raw.any_section_failed |= raw.schedule.is_none();
                }
                "http" => {
                    raw.http = self
                        .section::<RawHttp>("http", value, HTTP_KEYS)
                        .map(|s| (s, value.clone()));
                    raw.any_section_failed |= raw.http.is_none();
                }
                "mail" => {
                    raw.mail = self
                        .section::<RawMail>("mail", value, MAIL_KEYS)
                        .map(|s| (s, value.clone()));
                    raw.any_section_failed |= raw.mail.is_none();
                }
                "digests" => {
                    for (i, item) in self
                        .array_of_tables("digests", value)
                        .into_iter()
                        .enumerate()
                    {
                        let key = format!("digests[{i}]");
                        match self.section::<RawDigest>(&key, item, DIGEST_KEYS) {
                            Some(d) => raw.digests.push((i, d, item.clone())),
                            None => raw.any_section_failed = true,
                        }
                    }
                }
                "themes" => {
                    for (i, item) in self
                        .array_of_tables("themes", value)
                        .into_iter()
                        .enumerate()
                    {
                        let key = format!("themes[{i}]");
                        match self.section::<RawTheme>(&key, item, THEME_KEYS) {
                            Some(t) => raw.themes.push((i, t, item.clone())),
                            None => raw.any_section_failed = true,
                        }
                    }
                }
                "sources" => {
                    for (i, item) in self
                        .array_of_tables("sources", value)
                        .into_iter()
                        .enumerate()
                    {
                        let key = format!("sources[{i}]");
                        match self.source(&key, item) {
                            Some(s) => raw.sources.push((i, s, item.clone())),
                            None => raw.any_section_failed = true,
                        }
                    }
                }
                other => {
                    let hint = suggestion(other, SECTIONS);
                    self.problem(
                        other,
                        Some(key.span()),
                        format!(
                            "unknown section{hint}; expected one of: {}",
                            SECTIONS.join(", ")
                        ),
                    );
                }
            }
        }
        raw
    }

    fn array_of_tables<'i>(
        &mut self,
        key: &str,
        value: &'i Spanned<DeValue<'i>>,
    ) -> Vec<&'i Spanned<DeValue<'i>>> {
        match value.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            other => {
                self.problem(
                    key,
                    Some(value.span()),
                    format!(
                        "expected an array of tables ([[{key}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn source<'i>(&mut self, key: &str, value: &'i Spanned<DeValue<'i>>) -> Option<RawSource> {
        let kind = value.get_ref().get("kind");
        match kind.map(|k| (k.get_ref().as_str(), k.span())) {
            Some((Some("directory"), _)) => self
                .section::<RawDirectorySource>(key, value, DIRECTORY_KEYS)
                .map(RawSource::Directory),
            Some((Some("wordpress"), _)) => self
                .section::<RawRemoteSource>(key, value, WORDPRESS_KEYS)
                .map(RawSource::Remote),
            Some((Some("feed"), _)) => self
                .section::<RawRemoteSource>(key, value, FEED_KEYS)
                .map(RawSource::Remote),
            Some((Some(other), span)) => {
                self.problem(
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
                self.problem(&format!("{key}.kind"), Some(span), "expected a string");
                None
            }
            None => {
                self.problem(
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

    /// Deserializes one table, reporting unknown keys and the first type
    /// error with their spans. Returns `None` when the table is unusable.
    fn section<'i, T: de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: &'i Spanned<DeValue<'i>>,
        known: &[&str],
    ) -> Option<T> {
        if !value.get_ref().is_table() {
            self.problem(
                key,
                Some(value.span()),
                format!("expected a table, found {}", value.get_ref().type_str()),
            );
            return None;
        }
        // Deserialize, and after each error drop the key that caused it
        // and go again, so every bad key of the table is reported at once.
        let mut current = value.clone();
        let mut removed: Vec<String> = Vec::new();
        let (result, unknown) = loop {
            let mut unknown = Vec::new();
            let de = ValueDeserializer::from(current.clone());
            let result: Result<T, _> = serde_ignored::deserialize(de, |path| {
                unknown.push(path_segments(&path));
            });
            let e = match result {
                Ok(v) => break (Some(v), unknown),
                Err(e) => e,
            };
            // "missing field" for a key dropped earlier repeats a problem.
            let repeat = missing_field(e.message()).is_some_and(|f| removed.iter().any(|r| r == f));
            if !repeat {
                let span = e.span();
                let inner = span
                    .clone()
                    .map(|s| innermost_key(value, &s))
                    .unwrap_or_default();
                self.problem(&join_key(key, &inner), span, clean_message(e.message()));
            }
            let top = e.span().and_then(|s| top_key(&current, &s));
            match (top, current.get_mut()) {
                (Some(top), DeValue::Table(table)) if !repeat && removed.len() < 64 => {
                    table.remove(top.as_str());
                    removed.push(top);
                }
                _ => break (None, unknown),
            }
        };
        for path in unknown {
            let (span, dotted) = locate(value, &path);
            let last = path.last().cloned().unwrap_or_default();
            let (hint, expected) = if path.len() == 1 {
                (
                    suggestion(&last, known),
                    format!("; expected one of: {}", known.join(", ")),
                )
            } else {
                (String::new(), String::new())
            };
            self.problem(
                &join_key(key, &dotted),
                span,
                format!("unknown key{hint}{expected}"),
            );
        }
        if removed.is_empty() { result } else { None }
    }
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("missing field `")?
        .split('`')
        .next()
}

/// The key of `table` whose key or value holds `span`.
fn top_key(table: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    let DeValue::Table(t) = table.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, v)| {
            let vs = v.span();
            (vs.start <= span.start && span.end <= vs.end) || k.span() == *span
        })
        .map(|(k, _)| k.get_ref().to_string())
}

fn clean_message(message: &str) -> String {
    let m = message.trim();
    // serde says "invalid type: integer `5`, expected a string"; keep it.
    m.to_string()
}

fn join_key(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => rest.to_string(),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

fn path_segments(path: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path as P;
    let mut out = match path {
        P::Root => return Vec::new(),
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => path_segments(parent),
    };
    match path {
        P::Seq { index, .. } => out.push(index.to_string()),
        P::Map { key, .. } => out.push(key.clone()),
        _ => {}
    }
    out
}

/// The span of the key at `path` under `value`, and the path as dotted text.
fn locate(value: &Spanned<DeValue<'_>>, path: &[String]) -> (Option<Range<usize>>, String) {
    let mut current = value;
    let mut span = Some(value.span());
    let mut dotted = String::new();
    for seg in path {
        match current.get_ref() {
            DeValue::Table(t) => {
                if !dotted.is_empty() {
                    dotted.push('.');
                }
                dotted.push_str(seg);
                match t.get_key_value(seg.as_str()) {
                    Some((k, v)) => {
                        span = Some(k.span());
                        current = v;
                    }
                    None => break,
                }
            }
            DeValue::Array(a) => {
                dotted.push_str(&format!("[{seg}]"));
                match seg.parse::<usize>().ok().and_then(|i| a.get(i)) {
                    Some(v) => {
                        span = Some(v.span());
                        current = v;
                    }
                    None => break,
                }
            }
            _ => break,
        }
    }
    (span, dotted)
}

/// The dotted path of the deepest key whose value contains `span`.
fn innermost_key(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> String {
    let mut path = String::new();
    let mut current = value;
    'walk: loop {
        match current.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t {
                    let vs = v.span();
                    let ks = k.span();
                    if (vs.start <= span.start && span.end <= vs.end) || ks == *span {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k.get_ref());
                        current = v;
                        continue 'walk;
                    }
                }
                break;
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let vs = v.span();
                    if vs.start <= span.start && span.end <= vs.end {
                        path.push_str(&format!("[{i}]"));
                        current = v;
                        continue 'walk;
                    }
                }
                break;
            }
            _ => break,
        }
    }
    path
}

/// " (did you mean `x`?)" when a known name is close to `name`.
fn suggestion(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn span_of(value: &Spanned<DeValue<'_>>, key: &str) -> Option<Range<usize>> {
    value.get_ref().get(key).map(|v| v.span())
}

impl<'i> RawConfig<'i> {
    fn validate(self, cx: &mut Context) -> Option<Config> {
        let root_dir = cx
            .file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let site = match self.site {
            Some((raw, value)) => validate_site(cx, raw, &value),
            None => {
                if self.root.is_some_and(|r| !r.contains_key("site")) {
                    cx.problem(
                        "site",
                        Some(0..0),
                        "missing section [site]: it needs at least `title` and `base_url`, \
                         such as base_url = \"https://example.org\"",
                    );
                }
                None
            }
        };
        let language = site.as_ref().map(|s| s.language.as_str().to_owned());

        let mut themes = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw, value) in self.themes {
            let key = format!("themes[{i}]");
            let slug = match ThemeSlug::parse(&raw.slug) {
                Ok(slug) => slug,
                Err(e) => {
                    cx.problem(&format!("{key}.slug"), span_of(&value, "slug"), e);
                    continue;
                }
            };
            let slug_span = span_of(&value, "slug");
            let line = slug_span
                .as_ref()
                .map(|s| crate::model::problem::line_column(cx.text, s.start).0)
                .unwrap_or(0);
            if let Some(first) = seen.get(slug.as_str()) {
                cx.problem(
                    &format!("{key}.slug"),
                    slug_span,
                    format!(
                        "duplicate theme slug `{slug}`, already used on line {first}; \
                         each theme needs its own slug"
                    ),
                );
                continue;
            }
            seen.insert(slug.as_str().to_owned(), line);
            if let Some(lang) = &language
                && !raw.title.has(lang)
            {
                cx.problem(
                    &format!("{key}.title"),
                    span_of(&value, "title"),
                    format!("missing a title in `{lang}`, the site's language ([site] language)"),
                );
            }
            themes.push(Theme {
                slug,
                title: raw.title,
                description: raw.description,
            });
        }

        let mut sources = Vec::new();
        let theme_slugs: Vec<ThemeSlug> = themes.iter().map(|t| t.slug.clone()).collect();
        let mut remote_keys: HashMap<String, usize> = HashMap::new();
        for (i, raw, value) in self.sources {
            let key = format!("sources[{i}]");
            let raw = match raw {
                RawSource::Directory(raw) => raw,
                RawSource::Remote(raw) => {
                    let source = match sources::validate_remote(cx, &key, raw, &value, &theme_slugs)
                    {
                        Some(Remotes::WordPress(w)) => Source::WordPress(w),
                        Some(Remotes::Feed(f)) => Source::Feed(f),
                        None => continue,
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
                    continue;
                }
            };
            let path = root_dir.join(&raw.path);
            if !path.is_dir() {
                cx.problem(
                    &format!("{key}.path"),
                    span_of(&value, "path"),
                    format!(
                        "`{}` is not a directory (resolved to {}); expected the folder of story files",
                        raw.path,
                        path.display()
                    ),
                );
            }
            if let Err(e) = check_url_pattern(&raw.url) {
                cx.problem(&format!("{key}.url"), span_of(&value, "url"), e);
            }
            sources.push(Source::Directory(DirectorySource {
                path_as_written: raw.path,
                path,
                url: raw.url,
            }));
        }
        if sources.is_empty()
            && !self.any_section_failed
            && self.root.is_some_and(|r| !r.contains_key("sources"))
        {
            cx.problem(
                "sources",
                Some(0..0),
                "no [[sources]]: add one such as\n  [[sources]]\n  kind = \"directory\"\n  path = \"content/stories\"",
            );
        }

        let feeds = self.feeds.and_then(|(raw, value)| {
            let span = value.as_ref().and_then(|v| span_of(v, "items"));
            if raw.items < 1 || raw.items > 100_000 {
                cx.problem(
                    "feeds.items",
                    span,
                    format!(
                        "{} is out of range: expected a number from 1 to 100000",
                        raw.items
                    ),
                );
                return None;
            }
            Some(Feeds {
                dir: root_dir.join(&raw.dir),
                items: raw.items as usize,
                full_content: raw.full_content,
            })
        });

        let storage =
            self.storage.and_then(
                |(raw, value)| match parse_storage_url(&raw.url, &root_dir) {
                    Ok(url) => Some(Storage { url }),
                    Err(e) => {
                        cx.problem(
                            "storage.url",
                            value.as_ref().and_then(|v| span_of(v, "url")),
                            e,
                        );
                        None
                    }
                },
            );

        let mail = self
            .mail
            .map(|(raw, value)| mail::validate_mail(cx, raw, &value, &root_dir));
        let digests = mail::validate_digests(cx, self.digests, language.as_deref());
        let schedule = match self.schedule {
            Some((raw, value)) => service::validate_schedule(cx, raw, &value),
            None => Some(Schedule::default()),
        };
        let http = match self.http {
            Some((raw, value)) => service::validate_http(cx, raw, &value),
            None => Some(Http::default()),
        };
        Some(Config {
            schedule: schedule?,
            http: http?,
            mail: mail.flatten(),
            digests,
            path: cx.file.clone(),
            root: root_dir,
            site: site?,
            themes,
            sources,
            feeds: feeds?,
            storage: storage?,
        })
    }
}

fn validate_site(cx: &mut Context, raw: RawSite, value: &Spanned<DeValue<'_>>) -> Option<Site> {
    let mut ok = true;
    let base_url = match parse_base_url(&raw.base_url) {
        Ok(u) => Some(u),
        Err(e) => {
            cx.problem("site.base_url", span_of(value, "base_url"), e);
            ok = false;
            None
        }
    };
    let timezone = match raw.timezone.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            cx.problem(
                "site.timezone",
                span_of(value, "timezone"),
                format!(
                    "unknown time zone `{}`: expected an IANA name such as \"Europe/Stockholm\" or \"UTC\"",
                    raw.timezone
                ),
            );
            ok = false;
            None
        }
    };
    let language = match Language::parse(&raw.language) {
        Ok(l) => Some(l),
        Err(e) => {
            cx.problem("site.language", span_of(value, "language"), e);
            ok = false;
            None
        }
    };
    if raw.title.trim().is_empty() {
        cx.problem("site.title", span_of(value, "title"), "must not be empty");
        ok = false;
    }
    if !ok {
        return None;
    }
    // Feeds are XML: characters it forbids must not reach them.
    Some(Site {
        title: crate::model::text::clean_line(&raw.title),
        base_url: base_url?,
        language: language?,
        timezone: timezone?,
        description: crate::model::text::clean_line(&raw.description),
        author: crate::model::text::clean_line(&raw.author),
    })
}

/// An absolute http(s) URL; its path is made to end in `/` so that story
/// URLs join under it.
pub fn parse_base_url(s: &str) -> Result<Url, String> {
    let expected = "expected an absolute http(s) URL such as \"https://example.org\"";
    let mut url =
        Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URL ({e}): {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` is not an http(s) URL: {expected}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{s}` has a query or fragment: {expected}"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
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

fn parse_storage_url(url: &str, root: &Path) -> Result<StorageUrl, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(format!(
                "`{url}` names no database file: expected \"sqlite://tidings.db\""
            ));
        }
        return Ok(StorageUrl::Sqlite(root.join(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = Url::parse(url).map_err(|e| {
            format!("not a PostgreSQL URL ({e}): expected \"postgres://user@host/database\"")
        })?;
        if parsed.host_str().is_none_or(str::is_empty) && !url.contains("host=") {
            return Err("names no server: expected \"postgres://user@host/database\"".into());
        }
        return Ok(StorageUrl::Postgres(url.to_owned()));
    }
    Err(format!(
        "`{url}` is not a storage URL: expected \"sqlite://PATH\" or \"postgres://user@host/database\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_str(Path::new("config.toml"), text) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn base_url_gets_a_trailing_slash() {
        assert_eq!(
            parse_base_url("https://x.org/site").unwrap().as_str(),
            "https://x.org/site/"
        );
        assert!(parse_base_url("/relative").is_err());
        assert!(parse_base_url("ftp://x.org").is_err());
    }

    #[test]
    fn url_patterns_need_slug_and_known_placeholders() {
        assert!(check_url_pattern("/{year}/{slug}/").is_ok());
        assert!(check_url_pattern("/stories/").is_err());
        assert!(check_url_pattern("/{slug}/{nope}").is_err());
    }

    #[test]
    fn every_problem_is_listed_with_line_and_key() {
        let text = r#"[site]
title = "T"
base_url = "/relative"
timezone = "Mars/Olympus"
colour = "blue"

[[themes]]
slug = "a"
title = "A"

[[themes]]
slug = "a"
title = "A again"

[feeds]
items = "many"
"#;
        let p = problems(text);
        let joined = p.join("\n");
        assert!(
            joined.contains("config.toml:3:12: `site.base_url`"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:4:12: `site.timezone`: unknown time zone"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:5:1: `site.colour`: unknown key"),
            "{joined}"
        );
        assert!(joined.contains("config.toml:12:8: `themes[1].slug`: duplicate theme slug `a`, already used on line 8"), "{joined}");
        assert!(joined.contains("`feeds.items`"), "{joined}");
    }
}
