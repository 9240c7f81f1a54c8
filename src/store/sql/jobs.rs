// The scheduler's state: see `store/jobs.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::{Pool, Row};

use crate::model::JobOutcome;
use crate::store::jobs::JobState;

const COLUMNS: &str = "name, last_tick, last_run_at, last_result, last_error, last_success_at";

fn job_state(r: &<DB as sqlx::Database>::Row) -> Result<JobState> {
    let result: Option<String> = r.get("last_result");
    Ok(JobState {
        name: r.get("name"),
        last_tick: r.get("last_tick"),
        last_run_at: r.get("last_run_at"),
        last_result: result
            .map(|s| s.parse::<JobOutcome>())
            .transpose()
            .map_err(anyhow::Error::msg)?,
        last_error: r.get("last_error"),
        last_success_at: r.get("last_success_at"),
    })
}

pub async fn job(pool: &Pool<DB>, name: &str) -> Result<Option<JobState>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE name = $1"))
        .bind(name)
        .fetch_optional(pool)
        .await
        .context("cannot read the job state")?;
    row.as_ref().map(job_state).transpose()
}

pub async fn jobs(pool: &Pool<DB>) -> Result<Vec<JobState>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs ORDER BY name"))
        .fetch_all(pool)
        .await
        .context("cannot read the job state")?;
    rows.iter().map(job_state).collect()
}

/// A run at `now` with its result; the tick it handled, if it was a
/// scheduled one (else the last tick stays as it was).
pub async fn record(
    pool: &Pool<DB>,
    name: &str,
    tick: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    result: JobOutcome,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (name, last_tick, last_run_at, last_result, last_error, last_success_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'ok' THEN $3 END)
         ON CONFLICT (name) DO UPDATE SET
             last_tick = COALESCE(excluded.last_tick, jobs.last_tick),
             last_run_at = excluded.last_run_at,
             last_result = excluded.last_result,
             last_error = excluded.last_error,
             last_success_at = COALESCE(excluded.last_success_at, jobs.last_success_at)",
    )
    .bind(name)
    .bind(tick)
    .bind(now)
    .bind(result.as_str())
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

pub async fn claim_tick(
    pool: &Pool<DB>,
    name: &str,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let mut tx = super::begin_write(pool).await?;
    sqlx::query("INSERT INTO jobs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut *tx)
        .await
        .context("cannot claim the job's tick")?;
    let claimed = sqlx::query(
        "UPDATE jobs SET claimed_tick = $2, claimed_until = $4
         WHERE name = $1
           AND (last_tick IS NULL OR last_tick < $2)
           AND (claimed_tick IS NULL OR claimed_tick <> $2 OR claimed_until < $3)",
    )
    .bind(name)
    .bind(tick)
    .bind(now)
    .bind(until)
    .execute(&mut *tx)
    .await
    .context("cannot claim the job's tick")?
    .rows_affected()
        == 1;
    let held = if claimed {
        None
    } else {
        // Held by another instance until then, or already handled (no claim).
        let until: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT claimed_until FROM jobs WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .context("cannot read the job's claim")?;
        Some(until.unwrap_or(now))
    };
    tx.commit().await?;
    Ok(held)
}

/// Every remote source's state, by source key (JSON text as stored).
pub async fn source_states(pool: &Pool<DB>) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT source, state FROM source_state")
        .fetch_all(pool)
        .await
        .context("cannot read the sources' state")?;
    Ok(rows
        .iter()
        .map(|r| (r.get("source"), r.get("state")))
        .collect())
}

pub async fn save_source_state(
    pool: &Pool<DB>,
    source: &str,
    state: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO source_state (source, state, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(source)
    .bind(state)
    .bind(now)
    .execute(pool)
    .await
    .context("cannot save a source's state")?;
    Ok(())
}
