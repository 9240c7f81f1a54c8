//! Story bodies rendered only when a feed shows them: the feeds are byte
//! for byte those of a build that rendered every body at ingest, a
//! rendering is kept and used again until its story's Markdown changes,
//! and a file changed behind ingest's back is named, not shown stale.
//!
//! The golden files under `tests/golden/lazy_bodies/` hold the SHA-256 of
//! every file the feeds folder got from a build by the program before
//! bodies were rendered on demand (which rendered every body at ingest),
//! of the same sites: to make them again with another binary, run these
//! tests with `TIDINGS_TEST_DUMP_SITES=<dir>` (each site is copied there
//! before its first build), build each copy with that binary and write
//! `sha256sum` of its feeds folder's files, sorted by path, in the format
//! [`manifest`] gives.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::{FIXTURE_CONFIG, Site, ok};

/// `<sha256>  <path>` for every file under the site's feeds folder,
/// sorted by path (as `sha256sum` writes it).
fn manifest(site: &Site) -> String {
    let mut out = String::new();
    for (rel, bytes) in site.feeds_folder() {
        writeln!(out, "{}  {rel}", hex::encode(Sha256::digest(&bytes))).unwrap();
    }
    out
}

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/lazy_bodies")
        .join(format!("{name}.sha256"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies the site, before any build, to `$TIDINGS_TEST_DUMP_SITES/<name>`.
fn dump(site: &Site, name: &str) {
    if let Ok(dir) = std::env::var("TIDINGS_TEST_DUMP_SITES") {
        let to = Path::new(&dir).join(name);
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir_all(&to).unwrap();
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", site.root().display()))
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Builds the site from an empty store and checks its feeds against the
/// golden manifest; then builds again with the feeds folder gone, so that
/// every file is written from the renderings the store kept.
fn same_as_golden(site: &Site, name: &str) {
    dump(site, name);
    let run = site.build();
    let expected = golden(name);
    assert_eq!(manifest(site), expected, "{name}: first build\n{run}");
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let run = site.build();
    assert!(run.stdout.contains("0 new, 0 updated"), "{run}");
    assert_eq!(
        manifest(site),
        expected,
        "{name}: built again from kept renderings"
    );
}

#[test]
fn sample_site_feeds_are_those_of_rendering_every_body() {
    same_as_golden(&Site::sample(), "sample");
}

/// A deterministic pseudo-random number generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "kommun",
    "partnerskap",
    "demokrati",
    "dialog",
    "förtroende",
    "hållbarhet",
    "vatten",
    "skola",
    "unga",
    "jämställdhet",
    "möte",
    "rapport",
    "öppenhet",
    "budget",
    "invånare",
];

/// Markdown of every kind the renderer treats apart: plain paragraphs,
/// headings, lists, quotes, code with a language, tables; links absolute,
/// relative and root-relative; images; raw HTML (some of it hostile),
/// footnotes, e-mail autolinks, entities, a heading id.
fn corpus_body(rng: &mut Lcg) -> String {
    let mut parts = Vec::new();
    for _ in 0..(2 + rng.next(4)) {
        let mut words: Vec<String> = (0..(10 + rng.next(30)))
            .map(|_| rng.pick(WORDS).to_owned())
            .collect();
        let at = rng.next(words.len() as u64) as usize;
        match rng.next(12) {
            0 => words[at] = format!("[{}](https://example.org/{}/)", words[at], words[at]),
            1 => words[at] = format!("[{}](../andra/{})", words[at], words[at]),
            2 => words[at] = format!("[{}](/sida/{}?a=1&b=2)", words[at], words[at]),
            3 => words[at] = format!("**{}**", words[at]),
            4 => words[at] = format!("<span onclick=\"x()\">{}</span>", words[at]),
            5 => words[at] = format!("{}[^1]", words[at]),
            6 => words[at] = "<redaktion@example.org>".to_owned(),
            7 => words[at] = "&amp; &#169; &#1;".to_owned(),
            8 => words[at] = format!("[{}](javascript:alert(1))", words[at]),
            _ => {}
        }
        parts.push(words.join(" "));
    }
    match rng.next(8) {
        0 => parts.push("## Rubrik {#egen}".to_owned()),
        1 => parts.push("```rust\nlet x = 1 < 2;\n```".to_owned()),
        2 => parts.push("| a | b |\n|:--|--:|\n| 1 | 2 |".to_owned()),
        3 => parts.push("![Bild](bilder/foto.jpg \"Foto\")".to_owned()),
        4 => parts.push("<script>alert(1)</script>\n\n<div class=\"x\">ruta</div>".to_owned()),
        5 => parts.push("> – Citat, säger någon.\n\n- ett\n- två\n  1. tre".to_owned()),
        _ => parts.push("### Mer\n\nSlut.".to_owned()),
    }
    if parts.iter().any(|p| p.contains("[^1]")) {
        parts.push("[^1]: En fotnot med [länk](/not/).".to_owned());
    }
    parts.join("\n\n") + "\n"
}

/// 150 stories in three themes (the feeds show 50 each: most are never
/// rendered), some with a summary, an image, authors; two drafts.
fn corpus_site() -> Site {
    let site = Site::new();
    let mut rng = Lcg(7);
    for n in 0..150u32 {
        let themes = ["alpha", "beta", "gamma"];
        let first = rng.next(3) as usize;
        let mut chosen = vec![format!("\"{}\"", themes[first])];
        if rng.next(2) == 0 {
            chosen.push(format!("\"{}\"", themes[(first + 1) % 3]));
        }
        let mut front = format!(
            "title = \"Berättelse {n}: {} och {}\"\ndate = 2021-{:02}-{:02}T{:02}:{:02}:00Z\nthemes = [{}]\n",
            rng.pick(WORDS),
            rng.pick(WORDS),
            1 + n % 12,
            1 + n % 28,
            n % 24,
            n % 60,
            chosen.join(", ")
        );
        if rng.next(3) == 0 {
            front.push_str("summary = \"En egen sammanfattning.\"\n");
        }
        if rng.next(4) == 0 {
            front.push_str("image = \"bilder/topp.jpg\"\nimage_alt = \"Toppbild\"\n");
        }
        if rng.next(5) == 0 {
            front.push_str("authors = [\"Anna Lund\", \"Grace Wanjiru\"]\n");
        }
        if n % 75 == 3 {
            front.push_str("draft = true\n");
        }
        let body = corpus_body(&mut rng);
        site.write_story(&format!("story-{n:03}"), &front, &body);
    }
    site
}

#[test]
fn generated_corpus_feeds_are_those_of_rendering_every_body() {
    same_as_golden(&corpus_site(), "corpus");
}

fn atom(site: &Site) -> String {
    std::fs::read_to_string(site.path("feeds/atom.xml")).unwrap()
}

/// Sets a file's modification time back to what it was.
fn set_mtime(path: &Path, to: std::time::SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(to).unwrap();
}

#[test]
fn a_rendering_is_kept_until_the_markdown_changes() {
    let site = Site::with_config(FIXTURE_CONFIG);
    let front = "title = \"Vatten\"\ndate = 2024-03-01\nthemes = [\"alpha\"]";
    site.write_story("vatten", front, "Första versionen av texten.\n");
    site.write_story(
        "skola",
        "title = \"Skola\"\ndate = 2024-03-02\nthemes = [\"beta\"]",
        "Om skolan.\n",
    );
    // Old enough that ingest trusts a file's size and time (it reads
    // anything modified in the last two seconds).
    let path = site.path("content/stories/vatten.md");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    set_mtime(&path, old);
    site.build();
    assert!(atom(&site).contains("Första versionen av texten."));

    // The same size and time, other Markdown: ingest does not read the
    // file again, and the feeds, written again, show the kept rendering
    // (reading the file would find it changed).
    site.write_story("vatten", front, "Andra versionen av texten!!!\n");
    set_mtime(&path, old);
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let run = site.build();
    assert!(
        run.stdout.contains("1 unchanged") || run.stdout.contains("2 unchanged"),
        "{run}"
    );
    assert!(!run.stderr.contains("vatten.md"), "{run}");
    assert!(atom(&site).contains("Första versionen av texten."));

    // With the kept rendering gone, the file no longer gives the body the
    // store describes: the story is named and left out of the feeds, the
    // others written, and the build still succeeds.
    site.sql(&["UPDATE stories SET body_key = NULL, body_html = '' WHERE id = 'vatten'"]);
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let run = ok(site.tidings(&["build"]));
    let named = run
        .stderr
        .lines()
        .find(|l| l.contains("content/stories/vatten.md"))
        .unwrap_or_else(|| panic!("the story is named:\n{run}"));
    assert!(named.contains("changed since it was read"), "{named}");
    assert!(run.stdout.contains("1 skipped"), "{run}");
    let feed = atom(&site);
    assert!(!feed.contains("versionen av texten"), "{feed}");
    assert!(feed.contains("Om skolan."), "{feed}");

    // Touched, the file is read again: an edit, rendered anew.
    set_mtime(&path, old + std::time::Duration::from_secs(1));
    let run = site.build();
    assert!(run.stdout.contains("1 updated"), "{run}");
    let feed = atom(&site);
    assert!(feed.contains("Andra versionen av texten!!"), "{feed}");
    assert!(!feed.contains("Första versionen"), "{feed}");

    // And edited again the ordinary way: the new body, not the kept one.
    site.write_story("vatten", front, "Tredje versionen.\n");
    set_mtime(&path, old + std::time::Duration::from_secs(2));
    let run = site.build();
    assert!(run.stdout.contains("1 updated"), "{run}");
    let feed = atom(&site);
    assert!(feed.contains("Tredje versionen."), "{feed}");
    assert!(!feed.contains("Andra versionen"), "{feed}");
}

#[test]
fn a_story_stored_with_its_body_is_not_taken_for_edited() {
    // A store written before bodies were rendered on demand holds each
    // story's rendered body, and a content hash that covers it. Made here
    // by building, then putting in place what that program stored: the
    // story read and its body rendered at once, hashed with the body.
    let site = Site::with_config(FIXTURE_CONFIG);
    let front = "title = \"Vatten\"\ndate = 2024-03-01\nthemes = [\"alpha\"]";
    site.write_story("vatten", front, "Text med [länk](/annan/).\n");
    site.build();
    let before = atom(&site);
    let config = tidings::config::Config::load(&site.config_path()).unwrap();
    let tidings::config::Source::Directory(dir) = &config.sources[0] else {
        panic!("a directory source");
    };
    let scan = tidings::sources::directory::scan(&config, dir, &Default::default()).unwrap();
    let mut story = scan.stories.into_iter().next().unwrap();
    assert!(tidings::sources::bodies::render_held(&config, &mut story));
    story.body_source = None;
    let html = story.body_html.clone();
    assert!(html.contains("https://example.org/news/annan/"), "{html}");
    site.sql(&[&format!(
        "UPDATE stories SET body_html = '{}', source_hash = NULL, body_key = NULL, \
         content_hash = '{}', origin_stamp = NULL WHERE id = 'vatten'",
        html.replace('\'', "''"),
        story.content_hash()
    )]);
    // Its stamp gone, the file is read again, as after a new version: not
    // an edit, and the feed is the same.
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let run = site.build();
    assert!(run.stdout.contains("0 new, 0 updated"), "{run}");
    assert!(run.stdout.contains("1 unchanged"), "{run}");
    assert_eq!(atom(&site), before);
    // Stored the new way now, an edit is still one.
    site.write_story("vatten", front, "Ny text.\n");
    let run = site.build();
    assert!(run.stdout.contains("1 updated"), "{run}");
    assert!(atom(&site).contains("Ny text."));
}

/// A first build chooses its feeds' stories from what its ingest inserted,
/// without reading the index back from the store: the files are those a
/// build from the store writes, with stories of the same date (ordered by
/// id), dates given as `updated` before and after `date`, themes listed in
/// any order, and more stories in a theme than its feeds show.
#[test]
fn a_first_build_writes_the_feeds_a_build_from_the_store_writes() {
    let site = Site::with_config(FIXTURE_CONFIG);
    for n in 0..70u32 {
        let themes = match n % 3 {
            0 => "[\"alpha\"]",
            1 => "[\"beta\", \"alpha\"]",
            _ => "[\"alpha\", \"beta\"]",
        };
        // Five stories on each date, at the same minute.
        let mut front = format!(
            "title = \"Berättelse {n}\"\ndate = 2024-03-{:02}T10:00:00Z\nthemes = {themes}",
            1 + n / 5
        );
        match n % 7 {
            0 => front.push_str("\nupdated = 2024-05-01T08:30:00Z"),
            1 => front.push_str("\nupdated = 2023-12-31T00:00:00Z"),
            _ => {}
        }
        site.write_story(
            &format!("berattelse-{:02}", (n * 37) % 70),
            &front,
            "Text.\n",
        );
    }
    let first = site.build();
    assert!(first.stdout.contains("70 new"), "{first}");
    let written = site.feeds_folder();
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    let again = site.build();
    assert!(again.stdout.contains("0 new, 0 updated"), "{again}");
    let from_store = site.feeds_folder();
    assert_eq!(written.len(), from_store.len());
    for ((rel, bytes), (rel_again, bytes_again)) in written.iter().zip(&from_store) {
        assert_eq!(rel, rel_again);
        assert!(
            bytes == bytes_again,
            "{rel} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(bytes_again)
        );
    }
    // Fifty items a feed: the theme of all seventy lists the newest fifty.
    let alpha = written
        .iter()
        .find(|(rel, _)| rel.ends_with("alpha/atom.xml"))
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .expect("a feed of theme alpha");
    assert_eq!(alpha.matches("<entry>").count(), 50, "{alpha}");
}
