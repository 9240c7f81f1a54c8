//! The fixture site: a config and stories in a temporary folder (on the
//! PostgreSQL backend with a database of its own), and the `tidings`
//! binary run against it the way an operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use tempfile::TempDir;
use tidings::config::StorageUrl;

use super::backend::{Backend, PgDatabase, site_backend};
use super::stored::exec_sql;
use super::wait::block_on;

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

/// The fixture's store URL, which the PostgreSQL backend replaces.
const SQLITE_URL: &str = "\"sqlite://tidings.db\"";

/// A site in a temporary folder, removed when dropped; on the PostgreSQL
/// backend (see [`backend`](super::backend())) with a database of its
/// own, dropped with it.
pub struct Site {
    pub dir: TempDir,
    db: Option<PgDatabase>,
}

impl Site {
    /// The fixture site with no stories yet.
    pub fn new() -> Site {
        Site::with_config(FIXTURE_CONFIG)
    }

    /// A site with this config. On the PostgreSQL backend the store URL
    /// is pointed at a fresh database (see [`Site::write_config`]).
    pub fn with_config(config: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("content/stories")).unwrap();
        let db = match site_backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create()),
        };
        let site = Site { dir, db };
        site.write_config(config);
        site
    }

    /// Writes `config.toml`. On the PostgreSQL backend the fixture's store
    /// (`url = "sqlite://tidings.db"`) becomes the site's own database, and
    /// a config with no `[storage]` gets one at its end (so that line
    /// numbers in messages do not move).
    pub fn write_config(&self, config: &str) {
        let text = match &self.db {
            None => config.to_owned(),
            Some(db) => {
                let url = format!("\"{}\"", db.url());
                if config.contains(SQLITE_URL) {
                    config.replace(SQLITE_URL, &url)
                } else if config.lines().any(|l| l.trim() == "[storage]") {
                    config.to_owned()
                } else {
                    let sep = if config.ends_with('\n') { "" } else { "\n" };
                    format!("{config}{sep}\n[storage]\nurl = {url}\n")
                }
            }
        };
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// The site's store as the program opens it (the fixture's
    /// `tidings.db`, or the site's PostgreSQL database).
    pub fn storage_url(&self) -> StorageUrl {
        match &self.db {
            None => StorageUrl::Sqlite(self.path("tidings.db")),
            Some(db) => StorageUrl::Postgres(db.url().to_owned()),
        }
    }

    /// Whether anything made the store: the SQLite file exists, or the
    /// PostgreSQL database has tables.
    pub fn store_exists(&self) -> bool {
        match &self.db {
            None => self.path("tidings.db").exists(),
            Some(db) => db.has_tables(),
        }
    }

    /// Throws the store away, as if it had never been made: the next run
    /// starts from an empty one.
    pub fn reset_store(&self) {
        match &self.db {
            None => {
                for f in ["tidings.db", "tidings.db-wal", "tidings.db-shm"] {
                    let _ = std::fs::remove_file(self.path(f));
                }
            }
            Some(db) => db.recreate(),
        }
    }

    /// Runs SQL statements on the site's store (to set up states the CLI
    /// cannot make), each in its own implicit transaction.
    pub fn sql(&self, statements: &[&str]) {
        let url = self.storage_url();
        block_on(|| exec_sql(&url, statements));
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
        self.tidings_env(args, &[])
    }

    /// [`Site::tidings`] with `env` set.
    pub fn tidings_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.root())
            .env_remove("TIDINGS_CONFIG")
            .envs(env.iter().copied())
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

/// Asserts that a run succeeded, and gives it back.
pub fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run}");
    run
}

/// A story dated `days` ago.
pub fn recent(site: &Site, name: &str, title: &str, days: i64, themes: &[&str]) {
    let date = (Utc::now() - Duration::days(days)).format("%Y-%m-%dT%H:%M:%SZ");
    site.story(name, title, &date.to_string(), themes);
}
