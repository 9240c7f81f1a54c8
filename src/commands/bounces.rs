//! `tidings bounces …`: import reports of failed delivery, or fetch them
//! from the bounce mailbox; list and show what they did (see
//! [`tidings::bounces`]).

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::Utc;

use tidings::bounces;
use tidings::cli::{BounceKindArg, BouncesCommand};
use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::links::keys::Keys;
use tidings::model::{BounceKind, SubscriberEmail};
use tidings::store::Store;
use tidings::store::bounces::Filter;

pub async fn run(config: &Config, env: &Environment, command: BouncesCommand) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let result = match command {
        BouncesCommand::Import { files } => import(config, env, &store, &files).await,
        BouncesCommand::Fetch { all } => fetch(config, env, &store, all).await,
        BouncesCommand::List { kind, email } => list(&store, kind, email.as_deref()).await,
        BouncesCommand::Show { id } => show(&store, id).await,
    };
    store.close().await;
    result
}

/// Each file in turn; one that cannot be read is reported and makes the
/// exit status 1 without stopping the others.
async fn import(
    config: &Config,
    env: &Environment,
    store: &Store,
    files: &[std::path::PathBuf],
) -> Result<ExitCode> {
    let signer = Keys::load(store, env).await?.signer();
    let mut failed = false;
    for file in files {
        let name = file.display();
        let raw = match read(file) {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("{name}: {e:#}");
                failed = true;
                continue;
            }
        };
        let imported = bounces::import(store, &signer, &config.bounces, &raw, Utc::now()).await?;
        println!("{name}: {imported}");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One poll of `[bounces] mailbox`: a line per message read, then the
/// summary. Exit 1 when there is no mailbox, no password, or the server
/// cannot be reached or refuses the login.
async fn fetch(config: &Config, env: &Environment, store: &Store, all: bool) -> Result<ExitCode> {
    let Some(mailbox) = &config.bounces.mailbox else {
        eprintln!(
            "error: no [bounces] mailbox in config.toml: add one such as \
             mailbox = \"imap://bounces@imap.example.org/INBOX\""
        );
        return Ok(ExitCode::from(1));
    };
    if let Some(problem) = config.bounces.mailbox_problem() {
        eprintln!("error: {problem}");
        return Ok(ExitCode::from(1));
    }
    let signer = Keys::load(store, env).await?.signer();
    println!("{mailbox}");
    match bounces::mailbox::poll(store, &signer, &config.bounces, all, Utc::now()).await {
        Ok(polled) => {
            for message in &polled.messages {
                println!("{message}");
            }
            println!("{polled}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read standard input")?;
        return Ok(raw);
    }
    Ok(fs_err::read(file)?)
}

async fn list(store: &Store, kind: Option<BounceKindArg>, email: Option<&str>) -> Result<ExitCode> {
    let email_key = match email.map(SubscriberEmail::parse).transpose() {
        Ok(email) => email.map(|e| e.key()),
        Err(e) => {
            eprintln!("--email: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let filter = Filter {
        kind: kind.map(|k| match k {
            BounceKindArg::Hard => BounceKind::Hard,
            BounceKindArg::Soft => BounceKind::Soft,
            BounceKindArg::Complaint => BounceKind::Complaint,
        }),
        email_key,
    };
    let events = store.bounce_events(&filter).await?;
    if events.is_empty() {
        println!("no bounce events");
        return Ok(ExitCode::SUCCESS);
    }
    println!("id\treceived\tkind\temail\tedition\taction\tdiagnostic");
    for e in &events {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.id,
            e.received_at.format("%Y-%m-%d %H:%M UTC"),
            e.kind,
            e.email,
            e.edition_id,
            e.action,
            one_line(&e.diagnostic, 120)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, id: i64) -> Result<ExitCode> {
    let Some((e, report)) = store.bounce_event(id).await? else {
        eprintln!("no bounce event {id}");
        return Ok(ExitCode::from(1));
    };
    println!("event:      {}", e.id);
    println!(
        "received:   {}",
        e.received_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("kind:       {}", e.kind);
    println!("subscriber: {} (id {})", e.email, e.subscriber_id);
    println!("edition:    {}", e.edition_id);
    println!("action:     {}", e.action);
    println!("diagnostic: {}", one_line(&e.diagnostic, usize::MAX));
    let kept = if (e.report_size as usize) > report.len() {
        format!(", the first {} kept", report.len())
    } else {
        String::new()
    };
    println!("report:     {} bytes{kept}", e.report_size);
    println!();
    println!("{}", String::from_utf8_lossy(&report));
    Ok(ExitCode::SUCCESS)
}

/// `text` on one line, control characters replaced, at most `max` chars.
fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}
