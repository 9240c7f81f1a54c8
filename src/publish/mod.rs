//! Publishing: every source read into the store in one transaction
//! ([`ingest`]: scan, match against what is stored, apply the changes),
//! the matching and the changes it makes planned without I/O ([`plan`]),
//! then the feeds that changed written ([`build`]); and the [`Ingester`]
//! that runs one build at a time for the schedule and the CMS hook.

pub mod build;
pub mod ingest;
mod ingester;
pub mod plan;

pub use ingester::{INGEST_JOB, Ingester};
