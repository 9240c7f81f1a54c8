// Editions and the delivery ledger: see `store/editions.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use sqlx::{Pool, Row};

use crate::model::DeliveryState;
use crate::store::editions::{Claimed, Counts, Edition, FIRST_EDITION_LOOKBACK, Frozen, Sent};
use crate::store::StoredStory;
use crate::model::StoryId;

macro_rules! edition_columns {
    () => {
        "id, digest, key, period_start, period_end, created_at, completed_at"
    };
}

pub async fn freeze_edition(pool: &Pool<DB>, digest: &str, key: &str, skip_if_empty: bool, now: DateTime<Utc>) -> Result<Frozen> {
    let mut tx = super::begin_write(pool).await?;
    if let Some(edition) = edition_by_key(&mut tx, digest, key).await? {
        tx.commit().await?;
        return Ok(Frozen {
            edition,
            created: false,
            stories: 0,
            deliveries: 0,
        });
    }
    let previous: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT period_end FROM editions WHERE digest = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(digest)
    .fetch_optional(&mut *tx)
    .await?;
    // A tick caught up after a later edition (sent by hand meanwhile) must
    // not end before that one: its period starts where the last one ended.
    let now = now.max(previous.unwrap_or(now));
    let period_start = previous.unwrap_or(now - FIRST_EDITION_LOOKBACK);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO editions (digest, key, period_start, period_end, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(digest)
    .bind(key)
    .bind(period_start)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .context("cannot create the edition")?;
    // Only what is recent by the stories' own dates is sent (see
    // `oldest_news`); every story still lands in exactly one edition.
    sqlx::query(
        "INSERT INTO edition_stories (edition_id, digest, story_id, included)
         SELECT $1, $2, s.id, CASE WHEN $3 AND s.published_at < $4 THEN FALSE ELSE TRUE END
         FROM stories s
         WHERE s.withdrawn_at IS NULL AND s.first_seen_at <= $5
           AND NOT EXISTS (SELECT 1 FROM edition_stories e
                           WHERE e.digest = $6 AND e.story_id = s.id)",
    )
    .bind(id)
    .bind(digest)
    .bind(true)
    .bind(oldest_news(previous, now))
    .bind(now)
    .bind(digest)
    .execute(&mut *tx)
    .await
    .context("cannot freeze the edition's stories")?;
    let stories: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM edition_stories WHERE edition_id = $1 AND included = TRUE",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    // The subscriber's themes are a JSON array in a text column.
    let chosen = if PG {
        "jsonb_array_elements_text(s.themes::jsonb) AS j(value)"
    } else {
        "json_each(s.themes) AS j"
    };
    let sql = format!(
        "INSERT INTO deliveries (edition_id, subscriber_id, next_attempt_at)
         SELECT $1, s.id, $2 FROM subscribers s
         WHERE s.digest = $3 AND s.status = 'active'
           AND (NOT $4 OR EXISTS (
                SELECT 1 FROM {chosen}
                JOIN story_themes st ON st.theme = j.value
                JOIN edition_stories es ON es.story_id = st.story_id
                WHERE es.edition_id = $5 AND es.included = TRUE))
         ORDER BY s.id
         ON CONFLICT (edition_id, subscriber_id) DO NOTHING"
    );
    let deliveries = sqlx::query(&sql)
    .bind(id)
    .bind(now)
    .bind(digest)
    .bind(skip_if_empty)
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("cannot write the delivery ledger")?
    .rows_affected();
    let edition = edition_by_key(&mut tx, digest, key)
        .await?
        .expect("inserted above");
    tx.commit().await.context("cannot commit the edition")?;
    Ok(Frozen {
        edition,
        created: true,
        stories: stories as u64,
        deliveries,
    })
}

pub async fn unfinished_edition(pool: &Pool<DB>, digest: &str) -> Result<Option<Edition>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        edition_columns!(),
        " FROM editions WHERE digest = $1 AND completed_at IS NULL ORDER BY id LIMIT 1"
    ))
    .bind(digest)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(edition).transpose()
}

pub async fn editions(pool: &Pool<DB>, digest: &str, limit: i64) -> Result<Vec<Edition>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        edition_columns!(),
        " FROM editions WHERE digest = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(digest)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(edition).collect()
}

pub async fn edition_stories(pool: &Pool<DB>, edition_id: i64) -> Result<Vec<StoredStory>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT story_id FROM edition_stories WHERE edition_id = $1 AND included = TRUE",
    )
    .bind(edition_id)
    .fetch_all(pool)
    .await?;
    published_by_id_texts(pool, &ids).await
}

pub async fn pending_stories(pool: &Pool<DB>, digest: &str, now: DateTime<Utc>) -> Result<Vec<StoredStory>> {
    let previous: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT period_end FROM editions WHERE digest = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT s.id FROM stories s
         WHERE s.withdrawn_at IS NULL AND s.first_seen_at <= $1
           AND NOT ($2 AND s.published_at < $3)
           AND NOT EXISTS (SELECT 1 FROM edition_stories e WHERE e.digest = $4 AND e.story_id = s.id)",
    )
    .bind(now)
    .bind(true)
    .bind(oldest_news(previous, now))
    .bind(digest)
    .fetch_all(pool)
    .await?;
    published_by_id_texts(pool, &ids).await
}

pub async fn claim_deliveries(pool: &Pool<DB>, edition_id: i64, limit: i64, now: DateTime<Utc>, lease: Duration) -> Result<Vec<Claimed>> {
    let mut tx = super::begin_write(pool).await?;
    // On PostgreSQL several instances claim at once: rows another one is
    // claiming are skipped, not waited for. SQLite has one writer at a time.
    let sql = if PG {
        // Several instances claim at once: rows another one is claiming
        // are skipped, not waited for.
        "UPDATE deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM deliveries
             WHERE edition_id = $2
               AND ((status = 'pending' AND next_attempt_at <= $3)
                    OR (status = 'sending' AND lease_until < $4))
             ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)
         RETURNING id, subscriber_id, attempts"
    } else {
        // SQLite has one writer at a time. Each kind of row is read from
        // the `deliveries_work` index, which stops after `limit` rows: an
        // `OR` of the two, or an `ORDER BY id`, reads every row of the
        // edition at each claim, which made sending 50,000 messages
        // quadratic. Rows whose lease lapsed go first.
        "UPDATE deliveries SET status = 'sending', lease_until = ?1, attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM (SELECT id FROM deliveries
                             WHERE edition_id = ?2 AND status = 'sending' AND lease_until < ?4
                             LIMIT ?5)
             UNION ALL
             SELECT id FROM (SELECT id FROM deliveries
                             WHERE edition_id = ?2 AND status = 'pending' AND next_attempt_at <= ?3
                             ORDER BY next_attempt_at LIMIT ?5)
             LIMIT ?5)
         RETURNING id, subscriber_id, attempts"
    };
    let rows = sqlx::query(sql)
    .bind(now + lease)
    .bind(edition_id)
    .bind(now)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .context("cannot claim deliveries")?;
    // The subscribers, in one query rather than one each.
    let mut subscribers = std::collections::HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(500) {
        let mut q = sqlx::QueryBuilder::<DB>::new(format!(
            "SELECT {} FROM subscribers WHERE id IN (",
            super::subscribers::COLUMNS
        ));
        let mut list = q.separated(", ");
        for r in chunk {
            list.push_bind(r.get::<i64, _>("subscriber_id"));
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            let subscriber = super::subscribers::subscriber_row(&row)?;
            subscribers.insert(subscriber.id, subscriber);
        }
    }
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        let subscriber_id: i64 = r.get("subscriber_id");
        if let Some(subscriber) = subscribers.remove(&subscriber_id) {
            claimed.push(Claimed {
                delivery_id: r.get("id"),
                attempt: r.get("attempts"),
                subscriber,
            });
        }
    }
    tx.commit().await?;
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

pub async fn renew_leases(pool: &Pool<DB>, rows: &[(i64, i64)], until: DateTime<Utc>) -> Result<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<DB>::new("UPDATE deliveries SET lease_until = ");
    q.push_bind(until);
    // `id IN` first: SQLite looks a list of row values up only by
    // scanning, a list of ids by the primary key.
    q.push(" WHERE id IN (");
    let mut ids = q.separated(", ");
    for (id, _) in rows {
        ids.push_bind(*id);
    }
    q.push(") AND status = 'sending' AND (id, attempts) IN (");
    let mut list = q.separated(", ");
    for (id, attempt) in rows {
        list.push("(");
        list.push_bind_unseparated(*id);
        list.push_unseparated(", ");
        list.push_bind_unseparated(*attempt);
        list.push_unseparated(")");
    }
    q.push(") RETURNING id");
    let ids: Vec<i64> = q
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .context("cannot renew the leases of claimed deliveries")?;
    Ok(ids)
}

pub async fn mark_sent(pool: &Pool<DB>, sent: &[Sent], now: DateTime<Utc>) -> Result<()> {
    // One statement for many rows: a transaction each would cost a commit
    // each. 500 rows are 1,500 parameters, well under either backend's limit.
    for chunk in sent.chunks(500) {
        let mut q = sqlx::QueryBuilder::<DB>::new("WITH v (id, message_id, reply) AS (VALUES ");
        let mut list = q.separated(", ");
        for row in chunk {
            list.push("(");
            list.push_bind_unseparated(row.delivery_id);
            list.push_unseparated(", ");
            list.push_bind_unseparated(row.message_id.as_str());
            list.push_unseparated(", ");
            list.push_bind_unseparated(row.reply.as_str());
            list.push_unseparated(")");
        }
        q.push(
            ") UPDATE deliveries SET status = 'sent', message_id = v.message_id, smtp_reply = v.reply, \
             lease_until = NULL, last_error = NULL, finished_at = ",
        );
        q.push_bind(now);
        q.push(" FROM v WHERE deliveries.id = v.id");
        q.build().execute(pool).await?;
    }
    Ok(())
}

pub async fn mark_retry(pool: &Pool<DB>, id: i64, error: &str, next: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', last_error = $1, next_attempt_at = $2, lease_until = NULL
         WHERE id = $3",
    )
    .bind(error)
    .bind(next)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn release_delivery(pool: &Pool<DB>, id: i64, attempt: i64, error: &str) -> Result<bool> {
    let released = sqlx::query(
        "UPDATE deliveries SET status = 'pending', attempts = attempts - 1, last_error = $1, lease_until = NULL
         WHERE id = $2 AND status = 'sending' AND attempts = $3",
    )
    .bind(error)
    .bind(id)
    .bind(attempt)
    .execute(pool)
    .await?;
    Ok(released.rows_affected() > 0)
}

pub async fn mark_final(pool: &Pool<DB>, id: i64, status: DeliveryState, reason: &str, now: DateTime<Utc>) -> Result<()> {
    debug_assert!(matches!(status, DeliveryState::Failed | DeliveryState::Skipped));
    sqlx::query(
        "UPDATE deliveries SET status = $1, last_error = $2, finished_at = $3, lease_until = NULL
         WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn delivery_counts(pool: &Pool<DB>, edition_id: i64) -> Result<Counts> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE edition_id = $1 GROUP BY status",
    )
    .bind(edition_id)
    .fetch_all(pool)
    .await?;
    Ok(counts(&rows))
}

pub async fn complete_if_done(pool: &Pool<DB>, edition_id: i64, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE editions SET completed_at = $1
         WHERE id = $2 AND completed_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM deliveries
                           WHERE edition_id = $3 AND status IN ('pending', 'sending'))",
    )
    .bind(now)
    .bind(edition_id)
    .bind(edition_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn undelivered(pool: &Pool<DB>, edition_id: i64) -> Result<Vec<(String, DeliveryState, String)>> {
    let rows = sqlx::query(
        "SELECT s.email, d.status, COALESCE(d.last_error, '') AS reason
         FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE d.edition_id = $1 AND d.status <> 'sent' ORDER BY d.id",
    )
    .bind(edition_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.get("status");
            let state = state.parse().map_err(anyhow::Error::msg)?;
            Ok((r.get("email"), state, r.get("reason")))
        })
        .collect()
}

async fn edition_by_key(
    tx: &mut sqlx::Transaction<'_, DB>,
    digest: &str,
    key: &str,
) -> Result<Option<Edition>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        edition_columns!(),
        " FROM editions WHERE digest = $1 AND key = $2"
    ))
    .bind(digest)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(edition).transpose()
}

pub(crate) fn edition(r: &<DB as sqlx::Database>::Row) -> Result<Edition> {
    Ok(Edition {
        id: r.get("id"),
        digest: r.get("digest"),
        key: r.get("key"),
        period_start: r.get("period_start"),
        period_end: r.get("period_end"),
        created_at: r.get("created_at"),
        completed_at: r.get("completed_at"),
    })
}

/// Deliveries by state from rows of `status, COUNT(*) AS n … GROUP BY status`.
pub(crate) fn counts(rows: &[<DB as sqlx::Database>::Row]) -> Counts {
    let mut c = Counts::default();
    for r in rows {
        let n: i64 = r.get("n");
        // The table's CHECK allows only these words.
        let state = r.get::<String, _>("status").parse().unwrap_or(DeliveryState::Skipped);
        c.add(state, n);
    }
    c
}

/// `published_by_ids` for ids as the database returns them.
async fn published_by_id_texts(pool: &Pool<DB>, ids: &[String]) -> Result<Vec<StoredStory>> {
    let ids: Vec<StoryId> = ids
        .iter()
        .map(|i| StoryId::parse(i).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let refs: Vec<&StoryId> = ids.iter().collect();
    super::stories::published_by_ids(pool, &refs).await
}

/// The oldest publication date an edition sends: for a first edition
/// `FIRST_EDITION_LOOKBACK` before it; after that the previous period's
/// end less one more period (at least `FIRST_EDITION_LOOKBACK`), so a
/// story published late in the last period and seen only now still goes
/// out, while a source added with years of old posts (a WordPress site,
/// a partner feed) does not flood the next digest with them.
fn oldest_news(previous: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match previous {
        None => now - FIRST_EDITION_LOOKBACK,
        Some(end) => end - (now - end).max(FIRST_EDITION_LOOKBACK),
    }
}
