//! The queries of `src/store/sql/`, compiled once for each backend. Each
//! file is written against `DB` (the sqlx database) and `PG` (true for
//! PostgreSQL, where a query must differ) and takes the pool first; the
//! `dispatch!` macro of `store/mod.rs` calls the right copy.

macro_rules! backend {
    ($name:ident, $db:ty, $pg:expr) => {
        pub(crate) mod $name {

            pub type DB = $db;
            pub const PG: bool = $pg;

            /// A transaction that writes. On SQLite it takes the write lock
            /// at once (`BEGIN IMMEDIATE`, waiting out the busy timeout), so
            /// that two processes never fail upgrading a read to a write;
            /// PostgreSQL's default is right.
            pub async fn begin_write(
                pool: &sqlx::Pool<DB>,
            ) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
                if PG {
                    pool.begin().await
                } else {
                    pool.begin_with("BEGIN IMMEDIATE").await
                }
            }

            pub mod stories {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/stories.rs");
            }
            pub mod subscribers {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/subscribers.rs");
            }
            pub mod editions {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/editions.rs");
            }
            pub mod jobs {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/jobs.rs");
            }
            pub mod keys {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/keys.rs");
            }
            pub mod archive {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/archive.rs");
            }
            pub mod metrics {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/metrics.rs");
            }
            pub mod bounces {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/bounces.rs");
            }
            pub mod limits {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/limits.rs");
            }
            pub mod websub {
                #[allow(unused_imports)]
                use super::{DB, PG};
                include!("sql/websub.rs");
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite, false);
backend!(postgres, sqlx::Postgres, true);
