//! The site's store read and set beside the binary: SQL run with sqlx as
//! an operator's tool would, and what the store says of a subscriber.

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use tidings::config::StorageUrl;
use tidings::model::{Status, Subscriber};
use tidings::store::Store;

use super::site::Site;

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

/// Runs SQL statements on the site's store (to set up states the CLI
/// cannot make).
pub async fn sql(site: &Site, statements: &[&str]) {
    exec_sql(&site.storage_url(), statements).await;
}

/// The site's store, opened beside the running service.
pub async fn store(site: &Site) -> Store {
    Store::open(&site.storage_url()).await.unwrap()
}

pub async fn subscriber(site: &Site, email: &str) -> Option<Subscriber> {
    let store = store(site).await;
    let found = store.subscriber(&email.to_lowercase()).await.unwrap();
    store.close().await;
    found
}

pub async fn status(site: &Site, email: &str) -> Option<Status> {
    subscriber(site, email).await.map(|s| s.status)
}
