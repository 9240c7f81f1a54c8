//! Several `tidings run` processes on one store: a digest tick fires once
//! across them, they share the sending of an edition, and one killed with
//! SIGKILL mid-send leaves nobody skipped and at most its in-flight rows
//! sent twice. The big test runs in the PostgreSQL pass of the suite
//! (`TIDINGS_TEST_BACKEND=postgres`, where rows are claimed with `FOR
//! UPDATE SKIP LOCKED`); the small one on both backends.

use std::time::Duration;

use crate::support::{
    Backend, Service, Site, SmtpServer, backend, import, ok, once_in, ran_an_hour_ago, recent,
    scheduled_site, wait_until,
};

const SECRET: &str = "a-secret-shared-by-every-instance-0123456789";

/// Rows an instance claimed, from its `claimed deliveries` log lines.
fn claimed(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("claimed deliveries"))
        .filter_map(|l| l.split("claimed=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<usize>().ok())
        .sum()
}

fn finished(site: &Site) -> bool {
    let status = site.tidings(&["digest", "status"]);
    status.code == 0
        && status.stdout.contains("edition 1 ")
        && !status.stdout.contains("unfinished")
}

#[test]
fn two_instances_with_one_schedule_make_one_edition() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let site = scheduled_site(&smtp.transport(), &once_in(6), "");
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    site.build();
    import(&site, 20);
    ran_an_hour_ago(&site);
    let env = [("TIDINGS_SECRET", SECRET)];
    let (one, two) = (site.serve(&env), site.serve(&env));
    assert!(
        wait_until(40, || smtp.count() >= 20 && finished(&site)),
        "the edition was not sent:\n--- one\n{}\n--- two\n{}",
        one.log(),
        two.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (a, log_one) = one.stop();
    let (b, log_two) = two.stop();
    assert_eq!((a, b), (0, 0));
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(status.stdout.contains("edition 1 "), "{status}");
    assert!(
        !status.stdout.contains("edition 2 "),
        "one edition, not two: {status}"
    );
    let frozen = [&log_one, &log_two]
        .iter()
        .filter(|l| l.contains("edition frozen"))
        .count();
    assert_eq!(frozen, 1, "one instance froze it");
    let mail = smtp.by_recipient();
    assert_eq!(mail.len(), 20);
    assert!(mail.values().all(|m| m.len() == 1), "no one twice");
}

#[test]
fn three_instances_share_an_edition_and_survive_one_killed_mid_send() {
    if backend() != Backend::Postgres {
        // Run in the PostgreSQL pass: SQLite serves one machine.
        return;
    }
    let Some(smtp) = SmtpServer::start_light() else {
        return;
    };
    const PEOPLE: usize = 20_000;
    const CONCURRENCY: usize = 4;
    let site = scheduled_site(
        &smtp.transport(),
        &once_in(8),
        &format!("concurrency = {CONCURRENCY}"),
    );
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    site.build();
    import(&site, PEOPLE);
    ran_an_hour_ago(&site);
    // A short lease, so that the killed instance's rows are taken over soon.
    let env = [("TIDINGS_SECRET", SECRET), ("TIDINGS_LEASE_SECONDS", "3")];
    let instances: Vec<Service> = (0..3).map(|_| site.serve(&env)).collect();
    assert!(
        wait_until(120, || smtp.count() >= PEOPLE / 4),
        "the send did not get going:\n{}",
        instances[0].log()
    );
    let mut instances = instances.into_iter();
    let (first, victim, third) = (
        instances.next().unwrap(),
        instances.next().unwrap(),
        instances.next().unwrap(),
    );
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &victim.pid().to_string()])
        .status();
    let victim_log = victim.log();
    drop(victim);
    assert!(
        wait_until(600, || smtp.count() >= PEOPLE && finished(&site)),
        "the edition was not finished after the kill: {} received\n{}",
        smtp.count(),
        ok(site.tidings(&["digest", "status"]))
    );
    std::thread::sleep(Duration::from_secs(1));
    let (a, log_first) = first.stop();
    let (c, log_third) = third.stop();
    assert_eq!((a, c), (0, 0));

    let mail = smtp.recipient_counts();
    assert_eq!(mail.len(), PEOPLE, "every subscriber has a message");
    let twice = mail.values().filter(|&&n| n > 1).count();
    assert!(mail.values().all(|&n| n <= 2), "nobody got three or more");
    // Only rows in flight in the killed process (one claimed batch) may
    // have gone out twice.
    assert!(
        twice <= CONCURRENCY * 4,
        "{twice} subscribers got two messages; at most one batch ({}) was in flight",
        CONCURRENCY * 4
    );
    let shares = [
        claimed(&log_first),
        claimed(&victim_log),
        claimed(&log_third),
    ];
    assert!(
        shares.iter().all(|&n| n > 0),
        "every instance sent part of the edition: {shares:?}"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status.stdout.contains(&format!("{PEOPLE} sent, 0 failed")),
        "{status}"
    );
    eprintln!("rows claimed per instance: {shares:?}; sent twice: {twice}");
}
