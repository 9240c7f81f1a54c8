//! The command line itself: help, usage errors (exit 2), `init`, the
//! `TIDINGS_CONFIG` variable, `--log-format`, and the sample site.

use std::path::Path;
use std::process::Command;

use crate::support::{Run, Site};

/// Runs `tidings ARGS` in `cwd` with the given environment variables and
/// nothing inherited that would change its behaviour.
fn tidings_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("TIDINGS_CONFIG")
        .env_remove("TIDINGS_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    Run::from(command.output().expect("run tidings"))
}

fn tidings(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    tidings_in(dir.path(), args, &[])
}

fn entry_titles(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries
        .iter()
        .map(|e| e.title.as_ref().expect("entry title").content.clone())
        .collect()
}

#[test]
fn help_works_for_every_command() {
    let top = tidings(&["--help"]);
    assert_eq!(top.code, 0, "{top}");
    assert!(top.stdout.contains("Usage: tidings"), "{top}");
    for command in ["init", "check", "build"] {
        assert!(
            top.stdout.contains(command),
            "--help lists {command}:\n{top}"
        );
        for args in [vec![command, "--help"], vec!["help", command]] {
            let run = tidings(&args);
            assert_eq!(run.code, 0, "{args:?}: {run}");
            assert!(
                run.stdout.contains(&format!("Usage: tidings {command}")),
                "{args:?}: {run}"
            );
        }
    }
    let build = tidings(&["build", "--help"]);
    assert!(build.stdout.contains("--strict"), "{build}");
    let init = tidings(&["init", "--help"]);
    assert!(init.stdout.contains("<DIR>"), "{init}");
}

#[test]
fn version_is_printed() {
    let run = tidings(&["--version"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.stdout.trim(),
        format!("tidings {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&[], "Usage: tidings"),
        (&["init"], "<DIR>"),
        (&["build", "--frob"], "unexpected argument '--frob'"),
        (&["--log-format", "xml", "check"], "invalid value 'xml'"),
        (&["check", "--config"], "--config <PATH>"),
    ];
    for (args, says) in cases {
        let run = tidings(args);
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert!(
            run.stderr.contains(says),
            "{args:?} should say {says:?}: {run}"
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run}");
    }
}

#[test]
fn init_creates_a_site_that_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new-site");
    let dir_arg = dir.to_str().unwrap();
    let init = tidings_in(tmp.path(), &["init", dir_arg], &[]);
    assert_eq!(init.code, 0, "{init}");
    let config = dir.join("config.toml");
    let story = dir.join("content/stories/welcome.md");
    assert!(config.is_file() && story.is_file(), "{init}");
    assert!(
        init.stdout
            .contains(&format!("created {}", config.display())),
        "{init}"
    );
    assert!(
        init.stdout
            .contains(&format!("created {}", story.display())),
        "{init}"
    );

    // Run from another folder: paths in the config are relative to it.
    let config_arg = config.to_str().unwrap();
    let build = tidings_in(tmp.path(), &["--config", config_arg, "build"], &[]);
    assert_eq!(build.code, 0, "{build}");
    assert!(
        build
            .stdout
            .contains("1 new, 0 updated, 0 withdrawn, 0 unchanged, 0 skipped; 1 published"),
        "{build}"
    );
    assert!(build.stderr.is_empty(), "{build}");
    assert!(
        !tmp.path().join("feeds").exists(),
        "feeds go beside the config, not in the cwd"
    );

    let bytes = std::fs::read(dir.join("feeds/rss.xml")).expect("DIR/feeds/rss.xml");
    let feed = feed_rs::parser::parse(&bytes[..]).expect("rss.xml parses");
    assert_eq!(entry_titles(&feed), ["Welcome to tidings"]);
    let entry = &feed.entries[0];
    assert_eq!(entry.links[0].href, "https://example.org/stories/welcome/");
    for rel in ["atom.xml", "feed.json", "feeds.opml", "themes/news/rss.xml"] {
        assert!(dir.join("feeds").join(rel).is_file(), "{rel} missing");
    }

    let check = tidings_in(tmp.path(), &["--config", config_arg, "check"], &[]);
    assert_eq!(check.code, 0, "{check}");
    assert!(check.stdout.contains(": ok"), "{check}");
    assert!(check.stdout.contains("1 story ready to publish"), "{check}");
}

#[test]
fn init_never_overwrites_a_config() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "# my own site\n").unwrap();
    let run = tidings_in(tmp.path(), &["init", tmp.path().to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("already exists"), "{run}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# my own site\n");
    assert!(
        !tmp.path().join("content").exists(),
        "init wrote nothing:\n{run}"
    );
}

#[test]
fn tidings_config_is_used_when_config_is_absent() {
    let site = Site::new();
    site.story("first", "First", "2024-03-14", &["alpha"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let config = site.config_path();
    let config = config.to_str().unwrap();

    // Without it, the default ./config.toml does not exist here.
    let without = tidings_in(elsewhere.path(), &["check"], &[]);
    assert_eq!(without.code, 1, "{without}");
    assert!(
        without
            .stderr
            .contains("config.toml: cannot read the config file"),
        "{without}"
    );

    let check = tidings_in(elsewhere.path(), &["check"], &[("TIDINGS_CONFIG", config)]);
    assert_eq!(check.code, 0, "{check}");
    assert!(
        check.stdout.starts_with(&format!("{config}: ok")),
        "{check}"
    );

    let build = tidings_in(elsewhere.path(), &["build"], &[("TIDINGS_CONFIG", config)]);
    assert_eq!(build.code, 0, "{build}");
    assert!(build.stdout.contains("1 new"), "{build}");
    assert_eq!(entry_titles(&site.feed("rss.xml")), ["First"]);

    // --config wins over the variable.
    let missing = elsewhere.path().join("missing.toml");
    let env = [("TIDINGS_CONFIG", missing.to_str().unwrap())];
    let run = tidings_in(elsewhere.path(), &["--config", config, "check"], &env);
    assert_eq!(run.code, 0, "{run}");
    let run = tidings_in(elsewhere.path(), &["check"], &env);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("missing.toml: cannot read the config file"),
        "{run}"
    );
}

#[test]
fn config_and_log_format_are_accepted_after_the_command() {
    let site = Site::new();
    site.story("first", "First", "2024-03-14", &["alpha"]);
    let config = site.config_path();
    let run = tidings_in(
        site.root(),
        &[
            "check",
            "-c",
            config.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let site = Site::new();
    site.story("first", "First", "2024-03-14", &["alpha"]);
    let config = site.config_path();
    let config = config.to_str().unwrap();
    // sqlx logs every query at debug level: enough log lines to look at.
    let env = [("TIDINGS_LOG", "sqlx=debug")];
    let json = tidings_in(
        site.root(),
        &["--config", config, "--log-format", "json", "build"],
        &env,
    );
    assert_eq!(json.code, 0, "{json}");
    assert!(json.stdout.contains("1 new"), "{json}");
    let lines: Vec<&str> = json
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty(), "expected log lines:\n{json}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }

    // The text format, on the same kind of run, is not JSON.
    let text = tidings_in(
        site.root(),
        &["--config", config, "--log-format", "text", "build"],
        &env,
    );
    assert_eq!(text.code, 0, "{text}");
    let first = text.stderr.lines().next().expect("text log lines");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_err(),
        "{text}"
    );
}

#[test]
fn the_sample_site_checks_and_builds() {
    let site = Site::sample();
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(check.stdout.contains(": ok"), "{check}");
    assert!(check.stderr.is_empty(), "{check}");
    let build = site.build();
    assert!(build.stdout.contains("29 new"), "{build}");
    assert!(build.stdout.contains("0 skipped"), "{build}");
    assert!(build.stderr.is_empty(), "{build}");
    assert!(!site.feed("rss.xml").entries.is_empty());
}
