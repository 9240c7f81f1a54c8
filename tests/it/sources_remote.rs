//! Stories from a WordPress site's REST API and from upstream feeds, read
//! from a real HTTP server on loopback ([`Upstream`]) that serves the
//! project's fixture files: paging, incremental reads, term mapping,
//! sanitizing, conditional requests, redirects, 410, 5xx, timeouts,
//! garbage and oversized answers, and an edit upstream.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use serde_json::Value;

use crate::support::{
    FIXTURE_CONFIG, Reply, Run, Site, Upstream, WP_POSTS, digest_site, fixture, ok, outbox,
    subscribe, wordpress_edited_fixture, wordpress_fixture,
};

/// Retries wait milliseconds, not seconds.
const FAST: &[(&str, &str)] = &[("TIDINGS_HTTP_BACKOFF_MS", "10")];

fn build(site: &Site) -> Run {
    site.tidings_env(&["build"], FAST)
}

/// A `wordpress` source on `up`, terms mapped to the fixture's themes.
fn wordpress_source(up: &Upstream, extra: &str) -> String {
    format!(
        r#"
[[sources]]
kind = "wordpress"
base_url = "{}"
themes_from = {{ categories = {{ "miljo" = "alpha", "Demokrati" = "beta" }}, tags = {{ "agenda2030" = "gamma" }} }}
timeout = 2
{extra}
"#,
        up.url("/")
    )
}

fn feed_source(up: &Upstream, path: &str, extra: &str) -> String {
    format!(
        r#"
[[sources]]
kind = "feed"
url = "{}"
themes = ["gamma"]
themes_from = {{ categories = {{ "Water" = "alpha" }} }}
{extra}
"#,
        up.url(path),
        extra = if extra.contains("timeout") {
            extra.to_owned()
        } else {
            format!("timeout = 2\n{extra}")
        }
    )
}

/// The fixture config with `sources` added before `[feeds]`.
fn site_with(sources: &str) -> Site {
    Site::with_config(&FIXTURE_CONFIG.replace("[feeds]", &format!("{sources}\n[feeds]")))
}

fn rss(path: &str) -> Reply {
    Reply::ok("application/rss+xml; charset=utf-8", fixture(path))
}

/// The entries of a feed of the site, by title.
fn titles(site: &Site, rel: &str) -> Vec<String> {
    site.feed(rel)
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect()
}

fn entry<'a>(feed: &'a feed_rs::model::Feed, title_part: &str) -> &'a feed_rs::model::Entry {
    feed.entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content.contains(title_part))
        .unwrap_or_else(|| panic!("no entry with {title_part:?}"))
}

/// The fixture posts moved in time so that the newest is a day old (a
/// digest sends only recent stories).
fn recent_posts() -> Vec<Value> {
    shift(wordpress_fixture())
}

fn shift(posts: Vec<Value>) -> Vec<Value> {
    let newest = NaiveDateTime::parse_from_str("2026-11-21T00:00:00", "%Y-%m-%dT%H:%M:%S").unwrap();
    let by = (Utc::now().naive_utc() - chrono::Duration::days(1)) - newest;
    posts
        .into_iter()
        .map(|mut p| {
            for field in ["date", "date_gmt", "modified", "modified_gmt"] {
                let t = p[field].as_str().unwrap();
                let t = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").unwrap() + by;
                p[field] = Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string());
            }
            p
        })
        .collect()
}

#[test]
fn wordpress_posts_become_stories_with_themes_from_terms_and_sanitized_html() {
    let up = Upstream::start();
    up.wordpress(wordpress_fixture());
    let site = site_with(&wordpress_source(&up, ""));
    let run = ok(build(&site));
    assert!(
        run.stdout.contains("21 new"),
        "21 published posts, 2 drafts left out: {run}"
    );
    let asked = up.requests(WP_POSTS);
    assert_eq!(asked.len(), 1, "21 posts fit on one page of 100");
    let first = &asked[0];
    assert_eq!(first.query_value("_embed"), Some("1"));
    assert_eq!(first.query_value("per_page"), Some("100"));
    assert_eq!(
        first.query_value("modified_after"),
        None,
        "the first read is full"
    );
    let agent = first.header("user-agent").unwrap();
    assert!(
        agent.starts_with("tidings/") && agent.contains("example.org"),
        "{agent}"
    );

    let atom = site.feed("atom.xml");
    // Terms: categories by slug (miljo) and by name (Demokrati), tags by slug.
    let vaxjo = entry(&atom, "Växjös tekniska");
    let mut themes: Vec<&str> = vaxjo.categories.iter().map(|c| c.term.as_str()).collect();
    themes.sort();
    assert_eq!(themes, ["alpha", "beta", "gamma"]);
    assert!(
        titles(&site, "themes/alpha/atom.xml")
            .iter()
            .any(|t| t.contains("Växjös tekniska"))
    );
    let uncategorised = entry(&atom, "Hjältar inom lokal demokrati");
    assert!(
        uncategorised.categories.is_empty(),
        "okategoriserad maps to nothing"
    );
    // The post's link is the story's URL; the id comes from the post's id.
    let link = &vaxjo.links[0].href;
    assert_eq!(
        link,
        "https://cms.example.org/2026/09/v%c3%a4xj%c3%b6-och-an-giang/"
    );
    assert!(vaxjo.id.ends_with("-4610"), "{}", vaxjo.id);
    assert_eq!(vaxjo.authors[0].name, "Erik Johansson");
    // Entities in titles are decoded once; percent-encoded slugs are fine.
    assert!(
        titles(&site, "atom.xml")
            .iter()
            .all(|t| !t.contains("&#8211;") && !t.contains("&amp;"))
    );
    assert!(
        !titles(&site, "atom.xml")
            .iter()
            .any(|t| t.contains("Lodwar")),
        "a draft is not published"
    );

    // The hostile post: nothing active survives; relative URLs are absolute.
    let hostile = entry(&atom, "Uppsala");
    let html = hostile.content.as_ref().unwrap().body.as_deref().unwrap();
    for bad in [
        "<script",
        "onerror",
        "javascript:",
        "<iframe",
        "evil.example",
    ] {
        assert!(!html.contains(bad), "{bad} survived: {html}");
    }
    assert!(
        html.contains("href=\"https://cms.example.org/om-oss/\""),
        "{html}"
    );
    assert!(
        html.contains("https://cms.example.org/wp-content/uploads/2026/10/bild.jpg"),
        "{html}"
    );
    let title = &hostile.title.as_ref().unwrap().content;
    assert!(title.starts_with("Uppsala & Mosul – vatten"), "{title}");
    assert!(html.contains('🤝'), "emoji kept");
    // An independent parser reads every feed.
    for rel in ["rss.xml", "feed.json", "themes/beta/atom.xml"] {
        let _ = site.feed(rel);
    }
}

#[test]
fn many_posts_are_read_page_by_page() {
    let up = Upstream::start();
    let base = wordpress_fixture();
    let mut posts = Vec::new();
    for round in 0..12u64 {
        for p in &base {
            let mut p = p.clone();
            let id = p["id"].as_u64().unwrap() + round * 1000;
            p["id"] = id.into();
            p["slug"] = format!("{}-{round}", p["slug"].as_str().unwrap()).into();
            p["link"] = format!("{}p/{id}/", up.url("/")).into();
            posts.push(p);
        }
    }
    up.wordpress(posts);
    let site = site_with(&wordpress_source(&up, ""));
    let run = ok(build(&site));
    assert!(run.stdout.contains("252 new"), "{run}");
    let pages: Vec<String> = up
        .requests(WP_POSTS)
        .iter()
        .map(|r| r.query_value("page").unwrap().to_owned())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
}

#[test]
fn later_reads_ask_only_for_changes_and_an_edit_updates_the_same_story_once() {
    let up = Upstream::start();
    let posts = recent_posts();
    up.wordpress(posts.clone());
    let site = digest_site("file:outbox");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace(
        "[feeds]",
        &format!("{}\n[feeds]", wordpress_source(&up, "")),
    ));
    ok(build(&site));
    subscribe(&site, "ann@example.org", "beta");
    let first = ok(site.tidings(&["digest", "send"]));
    assert!(first.stdout.contains("1 sent"), "{first}");
    let original = entry(&site.feed("atom.xml"), "De vill bygga").clone();

    // The edit upstream: same id, later modified time.
    let mut edited = wordpress_edited_fixture();
    let later = &shift(vec![edited.clone()])[0];
    for f in ["date", "date_gmt", "modified", "modified_gmt"] {
        edited[f] = later[f].clone();
    }
    up.wordpress_upsert(edited);
    up.clear_requests();
    let run = ok(build(&site));
    assert!(
        run.stdout.contains("0 new, 1 updated, 0 withdrawn"),
        "{run}"
    );
    let asked = up.requests(WP_POSTS);
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].query_value("modified_after").is_some(),
        "an incremental read"
    );
    let atom = site.feed("atom.xml");
    let now = entry(&atom, "De vill bygga");
    assert_eq!(now.id, original.id, "the same story");
    assert!(
        now.title.as_ref().unwrap().content.contains("Vushtrri"),
        "the edit shows"
    );
    assert_eq!(
        atom.entries.iter().filter(|e| e.id == original.id).count(),
        1
    );
    assert!(now.updated > original.updated);

    // No post is withdrawn by an incremental read that did not list it.
    assert_eq!(atom.entries.len(), 21);
    // The edited story does not go out again.
    let second = ok(site.tidings(&["digest", "send"]));
    assert!(second.stdout.contains("0 stories"), "{second}");
    assert_eq!(outbox(&site)["ann@example.org"].len(), 1);

    // A post unpublished upstream is withdrawn at the next full read.
    up.wordpress_remove(4711);
    site.sql(&["DELETE FROM source_state"]);
    let run = ok(build(&site));
    assert!(run.stdout.contains("1 withdrawn"), "{run}");
}

#[test]
fn a_failing_wordpress_site_is_skipped_and_withdraws_nothing() {
    let up = Upstream::start();
    up.wordpress(wordpress_fixture());
    let site = site_with(&wordpress_source(&up, ""));
    site.story("local", "A local story", "2026-11-01", &["alpha"]);
    ok(build(&site));

    // 5xx answers: tried three times, then the source is skipped.
    up.set_sequence(WP_POSTS, vec![Reply::status(503), Reply::status(502)]);
    up.clear_requests();
    let run = build(&site);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(up.request_count(WP_POSTS), 3, "three tries");
    assert!(run.stderr.contains("HTTP 502"), "{run}");
    assert!(
        run.stderr.contains(&up.url(WP_POSTS)),
        "names the source: {run}"
    );
    assert!(run.stdout.contains("0 withdrawn"), "{run}");

    // Garbage: an HTML page, invalid JSON, a JSON object.
    for (reply, says) in [
        (
            Reply::ok(
                "text/html",
                "<!doctype html><html><body>Maintenance</body></html>",
            ),
            "answered HTML",
        ),
        (
            Reply::ok("application/json", "[{\"id\": 1,"),
            "invalid JSON",
        ),
        (
            Reply::ok("application/json", "{\"posts\": []}"),
            "not a list of posts",
        ),
    ] {
        up.set(WP_POSTS, reply);
        let run = build(&site);
        assert_eq!(run.code, 0, "{run}");
        assert!(run.stderr.contains(says), "{says}: {run}");
        assert!(run.stdout.contains("0 withdrawn"), "{run}");
    }
    up.clear(WP_POSTS);

    // An empty list on a full read is not taken for "everything deleted".
    up.wordpress(Vec::new());
    site.sql(&["DELETE FROM source_state"]);
    let run = build(&site);
    assert!(run.stderr.contains("empty list"), "{run}");
    assert!(run.stdout.contains("0 withdrawn"), "{run}");
    assert_eq!(
        site.feed("atom.xml").entries.len(),
        22,
        "21 posts and the local story"
    );
}

#[test]
fn feeds_are_read_conditionally_and_an_upstream_edit_updates_the_entry() {
    let up = Upstream::start();
    up.set(
        "/partner.rss",
        rss("feeds/partner.rss").header("ETag", "\"v1\""),
    );
    up.set(
        "/partner.atom",
        Reply::ok("application/atom+xml", fixture("feeds/partner.atom"))
            .header("Last-Modified", "Wed, 18 Nov 2026 10:00:00 GMT"),
    );
    up.set(
        "/partner.json",
        Reply::ok("application/feed+json", fixture("feeds/partner.json")),
    );
    let site = site_with(&format!(
        "{}{}{}",
        feed_source(&up, "/partner.rss", ""),
        feed_source(&up, "/partner.atom", ""),
        feed_source(&up, "/partner.json", "")
    ));
    let run = ok(build(&site));
    assert!(run.stdout.contains("12 new"), "5 + 4 + 3 entries: {run}");
    let atom = site.feed("atom.xml");
    // Categories mapped, and every story gets the source's own theme.
    let kiosk = entry(&atom, "water kiosk");
    let mut themes: Vec<&str> = kiosk.categories.iter().map(|c| c.term.as_str()).collect();
    themes.sort();
    assert_eq!(themes, ["alpha", "gamma"]);
    // Atom's xml:base makes a relative link absolute.
    let rain = entry(&atom, "Rain gardens");
    assert_eq!(
        rain.links[0].href,
        "https://partners.example.net/climate/2026/11/rain-gardens-tsumeb/"
    );
    // JSON Feed items come with their images.
    let json = site.feed("feed.json");
    assert!(json.entries.len() >= 12);

    // Nothing changed upstream: 304s, nothing read.
    let run = ok(build(&site));
    assert!(
        run.stdout.contains("0 new, 0 updated, 0 withdrawn"),
        "{run}"
    );
    let again = up.requests("/partner.rss");
    assert_eq!(
        again.last().unwrap().header("if-none-match"),
        Some("\"v1\"")
    );
    let atom_again = up.requests("/partner.atom");
    assert_eq!(
        atom_again.last().unwrap().header("if-modified-since"),
        Some("Wed, 18 Nov 2026 10:00:00 GMT")
    );

    // An edited item (same guid) and a new one.
    let before = entry(&site.feed("atom.xml"), "Flood early-warning").clone();
    up.set(
        "/partner.rss",
        rss("feeds/partner-updated.rss").header("ETag", "\"v2\""),
    );
    let run = ok(build(&site));
    assert!(
        run.stdout.contains("1 new, 1 updated, 0 withdrawn"),
        "{run}"
    );
    let atom = site.feed("atom.xml");
    let after = entry(&atom, "Flood early-warning");
    assert_eq!(after.id, before.id);
    assert!(after.title.as_ref().unwrap().content.contains("65,000"));
    assert_eq!(atom.entries.iter().filter(|e| e.id == before.id).count(), 1);

    // An entry that drops out of the feed stays published.
    let mut one = serde_json::from_slice::<Value>(&fixture("feeds/partner.json")).unwrap();
    one["items"].as_array_mut().unwrap().truncate(1);
    up.set(
        "/partner.json",
        Reply::ok("application/feed+json", one.to_string()),
    );
    let run = ok(build(&site));
    assert!(run.stdout.contains("0 withdrawn"), "{run}");
}

#[test]
fn redirects_are_followed_and_a_permanent_one_is_remembered() {
    let up = Upstream::start();
    up.set("/moved.rss", Reply::redirect(301, &up.url("/new.rss")));
    up.set("/hop.rss", Reply::redirect(302, &up.url("/new-atom.xml")));
    up.set("/new.rss", rss("feeds/partner.rss"));
    up.set(
        "/new-atom.xml",
        Reply::ok("application/atom+xml", fixture("feeds/partner.atom")),
    );
    let site = site_with(&format!(
        "{}{}",
        feed_source(&up, "/moved.rss", ""),
        feed_source(&up, "/hop.rss", "")
    ));
    let run = ok(build(&site));
    assert!(run.stdout.contains("9 new"), "{run}");
    ok(build(&site));
    assert_eq!(
        up.request_count("/moved.rss"),
        1,
        "301: asked once, then the new address"
    );
    assert_eq!(up.request_count("/new.rss"), 2);
    assert_eq!(up.request_count("/hop.rss"), 2, "302: asked each time");
    let status = ok(site.tidings(&["status"]));
    assert!(
        status
            .stdout
            .contains(&format!("moved permanently to {}", up.url("/new.rss"))),
        "{status}"
    );
}

#[test]
fn gone_stops_polling_and_keeps_what_was_published() {
    let up = Upstream::start();
    up.set("/partner.rss", rss("feeds/partner.rss"));
    let site = site_with(&feed_source(&up, "/partner.rss", ""));
    ok(build(&site));
    up.set("/partner.rss", Reply::status(410));
    let run = build(&site);
    assert!(run.stderr.contains("410 Gone"), "{run}");
    assert!(run.stdout.contains("0 withdrawn"), "{run}");
    let asked = up.request_count("/partner.rss");
    ok(build(&site));
    assert_eq!(
        up.request_count("/partner.rss"),
        asked,
        "not polled after 410"
    );
    assert_eq!(site.feed("atom.xml").entries.len(), 5);
    let status = ok(site.tidings(&["status"]));
    assert!(status.stdout.contains("GONE (410)"), "{status}");
}

#[test]
fn timeouts_garbage_and_oversized_answers_are_skipped_and_the_rest_goes_on() {
    let up = Upstream::start();
    up.set(
        "/slow.rss",
        rss("feeds/partner.rss").delay(Duration::from_secs(4)),
    );
    up.set("/broken.xml", rss("feeds/broken.xml"));
    up.set(
        "/html",
        Reply::ok("text/html", fixture("feeds/not-a-feed.html")),
    );
    up.set("/empty.rss", rss("feeds/empty.rss"));
    up.set(
        "/huge.rss",
        Reply::ok("application/rss+xml", vec![b' '; 2 * 1024 * 1024]),
    );
    up.set(
        "/fine.json",
        Reply::ok("application/feed+json", fixture("feeds/partner.json")),
    );
    up.set_sequence(
        "/flaky.rss",
        vec![Reply::status(500), rss("feeds/partner.rss")],
    );
    let site = site_with(
        &(format!(
            "{}{}{}{}{}{}",
            feed_source(&up, "/slow.rss", "timeout = 1"),
            feed_source(&up, "/broken.xml", ""),
            feed_source(&up, "/html", ""),
            feed_source(&up, "/empty.rss", ""),
            feed_source(&up, "/huge.rss", "max_size_mb = 1"),
            feed_source(&up, "/fine.json", ""),
        ) + &feed_source(&up, "/flaky.rss", "")),
    );
    let run = build(&site);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("8 new"),
        "the good sources are read: {run}"
    );
    assert_eq!(
        up.request_count("/flaky.rss"),
        2,
        "a 500, then read on the second try"
    );
    for (path, says) in [
        ("/slow.rss", "no answer within"),
        ("/broken.xml", "not a feed that can be read"),
        ("/html", "answered an HTML page"),
        ("/empty.rss", "no entries"),
        ("/huge.rss", "larger than 1 MB"),
    ] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&up.url(path)))
            .unwrap_or_else(|| panic!("no line for {path}: {run}"));
        assert!(line.contains(says), "{path}: {line}");
    }
    assert_eq!(up.request_count("/slow.rss"), 3, "a timeout is retried");
    assert_eq!(up.request_count("/broken.xml"), 1, "garbage is not");
    let strict = site.tidings_env(&["build", "--strict"], FAST);
    assert_eq!(
        strict.code, 1,
        "--strict fails on skipped sources: {strict}"
    );
}

#[test]
fn check_says_whether_each_remote_source_answers() {
    let up = Upstream::start();
    up.wordpress(wordpress_fixture());
    up.set("/partner.rss", rss("feeds/partner.rss"));
    let dead = format!("http://127.0.0.1:{}/feed.xml", crate::support::free_port());
    let site = site_with(&format!(
        "{}{}\n[[sources]]\nkind = \"feed\"\nurl = \"{dead}\"\ntimeout = 1\n",
        wordpress_source(&up, ""),
        feed_source(&up, "/partner.rss", "")
    ));
    let run = site.tidings_env(&["check"], FAST);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stdout.contains("reachable, 21 published posts"),
        "{run}"
    );
    assert!(
        run.stdout.contains("reachable, RSS with 5 entries"),
        "{run}"
    );
    assert!(
        run.stderr.contains(&dead) && run.stderr.contains("cannot be reached"),
        "{run}"
    );
}

#[test]
fn remote_source_config_errors_name_the_key() {
    let up = Upstream::start();
    let site = site_with(&format!(
        r#"
[[sources]]
kind = "wordpress"
base_url = "cms.example.org"
themes_from = {{ categories = {{ "miljo" = "climate" }} }}

[[sources]]
kind = "feed"
url = "{}"
themes_from = {{ tags = {{ "x" = "alpha" }} }}
schedule = "every five minutes"
timeout = 0
"#,
        up.url("/f.xml")
    ));
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    for (key, says) in [
        ("sources[1].base_url", "not a URL"),
        (
            "sources[1].themes_from.categories.miljo",
            "no theme `climate`",
        ),
        ("sources[2].themes_from.tags", "only categories"),
        ("sources[2].schedule", ""),
        ("sources[2].timeout", "out of range"),
    ] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("`{key}`")))
            .unwrap_or_else(|| panic!("no problem for {key}: {run}"));
        assert!(line.contains(says), "{key}: {line}");
        assert!(
            line.starts_with("config.toml:") || line.contains("config.toml:"),
            "{line}"
        );
    }
}

#[test]
fn the_service_polls_a_source_on_its_own_schedule() {
    let up = Upstream::start();
    up.set("/partner.rss", rss("feeds/partner.rss"));
    // Every second; the directory source stays on the ten-minute ingest.
    let site = site_with(&feed_source(
        &up,
        "/partner.rss",
        "schedule = \"* * * * * *\"",
    ));
    let service = site.serve(FAST);
    let atom = service.url("/feeds/atom.xml");
    let fetch = |url: &str| {
        let url = url.to_owned();
        crate::support::block_on(|| async move {
            reqwest::get(url).await.unwrap().text().await.unwrap()
        })
    };
    assert!(fetch(&atom).contains("water kiosk"), "{}", service.log());
    up.set("/partner.rss", rss("feeds/partner-updated.rss"));
    assert!(
        crate::support::wait_until(20, || fetch(&atom).contains("Växjö and Vushtrri")),
        "the new entry did not reach the feed:\n{}",
        service.log()
    );
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("ingest:feed:"),
        "the source's own job ran: {log}"
    );
    let status = ok(site.tidings(&["status"]));
    assert!(status.stdout.contains("ingest:feed:"), "{status}");
}

#[test]
fn an_entry_whose_slug_is_taken_is_skipped_and_the_rest_go_on() {
    let up = Upstream::start();
    up.set("/partner.rss", Reply::status(404));
    // The feed comes first in config.toml; the story's file gives it the
    // slug the feed's first entry gets from its title.
    let config = FIXTURE_CONFIG.replace(
        "[[sources]]\nkind = \"directory\"",
        &format!(
            "{}\n[[sources]]\nkind = \"directory\"",
            feed_source(&up, "/partner.rss", "")
        ),
    );
    let site = Site::with_config(&config);
    site.story(
        "kisumu-and-borlange-map-every-water-kiosk-in-the-city",
        "Our own kiosk story",
        "2026-11-01",
        &["alpha"],
    );
    let first = ok(build(&site));
    assert!(first.stdout.contains("1 new"), "{first}");
    up.set("/partner.rss", rss("feeds/partner.rss"));
    let run = ok(build(&site));
    let titles = titles(&site, "atom.xml");
    assert!(
        titles.iter().any(|t| t == "Our own kiosk story"),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.contains("water kiosk")),
        "{titles:?}"
    );
    assert_eq!(titles.len(), 5, "the other four entries and the story");
    assert!(run.stderr.contains("is already used by"), "{run}");
}
