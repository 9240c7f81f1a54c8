//! The site's pages from a running `tidings run`: `/` and every theme's
//! page with their autodiscovery links (checked against the feed files on
//! disk), the sign-up form as the browser test expects it, languages, the
//! archive of editions, 404s, a site without `[mail]`, and the brand
//! (description per language, logo, accent colour), the header's
//! "Subscribe", the stories' pictures and the archive's sign-up box.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::{
    Page, SECRET, Site, attr_after, client, digest_site, get, ok, outbox, serve, subscribe,
    web_site,
};

/// Every start tag `<name …>` of the page.
pub fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    html.match_indices(&open)
        .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap() + 1])
        .collect()
}

#[tokio::test]
async fn the_front_page_has_every_feed_the_latest_stories_and_the_form() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    let page = get(&c, &service.url("/")).await;
    page.assert_html(StatusCode::OK, "sv");
    assert_eq!(
        page.header("cache-control"),
        "no-store",
        "it holds a form token"
    );
    let cookie = page.header("set-cookie");
    assert!(
        cookie.starts_with("tidings_csrf=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");

    // Autodiscovery: the site's three feeds and each theme's, every one a
    // file the build wrote.
    let alternates = tags(&page.body, "link");
    let hrefs: Vec<String> = alternates
        .iter()
        .filter(|t| t.contains("rel=\"alternate\""))
        .map(|t| attr_after(t, "rel=", "href").unwrap())
        .collect();
    let mut expected = vec![
        "/feeds/rss.xml".to_owned(),
        "/feeds/atom.xml".into(),
        "/feeds/feed.json".into(),
    ];
    for theme in ["alpha", "beta", "gamma"] {
        for file in ["rss.xml", "atom.xml", "feed.json"] {
            expected.push(format!("/feeds/themes/{theme}/{file}"));
        }
    }
    assert_eq!(hrefs, expected);
    for href in &hrefs {
        let file = site.path(href.trim_start_matches('/'));
        assert!(
            file.is_file(),
            "{href} points at no file ({})",
            file.display()
        );
    }
    for t in alternates
        .iter()
        .filter(|t| t.contains("rel=\"alternate\""))
    {
        let kind = attr_after(t, "rel=", "type").unwrap();
        assert!(
            [
                "application/rss+xml",
                "application/atom+xml",
                "application/feed+json"
            ]
            .contains(&kind.as_str()),
            "{t}"
        );
        assert!(attr_after(t, "rel=", "title").is_some_and(|t| !t.is_empty()));
        // And the service serves it there, with that type.
        let href = attr_after(t, "rel=", "href").unwrap();
        let feed = c.get(service.url(&href)).send().await.unwrap();
        assert_eq!(feed.status(), StatusCode::OK, "{href}");
        let served = feed.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(served.starts_with(&kind), "{href}: {served}");
    }
    // Visible links to the same feeds and the OPML list, and the themes.
    assert!(page.body.contains("href=\"/feeds/themes/beta/atom.xml\""));
    assert!(page.body.contains("href=\"/feeds/feeds.opml\""));
    assert!(site.path("feeds/feeds.opml").is_file());
    assert!(page.body.contains("href=\"/themes/alpha/\">Alfa</a>"));
    assert!(page.body.contains("A site for tests"), "the description");
    // The latest stories, escaped, newest first.
    let pos = |s: &str| page.body.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(pos("Beta &lt;one&gt; &amp; co") < pos("Alpha one"));
    assert!(pos("Alpha one") < pos("Alpha and gamma"));
    assert!(
        page.body
            .contains("href=\"https://example.org/news/stories/a1/\"")
    );

    assert_signup_form(&page.body, &["alpha", "beta", "gamma"], &[]);
    assert!(page.body.contains("Prenumerera på nyhetsbrevet"));
}

/// The contract of the sign-up form that the browser test relies on.
pub fn assert_signup_form(html: &str, themes: &[&str], checked: &[&str]) {
    let forms = tags(html, "form");
    assert_eq!(forms.len(), 1, "{forms:?}");
    let form = forms[0];
    assert!(form.contains("id=\"subscribe\""), "{form}");
    assert!(form.contains("method=\"post\""), "{form}");
    assert!(form.contains("action=\"/subscribe\""), "{form}");
    let inputs = tags(html, "input");
    let input = |marker: &str| -> &str {
        inputs
            .iter()
            .find(|i| i.contains(marker))
            .unwrap_or_else(|| panic!("no input with {marker} in {inputs:?}"))
    };
    let email = input("name=\"email\"");
    assert!(
        email.contains("type=\"email\"") && email.contains("id=\"email\""),
        "{email}"
    );
    assert!(html.contains("<label for=\"email\">"));
    for theme in themes {
        let id = format!("theme-{theme}");
        let boxed = input(&format!("id=\"{id}\""));
        assert!(boxed.contains("type=\"checkbox\""), "{boxed}");
        assert!(boxed.contains("name=\"themes\""), "{boxed}");
        assert!(boxed.contains(&format!("value=\"{theme}\"")), "{boxed}");
        assert_eq!(
            boxed.contains(" checked"),
            checked.contains(theme),
            "{boxed}"
        );
        assert!(html.contains(&format!("<label for=\"{id}\">")), "{id}");
    }
    for lang in ["sv", "en"] {
        let radio = input(&format!("id=\"language-{lang}\""));
        assert!(
            radio.contains("type=\"radio\"") && radio.contains("name=\"language\""),
            "{radio}"
        );
        assert!(radio.contains(&format!("value=\"{lang}\"")));
        assert!(html.contains(&format!("<label for=\"language-{lang}\"")));
    }
    let digest = input("name=\"digest\"");
    assert!(
        digest.contains("type=\"hidden\"") && digest.contains("value=\"monthly\""),
        "{digest}"
    );
    let honeypot = input("name=\"website\"");
    assert!(
        honeypot.contains("tabindex=\"-1\"") && honeypot.contains("autocomplete=\"off\""),
        "{honeypot}"
    );
    assert!(html.contains("<div class=\"hp\" aria-hidden=\"true\">"));
    assert!(html.contains(".hp { position: absolute; left: -10000px;"));
    let csrf = input("name=\"csrf\"");
    assert!(csrf.contains("type=\"hidden\""), "{csrf}");
    assert_eq!(html.matches("<button type=\"submit\">").count(), 1);
}

#[tokio::test]
async fn pages_speak_swedish_or_english_and_themes_have_their_own_page() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    let english = get(&c, &service.url("/?lang=en")).await;
    english.assert_html(StatusCode::OK, "en");
    assert!(english.body.contains("Subscribe to the newsletter"));
    assert!(
        english.body.contains(">Alpha</a>"),
        "theme titles in English"
    );
    assert!(
        english.body.contains("href=\"/archive/?lang=en\""),
        "the choice sticks"
    );
    assert!(
        english.body.contains("href=\"/?lang=sv\" lang=\"sv\""),
        "a way back"
    );
    let browser = Page::from(
        c.get(service.url("/"))
            .header("accept-language", "en-GB,en;q=0.9,sv;q=0.5")
            .send()
            .await
            .unwrap(),
    )
    .await;
    browser.assert_html(StatusCode::OK, "en");
    let swedish = Page::from(
        c.get(service.url("/?lang=sv"))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap(),
    )
    .await;
    swedish.assert_html(StatusCode::OK, "sv");

    let theme = get(&c, &service.url("/themes/alpha/")).await;
    theme.assert_html(StatusCode::OK, "sv");
    assert!(theme.body.contains("<h1>Alfa</h1>"));
    assert!(theme.body.contains("Om alfa"));
    let hrefs: Vec<String> = tags(&theme.body, "link")
        .iter()
        .filter(|t| t.contains("rel=\"alternate\""))
        .map(|t| attr_after(t, "rel=", "href").unwrap())
        .collect();
    assert_eq!(
        &hrefs[..3],
        [
            "/feeds/themes/alpha/rss.xml",
            "/feeds/themes/alpha/atom.xml",
            "/feeds/themes/alpha/feed.json"
        ]
    );
    assert!(hrefs.iter().all(|h| !h.contains("/beta/")), "{hrefs:?}");
    for href in &hrefs {
        assert!(site.path(href.trim_start_matches('/')).is_file(), "{href}");
    }
    assert!(theme.body.contains("Alpha one") && theme.body.contains("Alpha and gamma"));
    assert!(
        !theme.body.contains("Beta &lt;one"),
        "only the theme's stories"
    );
    assert_signup_form(&theme.body, &["alpha", "beta", "gamma"], &["alpha"]);
    let no_slash = get(&c, &service.url("/themes/gamma")).await;
    no_slash.assert_html(StatusCode::OK, "sv");
    let english_theme = get(&c, &service.url("/themes/alpha/?lang=en")).await;
    assert!(english_theme.body.contains("<h1>Alpha</h1>"));
    assert!(english_theme.body.contains("About alpha"));

    for path in [
        "/themes/nope/",
        "/themes/ALPHA/",
        "/nope",
        "/archive/weekly/",
    ] {
        let missing = get(&c, &service.url(path)).await;
        missing.assert_html(StatusCode::NOT_FOUND, "sv");
        assert!(missing.has_id("not-found"), "{path}");
    }
    let signup = get(&c, &service.url("/subscribe?lang=en")).await;
    signup.assert_html(StatusCode::OK, "en");
    assert_signup_form(&signup.body, &["alpha", "beta", "gamma"], &[]);
    assert!(signup.body.contains("<h1 id=\"signup-heading\">"));

    let missing = get(&c, &service.url("/nope?lang=en")).await;
    missing.assert_html(StatusCode::NOT_FOUND, "en");
    assert!(missing.body.contains("Page not found"));
}

#[tokio::test]
async fn the_archive_lists_editions_and_shows_each_one() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    let empty = serve(&site);
    let c = client();
    let page = get(&c, &empty.url("/archive/")).await;
    page.assert_html(StatusCode::OK, "sv");
    assert!(page.body.contains("Inga utskick ännu."));
    drop(empty);

    // The editor's note of this edition (its period ends today), in
    // Swedish only: on the Swedish page, not on the English one.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .format("%Y-%m-%d");
    let notes = site.path("content/digests/monthly");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join(format!("{today}.sv.md")), "Redaktörens **ord**.").unwrap();
    ok(site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]));
    let mail = outbox(&site);
    let view = &mail["ann@example.org"][0];
    assert!(
        view.text
            .contains("https://example.org/news/archive/monthly/1"),
        "the email's view-in-browser link: {}",
        view.text
    );
    let service = serve(&site);
    let archive = get(&c, &service.url("/archive/")).await;
    archive.assert_html(StatusCode::OK, "sv");
    assert!(archive.body.contains("Månadsbrev"), "{}", archive.body);
    assert!(archive.body.contains("href=\"/archive/monthly/1\""));
    assert!(archive.body.contains("3 berättelser"), "{}", archive.body);
    let one = get(&c, &service.url("/archive/monthly/")).await;
    one.assert_html(StatusCode::OK, "sv");
    assert!(one.body.contains("href=\"/archive/monthly/1\""));

    let edition = get(&c, &service.url("/archive/monthly/1")).await;
    edition.assert_html(StatusCode::OK, "sv");
    // The email's design: every story once (the newest leads, above the
    // themes), themes in config order, a story in two themes under the
    // first; no personal link, a sign-up box instead.
    for title in ["Alpha one", "Beta &lt;one&gt; &amp; co", "Alpha and gamma"] {
        let link = format!(">{title}</a></h");
        assert_eq!(edition.body.matches(&link).count(), 1, "{title} once");
    }
    let at = |s: &str| edition.body.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(edition.body.contains(r#"<h2 class="lead-title""#));
    assert!(at(r#"<h2 class="lead-title""#) < at(">Alfa</a></h2>"));
    assert!(at(">Alfa</a></h2>") < at(">Alpha one</a>"));
    assert!(!edition.body.contains("/unsubscribe/"), "{}", edition.body);
    assert!(
        edition
            .body
            .contains("Vill du få nästa utskick i din inkorg?")
    );
    let english = get(&c, &service.url("/archive/monthly/1?lang=en")).await;
    english.assert_html(StatusCode::OK, "en");
    assert!(english.body.contains(">Alpha</a></h2>"));
    assert!(english.body.contains("Monthly letter"));
    assert!(!english.body.contains("Redaktörens"));
    let slash = get(&c, &service.url("/archive/monthly/1/")).await;
    assert_eq!(slash.status, StatusCode::OK);

    for path in [
        "/archive/monthly/2",
        "/archive/monthly/0",
        "/archive/monthly/abc",
        "/archive/weekly/1",
        "/archive/monthly/1/extra",
    ] {
        let missing = get(&c, &service.url(path)).await;
        missing.assert_html(StatusCode::NOT_FOUND, "sv");
    }
}

/// Every HTML answer of the service, the feeds folder's `index.html`
/// too, carries the same security headers.
#[tokio::test]
async fn every_html_answer_carries_the_security_headers() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    for (path, status) in [
        ("/", StatusCode::OK),
        ("/themes/alpha/", StatusCode::OK),
        ("/feeds/", StatusCode::OK),
        ("/feeds/index.html", StatusCode::OK),
        ("/subscribe", StatusCode::OK),
        ("/archive/", StatusCode::OK),
        ("/no/such/page", StatusCode::NOT_FOUND),
        ("/confirm/not-a-token", StatusCode::BAD_REQUEST),
    ] {
        let page = get(&c, &service.url(path)).await;
        assert_eq!(page.status, status, "{path}");
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(
            page.header("content-security-policy"),
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(page.header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
    }
    // The feeds index keeps the feeds' caching.
    let index = get(&c, &service.url("/feeds/")).await;
    assert_eq!(index.header("cache-control"), "public, max-age=300");
}

#[tokio::test]
async fn a_site_without_mail_shows_no_form_and_takes_no_sign_ups() {
    let site = Site::new();
    site.story("s1", "Only story", "2024-05-01", &["alpha"]);
    site.build();
    let service = serve(&site);
    let c = client();
    let page = get(&c, &service.url("/")).await;
    page.assert_html(StatusCode::OK, "sv");
    assert!(!page.body.contains("id=\"subscribe\""));
    assert!(page.headers.get("set-cookie").is_none());
    assert!(page.body.contains("Only story"));
    let post = Page::from(
        c.post(service.url("/subscribe"))
            .form(&[("email", "ann@example.org"), ("themes", "alpha")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    post.assert_html(StatusCode::SERVICE_UNAVAILABLE, "sv");
    assert!(post.has_id("unavailable"));
    let json = c
        .post(service.url("/api/subscribe"))
        .json(&serde_json::json!({"email": "ann@example.org", "themes": ["alpha"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::SERVICE_UNAVAILABLE);
    let archive = get(&c, &service.url("/archive/")).await;
    archive.assert_html(StatusCode::OK, "sv");
}

#[tokio::test]
async fn a_site_may_replace_any_page_template() {
    let site = web_site("file:outbox");
    std::fs::create_dir_all(site.path("templates/web")).unwrap();
    std::fs::write(
        site.path("templates/web/message.html"),
        "{% extends \"web/base.html\" %}{% block content %}\
         <h1 id=\"{{ page.id }}\">Our own: {{ page.heading }}</h1>{% endblock content %}",
    )
    .unwrap();
    let service = serve(&site);
    let page = get(&client(), &service.url("/nope")).await;
    page.assert_html(StatusCode::NOT_FOUND, "sv");
    assert!(
        page.body
            .contains("<h1 id=\"not-found\">Our own: Sidan finns inte</h1>")
    );
    drop(service);

    // A template that does not parse stops the service before it listens,
    // naming the file.
    std::fs::write(site.path("templates/web/base.html"), "{% block content %}").unwrap();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(
        config.contains("listen = \"127.0.0.1:0\""),
        "serve() added it"
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .arg("run")
        .env("TIDINGS_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            child.kill().unwrap();
            panic!("tidings run started with a broken template");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(stderr.contains("templates/web/base.html"), "{stderr}");
    assert!(stderr.contains("does not parse"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it never listened"
    );
}

/// The pages' part of branding and the sign-up near the top: `[site]
/// description` in the page's language, `[site] logo` in the header with
/// the title as its text, the accent colour with readable text on it, a
/// "Subscribe" in every page's header, the form before the stories on the
/// front page, the stories' pictures, and a sign-up box on the archive.
#[tokio::test]
async fn pages_carry_the_brand_the_pictures_and_a_way_to_subscribe() {
    let site = digest_site("file:outbox");
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(
            "description = \"A site for tests\"",
            "description = { sv = \"En webbplats för tester\", en = \"A site for tests\" }\n\
             logo = \"img/logo.png\"\naccent = \"#FFCC00\"",
        );
    site.write_config(&config);
    site.write_story(
        "pictured",
        "title = \"With a picture\"\ndate = 2024-05-01\nthemes = [\"alpha\"]\n\
         image = \"https://example.org/news/img/well.jpg\"\nimage_alt = \"Two people at a well\"",
        "Body.\n",
    );
    site.story("plain", "Without a picture", "2024-04-01", &["beta"]);
    site.build();
    let service = serve(&site);
    let c = client();

    let sv = get(&c, &service.url("/")).await;
    sv.assert_html(StatusCode::OK, "sv");
    assert!(
        sv.body
            .contains("<p class=\"lead\">En webbplats för tester</p>")
    );
    assert!(
        !sv.body.contains("A site for tests"),
        "only the page's language"
    );
    let en = get(&c, &service.url("/?lang=en")).await;
    assert!(en.body.contains("<p class=\"lead\">A site for tests</p>"));
    assert!(
        en.body.contains("Fixture site – A site for tests"),
        "the footer"
    );
    assert!(!en.body.contains("En webbplats för tester"));

    // The logo, with the title as its text; the accent, light here, gets
    // near-black text and a darker shade for links.
    assert!(
        sv.body.contains(
            "<p class=\"site-title\"><a href=\"/\"><img src=\"https://example.org/news/img/logo.png\" alt=\"Fixture site\"></a></p>"
        ),
        "{}",
        &sv.body[..3000]
    );
    assert!(
        sv.body
            .contains("--accent: #ffcc00; --accent-text: #111111;")
    );
    // Links on the light page: a darker shade (the first `--link`; the
    // dark scheme's, after it, may keep the yellow).
    let link = &sv.body[sv.body.find("--link: ").unwrap()..][..15];
    assert_ne!(link, "--link: #ffcc00", "too pale for text on white");

    // The front page: "Subscribe" in the header leads to the form, which
    // comes before the stories; the pictures, with their text.
    assert!(
        sv.body
            .contains("<a class=\"subscribe\" href=\"#signup\">Prenumerera</a>")
    );
    let pos = |s: &str| sv.body.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(
        pos("<header") < pos("class=\"subscribe\"") && pos("class=\"subscribe\"") < pos("<main")
    );
    assert!(pos("id=\"signup\"") < pos("id=\"latest-heading\""));
    assert!(pos("id=\"signup\"") < pos("With a picture"));
    assert!(sv.body.contains(
        "<li class=\"has-image\">\n<img src=\"https://example.org/news/img/well.jpg\" alt=\"Two people at a well\""
    ));
    assert_eq!(sv.body.matches("<li class=\"has-image\">").count(), 1);
    assert_signup_form(&sv.body, &["alpha", "beta", "gamma"], &[]);

    // Elsewhere "Subscribe" leads to the sign-up page, and the archive has
    // a box that does the same (no form: the page stays cacheable).
    let archive = get(&c, &service.url("/archive/?lang=en")).await;
    archive.assert_html(StatusCode::OK, "en");
    assert_eq!(archive.header("cache-control"), "public, max-age=60");
    assert!(
        archive
            .body
            .contains("<a class=\"subscribe\" href=\"/subscribe?lang=en\">Subscribe</a>")
    );
    assert!(
        archive
            .body
            .contains("<h2 id=\"signup-box-heading\">Subscribe to the newsletter</h2>")
    );
    assert!(archive.body.contains(
        "<a class=\"button\" href=\"/subscribe?lang=en\">Choose themes and subscribe</a>"
    ));
    assert!(!archive.body.contains("<form"));
    let one = get(&c, &service.url("/archive/monthly/")).await;
    assert!(one.body.contains("id=\"signup-box-heading\""));
    let missing = get(&c, &service.url("/nope")).await;
    assert!(
        missing
            .body
            .contains("<a class=\"subscribe\" href=\"/subscribe\">")
    );
}

/// Without `[mail]` there is nothing to subscribe to: no header link, no box.
#[tokio::test]
async fn a_site_without_mail_offers_no_subscribe_link() {
    let site = Site::new();
    site.story("s1", "Only story", "2024-05-01", &["alpha"]);
    site.build();
    let service = serve(&site);
    let c = client();
    for path in ["/", "/archive/", "/nope"] {
        let page = get(&c, &service.url(path)).await;
        assert!(!page.body.contains("class=\"subscribe\""), "{path}");
        assert!(!page.body.contains("signup-box"), "{path}");
        // The default accent: white on the blue.
        assert!(
            page.body
                .contains("--link: #1d5c8f; --accent: #1d5c8f; --accent-text: #ffffff;"),
            "{path}"
        );
    }
}
