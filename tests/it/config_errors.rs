//! A bad config.toml: `check` and `build` print every problem on stderr as
//! `PATH:LINE:COL: `key`: message`, all of them in one run, and exit 1.

use std::path::Path;

use crate::support::{FIXTURE_CONFIG, Run, Site};

/// One problem line as printed: `PATH:LINE:COL: `key`: message`.
#[derive(Debug)]
struct Reported {
    line: usize,
    col: usize,
    key: String,
    message: String,
}

/// Every problem line of `run` about `path`. Asserts that each line naming
/// the file has the full `PATH:LINE:COL: `key`: message` shape and that the
/// closing "N problems in PATH" line counts exactly these.
fn reported(run: &Run, path: &Path) -> Vec<Reported> {
    let prefix = format!("{}:", path.display());
    let mut out = Vec::new();
    for line in run.stderr.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let parsed = (|| {
            let (line_no, rest) = rest.split_once(':')?;
            let (col, rest) = rest.split_once(": `")?;
            let (key, message) = rest.split_once("`: ")?;
            Some(Reported {
                line: line_no.parse().ok()?,
                col: col.parse().ok()?,
                key: key.to_owned(),
                message: message.to_owned(),
            })
        })();
        match parsed {
            Some(p) => out.push(p),
            None => panic!("not `PATH:LINE:COL: `key`: message`: {line:?}\n{run}"),
        }
    }
    let n = out.len();
    let summary = if n == 1 {
        format!("1 problem in {}", path.display())
    } else {
        format!("{n} problems in {}", path.display())
    };
    assert!(
        run.stderr.lines().any(|l| l == summary),
        "expected the summary {summary:?}:\n{run}"
    );
    out
}

/// Writes `config` as the site's config.toml, runs `check`, expects exit 1
/// and returns the problems printed.
fn check(config: &str) -> (Site, Vec<Reported>) {
    let site = Site::with_config(config);
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "check should fail:\n{run}");
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout when check fails:\n{run}"
    );
    let problems = reported(&run, &site.config_path());
    assert!(!problems.is_empty(), "no problem printed:\n{run}");
    (site, problems)
}

/// The problem about `key`; panics listing every problem when absent.
fn about<'a>(problems: &'a [Reported], key: &str) -> &'a Reported {
    problems
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no problem about `{key}` in {problems:#?}"))
}

/// 1-based line and character column of the first `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in config"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, col)
}

fn assert_at(p: &Reported, (line, col): (usize, usize)) {
    assert_eq!((p.line, p.col), (line, col), "wrong place for {p:?}");
}

/// The fixture config with `from` replaced by `to` (which must occur).
fn fixture_with(from: &str, to: &str) -> String {
    assert!(
        FIXTURE_CONFIG.contains(from),
        "{from:?} not in the fixture config"
    );
    FIXTURE_CONFIG.replacen(from, to, 1)
}

const SOURCES: &str = "\n[[sources]]\nkind = \"directory\"\npath = \"content/stories\"\n";

#[test]
fn unknown_key_in_site_suggests_the_right_one() {
    let text = fixture_with(
        "language = \"sv\"\n",
        "language = \"sv\"\ntitel = \"Typo\"\n",
    );
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site.titel");
    assert_at(p, pos(&text, "titel ="));
    assert!(
        p.message.starts_with("unknown key (did you mean `title`?)"),
        "{p:?}"
    );
    assert!(
        p.message.contains("expected one of: title, base_url"),
        "{p:?}"
    );
}

#[test]
fn misspelt_title_reports_the_unknown_key_and_the_missing_title() {
    let text = format!("[site]\ntitel = \"T\"\nbase_url = \"https://example.org\"\n{SOURCES}");
    let (_site, problems) = check(&text);
    let p = about(&problems, "site.titel");
    assert_at(p, (2, 1));
    assert!(p.message.contains("did you mean `title`?"), "{p:?}");
    let missing = about(&problems, "site");
    assert_eq!(missing.message, "missing field `title`");
    assert_at(missing, (1, 1));
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn unknown_section_is_named_with_its_line() {
    let text = format!("{FIXTURE_CONFIG}\n[analytics]\nhost = \"stats.example.org\"\n");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "analytics");
    assert_at(p, pos(&text, "analytics]"));
    assert!(
        p.message.starts_with(
            "unknown section; expected one of: site, themes, sources, feeds, storage, mail, digests"
        ),
        "{p:?}"
    );
}

#[test]
fn misspelt_section_gets_a_suggestion() {
    let text = format!(
        "[site]\ntitle = \"T\"\nbase_url = \"https://example.org\"\n{SOURCES}\n[feed]\nitems = 5\n"
    );
    let (_site, problems) = check(&text);
    let p = about(&problems, "feed");
    assert_at(p, pos(&text, "feed]"));
    assert!(p.message.contains("did you mean `feeds`?"), "{p:?}");
}

#[test]
fn wrong_type_for_items() {
    let text = fixture_with("items = 50", "items = \"many\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "feeds.items");
    assert_at(p, pos(&text, "\"many\""));
    assert!(p.message.contains("invalid type: string \"many\""), "{p:?}");
}

#[test]
fn wrong_type_for_full_content() {
    let text = fixture_with("full_content = true", "full_content = \"yes\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "feeds.full_content");
    assert_at(p, pos(&text, "\"yes\""));
    assert!(p.message.contains("expected a boolean"), "{p:?}");
}

#[test]
fn items_out_of_range() {
    let text = fixture_with("items = 50", "items = 0");
    let (_site, problems) = check(&text);
    let p = about(&problems, "feeds.items");
    let (line, col) = pos(&text, "items = 0");
    assert_at(p, (line, col + "items = ".len()));
    assert!(p.message.contains("out of range"), "{p:?}");
}

#[test]
fn missing_title() {
    let text = format!("# site\n\n[site]\nbase_url = \"https://example.org\"\n{SOURCES}");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site");
    assert_eq!(p.message, "missing field `title`");
    assert_at(p, (3, 1));
}

#[test]
fn missing_base_url() {
    let text = format!("[site]\ntitle = \"T\"\n{SOURCES}");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site");
    assert_eq!(p.message, "missing field `base_url`");
}

#[test]
fn relative_base_url() {
    let text = fixture_with("\"https://example.org/news\"", "\"/news\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site.base_url");
    // Line 3: `[site]`, `title`, then `base_url = "/news"`; the value at column 12.
    assert_at(p, (3, 12));
    assert!(
        p.message.contains("`/news` is not an absolute URL"),
        "{p:?}"
    );
    assert!(
        p.message.contains("https://example.org"),
        "the message shows an example: {p:?}"
    );
}

#[test]
fn unknown_time_zone() {
    let text = fixture_with("\"Europe/Stockholm\"", "\"Mars/Olympus\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site.timezone");
    assert_at(p, (5, 12));
    assert!(
        p.message.starts_with("unknown time zone `Mars/Olympus`"),
        "{p:?}"
    );
    assert!(p.message.contains("Europe/Stockholm"), "{p:?}");
}

#[test]
fn duplicate_theme_slug_names_the_earlier_line() {
    let text = fixture_with("slug = \"gamma\"", "slug = \"alpha\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "themes[2].slug");
    let (first_line, _) = pos(&text, "slug = \"alpha\"");
    let second = pos(&text, "slug = \"alpha\"\ntitle = \"Gamma\"");
    assert_eq!((p.line, p.col), (second.0, 8), "{p:?}");
    assert_eq!(
        p.message,
        format!(
            "duplicate theme slug `alpha`, already used on line {first_line}; each theme needs its own slug"
        )
    );
}

#[test]
fn invalid_theme_slug() {
    let text = fixture_with("slug = \"beta\"", "slug = \"Agenda 2030\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "themes[1].slug");
    assert_at(p, pos(&text, "\"Agenda 2030\""));
    assert!(
        p.message
            .starts_with("`Agenda 2030` is not a valid theme slug"),
        "{p:?}"
    );
    assert!(
        p.message.contains("agenda-2030"),
        "the message shows a valid example: {p:?}"
    );
}

#[test]
fn missing_site_section() {
    let text = format!("[feeds]\nitems = 5\n{SOURCES}");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "site");
    assert_at(p, (1, 1));
    assert!(p.message.starts_with("missing section [site]"), "{p:?}");
    assert!(p.message.contains("base_url"), "{p:?}");
}

#[test]
fn unknown_source_kind() {
    let text = fixture_with("kind = \"directory\"", "kind = \"wordpress-xml\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "sources[0].kind");
    assert_at(p, pos(&text, "\"wordpress-xml\""));
    assert_eq!(
        p.message,
        "unknown source kind `wordpress-xml`; expected one of: directory, wordpress, feed"
    );
}

#[test]
fn source_path_that_does_not_exist() {
    let text = fixture_with("path = \"content/stories\"", "path = \"content/nowhere\"");
    let (site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "sources[0].path");
    assert_at(p, pos(&text, "\"content/nowhere\""));
    assert!(
        p.message
            .starts_with("`content/nowhere` is not a directory"),
        "{p:?}"
    );
    // The resolved path is relative to the config file's folder.
    assert!(
        p.message
            .contains(&site.path("content/nowhere").display().to_string()),
        "{p:?}"
    );
}

#[test]
fn url_pattern_without_slug() {
    let text = fixture_with("url = \"/stories/{slug}/\"", "url = \"/stories/{year}/\"");
    let (_site, problems) = check(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = about(&problems, "sources[0].url");
    assert_at(p, pos(&text, "\"/stories/{year}/\""));
    assert!(p.message.contains("has no {slug}"), "{p:?}");
}

#[test]
fn invalid_toml_gives_the_line_of_the_error() {
    let text =
        "[site]\ntitle = \"T\"\nbase_url = \"https://example.org\"\n\n[feeds]\nitems = = 3\n";
    let site = Site::with_config(text);
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    let prefix = format!("{}:6:", site.config_path().display());
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no problem on line 6:\n{run}"));
    assert!(line.contains("invalid TOML"), "{run}");
    assert!(run.stderr.contains("1 problem in"), "{run}");
}

#[test]
fn unclosed_table_header_is_invalid_toml() {
    let site = Site::with_config("# a site\n[site\ntitle = \"T\"\n");
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    let prefix = format!("{}:2:", site.config_path().display());
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains("invalid TOML")),
        "{run}"
    );
}

#[test]
fn config_file_that_does_not_exist() {
    let site = Site::new();
    std::fs::remove_file(site.config_path()).unwrap();
    for command in ["check", "build"] {
        let run = site.tidings(&[command]);
        assert_eq!(run.code, 1, "{command}: {run}");
        let path = site.config_path().display().to_string();
        assert!(
            run.stderr.contains(&format!(
                "{path}: cannot read the config file: no such file"
            )),
            "{command}: {run}"
        );
    }
    assert!(!site.path("feeds").exists());
    assert!(!site.store_exists());
}

/// Six problems in six places; one run of `check` lists them all, in file
/// order, each at its own line.
const MANY_PROBLEMS: &str = r#"[site]
title = "T"
base_url = "/news"
timezone = "Mars/Olympus"
colour = "blue"

[[themes]]
slug = "Agenda 2030"
title = "A"

[[themes]]
slug = "a"
title = "A"

[[themes]]
slug = "a"
title = "A again"

[[sources]]
kind = "directory"
path = "content/nowhere"
url = "/stories/"

[[sources]]
kind = "rss"
path = "content/stories"

[feeds]
items = "many"

[mailer]
host = "x"
"#;

#[test]
fn every_problem_is_listed_in_one_run() {
    let (_site, problems) = check(MANY_PROBLEMS);
    let expected: &[(usize, usize, &str, &str)] = &[
        (3, 12, "site.base_url", "`/news` is not an absolute URL"),
        (4, 12, "site.timezone", "unknown time zone `Mars/Olympus`"),
        (5, 1, "site.colour", "unknown key"),
        (
            8,
            8,
            "themes[0].slug",
            "`Agenda 2030` is not a valid theme slug",
        ),
        (
            16,
            8,
            "themes[2].slug",
            "duplicate theme slug `a`, already used on line 12",
        ),
        (
            21,
            8,
            "sources[0].path",
            "`content/nowhere` is not a directory",
        ),
        (22, 7, "sources[0].url", "has no {slug}"),
        (25, 8, "sources[1].kind", "unknown source kind `rss`"),
        (29, 9, "feeds.items", "invalid type: string \"many\""),
        (31, 2, "mailer", "unknown section"),
    ];
    for (line, col, key, fragment) in expected {
        let p = about(&problems, key);
        assert_eq!((p.line, p.col), (*line, *col), "{p:?}");
        assert!(
            p.message.contains(fragment),
            "{p:?} should say {fragment:?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert!(
        lines.is_sorted(),
        "problems are printed in file order: {lines:?}"
    );
}

#[test]
fn build_with_a_bad_config_lists_every_problem_and_writes_nothing() {
    let site = Site::with_config(MANY_PROBLEMS);
    let run = site.tidings(&["build"]);
    assert_eq!(run.code, 1, "{run}");
    let problems = reported(&run, &site.config_path());
    assert_eq!(problems.len(), 10, "{problems:#?}");
    assert!(!run.stdout.contains("stories:"), "{run}");
    assert!(!site.path("feeds").exists(), "no feeds from a bad config");
    assert!(!site.store_exists(), "no store from a bad config");
}

/// All problems at once means all of them, also two in the same table.
#[test]
fn two_problems_in_one_section_are_both_reported() {
    let text = fixture_with(
        "items = 50\nfull_content = true",
        "items = \"many\"\nfull_content = \"yes\"\nzzz = 1",
    );
    let (_site, problems) = check(&text);
    about(&problems, "feeds.items");
    about(&problems, "feeds.full_content");
    about(&problems, "feeds.zzz");
}

#[test]
fn valid_config_and_stories_check_ok() {
    let site = Site::new();
    site.story("first", "First", "2024-03-14", &["alpha"]);
    site.story(
        "second",
        "Second",
        "2024-03-15T09:30:00+01:00",
        &["beta", "gamma"],
    );
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    let summary = run.stdout.lines().next().unwrap_or_default();
    assert!(summary.contains(": ok"), "{run}");
    assert!(
        summary.contains("3 themes, 1 source; 2 stories ready to publish, 0 drafts"),
        "{run}"
    );
    // check reads and writes nothing else.
    assert!(!site.path("feeds").exists());
    assert!(!site.store_exists());
}

#[test]
fn schedule_and_http_problems_name_the_key_and_what_is_wrong() {
    let text = format!(
        "{FIXTURE_CONFIG}
[schedule]
ingest = \"*/10 * * *\"
on_missed = \"later\"

[http]
listen = \"localhost\"
public_url = \"not a url\"
behind_proxi = true
"
    );
    let (_site, problems) = check(&text);
    let ingest = about(&problems, "schedule.ingest");
    assert_at(ingest, pos(&text, "\"*/10 * * *\""));
    assert!(ingest.message.contains("fields"), "{ingest:?}");
    let missed = about(&problems, "schedule.on_missed");
    assert!(
        missed.message.contains("expected \"run_once\" or \"skip\""),
        "{missed:?}"
    );
    let listen = about(&problems, "http.listen");
    assert!(listen.message.contains("127.0.0.1:8080"), "{listen:?}");
    about(&problems, "http.behind_proxi");
}

#[test]
fn a_bad_digest_schedule_names_the_digest() {
    let text = format!(
        "{FIXTURE_CONFIG}
[mail]
from = \"news@example.org\"

[[digests]]
id = \"monthly\"
title = \"Monthly\"
schedule = \"0 8 32 * *\"
"
    );
    let (_site, problems) = check(&text);
    let p = about(&problems, "digests[0].schedule");
    assert_at(p, pos(&text, "\"0 8 32 * *\""));
}
