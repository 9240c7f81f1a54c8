//! What one subscriber gets from an edition: the edition's stories under
//! the subscriber's themes, in the order they chose them; a story in
//! several chosen themes appears once, under the first; at most
//! `max_stories_per_theme` per theme, newest first (the email then says how
//! many more the theme has). A chosen theme with
//! nothing new keeps its (empty) section, so the email can still name it
//! among the reader's themes.

use std::collections::HashSet;

use crate::config::{Config, Digest};
use crate::digest::render::Section;
use crate::model::ThemeSlug;
use crate::store::StoredStory;

/// `stories` must be newest first (as the store returns them). Themes no
/// longer configured are passed over.
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
        let mut new = stories
            .iter()
            .filter(|s| s.story.themes.contains(slug) && !shown.contains(s.id.as_str()));
        let picked: Vec<&StoredStory> = new.by_ref().take(digest.max_stories_per_theme).collect();
        let more = new.count();
        shown.extend(picked.iter().map(|s| s.id.as_str()));
        out.push(Section {
            theme,
            stories: picked,
            more,
        });
    }
    out
}

/// How many stories the sections hold in all.
pub fn story_count(sections: &[Section<'_>]) -> usize {
    sections.iter().map(|s| s.stories.len()).sum()
}
