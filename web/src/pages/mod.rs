//! The HTML pages under `/ui` and what they share: the routes, the
//! "Recent activity" rows built from btyd's event log.

mod catalog;
mod downloads;
mod flash;
mod hashing;
mod images;
mod jobs;
mod paging;
mod row_failure;

use crate::auth::Viewer;
use crate::fmt;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};
use bty_proto::v1::event::Body;
use bty_proto::v1::{Event, JobState, RecentEventsRequest};

/// How many events the activity cards show.
const RECENT_EVENTS: u32 = 15;

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

/// One line of a "Recent activity" card.
pub(crate) struct EventRow {
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub(crate) when: String,
    /// The full RFC 3339 time, for the tooltip.
    pub(crate) when_full: String,
    pub(crate) kind: String,
    pub(crate) summary: String,
    pub(crate) failed: bool,
}

impl EventRow {
    /// The row for an event; `None` for bookkeeping events (resync).
    fn from_event(event: Event) -> Option<Self> {
        let (kind, summary, failed) = match event.body? {
            Body::Catalog(change) => (
                change.kind().label().to_owned(),
                change.summary,
                change.failed,
            ),
            Body::Job(job) => {
                let kind = fmt::job_kind(job.kind);
                let state = fmt::job_state(job.state);
                let mut summary = format!("{kind} of {} {state}", job.subject);
                if let Some(error) = job.error.filter(|e| !e.is_empty()) {
                    summary.push_str(": ");
                    summary.push_str(&error);
                }
                let failed = job.state == JobState::Failed as i32;
                (format!("{kind}.{state}"), summary, failed)
            }
            Body::Disks(disks) => {
                let mut parts = Vec::new();
                for (what, paths) in [
                    ("plugged in", &disks.added),
                    ("removed", &disks.removed),
                    ("changed", &disks.changed),
                ] {
                    if !paths.is_empty() {
                        parts.push(format!("{} {what}", paths.join(", ")));
                    }
                }
                ("disks.changed".to_owned(), parts.join("; "), false)
            }
            Body::Resync(_) => return None,
        };
        Some(Self {
            when: fmt::timestamp(event.at_ms),
            when_full: fmt::rfc3339(event.at_ms),
            kind,
            summary,
            failed,
        })
    }
}

/// The newest events that pass `keep`, or `None` when btyd did not answer:
/// a page still renders without its activity card.
pub(crate) async fn recent_events(
    state: &AppState,
    keep: impl Fn(&EventRow) -> bool,
) -> Option<Vec<EventRow>> {
    // Ask for more than shown so a filtered card is not left empty.
    let request = RecentEventsRequest {
        limit: RECENT_EVENTS * 4,
    };
    match state.events().recent_events(request).await {
        Ok(response) => Some(
            response
                .into_inner()
                .events
                .into_iter()
                .filter_map(EventRow::from_event)
                .filter(|row| keep(row))
                .take(RECENT_EVENTS as usize)
                .collect(),
        ),
        Err(status) => {
            tracing::warn!(code = ?status.code(), detail = status.message(), "recent events unavailable");
            None
        }
    }
}
