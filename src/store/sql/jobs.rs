// The scheduler's state: see `store/jobs.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::{Pool, Row};

use crate::store::jobs::JobState;

pub async fn job(pool: &Pool<DB>, name: &str) -> Result<Option<JobState>> {
    let row = sqlx::query(
        "SELECT name, last_tick, last_run_at, last_result, last_error, last_success_at
         FROM jobs WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .context("cannot read the job state")?;
    Ok(row.map(|r| JobState {
        name: r.get("name"),
        last_tick: r.get("last_tick"),
        last_run_at: r.get("last_run_at"),
        last_result: r.get("last_result"),
        last_error: r.get("last_error"),
        last_success_at: r.get("last_success_at"),
    }))
}

pub async fn record_job(pool: &Pool<DB>, name: &str, tick: DateTime<Utc>, now: DateTime<Utc>, result: &str, error: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (name, last_tick, last_run_at, last_result, last_error, last_success_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'ok' THEN $3 END)
         ON CONFLICT (name) DO UPDATE SET
             last_tick = excluded.last_tick,
             last_run_at = excluded.last_run_at,
             last_result = excluded.last_result,
             last_error = excluded.last_error,
             last_success_at = COALESCE(excluded.last_success_at, jobs.last_success_at)",
    )
    .bind(name)
    .bind(tick)
    .bind(now)
    .bind(result)
    .bind(error)
    .execute(pool)
    .await
    .context("cannot record the job state")?;
    Ok(())
}

pub async fn record_run(pool: &Pool<DB>, name: &str, now: DateTime<Utc>, result: &str, error: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (name, last_tick, last_run_at, last_result, last_error, last_success_at)
         VALUES ($1, NULL, $2, $3, $4, CASE WHEN $3 = 'ok' THEN $2 END)
         ON CONFLICT (name) DO UPDATE SET
             last_run_at = excluded.last_run_at,
             last_result = excluded.last_result,
             last_error = excluded.last_error,
             last_success_at = COALESCE(excluded.last_success_at, jobs.last_success_at)",
    )
    .bind(name)
    .bind(now)
    .bind(result)
    .bind(error)
    .execute(pool)
    .await
    .context("cannot record the job state")?;
    Ok(())
}

pub async fn record_pass(pool: &Pool<DB>, name: &str, tick: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (name, last_tick) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick",
    )
    .bind(name)
    .bind(tick)
    .execute(pool)
    .await
    .context("cannot record the job state")?;
    Ok(())
}

pub async fn jobs(pool: &Pool<DB>) -> Result<Vec<JobState>> {
    let rows = sqlx::query(
        "SELECT name, last_tick, last_run_at, last_result, last_error, last_success_at
         FROM jobs ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .context("cannot read the job state")?;
    Ok(rows
        .iter()
        .map(|r| JobState {
            name: r.get("name"),
            last_tick: r.get("last_tick"),
            last_run_at: r.get("last_run_at"),
            last_result: r.get("last_result"),
            last_error: r.get("last_error"),
            last_success_at: r.get("last_success_at"),
        })
        .collect())
}
