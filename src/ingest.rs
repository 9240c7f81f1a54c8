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
use rayon::prelude::*;

use crate::config::{Config, DirectorySource, Source};
use crate::diagnostic::Problem;
use crate::sources::{self, ItemRef, SourceState, http};
use crate::store::{Change, Store, StoredRef};
use crate::story::{Story, StoryId};

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

/// Reads the chosen sources, the remote ones concurrently, without
/// touching the store (also used by `check`, with nothing stored).
pub async fn scan_all(
    config: &Config,
    client: &http::Client,
    stored: &[StoredRef],
    states: &HashMap<String, SourceState>,
    which: &Which,
    now: DateTime<Utc>,
    mut listings: HashMap<String, sources::directory::Listing>,
) -> Scanned {
    // Published stories whose items can be skipped when their stamp holds.
    let known: Arc<HashMap<String, String>> = Arc::new(
        stored
            .iter()
            .filter(|s| !s.withdrawn)
            .filter_map(|s| Some((s.origin.clone(), s.stamp.clone()?)))
            .collect(),
    );
    let mut published: HashMap<&str, usize> = HashMap::new();
    for s in stored.iter().filter(|s| !s.withdrawn) {
        *published.entry(s.source.as_str()).or_default() += 1;
    }
    let mut out = Scanned::default();
    let mut reads = Vec::new();
    for source in &config.sources {
        let key = source.key();
        if !which.includes(source) {
            out.keep.insert(key);
            continue;
        }
        let cx = sources::Context {
            config,
            client,
            known: known.clone(),
            listing: listings.remove(&key),
            published: published.get(key.as_str()).copied().unwrap_or(0),
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
    let Scanned {
        scans,
        problems: mut source_problems,
        keep,
        states: new_states,
    } = scan_all(config, &client, &stored, &states, which, now, listings).await;
    let scanned = started.elapsed();
    let plan = plan(config, scans, &stored, &keep);
    let planned = started.elapsed();
    store.apply(&plan.changes, now).await?;
    // After the stories: a crash in between reads the same items again.
    for (key, state) in &new_states {
        store.save_source_state(key, state, now).await?;
    }
    tracing::info!(
        scan_ms = scanned.as_millis() as u64,
        match_ms = (planned - scanned).as_millis() as u64,
        store_ms = (started.elapsed() - planned).as_millis() as u64,
        new = plan.report.new,
        changed = plan.report.changed,
        withdrawn = plan.report.withdrawn,
        unchanged = plan.report.unchanged,
        unread = plan.report.unread,
        skipped = plan.report.skipped.len() + source_problems.len(),
        "ingest"
    );
    let mut report = plan.report;
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
    let by_id: HashMap<&str, &StoredRef> = stored.iter().map(|s| (s.id.as_str(), s)).collect();
    let by_slug: HashMap<&str, &StoredRef> = stored.iter().map(|s| (s.slug.as_str(), s)).collect();
    let by_origin: HashMap<&str, &StoredRef> =
        stored.iter().map(|s| (s.origin.as_str(), s)).collect();
    // Borrowed from `stored` where they can be: a large site has tens of
    // thousands of unchanged stories on every run.
    let mut taken_ids: HashSet<Cow<str>> = stored.iter().map(|s| s.id.as_str().into()).collect();
    // Stored stories seen in this run (a new id is never a stored one).
    let mut matched: HashSet<&str> = HashSet::with_capacity(stored.len());
    let mut protected: HashSet<&str> = HashSet::new();
    let mut seen_slugs: HashMap<Cow<str>, Cow<str>> = HashMap::with_capacity(stored.len());
    let mut changes = Vec::new();
    let mut report = Report::default();

    let find = |item_id: Option<&StoryId>, slug: Option<&str>| -> Option<&StoredRef> {
        match item_id {
            Some(id) => by_id.get(id.as_str()).copied(),
            None => slug.and_then(|s| by_slug.get(s).copied()),
        }
    };

    for (source, scan) in scans {
        for (problem, item) in scan.failed {
            // The file it came from is the surest match: front matter that
            // no longer parses may hide the story's own slug or id.
            let by_file = by_origin.get(item.origin.as_str()).copied();
            for s in by_file
                .into_iter()
                .chain(find(item.id.as_ref(), item.slug.as_deref()))
            {
                protected.insert(s.id.as_str());
            }
            report.skipped.push(problem);
        }
        for ItemRef { id, slug, .. } in &scan.drafts {
            if let Some(s) = find(id.as_ref(), slug.as_deref()) {
                matched.insert(s.id.as_str());
                if !s.withdrawn {
                    changes.push(Change::Withdraw { id: s.id.clone() });
                    report.withdrawn += 1;
                }
            }
        }
        for item in &scan.unchanged {
            // Not read again: the source vouches it did not change.
            if let Some(s) = by_origin.get(item.origin.as_str()) {
                matched.insert(s.id.as_str());
                seen_slugs.insert(s.slug.as_str().into(), s.origin.as_str().into());
                report.unchanged += 1;
                report.unread += 1;
            }
        }
        // Hashing reads every byte of every story: spread it over the cores.
        let hashed: Vec<(Story, String)> = scan
            .stories
            .into_par_iter()
            .map(|story| {
                let hash = story.content_hash();
                (story, hash)
            })
            .collect();
        for (story, hash) in hashed {
            if let Some(first) = seen_slugs.get(story.slug.as_str()) {
                report.skipped.push(Problem::new(
                    &story.origin,
                    format!(
                        "the slug `{}` is already used by {first}; give this story its own `slug`",
                        story.slug
                    ),
                ));
                continue;
            }
            let existing = find(story.id.as_ref(), Some(&story.slug))
                .filter(|s| !matched.contains(s.id.as_str()));
            // A slug held in the store by another story (one not read in
            // this run: a source on its own schedule, one read in part, a
            // withdrawn story) is not taken over; that story keeps its own.
            if let Some(holder) = by_slug.get(story.slug.as_str())
                && existing.is_none_or(|e| e.id != holder.id)
            {
                report.skipped.push(Problem::new(
                    &story.origin,
                    format!(
                        "the slug `{}` is already used by {}{}; give this story its own `slug`",
                        story.slug,
                        holder.origin,
                        if holder.withdrawn { " (withdrawn)" } else { "" }
                    ),
                ));
                if let Some(e) = existing {
                    protected.insert(e.id.as_str());
                }
                continue;
            }
            seen_slugs.insert(story.slug.clone().into(), story.origin.clone().into());
            match existing {
                Some(s) => {
                    matched.insert(s.id.as_str());
                    let content_changed = hash != s.content_hash;
                    if content_changed || s.withdrawn {
                        // Back from withdrawal counts as updated: the same
                        // story, not a new one.
                        report.changed += 1;
                        changes.push(Change::Update {
                            id: s.id.clone(),
                            source: source.clone(),
                            story: Box::new(story),
                            hash,
                            content_changed,
                        });
                    } else {
                        report.unchanged += 1;
                        if s.origin != story.origin || s.source != source || s.stamp != story.stamp
                        {
                            changes.push(Change::Seen {
                                id: s.id.clone(),
                                origin: story.origin.clone(),
                                source: source.clone(),
                                stamp: story.stamp.clone(),
                            });
                        }
                    }
                }
                None => {
                    let id = match &story.id {
                        Some(id) if taken_ids.contains(id.as_str()) => {
                            report.skipped.push(Problem::new(
                                &story.origin,
                                format!("the id `{id}` is already used by another story; ids must be unique"),
                            ).key("id"));
                            continue;
                        }
                        Some(id) => id.clone(),
                        None => fresh_id(&story.slug, &taken_ids),
                    };
                    taken_ids.insert(id.to_string().into());
                    let guid = guid_for(config, &id, &story);
                    changes.push(Change::Insert {
                        id,
                        guid,
                        source: source.clone(),
                        story: Box::new(story),
                        hash,
                    });
                    report.new += 1;
                }
            }
        }
    }

    for s in stored {
        let gone = !s.withdrawn
            && !matched.contains(s.id.as_str())
            && !protected.contains(s.id.as_str())
            && !keep.contains(&s.source);
        if gone {
            changes.push(Change::Withdraw { id: s.id.clone() });
            report.withdrawn += 1;
        }
    }
    Plan { changes, report }
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
