//! The sign-up rate limits in the store, so that they hold for the whole
//! site however many instances share it.
//!
//! Each key is limited by GCRA (the generic cell rate algorithm, which the
//! `governor` crate implements in memory): a quota of `burst` events at
//! once, then one more every `every`. The store keeps one row per key:
//! its *theoretical arrival time* (TAT). An event at `now` is allowed when
//! `max(TAT, now) - now <= (burst - 1) * every`, and then moves the TAT to
//! `max(TAT, now) + every`; a refused event waits until that holds. A row
//! whose TAT has passed says nothing more (the key is rested) and is
//! deleted, a few at each call.
//!
//! Keys are SHA-256 digests made by the caller (`web::limits`), so no
//! address, of a client or of an inbox, is stored.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Store;

/// `burst` events at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub every: Duration,
}

impl Store {
    /// Counts one event of `key` at `now` against `quota`: `None` when it
    /// is allowed, else how long until one more would be.
    pub async fn rate_limit(
        &self,
        key: &[u8; 32],
        quota: Quota,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>> {
        let key = hex::encode(key);
        let every = i64::try_from(quota.every.as_millis()).unwrap_or(i64::MAX / 4);
        let tolerance = every.saturating_mul(i64::from(quota.burst.max(1) - 1));
        let now_ms = now.timestamp_millis();
        let refused = crate::store::dispatch!(self, limits::take(&key, now_ms, every, tolerance))?;
        Ok(refused.map(|tat| {
            let wait = (tat - now_ms - tolerance).max(1);
            Duration::from_millis(wait as u64)
        }))
    }
}
