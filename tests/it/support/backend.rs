//! The store the tests run on — SQLite, or PostgreSQL with
//! `TIDINGS_TEST_BACKEND=postgres` — and a database of its own for each
//! test that needs one, dropped with it.

use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tempfile::TempDir;
use tidings::config::StorageUrl;

use super::wait::block_on;

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

/// Runs `make` with every [`Site`](super::Site) and [`TestStore`] it creates on
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
pub(super) fn site_backend() -> Backend {
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

/// A database of its own for one test (made by [`Site`](super::Site) on the PostgreSQL
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

    /// Drops the database and makes it again, empty.
    pub(super) fn recreate(&self) {
        self.admin_exec(&[
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
            &format!("CREATE DATABASE \"{}\"", self.name),
        ]);
    }

    /// Whether anything made tables in the database.
    pub(super) fn has_tables(&self) -> bool {
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
