//! `tidings db copy`: a SQLite site with stories, subscribers in every
//! state, a sent edition and job state moves into a fresh PostgreSQL
//! database; afterwards the site reads the same through the CLI, its feeds
//! are byte-identical, links mailed before the move still work, new rows
//! get new ids, and a second copy into the filled database is refused.
//!
//! PostgreSQL comes from `TIDINGS_TEST_POSTGRES_URL` (default the local
//! server of DESIGN.md); each test makes its own database and drops it.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use reqwest::StatusCode;
use tidings::config::StorageUrl;
use tidings::store::Store;

use crate::support::{
    self, Backend, Page, PgDatabase, Run, Site, client, digest_site, get, ok, outbox, recent,
    subscribe,
};

/// A database of its own on the test server (dropped when this is), and
/// its URL with a password in it where the server is the local one (it
/// trusts any): the URL shows that no password is ever printed.
struct TestDatabase {
    _db: PgDatabase,
    url: String,
}

impl TestDatabase {
    /// `None` (after saying so) when no server answers and this is not CI.
    async fn create() -> Option<TestDatabase> {
        if !support::postgres_available() {
            return None;
        }
        let db = PgDatabase::create();
        let mut url = url::Url::parse(db.url()).expect("a PostgreSQL URL");
        if std::env::var("TIDINGS_TEST_POSTGRES_URL").is_err() {
            url.set_password(Some(PASSWORD)).unwrap();
        }
        Some(TestDatabase {
            url: url.into(),
            _db: db,
        })
    }
}

const PASSWORD: &str = "pw-never-printed";

/// Runs `tidings --config <site>/<config> ARGS` from the site folder.
fn tidings_with(site: &Site, config: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.path(config))
        .args(args)
        .current_dir(site.root())
        .env_remove("TIDINGS_CONFIG")
        .env_remove("TIDINGS_SECRET")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run tidings");
    Run::from(output)
}

/// The site before the move: published and withdrawn stories, subscribers
/// pending, active, unsubscribed and bounced, one digest edition sent,
/// and the scheduler's state.
async fn sqlite_site() -> Site {
    let site = support::on_backend(Backend::Sqlite, || digest_site("file:outbox"));
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    recent(&site, "b1", "Beta <one> & co", 1, &["beta"]);
    recent(&site, "ag", "Alpha and gamma", 3, &["alpha", "gamma"]);
    recent(&site, "gone", "Soon withdrawn", 4, &["gamma"]);
    site.build();
    site.remove_story("gone");
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "Bo.Berg@Example.org", "beta,gamma");
    subscribe(&site, "cy@example.org", "alpha");
    subscribe(&site, "di@example.org", "gamma");
    ok(site.tidings(&["subscribers", "add", "eve@example.org", "--themes", "beta"]));
    let store = sqlite_store(&site).await;
    let now = Utc::now();
    let cy = store.subscriber("cy@example.org").await.unwrap().unwrap();
    store.mark_bounced(cy.id, now).await.unwrap();
    let di = store.subscriber("di@example.org").await.unwrap().unwrap();
    store.unsubscribe(di.id, now).await.unwrap();
    store
        .record_job(
            "ingest",
            now - Duration::minutes(5),
            now,
            tidings::model::JobOutcome::Ok,
            None,
        )
        .await
        .unwrap();
    store
        .record_job(
            "digest:monthly",
            now,
            now,
            tidings::model::JobOutcome::Failed,
            Some("the relay said 421"),
        )
        .await
        .unwrap();
    store.close().await;
    ok(site.tidings(&["digest", "send"]));
    site
}

async fn sqlite_store(site: &Site) -> Store {
    Store::open(&StorageUrl::Sqlite(site.path("tidings.db")))
        .await
        .unwrap()
}

/// What an operator reads of the site: the same store must read the same.
fn views(site: &Site, config: &str) -> Vec<(String, String)> {
    [
        vec!["status"],
        vec!["subscribers", "export"],
        vec!["subscribers", "export", "--format", "json"],
        vec!["subscribers", "list"],
        vec!["digest", "status"],
    ]
    .into_iter()
    .map(|args| {
        let run = ok(tidings_with(site, config, &args));
        (args.join(" "), normalize(&run.stdout))
    })
    .collect()
}

/// PostgreSQL keeps times to the microsecond, SQLite as sqlx wrote them
/// (to the nanosecond): RFC 3339 times are compared to the microsecond.
/// The next run of each schedule depends on the clock, not the store.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.find(": next run ") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut rest = line;
        while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+')))
                .unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            match DateTime::parse_from_rfc3339(word) {
                Ok(t) => out.push_str(&t.trunc_subsecs(6).to_rfc3339()),
                Err(_) => out.push_str(word),
            }
            rest = tail;
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The service-relative path of the first link in `text` under `prefix`.
fn link_path(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    let token: String = text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let kind = prefix.trim_end_matches('/').rsplit('/').next().unwrap();
    format!("/{kind}/{token}")
}

fn assert_no_password(run: &Run) {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password was printed:\n{run}"
    );
}

#[tokio::test]
async fn a_sqlite_site_moves_to_postgresql_with_nothing_lost() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let site = sqlite_site().await;
    let before = views(&site, "config.toml");
    let sqlite_key = {
        let store = sqlite_store(&site).await;
        let keys = signing_keys(&store).await;
        store.close().await;
        keys
    };

    // A sign-up's rate-limit count is left behind, and not in the way.
    site.sql(&["INSERT INTO rate_limits (key, tat_ms) VALUES ('00ab', 4102444800000)"]);

    let copy = ok(site.tidings(&["db", "copy", "--to", &db.url]));
    assert_no_password(&copy);
    assert!(!copy.stdout.contains("rate_limits"), "{copy}");
    for line in [
        "stories: 4 copied",
        "story_themes: 5 copied",
        "subscribers: 5 copied",
        // The note of what the last build wrote, what its feeds listed
        // and the stories' generation they name.
        "settings: 3 copied",
        "signing_keys: 1 copied",
        "editions: 1 copied",
        "edition_stories: 3 copied",
        "deliveries: 2 copied",
        "jobs: 2 copied",
    ] {
        assert!(copy.stdout.contains(line), "no `{line}` in\n{copy}");
    }
    assert!(
        copy.stdout.contains("point [storage] url at") && copy.stdout.contains("config.toml"),
        "says what to change, and where: {copy}"
    );

    // The operator's next step: config.toml points at PostgreSQL.
    let sqlite_config = std::fs::read_to_string(site.config_path()).unwrap();
    let pg_config = sqlite_config.replace(
        "url = \"sqlite://tidings.db\"",
        &format!("url = \"{}\"", db.url),
    );
    assert_ne!(pg_config, sqlite_config);
    std::fs::write(site.path("config-sqlite.toml"), sqlite_config).unwrap();
    std::fs::write(site.config_path(), pg_config).unwrap();

    // The same site, read from PostgreSQL.
    let after = views(&site, "config.toml");
    for ((what, sqlite), (_, postgres)) in before.iter().zip(&after) {
        assert_eq!(sqlite, postgres, "`tidings {what}` differs after the move");
    }
    // Nothing to ingest again, and every feed byte-identical.
    let build = site.build();
    assert!(
        build
            .stdout
            .contains("0 new, 0 updated, 0 withdrawn, 3 unchanged"),
        "{build}"
    );
    assert!(build.stdout.contains("feeds: 0 written"), "{build}");

    // The signing key moved: links mailed before the move still work.
    let pg_url = StorageUrl::Postgres(db.url.clone());
    let pg = Store::open(&pg_url).await.unwrap();
    assert_eq!(signing_keys(&pg).await, sqlite_key);
    pg.close().await;
    let sent = outbox(&site);
    let ann = &sent["ann@example.org"][0];
    let unsubscribe = link_path(&ann.text, "https://example.org/news/unsubscribe/");
    let preferences = link_path(&ann.text, "https://example.org/news/preferences/");
    let service = site.serve(&[]);
    let c = client();
    let page = get(&c, &service.url(&preferences)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = get(&c, &service.url(&unsubscribe)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.has_id("unsubscribe"));
    let page = Page::from(
        c.post(service.url(&unsubscribe))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(page.has_id("unsubscribed"), "{}", page.body);
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");

    // New rows get ids after the copied ones.
    subscribe(&site, "new@example.org", "alpha");
    let pg = Store::open(&pg_url).await.unwrap();
    let ann = pg.subscriber("ann@example.org").await.unwrap().unwrap();
    assert_eq!(ann.status, tidings::model::Status::Unsubscribed);
    let new = pg.subscriber("new@example.org").await.unwrap().unwrap();
    assert_eq!(new.id, 6, "after the 5 copied subscribers");
    pg.close().await;
    recent(&site, "c1", "After the move", 0, &["alpha"]);
    site.build();
    let send = ok(site.tidings(&["digest", "send"]));
    assert!(send.stdout.contains("froze edition 2 of monthly"), "{send}");
    assert!(send.stdout.contains("1 sent"), "to new@ only: {send}");

    // A second copy finds the database in use and changes nothing.
    let held = views(&site, "config.toml");
    let again = tidings_with(
        &site,
        "config-sqlite.toml",
        &["db", "copy", "--to", &db.url],
    );
    assert_eq!(again.code, 1, "{again}");
    assert_no_password(&again);
    assert!(again.stderr.contains("is not empty"), "{again}");
    assert!(again.stderr.contains("subscribers (6 rows)"), "{again}");
    assert!(again.stderr.contains("wrote nothing"), "{again}");
    assert_eq!(again.stdout, "", "{again}");
    assert_eq!(views(&site, "config.toml"), held);
}

#[tokio::test]
async fn copy_refuses_what_it_cannot_copy() {
    let site = support::on_backend(Backend::Sqlite, || digest_site("file:outbox"));
    // No store yet: nothing is created, nothing copied.
    let run = site.tidings(&["db", "copy", "--to", &support::postgres_admin_url()]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("no SQLite store at"), "{run}");
    assert!(!Path::new(&site.path("tidings.db")).exists());
    site.build();
    let run = site.tidings(&["db", "copy", "--to", "sqlite://other.db"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("PostgreSQL only"), "{run}");
    let run = site.tidings(&["db", "copy"]);
    assert_eq!(run.code, 2, "a usage error: {run}");
    // A site already on PostgreSQL: refused before connecting anywhere.
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let config = config.replace(
        "url = \"sqlite://tidings.db\"",
        "url = \"postgres://postgres:pw-never-printed@127.0.0.1:1/site\"",
    );
    std::fs::write(site.config_path(), config).unwrap();
    let run = site.tidings(&["db", "copy", "--to", &support::postgres_admin_url()]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("already PostgreSQL"), "{run}");
    assert_no_password(&run);
}

#[tokio::test]
async fn a_copy_that_fails_half_way_leaves_the_target_empty() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let site = support::on_backend(Backend::Sqlite, || digest_site("file:outbox"));
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    // A time no program of ours writes: the copy stops at it.
    crate::support::sql(
        &site,
        &["UPDATE subscribers SET consent_at = 'last spring' WHERE email = 'bo@example.org'"],
    )
    .await;
    let run = site.tidings(&["db", "copy", "--to", &db.url]);
    assert_eq!(run.code, 1, "{run}");
    assert_no_password(&run);
    assert!(
        run.stderr.contains("cannot copy the table subscribers")
            && run
                .stderr
                .contains("subscribers.consent_at of the row id = 2"),
        "names the table, column and row: {run}"
    );
    // The stories copied before it were rolled back: the target is still
    // empty, so a copy after the fix goes through.
    crate::support::sql(
        &site,
        &["UPDATE subscribers SET consent_at = created_at WHERE email = 'bo@example.org'"],
    )
    .await;
    let run = ok(site.tidings(&["db", "copy", "--to", &db.url]));
    assert!(run.stdout.contains("stories: 1 copied"), "{run}");
    assert!(run.stdout.contains("subscribers: 2 copied"), "{run}");
}

/// The site's signing keys (made on first use), as (id, secret, fingerprint).
async fn signing_keys(store: &Store) -> Vec<(i64, Option<Vec<u8>>, String)> {
    let env = tidings::config::env::Environment::default();
    tidings::links::keys::Keys::load(store, &env).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert!(!keys.is_empty());
    keys.into_iter()
        .map(|k| (k.id, k.secret, k.fingerprint))
        .collect()
}
