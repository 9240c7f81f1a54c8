//! tidings turns newly published stories into RSS, Atom and JSON feeds and
//! sends each subscriber a periodic email digest of the themes they chose.
//!
//! The library holds the whole pipeline so that integration tests and the
//! `tidings` binary drive the same code. `ARCHITECTURE.md` is the map; in
//! short, from the bottom up: [`model`] and [`config`] are parsed once at
//! the edge; [`sources`] read stories; [`publish`] records them in the
//! [`store`] and has [`feeds`] written, then tells the WebSub hubs
//! ([`websub`]); [`digest`] freezes editions and
//! delivers them through [`mail`]; [`web`] serves it all; [`service`] runs
//! the schedule ([`schedule`]); the binary's `commands` call these.

pub mod bounces;
pub mod cli;
pub mod config;
pub mod digest;
pub mod feeds;
#[cfg(test)]
mod fixtures;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod links;
pub mod mail;
pub mod model;
pub mod preflight;
pub mod publish;
pub mod schedule;
pub mod service;
pub mod sources;
pub mod store;
pub mod subscribers;
pub mod templates;
pub mod web;
pub mod websub;

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
