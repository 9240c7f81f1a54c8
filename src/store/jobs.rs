//! The scheduler's state in the store: the last tick each job handled and
//! how its last run went.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Store;
use crate::model::JobOutcome;

/// One job's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub name: String,
    pub last_tick: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_result: Option<JobOutcome>,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The state of `name`, if it ever ran.
    pub async fn job(&self, name: &str) -> Result<Option<JobState>> {
        crate::store::dispatch!(self, jobs::job(name))
    }

    /// Records that `name` handled `tick` at `now` with `result` and, on
    /// failure, the error.
    pub async fn record_job(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
        result: JobOutcome,
        error: Option<&str>,
    ) -> Result<()> {
        crate::store::dispatch!(self, jobs::record(name, Some(tick), now, result, error))
    }

    /// Records a run outside the schedule (the CMS hook, the start of the
    /// service): its time and result, leaving the last tick as it was.
    pub async fn record_run(
        &self,
        name: &str,
        now: DateTime<Utc>,
        result: JobOutcome,
        error: Option<&str>,
    ) -> Result<()> {
        crate::store::dispatch!(self, jobs::record(name, None, now, result, error))
    }

    /// Records `tick` as handled without a run (a job's first start).
    pub async fn record_pass(&self, name: &str, tick: DateTime<Utc>) -> Result<()> {
        crate::store::dispatch!(self, jobs::record_pass(name, tick))
    }

    /// Every job's state, by name.
    pub async fn jobs(&self) -> Result<Vec<JobState>> {
        crate::store::dispatch!(self, jobs::jobs())
    }

    /// Claims `tick` of job `name` for this instance until `until`, so that
    /// other instances on the same store pass it by. `None` when claimed;
    /// otherwise the time until which another instance holds it (or `now`
    /// when the tick was already handled).
    pub async fn claim_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        crate::store::dispatch!(self, jobs::claim_tick(name, tick, now, until))
    }

    /// What each remote source remembered from its last run, by source
    /// key. A state that no longer reads (written by a newer version) is
    /// left out: the source then starts afresh.
    pub async fn source_states(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::model::SourceState>> {
        let rows = crate::store::dispatch!(self, jobs::source_states())?;
        Ok(rows
            .into_iter()
            .filter_map(|(source, json)| match serde_json::from_str(&json) {
                Ok(state) => Some((source, state)),
                Err(e) => {
                    tracing::warn!(source, error = %e, "unreadable source state; starting afresh");
                    None
                }
            })
            .collect())
    }

    pub async fn save_source_state(
        &self,
        source: &str,
        state: &crate::model::SourceState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let json = serde_json::to_string(state)?;
        crate::store::dispatch!(self, jobs::save_source_state(source, &json, now))
    }
}
