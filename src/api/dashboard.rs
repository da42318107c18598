//! The dashboard page at `/`, with its assets embedded in the binary.

use axum::Router;

use super::AppState;

/// Routes of the page and its assets.
pub fn routes() -> Router<AppState> {
    Router::new()
}
