// The signing keys of subscriber links: see `store/keys.rs`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sqlx::{Pool, Row};

use crate::store::keys::{NewKey, StoredKey};

pub async fn signing_keys(pool: &Pool<DB>) -> Result<Vec<StoredKey>> {
    let rows = sqlx::query(
        "SELECT id, origin, secret, fingerprint, created_at FROM signing_keys ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .context("cannot read the signing keys")?;
    rows.iter()
        .map(|r| {
            let origin: String = r.get("origin");
            Ok(StoredKey {
                id: r.get("id"),
                origin: origin.parse().map_err(anyhow::Error::msg)?,
                secret: r.get("secret"),
                fingerprint: r.get("fingerprint"),
                created_at: r.get("created_at"),
            })
        })
        .collect()
}

/// Adds `keys` in order, numbered from the next free id, in one
/// transaction. With `only_if_empty`, adds nothing (and returns `false`)
/// when the table holds any key, so that two processes starting at once
/// on a new store agree on one set. A concurrent writer that took an id
/// first also makes it return `false`: the caller reads the keys again.
pub async fn add_signing_keys(
    pool: &Pool<DB>,
    keys: &[NewKey],
    only_if_empty: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = super::begin_write(pool)
        .await
        .context("cannot store a signing key")?;
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM signing_keys")
        .fetch_one(&mut *tx)
        .await
        .context("cannot read the signing keys")?;
    if only_if_empty && last.is_some() {
        return Ok(false);
    }
    let mut id = last.unwrap_or(0);
    for key in keys {
        id += 1;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (id, origin, secret, fingerprint, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(key.origin.as_str())
        .bind(key.secret.as_deref())
        .bind(&key.fingerprint)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot store a signing key")),
        }
    }
    match tx.commit().await {
        Ok(()) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("cannot store a signing key")),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
