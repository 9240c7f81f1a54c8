//! For operators and machines: `/healthz`, `/metrics` (Prometheus text
//! format) and `POST /api/ingest` (the CMS publish hook).

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
