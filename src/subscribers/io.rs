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
use crate::model::problem::{Problem, printable};
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
///
/// Lines are the file's own, as an editor shows them, whether it ends its
/// lines with LF or CRLF, has blank lines, or has quoted values that span
/// lines (a row is named by the line it starts on). Blank rows, and rows
/// of nothing but commas and spaces, are skipped without a word. What a
/// problem quotes from the file is shown escaped ([`printable`]).
pub async fn import(
    config: &Config,
    store: &Store,
    path: &Path,
    status: Status,
    now: DateTime<Utc>,
    mut on_problem: impl FnMut(Problem),
) -> Result<ImportReport> {
    let file =
        fs_err::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rows = Rows::new(file, path, status)?;
    let mut report = ImportReport::default();
    let mut batch: Vec<NewSubscriber> = Vec::with_capacity(BATCH);
    while let Some((_, row)) = rows.next(config)? {
        report.rows += 1;
        match row {
            Row::Subscriber(person) => batch.push(person),
            Row::Bad(problem) => {
                report.bad += 1;
                on_problem(problem);
            }
        }
        if batch.len() == BATCH {
            flush(store, &mut batch, now, &mut report).await?;
        }
    }
    flush(store, &mut batch, now, &mut report).await?;
    Ok(report)
}

/// One data row of an import file, checked against the config.
#[derive(Debug)]
pub(crate) enum Row {
    Subscriber(NewSubscriber),
    /// Why the row is skipped, with its file and line.
    Bad(Problem),
}

/// The data rows of an import file, read one at a time (no store
/// involved, so that the parsing can be tested and fuzzed on its own).
pub(crate) struct Rows<'p, R> {
    reader: csv::Reader<Recent<R>>,
    headers: csv::StringRecord,
    email: usize,
    themes: usize,
    language: usize,
    digest: Option<usize>,
    path: &'p Path,
    /// The consent source every row records: `import:<file name>`.
    source: String,
    status: Status,
    record: csv::ByteRecord,
}

impl<'p, R: std::io::Read> Rows<'p, R> {
    /// Reads the header of `input` (read from `path`, for messages).
    pub(crate) fn new(input: R, path: &'p Path, status: Status) -> Result<Rows<'p, R>> {
        // Values are trimmed here, not by the reader: line breaks inside
        // quoted values are counted first (see `first_line`).
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(READ_BUFFER)
            .from_reader(Recent::new(input));
        let headers = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header line", path.display()))?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| {
                h.trim_start_matches('\u{feff}')
                    .trim()
                    .eq_ignore_ascii_case(name)
            })
        };
        let (Some(email), Some(themes), Some(language)) =
            (column("email"), column("themes"), column("language"))
        else {
            bail!(
                "{}:1: the header must name the columns email, themes and language (and \
                 optionally digest), found: {}",
                path.display(),
                printable(&headers.iter().map(str::trim).collect::<Vec<_>>().join(","))
            );
        };
        let digest = column("digest");
        let source = format!(
            "import:{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        Ok(Rows {
            reader,
            headers,
            email,
            themes,
            language,
            digest,
            path,
            source,
            status,
            record: csv::ByteRecord::new(),
        })
    }

    /// The next row that is not blank, with the line it starts on; `None`
    /// at the end of the file.
    pub(crate) fn next(&mut self, config: &Config) -> Result<Option<(u64, Row)>> {
        loop {
            let read = self
                .reader
                .read_byte_record(&mut self.record)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            if !read {
                return Ok(None);
            }
            let line = first_line(&self.reader, &self.record);
            if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            return Ok(Some((line, self.row(config, line))));
        }
    }

    /// The record just read, checked.
    fn row(&self, config: &Config, line: u64) -> Row {
        let record = match csv::StringRecord::from_byte_record(self.record.clone()) {
            Ok(r) => r,
            Err(e) => {
                let field = e.utf8_error().field();
                let name = self
                    .headers
                    .get(field)
                    .map_or(String::new(), |h| format!("`{}` ", printable(h.trim())));
                return Row::Bad(
                    Problem::new(
                        self.path,
                        format!(
                            "the {name}value (column {}) is not UTF-8 text: save the file as UTF-8",
                            field + 1
                        ),
                    )
                    .line(line),
                );
            }
        };
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
        let choice = Choice {
            email: field(Some(self.email)),
            themes: field(Some(self.themes)),
            language: field(Some(self.language)),
            digest: field(self.digest),
        };
        match choice.parse(config, self.status, &self.source) {
            Ok(person) => Row::Subscriber(person),
            Err(e) => {
                // The message quotes the value: a line break or an escape
                // sequence in it must not reach the terminal as one.
                let message = printable(&e.message).into_owned();
                Row::Bad(Problem::new(self.path, message).line(line).key(e.field))
            }
        }
    }
}

/// The line `record`, just read, starts on. The reader's own position for
/// a record is where it began reading, before the line end of the record
/// before and any blank lines, so it is not used. The reader counts the
/// LFs it consumed: a record consumes its line end when that is LF, not
/// the LF after a CR (which the next read consumes), so the record ended
/// on the line counted, or the one before when its last byte was an LF,
/// and started as many lines before that as its values hold line breaks
/// (quoted values keep theirs, untrimmed).
fn first_line<R: std::io::Read>(reader: &csv::Reader<Recent<R>>, record: &csv::ByteRecord) -> u64 {
    let after = reader.position();
    // A record that the end of the input ended (an unclosed quote) has
    // its last LF inside its value, counted with the breaks below.
    let ended_with_lf = !reader.get_ref().ended
        && after
            .byte()
            .checked_sub(1)
            .and_then(|last| reader.get_ref().byte_at(last))
            == Some(b'\n');
    let breaks = record
        .iter()
        .map(|f| memchr::memchr_iter(b'\n', f).count() as u64)
        .sum::<u64>();
    after
        .line()
        .saturating_sub(u64::from(ended_with_lf) + breaks)
        .max(1)
}

/// The CSV reader's buffer: it reads at most this far ahead of the record
/// it parses.
const READ_BUFFER: usize = 8 * 1024;

/// A reader that keeps the last bytes that passed through it (more than
/// the CSV reader reads ahead), so that the byte that ended a record can
/// be looked at.
struct Recent<R> {
    inner: R,
    /// The bytes from offset `start` of the input to the last one read.
    kept: Vec<u8>,
    start: u64,
    /// The input has ended. The CSV reader asks for more only once it has
    /// used every byte it has, so a record read after that is the last
    /// one, ended by the end of the input rather than a line end.
    ended: bool,
}

/// How many bytes [`Recent`] keeps at least.
const KEEP: usize = 8 * READ_BUFFER;

impl<R> Recent<R> {
    fn new(inner: R) -> Recent<R> {
        Recent {
            inner,
            kept: Vec::with_capacity(2 * KEEP),
            start: 0,
            ended: false,
        }
    }

    /// The byte at `offset` of the input, if it is among those kept.
    fn byte_at(&self, offset: u64) -> Option<u8> {
        let i = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        self.kept.get(i).copied()
    }
}

impl<R: std::io::Read> std::io::Read for Recent<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ended |= n == 0 && !buf.is_empty();
        self.kept.extend_from_slice(&buf[..n]);
        if self.kept.len() > 2 * KEEP {
            let forget = self.kept.len() - KEEP;
            self.kept.drain(..forget);
            self.start += forget as u64;
        }
        Ok(n)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row's line, as [`Rows`] gives it.
    fn lines(csv: &[u8]) -> Vec<u64> {
        let site = crate::fixtures::site("");
        let mut rows = Rows::new(csv, Path::new("people.csv"), Status::Pending).unwrap();
        let mut lines = Vec::new();
        while let Some((line, _)) = rows.next(&site.config).unwrap() {
            lines.push(line);
        }
        lines
    }

    #[test]
    fn rows_are_named_by_the_line_they_start_on() {
        let csv = b"email,themes,language\r\n\r\na@example.org,x,sv\r\n\"b\n@example.org\",x,sv\nc@example.org,x,sv";
        assert_eq!(lines(csv), [3, 4, 6]);
        assert_eq!(lines(b"email,themes,language\na@example.org,x,sv\n"), [2]);
    }

    /// Found by the `csv_row` fuzz target: a quote left open to the end of
    /// the file ends the last row with an LF of its own value, which was
    /// counted twice, naming a line before the row's.
    #[test]
    fn a_quote_open_to_the_end_does_not_move_its_row_up() {
        assert_eq!(
            lines(b"email,themes,language\na@example.org,x,sv\n\"b\n"),
            [2, 3]
        );
        let found = b"\xef\xbb\xbfemail,themes,language,digestv,tsm,m\"bai\nA\nn\riv,tg,\"i\n";
        assert_eq!(lines(found), [2, 3, 3]);
    }
}
