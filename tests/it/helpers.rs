//! Helpers that build fixture sites in temporary folders, run the `tidings`
//! binary against them, and parse what it wrote with independent parsers
//! (feed-rs here, Python's feedparser through `feedcheck.py`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The config of the fixture site: three themes, one directory source.
pub const FIXTURE_CONFIG: &str = r#"[site]
title = "Fixture site"
base_url = "https://example.org/news"
language = "sv"
timezone = "Europe/Stockholm"
description = "A site for tests"
author = "Fixture editors"

[[themes]]
slug = "alpha"
title = { sv = "Alfa", en = "Alpha" }
description = { sv = "Om alfa", en = "About alpha" }

[[themes]]
slug = "beta"
title = { sv = "Beta", en = "Beta" }

[[themes]]
slug = "gamma"
title = "Gamma"

[[sources]]
kind = "directory"
path = "content/stories"
url = "/stories/{slug}/"

[feeds]
dir = "feeds"
items = 50
full_content = true

[storage]
url = "sqlite://tidings.db"
"#;

/// A site in a temporary folder, removed when dropped.
pub struct Site {
    pub dir: TempDir,
}

impl Site {
    /// The fixture site with no stories yet.
    pub fn new() -> Site {
        Site::with_config(FIXTURE_CONFIG)
    }

    pub fn with_config(config: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("content/stories")).unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Site { dir }
    }

    /// A copy of the repository's sample site (config.toml and stories).
    pub fn sample() -> Site {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(repo.join("config.toml")).unwrap();
        let site = Site::with_config(&config);
        for entry in std::fs::read_dir(repo.join("content/stories")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                site.root().join("content/stories").join(entry.file_name()),
            )
            .unwrap();
        }
        site
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.toml")
    }

    /// Writes `content/stories/<name>.md` with the given front matter and body.
    pub fn write_story(&self, name: &str, front_matter: &str, body: &str) {
        let text = format!("+++\n{}\n+++\n{}", front_matter.trim(), body);
        self.write_story_bytes(name, text.as_bytes());
    }

    pub fn write_story_bytes(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(&format!("content/stories/{name}.md")), bytes).unwrap();
    }

    /// A plain story with a title, a date and themes.
    pub fn story(&self, name: &str, title: &str, date: &str, themes: &[&str]) {
        let themes: Vec<String> = themes.iter().map(|t| format!("\"{t}\"")).collect();
        self.write_story(
            name,
            &format!(
                "title = \"{title}\"\ndate = {date}\nthemes = [{}]\nsummary = \"Summary of {title}\"",
                themes.join(", ")
            ),
            &format!("Body of *{title}* with [a link](/other/).\n"),
        );
    }

    pub fn remove_story(&self, name: &str) {
        std::fs::remove_file(self.path(&format!("content/stories/{name}.md"))).unwrap();
    }

    /// Runs `tidings --config <site>/config.toml ARGS` from the site folder.
    pub fn tidings(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.root())
            .env_remove("TIDINGS_CONFIG")
            .output()
            .expect("run tidings");
        Run::from(output)
    }

    /// Runs `build` and asserts it succeeded.
    pub fn build(&self) -> Run {
        let run = self.tidings(&["build"]);
        assert_eq!(run.code, 0, "build failed:\n{run}");
        run
    }

    pub fn feed_bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("feeds/{rel}")))
            .unwrap_or_else(|e| panic!("feeds/{rel}: {e}"))
    }

    /// A feed parsed by feed-rs.
    pub fn feed(&self, rel: &str) -> feed_rs::model::Feed {
        let bytes = self.feed_bytes(rel);
        feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("feeds/{rel}: {e}"))
    }

    /// Every feed file the site should have, relative to the feeds dir.
    pub fn feed_files(&self, themes: &[&str]) -> Vec<String> {
        let mut files = vec!["rss.xml".to_owned(), "atom.xml".into(), "feed.json".into()];
        for t in themes {
            for f in ["rss.xml", "atom.xml", "feed.json"] {
                files.push(format!("themes/{t}/{f}"));
            }
        }
        files
    }
}

/// The outcome of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Parses feed files with Python's feedparser (through `tests/feedcheck.py`)
/// and returns its report, or `None` when feedparser is not installed and
/// this is not CI. Under `CI=true` a missing feedparser fails the test.
pub fn feedparser(paths: &[PathBuf]) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feedcheck.py");
    let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import feedparser"])
        .output();
    let available = probe.as_ref().is_ok_and(|o| o.status.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "Python's feedparser is required under CI=true: run scripts/test.sh, which installs it"
            );
        }
        eprintln!(
            "SKIPPED: Python's feedparser is not installed (pip install feedparser, or run scripts/test.sh)"
        );
        return None;
    }
    let out = Command::new(&python)
        .arg(script)
        .args(paths)
        .output()
        .expect("run feedcheck.py");
    assert!(
        out.status.success(),
        "feedcheck.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("feedcheck.py prints JSON"))
}
