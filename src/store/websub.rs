//! The built-in WebSub hub's state: verified subscriptions with their
//! leases, and the content distributions owed to them (one row per
//! subscription whose topic changed), claimed under a lease so that a
//! crash or a second instance loses nothing and sends a feed at most once
//! more. Times are Unix milliseconds.

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Store;

/// A subscription, verified, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    pub callback: String,
    /// The callback's host, lower-cased.
    pub callback_host: String,
    /// `hub.secret`: signs each distribution (`X-Hub-Signature`).
    pub secret: Option<String>,
    pub lease_seconds: i64,
    pub expires: DateTime<Utc>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("callback", &self.callback)
            .field("secret", &self.secret.as_ref().map(|_| ".."))
            .field("lease_seconds", &self.lease_seconds)
            .field("expires", &self.expires)
            .finish()
    }
}

/// A distribution claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub topic: String,
    pub callback: String,
    /// Failed tries so far.
    pub attempts: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Store {
    /// Adds a verified subscription, or renews it (new lease and secret).
    pub async fn websub_subscribe(&self, s: &Subscription, now: DateTime<Utc>) -> Result<()> {
        crate::store::dispatch!(self, websub::subscribe(s, ms(s.expires), ms(now)))
    }

    /// Removes a subscription and what is owed to it; whether there was one.
    pub async fn websub_unsubscribe(&self, topic: &str, callback: &str) -> Result<bool> {
        crate::store::dispatch!(self, websub::unsubscribe(topic, callback))
    }

    /// The subscription of `callback` to `topic`, if any (expired or not).
    pub async fn websub_subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>> {
        crate::store::dispatch!(self, websub::subscription(topic, callback))
    }

    /// Subscriptions of callbacks on `host` not yet expired, other than
    /// the one of `callback` to `topic` (which a renewal replaces).
    pub async fn websub_host_count(
        &self,
        host: &str,
        topic: &str,
        callback: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        crate::store::dispatch!(self, websub::host_count(host, topic, callback, ms(now)))
    }

    /// Every subscription not yet expired, by topic and callback.
    pub async fn websub_active(&self, now: DateTime<Utc>) -> Result<Vec<Subscription>> {
        crate::store::dispatch!(self, websub::active(ms(now)))
    }

    /// Owes each live subscription of `topics` a distribution, due now (a
    /// subscription already owed one keeps its row: the feed as it is
    /// when sent goes out). Returns how many rows were added.
    pub async fn websub_enqueue(&self, topics: &[String], now: DateTime<Utc>) -> Result<u64> {
        crate::store::dispatch!(self, websub::enqueue(topics, ms(now)))
    }

    /// Claims up to `limit` distributions due at `now`, holding them for
    /// `lease` (another instance, or this one after a crash, takes them
    /// again after it).
    pub async fn websub_claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        let until = ms(now) + duration_ms(lease);
        crate::store::dispatch!(self, websub::claim(ms(now), until, limit))
    }

    /// A distribution went out: it is owed no more.
    pub async fn websub_delivered(&self, c: &Claimed) -> Result<()> {
        crate::store::dispatch!(self, websub::delivered(&c.topic, &c.callback))
    }

    /// A distribution failed: tried again at `retry`, with its error noted.
    pub async fn websub_failed(
        &self,
        c: &Claimed,
        retry: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        crate::store::dispatch!(
            self,
            websub::failed(&c.topic, &c.callback, c.attempts + 1, ms(retry), error)
        )
    }

    /// Removes the subscriptions whose lease ran out by `now` (and what
    /// was owed to them); returns how many.
    pub async fn websub_expire(&self, now: DateTime<Utc>) -> Result<u64> {
        crate::store::dispatch!(self, websub::expire(ms(now)))
    }

    /// How many subscriptions are live at `now`, and how many
    /// distributions are owed: for the metrics.
    pub async fn websub_counts(&self, now: DateTime<Utc>) -> Result<(i64, i64)> {
        crate::store::dispatch!(self, websub::counts(ms(now)))
    }

    /// Distributions owed: (topic, callback, failed tries), for tests and
    /// status.
    pub async fn websub_owed(&self) -> Result<Vec<Claimed>> {
        crate::store::dispatch!(self, websub::owed())
    }
}
