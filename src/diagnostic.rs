//! Problems found in operator input (config.toml, story files), reported
//! with the file, line, column and key they concern.
//!
//! Every validation step collects [`Problem`]s instead of stopping at the
//! first one, so `tidings check` can list them all at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with one place of one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The key or field concerned, e.g. `site.base_url` or `themes[2].slug`.
    pub key: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Places the problem on a line (column unknown).
    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line as usize);
        self
    }

    /// Places the problem at a byte offset of `source`, the text of `file`.
    pub fn at_offset(mut self, source: &str, offset: usize) -> Self {
        let (line, column) = line_column(source, offset);
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// Like [`Problem::at_offset`], for an optional span.
    pub fn at_span(self, source: &str, span: Option<Range<usize>>) -> Self {
        match span {
            Some(span) => self.at_offset(source, span.start),
            None => self,
        }
    }

    /// Shifts the line by `lines`, for text that starts part-way into a file
    /// (story front matter after the opening `+++`).
    pub fn shift_lines(mut self, lines: usize) -> Self {
        if let Some(line) = self.line.as_mut() {
            *line += lines;
        }
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Problems from one input, printed one per line.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }
    /// Sorted by file, line and column, so output does not depend on the
    /// order checks ran in.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.key, &a.message)
                .cmp(&(&b.file, b.line, b.column, &b.key, &b.message))
        });
        self
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// 1-based line and character column of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Shortens a path for display relative to `base` when it lies inside it.
pub fn display_path(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base).unwrap_or(path).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let text = "a = 1\nbå = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // "bå = " is 6 bytes but 5 characters.
        assert_eq!(line_column(text, 12), (2, 6));
    }

    #[test]
    fn display_names_file_line_and_key() {
        let p = Problem::new("config.toml", "expected an absolute URL")
            .key("site.base_url")
            .at_offset("[site]\nbase_url = \"/x\"\n", 7);
        assert_eq!(
            p.to_string(),
            "config.toml:2:1: `site.base_url`: expected an absolute URL"
        );
    }
}
