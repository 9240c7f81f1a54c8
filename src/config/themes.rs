//! `[[themes]]`: what stories are about, each with a feed of its own and a
//! title in the site's language.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::Localized;
use super::spans::{Checks, Context};
use crate::model::ThemeSlug;
use crate::model::problem::line_column;

/// One `[[themes]]` table.
#[derive(Debug, Clone)]
pub struct Theme {
    pub slug: ThemeSlug,
    pub title: Localized,
    /// Default empty.
    pub description: Localized,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawTheme {
    slug: String,
    title: Localized,
    #[serde(default)]
    description: Localized,
}
pub(super) const THEME_KEYS: &[&str] = &["slug", "title", "description"];

/// The themes whose slug is valid and unique, in config order. Each needs
/// a title in `language`, the site's (when `[site]` could be read).
pub(super) fn validate(
    cx: &mut Context,
    raw: Vec<(usize, RawTheme, Spanned<DeValue<'_>>)>,
    language: Option<&str>,
) -> Vec<Theme> {
    let mut themes = Vec::new();
    // Each slug seen, with the line it is on.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw, value) in raw {
        let key = format!("themes[{i}]");
        let mut t = Checks::new(cx, &key, &value);
        let Some(slug) = unique_slug(&mut t, &raw.slug, &mut seen) else {
            continue;
        };
        if let Some(lang) = language
            && !raw.title.has(lang)
        {
            t.fail(
                "title",
                format!("missing a title in `{lang}`, the site's language ([site] language)"),
            );
        }
        themes.push(Theme {
            slug,
            title: raw.title,
            description: raw.description,
        });
    }
    themes
}

/// The theme's slug, when valid and not one of `seen` (to which it is
/// added with its line).
fn unique_slug(t: &mut Checks, slug: &str, seen: &mut HashMap<String, usize>) -> Option<ThemeSlug> {
    let slug = t.check("slug", ThemeSlug::parse(slug))?;
    if let Some(first) = seen.get(slug.as_str()) {
        t.fail(
            "slug",
            format!(
                "duplicate theme slug `{slug}`, already used on line {first}; \
                 each theme needs its own slug"
            ),
        );
        return None;
    }
    let line = t
        .span("slug")
        .map_or(0, |s| line_column(t.cx.text, s.start).0);
    seen.insert(slug.as_str().to_owned(), line);
    Some(slug)
}
