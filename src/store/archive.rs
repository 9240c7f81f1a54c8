//! Reading editions for the web archive: one edition of a digest by id,
//! and a digest's editions with how many stories each holds.

use anyhow::{Context as _, Result};
use sqlx::Row;

use super::Store;
use super::editions::{Edition, edition};

/// An edition and the number of stories it sends.
#[derive(Debug, Clone)]
pub struct ArchivedEdition {
    pub edition: Edition,
    pub stories: i64,
}

impl Store {
    /// The edition `id` of `digest`, if it exists and belongs to it.
    pub async fn edition_of(&self, digest: &str, id: i64) -> Result<Option<Edition>> {
        let row = sqlx::query(
            "SELECT id, digest, key, period_start, period_end, created_at, completed_at
             FROM editions WHERE digest = ? AND id = ?",
        )
        .bind(digest)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read the edition")?;
        row.as_ref().map(edition).transpose()
    }

    /// The editions of `digest` that hold at least one story, newest first,
    /// at most `limit`. Empty ones (nothing new that month) sent nothing
    /// and are left out of the list; their pages still answer.
    pub async fn archived_editions(
        &self,
        digest: &str,
        limit: i64,
    ) -> Result<Vec<ArchivedEdition>> {
        let rows = sqlx::query(
            "SELECT e.id, e.digest, e.key, e.period_start, e.period_end, e.created_at,
                    e.completed_at, COUNT(s.story_id) AS stories
             FROM editions e
             JOIN edition_stories s ON s.edition_id = e.id AND s.included = 1
             WHERE e.digest = ?
             GROUP BY e.id ORDER BY e.id DESC LIMIT ?",
        )
        .bind(digest)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the editions")?;
        rows.iter()
            .map(|r| {
                Ok(ArchivedEdition {
                    edition: edition(r)?,
                    stories: r.get("stories"),
                })
            })
            .collect()
    }
}
