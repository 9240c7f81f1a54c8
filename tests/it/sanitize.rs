//! A hostile story: scripts, event handlers, `javascript:` links, frames,
//! styles, control characters, `]]>`, right-to-left text and emoji. Every
//! feed it lands in must parse, carry none of the dangerous parts, keep the
//! text, and make relative URLs absolute.

use std::path::PathBuf;

use crate::support::{Site, feedparser};

/// Title and summary use TOML escapes (TOML strings cannot hold raw control
/// characters); the body holds raw ones.
const FRONT_MATTER: &str = concat!(
    "+++\n",
    "title = \"Tom & Jerry <b>bold</b> \\u0001x\\u0008y\\u001B z 🙂 مرحبا שלום \\u202Eevil\"\n",
    "date = 2024-03-14\n",
    "themes = [\"alpha\"]\n",
    "summary = \"Sum\\u0001mary ]]> & <tag> \\u001Bend 🙂 مرحبا\"\n",
    "image = \"cover.png\"\n",
    "+++\n",
);

const BODY: &str = concat!(
    "Hello\u{1} world\u{8} esc\u{1B}ape\u{7F}.\n\n",
    "<script>alert(1)</script>\n\n",
    "<img src=\"x.png\" onerror=\"alert(1)\">\n\n",
    "[click](javascript:alert(1))\n\n",
    "<iframe src=\"https://evil.example\"></iframe>\n\n",
    "<style>body{}</style>\n\n",
    "<a href=\"/relative/\">rel</a> and [up](../other/) and ![pic](img/pic.jpg)\n\n",
    "CDATA end ]]> in text and `]]>` in code.\n\n",
    "שלום עולם and مرحبا بالعالم \u{202E} reversed 🎉\n",
);

const STORY_URL: &str = "https://example.org/news/stories/hostile/";

/// Pieces of the title that must survive every parser.
const TITLE_PARTS: &[&str] = &[
    "Tom & Jerry <b>bold</b>",
    "🙂",
    "مرحبا",
    "שלום",
    "\u{202E}evil",
];

/// What must not survive sanitizing, in any form.
const DANGEROUS: &[&str] = &[
    "<script",
    "onerror",
    "javascript:",
    "<iframe",
    "<style",
    "alert(",
    "evil.example",
    "body{}",
];

fn hostile_site() -> Site {
    let site = Site::new();
    site.story("calm", "Calm story", "2024-03-01", &["alpha"]);
    site.write_story_bytes("hostile", format!("{FRONT_MATTER}{BODY}").as_bytes());
    let run = site.build();
    assert!(run.stdout.contains("2 new"), "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    site
}

/// Characters XML 1.0 forbids, plus DEL and the C1 controls.
fn is_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

fn assert_no_control(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| is_control(c)) {
        panic!("{what}: control character {c:?} in {text:?}");
    }
}

fn assert_not_dangerous(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for bad in DANGEROUS {
        assert!(!lower.contains(bad), "{what}: {bad:?} survived in {text}");
    }
}

/// The hostile story's title, summary and content as a parser read them.
struct Read {
    title: String,
    summary: String,
    content: String,
}

/// The hostile entry of `rel`, as feed-rs reads it.
fn read_with_feed_rs(site: &Site, rel: &str) -> Read {
    let feed = site.feed(rel);
    assert_eq!(feed.entries.len(), 2, "{rel}");
    let entry = feed
        .entries
        .iter()
        .find(|e| e.links.iter().any(|l| l.href == STORY_URL))
        .unwrap_or_else(|| panic!("{rel}: no entry links to {STORY_URL}"));
    Read {
        title: entry
            .title
            .as_ref()
            .map(|t| t.content.clone())
            .unwrap_or_default(),
        summary: entry
            .summary
            .as_ref()
            .map(|t| t.content.clone())
            .unwrap_or_default(),
        content: entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .unwrap_or_else(|| panic!("{rel}: no content")),
    }
}

/// The hostile entry of each file, as Python's feedparser reads it; `None`
/// when feedparser is not installed (outside CI).
fn read_with_feedparser(site: &Site, rels: &[&str]) -> Option<Vec<(String, Read)>> {
    let paths: Vec<PathBuf> = rels
        .iter()
        .map(|r| site.path(&format!("feeds/{r}")))
        .collect();
    let report = feedparser(&paths)?;
    let mut out = Vec::new();
    for (rel, path) in rels.iter().zip(&paths) {
        let feed = &report[path.to_str().unwrap()];
        assert_eq!(
            feed["bozo"], 0,
            "{rel}: feedparser: {}",
            feed["bozo_exception"]
        );
        let entry = feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["link"] == STORY_URL)
            .unwrap_or_else(|| panic!("{rel}: feedparser found no entry for {STORY_URL}"));
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        out.push((
            rel.to_string(),
            Read {
                title: text(&entry["title"]),
                summary: text(&entry["summary"]),
                content: text(&entry["content"][0]),
            },
        ));
    }
    Some(out)
}

#[test]
fn feed_files_hold_no_control_characters_or_dangerous_markup() {
    let site = hostile_site();
    for rel in site.feed_files(&["alpha"]) {
        let bytes = site.feed_bytes(&rel);
        let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{rel}: not UTF-8: {e}"));
        assert_no_control(&rel, &text);
        // Whatever the escaping, these never appear in the file at all.
        let lower = text.to_lowercase();
        for bad in ["onerror", "javascript:", "alert(", "evil.example", "body{}"] {
            assert!(!lower.contains(bad), "{rel}: {bad:?} survived");
        }
        // The right-to-left override is text, not a control: it stays.
        assert!(text.contains('\u{202E}'), "{rel}");
    }
}

#[test]
fn every_format_parses_and_keeps_the_text_but_not_the_markup() {
    let site = hostile_site();
    for rel in site.feed_files(&["alpha"]) {
        let read = read_with_feed_rs(&site, &rel);
        let what = format!("{rel} (feed-rs)");
        check_read(&what, &read);
    }
}

#[test]
fn feedparser_reads_rss_and_atom_without_complaint() {
    let site = hostile_site();
    let rels = [
        "rss.xml",
        "atom.xml",
        "themes/alpha/rss.xml",
        "themes/alpha/atom.xml",
    ];
    let Some(reads) = read_with_feedparser(&site, &rels) else {
        return;
    };
    assert_eq!(reads.len(), rels.len());
    for (rel, read) in reads {
        check_read(&format!("{rel} (feedparser)"), &read);
    }
}

/// Text as a reader shows an HTML field: the five XML entities decoded
/// (what the hostile summary can contain; plain text passes unchanged).
fn html_text(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// What every parser must see in the hostile entry.
fn check_read(what: &str, read: &Read) {
    for (field, text) in [
        ("title", &read.title),
        ("summary", &read.summary),
        ("content", &read.content),
    ] {
        assert_no_control(&format!("{what} {field}"), text);
        assert_not_dangerous(&format!("{what} {field}"), text);
    }
    for part in TITLE_PARTS {
        assert!(
            read.title.contains(part),
            "{what}: title lost {part:?}: {:?}",
            read.title
        );
    }
    assert!(read.title.contains("xy z"), "{what}: {:?}", read.title);
    // RSS descriptions are HTML: what a reader shows is the unescaped text.
    let summary = html_text(&read.summary);
    assert!(
        summary.contains("Summary ]]> & <tag> end"),
        "{what}: summary {:?}",
        read.summary
    );
    assert!(
        summary.contains("end 🙂 مرحبا"),
        "{what}: summary {:?}",
        read.summary
    );

    let c = &read.content;
    assert!(c.contains("Hello world escape."), "{what}: {c}");
    // `]]>` is text in the body: HTML-escaped there, but present.
    assert!(c.contains("CDATA end ]]&gt; in text"), "{what}: {c}");
    assert!(c.contains("<code>]]&gt;</code>"), "{what}: {c}");
    assert!(
        c.contains("שלום עולם and مرحبا بالعالم \u{202E} reversed 🎉"),
        "{what}: {c}"
    );
    // The link text stays even though its javascript: URL is gone.
    assert!(c.contains(">click</a>"), "{what}: {c}");
    // Document-relative links and images are absolute, under the story.
    for url in [
        "https://example.org/news/stories/hostile/x.png",
        "https://example.org/news/stories/hostile/img/pic.jpg",
        "https://example.org/news/stories/other/",
        "https://example.org/news/stories/hostile/cover.png",
    ] {
        assert!(
            c.contains(&format!("\"{url}\"")),
            "{what}: {url} missing in {c}"
        );
    }
    for relative in [
        "\"x.png\"",
        "\"img/pic.jpg\"",
        "\"../other/\"",
        "\"cover.png\"",
        "\"/relative/\"",
    ] {
        assert!(
            !c.contains(relative),
            "{what}: {relative} left relative in {c}"
        );
    }
}

#[test]
fn json_feed_keeps_the_text_exactly() {
    let site = hostile_site();
    let json: serde_json::Value = serde_json::from_slice(&site.feed_bytes("feed.json")).unwrap();
    let item = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"] == STORY_URL)
        .expect("the hostile item");
    assert_eq!(
        item["title"],
        "Tom & Jerry <b>bold</b> xy z 🙂 مرحبا שלום \u{202E}evil"
    );
    assert_eq!(item["summary"], "Summary ]]> & <tag> end 🙂 مرحبا");
    assert_eq!(
        item["image"],
        "https://example.org/news/stories/hostile/cover.png"
    );
}

/// A link written from the site's root (`/relative/`) belongs under the
/// site's base URL, which here has a path (`/news/`).
#[test]
fn root_relative_links_stay_under_the_base_url() {
    let site = hostile_site();
    for rel in ["rss.xml", "atom.xml", "feed.json"] {
        let read = read_with_feed_rs(&site, rel);
        assert!(
            read.content
                .contains("\"https://example.org/news/relative/\""),
            "{rel}: {}",
            read.content
        );
    }
}

/// RSS readers treat `<description>` as HTML, so a plain-text summary must
/// be escaped: `<tag>` is text the editor wrote, not markup.
#[test]
fn rss_summary_with_angle_brackets_survives_feedparser() {
    let site = hostile_site();
    let Some(reads) = read_with_feedparser(&site, &["rss.xml"]) else {
        return;
    };
    for (rel, read) in reads {
        assert!(
            read.summary.contains("&amp; &lt;tag&gt; end"),
            "{rel}: the description is escaped HTML: {:?}",
            read.summary
        );
        assert!(
            html_text(&read.summary).contains("& <tag> end"),
            "{rel}: {:?}",
            read.summary
        );
    }
}
