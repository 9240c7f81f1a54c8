//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>), written from typed
//! structs so the key order, and so the bytes, never change between builds.

use serde::Serialize;

use super::prepare::{Feed, Format};
use crate::config::Config;
use crate::store::StoredStory;

const VERSION: &str = "https://jsonfeed.org/version/1.1";

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    /// WebSub hubs that push this feed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
}

/// `stories` are the feed's, loaded.
pub fn render(config: &Config, feed: &Feed, stories: &[&StoredStory]) -> Vec<u8> {
    let authors = if config.site.author.is_empty() {
        Vec::new()
    } else {
        vec![Author {
            name: &config.site.author,
        }]
    };
    let json = JsonFeed {
        version: VERSION,
        title: &feed.title,
        home_page_url: feed.home_url.to_string(),
        feed_url: feed.url(config, Format::Json).to_string(),
        description: &feed.description,
        language: config.site.language.as_str(),
        authors,
        hubs: config
            .hub_urls()
            .into_iter()
            .map(|url| Hub {
                kind: "WebSub",
                url: url.to_string(),
            })
            .collect(),
        items: stories.iter().map(|s| item(config, s)).collect(),
    };
    let mut out = serde_json::to_vec_pretty(&json).expect("a feed always serializes");
    out.push(b'\n');
    out
}

fn item<'a>(config: &'a Config, stored: &'a StoredStory) -> JsonItem<'a> {
    let s = &stored.story;
    let lang = config.site.language.as_str();
    let tz = config.site.timezone;
    let full = config.feeds.full_content;
    JsonItem {
        id: &stored.guid,
        url: &s.url,
        title: &s.title,
        content_html: full.then(|| super::full_html(s)),
        // JSON Feed requires content_html or content_text.
        content_text: (!full).then_some(s.summary.as_str()),
        summary: &s.summary,
        image: s.image.as_deref(),
        date_published: s.published.with_timezone(&tz).to_rfc3339(),
        date_modified: stored.updated().with_timezone(&tz).to_rfc3339(),
        authors: s.authors.iter().map(|a| Author { name: a }).collect(),
        tags: s
            .themes
            .iter()
            .filter_map(|slug| config.theme(slug))
            .map(|t| t.title.get(lang))
            .collect(),
        language: s.language.as_ref().map(|l| l.as_str()),
    }
}
