//! The digest through the binary: editions frozen from new stories, one
//! email per subscriber with only their themes, written to `outbox/` and
//! read back as MIME with mail-parser.

use chrono::{Duration, Utc};

use crate::support::{Mail, Site, digest_site, ok, outbox, recent, subscribe};

/// The site's link signer, read from its store as the service would.
fn site_signer(site: &Site) -> tidings::links::tokens::Signer {
    let url = site.storage_url();
    crate::support::block_on(|| async move {
        let store = tidings::store::Store::open(&url).await.unwrap();
        let env = tidings::config::env::Environment::default();
        let keys = tidings::links::keys::Keys::load(&store, &env)
            .await
            .unwrap();
        store.close().await;
        (*keys.signer()).clone()
    })
}

fn titles_in(mail: &Mail, candidates: &[&str]) -> Vec<String> {
    candidates
        .iter()
        .filter(|t| mail.html.contains(*t))
        .map(|t| t.to_string())
        .collect()
}

const TITLES: &[&str] = &[
    "Alpha one",
    "Beta one",
    "Alpha and gamma",
    "Old alpha",
    "Beta two",
];

#[test]
fn each_subscriber_gets_only_their_themes_once() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 3, &["alpha"]);
    recent(&site, "b1", "Beta one", 2, &["beta"]);
    recent(&site, "ag", "Alpha and gamma", 1, &["alpha", "gamma"]);
    recent(&site, "old", "Old alpha", 400, &["alpha"]);
    site.build();
    for (email, themes, lang, confirmed) in [
        ("ann@example.org", "alpha", "sv", true),
        ("bo@example.org", "gamma,beta,alpha", "sv", true),
        ("cy@example.org", "alpha", "sv", false),
        ("dora@example.org", "beta", "en", true),
        ("eve@example.org", "gamma", "en", true),
    ] {
        let mut args = vec![
            "subscribers",
            "add",
            email,
            "--themes",
            themes,
            "--language",
            lang,
        ];
        if confirmed {
            args.push("--confirmed");
        }
        ok(site.tidings(&args));
    }
    let run = ok(site.tidings(&["digest", "send"]));
    assert!(run.stdout.contains("3 stories, 4 recipients"), "{run}");
    assert!(run.stdout.contains("4 sent, 0 failed, 0 skipped"), "{run}");

    let mail = outbox(&site);
    assert_eq!(
        mail.keys().collect::<Vec<_>>(),
        [
            "ann@example.org",
            "bo@example.org",
            "dora@example.org",
            "eve@example.org"
        ]
    );
    let one = |who: &str| {
        let m = &mail[who];
        assert_eq!(m.len(), 1, "{who} gets one email");
        m[0].clone()
    };
    let ann = one("ann@example.org");
    assert_eq!(
        titles_in(&ann, TITLES),
        ["Alpha one", "Alpha and gamma"],
        "the old archive is not sent"
    );
    let bo = one("bo@example.org");
    assert_eq!(
        titles_in(&bo, TITLES),
        ["Alpha one", "Beta one", "Alpha and gamma"]
    );
    // Every story is rendered with the same number of links to it.
    assert_eq!(
        bo.html.matches("/stories/ag/").count(),
        bo.html.matches("/stories/a1/").count(),
        "a story in two chosen themes appears once"
    );
    assert_eq!(bo.text.matches("/stories/ag/").count(), 1, "{}", bo.text);
    // The newest story leads (none has an image or is featured), above
    // the themes and not again under its first chosen theme, gamma, which
    // is left with nothing; then beta and alpha in bo's order.
    let at = |needle: &str| {
        bo.text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {}", bo.text))
    };
    assert!(!bo.text.contains("/themes/gamma/\n"), "{}", bo.text);
    assert!(bo.subject.starts_with("Nytt "), "{}", bo.subject);
    let order = [
        at("/stories/ag/"),
        at("/themes/beta/"),
        at("/stories/b1/"),
        at("/themes/alpha/"),
        at("/stories/a1/"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "themes in the subscriber's order: {}",
        bo.text
    );
    let dora = one("dora@example.org");
    assert_eq!(titles_in(&dora, TITLES), ["Beta one"]);
    assert!(dora.subject.starts_with("News "), "{}", dora.subject);
    assert!(ann.subject.starts_with("Nytt "), "{}", ann.subject);
    assert!(
        dora.text.contains("https://example.org/news/stories/b1/"),
        "{}",
        dora.text
    );
    assert!(
        !mail.contains_key("cy@example.org"),
        "pending subscribers get nothing"
    );

    // The same edition again: nothing more; a new one with nothing new:
    // nobody gets anything.
    let again = ok(site.tidings(&["digest", "send"]));
    assert!(again.stdout.contains("0 stories, 0 recipients"), "{again}");
    assert_eq!(outbox(&site).values().map(Vec::len).sum::<usize>(), 4);

    // A new story and an edited old one: only the new one goes out.
    recent(&site, "b2", "Beta two", 0, &["beta"]);
    recent(&site, "a1", "Alpha one, edited", 3, &["alpha"]);
    site.build();
    let third = ok(site.tidings(&["digest", "send"]));
    assert!(third.stdout.contains("1 stories, 2 recipients"), "{third}");
    let mail = outbox(&site);
    assert_eq!(mail["bo@example.org"].len(), 2);
    assert_eq!(mail["dora@example.org"].len(), 2);
    assert_eq!(
        mail["ann@example.org"].len(),
        1,
        "an edited story does not go out again"
    );
    let newest = mail["dora@example.org"]
        .iter()
        .find(|m| m.html.contains("Beta two"))
        .unwrap();
    assert!(!newest.html.contains("Beta one"));
}

#[test]
fn headers_follow_the_list_rules() {
    let site = digest_site("file:outbox");
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(
            "rate_limit = 0\n",
            "rate_limit = 0\nunsubscribe_address = \"unsubscribe@example.org\"\n",
        );
    std::fs::write(site.config_path(), config).unwrap();
    recent(&site, "a1", "Alpha <one> & more", 1, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    ok(site.tidings(&["digest", "send"]));
    let mail = outbox(&site);
    let m = &mail["ann@example.org"][0];
    let h = &m.headers;
    assert!(h["from"].contains("news@example.org"), "{h:?}");
    assert!(h.contains_key("date"));
    assert!(
        m.message_id.starts_with("e1.s1.monthly@example.org"),
        "{}",
        m.message_id
    );
    assert!(h["list-id"].contains("<monthly.example.org>"), "{h:?}");
    let unsub = &h["list-unsubscribe"];
    assert!(
        unsub.starts_with("<https://example.org/news/unsubscribe/"),
        "{unsub}"
    );
    assert!(
        unsub.contains(", <mailto:unsubscribe@example.org?subject=unsubscribe%20https%3A%2F%2Fexample.org%2Fnews%2Funsubscribe%2F"),
        "{unsub}"
    );
    assert_eq!(h["list-unsubscribe-post"], "List-Unsubscribe=One-Click");
    assert!(
        m.html.contains("Alpha &lt;one&gt; &amp; more"),
        "escaped title"
    );
    assert!(!m.html.contains("<script"));
    assert!(m.html.contains("Fixture Org, Box 1, 111 11 Stockholm"));
    assert!(m.text.contains("Alpha <one> & more"));
    // The unsubscribe link in the body is the header's, and it verifies.
    let link = unsub.trim_start_matches('<').split('>').next().unwrap();
    assert!(m.html.contains(link) && m.text.contains(link));
}

#[test]
fn preview_shows_what_would_be_sent_and_changes_nothing() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    recent(&site, "b1", "Beta one", 1, &["beta"]);
    site.build();
    ok(site.tidings(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--themes",
        "beta,gamma",
        "--language",
        "en",
    ]));
    let html = ok(site.tidings(&["digest", "preview", "--email", "ANN@example.org"]));
    assert!(
        html.stdout.contains("Beta one") && !html.stdout.contains("Alpha one"),
        "{html}"
    );
    assert!(html.stdout.contains("<html"));
    let text = ok(site.tidings(&[
        "digest",
        "preview",
        "--email",
        "ann@example.org",
        "--text",
        "--out",
        "p.txt",
    ]));
    let written = std::fs::read_to_string(site.path("p.txt")).unwrap();
    // Gamma has nothing new, but the footer still names every chosen theme.
    assert!(written.contains("Beta, Gamma"), "{written}");
    assert!(
        !written.contains("/themes/gamma/"),
        "no empty section: {written}"
    );
    assert!(
        written.contains("https://example.org/news/stories/b1/"),
        "{written}"
    );
    assert!(
        text.stderr
            .contains("1 stories for ann@example.org (pending)"),
        "{text}"
    );
    assert!(
        !site.path("outbox").exists() || outbox(&site).is_empty(),
        "nothing sent"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status.stdout.contains("no editions yet"),
        "nothing frozen: {status}"
    );
    let missing = site.tidings(&["digest", "preview", "--email", "nobody@example.org"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no subscriber with the address nobody@example.org"),
        "{missing}"
    );
}

#[test]
fn the_links_in_an_email_are_tokens_that_verify_for_that_subscriber_only() {
    use tidings::links::tokens::{Purpose, Unverified};
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    ok(site.tidings(&["digest", "send"]));
    let mail = outbox(&site);
    let token_after = |m: &Mail, path: &str| -> String {
        let start = m
            .text
            .find(path)
            .unwrap_or_else(|| panic!("{path} in {}", m.text))
            + path.len();
        m.text[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let signer = site_signer(&site);
    let now = Utc::now();
    let ann = &mail["ann@example.org"][0];
    let unsub = Unverified::parse(&token_after(ann, "/unsubscribe/")).unwrap();
    let prefs = Unverified::parse(&token_after(ann, "/preferences/")).unwrap();
    assert!(
        signer
            .verify(&unsub, Purpose::Unsubscribe, "ann@example.org", now)
            .is_ok()
    );
    assert!(
        signer
            .verify(&prefs, Purpose::Preferences, "ann@example.org", now)
            .is_ok()
    );
    assert!(
        signer
            .verify(&unsub, Purpose::Unsubscribe, "bo@example.org", now)
            .is_err(),
        "not bo's"
    );
    assert!(
        signer
            .verify(&prefs, Purpose::Unsubscribe, "ann@example.org", now)
            .is_err(),
        "not for unsubscribing"
    );
    let bo = &mail["bo@example.org"][0];
    assert_ne!(
        token_after(bo, "/unsubscribe/"),
        token_after(ann, "/unsubscribe/")
    );
    assert!(
        ann.headers["list-unsubscribe"].contains(&token_after(ann, "/unsubscribe/")),
        "the header carries the same link"
    );
}

#[test]
fn a_confirmation_email_carries_a_signed_link_and_echoes_only_the_address() {
    use tidings::links::tokens::{Purpose, TokenError, Unverified};
    let site = digest_site("file:outbox");
    let run = ok(site.tidings(&[
        "subscribers",
        "add",
        "Ann@Example.org",
        "--themes",
        "beta,alpha",
        "--language",
        "en",
        "--send-confirmation",
    ]));
    assert!(
        run.stdout.contains("added Ann@example.org (pending)"),
        "{run}"
    );
    assert!(run.stdout.contains("sent the confirmation email"), "{run}");
    let mail = outbox(&site);
    let m = &mail["Ann@example.org"][0];
    assert!(
        m.subject.starts_with("Confirm your subscription"),
        "{}",
        m.subject
    );
    assert!(m.html.contains("Ann@example.org") && m.text.contains("Ann@example.org"));
    assert!(
        !m.html.contains("Alfa") && !m.html.contains("Beta"),
        "the chosen themes are not echoed"
    );
    assert!(
        !m.headers.contains_key("list-unsubscribe"),
        "not a list message"
    );
    let start = m.text.find("/confirm/").expect("a confirm link") + "/confirm/".len();
    let token = m.text[start..].split_whitespace().next().unwrap();
    assert!(m.html.contains(token));
    let signer = site_signer(&site);
    let parsed = Unverified::parse(token).unwrap();
    assert!(
        signer
            .verify(&parsed, Purpose::Confirm, "ann@example.org", Utc::now())
            .is_ok()
    );
    assert_eq!(
        signer.verify(
            &parsed,
            Purpose::Confirm,
            "ann@example.org",
            Utc::now() + Duration::days(8)
        ),
        Err(TokenError::Expired)
    );
    let both = site.tidings(&[
        "subscribers",
        "add",
        "bo@example.org",
        "--themes",
        "alpha",
        "--confirmed",
        "--send-confirmation",
    ]);
    assert_eq!(
        both.code, 2,
        "--confirmed and --send-confirmation conflict: {both}"
    );
}

/// Subscribers with the same language and themes share one rendering of
/// the email (the dear part of sending), with their own address and links
/// put in. A template that changes those values (here `upper`, and a
/// slice of the link) must still give each subscriber their own.
#[test]
fn subscribers_who_share_themes_each_get_their_own_address_and_links() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    site.build();
    let people = ["ann@example.org", "bo@example.org", "cy@example.org"];
    for email in people {
        subscribe(&site, email, "alpha");
    }
    // First with the built-in templates, which use the values as they are.
    ok(site.tidings(&["digest", "send"]));
    let first = outbox(&site);
    let mut links = Vec::new();
    for email in people {
        let m = &first[email][0];
        let unsubscribe = m
            .headers
            .get("list-unsubscribe")
            .and_then(|h| h.split(['<', '>']).find(|p| p.starts_with("http")))
            .unwrap_or_else(|| panic!("List-Unsubscribe in {:?}", m.headers))
            .to_owned();
        assert!(
            m.text.contains(&unsubscribe),
            "{email}'s own link in {}",
            m.text
        );
        assert!(
            m.html.contains(&unsubscribe),
            "{email}'s own link in {}",
            m.html
        );
        links.push(unsubscribe);
    }
    links.dedup();
    assert_eq!(links.len(), 3, "three different links: {links:?}");

    // Then with templates that transform the values.
    std::fs::create_dir_all(site.path("templates")).unwrap();
    std::fs::write(
        site.path("templates/digest.txt"),
        "For {{ recipient | upper }} ({{ links.unsubscribe | truncate(length=30) }})\n\
         {% for section in sections %}{% for story in section.stories %}{{ story.title }}\n{% endfor %}{% endfor %}\
         {{ links.unsubscribe }}\n",
    )
    .unwrap();
    std::fs::remove_dir_all(site.path("outbox")).unwrap();
    recent(&site, "a2", "Alpha two", 0, &["alpha"]);
    site.build();
    ok(site.tidings(&["digest", "send"]));
    let second = outbox(&site);
    for email in people {
        let m = &second[email][0];
        assert!(
            m.text.contains(&format!("For {}", email.to_uppercase())),
            "{email} in {}",
            m.text
        );
        for other in people.iter().filter(|o| **o != email) {
            assert!(
                !m.text.contains(&other.to_uppercase()),
                "{other} in {email}'s {}",
                m.text
            );
        }
        assert!(m.text.contains("Alpha two"), "{}", m.text);
    }
}

#[test]
fn a_template_that_cannot_render_fails_each_delivery_once_with_the_reason() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    std::fs::create_dir_all(site.path("templates")).unwrap();
    std::fs::write(
        site.path("templates/digest.html"),
        "<p>{{ no_such_variable.field }}</p>\n",
    )
    .unwrap();
    let run = site.tidings(&["digest", "send"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.contains("0 sent, 1 failed, 0 skipped"), "{run}");
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("not sent to ann@example.org: failed: cannot build the message"),
        "{status}"
    );
    assert!(
        status.stdout.contains("0 pending, 0 sending"),
        "not retried for ever: {status}"
    );

    // A template that does not even parse stops the send before anything is frozen.
    std::fs::write(site.path("templates/digest.html"), "{% for x in %}\n").unwrap();
    recent(&site, "a2", "Alpha two", 0, &["alpha"]);
    site.build();
    let broken = site.tidings(&["digest", "send"]);
    assert_eq!(broken.code, 1, "{broken}");
    assert!(
        broken.stderr.contains("digest.html does not parse"),
        "{broken}"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        !status.stdout.contains("edition 2"),
        "nothing frozen: {status}"
    );
}

#[test]
fn status_says_what_the_site_holds_and_what_runs_next() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    recent(&site, "b1", "Beta one", 1, &["beta"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    ok(site.tidings(&["subscribers", "add", "bo@example.org", "--themes", "gamma"]));
    let before = ok(site.tidings(&["status"]));
    assert!(
        before
            .stdout
            .contains("Fixture site: 2 stories published, 0 withdrawn"),
        "{before}"
    );
    assert!(
        before
            .stdout
            .contains("subscribers: 1 pending, 1 active, 0 unsubscribed, 0 bounced"),
        "{before}"
    );
    assert!(
        before
            .stdout
            .contains("digest:monthly (0 8 1 * *): next run "),
        "{before}"
    );
    assert!(
        before.stdout.contains("08:00"),
        "the 1st at 08:00 local time: {before}"
    );
    assert!(before.stdout.contains("no editions yet"), "{before}");
    ok(site.tidings(&["digest", "send"]));
    let after = ok(site.tidings(&["status"]));
    assert!(
        after
            .stdout
            .contains("digest monthly: last edition 1 of monthly"),
        "{after}"
    );
    assert!(
        after
            .stdout
            .contains("1 sent, 0 failed, 0 skipped, 0 pending, 0 sending"),
        "{after}"
    );
}

#[test]
fn the_editors_note_is_in_the_preview_and_the_email_and_check_names_bad_files() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    // A note for the day this edition's period ends (today, in the site's
    // time zone), in Swedish only.
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .format("%Y-%m-%d");
    let dir = site.path("content/digests/monthly");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{today}.sv.md")),
        "Hej från **redaktionen**! <script>alert(1)</script>",
    )
    .unwrap();
    ok(site.tidings(&["check"]));
    let preview = ok(site.tidings(&["digest", "preview", "--email", "ann@example.org"]));
    assert!(
        preview.stdout.contains("<strong>redaktionen</strong>"),
        "{preview}"
    );
    assert!(!preview.stdout.contains("alert(1)"), "{preview}");
    ok(site.tidings(&["digest", "send"]));
    let ann = &outbox(&site)["ann@example.org"][0];
    assert!(
        ann.html.contains("<strong>redaktionen</strong>"),
        "{}",
        ann.html
    );
    assert!(ann.text.contains("Hej från redaktionen!"), "{}", ann.text);
    let pos = |s: &str| ann.html.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(pos("redaktionen") < pos(">Alpha one</a>"));

    // A misnamed note is named by check, with what is wrong.
    std::fs::write(dir.join("2026-13.md"), "?").unwrap();
    std::fs::write(dir.join(format!("{today}.de.md")), "?").unwrap();
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(
        check
            .stdout
            .contains("2026-13.md: `2026-13` is not a month or a day")
            || check
                .stderr
                .contains("2026-13.md: `2026-13` is not a month or a day"),
        "{check}"
    );
    assert!(
        check
            .stdout
            .contains(".de.md: `de` is not a language of this digest")
            || check
                .stderr
                .contains(".de.md: `de` is not a language of this digest"),
        "{check}"
    );
}

#[test]
fn a_test_send_shows_the_newest_of_every_theme_even_after_an_edition() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    recent(&site, "b1", "Beta one", 2, &["beta"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    ok(site.tidings(&["digest", "send"]));
    // Right after the edition, nothing is pending, but the test still
    // shows a realistic email.
    ok(site.tidings(&["digest", "test", "--to", "editor@example.org"]));
    ok(site.tidings(&["digest", "test", "--to", "ann@example.org"]));
    let mail = outbox(&site);
    let test = &mail["editor@example.org"][0];
    assert!(test.subject.starts_with("[TEST] "), "{}", test.subject);
    assert_eq!(titles_in(test, TITLES), ["Alpha one", "Beta one"]);
    // Ann is a subscriber: the links of her test are hers and verify.
    let ann_test = mail["ann@example.org"]
        .iter()
        .find(|m| m.subject.starts_with("[TEST] "))
        .unwrap();
    let signer = site_signer(&site);
    let token = ann_test
        .text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("https://example.org/news/unsubscribe/")
        })
        .unwrap_or_else(|| panic!("{}", ann_test.text));
    let token = tidings::links::tokens::Unverified::parse(token).unwrap();
    let claims = signer
        .verify(
            &token,
            tidings::links::tokens::Purpose::Unsubscribe,
            "ann@example.org",
            Utc::now(),
        )
        .unwrap();
    assert_ne!(token.subscriber_id(), 0);
    let _ = claims;
}
