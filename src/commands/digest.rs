//! `tidings digest …`: preview what a subscriber would get, send an
//! edition (or resume one), and report on editions.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, anyhow};
use chrono::Utc;

use tidings::cli::DigestCommand;
use tidings::config::env::Environment;
use tidings::config::{Config, Digest};
use tidings::digest::delivery::{self, Options, Worker};
use tidings::digest::email::{self, Composer};
use tidings::digest::render::Templates;
use tidings::links::keys::Keys;
use tidings::mail::Mailer;
use tidings::model::SubscriberEmail;
use tidings::store::Store;

pub async fn run(config: &Config, env: &Environment, command: DigestCommand) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let result = dispatch(config, env, &store, command).await;
    store.close().await;
    result
}

fn digest<'a>(config: &'a Config, id: Option<&str>) -> Result<&'a Digest> {
    config.digest(id).ok_or_else(|| match id {
        Some(id) => {
            let known: Vec<&str> = config.digests.iter().map(|d| d.id.as_str()).collect();
            anyhow!(
                "unknown digest `{id}`; expected one of: {}",
                known.join(", ")
            )
        }
        None => anyhow!("no [[digests]] in config.toml"),
    })
}

async fn dispatch(
    config: &Config,
    env: &Environment,
    store: &Store,
    command: DigestCommand,
) -> Result<ExitCode> {
    match command {
        DigestCommand::Preview {
            email,
            digest: id,
            out,
            text,
        } => {
            let key = SubscriberEmail::parse(&email)
                .map_err(anyhow::Error::msg)?
                .key();
            let person = store
                .subscriber(&key)
                .await?
                .ok_or_else(|| anyhow!("no subscriber with the address {email}"))?;
            let digest = digest(config, Some(id.as_deref().unwrap_or(&person.digest)))?;
            let mailer = mailer(config)?;
            let templates = Templates::load(config)?;
            let signer = Keys::load(store, env).await?.signer();
            let composer = Composer::new(config, &mailer, digest, &templates, &signer);
            let (rendered, count) = email::preview(&composer, store, &person, Utc::now()).await?;
            let body = if text { rendered.text } else { rendered.html };
            match out {
                Some(path) => {
                    fs_err::write(&path, body)?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{body}"),
            }
            eprintln!(
                "subject: {}\n{count} stories for {} ({}){}",
                rendered.subject,
                person.email,
                person.status,
                if count == 0 && digest.skip_if_empty {
                    "; with nothing new they would get no email"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        DigestCommand::Send {
            digest: id,
            dry_run,
        } => send(config, env, store, id.as_deref(), dry_run).await,
        DigestCommand::Test {
            to,
            digest: id,
            language,
        } => test_send(config, env, store, &to, id.as_deref(), language.as_deref()).await,
        DigestCommand::Status { digest: id } => {
            let digests: Vec<&Digest> = match id.as_deref() {
                Some(id) => vec![digest(config, Some(id))?],
                None => config.digests.iter().collect(),
            };
            for d in digests {
                println!("digest {}", d.id);
                let editions = store.editions(&d.id, 12).await?;
                if editions.is_empty() {
                    println!("  no editions yet");
                }
                for e in &editions {
                    let c = store.delivery_counts(e.id).await?;
                    let unfinished = if e.completed_at.is_some() {
                        ""
                    } else {
                        " (unfinished)"
                    };
                    println!("  {}: {c}{unfinished}", delivery::describe(e));
                    let bounces = store.edition_bounces(e.id).await?;
                    print_bounces(&bounces, c.sent);
                }
                if let Some(last) = editions.first() {
                    for (email, status, reason) in store.undelivered(last.id).await? {
                        println!("    not sent to {email}: {status}: {reason}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What came back about an edition: bounces and complaints with their
/// rates, and a warning for each rate above its threshold.
pub fn print_bounces(bounces: &tidings::model::EditionBounces, sent: i64) {
    use tidings::model::BounceKind;
    use tidings::model::bounce::percent;
    if *bounces == Default::default() {
        return;
    }
    println!(
        "    came back: {} hard bounces ({}), {} soft ({}), {} complaints ({})",
        bounces.hard,
        percent(bounces.rate(BounceKind::Hard, sent)),
        bounces.soft,
        percent(bounces.rate(BounceKind::Soft, sent)),
        bounces.complaints,
        percent(bounces.rate(BounceKind::Complaint, sent)),
    );
    for warning in bounces.warnings(sent) {
        println!("    WARNING: {warning}");
    }
}

async fn send(
    config: &Config,
    env: &Environment,
    store: &Store,
    id: Option<&str>,
    dry_run: bool,
) -> Result<ExitCode> {
    let digest = digest(config, id)?;
    let now = Utc::now();
    let unfinished = store.unfinished_edition(&digest.id).await?;
    if dry_run {
        return say_what_would_be_sent(store, digest, unfinished.as_ref(), now).await;
    }
    // Everything that can fail before sending fails before freezing.
    let mailer = mailer(config)?;
    let templates = Templates::load(config)?;
    let signer = Keys::load(store, env).await?.signer();
    let edition = match unfinished {
        Some(e) => {
            println!("resuming {}", delivery::describe(&e));
            e
        }
        None => {
            let key = format!("manual:{}", now.to_rfc3339());
            let frozen = store
                .freeze_edition(&digest.id, &key, digest.skip_if_empty, now)
                .await?;
            println!(
                "froze {}: {} stories, {} recipients",
                delivery::describe(&frozen.edition),
                frozen.stories,
                frozen.deliveries
            );
            frozen.edition
        }
    };
    let worker = Worker::new(
        config,
        &mailer,
        digest,
        &templates,
        store,
        &signer,
        Options::new(env),
        stop_on_signal(),
    );
    let bar = progress_bar();
    let counts = worker
        .deliver(&edition, |c| {
            if let Some(bar) = &bar {
                bar.set_length(c.total() as u64);
                bar.set_position((c.sent + c.failed + c.skipped) as u64);
            }
            tracing::info!(
                sent = c.sent,
                failed = c.failed,
                skipped = c.skipped,
                pending = c.pending,
                "delivery batch"
            );
        })
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "{}: {} sent, {} failed, {} skipped{}",
        delivery::describe(&edition),
        counts.sent,
        counts.failed,
        counts.skipped,
        if counts.done() {
            String::new()
        } else {
            format!(
                "; {} left for the next run",
                counts.pending + counts.sending
            )
        }
    );
    Ok(if counts.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--dry-run`: the edition that would be resumed, or the stories a new
/// one would freeze; nothing written.
async fn say_what_would_be_sent(
    store: &Store,
    digest: &Digest,
    unfinished: Option<&tidings::store::editions::Edition>,
    now: chrono::DateTime<Utc>,
) -> Result<ExitCode> {
    match unfinished {
        Some(e) => {
            let c = store.delivery_counts(e.id).await?;
            println!(
                "would resume {}: {} of {} deliveries left",
                delivery::describe(e),
                c.pending + c.sending,
                c.total()
            );
        }
        None => {
            let stories = store.pending_stories(&digest.id, now).await?;
            println!(
                "would freeze a new edition of {} with {} stories (nothing written)",
                digest.id,
                stories.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag set by Ctrl-C or SIGTERM: the send stops taking new rows and
/// lets those in flight finish.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tidings::service::shutdown_signal().await;
        eprintln!("stopping: no new sends; waiting for those in flight");
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// A bar on a terminal; log lines (TIDINGS_LOG=info) otherwise.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} sent, failed or skipped ({per_sec}, {eta} left)",
            )
            .expect("a valid template"),
        );
        bar
    })
}

/// Sends the preview of every theme to one address.
async fn test_send(
    config: &Config,
    env: &Environment,
    store: &Store,
    to: &str,
    id: Option<&str>,
    language: Option<&str>,
) -> Result<ExitCode> {
    let digest = digest(config, id)?;
    let to = SubscriberEmail::parse(to).map_err(anyhow::Error::msg)?;
    let language = tidings::subscribers::parse_language(config, digest, language.unwrap_or(""))
        .map_err(anyhow::Error::msg)?;
    let mailer = mailer(config)?;
    let templates = Templates::load(config)?;
    let signer = Keys::load(store, env).await?.signer();
    let composer = Composer::new(config, &mailer, digest, &templates, &signer);
    let sent = email::send_test(
        &composer,
        &mailer,
        store,
        &to,
        language.as_str(),
        Utc::now(),
    )
    .await?;
    println!(
        "sent a test of {} ({} stories) to {to}: {}",
        digest.id, sent.stories, sent.reply
    );
    Ok(ExitCode::SUCCESS)
}

/// The site's mail side, or why there is none.
fn mailer(config: &Config) -> Result<Mailer> {
    Mailer::new(config)?.context("no [mail] section in config.toml: add one with at least `from`")
}
