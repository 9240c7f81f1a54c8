//! Feeds: prepared from the store ([`prepare`]), rendered as RSS, Atom and
//! JSON Feed plus an OPML list, and written under `[feeds] dir`.
//!
//! Files are written atomically (temporary file in the same folder, then
//! rename) and only when their bytes change, so a build with nothing new
//! leaves every file, and its modification time, as it was. A build
//! [`plan`]s first: each file gets a key of what it is made from, and only
//! files whose key changed since the last build's note (or that someone
//! touched) are rendered.

pub mod atom;
pub mod index;
pub mod json;
pub mod listed;
pub mod opml;
pub mod prepare;
pub mod rss;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use rayon::prelude::*;

use crate::config::Config;
use crate::model::{Story, StoryId};
use crate::store::{FeedFacts, Indexed, StoredStory};
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

/// The files of the feeds dir that a build rendered, each written beside
/// its place as soon as it was rendered (see [`write_all`]).
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<Staged>,
    /// Files that could not be rendered (an operator's broken template);
    /// the others are still written.
    pub problems: Vec<anyhow::Error>,
}

/// Which file of the feeds dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The feed at this position of [`Plan::feeds`], in one format.
    Feed(usize, Format),
    Opml,
    Index,
}

/// One file of the feeds dir and what its bytes are made from.
#[derive(Debug)]
pub struct Planned {
    /// Path relative to the feeds dir.
    pub rel: String,
    /// A hash of everything the file's bytes depend on.
    pub key: String,
    part: Part,
    /// The stamp the last build noted, when it wrote the file from this
    /// same key and the file is still as it left it: nothing to render.
    current: Option<String>,
}

/// What a build writes: every feed, and every file with whether it must
/// be rendered again. A story added touches the site's feed and its
/// themes' feeds, the OPML list and the index page; the other feeds'
/// files are left alone without reading their stories.
#[derive(Debug)]
pub struct Plan<'a> {
    pub feeds: Vec<Feed<'a>>,
    pub files: Vec<Planned>,
}

/// Plans a build: the feeds from the index of published stories and the
/// facts of those [`prepare::select`] chose, and each file's key, checked
/// against the `note` the last build left (see [`Plan::note`]).
/// The parts of the config the feed files show, as one string: a change
/// to any of them rewrites every file, a change elsewhere (mail, HTTP)
/// rewrites none.
fn config_key(config: &Config) -> String {
    let site = &config.site;
    let mut key = [
        site.title.as_str(),
        site.base_url.as_str(),
        site.language.as_str(),
        site.timezone.name(),
        site.description.get(site.language.as_str()),
        site.author.as_str(),
        prepare::feeds_base(config).as_str(),
    ]
    .join("\0");
    key.push_str(&format!(
        "\0{}\0{}",
        config.feeds.items, config.feeds.full_content
    ));
    for hub in config.hub_urls() {
        key.push_str("\0hub\0");
        key.push_str(hub.as_str());
    }
    for theme in &config.themes {
        key.push_str("\0theme\0");
        key.push_str(theme.slug.as_str());
        for text in [&theme.title, &theme.description] {
            key.push_str(&format!("\0*\0{}", text.get("")));
            for language in text.languages() {
                key.push_str(&format!("\0{language}\0{}", text.get(language)));
            }
        }
    }
    key
}

pub fn plan<'a>(
    config: &'a Config,
    index: &'a [Indexed],
    facts: &HashMap<String, FeedFacts>,
    note: Option<&[u8]>,
) -> Plan<'a> {
    use sha2::{Digest as _, Sha256};
    let feeds = prepare::prepare(config, index, facts);
    // What every file depends on: this program and the config.
    let mut base = Sha256::new();
    base.update(GENERATOR);
    base.update([0]);
    base.update(config_key(config));
    base.update([0]);
    let stamp = |h: &mut Sha256, f: &Feed| {
        h.update(f.dir.as_bytes());
        h.update([0]);
        h.update(f.updated.to_rfc3339().as_bytes());
        h.update((f.stories.len() as u64).to_le_bytes());
    };
    let mut files = Vec::with_capacity(feeds.len() * 3 + 2);
    for (i, feed) in feeds.iter().enumerate() {
        let mut h = base.clone();
        stamp(&mut h, feed);
        for s in &feed.stories {
            h.update(s.id.as_str());
            h.update([0]);
            h.update(facts.get(s.id.as_str()).map_or("", |f| f.hash.as_str()));
            for theme in &s.themes {
                h.update([1]);
                h.update(theme.as_str());
            }
            h.update([0]);
        }
        let key = hex::encode(h.finalize());
        for format in Format::ALL {
            files.push((feed.path(format), key.clone(), Part::Feed(i, format)));
        }
    }
    // The list and the page show each feed's title, size and time.
    let mut h = base.clone();
    h.update("opml");
    feeds.iter().for_each(|f| stamp(&mut h, f));
    files.push((OPML_FILE.to_owned(), hex::encode(h.finalize()), Part::Opml));
    let mut h = base;
    h.update("index");
    if let Some(template) = index_template(config) {
        h.update(&template);
    }
    feeds.iter().for_each(|f| stamp(&mut h, f));
    files.push((
        index::FILE.to_owned(),
        hex::encode(h.finalize()),
        Part::Index,
    ));

    let noted = Note::parse(note).files;
    let dir = &config.feeds.dir;
    let files = files
        .into_par_iter()
        .map(|(rel, key, part)| {
            let current =
                noted
                    .get(rel.as_str())
                    .filter(|(k, _)| *k == key)
                    .and_then(|(_, stamp)| {
                        let now = file_stamp(&dir.join(&rel))?;
                        (now == *stamp).then_some(now)
                    });
            Planned {
                rel,
                key,
                part,
                current,
            }
        })
        .collect();
    Plan { feeds, files }
}

/// The index page's template, if the site has one.
fn index_template(config: &Config) -> Option<Vec<u8>> {
    std::fs::read(index::template_path(config)).ok()
}

/// A hash of what every file depends on besides the stories: this
/// program, the parts of the config the files show, the index page's
/// template.
fn site_key(config: &Config) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(GENERATOR);
    h.update([0]);
    h.update(config_key(config));
    h.update([0]);
    if let Some(template) = index_template(config) {
        h.update(&template);
    }
    hex::encode(h.finalize())
}

/// What the last build noted (see [`Plan::note`]): its first line says
/// from what stories and site the files were made, each next line one file
/// with its key and stamp.
struct Note<'n> {
    /// The stories' generation, the [`site_key`], how many stories were
    /// published; absent in a note of a build that left a file out or of
    /// an older version.
    made_from: Option<(&'n str, &'n str, usize)>,
    files: HashMap<&'n str, (&'n str, &'n str)>,
}

/// The first field of a note's first line.
const MADE_FROM: &str = "@";

impl<'n> Note<'n> {
    fn parse(note: Option<&'n [u8]>) -> Note<'n> {
        let mut out = Note {
            made_from: None,
            files: HashMap::new(),
        };
        let lines = note
            .and_then(|n| std::str::from_utf8(n).ok())
            .into_iter()
            .flat_map(str::lines);
        for line in lines {
            let mut fields = line.split('\t');
            let (Some(first), Some(second), Some(third)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if first == MADE_FROM {
                let published = fields.next().and_then(|n| n.parse().ok());
                out.made_from = published.map(|n| (second, third, n));
            } else {
                out.files.insert(first, (second, third));
            }
        }
        out
    }
}

/// From what stories the last build made its files, when it made them
/// all for this site as configured now: the stories' generation and how
/// many were published.
pub fn made_from<'n>(config: &Config, note: Option<&'n [u8]>) -> Option<(&'n str, usize)> {
    let (generation, site, published) = Note::parse(note).made_from?;
    (site == site_key(config)).then_some((generation, published))
}

/// What a build found current without planning: how many files, and how
/// many stories are published.
#[derive(Debug, Clone, Copy)]
pub struct Current {
    pub files: usize,
    pub published: usize,
}

/// Whether every file is as the last build left it, known without reading
/// a story: that build noted the stories' `generation` (no ingest has
/// changed what a story shows since) and the same [`site_key`], and every
/// file of the feeds dir it noted is still there as it wrote it. Then there
/// is nothing to plan: the stories, the config and the template are what
/// the files were made from. `None` sends the build to [`plan`].
pub fn current(config: &Config, note: Option<&[u8]>, generation: &str) -> Option<Current> {
    let note = Note::parse(note);
    let (noted_generation, noted_site, published) = note.made_from?;
    if generation.is_empty() || noted_generation != generation || noted_site != site_key(config) {
        return None;
    }
    let mut expected: Vec<String> = feed_urls(config).into_iter().map(|(rel, _)| rel).collect();
    expected.push(OPML_FILE.to_owned());
    expected.push(index::FILE.to_owned());
    if expected.len() != note.files.len() {
        return None;
    }
    let dir = &config.feeds.dir;
    let untouched = expected.par_iter().all(|rel| {
        note.files
            .get(rel.as_str())
            .is_some_and(|(_, stamp)| file_stamp(&dir.join(rel)).as_deref() == Some(*stamp))
    });
    untouched.then_some(Current {
        files: expected.len(),
        published,
    })
}

impl Plan<'_> {
    /// Whether every file is as the last build wrote it from the same key.
    pub fn is_current(&self) -> bool {
        self.files.iter().all(|f| f.current.is_some())
    }

    /// The stories of the feeds that have a file to render.
    pub fn wanted(&self) -> Vec<&StoryId> {
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::new();
        for f in self.files.iter().filter(|f| f.current.is_none()) {
            if let Part::Feed(i, _) = f.part {
                for s in &self.feeds[i].stories {
                    if seen.insert(s.id.as_str()) {
                        ids.push(&s.id);
                    }
                }
            }
        }
        ids
    }

    /// The files to render again whose feeds list any of these stories.
    pub fn files_listing(
        &self,
        ids: &std::collections::HashSet<String>,
    ) -> std::collections::HashSet<&str> {
        if ids.is_empty() {
            return Default::default();
        }
        self.files
            .iter()
            .filter(|f| f.current.is_none())
            .filter(|f| match f.part {
                Part::Feed(i, _) => self.feeds[i]
                    .stories
                    .iter()
                    .any(|s| ids.contains(s.id.as_str())),
                _ => false,
            })
            .map(|f| f.rel.as_str())
            .collect()
    }

    /// Renders the files that are not current, each written beside its
    /// place as soon as it is rendered (so that a build holds a file a
    /// core, not every file of the site); `stories` are (at least) the
    /// [`Plan::wanted`] ones. A file that cannot be rendered is a problem
    /// and the others go on; one that cannot be written fails the build.
    pub fn render(&self, config: &Config, stories: &[StoredStory]) -> Result<Rendered> {
        let by_id: HashMap<&str, &StoredStory> =
            stories.iter().map(|s| (s.id.as_str(), s)).collect();
        let results: Vec<Result<Result<Staged>>> = self
            .files
            .par_iter()
            .filter(|f| f.current.is_none())
            .map(|f| {
                let bytes = match f.part {
                    Part::Feed(i, format) => {
                        let feed = &self.feeds[i];
                        let listed: Vec<&StoredStory> = feed
                            .stories
                            .iter()
                            .filter_map(|s| by_id.get(s.id.as_str()).copied())
                            .collect();
                        match format {
                            Format::Rss => rss::render(config, feed, &listed),
                            Format::Atom => atom::render(config, feed, &listed),
                            Format::Json => json::render(config, feed, &listed),
                        }
                    }
                    Part::Opml => opml::render(config, &self.feeds),
                    Part::Index => match index::load(config)
                        .and_then(|tera| index::render(&tera, config, &self.feeds))
                    {
                        Ok(bytes) => bytes,
                        Err(problem) => return Ok(Err(problem)),
                    },
                };
                let path = config.feeds.dir.join(&f.rel);
                let tmp = stage(&path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(Ok(Staged {
                    rel: f.rel.clone(),
                    tmp,
                }))
            })
            .collect();
        let mut out = Rendered::default();
        for r in results {
            match r? {
                Ok(file) => out.files.push(file),
                Err(e) => out.problems.push(e),
            }
        }
        Ok(out)
    }

    /// What the next build checks its plan against: each file with its key
    /// and its size, modification time and inode as now on disk. Files
    /// neither current nor `written` (they could not be rendered) are left
    /// out, so the next build tries them again. When none is left out, the
    /// note also says what the files were made from: the stories'
    /// `generation` read before the plan, the site, and how many stories
    /// are `published` (see [`current`]).
    pub fn note(
        &self,
        config: &Config,
        written: &[String],
        generation: &str,
        published: usize,
    ) -> String {
        let dir = &config.feeds.dir;
        let written: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
        let mut files = String::new();
        let mut complete = true;
        for f in &self.files {
            let stamp = match &f.current {
                Some(stamp) => Some(stamp.clone()),
                None if written.contains(f.rel.as_str()) => file_stamp(&dir.join(&f.rel)),
                None => None,
            };
            match stamp {
                Some(stamp) => files.push_str(&format!("{}\t{}\t{stamp}\n", f.rel, f.key)),
                None => complete = false,
            }
        }
        if complete && !generation.is_empty() {
            let site = site_key(config);
            format!("{MADE_FROM}\t{generation}\t{site}\t{published}\n{files}")
        } else {
            files
        }
    }

    /// How many files needed no rendering.
    pub fn current(&self) -> usize {
        self.files.iter().filter(|f| f.current.is_some()).count()
    }
}

/// The URLs of every feed file (the site's and each theme's, in each
/// format) with its path under the feeds dir: the topics a WebSub hub
/// accepts.
pub fn feed_urls(config: &Config) -> Vec<(String, url::Url)> {
    let base = prepare::feeds_base(config);
    let dirs = std::iter::once(String::new()).chain(
        config
            .themes
            .iter()
            .map(|t| format!("themes/{}/", t.slug.as_str())),
    );
    dirs.flat_map(|dir| {
        Format::ALL.map(|format| {
            let rel = format!("{dir}{}", format.file_name());
            let url = base.join(&rel).expect("feed paths are valid URL paths");
            (rel, url)
        })
    })
    .collect()
}

/// The `Link` header of a feed under WebSub (`<hub>; rel="hub"` for each
/// hub, then `<feed>; rel="self"`), or `None` when no hub is configured.
pub fn websub_link(config: &Config, self_url: &url::Url) -> Option<String> {
    let hubs = config.hub_urls();
    if hubs.is_empty() {
        return None;
    }
    let mut links: Vec<String> = hubs
        .iter()
        .map(|hub| format!("<{hub}>; rel=\"hub\""))
        .collect();
    links.push(format!("<{self_url}>; rel=\"self\""));
    Some(links.join(", "))
}

/// A rendered file of the feeds dir: its path relative to the dir, and
/// its bytes in a temporary file beside it, or none when the file already
/// holds exactly these bytes.
#[derive(Debug)]
pub struct Staged {
    pub rel: String,
    tmp: Option<tempfile::NamedTempFile>,
}

/// Puts the staged files in their places, each flushed to the disk before
/// it replaces the old one (a rename, so that a reader sees the old file
/// or the new, never part of one), and removes the feeds of themes that
/// are no longer configured.
pub fn write_all(config: &Config, files: Vec<Staged>) -> Result<WriteReport> {
    let dir = &config.feeds.dir;
    fs_err::create_dir_all(dir)?;
    // A flush mostly waits for the disk: on many threads at once (more
    // than the cores), the file system commits many in one go.
    let mut report = WriteReport::default();
    let mut shares: Vec<Vec<(String, tempfile::NamedTempFile)>> =
        (0..WRITERS).map(|_| Vec::new()).collect();
    let mut staged = 0;
    for file in files {
        match file.tmp {
            Some(tmp) => {
                shares[staged % WRITERS].push((file.rel, tmp));
                staged += 1;
            }
            None => report.unchanged += 1,
        }
    }
    let results: Vec<Result<String>> = std::thread::scope(|scope| {
        let threads: Vec<_> = shares
            .into_iter()
            .filter(|share| !share.is_empty())
            .map(|share| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .map(|(rel, tmp)| {
                            let path = dir.join(&rel);
                            replace(tmp, &path)
                                .with_context(|| format!("cannot write {}", path.display()))?;
                            Ok(rel)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a feed writer panicked"))
            .collect()
    });
    for r in results {
        report.written.push(r?);
    }
    report.written.sort();
    report.removed = remove_stale_themes(config)?;
    Ok(report)
}

/// How many threads put the feed files in their places.
const WRITERS: usize = 16;

/// Writes `bytes` to `path` through a temporary file, flushed, and a
/// rename, unless the file already holds exactly these bytes. Returns
/// whether it wrote. (A build writes each file beside its place as it
/// renders it, then puts them in place: [`Plan::render`], [`write_all`].)
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    match stage(path, bytes)? {
        Some(tmp) => replace(tmp, path).map(|()| true),
        None => Ok(false),
    }
}

/// Writes `bytes` to a temporary file beside `path`, unless the file at
/// `path` already holds exactly these bytes.
fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<Option<tempfile::NamedTempFile>> {
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(None),
        _ => {}
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tidings-")
        .suffix(".tmp")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    Ok(Some(tmp))
}

/// Flushes a staged file and renames it to `path`.
fn replace(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_data()?;
    // Temporary files are private; feeds are for everyone to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The store's setting under which a build notes what it wrote: each file
/// with its key, size, modification time and inode ([`Plan::note`]). Named after the feeds folder, since several sites or
/// instances can share one store, each with its own folder.
pub fn note_name(config: &Config) -> String {
    let dir = std::path::absolute(&config.feeds.dir).unwrap_or_else(|_| config.feeds.dir.clone());
    format!("feeds-build:{}", dir.display())
}

/// Size, modification time and inode of a file: what changes when anyone
/// replaces or edits it.
fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_file()
        .then(|| format!("{}-{}-{}-{}", m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// Removes the feeds of themes no longer configured; returns their paths.
pub fn remove_stale_themes(config: &Config) -> Result<Vec<String>> {
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
