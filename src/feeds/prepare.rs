//! Choosing what goes in each feed, before any format is rendered: which
//! stories (newest `items`, newest first, ties broken by id), the feed's
//! title, URLs and updated time. Renderers only format what this decides.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::{Config, Theme};
use crate::store::{FeedFacts, Indexed};

/// The three formats every feed is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Rss => "rss.xml",
            Format::Atom => "atom.xml",
            Format::Json => "feed.json",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml",
            Format::Atom => "application/atom+xml",
            Format::Json => "application/feed+json",
        }
    }
}

/// One feed (the site's, or one theme's): what it lists and says of
/// itself, decided from the index of published stories without reading a
/// body. Rendering it in a format takes the listed stories themselves.
#[derive(Debug)]
pub struct Feed<'a> {
    /// Folder under the feeds dir: "" for the site, "themes/<slug>/".
    pub dir: String,
    pub title: String,
    pub description: String,
    /// The page the feed belongs to.
    pub home_url: Url,
    /// The theme, for a theme's feed.
    pub theme: Option<&'a Theme>,
    /// What it lists, newest first.
    pub stories: Vec<&'a Indexed>,
    /// The newest `updated` of its stories; never the time of the build.
    pub updated: DateTime<Utc>,
}

impl Feed<'_> {
    /// Path of the file for `format`, relative to the feeds dir.
    pub fn path(&self, format: Format) -> String {
        format!("{}{}", self.dir, format.file_name())
    }

    /// Absolute URL of the file for `format`, where it is served.
    pub fn url(&self, config: &Config, format: Format) -> Url {
        feeds_base(config)
            .join(&self.path(format))
            .expect("feed paths are valid URL paths")
    }
}

/// Where the feed files are served: `<public_url>feeds/` (`tidings run`
/// serves them there; `[http] public_url` defaults to `[site] base_url`).
pub fn feeds_base(config: &Config) -> Url {
    config
        .public_url()
        .join("feeds/")
        .expect("a constant relative path joins")
}

/// The site's feed followed by one per theme, in config order, from the
/// index of published stories (newest first, ties by id) and the facts of
/// those [`select`] chose. A story without facts (withdrawn since the index
/// was read) is left out.
pub fn prepare<'a>(
    config: &'a Config,
    index: &'a [Indexed],
    facts: &HashMap<String, FeedFacts>,
) -> Vec<Feed<'a>> {
    let lang = config.site.language.as_str();
    let (site, picked) = pick(config, index, |s| facts.contains_key(s.id.as_str()));
    let newest = |list: &[&Indexed]| {
        list.iter()
            .filter_map(|s| facts.get(s.id.as_str()).map(|f| f.updated))
            .max()
    };
    let mut feeds = Vec::with_capacity(config.themes.len() + 1);
    // A theme with no stories yet takes the site's time.
    let site_updated = newest(&site).unwrap_or(DateTime::UNIX_EPOCH);
    feeds.push(Feed {
        dir: String::new(),
        title: config.site.title.clone(),
        description: non_empty(config.site.description.get(lang), &config.site.title),
        home_url: config.site.base_url.clone(),
        theme: None,
        updated: site_updated,
        stories: site,
    });
    for (theme, stories) in config.themes.iter().zip(picked) {
        let theme_title = theme.title.get(lang);
        feeds.push(Feed {
            dir: format!("themes/{}/", theme.slug),
            title: format!("{} – {}", config.site.title, theme_title),
            description: non_empty(theme.description.get(lang), theme_title),
            home_url: theme_url(config, theme),
            theme: Some(theme),
            updated: newest(&stories).unwrap_or(site_updated),
            stories,
        });
    }
    feeds
}

/// The stories any feed will list, from the index of published stories
/// (newest first, ties by id): the site's newest `items` and each theme's.
/// Their facts ([`crate::store::Store::feed_facts`]) are all [`prepare`]
/// needs; a build reads the bodies of only those whose feeds it renders.
pub fn select<'a>(config: &Config, index: &'a [Indexed]) -> Vec<&'a Indexed> {
    let (site, themes) = pick(config, index, |_| true);
    let wanted: HashSet<&str> = site
        .iter()
        .chain(themes.iter().flatten())
        .map(|s| s.id.as_str())
        .collect();
    index
        .iter()
        .filter(|s| wanted.contains(s.id.as_str()))
        .collect()
}

/// What each feed lists, in one pass over the index (newest first): the
/// site's first `items` stories and each theme's, in config order, of
/// those `listed` accepts.
fn pick<'a>(
    config: &Config,
    index: &'a [Indexed],
    listed: impl Fn(&Indexed) -> bool,
) -> (Vec<&'a Indexed>, Vec<Vec<&'a Indexed>>) {
    let limit = config.feeds.items;
    let column: HashMap<&str, usize> = config
        .themes
        .iter()
        .enumerate()
        .map(|(i, t)| (t.slug.as_str(), i))
        .collect();
    let mut site: Vec<&Indexed> = Vec::with_capacity(limit);
    let mut themes: Vec<Vec<&Indexed>> = vec![Vec::new(); config.themes.len()];
    for s in index.iter().filter(|s| listed(s)) {
        if site.len() < limit {
            site.push(s);
        }
        for theme in &s.themes {
            if let Some(list) = column.get(theme.as_str()).map(|&i| &mut themes[i])
                && list.len() < limit
                && list.last().is_none_or(|last| last.id != s.id)
            {
                list.push(s);
            }
        }
    }
    (site, themes)
}

/// The theme's page on the site.
pub fn theme_url(config: &Config, theme: &Theme) -> Url {
    config
        .site
        .base_url
        .join(&format!("themes/{}/", theme.slug))
        .expect("theme slugs are valid URL paths")
}

fn non_empty(s: &str, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_owned()
    } else {
        s.to_owned()
    }
}
