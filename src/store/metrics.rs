//! What `/healthz` and `/metrics` read from the store: a liveness probe and
//! totals over every edition.

use anyhow::{Context as _, Result};
use sqlx::Row;

use super::Store;
use super::editions::Counts;

impl Store {
    /// Answers when the store does (`SELECT 1`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("the store does not answer")?;
        Ok(())
    }

    /// Deliveries by state, summed over all editions of all digests.
    pub async fn delivery_totals(&self) -> Result<Counts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .context("cannot count deliveries")?;
        Ok(Counts::from_rows(&rows))
    }

    /// How many editions each digest has, by digest id (only digests
    /// that have at least one).
    pub async fn edition_totals(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT digest, COUNT(*) AS n FROM editions GROUP BY digest ORDER BY digest",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot count editions")?;
        Ok(rows.iter().map(|r| (r.get("digest"), r.get("n"))).collect())
    }
}
