//! The `tidings` binary: parse arguments, load the config, dispatch to the
//! library, and map the outcome to an exit code: 0 success, 1 invalid
//! config or content (after printing every problem) or a failed run, 2
//! usage error (clap's own).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use tidings::cli::{Cli, Command, LogFormat};
use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::model::problem::printable_lines;

mod commands;

// glibc's allocator spent much of a build's time in its arena locks when
// rayon's threads allocate side by side; mimalloc keeps per-thread heaps.
// Without transparent huge pages (`no_thp`): with them the resident memory
// of a digest send grew by half.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read once, here, before logging (TIDINGS_LOG sets it up); a variable
    // that is set but unusable stops every command (even one that would
    // not use it) so it is never ignored.
    let env = match Environment::from_process() {
        Ok(env) => env,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            return ExitCode::from(1);
        }
    };
    // The service reports what it does; one-shot commands only problems.
    let level = if matches!(cli.command, Command::Run) {
        "info"
    } else {
        "warn"
    };
    init_logging(cli.log_format, env.log.as_deref(), level);
    match run(cli, env) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote what they are about (an argument, a server's
            // reply): shown escaped.
            eprintln!("error: {}", printable_lines(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", printable_lines(&cause.to_string()));
            }
            ExitCode::from(1)
        }
    }
}

/// Logging to stderr, filtered by `filter` (`TIDINGS_LOG`) when set, else
/// at `level`. sqlx's warnings of slow statements are left out unless
/// asked for (`TIDINGS_LOG=info,sqlx::query=warn`): on a busy machine a
/// migration or a large first build trips them, and they are not problems.
fn init_logging(format: LogFormat, filter: Option<&str>, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("{level},sqlx::query=error")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli, env: Environment) -> Result<ExitCode> {
    match cli.command {
        Command::Init { dir } => commands::init::run(&dir),
        Command::Check { smtp } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::check::run(&config, smtp))
        }
        Command::Build { strict } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::build::run(&config, strict))
        }
        Command::Run => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::run::run(config, env))
        }
        Command::Status => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::status::run(&config))
        }
        Command::Digest { command } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::digest::run(&config, &env, command))
        }
        Command::Subscribers { command } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::subscribers::run(&config, &env, command))
        }
        Command::Db { command } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::db::run(&config, command))
        }
        Command::Bounces { command } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::bounces::run(&config, &env, command))
        }
        Command::Key { command } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(commands::key::run(&config, &env, command))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Loads the config, printing every problem; `None` when there were any.
fn load_config(path: &Path, env: &Environment) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config.with_environment(env)),
        Err(problems) => {
            commands::print_problems(&problems);
            eprintln!(
                "{} in {}",
                commands::plural(problems.len(), "problem"),
                path.display()
            );
            None
        }
    }
}
