//! The queries of `src/store/sql/`, compiled once for each backend. Each
//! file is written against `DB` (the sqlx database) and `PG` (true for
//! PostgreSQL, where a query must differ) and takes the pool first; the
//! `dispatch!` macro of `store/mod.rs` calls the right copy.

macro_rules! backend {
    ($name:ident, $db:ty, $pg:expr) => {
        pub(crate) mod $name {
            #![allow(dead_code)]
            pub type DB = $db;
            pub const PG: bool = $pg;

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
        }
    };
}

backend!(sqlite, sqlx::Sqlite, false);
backend!(postgres, sqlx::Postgres, true);
