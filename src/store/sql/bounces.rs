// Bounce events: see `store/bounces.rs`.

use anyhow::{Context as _, Result};
use sqlx::{Pool, Row};

use crate::model::{BounceKind, EditionBounces, Status};
use crate::store::bounces::{Action, BounceEvent, Filter, MAX_REPORT, NewBounce, Policy, Recorded};

pub async fn record(pool: &Pool<DB>, event: &NewBounce<'_>, policy: Policy) -> Result<Recorded> {
    use sha2::Digest as _;
    // A webhook's event is known by its identity, the prefix keeping it
    // apart from any report's hash.
    let hash = match event.identity {
        Some(identity) => hex::encode(sha2::Sha256::digest(format!("event:{identity}"))),
        None => hex::encode(sha2::Sha256::digest(event.report)),
    };
    let kept = &event.report[..event.report.len().min(MAX_REPORT)];
    let mut tx = super::begin_write(pool).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
        .bind(event.subscriber_id)
        .fetch_optional(&mut *tx)
        .await
        .context("cannot read the subscriber")?;
    let Some(status) = status else {
        return Ok(Recorded::NoSubscriber);
    };
    let status: Status = status.parse().map_err(anyhow::Error::msg)?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO bounce_events (received_at, subscriber_id, edition_id, kind, diagnostic,
           action, report, report_size, report_hash)
         VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8)
         ON CONFLICT (report_hash) DO NOTHING RETURNING id",
    )
    .bind(event.received_at)
    .bind(event.subscriber_id)
    .bind(event.edition_id)
    .bind(event.kind.as_str())
    .bind(event.diagnostic)
    .bind(kept)
    .bind(event.report.len() as i64)
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .context("cannot record the bounce")?;
    let Some(id) = id else {
        let id: i64 = sqlx::query_scalar("SELECT id FROM bounce_events WHERE report_hash = $1")
            .bind(&hash)
            .fetch_one(&mut *tx)
            .await
            .context("cannot read the bounce events")?;
        return Ok(Recorded::Duplicate { id });
    };
    let live = matches!(status, Status::Active | Status::Pending);
    let action = match event.kind {
        BounceKind::Complaint if status != Status::Unsubscribed => {
            sqlx::query("UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1 WHERE id = $2")
                .bind(event.received_at)
                .bind(event.subscriber_id)
                .execute(&mut *tx)
                .await
                .context("cannot unsubscribe")?;
            Action::Unsubscribed
        }
        BounceKind::Hard if live => Action::Bounced,
        BounceKind::Soft if live => {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM bounce_events
                 WHERE subscriber_id = $1 AND kind = 'soft' AND received_at >= $2",
            )
            .bind(event.subscriber_id)
            .bind(policy.soft_since)
            .fetch_one(&mut *tx)
            .await
            .context("cannot count the soft bounces")?;
            if count >= i64::from(policy.soft_limit) {
                Action::Bounced
            } else {
                Action::Counted { count, limit: policy.soft_limit }
            }
        }
        _ => Action::Unchanged(status),
    };
    if action == Action::Bounced {
        sqlx::query("UPDATE subscribers SET status = 'bounced', bounced_at = $1 WHERE id = $2")
            .bind(event.received_at)
            .bind(event.subscriber_id)
            .execute(&mut *tx)
            .await
            .context("cannot mark the subscriber bounced")?;
    }
    sqlx::query("UPDATE bounce_events SET action = $1 WHERE id = $2")
        .bind(action.to_string())
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("cannot record the bounce")?;
    tx.commit().await.context("cannot record the bounce")?;
    Ok(Recorded::New { id, action })
}

const EVENT: &str = "e.id, e.received_at, e.subscriber_id, s.email, e.edition_id, e.kind,
    e.diagnostic, e.action, e.report_size";

fn event_row(r: &<DB as sqlx::Database>::Row) -> Result<BounceEvent> {
    let kind: String = r.get("kind");
    Ok(BounceEvent {
        id: r.get("id"),
        received_at: r.get("received_at"),
        subscriber_id: r.get("subscriber_id"),
        email: r.get("email"),
        edition_id: r.get("edition_id"),
        kind: kind.parse().map_err(anyhow::Error::msg)?,
        diagnostic: r.get("diagnostic"),
        action: r.get("action"),
        report_size: r.get("report_size"),
    })
}

pub async fn list(pool: &Pool<DB>, filter: &Filter) -> Result<Vec<BounceEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT} FROM bounce_events e JOIN subscribers s ON s.id = e.subscriber_id
         WHERE ($1 IS NULL OR e.kind = $1) AND ($2 IS NULL OR s.email_key = $2)
         ORDER BY e.received_at DESC, e.id DESC"
    ))
    .bind(filter.kind.map(BounceKind::as_str))
    .bind(filter.email_key.as_deref())
    .fetch_all(pool)
    .await
    .context("cannot read the bounce events")?;
    rows.iter().map(event_row).collect()
}

pub async fn one(pool: &Pool<DB>, id: i64) -> Result<Option<(BounceEvent, Vec<u8>)>> {
    let row = sqlx::query(&format!(
        "SELECT {EVENT}, e.report FROM bounce_events e JOIN subscribers s ON s.id = e.subscriber_id
         WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("cannot read the bounce event")?;
    row.map(|r| Ok((event_row(&r)?, r.get("report")))).transpose()
}

pub async fn kinds(pool: &Pool<DB>, email_key: &str) -> Result<Vec<BounceKind>> {
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT e.kind FROM bounce_events e JOIN subscribers s ON s.id = e.subscriber_id
         WHERE s.email_key = $1 ORDER BY e.kind",
    )
    .bind(email_key)
    .fetch_all(pool)
    .await
    .context("cannot read the bounce events")?;
    kinds
        .iter()
        .map(|k| k.parse().map_err(anyhow::Error::msg))
        .collect()
}

pub async fn edition_bounces(pool: &Pool<DB>, edition_id: i64) -> Result<EditionBounces> {
    let rows = sqlx::query(
        "SELECT kind, COUNT(DISTINCT subscriber_id) AS n FROM bounce_events
         WHERE edition_id = $1 GROUP BY kind",
    )
    .bind(edition_id)
    .fetch_all(pool)
    .await
    .context("cannot count the edition's bounce events")?;
    let mut out = EditionBounces::default();
    for row in rows {
        let kind: String = row.get("kind");
        let n: i64 = row.get("n");
        match kind.parse::<BounceKind>().map_err(anyhow::Error::msg)? {
            BounceKind::Hard => out.hard = n,
            BounceKind::Soft => out.soft = n,
            BounceKind::Complaint => out.complaints = n,
        }
    }
    Ok(out)
}

pub async fn last_sent_edition(pool: &Pool<DB>, subscriber_id: i64) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT edition_id FROM deliveries WHERE subscriber_id = $1 AND status = 'sent'
         ORDER BY finished_at DESC, edition_id DESC LIMIT 1",
    )
    .bind(subscriber_id)
    .fetch_optional(pool)
    .await
    .context("cannot read the subscriber's deliveries")
}
