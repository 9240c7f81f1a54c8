//! What the service does about each scheduled job at a given moment: run a
//! tick, pass a missed one over, or wait. Pure, so tests drive it with any
//! clock they like; the loop that sleeps and acts lives with `tidings run`.
//!
//! Each job remembers the last tick it handled (in the store's `jobs`
//! table). A job that has never run starts from "now": nothing is owed for
//! the time before the service first knew it. After downtime, however many
//! ticks passed, one is owed: with `run_once` it runs (as that last tick),
//! with `skip` it is recorded as passed over and the job waits for its next
//! tick. A tick that has only just arrived is not "missed": it runs either
//! way.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::schedule::CronSchedule;

/// `[schedule] on_missed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissed {
    RunOnce,
    Skip,
}

/// How late a tick may be handled and still count as on time, not missed.
pub const GRACE: Duration = Duration::seconds(60);

/// What to do about one job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the job for this tick (its idempotency key).
    Run(DateTime<Utc>),
    /// Record this tick as handled without running: the first start of a
    /// job, or a missed tick under `skip`.
    Pass(DateTime<Utc>),
    /// Nothing to do until this time.
    Wait(DateTime<Utc>),
}

/// The decision for a job whose last handled tick is `last` (if any).
pub fn decide(
    schedule: &CronSchedule,
    tz: Tz,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    on_missed: OnMissed,
) -> Decision {
    let Some(last) = last else {
        return Decision::Pass(now);
    };
    match schedule.missed(last, now, tz) {
        Some(tick) if now - tick <= GRACE => Decision::Run(tick),
        Some(tick) => match on_missed {
            OnMissed::RunOnce => Decision::Run(tick),
            OnMissed::Skip => Decision::Pass(tick),
        },
        None => match schedule.next_after(last.max(now), tz) {
            Some(next) => Decision::Wait(next),
            // A schedule with no future tick (a past year): never again.
            None => Decision::Wait(DateTime::<Utc>::MAX_UTC),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tz() -> Tz {
        "Europe/Stockholm".parse().unwrap()
    }

    /// Plays a service up from `start` to `end` on a clock that jumps to
    /// each wake-up time (and to `down_until` after a stop), returning the
    /// ticks it ran.
    fn play(
        schedule: &str,
        start: &str,
        end: &str,
        down: Option<(&str, &str)>,
        on_missed: OnMissed,
    ) -> Vec<String> {
        let s = CronSchedule::parse(schedule).unwrap();
        let (mut now, end) = (t(start), t(end));
        let mut last = None;
        let mut ran = Vec::new();
        while now <= end {
            if let Some((from, until)) = down
                && now >= t(from)
                && now < t(until)
            {
                now = t(until);
                continue;
            }
            match decide(&s, tz(), last, now, on_missed) {
                Decision::Run(tick) => {
                    ran.push(tick.to_rfc3339());
                    last = Some(tick);
                }
                Decision::Pass(tick) => last = Some(tick),
                Decision::Wait(next) => now = next,
            }
        }
        ran
    }

    #[test]
    fn a_running_service_runs_each_tick_once() {
        let ran = play(
            "0 8 * * *",
            "2026-11-01T00:00:00Z",
            "2026-11-04T00:00:00Z",
            None,
            OnMissed::RunOnce,
        );
        assert_eq!(
            ran,
            [
                "2026-11-01T07:00:00+00:00",
                "2026-11-02T07:00:00+00:00",
                "2026-11-03T07:00:00+00:00"
            ]
        );
    }

    #[test]
    fn after_downtime_a_missed_tick_runs_once_or_is_skipped() {
        // Down from the 1st at noon to the 5th at noon: four 08:00 ticks missed.
        let down = Some(("2026-11-01T12:00:00Z", "2026-11-05T12:00:00Z"));
        let once = play(
            "0 8 * * *",
            "2026-11-01T00:00:00Z",
            "2026-11-06T12:00:00Z",
            down,
            OnMissed::RunOnce,
        );
        assert_eq!(
            once,
            [
                "2026-11-01T07:00:00+00:00",
                "2026-11-05T07:00:00+00:00", // the last missed one, once, at restart
                "2026-11-06T07:00:00+00:00",
            ]
        );
        let skip = play(
            "0 8 * * *",
            "2026-11-01T00:00:00Z",
            "2026-11-06T12:00:00Z",
            down,
            OnMissed::Skip,
        );
        assert_eq!(
            skip,
            ["2026-11-01T07:00:00+00:00", "2026-11-06T07:00:00+00:00"]
        );
    }

    #[test]
    fn a_first_start_owes_nothing_and_a_just_arrived_tick_is_not_missed() {
        let s = CronSchedule::parse("0 8 * * *").unwrap();
        let now = t("2026-11-01T12:00:00Z");
        assert_eq!(
            decide(&s, tz(), None, now, OnMissed::Skip),
            Decision::Pass(now)
        );
        let last = Some(t("2026-10-31T07:00:00Z"));
        let on_time = t("2026-11-01T07:00:30Z");
        assert_eq!(
            decide(&s, tz(), last, on_time, OnMissed::Skip),
            Decision::Run(t("2026-11-01T07:00:00Z"))
        );
        assert_eq!(
            decide(
                &s,
                tz(),
                Some(t("2026-11-01T07:00:00Z")),
                on_time,
                OnMissed::Skip
            ),
            Decision::Wait(t("2026-11-02T07:00:00Z")),
            "a tick handled is not handled again"
        );
    }
}
