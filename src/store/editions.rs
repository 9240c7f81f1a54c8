//! Editions and the delivery ledger in the store.
//!
//! Freezing an edition, choosing its stories and writing one delivery row
//! per subscriber who gets it all happen in one transaction; a repeat with
//! the same key finds the edition already there and adds nothing. Workers
//! then claim rows (`pending` → `sending` with a lease), and mark each
//! `sent`, `failed`, `skipped`, or `pending` again for a later attempt.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use super::{Store, StoredStory};
use crate::story::StoryId;
use crate::subscribers::Subscriber;

macro_rules! edition_columns {
    () => {
        "id, digest, key, period_start, period_end, created_at, completed_at"
    };
}

/// How far back the first edition of a digest reaches: older stories are
/// the archive that existed before the digest, absorbed without sending.
pub const FIRST_EDITION_LOOKBACK: Duration = Duration::days(31);

/// An edition as stored.
#[derive(Debug, Clone)]
pub struct Edition {
    pub id: i64,
    pub digest: String,
    pub key: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// What freezing did.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub edition: Edition,
    /// False when an edition with this key already existed.
    pub created: bool,
    /// Stories the edition sends.
    pub stories: u64,
    /// Delivery rows written.
    pub deliveries: u64,
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub subscriber: Subscriber,
}

/// Deliveries of an edition by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} failed, {} skipped, {} pending, {} sending",
            self.sent, self.failed, self.skipped, self.pending, self.sending
        )
    }
}

impl Counts {
    /// From rows of `status, COUNT(*) AS n … GROUP BY status`.
    pub(super) fn from_rows(rows: &[sqlx::sqlite::SqliteRow]) -> Counts {
        let mut c = Counts::default();
        for r in rows {
            let n: i64 = r.get("n");
            match r.get::<String, _>("status").as_str() {
                "pending" => c.pending = n,
                "sending" => c.sending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                _ => c.skipped = n,
            }
        }
        c
    }

    pub fn total(&self) -> i64 {
        self.pending + self.sending + self.sent + self.failed + self.skipped
    }
    /// Every row is sent, failed or skipped.
    pub fn done(&self) -> bool {
        self.pending == 0 && self.sending == 0
    }
}

impl Store {
    /// Freezes the edition `key` of `digest` at `now`: the published stories
    /// first seen up to now that no edition of this digest holds yet, and
    /// one delivery per active subscriber of the digest (only those whose
    /// themes match a story, when `skip_if_empty`). Idempotent by key.
    pub async fn freeze_edition(
        &self,
        digest: &str,
        key: &str,
        skip_if_empty: bool,
        now: DateTime<Utc>,
    ) -> Result<Frozen> {
        let mut tx = self.pool.begin().await?;
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
            "SELECT period_end FROM editions WHERE digest = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let first = previous.is_none();
        let period_start = previous.unwrap_or(now - FIRST_EDITION_LOOKBACK);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO editions (digest, key, period_start, period_end, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(digest)
        .bind(key)
        .bind(period_start)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .context("cannot create the edition")?;
        // A first edition sends only what is recent by the stories' own
        // dates; every story still lands in exactly one edition.
        sqlx::query(
            "INSERT INTO edition_stories (edition_id, digest, story_id, included)
             SELECT ?, ?, s.id, CASE WHEN ? AND s.published_at < ? THEN 0 ELSE 1 END
             FROM stories s
             WHERE s.withdrawn_at IS NULL AND s.first_seen_at <= ?
               AND NOT EXISTS (SELECT 1 FROM edition_stories e
                               WHERE e.digest = ? AND e.story_id = s.id)",
        )
        .bind(id)
        .bind(digest)
        .bind(first)
        .bind(period_start)
        .bind(now)
        .bind(digest)
        .execute(&mut *tx)
        .await
        .context("cannot freeze the edition's stories")?;
        let stories: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM edition_stories WHERE edition_id = ? AND included = 1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let deliveries = sqlx::query(
            "INSERT INTO deliveries (edition_id, subscriber_id, next_attempt_at)
             SELECT ?, s.id, ? FROM subscribers s
             WHERE s.digest = ? AND s.status = 'active'
               AND (NOT ? OR EXISTS (
                    SELECT 1 FROM json_each(s.themes) AS j
                    JOIN story_themes st ON st.theme = j.value
                    JOIN edition_stories es ON es.story_id = st.story_id
                    WHERE es.edition_id = ? AND es.included = 1))
             ORDER BY s.id
             ON CONFLICT (edition_id, subscriber_id) DO NOTHING",
        )
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

    /// The oldest edition of `digest` not yet complete, if any.
    pub async fn unfinished_edition(&self, digest: &str) -> Result<Option<Edition>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            edition_columns!(),
            " FROM editions WHERE digest = ? AND completed_at IS NULL ORDER BY id LIMIT 1"
        ))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(edition).transpose()
    }

    /// Editions of `digest`, newest first.
    pub async fn editions(&self, digest: &str, limit: i64) -> Result<Vec<Edition>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            edition_columns!(),
            " FROM editions WHERE digest = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(digest)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(edition).collect()
    }

    /// The stories an edition sends, newest first (ties by id), in their
    /// current version: an edit made before sending is what goes out.
    pub async fn edition_stories(&self, edition_id: i64) -> Result<Vec<StoredStory>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT story_id FROM edition_stories WHERE edition_id = ? AND included = 1",
        )
        .bind(edition_id)
        .fetch_all(&self.pool)
        .await?;
        self.published_by_id_texts(&ids).await
    }

    /// The stories that would go into a new edition of `digest` now, for a
    /// preview: nothing is frozen or written.
    pub async fn pending_stories(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>> {
        let first: bool =
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM editions WHERE digest = ?)")
                .bind(digest)
                .fetch_one(&self.pool)
                .await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT s.id FROM stories s
             WHERE s.withdrawn_at IS NULL AND s.first_seen_at <= ?
               AND NOT (? AND s.published_at < ?)
               AND NOT EXISTS (SELECT 1 FROM edition_stories e WHERE e.digest = ? AND e.story_id = s.id)",
        )
        .bind(now)
        .bind(first)
        .bind(now - FIRST_EDITION_LOOKBACK)
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        self.published_by_id_texts(&ids).await
    }

    /// [`Store::published_by_ids`] for ids as the database returns them.
    async fn published_by_id_texts(&self, ids: &[String]) -> Result<Vec<StoredStory>> {
        let ids: Vec<StoryId> = ids
            .iter()
            .map(|i| StoryId::parse(i).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?;
        let refs: Vec<&StoryId> = ids.iter().collect();
        self.published_by_ids(&refs).await
    }

    /// Claims up to `limit` deliveries of an edition that are due (pending
    /// and past their next attempt time, or `sending` with a lapsed lease),
    /// leasing them until `now + lease`.
    pub async fn claim_deliveries(
        &self,
        edition_id: i64,
        limit: i64,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE deliveries SET status = 'sending', lease_until = ?, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM deliveries
                 WHERE edition_id = ?
                   AND ((status = 'pending' AND next_attempt_at <= ?)
                        OR (status = 'sending' AND lease_until < ?))
                 ORDER BY id LIMIT ?)
             RETURNING id, subscriber_id, attempts",
        )
        .bind(now + lease)
        .bind(edition_id)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("cannot claim deliveries")?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let subscriber_id: i64 = r.get("subscriber_id");
            let subscriber = super::subscribers::by_id(&mut tx, subscriber_id).await?;
            if let Some(subscriber) = subscriber {
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

    /// Marks a claimed delivery sent, with the server's reply.
    pub async fn mark_sent(
        &self,
        id: i64,
        message_id: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'sent', message_id = ?, smtp_reply = ?, finished_at = ?,
                 lease_until = NULL, last_error = NULL
             WHERE id = ?",
        )
        .bind(message_id)
        .bind(reply)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a delivery back for another attempt at `next`.
    pub async fn mark_retry(&self, id: i64, error: &str, next: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'pending', last_error = ?, next_attempt_at = ?, lease_until = NULL
             WHERE id = ?",
        )
        .bind(error)
        .bind(next)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a delivery as `failed` or `skipped`, with the reason.
    pub async fn mark_final(
        &self,
        id: i64,
        status: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        debug_assert!(matches!(status, "failed" | "skipped"));
        sqlx::query(
            "UPDATE deliveries SET status = ?, last_error = ?, finished_at = ?, lease_until = NULL
             WHERE id = ?",
        )
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries of an edition by state.
    pub async fn delivery_counts(&self, edition_id: i64) -> Result<Counts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE edition_id = ? GROUP BY status",
        )
        .bind(edition_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Counts::from_rows(&rows))
    }

    /// Marks the edition complete when no delivery is pending or in flight.
    pub async fn complete_if_done(&self, edition_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE editions SET completed_at = ?
             WHERE id = ? AND completed_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM deliveries
                               WHERE edition_id = ? AND status IN ('pending', 'sending'))",
        )
        .bind(now)
        .bind(edition_id)
        .bind(edition_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Who did not get an edition, and why: (address, status, reason).
    pub async fn undelivered(&self, edition_id: i64) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT s.email, d.status, COALESCE(d.last_error, '') AS reason
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.edition_id = ? AND d.status <> 'sent' ORDER BY d.id",
        )
        .bind(edition_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("email"), r.get("status"), r.get("reason")))
            .collect())
    }
}

async fn edition_by_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    digest: &str,
    key: &str,
) -> Result<Option<Edition>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        edition_columns!(),
        " FROM editions WHERE digest = ? AND key = ?"
    ))
    .bind(digest)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(edition).transpose()
}

pub(super) fn edition(r: &sqlx::sqlite::SqliteRow) -> Result<Edition> {
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
