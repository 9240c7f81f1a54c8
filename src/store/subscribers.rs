//! Subscribers in the store: adding one or a batch (idempotently, by the
//! case-insensitive address), reading them as a stream, and erasing one.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use sqlx::{QueryBuilder, Row};

use super::Store;
use crate::story::{Language, ThemeSlug};
use crate::subscribers::{NewSubscriber, Status, Subscriber};

macro_rules! columns {
    () => {
        "id, email, status, themes, language, digest, consent_at, consent_source, created_at, \
         confirmed_at, unsubscribed_at"
    };
}

/// Subscribers per multi-row INSERT (10 columns each).
const BATCH: usize = 1000;

/// The outcome of adding subscribers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    pub added: u64,
    /// Already subscribed (in any status): left as they were.
    pub existing: u64,
}

impl Store {
    /// Adds subscribers whose address is not yet known; known ones are left
    /// untouched, so adding the same people twice changes nothing. One
    /// transaction per call.
    pub async fn add_subscribers(
        &self,
        people: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<Added> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in people.chunks(BATCH) {
            let mut rows = Vec::with_capacity(chunk.len());
            for p in chunk {
                rows.push((p, serde_json::to_string(&p.themes)?));
            }
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO subscribers (email, email_key, status, themes, language, digest,
                   consent_at, consent_source, created_at, confirmed_at) ",
            );
            q.push_values(&rows, |mut b, (p, themes)| {
                b.push_bind(p.email.as_str())
                    .push_bind(p.email.key())
                    .push_bind(p.status.as_str())
                    .push_bind(themes.as_str())
                    .push_bind(p.language.as_str())
                    .push_bind(p.digest.as_str())
                    .push_bind(now)
                    .push_bind(p.consent_source.as_str())
                    .push_bind(now)
                    .push_bind((p.status == Status::Active).then_some(now));
            });
            q.push(" ON CONFLICT (email_key) DO NOTHING");
            added += q
                .build()
                .execute(&mut *tx)
                .await
                .context("cannot store subscribers")?
                .rows_affected();
        }
        tx.commit().await.context("cannot store subscribers")?;
        Ok(Added {
            added,
            existing: people.len() as u64 - added,
        })
    }

    /// The subscriber with this address (any letter case), if any.
    pub async fn subscriber(&self, email_key: &str) -> Result<Option<Subscriber>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM subscribers WHERE email_key = ?"
        ))
        .bind(email_key)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read subscribers")?;
        row.as_ref().map(subscriber).transpose()
    }

    /// Every subscriber (optionally of one status), oldest first, read as
    /// a stream so that a million of them never sit in memory at once.
    pub fn subscribers(
        &self,
        status: Option<Status>,
    ) -> impl Stream<Item = Result<Subscriber>> + '_ {
        let q = match status {
            Some(s) => sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM subscribers WHERE status = ? ORDER BY id"
            ))
            .bind(s.as_str()),
            None => sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM subscribers ORDER BY id"
            )),
        };
        q.fetch(&self.pool).map(|row| {
            let row = row.context("cannot read subscribers")?;
            subscriber(&row)
        })
    }

    /// Erases a subscriber entirely (for a data-protection request):
    /// returns whether there was one.
    pub async fn remove_subscriber(&self, email_key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM subscribers WHERE email_key = ?")
            .bind(email_key)
            .execute(&self.pool)
            .await
            .context("cannot remove the subscriber")?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a subscriber bounced: their address was permanently refused,
    /// and later digests pass them over.
    pub async fn mark_bounced(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .context("cannot mark the subscriber bounced")?;
        Ok(())
    }

    /// How many subscribers there are in each status.
    pub async fn subscriber_counts(&self) -> Result<Vec<(Status, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(Status, i64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        for r in rows {
            let status: String = r.get("status");
            let status: Status = status.parse().map_err(anyhow::Error::msg)?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = r.get("n");
            }
        }
        Ok(out)
    }
}

/// The subscriber with this id, within a transaction.
pub(super) async fn by_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: i64,
) -> Result<Option<Subscriber>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM subscribers WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(subscriber).transpose()
}

fn subscriber(r: &sqlx::sqlite::SqliteRow) -> Result<Subscriber> {
    let status: String = r.get("status");
    let themes: String = r.get("themes");
    let language: String = r.get("language");
    Ok(Subscriber {
        id: r.get("id"),
        email: r.get("email"),
        status: status.parse().map_err(anyhow::Error::msg)?,
        themes: serde_json::from_str::<Vec<ThemeSlug>>(&themes).context("bad themes column")?,
        language: Language::parse(&language).map_err(anyhow::Error::msg)?,
        digest: r.get("digest"),
        consent_at: r.get("consent_at"),
        consent_source: r.get("consent_source"),
        created_at: r.get("created_at"),
        confirmed_at: r.get("confirmed_at"),
        unsubscribed_at: r.get("unsubscribed_at"),
    })
}
