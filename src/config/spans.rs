//! The machinery that ties each problem of config.toml to its place: the
//! [`Context`] that collects problems with their file, line, column and
//! key; reading one table with serde while reporting every bad and unknown
//! key (with a "did you mean" suggestion) instead of stopping at the
//! first; finding the span of a key in the spanned TOML tree; and
//! [`Checks`], with which a section checks its keys one by one. It knows
//! nothing of the sections themselves.

use std::ops::Range;
use std::path::PathBuf;

use serde::de;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use crate::model::problem::{Problem, Problems};

/// The file being loaded and every problem found in it so far.
pub(super) struct Context<'a> {
    pub file: PathBuf,
    pub text: &'a str,
    pub problems: Problems,
}

impl Context<'_> {
    /// Records a problem about `key` (none when empty) at `span`.
    pub fn problem(&mut self, key: &str, span: Option<Range<usize>>, message: impl Into<String>) {
        let mut p = Problem::new(&self.file, message).at_span(self.text, span);
        if !key.is_empty() {
            p = p.key(key);
        }
        self.problems.push(p);
    }

    /// The value of `result`, or `None` with its error recorded as a
    /// problem about `key` at `span`.
    pub fn check<T, E: Into<String>>(
        &mut self,
        key: &str,
        span: Option<Range<usize>>,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.problem(key, span, e)).ok()
    }

    /// The tables of `[[key]]`; a problem and none when `value` is not an
    /// array.
    pub fn array_of_tables<'i>(
        &mut self,
        key: &str,
        value: &'i Spanned<DeValue<'i>>,
    ) -> Vec<&'i Spanned<DeValue<'i>>> {
        match value.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            other => {
                self.problem(
                    key,
                    Some(value.span()),
                    format!(
                        "expected an array of tables ([[{key}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Deserializes one table, reporting unknown keys and the first type
    /// error with their spans. Returns `None` when the table is unusable.
    pub fn section<'i, T: de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: &'i Spanned<DeValue<'i>>,
        known: &[&str],
    ) -> Option<T> {
        if !value.get_ref().is_table() {
            self.problem(
                key,
                Some(value.span()),
                format!("expected a table, found {}", value.get_ref().type_str()),
            );
            return None;
        }
        let (result, unknown, removed) = self.deserialize_reporting(key, value);
        for path in unknown {
            self.unknown_key(key, value, &path, known);
        }
        if removed { None } else { result }
    }

    /// Deserializes `value`, and after each error drops the key that
    /// caused it and goes again, so every bad key of the table is reported
    /// at once. Returns the value (when nothing was dropped), the paths of
    /// the keys serde ignored, and whether a key was dropped.
    fn deserialize_reporting<T: de::DeserializeOwned>(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> (Option<T>, Vec<Vec<String>>, bool) {
        let mut current = value.clone();
        let mut removed: Vec<String> = Vec::new();
        loop {
            let mut unknown = Vec::new();
            let de = ValueDeserializer::from(current.clone());
            let result: Result<T, _> = serde_ignored::deserialize(de, |path| {
                unknown.push(path_segments(&path));
            });
            let e = match result {
                Ok(v) => return (Some(v), unknown, !removed.is_empty()),
                Err(e) => e,
            };
            // "missing field" for a key dropped earlier repeats a problem.
            let repeat = missing_field(e.message()).is_some_and(|f| removed.iter().any(|r| r == f));
            if !repeat {
                let span = e.span();
                let inner = span
                    .clone()
                    .map(|s| innermost_key(value, &s))
                    .unwrap_or_default();
                self.problem(&join_key(key, &inner), span, clean_message(e.message()));
            }
            let top = e.span().and_then(|s| top_key(&current, &s));
            match (top, current.get_mut()) {
                (Some(top), DeValue::Table(table)) if !repeat && removed.len() < 64 => {
                    table.remove(top.as_str());
                    removed.push(top);
                }
                _ => return (None, unknown, !removed.is_empty()),
            }
        }
    }

    /// Reports the key at `path` (under `key`) as unknown; at the top of
    /// the table, with the known keys and the nearest one.
    fn unknown_key(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        path: &[String],
        known: &[&str],
    ) {
        let (span, dotted) = locate(value, path);
        let last = path.last().cloned().unwrap_or_default();
        let (hint, expected) = if path.len() == 1 {
            (
                suggestion(&last, known),
                format!("; expected one of: {}", known.join(", ")),
            )
        } else {
            (String::new(), String::new())
        };
        self.problem(
            &join_key(key, &dotted),
            span,
            format!("unknown key{hint}{expected}"),
        );
    }
}

/// " (did you mean `x`?)" when a known name is close to `name`.
pub(super) fn suggestion(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// The span of the value of `key` in the table `value`.
pub(super) fn span_of(value: &Spanned<DeValue<'_>>, key: &str) -> Option<Range<usize>> {
    value.get_ref().get(key).map(|v| v.span())
}

/// The span of a dotted key (`themes_from.categories.miljo`, `themes[1]`)
/// inside the table `value`, or of its nearest parent that has one.
pub(super) fn sub_span(value: &Spanned<DeValue<'_>>, dotted: &str) -> Option<Range<usize>> {
    let mut current = value;
    let mut best = None;
    for part in dotted.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(next) = current.get_ref().get(name) else {
            break;
        };
        current = next;
        best = Some(current.span());
        if let Some(i) = index {
            match current.get_ref().as_array().and_then(|a| a.get(i)) {
                Some(item) => {
                    current = item;
                    best = Some(current.span());
                }
                None => break,
            }
        }
    }
    best.or_else(|| span_of(value, dotted))
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("missing field `")?
        .split('`')
        .next()
}

/// The key of `table` whose key or value holds `span`.
fn top_key(table: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    let DeValue::Table(t) = table.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, v)| {
            let vs = v.span();
            (vs.start <= span.start && span.end <= vs.end) || k.span() == *span
        })
        .map(|(k, _)| k.get_ref().to_string())
}

fn clean_message(message: &str) -> String {
    let m = message.trim();
    // serde says "invalid type: integer `5`, expected a string"; keep it.
    m.to_string()
}

fn join_key(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => rest.to_string(),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

fn path_segments(path: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path as P;
    let mut out = match path {
        P::Root => return Vec::new(),
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => path_segments(parent),
    };
    match path {
        P::Seq { index, .. } => out.push(index.to_string()),
        P::Map { key, .. } => out.push(key.clone()),
        _ => {}
    }
    out
}

/// The span of the key at `path` under `value`, and the path as dotted text.
fn locate(value: &Spanned<DeValue<'_>>, path: &[String]) -> (Option<Range<usize>>, String) {
    let mut current = value;
    let mut span = Some(value.span());
    let mut dotted = String::new();
    for seg in path {
        match current.get_ref() {
            DeValue::Table(t) => {
                if !dotted.is_empty() {
                    dotted.push('.');
                }
                dotted.push_str(seg);
                match t.get_key_value(seg.as_str()) {
                    Some((k, v)) => {
                        span = Some(k.span());
                        current = v;
                    }
                    None => break,
                }
            }
            DeValue::Array(a) => {
                dotted.push_str(&format!("[{seg}]"));
                match seg.parse::<usize>().ok().and_then(|i| a.get(i)) {
                    Some(v) => {
                        span = Some(v.span());
                        current = v;
                    }
                    None => break,
                }
            }
            _ => break,
        }
    }
    (span, dotted)
}

/// The dotted path of the deepest key whose value contains `span`.
fn innermost_key(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> String {
    let mut path = String::new();
    let mut current = value;
    'walk: loop {
        match current.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t {
                    let vs = v.span();
                    let ks = k.span();
                    if (vs.start <= span.start && span.end <= vs.end) || ks == *span {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k.get_ref());
                        current = v;
                        continue 'walk;
                    }
                }
                break;
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let vs = v.span();
                    if vs.start <= span.start && span.end <= vs.end {
                        path.push_str(&format!("[{i}]"));
                        current = v;
                        continue 'walk;
                    }
                }
                break;
            }
            _ => break,
        }
    }
    path
}

/// The keys of one table checked one by one: each problem is recorded at
/// its key (`prefix.key`, or a dotted path below it such as
/// `prefix.themes[1]`) and makes `ok` false, so that a section reports
/// every bad key and still knows whether it is usable.
pub(super) struct Checks<'c, 'a, 'v> {
    pub cx: &'c mut Context<'a>,
    prefix: &'c str,
    value: &'c Spanned<DeValue<'v>>,
    pub ok: bool,
}

impl<'c, 'a, 'v> Checks<'c, 'a, 'v> {
    /// Checks of the table `value`, which is at `prefix` in the file.
    pub fn new(cx: &'c mut Context<'a>, prefix: &'c str, value: &'c Spanned<DeValue<'v>>) -> Self {
        Checks {
            cx,
            prefix,
            value,
            ok: true,
        }
    }

    /// The span of `sub`'s value.
    pub fn span(&self, sub: &str) -> Option<Range<usize>> {
        sub_span(self.value, sub)
    }

    /// Records a problem about the table itself, at all of it.
    pub fn fail_table(&mut self, message: impl Into<String>) {
        self.cx
            .problem(self.prefix, Some(self.value.span()), message);
        self.ok = false;
    }

    /// Records a problem about `sub`, at its value.
    pub fn fail(&mut self, sub: &str, message: impl Into<String>) {
        let span = sub_span(self.value, sub);
        self.cx
            .problem(&format!("{}.{sub}", self.prefix), span, message);
        self.ok = false;
    }

    /// The value of `result`, or `None` with its error recorded about `sub`.
    pub fn check<T, E: Into<String>>(&mut self, sub: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(sub, e);
                None
            }
        }
    }

    /// `text` parsed by `parse`, when the key is given.
    pub fn optional<T, E: Into<String>>(
        &mut self,
        sub: &str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = text?;
        self.check(sub, parse(text))
    }

    /// `n`, a problem when it is not within `min..=max`; clamped to it.
    pub fn range(&mut self, sub: &str, n: i64, min: i64, max: i64) -> i64 {
        if n < min || n > max {
            self.fail(
                sub,
                format!("{n} is out of range: expected a number from {min} to {max}"),
            );
        }
        n.clamp(min, max)
    }
}
