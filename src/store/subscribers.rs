//! Subscribers in the store: adding one or a batch (idempotently, by the
//! case-insensitive address), reading them as a stream, erasing one, and
//! the life of a web subscriber: sign-up (double opt-in), confirmation,
//! changed preferences and unsubscribing.

use anyhow::Result;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::Store;
use crate::model::{Language, ThemeSlug};
use crate::model::{NewSubscriber, Status, Subscriber};

/// Subscribers per multi-row INSERT (10 columns each).
pub(crate) const BATCH: usize = 1000;

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
        crate::store::dispatch!(self, subscribers::add_subscribers(people, now))
    }

    /// The subscriber with this address (any letter case), if any.
    pub async fn subscriber(&self, email_key: &str) -> Result<Option<Subscriber>> {
        crate::store::dispatch!(self, subscribers::subscriber(email_key))
    }

    /// Every subscriber (optionally of one status), oldest first, read as
    /// a stream so that a million of them never sit in memory at once.
    pub fn subscribers(&self, status: Option<Status>) -> BoxStream<'_, Result<Subscriber>> {
        match &self.db {
            super::Db::Sqlite { pool, .. } => {
                super::backend::sqlite::subscribers::subscribers(pool, status).boxed()
            }
            super::Db::Postgres(pool) => {
                super::backend::postgres::subscribers::subscribers(pool, status).boxed()
            }
        }
    }

    /// Erases a subscriber entirely (for a data-protection request):
    /// returns whether there was one.
    pub async fn remove_subscriber(&self, email_key: &str) -> Result<bool> {
        crate::store::dispatch!(self, subscribers::remove_subscriber(email_key))
    }

    /// Marks a subscriber bounced: their address was permanently refused,
    /// and later digests pass them over.
    pub async fn mark_bounced(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        crate::store::dispatch!(self, subscribers::mark_bounced(id, now))
    }

    /// How many subscribers there are in each status.
    pub async fn subscriber_counts(&self) -> Result<Vec<(Status, i64)>> {
        crate::store::dispatch!(self, subscribers::subscriber_counts())
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

/// The name in `fixups` of [`Store::canonicalize_subscribers`].
pub(crate) const CANONICAL_FIXUP: &str = "canonical_emails";

/// What [`Store::canonicalize_subscribers`] did, by subscriber id (never
/// by address: it is logged).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Canonicalized {
    /// Addresses rewritten to their canonical form.
    pub rewritten: Vec<i64>,
    /// Subscribers kept, with those merged into them (the same inbox).
    pub merged: Vec<(i64, Vec<i64>)>,
    /// Pending subscribers whose address no relay delivers to: removed.
    pub removed: Vec<i64>,
    /// Active subscribers whose address no relay delivers to: bounced.
    pub bounced: Vec<i64>,
}

impl Canonicalized {
    pub fn is_empty(&self) -> bool {
        *self == Canonicalized::default()
    }
}

impl Store {
    /// Once per store (a no-op afterwards, see `migrations/sqlite/0009_fixups.sql`): brings every stored address to
    /// the canonical form of [`SubscriberEmail`](crate::model::SubscriberEmail),
    /// so that one inbox is one subscriber. Rows that turn out to share an
    /// inbox are merged into the one with the earliest consent (its id,
    /// consent and choices kept; its deliveries joined by the others'; an
    /// unsubscribe of any of them wins, then a bounce, then a
    /// confirmation). Pending rows whose address cannot receive mail are
    /// removed, active ones marked bounced. One transaction.
    pub async fn canonicalize_subscribers(&self, now: DateTime<Utc>) -> Result<Canonicalized> {
        let canonical = |email: &str| crate::model::SubscriberEmail::parse(email).map(String::from);
        crate::store::dispatch!(self, subscribers::canonicalize(canonical, now))
    }

    /// The subscriber with this id, if any.
    pub async fn subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>> {
        crate::store::dispatch!(self, subscribers::subscriber_by_id(id))
    }

    /// A sign-up from the web form, in one transaction: a new address is
    /// stored `pending`; a `pending` one takes the new choices; an
    /// `unsubscribed` or `bounced` one becomes `pending` again with them
    /// (consent given anew, so `consent_at` and `consent_source` change and
    /// `confirmed_at` is cleared); an `active` one is left as it is.
    pub async fn signup(&self, person: &NewSubscriber, now: DateTime<Utc>) -> Result<Signup> {
        crate::store::dispatch!(self, subscribers::signup(person, now))
    }

    /// Confirms a `pending` subscriber (now `active`, `confirmed_at` set).
    /// Returns the status afterwards; a repeat finds them `active` and
    /// changes nothing; `None` when there is no such subscriber.
    pub async fn confirm_subscriber(&self, id: i64, now: DateTime<Utc>) -> Result<Option<Status>> {
        crate::store::dispatch!(self, subscribers::confirm_subscriber(id, now))
    }

    /// Unsubscribes (from any other status); a repeat changes nothing and
    /// keeps the first `unsubscribed_at`. Returns whether there is such a
    /// subscriber. Deliveries already in the ledger are skipped at claim
    /// time, since the worker sends only to `active` subscribers.
    pub async fn unsubscribe(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        crate::store::dispatch!(self, subscribers::unsubscribe(id, now))
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
        crate::store::dispatch!(
            self,
            subscribers::set_preferences(id, themes, language, digest)
        )
    }
}
