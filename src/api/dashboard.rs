//! The dashboard page at `/`, with its assets embedded in the binary.
//!
//! The page is plain HTML, CSS and JavaScript modules (no framework, no build step, no
//! CDN), so it works offline and ships inside the single binary. It reads the JSON API and
//! the live stream of docs/api.md from the browser.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::IntoResponse;
use axum::routing::get;

use std::sync::LazyLock;

use super::AppState;
use crate::records::countries;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const RENDER_JS: &str = include_str!("assets/render.js");
const STATE_JS: &str = include_str!("assets/state.js");
const FORMS_JS: &str = include_str!("assets/forms.js");
const RECORD_JS: &str = include_str!("assets/record.js");
const STRINGS_JS: &str = include_str!("assets/strings.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The page's scripts and style sheet, which it loads without its query string (so without
/// the API token: they hold no data).
pub const ASSETS: &[&str] = &[
    "/assets/app.js",
    "/assets/countries.js",
    "/assets/forms.js",
    "/assets/record.js",
    "/assets/render.js",
    "/assets/state.js",
    "/assets/strings.js",
    "/assets/style.css",
];

/// The accepted country codes as a module (`export const COUNTRIES = [...]`), for the
/// recording forms' completion: the same list the worker checks against.
static COUNTRIES_JS: LazyLock<String> = LazyLock::new(|| {
    let codes = serde_json::to_string(countries::CODES).expect("strings serialise");
    format!(
        "// The country codes the service accepts (ISO 3166-1 alpha-2, and XK).\nexport const COUNTRIES = {codes};\n"
    )
});

/// Routes of the page and its assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/assets/app.js", get(|| async { asset(JAVASCRIPT, APP_JS) }))
        .route("/assets/render.js", get(|| async { asset(JAVASCRIPT, RENDER_JS) }))
        .route("/assets/countries.js", get(|| async { asset(JAVASCRIPT, COUNTRIES_JS.as_str()) }))
        .route("/assets/forms.js", get(|| async { asset(JAVASCRIPT, FORMS_JS) }))
        .route("/assets/record.js", get(|| async { asset(JAVASCRIPT, RECORD_JS) }))
        .route("/assets/state.js", get(|| async { asset(JAVASCRIPT, STATE_JS) }))
        .route("/assets/strings.js", get(|| async { asset(JAVASCRIPT, STRINGS_JS) }))
        .route("/assets/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
}

/// An embedded file. `no-cache` (revalidate, not "never store") because the assets have no
/// fingerprint in their names: a new binary must not be hidden behind a stale copy.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let headers: [(HeaderName, &'static str); 2] = [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")];
    (headers, body)
}
