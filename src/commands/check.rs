//! `tidings check [--smtp]`: the config, every story, every remote source
//! and every template (see `tidings::preflight`), and with `--smtp` the
//! `[mail] transport` one step at a time (see `tidings::mail::probe`).

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::{plural, print_problems};
use tidings::config::Config;
use tidings::model::Problems;
use tidings::model::problem::printable;

pub async fn run(config: &Config, smtp: bool) -> Result<ExitCode> {
    let site = site(config).await?;
    if !smtp {
        return Ok(site);
    }
    let relay = transport(config).await?;
    Ok(if relay == ExitCode::SUCCESS {
        site
    } else {
        relay
    })
}

/// The site: a summary, or every problem and exit 1.
async fn site(config: &Config) -> Result<ExitCode> {
    let checked = tidings::preflight::check(config).await?;
    for (source, says) in &checked.reachable {
        println!("{source}: {says}");
    }
    if checked.problems.is_empty() {
        println!(
            "{}: ok — {}, {}; {} ready to publish, {}",
            config.path.display(),
            plural(config.themes.len(), "theme"),
            plural(config.sources.len(), "source"),
            plural(checked.stories, "story"),
            plural(checked.drafts, "draft"),
        );
        Ok(ExitCode::SUCCESS)
    } else {
        let count = checked.problems.len();
        print_problems(&Problems(checked.problems));
        eprintln!("{}", plural(count, "problem"));
        Ok(ExitCode::from(1))
    }
}

/// `[mail] transport`, printing each step as it ends; exit 1 with the
/// failed step named when one failed.
async fn transport(config: &Config) -> Result<ExitCode> {
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
