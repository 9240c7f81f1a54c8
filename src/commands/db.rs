//! `tidings db …`: moving the store between databases. `db copy --to URL`
//! fills an empty PostgreSQL database from the site's SQLite store (see
//! `tidings::store::copy`) and tells the operator what to change next.

use std::process::ExitCode;

use anyhow::{Result, bail};

use tidings::cli::DbCommand;
use tidings::config::{Config, StorageUrl};
use tidings::store::copy::{self, CopyError};

pub async fn run(config: &Config, command: DbCommand) -> Result<ExitCode> {
    match command {
        DbCommand::Copy { to } => copy_command(config, &to).await,
    }
}

async fn copy_command(config: &Config, to: &str) -> Result<ExitCode> {
    let target = parse_target(to)?;
    let source = &config.storage.url;
    // A bar on a terminal; nothing otherwise.
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>16} {bar:40} {pos}/{len} rows ({eta} left)",
            )
            .expect("a valid template"),
        );
        bar
    });
    let mut current = "";
    let mut progress = |table: &'static str, done: u64, total: u64| {
        let Some(bar) = &bar else { return };
        if table != current {
            // Each table gets its own count and its own rate.
            current = table;
            bar.reset();
            bar.set_message(table);
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    let result = copy::sqlite_to_postgres(source, &target, &mut progress).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = match result {
        Ok(report) => report,
        Err(e @ CopyError::NotEmpty { .. }) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(CopyError::Unexpected(e)) => return Err(e),
    };
    for (table, rows) in &report.tables {
        println!("{table}: {rows} copied");
    }
    println!(
        "copied {source} into {target} in {:.1} s; every table holds the same number of rows on both sides",
        report.elapsed.as_secs_f64()
    );
    if report.sending > 0 {
        eprintln!(
            "warning: {} deliveries were being sent when the copy was taken: if `tidings run` still runs on the SQLite store, stop it now — what it writes from here on is not in the copy (the new store sends those deliveries again once their lease lapses)",
            report.sending
        );
    }
    let password = if to_has_password(to) {
        " (with the password in place of ***, or in PGPASSWORD)"
    } else {
        ""
    };
    println!(
        "next: stop `tidings run` if it still runs on the old store, point [storage] url at \"{target}\" in {}{password}, and start it again",
        config.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--to`, read as `[storage] url` reads a PostgreSQL URL.
fn parse_target(to: &str) -> Result<StorageUrl> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!(
            "db copy writes into PostgreSQL only: expected --to postgres://user@host/database, not `{}`",
            if to.starts_with("sqlite:") { to } else { "…" }
        );
    }
    let target = StorageUrl::Postgres(to.to_owned());
    match url::Url::parse(to) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) || to.contains("host=") => Ok(target),
        Ok(_) => bail!("--to {target} names no server: expected postgres://user@host/database"),
        Err(e) => {
            bail!("--to is not a PostgreSQL URL ({e}): expected postgres://user@host/database")
        }
    }
}

fn to_has_password(to: &str) -> bool {
    url::Url::parse(to).is_ok_and(|u| u.password().is_some())
}
