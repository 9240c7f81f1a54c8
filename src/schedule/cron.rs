//! Schedules as data: a cron expression that answers "the next tick after
//! this instant, in this time zone", built on the `cron` crate.
//!
//! Accepted: the standard 5-field crontab syntax (`min hour dom month dow`),
//! 6 fields with seconds first, and `@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`. Day-of-week numbers are crontab's (0 or 7 =
//! Sunday, 1 = Monday, …); they are translated for the `cron` crate, which
//! counts from Sunday = 1.
//!
//! Ticks are computed on the wall clock of the time zone and then placed on
//! the time line, so daylight saving is handled as people expect: a local
//! time that does not exist (the clocks jump past it) fires once, when the
//! gap ends; a local time that happens twice (the clocks fall back) fires
//! once, the first time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    source: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let source = text.trim().to_owned();
        let expected = "expected 5 crontab fields such as \"0 8 1 * *\" (08:00 on the 1st), \
                        6 with seconds first, or @hourly, @daily, @weekly, @monthly";
        let translated = if source.starts_with('@') {
            match source.as_str() {
                "@hourly" | "@daily" | "@weekly" | "@monthly" | "@yearly" | "@annually" => {
                    source.clone()
                }
                other => return Err(format!("`{other}` is not a schedule: {expected}")),
            }
        } else {
            let fields: Vec<&str> = source.split_whitespace().collect();
            let (seconds, rest) = match fields.len() {
                5 => ("0", &fields[..]),
                6 => (fields[0], &fields[1..]),
                n => {
                    return Err(format!("`{source}` has {n} fields: {expected}"));
                }
            };
            let dow = crontab_days_of_week(rest[4])
                .map_err(|e| format!("`{source}`: day of week {e}"))?;
            format!(
                "{seconds} {} {} {} {} {dow}",
                rest[0], rest[1], rest[2], rest[3]
            )
        };
        let schedule = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("`{source}` is not a schedule ({e}): {expected}"))?;
        Ok(CronSchedule { source, schedule })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first tick strictly after `after`, on the wall clock of `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // The wall clock as if it were UTC, so that the cron crate walks
        // local times without any daylight-saving logic of its own. Wall
        // times that happen twice run at the first, so no tick at or before
        // `after`'s wall time can fall after `after`: walking forward from
        // it is enough. (Inside a repeated hour, ticks whose first
        // occurrence has passed are stepped over; the bound covers an
        // every-second schedule doing so for a whole hour.)
        let local = Utc.from_utc_datetime(&after.with_timezone(&tz).naive_local());
        self.schedule
            .after(&local)
            .take(2 * 3600 + 10)
            .filter_map(|naive_tick| place(naive_tick.naive_utc(), tz))
            .find(|instant| *instant > after)
    }

    /// The most recent tick at or before `now` that is after `since`, if
    /// any: the one tick a service that was down from `since` to `now`
    /// owes — however many it missed, it runs once.
    pub fn missed(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        if self.next_after(since, tz)? > now {
            return None;
        }
        // Walk back from a little after `now`'s wall time (a tick placed
        // at a gap's end, or in a repeated hour, may sit up to the shift
        // away from its wall time) to the first tick placed at or before
        // `now`.
        let local = now.with_timezone(&tz).naive_local();
        let from = Utc.from_utc_datetime(&(local + Duration::hours(2)));
        self.schedule
            .after(&from)
            .rev()
            .take(5 * 3600)
            .filter_map(|naive_tick| place(naive_tick.naive_utc(), tz))
            .find(|instant| *instant <= now)
            .filter(|tick| *tick > since)
    }
}

impl FromStr for CronSchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<CronSchedule, String> {
        CronSchedule::parse(s)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A wall-clock time placed on the time line: the first of two when the
/// clocks fall back; when they jump past it, the moment the gap ends.
fn place(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // Gaps are whole minutes (at most a few hours): find where the
            // wall clock starts again.
            let mut probe = naive;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                let truncated = probe
                    .date()
                    .and_hms_opt(
                        chrono::Timelike::hour(&probe),
                        chrono::Timelike::minute(&probe),
                        0,
                    )
                    .expect("a valid time");
                if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) =
                    tz.from_local_datetime(&truncated)
                {
                    return Some(t.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// Crontab's day-of-week field (0–7, 0 and 7 = Sunday, names allowed) in
/// the `cron` crate's numbering (1–7, 1 = Sunday).
fn crontab_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days: Vec<u32> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("`{part}` has a bad step"))?,
            ),
            None => (part, 1),
        };
        let number = |s: &str| -> Result<Option<u32>, String> {
            if s.chars().all(|c| c.is_ascii_digit()) {
                let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a day"))?;
                if n > 7 {
                    return Err(format!(
                        "`{s}` is out of range: expected 0–7 (0 and 7 are Sunday)"
                    ));
                }
                Ok(Some(n))
            } else {
                Ok(None)
            }
        };
        let (lo, hi) = match range {
            "*" => (Some(0), Some(6)),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(r)?, number(r)?),
            },
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) => {
                if lo > hi {
                    return Err(format!("`{part}` runs backwards"));
                }
                days.extend((lo..=hi).step_by(step as usize));
            }
            // Names (MON-FRI) mean the same in both numberings.
            (None, None) => names.push(part.to_owned()),
            _ => return Err(format!("`{part}` mixes numbers and names")),
        }
    }
    let mut out: Vec<u32> = days.iter().map(|d| d % 7 + 1).collect();
    out.sort_unstable();
    out.dedup();
    let mut parts: Vec<String> = out.iter().map(u32::to_string).collect();
    parts.extend(names);
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stockholm() -> Tz {
        "Europe/Stockholm".parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ticks(s: &CronSchedule, from: &str, to: &str) -> Vec<String> {
        let (mut t, end) = (utc(from), utc(to));
        let mut out = Vec::new();
        while let Some(next) = s.next_after(t, stockholm()) {
            if next > end {
                break;
            }
            out.push(next.with_timezone(&stockholm()).to_rfc3339());
            t = next;
        }
        out
    }

    #[test]
    fn frequent_schedules_find_their_next_and_missed_ticks_quickly() {
        let every_second = CronSchedule::parse("* * * * * *").unwrap();
        let now = utc("2026-11-29T23:47:16.5Z");
        assert_eq!(
            every_second.next_after(now, stockholm()),
            Some(utc("2026-11-29T23:47:17Z"))
        );
        // A day down: the one tick owed is the last, found without
        // walking the 86,400 in between.
        let since = utc("2026-11-28T23:47:16Z");
        assert_eq!(
            every_second.missed(since, now, stockholm()),
            Some(utc("2026-11-29T23:47:16Z"))
        );
        assert_eq!(every_second.missed(now, now, stockholm()), None);
        // The night the clocks fall back, each wall time of the repeated
        // hour runs once, at its first occurrence: during the second pass
        // the next tick is 03:00 CET.
        let in_second_pass = utc("2027-10-31T01:10:00Z"); // 02:10 CET
        assert_eq!(
            every_second.next_after(in_second_pass, stockholm()),
            Some(utc("2027-10-31T02:00:00Z"))
        );
    }

    #[test]
    fn crontab_fields_and_macros_parse() {
        for good in [
            "0 8 1 * *",
            "*/10 * * * *",
            "30 2 * * 1-5",
            "0 0 8 * * MON",
            "@daily",
            "@monthly",
            "0 9 * * 0,7",
        ] {
            assert!(CronSchedule::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "0 8 1 * * * * *",
            "@fortnightly",
            "0 8 * * 8",
            "0 8 * * 5-1",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn days_of_week_are_crontabs() {
        // 2026-11-30 is a Monday.
        let s = CronSchedule::parse("0 9 * * 1").unwrap();
        assert_eq!(
            s.next_after(utc("2026-11-29T12:00:00Z"), stockholm())
                .unwrap()
                .to_rfc3339(),
            "2026-11-30T08:00:00+00:00"
        );
        let sunday = CronSchedule::parse("0 9 * * 0").unwrap();
        let seven = CronSchedule::parse("0 9 * * 7").unwrap();
        let from = utc("2026-11-30T12:00:00Z");
        assert_eq!(
            sunday.next_after(from, stockholm()),
            seven.next_after(from, stockholm())
        );
        assert_eq!(
            sunday.next_after(from, stockholm()).unwrap().to_rfc3339(),
            "2026-12-06T08:00:00+00:00"
        );
        assert_eq!(crontab_days_of_week("1-5").unwrap(), "2,3,4,5,6");
        assert_eq!(crontab_days_of_week("5-7").unwrap(), "1,6,7");
        assert_eq!(crontab_days_of_week("*/2").unwrap(), "1,3,5,7");
    }

    #[test]
    fn a_daily_0230_job_runs_once_on_both_daylight_saving_nights() {
        let s = CronSchedule::parse("30 2 * * *").unwrap();
        // Spring: on 2026-03-29 the clocks jump from 02:00 to 03:00.
        assert_eq!(
            ticks(&s, "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z"),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        // Autumn: on 2026-10-25 the clocks fall back from 03:00 to 02:00.
        assert_eq!(
            ticks(&s, "2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z"),
            [
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00"
            ]
        );
    }

    #[test]
    fn an_hourly_job_fires_once_per_wall_clock_hour_across_the_autumn_change() {
        let s = CronSchedule::parse("@hourly").unwrap();
        let t = ticks(&s, "2026-10-24T23:30:00Z", "2026-10-25T02:30:00Z");
        // After 02:00 +02 the wall clock shows 02:00 again (+01): that wall
        // time has fired already, so the next tick is 03:00 +01.
        assert_eq!(
            t,
            ["2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"]
        );
    }

    #[test]
    fn month_ends_and_the_first_of_the_month() {
        let monthly = CronSchedule::parse("0 8 1 * *").unwrap();
        assert_eq!(
            ticks(&monthly, "2026-01-15T00:00:00Z", "2026-04-15T00:00:00Z"),
            [
                "2026-02-01T08:00:00+01:00",
                "2026-03-01T08:00:00+01:00",
                "2026-04-01T08:00:00+02:00"
            ]
        );
        let last_days = CronSchedule::parse("0 12 31 * *").unwrap();
        assert_eq!(
            ticks(&last_days, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            [
                "2026-01-31T12:00:00+01:00",
                "2026-03-31T12:00:00+02:00",
                "2026-05-31T12:00:00+02:00"
            ]
        );
    }

    #[test]
    fn many_missed_ticks_are_owed_once() {
        let s = CronSchedule::parse("*/10 * * * *").unwrap();
        let since = utc("2026-11-29T10:00:00Z");
        let now = utc("2026-11-29T13:05:00Z");
        assert_eq!(
            s.missed(since, now, stockholm()),
            Some(utc("2026-11-29T13:00:00Z"))
        );
        assert_eq!(s.missed(now, now, stockholm()), None);
    }
}
