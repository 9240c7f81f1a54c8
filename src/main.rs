//! The `tidings` binary: parse arguments, load the config, dispatch to the
//! library, and map the outcome to an exit code: 0 success, 1 invalid
//! config or content (after printing every problem) or a failed run, 2
//! usage error (clap's own).

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use tidings::cli::{Cli, Command, LogFormat};
use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::model::problem::{Problems, printable_lines};
use tidings::publish::{build, ingest};
use tidings::{init, store::Store};

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
/// at `level`.
fn init_logging(format: LogFormat, filter: Option<&str>, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
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
        Command::Init { dir } => {
            let files = init::init(&dir)?;
            for f in &files {
                println!("created {}", f.display());
            }
            println!(
                "next: tidings --config {} build",
                dir.join("config.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { smtp } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            let checked = check(&config)?;
            if !smtp {
                return Ok(checked);
            }
            let relay = runtime()?.block_on(commands::check_smtp::run(&config))?;
            Ok(if relay == ExitCode::SUCCESS {
                checked
            } else {
                relay
            })
        }
        Command::Build { strict } => {
            let Some(config) = load_config(&cli.config, &env) else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(build_command(&config, strict))
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
            print_problems(&problems);
            eprintln!(
                "{} in {}",
                plural(problems.len(), "problem"),
                path.display()
            );
            None
        }
    }
}

fn print_problems(problems: &Problems) {
    for p in problems.iter() {
        eprintln!("{p}");
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn check(config: &Config) -> Result<ExitCode> {
    let runtime = runtime()?;
    let client = tidings::sources::http::Client::new(config)?;
    let scanned = runtime.block_on(ingest::scan_all(
        config,
        &client,
        &ingest::Known::default(),
        &Default::default(),
        &ingest::Which::Local,
        chrono::Utc::now(),
        |_| true,
    ));
    let scans = scanned.scans;
    let mut problems = scanned.problems;
    let stories: usize = scans.iter().map(|(_, s)| s.stories.len()).sum();
    let drafts: usize = scans.iter().map(|(_, s)| s.drafts.len()).sum();
    // Matching against an empty store finds duplicate slugs and ids.
    let plan = ingest::plan(config, scans, &[], &HashSet::new());
    problems.extend(plan.report.skipped);
    // Remote sources: whether each answers, all at once.
    let probes = runtime.block_on(futures_util::future::join_all(
        config
            .sources
            .iter()
            .map(|s| tidings::sources::probe(&client, s)),
    ));
    for (source, probe) in config.sources.iter().zip(probes) {
        match probe {
            Some(Ok(says)) => println!("{}: {says}", source.key()),
            Some(Err(p)) => problems.push(p),
            None => {}
        }
    }
    // Every template, rendered with sample data.
    problems.extend(tidings::preflight::check_templates(config));
    if problems.is_empty() {
        println!(
            "{}: ok — {}, {}; {} ready to publish, {}",
            config.path.display(),
            plural(config.themes.len(), "theme"),
            plural(config.sources.len(), "source"),
            plural(stories, "story").replace("storys", "stories"),
            plural(drafts, "draft"),
        );
        Ok(ExitCode::SUCCESS)
    } else {
        let problems = Problems(problems).sorted();
        print_problems(&problems);
        eprintln!("{}", plural(problems.len(), "problem"));
        Ok(ExitCode::from(1))
    }
}

async fn build_command(config: &Config, strict: bool) -> Result<ExitCode> {
    let store = Store::open(&config.storage.url).await?;
    let report = build::build(config, &store, &tidings::publish::ingest::Which::All).await;
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
        eprintln!(
            "--strict: {} skipped",
            plural(skipped.len(), "story").replace("storys", "stories")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
