//! Ingest: read every source, match each story to what the store already
//! has, and record what is new, changed, unchanged or withdrawn.
//!
//! Matching is by the editor's `id` when given, else by slug (slugs are
//! unique across the site). A story seen for the first time gets its id
//! from its slug; from then on the id is stored and never changes. Items
//! that exist but cannot be read keep their stored version: a typo in front
//! matter must not withdraw a published story.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::config::{Config, DirectorySource, Source};
use crate::model::problem::Problem;
use crate::model::{Story, StoryId};
use crate::sources::{self, ItemRef, SourceState, http};
use crate::store::{Change, Store, StoredRef};

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
        let stamps = stored
            .iter()
            .filter(|s| !s.withdrawn)
            .filter_map(|s| Some((s.origin.clone(), s.stamp.clone()?)))
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

/// Runs one ingest of the chosen sources against the store.
pub async fn ingest(
    config: &Config,
    store: &Store,
    which: &Which,
    now: DateTime<Utc>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    // The story folders are listed (a `stat` per file) while the store
    // reads what it holds: on a large site these are the two longest waits
    // of a build with little new.
    let folders: Vec<(String, DirectorySource)> = config
        .sources
        .iter()
        .filter(|s| which.includes(s))
        .filter_map(|s| match s {
            Source::Directory(d) => Some((s.key(), d.clone())),
            _ => None,
        })
        .collect();
    let listing = tokio::task::spawn_blocking(move || {
        folders
            .into_iter()
            .filter_map(|(key, d)| Some((key, sources::directory::list(&d).ok()?)))
            .collect::<HashMap<_, _>>()
    });
    let stored = store.story_refs().await?;
    // A folder that could not be listed is listed again by its scan, which
    // reports why.
    let listings = listing.await.unwrap_or_default();
    let states = if config
        .sources
        .iter()
        .any(|s| which.includes(s) && s.is_remote())
    {
        store.source_states().await?
    } else {
        HashMap::new()
    };
    let client = http::Client::new(config)?;
    let known = Known::of(&stored);
    // Remote sources first, all at once, and before the store's write
    // lock is taken: they may take seconds to answer.
    let mut listings = listings;
    let Scanned {
        scans,
        problems: mut source_problems,
        mut keep,
        states: new_states,
    } = scan_all(config, &client, &known, &states, which, now, |s| {
        !matches!(s, Source::Directory(_))
    })
    .await;
    let mut remote: HashMap<String, sources::Scan> = scans.into_iter().collect();
    let scanned = started.elapsed();

    // Then, in the order of the config, each source's changes go to the
    // store as they are found: a story folder is read a part at a time
    // while the part before is written, so that a first build of a large
    // site neither holds every story at once nor waits for the parsing
    // to end before writing.
    let mut planner = Planner::new(config, &stored);
    let mut writes = store.begin_writes(now).await?;
    for source in &config.sources {
        let key = source.key();
        if let Some(scan) = remote.remove(&key) {
            writes.apply(&planner.add(&key, scan)).await?;
            continue;
        }
        let Source::Directory(dir) = source else {
            continue;
        };
        if !which.includes(source) {
            continue;
        }
        let (parts_tx, mut parts) = tokio::sync::mpsc::channel(1);
        let reading = {
            let (config, dir, known) = (config.clone(), dir.clone(), known.stamps.clone());
            let listing = listings.remove(&key);
            tokio::task::spawn_blocking(move || {
                sources::directory::scan_parts(
                    &config,
                    &dir,
                    &known,
                    listing,
                    sources::directory::PART,
                    |part| parts_tx.blocking_send(part).is_ok(),
                )
            })
        };
        while let Some(part) = parts.recv().await {
            writes.apply(&planner.add(&key, part)).await?;
        }
        match reading.await {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => {
                tracing::warn!(source = %key, %problem, "source skipped");
                source_problems.push(problem);
                keep.insert(key);
            }
            Err(e) => anyhow::bail!("reading the source {key} failed: {e}"),
        }
    }
    let (withdrawals, mut report) = planner.finish(&keep);
    writes.apply(&withdrawals).await?;
    writes.commit().await?;
    // After the stories: a crash in between reads the same items again.
    for (key, state) in &new_states {
        store.save_source_state(key, state, now).await?;
    }
    tracing::info!(
        remote_ms = scanned.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        new = report.new,
        changed = report.changed,
        withdrawn = report.withdrawn,
        unchanged = report.unchanged,
        unread = report.unread,
        skipped = report.skipped.len() + source_problems.len(),
        "ingest"
    );
    source_problems.append(&mut report.skipped);
    report.skipped = source_problems;
    Ok(report)
}

/// The changes to make, and the report that goes with them.
pub struct Plan {
    pub changes: Vec<Change>,
    pub report: Report,
}

/// Matches scanned stories to stored ones. Pure, so it can be tested
/// without a store.
pub fn plan(
    config: &Config,
    scans: Vec<(String, sources::Scan)>,
    stored: &[StoredRef],
    keep: &HashSet<String>,
) -> Plan {
    let mut planner = Planner::new(config, stored);
    let mut changes = Vec::new();
    for (source, scan) in scans {
        changes.extend(planner.add(&source, scan));
    }
    let (withdrawals, report) = planner.finish(keep);
    changes.extend(withdrawals);
    Plan { changes, report }
}

/// [`plan`] a part at a time: what each source's scan (or each part of
/// it) changes, as it comes, then the stories no source listed.
///
/// Within a part, failed items come first, then drafts, then unchanged
/// items, then stories; a folder read in parts gives its unchanged items
/// in its first part. The one order that parts change: a draft that
/// claims a stored story which a story in an earlier part already
/// matched (two files with one slug, one a draft) withdraws it after that
/// story's update instead of before; either way it ends withdrawn.
pub struct Planner<'a> {
    config: &'a Config,
    stored: &'a [StoredRef],
    by_id: HashMap<&'a str, &'a StoredRef>,
    by_slug: HashMap<&'a str, &'a StoredRef>,
    by_origin: HashMap<&'a str, &'a StoredRef>,
    // Borrowed from `stored` where they can be: a large site has tens of
    // thousands of unchanged stories on every run.
    taken_ids: HashSet<Cow<'a, str>>,
    /// Stored stories seen in this run (a new id is never a stored one).
    matched: HashSet<&'a str>,
    protected: HashSet<&'a str>,
    seen_slugs: HashMap<Cow<'a, str>, Cow<'a, str>>,
    report: Report,
}

impl<'a> Planner<'a> {
    pub fn new(config: &'a Config, stored: &'a [StoredRef]) -> Planner<'a> {
        Planner {
            config,
            stored,
            by_id: stored.iter().map(|s| (s.id.as_str(), s)).collect(),
            by_slug: stored.iter().map(|s| (s.slug.as_str(), s)).collect(),
            by_origin: stored.iter().map(|s| (s.origin.as_str(), s)).collect(),
            taken_ids: stored.iter().map(|s| s.id.as_str().into()).collect(),
            matched: HashSet::with_capacity(stored.len()),
            protected: HashSet::new(),
            seen_slugs: HashMap::with_capacity(stored.len()),
            report: Report::default(),
        }
    }

    fn find(&self, item_id: Option<&StoryId>, slug: Option<&str>) -> Option<&'a StoredRef> {
        match item_id {
            Some(id) => self.by_id.get(id.as_str()).copied(),
            None => slug.and_then(|s| self.by_slug.get(s).copied()),
        }
    }

    /// The changes one scan (or part of one) of `source` makes.
    pub fn add(&mut self, source: &str, scan: sources::Scan) -> Vec<Change> {
        let mut changes = Vec::new();
        for (problem, item) in scan.failed {
            // The file it came from is the surest match: front matter that
            // no longer parses may hide the story's own slug or id.
            let by_file = self.by_origin.get(item.origin.as_str()).copied();
            for s in by_file
                .into_iter()
                .chain(self.find(item.id.as_ref(), item.slug.as_deref()))
            {
                self.protected.insert(s.id.as_str());
            }
            self.report.skipped.push(problem);
        }
        for ItemRef { id, slug, .. } in &scan.drafts {
            if let Some(s) = self.find(id.as_ref(), slug.as_deref()) {
                self.matched.insert(s.id.as_str());
                if !s.withdrawn {
                    changes.push(Change::Withdraw { id: s.id.clone() });
                    self.report.withdrawn += 1;
                }
            }
        }
        for item in &scan.unchanged {
            // Not read again: the source vouches it did not change.
            if let Some(s) = self.by_origin.get(item.origin.as_str()).copied() {
                self.matched.insert(s.id.as_str());
                self.seen_slugs
                    .insert(s.slug.as_str().into(), s.origin.as_str().into());
                self.report.unchanged += 1;
                self.report.unread += 1;
            }
        }
        // Here, not on rayon's threads: they are parsing the next part, and
        // a thousand hashes take a few milliseconds.
        for story in scan.stories {
            let hash = story.content_hash();
            if let Some(change) = self.story(source, story, hash) {
                changes.push(change);
            }
        }
        changes
    }

    /// What one story read in this run changes, if anything.
    fn story(&mut self, source: &str, story: Story, hash: String) -> Option<Change> {
        if let Some(first) = self.seen_slugs.get(story.slug.as_str()) {
            self.report.skipped.push(Problem::new(
                &story.origin,
                format!(
                    "the slug `{}` is already used by {first}; give this story its own `slug`",
                    story.slug
                ),
            ));
            return None;
        }
        let existing = self
            .find(story.id.as_ref(), Some(&story.slug))
            .filter(|s| !self.matched.contains(s.id.as_str()));
        // A slug held in the store by another story (one not read in
        // this run: a source on its own schedule, one read in part, a
        // withdrawn story) is not taken over; that story keeps its own.
        if let Some(holder) = self.by_slug.get(story.slug.as_str()).copied()
            && existing.is_none_or(|e| e.id != holder.id)
        {
            self.report.skipped.push(Problem::new(
                &story.origin,
                format!(
                    "the slug `{}` is already used by {}{}; give this story its own `slug`",
                    story.slug,
                    holder.origin,
                    if holder.withdrawn { " (withdrawn)" } else { "" }
                ),
            ));
            if let Some(e) = existing {
                self.protected.insert(e.id.as_str());
            }
            return None;
        }
        self.seen_slugs
            .insert(story.slug.clone().into(), story.origin.clone().into());
        match existing {
            Some(s) => {
                self.matched.insert(s.id.as_str());
                let content_changed = hash != s.content_hash;
                if content_changed || s.withdrawn {
                    // Back from withdrawal counts as updated: the same
                    // story, not a new one.
                    self.report.changed += 1;
                    Some(Change::Update {
                        id: s.id.clone(),
                        source: source.to_owned(),
                        story: Box::new(story),
                        hash,
                        content_changed,
                    })
                } else {
                    self.report.unchanged += 1;
                    (s.origin != story.origin || s.source != source || s.stamp != story.stamp).then(
                        || Change::Seen {
                            id: s.id.clone(),
                            origin: story.origin.clone(),
                            source: source.to_owned(),
                            stamp: story.stamp.clone(),
                        },
                    )
                }
            }
            None => {
                let id = match &story.id {
                    Some(id) if self.taken_ids.contains(id.as_str()) => {
                        self.report.skipped.push(
                            Problem::new(
                                &story.origin,
                                format!(
                                    "the id `{id}` is already used by another story; ids must be unique"
                                ),
                            )
                            .key("id"),
                        );
                        return None;
                    }
                    Some(id) => id.clone(),
                    None => fresh_id(&story.slug, &self.taken_ids),
                };
                self.taken_ids.insert(id.to_string().into());
                let guid = guid_for(self.config, &id, &story);
                self.report.new += 1;
                Some(Change::Insert {
                    id,
                    guid,
                    source: source.to_owned(),
                    story: Box::new(story),
                    hash,
                })
            }
        }
    }

    /// The withdrawals of stored stories no scan listed, except those of
    /// sources in `keep`, and the run's report.
    pub fn finish(self, keep: &HashSet<String>) -> (Vec<Change>, Report) {
        let mut report = self.report;
        let mut changes = Vec::new();
        for s in self.stored {
            let gone = !s.withdrawn
                && !self.matched.contains(s.id.as_str())
                && !self.protected.contains(s.id.as_str())
                && !keep.contains(&s.source);
            if gone {
                changes.push(Change::Withdraw { id: s.id.clone() });
                report.withdrawn += 1;
            }
        }
        (changes, report)
    }
}

/// The slug as an id, or the slug with `-2`, `-3`… when another story
/// already has that id.
fn fresh_id(slug: &str, taken: &HashSet<Cow<str>>) -> StoryId {
    let mut candidate = slug.to_owned();
    let mut n = 2;
    while taken.contains(candidate.as_str()) {
        candidate = format!("{slug}-{n}");
        n += 1;
    }
    StoryId::parse(&candidate).expect("slugs are valid ids")
}

/// The feed-wide identifier of a story, fixed when it is first stored: a
/// `tag:` URI (RFC 4151) from the site's host, the story's date and its id,
/// so it survives edits and never looks like a link.
fn guid_for(config: &Config, id: &StoryId, story: &Story) -> String {
    let host = config.site.base_url.host_str().unwrap_or("localhost");
    let date = story
        .published
        .with_timezone(&config.site.timezone)
        .format("%Y-%m-%d");
    format!("tag:{host},{date}:{id}")
}
