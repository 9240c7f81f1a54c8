//! Editions and the delivery ledger in the store.
//!
//! Freezing an edition, choosing its stories and writing one delivery row
//! per subscriber who gets it all happen in one transaction; a repeat with
//! the same key finds the edition already there and adds nothing. Workers
//! then claim rows (`pending` → `sending` with a lease), and mark each
//! `sent`, `failed`, `skipped`, or `pending` again for a later attempt.

use crate::model::DeliveryState;
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};

use super::{Store, StoredStory};
use crate::model::Subscriber;

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

impl Edition {
    /// The window it covers.
    pub fn period(&self) -> Period {
        Period {
            start: self.period_start,
            end: self.period_end,
        }
    }
}

/// The window an edition covers: from the previous edition's end (or
/// [`FIRST_EDITION_LOOKBACK`] before a first one) until it was frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The days it covers in the site's time zone, both included.
    pub fn days(&self, config: &crate::config::Config) -> (chrono::NaiveDate, chrono::NaiveDate) {
        let tz = &config.site.timezone;
        let last = (self.end - Duration::seconds(1)).max(self.start);
        (
            self.start.with_timezone(tz).date_naive(),
            last.with_timezone(tz).date_naive(),
        )
    }
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

/// A delivery that went out: what its row records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub delivery_id: i64,
    pub message_id: String,
    /// The server's reply (or where the `file:` transport wrote it).
    pub reply: String,
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
    /// The deliveries in `state`.
    pub fn get(&self, state: DeliveryState) -> i64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Sending => self.sending,
            DeliveryState::Sent => self.sent,
            DeliveryState::Failed => self.failed,
            DeliveryState::Skipped => self.skipped,
        }
    }

    fn slot(&mut self, state: DeliveryState) -> &mut i64 {
        match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Sending => &mut self.sending,
            DeliveryState::Sent => &mut self.sent,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Skipped => &mut self.skipped,
        }
    }

    /// Adds `n` deliveries in `state`.
    pub fn add(&mut self, state: DeliveryState, n: i64) {
        *self.slot(state) += n;
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
        crate::store::dispatch!(
            self,
            editions::freeze_edition(digest, key, skip_if_empty, now)
        )
    }

    /// The oldest edition of `digest` not yet complete, if any.
    pub async fn unfinished_edition(&self, digest: &str) -> Result<Option<Edition>> {
        crate::store::dispatch!(self, editions::unfinished_edition(digest))
    }

    /// Editions of `digest`, newest first.
    pub async fn editions(&self, digest: &str, limit: i64) -> Result<Vec<Edition>> {
        crate::store::dispatch!(self, editions::editions(digest, limit))
    }

    /// The stories an edition sends, newest first (ties by id), in their
    /// current version: an edit made before sending is what goes out.
    pub async fn edition_stories(&self, edition_id: i64) -> Result<Vec<StoredStory>> {
        crate::store::dispatch!(self, editions::edition_stories(edition_id))
    }

    /// The stories that would go into a new edition of `digest` now, for a
    /// preview: nothing is frozen or written.
    pub async fn pending_stories(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>> {
        crate::store::dispatch!(self, editions::pending_stories(digest, now))
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
        crate::store::dispatch_in_turn!(
            self,
            editions::claim_deliveries(edition_id, limit, now, lease)
        )
    }

    /// Extends the lease of claimed rows (id, attempt) that are still this
    /// claim's (`sending`, same attempt) until `until`; returns their ids.
    /// A row whose lease lapsed and that another worker claimed since is
    /// not among them.
    pub async fn renew_leases(
        &self,
        rows: &[(i64, i64)],
        until: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        crate::store::dispatch_in_turn!(self, editions::renew_leases(rows, until))
    }

    /// Marks claimed deliveries sent, each with its Message-ID and the
    /// server's reply, in one statement (per 500 rows).
    pub async fn mark_sent(&self, sent: &[Sent], now: DateTime<Utc>) -> Result<()> {
        crate::store::dispatch_in_turn!(self, editions::mark_sent(sent, now))
    }

    /// Puts a delivery back for another attempt at `next`.
    pub async fn mark_retry(&self, id: i64, error: &str, next: DateTime<Utc>) -> Result<()> {
        crate::store::dispatch_in_turn!(self, editions::mark_retry(id, error, next))
    }

    /// Gives back a claimed delivery untried (the claim's `attempt`, while
    /// it is still this claim's): `pending` again, due at once, its attempt
    /// not counted, `error` noted as why it waits. For a send stopped by
    /// something wrong with the setup rather than with this message.
    /// Whether the row was still this claim's.
    pub async fn release_delivery(&self, id: i64, attempt: i64, error: &str) -> Result<bool> {
        crate::store::dispatch_in_turn!(self, editions::release_delivery(id, attempt, error))
    }

    /// Ends a delivery as `failed` or `skipped`, with the reason.
    pub async fn mark_final(
        &self,
        id: i64,
        status: DeliveryState,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        crate::store::dispatch_in_turn!(self, editions::mark_final(id, status, reason, now))
    }

    /// Deliveries of an edition by state.
    pub async fn delivery_counts(&self, edition_id: i64) -> Result<Counts> {
        crate::store::dispatch!(self, editions::delivery_counts(edition_id))
    }

    /// Marks the edition complete when no delivery is pending or in flight.
    pub async fn complete_if_done(&self, edition_id: i64, now: DateTime<Utc>) -> Result<bool> {
        crate::store::dispatch_in_turn!(self, editions::complete_if_done(edition_id, now))
    }

    /// Who did not get an edition, and why: (address, state, reason).
    pub async fn undelivered(
        &self,
        edition_id: i64,
    ) -> Result<Vec<(String, DeliveryState, String)>> {
        crate::store::dispatch!(self, editions::undelivered(edition_id))
    }
}
