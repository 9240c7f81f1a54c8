//! `/feeds/…`: the feed files as written by the last build, with their
//! media types, validators (`ETag`, `Last-Modified`, `304`), compression,
//! `Cache-Control` and, under WebSub, `Link` headers naming the hubs.
//!
//! Only the files a build writes are served: `rss.xml`, `atom.xml`,
//! `feed.json`, `feeds.opml`, `index.html` and each configured theme's
//! `themes/<slug>/{rss.xml,atom.xml,feed.json}`. The list is fixed when the
//! service starts, so no request path ever becomes a file path of its own
//! making: `..`, encoded or absolute paths and unknown names are simply not
//! in it (404), and a file that is a symbolic link is refused.
//!
//! The build replaces files atomically (temporary file + rename) while the
//! service runs. Each request `lstat`s its file, one cheap system call, and
//! compares (device, inode, size, mtime, ctime) with the cached version: a
//! rename changes the inode, so a replaced file is never served stale.
//! An unchanged file is served from memory: its bytes, its strong `ETag`
//! (a SHA-256 of the content) and, built once per version on first demand,
//! its gzip and brotli bodies, all as [`Bytes`] that are shared, not copied.

use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use super::AppState;
use crate::config::Config;
use crate::feeds::{Format, OPML_FILE, index};

/// Feed readers poll, and conditional requests make a poll cheap; five
/// minutes lets shared caches (a CDN, a proxy) absorb bursts while a new
/// story still reaches readers within minutes of the ingest that wrote it.
const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=300");
const VARY: HeaderValue = HeaderValue::from_static("accept-encoding");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");
const BR: HeaderValue = HeaderValue::from_static("br");

/// Feed files read from disk, kept while unchanged.
pub struct FeedCache {
    /// The served files by their path under `/feeds/`; fixed at start.
    slots: HashMap<Box<str>, Slot>,
}

/// One servable file.
struct Slot {
    path: PathBuf,
    content_type: HeaderValue,
    /// `index.html`: an HTML answer, with the pages' security headers.
    html: bool,
    /// WebSub's `Link` header (hubs and self), for a feed when hubs are
    /// configured.
    link: Option<HeaderValue>,
    current: RwLock<Option<Arc<Version>>>,
}

/// One version of a file's bytes, with everything a response needs.
struct Version {
    stamp: Stamp,
    /// The hex content hash: the opaque part of every `ETag` of this
    /// version (with `-gz` or `-br` for the compressed representations).
    tag: Box<str>,
    etag: [HeaderValue; 3],
    last_modified: HeaderValue,
    modified: SystemTime,
    identity: Bytes,
    /// `None` inside when compressing would not make the body smaller.
    gzip: OnceCell<Option<Bytes>>,
    br: OnceCell<Option<Bytes>>,
}

/// What tells one version of a path from the next. Atomic replacement
/// gives a new inode; an edit in place changes the size or the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity = 0,
    Gzip = 1,
    Br = 2,
}

impl FeedCache {
    /// The cache for the files `config`'s build writes; empty until asked.
    pub fn new(config: &Config) -> FeedCache {
        let mut files: Vec<(String, &'static str)> = Format::ALL
            .iter()
            .map(|f| (f.file_name().to_owned(), f.media_type()))
            .collect();
        files.push((OPML_FILE.to_owned(), "text/x-opml"));
        files.push((index::FILE.to_owned(), "text/html"));
        for theme in &config.themes {
            for f in Format::ALL {
                let rel = format!("themes/{}/{}", theme.slug.as_str(), f.file_name());
                files.push((rel, f.media_type()));
            }
        }
        let links: HashMap<String, HeaderValue> = crate::feeds::feed_urls(config)
            .into_iter()
            .filter_map(|(rel, url)| {
                let link = crate::feeds::websub_link(config, &url)?;
                Some((rel, HeaderValue::try_from(link).ok()?))
            })
            .collect();
        let slots = files
            .into_iter()
            .map(|(rel, media_type)| {
                let content_type = HeaderValue::try_from(format!("{media_type}; charset=utf-8"))
                    .expect("media types are ASCII");
                let slot = Slot {
                    path: config.feeds.dir.join(&rel),
                    html: media_type == "text/html",
                    link: links.get(&rel).cloned(),
                    content_type,
                    current: RwLock::new(None),
                };
                (rel.into_boxed_str(), slot)
            })
            .collect();
        FeedCache { slots }
    }

    /// The current version of the file at `rel`, or `None` when `rel` is
    /// not a feed file or the build has not written it (yet).
    async fn get(&self, rel: &str) -> io::Result<Option<(&Slot, Arc<Version>)>> {
        let Some(slot) = self.slots.get(rel) else {
            return Ok(None);
        };
        // A rename between our stat and our open shows as a different
        // inode; try again, a few times, rather than serve a mismatch.
        for _ in 0..3 {
            // Synchronous on purpose: a stat of a cached inode takes
            // microseconds, far less than a hop to the blocking pool.
            let meta = match std::fs::symlink_metadata(&slot.path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            if !meta.file_type().is_file() {
                return Ok(None);
            }
            let stamp = Stamp::of(&meta);
            if let Some(v) = slot.current.read().expect("not poisoned").as_ref()
                && v.stamp == stamp
            {
                return Ok(Some((slot, v.clone())));
            }
            let path = slot.path.clone();
            let loaded = tokio::task::spawn_blocking(move || Version::load(&path, stamp))
                .await
                .map_err(io::Error::other)??;
            if let Some(v) = loaded {
                let v = Arc::new(v);
                *slot.current.write().expect("not poisoned") = Some(v.clone());
                return Ok(Some((slot, v)));
            }
        }
        Err(io::Error::other(format!(
            "{} kept changing while being read",
            slot.path.display()
        )))
    }
}

impl Version {
    /// Reads the file if it is still the version `stamp` describes.
    fn load(path: &Path, stamp: Stamp) -> io::Result<Option<Version>> {
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if Stamp::of(&meta) != stamp {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)?;
        let hash = Sha256::digest(&bytes);
        let tag = hex::encode(&hash[..16]);
        let etag = ["", "-gz", "-br"].map(|suffix| {
            HeaderValue::try_from(format!("\"{tag}{suffix}\"")).expect("hex is a valid header")
        });
        // HTTP dates have whole seconds; compare in the same unit.
        let modified = UNIX_EPOCH + Duration::from_secs(u64::try_from(meta.mtime()).unwrap_or(0));
        let last_modified = HeaderValue::try_from(httpdate::fmt_http_date(modified))
            .expect("an HTTP date is a valid header");
        Ok(Some(Version {
            stamp,
            tag: tag.into_boxed_str(),
            etag,
            last_modified,
            modified,
            identity: Bytes::from(bytes),
            gzip: OnceCell::new(),
            br: OnceCell::new(),
        }))
    }

    /// The body in `encoding`, compressed on first demand (off the async
    /// threads); `None` for identity or when compressing does not pay.
    async fn encoded(&self, encoding: Encoding) -> Option<Bytes> {
        let cell = match encoding {
            Encoding::Identity => return None,
            Encoding::Gzip => &self.gzip,
            Encoding::Br => &self.br,
        };
        cell.get_or_init(|| async {
            let data = self.identity.clone();
            tokio::task::spawn_blocking(move || compress(encoding, &data))
                .await
                .ok()
                .flatten()
        })
        .await
        .clone()
    }

    /// Whether the request's validators match this version (RFC 9110
    /// §13.1.2 and §13.1.3, in the order §13.2.2 gives them).
    fn not_modified(&self, headers: &HeaderMap) -> bool {
        let mut if_none_match = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
        if if_none_match.peek().is_some() {
            return if_none_match.any(|v| etag_list_matches(v.as_bytes(), &self.tag));
        }
        let since = headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        since.is_some_and(|since| self.modified <= since)
    }
}

fn compress(encoding: Encoding, data: &[u8]) -> Option<Bytes> {
    let out = match encoding {
        Encoding::Identity => return None,
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 4),
                flate2::Compression::best(),
            );
            enc.write_all(data).ok()?;
            enc.finish().ok()?
        }
        Encoding::Br => {
            let mut out = Vec::with_capacity(data.len() / 4);
            {
                let mut enc = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
                enc.write_all(data).ok()?;
                enc.flush().ok()?;
            }
            out
        }
    };
    (out.len() < data.len()).then(|| Bytes::from(out))
}

/// Whether an `If-None-Match` value (`*`, or a list of entity tags, weak
/// or strong) names a representation of the version tagged `tag`. The
/// comparison is weak, as RFC 9110 requires for `If-None-Match`, and any
/// of our encodings' tags counts: they are the same content.
fn etag_list_matches(value: &[u8], tag: &str) -> bool {
    let mut rest = value;
    loop {
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return false;
        }
        if let [b'*', ..] = rest {
            return true;
        }
        if let [b'W', b'/', tail @ ..] = rest {
            rest = tail;
        }
        let [b'"', tail @ ..] = rest else {
            return false; // malformed: matches nothing
        };
        let Some(end) = tail.iter().position(|&b| b == b'"') else {
            return false;
        };
        let opaque = &tail[..end];
        let base = opaque
            .strip_suffix(b"-gz")
            .or_else(|| opaque.strip_suffix(b"-br"))
            .unwrap_or(opaque);
        if base == tag.as_bytes() {
            return true;
        }
        rest = &tail[end + 1..];
    }
}

/// The encoding to answer with, by `Accept-Encoding` (RFC 9110 §12.5.3):
/// the acceptable one with the highest q-value, brotli before gzip before
/// identity on a tie. No header, or nothing acceptable, gets identity.
fn negotiate(headers: &HeaderMap) -> Encoding {
    // q-values in thousandths; `None` when the coding is not named.
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut q = Some(1000);
            for param in parts {
                let param = param.trim();
                if let Some(v) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                {
                    q = parse_q(v.trim());
                }
            }
            let Some(q) = q else { continue };
            let slot = if coding.eq_ignore_ascii_case("br") {
                &mut br
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                &mut gzip
            } else if coding.eq_ignore_ascii_case("identity") {
                &mut identity
            } else if coding == "*" {
                &mut any
            } else {
                continue;
            };
            *slot = Some(q);
        }
    }
    let br = br.or(any).unwrap_or(0);
    let gzip = gzip.or(any).unwrap_or(0);
    // Identity is acceptable unless refused by name or by `*;q=0`.
    let identity = identity.unwrap_or(if any == Some(0) { 0 } else { 1 });
    if br > 0 && br >= gzip && br >= identity {
        Encoding::Br
    } else if gzip > 0 && gzip >= identity {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// A qvalue (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = whole + thousandths;
    (q <= 1000).then_some(q)
}

pub fn routes() -> Router<AppState> {
    // Exact shapes only, so any other path reaches the site's fallback.
    Router::new()
        .route("/feeds/", get(serve))
        .route("/feeds/index.html", get(serve))
        .route("/feeds/rss.xml", get(serve))
        .route("/feeds/atom.xml", get(serve))
        .route("/feeds/feed.json", get(serve))
        .route("/feeds/feeds.opml", get(serve))
        .route("/feeds/themes/{slug}/rss.xml", get(serve))
        .route("/feeds/themes/{slug}/atom.xml", get(serve))
        .route("/feeds/themes/{slug}/feed.json", get(serve))
}

/// GET and HEAD (axum routes HEAD to a GET handler) of one feed file.
async fn serve(State(state): State<AppState>, request: Request) -> Response {
    // The raw path, not a decoded one: feed file names need no escapes,
    // so an escaped name is not one of them.
    let rel = match request.uri().path().strip_prefix("/feeds/") {
        Some("") => index::FILE,
        Some(rel) => rel,
        None => return not_found(),
    };
    let (slot, version) = match state.feeds.get(rel).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(path = rel, error = %e, "cannot read a feed file");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the feed\n").into_response();
        }
    };
    let headers = request.headers();
    let wanted = negotiate(headers);
    let (encoding, body) = match version.encoded(wanted).await {
        Some(body) => (wanted, body),
        None => (Encoding::Identity, version.identity.clone()),
    };

    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::ETAG, version.etag[encoding as usize].clone());
    h.insert(header::LAST_MODIFIED, version.last_modified.clone());
    h.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    h.insert(header::VARY, VARY);
    if version.not_modified(headers) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    h.insert(header::CONTENT_TYPE, slot.content_type.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if let Some(link) = &slot.link {
        h.insert(header::LINK, link.clone());
    }
    if slot.html {
        super::render::html_security(h);
    }
    match encoding {
        Encoding::Identity => {}
        Encoding::Gzip => {
            h.insert(header::CONTENT_ENCODING, GZIP);
        }
        Encoding::Br => {
            h.insert(header::CONTENT_ENCODING, BR);
        }
    }
    if request.method() == Method::HEAD {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    } else {
        *response.body_mut() = Body::from(body);
    }
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Encoding {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate(&h)
    }

    #[test]
    fn negotiation_honours_q_values() {
        assert_eq!(negotiate(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(accept("gzip, deflate, br"), Encoding::Br);
        assert_eq!(accept("gzip"), Encoding::Gzip);
        assert_eq!(accept("br;q=0.5, gzip"), Encoding::Gzip);
        assert_eq!(accept("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(accept("*"), Encoding::Br);
        assert_eq!(accept("*;q=0.2, gzip;q=0.3"), Encoding::Gzip);
        assert_eq!(accept("identity"), Encoding::Identity);
        assert_eq!(accept("identity;q=1, gzip;q=0.9"), Encoding::Identity);
        assert_eq!(accept("gzip;q=1.0, identity;q=0"), Encoding::Gzip);
        assert_eq!(accept("deflate"), Encoding::Identity);
        assert_eq!(accept("GZIP;Q=0.8"), Encoding::Gzip);
        assert_eq!(accept("gzip;q=2"), Encoding::Identity);
        assert_eq!(accept(""), Encoding::Identity);
    }

    #[test]
    fn q_values_parse_strictly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("abc"), None);
    }

    #[test]
    fn if_none_match_lists() {
        let tag = "abc123";
        assert!(etag_list_matches(br#""abc123""#, tag));
        assert!(etag_list_matches(br#"W/"abc123""#, tag));
        assert!(etag_list_matches(br#""x", W/"abc123-gz""#, tag));
        assert!(etag_list_matches(br#""abc123-br""#, tag));
        assert!(etag_list_matches(b"*", tag));
        assert!(!etag_list_matches(br#""abc12""#, tag));
        assert!(!etag_list_matches(br#""abc123-zz""#, tag));
        assert!(!etag_list_matches(b"abc123", tag));
        assert!(!etag_list_matches(b"", tag));
        assert!(!etag_list_matches(br#""a,b", "c""#, tag));
    }
}
