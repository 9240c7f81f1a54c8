//! Sources read stories from where editors publish them. Each kind turns
//! its input into [`Story`] values and reports, without stopping, every
//! item it could not read.

pub mod directory;

use std::collections::HashMap;

use crate::config::{Config, Source};
use crate::diagnostic::Problem;
use crate::story::{Story, StoryId};

/// What one source holds right now.
#[derive(Debug, Default)]
pub struct Scan {
    /// Stories to publish.
    pub stories: Vec<Story>,
    /// Items whose stamp matches the one stored: not read again.
    pub unchanged: Vec<ItemRef>,
    /// Items that exist but are drafts: their stories are withdrawn.
    pub drafts: Vec<ItemRef>,
    /// Items that exist but could not be read; their stories keep whatever
    /// version the store already has.
    pub failed: Vec<(Problem, ItemRef)>,
}

/// Enough of an item to match it to a stored story without a full parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRef {
    pub id: Option<StoryId>,
    pub slug: Option<String>,
    pub origin: String,
}

/// Reads one configured source. `known` maps the origin of each published
/// story to its stored stamp; an item whose stamp still matches is listed
/// as unchanged without being read.
pub fn scan(
    config: &Config,
    source: &Source,
    known: &HashMap<String, String>,
) -> Result<Scan, Problem> {
    match source {
        Source::Directory(dir) => directory::scan(config, dir, known),
    }
}
