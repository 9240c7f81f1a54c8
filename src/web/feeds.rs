//! `/feeds/…`: the feed files as written by the last build, with their
//! media types, validators (`ETag`, `Last-Modified`, `304`), compression
//! and `Cache-Control`.

use axum::Router;

use super::AppState;
use crate::config::Config;

/// Feed files read from disk, kept while unchanged.
pub struct FeedCache {}

impl FeedCache {
    pub fn new(_config: &Config) -> FeedCache {
        FeedCache {}
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
