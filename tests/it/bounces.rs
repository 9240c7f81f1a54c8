//! Bounces and complaints through the binary: a digest sent with `[bounces]
//! return_path` carries a VERP envelope sender (recorded in the outbox as
//! `Return-Path`), reports built from the fixtures of
//! `tests/fixtures/bounces/` for that address are imported with `bounces
//! import`, and the subscriber's status, the next digest, `bounces list`
//! and `bounces show` say what happened.

use crate::support::{
    Site, SmtpServer, digest_site, envelope_sender, ok, outbox, recent, sent_bounce_site, subscribe,
};

/// The VERP address and the recipient in the fixtures.
const FIXTURE_VERP: &str = "bounces+7-42-1-u5c7nq3sz6iuwwne@goda-exempel.example.org";
const FIXTURE_RECIPIENT: &str = "anna@example.se";

/// A digest site with `[bounces]` (and `extra` lines in it), a story and
/// `people` subscribed to it, after one `digest send`.
fn sent_site(extra: &str, people: &[&str]) -> Site {
    sent_bounce_site("file:outbox", extra, people)
}

/// The fixture `name` as a report about the message to `to` sent with
/// envelope sender `verp`, written into the site as `file`.
fn report(site: &Site, name: &str, verp: &str, to: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/bounces/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .replace(FIXTURE_VERP, verp)
        .replace(FIXTURE_RECIPIENT, to);
    std::fs::write(site.path(file), text).unwrap();
    file.to_owned()
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

#[test]
fn a_hard_bounce_marks_the_subscriber_and_the_next_digest_passes_them_over() {
    let site = sent_site("", &["ann@example.org", "bo@example.org"]);
    let verp = envelope_sender(&site, "ann@example.org");
    assert!(
        verp.starts_with("bounces+") && verp.ends_with("@example.org"),
        "{verp}"
    );
    let local = verp.split('@').next().unwrap();
    assert!(local.len() <= 64, "{verp}");
    assert_ne!(verp, envelope_sender(&site, "bo@example.org"));
    // The From header stays the site's.
    let mail = outbox(&site);
    assert!(mail["ann@example.org"][0].headers["from"].contains("news@example.org"));

    let file = report(
        &site,
        "postfix-hard.eml",
        &verp,
        "ann@example.org",
        "dsn.eml",
    );
    let run = ok(site.tidings(&["bounces", "import", &file]));
    assert!(
        run.stdout.contains("dsn.eml: matched: hard bounce"),
        "{run}"
    );
    assert!(run.stdout.contains("marked bounced"), "{run}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    assert_eq!(status_of(&site, "bo@example.org"), "active");

    // The same report again is recorded once.
    let again = ok(site.tidings(&["bounces", "import", &file]));
    assert!(
        again.stdout.contains("already recorded as event 1"),
        "{again}"
    );

    let list = ok(site.tidings(&["bounces", "list"]));
    let rows: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert!(rows[0].starts_with("1\t"), "{list}");
    assert!(rows[0].contains("\thard\tann@example.org\t"), "{list}");
    assert!(rows[0].contains("User unknown"), "{list}");
    let show = ok(site.tidings(&["bounces", "show", "1"]));
    assert!(show.stdout.contains("kind:       hard"), "{show}");
    assert!(show.stdout.contains("action:     marked bounced"), "{show}");
    assert!(show.stdout.contains("Status: 5.1.1"), "{show}");
    assert!(show.stdout.contains("X-Postfix-Queue-ID"), "{show}");
    let missing = site.tidings(&["bounces", "show", "99"]);
    assert_eq!(missing.code, 1, "{missing}");

    // The next edition goes to bo only.
    recent(&site, "a2", "Alpha two", 0, &["alpha"]);
    site.build();
    let run = ok(site.tidings(&["digest", "send"]));
    assert!(run.stdout.contains("1 sent"), "{run}");
    let mail = outbox(&site);
    assert_eq!(mail["ann@example.org"].len(), 1);
    assert_eq!(mail["bo@example.org"].len(), 2);
}

#[test]
fn a_complaint_unsubscribes_and_auto_replies_and_strangers_change_nothing() {
    let site = sent_site("", &["ann@example.org", "bo@example.org"]);
    let ann = envelope_sender(&site, "ann@example.org");
    let bo = envelope_sender(&site, "bo@example.org");
    let files = [
        report(
            &site,
            "autoreply-en.eml",
            &ann,
            "ann@example.org",
            "away.eml",
        ),
        report(
            &site,
            "autoreply-sv.eml",
            &ann,
            "ann@example.org",
            "borta.eml",
        ),
        // Not re-addressed: its token is of another site's key.
        report(
            &site,
            "forged-token.eml",
            FIXTURE_VERP,
            FIXTURE_RECIPIENT,
            "forged.eml",
        ),
        // Ann's token on a report naming bo does not make it bo's.
        report(
            &site,
            "stranger.eml",
            &ann,
            "ann@example.org",
            "stranger.eml",
        ),
        report(&site, "arf-complaint.eml", &bo, "bo@example.org", "arf.eml"),
    ];
    let mut args = vec!["bounces", "import"];
    args.extend(files.iter().map(String::as_str));
    let run = ok(site.tidings(&args));
    let said = |file: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{file}: ")))
            .unwrap_or_else(|| panic!("{file} not reported:\n{run}"))
            .to_owned()
    };
    assert!(said("away.eml").contains("auto-reply"), "{run}");
    assert!(said("borta.eml").contains("auto-reply"), "{run}");
    assert!(said("forged.eml").contains("unmatched"), "{run}");
    assert!(
        said("stranger.eml").contains("not a bounce report"),
        "{run}"
    );
    assert!(said("arf.eml").contains("matched: complaint"), "{run}");
    assert!(
        said("arf.eml").contains("unsubscribed (complaint)"),
        "{run}"
    );
    assert_eq!(status_of(&site, "ann@example.org"), "active");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");
    // One complaint of two messages sent: far above 0.1%, in the log and
    // in both status commands.
    assert!(
        run.stderr
            .contains("complaint rate 50% (1 of 2) is above 0.10%"),
        "{run}"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("came back: 0 hard bounces (0%), 0 soft (0%), 1 complaints (50%)"),
        "{status}"
    );
    assert!(
        status
            .stdout
            .contains("WARNING: complaint rate 50% (1 of 2) is above 0.10%"),
        "{status}"
    );
    let overall = ok(site.tidings(&["status"]));
    assert!(
        overall.stdout.contains("WARNING: complaint rate 50%"),
        "{overall}"
    );

    let list = ok(site.tidings(&["bounces", "list", "--kind", "complaint"]));
    assert_eq!(list.stdout.lines().count(), 2, "{list}");
    assert!(list.stdout.contains("Feedback-Type: abuse"), "{list}");
    let none = ok(site.tidings(&["bounces", "list", "--email", "ANN@example.org"]));
    assert!(none.stdout.contains("no bounce events"), "{none}");

    // Adding the complainer again, even as confirmed, does not bring them
    // back, and says why.
    let add = ok(site.tidings(&[
        "subscribers",
        "add",
        "bo@example.org",
        "--themes",
        "alpha",
        "--confirmed",
    ]));
    assert!(add.stderr.contains("complained"), "{add}");
    assert!(add.stderr.contains("fresh opt-in"), "{add}");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");

    // A fresh opt-in does: pending with the new choices and a confirmation
    // email; digests again only once they confirm.
    let before = outbox(&site).get("bo@example.org").map_or(0, Vec::len);
    let again = ok(site.tidings(&[
        "subscribers",
        "add",
        "bo@example.org",
        "--themes",
        "alpha",
        "--send-confirmation",
    ]));
    assert!(
        again
            .stdout
            .contains("bo@example.org was unsubscribed (it complained"),
        "{again}"
    );
    assert!(again.stdout.contains("pending again"), "{again}");
    assert!(
        again.stdout.contains("sent the confirmation email"),
        "{again}"
    );
    assert_eq!(status_of(&site, "bo@example.org"), "pending");
    let mail = outbox(&site);
    let sent = &mail["bo@example.org"];
    assert_eq!(sent.len(), before + 1, "one confirmation email");
    assert!(
        sent.iter().any(|m| m.text.contains("/confirm/")),
        "a confirmation link"
    );
    // An active address is left alone, and gets nothing.
    let active = ok(site.tidings(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--themes",
        "alpha",
        "--send-confirmation",
    ]));
    assert!(
        active.stderr.contains("already an active subscriber"),
        "{active}"
    );
    assert_eq!(status_of(&site, "ann@example.org"), "active");
    assert_eq!(outbox(&site)["ann@example.org"].len(), 1);
}

#[test]
fn soft_bounces_count_up_to_the_limit() {
    let site = sent_site("soft_limit = 2\n", &["ann@example.org"]);
    let verp = envelope_sender(&site, "ann@example.org");
    let first = report(
        &site,
        "postfix-delayed.eml",
        &verp,
        "ann@example.org",
        "d1.eml",
    );
    let run = ok(site.tidings(&["bounces", "import", &first]));
    assert!(run.stdout.contains("matched: soft bounce"), "{run}");
    assert!(run.stdout.contains("soft bounce 1 of 2"), "{run}");
    assert_eq!(status_of(&site, "ann@example.org"), "active");
    // A report piped in on standard input, as an MTA would.
    let second = report(
        &site,
        "exim-delayed.eml",
        &verp,
        "ann@example.org",
        "d2.eml",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .args(["bounces", "import", "-"])
        .current_dir(site.root())
        .stdin(std::fs::File::open(site.path(&second)).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("-: matched: soft bounce"), "{stdout}");
    assert!(stdout.contains("marked bounced"), "{stdout}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
}

#[test]
fn over_smtp_the_verp_address_is_the_mail_from_and_no_header() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = digest_site(&server.transport());
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!(
        "{config}\n[bounces]\nreturn_path = \"bounces@example.org\"\n"
    ));
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    let run = ok(site.tidings(&["digest", "send"]));
    assert!(run.stdout.contains("1 sent"), "{run}");
    let senders = server.envelope_senders();
    assert_eq!(senders.len(), 1, "{senders:?}");
    assert!(
        senders[0].starts_with("bounces+") && senders[0].ends_with("@example.org"),
        "{senders:?}"
    );
    let raw = String::from_utf8(server.raw().remove(0)).unwrap();
    assert!(
        !raw.contains("bounces+"),
        "the VERP address is in no header:\n{raw}"
    );
    // A report to it is matched.
    let file = report(
        &site,
        "qmail-hard.eml",
        &senders[0],
        "ann@example.org",
        "q.eml",
    );
    let run = ok(site.tidings(&["bounces", "import", &file]));
    assert!(run.stdout.contains("matched: hard bounce"), "{run}");
    // A test send names no delivery: its envelope sender is the From address.
    ok(site.tidings(&["digest", "test", "--to", "ann@example.org"]));
    assert_eq!(server.envelope_senders()[1], "news@example.org");
}
