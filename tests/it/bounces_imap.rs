//! The bounce mailbox over IMAP, with real servers: Dovecot holds the
//! mailbox (reports put into it with IMAP APPEND from the fixtures of
//! `tests/fixtures/bounces/`, re-addressed to the VERP addresses of a
//! digest just sent), `tidings bounces fetch` and the `bounces` job of
//! `tidings run` read it, and Python's imaplib checks what is left where.
//! End to end, a real Postfix accepts a digest for a local address that
//! does not exist, bounces it by email to the VERP address, and delivers
//! the bounce into the Dovecot mailbox, where tidings finds it.

use crate::support::{
    Dovecot, IMAP_PASSWORD, Listed, Postfix, Site, block_on, client, envelope_sender, free_port,
    get, ok, sent_bounce_site, wait_until,
};

/// The VERP address and the recipient in the fixtures.
const FIXTURE_VERP: &str = "bounces+7-42-1-u5c7nq3sz6iuwwne@goda-exempel.example.org";
const FIXTURE_RECIPIENT: &str = "anna@example.se";
const PROCESSED: &str = "tidings-processed";
const PASSWORD: (&str, &str) = ("TIDINGS_BOUNCES_PASSWORD", IMAP_PASSWORD);

/// A digest site whose `[bounces]` has a return path and `mailbox` (with
/// `extra` lines), a story, `people` subscribed, after one `digest send`
/// through `transport`.
fn sent_site(transport: &str, mailbox: &str, extra: &str, people: &[&str]) -> Site {
    sent_bounce_site(
        transport,
        &format!("mailbox = \"{mailbox}\"\n{extra}"),
        people,
    )
}

/// The fixture `name` as a report about the message to `to` sent with
/// envelope sender `verp`.
fn report(name: &str, verp: &str, to: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/bounces/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace(FIXTURE_VERP, verp)
        .replace(FIXTURE_RECIPIENT, to)
        .into_bytes()
}

fn status_of(site: &Site, email: &str) -> String {
    let list = ok(site.tidings(&["subscribers", "list"]));
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{email}\t")))
        .unwrap_or_else(|| panic!("{email} not listed:\n{list}"));
    line.split('\t').nth(1).unwrap().to_owned()
}

/// The `X-Test` names of `listed`, sorted.
fn names(listed: &[Listed]) -> Vec<String> {
    let mut names: Vec<String> = listed.iter().map(|l| l.test.clone()).collect();
    names.sort();
    names
}

/// The line `bounces fetch` printed for `uid`.
fn line_for(stdout: &str, uid: u32) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("UID {uid}: ")))
        .unwrap_or_else(|| panic!("UID {uid} not reported:\n{stdout}"))
        .to_owned()
}

#[test]
fn fetch_acts_on_verified_reports_moves_them_and_leaves_the_rest_untouched() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let people = ["ann@example.org", "bo@example.org", "cy@example.org"];
    let site = sent_site("file:outbox", &dovecot.url("INBOX"), "", &people);
    let [ann, bo, cy] = people.map(|p| envelope_sender(&site, p));
    let hard = dovecot.append(
        "INBOX",
        "hard",
        &report("postfix-hard.eml", &ann, "ann@example.org"),
    );
    let away = dovecot.append(
        "INBOX",
        "away",
        &report("autoreply-en.eml", &ann, "ann@example.org"),
    );
    let arf = dovecot.append(
        "INBOX",
        "arf",
        &report("arf-complaint.eml", &bo, "bo@example.org"),
    );
    let stranger = dovecot.append(
        "INBOX",
        "stranger",
        &report("stranger.eml", &ann, "ann@example.org"),
    );
    // Not re-addressed: its token is of another site's key.
    let forged = dovecot.append(
        "INBOX",
        "forged",
        &report("forged-token.eml", FIXTURE_VERP, FIXTURE_RECIPIENT),
    );
    let soft = dovecot.append(
        "INBOX",
        "soft",
        &report("exim-delayed.eml", &cy, "cy@example.org"),
    );

    // Without the password: a clear error, and nothing read.
    let run = site.tidings(&["bounces", "fetch"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("TIDINGS_BOUNCES_PASSWORD"), "{run}");
    assert!(run.stderr.contains("`bounces`"), "{run}");
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(check.stderr.contains("`bounces.mailbox`"), "{check}");
    assert!(check.stderr.contains("TIDINGS_BOUNCES_PASSWORD"), "{check}");
    // A wrong one: the server and the user are named, the password never.
    let run = site.tidings_env(
        &["bounces", "fetch"],
        &[("TIDINGS_BOUNCES_PASSWORD", "wrong horse")],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "the bounce mailbox 127.0.0.1:{} (user `bounces`) refused the login",
            dovecot.port
        )),
        "{run}"
    );
    assert!(!run.stderr.contains("wrong horse"), "{run}");
    assert_eq!(dovecot.list("INBOX").len(), 6);

    let run = ok(site.tidings_env(&["bounces", "fetch"], &[PASSWORD]));
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!(
            "imap://bounces@127.0.0.1:{}/INBOX?tls=none\n",
            dovecot.port
        )),
        "{run}"
    );
    assert!(
        line_for(out, hard).contains("matched: hard bounce"),
        "{run}"
    );
    assert!(
        line_for(out, hard).contains("marked bounced; moved"),
        "{run}"
    );
    assert!(line_for(out, away).contains("auto-reply"), "{run}");
    assert!(
        line_for(out, arf).contains("unsubscribed (complaint); moved"),
        "{run}"
    );
    assert!(
        line_for(out, stranger).contains("not a bounce report"),
        "{run}"
    );
    assert!(line_for(out, forged).contains("unmatched"), "{run}");
    assert!(line_for(out, soft).contains("soft bounce 1 of 3"), "{run}");
    assert!(line_for(out, soft).ends_with("; moved"), "{run}");
    assert!(
        out.contains(
            "6 new message(s) read: 3 matched, 3 moved to tidings-processed, 3 left alone"
        ),
        "{run}"
    );
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");
    assert_eq!(status_of(&site, "cy@example.org"), "active");
    let list = ok(site.tidings(&["bounces", "list"]));
    assert_eq!(list.stdout.lines().count(), 4, "{list}");
    assert!(list.stdout.contains("\thard\tann@example.org\t"), "{list}");
    assert!(
        list.stdout.contains("\tcomplaint\tbo@example.org\t"),
        "{list}"
    );
    assert!(list.stdout.contains("\tsoft\tcy@example.org\t"), "{list}");

    // Over IMAP: the reports acted on are in the processed folder (made
    // for them), the rest still in the inbox, unread and unflagged.
    assert!(dovecot.folders().iter().any(|f| f == PROCESSED));
    assert_eq!(names(&dovecot.list(PROCESSED)), ["arf", "hard", "soft"]);
    let inbox = dovecot.list("INBOX");
    assert_eq!(names(&inbox), ["away", "forged", "stranger"]);
    for message in &inbox {
        assert!(message.flags.is_empty(), "{message:?}");
    }

    // A second fetch reads nothing new and changes nothing.
    let again = ok(site.tidings_env(&["bounces", "fetch"], &[PASSWORD]));
    assert!(
        again.stdout.contains("0 new message(s) read: 0 matched"),
        "{again}"
    );
    assert_eq!(dovecot.list("INBOX"), inbox);
    assert_eq!(dovecot.list(PROCESSED).len(), 3);
    let list_again = ok(site.tidings(&["bounces", "list"]));
    assert_eq!(list_again.stdout, list.stdout);

    // A copy of a report already recorded (byte for byte) is moved too;
    // `--all` reads the rest again and still leaves it alone.
    let copy = dovecot.append(
        "INBOX",
        "hard",
        &report("postfix-hard.eml", &ann, "ann@example.org"),
    );
    let all = ok(site.tidings_env(&["bounces", "fetch", "--all"], &[PASSWORD]));
    assert!(
        line_for(&all.stdout, copy).contains("already recorded as event 1, nothing done; moved"),
        "{all}"
    );
    assert!(
        all.stdout
            .contains("4 new message(s) read: 1 matched, 1 moved"),
        "{all}"
    );
    assert_eq!(dovecot.list("INBOX"), inbox);
    assert_eq!(dovecot.list(PROCESSED).len(), 4);
    let list_all = ok(site.tidings(&["bounces", "list"]));
    assert_eq!(list_all.stdout, list.stdout);
}

#[test]
fn without_move_the_reports_are_copied_and_only_they_expunged() {
    // A server that offers neither MOVE nor (so) anything but UIDPLUS.
    let Some(dovecot) = Dovecot::start_with(
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS",
        false,
    ) else {
        return;
    };
    let site = sent_site(
        "file:outbox",
        &dovecot.url("INBOX"),
        "processed_folder = \"Done reports\"\n",
        &["ann@example.org"],
    );
    let ann = envelope_sender(&site, "ann@example.org");
    let stranger = dovecot.append(
        "INBOX",
        "stranger",
        &report("stranger.eml", &ann, "ann@example.org"),
    );
    let hard = dovecot.append(
        "INBOX",
        "hard",
        &report("gmail-hard.eml", &ann, "ann@example.org"),
    );
    // A message over the size read at most is not read at all.
    let mut huge = report("postfix-hard.eml", &ann, "ann@example.org");
    huge.extend(std::iter::repeat_n(b'x', 5 << 20));
    let huge = dovecot.append("INBOX", "huge", &huge);
    let run = ok(site.tidings_env(&["bounces", "fetch"], &[PASSWORD]));
    assert!(
        line_for(&run.stdout, hard).contains("marked bounced; moved"),
        "{run}"
    );
    assert!(
        line_for(&run.stdout, huge).contains("over the 4 MiB read at most: left alone"),
        "{run}"
    );
    assert!(
        line_for(&run.stdout, stranger).contains("not a bounce report"),
        "{run}"
    );
    assert_eq!(names(&dovecot.list("Done reports")), ["hard"]);
    let inbox = dovecot.list("INBOX");
    assert_eq!(names(&inbox), ["huge", "stranger"]);
    for message in &inbox {
        assert!(message.flags.is_empty(), "{message:?}");
    }
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
}

#[test]
fn an_unreachable_mailbox_is_an_error_naming_server_and_user() {
    let port = free_port();
    let site = sent_site(
        "file:outbox",
        &format!("imap://reports%40example.org@127.0.0.1:{port}/INBOX?tls=none"),
        "",
        &["ann@example.org"],
    );
    let run = site.tidings_env(&["bounces", "fetch"], &[PASSWORD]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the bounce mailbox 127.0.0.1:{port} (user `reports@example.org`)"
        )),
        "{run}"
    );
    assert!(!run.stderr.contains(IMAP_PASSWORD), "{run}");
    // `run` does not start without the password.
    let run = site.tidings(&["run"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("TIDINGS_BOUNCES_PASSWORD"), "{run}");
    // With it, `run` starts; the failing job is logged and recorded, and
    // tried again at the next tick while the rest goes on.
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!("{config}schedule = \"* * * * * *\"\n"));
    let service = site.serve(&[PASSWORD]);
    let failed = wait_until(20, || service.log().matches("job failed").count() >= 2);
    assert!(failed, "{}", service.log());
    let url = service.url("/");
    let page = block_on(|| async move { get(&client(), &url).await });
    assert_eq!(page.status, 200, "{}", service.log());
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("cannot connect to the bounce mailbox"),
        "{log}"
    );
    assert!(!log.contains(IMAP_PASSWORD), "{log}");
    let status = ok(site.tidings(&["status"]));
    assert!(
        status
            .stdout
            .contains("cannot connect to the bounce mailbox"),
        "{status}"
    );
}

#[test]
fn tls_and_starttls_check_the_certificate() {
    let Some(dovecot) = Dovecot::start_with("", true) else {
        return;
    };
    let tls_port = dovecot.tls_port.unwrap();
    let site = sent_site(
        "file:outbox",
        &format!("imap://bounces@127.0.0.1:{tls_port}/INBOX"),
        "",
        &["ann@example.org"],
    );
    // Dovecot's certificate is self-signed: both modes refuse it, after a
    // handshake that got as far as the certificate.
    let run = site.tidings_env(&["bounces", "fetch"], &[PASSWORD]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "TLS with the bounce mailbox 127.0.0.1:{tls_port} (user `bounces`) failed"
        )),
        "{run}"
    );
    assert!(run.stderr.contains("certificate"), "{run}");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace(
        &format!("127.0.0.1:{tls_port}/INBOX"),
        &format!("127.0.0.1:{}/INBOX?tls=starttls", dovecot.port),
    ));
    let run = site.tidings_env(&["bounces", "fetch"], &[PASSWORD]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "TLS with the bounce mailbox 127.0.0.1:{} (user `bounces`) failed",
            dovecot.port
        )),
        "{run}"
    );
    assert!(run.stderr.contains("certificate"), "{run}");
}

#[test]
fn the_service_reads_the_mailbox_on_its_schedule() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let site = sent_site(
        "file:outbox",
        &dovecot.url("INBOX"),
        "schedule = \"* * * * * *\"\n",
        &["ann@example.org", "bo@example.org"],
    );
    let ann = envelope_sender(&site, "ann@example.org");
    let service = site.serve(&[PASSWORD]);
    dovecot.append(
        "INBOX",
        "away",
        &report("autoreply-sv.eml", &ann, "ann@example.org"),
    );
    dovecot.append(
        "INBOX",
        "hard",
        &report("exim-hard.eml", &ann, "ann@example.org"),
    );
    let moved = wait_until(30, || {
        dovecot.folders().iter().any(|f| f == PROCESSED) && dovecot.list(PROCESSED).len() == 1
    });
    assert!(moved, "{}", service.log());
    assert!(
        service.wait_for_log("bounce mailbox read", 10),
        "{}",
        service.log()
    );
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("job=bounces"), "{log}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    assert_eq!(status_of(&site, "bo@example.org"), "active");
    assert_eq!(names(&dovecot.list("INBOX")), ["away"]);
    let status = ok(site.tidings(&["status"]));
    assert!(
        status.stdout.contains("  bounces (* * * * * *): next run"),
        "{status}"
    );
}

#[test]
fn a_postfix_bounce_of_a_digest_reaches_the_mailbox_and_marks_the_subscriber() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let Some(postfix) = Postfix::start(&dovecot, "members.tidings.test", "example.org") else {
        return;
    };
    // A stranger's mail to the bounce address is in the mailbox first.
    dovecot.append(
        "INBOX",
        "stranger",
        &report("stranger.eml", "bounces@example.org", "x@example.org"),
    );
    let gone = "reader-gone@members.tidings.test";
    let site = sent_site(&postfix.transport(), &dovecot.url("INBOX"), "", &[gone]);
    // Postfix accepted it, then bounces it by email to the VERP address,
    // which it delivers into the mailbox.
    let arrived = wait_until(60, || dovecot.list("INBOX").len() == 2);
    assert!(
        arrived,
        "no bounce in the mailbox:\n{}\n{}",
        postfix.log(),
        dovecot.log()
    );
    let log = postfix.log();
    assert!(log.contains("status=bounced"), "{log}");
    assert!(log.contains("relay=dovecot"), "{log}");
    assert_eq!(status_of(&site, gone), "active");

    let run = ok(site.tidings_env(&["bounces", "fetch"], &[PASSWORD]));
    assert!(run.stdout.contains("matched: hard bounce"), "{run}");
    assert!(run.stdout.contains("marked bounced; moved"), "{run}");
    assert!(run.stdout.contains("not a bounce report"), "{run}");
    assert_eq!(status_of(&site, gone), "bounced");
    let list = ok(site.tidings(&["bounces", "list"]));
    assert!(list.stdout.contains(&format!("\thard\t{gone}\t")), "{list}");
    assert!(list.stdout.contains("unknown user"), "{list}");
    assert_eq!(dovecot.list(PROCESSED).len(), 1);
    assert_eq!(names(&dovecot.list("INBOX")), ["stranger"]);
}
