//! `tidings build`: one ingest of every source followed by writing the
//! feeds, the unit of work the scheduler will repeat.

use anyhow::Result;
use chrono::Utc;

use crate::config::Config;
use crate::feeds::{self, WriteReport};
use crate::ingest::{self, Report};
use crate::store::Store;

/// What a build did.
#[derive(Debug)]
pub struct BuildReport {
    pub ingest: Report,
    pub feeds: WriteReport,
    /// Stories now published.
    pub published: usize,
}

/// Ingests every source into the store, then writes the feeds.
pub async fn build(config: &Config, store: &Store) -> Result<BuildReport> {
    let ingest = ingest::ingest(config, store, Utc::now()).await?;
    let stories = store.published_stories().await?;
    let published = stories.len();
    let config = config.clone();
    let feeds = tokio::task::spawn_blocking(move || {
        let files = feeds::render_all(&config, &stories);
        feeds::write_all(&config, &files)
    })
    .await??;
    Ok(BuildReport {
        ingest,
        feeds,
        published,
    })
}
