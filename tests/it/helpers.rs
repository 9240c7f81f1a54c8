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

/// `tidings run` on a site, listening on a free loopback port; stopped
/// (SIGKILL) when dropped unless [`Service::stop`] ended it first.
pub struct Service {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Site {
    /// Starts `tidings run` with `env` set. A config without `[http]` gets
    /// `listen = "127.0.0.1:0"`; one with `[http]` must say so itself.
    pub fn serve(&self, env: &[(&str, &str)]) -> Service {
        use std::io::{BufRead, BufReader, Read};
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        if !config.contains("[http]") {
            std::fs::write(
                self.config_path(),
                format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n"),
            )
            .unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(self.config_path())
            .arg("run")
            .current_dir(self.root())
            .env_remove("TIDINGS_CONFIG")
            .env("TIDINGS_LOG", "info,tidings=debug")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tidings run");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(200));
            panic!(
                "tidings run did not start: {line}\n--- stderr\n{}",
                stderr.lock().unwrap()
            );
        };
        let base = base.trim_end_matches('/').to_owned();
        // Keep draining stdout so the service never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Service {
            child,
            base,
            stderr,
        }
    }
}

impl Service {
    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `what` appears in the log (at most `secs` seconds).
    pub fn wait_for_log(&self, what: &str, secs: u64) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if self.log().contains(what) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// Sends SIGTERM and waits (at most 60 s) for the exit code.
    pub fn stop(mut self) -> (i32, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return (status.code().unwrap_or(-1), self.log());
            }
            assert!(
                std::time::Instant::now() < end,
                "tidings run did not stop within 60 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port free at the moment of asking (for configs that must
/// name their port up front, such as `[http] public_url` in links).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
