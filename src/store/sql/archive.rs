// Editions for the archive pages: see `store/archive.rs`.

use anyhow::{Context as _, Result};
use sqlx::{Pool, Row};

use crate::store::archive::ArchivedEdition;
use crate::store::editions::Edition;
use super::editions::edition;

pub async fn edition_of(pool: &Pool<DB>, digest: &str, id: i64) -> Result<Option<Edition>> {
    let row = sqlx::query(
        "SELECT id, digest, key, period_start, period_end, created_at, completed_at
         FROM editions WHERE digest = $1 AND id = $2",
    )
    .bind(digest)
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("cannot read the edition")?;
    row.as_ref().map(edition).transpose()
}

pub async fn archived_editions(pool: &Pool<DB>, digest: &str, limit: i64) -> Result<Vec<ArchivedEdition>> {
    let rows = sqlx::query(
        "SELECT e.id, e.digest, e.key, e.period_start, e.period_end, e.created_at,
                e.completed_at, COUNT(s.story_id) AS stories
         FROM editions e
         JOIN edition_stories s ON s.edition_id = e.id AND s.included = TRUE
         WHERE e.digest = $1
         GROUP BY e.id ORDER BY e.id DESC LIMIT $2",
    )
    .bind(digest)
    .bind(limit)
    .fetch_all(pool)
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
