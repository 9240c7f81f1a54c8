//! Ingest: read every source, match each story to what the store already
//! has, and record what is new, changed, unchanged or withdrawn — in one
//! transaction.
//!
//! [`ingest`] runs the steps: what the store holds read while the story
//! folders are listed, the remote sources scanned all at once
//! ([`scan_all`]), then, in the order of the config, each source's changes
//! planned ([`plan`](super::plan)) and written as they come, a story
//! folder a part at a time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::Planner;
// `tidings check` matches its scans against an empty store through here.
use crate::config::{Config, DirectorySource, Source};
use crate::model::problem::Problem;
use crate::sources::directory::{self, Listing};
use crate::sources::{self, SourceState, http};
use crate::store::{Committed, Store, StoredRef, Writes};

/// What one ingest run did.
#[derive(Debug, Default)]
pub struct Report {
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Of the unchanged, those the source did not need to read again.
    pub unread: usize,
    pub withdrawn: usize,
    /// Items skipped because they could not be read, with the reason.
    pub skipped: Vec<Problem>,
    /// What the run changed in what the stories show, when it did.
    pub committed: Option<Committed>,
}

impl Report {
    pub fn changes(&self) -> usize {
        self.new + self.changed + self.withdrawn
    }
}

/// Which sources a run reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// Every source (`tidings build`, the CMS hook, the service's start).
    All,
    /// The sources polled on `[schedule] ingest`: those without a
    /// `schedule` of their own.
    Unscheduled,
    /// One source, by key (its own schedule fired).
    Only(String),
    /// The sources read from disk (`tidings check`, which probes the
    /// remote ones instead of reading them whole).
    Local,
}

impl Which {
    pub fn includes(&self, source: &Source) -> bool {
        match self {
            Which::All => true,
            Which::Unscheduled => source.schedule().is_none(),
            Which::Only(key) => source.key() == *key,
            Which::Local => !source.is_remote(),
        }
    }
}

/// What reading the sources gave.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Per source read: its key and what it holds.
    pub scans: Vec<(String, sources::Scan)>,
    /// Sources that could not be read at all.
    pub problems: Vec<Problem>,
    /// Sources whose stories not listed in this run stay as they are:
    /// those that failed, those read only in part, those not read now.
    pub keep: HashSet<String>,
    /// New state to store, per remote source.
    pub states: Vec<(String, SourceState)>,
}

/// What the store holds that the sources need to read again: read once
/// per ingest, shared by every source.
#[derive(Debug, Default)]
pub struct Known {
    /// The stamp of each published story, by origin: an item whose stamp
    /// still holds is skipped, unread.
    stamps: Arc<HashMap<String, String>>,
    /// How many stories each source has published, by its key.
    published: HashMap<String, usize>,
}

impl Known {
    /// The stamp of each published story, by origin, borrowed.
    fn stamps(stored: &[StoredRef]) -> foldhash::HashMap<&str, &str> {
        // Sized for all: grown as it fills, a map of 20,000 is rehashed
        // eleven times.
        let mut stamps =
            foldhash::HashMap::with_capacity_and_hasher(stored.len(), Default::default());
        stamps.extend(
            stored
                .iter()
                .filter(|s| !s.withdrawn)
                .filter_map(|s| Some((s.origin.as_str(), s.stamp.as_deref()?))),
        );
        stamps
    }

    pub fn of(stored: &[StoredRef]) -> Known {
        let mut published: HashMap<String, usize> = HashMap::new();
        for s in stored.iter().filter(|s| !s.withdrawn) {
            match published.get_mut(s.source.as_str()) {
                Some(n) => *n += 1,
                None => {
                    published.insert(s.source.clone(), 1);
                }
            }
        }
        let stamps = Known::stamps(stored)
            .into_iter()
            .map(|(origin, stamp)| (origin.to_owned(), stamp.to_owned()))
            .collect();
        Known {
            stamps: Arc::new(stamps),
            published,
        }
    }
}

/// Reads the chosen sources for which `here` holds (the others are
/// neither read nor kept), the remote ones concurrently, without touching
/// the store (also used by `check`, with nothing known).
pub async fn scan_all(
    config: &Config,
    client: &http::Client,
    known: &Known,
    states: &HashMap<String, SourceState>,
    which: &Which,
    now: DateTime<Utc>,
    here: impl Fn(&Source) -> bool,
) -> Scanned {
    let mut out = Scanned::default();
    let mut reads = Vec::new();
    for source in &config.sources {
        let key = source.key();
        if !which.includes(source) {
            out.keep.insert(key);
            continue;
        }
        if !here(source) {
            continue;
        }
        let cx = sources::Context {
            config,
            client,
            known: known.stamps.clone(),
            published: known.published.get(key.as_str()).copied().unwrap_or(0),
            state: states.get(&key).cloned().unwrap_or_default(),
            now,
        };
        reads.push(async move { (key, sources::scan(cx, source).await) });
    }
    for (key, result) in futures_util::future::join_all(reads).await {
        match result {
            Ok(mut scan) => {
                if scan.partial {
                    out.keep.insert(key.clone());
                }
                if let Some(state) = scan.state.take() {
                    out.states.push((key.clone(), state));
                }
                out.scans.push((key, scan));
            }
            Err(p) => {
                tracing::warn!(source = %key, problem = %p, "source skipped");
                out.problems.push(p);
                out.keep.insert(key);
            }
        }
    }
    out
}

/// Runs one ingest of the chosen sources against the store: what it holds
/// read, the remote sources scanned, every change written in one
/// transaction, then the remote sources' new states saved.
pub async fn ingest(
    config: &Config,
    store: &Store,
    which: &Which,
    now: DateTime<Utc>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let before = read_before(config, store, which).await?;
    let client = http::Client::new(config)?;
    // Remote sources first, all at once, and before the store's write
    // lock is taken: they may take seconds to answer.
    let mut scanned = scan_all(
        config,
        &client,
        &before.known,
        &before.states,
        which,
        now,
        |s| !matches!(s, Source::Directory(_)),
    )
    .await;
    let remote_done = started.elapsed();
    let mut writes = store.begin_writes(now).await?;
    if before.stored.is_empty() {
        writes.keep_index();
    }
    let mut report = write_changes(config, which, &mut writes, before, &mut scanned).await?;
    report.committed = writes.commit().await?;
    // After the stories: a crash in between reads the same items again.
    for (key, state) in &scanned.states {
        store.save_source_state(key, state, now).await?;
    }
    tracing::info!(
        remote_ms = remote_done.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        new = report.new,
        changed = report.changed,
        withdrawn = report.withdrawn,
        unchanged = report.unchanged,
        unread = report.unread,
        skipped = report.skipped.len() + scanned.problems.len(),
        "ingest"
    );
    scanned.problems.append(&mut report.skipped);
    report.skipped = scanned.problems;
    Ok(report)
}

/// What the store and the story folders hold before a run reads any
/// source.
struct Before {
    /// Every story the store holds, withdrawn ones too: shared with the
    /// threads that read the story folders.
    stored: Arc<Vec<StoredRef>>,
    /// What the remote sources need to know of `stored` (nothing when none
    /// is chosen: the story folders look `stored` up themselves).
    known: Known,
    /// Each chosen story folder's listing, by source key.
    listings: HashMap<String, Listing>,
    /// The remote sources' states, by key; none when no remote source is
    /// chosen.
    states: HashMap<String, SourceState>,
}

/// Reads what the store holds while the story folders are listed (a
/// `stat` per file): on a large site these are the two longest waits of a
/// build with little new.
async fn read_before(config: &Config, store: &Store, which: &Which) -> Result<Before> {
    // Whether the store holds no story, once known: then the files found
    // are all read, and the listing asks nothing more of them.
    let empty = Arc::new(std::sync::OnceLock::new());
    let listing = list_folders(config, which, empty.clone());
    let stored = store.story_refs().await?;
    let _ = empty.set(stored.is_empty());
    // A folder that could not be listed is listed again by its scan, which
    // reports why.
    let listings = listing.await.unwrap_or_default();
    let remote = config
        .sources
        .iter()
        .any(|s| which.includes(s) && s.is_remote());
    let (states, known) = if remote {
        (store.source_states().await?, Known::of(&stored))
    } else {
        (HashMap::new(), Known::default())
    };
    Ok(Before {
        stored: Arc::new(stored),
        known,
        listings,
        states,
    })
}

/// Lists the chosen story folders on a blocking thread; those that cannot
/// be listed are left out. The files' metadata is left out when `empty`
/// says, by the time they are found, that the store holds no story.
fn list_folders(
    config: &Config,
    which: &Which,
    empty: Arc<std::sync::OnceLock<bool>>,
) -> JoinHandle<HashMap<String, Listing>> {
    let folders: Vec<(String, DirectorySource)> = config
        .sources
        .iter()
        .filter(|s| which.includes(s))
        .filter_map(|s| match s {
            Source::Directory(d) => Some((s.key(), d.clone())),
            _ => None,
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        folders
            .into_iter()
            .filter_map(|(key, d)| {
                let listing = directory::list(&d, || empty.get() != Some(&true));
                Some((key, listing.ok()?))
            })
            .collect()
    })
}

/// Plans and writes each source's changes as they are found, in the order
/// of the config, then the withdrawals of the stories no source listed;
/// returns the run's report. A story folder is read a part at a time
/// while the part before is written, so that a first build of a large
/// site neither holds every story at once nor waits for the parsing to
/// end before writing. A folder that cannot be listed joins `scanned`'s
/// problems, and its stories stay as they are.
async fn write_changes(
    config: &Config,
    which: &Which,
    writes: &mut Writes,
    before: Before,
    scanned: &mut Scanned,
) -> Result<Report> {
    let Before {
        stored,
        mut listings,
        ..
    } = before;
    let mut remote: HashMap<String, sources::Scan> =
        std::mem::take(&mut scanned.scans).into_iter().collect();
    // Made once the first folder's reading has started: its files are
    // matched to their stamps on the other core meanwhile.
    let mut planner: Option<Planner> = None;
    for source in &config.sources {
        let key = source.key();
        if let Some(scan) = remote.remove(&key) {
            let planner = planner.get_or_insert_with(|| Planner::new(config, &stored));
            writes.apply(&planner.add(&key, scan)).await?;
            continue;
        }
        let Source::Directory(dir) = source else {
            continue;
        };
        if !which.includes(source) {
            continue;
        }
        let (mut parts, reading) =
            read_in_parts(config, dir, stored.clone(), listings.remove(&key));
        let planner = planner.get_or_insert_with(|| Planner::new(config, &stored));
        // Each part is planned while the part before is written: the
        // store writes on a thread of its own.
        let mut next = parts.recv().await.map(|part| planner.add(&key, part));
        while let Some(changes) = next {
            let planned = async {
                let part = parts.recv().await?;
                Some(planner.add(&key, part))
            };
            let (applied, planned) = tokio::join!(writes.apply(&changes), planned);
            applied?;
            next = planned;
        }
        match reading.await {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => {
                tracing::warn!(source = %key, %problem, "source skipped");
                scanned.problems.push(problem);
                scanned.keep.insert(key);
            }
            Err(e) => anyhow::bail!("reading the source {key} failed: {e}"),
        }
    }
    let planner = planner.unwrap_or_else(|| Planner::new(config, &stored));
    let (withdrawals, report) = planner.finish(&scanned.keep);
    writes.apply(&withdrawals).await?;
    Ok(report)
}

/// Starts reading a story folder on a blocking thread, [`directory::PART`]
/// files at a time: the parts come through the channel, one ahead of the
/// writes; the task ends with the folder's problem if it cannot be listed.
fn read_in_parts(
    config: &Config,
    dir: &DirectorySource,
    stored: Arc<Vec<StoredRef>>,
    listing: Option<Listing>,
) -> (
    mpsc::Receiver<sources::Scan>,
    JoinHandle<Result<(), Problem>>,
) {
    let (parts_tx, parts) = mpsc::channel(1);
    let (config, dir) = (config.clone(), dir.clone());
    let reading = tokio::task::spawn_blocking(move || {
        // Borrowed from what the store read, here rather than on the
        // async side: a large site has tens of thousands of stamps.
        let known = Known::stamps(&stored);
        // A story stored with its rendered body (before bodies were
        // rendered when shown) is compared by rendering its Markdown
        // (`Planner::update`); no other needs it held.
        let markdown = if stored
            .iter()
            .any(|r| !r.lazy && r.source.starts_with("directory:"))
        {
            directory::Markdown::Keep
        } else {
            directory::Markdown::Leave
        };
        directory::scan_parts(
            &config,
            &dir,
            &known,
            listing,
            directory::PART,
            markdown,
            |part| parts_tx.blocking_send(part).is_ok(),
        )
    });
    (parts, reading)
}
