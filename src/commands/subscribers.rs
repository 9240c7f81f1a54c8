//! `tidings subscribers …`: the operator's hands on the subscriber list.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use futures_util::TryStreamExt;

use tidings::cli::{ExportFormat, StatusArg, SubscribersCommand};
use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::links::keys::Keys;
use tidings::model::problem::printable;
use tidings::model::{BounceKind, Status, SubscriberEmail};
use tidings::store::Store;
use tidings::store::subscribers::Signup;
use tidings::subscribers::Choice;
use tidings::subscribers::io::{self, Format};

pub async fn run(
    config: &Config,
    env: &Environment,
    command: SubscribersCommand,
) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let result = dispatch(config, env, &store, command).await;
    store.close().await;
    result
}

async fn dispatch(
    config: &Config,
    env: &Environment,
    store: &Store,
    command: SubscribersCommand,
) -> Result<ExitCode> {
    match command {
        SubscribersCommand::Add {
            email,
            themes,
            language,
            digest,
            confirmed,
            send_confirmation,
        } => {
            let choice = Choice {
                email: &email,
                themes: &themes,
                language: language.as_deref().unwrap_or(""),
                digest: digest.as_deref().unwrap_or(""),
            };
            add(config, env, store, &choice, confirmed, send_confirmation).await
        }
        SubscribersCommand::Import { file, confirmed } => {
            import(config, store, &file, confirmed).await
        }
        SubscribersCommand::Export { format } => export(store, format).await,
        SubscribersCommand::List { status } => list(store, status).await,
        SubscribersCommand::Remove { email } => remove(store, &email).await,
    }
}

/// `subscribers add`: one subscriber, and with `--send-confirmation` their
/// double opt-in email.
async fn add(
    config: &Config,
    env: &Environment,
    store: &Store,
    choice: &Choice<'_>,
    confirmed: bool,
    send_confirmation: bool,
) -> Result<ExitCode> {
    let status = if confirmed {
        Status::Active
    } else {
        Status::Pending
    };
    let source = if confirmed {
        "cli (confirmed by the operator)"
    } else {
        "cli"
    };
    let person = match choice.parse(config, status, source) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}", printable(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
    };
    // Links this process signs must work in the service: refused
    // before anything is added.
    let keys = match send_confirmation {
        true => Some(Keys::load(store, env).await?),
        false => None,
    };
    if let Some(keys) = &keys {
        // A fresh opt-in, as the sign-up form makes it: the only way back
        // for an address that bounced, complained or unsubscribed.
        let before = store.subscriber(&person.email.key()).await?;
        match store.signup(&person, Utc::now()).await? {
            Signup::AlreadyActive(_) => {
                eprintln!(
                    "{} is already an active subscriber; nothing changed, no email sent",
                    person.email
                );
                return Ok(ExitCode::SUCCESS);
            }
            Signup::Created(_) => println!("added {} (pending)", person.email),
            Signup::StillPending(_) => println!(
                "{} was already pending: its choices replaced by these",
                person.email
            ),
            Signup::Returning(_) => {
                let was = before.map_or("unknown".into(), |s| s.status.to_string());
                println!(
                    "{} was {was}{}: pending again with these choices until they confirm",
                    person.email,
                    why_it_left(store, &person.email).await?
                );
            }
        }
        send_confirmation_email(config, store, &person, &keys.signer()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let added = store
        .add_subscribers(std::slice::from_ref(&person), Utc::now())
        .await?;
    if added.added == 1 {
        println!("added {} ({status})", person.email);
    } else {
        let existing = store.subscriber(&person.email.key()).await?;
        let status = existing.map_or("unknown".into(), |s| s.status.to_string());
        eprintln!(
            "{} is already a subscriber ({status}); nothing changed{}",
            person.email,
            why_not_back(store, &person.email).await?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Why an address that bounced or complained stays as it is: neither
/// `add` nor `--confirmed` brings it back; only a fresh opt-in does.
async fn why_not_back(store: &Store, email: &SubscriberEmail) -> Result<String> {
    let Some(what) = bounced_or_complained(store, email).await? else {
        return Ok(String::new());
    };
    Ok(format!(
        ": {what}, and --confirmed does not override that; only a fresh opt-in \
         (the sign-up form, or `subscribers add --send-confirmation`, and its \
         confirmation email) brings it back (see `tidings bounces list --email {email}`)"
    ))
}

/// " (it complained …)" when the address left through a bounce or a
/// complaint, else nothing.
async fn why_it_left(store: &Store, email: &SubscriberEmail) -> Result<String> {
    Ok(bounced_or_complained(store, email)
        .await?
        .map_or_else(String::new, |what| format!(" ({what})")))
}

async fn bounced_or_complained(
    store: &Store,
    email: &SubscriberEmail,
) -> Result<Option<&'static str>> {
    let kinds = store.bounce_kinds(&email.key()).await?;
    Ok(if kinds.contains(&BounceKind::Complaint) {
        Some("it complained (reported a digest as spam)")
    } else if kinds.contains(&BounceKind::Hard) || kinds.contains(&BounceKind::Soft) {
        Some("its mail bounced")
    } else {
        None
    })
}

/// `subscribers import`: a CSV file, bad rows reported with their line.
async fn import(
    config: &Config,
    store: &Store,
    file: &std::path::Path,
    confirmed: bool,
) -> Result<ExitCode> {
    let status = if confirmed {
        Status::Active
    } else {
        Status::Pending
    };
    // Report the first problems in full, then only count them: a
    // broken million-row file must not flood the terminal.
    const SHOWN: u64 = 100;
    let mut seen = 0u64;
    let report = io::import(config, store, file, status, Utc::now(), |p| {
        seen += 1;
        if seen <= SHOWN {
            eprintln!("{p}");
        }
    })
    .await?;
    if report.bad > SHOWN {
        eprintln!("… and {} more bad rows", report.bad - SHOWN);
    }
    println!(
        "{} rows: {} added ({status}), {} already subscribed, {} bad rows skipped",
        report.rows, report.added, report.existing, report.bad
    );
    Ok(ExitCode::SUCCESS)
}

/// `subscribers export`: everyone, as CSV or JSON, to standard output.
async fn export(store: &Store, format: ExportFormat) -> Result<ExitCode> {
    let format = match format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Json => Format::Json,
    };
    let n = io::export(store, format, std::io::stdout().lock()).await?;
    eprintln!("{n} subscribers exported");
    Ok(ExitCode::SUCCESS)
}

/// `subscribers list`: one tab-separated line per subscriber.
async fn list(store: &Store, status: Option<StatusArg>) -> Result<ExitCode> {
    let status = status.map(|s| match s {
        StatusArg::Pending => Status::Pending,
        StatusArg::Active => Status::Active,
        StatusArg::Unsubscribed => Status::Unsubscribed,
        StatusArg::Bounced => Status::Bounced,
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "email\tstatus\tlanguage\tdigest\tthemes")?;
    let mut stream = std::pin::pin!(store.subscribers(status));
    let mut n = 0;
    while let Some(s) = stream.try_next().await? {
        let themes: Vec<&str> = s.themes.iter().map(|t| t.as_str()).collect();
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            s.email,
            s.status,
            s.language,
            s.digest,
            themes.join(",")
        )?;
        n += 1;
    }
    out.flush()?;
    eprintln!("{n} subscribers");
    Ok(ExitCode::SUCCESS)
}

/// `subscribers remove`: the person erased, deliveries included.
async fn remove(store: &Store, email: &str) -> Result<ExitCode> {
    let key = match SubscriberEmail::parse(email) {
        Ok(e) => e.key(),
        Err(e) => {
            eprintln!("error: {}", printable(&e));
            return Ok(ExitCode::from(1));
        }
    };
    if store.remove_subscriber(&key).await? {
        println!(
            "removed {} and everything stored about them",
            printable(email)
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no subscriber with the address {}", printable(email));
        Ok(ExitCode::from(1))
    }
}

/// Sends the double opt-in email to a subscriber just added.
async fn send_confirmation_email(
    config: &Config,
    store: &Store,
    person: &tidings::model::NewSubscriber,
    signer: &tidings::links::tokens::Signer,
) -> Result<()> {
    use anyhow::Context as _;
    let mailer = tidings::mail::Mailer::new(config)?
        .context("no [mail] section in config.toml: add one with at least `from`")?;
    let stored = store
        .subscriber(&person.email.key())
        .await?
        .context("the subscriber just added is gone")?;
    let reply =
        tidings::mail::confirm::send(config, &mailer, person, stored.id, signer, Utc::now())
            .await?;
    println!("sent the confirmation email: {reply}");
    Ok(())
}
