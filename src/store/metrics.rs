//! What `/healthz` and `/metrics` read from the store: a liveness probe and
//! totals over every edition.

use anyhow::Result;

use super::Store;
use super::editions::Counts;

impl Store {
    /// Answers when the store does (`SELECT 1`).
    pub async fn ping(&self) -> Result<()> {
        crate::store::dispatch!(self, metrics::ping())
    }

    /// Deliveries by state, summed over all editions of all digests.
    pub async fn delivery_totals(&self) -> Result<Counts> {
        crate::store::dispatch!(self, metrics::delivery_totals())
    }

    /// How many editions each digest has, by digest id (only digests
    /// that have at least one).
    pub async fn edition_totals(&self) -> Result<Vec<(String, i64)>> {
        crate::store::dispatch!(self, metrics::edition_totals())
    }
}
