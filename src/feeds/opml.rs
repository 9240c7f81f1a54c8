//! `feeds.opml`: every feed of the site in one OPML 2.0 file, so a feed
//! reader can import them all at once.
//!
//! Each feed is listed once, as RSS, the format every reader takes; listing
//! the Atom and JSON copies too would make a reader subscribe three times to
//! the same stories. The site's feed comes first, then one per theme.

use opml::{Body, Head, OPML, Outline};

use super::prepare::{Feed, Format};
use crate::config::Config;

pub fn render(config: &Config, feeds: &[Feed]) -> Vec<u8> {
    let outline = |feed: &Feed| Outline {
        text: feed.title.clone(),
        title: Some(feed.title.clone()),
        r#type: Some("rss".into()),
        xml_url: Some(feed.url(config, Format::Rss).to_string()),
        html_url: Some(feed.home_url.to_string()),
        description: Some(feed.description.clone()),
        language: Some(config.site.language.to_string()),
        ..Outline::default()
    };
    let updated = feeds
        .iter()
        .map(|f| f.updated)
        .max()
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        .with_timezone(&config.site.timezone)
        .to_rfc2822();
    let doc = OPML {
        version: "2.0".into(),
        head: Some(Head {
            title: Some(config.site.title.clone()),
            date_modified: Some(updated),
            owner_name: (!config.site.author.is_empty()).then(|| config.site.author.clone()),
            ..Head::default()
        }),
        body: Body {
            outlines: feeds.iter().map(outline).collect(),
        },
    };
    let xml = doc.to_string().expect("an OPML document always serializes");
    let mut out = Vec::with_capacity(xml.len() + 64);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.extend_from_slice(xml.as_bytes());
    out.push(b'\n');
    out
}
