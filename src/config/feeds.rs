//! `[feeds]`: where the feeds are written and how much each holds.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::spans::{Context, span_of};

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

#[derive(Debug, Deserialize)]
pub(super) struct RawFeeds {
    #[serde(default = "default_feeds_dir")]
    dir: String,
    #[serde(default = "default_items")]
    items: i64,
    #[serde(default = "default_true")]
    full_content: bool,
}
pub(super) const FEEDS_KEYS: &[&str] = &["dir", "items", "full_content"];

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

/// `[feeds]` checked; `value` is `None` when the section is not in the
/// file (the defaults).
pub(super) fn validate(
    cx: &mut Context,
    raw: RawFeeds,
    value: Option<&Spanned<DeValue<'_>>>,
    root: &Path,
) -> Option<Feeds> {
    if raw.items < 1 || raw.items > 100_000 {
        cx.problem(
            "feeds.items",
            value.and_then(|v| span_of(v, "items")),
            format!(
                "{} is out of range: expected a number from 1 to 100000",
                raw.items
            ),
        );
        return None;
    }
    Some(Feeds {
        dir: root.join(&raw.dir),
        items: raw.items as usize,
        full_content: raw.full_content,
    })
}
