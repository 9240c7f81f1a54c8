//! What a remote source (a WordPress site, an upstream feed) remembers
//! between runs, kept in the store per source and used by the source.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a remote source remembers between runs (stored as JSON, per
/// source key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// `ETag` of the last full answer, sent back as `If-None-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` of the last full answer, sent as `If-Modified-Since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Where a permanent redirect moved the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// When the source answered `410 Gone`; it is not polled after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at: Option<DateTime<Utc>>,
    /// WordPress: the latest `modified_gmt` read, where the next
    /// incremental read starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// WordPress: when every post was last read (absent posts are then
    /// withdrawn); a full read is made once a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<DateTime<Utc>>,
}
