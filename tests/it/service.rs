//! `tidings run` as an operator runs it: the real binary, a digest on a
//! cron schedule sent through a real SMTP server, `status` read while it
//! runs, an unfinished edition resumed on start, JSON logs without
//! secrets, and a clean exit on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::{
    Site, SmtpServer, free_metrics_port, ok, recent, scheduled_site, subscribe, wait_until,
};

const SECRET: &str = "a-secret-for-the-service-tests-0123456789";
const API_TOKEN: &str = "api-token-for-the-service-tests";

#[test]
fn run_sends_each_digest_on_its_schedule_once_and_stops_on_sigterm() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    // Every two seconds: the first tick after start sends the edition, the
    // later ones find nothing new and send nothing.
    let site = scheduled_site(&smtp.transport(), "*/2 * * * * *", "");
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    recent(&site, "b", "Skolor i Hoi An", 3, &["beta"]);
    site.build();
    subscribe(&site, "ada@example.org", "alpha");
    subscribe(&site, "bo@example.org", "beta");
    subscribe(&site, "cy@example.org", "gamma");

    let service = site.serve(&[("TIDINGS_SECRET", SECRET), ("TIDINGS_API_TOKEN", API_TOKEN)]);
    assert!(
        wait_until(20, || smtp.count() >= 2),
        "no digest within 20 s:\n{}",
        service.log()
    );
    // A few more ticks pass.
    assert!(service.wait_for_log("edition frozen", 5));
    std::thread::sleep(Duration::from_secs(5));

    // `status` reads the store while the service runs.
    let status = ok(site.tidings(&["status"]));
    assert!(
        status
            .stdout
            .contains("digest:monthly (*/2 * * * * *): next run"),
        "{status}"
    );
    assert!(status.stdout.contains("ingest (*/10 * * * *)"), "{status}");
    assert!(status.stdout.contains("(ok)"), "{status}");

    let (code, log) = service.stop();
    assert_eq!(code, 0, "exit status after SIGTERM:\n{log}");
    let mail = smtp.by_recipient();
    assert_eq!(mail["ada@example.org"].len(), 1, "{mail:?}");
    assert_eq!(mail["bo@example.org"].len(), 1);
    assert!(
        !mail.contains_key("cy@example.org"),
        "nothing new for gamma"
    );
    assert!(mail["ada@example.org"][0].html.contains("Vatten i Kisumu"));
    assert!(!mail["ada@example.org"][0].html.contains("Skolor i Hoi An"));
    // The log has every job run and delivery batch with its figures …
    for line in ["job done", "delivery batch", "sent=2", "ingest", "stopped"] {
        assert!(log.contains(line), "no `{line}` in the log:\n{log}");
    }
    // … and no secret, and no subscriber address.
    for secret in [SECRET, API_TOKEN, "ada@example.org", "bo@example.org"] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

#[test]
fn run_resumes_an_edition_left_unfinished_and_sends_no_one_twice() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let site = scheduled_site(&smtp.transport(), "0 8 1 1 *", "");
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    site.build();
    for who in ["ada", "bo", "cy", "di"] {
        subscribe(&site, &format!("{who}@example.org"), "alpha");
    }
    ok(site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]));
    assert_eq!(smtp.count(), 4);
    // As if the process had died after sending to ada and bo: the other
    // two rows are still pending and the edition is not complete.
    site.sql(&[
        "UPDATE deliveries SET status = 'pending', attempts = 0, finished_at = NULL
         WHERE subscriber_id IN (SELECT id FROM subscribers
                                 WHERE email IN ('cy@example.org', 'di@example.org'))",
        "UPDATE editions SET completed_at = NULL",
    ]);
    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    assert!(
        wait_until(20, || smtp.count() >= 6),
        "the unfinished edition was not resumed:\n{}",
        service.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("resuming"), "{log}");
    let mail = smtp.by_recipient();
    for who in ["ada", "bo", "cy", "di"] {
        let address = format!("{who}@example.org");
        let n = mail[&address].len();
        let expected = if matches!(who, "cy" | "di") { 2 } else { 1 };
        assert_eq!(n, expected, "{address}: {n} messages");
    }
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(status.stdout.contains("4 sent, 0 failed"), "{status}");
    assert!(!status.stdout.contains("unfinished"), "{status}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let site = Site::sample();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let config = config.replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(site.config_path(), free_metrics_port(&config)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["--log-format", "json", "--config"])
        .arg(site.config_path())
        .arg("run")
        .current_dir(site.root())
        .env_remove("TIDINGS_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ingest = lines
        .iter()
        .find(|l| l["fields"]["message"] == "ingest" && l["fields"]["why"] == "start")
        .unwrap_or_else(|| panic!("no ingest line in:\n{log}"));
    assert_eq!(ingest["level"], "INFO");
    assert!(ingest["fields"]["published"].as_u64().unwrap() > 10);
    assert!(lines.iter().any(|l| l["fields"]["message"] == "stopped"));
}

#[test]
fn run_refuses_digests_without_mail() {
    let site = Site::new();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        format!("{config}\n[[digests]]\nid = \"monthly\"\ntitle = \"Monthly\"\n"),
    )
    .unwrap();
    let run = site.tidings(&["run"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("no [mail]"), "{run}");
}

/// A port in use (the public one, or the metrics one) fails `run` before
/// it opens the store or ingests: at once, naming the address and the
/// key, with nothing written.
#[test]
fn a_busy_port_fails_run_at_once_and_changes_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    for (key, listen, metrics) in [
        (
            "listen",
            format!("127.0.0.1:{port}"),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "metrics_listen",
            "127.0.0.1:0".to_owned(),
            format!("127.0.0.1:{port}"),
        ),
    ] {
        // The sample site: dozens of stories that an ingest would store and
        // write feeds for.
        let site = Site::sample();
        let config = std::fs::read_to_string(site.config_path()).unwrap();
        let config = config.replace(
            "listen = \"127.0.0.1:8080\"",
            &format!("listen = \"{listen}\"\nmetrics_listen = \"{metrics}\""),
        );
        std::fs::write(site.config_path(), config).unwrap();
        let started = Instant::now();
        let run = site.tidings(&["run"]);
        let took = started.elapsed();
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr
                .contains(&format!("cannot listen on 127.0.0.1:{port} ([http] {key})")),
            "{run}"
        );
        assert!(run.stdout.is_empty(), "{run}");
        assert!(
            took < Duration::from_secs(10),
            "{took:?}: it ingested first?"
        );
        assert!(!site.path("feeds").exists(), "no feed file is written");
        assert!(!site.store_exists(), "the store is not even made");
    }
    drop(busy);
}

#[test]
fn sigterm_mid_send_lets_in_flight_sends_finish_and_a_restart_sends_the_rest() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let site = scheduled_site(&smtp.transport(), "* * * * * *", "concurrency = 2");
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    site.build();
    // Each DATA reply waits 0.2 s: 60 people, two at a time, take ~6 s.
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain((0..60).map(|i| format!("slow-{i:03}@example.org,alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));

    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    assert!(
        wait_until(30, || smtp.count() >= 6),
        "the send did not start:\n{}",
        service.log()
    );
    let stopping = Instant::now();
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "a stop waits for the sends in flight, not for the whole edition"
    );
    let sent = smtp.count();
    assert!(sent < 60, "stopped before the end ({sent} sent)");
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(status.stdout.contains("(unfinished)"), "{status}");
    assert!(
        status.stdout.contains(&format!("{sent} sent")),
        "every message that left is marked sent, none is left `sending`: {status}"
    );

    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    assert!(
        wait_until(60, || smtp.count() >= 60),
        "the restart did not finish the edition:\n{}",
        service.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    let mail = smtp.by_recipient();
    assert_eq!(mail.len(), 60);
    assert!(
        mail.values().all(|m| m.len() == 1),
        "no one twice, no one skipped"
    );
}
