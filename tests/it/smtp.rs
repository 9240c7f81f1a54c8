//! Sending through a real SMTP server (Python's aiosmtpd, started here on a
//! free loopback port by `tests/smtpserver.py`): messages read back and
//! parsed as MIME, temporary failures retried, permanent ones bounced, and
//! a sender killed mid-edition that resumes with nobody skipped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Site, SmtpServer, digest_site, ok, recent, subscribe};

/// A digest site sending to `server`, with `extra` lines in [mail].
fn smtp_site(server: &SmtpServer, extra: &str) -> Site {
    let site = digest_site(&server.transport());
    if !extra.is_empty() {
        let config = std::fs::read_to_string(site.config_path()).unwrap();
        let config = config.replace("rate_limit = 0\n", &format!("rate_limit = 0\n{extra}\n"));
        std::fs::write(site.config_path(), config).unwrap();
    }
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    recent(&site, "b1", "Beta one", 1, &["beta"]);
    site.build();
    site
}

/// Runs `digest send` with fast retries.
fn send(site: &Site) -> crate::support::Run {
    send_env(site, &[])
}

/// [`send`] with `env` set.
fn send_env(site: &Site, env: &[(&str, &str)]) -> crate::support::Run {
    site.tidings_env(
        &["digest", "send"],
        &[
            &[
                ("TIDINGS_BACKOFF_SECONDS", "0"),
                ("TIDINGS_LEASE_SECONDS", "1"),
            ],
            env,
        ]
        .concat(),
    )
}

/// Sets `[mail] transport` of a site made by [`digest_site`].
fn set_transport(site: &Site, transport: &str) {
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let (before, rest) = config.split_once("transport = \"").unwrap();
    let (_, after) = rest.split_once('"').unwrap();
    std::fs::write(
        site.config_path(),
        format!("{before}transport = \"{transport}\"{after}"),
    )
    .unwrap();
}

/// Every delivery row as (status, attempts counted), in id order.
fn deliveries(site: &Site) -> Vec<(String, i64)> {
    use sqlx::Connection as _;
    use tidings::config::StorageUrl;
    let url = site.storage_url();
    crate::support::block_on(|| async move {
        let query = "SELECT status, CAST(attempts AS BIGINT) FROM deliveries ORDER BY id";
        match &url {
            StorageUrl::Sqlite(path) => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
            }
            StorageUrl::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
            }
        }
    })
}

/// Asserts that a send stopped on a setup error: exit 1 with one message
/// naming `[mail] transport` and saying `says`, nothing sent, nothing
/// failed, and every row pending with no attempt counted.
fn assert_stopped_untouched(
    site: &Site,
    server: &SmtpServer,
    run: &crate::support::Run,
    says: &str,
) {
    assert_eq!(run.code, 1, "{run}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one message:\n{run}");
    assert!(errors[0].starts_with("error: [mail] transport: "), "{run}");
    assert!(run.stderr.contains(says), "expected {says:?}:\n{run}");
    assert!(
        run.stderr
            .contains("nothing more was sent: 3 of 3 deliveries of edition 1"),
        "{run}"
    );
    assert!(!run.stdout.contains("failed"), "no row failed:\n{run}");
    assert_eq!(server.count(), 0, "nothing reached the server");
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("0 sent, 0 failed, 0 skipped, 3 pending, 0 sending (unfinished)"),
        "{status}"
    );
    let rows = deliveries(site);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|(status, attempts)| status == "pending" && *attempts == 0),
        "every row pending, untried: {rows:?}"
    );
}

/// A digest site with three subscribers and two stories, sending to
/// `transport`.
fn three_subscribers(transport: &str) -> Site {
    let site = digest_site(transport);
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    site.build();
    for who in ["ann@example.org", "bo@example.org", "cy@example.org"] {
        subscribe(&site, who, "alpha");
    }
    site
}

#[test]
fn a_relay_without_the_tls_the_transport_requires_stops_the_send_and_loses_nothing() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    // `smtp://` requires STARTTLS, which this server does not offer.
    let site = three_subscribers(&format!("smtp://127.0.0.1:{}", server.port));
    let run = send(&site);
    assert!(run.stdout.contains("froze edition 1"), "{run}");
    assert_stopped_untouched(
        &site,
        &server,
        &run,
        &format!(
            "does not offer STARTTLS, which the transport requires (`smtp://` without `?tls=` \
             means `?tls=starttls`). To fix: if the relay runs on this host and takes mail \
             unencrypted, set transport = \"smtp://127.0.0.1:{}?tls=none\"",
            server.port
        ),
    );
    // Why the rows wait is noted on them.
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("not sent to ann@example.org: pending: [mail] transport: "),
        "{status}"
    );

    // TLS from the first byte, to a server that speaks none: the handshake
    // fails, and that stops the send the same way.
    set_transport(&site, &format!("smtp://127.0.0.1:{}?tls=tls", server.port));
    let run = send(&site);
    assert!(run.stdout.contains("resuming edition 1"), "{run}");
    assert_stopped_untouched(&site, &server, &run, "TLS failed");

    // STARTTLS offered, with a certificate no client trusts.
    let Some(untrusted) = SmtpServer::start_with_self_signed_starttls() else {
        return;
    };
    set_transport(&site, &format!("smtp://127.0.0.1:{}", untrusted.port));
    let run = send(&site);
    assert_stopped_untouched(&site, &untrusted, &run, "STARTTLS failed");
    assert!(run.stderr.contains("invalid peer certificate"), "{run}");

    // TLS from the first byte, with a certificate no client trusts.
    let Some(untrusted) = SmtpServer::start_with_self_signed_tls() else {
        return;
    };
    set_transport(
        &site,
        &format!("smtp://127.0.0.1:{}?tls=tls", untrusted.port),
    );
    let run = send(&site);
    assert_stopped_untouched(&site, &untrusted, &run, "TLS failed");
    assert!(run.stderr.contains("invalid peer certificate"), "{run}");

    // Fixed: everyone gets it, once.
    set_transport(&site, &server.transport());
    let run = ok(send(&site));
    assert!(run.stdout.contains("3 sent, 0 failed, 0 skipped"), "{run}");
    let mail = server.by_recipient();
    assert_eq!(
        mail.keys().collect::<Vec<_>>(),
        ["ann@example.org", "bo@example.org", "cy@example.org"]
    );
    assert!(mail.values().all(|m| m.len() == 1), "each once");
    let rows = deliveries(&site);
    assert!(
        rows.iter()
            .all(|(s, attempts)| s == "sent" && *attempts == 1),
        "one attempt each: {rows:?}"
    );
}

#[test]
fn a_refused_or_missing_login_stops_the_send_and_loses_nothing() {
    let Some(server) = SmtpServer::start_with_auth("news", "right horse") else {
        return;
    };
    let with_user = format!("smtp://news@127.0.0.1:{}?tls=none", server.port);
    let site = three_subscribers(&with_user);
    let run = send_env(&site, &[("TIDINGS_SMTP_PASSWORD", "wrong horse")]);
    assert_stopped_untouched(&site, &server, &run, "the server refused the login (PLAIN)");
    assert!(run.stderr.contains("535"), "the server's reply: {run}");
    assert!(run.stderr.contains("TIDINGS_SMTP_PASSWORD"), "{run}");
    assert!(
        !run.stderr.contains("wrong horse"),
        "no password shown: {run}"
    );

    // No user at all: the server refuses mail without a login (530).
    set_transport(&site, &server.transport());
    let run = send(&site);
    assert_stopped_untouched(
        &site,
        &server,
        &run,
        "the server takes no mail without a login or encryption",
    );

    set_transport(&site, &with_user);
    let run = ok(send_env(&site, &[("TIDINGS_SMTP_PASSWORD", "right horse")]));
    assert!(run.stdout.contains("3 sent, 0 failed, 0 skipped"), "{run}");
    let mail = server.by_recipient();
    assert_eq!(mail.len(), 3);
    assert!(mail.values().all(|m| m.len() == 1), "each once");
}

#[test]
fn messages_go_through_smtp_with_the_right_stories() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = smtp_site(&server, "");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "beta,alpha");
    subscribe(&site, "cy@example.org", "gamma");
    let run = ok(send(&site));
    assert!(run.stdout.contains("2 stories, 2 recipients"), "{run}");
    assert!(run.stdout.contains("2 sent, 0 failed, 0 skipped"), "{run}");
    let mail = server.by_recipient();
    assert_eq!(
        mail.keys().collect::<Vec<_>>(),
        ["ann@example.org", "bo@example.org"]
    );
    let ann = &mail["ann@example.org"][0];
    assert!(ann.html.contains("Alpha one") && !ann.html.contains("Beta one"));
    let bo = &mail["bo@example.org"][0];
    assert!(bo.html.contains("Alpha one") && bo.html.contains("Beta one"));
    assert_eq!(
        bo.headers["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("2 sent, 0 failed, 0 skipped, 0 pending, 0 sending"),
        "{status}"
    );
    // Sent again: nothing more.
    ok(send(&site));
    assert_eq!(server.count(), 2);
}

/// Sends `message` through `server` with the transport `digest send` uses,
/// set up from a site's `[mail]`; returns the relay's reply.
fn send_one(server: &SmtpServer, message: &lettre::Message) -> String {
    let site = digest_site(&server.transport());
    let config = tidings::config::Config::load(&site.config_path()).unwrap();
    let sender = tidings::mail::transport::Sender::new(config.mail.as_ref().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(sender.send("dots@example.org", message))
        .unwrap()
}

#[test]
fn lines_that_begin_with_a_dot_arrive_as_written_whether_or_not_commands_are_grouped() {
    let (Some(grouped), Some(single)) =
        (SmtpServer::start(), SmtpServer::start_without_pipelining())
    else {
        return;
    };
    let message = |body: &str| {
        use lettre::message::header::ContentTransferEncoding;
        lettre::Message::builder()
            .from("news@example.org".parse().unwrap())
            .to("ann@example.org".parse().unwrap())
            .subject("Dots")
            .message_id(Some("<dots@example.org>".into()))
            .date(std::time::SystemTime::UNIX_EPOCH)
            // As written: 7bit for ASCII, 8bit for the rest.
            .header(if body.is_ascii() {
                ContentTransferEncoding::SevenBit
            } else {
                ContentTransferEncoding::EightBit
            })
            .body(body.to_owned())
            .unwrap()
    };
    // Lines of a dot alone, of two dots, a dot first; the SMTP end of
    // data (CRLF . CRLF) inside the message.
    let dots = message(".first\r\n..second\r\n.\r\nmiddle .\r\n. spaced\r\n\r\n.\r\nlast.");
    // Not ASCII: sent with 8BITMIME named, which lettre's own send does.
    let malmo = message(".Malmö\r\n.\r\nSkåne");
    for server in [&grouped, &single] {
        for m in [&dots, &malmo] {
            let reply = send_one(server, m);
            assert!(reply.starts_with("250 "), "{reply}");
        }
    }
    let (a, b) = (grouped.raw(), single.raw());
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "the same bytes arrive either way");
    for (raw, m) in a.iter().zip([&dots, &malmo]) {
        // The message, and the line end that comes before the final dot.
        assert_eq!(*raw, [m.formatted(), b"\r\n".to_vec()].concat());
    }
    let text = String::from_utf8(a[0].clone()).unwrap();
    assert!(
        text.contains("\r\n\r\n.first\r\n..second\r\n.\r\nmiddle .\r\n. spaced\r\n\r\n.\r\nlast."),
        "{text}"
    );
    // The ASCII message went grouped, the other through lettre's send.
    assert_eq!(grouped.commands(), ["grouped", "single"]);
    assert_eq!(single.commands(), ["single", "single"]);
}

#[test]
fn a_relay_that_refuses_a_second_ehlo_gets_its_messages_one_command_at_a_time() {
    let Some(server) = SmtpServer::start_with_one_ehlo() else {
        return;
    };
    let site = smtp_site(&server, "");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "beta");
    let run = ok(send(&site));
    assert!(run.stdout.contains("2 sent, 0 failed, 0 skipped"), "{run}");
    assert_eq!(server.by_recipient().len(), 2);
    // Its PIPELINING could not be learnt after the greeting: not used.
    assert_eq!(server.commands(), ["single", "single"]);
}

#[test]
fn temporary_failures_are_retried_and_permanent_ones_bounce() {
    if let Some(server) = SmtpServer::start() {
        failures_are_retried_and_bounce(&server, "grouped");
    }
}

#[test]
fn temporary_failures_are_retried_and_permanent_ones_bounce_without_pipelining() {
    if let Some(server) = SmtpServer::start_without_pipelining() {
        failures_are_retried_and_bounce(&server, "single");
    }
}

/// Five subscribers whom `server` treats each in its own way: 451 twice,
/// a dropped connection during DATA, 550, 451 for good, accepted; every
/// transaction's commands came as `commands` says ("grouped": MAIL, RCPT
/// and DATA in one write, to a relay that offers PIPELINING; "single").
fn failures_are_retried_and_bounce(server: &SmtpServer, commands: &str) {
    let site = smtp_site(server, "max_attempts = 3");
    subscribe(&site, "tempfail-2-ann@example.org", "alpha");
    subscribe(&site, "drop-1-bo@example.org", "alpha");
    subscribe(&site, "reject-cy@example.org", "alpha");
    subscribe(&site, "tempfail-9-dora@example.org", "alpha");
    subscribe(&site, "eve@example.org", "alpha");
    let run = send(&site);
    assert_eq!(run.code, 1, "failures make the exit code 1:\n{run}");
    assert!(run.stdout.contains("3 sent, 2 failed, 0 skipped"), "{run}");
    let mail = server.by_recipient();
    assert_eq!(
        mail.keys().collect::<Vec<_>>(),
        [
            "drop-1-bo@example.org",
            "eve@example.org",
            "tempfail-2-ann@example.org"
        ]
    );
    assert!(mail.values().all(|m| m.len() == 1), "each once");

    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("not sent to reject-cy@example.org: failed:"),
        "{status}"
    );
    assert!(status.stdout.contains("550"), "{status}");
    assert!(
        status
            .stdout
            .contains("not sent to tempfail-9-dora@example.org: failed: gave up after 3 attempts"),
        "{status}"
    );
    let bounced = ok(site.tidings(&["subscribers", "list", "--status", "bounced"]));
    assert!(
        bounced.stdout.contains("reject-cy@example.org"),
        "{bounced}"
    );
    assert!(
        !bounced.stdout.contains("dora"),
        "a temporary failure is no bounce: {bounced}"
    );

    // The next edition passes the bounced address over.
    recent(&site, "a2", "Alpha two", 0, &["alpha"]);
    site.build();
    let next = send(&site);
    assert!(next.stdout.contains("1 stories, 4 recipients"), "{next}");
    let seen = server.commands();
    assert!(
        !seen.is_empty() && seen.iter().all(|c| c == commands),
        "every transaction {commands}: {seen:?}"
    );
}

#[test]
fn a_sender_killed_mid_edition_resumes_with_nobody_skipped() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = smtp_site(&server, "concurrency = 4");
    let people: Vec<String> = (0..120)
        .map(|i| format!("slow-{i:03}@example.org"))
        .collect();
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain(people.iter().map(|p| format!("{p},alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));

    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .args(["digest", "send"])
        .env("TIDINGS_LEASE_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.count() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let before = server.count();
    assert!(before < people.len(), "killed before the end");

    // Someone not yet served leaves before the resume: they get nothing.
    let got: Vec<String> = server.by_recipient().into_keys().collect();
    let leaver = people
        .iter()
        .rev()
        .find(|p| !got.contains(p))
        .unwrap()
        .clone();
    site.sql(&[&format!(
        "UPDATE subscribers SET status = 'unsubscribed' WHERE email = '{leaver}'"
    )]);

    let run = ok(send(&site));
    assert!(run.stdout.contains("resuming edition 1"), "{run}");
    let mail = server.by_recipient();
    for p in &people {
        let n = mail.get(p).map_or(0, Vec::len);
        if *p == leaver {
            assert_eq!(n, 0, "{p} unsubscribed before their turn");
        } else {
            assert!(n >= 1, "{p} was skipped");
        }
    }
    let duplicates: usize = mail.values().map(|m| m.len() - 1).sum();
    // Of the 4 connections, each may have sent two rows not yet marked.
    assert!(
        duplicates <= 2 * 4,
        "{duplicates} duplicates: only in-flight rows may go twice"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(status.stdout.contains("0 pending, 0 sending"), "{status}");
    assert!(
        status.stdout.contains(&format!(
            "not sent to {leaver}: skipped: unsubscribed before sending"
        )),
        "{status}"
    );
}

#[test]
fn a_test_send_reaches_one_address_and_records_nothing() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = smtp_site(&server, "");
    subscribe(&site, "ann@example.org", "alpha");
    let run = ok(site.tidings(&[
        "digest",
        "test",
        "--to",
        "editor@example.org",
        "--language",
        "en",
    ]));
    assert!(
        run.stdout
            .contains("sent a test of monthly (2 stories) to editor@example.org: 250"),
        "{run}"
    );
    let mail = server.by_recipient();
    assert_eq!(mail.keys().collect::<Vec<_>>(), ["editor@example.org"]);
    let m = &mail["editor@example.org"][0];
    assert!(
        m.html.contains("Alpha one") && m.html.contains("Beta one"),
        "every theme"
    );
    assert!(m.subject.starts_with("[TEST] News "), "{}", m.subject);
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(status.stdout.contains("no editions yet"), "{status}");
    let bad = site.tidings(&["digest", "test", "--to", "not-an-address"]);
    assert_eq!(bad.code, 1, "{bad}");
}

#[test]
fn sigterm_stops_claiming_lets_in_flight_finish_and_the_rest_waits() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = smtp_site(&server, "concurrency = 2");
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain((0..60).map(|i| format!("slow-{i:03}@example.org,alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    let child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .args(["digest", "send"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.count() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = crate::support::Run::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "a graceful stop:\n{out}");
    assert!(out.stderr.contains("stopping: no new sends"), "{out}");
    assert!(out.stdout.contains("left for the next run"), "{out}");
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status.stdout.contains(" 0 sending"),
        "nothing left in flight: {status}"
    );
    let sent_before = server.count();
    assert!(sent_before < 60);

    let run = ok(send(&site));
    assert!(run.stdout.contains("resuming edition 1"), "{run}");
    let mail = server.by_recipient();
    assert_eq!(mail.len(), 60, "everyone, in the end");
    assert!(
        mail.values().all(|m| m.len() == 1),
        "a graceful stop sends nobody twice"
    );
}

#[test]
fn concurrency_and_rate_limit_are_honoured() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    // At most 3 connections at once.
    let site = smtp_site(&server, "concurrency = 3");
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain((0..24).map(|i| format!("slow-{i:03}@example.org,alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    ok(send(&site));
    let log = server.data_log();
    assert_eq!(log.len(), 24);
    let most_at_once = log
        .iter()
        .map(|(start, _)| log.iter().filter(|(s, e)| s <= start && start < e).count())
        .max()
        .unwrap();
    assert!(
        most_at_once <= 3,
        "{most_at_once} messages in flight at once, concurrency is 3"
    );
    assert!(most_at_once >= 2, "the connections work in parallel");

    // At most 4 messages a second. A slow machine can only make it slower,
    // so this bound cannot fail by chance.
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = smtp_site(&server, "");
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace("rate_limit = 0", "rate_limit = 4");
    std::fs::write(site.config_path(), config).unwrap();
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain((0..10).map(|i| format!("p{i:02}@example.org,alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    ok(send(&site));
    let starts: Vec<f64> = server.data_log().into_iter().map(|(s, _)| s).collect();
    assert_eq!(starts.len(), 10);
    for &t in &starts {
        let in_window = starts.iter().filter(|&&s| s >= t && s < t + 1.0).count();
        assert!(
            in_window <= 5,
            "{in_window} messages within one second at rate_limit = 4"
        );
    }
}

/// Runs `check --smtp` with `env` set.
fn check_smtp(site: &Site, env: &[(&str, &str)]) -> crate::support::Run {
    site.tidings_env(&["check", "--smtp"], env)
}

/// The step lines `check --smtp` printed, without their indentation.
fn step_lines(run: &crate::support::Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .collect()
}

#[test]
fn check_smtp_passes_every_step_on_a_working_relay_and_sends_nothing() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = three_subscribers(&server.transport());
    let run = ok(check_smtp(&site, &[]));
    let port = server.port;
    assert!(
        run.stdout.contains(&format!(
            "[mail] transport smtp://127.0.0.1:{port}?tls=none\n"
        )),
        "{run}"
    );
    let steps = step_lines(&run);
    assert_eq!(steps.len(), 5, "{run}");
    assert_eq!(steps[0], format!("connect: ok: 127.0.0.1:{port}"));
    assert!(
        steps[1].starts_with("EHLO: ok: the server calls itself `")
            && steps[1].contains("8BITMIME"),
        "{run}"
    );
    assert!(steps[2].starts_with("TLS: skipped: `?tls=none`"), "{run}");
    assert_eq!(
        steps[3],
        "AUTH: skipped: no user in the transport: messages go without a login"
    );
    assert_eq!(steps[4], "QUIT: ok");
    assert!(run.stdout.ends_with("[mail] transport: ok\n"), "{run}");

    // With a login.
    let Some(server) = SmtpServer::start_with_auth("news", "right horse") else {
        return;
    };
    let transport = format!("smtp://news@127.0.0.1:{}?tls=none", server.port);
    set_transport(&site, &transport);
    let run = ok(check_smtp(
        &site,
        &[("TIDINGS_SMTP_PASSWORD", "right horse")],
    ));
    let steps = step_lines(&run);
    assert!(steps[1].contains("offers AUTH PLAIN LOGIN"), "{run}");
    assert_eq!(steps[3], "AUTH: ok: logged in as `news` with PLAIN");
    assert_eq!(steps[4], "QUIT: ok");
    assert_eq!(server.count(), 0, "a check sends nothing");

    // The outbox of the `file:` transport.
    set_transport(&site, "file:outbox");
    let run = ok(check_smtp(&site, &[]));
    assert!(
        step_lines(&run)[0].starts_with("outbox: ok: messages are written as .eml files to "),
        "{run}"
    );
}

#[test]
fn check_smtp_fails_at_the_step_that_fails_and_says_what_to_do() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let port = server.port;
    let site = three_subscribers(&format!("smtp://127.0.0.1:{port}"));
    let failed_at = |run: &crate::support::Run, step: &str, says: &str| {
        assert_eq!(run.code, 1, "{run}");
        let steps = step_lines(run);
        let last = steps.last().unwrap();
        assert!(
            last.starts_with(&format!("{step}: FAILED: ")) && last.contains(says),
            "the last step is {step}, failed, saying {says:?}:\n{run}"
        );
        assert!(
            run.stderr.contains(&format!(
                "error: the [mail] transport check failed at {step}\n"
            )),
            "{run}"
        );
        assert!(
            !run.stdout.contains("QUIT"),
            "nothing after the failure:\n{run}"
        );
    };
    // STARTTLS required, not offered.
    let run = check_smtp(&site, &[]);
    assert!(step_lines(&run)[1].starts_with("EHLO: ok"), "{run}");
    failed_at(
        &run,
        "STARTTLS",
        &format!(
            "[mail] transport: 127.0.0.1:{port}: the server does not offer STARTTLS, which the \
             transport requires"
        ),
    );
    assert!(
        run.stdout.contains(&format!(
            "set transport = \"smtp://127.0.0.1:{port}?tls=none\""
        )),
        "{run}"
    );
    // STARTTLS offered, with a certificate no client trusts.
    let Some(untrusted) = SmtpServer::start_with_self_signed_starttls() else {
        return;
    };
    set_transport(&site, &format!("smtp://127.0.0.1:{}", untrusted.port));
    let run = check_smtp(&site, &[]);
    assert!(step_lines(&run)[1].contains("offers STARTTLS"), "{run}");
    failed_at(&run, "STARTTLS", "invalid peer certificate");
    // TLS from the first byte, to a server that speaks none.
    set_transport(&site, &format!("smtp://127.0.0.1:{port}?tls=tls"));
    failed_at(&check_smtp(&site, &[]), "TLS", "TLS failed");
    // Nobody listening.
    let closed = crate::support::free_port();
    set_transport(&site, &format!("smtp://127.0.0.1:{closed}?tls=none"));
    failed_at(
        &check_smtp(&site, &[]),
        "connect",
        "cannot connect to 127.0.0.1",
    );

    // A wrong password, and none at all.
    let Some(login) = SmtpServer::start_with_auth("news", "right horse") else {
        return;
    };
    set_transport(
        &site,
        &format!("smtp://news@127.0.0.1:{}?tls=none", login.port),
    );
    let run = check_smtp(&site, &[("TIDINGS_SMTP_PASSWORD", "wrong horse")]);
    failed_at(
        &run,
        "AUTH",
        "the server refused the login (PLAIN): permanent error (535)",
    );
    assert!(!run.stdout.contains("wrong horse"), "{run}");
    failed_at(
        &check_smtp(&site, &[]),
        "AUTH",
        "set its password in the environment variable TIDINGS_SMTP_PASSWORD",
    );

    // An outbox that cannot be a folder.
    std::fs::write(site.path("taken"), "a file").unwrap();
    set_transport(&site, "file:taken/outbox");
    failed_at(
        &check_smtp(&site, &[]),
        "outbox",
        "[mail] transport: cannot write",
    );
    assert_eq!(server.count() + untrusted.count() + login.count(), 0);
}
