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
    .rows_affected();
    let held_until = if claimed == 1 {
        None
    } else {
        sqlx::query_scalar("SELECT claimed_until FROM jobs WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .context("cannot read the job's claim")?
    };
    tx.commit().await?;
    Ok(held_until.or(if claimed == 1 { None } else { Some(now) }))
}
