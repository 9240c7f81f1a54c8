//! The scheduler's state in the store: the last tick each job handled and
//! how its last run went.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::Store;

/// One job's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub name: String,
    pub last_tick: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The state of `name`, if it ever ran.
    pub async fn job(&self, name: &str) -> Result<Option<JobState>> {
        let row = sqlx::query(
            "SELECT name, last_tick, last_run_at, last_result, last_error, last_success_at
             FROM jobs WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
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

    /// Records that `name` handled `tick` at `now` with `result` ("ok",
    /// "failed" or "skipped") and, on failure, the error.
    pub async fn record_job(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
        result: &str,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (name, last_tick, last_run_at, last_result, last_error, last_success_at)
             VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?4 = 'ok' THEN ?3 END)
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
        .execute(&self.pool)
        .await
        .context("cannot record the job state")?;
        Ok(())
    }

    /// Records a run outside the schedule (the CMS hook, the start of the
    /// service): its time and result, leaving the last tick as it was.
    pub async fn record_run(
        &self,
        name: &str,
        now: DateTime<Utc>,
        result: &str,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (name, last_tick, last_run_at, last_result, last_error, last_success_at)
             VALUES (?1, NULL, ?2, ?3, ?4, CASE WHEN ?3 = 'ok' THEN ?2 END)
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
        .execute(&self.pool)
        .await
        .context("cannot record the job state")?;
        Ok(())
    }

    /// Records `tick` as handled without a run (a job's first start).
    pub async fn record_pass(&self, name: &str, tick: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (name, last_tick) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick",
        )
        .bind(name)
        .bind(tick)
        .execute(&self.pool)
        .await
        .context("cannot record the job state")?;
        Ok(())
    }

    /// Every job's state, by name.
    pub async fn jobs(&self) -> Result<Vec<JobState>> {
        let rows = sqlx::query(
            "SELECT name, last_tick, last_run_at, last_result, last_error, last_success_at
             FROM jobs ORDER BY name",
        )
        .fetch_all(&self.pool)
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
}
