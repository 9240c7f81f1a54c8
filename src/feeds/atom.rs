//! Atom 1.0 (RFC 4287) with `atom_syndication`: RFC 3339 dates in the
//! site's time zone, a `self` link, a `hub` link per WebSub hub, `tag:` ids that survive edits, escaped
//! HTML content, categories with labels and the image as an enclosure.

use atom_syndication::{
    Category, Content, Entry, Feed as AtomFeed, FixedDateTime, Generator, Link, Person, Text,
};
use chrono::{DateTime, Utc};

use super::prepare::{Feed, Format, theme_url};
use crate::config::Config;
use crate::store::StoredStory;

/// `stories` are the feed's, loaded.
pub fn render(config: &Config, feed: &Feed, stories: &[&StoredStory]) -> Vec<u8> {
    let lang = config.site.language.as_str();
    let authors = if config.site.author.is_empty() {
        vec![person(&config.site.title)]
    } else {
        vec![person(&config.site.author)]
    };
    let mut links = vec![
        Link {
            href: feed.url(config, Format::Atom).to_string(),
            rel: "self".into(),
            mime_type: Some(Format::Atom.media_type().into()),
            ..Link::default()
        },
        Link {
            href: feed.home_url.to_string(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Link::default()
        },
    ];
    // WebSub: the hubs that push this feed.
    for hub in config.hub_urls() {
        links.push(Link {
            href: hub.to_string(),
            rel: "hub".into(),
            ..Link::default()
        });
    }
    for other in [Format::Rss, Format::Json] {
        links.push(Link {
            href: feed.url(config, other).to_string(),
            rel: "alternate".into(),
            mime_type: Some(other.media_type().into()),
            ..Link::default()
        });
    }
    let atom = AtomFeed {
        title: Text::plain(feed.title.clone()),
        // The feed's own URL: stable for as long as the feed exists.
        id: feed.url(config, Format::Atom).to_string(),
        updated: fixed(config, feed.updated),
        authors,
        generator: Some(Generator {
            value: "tidings".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        links,
        subtitle: Some(Text::plain(feed.description.clone())),
        entries: stories.iter().map(|s| entry(config, s)).collect(),
        lang: Some(lang.to_owned()),
        ..AtomFeed::default()
    };
    let mut out = Vec::with_capacity(4096 + stories.len() * 2048);
    atom.write_with_config(
        &mut out,
        atom_syndication::WriteConfig {
            write_document_declaration: true,
            indent_size: Some(2),
        },
    )
    .expect("writing XML to memory cannot fail");
    out.push(b'\n');
    out
}

fn person(name: &str) -> Person {
    Person {
        name: name.to_owned(),
        ..Person::default()
    }
}

fn fixed(config: &Config, t: DateTime<Utc>) -> FixedDateTime {
    t.with_timezone(&config.site.timezone).fixed_offset()
}

fn entry(config: &Config, stored: &StoredStory) -> Entry {
    let s = &stored.story;
    let lang = config.site.language.as_str();
    let mut links = vec![Link {
        href: s.url.clone(),
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        hreflang: s.language.as_ref().map(|l| l.to_string()),
        ..Link::default()
    }];
    if let Some(image) = &s.image {
        links.push(Link {
            href: image.clone(),
            rel: "enclosure".into(),
            mime_type: super::image_type(image).map(str::to_owned),
            title: Some(super::image_alt(s).to_owned()),
            ..Link::default()
        });
    }
    let categories = s
        .themes
        .iter()
        .filter_map(|slug| config.theme(slug))
        .map(|t| Category {
            term: t.slug.to_string(),
            scheme: Some(theme_url(config, t).to_string()),
            label: Some(t.title.get(lang).to_owned()),
        })
        .collect();
    Entry {
        title: Text::plain(s.title.clone()),
        id: stored.guid.clone(),
        updated: fixed(config, stored.updated()),
        published: Some(fixed(config, s.published)),
        authors: s.authors.iter().map(|a| person(a)).collect(),
        categories,
        links,
        summary: Some(Text::plain(s.summary.clone())),
        content: config.feeds.full_content.then(|| Content {
            value: Some(super::full_html(s)),
            content_type: Some("html".into()),
            lang: s.language.as_ref().map(|l| l.to_string()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}
