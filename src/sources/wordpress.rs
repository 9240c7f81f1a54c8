//! The `wordpress` source: published posts from a WordPress site's REST
//! API (`/wp-json/wp/v2/posts?_embed`), page by page.
//!
//! The first run reads every post. Later runs ask only for posts modified
//! since the latest one read (`modified_after`), and once a day every post
//! is read again so that posts unpublished or deleted upstream are
//! withdrawn here. A post's id gives the story's id (`wp-<host>-<id>`), so
//! an edit upstream updates the same story.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use url::Url;

use super::http::{Answer, Body, Client, Get};
use super::{Context, ItemRef, Scan, SourceState, gone, problem};
use crate::config::{Config, WordPressSource};
use crate::model::problem::Problem;
use crate::model::{Story, StoryId, ThemeSlug};
use crate::sources::content::{self, Bases};

/// Posts per page: the API's maximum.
const PER_PAGE: usize = 100;
/// A bound on pages read in one run (100,000 posts).
const MAX_PAGES: usize = 1000;
/// How often every post is read again.
const FULL_EVERY: Duration = Duration::hours(24);
/// Longest summary, in characters.
const SUMMARY_CHARS: usize = 300;

const ACCEPT: &str = "application/json";

/// A post as the API gives it; every field optional so that one odd post
/// is reported, not the whole page.
#[derive(Debug, Deserialize)]
pub(crate) struct Post {
    pub(crate) id: Option<u64>,
    date: Option<String>,
    date_gmt: Option<String>,
    modified: Option<String>,
    pub(crate) modified_gmt: Option<String>,
    slug: Option<String>,
    status: Option<String>,
    link: Option<String>,
    title: Option<Rendered>,
    content: Option<Rendered>,
    excerpt: Option<Rendered>,
    /// Pinned to the front of the blog: the digest leads with it.
    #[serde(default)]
    sticky: bool,
    #[serde(rename = "_embedded")]
    embedded: Option<Embedded>,
}

#[derive(Debug, Deserialize)]
struct Rendered {
    #[serde(default)]
    rendered: String,
    #[serde(default)]
    protected: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Embedded {
    #[serde(default)]
    author: Vec<serde_json::Value>,
    #[serde(rename = "wp:featuredmedia", default)]
    featured: Vec<serde_json::Value>,
    #[serde(rename = "wp:term", default)]
    terms: Vec<Vec<serde_json::Value>>,
}

/// The posts endpoint under the site's address (or where it moved).
fn endpoint(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/wp-json/wp/v2/posts", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

fn base_of(source: &WordPressSource, state: &SourceState) -> Url {
    state
        .moved_to
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .unwrap_or_else(|| source.base_url.clone())
}

/// The site's address from a moved posts endpoint.
fn base_from_endpoint(url: &Url) -> Url {
    let mut base = url.clone();
    let path = url.path();
    let path = path.strip_suffix("/wp-json/wp/v2/posts").unwrap_or(path);
    base.set_path(if path.is_empty() { "/" } else { path });
    base.set_query(None);
    base
}

/// Reads the source: every post when the last full read is a day old (or
/// there was none), else the posts modified since the cursor.
pub async fn scan(cx: Context<'_>, source: &WordPressSource) -> Result<Scan, Problem> {
    let key = format!("wordpress:{}", source.base_url);
    if let Some(scan) = gone(&cx, &key) {
        return Ok(scan);
    }
    let mut state = cx.state.clone();
    let endpoint = endpoint(&base_of(source, &state));
    let stale = state.full_at.is_none_or(|at| cx.now - at >= FULL_EVERY);
    let since = if stale { None } else { state.cursor.clone() };
    let pages = read_pages(&cx, source, &key, &endpoint, since.as_deref(), &mut state).await?;
    let posts = match pages {
        Pages::Posts(posts) => posts,
        Pages::Gone(p) => return gone_scan(state, p),
    };
    let full = since.is_none();
    if full && posts.is_empty() && cx.published > 0 {
        return Err(problem(
            &endpoint,
            format!(
                "answered an empty list of posts; keeping the {} stories already published from it",
                cx.published
            ),
        ));
    }
    let mut scan = Scan {
        partial: !full,
        ..Scan::default()
    };
    add_posts(&cx, source, &endpoint, posts, &mut state.cursor, &mut scan);
    if full {
        state.full_at = Some(cx.now);
    }
    scan.state = (state != cx.state).then_some(state);
    Ok(scan)
}

/// What reading the pages of posts gave.
enum Pages {
    /// Every post read, as JSON, in the order read.
    Posts(Vec<serde_json::Value>),
    /// The API answered `410 Gone`: the problem to report.
    Gone(Problem),
}

/// Reads the posts page by page, oldest change first, until the last page
/// (or [`MAX_PAGES`]). A permanent move on the first page, and `410 Gone`
/// on any, are noted in `state`.
async fn read_pages(
    cx: &Context<'_>,
    source: &WordPressSource,
    key: &str,
    endpoint: &Url,
    since: Option<&str>,
    state: &mut SourceState,
) -> Result<Pages, Problem> {
    let mut posts = Vec::new();
    let mut page = 1;
    loop {
        let url = page_url(endpoint, page, since);
        let answer = cx
            .client
            .get(&Get::new(&url, ACCEPT, &source.remote))
            .await
            .map_err(|e| problem(&url, format!("cannot read posts: {e}")))?;
        let body = match answer {
            Answer::Body(body) => body,
            Answer::Gone => {
                tracing::warn!(source = %key, url = %url, "410 Gone: the WordPress API was removed; the source is no longer polled (change its base_url or remove it from config.toml)");
                state.gone_at = Some(cx.now);
                return Ok(Pages::Gone(problem(
                    &url,
                    "410 Gone: the API was removed upstream; not polled again until its base_url changes",
                )));
            }
            Answer::NotModified => break,
        };
        if page == 1
            && let Some(moved) = &body.moved_to
        {
            let base = base_from_endpoint(moved);
            tracing::warn!(source = %key, to = %base, "the WordPress site moved permanently; following it from now on");
            state.moved_to = Some(base.to_string());
        }
        let list = parse_page(&body.bytes, body.content_type()).map_err(|e| problem(&url, e))?;
        let count = list.len();
        posts.extend(list);
        if !more_pages(&body, page, count) || page >= MAX_PAGES {
            break;
        }
        page += 1;
    }
    Ok(Pages::Posts(posts))
}

/// The address of one page of posts, with their authors, images and
/// terms embedded, oldest change first, modified since `since` if given.
fn page_url(endpoint: &Url, page: usize, since: Option<&str>) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("_embed", "1")
            .append_pair("per_page", &PER_PAGE.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("orderby", "modified")
            .append_pair("order", "asc");
        if let Some(since) = since {
            q.append_pair("modified_after", &modified_after(since));
        }
    }
    url
}

/// Whether pages follow `page`, which held `count` posts: as the
/// `X-WP-TotalPages` header says, or else if the page was full.
fn more_pages(body: &Body, page: usize, count: usize) -> bool {
    let total_pages = body
        .header("x-wp-totalpages")
        .and_then(|v| v.trim().parse::<usize>().ok());
    match total_pages {
        Some(total) => page < total,
        None => count == PER_PAGE,
    }
}

/// Adds each post read to the scan (see [`add_post`]); a post that is not
/// one, or has no id, is a failed item. The cursor moves on to the latest
/// `modified_gmt` among them.
fn add_posts(
    cx: &Context<'_>,
    source: &WordPressSource,
    endpoint: &Url,
    posts: Vec<serde_json::Value>,
    cursor: &mut Option<String>,
    scan: &mut Scan,
) {
    for value in posts {
        let post: Post = match serde_json::from_value(value) {
            Ok(p) => p,
            Err(e) => {
                let p = problem(
                    endpoint,
                    format!("a post that is not a WordPress post: {e}"),
                );
                scan.failed.push((p, ItemRef::default()));
                continue;
            }
        };
        if let Some(m) = &post.modified_gmt
            && cursor.as_deref().is_none_or(|c| m.as_str() > c)
        {
            *cursor = Some(m.clone());
        }
        let Some(id) = post.id else {
            let p = problem(endpoint, "a post without an `id`");
            scan.failed.push((p, ItemRef::default()));
            continue;
        };
        add_post(cx, source, endpoint, id, &post, scan);
    }
}

/// Adds one post to the scan: as a draft when it is not published or is
/// password-protected, as unchanged when its stamp (its modified time) is
/// the stored one, else as a story, or failed if it cannot be one.
fn add_post(
    cx: &Context<'_>,
    source: &WordPressSource,
    endpoint: &Url,
    id: u64,
    post: &Post,
    scan: &mut Scan,
) {
    let host = source.base_url.host_str().unwrap_or("wordpress");
    let story_id = StoryId::parse(&format!("wp-{host}-{id}")).expect("hosts and numbers");
    let origin = format!("{endpoint}/{id}");
    let item = ItemRef {
        id: Some(story_id.clone()),
        slug: None,
        origin: origin.clone(),
    };
    let published = post.status.as_deref().is_none_or(|s| s == "publish");
    let protected = post.content.as_ref().is_some_and(|c| c.protected);
    if !published || protected {
        scan.drafts.push(item);
        return;
    }
    let stamp = post.modified_gmt.clone().or(post.modified.clone());
    if stamp.is_some() && cx.known.get(&origin) == stamp.as_ref() {
        scan.unchanged.push(item);
        return;
    }
    match story(cx.config, source, post, story_id, &origin, stamp) {
        Ok(s) => scan.stories.push(s),
        Err(message) => scan
            .failed
            .push((Problem::new(origin.as_str(), message), item)),
    }
}

/// `410 Gone` ends the source: the state remembers it and the scan, empty
/// and partial, withdraws nothing.
fn gone_scan(state: SourceState, p: Problem) -> Result<Scan, Problem> {
    tracing::warn!(problem = %p, "source gone");
    Ok(Scan {
        partial: true,
        state: Some(state),
        failed: vec![(p, ItemRef::default())],
        ..Scan::default()
    })
}

/// How far before the cursor an incremental read starts. WordPress
/// compares `modified_after` with the posts' local `modified` time in some
/// versions and with the GMT one in others; starting 14 hours (the widest
/// time-zone offset) early finds every change either way. Posts read again
/// whose `modified_gmt` did not change cost a few bytes of JSON and no
/// parsing (their stamp matches).
const OVERLAP: Duration = Duration::hours(14);

/// The `modified_after` value for a cursor (a `modified_gmt` time).
fn modified_after(cursor: &str) -> String {
    match NaiveDateTime::parse_from_str(cursor, "%Y-%m-%dT%H:%M:%S") {
        Ok(t) => (t - OVERLAP).format("%Y-%m-%dT%H:%M:%S").to_string(),
        Err(_) => cursor.to_owned(),
    }
}

/// One page of posts: a JSON array of objects.
pub(crate) fn parse_page(
    bytes: &[u8],
    content_type: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_lowercase();
        if start.trim_start().starts_with('<') {
            format!(
                "answered HTML ({}) where a JSON list of posts was expected; is base_url a WordPress site with the REST API enabled?",
                if content_type.is_empty() { "no content type" } else { content_type }
            )
        } else {
            format!("answered invalid JSON: {e}")
        }
    })?;
    match value {
        serde_json::Value::Array(items) => Ok(items),
        serde_json::Value::Object(o) if o.contains_key("code") => Err(format!(
            "answered an error: {}",
            o.get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("(no message)")
        )),
        other => Err(format!(
            "answered JSON that is not a list of posts (a {})",
            match other {
                serde_json::Value::Object(_) => "object",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "boolean",
                _ => "null",
            }
        )),
    }
}

/// A WordPress time: `*_gmt` fields are UTC, the others the site's time.
fn wp_time(gmt: Option<&str>, local: Option<&str>, config: &Config) -> Option<DateTime<Utc>> {
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok();
    if let Some(t) = gmt.and_then(parse) {
        // Unpublished posts carry a zero date here.
        if t.and_utc().timestamp() > 0 {
            return Some(t.and_utc());
        }
    }
    let t = local.and_then(parse)?;
    config
        .site
        .timezone
        .from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The story a published post gives; the error says what it lacks (a
/// link, a title, a date).
pub(crate) fn story(
    config: &Config,
    source: &WordPressSource,
    post: &Post,
    id: StoryId,
    origin: &str,
    stamp: Option<String>,
) -> Result<Story, String> {
    let link = post
        .link
        .as_deref()
        .and_then(|l| Url::parse(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("the post has no `link` that is an http(s) URL")?;
    let title = post
        .title
        .as_ref()
        .map(|t| content::html_to_text(&t.rendered))
        .filter(|t| !t.is_empty())
        .ok_or("the post has no title")?;
    let published = wp_time(post.date_gmt.as_deref(), post.date.as_deref(), config)
        .ok_or("the post has no date (`date_gmt`, `date`)")?;
    let modified = wp_time(
        post.modified_gmt.as_deref(),
        post.modified.as_deref(),
        config,
    );
    let bases = Bases {
        site: link.join("/").unwrap_or_else(|_| link.clone()),
        page: link.clone(),
    };
    let body_html = post
        .content
        .as_ref()
        .map(|c| content::sanitize_html(&c.rendered, &bases))
        .unwrap_or_default();
    let summary = post_summary(post, &body_html);
    let slug = post_slug(post, &title, &id);
    let embedded = post.embedded.as_ref();
    let (image, image_alt) = featured_image(embedded, &bases);
    Ok(Story {
        id: Some(id),
        slug,
        url: link.to_string(),
        title,
        summary,
        body_html,
        body_source: None,
        language: source.remote.language.clone(),
        authors: post_authors(embedded),
        themes: post_themes(source, embedded),
        image,
        image_alt,
        published,
        updated: modified.filter(|m| *m > published),
        featured: post.sticky,
        origin: origin.to_owned(),
        stamp,
    })
}

/// The excerpt without its read-more marker, or else the body's text;
/// cut at a word to [`SUMMARY_CHARS`].
fn post_summary(post: &Post, body_html: &str) -> String {
    let summary = post
        .excerpt
        .as_ref()
        .map(|e| excerpt_text(&e.rendered))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| content::html_to_text(body_html));
    content::truncate_words(&summary, SUMMARY_CHARS)
}

/// The post's slug, decoded, or else one made from its title.
fn post_slug(post: &Post, title: &str, id: &StoryId) -> String {
    post.slug
        .as_deref()
        .map(|s| {
            let decoded = percent_decode(s);
            super::title_slug(&decoded, "")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| super::title_slug(title, id.as_str()))
}

/// The names of the post's authors, each on one line.
fn post_authors(embedded: Option<&Embedded>) -> Vec<String> {
    embedded
        .map(|e| {
            e.author
                .iter()
                .filter_map(|a| a.get("name")?.as_str())
                .map(content::clean_line)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The featured image's absolute URL, and its alt text when there is an
/// image.
fn featured_image(embedded: Option<&Embedded>, bases: &Bases) -> (Option<String>, Option<String>) {
    let media = embedded.and_then(|e| e.featured.first());
    let image = media
        .and_then(|m| m.get("source_url")?.as_str())
        .and_then(|u| bases.resolve(u))
        .map(String::from);
    let image_alt = media
        .and_then(|m| m.get("alt_text")?.as_str())
        .map(content::clean_line)
        .filter(|a| !a.is_empty() && image.is_some());
    (image, image_alt)
}

/// The themes the source maps the post's categories and tags to (each
/// term by its decoded slug and by its name).
fn post_themes(source: &WordPressSource, embedded: Option<&Embedded>) -> Vec<ThemeSlug> {
    let mut categories = Vec::new();
    let mut tags = Vec::new();
    for term in embedded.iter().flat_map(|e| e.terms.iter().flatten()) {
        let list = match term.get("taxonomy").and_then(|t| t.as_str()) {
            Some("category") => &mut categories,
            Some("post_tag") => &mut tags,
            _ => continue,
        };
        for field in ["slug", "name"] {
            if let Some(v) = term.get(field).and_then(|v| v.as_str()) {
                list.push(if field == "slug" {
                    percent_decode(v)
                } else {
                    content::html_to_text(v)
                });
            }
        }
    }
    source.remote.themes_for(
        categories.iter().map(String::as_str),
        tags.iter().map(String::as_str),
    )
}

/// An excerpt's text without WordPress's "[…]" read-more marker.
fn excerpt_text(html: &str) -> String {
    let text = content::html_to_text(html);
    let text = text.trim_end();
    match text
        .strip_suffix("[…]")
        .or_else(|| text.strip_suffix("[...]"))
    {
        Some(rest) => format!("{}…", rest.trim_end()),
        None => text.to_owned(),
    }
}

/// WordPress stores slugs with non-ASCII letters percent-encoded.
fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// For `tidings check`: one post's worth of the API, and the total.
pub async fn probe(client: &Client, source: &WordPressSource) -> Result<String, Problem> {
    let mut url = endpoint(&source.base_url);
    url.query_pairs_mut()
        .append_pair("per_page", "1")
        .append_pair("_fields", "id");
    let answer = client
        .get(&Get::new(&url, ACCEPT, &source.remote))
        .await
        .map_err(|e| problem(&url, format!("cannot be reached: {e}")))?;
    let body = match answer {
        Answer::Body(b) => b,
        Answer::Gone => return Err(problem(&url, "410 Gone: the API was removed upstream")),
        Answer::NotModified => return Err(problem(&url, "answered 304 to a plain request")),
    };
    parse_page(&body.bytes, body.content_type()).map_err(|e| problem(&url, e))?;
    let total = body.header("x-wp-total").unwrap_or("?").trim().to_owned();
    let mut says = format!("reachable, {total} published posts");
    if let Some(moved) = &body.moved_to {
        says.push_str(&format!(
            " (moved permanently to {})",
            base_from_endpoint(moved)
        ));
    }
    Ok(says)
}
