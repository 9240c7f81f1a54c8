//! Entry points for the fuzz targets in `fuzz/` (compiled only under
//! cargo-fuzz's `cfg(fuzzing)`): each takes outside input as bytes or text
//! and runs it through the real parsing code, which is private to its
//! module, against one site loaded the way `tidings` loads a config. The
//! invariants are asserted by the targets.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use crate::config::{Config, DirectorySource, FeedSource, Source, WordPressSource};
use crate::links::tokens::{Purpose, Signer, TokenError, Unverified};
use crate::model::problem::Problem;
use crate::model::{NewSubscriber, Status, Story, StoryId};
use crate::web::csrf::{Csrf, CsrfError};
use crate::web::signup::{self, FieldError, Input};

pub use crate::links::tokens::Claims;
pub use crate::model::SubscriberEmail;
pub use crate::sources::content;

const CONFIG: &str = r#"
[site]
title = "Fuzz"
base_url = "https://fuzz.example.org/site/"
language = "sv"
timezone = "Europe/Stockholm"

[[themes]]
slug = "miljo"
title = { sv = "Miljö", en = "Environment" }

[[themes]]
slug = "demokrati"
title = { sv = "Demokrati", en = "Democracy" }

[[sources]]
kind = "directory"
path = "."

[[sources]]
kind = "wordpress"
base_url = "https://cms.example.org"
themes_from = { categories = { "nyheter" = "miljo" }, tags = { "val" = "demokrati" } }

[[sources]]
kind = "feed"
url = "https://partner.example.org/feed.xml"
themes_from = { categories = { "news" = "demokrati" } }

[mail]
from = "Fuzz <news@fuzz.example.org>"
organization = "Fuzz, Box 1, 111 11 Stockholm"

[[digests]]
id = "monthly"
title = { sv = "Månadsbrev", en = "Monthly" }
"#;

/// The site every target parses against.
pub static CONFIG_LOADED: LazyLock<Config> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join("tidings-fuzz");
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    Config::from_str(&dir.join("config.toml"), CONFIG)
        .unwrap_or_else(|p| panic!("the fuzz config is invalid: {p:?}"))
});

fn directory() -> &'static DirectorySource {
    CONFIG_LOADED
        .sources
        .iter()
        .find_map(|s| match s {
            Source::Directory(d) => Some(d),
            _ => None,
        })
        .expect("a directory source")
}

fn wordpress() -> &'static WordPressSource {
    CONFIG_LOADED
        .sources
        .iter()
        .find_map(|s| match s {
            Source::WordPress(w) => Some(w),
            _ => None,
        })
        .expect("a wordpress source")
}

fn feed() -> &'static FeedSource {
    CONFIG_LOADED
        .sources
        .iter()
        .find_map(|s| match s {
            Source::Feed(f) => Some(f),
            _ => None,
        })
        .expect("a feed source")
}

/// What a story file gave.
pub enum StoryFile {
    Story(Box<Story>),
    Draft,
}

/// Splits a story file's text as the directory source does: the front
/// matter, its byte offset, the body.
pub fn split_front_matter(text: &str) -> Option<(&str, usize, &str)> {
    crate::sources::directory::split_front_matter(text)
}

/// A story file's text through the directory source's parsing, its body
/// rendered as when a feed shows it.
pub fn story_file(text: &str) -> Result<StoryFile, Problem> {
    use crate::sources::directory::{Markdown, Parsed, parse_story};
    let source = directory();
    let path: PathBuf = source.path.join("fuzzed-story.md");
    let file = Path::new("fuzzed-story.md");
    parse_story(&CONFIG_LOADED, source, file, &path, text, Markdown::Keep).map(|p| match p {
        Parsed::Story(mut s) => {
            crate::sources::bodies::render_held(&CONFIG_LOADED, &mut s);
            StoryFile::Story(s)
        }
        Parsed::Draft(_) => StoryFile::Draft,
    })
}

/// What the Markdown of a story resolves against on the fuzz site.
pub fn bases() -> content::Bases {
    content::Bases {
        site: CONFIG_LOADED.site.base_url.clone(),
        page: CONFIG_LOADED
            .site
            .base_url
            .join("stories/fuzzed/")
            .expect("a page URL"),
    }
}

/// pulldown-cmark's own HTML for `markdown`, with the options stories are
/// rendered with, and whether [`content::markdown_to_html`] takes its
/// fast path for it.
pub fn markdown_raw(markdown: &str) -> (String, bool) {
    content::raw_markdown(markdown, &bases())
}

/// The rows of a subscriber import file: each with the line it starts on,
/// and the subscriber or the problem. `Err` when the header is unusable
/// or the CSV cannot be read on.
pub fn csv_rows(bytes: &[u8]) -> Result<Vec<(u64, Result<NewSubscriber, Problem>)>, String> {
    use crate::subscribers::io::{Row, Rows};
    let path = Path::new("fuzzed.csv");
    let mut rows = Rows::new(bytes, path, Status::Pending).map_err(|e| format!("{e:#}"))?;
    let mut out = Vec::new();
    while let Some((line, row)) = rows.next(&CONFIG_LOADED).map_err(|e| format!("{e:#}"))? {
        out.push((
            line,
            match row {
                Row::Subscriber(s) => Ok(s),
                Row::Bad(p) => Err(p),
            },
        ));
    }
    Ok(out)
}

/// The fuzz site's signer: two keys, the second active.
pub static SIGNER: LazyLock<Signer> =
    LazyLock::new(|| Signer::with_keys(2, vec![(1, b"the first key".to_vec()), (2, vec![7; 32])]));

pub const PURPOSES: [Purpose; 3] = [Purpose::Confirm, Purpose::Preferences, Purpose::Unsubscribe];

/// A link token parsed, then checked for `purpose` and `email_key` at `now`.
pub fn verify_token(
    token: &str,
    purpose: Purpose,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let parsed = Unverified::parse(token)?;
    let _ = (parsed.key_id(), parsed.subscriber_id());
    SIGNER.verify(&parsed, purpose, email_key, now)
}

/// A link token signed with the active key.
pub fn sign_token(purpose: Purpose, id: i64, email_key: &str, issued: DateTime<Utc>) -> String {
    SIGNER.sign(purpose, id, email_key, issued)
}

static CSRF: LazyLock<Csrf> = LazyLock::new(|| Csrf::new(&SIGNER));

/// A form token for `nonce` issued at `issued`, signed as the site signs.
pub fn csrf_token(issued: i64, nonce: &str) -> String {
    CSRF.token_at(issued, nonce)
}

/// A form token checked against a request whose `Cookie` header is
/// `cookie`, at `now`.
pub fn csrf_verify(
    token: Option<&str>,
    cookie: &[u8],
    now: DateTime<Utc>,
) -> Result<(), CsrfError> {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(value) = axum::http::HeaderValue::from_bytes(cookie) {
        headers.insert(axum::http::header::COOKIE, value);
    }
    CSRF.verify(token, &headers, now)
}

/// A sign-up form's body as the form handler reads and checks it.
pub fn signup_form(body: &[u8]) -> (Input, Result<NewSubscriber, Vec<FieldError>>) {
    let form = crate::web::forms::parse_form(body);
    let checked = signup::check(&CONFIG_LOADED, &form.input);
    (form.input, checked)
}

/// A JSON sign-up body as the API reads and checks it; `None` when it is
/// not JSON.
pub fn signup_json(body: &[u8]) -> Option<Result<NewSubscriber, Vec<FieldError>>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(signup::from_json(&value).and_then(|input| signup::check(&CONFIG_LOADED, &input)))
}

/// The theme slugs of the fuzz site.
pub fn theme_slugs() -> Vec<String> {
    CONFIG_LOADED
        .themes
        .iter()
        .map(|t| t.slug.as_str().to_owned())
        .collect()
}

/// An upstream feed's bytes parsed, and each entry mapped to a story.
pub fn feed_stories(bytes: &[u8]) -> Result<Vec<Result<Story, String>>, String> {
    use crate::sources::feed::{parse, story};
    let source = feed();
    let body = crate::sources::http::Body {
        url: source.url.clone(),
        moved_to: None,
        headers: Default::default(),
        bytes: bytes.to_vec(),
    };
    let parsed = parse(&body)?;
    let language = parsed
        .language
        .as_deref()
        .and_then(|l| crate::model::Language::parse(&l.to_lowercase()).ok());
    Ok(parsed
        .entries
        .iter()
        .map(|entry| story(source, &body.url, entry, language.as_ref()))
        .collect())
}

/// A page of the WordPress API parsed, and each post mapped to a story.
pub fn wordpress_stories(bytes: &[u8]) -> Result<Vec<Result<Story, String>>, String> {
    use crate::sources::wordpress::{Post, parse_page, story};
    let source = wordpress();
    let posts = parse_page(bytes, "application/json")?;
    Ok(posts
        .into_iter()
        .map(|value| {
            let post: Post = serde_json::from_value(value).map_err(|e| e.to_string())?;
            let id = post.id.ok_or("a post without an `id`")?;
            let story_id = StoryId::parse(&format!("wp-cms.example.org-{id}")).expect("a valid id");
            let origin = format!("https://cms.example.org/wp-json/wp/v2/posts/{id}");
            story(
                &CONFIG_LOADED,
                source,
                &post,
                story_id,
                &origin,
                post.modified_gmt.clone(),
            )
        })
        .collect())
}
