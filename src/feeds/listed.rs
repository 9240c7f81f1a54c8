//! What the last build's feeds listed, kept beside its note: each listed
//! story's place in the lists (when it was published, its id), its themes
//! and its facts. When all that changed since is stories added, a build
//! chooses what each feed lists from these and the new stories alone,
//! without reading the index of every published story.
//!
//! Why that choice is the same: a feed lists the first `items` stories of
//! its own (the site's: all of them), newest first, ties by id. Adding
//! stories only pushes others down, so a feed's new list is the first
//! `items` of its old list and its new stories together, and a story no
//! list showed cannot enter one. Taken from the union of what any list
//! showed and the new stories, in the same order, a feed's first `items`
//! are exactly those: the union's other stories of the feed's theme come
//! after its old list, or the old list held every story of the theme.

use std::collections::HashMap;

use chrono::DateTime;

use super::Feed;
use crate::model::{StoryId, ThemeSlug};
use crate::store::{FeedFacts, Indexed};

/// The setting that keeps what the feeds of the note `note_name` listed.
pub fn setting_name(note_name: &str) -> String {
    format!("{note_name}.listed")
}

/// The first field of the first line.
const MADE_FROM: &str = "@";

/// The stories `feeds` list, with their facts, newest first (ties by id),
/// as made from the stories' `generation`: its first line names the
/// generation, each next line one story (id, published, updated, content
/// hash, themes), fields apart by tabs.
pub fn note(generation: &str, feeds: &[Feed], facts: &HashMap<String, FeedFacts>) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut listed: Vec<(&Indexed, &FeedFacts)> = feeds
        .iter()
        .flat_map(|f| f.stories.iter())
        .filter(|s| seen.insert(s.id.as_str()))
        .filter_map(|s| Some((*s, facts.get(s.id.as_str())?)))
        .collect();
    listed.sort_unstable_by(|a, b| in_order(a.1, &a.0.id, b.1, &b.0.id));
    let mut out = format!("{MADE_FROM}\t{generation}\n");
    for (s, f) in listed {
        let themes: Vec<&str> = s.themes.iter().map(|t| t.as_str()).collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            s.id.as_str(),
            f.published.to_rfc3339(),
            f.updated.to_rfc3339(),
            f.hash,
            themes.join(",")
        ));
    }
    out
}

/// The stories a [`note`] lists, when it was made from `generation`;
/// `None` when it was not, or cannot be read.
pub fn parse(note: &[u8], generation: &str) -> Option<Vec<(Indexed, FeedFacts)>> {
    let mut lines = std::str::from_utf8(note).ok()?.lines();
    let first = lines.next()?;
    if first.split_once('\t') != Some((MADE_FROM, generation)) || generation.is_empty() {
        return None;
    }
    let time = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc());
    lines
        .map(|line| {
            let mut fields = line.split('\t');
            let id = StoryId::parse(fields.next()?).ok()?;
            let published = time(fields.next()?)?;
            let updated = time(fields.next()?)?;
            let hash = fields.next()?.to_owned();
            let themes = fields
                .next()?
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| ThemeSlug::parse(t).ok())
                .collect::<Option<Vec<_>>>()?;
            let facts = FeedFacts {
                hash,
                updated,
                published,
            };
            Some((Indexed { id, themes }, facts))
        })
        .collect()
}

/// The order of the index of published stories: newest first, ties by id.
fn in_order(a: &FeedFacts, a_id: &StoryId, b: &FeedFacts, b_id: &StoryId) -> std::cmp::Ordering {
    b.published.cmp(&a.published).then_with(|| a_id.cmp(b_id))
}

/// The stories the last build listed and those added since, in the order
/// of the index of published stories, with their facts by id; `None` when
/// a story added is among those listed (it was not added, then).
pub fn merged(
    listed: Vec<(Indexed, FeedFacts)>,
    added: Vec<(Indexed, FeedFacts)>,
) -> Option<(Vec<Indexed>, HashMap<String, FeedFacts>)> {
    let known: std::collections::HashSet<&str> =
        listed.iter().map(|(s, _)| s.id.as_str()).collect();
    if added.iter().any(|(s, _)| known.contains(s.id.as_str())) {
        return None;
    }
    let mut all = listed;
    all.extend(added);
    all.sort_unstable_by(|a, b| in_order(&a.1, &a.0.id, &b.1, &b.0.id));
    let mut facts = HashMap::with_capacity(all.len());
    let index = all
        .into_iter()
        .map(|(s, f)| {
            facts.insert(s.id.as_str().to_owned(), f);
            s
        })
        .collect();
    Some((index, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, day: u32, themes: &[&str]) -> (Indexed, FeedFacts) {
        let at = |d: u32| {
            DateTime::parse_from_rfc3339(&format!("2024-01-{d:02}T10:00:00.25+00:00"))
                .unwrap()
                .to_utc()
        };
        let indexed = Indexed {
            id: StoryId::parse(id).unwrap(),
            themes: themes
                .iter()
                .map(|t| ThemeSlug::parse(t).unwrap())
                .collect(),
        };
        let facts = FeedFacts {
            hash: format!("h-{id}"),
            updated: at(day + 1),
            published: at(day),
        };
        (indexed, facts)
    }

    #[test]
    fn a_note_reads_back_as_written_only_for_its_generation() {
        let stories = [
            entry("b", 3, &["alpha", "beta"]),
            entry("a", 3, &[]),
            entry("c", 5, &["beta"]),
        ];
        let index: Vec<Indexed> = stories.iter().map(|(s, _)| s.clone()).collect();
        let facts: HashMap<String, FeedFacts> = stories
            .iter()
            .map(|(s, f)| (s.id.as_str().to_owned(), f.clone()))
            .collect();
        let feed = Feed {
            dir: String::new(),
            title: String::new(),
            description: String::new(),
            home_url: "https://example.org/".parse().unwrap(),
            theme: None,
            updated: DateTime::UNIX_EPOCH,
            stories: index.iter().collect(),
        };
        let text = note("g1", &[feed], &facts);
        let back = parse(text.as_bytes(), "g1").expect("reads back");
        let ids: Vec<&str> = back.iter().map(|(s, _)| s.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"], "newest first, ties by id");
        for (s, f) in &back {
            assert_eq!(f, &facts[s.id.as_str()]);
        }
        assert_eq!(back[2].0.themes.len(), 2);
        assert!(back[1].0.themes.is_empty());
        assert!(parse(text.as_bytes(), "g2").is_none(), "another generation");
        assert!(parse(text.as_bytes(), "").is_none());
        let broken = text.replace("2024-01-05", "2024-13-05");
        assert!(parse(broken.as_bytes(), "g1").is_none(), "a bad date");
    }

    #[test]
    fn merged_keeps_the_index_order_and_refuses_a_story_listed_already() {
        let listed = vec![entry("b", 9, &["alpha"]), entry("d", 2, &["beta"])];
        let (index, facts) = merged(listed.clone(), vec![entry("c", 5, &["beta"])]).unwrap();
        let ids: Vec<&str> = index.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert_eq!(facts.len(), 3);
        assert!(merged(listed, vec![entry("d", 2, &["beta"])]).is_none());
    }
}
