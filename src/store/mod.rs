//! The store: stories and what ingest knows of them, kept in SQLite (the
//! default; PostgreSQL follows the same API in a later version).
//!
//! The schema comes from the migrations in `migrations/sqlite/`, applied
//! automatically when the store opens. Every write of an ingest run goes
//! through [`Store::apply`] in one transaction, so a run that fails half-way
//! leaves the store as it was.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};

pub mod archive;
pub mod editions;
pub mod jobs;
pub mod metrics;
pub mod subscribers;

use crate::config::StorageUrl;
use crate::story::{Language, Story, StoryId, ThemeSlug};

const STORY_COLUMNS: &str = "id, guid, slug, origin, url, title, summary, body_html, language, \
    authors, themes, image, image_alt, published_at, updated_at, first_seen_at, changed_at";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// What ingest needs to know of each stored story to match it again.
#[derive(Debug, Clone)]
pub struct StoredRef {
    pub id: StoryId,
    pub source: String,
    pub slug: String,
    pub origin: String,
    pub content_hash: String,
    pub stamp: Option<String>,
    pub withdrawn: bool,
}

/// A published story as the feeds see it.
#[derive(Debug, Clone)]
pub struct StoredStory {
    pub id: StoryId,
    pub guid: String,
    pub story: Story,
    pub first_seen: DateTime<Utc>,
    pub changed: Option<DateTime<Utc>>,
}

impl StoredStory {
    /// When a reader should consider the story last updated: the editor's
    /// `updated` if given, else the last time ingest saw it change, never
    /// earlier than its date.
    pub fn updated(&self) -> DateTime<Utc> {
        let s = &self.story;
        s.updated
            .or(self.changed)
            .map_or(s.published, |u| u.max(s.published))
    }
}

/// One write of an ingest run.
#[derive(Debug, Clone)]
pub enum Change {
    /// A story never seen before.
    Insert {
        id: StoryId,
        guid: String,
        source: String,
        story: Box<Story>,
        hash: String,
    },
    /// A stored story whose content changed, or that comes back after
    /// being withdrawn (`content_changed` false when only that).
    Update {
        id: StoryId,
        source: String,
        story: Box<Story>,
        hash: String,
        content_changed: bool,
    },
    /// A stored story whose content did not change but whose origin
    /// (file moved) or stamp (file touched) did.
    Seen {
        id: StoryId,
        origin: String,
        source: String,
        stamp: Option<String>,
    },
    /// A stored story that is gone or became a draft.
    Withdraw { id: StoryId },
}

impl Store {
    /// Opens (creating if needed) the store and applies pending migrations.
    pub async fn open(url: &StorageUrl) -> Result<Store> {
        let StorageUrl::Sqlite(path) = url;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs_err::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("cannot migrate the SQLite store {}", path.display()))?;
        Ok(Store { pool })
    }

    /// Every stored story, withdrawn ones included, for matching.
    pub async fn story_refs(&self) -> Result<Vec<StoredRef>> {
        let rows = sqlx::query(
            "SELECT id, source, slug, origin, origin_stamp, content_hash,
                    withdrawn_at IS NOT NULL AS withdrawn
             FROM stories ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read stored stories")?;
        rows.iter()
            .map(|r| {
                Ok(StoredRef {
                    id: StoryId::parse(r.get("id")).map_err(anyhow::Error::msg)?,
                    source: r.get("source"),
                    slug: r.get("slug"),
                    origin: r.get("origin"),
                    content_hash: r.get("content_hash"),
                    stamp: r.get("origin_stamp"),
                    withdrawn: r.get("withdrawn"),
                })
            })
            .collect()
    }

    /// Applies one ingest run's changes in a single transaction.
    pub async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let inserts: Vec<&Change> = changes
            .iter()
            .filter(|c| matches!(c, Change::Insert { .. }))
            .collect();
        // Many rows per statement: a first build of a large site inserts
        // tens of thousands, and a statement costs far more than a row.
        for chunk in inserts.chunks(INSERT_BATCH) {
            insert_stories(&mut tx, chunk, now).await?;
        }
        for change in changes {
            match change {
                Change::Insert { .. } => {}
                Change::Update {
                    id,
                    source,
                    story,
                    hash,
                    content_changed,
                } => {
                    sqlx::query(
                        "UPDATE stories SET source = ?, slug = ?, origin = ?, origin_stamp = ?,
                           url = ?, title = ?, summary = ?, body_html = ?, language = ?,
                           authors = ?, themes = ?, image = ?, image_alt = ?, published_at = ?,
                           updated_at = ?, content_hash = ?, withdrawn_at = NULL,
                           changed_at = CASE WHEN ? THEN ? ELSE changed_at END
                         WHERE id = ?",
                    )
                    .bind(source)
                    .bind(&story.slug)
                    .bind(&story.origin)
                    .bind(&story.stamp)
                    .bind(&story.url)
                    .bind(&story.title)
                    .bind(&story.summary)
                    .bind(&story.body_html)
                    .bind(story.language.as_ref().map(Language::as_str))
                    .bind(serde_json::to_string(&story.authors)?)
                    .bind(serde_json::to_string(&story.themes)?)
                    .bind(&story.image)
                    .bind(&story.image_alt)
                    .bind(story.published)
                    .bind(story.updated)
                    .bind(hash)
                    .bind(content_changed)
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("cannot update story {id} ({})", story.origin))?;
                    sqlx::query("DELETE FROM story_themes WHERE story_id = ?")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    insert_themes(&mut tx, &[(id, &story.themes)]).await?;
                }
                Change::Seen {
                    id,
                    origin,
                    source,
                    stamp,
                } => {
                    sqlx::query(
                        "UPDATE stories SET origin = ?, source = ?, origin_stamp = ? WHERE id = ?",
                    )
                    .bind(origin)
                    .bind(source)
                    .bind(stamp)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Withdraw { id } => {
                    sqlx::query(
                        "UPDATE stories SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL",
                    )
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await.context("cannot commit the ingest")?;
        Ok(())
    }

    /// How many stories are published, and how many withdrawn.
    pub async fn story_counts(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE withdrawn_at IS NULL) AS published,
                    COUNT(*) FILTER (WHERE withdrawn_at IS NOT NULL) AS withdrawn
             FROM stories",
        )
        .fetch_one(&self.pool)
        .await
        .context("cannot count stories")?;
        Ok((row.get("published"), row.get("withdrawn")))
    }

    /// The id and themes of every published story, newest first (ties by
    /// id): enough to choose what goes in each feed without reading bodies.
    pub async fn published_index(&self) -> Result<Vec<(StoryId, Vec<ThemeSlug>)>> {
        let rows = sqlx::query(
            "SELECT id, themes FROM stories WHERE withdrawn_at IS NULL
             ORDER BY published_at DESC, id ASC",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read published stories")?;
        rows.iter()
            .map(|r| {
                let id = StoryId::parse(r.get("id")).map_err(anyhow::Error::msg)?;
                let themes: String = r.get("themes");
                Ok((
                    id,
                    serde_json::from_str(&themes).context("bad themes column")?,
                ))
            })
            .collect()
    }

    /// The published stories with these ids, newest first (ties by id).
    pub async fn published_by_ids(&self, ids: &[&StoryId]) -> Result<Vec<StoredStory>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(INSERT_BATCH) {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {STORY_COLUMNS} FROM stories WHERE withdrawn_at IS NULL AND id IN ("
            ));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            q.push(")");
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .context("cannot read published stories")?;
            for r in &rows {
                out.push(stored_story(r)?);
            }
        }
        out.sort_by(|a, b| {
            b.story
                .published
                .cmp(&a.story.published)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The key that signs subscriber links when `TIDINGS_SECRET` is not
    /// set: generated on first use and kept in the store, so every instance
    /// and every restart signs alike. Never written to config or logs.
    pub async fn signing_key(&self) -> Result<Vec<u8>> {
        // Two instances starting at once: the first insert wins, and both
        // read back the same key.
        sqlx::query("INSERT INTO settings (name, value) VALUES ('signing_key', ?) ON CONFLICT (name) DO NOTHING")
            .bind(crate::tokens::generate_key())
            .execute(&self.pool)
            .await
            .context("cannot store the signing key")?;
        let key: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'signing_key'")
                .fetch_one(&self.pool)
                .await
                .context("cannot read the signing key")?;
        Ok(key)
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Rows per multi-row INSERT: 19 columns x 500 stays far below SQLite's
/// limit of 32766 bound parameters.
const INSERT_BATCH: usize = 500;

async fn insert_stories(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    inserts: &[&Change],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut rows = Vec::with_capacity(inserts.len());
    for change in inserts {
        if let Change::Insert {
            id,
            guid,
            source,
            story,
            hash,
        } = change
        {
            let authors = serde_json::to_string(&story.authors)?;
            let themes = serde_json::to_string(&story.themes)?;
            rows.push((id, guid, source, story, hash, authors, themes));
        }
    }
    let mut q = QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO stories (id, guid, source, slug, origin, origin_stamp, url, title, summary,
           body_html, language, authors, themes, image, image_alt, published_at, updated_at,
           content_hash, first_seen_at) ",
    );
    q.push_values(
        &rows,
        |mut b, (id, guid, source, story, hash, authors, themes)| {
            b.push_bind(id.as_str())
                .push_bind(guid.as_str())
                .push_bind(source.as_str())
                .push_bind(story.slug.as_str())
                .push_bind(story.origin.as_str())
                .push_bind(story.stamp.as_deref())
                .push_bind(story.url.as_str())
                .push_bind(story.title.as_str())
                .push_bind(story.summary.as_str())
                .push_bind(story.body_html.as_str())
                .push_bind(story.language.as_ref().map(Language::as_str))
                .push_bind(authors.as_str())
                .push_bind(themes.as_str())
                .push_bind(story.image.as_deref())
                .push_bind(story.image_alt.as_deref())
                .push_bind(story.published)
                .push_bind(story.updated)
                .push_bind(hash.as_str())
                .push_bind(now);
        },
    );
    q.build().execute(&mut **tx).await.with_context(|| {
        let first = rows
            .first()
            .map(|r| r.3.origin.as_str())
            .unwrap_or_default();
        format!("cannot store {} new stories (from {first} on)", rows.len())
    })?;
    let themes: Vec<(&StoryId, &Vec<ThemeSlug>)> = rows
        .iter()
        .map(|(id, _, _, story, ..)| (*id, &story.themes))
        .collect();
    insert_themes(tx, &themes).await
}

async fn insert_themes(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    stories: &[(&StoryId, &Vec<ThemeSlug>)],
) -> Result<()> {
    let rows: Vec<(&StoryId, &ThemeSlug, i64)> = stories
        .iter()
        .flat_map(|(id, themes)| {
            themes
                .iter()
                .enumerate()
                .map(move |(i, t)| (*id, t, i as i64))
        })
        .collect();
    for chunk in rows.chunks(INSERT_BATCH * 4) {
        let mut q = QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO story_themes (story_id, theme, position) ",
        );
        q.push_values(chunk, |mut b, (id, theme, position)| {
            b.push_bind(id.as_str())
                .push_bind(theme.as_str())
                .push_bind(*position);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn stored_story(r: &sqlx::sqlite::SqliteRow) -> Result<StoredStory> {
    let id = StoryId::parse(r.get("id")).map_err(anyhow::Error::msg)?;
    let language: Option<String> = r.get("language");
    let authors: String = r.get("authors");
    let themes: String = r.get("themes");
    let story = Story {
        id: Some(id.clone()),
        slug: r.get("slug"),
        url: r.get("url"),
        title: r.get("title"),
        summary: r.get("summary"),
        body_html: r.get("body_html"),
        language: language
            .map(|l| Language::parse(&l))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        authors: serde_json::from_str(&authors).context("bad authors column")?,
        themes: serde_json::from_str(&themes).context("bad themes column")?,
        image: r.get("image"),
        image_alt: r.get("image_alt"),
        published: r.get("published_at"),
        updated: r.get("updated_at"),
        origin: r.get("origin"),
        stamp: None,
    };
    Ok(StoredStory {
        id,
        guid: r.get("guid"),
        story,
        first_seen: r.get("first_seen_at"),
        changed: r.get("changed_at"),
    })
}
