// Stories: what ingest stores and the feeds read. Included once per
// backend by `store/backend.rs`, with `DB` the sqlx database type.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder, Row};

use crate::store::{Change, FeedFacts, Indexed, STORY_COLUMNS, StoredRef, StoredStory};
use crate::model::{Language, Story, StoryId, ThemeSlug};

/// Every stored story, withdrawn ones included, for matching.
pub async fn story_refs(pool: &Pool<DB>) -> Result<Vec<StoredRef>> {
    // One row holding every story as JSON: the driver's cost is per row,
    // and a site has tens of thousands of stories to match at each ingest.
    let sql = if PG {
        "SELECT COALESCE(json_agg(json_build_array(id, source, slug, origin, origin_stamp,
                    content_hash, (withdrawn_at IS NOT NULL)::int,
                    (source_hash IS NOT NULL)::int)), '[]')::text AS refs
         FROM stories"
    } else {
        // As a blob: the text of a function has no closing NUL, which
        // SQLite would add, copying the 4 MB, when the driver asks for it.
        "SELECT CAST(json_group_array(json_array(id, source, slug, origin, origin_stamp,
                    content_hash, withdrawn_at IS NOT NULL, source_hash IS NOT NULL)) AS BLOB)
                AS refs
         FROM stories"
    };
    let row = sqlx::query(sql)
        .fetch_one(pool)
        .await
        .context("cannot read stored stories")?;
    // The JSON borrowed from the row, not copied: at 20,000 stories it is
    // 4 MB, and each copy was a part of an unchanged build.
    let json: &[u8] = if PG {
        row.try_get::<&str, _>(0).map(str::as_bytes)
    } else {
        row.try_get(0)
    }
    .context("cannot read stored stories")?;
    let rows: Vec<RefRow> = serde_json::from_slice(json).context("cannot read stored stories")?;
    // In place: a `RefRow` is a `StoredRef`.
    let mut refs: Vec<StoredRef> = rows.into_iter().map(|RefRow(r)| r).collect();
    refs.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Ok(refs)
}

/// One stored story as [`story_refs`] selects it.
struct RefRow(StoredRef);

impl<'de> serde::Deserialize<'de> for RefRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RefRow, D::Error> {
        type Row = (StoryId, String, String, String, Option<String>, String, i64, i64);
        let (id, source, slug, origin, stamp, content_hash, withdrawn, lazy): Row =
            serde::Deserialize::deserialize(d)?;
        Ok(RefRow(StoredRef {
            id,
            source,
            slug,
            origin,
            content_hash,
            stamp,
            withdrawn: withdrawn != 0,
            lazy: lazy != 0,
        }))
    }
}

/// Applies changes on `tx`, in the transaction that an ingest run commits
/// once all its sources are read; returns how many stories the inserts
/// added (one already stored is not added again).
pub async fn apply(
    tx: &mut <DB as sqlx::Database>::Connection,
    changes: &[Change],
    now: DateTime<Utc>,
) -> Result<u64> {
    let inserts: Vec<&Change> = changes
        .iter()
        .filter(|c| matches!(c, Change::Insert { .. }))
        .collect();
    // Many rows per statement: a first build of a large site inserts
    // tens of thousands, and a statement costs far more than a row.
    let mut added = 0;
    for chunk in inserts.chunks(INSERT_BATCH) {
        added += insert_stories(tx, chunk, now).await?;
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
                    "UPDATE stories SET source = $1, slug = $2, origin = $3, origin_stamp = $4,
                       url = $5, title = $6, summary = $7, body_html = $8, language = $9,
                       authors = $10, themes = $11, image = $12, image_alt = $13, published_at = $14,
                       updated_at = $15, content_hash = $16, withdrawn_at = NULL,
                       changed_at = CASE WHEN $17 THEN $18 ELSE changed_at END,
                       featured = $20, source_hash = $21, body_key = $22
                     WHERE id = $19",
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
                .bind(story.featured)
                .bind(story.body_source.as_ref().map(|s| s.hash.as_str()))
                .bind(story.body_source.as_ref().and_then(|s| s.rendered.as_deref()))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("cannot update story {id} ({})", story.origin))?;
                sqlx::query("DELETE FROM story_themes WHERE story_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                insert_themes(tx, &[(id, &story.themes)]).await?;
            }
            Change::Seen {
                id,
                origin,
                source,
                stamp,
            } => {
                sqlx::query(
                    "UPDATE stories SET origin = $1, source = $2, origin_stamp = $3 WHERE id = $4",
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
                    "UPDATE stories SET withdrawn_at = $1 WHERE id = $2 AND withdrawn_at IS NULL",
                )
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    Ok(added)
}

/// How many stories the store holds, withdrawn ones too, as `tx` sees it.
pub async fn count_all(tx: &mut <DB as sqlx::Database>::Connection) -> Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stories")
        .fetch_one(&mut *tx)
        .await
        .context("cannot count stories")?;
    Ok(count as u64)
}

/// How many stories are published, and how many withdrawn.
pub async fn story_counts(pool: &Pool<DB>) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE withdrawn_at IS NULL) AS published,
                COUNT(*) FILTER (WHERE withdrawn_at IS NOT NULL) AS withdrawn
         FROM stories",
    )
    .fetch_one(pool)
    .await
    .context("cannot count stories")?;
    Ok((row.get("published"), row.get("withdrawn")))
}

/// The id and themes of every published story, newest first (ties by
/// id): enough to choose what goes in each feed without reading bodies.
pub async fn published_index(pool: &Pool<DB>) -> Result<Vec<Indexed>> {
    // As JSON in one row, as in `story_refs`, from the columns of the
    // `stories_published` index alone (another column would read every
    // row of the table); sorted here.
    let sql = if PG {
        "SELECT COALESCE(json_agg(json_build_array(id, themes, published_at)), '[]')::text
         FROM stories WHERE withdrawn_at IS NULL"
    } else {
        // `themes` as the JSON text it is stored as: SQLite's `json()`
        // would parse every one again (half the query's time).
        "SELECT json_group_array(json_array(id, themes, published_at))
         FROM stories WHERE withdrawn_at IS NULL"
    };
    let json: String = sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .context("cannot read published stories")?;
    let rows: Vec<(String, String, DateTime<Utc>)> =
        serde_json::from_str(&json).context("cannot read published stories")?;
    let mut index = rows
        .into_iter()
        .map(|(id, themes, published)| {
            let id = StoryId::parse(&id).map_err(anyhow::Error::msg)?;
            let themes: Vec<ThemeSlug> =
                serde_json::from_str(&themes).context("bad themes column")?;
            Ok((published, Indexed { id, themes }))
        })
        .collect::<Result<Vec<_>>>()?;
    index.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(index.into_iter().map(|(_, indexed)| indexed).collect())
}

pub async fn feed_entries(pool: &Pool<DB>, ids: &[&StoryId]) -> Result<Vec<(Indexed, FeedFacts)>> {
    // The ids in as one JSON array and the facts out as one row of JSON,
    // as in `story_refs`: one statement, however many stories the feeds
    // choose, and no cost per row in the driver.
    let sql = if PG {
        "SELECT COALESCE(json_agg(json_build_array(id, themes, content_hash, published_at,
                    updated_at, changed_at)), '[]')::text
         FROM stories
         WHERE withdrawn_at IS NULL AND id IN (SELECT json_array_elements_text($1::json))"
    } else {
        "SELECT json_group_array(json_array(id, themes, content_hash, published_at, updated_at,
                    changed_at))
         FROM stories
         WHERE withdrawn_at IS NULL AND id IN (SELECT value FROM json_each($1))"
    };
    let wanted = serde_json::to_string(&ids.iter().map(|id| id.as_str()).collect::<Vec<_>>())?;
    let json: String = sqlx::query_scalar(sql)
        .bind(wanted)
        .fetch_one(pool)
        .await
        .context("cannot read what the feeds show of their stories")?;
    type Row = (
        String,
        String,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> =
        serde_json::from_str(&json).context("cannot read what the feeds show of their stories")?;
    rows.into_iter()
        .map(|(id, themes, hash, published, updated, changed)| {
            let id = StoryId::parse(&id).map_err(anyhow::Error::msg)?;
            let themes: Vec<ThemeSlug> =
                serde_json::from_str(&themes).context("bad themes column")?;
            let updated = crate::store::updated(published, updated, changed);
            let facts = FeedFacts {
                hash,
                updated,
                published,
            };
            Ok((Indexed { id, themes }, facts))
        })
        .collect()
}

/// The published stories with these ids, newest first (ties by id).
pub async fn published_by_ids(pool: &Pool<DB>, ids: &[&StoryId]) -> Result<Vec<StoredStory>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(INSERT_BATCH) {
        let mut q = QueryBuilder::<DB>::new(format!(
            "SELECT {STORY_COLUMNS} FROM stories WHERE withdrawn_at IS NULL AND id IN ("
        ));
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        q.push(")");
        let rows = q
            .build()
            .fetch_all(pool)
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

/// A value the program keeps for itself, by name.
pub async fn setting(pool: &Pool<DB>, name: &str) -> Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .with_context(|| format!("cannot read the setting {name}"))
}

/// Sets a setting, on the pool or within a transaction.
pub async fn set_setting<'e>(
    db: impl sqlx::Executor<'e, Database = DB>,
    name: &str,
    value: &[u8],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(db)
    .await
    .with_context(|| format!("cannot store the setting {name}"))?;
    Ok(())
}

/// Sets a setting within a transaction; returns the value it replaced.
/// On PostgreSQL the row stays locked until the transaction ends, so that
/// of two transactions swapping the same setting, the second reads what
/// the first wrote.
pub async fn swap_setting(
    conn: &mut <DB as sqlx::Database>::Connection,
    name: &str,
    value: &[u8],
) -> Result<Option<Vec<u8>>> {
    let sql = if PG {
        "SELECT value FROM settings WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT value FROM settings WHERE name = $1"
    };
    let before = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .with_context(|| format!("cannot read the setting {name}"))?;
    set_setting(&mut *conn, name, value).await?;
    Ok(before)
}

/// Keeps renderings of story bodies, each only if its story still has
/// the Markdown hash it was rendered from: many a statement, as the
/// inserts, since a first build keeps a thousand at once.
pub async fn keep_bodies(
    pool: &Pool<DB>,
    bodies: &[(StoryId, String, String, String)],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    for chunk in bodies.chunks(KEEP_BATCH) {
        let mut q = QueryBuilder::<DB>::new("WITH kept (id, hash, body_key, html) AS (");
        q.push_values(chunk, |mut b, (id, hash, key, html)| {
            b.push_bind(id.as_str())
                .push_bind(hash.as_str())
                .push_bind(key.as_str())
                .push_bind(html.as_str());
        });
        q.push(
            ") UPDATE stories SET body_html = kept.html, body_key = kept.body_key FROM kept
             WHERE stories.id = kept.id AND stories.source_hash = kept.hash",
        );
        q.build().execute(&mut *tx).await.with_context(|| {
            let first = chunk.first().map(|b| b.0.as_str()).unwrap_or_default();
            format!("cannot keep the rendered bodies of {} stories (from {first} on)", chunk.len())
        })?;
    }
    tx.commit().await.context("cannot keep rendered bodies")?;
    Ok(())
}

/// Renderings kept per statement (four bound values each).
const KEEP_BATCH: usize = 500;

/// Rows per multi-row INSERT: 22 columns x 500 stays far below SQLite's
/// limit of 32766 bound parameters.
const INSERT_BATCH: usize = 500;

async fn insert_stories(
    tx: &mut <DB as sqlx::Database>::Connection,
    inserts: &[&Change],
    now: DateTime<Utc>,
) -> Result<u64> {
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
    let mut q = QueryBuilder::<DB>::new(
        "INSERT INTO stories (id, guid, source, slug, origin, origin_stamp, url, title, summary,
           body_html, language, authors, themes, image, image_alt, published_at, updated_at,
           content_hash, first_seen_at, featured, source_hash, body_key) ",
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
                .push_bind(now)
                .push_bind(story.featured)
                .push_bind(story.body_source.as_ref().map(|s| s.hash.as_str()))
                .push_bind(story.body_source.as_ref().and_then(|s| s.rendered.as_deref()));
        },
    );
    // Another instance ingesting the same new story at the same moment
    // stored it first: it is stored once.
    q.push(" ON CONFLICT DO NOTHING");
    let done = q.build().execute(&mut *tx).await.with_context(|| {
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
    insert_themes(tx, &themes).await?;
    Ok(done.rows_affected())
}

async fn insert_themes(
    tx: &mut <DB as sqlx::Database>::Connection,
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
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO story_themes (story_id, theme, position) ",
        );
        q.push_values(chunk, |mut b, (id, theme, position)| {
            b.push_bind(id.as_str())
                .push_bind(theme.as_str())
                .push_bind(*position);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(crate) fn stored_story(r: &<DB as sqlx::Database>::Row) -> Result<StoredStory> {
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
        body_source: r
            .get::<Option<String>, _>("source_hash")
            .map(|hash| crate::model::BodySource {
                hash,
                rendered: r.get("body_key"),
                markdown: None,
            }),
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
        featured: r.get("featured"),
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
