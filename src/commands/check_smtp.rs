//! `tidings check --smtp`: the `[mail] transport` part of `check`, one
//! line per step (see `tidings::mail::probe`).

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use tidings::config::Config;
use tidings::model::problem::printable;

/// Checks `[mail] transport`, printing each step as it ends; exit 1 with
/// the failed step named when one failed.
pub async fn run(config: &Config) -> Result<ExitCode> {
    let mail = config
        .mail
        .as_ref()
        .context("--smtp: no [mail] section in config.toml: add one with at least `from`")?;
    let transport = tidings::mail::probe::describe(&mail.transport);
    println!("[mail] transport {}", printable(&transport));
    let failed = tidings::mail::probe::check(mail, |step| println!("  {step}")).await;
    Ok(match failed {
        None => {
            println!("[mail] transport: ok");
            ExitCode::SUCCESS
        }
        Some(step) => {
            eprintln!("error: the [mail] transport check failed at {}", step.name);
            ExitCode::from(1)
        }
    })
}
