//! Reading editions for the web archive: one edition of a digest by id,
//! and a digest's editions with how many stories each holds.

use anyhow::Result;

use super::Store;
use super::editions::Edition;

/// An edition and the number of stories it sends.
#[derive(Debug, Clone)]
pub struct ArchivedEdition {
    pub edition: Edition,
    pub stories: i64,
}

impl Store {
    /// The edition `id` of `digest`, if it exists and belongs to it.
    pub async fn edition_of(&self, digest: &str, id: i64) -> Result<Option<Edition>> {
        crate::store::dispatch!(self, archive::edition_of(digest, id))
    }

    /// The editions of `digest` that hold at least one story, newest first,
    /// at most `limit`. Empty ones (nothing new that month) sent nothing
    /// and are left out of the list; their pages still answer.
    pub async fn archived_editions(
        &self,
        digest: &str,
        limit: i64,
    ) -> Result<Vec<ArchivedEdition>> {
        crate::store::dispatch!(self, archive::archived_editions(digest, limit))
    }
}
