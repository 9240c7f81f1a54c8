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
    Check {
        /// Also try `[mail] transport` step by step (connect, EHLO,
        /// STARTTLS or TLS, AUTH, QUIT; or that the outbox folder can be
        /// written), sending nothing.
        #[arg(long)]
        smtp: bool,
    },
    /// Ingest every source, then write the feeds that changed.
    Build {
        /// Exit with status 1 when any story was skipped.
        #[arg(long)]
        strict: bool,
    },
    /// The service: ingest and send each digest on their cron schedules,
    /// and serve the feeds and the subscriber pages over HTTP ([http]).
    /// Stops cleanly on SIGTERM or Ctrl-C.
    Run,
    /// What the site holds and what runs next: stories, subscribers by
    /// status, each digest's next run and last edition, the jobs' last runs.
    Status,
    /// Preview, send and follow the periodic digest.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Add, import, export, list and remove digest subscribers.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Move the store to another database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Bounces and complaints that came back by email: import reports or
    /// fetch them from the bounce mailbox, see what they did.
    Bounces {
        #[command(subcommand)]
        command: BouncesCommand,
    },
    /// The keys that sign the links in emails (confirm, preferences,
    /// unsubscribe): see which there are, or add a new one.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Every key: its id, where it is kept, its fingerprint, when it was
    /// added, which one signs new links, and whether this process holds it.
    Status,
    /// Add a key that signs every link from now on: the value of
    /// TIDINGS_SECRET when set (only its fingerprint is stored), else a new
    /// random key kept in the store. Older keys keep verifying, so links in
    /// emails already sent keep working.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read raw reports (.eml files, or `-` for one message on standard
    /// input, as an MTA pipes it) and act on those whose VERP token
    /// verifies: a hard bounce marks the subscriber bounced, soft ones do
    /// after [bounces] soft_limit, a complaint unsubscribes. Prints, per
    /// message, whether it matched and what was done. Auto-replies and
    /// anything without a token of ours change nothing.
    Import {
        /// The messages: files, or `-` for standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Read the new messages of [bounces] mailbox over IMAP once and act
    /// on them as `import` does: reports whose token verifies are recorded
    /// and moved to [bounces] processed_folder; everything else stays in
    /// the folder untouched. Prints a line per message and a summary; exit
    /// 1 when the mailbox cannot be reached or refuses the login. The
    /// password comes from TIDINGS_BOUNCES_PASSWORD.
    Fetch {
        /// Read every message of the folder again, not only those that
        /// arrived since the last poll.
        #[arg(long)]
        all: bool,
    },
    /// Recorded events, newest first: id, time, kind, address, edition,
    /// what was done, the server's diagnostic.
    List {
        /// Only events of this kind.
        #[arg(long, value_enum)]
        kind: Option<BounceKindArg>,
        /// Only events of this address (any letter case).
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
    },
    /// One event with its diagnostic and the report as received (its
    /// first 64 KiB).
    Show {
        /// The event's id (from `bounces list`).
        id: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BounceKindArg {
    Hard,
    Soft,
    Complaint,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy the whole SQLite store (stories, subscribers, editions and
    /// deliveries, job state, the signing key) into an empty PostgreSQL
    /// database, keeping every id, in one transaction; then compare the
    /// row counts of every table. Refuses a target that holds any rows.
    /// Stop `tidings run` first: what it writes after the copy starts is
    /// not copied.
    Copy {
        /// The PostgreSQL database to fill, as for `[storage] url`
        /// (the password from the URL or `PGPASSWORD`).
        #[arg(long, value_name = "postgres://USER@HOST/DB")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add one subscriber (pending until confirmed, unless --confirmed).
    Add {
        /// The email address.
        email: String,
        /// Theme slugs, separated by commas, in the subscriber's order.
        #[arg(long, value_name = "SLUG,SLUG")]
        themes: String,
        /// Language of the digest they get (default: the site's).
        #[arg(long)]
        language: Option<String>,
        /// Which digest (default: the first in config.toml).
        #[arg(long, value_name = "ID")]
        digest: Option<String>,
        /// Consent was already confirmed: the subscriber is active at once.
        #[arg(long, conflicts_with = "send_confirmation")]
        confirmed: bool,
        /// Send the confirmation email (double opt-in) through [mail]; its
        /// link, valid 7 days, points to `<base_url>confirm/<token>`. A
        /// fresh opt-in, as the sign-up form makes it: an address that
        /// unsubscribed, bounced or complained is pending again with these
        /// choices, one still pending gets a new email, an active one is
        /// left as it is.
        #[arg(long)]
        send_confirmation: bool,
    },
    /// Import subscribers from CSV with the header email,themes,language[,digest]
    /// (themes separated by `;`). Bad rows are reported with their line and
    /// skipped; addresses already known are left as they are.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Consent was already confirmed: imported subscribers are active.
        #[arg(long)]
        confirmed: bool,
    },
    /// Write every subscriber to standard output.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// List subscribers: email, status, language, digest, themes.
    List {
        /// Only those with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    /// Erase a subscriber entirely, deliveries included (for data-protection
    /// requests).
    Remove {
        /// The email address (any letter case).
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Show what a subscriber would receive if the digest ran now, without
    /// sending or freezing anything.
    Preview {
        /// The subscriber's address.
        #[arg(long)]
        email: String,
        /// Which digest (default: the subscriber's).
        #[arg(long, value_name = "ID")]
        digest: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The plain-text part instead of the HTML.
        #[arg(long)]
        text: bool,
    },
    /// Freeze a new edition now and deliver it, or resume the unfinished one.
    Send {
        /// Which digest (default: the first).
        #[arg(long, value_name = "ID")]
        digest: Option<String>,
        /// Say what would be frozen and sent, and do nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send a sample to one address, to see it in a real mail client: the
    /// newest stories of every theme, `[TEST]` in the subject. Nothing is
    /// frozen or recorded.
    Test {
        /// Where to send it.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Which digest (default: the first).
        #[arg(long, value_name = "ID")]
        digest: Option<String>,
        /// The language of the preview (default: the site's).
        #[arg(long)]
        language: Option<String>,
    },
    /// Editions with their deliveries by state, and who did not get the
    /// last one and why.
    Status {
        /// Which digest (default: every one).
        #[arg(long, value_name = "ID")]
        digest: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Active,
    Unsubscribed,
    Bounced,
}
