//! The store: stories, subscribers, editions and the delivery ledger, job
//! state, sign-up rate limits, the WebSub hub's subscriptions — in SQLite (the default) or PostgreSQL,
//! behind one API.
//!
//! Each query is written once, in `src/store/sql/`, with `$N` parameters
//! that both databases accept; `backend.rs` compiles those files once per
//! backend (`DB` = `sqlx::Sqlite` or `sqlx::Postgres`, `PG` telling the few
//! places where the dialects differ), and the methods of [`Store`] pick the
//! pool's backend. The schema comes from `migrations/sqlite/` or
//! `migrations/postgres/`, applied automatically when the store opens.
//! Every write of an ingest run goes through [`Store::begin_writes`] in
//! one transaction, so a run that fails half-way leaves the store as it
//! was. On SQLite the delivery ledger's writes have a connection of their
//! own (`dispatch_in_turn!`).

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub mod archive;
mod backend;
pub mod bounces;
pub mod copy;
pub mod editions;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod subscribers;
pub mod websub;

use crate::config::StorageUrl;
use crate::model::{Story, StoryId, ThemeSlug};

pub(crate) const STORY_COLUMNS: &str = "id, guid, slug, origin, url, title, summary, body_html, language, \
    authors, themes, image, image_alt, published_at, updated_at, first_seen_at, changed_at, featured, \
    source_hash, body_key";

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Work left to tasks and not yet waited for ([`Store::settle`]):
    /// bodies kept ([`Store::keep_bodies_later`]), an ingest's checkpoint
    /// ([`Writes::commit`]).
    later: Later,
}

/// Writes a caller need not wait for (a cache that the next reader would
/// fill again, copying SQLite's log into its database): done on tasks while
/// the caller goes on. Shared by every clone of the store.
#[derive(Clone, Default)]
struct Later(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Later")
    }
}

impl Later {
    fn push(&self, handle: tokio::task::JoinHandle<()>) {
        let mut pending = self.0.lock().expect("not poisoned");
        // A long-running service starts many: those done are let go.
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
    }

    fn take(&self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite {
        pool: SqlitePool,
        /// The one connection that writes the delivery ledger. SQLite has
        /// one writer at a time: a second one waits in its busy handler,
        /// which sleeps 1, 2, 5… ms between tries, and a connection that
        /// another one wrote behind reads its pages again. The claims,
        /// lease renewals and marks that a delivery run's tasks make at
        /// once spent more time asleep there, or reading pages again, than
        /// writing. On this connection they take turns in the process and
        /// find their pages where they left them. (PostgreSQL locks rows
        /// and needs none.)
        ledger: SqlitePool,
    },
    Postgres(PgPool),
}

/// Calls the function `$f` of the query module `$m` with the store's pool,
/// for whichever backend it is.
macro_rules! dispatch {
    ($store:expr, $m:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match &$store.db {
            $crate::store::Db::Sqlite { pool, .. } => $crate::store::backend::sqlite::$m::$f(pool $(, $arg)*).await,
            $crate::store::Db::Postgres(pool) => $crate::store::backend::postgres::$m::$f(pool $(, $arg)*).await,
        }
    };
}
pub(crate) use dispatch;

/// As [`dispatch!`], for a write of the delivery ledger: on SQLite on
/// its own connection, in turn (see `Db::Sqlite`'s `ledger`).
macro_rules! dispatch_in_turn {
    ($store:expr, $m:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match &$store.db {
            $crate::store::Db::Sqlite { ledger, .. } => $crate::store::backend::sqlite::$m::$f(ledger $(, $arg)*).await,
            $crate::store::Db::Postgres(pool) => $crate::store::backend::postgres::$m::$f(pool $(, $arg)*).await,
        }
    };
}
pub(crate) use dispatch_in_turn;

/// What ingest needs to know of each stored story to match it again.
/// A published story as the feeds choose it: without its body.
#[derive(Debug, Clone)]
pub struct Indexed {
    pub id: StoryId,
    pub themes: Vec<ThemeSlug>,
}

/// Of a published story, what decides whether a feed listing it must be
/// written again, read without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFacts {
    /// Changes whenever anything a feed shows of the story changes.
    pub hash: String,
    /// As [`StoredStory::updated`].
    pub updated: DateTime<Utc>,
    /// When it was published: with the id, its place in every list.
    pub published: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct StoredRef {
    pub id: StoryId,
    pub source: String,
    pub slug: String,
    pub origin: String,
    pub content_hash: String,
    pub stamp: Option<String>,
    pub withdrawn: bool,
    /// Whether its body is rendered on demand from its file (its content
    /// hash covers the Markdown's hash), rather than stored.
    pub lazy: bool,
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
        updated(self.story.published, self.story.updated, self.changed)
    }
}

/// The editor's `updated` if given, else when ingest last saw the story
/// change, never earlier than its date.
pub(crate) fn updated(
    published: DateTime<Utc>,
    updated: Option<DateTime<Utc>>,
    changed: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    updated.or(changed).map_or(published, |u| u.max(published))
}

/// An ingest run's open transaction; see [`Store::begin_writes`].
pub struct Writes {
    tx: WriteTx,
    /// Where the commit leaves SQLite's checkpoint.
    later: Later,
    now: DateTime<Utc>,
    /// The stories inserted so far.
    inserted: Vec<StoryId>,
    /// Rows the inserts so far added (one already stored is not).
    added: u64,
    /// What each insert so far puts in the feeds' index, kept from
    /// [`Writes::keep_index`] on while only inserts come.
    index: Option<Vec<(Indexed, FeedFacts)>>,
    /// Whether a story was updated or withdrawn so far. With an insert,
    /// a change to what a story shows (not only where its file is or its
    /// stamp): then the commit gives the stories a new
    /// [generation](Store::stories_generation).
    edited: bool,
}

/// What an ingest's commit changed in what the stories show: the
/// generation it followed, the one it made, and whether it only added
/// stories (then the feeds can be planned from what the last build
/// listed and the new stories alone, see `feeds::listed`).
#[derive(Debug, Clone)]
pub struct Committed {
    /// Empty when the store had no generation yet.
    pub before: String,
    pub after: String,
    pub inserted: Vec<StoryId>,
    pub only_inserted: bool,
    /// Every story the store holds, in the feeds' order, when it holds
    /// only those this commit inserted (a first ingest; see
    /// [`Writes::keep_index`]): what [`Store::published_index`] and
    /// [`Store::feed_entries`] would read back.
    pub index: Option<Vec<(Indexed, FeedFacts)>>,
}

/// The setting that names the stories' generation: a random token, new
/// whenever an ingest commits a change to what a story shows (an insert,
/// an update, a withdrawal). A build that finds the token it noted with
/// its feeds knows they list the same stories without reading them.
const GENERATION: &str = "stories-generation";

enum WriteTx {
    /// A connection of the run's own, taken out of the pool, in a
    /// transaction begun with `BEGIN IMMEDIATE`: dropped without a commit,
    /// it closes, which rolls the transaction back. Its own, because its
    /// commit turns SQLite's checkpoint off for itself (see
    /// [`Writes::commit`]), which no pooled connection may keep.
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Writes {
    /// Says that the store held no story when this run read it (a first
    /// build): each insert's place in the feeds' index is then kept, so
    /// that the feeds are chosen without reading it back (at 100,000
    /// stories a twentieth of the build). The commit hands it on if the
    /// store then holds exactly the stories inserted.
    pub fn keep_index(&mut self) {
        self.index = Some(Vec::new());
    }

    /// Applies some of the run's changes.
    pub async fn apply(&mut self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        for change in changes {
            match change {
                Change::Seen { .. } => {}
                Change::Insert {
                    id, story, hash, ..
                } => {
                    self.inserted.push(id.clone());
                    if let Some(index) = &mut self.index {
                        let facts = FeedFacts {
                            hash: hash.clone(),
                            updated: updated(story.published, story.updated, None),
                            published: story.published,
                        };
                        let indexed = Indexed {
                            id: id.clone(),
                            themes: story.themes.clone(),
                        };
                        index.push((indexed, facts));
                    }
                }
                Change::Update { .. } | Change::Withdraw { .. } => {
                    self.edited = true;
                    self.index = None;
                }
            }
        }
        self.added += match &mut self.tx {
            WriteTx::Sqlite(conn) => backend::sqlite::stories::apply(conn, changes, self.now).await,
            WriteTx::Postgres(tx) => backend::postgres::stories::apply(tx, changes, self.now).await,
        }?;
        Ok(())
    }

    /// Makes every change applied so far permanent, at once; says what
    /// changed in what the stories show, if anything did.
    pub async fn commit(mut self) -> Result<Option<Committed>> {
        let mut committed = None;
        if self.edited || !self.inserted.is_empty() {
            let mut token = [0u8; 16];
            getrandom::fill(&mut token).expect("the operating system provides randomness");
            let token = hex::encode(token);
            // Read within the transaction, which holds the write lock (on
            // SQLite) or the setting's row (on PostgreSQL): no other commit
            // comes between the two generations.
            let before = match &mut self.tx {
                WriteTx::Sqlite(tx) => {
                    backend::sqlite::stories::swap_setting(tx, GENERATION, token.as_bytes()).await
                }
                WriteTx::Postgres(tx) => {
                    backend::postgres::stories::swap_setting(tx, GENERATION, token.as_bytes()).await
                }
            }?;
            // The store holds only what this run inserted if it holds as
            // many stories as the inserts added, and they added one for
            // each (none was stored already, by another instance).
            let index = match self.index.take() {
                Some(mut index) if self.added == index.len() as u64 => {
                    let stored = match &mut self.tx {
                        WriteTx::Sqlite(conn) => backend::sqlite::stories::count_all(conn).await,
                        WriteTx::Postgres(tx) => backend::postgres::stories::count_all(tx).await,
                    }?;
                    (stored == self.added).then(|| {
                        // As `published_index` sorts: newest first, ties by id.
                        index.sort_unstable_by(|a, b| {
                            b.1.published
                                .cmp(&a.1.published)
                                .then_with(|| a.0.id.cmp(&b.0.id))
                        });
                        index
                    })
                }
                _ => None,
            };
            committed = Some(Committed {
                before: String::from_utf8_lossy(&before.unwrap_or_default()).into_owned(),
                after: token,
                inserted: std::mem::take(&mut self.inserted),
                only_inserted: !self.edited,
                index,
            });
        }
        match self.tx {
            WriteTx::Sqlite(mut conn) => {
                // SQLite copies the pages a commit wrote to its log into
                // the database file (a checkpoint) once the log passes
                // 1,000 pages, in the commit that passed it. A first
                // build of a large site logs tens of megabytes: copied in
                // the commit, they would hold up the feeds for as long.
                // They are copied on a task of its own instead, while the
                // feeds are made, on this connection, which then closes.
                use sqlx::Connection as _;
                for sql in ["PRAGMA wal_autocheckpoint = 0", "COMMIT"] {
                    sqlx::query(sql)
                        .execute(&mut conn)
                        .await
                        .context("cannot commit the ingest")?;
                }
                self.later.push(tokio::spawn(async move {
                    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&mut conn)
                        .await
                    {
                        tracing::warn!(error = %e, "SQLite's checkpoint after the ingest failed");
                    }
                    let _ = conn.close().await;
                }));
            }
            WriteTx::Postgres(tx) => tx.commit().await.context("cannot commit the ingest")?,
        }
        Ok(committed)
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
        match url {
            StorageUrl::Sqlite(path) => open_sqlite(path).await,
            StorageUrl::Postgres(url) => open_postgres(url).await,
        }
    }

    /// The migrations of data that SQL alone cannot make, after the
    /// schema's: each runs once and reports what it changed in the log.
    async fn migrated(self) -> Result<Store> {
        let report = self.canonicalize_subscribers(Utc::now()).await?;
        if !report.is_empty() {
            tracing::warn!(
                rewritten = ?report.rewritten,
                merged_into = ?report.merged,
                removed = ?report.removed,
                bounced = ?report.bounced,
                "subscriber addresses brought to one canonical form: subscribers sharing an \
                 inbox merged (the earliest consent kept), addresses no relay delivers to \
                 removed (pending) or bounced (active); by subscriber id"
            );
        }
        Ok(self)
    }

    /// Which backend this is: "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Every stored story, withdrawn ones included, for matching.
    pub async fn story_refs(&self) -> Result<Vec<StoredRef>> {
        dispatch!(self, stories::story_refs())
    }

    /// Starts an ingest run's writes: one transaction, to which the
    /// changes are applied source by source, part by part, as they are
    /// read, and which [`Writes::commit`] ends. Dropped uncommitted, it
    /// rolls back: the store stays as it was.
    ///
    /// On SQLite this takes the write lock until the commit: other writers
    /// (a sign-up) wait, within the busy timeout, while the stories that
    /// changed are read and rendered.
    pub async fn begin_writes(&self, now: DateTime<Utc>) -> Result<Writes> {
        let tx = match &self.db {
            Db::Sqlite { pool, .. } => {
                let mut conn = pool.acquire().await?.detach();
                // An ingest writes every index of the stories: with
                // SQLite's default cache (2 MB, 128 pages of 16 KB) a first
                // build of a large site reads their pages back from the log
                // again and again. This connection closes after the ingest.
                sqlx::query("PRAGMA cache_size = -8192")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
                WriteTx::Sqlite(conn)
            }
            Db::Postgres(pool) => WriteTx::Postgres(backend::postgres::begin_write(pool).await?),
        };
        Ok(Writes {
            tx,
            later: self.later.clone(),
            now,
            inserted: Vec::new(),
            added: 0,
            index: None,
            edited: false,
        })
    }

    /// How many stories are published, and how many withdrawn.
    pub async fn story_counts(&self) -> Result<(i64, i64)> {
        dispatch!(self, stories::story_counts())
    }

    /// The id and themes of every published story, newest first (ties by
    /// id): enough to choose what goes in each feed without reading bodies.
    pub async fn published_index(&self) -> Result<Vec<Indexed>> {
        dispatch!(self, stories::published_index())
    }

    /// Of each of these stories that is published, its themes and what a
    /// feed shows of it that the index does not say: its content hash and
    /// when it was published and last updated.
    pub async fn feed_entries(&self, ids: &[&StoryId]) -> Result<Vec<(Indexed, FeedFacts)>> {
        dispatch!(self, stories::feed_entries(ids))
    }

    /// The published stories with these ids, newest first (ties by id).
    pub async fn published_by_ids(&self, ids: &[&StoryId]) -> Result<Vec<StoredStory>> {
        dispatch!(self, stories::published_by_ids(ids))
    }

    /// Keeps story bodies rendered from their files: `(id, Markdown hash,
    /// key, HTML)`, each kept only if the story still has that hash (see
    /// `sources::bodies`).
    async fn keep_bodies(&self, bodies: &[(StoryId, String, String, String)]) -> Result<()> {
        if bodies.is_empty() {
            return Ok(());
        }
        dispatch!(self, stories::keep_bodies(bodies))
    }

    /// [`Store::keep_bodies`] on a task of its own, while the caller goes
    /// on with the bodies; a failure is only logged (a rendering not kept
    /// is made again when next shown). [`Store::settle`] waits for it.
    pub fn keep_bodies_later(&self, bodies: Vec<(StoryId, String, String, String)>) {
        if bodies.is_empty() {
            return;
        }
        let store = self.clone();
        self.later.push(tokio::spawn(async move {
            if let Err(e) = store.keep_bodies(&bodies).await {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "rendered story bodies not kept in the store"
                );
            }
        }));
    }

    /// Waits for the work left to tasks: the bodies kept with
    /// [`Store::keep_bodies_later`], the checkpoint after an ingest.
    pub async fn settle(&self) {
        for handle in self.later.take() {
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, "a task of the store (bodies kept, a checkpoint) failed");
            }
        }
    }

    /// A value the program keeps for itself (see [`Store::set_setting`]).
    pub async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        dispatch!(self, stories::setting(name))
    }

    pub async fn set_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        dispatch!(self, stories::set_setting(name, value))
    }

    /// The stories' generation: a token that changes whenever an ingest
    /// changes what a story shows; empty before the first such ingest.
    pub async fn stories_generation(&self) -> Result<String> {
        let token = self.setting(GENERATION).await?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&token).into_owned())
    }

    /// Closes the pool (flushing SQLite's WAL), once the writes under way
    /// are done.
    pub async fn close(self) {
        self.settle().await;
        match self.db {
            Db::Sqlite { pool, ledger } => {
                ledger.close().await;
                pool.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

async fn open_sqlite(path: &std::path::Path) -> Result<Store> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        // A story's row (its HTML body is a few KB) fits in one page
        // instead of spilling into overflow pages: a first build of a
        // large site writes faster. Only a new database takes it.
        .page_size(16384)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
    SQLITE_MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("cannot migrate the SQLite store {}", path.display()))?;
    // Opened when a delivery first writes to it.
    let ledger = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    Store {
        db: Db::Sqlite { pool, ledger },
        later: Later::default(),
    }
    .migrated()
    .await
}

async fn open_postgres(url: &str) -> Result<Store> {
    let shown = StorageUrl::Postgres(url.to_owned()).to_string();
    // A password missing from the URL comes from PGPASSWORD: sqlx reads
    // it here, with the other libpq variables, as every PostgreSQL client
    // does.
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("not a PostgreSQL URL: {shown}"))?
        .application_name("tidings");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        // A server that is down or restarting: requests wait this long for
        // a connection, then fail (and are retried by their caller).
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
    POSTGRES_MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("cannot migrate the PostgreSQL store {shown}"))?;
    Store {
        db: Db::Postgres(pool),
        later: Later::default(),
    }
    .migrated()
    .await
}
