//! Sources read stories from where editors publish them. Each kind turns
//! its input into [`Story`] values and reports, without stopping, every
//! item it could not read.
//!
//! - `directory`: Markdown files ([`directory`]);
//! - `wordpress`: a WordPress site's REST API ([`wordpress`]);
//! - `feed`: an upstream RSS, Atom or JSON Feed ([`feed`]).
//!
//! [`content`] turns what they read (Markdown, HTML) into a story's
//! sanitized body and summary, with absolute links.
//!
//! The remote kinds keep a little state between runs in the store
//! ([`SourceState`]): validators for conditional requests, the address a
//! permanent redirect moved them to, how far an incremental read got, and
//! whether the source answered `410 Gone`.

pub mod bodies;
pub mod content;
pub mod directory;
pub mod feed;
pub mod http;
pub mod wordpress;

pub use crate::model::SourceState;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{Config, Source};
use crate::model::problem::Problem;
use crate::model::{Story, StoryId};

/// What one source holds right now.
#[derive(Debug, Default)]
pub struct Scan {
    /// Stories to publish.
    pub stories: Vec<Story>,
    /// Items whose stamp matches the one stored: not read again.
    pub unchanged: Vec<ItemRef>,
    /// Items that exist but are drafts: their stories are withdrawn.
    pub drafts: Vec<ItemRef>,
    /// Items that exist but could not be read; their stories keep whatever
    /// version the store already has.
    pub failed: Vec<(Problem, ItemRef)>,
    /// The scan saw only part of the source (what changed since the last
    /// read, or a feed's latest entries): stories it did not list stay as
    /// they are instead of being withdrawn.
    pub partial: bool,
    /// The source's state to keep for the next run, when it changed.
    pub state: Option<SourceState>,
}

/// Enough of an item to match it to a stored story without a full parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRef {
    pub id: Option<StoryId>,
    pub slug: Option<String>,
    pub origin: String,
}

/// What a scan of one source gets to work with.
pub struct Context<'a> {
    pub config: &'a Config,
    pub client: &'a http::Client,
    /// The origin of each published story mapped to its stored stamp; an
    /// item whose stamp still matches is listed as unchanged unread.
    pub known: Arc<HashMap<String, String>>,
    /// How many stories of this source are published now.
    pub published: usize,
    pub state: SourceState,
    pub now: DateTime<Utc>,
}

/// Reads one configured source.
pub async fn scan(cx: Context<'_>, source: &Source) -> Result<Scan, Problem> {
    match source {
        Source::Directory(dir) => {
            let (config, dir, known) = (cx.config.clone(), dir.clone(), cx.known);
            tokio::task::spawn_blocking(move || directory::scan(&config, &dir, &known))
                .await
                .map_err(|e| Problem::new(&cx.config.path, format!("scan failed: {e}")))?
        }
        Source::WordPress(wp) => wordpress::scan(cx, wp).await,
        Source::Feed(f) => feed::scan(cx, f).await,
    }
}

/// For `tidings check`: whether a remote source answers, and what it
/// holds (`None` for a directory, which the scan itself checks).
pub async fn probe(client: &http::Client, source: &Source) -> Option<Result<String, Problem>> {
    match source {
        Source::Directory(_) => None,
        Source::WordPress(wp) => Some(wordpress::probe(client, wp).await),
        Source::Feed(f) => Some(feed::probe(client, f).await),
    }
}

/// A source that answered `410 Gone` is not polled again; this says so
/// each run (at debug level: the warning was logged when it happened).
fn gone(cx: &Context<'_>, key: &str) -> Option<Scan> {
    let at = cx.state.gone_at?;
    tracing::debug!(source = key, gone_at = %at, "source answered 410 Gone earlier; not polled");
    Some(Scan {
        partial: true,
        ..Scan::default()
    })
}

/// The problem for a source-wide failure, named by its address.
fn problem(url: &url::Url, message: impl Into<String>) -> Problem {
    Problem::new(url.as_str(), message)
}

/// A story id of the form `<prefix>-<hex>` from an upstream identifier of
/// any shape (a feed's guid, an Atom id): the first 80 bits of its SHA-256.
fn hashed_id(prefix: &str, upstream: &str) -> StoryId {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(&Sha256::digest(upstream.as_bytes())[..10]);
    StoryId::parse(&format!("{prefix}-{hash}")).expect("hex ids are valid")
}

/// A slug from a title: transliterated to ASCII, at most 80 characters,
/// never empty.
fn title_slug(title: &str, fallback: &str) -> String {
    let mut s = slug::slugify(title);
    if s.len() > 80 {
        s.truncate(80);
        s = s.trim_end_matches('-').to_owned();
    }
    if s.is_empty() { fallback.to_owned() } else { s }
}
