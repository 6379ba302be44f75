//! `GET /ui/hashing`: the background sha256 jobs (active first, then the
//! latest finished ones) and their recent activity.

use super::{EventRow, recent_events};
use crate::error::PageError;
use crate::fmt;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use bty_proto::v1::{Job, JobKind, JobState, ListJobsRequest};

/// Finished jobs shown under the active ones.
const FINISHED_SHOWN: usize = 20;

#[derive(Template, WebTemplate)]
#[template(path = "hashing.html")]
pub(crate) struct HashingPage {
    nav: &'static str,
    image_root: String,
    max_parallel: Option<u32>,
    jobs: Vec<JobView>,
    events: Option<Vec<EventRow>>,
}

pub(crate) struct JobView {
    subject: String,
    state: &'static str,
    active: bool,
    failed: bool,
    percent: Option<u8>,
    bytes: String,
    detail: String,
}

impl JobView {
    fn new(job: Job) -> Self {
        let bytes = match job.bytes_total {
            Some(total) => format!(
                "{} / {}",
                fmt::human_bytes(job.bytes_done),
                fmt::human_bytes(total)
            ),
            None => fmt::human_bytes(job.bytes_done),
        };
        let rate = (job.rate_bps > 0 && fmt::job_active(job.state))
            .then(|| format!("{}/s", fmt::human_bytes(job.rate_bps)));
        let sha = job.sha256.as_deref().map(|s| format!("sha256 {s}"));
        let detail = [job.error.clone(), sha, rate]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        Self {
            state: fmt::job_state(job.state),
            active: fmt::job_active(job.state),
            failed: job.state == JobState::Failed as i32,
            percent: if job.state == JobState::Completed as i32 {
                Some(100)
            } else {
                fmt::percent(job.bytes_done, job.bytes_total)
            },
            subject: job.subject,
            bytes,
            detail,
        }
    }
}

/// Active jobs first (oldest first: the queue order), then finished ones
/// (newest first).
fn order(mut jobs: Vec<Job>) -> Vec<Job> {
    let (mut active, mut done): (Vec<Job>, Vec<Job>) =
        jobs.drain(..).partition(|j| fmt::job_active(j.state));
    active.sort_by_key(|j| j.created_at_ms);
    done.sort_by_key(|j| std::cmp::Reverse(j.finished_at_ms.unwrap_or(j.created_at_ms)));
    done.truncate(FINISHED_SHOWN);
    active.extend(done);
    active
}

fn is_hash_event(row: &EventRow) -> bool {
    row.kind.starts_with("hash.") || row.kind.starts_with("image.hash")
}

pub(crate) async fn page(State(state): State<AppState>) -> Result<HashingPage, PageError> {
    let request = ListJobsRequest {
        active_only: false,
        kind: JobKind::Hash as i32,
    };
    let mut jobs_client = state.jobs();
    let (jobs, store, events) = tokio::join!(
        jobs_client.list_jobs(request),
        state.store(),
        recent_events(&state, is_hash_event)
    );
    let jobs = jobs?.into_inner().jobs;
    let store = store.ok();
    Ok(HashingPage {
        nav: "hashing",
        image_root: state.image_root_or_hint(store.as_ref()),
        max_parallel: store.map(|s| s.hash_max_parallel).filter(|n| *n > 0),
        jobs: order(jobs).into_iter().map(JobView::new).collect(),
        events,
    })
}
