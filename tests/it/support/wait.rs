//! Waiting: polling until something holds, from sync and async tests, and
//! running a future to its end from sync code.

use std::future::Future;
use std::time::{Duration, Instant};

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

/// Polls `check` until it holds (at most 15 s): sign-ups are stored and
/// mailed in a task of their own, after the answer.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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
