//! One build at a time, whoever asks: the ingest tick of the schedule and
//! the CMS hook (`POST /api/ingest`) share an [`Ingester`]. After each
//! build the WebSub hubs hear of the feeds it changed.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use chrono::Utc;
use tokio::sync::Mutex;

use super::build::{self, BuildReport};
use super::ingest::Which;
use crate::config::Config;
use crate::model::JobOutcome;
use crate::store::Store;
use crate::websub::{Pings, WebSub};

/// Runs ingest + feeds, one at a time: the scheduled tick and the CMS hook
/// (`POST /api/ingest`) share it, so two never overlap.
pub struct Ingester {
    config: Arc<Config>,
    store: Store,
    lock: Arc<Mutex<()>>,
    /// The runtime it was made on: a build runs there, on all its threads,
    /// even when asked from a request on one of the HTTP threads.
    runtime: tokio::runtime::Handle,
    /// Told of the feeds each build changed.
    websub: Arc<WebSub>,
}

/// The name of the ingest job in the store.
pub const INGEST_JOB: &str = "ingest";

impl Ingester {
    /// Made within the tokio runtime its builds are to run on. Fails only
    /// when the WebSub side's HTTP client cannot be made.
    pub fn new(config: Arc<Config>, store: Store) -> Result<Ingester> {
        let websub = Arc::new(WebSub::new(config.clone(), store.clone())?);
        Ok(Ingester {
            config,
            store,
            lock: Arc::new(Mutex::new(())),
            runtime: tokio::runtime::Handle::current(),
            websub,
        })
    }

    /// The site's WebSub side: the hubs each build tells, and the built-in
    /// hub's client and worker wake-up.
    pub fn websub(&self) -> &Arc<WebSub> {
        &self.websub
    }

    /// One ingest of the chosen sources, then the feeds; logs its figures.
    pub async fn run(&self, why: &str, which: &Which) -> Result<BuildReport> {
        // Held by the build itself: one whose caller went away (a client
        // that hung up) runs to its end before the next starts.
        let one_at_a_time = self.lock.clone().lock_owned().await;
        let (config, store, which) = (self.config.clone(), self.store.clone(), which.clone());
        let websub = self.websub.clone();
        let report = self
            .runtime
            .spawn(async move {
                let _one_at_a_time = one_at_a_time;
                let report = build::build(&config, &store, &which).await?;
                // After the files are written, before the next build.
                websub
                    .feeds_changed(&report.feeds.written, Pings::Background)
                    .await;
                anyhow::Ok(report)
            })
            .await
            .map_err(|e| anyhow!("the build stopped: {e}"))??;
        let i = &report.ingest;
        tracing::info!(
            why,
            new = i.new,
            updated = i.changed,
            withdrawn = i.withdrawn,
            unchanged = i.unchanged,
            skipped = i.skipped.len(),
            published = report.published,
            feeds_written = report.feeds.written.len(),
            feeds_unchanged = report.feeds.unchanged,
            "ingest"
        );
        for p in &i.skipped {
            tracing::warn!(problem = %p, "story skipped");
        }
        if let Some(e) = report.problems.first() {
            return Err(anyhow!(
                "{} feed file(s) could not be rendered: {e:#}",
                report.problems.len()
            ));
        }
        Ok(report)
    }

    /// An ingest outside the schedule (the CMS hook, the start of the
    /// service): runs it and records the run without touching the job's
    /// last tick.
    pub async fn run_now(&self, why: &str) -> Result<BuildReport> {
        let result = self.run(why, &Which::All).await;
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        let outcome = if error.is_some() {
            JobOutcome::Failed
        } else {
            JobOutcome::Ok
        };
        if let Some(e) = &error {
            tracing::error!(why, error = %e, "ingest failed");
        }
        self.store
            .record_run(INGEST_JOB, Utc::now(), outcome, error.as_deref())
            .await?;
        result
    }
}
