//! Sign-up (form and JSON), confirmation, preferences and unsubscribe.

use axum::Router;

use super::AppState;
use crate::config::Config;

/// Rate limiters and the CSRF key.
pub struct FormState {}

impl FormState {
    pub fn new(_config: &Config) -> FormState {
        FormState {}
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
