//! Bounce events in the store: each report matched to a delivery, kept
//! with its diagnostic and (the start of) its raw text, and what it did to
//! the subscriber, decided in the same transaction as it is recorded.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Store;
use crate::model::{BounceKind, EditionBounces};

/// How much of a report is kept: the first 64 KiB.
pub const MAX_REPORT: usize = 64 * 1024;

/// A report matched to a delivery, about to be recorded.
#[derive(Debug, Clone)]
pub struct NewBounce<'a> {
    pub received_at: DateTime<Utc>,
    pub subscriber_id: i64,
    pub edition_id: i64,
    pub kind: BounceKind,
    pub diagnostic: &'a str,
    /// The whole report; only its first [`MAX_REPORT`] bytes are kept.
    pub report: &'a [u8],
    /// A stable name of the event when the report holds several or may
    /// arrive in another form (a webhook's event id): the event is then
    /// recorded once by this name instead of by the report's bytes.
    pub identity: Option<&'a str>,
}

/// The policy of `[bounces]`, as the store applies it.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Soft bounces since `soft_since` (this one included) that mark the
    /// subscriber bounced.
    pub soft_limit: u32,
    pub soft_since: DateTime<Utc>,
}

/// What recording a report did to its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Now `bounced`: a hard bounce, or the soft bounce that reached the limit.
    Bounced,
    /// Now `unsubscribed`: a complaint.
    Unsubscribed,
    /// A soft bounce counted: `count` of `limit` within the window.
    Counted { count: i64, limit: u32 },
    /// Nothing changed: the subscriber was already in this status.
    Unchanged(crate::model::Status),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Bounced => f.write_str("marked bounced"),
            Action::Unsubscribed => f.write_str("unsubscribed (complaint)"),
            Action::Counted { count, limit } => {
                write!(f, "soft bounce {count} of {limit} in the window")
            }
            Action::Unchanged(status) => write!(f, "nothing changed (already {status})"),
        }
    }
}

/// What [`Store::record_bounce`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new event, with what it did.
    New { id: i64, action: Action },
    /// The same report was recorded before (event `id`): nothing done.
    Duplicate { id: i64 },
    /// The token names a subscriber who is no longer in the store.
    NoSubscriber,
}

/// A recorded event, as `bounces list` shows it.
#[derive(Debug, Clone)]
pub struct BounceEvent {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub subscriber_id: i64,
    pub email: String,
    pub edition_id: i64,
    pub kind: BounceKind,
    pub diagnostic: String,
    pub action: String,
    pub report_size: i64,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<BounceKind>,
    /// The lower-cased address.
    pub email_key: Option<String>,
}

impl Store {
    /// Records a matched report and applies `policy` in one transaction:
    /// a hard bounce marks an active or pending subscriber `bounced`; a
    /// soft one does when it is the `soft_limit`th since
    /// `policy.soft_since`; a complaint unsubscribes. The same report
    /// (by its SHA-256, or by its `identity` when it has one) is recorded
    /// once.
    pub async fn record_bounce(&self, event: &NewBounce<'_>, policy: Policy) -> Result<Recorded> {
        crate::store::dispatch!(self, bounces::record(event, policy))
    }

    /// Events, newest first.
    pub async fn bounce_events(&self, filter: &Filter) -> Result<Vec<BounceEvent>> {
        crate::store::dispatch!(self, bounces::list(filter))
    }

    /// One event with its kept report.
    pub async fn bounce_event(&self, id: i64) -> Result<Option<(BounceEvent, Vec<u8>)>> {
        crate::store::dispatch!(self, bounces::one(id))
    }

    /// The edition of the latest delivery to the subscriber `id` that was
    /// sent (what a webhook event matched by its address alone is taken
    /// to be about).
    pub async fn last_sent_edition(&self, id: i64) -> Result<Option<i64>> {
        crate::store::dispatch!(self, bounces::last_sent_edition(id))
    }

    /// The kinds of event recorded for the subscriber with `email_key`:
    /// what `subscribers add` tells the operator about an address that
    /// bounced or complained.
    pub async fn bounce_kinds(&self, email_key: &str) -> Result<Vec<BounceKind>> {
        crate::store::dispatch!(self, bounces::kinds(email_key))
    }

    /// How many of the readers of edition `edition_id` had a hard bounce,
    /// a soft one, a complaint (each reader once per kind).
    pub async fn edition_bounces(&self, edition_id: i64) -> Result<EditionBounces> {
        crate::store::dispatch!(self, bounces::edition_bounces(edition_id))
    }
}
