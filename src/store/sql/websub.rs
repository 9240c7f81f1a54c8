// The built-in WebSub hub's subscriptions and distributions: see
// `store/websub.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::{Pool, Row};

use crate::store::websub::{Claimed, Subscription};

const COLUMNS: &str = "topic, callback, callback_host, secret, lease_seconds, expires_ms";

fn subscription_of(r: &<DB as sqlx::Database>::Row) -> Subscription {
    let expires: i64 = r.get("expires_ms");
    Subscription {
        topic: r.get("topic"),
        callback: r.get("callback"),
        callback_host: r.get("callback_host"),
        secret: r.get("secret"),
        lease_seconds: r.get("lease_seconds"),
        expires: DateTime::<Utc>::from_timestamp_millis(expires).unwrap_or_default(),
    }
}

pub async fn subscribe(
    pool: &Pool<DB>,
    s: &Subscription,
    expires_ms: i64,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO websub_subscriptions
             (topic, callback, callback_host, secret, lease_seconds, expires_ms, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (topic, callback) DO UPDATE SET
             callback_host = excluded.callback_host,
             secret = excluded.secret,
             lease_seconds = excluded.lease_seconds,
             expires_ms = excluded.expires_ms",
    )
    .bind(&s.topic)
    .bind(&s.callback)
    .bind(&s.callback_host)
    .bind(&s.secret)
    .bind(s.lease_seconds)
    .bind(expires_ms)
    .bind(now_ms)
    .execute(pool)
    .await
    .context("cannot store a WebSub subscription")?;
    Ok(())
}

pub async fn unsubscribe(pool: &Pool<DB>, topic: &str, callback: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM websub_deliveries WHERE topic = $1 AND callback = $2")
        .bind(topic)
        .bind(callback)
        .execute(&mut *tx)
        .await
        .context("cannot remove a WebSub subscription's distributions")?;
    let done = sqlx::query("DELETE FROM websub_subscriptions WHERE topic = $1 AND callback = $2")
        .bind(topic)
        .bind(callback)
        .execute(&mut *tx)
        .await
        .context("cannot remove a WebSub subscription")?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

pub async fn subscription(
    pool: &Pool<DB>,
    topic: &str,
    callback: &str,
) -> Result<Option<Subscription>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM websub_subscriptions WHERE topic = $1 AND callback = $2"
    ))
    .bind(topic)
    .bind(callback)
    .fetch_optional(pool)
    .await
    .context("cannot read a WebSub subscription")?;
    Ok(row.as_ref().map(subscription_of))
}

pub async fn host_count(
    pool: &Pool<DB>,
    host: &str,
    topic: &str,
    callback: &str,
    now_ms: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM websub_subscriptions
         WHERE callback_host = $1 AND expires_ms > $4 AND NOT (topic = $2 AND callback = $3)",
    )
    .bind(host)
    .bind(topic)
    .bind(callback)
    .bind(now_ms)
    .fetch_one(pool)
    .await
    .context("cannot count a host's WebSub subscriptions")
}

pub async fn active(pool: &Pool<DB>, now_ms: i64) -> Result<Vec<Subscription>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM websub_subscriptions WHERE expires_ms > $1 ORDER BY topic, callback"
    ))
    .bind(now_ms)
    .fetch_all(pool)
    .await
    .context("cannot read the WebSub subscriptions")?;
    Ok(rows.iter().map(subscription_of).collect())
}

pub async fn enqueue(pool: &Pool<DB>, topics: &[String], now_ms: i64) -> Result<u64> {
    let mut added = 0;
    let mut tx = pool.begin().await?;
    for topic in topics {
        let done = sqlx::query(
            "INSERT INTO websub_deliveries (topic, callback, attempts, due_ms)
             SELECT topic, callback, 0, $2 FROM websub_subscriptions
             WHERE topic = $1 AND expires_ms > $2
             ON CONFLICT (topic, callback) DO NOTHING",
        )
        .bind(topic)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .context("cannot owe WebSub distributions")?;
        added += done.rows_affected();
    }
    tx.commit().await?;
    Ok(added)
}

pub async fn claim(pool: &Pool<DB>, now_ms: i64, until_ms: i64, limit: i64) -> Result<Vec<Claimed>> {
    // Another instance claiming at the same moment skips the rows this
    // one holds (PostgreSQL); SQLite writes one at a time.
    let skip_locked = if PG { " FOR UPDATE SKIP LOCKED" } else { "" };
    let rows = sqlx::query(&format!(
        "UPDATE websub_deliveries SET due_ms = $2
         WHERE (topic, callback) IN
             (SELECT topic, callback FROM websub_deliveries WHERE due_ms <= $1
              ORDER BY due_ms LIMIT $3{skip_locked})
         RETURNING topic, callback, attempts"
    ))
    .bind(now_ms)
    .bind(until_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("cannot claim WebSub distributions")?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            topic: r.get("topic"),
            callback: r.get("callback"),
            attempts: r.get("attempts"),
        })
        .collect())
}

pub async fn delivered(pool: &Pool<DB>, topic: &str, callback: &str) -> Result<()> {
    sqlx::query("DELETE FROM websub_deliveries WHERE topic = $1 AND callback = $2")
        .bind(topic)
        .bind(callback)
        .execute(pool)
        .await
        .context("cannot mark a WebSub distribution done")?;
    Ok(())
}

pub async fn failed(
    pool: &Pool<DB>,
    topic: &str,
    callback: &str,
    attempts: i64,
    due_ms: i64,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE websub_deliveries SET attempts = $3, due_ms = $4, last_error = $5
         WHERE topic = $1 AND callback = $2",
    )
    .bind(topic)
    .bind(callback)
    .bind(attempts)
    .bind(due_ms)
    .bind(error)
    .execute(pool)
    .await
    .context("cannot note a failed WebSub distribution")?;
    Ok(())
}

pub async fn expire(pool: &Pool<DB>, now_ms: i64) -> Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "DELETE FROM websub_deliveries WHERE (topic, callback) IN
             (SELECT topic, callback FROM websub_subscriptions WHERE expires_ms <= $1)",
    )
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .context("cannot remove the distributions of expired WebSub subscriptions")?;
    let done = sqlx::query("DELETE FROM websub_subscriptions WHERE expires_ms <= $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .context("cannot remove expired WebSub subscriptions")?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

pub async fn owed(pool: &Pool<DB>) -> Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "SELECT topic, callback, attempts FROM websub_deliveries ORDER BY topic, callback",
    )
    .fetch_all(pool)
    .await
    .context("cannot read the WebSub distributions")?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            topic: r.get("topic"),
            callback: r.get("callback"),
            attempts: r.get("attempts"),
        })
        .collect())
}

pub async fn counts(pool: &Pool<DB>, now_ms: i64) -> Result<(i64, i64)> {
    let live: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM websub_subscriptions WHERE expires_ms > $1")
            .bind(now_ms)
            .fetch_one(pool)
            .await
            .context("cannot count the WebSub subscriptions")?;
    let owed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM websub_deliveries")
        .fetch_one(pool)
        .await
        .context("cannot count the WebSub distributions")?;
    Ok((live, owed))
}
