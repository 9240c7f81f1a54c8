//! Command-line definitions (clap) and nothing else: parsing the arguments
//! is kept apart from acting on them, which happens in `main.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Stories to RSS, Atom and JSON feeds, and per-theme email digests.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about, propagate_version = true)]
pub struct Cli {
    /// The site's config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "TIDINGS_CONFIG",
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// How log lines are written to standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new site in DIR: a commented config.toml and an example story.
    Init {
        /// Folder to create the site in (created if missing).
        dir: PathBuf,
    },
    /// Validate config.toml and every story; list every problem found.
    Check,
    /// Ingest every source, then write the feeds that changed.
    Build {
        /// Exit with status 1 when any story was skipped.
        #[arg(long)]
        strict: bool,
    },
}
