//! The feeds as readers see them: every file parsed by independent parsers
//! (feed-rs, Python's feedparser), with the ids, order, limits, links,
//! dates and categories a feed reader relies on.

use std::collections::{BTreeMap, HashSet};

use chrono::DateTime;
use feed_rs::model::Feed;

use crate::support::{Site, feedparser};

/// Where the sample's feeds are served: its `[http] public_url`, this
/// machine (story links stay under `[site] base_url`).
const SAMPLE_PUBLIC: &str = "http://127.0.0.1:8080/";

const SAMPLE_THEMES: &[&str] = &[
    "agenda-2030",
    "miljo-och-klimat",
    "jamstalldhet",
    "barn-och-unga",
    "inkludering",
    "halsa",
    "lokal-demokrati",
    "migration",
    "stadsplanering",
    "ledarskap",
];

/// Stories per theme in the sample site, read from the front matter with
/// the toml crate (not with tidings' own parser), drafts left out.
fn sample_expectations(site: &Site) -> (usize, BTreeMap<String, usize>) {
    let mut total = 0;
    let mut per_theme = BTreeMap::new();
    for entry in std::fs::read_dir(site.path("content/stories")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let front = text.split("+++").nth(1).unwrap();
        let fm: toml::Table = front.parse().unwrap();
        if fm.get("draft").and_then(|d| d.as_bool()) == Some(true) {
            continue;
        }
        total += 1;
        for t in fm["themes"].as_array().unwrap() {
            *per_theme.entry(t.as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    (total, per_theme)
}

fn ids(feed: &Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.id.clone()).collect()
}

#[test]
fn sample_site_feeds_parse_with_feed_rs_and_agree_across_formats() {
    let site = Site::sample();
    site.build();
    let (total, per_theme) = sample_expectations(&site);
    assert!(total >= 25, "the sample site has about 30 stories");
    let base = "https://goda-exempel.example.org/";

    for dir in
        std::iter::once(String::new()).chain(SAMPLE_THEMES.iter().map(|t| format!("themes/{t}/")))
    {
        let expected = if dir.is_empty() {
            total
        } else {
            per_theme[dir.trim_start_matches("themes/").trim_end_matches('/')]
        };
        let rss = site.feed(&format!("{dir}rss.xml"));
        let atom = site.feed(&format!("{dir}atom.xml"));
        let json = site.feed(&format!("{dir}feed.json"));
        for (name, feed) in [("rss", &rss), ("atom", &atom), ("json", &json)] {
            assert_eq!(feed.entries.len(), expected, "{dir}{name}");
            let unique: HashSet<&String> = feed.entries.iter().map(|e| &e.id).collect();
            assert_eq!(unique.len(), feed.entries.len(), "{dir}{name}: ids unique");
            for e in &feed.entries {
                assert!(
                    e.id.starts_with("tag:goda-exempel.example.org,"),
                    "{}",
                    e.id
                );
                let link = &e.links[0].href;
                assert!(link.starts_with(base), "{dir}{name}: {link} is absolute");
                assert!(e.title.is_some() && e.published.is_some() && e.updated.is_some());
                assert!(e.summary.is_some(), "{dir}{name}: summary");
                let html = e
                    .content
                    .as_ref()
                    .and_then(|c| c.body.clone())
                    .expect("full content");
                for url in html
                    .split(['"', '\''])
                    .filter(|s| s.contains("/images/") || s.starts_with('/'))
                {
                    assert!(
                        url.starts_with("http"),
                        "{dir}{name}: relative URL {url} in content"
                    );
                }
            }
        }
        assert_eq!(
            ids(&rss),
            ids(&atom),
            "{dir}: same stories, same ids, same order"
        );
        assert_eq!(ids(&rss), ids(&json), "{dir}");
    }
}

#[test]
fn sample_site_feeds_parse_with_python_feedparser() {
    let site = Site::sample();
    site.build();
    let (total, per_theme) = sample_expectations(&site);
    let mut paths = vec![
        site.path("feeds/rss.xml"),
        site.path("feeds/atom.xml"),
        site.path("feeds/feeds.opml"),
    ];
    for t in SAMPLE_THEMES {
        paths.push(site.path(&format!("feeds/themes/{t}/rss.xml")));
        paths.push(site.path(&format!("feeds/themes/{t}/atom.xml")));
    }
    let Some(report) = feedparser(&paths) else {
        return;
    };
    let rust_ids = ids(&site.feed("rss.xml"));
    for path in &paths {
        let r = &report[path.to_str().unwrap()];
        let name = path
            .strip_prefix(site.root())
            .unwrap()
            .display()
            .to_string();
        if name.ends_with(".opml") {
            assert_eq!(r["version"], "2.0");
            let outlines = r["outlines"].as_array().unwrap();
            assert_eq!(
                outlines.len(),
                1 + SAMPLE_THEMES.len(),
                "one outline per feed"
            );
            assert_eq!(
                outlines[0]["xmlUrl"],
                format!("{SAMPLE_PUBLIC}feeds/rss.xml")
            );
            for (o, t) in outlines[1..].iter().zip(SAMPLE_THEMES) {
                assert_eq!(
                    o["xmlUrl"],
                    format!("{SAMPLE_PUBLIC}feeds/themes/{t}/rss.xml")
                );
                assert_eq!(o["type"], "rss");
            }
            continue;
        }
        assert_eq!(r["bozo"], 0, "{name}: {}", r["bozo_exception"]);
        let expected = if name == "feeds/rss.xml" || name == "feeds/atom.xml" {
            total
        } else {
            per_theme[name.split('/').nth(2).unwrap()]
        };
        let entries = r["entries"].as_array().unwrap();
        assert_eq!(entries.len(), expected, "{name}");
        assert_eq!(r["language"], "sv", "{name}");
        let self_link = format!("{SAMPLE_PUBLIC}{name}");
        assert_eq!(r["self"][0], self_link, "{name}: atom:link rel=self");
        if name == "feeds/rss.xml" || name == "feeds/atom.xml" {
            let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
            assert_eq!(
                ids, rust_ids,
                "{name}: feedparser and feed-rs see the same ids"
            );
        }
        for e in entries {
            assert!(
                !e["tags"].as_array().unwrap().is_empty(),
                "{name}: themes as categories"
            );
            assert!(
                !e["content"].as_array().unwrap().is_empty(),
                "{name}: full content"
            );
        }
    }
}

#[test]
fn json_feed_has_the_required_fields_of_version_1_1() {
    let site = Site::sample();
    site.build();
    let json: serde_json::Value = serde_json::from_slice(&site.feed_bytes("feed.json")).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert!(json["title"].is_string());
    assert_eq!(json["feed_url"], format!("{SAMPLE_PUBLIC}feeds/feed.json"));
    assert_eq!(json["home_page_url"], "https://goda-exempel.example.org/");
    assert_eq!(json["language"], "sv");
    let items = json["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert!(item["id"].is_string(), "items[].id is required");
        assert!(
            item["content_html"].is_string() || item["content_text"].is_string(),
            "content_html or content_text is required"
        );
        for key in ["date_published", "date_modified"] {
            let d = item[key].as_str().unwrap();
            DateTime::parse_from_rfc3339(d).unwrap_or_else(|e| panic!("{key} {d}: {e}"));
        }
        assert!(item["url"].as_str().unwrap().starts_with("https://"));
        assert!(
            item.get("content_text").is_none_or(|v| !v.is_null()),
            "no null fields"
        );
    }
}

#[test]
fn newest_items_first_with_a_fixed_tie_break_and_the_limit_applied() {
    let site =
        Site::with_config(&crate::support::FIXTURE_CONFIG.replace("items = 50", "items = 3"));
    site.story("old", "Old", "2020-01-01", &["alpha"]);
    site.story("mid", "Mid", "2022-06-01", &["alpha"]);
    site.story("tie-b", "Tie B", "2024-05-05T10:00:00+02:00", &["alpha"]);
    site.story("tie-a", "Tie A", "2024-05-05T10:00:00+02:00", &["beta"]);
    site.story("new", "New", "2025-01-01", &["alpha"]);
    site.build();
    let titles = |rel: &str| -> Vec<String> {
        site.feed(rel)
            .entries
            .iter()
            .map(|e| e.title.clone().unwrap().content)
            .collect()
    };
    assert_eq!(titles("rss.xml"), ["New", "Tie A", "Tie B"]);
    assert_eq!(titles("atom.xml"), ["New", "Tie A", "Tie B"]);
    assert_eq!(titles("feed.json"), ["New", "Tie A", "Tie B"]);
    assert_eq!(titles("themes/alpha/rss.xml"), ["New", "Tie B", "Mid"]);
    assert_eq!(titles("themes/beta/atom.xml"), ["Tie A"]);
    assert!(titles("themes/gamma/feed.json").is_empty());
}

#[test]
fn rss_follows_the_rules_validators_check() {
    let site = Site::new();
    site.write_story(
        "one",
        r#"title = "One"
date = 2024-03-14
updated = 2024-04-01T12:00:00+02:00
themes = ["alpha", "beta"]
summary = "Short"
authors = ["Ann", "Bo"]
image = "pics/one.jpg"
image_alt = "A picture""#,
        "Body with ![pic](/img/a.png).\n",
    );
    site.build();
    let raw = String::from_utf8(site.feed_bytes("rss.xml")).unwrap();
    let doc = rss::Channel::read_from(raw.as_bytes()).unwrap();
    assert_eq!(doc.language(), Some("sv"));
    assert_eq!(doc.link(), "https://example.org/news/");
    let item = &doc.items()[0];
    let guid = item.guid().unwrap();
    assert!(!guid.is_permalink(), "tag: guids are not permalinks");
    assert_eq!(guid.value(), "tag:example.org,2024-03-14:one");
    let pub_date = item.pub_date().unwrap();
    assert_eq!(
        DateTime::parse_from_rfc2822(pub_date).unwrap().to_rfc3339(),
        "2024-03-14T00:00:00+01:00",
        "RFC 822 date in the site's time zone"
    );
    assert_eq!(item.link(), Some("https://example.org/news/stories/one/"));
    let cats: Vec<&str> = item.categories().iter().map(|c| c.name()).collect();
    assert_eq!(
        cats,
        ["Alfa", "Beta"],
        "theme titles in the site's language"
    );
    assert!(
        item.content()
            .unwrap()
            .contains("src=\"https://example.org/news/img/a.png\"")
    );
    assert!(
        item.content()
            .unwrap()
            .contains("https://example.org/news/stories/one/pics/one.jpg")
    );
    assert_eq!(item.dublin_core_ext().unwrap().creators(), ["Ann", "Bo"]);
    assert!(raw.contains(r#"<atom:link href="https://example.org/news/feeds/rss.xml" rel="self" type="application/rss+xml"/>"#));
    // The channel's date is the newest story's, not the time of the build.
    assert_eq!(
        doc.last_build_date(),
        Some("Mon, 1 Apr 2024 12:00:00 +0200")
    );
}

#[test]
fn atom_entries_carry_ids_dates_content_and_categories() {
    let site = Site::new();
    site.story(
        "one",
        "One",
        "2024-03-14T09:30:00+01:00",
        &["alpha", "gamma"],
    );
    site.build();
    let xml = String::from_utf8(site.feed_bytes("atom.xml")).unwrap();
    let feed = atom_syndication::Feed::read_from(xml.as_bytes()).unwrap();
    assert_eq!(feed.id(), "https://example.org/news/feeds/atom.xml");
    assert_eq!(feed.updated().to_rfc3339(), "2024-03-14T09:30:00+01:00");
    assert!(
        feed.links()
            .iter()
            .any(|l| l.rel() == "self" && l.href() == feed.id())
    );
    assert_eq!(feed.lang(), Some("sv"));
    let e = &feed.entries()[0];
    assert_eq!(e.id(), "tag:example.org,2024-03-14:one");
    assert_eq!(
        e.published().unwrap().to_rfc3339(),
        "2024-03-14T09:30:00+01:00"
    );
    let content = e.content().unwrap();
    assert_eq!(content.content_type(), Some("html"));
    assert!(content.value().unwrap().contains("<em>One</em>"));
    assert!(
        content
            .value()
            .unwrap()
            .contains("href=\"https://example.org/news/other/\"")
    );
    let cats: Vec<(&str, Option<&str>)> = e
        .categories()
        .iter()
        .map(|c| (c.term(), c.label()))
        .collect();
    assert_eq!(cats, [("alpha", Some("Alfa")), ("gamma", Some("Gamma"))]);
}

#[test]
fn summaries_only_when_full_content_is_off() {
    let site = Site::with_config(
        &crate::support::FIXTURE_CONFIG.replace("full_content = true", "full_content = false"),
    );
    site.story("one", "One", "2024-03-14", &["alpha"]);
    site.build();
    let rss = String::from_utf8(site.feed_bytes("rss.xml")).unwrap();
    assert!(!rss.contains("content:encoded"));
    let atom = String::from_utf8(site.feed_bytes("atom.xml")).unwrap();
    assert!(!atom.contains("<content"));
    let json: serde_json::Value = serde_json::from_slice(&site.feed_bytes("feed.json")).unwrap();
    assert_eq!(json["items"][0]["content_text"], "Summary of One");
    assert!(json["items"][0].get("content_html").is_none());
}

#[test]
fn an_empty_site_still_writes_valid_feeds() {
    let site = Site::new();
    site.build();
    for rel in site.feed_files(&["alpha", "beta", "gamma"]) {
        assert!(site.feed(&rel).entries.is_empty(), "{rel}");
    }
    let Some(report) = feedparser(&[site.path("feeds/rss.xml"), site.path("feeds/atom.xml")])
    else {
        return;
    };
    for (path, r) in report.as_object().unwrap() {
        assert_eq!(r["bozo"], 0, "{path}: {}", r["bozo_exception"]);
    }
}

#[test]
fn index_page_lists_every_feed_with_autodiscovery_links() {
    let site = Site::with_config(
        &crate::support::FIXTURE_CONFIG
            .replace("title = \"Fixture site\"", "title = \"Fixture <&> site\""),
    );
    site.story("one", "One", "2024-01-01", &["alpha"]);
    site.build();
    let html = String::from_utf8(site.feed_bytes("index.html")).unwrap();
    assert!(
        html.contains("<title>Fixture &lt;&amp;&gt; site – Flöden</title>"),
        "{html}"
    );
    assert!(!html.contains("Fixture <&> site"), "values are escaped");
    for rel in site.feed_files(&["alpha", "beta", "gamma"]) {
        let url = format!("https://example.org/news/feeds/{rel}");
        let kind = match rel.rsplit('/').next().unwrap() {
            "rss.xml" => "application/rss+xml",
            "atom.xml" => "application/atom+xml",
            _ => "application/feed+json",
        };
        let tag = format!("type=\"{kind}\"");
        assert!(
            html.lines()
                .any(|l| l.starts_with("<link rel=\"alternate\"")
                    && l.contains(&tag)
                    && l.contains(&format!("href=\"{url}\""))),
            "no autodiscovery link for {rel}"
        );
        assert!(site.path(&format!("feeds/{rel}")).exists());
    }
    assert!(html.contains("href=\"https://example.org/news/feeds/feeds.opml\""));
}

#[test]
fn the_sites_own_template_is_used_and_a_broken_one_is_reported() {
    let site = Site::new();
    site.story("one", "One", "2024-01-01", &["alpha"]);
    site.build();
    let built_in = site.feed_bytes("index.html");
    std::fs::create_dir_all(site.path("templates")).unwrap();
    std::fs::write(
        site.path("templates/index.html"),
        "{% for feed in feeds %}{{ feed.name }}={{ feed.stories }};{% endfor %}",
    )
    .unwrap();
    site.build();
    assert_eq!(
        site.feed_bytes("index.html"),
        b"Fixture site=1;Alfa=1;Beta=0;Gamma=0;"
    );

    std::fs::write(
        site.path("templates/index.html"),
        "line one\n{% for x in %}\n",
    )
    .unwrap();
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(check.stderr.contains("templates/index.html"), "{check}");
    site.story("two", "Two", "2024-02-01", &["alpha"]);
    let run = site.tidings(&["build"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("templates/index.html does not parse"),
        "{run}"
    );
    assert_eq!(
        site.feed("rss.xml").entries.len(),
        2,
        "the feeds are still written"
    );
    assert_eq!(
        site.feed_bytes("index.html"),
        b"Fixture site=1;Alfa=1;Beta=0;Gamma=0;",
        "the last good page stays"
    );
    assert_ne!(built_in, site.feed_bytes("index.html"));
}
