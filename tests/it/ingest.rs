//! Ingest across builds: ids that survive edits and renames, withdrawal and
//! return, byte-identical output, and a failed ingest that changes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use filetime::FileTime;
use sqlx::Connection as _;
use tidings::config::StorageUrl;

use crate::support::{Backend, Site, backend};

fn entry_ids(site: &Site, rel: &str) -> Vec<String> {
    site.feed(rel)
        .entries
        .iter()
        .map(|e| e.id.clone())
        .collect()
}

fn entry<'a>(feed: &'a feed_rs::model::Feed, id: &str) -> &'a feed_rs::model::Entry {
    feed.entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no entry {id}"))
}

#[test]
fn editing_a_story_keeps_its_id_and_moves_its_updated_time() {
    let site = Site::new();
    site.story("water", "Water", "2024-03-14", &["alpha"]);
    site.story("other", "Other", "2024-01-01", &["beta"]);
    site.build();
    let before = site.feed("atom.xml");
    let id = "tag:example.org,2024-03-14:water";
    let old = entry(&before, id);
    assert_eq!(old.updated, old.published);

    // New title, new date, new body, a theme more: still the same story.
    site.story("water", "Clean water", "2024-03-20", &["alpha", "gamma"]);
    let run = site.build();
    assert!(
        run.stdout
            .contains("0 new, 1 updated, 0 withdrawn, 1 unchanged"),
        "{run}"
    );
    for rel in [
        "rss.xml",
        "atom.xml",
        "feed.json",
        "themes/alpha/rss.xml",
        "themes/gamma/atom.xml",
    ] {
        assert!(
            entry_ids(&site, rel).contains(&id.to_owned()),
            "{rel} keeps the id"
        );
    }
    let after = site.feed("atom.xml");
    let new = entry(&after, id);
    assert_eq!(new.title.as_ref().unwrap().content, "Clean water");
    assert!(
        new.updated > old.updated,
        "updated moves when the story changes"
    );
    assert_eq!(
        after.entries.len(),
        2,
        "an edited story never shows up twice"
    );
    // The other story was not touched.
    let other = "tag:example.org,2024-01-01:other";
    assert_eq!(entry(&after, other).updated, entry(&before, other).updated);
}

#[test]
fn an_explicit_id_survives_a_renamed_file() {
    let site = Site::new();
    site.write_story(
        "first-name",
        "title = \"T\"\ndate = 2024-01-01\nid = \"keep-me\"\nthemes = [\"alpha\"]",
        "Body\n",
    );
    site.build();
    let ids = entry_ids(&site, "rss.xml");
    assert_eq!(ids, ["tag:example.org,2024-01-01:keep-me"]);

    site.remove_story("first-name");
    site.write_story(
        "second-name",
        "title = \"T\"\ndate = 2024-01-01\nid = \"keep-me\"\nthemes = [\"alpha\"]",
        "Body\n",
    );
    let run = site.build();
    assert!(
        run.stdout.contains("0 new, 1 updated, 0 withdrawn"),
        "{run}"
    );
    let feed = site.feed("rss.xml");
    assert_eq!(
        entry_ids(&site, "rss.xml"),
        ids,
        "same guid after the rename"
    );
    assert_eq!(
        feed.entries[0].links[0].href,
        "https://example.org/news/stories/second-name/"
    );
}

#[test]
fn a_renamed_file_without_id_is_a_new_story_and_the_old_one_is_withdrawn() {
    let site = Site::new();
    site.story("a", "A", "2024-01-01", &["alpha"]);
    site.build();
    site.remove_story("a");
    site.story("b", "A", "2024-01-01", &["alpha"]);
    let run = site.build();
    assert!(
        run.stdout.contains("1 new, 0 updated, 1 withdrawn"),
        "{run}"
    );
    assert_eq!(
        entry_ids(&site, "rss.xml"),
        ["tag:example.org,2024-01-01:b"]
    );
}

#[test]
fn removed_and_draft_stories_are_withdrawn_and_may_come_back() {
    let site = Site::new();
    site.story("stay", "Stay", "2024-01-01", &["alpha"]);
    site.story("gone", "Gone", "2024-02-01", &["alpha"]);
    site.story("hidden", "Hidden", "2024-03-01", &["beta"]);
    site.build();
    assert_eq!(entry_ids(&site, "rss.xml").len(), 3);

    site.remove_story("gone");
    site.write_story(
        "hidden",
        "title = \"Hidden\"\ndate = 2024-03-01\nthemes = [\"beta\"]\ndraft = true",
        "x\n",
    );
    let run = site.build();
    assert!(
        run.stdout
            .contains("0 new, 0 updated, 2 withdrawn, 1 unchanged"),
        "{run}"
    );
    for rel in ["rss.xml", "atom.xml", "feed.json", "themes/alpha/rss.xml"] {
        assert_eq!(
            entry_ids(&site, rel),
            ["tag:example.org,2024-01-01:stay"],
            "{rel}"
        );
    }
    assert!(entry_ids(&site, "themes/beta/atom.xml").is_empty());

    // Published again: the same story, with the same id, not a new one.
    site.story("hidden", "Hidden", "2024-03-01", &["beta"]);
    let run = site.build();
    assert!(
        run.stdout.contains("0 new, 1 updated, 0 withdrawn"),
        "{run}"
    );
    assert_eq!(
        entry_ids(&site, "themes/beta/rss.xml"),
        ["tag:example.org,2024-03-01:hidden"]
    );
}

fn snapshot_files(site: &Site) -> BTreeMap<String, (Vec<u8>, FileTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![site.path("feeds")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let meta = std::fs::metadata(&path).unwrap();
                let rel = path
                    .strip_prefix(site.root())
                    .unwrap()
                    .display()
                    .to_string();
                out.insert(
                    rel,
                    (
                        std::fs::read(&path).unwrap(),
                        FileTime::from_last_modification_time(&meta),
                    ),
                );
            }
        }
    }
    out
}

/// Dates every feed file a day back, so that any rewrite shows; returns
/// that time and the files.
fn age_feed_files(site: &Site) -> (FileTime, BTreeMap<String, (Vec<u8>, FileTime)>) {
    let past = FileTime::from_system_time(SystemTime::now() - Duration::from_secs(86_400));
    for path in snapshot_files(site).keys() {
        filetime::set_file_mtime(site.path(path), past).unwrap();
    }
    (past, snapshot_files(site))
}

#[test]
fn building_twice_leaves_every_file_byte_identical_and_untouched() {
    let site = Site::sample();
    site.build();
    let (past, before) = age_feed_files(&site);
    assert!(before.len() >= 34, "10 themes x 3 + 3 + OPML");
    let run = site.build();
    assert!(run.stdout.contains("0 written"), "{run}");
    let after = snapshot_files(&site);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, (bytes, mtime)) in &before {
        assert!(after[path].0 == *bytes, "{path} changed");
        assert_eq!(after[path].1, *mtime, "{path} was rewritten");
        assert_eq!(*mtime, past);
    }
}

#[test]
fn a_new_story_rewrites_only_the_feeds_that_list_it_and_the_same_bytes_as_a_full_build() {
    let site = Site::sample();
    site.build();
    let (past, before) = age_feed_files(&site);
    // Newer than every sample story, in one theme.
    site.story(
        "ny-vattenplan",
        "Ny vattenplan",
        "2030-01-01",
        &["miljo-och-klimat"],
    );
    let run = site.build();
    assert!(run.stdout.contains("1 new"), "{run}");
    let after = snapshot_files(&site);
    let touched: Vec<&String> = after.keys().filter(|path| after[*path].1 != past).collect();
    let mut expected: Vec<String> = ["rss.xml", "atom.xml", "feed.json"]
        .iter()
        .flat_map(|f| {
            [
                format!("feeds/{f}"),
                format!("feeds/themes/miljo-och-klimat/{f}"),
            ]
        })
        .chain(["feeds/feeds.opml".into(), "feeds/index.html".into()])
        .collect();
    expected.sort();
    assert_eq!(touched, expected.iter().collect::<Vec<_>>());
    for path in before.keys().filter(|p| !expected.contains(p)) {
        assert!(after[path].0 == before[path].0, "{path} changed");
    }
    for rel in [
        "atom.xml",
        "themes/miljo-och-klimat/rss.xml",
        "themes/miljo-och-klimat/feed.json",
    ] {
        let feed = site.feed(rel);
        let title = feed.entries[0].title.as_ref().map(|t| t.content.as_str());
        assert_eq!(title, Some("Ny vattenplan"), "{rel}");
    }
    // What was rendered in part is what a build from scratch renders.
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    site.reset_store();
    site.build();
    let fresh = snapshot_files(&site);
    assert_eq!(fresh.len(), after.len());
    for (path, (bytes, _)) in &after {
        assert!(fresh[path].0 == *bytes, "{path} differs from a full build");
    }
}

#[test]
fn the_same_stories_give_the_same_bytes_from_a_fresh_store() {
    let site = Site::sample();
    site.build();
    let first = snapshot_files(&site);
    std::fs::remove_dir_all(site.path("feeds")).unwrap();
    site.reset_store();
    site.build();
    let second = snapshot_files(&site);
    assert_eq!(first.len(), second.len());
    for (path, (bytes, _)) in &first {
        assert!(
            second[path].0 == *bytes,
            "{path} differs between two builds of the same input"
        );
    }
}

/// Runs SQL against the site's store with sqlx, as an operator's tool
/// would, and returns every story's id, content hash and withdrawal time.
fn sql(site: &Site, statements: &[&str]) -> Vec<(String, String, Option<String>)> {
    site.sql(statements);
    let url = site.storage_url();
    crate::support::block_on(|| async move {
        // The time as text in both dialects; only compared with itself.
        let query = "SELECT id, content_hash, CAST(withdrawn_at AS TEXT) AS withdrawn_at
                     FROM stories ORDER BY id";
        match &url {
            StorageUrl::Sqlite(path) => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
            }
            StorageUrl::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_as(query).fetch_all(&mut conn).await.unwrap()
            }
        }
    })
}

#[test]
fn an_ingest_that_fails_half_way_leaves_the_store_and_feeds_as_they_were() {
    let site = Site::new();
    site.story("keep", "Keep", "2024-01-01", &["alpha"]);
    site.story("remove", "Remove", "2024-02-01", &["alpha"]);
    site.build();
    let feeds_before = snapshot_files(&site);
    // A fault injected inside the database: inserting the story `boom`
    // fails, after the other changes of the same ingest were made.
    let (trigger, drop_trigger): (&[&str], &str) = match backend() {
        Backend::Sqlite => (
            &[
                "CREATE TRIGGER fail_boom BEFORE INSERT ON stories WHEN NEW.slug = 'boom'
               BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            "DROP TRIGGER fail_boom",
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                "CREATE TRIGGER fail_boom BEFORE INSERT ON stories
                 FOR EACH ROW WHEN (NEW.slug = 'boom') EXECUTE FUNCTION fail_boom()",
            ],
            "DROP TRIGGER fail_boom ON stories",
        ),
    };
    let before = sql(&site, trigger);
    assert_eq!(before.len(), 2);

    site.story("keep", "Keep, edited", "2024-01-01", &["alpha"]);
    site.remove_story("remove");
    site.story("aaa", "First new", "2024-03-01", &["beta"]);
    site.story("boom", "Boom", "2024-04-01", &["beta"]);
    let run = site.tidings(&["build"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("injected failure"), "{run}");
    assert_eq!(
        sql(&site, &[]),
        before,
        "nothing of the failed ingest was kept"
    );
    let feeds_after = snapshot_files(&site);
    assert!(
        feeds_before == feeds_after,
        "feeds untouched by the failed build"
    );

    let after = sql(&site, &[drop_trigger]);
    assert_eq!(after, before);
    let run = site.build();
    assert!(
        run.stdout.contains("2 new, 1 updated, 1 withdrawn"),
        "{run}"
    );
}

/// The statements that make inserting the story with slug `slug` fail
/// inside the database, and the one that undoes them.
fn failing_insert(slug: &str) -> (Vec<String>, &'static str) {
    match backend() {
        Backend::Sqlite => (
            vec![format!(
                "CREATE TRIGGER fail_boom BEFORE INSERT ON stories WHEN NEW.slug = '{slug}'
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )],
            "DROP TRIGGER fail_boom",
        ),
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER fail_boom BEFORE INSERT ON stories
                     FOR EACH ROW WHEN (NEW.slug = '{slug}') EXECUTE FUNCTION fail_boom()"
                ),
            ],
            "DROP TRIGGER fail_boom ON stories",
        ),
    }
}

/// A folder is read and written a part at a time (1,000 files), all in one
/// transaction: a failure in a later part keeps nothing of the earlier
/// ones, and a new file is matched against every unchanged one, whichever
/// part it falls in.
#[test]
fn a_folder_larger_than_a_part_is_stored_whole_or_not_at_all() {
    const STORIES: usize = 1_100;
    let site = Site::new();
    site.build(); // an empty store, and feeds with nothing in them
    let feeds_before = snapshot_files(&site);
    let first = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    for i in 0..STORIES {
        let date = first + chrono::Days::new(i as u64);
        let theme = if i % 2 == 0 { "alpha" } else { "beta" };
        site.story(
            &format!("s{i:04}"),
            &format!("Story {i}"),
            &date.to_string(),
            &[theme],
        );
    }
    // `s1050` is in the second part of the folder (files are read in path
    // order).
    let (trigger, drop_trigger) = failing_insert("s1050");
    let trigger: Vec<&str> = trigger.iter().map(String::as_str).collect();
    assert_eq!(sql(&site, &trigger), []);
    let run = site.tidings(&["build"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("injected failure"), "{run}");
    assert_eq!(sql(&site, &[]), [], "nothing of the first part was kept");
    assert!(snapshot_files(&site) == feeds_before, "feeds untouched");

    sql(&site, &[drop_trigger]);
    let run = site.build();
    assert!(run.stdout.contains(&format!("{STORIES} new")), "{run}");
    let stored = sql(&site, &[]);
    assert_eq!(stored.len(), STORIES);
    assert!(stored.iter().all(|(_, _, withdrawn)| withdrawn.is_none()));
    // Entry ids are `tag:` URIs ending in the story's id.
    let newest = entry_ids(&site, "rss.xml");
    assert!(newest[0].ends_with(":s1099"), "{newest:?}");
    let alpha = entry_ids(&site, "themes/alpha/atom.xml");
    assert!(alpha[0].ends_with(":s1098"), "{alpha:?}");

    // Unchanged files are not read again, yet a new file that takes the
    // slug of one of them is refused.
    age_stories(&site, 3);
    site.write_story(
        "zzz-copy",
        "title = \"Copy\"\ndate = 2030-01-01\nthemes = [\"alpha\"]\nslug = \"s0001\"",
        "A copy.\n",
    );
    let run = site.build();
    assert!(
        run.stdout.contains(&format!(
            "0 new, 0 updated, 0 withdrawn, {STORIES} unchanged, 1 skipped"
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("the slug `s0001` is already used by content/stories/s0001.md"),
        "{run}"
    );
    assert_eq!(sql(&site, &[]), stored, "the store did not change");
}

/// Dates every story file `days` in the past, out of the window in which a
/// file is always read again.
fn age_stories(site: &Site, days: u64) {
    let past = FileTime::from_system_time(SystemTime::now() - Duration::from_secs(days * 86_400));
    for entry in std::fs::read_dir(site.path("content/stories")).unwrap() {
        filetime::set_file_mtime(entry.unwrap().path(), past).unwrap();
    }
}

/// The `ingest` log line of a build, as JSON.
fn ingest_log(site: &Site) -> serde_json::Value {
    logged(&build_logs(site).1, "ingest")
}

/// A build's standard output and log lines (each line's fields, as JSON).
fn build_logs(site: &Site) -> (String, Vec<serde_json::Value>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["--log-format", "json", "--config"])
        .arg(site.config_path())
        .arg("build")
        .env("TIDINGS_LOG", "tidings=info")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["fields"].clone())
        .collect();
    (String::from_utf8(out.stdout).unwrap(), lines)
}

/// The first log line whose message starts with `message`.
fn logged(lines: &[serde_json::Value], message: &str) -> serde_json::Value {
    lines
        .iter()
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .unwrap_or_else(|| panic!("no log line {message}: {lines:?}"))
        .clone()
}

#[test]
fn unchanged_files_are_not_read_again_but_every_change_is_seen() {
    let site = Site::new();
    site.story("a", "A", "2024-01-01", &["alpha"]);
    site.story("b", "B", "2024-02-01", &["beta"]);
    site.story("c", "C", "2024-03-01", &["gamma"]);
    age_stories(&site, 3);
    let first = ingest_log(&site);
    assert_eq!(first["new"], 3);
    let second = ingest_log(&site);
    assert_eq!(
        (second["unchanged"].as_u64(), second["unread"].as_u64()),
        (Some(3), Some(3))
    );

    // An edit gives the file a new modification time: it is read again.
    site.story("b", "B edited", "2024-02-01", &["beta"]);
    let third = ingest_log(&site);
    assert_eq!(
        (third["changed"].as_u64(), third["unread"].as_u64()),
        (Some(1), Some(2))
    );
    let titles: Vec<String> = site
        .feed("rss.xml")
        .entries
        .iter()
        .map(|e| e.title.clone().unwrap().content)
        .collect();
    assert_eq!(titles, ["C", "B edited", "A"]);

    // A file moved away and back keeps its time and size, but its story was
    // withdrawn meanwhile: it is read and published again.
    let away = site.path("away.md");
    std::fs::rename(site.path("content/stories/c.md"), &away).unwrap();
    assert_eq!(ingest_log(&site)["withdrawn"], 1);
    std::fs::rename(&away, site.path("content/stories/c.md")).unwrap();
    let back = ingest_log(&site);
    assert_eq!(
        (back["changed"].as_u64(), back["withdrawn"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(site.feed("themes/gamma/atom.xml").entries.len(), 1);
}

#[test]
fn a_config_change_that_shapes_stories_makes_every_file_be_read_again() {
    let site = Site::new();
    site.story("a", "A", "2024-01-01", &["alpha"]);
    age_stories(&site, 3);
    ingest_log(&site);
    assert_eq!(ingest_log(&site)["unread"], 1);
    let moved = crate::support::FIXTURE_CONFIG
        .replace("https://example.org/news", "https://news.example.net");
    site.write_config(&moved);
    let log = ingest_log(&site);
    assert_eq!(
        (log["changed"].as_u64(), log["unread"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        site.feed("rss.xml").entries[0].links[0].href,
        "https://news.example.net/stories/a/"
    );
}

#[test]
fn feeds_are_not_planned_while_no_story_changes_but_every_change_is_seen() {
    let site = Site::sample();
    age_stories(&site, 3);
    site.build();
    let (past, before) = age_feed_files(&site);
    // Touched files are looked at again (and found as they were).
    let (out, logs) = build_logs(&site);
    assert!(out.contains("0 written"), "{out}");
    assert_eq!(logged(&logs, "feeds")["message"], "feeds");
    let quiet = "feeds: no story has changed since the last build";
    let (_, logs) = build_logs(&site);
    assert_eq!(logged(&logs, "feeds")["message"], quiet);
    let stories = logged(&logs, "ingest")["unread"].as_u64().unwrap();
    assert!(stories > 10, "{logs:?}");

    // A story file touched but not changed is read again and seen, and no
    // story changed: still nothing to plan, nothing written.
    let touched = std::fs::read_dir(site.path("content/stories"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .unwrap();
    let day_ago = FileTime::from_system_time(SystemTime::now() - Duration::from_secs(86_400));
    filetime::set_file_mtime(&touched, day_ago).unwrap();
    let (out, logs) = build_logs(&site);
    assert!(out.contains("0 written"), "{out}");
    let ingest = logged(&logs, "ingest");
    assert_eq!(
        (ingest["changed"].as_u64(), ingest["unread"].as_u64()),
        (Some(0), Some(stories - 1))
    );
    assert_eq!(logged(&logs, "feeds")["message"], quiet);
    for (path, (bytes, mtime)) in &snapshot_files(&site) {
        assert!(before[path].0 == *bytes, "{path} changed");
        assert_eq!(*mtime, past, "{path} was rewritten");
    }

    // A feed file removed is planned and written again, as it was; then
    // the build after it has nothing to plan.
    let removed = "feeds/themes/miljo-och-klimat/atom.xml";
    std::fs::remove_file(site.path(removed)).unwrap();
    let (out, logs) = build_logs(&site);
    assert!(out.contains("feeds: 1 written"), "{out}");
    assert_eq!(logged(&logs, "feeds")["message"], "feeds");
    assert!(snapshot_files(&site)[removed].0 == before[removed].0);
    assert_eq!(logged(&build_logs(&site).1, "feeds")["message"], quiet);

    // A story added: the feeds that list it are planned and written.
    site.story(
        "ny-vattenplan",
        "Ny vattenplan",
        "2030-01-01",
        &["miljo-och-klimat"],
    );
    let (out, logs) = build_logs(&site);
    assert!(out.contains("1 new"), "{out}");
    assert_eq!(logged(&logs, "feeds")["message"], "feeds");
    let feed = site.feed("themes/miljo-och-klimat/atom.xml");
    let title = feed.entries[0].title.clone().unwrap().content;
    assert_eq!(title, "Ny vattenplan");
    assert_eq!(logged(&build_logs(&site).1, "feeds")["message"], quiet);
}
