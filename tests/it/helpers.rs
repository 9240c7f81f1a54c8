//! Helpers that build fixture sites in temporary folders, run the `tidings`
//! binary against them, and parse what it wrote with independent parsers
//! (feed-rs here, Python's feedparser through `feedcheck.py`).

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tempfile::TempDir;
use tidings::config::StorageUrl;

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

/// A site in a temporary folder, removed when dropped; on the PostgreSQL
/// backend (see [`backend`]) with a database of its own, dropped with it.
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
                let url = format!("\"{}\"", db.url);
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
            Some(db) => StorageUrl::Postgres(db.url.clone()),
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
    /// `http://ADDRESS/metrics`, once the service has said it.
    metrics: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Gives a config a free loopback port for the metrics listener when it
/// names none (the default, 127.0.0.1:8081, would be shared by every test
/// running at once), in its `[http]` table if it has one.
pub fn free_metrics_port(config: &str) -> String {
    if config
        .lines()
        .any(|l| l.trim_start().starts_with("metrics_listen"))
    {
        return config.to_owned();
    }
    let line = "metrics_listen = \"127.0.0.1:0\"";
    match config.find("[http]\n") {
        Some(at) => {
            let end = at + "[http]\n".len();
            format!("{}{line}\n{}", &config[..end], &config[end..])
        }
        None => format!("{config}\n[http]\n{line}\n"),
    }
}

impl Site {
    /// Starts `tidings run` with `env` set. A config without `[http]` gets
    /// `listen = "127.0.0.1:0"`; one with `[http]` must say so itself. The
    /// metrics listener is on a free port too (see [`free_metrics_port`]).
    pub fn serve(&self, env: &[(&str, &str)]) -> Service {
        use std::io::{BufRead, BufReader, Read};
        let mut config = std::fs::read_to_string(self.config_path()).unwrap();
        if !config.contains("[http]") {
            config = format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(self.config_path(), free_metrics_port(&config)).unwrap();
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
        // Keep draining stdout so the service never blocks on a full pipe,
        // noting the metrics line (the second) on the way.
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = metrics.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(url) = line.trim().strip_prefix("metrics on ") {
                    *seen.lock().unwrap() = Some(url.to_owned());
                }
                line.clear();
            }
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Service {
            child,
            base,
            metrics,
            stderr,
        }
    }
}

impl Service {
    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` URL of the metrics listener, as the service printed
    /// it (waiting up to 30 s for the line).
    pub fn metrics_url(&self) -> String {
        let printed = wait_until(30, || self.metrics.lock().unwrap().is_some());
        assert!(printed, "no `metrics on` line:\n{}", self.log());
        self.metrics.lock().unwrap().clone().unwrap()
    }

    /// The address (`IP:PORT`) the public listener is on.
    pub fn address(&self) -> String {
        self.base.strip_prefix("http://").unwrap().to_owned()
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
        wait_until(secs, || self.log().contains(what))
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

/// Polls `done` (every 50 ms) until it holds or `secs` seconds passed;
/// whether it held.
pub fn wait_until(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
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

/// The fixture's store URL, which the PostgreSQL backend replaces.
const SQLITE_URL: &str = "\"sqlite://tidings.db\"";

/// Which store the tests run on: `TIDINGS_TEST_BACKEND=postgres` for
/// PostgreSQL, unset or `sqlite` for SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend of this run (from `TIDINGS_TEST_BACKEND`). On PostgreSQL the
/// first call checks the server at [`postgres_admin_url`]: when it cannot
/// be reached, under `CI=true` every test that needs it fails with the
/// reason; otherwise the run prints one `SKIPPED:` line and ends, passing.
pub fn backend() -> Backend {
    match std::env::var("TIDINGS_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") | Ok("postgresql") => {
            if let Err(e) = postgres_server() {
                let shown = shown_url(&postgres_admin_url());
                if in_ci() {
                    panic!(
                        "TIDINGS_TEST_BACKEND=postgres under CI=true, but there is no PostgreSQL at {shown}: {e}\n\
                         start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) \
                         or set TIDINGS_TEST_POSTGRES_URL"
                    );
                }
                // Straight to the process's stderr, past the harness's capture.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: no PostgreSQL at {shown} ({e}): the tests on the PostgreSQL backend \
                     (TIDINGS_TEST_BACKEND=postgres) are skipped; start the server or set TIDINGS_TEST_POSTGRES_URL"
                );
                std::process::exit(0);
            }
            Backend::Postgres
        }
        Ok(other) => panic!("TIDINGS_TEST_BACKEND={other}: expected \"sqlite\" or \"postgres\""),
    }
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether the PostgreSQL server at [`postgres_admin_url`] answers, for a
/// test that needs it whatever the run's backend (such as `db copy`): it
/// skips when this is false. Under `CI=true` a missing server panics here.
pub fn postgres_available() -> bool {
    match postgres_server() {
        Ok(()) => true,
        Err(e) => {
            let shown = shown_url(&postgres_admin_url());
            assert!(
                !in_ci(),
                "PostgreSQL is required under CI=true ({shown}): {e}"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL at {shown} ({e}); start the server or set TIDINGS_TEST_POSTGRES_URL"
            );
            false
        }
    }
}

thread_local! {
    static OVERRIDE: std::cell::Cell<Option<Backend>> = const { std::cell::Cell::new(None) };
}

/// Runs `make` with every [`Site`] and [`TestStore`] it creates on
/// `backend`, whatever this run's backend is: for a test about one
/// backend (such as moving a SQLite site to PostgreSQL). A test that asks
/// for PostgreSQL checks [`postgres_available`] first.
pub fn on_backend<T>(backend: Backend, make: impl FnOnce() -> T) -> T {
    let before = OVERRIDE.replace(Some(backend));
    let out = make();
    OVERRIDE.set(before);
    out
}

/// The backend for a new site: the one [`on_backend`] chose, else the run's.
fn site_backend() -> Backend {
    OVERRIDE.get().unwrap_or_else(backend)
}

/// Checks once per run that the PostgreSQL server answers (and drops the
/// databases that killed runs left behind).
fn postgres_server() -> Result<(), String> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let admin = postgres_admin_url();
            block_on(|| async move {
                let mut conn = admin_connect(&admin).await?;
                remove_stale_databases(&mut conn, &admin).await;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .clone()
}

/// The server the PostgreSQL tests make their databases on:
/// `TIDINGS_TEST_POSTGRES_URL`, by default the local one of DESIGN.md.
pub fn postgres_admin_url() -> String {
    std::env::var("TIDINGS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL without its password, for messages.
fn shown_url(url: &str) -> String {
    StorageUrl::Postgres(url.to_owned()).to_string()
}

/// The prefix of every database the tests make: `tidings_t_<pid>_<n>_<random>`.
const DB_PREFIX: &str = "tidings_t_";

/// A database of its own for one test (made by [`Site`] on the PostgreSQL
/// backend, or directly), dropped (`WITH (FORCE)`, so that a
/// service still connected does not keep it) when this is dropped.
pub struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn create() -> PgDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let random = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos(),
            );
            h.finish() as u32
        };
        let name = format!(
            "{DB_PREFIX}{}_{}_{random:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = postgres_admin_url();
        let mut url = url::Url::parse(&admin)
            .unwrap_or_else(|e| panic!("TIDINGS_TEST_POSTGRES_URL {}: {e}", shown_url(&admin)));
        url.set_path(&format!("/{name}"));
        let db = PgDatabase {
            admin,
            name,
            url: url.to_string(),
        };
        db.admin_exec(&[&format!("CREATE DATABASE \"{}\"", db.name)]);
        db
    }

    /// Runs statements on the server's admin database.
    fn admin_exec(&self, statements: &[&str]) {
        let admin = self.admin.clone();
        block_on(|| async move {
            let mut conn = admin_connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for s in statements {
                sqlx::query(s)
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            let _ = conn.close().await;
        })
    }

    fn recreate(&self) {
        self.admin_exec(&[
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
            &format!("CREATE DATABASE \"{}\"", self.name),
        ]);
    }

    fn has_tables(&self) -> bool {
        let url = self.url.clone();
        block_on(|| async move {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            let _ = conn.close().await;
            n > 0
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = block_on(|| async move {
            let mut conn = admin_connect(&admin).await?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok::<_, String>(())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// Connects to the admin database, giving up after 5 s.
async fn admin_connect(url: &str) -> Result<PgConnection, String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// Drops the databases that test runs on this machine left behind when
/// they were killed (their process is gone). Only for a server on this
/// machine, where the process ids mean something.
async fn remove_stale_databases(conn: &mut PgConnection, admin: &str) {
    let local = url::Url::parse(admin).is_ok_and(|u| {
        matches!(
            u.host_str(),
            None | Some("" | "localhost" | "127.0.0.1" | "[::1]")
        )
    });
    if !local {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE starts_with(datname, 'tidings_t_')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let pid = name[DB_PREFIX.len()..]
            .split('_')
            .next()
            .unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A fresh, empty store for a test that opens [`tidings::store::Store`]
/// itself: a file in a temporary folder, or a PostgreSQL database of its
/// own; removed when dropped.
pub struct TestStore {
    _dir: TempDir,
    _db: Option<PgDatabase>,
    url: StorageUrl,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, url) = match site_backend() {
            Backend::Sqlite => (None, StorageUrl::Sqlite(dir.path().join("tidings.db"))),
            Backend::Postgres => {
                let db = PgDatabase::create();
                let url = StorageUrl::Postgres(db.url.clone());
                (Some(db), url)
            }
        };
        TestStore {
            _dir: dir,
            _db: db,
            url,
        }
    }

    pub fn url(&self) -> &StorageUrl {
        &self.url
    }
}

/// Runs SQL statements on a store with sqlx, as an operator's tool would.
pub async fn exec_sql(url: &StorageUrl, statements: &[&str]) {
    match url {
        StorageUrl::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for s in statements {
                sqlx::query(s)
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            conn.close().await.unwrap();
        }
        StorageUrl::Postgres(url) => {
            let mut conn = PgConnection::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(s)
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            conn.close().await.unwrap();
        }
    }
}

/// Runs the future that `make` returns to completion on a runtime of its
/// own, in a thread of its own, so that it works from sync tests and
/// from inside `#[tokio::test]` (and from `Drop`) alike.
pub fn block_on<T, F>(make: impl FnOnce() -> F + Send) -> T
where
    T: Send,
    F: Future<Output = T>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(make())
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}
