//! What every template check shares: a tera error made into a
//! [`Problem`] that names the file, line and column, and the sample data
//! templates are rendered with before anything goes live (see
//! [`crate::preflight`]).

use chrono::{Duration, Utc};

use crate::config::Config;
use crate::model::problem::Problem;
use crate::model::{Story, StoryId};
use crate::store::StoredStory;

/// The problem `error` reports: where a tera syntax or rendering error
/// points (`origin` maps a template's name to the file shown), or else
/// the whole message under `fallback`.
pub fn problem(error: &anyhow::Error, fallback: &str, origin: &dyn Fn(&str) -> String) -> Problem {
    let report = error
        .chain()
        .find_map(|e| e.downcast_ref::<tera::Error>())
        .and_then(|e| match e.kind() {
            tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => Some(r),
            _ => None,
        });
    match report {
        Some(r) => {
            let span = r.span();
            let mut p = Problem::new(origin(r.filename()), r.message().to_owned());
            p.line = Some(span.start_line);
            p.column = Some(span.start_col + 1);
            p
        }
        None => Problem::new(fallback, format!("{error:#}")),
    }
}

/// The address sample emails are made for.
pub const SAMPLE_RECIPIENT: &str = "reader@example.org";

/// Sample stories: one per theme (the first theme's with an image), newest
/// first, each with every field a template may show.
pub fn sample_stories(config: &Config) -> Vec<StoredStory> {
    let now = Utc::now();
    config
        .themes
        .iter()
        .enumerate()
        .map(|(i, theme)| {
            let published = now - Duration::days(i as i64 + 1);
            let slug = format!("sample-{}", theme.slug);
            let url = config
                .site
                .base_url
                .join(&format!("stories/{slug}/"))
                .map_or_else(|_| config.site.base_url.to_string(), |u| u.to_string());
            StoredStory {
                id: StoryId::parse(&slug).expect("a sample id is valid"),
                guid: url.clone(),
                story: Story {
                    id: None,
                    slug,
                    url,
                    title: format!("A sample story about {}", theme.slug),
                    summary: "What a story's summary says, in a sentence or two.".into(),
                    body_html: "<p>The body of a sample story.</p>".into(),
                    language: None,
                    authors: vec!["Sample Author".into()],
                    themes: vec![theme.slug.clone()],
                    image: (i == 0).then(|| format!("{}sample.jpg", config.site.base_url)),
                    image_alt: (i == 0).then(|| "A sample picture".to_owned()),
                    published,
                    updated: None,
                    origin: "sample".into(),
                    stamp: None,
                },
                first_seen: published,
                changed: None,
            }
        })
        .collect()
}
