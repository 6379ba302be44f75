//! Jobs as JSON — one shape for the SSE stream, `/catalog/downloads` and
//! `DELETE /api/jobs/{id}` — and cancelling any job by id.

use crate::error::WebError;
use crate::fmt;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use bty_proto::v1::{CancelJobRequest, Job, TargetStatus};
use serde::Serialize;

/// A job as JSON. `name`/`status` repeat `subject`/`state` under upstream's
/// DownloadState names.
#[derive(Debug, Serialize)]
pub(crate) struct JobJson {
    id: String,
    kind: &'static str,
    subject: String,
    name: String,
    state: &'static str,
    status: &'static str,
    bytes_done: u64,
    bytes_total: Option<u64>,
    rate_bps: u64,
    error: Option<String>,
    phase: String,
    sha256: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    targets: Vec<TargetJson>,
}

/// One target of a flash job.
#[derive(Debug, Serialize)]
struct TargetJson {
    path: String,
    state: String,
    bytes_written: u64,
    error: Option<String>,
    verified: Option<bool>,
}

impl From<TargetStatus> for TargetJson {
    fn from(t: TargetStatus) -> Self {
        let state = t.state();
        Self {
            path: t.path,
            state: state.label().to_owned(),
            bytes_written: t.bytes_written,
            error: t.error,
            verified: t.verified,
        }
    }
}

impl From<Job> for JobJson {
    fn from(job: Job) -> Self {
        let state = fmt::job_state(job.state);
        let phase = job.phase_text().to_owned();
        Self {
            id: job.id,
            kind: fmt::job_kind(job.kind),
            name: job.subject.clone(),
            subject: job.subject,
            state,
            status: state,
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total,
            rate_bps: job.rate_bps,
            error: job.error,
            phase,
            sha256: job.sha256,
            started_at: job.started_at_ms.map(fmt::rfc3339),
            finished_at: job.finished_at_ms.map(fmt::rfc3339),
            targets: job.targets.into_iter().map(TargetJson::from).collect(),
        }
    }
}

/// `DELETE /api/jobs/{id}`: cancel any job (download, hash, flash, push).
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobJson>, WebError> {
    let job = state
        .jobs()
        .cancel_job(CancelJobRequest { id })
        .await?
        .into_inner();
    Ok(Json(job.into()))
}
