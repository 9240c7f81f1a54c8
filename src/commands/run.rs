//! `tidings run`: the service. Checks that every template renders, binds
//! its listeners (before anything else, so that a busy port fails at once
//! and changes nothing), opens the store, ingests once, then runs each
//! scheduled job in its own task and serves the web until SIGTERM or
//! Ctrl-C; then stops taking new work, lets in-flight sends finish (at
//! most `TIDINGS_SHUTDOWN_SECONDS`, default 30) and exits 0. A process
//! whose `TIDINGS_SECRET` disagrees with the site's signing keys does not
//! start (see `tidings::links::keys`). The service itself is
//! `tidings::service::serve`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};

use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::model::Problems;
use tidings::service::{self, Listeners};

pub async fn run(config: Config, env: Environment) -> Result<ExitCode> {
    if !config.digests.is_empty() && config.mail.is_none() {
        bail!(
            "config.toml has [[digests]] but no [mail]: add one with at least `from` and \
             `transport` (such as transport = \"file:outbox\")"
        );
    }
    if let Some(problem) = config.bounces.mailbox_problem() {
        bail!("{problem}");
    }
    // Nothing that cannot render goes live: a sign-up would answer "check
    // your inbox" and send nothing, a digest would fail for everyone.
    let problems = Problems(tidings::preflight::check_templates(&config));
    if !problems.is_empty() {
        for p in problems.sorted().iter() {
            eprintln!("{p}");
        }
        bail!(
            "a template cannot be rendered (above): fix it and start again; `tidings check` \
             lists every problem"
        );
    }
    let listeners = Listeners::bind(&config.http).await?;
    service::serve(config, env, listeners, |at| {
        // The lines on standard output: scripts (and tests) read the
        // ports, the public one first.
        println!("listening on http://{}/", at.public);
        if let Some(metrics) = at.metrics {
            println!("metrics on http://{metrics}/metrics");
        }
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
