//! Feeds: prepared from the store ([`prepare`]), rendered as RSS, Atom and
//! JSON Feed plus an OPML list, and written under `[feeds] dir`.
//!
//! Files are written atomically (temporary file in the same folder, then
//! rename) and only when their bytes change, so a build with nothing new
//! leaves every file, and its modification time, as it was.

pub mod atom;
pub mod index;
pub mod json;
pub mod opml;
pub mod prepare;
pub mod rss;

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use rayon::prelude::*;

use crate::config::Config;
use crate::store::{Indexed, StoredStory};
use crate::story::Story;
pub use prepare::{Feed, Format};

/// Named in every feed's generator element.
pub const GENERATOR: &str = concat!("tidings ", env!("CARGO_PKG_VERSION"));

/// Name of the OPML file in the feeds dir.
pub const OPML_FILE: &str = "feeds.opml";

/// What writing the feeds did.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Paths (relative to the feeds dir) whose bytes changed.
    pub written: Vec<String>,
    pub unchanged: usize,
    /// Files of themes no longer configured, removed.
    pub removed: Vec<String>,
}

/// Every file of the feeds dir, rendered in memory.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Path relative to the feeds dir, and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// Files that could not be rendered (an operator's broken template);
    /// the others are still written.
    pub problems: Vec<anyhow::Error>,
}

/// Renders every feed, the OPML list and the index page.
pub fn render_all(config: &Config, stories: &[StoredStory]) -> Rendered {
    let feeds = prepare::prepare(config, stories);
    let jobs: Vec<(&Feed, Format)> = feeds
        .iter()
        .flat_map(|f| Format::ALL.into_iter().map(move |fmt| (f, fmt)))
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = jobs
        .par_iter()
        .map(|(feed, format)| {
            let bytes = match format {
                Format::Rss => rss::render(config, feed),
                Format::Atom => atom::render(config, feed),
                Format::Json => json::render(config, feed),
            };
            (feed.path(*format), bytes)
        })
        .collect();
    files.push((OPML_FILE.to_owned(), opml::render(config, &feeds)));
    let mut problems = Vec::new();
    match index::load(config).and_then(|tera| index::render(&tera, config, &feeds)) {
        Ok(page) => files.push((index::FILE.to_owned(), page)),
        Err(e) => problems.push(e),
    }
    Rendered { files, problems }
}

/// Writes `files` under the feeds dir, each only if its bytes changed, and
/// removes the feeds of themes that are no longer configured.
pub fn write_all(config: &Config, files: &[(String, Vec<u8>)]) -> Result<WriteReport> {
    let dir = &config.feeds.dir;
    fs_err::create_dir_all(dir)?;
    let results: Vec<Result<(String, bool)>> = files
        .par_iter()
        .map(|(rel, bytes)| {
            let changed = write_if_changed(&dir.join(rel), bytes)
                .with_context(|| format!("cannot write {}", dir.join(rel).display()))?;
            Ok((rel.clone(), changed))
        })
        .collect();
    let mut report = WriteReport::default();
    for r in results {
        let (rel, changed) = r?;
        if changed {
            report.written.push(rel);
        } else {
            report.unchanged += 1;
        }
    }
    report.written.sort();
    report.removed = remove_stale_themes(config)?;
    Ok(report)
}

/// Writes `bytes` to `path` through a temporary file and a rename, unless
/// the file already holds exactly these bytes. Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(false),
        _ => {}
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tidings-")
        .suffix(".tmp")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    // Temporary files are private; feeds are for everyone to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(true)
}

/// The store's setting under which a build notes what it wrote: the key
/// of what the feeds show, then each file with its size, modification time
/// and inode. Named after the feeds folder, since several sites or
/// instances can share one store, each with its own folder.
pub fn note_name(config: &Config) -> String {
    let dir = std::path::absolute(&config.feeds.dir).unwrap_or_else(|_| config.feeds.dir.clone());
    format!("feeds-build:{}", dir.display())
}

/// What every feed file is made from: this program, the config, the index
/// page's template, and the chosen stories with their themes and content
/// hashes, in order. Equal keys give equal files.
pub fn build_key(
    config: &Config,
    chosen: &[&Indexed],
    hashes: &std::collections::HashMap<String, String>,
) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(GENERATOR);
    h.update([0]);
    h.update(format!("{config:?}"));
    h.update([0]);
    if let Ok(template) = std::fs::read(index::template_path(config)) {
        h.update(&template);
    }
    h.update([0]);
    for s in chosen {
        h.update(s.id.as_str());
        h.update([0]);
        h.update(hashes.get(s.id.as_str()).map_or("", String::as_str));
        for theme in &s.themes {
            h.update([1]);
            h.update(theme.as_str());
        }
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// When the last build (its `note`) wrote its files from `key` and every
/// one of them is still as it left it, the report of a build that changes
/// nothing (stale theme folders are still removed); otherwise `None`.
pub fn unchanged_since(
    config: &Config,
    key: &str,
    note: Option<&[u8]>,
) -> Result<Option<WriteReport>> {
    let dir = &config.feeds.dir;
    let Some(note) = note.and_then(|n| std::str::from_utf8(n).ok()) else {
        return Ok(None);
    };
    let mut lines = note.lines();
    if lines.next() != Some(key) {
        return Ok(None);
    }
    let mut files = 0;
    for line in lines {
        let Some((rel, stamp)) = line.split_once('\t') else {
            return Ok(None);
        };
        if file_stamp(&dir.join(rel)).as_deref() != Some(stamp) {
            return Ok(None);
        }
        files += 1;
    }
    Ok(Some(WriteReport {
        written: Vec::new(),
        unchanged: files,
        removed: remove_stale_themes(config)?,
    }))
}

/// The note of a build that wrote `files` from `key` (see
/// [`unchanged_since`]), or `None` when a file cannot be read back.
pub fn build_note(config: &Config, key: &str, files: &[(String, Vec<u8>)]) -> Option<String> {
    let dir = &config.feeds.dir;
    let mut note = format!("{key}\n");
    for (rel, _) in files {
        let stamp = file_stamp(&dir.join(rel))?;
        note.push_str(&format!("{rel}\t{stamp}\n"));
    }
    Some(note)
}

/// Size, modification time and inode of a file: what changes when anyone
/// replaces or edits it.
fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_file()
        .then(|| format!("{}-{}-{}-{}", m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

fn remove_stale_themes(config: &Config) -> Result<Vec<String>> {
    let themes_dir = config.feeds.dir.join("themes");
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(&themes_dir) else {
        return Ok(removed);
    };
    let mut stale: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !config.themes.iter().any(|t| t.slug.as_str() == name))
        .collect();
    stale.sort();
    for name in stale {
        let dir = themes_dir.join(&name);
        for format in Format::ALL {
            let file = dir.join(format.file_name());
            if file.exists() {
                fs_err::remove_file(&file)?;
                removed.push(format!("themes/{name}/{}", format.file_name()));
            }
        }
        // Only if empty: whatever else an operator put there stays.
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}

/// The story's full HTML for a feed: its image (with alt text) first, then
/// its sanitized body.
pub fn full_html(s: &Story) -> String {
    match &s.image {
        Some(image) => format!(
            "<p><img src=\"{}\" alt=\"{}\"></p>\n{}",
            escape_html(image),
            escape_html(image_alt(s)),
            s.body_html
        ),
        None => s.body_html.clone(),
    }
}

/// Escapes text for use in HTML, in element content or a quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The image's alt text, or the story's title when the editor gave none.
pub fn image_alt(s: &Story) -> &str {
    s.image_alt.as_deref().unwrap_or(&s.title)
}

/// The media type of an image URL, guessed from its extension.
pub fn image_type(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}
