//! The ledger worker: claim deliveries of an edition, render each message,
//! send it, and mark the row — until every row is sent, failed or skipped.
//!
//! Nothing is sent that the ledger does not hold first, and a row is marked
//! only after its send returned, so a crash at any moment loses nothing:
//! on the next run rows still `pending` are sent, and rows left `sending`
//! are taken again once their lease lapses (those alone may go out twice).
//! Temporary failures wait with exponential backoff and jitter; permanent
//! ones end the row, and a refused address marks the subscriber bounced.
//! A transport that cannot work as set up (TLS, login, an unwritable
//! outbox: [`SendError::Config`]) stops the edition at once: the rows
//! claimed go back to `pending` untried and the run ends with the reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};

use super::compose;
use super::email::{Composer, Issue};
use super::pieces::Pieces;
use super::render::{self, Templates};
use crate::config::{Config, Digest};
use crate::links::tokens::Signer;
use crate::mail::Mailer;
use crate::mail::transport::{SendError, Sender};
use crate::model::{DeliveryState, Status, Subscriber};
use crate::store::editions::{Claimed, Counts, Edition, Sent};
use crate::store::{Store, StoredStory};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a claimed row is ours before another worker may take it.
    pub lease: Duration,
    /// First wait after a temporary failure; doubles each attempt.
    pub backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lease: Duration::seconds(60),
            backoff: Duration::seconds(30),
        }
    }
}

impl Options {
    /// The lease and backoff of `TIDINGS_LEASE_SECONDS` and
    /// `TIDINGS_BACKOFF_SECONDS` (for tests, and for operators who need
    /// faster crash recovery), or their defaults.
    pub fn new(env: &crate::config::env::Environment) -> Options {
        let d = Options::default();
        Options {
            lease: Duration::from_std(env.lease).unwrap_or(d.lease),
            backoff: Duration::from_std(env.backoff).unwrap_or(d.backoff),
        }
    }
}

/// Everything a worker needs, shared by its tasks.
pub struct Worker<'a> {
    /// What every email of the digest shares.
    pub composer: Composer<'a>,
    pub store: &'a Store,
    pub sender: &'a Sender,
    pub options: Options,
    /// Set to stop claiming new rows (SIGINT/SIGTERM); in-flight sends finish.
    pub stop: Arc<AtomicBool>,
    /// Each edition's pieces, made once per language.
    pub pieces: Pieces,
}

impl<'a> Worker<'a> {
    /// A worker for `digest`, sending through `mailer`: the one way the
    /// service and `digest send` set it up.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &'a Config,
        mailer: &'a Mailer,
        digest: &'a Digest,
        templates: &'a Templates,
        store: &'a Store,
        signer: &'a Signer,
        options: Options,
        stop: Arc<AtomicBool>,
    ) -> Worker<'a> {
        Worker {
            composer: Composer::new(config, mailer, digest, templates, signer),
            store,
            sender: &mailer.sender,
            options,
            stop,
            pieces: Pieces::default(),
        }
    }
}

impl Worker<'_> {
    /// Delivers the edition until every row is done (or `stop` is set).
    /// `progress` is called a few times a second with the counts so far.
    ///
    /// Two stages run side by side: this task claims a batch of rows and
    /// makes their messages on every core (templates, CSS, MIME: the CPU's
    /// work) while a sending task sends the previous batch over
    /// `concurrency` connections and marks each row. A batch is claimed
    /// only once the sending task has taken the one before, so a claimed
    /// row waits at most one batch before it is sent, as when one stage
    /// ran after the other: its lease must not lapse while it waits.
    pub async fn deliver(
        &self,
        edition: &Edition,
        mut progress: impl FnMut(&Counts),
    ) -> Result<Counts> {
        let stories = self.store.edition_stories(edition.id).await?;
        let stories =
            crate::sources::bodies::filled(self.composer.config, self.store, stories).await?;
        let mail = self.composer.mail;
        let batch = mail.concurrency * 4;
        let (queue, queued) = tokio::sync::mpsc::channel(1);
        let halt = Arc::new(OnceLock::new());
        let sending = tokio::spawn(
            Sending {
                sender: self.sender.clone(),
                store: self.store.clone(),
                options: self.options.clone(),
                max_attempts: mail.max_attempts,
                pace: Pacer::new(mail.rate_limit),
                halt: halt.clone(),
            }
            .run(queued, mail.concurrency),
        );
        let claimed = self
            .claim_and_prepare(edition, &stories, batch, queue, &halt, &mut progress)
            .await;
        // The queue is closed: what is in it is sent, then the task ends.
        sending
            .await
            .map_err(|e| anyhow::anyhow!("the sending task failed: {e}"))?;
        claimed?;
        if let Some(reason) = halt.get() {
            // The rows wait, untried, for a run with the setup fixed.
            let left = self.store.delivery_counts(edition.id).await?;
            anyhow::bail!(
                "{reason}\nnothing more was sent: {} of {} deliveries of {} wait for the next run",
                left.pending + left.sending,
                left.total(),
                describe(edition)
            );
        }
        self.store.complete_if_done(edition.id, Utc::now()).await?;
        self.store.delivery_counts(edition.id).await
    }

    async fn claim_and_prepare(
        &self,
        edition: &Edition,
        stories: &[StoredStory],
        batch: usize,
        queue: tokio::sync::mpsc::Sender<Batch>,
        halt: &OnceLock<String>,
        progress: &mut impl FnMut(&Counts),
    ) -> Result<()> {
        // Counting the rows by state reads the whole edition: once a
        // second is enough for a progress bar.
        let mut reported = std::time::Instant::now();
        loop {
            // Room for a batch: the sending task took the previous one.
            let Ok(room) = queue.reserve().await else {
                anyhow::bail!("the sending task stopped");
            };
            if self.stop.load(Ordering::SeqCst) || halt.get().is_some() {
                return Ok(());
            }
            // Before the claim: its leases end a lease from a moment after.
            let claimed_at = std::time::Instant::now();
            let claimed = self
                .store
                .claim_deliveries(edition.id, batch as i64, Utc::now(), self.options.lease)
                .await?;
            if claimed.is_empty() {
                let counts = self.store.delivery_counts(edition.id).await?;
                progress(&counts);
                if counts.done() {
                    return Ok(());
                }
                // Rows being sent, waiting for a retry or for another
                // worker's lease.
                tokio::time::sleep(StdDuration::from_millis(250)).await;
                continue;
            }
            tracing::debug!(
                edition = edition.id,
                claimed = claimed.len(),
                "claimed deliveries"
            );
            let prepared = crate::on_all_cores(|| {
                use rayon::prelude::*;
                claimed
                    .into_par_iter()
                    .map(|c| {
                        let message = self.prepare(edition, stories, &c);
                        (c, message)
                    })
                    .collect::<Vec<_>>()
            });
            room.send(Batch {
                claimed_at,
                rows: prepared,
            });
            if reported.elapsed() >= StdDuration::from_secs(1) {
                progress(&self.store.delivery_counts(edition.id).await?);
                reported = std::time::Instant::now();
            }
        }
    }

    /// The row's message, or what became of the row without one.
    fn prepare(
        &self,
        edition: &Edition,
        stories: &[StoredStory],
        claimed: &Claimed,
    ) -> Result<(String, lettre::Message), Outcome> {
        let id = claimed.delivery_id;
        let person = &claimed.subscriber;
        if person.status != Status::Active {
            return Err(Outcome::Final(
                DeliveryState::Skipped,
                format!("{} before sending", person.status),
            ));
        }
        let sections = self.composer.sections(&person.themes, stories);
        if compose::story_count(&sections) == 0 && self.composer.digest.skip_if_empty {
            return Err(Outcome::Final(
                DeliveryState::Skipped,
                "nothing new in their themes".into(),
            ));
        }
        // A message that cannot be made (a broken template, an address the
        // builder refuses) will not be made on a later attempt either.
        self.message(edition, stories, person, sections)
            .map_err(|e| {
                let reason = format!("cannot build the message: {e:#}");
                tracing::error!(delivery = id, error = %reason, "delivery failed");
                Outcome::Final(DeliveryState::Failed, reason)
            })
    }

    /// The message for one subscriber, with its Message-ID: the edition's
    /// pieces joined with their values (see [`Pieces`]).
    fn message(
        &self,
        edition: &Edition,
        stories: &[StoredStory],
        person: &Subscriber,
        sections: Vec<render::Section<'_>>,
    ) -> Result<(String, lettre::Message)> {
        let composer = &self.composer;
        let host = composer
            .config
            .site
            .base_url
            .host_str()
            .unwrap_or("localhost");
        // Deliberately not random (unlike every other Message-ID, see
        // `message::unique_message_id`): one edition goes to one subscriber
        // once, so (edition, subscriber) names the message, and a copy sent
        // again after a crash (its row was in flight) carries the same
        // Message-ID, so that mail clients and tests see it is a copy. The
        // `file:` transport keeps both copies under two names.
        let message_id = format!(
            "e{}.s{}.{}@{host}",
            edition.id, person.id, composer.digest.id
        );
        let issue = Issue {
            edition: Some(edition.id),
            issued: edition.created_at,
            period: edition.period(),
            test: false,
        };
        composer.with_email(person.into(), sections, issue, |email| {
            let encoded = self.pieces.render(
                composer.templates,
                edition.id,
                email,
                stories,
                &person.themes,
            )?;
            let message = composer.build(
                email,
                encoded,
                message_id.clone(),
                Some((edition.id, person.id)),
            )?;
            Ok((message_id.clone(), message))
        })
    }
}

/// A claimed row with its message, or with what became of it already.
type Prepared = (Claimed, Result<(String, lettre::Message), Outcome>);

/// The rows of one claim, made ready.
struct Batch {
    /// A moment before the claim, so that their leases last at least a
    /// lease from then.
    claimed_at: std::time::Instant,
    rows: Vec<Prepared>,
}

/// How many rows a connection may have sent and not yet marked.
const UNMARKED_PER_CONNECTION: usize = 2;

/// How long the recording task waits for more rows to mark in one commit.
const GATHER_FOR: StdDuration = StdDuration::from_millis(2);

/// A row tried, with what became of it and its place among the rows sent
/// and not yet marked.
type Done = (Claimed, Outcome, tokio::sync::OwnedSemaphorePermit);

/// The sending stage: what it needs, owned, so that it runs as a task of
/// its own.
struct Sending {
    sender: Sender,
    store: Store,
    options: Options,
    max_attempts: u32,
    pace: Pacer,
    /// Set, with the reason, by the first [`SendError::Config`]: from then
    /// on nothing is sent and every claimed row is given back untried.
    halt: Arc<OnceLock<String>>,
}

impl Sending {
    /// Takes the prepared batches in turn. Each message is sent on a task
    /// of its own as soon as one of the `concurrency` connections is free,
    /// so the sends of one batch and the next overlap and use every thread
    /// of the runtime; what became of each row goes to a recording task,
    /// which writes the rows to the ledger many at a time. Returns once
    /// every row taken is sent and recorded.
    async fn run(self, mut queued: tokio::sync::mpsc::Receiver<Batch>, concurrency: usize) {
        let this = Arc::new(self);
        let connections = Arc::new(tokio::sync::Semaphore::new(concurrency));
        // Rows sent (or being sent) and not yet marked: two a connection,
        // so that a connection sends its next message while the ledger
        // records its last one (the marks gather more rows a commit), but
        // not a third before it is: a crash sends again at most two a
        // connection, and an unwritable ledger stops the sending.
        let unmarked = Arc::new(tokio::sync::Semaphore::new(
            UNMARKED_PER_CONNECTION * concurrency,
        ));
        let (done, finished) = tokio::sync::mpsc::channel(UNMARKED_PER_CONNECTION * concurrency);
        let recording = tokio::spawn(Arc::clone(&this).record_all(finished, concurrency));
        while let Some(Batch {
            claimed_at,
            rows: batch,
        }) = queued.recv().await
        {
            if let Some(reason) = this.halt.get() {
                // Claimed before the halt: given back untried.
                for (c, _) in &batch {
                    this.give_back(c, reason).await;
                }
                continue;
            }
            // The batch waited while the one before was sent. If half a
            // lease has passed since it was claimed, its leases are
            // renewed before its first send, and rows another worker took
            // meanwhile (their lease lapsed) are left to it; before that,
            // no lease can have lapsed, and every row is still ours. A row
            // waits for its turn (the rate limit) and a free connection;
            // whenever half a lease passes meanwhile, the leases of the
            // rows not yet started are renewed again, so that none lapses
            // before its send begins.
            let rows: Vec<(i64, i64)> = batch
                .iter()
                .map(|(c, _)| (c.delivery_id, c.attempt))
                .collect();
            let half_lease = this.options.lease.to_std().unwrap_or_default() / 2;
            // The rows still ours after a renewal; before one, all are.
            let mut ours: Option<std::collections::HashSet<i64>> = None;
            let mut renewed = claimed_at;
            for (i, (c, prepared)) in batch.into_iter().enumerate() {
                this.pace.wait().await;
                let place = Arc::clone(&unmarked)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let connection = Arc::clone(&connections)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                if renewed.elapsed() >= half_lease {
                    let Some(still) = this.renew(&rows[i..]).await else {
                        break;
                    };
                    ours = Some(still);
                    renewed = std::time::Instant::now();
                }
                if ours.as_ref().is_some_and(|o| !o.contains(&c.delivery_id)) {
                    continue;
                }
                let (this, done) = (Arc::clone(&this), done.clone());
                tokio::spawn(async move {
                    let outcome = this.outcome(&c, prepared).await;
                    drop(connection);
                    // Its place is given back once the row is recorded.
                    // The recording task ends only after every sender of
                    // `done` is dropped, so it is there to receive.
                    let _ = done.send((c, outcome, place)).await;
                });
            }
        }
        drop(done);
        if let Err(e) = recording.await {
            tracing::error!(error = %e, "the recording task failed");
        }
    }

    /// Writes what became of the rows as they come, many at a time: all
    /// that arrived meanwhile, waiting up to [`GATHER_FOR`] for `gather`
    /// of them (half the rows that may be sent and not yet marked, so the
    /// connections keep sending meanwhile); sent rows in one statement, a
    /// commit for many. Their places among the rows sent and not yet
    /// marked are given back after.
    async fn record_all(
        self: Arc<Self>,
        mut finished: tokio::sync::mpsc::Receiver<Done>,
        gather: usize,
    ) {
        let mut rows = Vec::new();
        while finished.recv_many(&mut rows, 500).await > 0 {
            let until = tokio::time::Instant::now() + GATHER_FOR;
            while rows.len() < gather {
                let room = 500 - rows.len();
                let more = finished.recv_many(&mut rows, room);
                match tokio::time::timeout_at(until, more).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            let sent: Vec<Sent> = rows
                .iter()
                .filter_map(|(c, outcome, _)| match outcome {
                    Outcome::Sent { message_id, reply } => Some(Sent {
                        delivery_id: c.delivery_id,
                        message_id: message_id.clone(),
                        reply: reply.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if !sent.is_empty() {
                let ids = sent.iter().map(|s| s.delivery_id);
                let what = format!(
                    "{} sent deliveries (ids {} to {})",
                    sent.len(),
                    ids.clone().min().unwrap_or_default(),
                    ids.max().unwrap_or_default()
                );
                if let Err(e) = self
                    .record(&what, || self.store.mark_sent(&sent, Utc::now()))
                    .await
                {
                    tracing::error!(error = %format!("{e:#}"), "delivery failed");
                }
            }
            for (c, outcome, _) in &rows {
                if matches!(outcome, Outcome::Sent { .. }) {
                    continue;
                }
                let what = format!("delivery {}", c.delivery_id);
                if let Err(e) = self.record(&what, || self.write_outcome(c, outcome)).await {
                    tracing::error!(error = %format!("{e:#}"), "delivery failed");
                }
            }
            rows.clear();
        }
    }

    /// Renews the leases of `rows` (id, attempt) for a lease from now and
    /// returns the ids still ours; `None` when the store is away (then
    /// their leases lapse and they are claimed again later).
    async fn renew(&self, rows: &[(i64, i64)]) -> Option<std::collections::HashSet<i64>> {
        match self
            .store
            .renew_leases(rows, Utc::now() + self.options.lease)
            .await
        {
            Ok(ids) => Some(ids.into_iter().collect()),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew leases; the batch waits");
                None
            }
        }
    }

    /// Gives a claimed row back untried (its attempt not counted), so that
    /// it is sent once the setup is fixed; if the store cannot be reached
    /// its lease lapses instead and it is claimed again all the same.
    async fn give_back(&self, claimed: &Claimed, reason: &str) {
        let released = self
            .store
            .release_delivery(claimed.delivery_id, claimed.attempt, reason)
            .await;
        if let Err(e) = released {
            tracing::warn!(
                delivery = claimed.delivery_id,
                error = %format!("{e:#}"),
                "cannot give the delivery back; it is taken again when its lease lapses"
            );
        }
    }

    /// Sends the prepared message and says what became of the row.
    async fn outcome(
        &self,
        claimed: &Claimed,
        prepared: Result<(String, lettre::Message), Outcome>,
    ) -> Outcome {
        let id = claimed.delivery_id;
        let (message_id, message) = match prepared {
            Ok(m) => m,
            Err(outcome) => return outcome,
        };
        if let Some(reason) = self.halt.get() {
            return Outcome::GiveBack(reason.clone());
        }
        match self.sender.send(&message_id, &message).await {
            Ok(reply) => Outcome::Sent { message_id, reply },
            Err(SendError::Transient(e)) if (claimed.attempt as u32) < self.max_attempts => {
                let next = Utc::now() + backoff(self.options.backoff, claimed.attempt);
                tracing::warn!(delivery = id, attempt = claimed.attempt, error = %e, "will retry");
                Outcome::Retry { error: e, next }
            }
            Err(SendError::Transient(e)) => Outcome::Final(
                DeliveryState::Failed,
                format!("gave up after {} attempts: {e}", claimed.attempt),
            ),
            Err(SendError::Permanent {
                message,
                address_rejected,
            }) => Outcome::Rejected {
                message,
                bounced: address_rejected,
            },
            Err(SendError::Config(reason)) => {
                // The first one stops the edition; sends already under way
                // end as they end.
                if self.halt.set(reason.clone()).is_ok() {
                    tracing::info!(delivery = id, error = %reason, "sending stopped");
                }
                Outcome::GiveBack(reason)
            }
        }
    }

    /// Writes an outcome with `write`. A message already sent must be
    /// marked so, or it goes out again once the lease lapses: while the
    /// store is unreachable (a database restart, a network cut) the write
    /// is tried again, with growing pauses, for as long as a lease lasts.
    async fn record<F, W>(&self, what: &str, write: F) -> Result<()>
    where
        F: Fn() -> W,
        W: std::future::Future<Output = Result<()>>,
    {
        let give_up = std::time::Instant::now()
            + self
                .options
                .lease
                .to_std()
                .unwrap_or(StdDuration::from_secs(60));
        let mut pause = StdDuration::from_millis(250);
        loop {
            match write().await {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() + pause < give_up => {
                    tracing::warn!(
                        rows = what,
                        error = %format!("{e:#}"),
                        "cannot record the delivery yet; trying again"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(StdDuration::from_secs(5));
                }
                Err(e) => return Err(e.context(format!("recording {what}"))),
            }
        }
    }

    async fn write_outcome(&self, claimed: &Claimed, outcome: &Outcome) -> Result<()> {
        let (id, subscriber) = (claimed.delivery_id, claimed.subscriber.id);
        let store = &self.store;
        match outcome {
            Outcome::GiveBack(reason) => store
                .release_delivery(id, claimed.attempt, reason)
                .await
                .map(drop),
            Outcome::Sent { .. } => {
                unreachable!("sent rows are recorded together, by `record_all`")
            }
            Outcome::Retry { error, next } => store.mark_retry(id, error, *next).await,
            Outcome::Final(status, reason) => {
                store.mark_final(id, *status, reason, Utc::now()).await
            }
            Outcome::Rejected { message, bounced } => {
                if *bounced {
                    store.mark_bounced(subscriber, Utc::now()).await?;
                }
                store
                    .mark_final(id, DeliveryState::Failed, message, Utc::now())
                    .await
            }
        }
    }
}

/// What became of one row.
enum Outcome {
    Sent {
        message_id: String,
        reply: String,
    },
    /// A temporary failure: try again at `next`.
    Retry {
        error: String,
        next: DateTime<Utc>,
    },
    /// `skipped` or `failed`, with the reason.
    Final(DeliveryState, String),
    /// The server refused the message for good; `bounced` when it refused
    /// the address itself.
    Rejected {
        message: String,
        bounced: bool,
    },
    /// Not sent, through no fault of the message: `[mail] transport` does
    /// not work as set up. The row goes back to `pending`, untried.
    GiveBack(String),
}

/// `base` doubled for each attempt after the first, with up to 25% jitter
/// so that many retries do not hit the server at the same moment.
fn backoff(base: Duration, attempt: i64) -> Duration {
    let exp = base * 2i32.pow((attempt - 1).clamp(0, 16) as u32);
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    exp + exp * i32::from(byte[0]) / (4 * 255)
}

/// Spaces sends to at most `rate` per second (0 = unlimited).
struct Pacer {
    interval: Option<tokio::sync::Mutex<tokio::time::Interval>>,
}

impl Pacer {
    fn new(rate: u32) -> Pacer {
        let interval = (rate > 0).then(|| {
            let mut i = tokio::time::interval(StdDuration::from_secs_f64(1.0 / f64::from(rate)));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::sync::Mutex::new(i)
        });
        Pacer { interval }
    }

    async fn wait(&self) {
        if let Some(i) = &self.interval {
            i.lock().await.tick().await;
        }
    }
}

/// A human name for an edition, for logs and status.
pub fn describe(edition: &Edition) -> String {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    format!(
        "edition {} of {} ({} – {})",
        edition.id,
        edition.digest,
        fmt(edition.period_start),
        fmt(edition.period_end)
    )
}
