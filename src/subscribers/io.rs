//! Importing subscribers from CSV and exporting them as CSV or JSON, both
//! streaming: a file of a million rows is read in batches and written row
//! by row, so memory stays bounded whatever its size.
//!
//! The import file has a header with at least `email`, `themes` and
//! `language` (and optionally `digest`); themes are separated by `;`.
//! Other columns are ignored, so an export can be imported again.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::{Choice, NewSubscriber, Status};
use crate::config::Config;
use crate::diagnostic::Problem;
use crate::store::Store;

/// Rows stored per transaction during an import.
const BATCH: usize = 5000;

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read (the header not counted).
    pub rows: u64,
    pub added: u64,
    /// Rows whose address was already a subscriber (or repeated in the
    /// file): left as they were.
    pub existing: u64,
    /// Rows reported and skipped.
    pub bad: u64,
}

/// Imports `path`, reporting each bad row (with its line) to `on_problem`.
/// `status` is `Active` for `--confirmed`, else `Pending`.
pub async fn import(
    config: &Config,
    store: &Store,
    path: &Path,
    status: Status,
    now: DateTime<Utc>,
    mut on_problem: impl FnMut(Problem),
) -> Result<ImportReport> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header line", path.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(email), Some(themes), Some(language)) =
        (column("email"), column("themes"), column("language"))
    else {
        bail!(
            "{}:1: the header must name the columns email, themes and language (and optionally \
             digest), found: {}",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let digest = column("digest");
    let source = format!(
        "import:{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );

    let mut report = ImportReport::default();
    let mut batch: Vec<NewSubscriber> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.bad += 1;
                let line = e.position().map_or(line, |p| p.line());
                on_problem(Problem::new(path, format!("unreadable row: {e}")).line(line));
                continue;
            }
        }
        report.rows += 1;
        let line = record.position().map_or(line, |p| p.line());
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        let choice = Choice {
            email: field(Some(email)),
            themes: field(Some(themes)),
            language: field(Some(language)),
            digest: field(digest),
        };
        match choice.parse(config, status, &source) {
            Ok(person) => batch.push(person),
            Err(e) => {
                report.bad += 1;
                on_problem(Problem::new(path, e.message).line(line).key(e.field));
            }
        }
        if batch.len() == BATCH {
            flush(store, &mut batch, now, &mut report).await?;
        }
    }
    flush(store, &mut batch, now, &mut report).await?;
    Ok(report)
}

async fn flush(
    store: &Store,
    batch: &mut Vec<NewSubscriber>,
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let added = store.add_subscribers(batch, now).await?;
    report.added += added.added;
    report.existing += added.existing;
    batch.clear();
    Ok(())
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// The columns of a CSV export; the first four import again as they are.
pub const EXPORT_COLUMNS: &[&str] = &[
    "email",
    "themes",
    "language",
    "digest",
    "status",
    "consent_at",
    "consent_source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
];

/// Writes every subscriber to `out`; returns how many.
pub async fn export(store: &Store, format: Format, out: impl Write) -> Result<u64> {
    let mut stream = std::pin::pin!(store.subscribers(None));
    let mut n = 0u64;
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(EXPORT_COLUMNS)?;
            let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
            while let Some(s) = stream.try_next().await? {
                let themes: Vec<&str> = s.themes.iter().map(|t| t.as_str()).collect();
                w.write_record([
                    s.email.as_str(),
                    &themes.join(";"),
                    s.language.as_str(),
                    &s.digest,
                    s.status.as_str(),
                    &s.consent_at.to_rfc3339(),
                    &s.consent_source,
                    &s.created_at.to_rfc3339(),
                    &time(s.confirmed_at),
                    &time(s.unsubscribed_at),
                ])?;
                n += 1;
            }
            w.flush()?;
        }
        Format::Json => {
            let mut out = std::io::BufWriter::new(out);
            out.write_all(b"[")?;
            while let Some(s) = stream.try_next().await? {
                out.write_all(if n == 0 { b"\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut out, &s)?;
                n += 1;
            }
            out.write_all(if n == 0 { b"]\n" } else { b"\n]\n" })?;
            out.flush()?;
        }
    }
    Ok(n)
}
