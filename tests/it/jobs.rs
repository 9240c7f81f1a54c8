//! The scheduler's memory in the store survives a restart and keeps the
//! last success through later failures.

use chrono::{DateTime, Utc};
use tidings::store::Store;

use crate::support::TestStore;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn job_state_is_kept_across_a_restart() {
    let db = TestStore::new();
    let url = db.url();
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.job("digest:monthly").await.unwrap(), None);
    store
        .record_job(
            "digest:monthly",
            t("2026-11-01T07:00:00Z"),
            t("2026-11-01T07:00:01Z"),
            tidings::model::JobOutcome::Ok,
            None,
        )
        .await
        .unwrap();
    store
        .record_job(
            "digest:monthly",
            t("2026-12-01T07:00:00Z"),
            t("2026-12-01T07:00:02Z"),
            tidings::model::JobOutcome::Failed,
            Some("SMTP down"),
        )
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(url).await.unwrap();
    let job = store.job("digest:monthly").await.unwrap().unwrap();
    assert_eq!(job.last_tick, Some(t("2026-12-01T07:00:00Z")));
    assert_eq!(job.last_result, Some(tidings::model::JobOutcome::Failed));
    assert_eq!(job.last_error.as_deref(), Some("SMTP down"));
    assert_eq!(
        job.last_success_at,
        Some(t("2026-11-01T07:00:01Z")),
        "the last success is kept"
    );
    assert_eq!(store.job("ingest").await.unwrap(), None);
}
