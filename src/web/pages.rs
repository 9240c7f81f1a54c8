//! The site's pages: `/`, `/themes/<slug>/`, the archive of editions.

use axum::Router;

use super::AppState;
use crate::config::Config;

/// The page templates.
pub struct Pages {}

impl Pages {
    pub fn load(_config: &Config) -> anyhow::Result<Pages> {
        Ok(Pages {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
