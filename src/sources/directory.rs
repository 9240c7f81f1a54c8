//! The `directory` source: Markdown files with TOML front matter between
//! `+++` lines, one story per file, read recursively from a folder.
//!
//! Files and folders whose names start with `.` or `_` are ignored, as are
//! files not ending in `.md`.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rayon::prelude::*;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use url::Url;

use super::{ItemRef, Scan};
use crate::config::{Config, DirectorySource};
use crate::model::problem::{Problem, display_path};
use crate::model::{BodySource, Language, Story, StoryId, ThemeSlug};
use crate::sources::{bodies, content};

/// Longest summary, in characters, derived from a body.
const SUMMARY_CHARS: usize = 300;

#[derive(Debug, Deserialize)]
struct FrontMatter {
    title: Option<String>,
    date: Option<toml::Value>,
    updated: Option<toml::Value>,
    #[serde(default)]
    themes: Vec<String>,
    summary: Option<String>,
    language: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    image: Option<String>,
    image_alt: Option<String>,
    slug: Option<String>,
    #[serde(default)]
    draft: bool,
    id: Option<String>,
    #[serde(default)]
    featured: bool,
}
const KEYS: &[&str] = &[
    "title",
    "date",
    "updated",
    "themes",
    "summary",
    "language",
    "authors",
    "image",
    "image_alt",
    "slug",
    "draft",
    "id",
    "featured",
];

/// A story folder's files, in path order, each with what the file system
/// says of it (`None` when it would not say): see [`list`].
pub struct Listing(Vec<(PathBuf, Option<Stat>)>);

/// What a story's stamp is made of: its file's time and size. Kept
/// instead of the whole `Metadata` (seven times its size): a listing holds
/// one per file, and a large site has tens of thousands.
#[derive(Debug, Clone, Copy)]
struct Stat {
    modified: Option<std::time::SystemTime>,
    len: u64,
}

impl From<std::fs::Metadata> for Stat {
    fn from(meta: std::fs::Metadata) -> Stat {
        Stat {
            modified: meta.modified().ok(),
            len: meta.len(),
        }
    }
}

/// Lists the story files under the source's folder with their metadata,
/// which is all a build needs of the files that did not change. Ingest
/// does this while the store reads what it holds. Unless `stamps` says,
/// once the files are found, that their metadata is wanted, it is left
/// out (`None`): every file is then read, and its metadata taken from the
/// file opened (`fstat`) instead of by name, one lookup fewer a file. A
/// first build, which reads every file, asks for none.
pub fn list(source: &DirectorySource, stamps: impl FnOnce() -> bool) -> std::io::Result<Listing> {
    let mut files = Vec::new();
    collect_files(&source.path, &mut files)?;
    if !stamps() {
        return Ok(Listing(files.into_iter().map(|f| (f.path, None)).collect()));
    }
    Ok(Listing(
        files
            .into_par_iter()
            .map(|found| {
                let stat = found.metadata().map(Stat::from);
                (found.path, stat)
            })
            .collect(),
    ))
}

/// Whether a reading keeps each story's Markdown in memory (in
/// `BodySource::markdown`) for a rendering soon after: `tidings check`
/// renders every body it reads, and an ingest renders those stored before
/// bodies were rendered on demand, to compare them as they were. A first
/// build needs neither: copying every body cost it about 5 % of its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markdown {
    Keep,
    Leave,
}

/// Reads every story file under the source's folder, skipping those whose
/// stamp matches `known`; keeps each story's Markdown.
pub fn scan(
    config: &Config,
    source: &DirectorySource,
    known: &HashMap<String, String>,
) -> Result<Scan, Problem> {
    let known: foldhash::HashMap<&str, &str> = known
        .iter()
        .map(|(origin, stamp)| (origin.as_str(), stamp.as_str()))
        .collect();
    let mut scan = Scan::default();
    scan_parts(
        config,
        source,
        &known,
        None,
        usize::MAX,
        Markdown::Keep,
        |part| {
            scan.stories.extend(part.stories);
            scan.unchanged.extend(part.unchanged);
            scan.drafts.extend(part.drafts);
            scan.failed.extend(part.failed);
            true
        },
    )?;
    Ok(scan)
}

/// Stories per part of a scan read in parts: a few MB of HTML.
pub const PART: usize = 1000;

/// [`scan`] in parts, so that a large folder is never held whole, of the
/// files as `listing` found them (or as listed now).
///
/// `each` gets first a part with every unchanged item (so that their
/// slugs are known before any story that might claim one), then the other
/// files `size` at a time, in path order, each part read on all cores.
/// `each` returning false stops the scan. `Err` only when the folder
/// cannot be listed; a file that cannot be read is a `failed` item.
pub fn scan_parts(
    config: &Config,
    source: &DirectorySource,
    known: &foldhash::HashMap<&str, &str>,
    listing: Option<Listing>,
    size: usize,
    markdown: Markdown,
    mut each: impl FnMut(Scan) -> bool,
) -> Result<(), Problem> {
    let Listing(files) = match listing {
        Some(listing) => listing,
        None => list(source, || true).map_err(|e| {
            Problem::new(&source.path, format!("cannot read the stories folder: {e}"))
        })?,
    };
    let fingerprint = fingerprint(config, source);
    let (unchanged, to_read) = split_unchanged(config, &fingerprint, known, files);
    if !each(Scan {
        unchanged,
        ..Scan::default()
    }) {
        return Ok(());
    }
    for part in to_read.chunks(size.max(1)) {
        if !each(read_part(config, source, &fingerprint, part, markdown)) {
            return Ok(());
        }
    }
    Ok(())
}

/// A story file to read: where it is, how it is shown, and its stamp and
/// size when listed (else they are taken when it is read).
struct ToRead {
    path: PathBuf,
    origin: String,
    stamp: Option<String>,
    len: Option<u64>,
}

/// Splits the listed files into those whose stamp is the one stored
/// (unchanged: not read again) and those to read.
fn split_unchanged(
    config: &Config,
    fingerprint: &str,
    known: &foldhash::HashMap<&str, &str>,
    files: Vec<(PathBuf, Option<Stat>)>,
) -> (Vec<ItemRef>, Vec<ToRead>) {
    let files: Vec<ToRead> = files
        .into_par_iter()
        .map(|(path, stat)| {
            let len = stat.map(|s| s.len);
            let stamp = stat.and_then(|s| stamp(&s, fingerprint));
            let origin = shown(config, &path);
            ToRead {
                path,
                origin,
                stamp,
                len,
            }
        })
        .collect();
    // Sized for all: on a large site every file lands in one or the
    // other, and growing them copies tens of thousands of entries.
    let mut unchanged = Vec::with_capacity(files.len());
    let mut to_read = Vec::with_capacity(files.len());
    for file in files {
        match (&file.stamp, known.get(file.origin.as_str())) {
            (Some(now), Some(before)) if now == before => unchanged.push(ItemRef {
                origin: file.origin,
                ..ItemRef::default()
            }),
            _ => to_read.push(file),
        }
    }
    (unchanged, to_read)
}

/// Reads one part of the files on all cores: each a story, a draft, or a
/// failed item (named by its file's slug), in the part's order.
fn read_part(
    config: &Config,
    source: &DirectorySource,
    fingerprint: &str,
    part: &[ToRead],
    markdown: Markdown,
) -> Scan {
    let results: Vec<Result<Parsed, Problem>> = part
        .par_iter()
        .map(|file| read_story(config, source, fingerprint, file, markdown))
        .collect();
    let mut scan = Scan::default();
    for (file, result) in part.iter().zip(results) {
        match result {
            Ok(Parsed::Story(story)) => scan.stories.push(*story),
            Ok(Parsed::Draft(item)) => scan.drafts.push(item),
            Err(problem) => scan.failed.push((
                problem,
                ItemRef {
                    id: None,
                    slug: Some(file_slug(&file.path)),
                    origin: file.origin.clone(),
                },
            )),
        }
    }
    scan
}

/// What a story's stored version depends on besides its file: the
/// settings that shape it, and this program's version (which shapes the
/// HTML). A change to any of them makes every file be read again.
fn fingerprint(config: &Config, source: &DirectorySource) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        config.site.base_url.as_str(),
        config.site.timezone.name(),
        config.site.language.as_str(),
        &source.url,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for theme in &config.themes {
        h.update(theme.slug.as_str().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The file's modification time (in nanoseconds) and size, with the
/// fingerprint; `None` when the file system does not say, or when the file
/// changed so recently that a second write within the file system's clock
/// tick could go unseen (the "racy git" problem): such a file is read
/// again next time.
fn stamp(stat: &Stat, fingerprint: &str) -> Option<String> {
    let modified = stat.modified?;
    let age = std::time::SystemTime::now().duration_since(modified).ok()?;
    if age < RACY_WINDOW {
        return None;
    }
    let nanos = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(format!("{nanos}-{}-{fingerprint}", stat.len))
}

/// Files modified more recently than this are never skipped.
const RACY_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// A story file found: its path, and its folder's entry for it (a
/// symbolic link has none: it is looked up by path, and so followed).
struct Found {
    path: PathBuf,
    entry: Option<fs_err::DirEntry>,
}

impl Found {
    /// What the file system says of the file. Through the folder's handle
    /// (`fstatat`) rather than the whole path again: a site of 20,000
    /// stories is 20,000 lookups on every build.
    fn metadata(&self) -> Option<std::fs::Metadata> {
        match &self.entry {
            Some(entry) => entry.metadata().ok(),
            None => std::fs::metadata(&self.path).ok(),
        }
    }
}

/// Every story file under `dir`, in path order: each folder's entries
/// sorted by name, folders walked as they come.
fn collect_files(dir: &Path, out: &mut Vec<Found>) -> std::io::Result<()> {
    let mut entries = fs_err::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name(), e)))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in entries {
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if name.ends_with(".md") {
            let entry = (!kind.is_symlink()).then_some(entry);
            out.push(Found { path, entry });
        }
    }
    Ok(())
}

fn shown(config: &Config, path: &Path) -> String {
    display_path(path, &config.root).display().to_string()
}

fn file_slug(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    slug::slugify(stem)
}

pub(crate) enum Parsed {
    Story(Box<Story>),
    Draft(ItemRef),
}

/// Reads and parses one file; the problem names the file and the line.
fn read_story(
    config: &Config,
    source: &DirectorySource,
    fingerprint: &str,
    to_read: &ToRead,
    markdown: Markdown,
) -> Result<Parsed, Problem> {
    let path = to_read.path.as_path();
    let file = display_path(path, &config.root);
    let (bytes, stat) = read_file(path, to_read.len)
        .map_err(|e| Problem::new(&file, format!("cannot read: {e}")))?;
    // simdutf8: std's check was 4% of a first build's time.
    let text = match simdutf8::compat::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.valid_up_to();
            let text = String::from_utf8_lossy(&bytes[..valid]);
            return Err(
                Problem::new(&file, "not valid UTF-8: save the file as UTF-8")
                    .at_offset(&text, valid),
            );
        }
    };
    let mut parsed = parse_story(config, source, &file, path, text, markdown)?;
    if let Parsed::Story(story) = &mut parsed {
        story.stamp = match &stat {
            Some(stat) => stamp(stat, fingerprint),
            None => to_read.stamp.clone(),
        };
    }
    Ok(parsed)
}

/// A file's bytes, read into a buffer of its size and one byte more (so
/// that the end is seen without growing it; a file that grew since it was
/// listed is still read whole). The size is the listing's, else the
/// opened file's, whose metadata then comes back too.
fn read_file(path: &Path, len: Option<u64>) -> std::io::Result<(Vec<u8>, Option<Stat>)> {
    use std::io::Read as _;
    let mut file = fs_err::File::open(path)?;
    let (len, stat) = match len {
        Some(len) => (len, None),
        None => {
            let stat = Stat::from(file.metadata()?);
            (stat.len, Some(stat))
        }
    };
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut bytes)?;
    Ok((bytes, stat))
}

/// Parses story text as read from `file`: its front matter, then what a
/// draft needs (slug and id), then, unless it is a draft, the story.
pub(crate) fn parse_story(
    config: &Config,
    source: &DirectorySource,
    file: &Path,
    path: &Path,
    text: &str,
    markdown: Markdown,
) -> Result<Parsed, Problem> {
    let (front, front_offset, body) = split_front_matter(text).ok_or_else(|| {
        Problem::new(
            file,
            "expected TOML front matter between `+++` lines at the top of the file",
        )
        .at_offset(text, 0)
    })?;
    let place = Place {
        file,
        text,
        front_offset,
    };
    let front = Front::parse(place, front)?;
    let fm = front.fields()?;
    let slug = story_slug(&fm, &front, path)?;
    let id = story_id(&fm, &front)?;
    if fm.draft {
        return Ok(Parsed::Draft(ItemRef {
            id,
            slug: Some(slug),
            origin: file.display().to_string(),
        }));
    }
    let story = story(config, source, &front, &fm, id, slug, body, markdown)?;
    Ok(Parsed::Story(Box::new(story)))
}

/// Where a story file's front matter sits, so that a problem with it
/// points at a line of the file.
#[derive(Clone, Copy)]
struct Place<'a> {
    file: &'a Path,
    text: &'a str,
    /// The front matter's byte offset in `text`.
    front_offset: usize,
}

impl Place<'_> {
    /// A problem with the front matter, about `key` if given, at `span` (a
    /// range of the front matter) or else at the top of the file.
    fn problem(
        &self,
        message: impl Into<String>,
        key: Option<&str>,
        span: Option<Range<usize>>,
    ) -> Problem {
        let mut p = Problem::new(self.file, message);
        if let Some(key) = key {
            p = p.key(key);
        }
        match span {
            Some(span) => p.at_offset(self.text, self.front_offset + span.start),
            None => p.at_offset(self.text, 0),
        }
    }
}

/// The front matter parsed as TOML, which knows where each value is.
struct Front<'a> {
    place: Place<'a>,
    value: Spanned<DeValue<'a>>,
}

impl<'a> Front<'a> {
    /// Parses the front matter (`front`, as split from the file) as TOML.
    fn parse(place: Place<'a>, front: &'a str) -> Result<Front<'a>, Problem> {
        let table = DeTable::parse(front).map_err(|e| {
            place.problem(
                format!("invalid front matter: {}", e.message().trim()),
                None,
                e.span(),
            )
        })?;
        let value = Spanned::new(table.span(), DeValue::Table(table.into_inner()));
        Ok(Front { place, value })
    }

    /// The fields, typed; a value of the wrong type or a key that is not
    /// one of [`KEYS`] is a problem at its line.
    fn fields(&self) -> Result<FrontMatter, Problem> {
        let mut unknown = Vec::new();
        let fm: FrontMatter =
            serde_ignored::deserialize(ValueDeserializer::from(self.value.clone()), |p| {
                unknown.push(p.to_string());
            })
            .map_err(|e| {
                let key = e.span().and_then(|s| key_at(&self.value, &s));
                self.place
                    .problem(e.message().trim().to_string(), key.as_deref(), e.span())
            })?;
        match unknown.first() {
            Some(key) => Err(self.unknown_key(key)),
            None => Ok(fm),
        }
    }

    /// The problem with a key that is not a front matter field (`key` is
    /// its path, such as `extra.note`: the problem names its first part).
    fn unknown_key(&self, key: &str) -> Problem {
        let top = key.split('.').next().unwrap_or(key);
        let span = self
            .value
            .get_ref()
            .get(top)
            .map(|_| key_span(&self.value, top))
            .unwrap_or(None);
        self.place.problem(
            format!(
                "unknown front matter key; expected one of: {}",
                KEYS.join(", ")
            ),
            Some(top),
            span,
        )
    }

    /// A problem with `key`'s value, at its line.
    fn bad(&self, key: &str, message: impl Into<String>) -> Problem {
        self.place
            .problem(message, Some(key), key_span(&self.value, key))
    }
}

/// The story's slug: `slug` as given, which must already be a slug, or
/// else the file name's.
fn story_slug(fm: &FrontMatter, front: &Front<'_>, path: &Path) -> Result<String, Problem> {
    let slug = match &fm.slug {
        Some(s) => {
            let s = s.trim();
            if slug::slugify(s) != s {
                return Err(front.bad(
                    "slug",
                    format!(
                        "`{s}` is not a valid slug: expected lowercase letters, digits and hyphens"
                    ),
                ));
            }
            s.to_owned()
        }
        None => file_slug(path),
    };
    if slug.is_empty() {
        return Err(front.place.problem(
            "the file name gives an empty slug: set `slug`",
            None,
            None,
        ));
    }
    Ok(slug)
}

/// The editor's `id`, if given.
fn story_id(fm: &FrontMatter, front: &Front<'_>) -> Result<Option<StoryId>, Problem> {
    fm.id
        .as_deref()
        .map(|id| StoryId::parse(id.trim()).map_err(|e| front.bad("id", e)))
        .transpose()
}

/// The story a file that is not a draft gives: each field checked, in
/// this order (the first problem is the one reported); the body is kept
/// as Markdown (when `markdown` says so), to be rendered against the
/// story's own URL when shown.
#[allow(clippy::too_many_arguments)]
fn story(
    config: &Config,
    source: &DirectorySource,
    front: &Front<'_>,
    fm: &FrontMatter,
    id: Option<StoryId>,
    slug: String,
    body: &str,
    markdown: Markdown,
) -> Result<Story, Problem> {
    let title = story_title(fm, front)?;
    let tz = config.site.timezone;
    let (published, updated) = story_dates(fm, front, tz)?;
    let themes = story_themes(config, fm, front)?;
    let language = story_language(config, fm, front)?;
    let url = story_url(
        &config.site.base_url,
        &source.url,
        &slug,
        published,
        tz,
        &language,
    )
    .map_err(|e| front.place.problem(e, None, None))?;
    let bases = content::Bases {
        site: config.site.base_url.clone(),
        page: url,
    };
    let image = story_image(fm, front, &bases)?;
    // The body is rendered when a feed or an edition shows it
    // (`sources::bodies`): only its hash is kept, and the Markdown until
    // the story is stored if a rendering follows.
    let body_source = BodySource {
        hash: bodies::markdown_hash(body),
        rendered: None,
        markdown: (markdown == Markdown::Keep).then(|| body.to_owned()),
    };
    Ok(Story {
        id,
        slug,
        url: bases.page.to_string(),
        title,
        summary: story_summary(fm, body),
        body_html: String::new(),
        body_source: Some(body_source),
        language: Some(language),
        authors: fm
            .authors
            .iter()
            .map(|a| content::clean_line(a))
            .filter(|a| !a.is_empty())
            .collect(),
        themes,
        image,
        image_alt: fm
            .image_alt
            .as_deref()
            .map(content::clean_line)
            .filter(|s| !s.is_empty()),
        published,
        updated,
        featured: fm.featured,
        origin: front.place.file.display().to_string(),
        stamp: None,
    })
}

/// The title on one line; every story needs one.
fn story_title(fm: &FrontMatter, front: &Front<'_>) -> Result<String, Problem> {
    let title = content::clean_line(fm.title.as_deref().unwrap_or_default());
    if title.is_empty() {
        return Err(front.bad(
            "title",
            "missing `title`: every story needs a title, such as title = \"…\"",
        ));
    }
    Ok(title)
}

/// When the story was published (`date`, required) and updated
/// (`updated`), each read in the site's time zone unless it has an offset.
fn story_dates(
    fm: &FrontMatter,
    front: &Front<'_>,
    tz: Tz,
) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>), Problem> {
    let published = match &fm.date {
        Some(v) => parse_date(v, tz).map_err(|e| front.bad("date", e))?,
        None => {
            return Err(front.place.problem(
                "missing `date`: expected date = 2024-03-14 or an RFC 3339 time",
                Some("date"),
                None,
            ));
        }
    };
    let updated = fm
        .updated
        .as_ref()
        .map(|v| parse_date(v, tz).map_err(|e| front.bad("updated", e)))
        .transpose()?;
    Ok((published, updated))
}

/// The story's themes, each one of the site's, in the order given
/// without repeats.
fn story_themes(
    config: &Config,
    fm: &FrontMatter,
    front: &Front<'_>,
) -> Result<Vec<ThemeSlug>, Problem> {
    let mut themes: Vec<ThemeSlug> = Vec::with_capacity(fm.themes.len());
    for name in &fm.themes {
        let slug = ThemeSlug::parse(name.trim())
            .ok()
            .filter(|s| config.theme(s).is_some())
            .ok_or_else(|| {
                let known: Vec<&str> = config.themes.iter().map(|t| t.slug.as_str()).collect();
                front.bad(
                    "themes",
                    format!(
                        "unknown theme `{name}`; expected one of: {}",
                        known.join(", ")
                    ),
                )
            })?;
        if !themes.contains(&slug) {
            themes.push(slug);
        }
    }
    Ok(themes)
}

/// The story's `language`, or else the site's.
fn story_language(
    config: &Config,
    fm: &FrontMatter,
    front: &Front<'_>,
) -> Result<Language, Problem> {
    match &fm.language {
        Some(l) => Language::parse(l.trim()).map_err(|e| front.bad("language", e)),
        None => Ok(config.site.language.clone()),
    }
}

/// The `image` as an absolute URL, resolved against the story's page.
fn story_image(
    fm: &FrontMatter,
    front: &Front<'_>,
    bases: &content::Bases,
) -> Result<Option<String>, Problem> {
    let Some(img) = fm.image.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let url = bases.resolve(img).ok_or_else(|| {
        front.bad(
            "image",
            format!("`{img}` is not a usable image path or http(s) URL"),
        )
    })?;
    Ok(Some(url.to_string()))
}

/// The `summary` on one line, or else the body's first words.
fn story_summary(fm: &FrontMatter, body: &str) -> String {
    match fm.summary.as_deref().map(content::clean_line) {
        Some(s) if !s.is_empty() => s,
        _ => content::summary_from_markdown(body, SUMMARY_CHARS),
    }
}

/// Splits `+++\n<toml>\n+++\n<body>`; returns the TOML, its byte offset in
/// `text`, and the body.
pub(crate) fn split_front_matter(text: &str) -> Option<(&str, usize, &str)> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[bom..];
    let first_line_end = rest.find('\n')?;
    if rest[..first_line_end].trim_end() != "+++" {
        return None;
    }
    let start = bom + first_line_end + 1;
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let front = &text[start..offset];
            let body = &text[offset + line.len()..];
            return Some((front, start, body));
        }
        offset += line.len();
    }
    None
}

/// Where `key`'s value is in the front matter.
fn key_span(value: &Spanned<DeValue<'_>>, key: &str) -> Option<Range<usize>> {
    match value.get_ref() {
        DeValue::Table(t) => t.get_key_value(key).map(|(_, v)| v.span()),
        _ => None,
    }
}

/// The top-level key whose value holds `span`.
fn key_at(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(t) => t.iter().find_map(|(k, v)| {
            let vs = v.span();
            (vs.start <= span.start && span.end <= vs.end).then(|| k.get_ref().to_string())
        }),
        _ => None,
    }
}

/// A date from front matter: an RFC 3339 time, a local date-time, or a
/// date, the last two read in the site's time zone.
pub fn parse_date(value: &toml::Value, tz: Tz) -> Result<DateTime<Utc>, String> {
    let text = match value {
        toml::Value::Datetime(dt) => dt.to_string(),
        toml::Value::String(s) => s.trim().to_owned(),
        other => {
            return Err(format!(
                "expected a date such as 2024-03-14 or 2024-03-14T09:30:00+01:00, found {}",
                other.type_str()
            ));
        }
    };
    parse_date_str(&text, tz)
}

fn parse_date_str(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    let local = if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).expect("midnight exists")
    } else {
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!(
                "`{text}` is not a date: expected RFC 3339 such as 2024-03-14T09:30:00+01:00, \
                     or a date such as 2024-03-14"
            )
        })?
    };
    match tz.from_local_datetime(&local) {
        LocalResult::Single(dt) => Ok(dt.with_timezone(&Utc)),
        // Clocks fall back: the first of the two instants.
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(format!(
            "`{text}` does not exist in {tz} (the clocks skip it): give the time with its offset"
        )),
    }
}

/// The story's absolute URL from the source's pattern.
fn story_url(
    base: &Url,
    pattern: &str,
    slug: &str,
    published: DateTime<Utc>,
    tz: Tz,
    language: &Language,
) -> Result<Url, String> {
    let local = published.with_timezone(&tz);
    let path = pattern
        .replace("{slug}", slug)
        .replace("{year}", &local.format("%Y").to_string())
        .replace("{month}", &local.format("%m").to_string())
        .replace("{day}", &local.format("%d").to_string())
        .replace("{language}", language.as_str());
    let joined = if path.contains("://") {
        Url::parse(&path)
    } else {
        base.join(path.trim_start_matches('/'))
    };
    joined.map_err(|e| format!("the story URL `{path}` is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_without_offset_are_read_in_the_site_zone() {
        let tz: Tz = "Europe/Stockholm".parse().unwrap();
        let d = parse_date_str("2024-03-14", tz).unwrap();
        assert_eq!(d.to_rfc3339(), "2024-03-13T23:00:00+00:00");
        let d = parse_date_str("2024-07-01T10:00:00", tz).unwrap();
        assert_eq!(d.to_rfc3339(), "2024-07-01T08:00:00+00:00");
        let d = parse_date_str("2024-07-01T10:00:00Z", tz).unwrap();
        assert_eq!(d.to_rfc3339(), "2024-07-01T10:00:00+00:00");
        assert!(
            parse_date_str("2024-03-31T02:30:00", tz).is_err(),
            "skipped by DST"
        );
        assert!(parse_date_str("14/03/2024", tz).is_err());
    }

    #[test]
    fn front_matter_is_split_from_the_body() {
        let (front, offset, body) = split_front_matter("+++\ntitle = \"x\"\n+++\nBody\n").unwrap();
        assert_eq!(front, "title = \"x\"\n");
        assert_eq!(offset, 4);
        assert_eq!(body, "Body\n");
        assert!(split_front_matter("title = 1\n").is_none());
        assert!(split_front_matter("+++\ntitle = 1\n").is_none());
    }
}
