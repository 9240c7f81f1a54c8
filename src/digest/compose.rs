//! What one subscriber gets from an edition: the edition's stories under
//! the subscriber's themes, in the order they chose them; a story in
//! several chosen themes appears once, under the first; at most
//! `max_stories_per_theme` per theme, newest first.

use std::collections::HashSet;

use crate::config::{Config, Digest};
use crate::digest::render::Section;
use crate::store::StoredStory;
use crate::story::ThemeSlug;

/// `stories` must be newest first (as the store returns them). Themes no
/// longer configured are passed over; empty sections are left out.
pub fn sections<'a>(
    config: &'a Config,
    digest: &Digest,
    themes: &[ThemeSlug],
    stories: &'a [StoredStory],
) -> Vec<Section<'a>> {
    let mut shown: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for slug in themes {
        let Some(theme) = config.theme(slug) else {
            continue;
        };
        let picked: Vec<&StoredStory> = stories
            .iter()
            .filter(|s| s.story.themes.contains(slug) && !shown.contains(s.id.as_str()))
            .take(digest.max_stories_per_theme)
            .collect();
        if picked.is_empty() {
            continue;
        }
        shown.extend(picked.iter().map(|s| s.id.as_str()));
        out.push(Section {
            theme,
            stories: picked,
        });
    }
    out
}
