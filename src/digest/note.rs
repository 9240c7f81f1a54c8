//! The editor's note: an optional Markdown file per digest and period,
//! shown above the stories of that edition in the email (HTML and text),
//! in `digest preview` and on the edition's web page.
//!
//! The files live in `content/digests/<digest id>/` beside config.toml and
//! are named after the month the edition covers (`2026-11.md`) or the day
//! its period ends (`2026-12-01.md`), each optionally per language
//! (`2026-11.sv.md`, `2026-11.en.md`). For one reader the first that
//! exists of day+language, day, month+language, month is used. The
//! Markdown is rendered and sanitised as a story's body is.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::{Config, Digest};
use crate::model::problem::Problem;
use crate::sources::content::{self, Bases};
use crate::store::editions::Period;

/// The folder of a digest's notes.
pub fn dir(config: &Config, digest: &Digest) -> PathBuf {
    config.root.join("content/digests").join(&digest.id)
}

/// A note, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    /// Sanitised HTML with absolute links.
    pub html: String,
    /// The same as plain text.
    pub text: String,
}

/// The file names that may hold the note of `period` for `language`, in
/// the order they are looked for.
fn candidates(config: &Config, language: &str, period: Period) -> Vec<String> {
    let (first, last) = period.days(config);
    let day = last.format("%Y-%m-%d").to_string();
    // The last month the period's name gives ("november 2026" for an
    // edition sent on 1 or 2 December).
    let month = super::words::named_months(first, last)
        .1
        .format("%Y-%m")
        .to_string();
    vec![
        format!("{day}.{language}.md"),
        format!("{day}.md"),
        format!("{month}.{language}.md"),
        format!("{month}.md"),
    ]
}

/// The note of `digest` for a reader in `language` of the edition covering
/// `period`, if the editor wrote one. A file that cannot be read is an
/// error naming it.
pub fn find(
    config: &Config,
    digest: &Digest,
    language: &str,
    period: Period,
) -> anyhow::Result<Option<Note>> {
    let dir = dir(config, digest);
    for name in candidates(config, language, period) {
        let path = dir.join(&name);
        match fs_err::read_to_string(&path) {
            Ok(markdown) => return Ok(Some(render(config, &markdown))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::Error::new(e)),
        }
    }
    Ok(None)
}

/// Markdown rendered and sanitised like a story's body; relative links
/// resolve against the site.
pub fn render(config: &Config, markdown: &str) -> Note {
    let bases = Bases {
        site: config.site.base_url.clone(),
        page: config.site.base_url.clone(),
    };
    let html = content::markdown_to_html(markdown, &bases);
    let text = content::html_to_text(&html).trim().to_owned();
    Note { html, text }
}

/// What `check` says of the notes: every file under `content/digests/`
/// must be in a configured digest's folder, named `YYYY-MM[.lang].md` or
/// `YYYY-MM-DD[.lang].md` with one of the digest's languages, and be
/// UTF-8 text.
pub fn check(config: &Config) -> Vec<Problem> {
    let root = config.root.join("content/digests");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match config.digests.iter().find(|d| d.id == name) {
            Some(digest) if path.is_dir() => problems.extend(check_dir(config, digest, &path)),
            _ => problems.push(Problem::new(
                &path,
                format!(
                    "not a digest's folder of notes: expected a folder named after a digest id ({})",
                    config.digests.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    problems
}

fn check_dir(config: &Config, digest: &Digest, dir: &Path) -> Vec<Problem> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![Problem::new(dir, "cannot be read")];
    };
    let languages = digest.languages(config.site.language.as_str());
    let mut problems = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Err(why) = check_name(&name, &languages) {
            problems.push(Problem::new(&path, why));
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Err(e) = std::str::from_utf8(&bytes) {
                    problems.push(
                        Problem::new(&path, "is not UTF-8 text").line(
                            bytes[..e.valid_up_to()]
                                .iter()
                                .filter(|b| **b == b'\n')
                                .count() as u64
                                + 1,
                        ),
                    );
                }
            }
            Err(e) => problems.push(Problem::new(&path, format!("cannot be read: {e}"))),
        }
    }
    problems
}

/// Whether `name` is `YYYY-MM[-DD][.lang].md` with a real date and one of
/// `languages`.
fn check_name(name: &str, languages: &[String]) -> Result<(), String> {
    let expected = "expected a name such as 2026-11.md (the month an edition covers), \
                    2026-12-01.md (the day its period ends) or 2026-11.sv.md (for one language)";
    let Some(stem) = name.strip_suffix(".md") else {
        return Err(format!("not a Markdown note (.md): {expected}"));
    };
    let (date, language) = match stem.split_once('.') {
        Some((date, language)) => (date, Some(language)),
        None => (stem, None),
    };
    let valid = match date.len() {
        7 => NaiveDate::parse_from_str(&format!("{date}-01"), "%Y-%m-%d").is_ok(),
        10 => NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        _ => false,
    };
    if !valid {
        return Err(format!("`{date}` is not a month or a day: {expected}"));
    }
    if let Some(language) = language
        && !languages.iter().any(|l| l == language)
    {
        return Err(format!(
            "`{language}` is not a language of this digest ({})",
            languages.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::site;
    use chrono::TimeZone;

    fn period(from: (i32, u32, u32), to: (i32, u32, u32)) -> Period {
        let at =
            |(y, m, d): (i32, u32, u32)| chrono::Utc.with_ymd_and_hms(y, m, d, 7, 0, 0).unwrap();
        Period {
            start: at(from),
            end: at(to),
        }
    }

    #[test]
    fn the_note_of_a_day_wins_over_the_month_and_a_language_over_none() {
        let site = site("");
        let digest = site.config.digest(None).unwrap();
        let dir = dir(&site.config, digest);
        fs_err::create_dir_all(&dir).unwrap();
        let november = period((2026, 11, 1), (2026, 12, 2));
        assert_eq!(find(&site.config, digest, "sv", november).unwrap(), None);
        fs_err::write(dir.join("2026-11.md"), "Hej *alla*! [Läs](/om/)").unwrap();
        let note = find(&site.config, digest, "sv", november).unwrap().unwrap();
        assert!(note.html.contains("<em>alla</em>"), "{}", note.html);
        assert!(
            note.html
                .contains("href=\"https://goda-exempel.example.org/om/\""),
            "{}",
            note.html
        );
        assert!(note.text.starts_with("Hej alla!"), "{}", note.text);
        fs_err::write(dir.join("2026-11.en.md"), "Hello").unwrap();
        assert_eq!(
            find(&site.config, digest, "en", november)
                .unwrap()
                .unwrap()
                .text,
            "Hello"
        );
        assert!(
            find(&site.config, digest, "sv", november)
                .unwrap()
                .unwrap()
                .text
                .starts_with("Hej")
        );
        fs_err::write(dir.join("2026-12-02.md"), "Dagens").unwrap();
        assert_eq!(
            find(&site.config, digest, "en", november)
                .unwrap()
                .unwrap()
                .text,
            "Dagens"
        );
        // Another month's edition has none.
        let october = period((2026, 10, 1), (2026, 11, 1));
        assert_eq!(find(&site.config, digest, "sv", october).unwrap(), None);
    }

    #[test]
    fn a_note_is_sanitised_like_a_story() {
        let site = site("");
        let note = render(
            &site.config,
            "<script>alert(1)</script>\n\n<a href=\"javascript:x\">x</a> ok",
        );
        assert!(!note.html.contains("<script"), "{}", note.html);
        assert!(!note.html.contains("javascript:"), "{}", note.html);
    }

    #[test]
    fn check_names_wrong_files_and_folders() {
        let site = site("");
        let digest = site.config.digest(None).unwrap();
        let dir = dir(&site.config, digest);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join("2026-11.md"), "ok").unwrap();
        fs_err::write(dir.join("2026-11.sv.md"), "ok").unwrap();
        fs_err::write(dir.join("2026-12-01.en.md"), "ok").unwrap();
        assert_eq!(check(&site.config), vec![]);
        fs_err::write(dir.join("2026-13.md"), "bad month").unwrap();
        fs_err::write(dir.join("2026-11.de.md"), "no such language").unwrap();
        fs_err::write(dir.join("november.txt"), "not markdown").unwrap();
        fs_err::write(dir.join("2026-10.md"), b"\xff\xfe").unwrap();
        fs_err::create_dir_all(site.config.root.join("content/digests/weekly")).unwrap();
        let found: Vec<String> = check(&site.config).iter().map(|p| p.to_string()).collect();
        assert_eq!(found.len(), 5, "{found:#?}");
        let has = |s: &str| found.iter().any(|f| f.contains(s));
        assert!(
            has("2026-13.md: `2026-13` is not a month or a day"),
            "{found:#?}"
        );
        assert!(
            has("2026-11.de.md: `de` is not a language of this digest"),
            "{found:#?}"
        );
        assert!(has("november.txt: not a Markdown note"), "{found:#?}");
        assert!(has("2026-10.md:1: is not UTF-8 text"), "{found:#?}");
        assert!(has("weekly: not a digest's folder of notes"), "{found:#?}");
    }
}
