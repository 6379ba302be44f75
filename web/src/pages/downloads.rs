//! `GET /ui/downloads`: active download and push jobs with progress and
//! Cancel, the "Add image from URL" form, the upload widget and the recent
//! history. `POST /ui/downloads/add` adds a catalog entry, then the page
//! offers to fetch it.

use super::jobs::{JobView, of_kinds, split};
use super::{Chrome, EventRow, recent_events};
use crate::auth::Viewer;
use crate::body_limit::FormBody;
use crate::error::{BadRequest, PageError, WebError};
use crate::fmt::percent_encode;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::Redirect;
use bty_proto::v1::{AddEntryRequest, JobKind};
use serde::Deserialize;

const KINDS: [JobKind; 2] = [JobKind::Download, JobKind::Push];

#[derive(Template, WebTemplate)]
#[template(path = "downloads.html")]
pub(crate) struct DownloadsPage {
    chrome: Chrome,
    error: Option<String>,
    added: Option<Added>,
    image_root: String,
    max_parallel: Option<u32>,
    active: Vec<JobView>,
    finished: Vec<JobView>,
    events: Option<Vec<EventRow>>,
}

/// The entry just added, offered for fetching.
pub(crate) struct Added {
    id: String,
    name: String,
}

/// The jobs cards alone, re-fetched by `bty.js` when a job changes state.
#[derive(Template, WebTemplate)]
#[template(path = "download_jobs.html")]
pub(crate) struct DownloadJobs {
    active: Vec<JobView>,
    finished: Vec<JobView>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DownloadsQuery {
    error: Option<String>,
    added: Option<String>,
    name: Option<String>,
}

fn is_download_event(row: &EventRow) -> bool {
    ["download.", "push.", "entry.", "image.uploaded", "upload"]
        .iter()
        .any(|p| row.kind.starts_with(p))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DownloadsQuery>,
) -> Result<DownloadsPage, PageError> {
    let (jobs, store, events) = tokio::join!(
        of_kinds(&state, &KINDS),
        state.store(),
        recent_events(&state, is_download_event)
    );
    let (active, finished) = split(jobs?);
    let store = store.ok();
    let added = query.added.filter(|id| !id.is_empty()).map(|id| Added {
        name: query.name.unwrap_or_else(|| id.clone()),
        id,
    });
    Ok(DownloadsPage {
        chrome: Chrome::new("downloads", viewer),
        error: query.error.filter(|e| !e.is_empty()),
        added,
        image_root: state.image_root_or_hint(store.as_ref()),
        max_parallel: store.map(|s| s.download_max_parallel).filter(|n| *n > 0),
        active,
        finished,
        events,
    })
}

pub(crate) async fn jobs_fragment(
    State(state): State<AppState>,
) -> Result<DownloadJobs, PageError> {
    let (active, finished) = split(of_kinds(&state, &KINDS).await?);
    Ok(DownloadJobs { active, finished })
}

/// The "Add image from URL" form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    sha256: String,
    /// A checksum file URL; empty means none.
    #[serde(default)]
    sha_url: String,
}

fn given(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

pub(crate) async fn add(
    State(state): State<AppState>,
    FormBody(form): FormBody<AddForm>,
) -> Redirect {
    const PAGE: &str = "/ui/downloads";
    let url = form.url.trim().to_owned();
    let remote = ["http://", "https://", "oras://"]
        .iter()
        .any(|p| url.to_ascii_lowercase().starts_with(p));
    if !remote {
        return WebError::from(BadRequest::ImageUrl { url: url.clone() }).redirect_to(PAGE);
    }
    let request = AddEntryRequest {
        url,
        name: given(&form.name),
        sha256: given(&form.sha256),
        r#ref: None,
        sha_url: given(&form.sha_url),
    };
    match state.catalog().add_entry(request).await {
        Ok(entry) => {
            let entry = entry.into_inner();
            tracing::info!(
                name = entry.name,
                src = entry.src,
                "entry added from the web"
            );
            Redirect::to(&format!(
                "{PAGE}?added={}&name={}",
                percent_encode(&entry.r#ref),
                percent_encode(&entry.name)
            ))
        }
        Err(status) => WebError::from(status).redirect_to(PAGE),
    }
}
