//! The sample site (the repository's own `config.toml` and stories) end
//! to end on one machine, as the README's five-minute round does it:
//! `tidings run`, a sign-up on the local page, the confirmation written to
//! `outbox/` with a link that opens on that same local service, a digest
//! sent with `digest send`, and its unsubscribe link, again local.

use std::path::Path;

use reqwest::StatusCode;
use tidings::model::Status;

use crate::support::{Mail, Page, Site, client, free_port, get, ok, outbox, status, wait_until};

/// The value of `key = "…"` on its line in `config`.
fn value<'a>(config: &'a str, key: &str) -> &'a str {
    let line = config
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("no `{key}` in the sample config.toml"));
    line.split('"').nth(1).unwrap()
}

/// The first `<prefix><token>` link in `text`.
fn link(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix}… link in:\n{text}"));
    let token: String = text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.~".contains(*c))
        .collect();
    format!("{prefix}{token}")
}

/// The message to `to` in the site's outbox whose text holds `marker`,
/// waiting for it (a confirmation is sent in the background of the
/// sign-up's answer).
fn mail_to(site: &Site, to: &str, marker: &str) -> Mail {
    let found = || {
        outbox(site)
            .remove(to)
            .and_then(|m| m.into_iter().find(|m| m.text.contains(marker)))
    };
    assert!(
        wait_until(15, || found().is_some()),
        "no message to {to} with {marker} in outbox/: {:?}",
        outbox(site)
    );
    found().unwrap()
}

/// `python3 scripts/last-mail.py --to ADDRESS` in the site's folder, as the
/// README says: the text of the newest email, links whole. `None` without
/// a Python.
fn last_mail(site: &Site, to: &str) -> Option<String> {
    let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/last-mail.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--to", to])
        .current_dir(site.root())
        .output()
        .ok()?;
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn the_sample_site_does_the_whole_round_on_one_machine() {
    let site = Site::sample();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    // The sample's promise: its links lead to the service it runs.
    let listen = value(&config, "listen");
    let public = value(&config, "public_url");
    assert_eq!(
        public,
        format!("http://{listen}/"),
        "the sample's [http] public_url is where it listens"
    );
    assert!(
        value(&config, "base_url").starts_with("https://"),
        "stories keep their canonical host"
    );
    // The same on a free port (8080 may be taken on this machine).
    let here = format!("127.0.0.1:{}", free_port());
    site.write_config(&config.replace(listen, &here));
    let service = site.serve(&[]);
    assert_eq!(service.address(), here);
    let c = client();

    // 1. Sign up on the front page, as a browser posts the form.
    let front = get(&c, &service.url("/")).await;
    front.assert_html(StatusCode::OK, "sv");
    let email = "reader@example.org";
    let answer = Page::from(
        c.post(service.url("/subscribe"))
            .header("origin", format!("http://{here}"))
            .form(&[
                ("csrf", front.csrf().as_str()),
                ("email", email),
                ("themes", "lokal-demokrati"),
                ("themes", "halsa"),
                ("language", "en"),
                ("digest", "monthly"),
                ("website", ""),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_html(StatusCode::OK, "sv");
    assert!(answer.has_id("check-inbox"), "{}", answer.body);

    // 2. The confirmation in outbox/, its link on this same service.
    let confirmation = mail_to(&site, email, "/confirm/");
    let confirm = link(&confirmation.text, &format!("http://{here}/confirm/"));
    if let Some(text) = last_mail(&site, email) {
        assert!(
            text.contains(&confirm),
            "last-mail.py shows it whole:\n{text}"
        );
    }
    let page = get(&c, &confirm).await;
    page.assert_html(StatusCode::OK, "en");
    assert!(page.has_id("confirm"));
    assert_eq!(status(&site, email).await, Some(Status::Pending));
    let done = Page::from(c.post(&confirm).send().await.unwrap()).await;
    done.assert_html(StatusCode::OK, "en");
    assert!(done.has_id("confirmed"), "{}", done.body);
    assert_eq!(status(&site, email).await, Some(Status::Active));

    // 3. The README's story of today (a digest's first edition sends only
    // the last 31 days), written by the README's own command; `build` to
    // ingest it now, and `digest send`, all while the service runs: the
    // email's links are local too.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let printf = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("printf ") && l.contains("content/stories/try-it.md"))
        .expect("the README's round writes a story with printf");
    let wrote = std::process::Command::new("sh")
        .args(["-c", printf])
        .current_dir(site.root())
        .status()
        .unwrap();
    assert!(wrote.success(), "{printf}");
    let built = ok(site.tidings(&["build"]));
    assert!(built.stdout.contains("1 new"), "{built}");
    let sent = ok(site.tidings(&["digest", "send"]));
    assert!(sent.stdout.contains("1 sent"), "{sent}");
    let digest = mail_to(&site, email, "/archive/monthly/");
    assert!(
        digest
            .text
            .contains(&format!("http://{here}/archive/monthly/")),
        "the edition on the web is on this service:\n{}\n{sent}",
        digest.text
    );
    let edition = link(&digest.text, &format!("http://{here}/archive/monthly/"));
    // Public pages speak the visitor's language (here the site's).
    get(&c, &edition).await.assert_html(StatusCode::OK, "sv");

    // 4. Unsubscribe through the digest's link.
    let unsubscribe = link(&digest.text, &format!("http://{here}/unsubscribe/"));
    let page = get(&c, &unsubscribe).await;
    page.assert_html(StatusCode::OK, "en");
    let gone = Page::from(c.post(&unsubscribe).send().await.unwrap()).await;
    assert!(gone.has_id("unsubscribed"), "{}", gone.body);
    assert_eq!(status(&site, email).await, Some(Status::Unsubscribed));
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
}
