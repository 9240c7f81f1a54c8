//! `tidings build`: one ingest of every source followed by writing the
//! feeds, the unit of work the scheduler will repeat.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::Result;
use chrono::Utc;

use crate::config::Config;
use crate::feeds::{self, WriteReport};
use crate::model::StoryId;
use crate::publish::ingest::{self, Report};
use crate::sources::bodies;
use crate::store::{FeedFacts, Indexed, Store};

/// What a build did.
#[derive(Debug)]
pub struct BuildReport {
    pub ingest: Report,
    pub feeds: WriteReport,
    /// Stories now published.
    pub published: usize,
    /// Files that could not be rendered; the rest were written.
    pub problems: Vec<anyhow::Error>,
}

/// Ingests the chosen sources into the store, then writes the feeds.
pub async fn build(config: &Config, store: &Store, which: &ingest::Which) -> Result<BuildReport> {
    let mut ingest = ingest::ingest(config, store, which, Utc::now()).await?;
    let started = Instant::now();
    // Before the stories: a change committed in between gives the next
    // build another generation than the one noted, and a plan.
    let generation = store.stories_generation().await?;
    let note_name = feeds::note_name(config);
    let note = store.setting(&note_name).await?;
    let listed_name = feeds::listed::setting_name(&note_name);
    // No ingest changed a story since the last build noted the files, and
    // nothing else they are made from changed: not a story is read.
    if let Some(current) = feeds::current(config, note.as_deref(), &generation) {
        tracing::info!(
            load_ms = started.elapsed().as_millis() as u64,
            unchanged = current.files,
            "feeds: no story has changed since the last build"
        );
        return Ok(BuildReport {
            ingest,
            feeds: unchanged(config, current.files)?,
            published: current.published,
            problems: Vec::new(),
        });
    }
    // The stories to choose from: those a first ingest inserted, else the
    // last build's lists and the stories added since, else every one.
    let choice = match first_ingest(config, &mut ingest, &generation) {
        Some(choice) => Some(choice),
        None => {
            added_since(
                config,
                store,
                &ingest,
                note.as_deref(),
                &listed_name,
                &generation,
            )
            .await?
        }
    };
    let Choice {
        index,
        facts,
        published,
    } = match choice {
        Some(choice) => choice,
        None => every_story(config, store).await?,
    };
    let plan = feeds::plan(config, &index, &facts, note.as_deref());
    if plan.is_current() {
        tracing::info!(
            load_ms = started.elapsed().as_millis() as u64,
            unchanged = plan.files.len(),
            "feeds: nothing they show has changed since the last build"
        );
        // Noted again with the generation, so that the next build need
        // not plan (a note of an older version has none).
        let noted = plan.note(config, &[], &generation, published);
        if note.as_deref() != Some(noted.as_bytes()) {
            store.set_setting(&note_name, noted.as_bytes()).await?;
        }
        let listed = feeds::listed::note(&generation, &plan.feeds, &facts);
        store.set_setting(&listed_name, listed.as_bytes()).await?;
        return Ok(BuildReport {
            ingest,
            feeds: unchanged(config, plan.files.len())?,
            published,
            problems: Vec::new(),
        });
    }
    // Only the stories of the feeds to render again are read, and only
    // their bodies rendered (those the store does not hold yet).
    let mut stories = store.published_by_ids(&plan.wanted()).await?;
    let unrendered = bodies::fill(config, store, &mut stories).await?;
    let loaded = started.elapsed();
    // A story whose body could not be rendered is left out of the feeds
    // written now, which are not noted as current: the next build writes
    // them again.
    let skipped: HashSet<String> = unrendered.iter().map(|(id, _)| id.to_string()).collect();
    stories.retain(|s| !skipped.contains(s.id.as_str()));
    let incomplete = plan.files_listing(&skipped);
    let (mut feeds, problems, rendered, note) = crate::on_all_cores(|| {
        let out = plan.render(config, &stories)?;
        let rendered = started.elapsed();
        let complete: Vec<String> = out
            .files
            .iter()
            .map(|f| f.rel.clone())
            .filter(|rel| !incomplete.contains(rel.as_str()))
            .collect();
        let report = feeds::write_all(config, out.files)?;
        let note = plan.note(config, &complete, &generation, published);
        anyhow::Ok((report, out.problems, rendered, note))
    })?;
    // Named and skipped, as a story whose file cannot be read.
    ingest
        .skipped
        .extend(unrendered.into_iter().map(|(_, problem)| problem));
    feeds.unchanged += plan.current();
    store.set_setting(&note_name, note.as_bytes()).await?;
    let listed = feeds::listed::note(&generation, &plan.feeds, &facts);
    store.set_setting(&listed_name, listed.as_bytes()).await?;
    // The renderings made for these feeds, kept while they were written.
    store.settle().await;
    tracing::info!(
        load_ms = loaded.as_millis() as u64,
        render_ms = (rendered - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - rendered).as_millis() as u64,
        written = feeds.written.len(),
        unchanged = feeds.unchanged,
        removed = feeds.removed.len(),
        "feeds"
    );
    Ok(BuildReport {
        ingest,
        feeds,
        published,
        problems,
    })
}

/// The published stories a build chooses each feed's list from, in the order
/// of the index (newest first, ties by id), with the facts of those any
/// feed lists; and how many stories are published.
struct Choice {
    index: Vec<Indexed>,
    facts: HashMap<String, FeedFacts>,
    published: usize,
}

/// Every published story, and the facts of those the feeds list.
async fn every_story(config: &Config, store: &Store) -> Result<Choice> {
    let index = store.published_index().await?;
    let chosen = feeds::prepare::select(config, &index);
    let ids: Vec<&StoryId> = chosen.iter().map(|s| &s.id).collect();
    let facts = store
        .feed_entries(&ids)
        .await?
        .into_iter()
        .map(|(s, facts)| (s.id.as_str().to_owned(), facts))
        .collect();
    Ok(Choice {
        published: index.len(),
        index,
        facts,
    })
}

/// Every published story as this build's ingest inserted them, when the
/// store held no other (a first build) and no commit came after it: what
/// [`every_story`] would read back.
fn first_ingest(config: &Config, ingest: &mut Report, generation: &str) -> Option<Choice> {
    let committed = ingest.committed.as_mut()?;
    let listed = committed.index.take()?;
    if committed.after != generation {
        return None;
    }
    let (index, mut facts): (Vec<Indexed>, HashMap<String, FeedFacts>) = listed
        .into_iter()
        .map(|(indexed, facts)| {
            let id = indexed.id.as_str().to_owned();
            (indexed, (id, facts))
        })
        .unzip();
    // The facts of the stories the feeds list, as `every_story` reads.
    let chosen: HashSet<&str> = feeds::prepare::select(config, &index)
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    facts.retain(|id, _| chosen.contains(id.as_str()));
    tracing::debug!(
        published = index.len(),
        "feeds: chosen from what the first ingest inserted"
    );
    Some(Choice {
        published: index.len(),
        index,
        facts,
    })
}

/// When this build's ingest only added stories, and the last build's
/// files were made from the stories as they were just before it: what
/// that build's feeds listed and the stories added (see
/// [`feeds::listed`]), without reading every published story. `None`
/// when anything else changed: another process's ingest, a story edited
/// or withdrawn, the config.
async fn added_since(
    config: &Config,
    store: &Store,
    ingest: &Report,
    note: Option<&[u8]>,
    listed_name: &str,
    generation: &str,
) -> Result<Option<Choice>> {
    let Some(committed) = &ingest.committed else {
        return Ok(None);
    };
    let Some((noted, published)) = feeds::made_from(config, note) else {
        return Ok(None);
    };
    if !committed.only_inserted || committed.after != generation || committed.before != noted {
        return Ok(None);
    }
    let Some(listed) = store
        .setting(listed_name)
        .await?
        .and_then(|text| feeds::listed::parse(&text, noted))
    else {
        return Ok(None);
    };
    let ids: Vec<&StoryId> = committed.inserted.iter().collect();
    let added = store.feed_entries(&ids).await?;
    let count = added.len();
    let Some((index, facts)) = feeds::listed::merged(listed, added) else {
        return Ok(None);
    };
    tracing::debug!(
        listed = index.len() - count,
        added = count,
        "feeds: chosen from the last build's lists and the stories added"
    );
    Ok(Some(Choice {
        index,
        facts,
        published: published + count,
    }))
}

/// The report of feeds left as they were: `files` unchanged, and those of
/// themes no longer configured removed.
fn unchanged(config: &Config, files: usize) -> Result<WriteReport> {
    Ok(WriteReport {
        written: Vec::new(),
        unchanged: files,
        removed: feeds::remove_stale_themes(config)?,
    })
}
