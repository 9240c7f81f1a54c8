//! The one tera setup: every template tidings ships ([`BUILT_IN`]), the
//! rule that a site's own copy in `templates/` next to config.toml
//! replaces the built-in one ([`Templates::load`]), the `wrap` filter every
//! template may use, tera errors made into a [`Problem`] that names the
//! file, line and column, and the sample data templates are rendered with
//! before anything goes live (see [`crate::preflight`]).
//!
//! A template is known by its name under `templates/` (`digest.html`,
//! `web/base.html`), so that `extends` and `include` find a site's copy as
//! well as the built-in one; its name ends in `.html` or `.txt` like the
//! file, which turns tera's escaping on for HTML and off for text.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use chrono::{Duration, Utc};

use crate::config::Config;
use crate::model::problem::Problem;
use crate::model::{Story, StoryId};
use crate::store::StoredStory;

macro_rules! built_in {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template tidings ships, by its name under `templates/`; a layout
/// before the pages that extend it, a partial before those that include it.
pub const BUILT_IN: &[(&str, &str)] = built_in![
    "index.html",
    "digest.html",
    "digest.txt",
    "confirm.html",
    "confirm.txt",
    "leave.html",
    "leave.txt",
    "web/base.html",
    "web/choices.html",
    "web/errors.html",
    "web/signup_form.html",
    "web/stories.html",
    "web/signup_box.html",
    "web/index.html",
    "web/theme.html",
    "web/signup.html",
    "web/check_inbox.html",
    "web/message.html",
    "web/confirm.html",
    "web/preferences.html",
    "web/unsubscribe.html",
    "web/leave.html",
    "web/archive.html",
    "web/edition.html",
];

/// The templates `tidings init` copies into a new site for editing (the
/// pages' own are copied one by one when wanted).
pub const EDITABLE: &[&str] = &[
    "index.html",
    "digest.html",
    "digest.txt",
    "confirm.html",
    "confirm.txt",
    "leave.html",
    "leave.txt",
];

/// The built-in text of `name`.
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Where a site keeps its own copy of `name`.
pub fn site_path(config: &Config, name: &str) -> PathBuf {
    config.root.join("templates").join(name)
}

/// The file the template `name` comes from for this site, as messages
/// show it: the site's own copy, else the built-in one.
pub fn origin(config: &Config, name: &str) -> String {
    let path = site_path(config, name);
    if path.exists() {
        path.display().to_string()
    } else {
        format!("templates/{name} (built in)")
    }
}

/// The longest line the `wrap` filter makes by default: short enough for
/// any mail client, with room for a quoting `> `.
pub const TEXT_WIDTH: usize = 78;

/// Some templates, parsed.
pub struct Templates {
    tera: tera::Tera,
    /// Each template's name and the file it came from, for messages.
    origins: Vec<(String, String)>,
}

impl Templates {
    /// `names`, each from the site's own copy when it has one, else built
    /// in. An error names the file that does not parse.
    pub fn load(config: &Config, names: &[&str]) -> Result<Templates> {
        let (templates, mut errors) = Templates::parse(config, names);
        match errors.is_empty() {
            true => Ok(templates),
            false => Err(errors.remove(0)),
        }
    }

    /// Like [`Templates::load`], with every template that does not parse
    /// as an error of its own (for `check`).
    pub fn parse(config: &Config, names: &[&str]) -> (Templates, Vec<anyhow::Error>) {
        let mut tera = tera::Tera::new();
        tera.register_filter(
            "wrap",
            |text: &str, kwargs: tera::Kwargs, _: &tera::State| -> tera::TeraResult<String> {
                let width = kwargs.get::<usize>("width")?.unwrap_or(TEXT_WIDTH);
                Ok(match MARK_WRAPS.get() {
                    true => format!("{WRAP_OPEN}{width}{WRAP_WIDTH}{text}{WRAP_CLOSE}"),
                    false => wrap(text, width),
                })
            },
        );
        let mut origins = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for name in names {
            let path = site_path(config, name);
            let source = if path.exists() {
                fs_err::read_to_string(&path).map_err(anyhow::Error::new)
            } else {
                built_in(name)
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("no template {name}"))
            };
            let source = match source {
                Ok(text) => text,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let origin = origin(config, name);
            if let Err(e) = tera.add_raw_template(name, &source) {
                errors.push(
                    anyhow::Error::new(e).context(format!("the template {origin} does not parse")),
                );
            }
            origins.push(((*name).to_owned(), origin));
        }
        (Templates { tera, origins }, errors)
    }

    /// Renders the template `name`.
    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String> {
        self.tera
            .render(name, context)
            .map_err(anyhow::Error::new)
            .with_context(|| format!("cannot render {}", self.origin(name)))
    }

    /// Renders `text` as a one-off template (a subject line from the
    /// config), escaped as HTML when `html`.
    pub fn render_str(&self, text: &str, context: &tera::Context, html: bool) -> Result<String> {
        self.tera
            .render_str(text, context, html)
            .map_err(anyhow::Error::new)
    }

    /// The file the template `name` came from.
    pub fn origin(&self, name: &str) -> String {
        self.origins
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| name.to_owned(), |(_, o)| o.clone())
    }

    /// The problem `error` (of these templates) reports, at the file, line
    /// and column it points to.
    pub fn problem(&self, error: &anyhow::Error, fallback: &str) -> Problem {
        problem(error, fallback, &|name| self.origin(name))
    }
}

thread_local! {
    /// Set while [`marking_wraps`] runs.
    static MARK_WRAPS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the `wrap` filter puts before its width, between the width and
/// its text, and after the text while [`marking_wraps`] runs (characters
/// of Unicode's private use area, which no template or story holds).
pub const WRAP_OPEN: char = '\u{f8f0}';
pub const WRAP_WIDTH: char = '\u{f8f1}';
pub const WRAP_CLOSE: char = '\u{f8f2}';

/// Runs `render` with the `wrap` filter leaving its text as it is, marked
/// as `WRAP_OPEN width WRAP_WIDTH text WRAP_CLOSE`, so that a caller can
/// put other values into the text and wrap it afterwards (the digest's
/// plain-text pieces, see `digest::pieces`).
pub fn marking_wraps<R>(render: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            MARK_WRAPS.set(false);
        }
    }
    MARK_WRAPS.set(true);
    let _reset = Reset;
    render()
}

/// Wraps `text` into lines of at most `width` characters, breaking only
/// between words; a word longer than that (a URL) gets a line of its own
/// and is never cut. Line breaks already in the text are kept.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut used = 0;
        for word in line.split_whitespace() {
            let len = word.chars().count();
            if used > 0 && used + 1 + len > width {
                out.push('\n');
                used = 0;
            } else if used > 0 {
                out.push(' ');
                used += 1;
            }
            out.push_str(word);
            used += len;
        }
    }
    out
}

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
                    body_source: None,
                    language: None,
                    authors: vec!["Sample Author".into()],
                    themes: vec![theme.slug.clone()],
                    image: (i == 0).then(|| format!("{}sample.jpg", config.site.base_url)),
                    image_alt: (i == 0).then(|| "A sample picture".to_owned()),
                    published,
                    updated: None,
                    featured: false,
                    origin: "sample".into(),
                    stamp: None,
                },
                first_seen: published,
                changed: None,
            }
        })
        .collect()
}
