// Subscribers: see `store/subscribers.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use sqlx::{Pool, QueryBuilder, Row};

use crate::store::subscribers::{Added, BATCH, CANONICAL_FIXUP, Canonicalized, Signup};
use crate::model::{Language, ThemeSlug};
use crate::model::{NewSubscriber, Status, Subscriber};

macro_rules! columns {
    () => {
        "id, email, status, themes, language, digest, consent_at, consent_source, created_at, \
         confirmed_at, unsubscribed_at"
    };
}

/// A subscriber's columns, as [`subscriber_row`] reads them.
pub(crate) const COLUMNS: &str = columns!();

pub async fn add_subscribers(pool: &Pool<DB>, people: &[NewSubscriber], now: DateTime<Utc>) -> Result<Added> {
    let mut tx = super::begin_write(pool).await?;
    let mut added = 0;
    for chunk in people.chunks(BATCH) {
        let mut rows = Vec::with_capacity(chunk.len());
        for p in chunk {
            rows.push((p, serde_json::to_string(&p.themes)?));
        }
        let mut q = QueryBuilder::<DB>::new(
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

pub async fn subscriber(pool: &Pool<DB>, email_key: &str) -> Result<Option<Subscriber>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM subscribers WHERE email_key = $1"
    ))
    .bind(email_key)
    .fetch_optional(pool)
    .await
    .context("cannot read subscribers")?;
    row.as_ref().map(subscriber_row).transpose()
}

pub async fn remove_subscriber(pool: &Pool<DB>, email_key: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM subscribers WHERE email_key = $1")
        .bind(email_key)
        .execute(pool)
        .await
        .context("cannot remove the subscriber")?;
    Ok(done.rows_affected() > 0)
}

pub async fn mark_bounced(pool: &Pool<DB>, id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .context("cannot mark the subscriber bounced")?;
    Ok(())
}

pub async fn subscriber_counts(pool: &Pool<DB>) -> Result<Vec<(Status, i64)>> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
        .fetch_all(pool)
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

pub async fn subscriber_by_id(pool: &Pool<DB>, id: i64) -> Result<Option<Subscriber>> {
    by_id(pool, id).await
}

pub async fn signup(pool: &Pool<DB>, person: &NewSubscriber, now: DateTime<Utc>) -> Result<Signup> {
    let mut tx = super::begin_write(pool).await?;
    let themes = serde_json::to_string(&person.themes)?;
    // Insert first: the write lock is taken at once, so two sign-ups of
    // the same new address cannot both find it missing.
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO subscribers (email, email_key, status, themes, language, digest,
           consent_at, consent_source, created_at)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8)
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
            let row = sqlx::query("SELECT id, status FROM subscribers WHERE email_key = $1")
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
                    "UPDATE subscribers SET status = 'pending', themes = $1, language = $2,
                       digest = $3, consent_at = $4, consent_source = $5, confirmed_at = NULL
                     WHERE id = $6",
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

pub async fn confirm_subscriber(pool: &Pool<DB>, id: i64, now: DateTime<Utc>) -> Result<Option<Status>> {
    sqlx::query(
        "UPDATE subscribers SET status = 'active', confirmed_at = $1
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .context("cannot confirm the subscriber")?;
    status_of(pool, id).await
}

pub async fn unsubscribe(pool: &Pool<DB>, id: i64, now: DateTime<Utc>) -> Result<bool> {
    sqlx::query(
        "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1
         WHERE id = $2 AND status <> 'unsubscribed'",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .context("cannot unsubscribe")?;
    Ok(status_of(pool, id).await?.is_some())
}

pub async fn set_preferences(pool: &Pool<DB>, id: i64, themes: &[ThemeSlug], language: &Language, digest: &str) -> Result<bool> {
    let done =
        sqlx::query("UPDATE subscribers SET themes = $1, language = $2, digest = $3 WHERE id = $4")
            .bind(serde_json::to_string(themes)?)
            .bind(language.as_str())
            .bind(digest)
            .bind(id)
            .execute(pool)
            .await
            .context("cannot save the preferences")?;
    Ok(done.rows_affected() > 0)
}

pub fn subscribers(
    pool: &Pool<DB>,
    status: Option<Status>,
) -> impl Stream<Item = Result<Subscriber>> + '_ {
    let q = match status {
        Some(s) => sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM subscribers WHERE status = $1 ORDER BY id"
        ))
        .bind(s.as_str()),
        None => sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM subscribers ORDER BY id"
        )),
    };
    q.fetch(pool).map(|row| {
        let row = row.context("cannot read subscribers")?;
        subscriber_row(&row)
    })
}

async fn status_of(pool: &Pool<DB>, id: i64) -> Result<Option<Status>> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("cannot read the subscriber")?;
    status
        .map(|s| s.parse::<Status>().map_err(anyhow::Error::msg))
        .transpose()
}

/// The subscriber with this id, on the pool or within a transaction.
pub(crate) async fn by_id<'e>(
    executor: impl sqlx::Executor<'e, Database = DB>,
    id: i64,
) -> Result<Option<Subscriber>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM subscribers WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(subscriber_row).transpose()
}

pub(crate) fn subscriber_row(r: &<DB as sqlx::Database>::Row) -> Result<Subscriber> {
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

/// One subscriber of a group that shares an inbox, as the merge needs it.
struct Member {
    id: i64,
    status: Status,
    consent_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    bounced_at: Option<DateTime<Utc>>,
}

fn member(r: &<DB as sqlx::Database>::Row) -> Result<Member> {
    let status: String = r.get("status");
    Ok(Member {
        id: r.get("id"),
        status: status.parse().map_err(anyhow::Error::msg)?,
        consent_at: r.get("consent_at"),
        confirmed_at: r.get("confirmed_at"),
        unsubscribed_at: r.get("unsubscribed_at"),
        bounced_at: r.get("bounced_at"),
    })
}

const MEMBER: &str = "id, status, consent_at, confirmed_at, unsubscribed_at, bounced_at";

/// Once per store: rewrites every address to its canonical form
/// (`canonical`), merging subscribers that turn out to share an inbox and
/// removing those no relay can deliver to. See
/// [`crate::store::Store::canonicalize_subscribers`].
pub async fn canonicalize(
    pool: &Pool<DB>,
    canonical: fn(&str) -> Result<String, String>,
    now: DateTime<Utc>,
) -> Result<Canonicalized> {
    let mut report = Canonicalized::default();
    if !fixup_owed(pool).await? {
        return Ok(report);
    }
    let mut tx = super::begin_write(pool).await?;
    // Another process may have made it meanwhile.
    if !fixup_owed(&mut *tx).await? {
        return Ok(report);
    }
    // Only quotes, backslashes and brackets change under the canonical
    // form: earlier versions already trimmed addresses and lower-cased
    // their domains.
    let suspects = if PG {
        "SELECT id, email FROM subscribers
         WHERE strpos(email, '\"') > 0 OR strpos(email, '\\') > 0 OR strpos(email, '[') > 0
         ORDER BY id"
    } else {
        "SELECT id, email FROM subscribers
         WHERE instr(email, '\"') > 0 OR instr(email, '\\') > 0 OR instr(email, '[') > 0
         ORDER BY id"
    };
    let rows: Vec<(i64, String)> = sqlx::query_as(suspects)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read subscribers")?;
    for (id, email) in rows {
        let Ok(fixed) = canonical(&email) else {
            set_aside_unmailable(&mut tx, id, now, &mut report).await?;
            continue;
        };
        let group = inbox_group(&mut tx, id, &fixed.to_lowercase()).await?;
        if group.len() == 1 {
            rewrite(&mut tx, id, &fixed).await?;
            report.rewritten.push(id);
        } else {
            report.merged.push(merge(&mut tx, group, &fixed).await?);
        }
    }
    sqlx::query("DELETE FROM fixups WHERE name = $1")
        .bind(CANONICAL_FIXUP)
        .execute(&mut *tx)
        .await
        .context("cannot record the fixup")?;
    tx.commit().await.context("cannot store the canonical addresses")?;
    Ok(report)
}

type Tx = sqlx::Transaction<'static, DB>;

/// Whether the canonical form is still owed.
async fn fixup_owed<'e>(db: impl sqlx::Executor<'e, Database = DB>) -> Result<bool> {
    let due: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fixups WHERE name = $1")
        .bind(CANONICAL_FIXUP)
        .fetch_one(db)
        .await
        .context("cannot read the fixups")?;
    Ok(due > 0)
}

/// A subscriber whose address no relay delivers to: removed while pending,
/// bounced while active, left as it is otherwise (they get nothing).
async fn set_aside_unmailable(
    tx: &mut Tx,
    id: i64,
    now: DateTime<Utc>,
    report: &mut Canonicalized,
) -> Result<()> {
    let status: String = sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .context("cannot read a subscriber")?;
    if status == Status::Pending.as_str() {
        sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("cannot remove a subscriber")?;
        report.removed.push(id);
    } else if status == Status::Active.as_str() {
        sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .context("cannot update a subscriber")?;
        report.bounced.push(id);
    }
    Ok(())
}

/// The subscriber `id` and every other one whose address is `key` in the
/// canonical form: the same inbox.
async fn inbox_group(tx: &mut Tx, id: i64, key: &str) -> Result<Vec<Member>> {
    let this = sqlx::query(&format!("SELECT {MEMBER} FROM subscribers WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .context("cannot read a subscriber")?;
    let mut group = vec![member(&this)?];
    let others = sqlx::query(&format!(
        "SELECT {MEMBER} FROM subscribers WHERE email_key = $1 AND id <> $2"
    ))
    .bind(key)
    .bind(id)
    .fetch_all(&mut **tx)
    .await
    .context("cannot read subscribers")?;
    for r in &others {
        group.push(member(r)?);
    }
    Ok(group)
}

/// The address of `id`, alone in its inbox, in its canonical form.
async fn rewrite(tx: &mut Tx, id: i64, fixed: &str) -> Result<()> {
    sqlx::query("UPDATE subscribers SET email = $2, email_key = $3 WHERE id = $1")
        .bind(id)
        .bind(fixed)
        .bind(fixed.to_lowercase())
        .execute(&mut **tx)
        .await
        .context("cannot update a subscriber")?;
    Ok(())
}

/// One inbox, several rows: the earliest consent is kept (its id, consent
/// and choices), the others' deliveries join it, and they are removed; a
/// stop from any of them wins, then a bounce, then a confirmation.
/// Returns the kept id and the removed ones.
async fn merge(tx: &mut Tx, mut group: Vec<Member>, fixed: &str) -> Result<(i64, Vec<i64>)> {
    group.sort_by_key(|m| (m.consent_at, m.id));
    let kept = group[0].id;
    let any = |s: Status| group.iter().any(|m| m.status == s);
    let first = |f: fn(&Member) -> Option<DateTime<Utc>>| group.iter().filter_map(f).min();
    let status = [Status::Unsubscribed, Status::Bounced, Status::Active]
        .into_iter()
        .find(|s| any(*s))
        .unwrap_or(Status::Pending);
    let removed: Vec<i64> = group[1..].iter().map(|m| m.id).collect();
    for dup in &removed {
        sqlx::query(
            "UPDATE deliveries SET subscriber_id = $1
             WHERE subscriber_id = $2
               AND edition_id NOT IN (SELECT edition_id FROM deliveries WHERE subscriber_id = $1)",
        )
        .bind(kept)
        .bind(dup)
        .execute(&mut **tx)
        .await
        .context("cannot move deliveries")?;
        sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(dup)
            .execute(&mut **tx)
            .await
            .context("cannot remove a subscriber")?;
    }
    sqlx::query(
        "UPDATE subscribers SET email = $2, email_key = $3, status = $4,
             confirmed_at = $5, unsubscribed_at = $6, bounced_at = $7
         WHERE id = $1",
    )
    .bind(kept)
    .bind(fixed)
    .bind(fixed.to_lowercase())
    .bind(status.as_str())
    .bind(first(|m| m.confirmed_at))
    .bind((status == Status::Unsubscribed).then(|| first(|m| m.unsubscribed_at)).flatten())
    .bind((status == Status::Bounced).then(|| first(|m| m.bounced_at)).flatten())
    .execute(&mut **tx)
    .await
    .context("cannot update a subscriber")?;
    Ok((kept, removed))
}
