//! `tidings key …`: the keys that sign subscriber links (see
//! [`tidings::keys`]).

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;

use tidings::cli::KeyCommand;
use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::links::keys::{self, KeyStatus};
use tidings::store::Store;
use tidings::store::keys::KeyOrigin;

pub async fn run(config: &Config, env: &Environment, command: KeyCommand) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let result = match command {
        KeyCommand::Status => status(&store, env).await,
        KeyCommand::Rotate => rotate(&store, env).await,
    };
    store.close().await;
    result
}

fn kept(key: &KeyStatus) -> &'static str {
    match key.origin {
        KeyOrigin::Store => "store",
        KeyOrigin::Environment => "TIDINGS_SECRET",
    }
}

async fn status(store: &Store, env: &Environment) -> Result<ExitCode> {
    let keys = keys::status(store, env).await?;
    if keys.is_empty() {
        println!(
            "no signing key yet: the first command that signs a link (run, digest send, \
             subscribers add --send-confirmation) makes one{}",
            if env.secret.is_some() {
                " from TIDINGS_SECRET"
            } else {
                ", kept in the store"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    println!("key\tkept in\tfingerprint\tadded\tage\tsigns\there");
    for k in &keys {
        println!(
            "{}\t{}\t{}\t{}\t{} days\t{}\t{}",
            k.id,
            kept(k),
            k.fingerprint,
            k.created_at.format("%Y-%m-%d %H:%M UTC"),
            (now - k.created_at).num_days(),
            if k.active { "active" } else { "verifies" },
            if k.held {
                "held"
            } else {
                "missing (set TIDINGS_SECRET_PREVIOUS)"
            },
        );
    }
    let missing = keys.iter().filter(|k| !k.held).count();
    if missing > 0 {
        eprintln!(
            "{missing} key(s) given in the environment are not held by this process: links \
             signed with them do not work here until TIDINGS_SECRET or TIDINGS_SECRET_PREVIOUS \
             gives them"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(store: &Store, env: &Environment) -> Result<ExitCode> {
    let rotated = keys::rotate(store, env, Utc::now()).await?;
    let new = &rotated.new;
    let old = &rotated.previous;
    println!(
        "key {} ({}, fingerprint {}) now signs every new link; key {} and every older key \
         still verify the links already sent",
        new.id,
        kept(new),
        new.fingerprint,
        old.id
    );
    match (new.origin, old.origin) {
        (KeyOrigin::Store, _) => println!(
            "running services pick the new key up by themselves; unset TIDINGS_SECRET for \
             every tidings command of this site{}",
            if old.origin == KeyOrigin::Environment {
                " and keep the old value in TIDINGS_SECRET_PREVIOUS"
            } else {
                ""
            }
        ),
        (KeyOrigin::Environment, KeyOrigin::Environment) => println!(
            "restart `tidings run` and use this TIDINGS_SECRET for every tidings command of \
             this site, with the old value in TIDINGS_SECRET_PREVIOUS"
        ),
        (KeyOrigin::Environment, KeyOrigin::Store) => println!(
            "restart `tidings run` and use this TIDINGS_SECRET for every tidings command of \
             this site"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
