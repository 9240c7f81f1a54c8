//! Planning: which stored story each scanned item is, and what changes —
//! new, changed, unchanged, withdrawn — with the run's [`Report`]. Pure
//! (no store, no I/O): [`ingest`](super::ingest) applies the changes, and
//! `tidings check` plans against an empty store to find duplicate slugs
//! and ids.
//!
//! Matching is by the editor's `id` when given, else by slug (slugs are
//! unique across the site). A story seen for the first time gets its id
//! from its slug; from then on the id is stored and never changes. Items
//! that exist but cannot be read keep their stored version: a typo in front
//! matter must not withdraw a published story.

use std::borrow::Cow;
use std::collections::HashSet;

use foldhash::{HashMap as FastMap, HashMapExt as _, HashSet as FastSet, HashSetExt as _};

use super::ingest::Report;
use crate::config::Config;
use crate::model::problem::Problem;
use crate::model::{Story, StoryId};
use crate::sources::{self, ItemRef, bodies};
use crate::store::{Change, StoredRef};

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
    // Borrowed from `stored` where they can be, hashed with foldhash
    // rather than SipHash: a large site has tens of thousands of unchanged
    // stories on every run.
    by_id: FastMap<&'a str, &'a StoredRef>,
    by_slug: FastMap<&'a str, &'a StoredRef>,
    by_origin: FastMap<&'a str, &'a StoredRef>,
    taken_ids: FastSet<Cow<'a, str>>,
    /// Stored stories seen in this run (a new id is never a stored one).
    matched: FastSet<&'a str>,
    protected: FastSet<&'a str>,
    seen_slugs: FastMap<Cow<'a, str>, Cow<'a, str>>,
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
            matched: FastSet::with_capacity(stored.len()),
            protected: FastSet::new(),
            seen_slugs: FastMap::with_capacity(stored.len()),
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

    /// What one story read in this run changes, if anything: nothing when
    /// its slug is taken, else an update of the stored story it matches or
    /// an insert.
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
        if self.slug_held_by_another(&story, existing) {
            return None;
        }
        self.seen_slugs
            .insert(story.slug.clone().into(), story.origin.clone().into());
        match existing {
            Some(s) => self.update(s, source, story, hash),
            None => self.insert(source, story, hash),
        }
    }

    /// Whether the story's slug is held in the store by another story (one
    /// not read in this run: a source on its own schedule, one read in
    /// part, a withdrawn story), which keeps it rather than being taken
    /// over: then the story is skipped, and the stored one it matched
    /// (`existing`) keeps its version.
    fn slug_held_by_another(&mut self, story: &Story, existing: Option<&'a StoredRef>) -> bool {
        let Some(holder) = self.by_slug.get(story.slug.as_str()).copied() else {
            return false;
        };
        if existing.is_some_and(|e| e.id == holder.id) {
            return false;
        }
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
        true
    }

    /// A story that matches the stored `s`: an update when its content
    /// changed or it comes back from withdrawal, else unchanged (seen
    /// again, noted when its file, source or stamp moved).
    fn update(
        &mut self,
        s: &'a StoredRef,
        source: &str,
        story: Story,
        hash: String,
    ) -> Option<Change> {
        self.matched.insert(s.id.as_str());
        let mut story = story;
        let mut content_changed = hash != s.content_hash;
        // Stored before bodies were rendered on demand, its hash covers
        // its rendered body: rendered now, the story is compared as it
        // was, and stored the new way whether or not it changed.
        let mut restored = false;
        if content_changed && !s.lazy && bodies::render_held(self.config, &mut story) {
            let source = story.body_source.take();
            content_changed = story.content_hash() != s.content_hash;
            story.body_source = source;
            restored = !content_changed;
        }
        if content_changed || s.withdrawn || restored {
            if content_changed || s.withdrawn {
                // Back from withdrawal counts as updated: the same
                // story, not a new one.
                self.report.changed += 1;
            } else {
                self.report.unchanged += 1;
            }
            Some(Change::Update {
                id: s.id.clone(),
                source: source.to_owned(),
                story: Box::new(story),
                hash,
                content_changed,
            })
        } else {
            self.report.unchanged += 1;
            (s.origin != story.origin || s.source != source || s.stamp != story.stamp).then(|| {
                Change::Seen {
                    id: s.id.clone(),
                    origin: story.origin.clone(),
                    source: source.to_owned(),
                    stamp: story.stamp.clone(),
                }
            })
        }
    }

    /// A story new to the store, under its own id, which no other story
    /// may have, or else one made from its slug; its guid fixed now.
    fn insert(&mut self, source: &str, story: Story, hash: String) -> Option<Change> {
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
fn fresh_id(slug: &str, taken: &FastSet<Cow<str>>) -> StoryId {
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
