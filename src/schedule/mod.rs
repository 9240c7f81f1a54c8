//! When things run: cron expressions read in the site's time zone
//! ([`cron`]) and the pure decision of what a job does at a given moment
//! ([`decide`]). Pure: no store, no clock of its own; the service acts on
//! the decisions (`crate::service`).

pub mod cron;
pub mod decide;

pub use cron::CronSchedule;
pub use decide::{Decision, OnMissed, decide};
