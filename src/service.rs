//! `tidings run`: one long-running process that ingests on schedule, keeps
//! the feeds fresh, sends each digest on its cron schedule and serves the
//! web (see [`crate::web`]).
//!
//! Each scheduled job (`ingest`, `digest:<id>` for each digest, and
//! `bounces` when `[bounces] mailbox` is set) runs in
//! its own task, so a slow send never delays an ingest and a failing job
//! never stops the others. A task asks [`crate::schedule::decide`] what to
//! do now, acts, and records the tick it handled in the store; [`Scheduler::step`]
//! is that one move, taking the time as an argument, so tests drive the
//! scheduler with a controlled clock instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use anyhow::{Context as _, Result, anyhow};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::env::Environment;
use crate::config::{Config, Digest};
use crate::digest::delivery::{self, Options, Worker};
use crate::digest::render::Templates;
use crate::links::keys::Keys;
use crate::mail::Mailer;
use crate::model::JobOutcome;
use crate::publish::ingest::Which;
use crate::publish::{INGEST_JOB, Ingester};
use crate::schedule::{self, CronSchedule, Decision};
use crate::store::Store;
use crate::store::editions::Counts;

/// A scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// The sources without a schedule of their own, then the feeds.
    Ingest,
    /// One source with its own `schedule`, by key, then the feeds.
    Source(String),
    Digest(String),
    /// `[bounces] mailbox`, read over IMAP.
    Bounces,
}

impl Job {
    /// Its name in the store, logs and status.
    pub fn name(&self) -> String {
        match self {
            Job::Ingest => INGEST_JOB.to_owned(),
            Job::Source(key) => format!("{INGEST_JOB}:{key}"),
            Job::Digest(id) => format!("digest:{id}"),
            Job::Bounces => "bounces".to_owned(),
        }
    }
}

/// What one [`Scheduler::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ran the job for this tick; `Err` holds why it failed.
    Ran(DateTime<Utc>, Result<String, String>),
    /// Recorded this tick as handled without running it.
    Passed(DateTime<Utc>),
    /// Nothing to do before this time.
    Wait(DateTime<Utc>),
    /// Another instance on the same store holds this tick until then.
    Held(DateTime<Utc>, DateTime<Utc>),
}

/// How long an instance holds a tick it runs before others may take it
/// over (it died, or the run is that long: a digest's tick is idempotent,
/// so a second instance taking it over joins the send).
pub const JOB_LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// How often an instance looks for an edition being sent (by itself
/// before a crash, or by another instance) to help with.
pub const HELP_INTERVAL: StdDuration = StdDuration::from_secs(5);

/// The jobs of one site and what they need.
pub struct Scheduler {
    pub config: Arc<Config>,
    pub store: Store,
    /// The site's signing keys.
    pub keys: Arc<Keys>,
    pub ingester: Arc<Ingester>,
    pub mailer: Option<Arc<Mailer>>,
    /// The digest's templates, loaded once.
    pub digest_templates: Arc<Templates>,
    pub options: Options,
    /// Set on shutdown: deliveries stop claiming new rows.
    pub stop: Arc<AtomicBool>,
}

impl Scheduler {
    /// Every scheduled job: ingest, each digest, the bounce mailbox.
    pub fn jobs(&self) -> Vec<Job> {
        std::iter::once(Job::Ingest)
            .chain(
                self.config
                    .sources
                    .iter()
                    .filter(|s| s.schedule().is_some())
                    .map(|s| Job::Source(s.key())),
            )
            .chain(
                self.config
                    .digests
                    .iter()
                    .map(|d| Job::Digest(d.id.clone())),
            )
            .chain(
                self.config
                    .bounces
                    .mailbox
                    .is_some()
                    .then_some(Job::Bounces),
            )
            .collect()
    }

    fn schedule(&self, job: &Job) -> Result<&CronSchedule> {
        match job {
            Job::Ingest => Ok(&self.config.schedule.ingest),
            Job::Source(key) => self
                .config
                .sources
                .iter()
                .find(|s| s.key() == *key)
                .and_then(|s| s.schedule())
                .ok_or_else(|| anyhow!("no source `{key}` with a schedule in config.toml")),
            Job::Digest(id) => Ok(&self.digest(id)?.schedule),
            Job::Bounces => self
                .config
                .bounces
                .mailbox
                .as_ref()
                .map(|m| &m.schedule)
                .ok_or_else(|| anyhow!("no [bounces] mailbox in config.toml")),
        }
    }

    fn digest(&self, id: &str) -> Result<&Digest> {
        self.config
            .digest(Some(id))
            .ok_or_else(|| anyhow!("no digest `{id}` in config.toml"))
    }

    /// Decides what `job` should do at `now`, does it, and records it.
    /// A failing run is recorded as failed and reported in the step; only
    /// a store that cannot be read or written is an `Err`.
    pub async fn step(&self, job: &Job, now: DateTime<Utc>) -> Result<Step> {
        let name = job.name();
        let last = self.store.job(&name).await?.and_then(|j| j.last_tick);
        let tz = self.config.site.timezone;
        let decision = schedule::decide(
            self.schedule(job)?,
            tz,
            last,
            now,
            self.config.schedule.on_missed,
        );
        match decision {
            Decision::Wait(next) => Ok(Step::Wait(next)),
            Decision::Pass(tick) => {
                if last.is_none() {
                    // First start: nothing is owed for the time before.
                    self.store.record_pass(&name, tick).await?;
                } else {
                    tracing::info!(job = %name, tick = %tick, "missed tick skipped ([schedule] on_missed = \"skip\")");
                    self.store
                        .record_job(&name, tick, now, JobOutcome::Skipped, None)
                        .await?;
                }
                Ok(Step::Passed(tick))
            }
            Decision::Run(tick) => {
                if let Some(held) = self
                    .store
                    .claim_tick(&name, tick, now, now + JOB_LEASE)
                    .await?
                {
                    tracing::debug!(job = %name, tick = %tick, until = %held, "tick held by another instance");
                    return Ok(Step::Held(tick, held));
                }
                tracing::info!(job = %name, tick = %tick, "job started");
                let result = self.run_job(job, tick).await.map_err(|e| format!("{e:#}"));
                match &result {
                    Ok(summary) => tracing::info!(job = %name, tick = %tick, %summary, "job done"),
                    Err(e) => {
                        tracing::error!(job = %name, tick = %tick, error = %e, "job failed; retried at its next tick")
                    }
                }
                let (outcome, error) = match &result {
                    Ok(_) => (JobOutcome::Ok, None),
                    Err(e) => (JobOutcome::Failed, Some(e.as_str())),
                };
                self.store
                    .record_job(&name, tick, now, outcome, error)
                    .await?;
                Ok(Step::Ran(tick, result))
            }
        }
    }

    async fn run_job(&self, job: &Job, tick: DateTime<Utc>) -> Result<String> {
        match job {
            Job::Ingest | Job::Source(_) => {
                let which = match job {
                    Job::Source(key) => Which::Only(key.clone()),
                    _ => Which::Unscheduled,
                };
                let r = self.ingester.run("schedule", &which).await?;
                Ok(format!(
                    "{} new, {} updated, {} withdrawn; {} feed files written",
                    r.ingest.new,
                    r.ingest.changed,
                    r.ingest.withdrawn,
                    r.feeds.written.len()
                ))
            }
            Job::Digest(id) => {
                let counts = self.send_digest(self.digest(id)?, tick).await?;
                Ok(counts.to_string())
            }
            Job::Bounces => {
                let signer = self.keys.signer();
                let polled = crate::bounces::mailbox::poll(
                    &self.store,
                    &signer,
                    &self.config.bounces,
                    false,
                    Utc::now(),
                )
                .await?;
                Ok(polled.to_string())
            }
        }
    }

    /// A digest's tick: finishes any edition left unfinished, freezes the
    /// tick's edition (the tick's time is its key, so a second call for the
    /// same tick finds it instead of making another) and delivers it.
    pub async fn send_digest(&self, digest: &Digest, tick: DateTime<Utc>) -> Result<Counts> {
        self.resume(digest).await?;
        let key = tick_key(tick);
        // The edition covers up to its tick (a tick is never in the future
        // when the service runs; a test's controlled clock may be ahead).
        let end = tick.min(Utc::now());
        let frozen = self
            .store
            .freeze_edition(&digest.id, &key, digest.skip_if_empty, end)
            .await?;
        if frozen.created {
            tracing::info!(
                digest = %digest.id,
                edition = frozen.edition.id,
                stories = frozen.stories,
                recipients = frozen.deliveries,
                "edition frozen"
            );
        }
        self.deliver(digest, &frozen.edition).await
    }

    /// Sends with whoever else is sending an unfinished edition of the
    /// digest `id`, if there is one.
    async fn help(&self, id: &str) -> Result<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if self.store.unfinished_edition(id).await?.is_some() {
            self.resume(self.digest(id)?).await?;
        }
        Ok(())
    }

    /// Delivers every unfinished edition of `digest`, oldest first (after
    /// a crash or a stop mid-send).
    pub async fn resume(&self, digest: &Digest) -> Result<()> {
        while let Some(edition) = self.store.unfinished_edition(&digest.id).await? {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            tracing::info!(edition = %delivery::describe(&edition), "resuming");
            let counts = self.deliver(digest, &edition).await?;
            if !counts.done() {
                break;
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        digest: &Digest,
        edition: &crate::store::editions::Edition,
    ) -> Result<Counts> {
        let mailer = self.mailer.as_ref().context(
            "digests need a [mail] section in config.toml (at least `from` and `transport`)",
        )?;
        let signer = self.keys.signer();
        let worker = Worker::new(
            &self.config,
            mailer,
            digest,
            &self.digest_templates,
            &self.store,
            &signer,
            self.options.clone(),
            self.stop.clone(),
        );
        let edition_id = edition.id;
        let mut last_logged = None;
        worker
            .deliver(edition, |c| {
                // One line per batch that changed something.
                let figures = (c.sent, c.failed, c.skipped, c.pending, c.sending);
                if last_logged != Some(figures) {
                    last_logged = Some(figures);
                    tracing::info!(
                        digest = %digest.id,
                        edition = edition_id,
                        sent = c.sent,
                        failed = c.failed,
                        skipped = c.skipped,
                        pending = c.pending,
                        sending = c.sending,
                        "delivery batch"
                    );
                }
            })
            .await
    }

    /// The life of one job: step, sleep until the next tick (waking early
    /// on shutdown), again. Store errors are logged and retried after a
    /// pause; they never end the loop.
    pub async fn job_loop(self: Arc<Self>, job: Job, mut shutdown: watch::Receiver<bool>) {
        let name = job.name();
        // An edition a crash or a stop left half-sent goes out first.
        if let Job::Digest(id) = &job {
            let resumed = match self.digest(id) {
                Ok(digest) => self.resume(digest).await,
                Err(e) => Err(e),
            };
            if let Err(e) = resumed {
                tracing::error!(job = %name, error = %format!("{e:#}"), "cannot resume an unfinished edition; retried at the next tick");
            }
        }
        // After a failed help, the next waits longer (up to five minutes):
        // a relay refused as set up is not asked again every few seconds.
        let mut help_pause = HELP_INTERVAL;
        let mut help_after = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait_until = match self.step(&job, Utc::now()).await {
                Ok(Step::Wait(next) | Step::Held(_, next)) => Some(next),
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(job = %name, error = %format!("{e:#}"), "scheduler cannot reach the store; trying again in 30 s");
                    Some(Utc::now() + chrono::Duration::seconds(30))
                }
            };
            let Some(until) = wait_until else { continue };
            // Between ticks a digest job helps send any unfinished edition
            // (several instances share the rows; one restarted after a
            // crash finishes its own).
            if let Job::Digest(id) = &job
                && tokio::time::Instant::now() >= help_after
            {
                match self.help(id).await {
                    Ok(()) => help_pause = HELP_INTERVAL,
                    Err(e) => {
                        tracing::error!(
                            job = %name,
                            error = %format!("{e:#}"),
                            retry_in_s = help_pause.as_secs(),
                            "cannot send the unfinished edition; trying again later"
                        );
                        help_after = tokio::time::Instant::now() + help_pause;
                        help_pause = (help_pause * 2).min(StdDuration::from_secs(300));
                    }
                }
            }
            tracing::debug!(job = %name, next = %until, "waiting");
            // Wake at least each minute to look again: the wall clock may
            // have jumped (suspend, NTP) while we slept; digest jobs every
            // few seconds, to help with editions being sent.
            let most = match job {
                Job::Ingest | Job::Source(_) | Job::Bounces => StdDuration::from_secs(60),
                Job::Digest(_) => HELP_INTERVAL,
            };
            let nap = (until - Utc::now())
                .to_std()
                .unwrap_or(StdDuration::ZERO)
                .min(most);
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::debug!(job = %name, "stopped");
    }
}

/// The idempotency key of a digest edition made for a scheduled tick.
pub fn tick_key(tick: DateTime<Utc>) -> String {
    format!(
        "tick:{}",
        tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled, so a signal that
/// arrives in between is not lost (and does not kill the process).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// The service's listeners, bound before anything else so that a busy
/// port fails at once and changes nothing.
pub struct Listeners {
    public: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
}

/// Where the service listens (port 0 in the config is a free port).
pub struct Addresses {
    pub public: std::net::SocketAddr,
    pub metrics: Option<std::net::SocketAddr>,
}

impl Listeners {
    /// Binds `[http] listen` and `[http] metrics_listen`, or says which key
    /// names a busy or foreign address.
    pub async fn bind(http: &crate::config::Http) -> Result<Listeners> {
        async fn bind(address: std::net::SocketAddr, key: &str) -> Result<tokio::net::TcpListener> {
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} ([http] {key})"))
        }
        let public = bind(http.listen, "listen").await?;
        let metrics = match http.metrics_listen {
            Some(address) => Some(bind(address, "metrics_listen").await?),
            None => None,
        };
        Ok(Listeners { public, metrics })
    }
}

/// `tidings run`: opens the store (waiting for a database server that is
/// not up yet), checks the signing keys, ingests once so the feeds are
/// fresh, then serves the web on `listeners` (calling `announce` once they
/// serve) and runs every scheduled job until SIGTERM or Ctrl-C; then takes
/// no new work, lets in-flight sends and answers finish for at most
/// `TIDINGS_SHUTDOWN_SECONDS`, and returns.
pub async fn serve(
    config: Config,
    env: Environment,
    listeners: Listeners,
    announce: impl FnOnce(&Addresses),
) -> Result<()> {
    let mut stop_signal = Box::pin(shutdown_signal());
    let config = Arc::new(config);
    let Some(store) = open_store(&config, &mut stop_signal).await? else {
        return Ok(());
    };
    let keys = Arc::new(Keys::load(&store, &env).await?);
    let mailer = Mailer::new(&config)?.map(Arc::new);
    let ingester = Arc::new(Ingester::new(config.clone(), store.clone())?);

    // Fresh feeds before the first request, whatever the schedule says.
    // A failure is logged and recorded; the service still starts.
    let _ = ingester.run_now("start").await;

    let shared = Arc::new(crate::web::Shared::new(
        config.clone(),
        store.clone(),
        keys.clone(),
        ingester.clone(),
        mailer.clone(),
    )?);
    let background = shared.background.clone();
    let at = Addresses {
        public: listeners.public.local_addr()?,
        metrics: listeners
            .metrics
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?,
    };
    let mut routed = vec![(listeners.public, crate::web::router(shared.clone()))];
    if let Some(metrics) = listeners.metrics {
        routed.push((metrics, crate::web::metrics_router(shared)));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let scheduler = Arc::new(Scheduler {
        config: config.clone(),
        store: store.clone(),
        keys,
        ingester,
        mailer,
        digest_templates: Arc::new(Templates::load(&config)?),
        options: Options::new(&env),
        stop: stop.clone(),
    });
    let mut jobs = tokio::task::JoinSet::new();
    for job in scheduler.jobs() {
        jobs.spawn(scheduler.clone().job_loop(job, stop_rx.clone()));
    }
    if config.feeds.websub.builtin() {
        let websub = scheduler.ingester.websub().clone();
        jobs.spawn(crate::websub::distribute::run(websub, stop_rx.clone()));
    }
    let rules = crate::web::server::Rules::of(&config.http);
    let mut server = crate::web::server::start(routed, stop_rx, rules)
        .context("cannot start the HTTP threads")?;
    tracing::info!(address = %at.public, public_url = %config.public_url(), "listening");
    if let Some(metrics) = at.metrics {
        tracing::info!(address = %metrics, "serving /metrics");
    }
    announce(&at);

    stop_signal.await;
    tracing::info!("stopping: no new work; waiting for what is in flight");
    stop.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let grace = env.shutdown;
    let finished = tokio::time::timeout(grace, async {
        while jobs.join_next().await.is_some() {}
        server.stopped().await;
        // Confirmation emails of sign-ups just answered.
        background.close();
        background.wait().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            seconds = grace.as_secs(),
            "gave up waiting; rows still sending are taken again after their lease"
        );
    }
    store.close().await;
    server.release().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store, waiting for a database server that is not up yet (a
/// machine booting, PostgreSQL restarting): each failure is logged and
/// tried again with a growing pause, up to a minute; `None` when a stop
/// signal came first.
async fn open_store(
    config: &Config,
    stop: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> Result<Option<Store>> {
    let mut pause = StdDuration::from_secs(1);
    loop {
        match Store::open(&config.storage.url).await {
            Ok(store) => return Ok(Some(store)),
            // A SQLite file that cannot be opened will not open later.
            Err(e) if matches!(config.storage.url, crate::config::StorageUrl::Sqlite(_)) => {
                return Err(e);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), retry_in_s = pause.as_secs(), "cannot open the store");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.as_mut() => return Ok(None),
                }
                pause = (pause * 2).min(StdDuration::from_secs(60));
            }
        }
    }
}
