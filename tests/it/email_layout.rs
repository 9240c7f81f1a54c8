//! Every email fits every screen: the digest (with a lead story, images,
//! long titles and links) and the confirmation email, in Swedish and
//! English, as the outbox holds them, opened in headless Chromium at 320,
//! 375 and 600 px. None may scroll sideways (`scrollWidth <=
//! innerWidth`). Screenshots go to `target/e2e/email-*.png`.

use crate::browser::Browser;
use crate::support::{Mail, digest_site, ok, outbox, recent, subscribe};

const WIDTHS: [u32; 3] = [320, 375, 600];

#[tokio::test(flavor = "multi_thread")]
async fn every_email_fits_every_screen_from_320_px() {
    let site = digest_site("file:outbox");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace(
        "author = \"Fixture editors\"",
        "author = \"Fixture editors\"\nlogo = \"https://example.org/logo.png\"",
    ));
    let long = "Ett mycket långt ord: Kommunpartnerskapsutvecklingsprogrammetsutvärderingsrapport";
    site.write_story(
        "lead",
        &format!(
            "title = \"{long}\"\ndate = {}\nthemes = [\"alpha\"]\nimage = \"https://example.org/images/wide.jpg\"\nfeatured = true",
            (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%SZ")
        ),
        &format!("Brödtext med en lång länk: https://example.org/{}\n", "a/".repeat(60)),
    );
    recent(
        &site,
        "two",
        "Vattenprojektet i Kisumu",
        3,
        &["alpha", "beta"],
    );
    recent(&site, "three", "Lokal demokrati i Windhoek", 4, &["gamma"]);
    ok(site.build());
    for language in ["sv", "en"] {
        ok(site.tidings(&[
            "digest",
            "test",
            "--to",
            &format!("digest-{language}@example.org"),
            "--language",
            language,
        ]));
        ok(site.tidings(&[
            "subscribers",
            "add",
            &format!("confirm-{language}@example.org"),
            "--themes",
            "alpha,beta",
            "--language",
            language,
            "--send-confirmation",
        ]));
    }
    subscribe(&site, "reader@example.org", "gamma");
    let mails = outbox(&site);
    let mut checked: Vec<(String, &Mail)> = Vec::new();
    for kind in ["digest", "confirm"] {
        for language in ["sv", "en"] {
            let to = format!("{kind}-{language}@example.org");
            let mail = mails
                .get(&to)
                .and_then(|m| m.first())
                .unwrap_or_else(|| panic!("no email to {to}: {:?}", mails.keys()));
            checked.push((format!("{kind}-{language}"), mail));
        }
    }
    // What the test sends hold, before the browser looks at them.
    let digest = checked[0].1;
    assert!(digest.subject.starts_with("[TEST] "), "{}", digest.subject);
    assert!(digest.html.contains("lead-title"), "no lead story");
    assert!(digest.html.contains("https://example.org/logo.png"));
    assert!(
        digest.text.replace("\r\n", "\n").contains("\n-- \n"),
        "{}",
        digest.text
    );

    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut overflow = Vec::new();
    for (name, mail) in &checked {
        let path = dir.path().join(format!("{name}.html"));
        std::fs::write(&path, &mail.html).unwrap();
        for width in WIDTHS {
            let c = &browser.client;
            c.set_window_size(width, 900).await.unwrap();
            c.goto(&format!("file://{}", path.display())).await.unwrap();
            let sizes = c
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    vec![],
                )
                .await
                .unwrap();
            let sizes: Vec<u64> = sizes
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            browser.screenshot(&format!("email-{name}-{width}")).await;
            if sizes[0] > sizes[1] {
                overflow.push(format!(
                    "{name} at {width} px: scrollWidth {} > innerWidth {}",
                    sizes[0], sizes[1]
                ));
            }
        }
    }
    browser.close().await;
    assert!(
        overflow.is_empty(),
        "emails wider than the screen: {overflow:#?}"
    );
}
