//! `db copy`: moves a whole SQLite store into an empty PostgreSQL database
//! — stories, subscribers, editions and their delivery ledger, job state
//! and the signing key — keeping every id, in one PostgreSQL transaction,
//! and verifies the row counts before it commits.
//!
//! The source is read inside one SQLite read transaction, so the copy is
//! the store as it was at one instant even if a service still writes to
//! it (what it writes afterwards is not copied). Rows are streamed and
//! written in multi-row INSERTs, so a million subscribers never sit in
//! memory at once. The target is locked against writers while it is
//! checked for emptiness and filled; a non-empty target is refused before
//! anything is written.
//!
//! The sign-up rate limits (`rate_limits`) and the WebSub distributions
//! owed (`websub_deliveries`) are not copied (see
//! [`NOT_COPIED`]).

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    ConnectOptions as _, Connection as _, PgConnection, PgPool, Postgres, QueryBuilder, Row as _,
    SqliteConnection,
};

use super::{Db, Store};
use crate::config::StorageUrl;

/// PostgreSQL refuses a statement with more bound parameters than this.
const PG_BIND_LIMIT: usize = 65_535;

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TEXT on both sides.
    Text,
    /// INTEGER → BIGINT.
    Int,
    /// TEXT written by sqlx's chrono encoding → TIMESTAMPTZ.
    Time,
    /// INTEGER 0/1 → BOOLEAN.
    Bool,
    /// BLOB → BYTEA.
    Bytes,
}

/// One table of the store, as the copy sees it.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Primary key order: rows arrive in index order on both sides.
    order: &'static str,
    /// Rows per INSERT, besides the bind limit (story bodies are large).
    max_rows: usize,
    /// Has a `BIGINT GENERATED … AS IDENTITY` id whose sequence must be
    /// moved past the copied ids.
    identity: bool,
}

impl Table {
    fn batch_rows(&self) -> usize {
        self.max_rows.min(PG_BIND_LIMIT / self.columns.len())
    }

    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

/// Tables left behind on purpose. `fixups` lists data changes still owed,
/// which each store makes when it is opened (so the source's are made);
/// the sign-up rate limits count the last hours, and start afresh on the
/// new store; WebSub distributions owed are of the feeds of the moment
/// (the next change owes new ones; the subscriptions are copied).
const NOT_COPIED: &[&str] = &["fixups", "rate_limits", "websub_deliveries"];

/// Every table, parents before children (the order foreign keys need).
const TABLES: &[Table] = {
    use Kind::{Bool, Bytes, Int, Text, Time};
    &[
        Table {
            name: "stories",
            columns: &[
                ("id", Text),
                ("guid", Text),
                ("source", Text),
                ("slug", Text),
                ("origin", Text),
                ("origin_stamp", Text),
                ("content_hash", Text),
                ("published_at", Time),
                ("updated_at", Time),
                ("first_seen_at", Time),
                ("changed_at", Time),
                ("withdrawn_at", Time),
                ("themes", Text),
                ("language", Text),
                ("authors", Text),
                ("url", Text),
                ("title", Text),
                ("image", Text),
                ("image_alt", Text),
                ("summary", Text),
                ("body_html", Text),
                ("featured", Bool),
                ("source_hash", Text),
                ("body_key", Text),
            ],
            order: "id",
            max_rows: 200,
            identity: false,
        },
        Table {
            name: "story_themes",
            columns: &[("story_id", Text), ("theme", Text), ("position", Int)],
            order: "story_id, theme",
            max_rows: 2000,
            identity: false,
        },
        Table {
            name: "subscribers",
            columns: &[
                ("id", Int),
                ("email", Text),
                ("email_key", Text),
                ("status", Text),
                ("themes", Text),
                ("language", Text),
                ("digest", Text),
                ("consent_at", Time),
                ("consent_source", Text),
                ("created_at", Time),
                ("confirmed_at", Time),
                ("unsubscribed_at", Time),
                ("bounced_at", Time),
            ],
            order: "id",
            max_rows: 2000,
            identity: true,
        },
        Table {
            name: "settings",
            columns: &[("name", Text), ("value", Bytes)],
            order: "name",
            max_rows: 100,
            identity: false,
        },
        Table {
            name: "signing_keys",
            columns: &[
                ("id", Int),
                ("origin", Text),
                ("secret", Bytes),
                ("fingerprint", Text),
                ("created_at", Time),
            ],
            order: "id",
            max_rows: 100,
            identity: false,
        },
        Table {
            name: "editions",
            columns: &[
                ("id", Int),
                ("digest", Text),
                ("key", Text),
                ("period_start", Time),
                ("period_end", Time),
                ("created_at", Time),
                ("completed_at", Time),
            ],
            order: "id",
            max_rows: 2000,
            identity: true,
        },
        Table {
            name: "edition_stories",
            columns: &[
                ("edition_id", Int),
                ("digest", Text),
                ("story_id", Text),
                ("included", Bool),
            ],
            order: "edition_id, story_id",
            max_rows: 2000,
            identity: false,
        },
        Table {
            name: "deliveries",
            columns: &[
                ("id", Int),
                ("edition_id", Int),
                ("subscriber_id", Int),
                ("status", Text),
                ("attempts", Int),
                ("next_attempt_at", Time),
                ("lease_until", Time),
                ("message_id", Text),
                ("last_error", Text),
                ("smtp_reply", Text),
                ("finished_at", Time),
            ],
            order: "id",
            max_rows: 2000,
            identity: true,
        },
        Table {
            name: "jobs",
            columns: &[
                ("name", Text),
                ("last_tick", Time),
                ("last_run_at", Time),
                ("last_result", Text),
                ("last_error", Text),
                ("last_success_at", Time),
                ("claimed_tick", Time),
                ("claimed_until", Time),
            ],
            order: "name",
            max_rows: 1000,
            identity: false,
        },
        Table {
            name: "source_state",
            columns: &[("source", Text), ("state", Text), ("updated_at", Time)],
            order: "source",
            max_rows: 1000,
            identity: false,
        },
        Table {
            name: "websub_subscriptions",
            columns: &[
                ("topic", Text),
                ("callback", Text),
                ("callback_host", Text),
                ("secret", Text),
                ("lease_seconds", Int),
                ("expires_ms", Int),
                ("created_ms", Int),
            ],
            order: "topic, callback",
            max_rows: 2000,
            identity: false,
        },
        Table {
            name: "bounce_events",
            columns: &[
                ("id", Int),
                ("received_at", Time),
                ("subscriber_id", Int),
                ("edition_id", Int),
                ("kind", Text),
                ("diagnostic", Text),
                ("action", Text),
                ("report", Bytes),
                ("report_size", Int),
                ("report_hash", Text),
            ],
            order: "id",
            max_rows: 200,
            identity: true,
        },
    ]
};

/// What a copy did: rows per table (the same on both sides), and how long
/// it took.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, i64)>,
    /// Deliveries that were `sending` in the copy: a sign that a service
    /// still ran on the SQLite store (the new store retries them once their
    /// lease lapses).
    pub sending: i64,
    pub elapsed: Duration,
}

/// Why a copy did not happen. `NotEmpty` is the operator's to fix; the
/// rest is unexpected (and rolled back).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "{target} is not empty: {} already hold rows; db copy writes only into an empty database, and wrote nothing",
        describe_rows(.tables)
    )]
    NotEmpty {
        /// The target, its password hidden.
        target: String,
        /// Each table that holds rows, with how many.
        tables: Vec<(&'static str, i64)>,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn describe_rows(tables: &[(&'static str, i64)]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|(t, n)| format!("{t} ({n} row{})", if *n == 1 { "" } else { "s" }))
        .collect();
    parts.join(", ")
}

/// Progress of a copy, for a bar: `(table, rows copied, rows in table)`.
pub type Progress<'a> = &'a mut (dyn FnMut(&'static str, u64, u64) + Send);

/// Copies the SQLite store `source` into the PostgreSQL database `target`
/// (which is migrated first, and must hold no rows). See the module doc.
pub async fn sqlite_to_postgres(
    source: &StorageUrl,
    target: &StorageUrl,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    let StorageUrl::Sqlite(path) = source else {
        return Err(anyhow!(
            "[storage] url is already PostgreSQL ({source}); db copy moves a SQLite store into PostgreSQL (between PostgreSQL databases, use pg_dump and pg_restore)"
        )
        .into());
    };
    let StorageUrl::Postgres(_) = target else {
        return Err(anyhow!(
            "db copy writes into PostgreSQL only, not {target}: expected --to postgres://user@host/database"
        )
        .into());
    };
    // Opening would create an empty store: a wrong path must not "copy"
    // nothing successfully.
    if !path.is_file() {
        return Err(anyhow!(
            "there is no SQLite store at {} ([storage] url = \"{source}\"): nothing to copy",
            path.display()
        )
        .into());
    }
    let started = Instant::now();
    // Store::open brings both schemas to the current migration, so the
    // columns below exist on both sides.
    let source_store = Store::open(source).await?;
    let target_store = match Store::open(target).await {
        Ok(store) => store,
        Err(e) => {
            source_store.close().await;
            return Err(e.into());
        }
    };
    let result = match (&source_store.db, &target_store.db) {
        (Db::Sqlite { .. }, Db::Postgres(to)) => copy(path, to, target, progress).await,
        _ => unreachable!("the URLs were matched above"),
    };
    source_store.close().await;
    target_store.close().await;
    let (tables, sending) = result?;
    Ok(CopyReport {
        tables,
        sending,
        elapsed: started.elapsed(),
    })
}

async fn copy(
    from: &Path,
    to: &PgPool,
    target: &StorageUrl,
    progress: Progress<'_>,
) -> Result<(Vec<(&'static str, i64)>, i64), CopyError> {
    // A connection of its own, read-only, whose long streaming reads are
    // not reported as slow statements.
    let mut reader = SqliteConnectOptions::from_str("sqlite:")
        .context("sqlite: is a SQLite URL")?
        .filename(from)
        .read_only(true)
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("cannot open {} for reading", from.display()))?;
    // One read transaction: every table is read from the same snapshot.
    let mut src = reader
        .begin()
        .await
        .context("cannot start reading the SQLite store")?;
    let mut dst = to
        .begin()
        .await
        .context("cannot start a transaction in PostgreSQL")?;
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    // Readers may go on; no writer may add rows between the check and the
    // commit (such as a service already pointed at the new database).
    sqlx::query(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .execute(&mut *dst)
    .await
    .context("cannot lock the target tables")?;
    let occupied: Vec<(&'static str, i64)> = pg_counts(&mut dst)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    if !occupied.is_empty() {
        return Err(CopyError::NotEmpty {
            target: target.to_string(),
            tables: occupied,
        });
    }
    check_columns(&mut src, &mut dst).await?;
    let expected = sqlite_counts(&mut src).await?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for (table, (_, total)) in TABLES.iter().zip(&expected) {
        let n = copy_table(table, &mut src, &mut dst, *total as u64, progress)
            .await
            .with_context(|| format!("cannot copy the table {}", table.name))?;
        copied.push(n);
    }
    for table in TABLES.iter().filter(|t| t.identity) {
        // The next id PostgreSQL hands out comes after the copied ones.
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {0}",
            table.name
        ))
        .execute(&mut *dst)
        .await
        .with_context(|| format!("cannot move the id sequence of {}", table.name))?;
    }
    let written = pg_counts(&mut dst).await?;
    let mut mismatches = Vec::new();
    for (((table, source), read), (_, target)) in
        TABLES.iter().zip(&expected).zip(&copied).zip(&written)
    {
        let (_, source) = *source;
        if source != *target || source != *read as i64 {
            mismatches.push(format!(
                "{}: {source} in SQLite, {read} read, {target} in PostgreSQL",
                table.name
            ));
        }
    }
    if !mismatches.is_empty() {
        // Dropping `dst` rolls everything back.
        return Err(anyhow!(
            "the counts differ after the copy, so nothing was committed: {}",
            mismatches.join("; ")
        )
        .into());
    }
    let sending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'")
            .fetch_one(&mut *dst)
            .await
            .context("cannot count the deliveries in flight")?;
    dst.commit()
        .await
        .context("cannot commit the copy in PostgreSQL")?;
    src.rollback().await.ok();
    reader.close().await.ok();
    Ok((written, sending))
}

/// Rows in each table, in [`TABLES`] order.
async fn pg_counts(conn: &mut PgConnection) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", t.name))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("cannot count the rows of {} in PostgreSQL", t.name))?;
        out.push((t.name, n));
    }
    Ok(out)
}

async fn sqlite_counts(conn: &mut SqliteConnection) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", t.name))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("cannot count the rows of {} in SQLite", t.name))?;
        out.push((t.name, n));
    }
    Ok(out)
}

/// Refuses to copy when either schema has a table or column this module
/// does not know: a later migration must not be dropped silently.
async fn check_columns(src: &mut SqliteConnection, dst: &mut PgConnection) -> anyhow::Result<()> {
    let known = |table: &str, column: Option<&str>| {
        NOT_COPIED.contains(&table)
            || TABLES.iter().any(|t| {
                t.name == table && column.is_none_or(|c| t.columns.iter().any(|(n, _)| *n == c))
            })
    };
    let sqlite: Vec<SqliteRow> = sqlx::query(
        "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%'",
    )
    .fetch_all(&mut *src)
    .await
    .context("cannot read the SQLite schema")?;
    let postgres: Vec<PgRow> = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%'",
    )
    .fetch_all(&mut *dst)
    .await
    .context("cannot read the PostgreSQL schema")?;
    let mut unknown = Vec::new();
    for (side, pairs) in [
        ("SQLite", pairs(&sqlite, |r, i| r.try_get::<String, _>(i))?),
        (
            "PostgreSQL",
            pairs(&postgres, |r, i| r.try_get::<String, _>(i))?,
        ),
    ] {
        for (t, c) in pairs {
            if !known(&t, Some(&c)) && (known(&t, None) || side == "SQLite") {
                unknown.push(format!("{t}.{c} ({side})"));
            }
        }
    }
    if !unknown.is_empty() {
        bail!(
            "db copy does not know these columns, which would be lost: {}; this build of tidings cannot copy this store",
            unknown.join(", ")
        );
    }
    Ok(())
}

fn pairs<R>(
    rows: &[R],
    get: impl Fn(&R, usize) -> Result<String, sqlx::Error>,
) -> anyhow::Result<Vec<(String, String)>> {
    rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
}

/// One value on its way from SQLite to PostgreSQL.
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

fn read_row(table: &Table, row: &SqliteRow) -> anyhow::Result<Vec<Value>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let value = match kind {
                Kind::Text => row.try_get(i).map(Value::Text),
                Kind::Int => row.try_get(i).map(Value::Int),
                Kind::Time => row.try_get(i).map(Value::Time),
                Kind::Bool => row.try_get(i).map(Value::Bool),
                Kind::Bytes => row.try_get(i).map(Value::Bytes),
            };
            value.with_context(|| {
                let key: String = row
                    .try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap_or_default();
                format!(
                    "cannot read {}.{name} of the row {} = {key}",
                    table.name, table.columns[0].0
                )
            })
        })
        .collect()
}

/// Streams one table across; returns how many rows went.
async fn copy_table(
    table: &Table,
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    total: u64,
    progress: Progress<'_>,
) -> anyhow::Result<u64> {
    let columns = table.column_list();
    let select = format!(
        "SELECT {columns} FROM {} ORDER BY {}",
        table.name, table.order
    );
    let insert = format!("INSERT INTO {} ({columns}) ", table.name);
    let batch_rows = table.batch_rows();
    let mut rows = sqlx::query(&select).fetch(&mut *src);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_rows);
    let mut done = 0u64;
    progress(table.name, 0, total);
    loop {
        let row = rows
            .try_next()
            .await
            .with_context(|| format!("cannot read {} from SQLite", table.name))?;
        if let Some(row) = &row {
            batch.push(read_row(table, row)?);
        }
        if batch.len() == batch_rows || (row.is_none() && !batch.is_empty()) {
            done += batch.len() as u64;
            insert_batch(&insert, std::mem::take(&mut batch), dst).await?;
            progress(table.name, done, total);
        }
        if row.is_none() {
            return Ok(done);
        }
    }
}

async fn insert_batch(
    insert: &str,
    batch: Vec<Vec<Value>>,
    dst: &mut PgConnection,
) -> anyhow::Result<()> {
    let mut query = QueryBuilder::<Postgres>::new(insert);
    query.push_values(batch, |mut b, row| {
        for value in row {
            match value {
                Value::Text(v) => b.push_bind(v),
                Value::Int(v) => b.push_bind(v),
                Value::Time(v) => b.push_bind(v),
                Value::Bool(v) => b.push_bind(v),
                Value::Bytes(v) => b.push_bind(v),
            };
        }
    });
    query
        .build()
        .execute(&mut *dst)
        .await
        .context("cannot write to PostgreSQL")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_stays_under_the_bind_limit() {
        for t in TABLES {
            assert!(t.batch_rows() >= 1, "{}", t.name);
            assert!(
                t.batch_rows() * t.columns.len() <= PG_BIND_LIMIT,
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn parents_come_before_children() {
        let at = |name: &str| TABLES.iter().position(|t| t.name == name).unwrap();
        assert!(at("stories") < at("story_themes"));
        assert!(at("stories") < at("edition_stories"));
        assert!(at("editions") < at("edition_stories"));
        assert!(at("editions") < at("deliveries"));
        assert!(at("subscribers") < at("deliveries"));
    }
}
