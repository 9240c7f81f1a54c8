//! The scheduler of `tidings run` driven with a controlled clock: each
//! test calls [`Scheduler::step`] with the times it chooses, against a real
//! site (SQLite store, Markdown source, mail written to `outbox/`), the
//! way the service's job loop does after each sleep.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Utc};
use tidings::config::Config;
use tidings::digest::delivery::Options;
use tidings::mail::Mailer;
use tidings::publish::Ingester;
use tidings::service::{Job, Scheduler, Step};
use tidings::store::Store;

use crate::support::{FIXTURE_CONFIG, Site, outbox, subscribe};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The fixture site (Europe/Stockholm) with mail to `outbox/`, a digest on
/// `digest_schedule` and ingest on `ingest_schedule`.
fn site(ingest_schedule: &str, digest_schedule: &str, on_missed: &str) -> Site {
    Site::with_config(&format!(
        "{FIXTURE_CONFIG}
[schedule]
ingest = \"{ingest_schedule}\"
on_missed = \"{on_missed}\"

[mail]
from = \"Fixture news <news@example.org>\"
transport = \"file:outbox\"
rate_limit = 0

[[digests]]
id = \"monthly\"
title = {{ sv = \"Månadsbrev\", en = \"Monthly letter\" }}
schedule = \"{digest_schedule}\"
"
    ))
}

async fn scheduler(site: &Site) -> Arc<Scheduler> {
    let config = Arc::new(Config::load(&site.config_path()).expect("a valid config"));
    let store = Store::open(&config.storage.url).await.unwrap();
    let env = tidings::config::env::Environment::default();
    let keys = Arc::new(
        tidings::links::keys::Keys::load(&store, &env)
            .await
            .unwrap(),
    );
    Arc::new(Scheduler {
        ingester: Arc::new(Ingester::new(config.clone(), store.clone()).unwrap()),
        mailer: Mailer::new(&config).unwrap().map(Arc::new),
        digest_templates: Arc::new(tidings::digest::render::Templates::load(&config).unwrap()),
        config,
        store,
        keys,
        options: Options::default(),
        stop: Arc::new(AtomicBool::new(false)),
    })
}

/// Plays `job` from `start` to `end`: each step at the time the previous
/// one said to wait for. Returns the ticks it ran (UTC, RFC 3339).
async fn play(s: &Scheduler, job: &Job, start: &str, end: &str) -> Vec<String> {
    let (mut now, end) = (t(start), t(end));
    let mut ran = Vec::new();
    let mut steps = 0;
    while now <= end {
        steps += 1;
        assert!(steps < 1000, "the scheduler does not settle");
        match s.step(job, now).await.unwrap() {
            Step::Ran(tick, result) => {
                result.unwrap_or_else(|e| panic!("{} failed at {tick}: {e}", job.name()));
                ran.push(tick.to_rfc3339());
            }
            Step::Passed(_) => {}
            Step::Wait(next) => now = next,
            Step::Held(tick, _) => panic!("{} held by another instance at {tick}", job.name()),
        }
    }
    ran
}

#[tokio::test]
async fn a_daily_job_runs_once_on_the_nights_the_clocks_change() {
    let site = site("30 2 * * *", "0 8 1 * *", "run_once");
    let s = scheduler(&site).await;
    // Spring: in Stockholm 02:00 jumps to 03:00 on 28 March 2027, so 02:30
    // does not exist that night; the job runs once, at the end of the gap.
    let spring = play(
        &s,
        &Job::Ingest,
        "2027-03-26T12:00:00Z",
        "2027-03-29T12:00:00Z",
    )
    .await;
    assert_eq!(
        spring,
        [
            "2027-03-27T01:30:00+00:00", // 02:30 CET
            "2027-03-28T01:00:00+00:00", // 03:00 CEST, the gap's end
            "2027-03-29T00:30:00+00:00", // 02:30 CEST
        ]
    );
    // Autumn (the service ran all along; nothing owed from before):
    // 03:00 falls back to 02:00 on 31 October 2027, so 02:30
    // happens twice; the job runs once, at the first.
    s.store
        .record_pass("ingest", t("2027-10-30T12:00:00Z"))
        .await
        .unwrap();
    let autumn = play(
        &s,
        &Job::Ingest,
        "2027-10-30T12:00:00Z",
        "2027-11-01T12:00:00Z",
    )
    .await;
    assert_eq!(
        autumn,
        [
            "2027-10-31T00:30:00+00:00", // 02:30 CEST, the first of two
            "2027-11-01T01:30:00+00:00", // 02:30 CET
        ]
    );
    let job = s.store.job("ingest").await.unwrap().unwrap();
    assert_eq!(job.last_result, Some(tidings::model::JobOutcome::Ok));
}

#[tokio::test]
async fn month_ends_run_only_in_months_that_have_the_day() {
    let site = site("*/10 * * * *", "0 8 31 * *", "run_once");
    let s = scheduler(&site).await;
    let job = Job::Digest("monthly".into());
    let ran = play(&s, &job, "2027-01-15T00:00:00Z", "2027-08-15T00:00:00Z").await;
    assert_eq!(
        ran,
        [
            "2027-01-31T07:00:00+00:00",
            "2027-03-31T06:00:00+00:00", // CEST from 28 March
            "2027-05-31T06:00:00+00:00",
            "2027-07-31T06:00:00+00:00",
        ]
    );
    // One edition per tick, keyed by the tick.
    let editions = s.store.editions("monthly", 100).await.unwrap();
    let mut keys: Vec<&str> = editions.iter().map(|e| e.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "tick:2027-01-31T07:00:00Z",
            "tick:2027-03-31T06:00:00Z",
            "tick:2027-05-31T06:00:00Z",
            "tick:2027-07-31T06:00:00Z"
        ]
    );
}

#[tokio::test]
async fn after_downtime_a_missed_digest_is_sent_once_not_once_per_tick() {
    let site = site("*/10 * * * *", "0 8 * * *", "run_once");
    site.story("a", "Vatten i Kisumu", "2027-01-30T10:00:00Z", &["alpha"]);
    site.build();
    subscribe(&site, "ada@example.org", "alpha");
    let s = scheduler(&site).await;
    let job = Job::Digest("monthly".into());
    // The service first starts on the 1st, at noon: nothing is owed.
    assert_eq!(
        s.step(&job, t("2027-02-01T11:00:00Z")).await.unwrap(),
        Step::Passed(t("2027-02-01T11:00:00Z"))
    );
    assert_eq!(
        s.step(&job, t("2027-02-01T11:00:00Z")).await.unwrap(),
        Step::Wait(t("2027-02-02T07:00:00Z"))
    );
    // It comes back on the 5th at noon: four 08:00 ticks were missed.
    match s.step(&job, t("2027-02-05T11:00:00Z")).await.unwrap() {
        Step::Ran(tick, Ok(_)) => assert_eq!(tick, t("2027-02-05T07:00:00Z"), "the last one"),
        other => panic!("expected a run, got {other:?}"),
    }
    assert_eq!(
        s.step(&job, t("2027-02-05T11:00:01Z")).await.unwrap(),
        Step::Wait(t("2027-02-06T07:00:00Z")),
        "and only once"
    );
    assert_eq!(s.store.editions("monthly", 100).await.unwrap().len(), 1);
    let sent = outbox(&site);
    assert_eq!(sent["ada@example.org"].len(), 1, "one digest: {sent:?}");
}

#[tokio::test]
async fn with_skip_a_missed_tick_waits_for_the_next() {
    let site = site("*/10 * * * *", "0 8 * * *", "skip");
    let s = scheduler(&site).await;
    let job = Job::Digest("monthly".into());
    s.step(&job, t("2027-02-01T11:00:00Z")).await.unwrap();
    assert_eq!(
        s.step(&job, t("2027-02-05T11:00:00Z")).await.unwrap(),
        Step::Passed(t("2027-02-05T07:00:00Z"))
    );
    let state = s.store.job("digest:monthly").await.unwrap().unwrap();
    assert_eq!(state.last_result, Some(tidings::model::JobOutcome::Skipped));
    assert_eq!(
        s.step(&job, t("2027-02-05T11:00:00Z")).await.unwrap(),
        Step::Wait(t("2027-02-06T07:00:00Z"))
    );
    assert!(s.store.editions("monthly", 10).await.unwrap().is_empty());
    // A tick that has only just arrived is on time, not missed: it runs.
    assert!(matches!(
        s.step(&job, t("2027-02-06T07:00:20Z")).await.unwrap(),
        Step::Ran(_, Ok(_))
    ));
}

#[tokio::test]
async fn a_tick_handled_again_after_a_crash_resumes_its_edition() {
    let site = site("*/10 * * * *", "0 8 * * *", "run_once");
    site.story("a", "Vatten i Kisumu", "2027-01-30T10:00:00Z", &["alpha"]);
    site.build();
    for who in ["ada", "bo", "cy"] {
        subscribe(&site, &format!("{who}@example.org"), "alpha");
    }
    let s = scheduler(&site).await;
    let job = Job::Digest("monthly".into());
    let day = |d: u32| t(&format!("2027-02-{d:02}T07:00:00Z"));
    s.store.record_pass("digest:monthly", day(1)).await.unwrap();
    assert!(matches!(
        s.step(&job, day(2)).await.unwrap(),
        Step::Ran(_, Ok(_))
    ));
    // A crash between sending and recording: the job state still says the
    // 1st. The restarted service finds the tick claimed by the instance
    // that died, until the claim lapses …
    s.store.record_pass("digest:monthly", day(1)).await.unwrap();
    assert!(matches!(
        s.step(&job, day(2)).await.unwrap(),
        Step::Held(_, until) if until == day(2) + tidings::service::JOB_LEASE
    ));
    // … then runs the same tick again and finds its edition, all sent.
    let later = day(2) + tidings::service::JOB_LEASE + chrono::Duration::seconds(1);
    assert!(matches!(
        s.step(&job, later).await.unwrap(),
        Step::Ran(tick, Ok(_)) if tick == day(2)
    ));
    let editions = s.store.editions("monthly", 10).await.unwrap();
    assert_eq!(editions.len(), 1, "one edition for one tick");
    let counts = s.store.delivery_counts(editions[0].id).await.unwrap();
    assert_eq!((counts.sent, counts.total()), (3, 3));
    let sent = outbox(&site);
    assert!(
        sent.values().all(|m| m.len() == 1),
        "no one got two: {sent:?}"
    );
}

#[tokio::test]
async fn a_failing_job_is_recorded_and_retried_at_its_next_tick_without_stopping_others() {
    let site = site("0 * * * *", "0 8 * * *", "run_once");
    site.story("a", "Vatten i Kisumu", "2027-01-30T10:00:00Z", &["alpha"]);
    site.build();
    subscribe(&site, "ada@example.org", "alpha");
    let s = scheduler(&site).await;
    let (ingest, digest) = (Job::Ingest, Job::Digest("monthly".into()));
    s.step(&ingest, t("2027-02-01T05:30:00Z")).await.unwrap();
    s.step(&digest, t("2027-02-01T05:30:00Z")).await.unwrap();
    // The feeds folder becomes a file: writing the feeds fails.
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    std::fs::write(site.path("feeds"), "not a folder").unwrap();
    match s.step(&ingest, t("2027-02-01T06:00:00Z")).await.unwrap() {
        Step::Ran(_, Err(e)) => assert!(e.contains("feeds"), "{e}"),
        other => panic!("expected a failed run, got {other:?}"),
    }
    let state = s.store.job("ingest").await.unwrap().unwrap();
    assert_eq!(state.last_result, Some(tidings::model::JobOutcome::Failed));
    assert!(state.last_error.is_some());
    // It waits for its next tick, not retrying in a loop …
    assert_eq!(
        s.step(&ingest, t("2027-02-01T06:00:01Z")).await.unwrap(),
        Step::Wait(t("2027-02-01T07:00:00Z"))
    );
    // … and the digest goes on regardless.
    assert!(matches!(
        s.step(&digest, t("2027-02-01T07:00:00Z")).await.unwrap(),
        Step::Ran(_, Ok(_))
    ));
    assert_eq!(outbox(&site)["ada@example.org"].len(), 1);
    // Repaired, the next tick succeeds and the failure is history.
    std::fs::remove_file(site.path("feeds")).unwrap();
    assert!(matches!(
        s.step(&ingest, t("2027-02-01T07:00:00Z")).await.unwrap(),
        Step::Ran(_, Ok(_))
    ));
    let state = s.store.job("ingest").await.unwrap().unwrap();
    assert_eq!(state.last_result, Some(tidings::model::JobOutcome::Ok));
    assert!(site.path("feeds/atom.xml").is_file());
}

#[tokio::test]
async fn two_instances_on_one_store_run_each_tick_once() {
    let site = site("*/10 * * * *", "0 8 * * *", "run_once");
    site.story("a", "Vatten i Kisumu", "2027-01-30T10:00:00Z", &["alpha"]);
    site.build();
    subscribe(&site, "ada@example.org", "alpha");
    let (one, two) = (scheduler(&site).await, scheduler(&site).await);
    let job = Job::Digest("monthly".into());
    one.step(&job, t("2027-02-01T11:00:00Z")).await.unwrap();
    two.step(&job, t("2027-02-01T11:00:00Z")).await.unwrap();
    // Both wake for the 2nd at 08:00; the first to claim it runs it.
    let tick = t("2027-02-02T07:00:00Z");
    let first = one.step(&job, tick).await.unwrap();
    assert!(matches!(first, Step::Ran(_, Ok(_))), "{first:?}");
    let second = two.step(&job, tick).await.unwrap();
    assert_eq!(
        second,
        Step::Wait(t("2027-02-03T07:00:00Z")),
        "already handled"
    );
    // Racing for a tick: the claim decides, before anything runs.
    let tick = t("2027-02-03T07:00:00Z");
    s_claim(&two, tick).await;
    assert!(matches!(
        one.step(&job, tick).await.unwrap(),
        Step::Held(t, _) if t == tick
    ));
    assert_eq!(one.store.editions("monthly", 10).await.unwrap().len(), 1);
    assert_eq!(outbox(&site)["ada@example.org"].len(), 1);
}

/// Claims `tick` of the digest job as instance `s` would just before running it.
async fn s_claim(s: &Scheduler, tick: DateTime<Utc>) {
    let held = s
        .store
        .claim_tick(
            "digest:monthly",
            tick,
            tick,
            tick + tidings::service::JOB_LEASE,
        )
        .await
        .unwrap();
    assert_eq!(held, None, "the claim is ours");
}
