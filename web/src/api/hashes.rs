//! `/catalog/hashes`: the background sha256 jobs as upstream's HashState
//! JSON, queueing one by file name and cancelling by file name.

use super::{JsonBody, check_bare_name};
use crate::error::{NotFound, WebError};
use crate::fmt;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bty_proto::v1::{CancelJobRequest, HashImageRequest, Job, JobKind, ListJobsRequest};
use serde::{Deserialize, Serialize};

/// One hash job as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct HashState {
    id: String,
    name: String,
    path: Option<String>,
    status: &'static str,
    bytes_done: u64,
    bytes_total: u64,
    sha256: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    error: Option<String>,
}

impl HashState {
    /// `image_root` is only used to spell the file's path for clients.
    fn new(job: Job, image_root: Option<&str>) -> Self {
        let path = image_root
            .filter(|root| !root.is_empty())
            .map(|root| format!("{}/{}", root.trim_end_matches('/'), job.subject));
        Self {
            id: job.id,
            path,
            name: job.subject,
            status: fmt::job_state(job.state),
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total.unwrap_or(0),
            sha256: job.sha256,
            started_at: job.started_at_ms.map(fmt::rfc3339),
            finished_at: job.finished_at_ms.map(fmt::rfc3339),
            error: job.error,
        }
    }
}

/// `GET /catalog/hashes`.
#[derive(Debug, Serialize)]
pub(crate) struct HashList {
    image_root: String,
    max_parallel: u32,
    hashes: Vec<HashState>,
}

async fn hash_jobs(state: &AppState, active_only: bool) -> Result<Vec<Job>, WebError> {
    let request = ListJobsRequest {
        active_only,
        kind: JobKind::Hash as i32,
    };
    Ok(state.jobs().list_jobs(request).await?.into_inner().jobs)
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<HashList>, WebError> {
    let (store, jobs) = tokio::join!(state.store(), hash_jobs(&state, false));
    let store = store?;
    let hashes = jobs?
        .into_iter()
        .map(|job| HashState::new(job, Some(&store.image_root)))
        .collect();
    Ok(Json(HashList {
        image_root: store.image_root,
        max_parallel: store.hash_max_parallel,
        hashes,
    }))
}

/// Body of `POST /catalog/hashes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HashBody {
    name: String,
}

/// `POST /catalog/hashes {"name"}` → 202 with the (possibly existing) job.
pub(crate) async fn start(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<HashBody>,
) -> Result<(StatusCode, Json<HashState>), WebError> {
    check_bare_name(&body.name)?;
    let job = state
        .catalog()
        .hash_image(HashImageRequest { name: body.name })
        .await?;
    // The path is cosmetic: a store description failure must not fail a
    // job that was already queued.
    let store = state.store().await.ok();
    let root = store.as_ref().map(|s| s.image_root.as_str());
    Ok((
        StatusCode::ACCEPTED,
        Json(HashState::new(job.into_inner(), root)),
    ))
}

/// `DELETE /catalog/hashes/{name}`: cancel the active hash job of a file.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<HashState>, WebError> {
    let job = hash_jobs(&state, true)
        .await?
        .into_iter()
        .find(|job| job.subject == name && fmt::job_active(job.state))
        .ok_or_else(|| NotFound::ActiveHash { name: name.clone() })?;
    let job = state
        .jobs()
        .cancel_job(CancelJobRequest { id: job.id })
        .await?;
    let store = state.store().await.ok();
    let root = store.as_ref().map(|s| s.image_root.as_str());
    Ok(Json(HashState::new(job.into_inner(), root)))
}
