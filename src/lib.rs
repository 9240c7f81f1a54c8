//! tidings turns newly published stories into RSS, Atom and JSON feeds and,
//! in later stages, into per-subscriber email digests.
//!
//! The library holds the whole pipeline so that integration tests and the
//! `tidings` binary drive the same code: [`config`] is parsed once at the
//! edge, [`sources`] read stories, [`ingest`] records them in the [`store`],
//! and [`feeds`] renders and writes the feed files.

pub mod build;
pub mod cli;
pub mod config;
pub mod content;
pub mod delivery;
pub mod diagnostic;
pub mod digest;
pub mod feeds;
pub mod ingest;
pub mod init;
pub mod keys;
pub mod mail;
pub mod preflight;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod sources;
pub mod store;
pub mod story;
pub mod subscribers;
pub mod templates;
pub mod tokens;
pub mod web;

/// Runs CPU-bound `work` here (it may use rayon's threads), telling a
/// multi-threaded tokio runtime first so that its other tasks move to
/// another thread meanwhile.
pub(crate) fn on_all_cores<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
