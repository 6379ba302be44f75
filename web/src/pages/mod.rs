//! The HTML pages under `/ui` and what they share: the routes and the
//! frame.

mod activity;
mod catalog;
mod downloads;
mod events;
mod flash;
mod hashing;
mod images;
mod jobs;
mod paging;
mod row_failure;

use crate::auth::Viewer;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};

pub(crate) use events::acknowledge_one;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/images", get(images::page))
        .route("/ui/images/row/{id}", get(images::row))
        .route("/ui/hashing", get(hashing::page))
        .route("/ui/hashing/jobs", get(hashing::jobs_fragment))
        .route("/ui/downloads", get(downloads::page))
        .route("/ui/downloads/jobs", get(downloads::jobs_fragment))
        .route("/ui/downloads/add", post(downloads::add))
        .route("/ui/flash", get(flash::page))
        .route("/ui/flash/jobs", get(flash::jobs_fragment))
        .route("/ui/flash/disks", get(flash::disks_fragment))
        .route("/ui/flash/confirm", post(flash::confirm))
        .route("/ui/flash/start", post(flash::start))
        .route(
            "/ui/catalog/upload",
            // The handler gives every oversize upload a readable message; this
            // limit only stops the body from being read past that point.
            post(catalog::upload).layer(DefaultBodyLimit::max(catalog::UPLOAD_BODY_LIMIT)),
        )
        .route("/ui/catalog/fetch-release", post(catalog::fetch_release))
        .route("/ui/events", get(events::page))
        .route("/ui/events/{id}/ack", post(events::acknowledge))
        .route("/ui/activity/{scope}", get(activity::fragment))
}

/// `/` and `/ui` land on the images page.
pub(crate) async fn index() -> Redirect {
    Redirect::to("/ui/images")
}

/// What every page's frame needs: the active navbar entry, the CSRF token
/// for forms and `bty.js`, whether to offer "Log out", and the version the
/// navbar shows.
pub(crate) struct Chrome {
    pub(crate) nav: &'static str,
    pub(crate) csrf: String,
    pub(crate) logged_in: bool,
    /// bty-web's own package version, as `GET /version` answers: btyd and
    /// bty-web share the workspace version, and reading it costs no daemon
    /// call per page (nor fails while btyd restarts).
    pub(crate) version: &'static str,
}

impl Chrome {
    pub(crate) fn new(nav: &'static str, viewer: Viewer) -> Self {
        Self {
            nav,
            csrf: viewer.csrf,
            logged_in: viewer.logged_in,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// The frame of an error page, which knows nothing about the viewer.
    pub(crate) fn bare() -> Self {
        Self::new("", Viewer::default())
    }
}
