// The sign-up rate limits: see `store/limits.rs`.

use anyhow::{Context as _, Result};
use sqlx::Pool;

/// Rested keys removed per call, at most: the table stays small without
/// any one call doing much.
const TIDY: i64 = 64;

/// Counts one event of `key` (GCRA): `None` when allowed, else the key's
/// theoretical arrival time (ms), which the caller turns into a wait.
pub async fn take(
    pool: &Pool<DB>,
    key: &str,
    now_ms: i64,
    every_ms: i64,
    tolerance_ms: i64,
) -> Result<Option<i64>> {
    // Another instance tidying at the same moment skips the rows this one
    // holds (PostgreSQL), and a row made fresh meanwhile is kept (the
    // outer condition is checked again on the row as it is then).
    let skip_locked = if PG { " FOR UPDATE SKIP LOCKED" } else { "" };
    sqlx::query(&format!(
        "DELETE FROM rate_limits WHERE tat_ms <= $1 AND key IN
             (SELECT key FROM rate_limits WHERE tat_ms <= $1 LIMIT $2{skip_locked})"
    ))
    .bind(now_ms)
    .bind(TIDY)
    .execute(pool)
    .await
    .context("cannot tidy the rate limits")?;
    // Allowed when the key's arrival time is at most `tolerance` ahead of
    // now; the time then moves on by one interval. One statement, so two
    // instances counting the same key at once both count.
    let taken: Option<i64> = sqlx::query_scalar(
        "INSERT INTO rate_limits (key, tat_ms) VALUES ($1, $2 + $3)
         ON CONFLICT (key) DO UPDATE SET
             tat_ms = CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END + $3
         WHERE rate_limits.tat_ms - $2 <= $4
         RETURNING tat_ms",
    )
    .bind(key)
    .bind(now_ms)
    .bind(every_ms)
    .bind(tolerance_ms)
    .fetch_optional(pool)
    .await
    .context("cannot count against the rate limits")?;
    if taken.is_some() {
        return Ok(None);
    }
    let tat: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .context("cannot read the rate limits")?;
    // Gone since (tidied as rested): try again at once.
    Ok(Some(tat.unwrap_or(now_ms + tolerance_ms)))
}
