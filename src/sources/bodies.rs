//! Bodies rendered when shown. A story read from a Markdown file is
//! stored without its rendered body: ingest keeps the hash of its Markdown
//! ([`markdown_hash`]) and where the file is (its origin). When a feed or
//! a digest edition shows the story, [`fill`] reads the file again, checks
//! that its Markdown is the one ingest saw, renders it (as ingest once
//! did, with `content::markdown_to_html`) and keeps the rendering in the
//! store under a [`key`] of what it was made from, so that the next build
//! reads it instead. A story edited since is stored with a new hash and no
//! rendering; a new program or site address gives a new key.
//!
//! A file changed or gone since the last ingest cannot give the body the
//! store describes: the story is named in a problem, and left out of the
//! feeds being written until the next ingest reads the file again.

use rayon::prelude::*;

use crate::config::Config;
use crate::model::problem::{Problem, display_path};
use crate::model::{Story, StoryId};
use crate::sources::content;
use crate::sources::directory::split_front_matter;
use crate::store::{Store, StoredStory};

/// The SHA-256 of a story file's Markdown body, in hex.
pub fn markdown_hash(markdown: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(markdown.as_bytes()))
}

/// What a rendering of a story's body is made from: this program, the
/// site's address (root-relative links resolve under it), the story's URL
/// (other relative links) and its Markdown's hash.
pub fn key(config: &Config, url: &str, hash: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        config.site.base_url.as_str(),
        url,
        hash,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Renders a story's Markdown against its URL: sanitized HTML with
/// absolute links, as feeds carry it.
pub fn render(config: &Config, url: &str, markdown: &str) -> Result<String, String> {
    let page =
        url::Url::parse(url).map_err(|e| format!("the story URL `{url}` is not valid: {e}"))?;
    let bases = content::Bases {
        site: config.site.base_url.clone(),
        page,
    };
    Ok(content::markdown_to_html(markdown, &bases))
}

/// Whether the story's body must be rendered before it is shown: it comes
/// from a file and `body_html` holds no rendering of this version of it.
pub fn missing(config: &Config, story: &Story) -> bool {
    story
        .body_source
        .as_ref()
        .is_some_and(|s| s.rendered.as_deref() != Some(&key(config, &story.url, &s.hash)))
}

/// Renders, in place, the body of a story that still holds its Markdown
/// (as ingest read it), noting its key. `false` when there is none.
pub fn render_held(config: &Config, story: &mut Story) -> bool {
    let Some(source) = story.body_source.as_ref() else {
        return false;
    };
    let Some(markdown) = source.markdown.as_deref() else {
        return false;
    };
    let Ok(html) = render(config, &story.url, markdown) else {
        return false;
    };
    let key = key(config, &story.url, &source.hash);
    story.body_html = html;
    if let Some(source) = story.body_source.as_mut() {
        source.rendered = Some(key);
    }
    true
}

/// Gives every story in `stories` its body: those whose rendering the
/// store does not hold are rendered from their files (on all cores) and
/// the renderings kept in the store, on a task of their own that
/// [`Store::settle`] waits for. Returns the stories whose file no
/// longer gives the body ingest saw (changed, gone, unreadable), each with
/// its problem; their `body_html` stays empty.
pub async fn fill(
    config: &Config,
    store: &Store,
    stories: &mut [StoredStory],
) -> anyhow::Result<Vec<(StoryId, Problem)>> {
    let wanted: Vec<(usize, String, String, String)> = stories
        .iter()
        .enumerate()
        .filter(|(_, s)| missing(config, &s.story))
        .filter_map(|(i, s)| {
            let source = s.story.body_source.as_ref()?;
            Some((
                i,
                s.story.origin.clone(),
                s.story.url.clone(),
                source.hash.clone(),
            ))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let cfg = config.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        wanted
            .into_par_iter()
            .map(|(i, origin, url, hash)| {
                let html = render_file(&cfg, &origin, &url, &hash);
                (i, hash, html)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let mut failed = Vec::new();
    let mut keep = Vec::new();
    for (i, hash, result) in rendered {
        let stored = &mut stories[i];
        match result {
            Ok(html) => {
                let key = key(config, &stored.story.url, &hash);
                keep.push((stored.id.clone(), hash, key.clone(), html.clone()));
                stored.story.body_html = html;
                if let Some(source) = stored.story.body_source.as_mut() {
                    source.rendered = Some(key);
                }
            }
            Err(problem) => {
                tracing::warn!(story = %stored.id, %problem, "story body not rendered");
                failed.push((stored.id.clone(), problem));
            }
        }
    }
    // Kept while the caller goes on: a rendering not kept is made again
    // next time, not worth failing or waiting for.
    store.keep_bodies_later(keep);
    Ok(failed)
}

/// Reads the story file `origin` (as ingest names it) and renders its
/// body, if its Markdown still hashes to `hash`.
fn render_file(config: &Config, origin: &str, url: &str, hash: &str) -> Result<String, Problem> {
    let path = config.root.join(origin);
    let shown = display_path(&path, &config.root);
    let again = "the next build reads it again";
    let bytes = fs_err::read(&path)
        .map_err(|e| Problem::new(&shown, format!("cannot read the story's body: {e}")))?;
    let text = simdutf8::compat::from_utf8(&bytes).map_err(|_| {
        Problem::new(
            &shown,
            format!("changed since it was read ({again}): not valid UTF-8"),
        )
    })?;
    let body = split_front_matter(text).map(|(_, _, body)| body);
    match body {
        Some(body) if markdown_hash(body) == hash => {
            render(config, url, body).map_err(|e| Problem::new(&shown, e))
        }
        _ => Err(Problem::new(
            &shown,
            format!("changed since it was read; its body is not shown until {again}"),
        )),
    }
}

/// [`fill`] for an edition's stories: one whose body cannot be rendered
/// now (its file changed or went away since the last ingest) is shown
/// without it, as its problem was logged.
pub async fn filled(
    config: &Config,
    store: &Store,
    mut stories: Vec<StoredStory>,
) -> anyhow::Result<Vec<StoredStory>> {
    fill(config, store, &mut stories).await?;
    Ok(stories)
}
