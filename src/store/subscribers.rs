//! Subscribers in the store: adding one or a batch (idempotently, by the
//! case-insensitive address), reading them as a stream, erasing one, and
//! the life of a web subscriber: sign-up (double opt-in), confirmation,
//! changed preferences and unsubscribing.

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

/// What a web sign-up found and did. The visitor sees the same page in
/// every case (no way to learn who subscribes); only the caller knows
/// whether a confirmation email is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    /// A new address, stored as `pending`.
    Created(i64),
    /// Already `pending`: its choices replaced by the new ones.
    StillPending(i64),
    /// Was `unsubscribed` or `bounced`: `pending` again with the new choices.
    Returning(i64),
    /// Already `active`: nothing changed.
    AlreadyActive(i64),
}

impl Signup {
    /// The subscriber's id.
    pub fn id(self) -> i64 {
        match self {
            Signup::Created(id)
            | Signup::StillPending(id)
            | Signup::Returning(id)
            | Signup::AlreadyActive(id) => id,
        }
    }

    /// Whether a confirmation email should go out.
    pub fn needs_confirmation(self) -> bool {
        !matches!(self, Signup::AlreadyActive(_))
    }
}

impl Store {
    /// The subscriber with this id, if any.
    pub async fn subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>> {
        let mut tx = self.pool.begin().await?;
        let found = by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// A sign-up from the web form, in one transaction: a new address is
    /// stored `pending`; a `pending` one takes the new choices; an
    /// `unsubscribed` or `bounced` one becomes `pending` again with them
    /// (consent given anew, so `consent_at` and `consent_source` change and
    /// `confirmed_at` is cleared); an `active` one is left as it is.
    pub async fn signup(&self, person: &NewSubscriber, now: DateTime<Utc>) -> Result<Signup> {
        let mut tx = self.pool.begin().await?;
        let themes = serde_json::to_string(&person.themes)?;
        // Insert first: the write lock is taken at once, so two sign-ups of
        // the same new address cannot both find it missing.
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers (email, email_key, status, themes, language, digest,
               consent_at, consent_source, created_at)
             VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)
             ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(person.email.as_str())
        .bind(person.email.key())
        .bind(&themes)
        .bind(person.language.as_str())
        .bind(&person.digest)
        .bind(now)
        .bind(&person.consent_source)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context("cannot store the sign-up")?;
        let outcome = match created {
            Some(id) => Signup::Created(id),
            None => {
                let row = sqlx::query("SELECT id, status FROM subscribers WHERE email_key = ?")
                    .bind(person.email.key())
                    .fetch_one(&mut *tx)
                    .await
                    .context("cannot read the subscriber")?;
                let id: i64 = row.get("id");
                let status: String = row.get("status");
                let outcome = match status.parse::<Status>().map_err(anyhow::Error::msg)? {
                    Status::Active => Signup::AlreadyActive(id),
                    Status::Pending => Signup::StillPending(id),
                    Status::Unsubscribed | Status::Bounced => Signup::Returning(id),
                };
                if outcome != Signup::AlreadyActive(id) {
                    sqlx::query(
                        "UPDATE subscribers SET status = 'pending', themes = ?, language = ?,
                           digest = ?, consent_at = ?, consent_source = ?, confirmed_at = NULL
                         WHERE id = ?",
                    )
                    .bind(&themes)
                    .bind(person.language.as_str())
                    .bind(&person.digest)
                    .bind(now)
                    .bind(&person.consent_source)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .context("cannot update the sign-up")?;
                }
                outcome
            }
        };
        tx.commit().await.context("cannot store the sign-up")?;
        Ok(outcome)
    }

    /// Confirms a `pending` subscriber (now `active`, `confirmed_at` set).
    /// Returns the status afterwards; a repeat finds them `active` and
    /// changes nothing; `None` when there is no such subscriber.
    pub async fn confirm_subscriber(&self, id: i64, now: DateTime<Utc>) -> Result<Option<Status>> {
        sqlx::query(
            "UPDATE subscribers SET status = 'active', confirmed_at = ?
             WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .context("cannot confirm the subscriber")?;
        self.status_of(id).await
    }

    /// Unsubscribes (from any other status); a repeat changes nothing and
    /// keeps the first `unsubscribed_at`. Returns whether there is such a
    /// subscriber. Deliveries already in the ledger are skipped at claim
    /// time, since the worker sends only to `active` subscribers.
    pub async fn unsubscribe(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?
             WHERE id = ? AND status <> 'unsubscribed'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .context("cannot unsubscribe")?;
        Ok(self.status_of(id).await?.is_some())
    }

    /// Replaces a subscriber's themes, language and digest; the status is
    /// left as it is. Returns whether there is such a subscriber.
    pub async fn set_preferences(
        &self,
        id: i64,
        themes: &[ThemeSlug],
        language: &Language,
        digest: &str,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE subscribers SET themes = ?, language = ?, digest = ? WHERE id = ?")
                .bind(serde_json::to_string(themes)?)
                .bind(language.as_str())
                .bind(digest)
                .bind(id)
                .execute(&self.pool)
                .await
                .context("cannot save the preferences")?;
        Ok(done.rows_affected() > 0)
    }

    async fn status_of(&self, id: i64) -> Result<Option<Status>> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM subscribers WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .context("cannot read the subscriber")?;
        status
            .map(|s| s.parse::<Status>().map_err(anyhow::Error::msg))
            .transpose()
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
