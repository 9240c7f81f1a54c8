//! `[schedule]`: when `tidings run` polls the sources and rebuilds the
//! feeds, and what it does about ticks it missed while down.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::spans::{Checks, Context};
use crate::schedule::{CronSchedule, OnMissed};

/// `[schedule]`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Default every 10 minutes: poll the sources, rebuild feeds on change.
    pub ingest: CronSchedule,
    /// Default `run_once`.
    pub on_missed: OnMissed,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            ingest: CronSchedule::parse(DEFAULT_INGEST).expect("a valid default"),
            on_missed: OnMissed::RunOnce,
        }
    }
}

const DEFAULT_INGEST: &str = "*/10 * * * *";

#[derive(Debug, Deserialize)]
pub(super) struct RawSchedule {
    #[serde(default = "default_ingest")]
    ingest: String,
    #[serde(default = "default_on_missed")]
    on_missed: String,
}
pub(super) const SCHEDULE_KEYS: &[&str] = &["ingest", "on_missed"];

fn default_ingest() -> String {
    DEFAULT_INGEST.into()
}
fn default_on_missed() -> String {
    "run_once".into()
}

/// `[schedule]` checked.
pub(super) fn validate(
    cx: &mut Context,
    raw: RawSchedule,
    value: &Spanned<DeValue<'_>>,
) -> Option<Schedule> {
    let mut t = Checks::new(cx, "schedule", value);
    let ingest = t.check("ingest", CronSchedule::parse(&raw.ingest));
    let on_missed = match raw.on_missed.as_str() {
        "run_once" => Some(OnMissed::RunOnce),
        "skip" => Some(OnMissed::Skip),
        other => {
            t.fail(
                "on_missed",
                format!("unknown value `{other}`; expected \"run_once\" or \"skip\""),
            );
            None
        }
    };
    Some(Schedule {
        ingest: ingest?,
        on_missed: on_missed?,
    })
}
