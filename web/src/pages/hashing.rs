//! `GET /ui/hashing`: the background sha256 jobs (active first, then the
//! latest finished ones), live over SSE, and their recent activity.

use super::Chrome;
use super::activity::{Activity, Scope};
use super::jobs::{JobView, of_kinds};
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use bty_proto::v1::JobKind;

#[derive(Template, WebTemplate)]
#[template(path = "hashing.html")]
pub(crate) struct HashingPage {
    chrome: Chrome,
    image_root: String,
    max_parallel: Option<u32>,
    jobs: Vec<JobView>,
    activity: Activity,
}

/// The jobs card alone, re-fetched by `bty.js` when a job changes state.
#[derive(Template, WebTemplate)]
#[template(path = "hash_jobs.html")]
pub(crate) struct HashJobs {
    jobs: Vec<JobView>,
}

async fn hash_jobs(state: &AppState) -> Result<Vec<JobView>, PageError> {
    let (mut active, done) = super::jobs::split(of_kinds(state, &[JobKind::Hash]).await?);
    active.extend(done);
    Ok(active)
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<HashingPage, PageError> {
    let (jobs, store, activity) = tokio::join!(
        hash_jobs(&state),
        state.store(),
        Activity::load(&state, Scope::Hashing)
    );
    let store = store.ok();
    Ok(HashingPage {
        chrome: Chrome::new("hashing", viewer),
        image_root: state.image_root_or_hint(store.as_ref()),
        max_parallel: store.map(|s| s.hash_max_parallel).filter(|n| *n > 0),
        jobs: jobs?,
        activity,
    })
}

pub(crate) async fn jobs_fragment(State(state): State<AppState>) -> Result<HashJobs, PageError> {
    Ok(HashJobs {
        jobs: hash_jobs(&state).await?,
    })
}
