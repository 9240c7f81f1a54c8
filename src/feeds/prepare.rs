//! Choosing what goes in each feed, before any format is rendered: which
//! stories (newest `items`, newest first, ties broken by id), the feed's
//! title, URLs and updated time. Renderers only format what this decides.

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::{Config, Theme};
use crate::store::{Indexed, StoredStory};

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

/// One feed (the site's, or one theme's), ready to render in any format.
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
    pub stories: Vec<&'a StoredStory>,
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

/// The site's feed followed by one per theme, in config order. `stories`
/// must be sorted newest first with ties broken by id, as the store
/// returns them.
pub fn prepare<'a>(config: &'a Config, stories: &'a [StoredStory]) -> Vec<Feed<'a>> {
    let limit = config.feeds.items;
    let lang = config.site.language.as_str();
    let mut feeds = Vec::with_capacity(config.themes.len() + 1);
    let site_stories: Vec<&StoredStory> = stories.iter().take(limit).collect();
    // A theme with no stories yet takes the site's time.
    let site_updated = newest_update(site_stories.iter().copied()).unwrap_or(DateTime::UNIX_EPOCH);
    feeds.push(Feed {
        dir: String::new(),
        title: config.site.title.clone(),
        description: non_empty(&config.site.description, &config.site.title),
        home_url: config.site.base_url.clone(),
        theme: None,
        updated: site_updated,
        stories: site_stories,
    });
    for theme in &config.themes {
        let picked: Vec<&StoredStory> = stories
            .iter()
            .filter(|s| s.story.themes.contains(&theme.slug))
            .take(limit)
            .collect();
        let theme_title = theme.title.get(lang);
        feeds.push(Feed {
            dir: format!("themes/{}/", theme.slug),
            title: format!("{} – {}", config.site.title, theme_title),
            description: non_empty(theme.description.get(lang), theme_title),
            home_url: theme_url(config, theme),
            theme: Some(theme),
            updated: newest_update(picked.iter().copied()).unwrap_or(site_updated),
            stories: picked,
        });
    }
    feeds
}

/// The stories any feed will list, from the index of published stories
/// (newest first, ties by id): the site's newest `items` and each theme's.
/// Loading only these keeps a build of a large site from reading every
/// body; [`prepare`] on them gives the same feeds as on all stories.
pub fn select<'a>(config: &Config, index: &'a [Indexed]) -> Vec<&'a Indexed> {
    let limit = config.feeds.items;
    let mut wanted = vec![false; index.len()];
    for w in wanted.iter_mut().take(limit) {
        *w = true;
    }
    for theme in &config.themes {
        index
            .iter()
            .enumerate()
            .filter(|(_, s)| s.themes.contains(&theme.slug))
            .take(limit)
            .for_each(|(i, _)| wanted[i] = true);
    }
    index
        .iter()
        .zip(wanted)
        .filter_map(|(s, w)| w.then_some(s))
        .collect()
}

/// The theme's page on the site.
pub fn theme_url(config: &Config, theme: &Theme) -> Url {
    config
        .site
        .base_url
        .join(&format!("themes/{}/", theme.slug))
        .expect("theme slugs are valid URL paths")
}

fn newest_update<'a>(stories: impl Iterator<Item = &'a StoredStory>) -> Option<DateTime<Utc>> {
    stories.map(StoredStory::updated).max()
}

fn non_empty(s: &str, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_owned()
    } else {
        s.to_owned()
    }
}
