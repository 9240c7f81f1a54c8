//! `tidings status`: what the site holds and what runs next, read from the
//! store (so it works while another process sends).

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;

use tidings::config::Config;
use tidings::digest::delivery;
use tidings::service::Job;
use tidings::store::Store;

pub async fn run(config: &Config) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let result = report(config, &store).await;
    store.close().await;
    result
}

async fn report(config: &Config, store: &Store) -> Result<ExitCode> {
    let tz = config.site.timezone;
    let local =
        |t: chrono::DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let (published, withdrawn) = store.story_counts().await?;
    println!(
        "{}: {published} stories published, {withdrawn} withdrawn; feeds in {}",
        config.site.title,
        config.feeds.dir.display()
    );
    let counts = store.subscriber_counts().await?;
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("subscribers: {}", counts.join(", "));
    let now = Utc::now();
    println!("jobs (times in {tz}):");
    let schedules = std::iter::once((Job::Ingest.name(), &config.schedule.ingest))
        .chain(config.sources.iter().filter_map(|s| {
            s.schedule()
                .map(|schedule| (Job::Source(s.key()).name(), schedule))
        }))
        .chain(
            config
                .digests
                .iter()
                .map(|d| (Job::Digest(d.id.clone()).name(), &d.schedule)),
        )
        .chain(
            config
                .bounces
                .mailbox
                .iter()
                .map(|m| (Job::Bounces.name(), &m.schedule)),
        );
    for (name, schedule) in schedules {
        let next = schedule
            .next_after(now, tz)
            .map_or("never".to_owned(), local);
        println!("  {name} ({schedule}): next run {next}");
        match store.job(&name).await? {
            Some(job) => print_job(&job, &local),
            None => println!("    last run: never"),
        }
    }
    if config.sources.iter().any(|s| s.is_remote()) {
        let states = store.source_states().await?;
        println!("remote sources:");
        for source in config.sources.iter().filter(|s| s.is_remote()) {
            let key = source.key();
            let state = states.get(&key).cloned().unwrap_or_default();
            let mut notes = Vec::new();
            if let Some(at) = state.gone_at {
                notes.push(format!("GONE (410) since {}; not polled", local(at)));
            }
            if let Some(to) = &state.moved_to {
                notes.push(format!("moved permanently to {to}"));
            }
            if let Some(at) = state.full_at {
                notes.push(format!("last full read {}", local(at)));
            }
            if state.etag.is_some() || state.last_modified.is_some() {
                notes.push("conditional requests".to_owned());
            }
            if notes.is_empty() {
                notes.push("not read yet".to_owned());
            }
            println!("  {key}: {}", notes.join("; "));
        }
    }
    if !config.feeds.websub.hubs.is_empty() {
        let hubs: Vec<String> = config.hub_urls().iter().map(|u| u.to_string()).collect();
        println!("websub hubs: {}", hubs.join(", "));
    }
    if config.feeds.websub.builtin() {
        let (live, owed) = store.websub_counts(now).await?;
        println!("websub (built-in hub): {live} live subscriptions, {owed} distributions owed");
    }
    let queue = store.delivery_totals().await?;
    println!(
        "delivery queue: {} pending, {} sending (all editions: {} sent, {} failed, {} skipped)",
        queue.pending, queue.sending, queue.sent, queue.failed, queue.skipped
    );
    for digest in &config.digests {
        match store.editions(&digest.id, 1).await?.first() {
            Some(e) => {
                let c = store.delivery_counts(e.id).await?;
                let unfinished = if e.completed_at.is_some() {
                    ""
                } else {
                    " (unfinished: `tidings run` or `tidings digest send` resumes it)"
                };
                println!(
                    "digest {}: last {} made {}: {c}{unfinished}",
                    digest.id,
                    delivery::describe(e),
                    local(e.created_at)
                );
                super::digest::print_bounces(&store.edition_bounces(e.id).await?, c.sent);
                for (email, status, reason) in store.undelivered(e.id).await? {
                    println!("    not sent to {email}: {status}: {reason}");
                }
            }
            None => println!("digest {}: no editions yet", digest.id),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_job(
    job: &tidings::store::jobs::JobState,
    local: &dyn Fn(chrono::DateTime<Utc>) -> String,
) {
    match (job.last_run_at, job.last_result) {
        (Some(at), Some(result)) => println!(
            "    last run: {} ({result}){}",
            local(at),
            job.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        _ => println!("    last run: never"),
    }
    if let Some(at) = job.last_success_at
        && job.last_result != Some(tidings::model::JobOutcome::Ok)
    {
        println!("    last success: {}", local(at));
    }
}
