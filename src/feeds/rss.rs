//! RSS 2.0 with the `rss` crate: RFC 822 dates, `atom:link rel="self"`
//! (and `rel="hub"` for each WebSub hub),
//! guids that are not permalinks (`tag:` URIs), `content:encoded` for the
//! full body, `dc:creator` for authors and `media:content` for the image.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Guid, Item};

use super::prepare::{Feed, Format, theme_url};
use crate::config::Config;
use crate::store::StoredStory;

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// `stories` are the feed's, loaded.
pub fn render(config: &Config, feed: &Feed, stories: &[&StoredStory]) -> Vec<u8> {
    let tz = config.site.timezone;
    let mut namespaces = BTreeMap::new();
    namespaces.insert(
        "atom".to_owned(),
        rss::extension::atom::NAMESPACE.to_owned(),
    );
    namespaces.insert(
        "dc".to_owned(),
        rss::extension::dublincore::NAMESPACE.to_owned(),
    );
    namespaces.insert(
        "content".to_owned(),
        "http://purl.org/rss/1.0/modules/content/".to_owned(),
    );
    namespaces.insert("media".to_owned(), MEDIA_NS.to_owned());
    let channel = Channel {
        title: feed.title.clone(),
        link: feed.home_url.to_string(),
        description: feed.description.clone(),
        language: Some(config.site.language.to_string()),
        last_build_date: Some(feed.updated.with_timezone(&tz).to_rfc2822()),
        generator: Some(super::GENERATOR.to_owned()),
        docs: Some("https://www.rssboard.org/rss-specification".to_owned()),
        atom_ext: Some(AtomExtension {
            links: std::iter::once(Link {
                href: feed.url(config, Format::Rss).to_string(),
                rel: "self".to_owned(),
                mime_type: Some(Format::Rss.media_type().to_owned()),
                ..Link::default()
            })
            // WebSub: the hubs that push this feed (`<atom:link rel="hub">`).
            .chain(config.hub_urls().into_iter().map(|hub| Link {
                href: hub.to_string(),
                rel: "hub".to_owned(),
                ..Link::default()
            }))
            .collect(),
        }),
        items: stories.iter().map(|s| item(config, s)).collect(),
        namespaces,
        ..Channel::default()
    };
    let mut out = Vec::with_capacity(4096 + stories.len() * 2048);
    channel
        .pretty_write_to(&mut out, b' ', 2)
        .expect("writing XML to memory cannot fail");
    out.push(b'\n');
    out
}

fn item(config: &Config, stored: &StoredStory) -> Item {
    let s = &stored.story;
    let lang = config.site.language.as_str();
    let categories = s
        .themes
        .iter()
        .filter_map(|slug| config.theme(slug))
        .map(|t| Category {
            name: t.title.get(lang).to_owned(),
            domain: Some(theme_url(config, t).to_string()),
        })
        .collect();
    let creators = if s.authors.is_empty() {
        vec![config.site.author.clone()]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect()
    } else {
        s.authors.clone()
    };
    let mut extensions = ExtensionMap::default();
    if let Some(image) = &s.image {
        let mut attrs = BTreeMap::new();
        attrs.insert("url".to_owned(), image.clone());
        attrs.insert("medium".to_owned(), "image".to_owned());
        if let Some(t) = super::image_type(image) {
            attrs.insert("type".to_owned(), t.to_owned());
        }
        let mut children = BTreeMap::new();
        children.insert(
            "media:description".to_owned(),
            vec![Extension {
                name: "media:description".to_owned(),
                value: Some(super::image_alt(s).to_owned()),
                ..Extension::default()
            }],
        );
        let content = Extension {
            name: "media:content".to_owned(),
            value: None,
            attrs,
            children,
        };
        extensions
            .entry("media".to_owned())
            .or_default()
            .insert("content".to_owned(), vec![content]);
    }
    Item {
        title: Some(s.title.clone()),
        link: Some(s.url.clone()),
        // Readers take an item's description as HTML; the summary is text.
        description: Some(super::escape_html(&s.summary)),
        guid: Some(Guid {
            value: stored.guid.clone(),
            permalink: false,
        }),
        pub_date: Some(
            s.published
                .with_timezone(&config.site.timezone)
                .to_rfc2822(),
        ),
        categories,
        content: config.feeds.full_content.then(|| super::full_html(s)),
        dublin_core_ext: (!creators.is_empty()).then(|| DublinCoreExtension {
            creators,
            ..DublinCoreExtension::default()
        }),
        extensions,
        ..Item::default()
    }
}
