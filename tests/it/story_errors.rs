//! Bad story files: each is reported with its path, line and reason and
//! skipped, while every good story is still published. `build` exits 0,
//! `build --strict` and `check` exit 1.

use std::collections::BTreeSet;

use crate::support::{Run, Site};

/// The fixture site with two good stories.
fn site_with_good_stories() -> Site {
    let site = Site::new();
    site.story("good-one", "Good one", "2024-03-01", &["alpha"]);
    site.story(
        "good-two",
        "Good two",
        "2024-03-02T10:00:00+01:00",
        &["beta"],
    );
    site
}

const GOOD: &[&str] = &["Good one", "Good two"];

/// Entry titles of a feed parsed by feed-rs.
fn titles(site: &Site, rel: &str) -> BTreeSet<String> {
    site.feed(rel)
        .entries
        .iter()
        .map(|e| e.title.as_ref().expect("entry title").content.clone())
        .collect()
}

fn set(titles: &[&str]) -> BTreeSet<String> {
    titles.iter().map(|t| t.to_string()).collect()
}

/// The stderr lines that name a story file.
fn story_lines(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("content/stories/"))
        .collect()
}

/// The one stderr line about `file`, which must start with `file:LINE:COL: `
/// (or `file: ` when `at` is `None`) and contain every fragment of `says`.
fn line_about<'a>(run: &'a Run, file: &str, at: Option<(usize, usize)>, says: &[&str]) -> &'a str {
    let prefix = match at {
        Some((line, col)) => format!("{file}:{line}:{col}: "),
        None => format!("{file}: "),
    };
    let lines: Vec<&str> = story_lines(run)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{file}:")))
        .collect();
    assert_eq!(lines.len(), 1, "expected one line about {file}:\n{run}");
    let line = lines[0];
    assert!(line.starts_with(&prefix), "expected {prefix:?}:\n{run}");
    for fragment in says {
        assert!(line.contains(fragment), "expected {fragment:?} in {line:?}");
    }
    line
}

/// Runs `check`, `build` and `build --strict` on a site whose only bad story
/// is `file`: each reports it (at `at`, saying `says`) and nothing else; the
/// build publishes exactly `published`.
fn assert_skipped(
    site: &Site,
    file: &str,
    at: Option<(usize, usize)>,
    says: &[&str],
    published: &[&str],
) {
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "check should fail:\n{check}");
    let reported = line_about(&check, file, at, says).to_owned();
    assert_eq!(
        story_lines(&check).len(),
        1,
        "only the bad story is reported:\n{check}"
    );
    assert!(check.stderr.lines().any(|l| l == "1 problem"), "{check}");
    assert!(!check.stdout.contains("ok"), "{check}");

    let build = site.tidings(&["build"]);
    assert_eq!(
        build.code, 0,
        "a skipped story does not fail the build:\n{build}"
    );
    assert_eq!(
        line_about(&build, file, at, says),
        reported,
        "build and check agree"
    );
    assert_eq!(
        story_lines(&build).len(),
        1,
        "only the bad story is reported:\n{build}"
    );
    let n = published.len();
    assert!(
        build.stdout.contains(&format!(
            "{n} new, 0 updated, 0 withdrawn, 0 unchanged, 1 skipped; {n} published"
        )),
        "{build}"
    );
    assert_eq!(titles(site, "rss.xml"), set(published));
    assert_eq!(titles(site, "atom.xml"), set(published));
    assert_eq!(titles(site, "feed.json"), set(published));

    let strict = site.tidings(&["build", "--strict"]);
    assert_eq!(
        strict.code, 1,
        "--strict fails on a skipped story:\n{strict}"
    );
    assert_eq!(line_about(&strict, file, at, says), reported);
    assert!(
        strict.stderr.contains("--strict: 1 story skipped"),
        "{strict}"
    );
    assert!(strict.stdout.contains("1 skipped"), "{strict}");
    // --strict still writes what it can: the good stories stay published.
    assert_eq!(titles(site, "rss.xml"), set(published));
}

const BAD: &str = "content/stories/bad.md";

#[test]
fn no_front_matter() {
    let site = site_with_good_stories();
    site.write_story_bytes("bad", b"title = \"Bad\"\n\nJust a body.\n");
    assert_skipped(
        &site,
        BAD,
        Some((1, 1)),
        &["expected TOML front matter between `+++` lines"],
        GOOD,
    );
}

#[test]
fn unterminated_front_matter() {
    let site = site_with_good_stories();
    site.write_story_bytes(
        "bad",
        b"+++\ntitle = \"Bad\"\ndate = 2024-03-03\n\nThe body, but no closing line.\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((1, 1)),
        &["front matter between `+++` lines"],
        GOOD,
    );
}

#[test]
fn invalid_toml_in_front_matter_gives_the_line_in_the_file() {
    let site = site_with_good_stories();
    // Line 1 is the opening `+++`; the bad line is line 5 of the file.
    site.write_story_bytes(
        "bad",
        b"+++\ntitle = \"Bad\"\ndate = 2024-03-03\n\nsummary = = \"x\"\n+++\nBody\n",
    );
    assert_skipped(&site, BAD, Some((5, 11)), &["invalid front matter"], GOOD);
}

#[test]
fn missing_title() {
    let site = site_with_good_stories();
    site.write_story("bad", "date = 2024-03-03\nthemes = [\"alpha\"]", "Body\n");
    assert_skipped(
        &site,
        BAD,
        Some((1, 1)),
        &["`title`: missing `title`"],
        GOOD,
    );
}

#[test]
fn empty_title() {
    let site = site_with_good_stories();
    site.write_story("bad", "date = 2024-03-03\ntitle = \" \\u0001 \"", "Body\n");
    // A title of blanks and control characters is no title; the problem
    // points at its value.
    assert_skipped(
        &site,
        BAD,
        Some((3, 9)),
        &["`title`: missing `title`"],
        GOOD,
    );
}

#[test]
fn missing_date() {
    let site = site_with_good_stories();
    site.write_story("bad", "title = \"Bad\"", "Body\n");
    assert_skipped(
        &site,
        BAD,
        Some((1, 1)),
        &["`date`: missing `date`", "2024-03-14"],
        GOOD,
    );
}

#[test]
fn bad_date_string() {
    let site = site_with_good_stories();
    site.write_story("bad", "title = \"Bad\"\ndate = \"14/03/2024\"", "Body\n");
    assert_skipped(
        &site,
        BAD,
        Some((3, 8)),
        &["`date`: `14/03/2024` is not a date"],
        GOOD,
    );
}

#[test]
fn date_of_the_wrong_type() {
    let site = site_with_good_stories();
    site.write_story("bad", "title = \"Bad\"\ndate = 20240314", "Body\n");
    assert_skipped(
        &site,
        BAD,
        Some((3, 8)),
        &["`date`: expected a date", "found integer"],
        GOOD,
    );
}

#[test]
fn local_time_skipped_by_dst_is_rejected() {
    let site = site_with_good_stories();
    // Europe/Stockholm jumps from 02:00 to 03:00 on 2024-03-31.
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = 2024-03-31T02:30:00",
        "Body\n",
    );
    site.write_story(
        "after-jump",
        "title = \"After the jump\"\ndate = 2024-03-31T03:30:00",
        "Body\n",
    );
    site.write_story(
        "with-offset",
        "title = \"With offset\"\ndate = 2024-03-31T02:30:00+01:00",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((3, 8)),
        &["`2024-03-31T02:30:00` does not exist in Europe/Stockholm"],
        &["Good one", "Good two", "After the jump", "With offset"],
    );
}

#[test]
fn local_time_skipped_by_dst_as_a_string() {
    let site = site_with_good_stories();
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = \"2024-03-31T02:30:00\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((3, 8)),
        &["does not exist in Europe/Stockholm"],
        GOOD,
    );
}

#[test]
fn unknown_theme_lists_the_known_ones() {
    let site = site_with_good_stories();
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = 2024-03-03\nthemes = [\"alpha\", \"delta\"]",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((4, 10)),
        &["`themes`: unknown theme `delta`; expected one of: alpha, beta, gamma"],
        GOOD,
    );
    // The good story of theme alpha is in its feed; the bad one nowhere.
    assert_eq!(titles(&site, "themes/alpha/rss.xml"), set(&["Good one"]));
}

#[test]
fn unknown_front_matter_key() {
    let site = site_with_good_stories();
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = 2024-03-03\ntags = [\"a\", \"b\"]",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((4, 8)),
        &["`tags`: unknown front matter key; expected one of: title, date"],
        GOOD,
    );
}

#[test]
fn invalid_utf8_in_the_body() {
    let site = site_with_good_stories();
    site.write_story_bytes(
        "bad",
        b"+++\ntitle = \"Bad\"\ndate = 2024-03-03\n+++\nFirst line.\nab\xff\xfe cd\n",
    );
    assert_skipped(&site, BAD, Some((6, 3)), &["not valid UTF-8"], GOOD);
}

#[test]
fn bad_slug() {
    let site = site_with_good_stories();
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = 2024-03-03\nslug = \"Not A Slug\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((4, 8)),
        &["`slug`: `Not A Slug` is not a valid slug"],
        GOOD,
    );
}

#[test]
fn bad_id() {
    let site = site_with_good_stories();
    site.write_story(
        "bad",
        "title = \"Bad\"\ndate = 2024-03-03\nid = \"a/b\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        BAD,
        Some((4, 6)),
        &["`id`: `a/b` is not a valid story id"],
        GOOD,
    );
}

#[test]
fn two_files_with_the_same_slug() {
    let site = site_with_good_stories();
    site.write_story(
        "a-first",
        "title = \"First same\"\ndate = 2024-03-03\nslug = \"same\"",
        "Body\n",
    );
    site.write_story(
        "b-second",
        "title = \"Second same\"\ndate = 2024-03-04\nslug = \"same\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        "content/stories/b-second.md",
        None,
        &["the slug `same` is already used by content/stories/a-first.md"],
        &["Good one", "Good two", "First same"],
    );
}

#[test]
fn a_slug_that_clashes_with_another_file_name() {
    let site = site_with_good_stories();
    site.write_story(
        "z-copy",
        "title = \"Copy\"\ndate = 2024-03-03\nslug = \"good-one\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        "content/stories/z-copy.md",
        None,
        &["the slug `good-one` is already used by content/stories/good-one.md"],
        GOOD,
    );
}

#[test]
fn two_files_with_the_same_id() {
    let site = site_with_good_stories();
    site.write_story(
        "a-first",
        "title = \"First id\"\ndate = 2024-03-03\nid = \"the-id\"",
        "Body\n",
    );
    site.write_story(
        "b-second",
        "title = \"Second id\"\ndate = 2024-03-04\nid = \"the-id\"",
        "Body\n",
    );
    assert_skipped(
        &site,
        "content/stories/b-second.md",
        None,
        &["`id`: the id `the-id` is already used by another story"],
        &["Good one", "Good two", "First id"],
    );
}

#[test]
fn every_bad_story_is_reported_in_one_run() {
    let site = site_with_good_stories();
    site.write_story_bytes("no-front", b"Just text\n");
    site.write_story("no-title", "date = 2024-03-03", "Body\n");
    site.write_story("no-date", "title = \"No date\"", "Body\n");
    site.write_story(
        "bad-theme",
        "title = \"T\"\ndate = 2024-03-03\nthemes = [\"delta\"]",
        "Body\n",
    );
    site.write_story(
        "bad-key",
        "title = \"T\"\ndate = 2024-03-03\ncolour = \"red\"",
        "Body\n",
    );
    let files = ["bad-key", "bad-theme", "no-date", "no-front", "no-title"];

    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(check.stderr.lines().any(|l| l == "5 problems"), "{check}");
    let build = site.tidings(&["build"]);
    assert_eq!(build.code, 0, "{build}");
    assert!(
        build
            .stdout
            .contains("2 new, 0 updated, 0 withdrawn, 0 unchanged, 5 skipped; 2 published"),
        "{build}"
    );
    for run in [&check, &build] {
        let lines = story_lines(run);
        assert_eq!(lines.len(), files.len(), "{run}");
        for (line, file) in lines.iter().zip(files) {
            // Sorted by file name, whatever order they were read in.
            assert!(
                line.starts_with(&format!("content/stories/{file}.md:")),
                "{run}"
            );
        }
    }
    assert_eq!(titles(&site, "rss.xml"), set(GOOD));
    let strict = site.tidings(&["build", "--strict"]);
    assert_eq!(strict.code, 1, "{strict}");
    assert!(
        strict.stderr.contains("--strict: 5 stories skipped"),
        "{strict}"
    );
}

#[test]
fn a_published_story_whose_front_matter_breaks_stays_in_the_feed() {
    let site = site_with_good_stories();
    site.write_story(
        "keep",
        "title = \"Keep me\"\ndate = 2024-03-05\nthemes = [\"gamma\"]",
        "The first version.\n",
    );
    let first = site.build();
    assert!(first.stdout.contains("3 new"), "{first}");
    assert_eq!(
        titles(&site, "rss.xml"),
        set(&["Good one", "Good two", "Keep me"])
    );

    // A typo (an unterminated string) and an edited body.
    site.write_story(
        "keep",
        "title = \"Keep me, edited\ndate = 2024-03-05\nthemes = [\"gamma\"]",
        "The second version.\n",
    );
    let second = site.tidings(&["build"]);
    assert_eq!(second.code, 0, "{second}");
    line_about(
        &second,
        "content/stories/keep.md",
        Some((2, 25)),
        &["invalid front matter"],
    );
    assert!(
        second
            .stdout
            .contains("0 new, 0 updated, 0 withdrawn, 2 unchanged, 1 skipped; 3 published"),
        "{second}"
    );
    // The stored version is kept as it was, in every feed it was in.
    for rel in ["rss.xml", "themes/gamma/atom.xml", "themes/gamma/feed.json"] {
        let feed = site.feed(rel);
        let keep = feed
            .entries
            .iter()
            .find(|e| e.title.as_ref().is_some_and(|t| t.content == "Keep me"))
            .unwrap_or_else(|| panic!("{rel}: the story was withdrawn"));
        let body = keep
            .content
            .as_ref()
            .and_then(|c| c.body.as_deref())
            .unwrap_or_default();
        assert!(body.contains("The first version."), "{rel}: {body}");
    }

    // Fixed, it is updated in place rather than published again.
    site.write_story(
        "keep",
        "title = \"Keep me, edited\"\ndate = 2024-03-05\nthemes = [\"gamma\"]",
        "The second version.\n",
    );
    let third = site.build();
    assert!(
        third.stdout.contains("0 new, 1 updated, 0 withdrawn"),
        "{third}"
    );
    assert!(third.stderr.is_empty(), "{third}");
    assert_eq!(
        titles(&site, "rss.xml"),
        set(&["Good one", "Good two", "Keep me, edited"])
    );
}

/// Same as above for a story whose slug is set in its front matter: the
/// broken file is matched by its file name only, so the stored story is
/// not protected and gets withdrawn.
#[test]
fn a_published_story_with_its_own_slug_stays_when_its_front_matter_breaks() {
    let site = site_with_good_stories();
    site.write_story(
        "keep",
        "title = \"Keep me\"\ndate = 2024-03-05\nslug = \"kept-story\"",
        "Body\n",
    );
    site.build();
    site.write_story(
        "keep",
        "title = \"Keep me\ndate = 2024-03-05\nslug = \"kept-story\"",
        "Body\n",
    );
    let second = site.tidings(&["build"]);
    assert_eq!(second.code, 0, "{second}");
    assert!(second.stdout.contains("0 withdrawn"), "{second}");
    assert_eq!(
        titles(&site, "rss.xml"),
        set(&["Good one", "Good two", "Keep me"])
    );
}
