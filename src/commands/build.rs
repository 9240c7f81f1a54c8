//! `tidings build [--strict]`: ingest every source, then write the feeds
//! that changed (see `tidings::publish::build`), tell the WebSub hubs, and
//! say what changed.

use std::process::ExitCode;

use anyhow::Result;

use super::{plural, print_problems};
use tidings::config::Config;
use tidings::model::Problems;
use tidings::publish::build;
use tidings::publish::ingest::Which;
use tidings::store::Store;
use tidings::websub::{Pings, WebSub};

pub async fn run(config: &Config, strict: bool) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let report = build::build(config, &store, &Which::All).await;
    if let Ok(report) = &report
        && !config.feeds.websub.hubs.is_empty()
    {
        // A process that exits at once pings each hub once and waits; the
        // built-in hub's distributions are sent by `tidings run`.
        match WebSub::new(std::sync::Arc::new(config.clone()), store.clone()) {
            Ok(websub) => {
                websub
                    .feeds_changed(&report.feeds.written, Pings::OnceAndWait)
                    .await
            }
            Err(e) => eprintln!("warning: cannot tell the WebSub hubs: {e:#}"),
        }
    }
    store.close().await;
    let report = report?;
    let skipped = Problems(report.ingest.skipped.clone()).sorted();
    print_problems(&skipped);
    let i = &report.ingest;
    println!(
        "stories: {} new, {} updated, {} withdrawn, {} unchanged, {} skipped; {} published",
        i.new,
        i.changed,
        i.withdrawn,
        i.unchanged,
        skipped.len(),
        report.published
    );
    let f = &report.feeds;
    println!(
        "feeds: {} written, {} unchanged{} in {}",
        f.written.len(),
        f.unchanged,
        if f.removed.is_empty() {
            String::new()
        } else {
            format!(", {} removed", f.removed.len())
        },
        config.feeds.dir.display()
    );
    for e in &report.problems {
        eprintln!("error: {e:#}");
    }
    if !report.problems.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if strict && !skipped.is_empty() {
        eprintln!("--strict: {} skipped", plural(skipped.len(), "story"));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
