//! `/catalog/downloads` and `/catalog/cache`: the download jobs as upstream's
//! JSON, starting a Fetch/Update by row id, cancelling, and deleting cached
//! bytes.

use super::JsonBody;
use super::jobs::JobJson;
use crate::error::{InvalidRequest, NotFound, WebError};
use crate::fmt;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bty_proto::v1::{
    CancelJobRequest, DeleteCacheRequest, FetchImageRequest, Job, JobKind, ListJobsRequest,
};
use serde::{Deserialize, Serialize};

/// `GET /catalog/downloads`.
#[derive(Debug, Serialize)]
pub(crate) struct DownloadList {
    image_root: String,
    max_parallel: u32,
    downloads: Vec<JobJson>,
}

async fn download_jobs(state: &AppState, active_only: bool) -> Result<Vec<Job>, WebError> {
    let mut jobs = Vec::new();
    for kind in [JobKind::Download, JobKind::Push] {
        let request = ListJobsRequest {
            active_only,
            kind: kind as i32,
        };
        jobs.extend(state.jobs().list_jobs(request).await?.into_inner().jobs);
    }
    Ok(jobs)
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<DownloadList>, WebError> {
    let (store, jobs) = tokio::join!(state.store(), download_jobs(&state, false));
    let store = store?;
    Ok(Json(DownloadList {
        image_root: store.image_root,
        max_parallel: store.download_max_parallel,
        downloads: jobs?.into_iter().map(JobJson::from).collect(),
    }))
}

/// Body of `POST /catalog/downloads`: the row id (upstream sent `name`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadBody {
    id: Option<String>,
    name: Option<String>,
    /// Re-pull a cached entry (the page's Update button).
    #[serde(default)]
    update: bool,
}

/// `POST /catalog/downloads` → 202 with the (possibly already running) job.
pub(crate) async fn start(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DownloadBody>,
) -> Result<(StatusCode, Json<JobJson>), WebError> {
    let key = [body.id, body.name]
        .into_iter()
        .flatten()
        .map(|k| k.trim().to_owned())
        .find(|k| !k.is_empty())
        .ok_or(InvalidRequest::Missing { field: "id" })?;
    let request = FetchImageRequest {
        id: key,
        update: body.update,
    };
    let job = state.catalog().fetch_image(request).await?.into_inner();
    tracing::info!(
        job = job.id,
        subject = job.subject,
        update = body.update,
        "download queued"
    );
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// `DELETE /catalog/downloads/{id}`: cancel an active download by job id or
/// by entry name (upstream's key).
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<JobJson>, WebError> {
    let job = download_jobs(&state, true)
        .await?
        .into_iter()
        .find(|job| (job.id == key || job.subject == key) && fmt::job_active(job.state))
        .ok_or_else(|| NotFound::ActiveDownload { key: key.clone() })?;
    let job = state
        .jobs()
        .cancel_job(CancelJobRequest { id: job.id })
        .await?;
    Ok(Json(job.into_inner().into()))
}

/// `DELETE /catalog/cache/{id}` (upstream's field names plus `id`).
#[derive(Debug, Serialize)]
pub(crate) struct CacheDeleted {
    id: String,
    name: String,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_image_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_filename: Option<String>,
}

pub(crate) async fn delete_cache(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CacheDeleted>, WebError> {
    let outcome = state
        .catalog()
        .delete_cache(DeleteCacheRequest { id: id.clone() })
        .await?
        .into_inner();
    let given = |s: String| (!s.is_empty()).then_some(s);
    Ok(Json(CacheDeleted {
        name: outcome.file_name.clone(),
        id,
        deleted: outcome.deleted,
        reason: given(outcome.reason),
        disk_image_sha: outcome.sha256,
        local_filename: given(outcome.file_name),
    }))
}
