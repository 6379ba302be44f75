//! The page's stylesheet, script and icon, compiled into the binary so the
//! UI works air-gapped (no CDN, no files next to the binary).

use crate::state::AppState;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

const CSS: &str = include_str!("../static/bty.css");
const JS: &str = include_str!("../static/bty.js");
const FAVICON: &str = include_str!("../static/favicon.svg");

// Assets change only with the binary; a short max-age keeps upgrades visible.
const CACHE: &str = "public, max-age=300";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/bty.css", get(css))
        .route("/static/bty.js", get(js))
        .route("/static/favicon.svg", get(favicon))
        // Browsers ask for it on their own (pages without the `<link>`,
        // JSON routes opened in a tab): SVG under the old name, so no 404.
        .route("/favicon.ico", get(favicon))
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, CACHE),
        ],
        JS,
    )
}

async fn favicon() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "image/svg+xml"), (CACHE_CONTROL, CACHE)],
        FAVICON,
    )
}
