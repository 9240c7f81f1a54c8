//! `[[sources]]` of the remote kinds: `wordpress` (a WordPress site's REST
//! API) and `feed` (an upstream RSS, Atom or JSON Feed). Both are polled
//! over HTTP on the ingest schedule or on their own.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::{Context, span_of};
use crate::model::{Language, ThemeSlug};
use crate::schedule::CronSchedule;

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

pub(super) const WORDPRESS_KEYS: &[&str] = &[
    "kind",
    "base_url",
    "themes",
    "themes_from",
    "schedule",
    "language",
    "timeout",
    "max_size_mb",
];
pub(super) const FEED_KEYS: &[&str] = &[
    "kind",
    "url",
    "themes",
    "themes_from",
    "schedule",
    "language",
    "timeout",
    "max_size_mb",
];

fn default_timeout() -> i64 {
    30
}
fn default_max_size_mb() -> i64 {
    10
}

/// The remote source's kind, checked: `wordpress` or `feed`.
pub(super) enum Remotes {
    WordPress(WordPressSource),
    Feed(FeedSource),
}

pub(super) fn validate_remote(
    cx: &mut Context,
    key: &str,
    raw: RawRemoteSource,
    value: &Spanned<DeValue<'_>>,
    themes: &[ThemeSlug],
) -> Option<Remotes> {
    let mut ok = true;
    let problem = |cx: &mut Context, sub: &str, message: String| {
        let span = sub_span(value, sub);
        cx.problem(&format!("{key}.{sub}"), span, message);
    };
    let wordpress = raw.kind == "wordpress";
    let (url_key, url_text) = if wordpress {
        ("base_url", raw.base_url.clone())
    } else {
        ("url", raw.url.clone())
    };
    let url = match url_text {
        None => {
            cx.problem(
                key,
                Some(value.span()),
                format!(
                    "missing field `{url_key}`; expected the {} such as \"{}\"",
                    if wordpress {
                        "WordPress site's address"
                    } else {
                        "feed's address"
                    },
                    if wordpress {
                        "https://cms.example.org"
                    } else {
                        "https://partner.example.org/feed.xml"
                    }
                ),
            );
            None
        }
        Some(text) => match Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            Ok(_) => {
                problem(cx, url_key, format!("`{text}` is not an http(s) URL"));
                None
            }
            Err(e) => {
                problem(cx, url_key, format!("`{text}` is not a URL: {e}"));
                None
            }
        },
    };
    let theme = |cx: &mut Context, sub: &str, slug: &str| -> Option<ThemeSlug> {
        match ThemeSlug::parse(slug) {
            Ok(t) if themes.contains(&t) => Some(t),
            Ok(_) => {
                let known: Vec<&str> = themes.iter().map(ThemeSlug::as_str).collect();
                cx.problem(
                    &format!("{key}.{sub}"),
                    sub_span(value, sub),
                    format!(
                        "no theme `{slug}` in [[themes]]; expected one of: {}",
                        known.join(", ")
                    ),
                );
                None
            }
            Err(e) => {
                cx.problem(&format!("{key}.{sub}"), sub_span(value, sub), e);
                None
            }
        }
    };
    let mut own = Vec::new();
    for (i, t) in raw.themes.iter().enumerate() {
        match theme(cx, &format!("themes[{i}]"), t) {
            Some(t) => own.push(t),
            None => ok = false,
        }
    }
    let mut map = |cx: &mut Context, which: &str, raw: &BTreeMap<String, String>| {
        let mut out = BTreeMap::new();
        for (term, slug) in raw {
            match theme(cx, &format!("themes_from.{which}.{term}"), slug) {
                Some(t) => {
                    out.insert(term.clone(), t);
                }
                None => ok = false,
            }
        }
        out
    };
    let categories = map(cx, "categories", &raw.themes_from.categories);
    let tags = map(cx, "tags", &raw.themes_from.tags);
    if !wordpress && !tags.is_empty() {
        problem(
            cx,
            "themes_from.tags",
            "a feed has only categories (RSS <category>, Atom <category>, JSON Feed tags); \
             map them under themes_from.categories"
                .into(),
        );
        ok = false;
    }
    let schedule = match raw.schedule.as_deref().map(CronSchedule::parse) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            problem(cx, "schedule", e);
            ok = false;
            None
        }
    };
    let language = match raw.language.as_deref().map(Language::parse) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            problem(cx, "language", e);
            ok = false;
            None
        }
    };
    if !(1..=600).contains(&raw.timeout) {
        problem(
            cx,
            "timeout",
            format!(
                "{} is out of range; expected seconds from 1 to 600",
                raw.timeout
            ),
        );
        ok = false;
    }
    if !(1..=1024).contains(&raw.max_size_mb) {
        problem(
            cx,
            "max_size_mb",
            format!(
                "{} is out of range; expected megabytes from 1 to 1024",
                raw.max_size_mb
            ),
        );
        ok = false;
    }
    let url = url?;
    if !ok {
        return None;
    }
    let remote = Remote {
        themes: own,
        categories,
        tags,
        schedule,
        language,
        timeout: Duration::from_secs(raw.timeout as u64),
        max_bytes: raw.max_size_mb as u64 * 1024 * 1024,
    };
    Some(if wordpress {
        Remotes::WordPress(WordPressSource {
            base_url: url,
            remote,
        })
    } else {
        Remotes::Feed(FeedSource { url, remote })
    })
}

/// The span of a dotted key (`themes_from.categories.miljo`, `themes[1]`)
/// inside the source's table, or of its nearest parent that has one.
fn sub_span(value: &Spanned<DeValue<'_>>, dotted: &str) -> Option<std::ops::Range<usize>> {
    let mut current = value;
    let mut best = None;
    for part in dotted.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(next) = current.get_ref().get(name) else {
            break;
        };
        current = next;
        best = Some(current.span());
        if let Some(i) = index {
            match current.get_ref().as_array().and_then(|a| a.get(i)) {
                Some(item) => {
                    current = item;
                    best = Some(current.span());
                }
                None => break,
            }
        }
    }
    best.or_else(|| span_of(value, dotted))
}
