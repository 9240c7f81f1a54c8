//! Problems found in operator input (config.toml, story files), reported
//! with the file, line, column and key they concern.
//!
//! Every validation step collects [`Problem`]s instead of stopping at the
//! first one, so `tidings check` can list them all at once.

use std::borrow::Cow;
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
}

/// Shown with [`printable`] text: a problem's message often quotes the
/// input it is about (a message of several lines by design keeps them).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", printable(&self.file.display().to_string()))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{}`: ", printable(key))?;
        }
        write!(f, "{}", printable_lines(&self.message))
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

/// `text` safe to print on a terminal: every control character (C0, DEL,
/// C1) and every invisible character that reorders or hides text (bidi
/// controls, zero-width characters, line and paragraph separators) is
/// shown as a Rust-style escape — ESC as `\u{1b}`, a line break as `\n` —
/// so that nothing read from a file, a server or a command line can move
/// the cursor, recolour the terminal or forge a line of output. For every
/// message that echoes input.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// [`printable`] for a message of several lines by design: line breaks
/// stay, everything else is escaped.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let hidden = |c: char| !(keep_lines && c == '\n') && is_unprintable(c);
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !hidden(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'                       // Arabic letter mark
            | '\u{200b}'..='\u{200f}'        // zero-width space, joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'        // line and paragraph separators, bidi embeddings
            | '\u{2060}'..='\u{2064}'        // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'        // bidi isolates
            | '\u{feff}'                      // zero-width no-break space (BOM)
        )
}

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
    fn printable_escapes_what_could_act_on_a_terminal() {
        assert_eq!(printable("plain åäö – ok"), "plain åäö – ok");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{1b}[31mred\u{7}\u{9b}x"),
            "a\\u{1b}[31mred\\u{7}\\u{9b}x"
        );
        assert_eq!(printable("two\r\nlines\t"), "two\\r\\nlines\\t");
        assert_eq!(printable("\u{202e}evil\u{200b}"), "\\u{202e}evil\\u{200b}");
        assert_eq!(printable_lines("one\ntwo\u{1b}"), "one\ntwo\\u{1b}");
    }

    #[test]
    fn a_problem_shows_the_input_it_quotes_escaped() {
        let p = Problem::new(
            "people.csv",
            "`a\u{1b}[2J` is not an email address\nsecond line",
        )
        .key("email\u{1b}")
        .line(3);
        assert_eq!(
            p.to_string(),
            "people.csv:3: `email\\u{1b}`: `a\\u{1b}[2J` is not an email address\nsecond line"
        );
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
