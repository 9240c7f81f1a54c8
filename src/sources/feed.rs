//! The `feed` source: an upstream RSS, Atom or JSON Feed, read with
//! feed-rs.
//!
//! A feed lists only its latest entries, so an entry that drops out of it
//! is kept here, never withdrawn. Requests are conditional (`If-None-Match`,
//! `If-Modified-Since`): a `304` costs nothing. A permanent redirect is
//! followed and remembered; `410 Gone` stops the polling.

use url::Url;

use super::http::{Answer, Body, Client, Get};
use super::{Context, ItemRef, Scan, gone, hashed_id, problem, title_slug};
use crate::config::FeedSource;
use crate::model::problem::Problem;
use crate::model::{Language, Story};
use crate::sources::content::{self, Bases};

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

/// Longest summary, in characters.
const SUMMARY_CHARS: usize = 300;

pub async fn scan(cx: Context<'_>, source: &FeedSource) -> Result<Scan, Problem> {
    let key = format!("feed:{}", source.url);
    if let Some(scan) = gone(&cx, &key) {
        return Ok(scan);
    }
    let mut state = cx.state.clone();
    let url = state
        .moved_to
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .unwrap_or_else(|| source.url.clone());
    let answer = cx
        .client
        .get(&Get {
            etag: state.etag.as_deref(),
            last_modified: state.last_modified.as_deref(),
            ..Get::new(&url, ACCEPT, &source.remote)
        })
        .await
        .map_err(|e| problem(&url, format!("cannot read the feed: {e}")))?;
    let body = match answer {
        Answer::NotModified => {
            tracing::debug!(source = %key, "304 Not Modified");
            return Ok(Scan {
                partial: true,
                ..Scan::default()
            });
        }
        Answer::Gone => {
            tracing::warn!(source = %key, url = %url, "410 Gone: the feed was removed upstream; the source is no longer polled (change its url or remove it from config.toml)");
            state.gone_at = Some(cx.now);
            let p = problem(
                &url,
                "410 Gone: the feed was removed upstream; not polled again until its url changes",
            );
            return Ok(Scan {
                partial: true,
                state: Some(state),
                failed: vec![(p, ItemRef::default())],
                ..Scan::default()
            });
        }
        Answer::Body(body) => body,
    };
    if let Some(moved) = &body.moved_to {
        tracing::warn!(source = %key, to = %moved, "the feed moved permanently; following it from now on");
        state.moved_to = Some(moved.to_string());
    }
    let feed = parse(&body).map_err(|e| problem(&body.url, e))?;
    if feed.entries.is_empty() {
        return Err(problem(
            &body.url,
            "the feed has no entries; nothing read, nothing withdrawn",
        ));
    }
    let feed_language = feed
        .language
        .as_deref()
        .and_then(|l| Language::parse(&l.to_lowercase()).ok());
    let mut scan = Scan {
        partial: true,
        ..Scan::default()
    };
    for entry in &feed.entries {
        let id = hashed_id("feed", &entry.id);
        let origin = format!("{}#{}", source.url, entry.id);
        match story(source, &body.url, entry, feed_language.as_ref()) {
            Ok(mut s) => {
                s.id = Some(id);
                s.origin = origin;
                scan.stories.push(s);
            }
            Err(message) => scan.failed.push((
                Problem::new(origin.as_str(), message),
                ItemRef {
                    id: Some(id),
                    slug: None,
                    origin,
                },
            )),
        }
    }
    // Validators are kept only once the body was read whole and parsed:
    // a 304 must never hide entries that were not stored.
    state.etag = body.header("etag").map(str::to_owned);
    state.last_modified = body.header("last-modified").map(str::to_owned);
    scan.state = (state != cx.state).then_some(state);
    Ok(scan)
}

/// Parses the body as a feed, saying plainly when it is something else.
pub(crate) fn parse(body: &Body) -> Result<feed_rs::model::Feed, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(body.url.as_str()))
        // An entry without an id is known by its link, else its title,
        // so that it keeps its id across fetches.
        .id_generator(|links, title, _| {
            links
                .first()
                .map(|l| l.href.clone())
                .or_else(|| title.as_ref().map(|t| t.content.clone()))
                .unwrap_or_default()
        })
        .build();
    parser.parse(body.bytes.as_slice()).map_err(|e| {
        let ct = body.content_type();
        let start =
            String::from_utf8_lossy(&body.bytes[..body.bytes.len().min(512)]).to_lowercase();
        if ct.starts_with("text/html")
            || start.contains("<html")
            || start.contains("<!doctype html")
        {
            format!(
                "answered an HTML page ({}) where a feed was expected",
                if ct.is_empty() { "no content type" } else { ct }
            )
        } else {
            format!("not a feed that can be read (RSS, Atom or JSON Feed): {e}")
        }
    })
}

fn is_html(t: &feed_rs::model::Text) -> bool {
    let ct = t.content_type.to_string();
    ct.contains("html")
}

/// The entry's page: its alternate link (or its only one), resolved
/// against the feed; else its id when that is a URL.
fn entry_link(entry: &feed_rs::model::Entry, feed_url: &Url) -> Option<Url> {
    let base = entry
        .base
        .as_deref()
        .and_then(|b| feed_url.join(b).ok())
        .unwrap_or_else(|| feed_url.clone());
    entry
        .links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .chain(entry.links.iter())
        .filter_map(|l| base.join(l.href.trim()).ok())
        .chain(Url::parse(&entry.id).ok())
        .find(|u| matches!(u.scheme(), "http" | "https"))
}

pub(crate) fn story(
    source: &FeedSource,
    feed_url: &Url,
    entry: &feed_rs::model::Entry,
    feed_language: Option<&Language>,
) -> Result<Story, String> {
    let link = entry_link(entry, feed_url).ok_or("the entry has no link that is an http(s) URL")?;
    let text = |t: &feed_rs::model::Text| {
        if is_html(t) {
            content::html_to_text(&t.content)
        } else {
            content::clean_line(&t.content)
        }
    };
    let title = entry
        .title
        .as_ref()
        .map(text)
        .filter(|t| !t.is_empty())
        .ok_or("the entry has no title")?;
    let published = entry
        .published
        .or(entry.updated)
        .ok_or("the entry has no date (published or updated)")?;
    let bases = Bases {
        site: link.join("/").unwrap_or_else(|_| link.clone()),
        page: link.clone(),
    };
    let body_html = match (&entry.content, &entry.summary) {
        (Some(c), _) if c.body.as_deref().is_some_and(|b| !b.trim().is_empty()) => {
            let body = c.body.as_deref().unwrap_or_default();
            if c.content_type.to_string().contains("html") {
                content::sanitize_html(body, &bases)
            } else {
                content::sanitize_html(&html_paragraphs(body), &bases)
            }
        }
        (_, Some(s)) if is_html(s) => content::sanitize_html(&s.content, &bases),
        (_, Some(s)) => content::sanitize_html(&html_paragraphs(&s.content), &bases),
        _ => String::new(),
    };
    let summary = entry
        .summary
        .as_ref()
        .map(text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| content::html_to_text(&body_html));
    let categories: Vec<String> = entry
        .categories
        .iter()
        .flat_map(|c| std::iter::once(c.term.clone()).chain(c.label.clone()))
        .collect();
    let image = entry
        .media
        .iter()
        .flat_map(|m| {
            m.content
                .iter()
                .filter(|c| {
                    c.content_type
                        .as_ref()
                        .is_none_or(|t| t.to_string().starts_with("image/"))
                })
                .filter_map(|c| c.url.as_ref().map(|u| u.to_string()))
                .chain(m.thumbnails.iter().map(|t| t.image.uri.clone()))
        })
        .find_map(|u| bases.resolve(&u))
        .map(String::from);
    Ok(Story {
        id: None,
        slug: title_slug(&title, "entry"),
        url: link.to_string(),
        summary: content::truncate_words(&summary, SUMMARY_CHARS),
        title,
        body_html,
        body_source: None,
        language: entry
            .language
            .as_deref()
            .and_then(|l| Language::parse(&l.to_lowercase()).ok())
            .or_else(|| source.remote.language.clone())
            .or_else(|| feed_language.cloned()),
        authors: entry
            .authors
            .iter()
            .map(|a| content::clean_line(&a.name))
            .filter(|n| !n.is_empty())
            .collect(),
        themes: source
            .remote
            .themes_for(categories.iter().map(String::as_str), std::iter::empty()),
        image,
        image_alt: None,
        published,
        updated: entry.updated.filter(|u| *u > published),
        featured: false,
        origin: String::new(),
        stamp: None,
    })
}

/// Plain text as HTML paragraphs (escaped), one per blank-line block.
fn html_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let escaped = p
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!("<p>{escaped}</p>")
        })
        .collect()
}

/// For `tidings check`: fetches and parses the feed.
pub async fn probe(client: &Client, source: &FeedSource) -> Result<String, Problem> {
    let url = &source.url;
    let answer = client
        .get(&Get::new(url, ACCEPT, &source.remote))
        .await
        .map_err(|e| problem(url, format!("cannot be reached: {e}")))?;
    let body = match answer {
        Answer::Body(b) => b,
        Answer::Gone => return Err(problem(url, "410 Gone: the feed was removed upstream")),
        Answer::NotModified => return Err(problem(url, "answered 304 to a plain request")),
    };
    let feed = parse(&body).map_err(|e| problem(&body.url, e))?;
    let kind = match feed.feed_type {
        feed_rs::model::FeedType::Atom => "Atom",
        feed_rs::model::FeedType::JSON => "JSON Feed",
        _ => "RSS",
    };
    let mut says = format!("reachable, {kind} with {} entries", feed.entries.len());
    if let Some(moved) = &body.moved_to {
        says.push_str(&format!(" (moved permanently to {moved})"));
    }
    Ok(says)
}
