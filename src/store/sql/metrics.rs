// Liveness and totals for `/healthz` and `/metrics`: see `store/metrics.rs`.

use anyhow::{Context as _, Result};
use sqlx::{Pool, Row};

use crate::store::editions::Counts;

pub async fn ping(pool: &Pool<DB>) -> Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .context("the store does not answer")?;
    Ok(())
}

pub async fn delivery_totals(pool: &Pool<DB>) -> Result<Counts> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
        .fetch_all(pool)
        .await
        .context("cannot count deliveries")?;
    Ok(super::editions::counts(&rows))
}

pub async fn edition_totals(pool: &Pool<DB>) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT digest, COUNT(*) AS n FROM editions GROUP BY digest ORDER BY digest",
    )
    .fetch_all(pool)
    .await
    .context("cannot count editions")?;
    Ok(rows.iter().map(|r| (r.get("digest"), r.get("n"))).collect())
}
