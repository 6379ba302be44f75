//! The fake job service: a fixed list of jobs, plus the jobs that fetch,
//! update, push and flash queue (watchable, but not listed, so the list
//! tests see the same four jobs as before).

use bty_proto::v1::job_service_server::JobService;
use bty_proto::v1::{
    CancelJobRequest, GetJobRequest, Job, JobKind, JobPhase, JobState, ListJobsRequest,
    ListJobsResponse, TargetState, TargetStatus,
};
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::fake::{Fake, HASHED_SHA};

/// A hash job that completes.
pub(crate) const OK_JOB: &str = "job-ok";
/// A download job that fails.
pub(crate) const FAILED_JOB: &str = "job-fail";
/// A download job still running (cancellable).
pub(crate) const RUNNING_JOB: &str = "job-run";
const CANCELLED_JOB: &str = "job-cancel";
/// The download `fetch` queues; completes.
pub(crate) const FETCH_JOB: &str = "job-fetch";
/// The download `update` queues; completes without moving bytes.
pub(crate) const UPDATE_JOB: &str = "job-update";
/// The push job; completes.
pub(crate) const PUSH_JOB: &str = "job-push";
/// A flash job whose one target is written and verified.
pub(crate) const FLASH_JOB: &str = "job-flash";
/// A flash job that completes with one of its two targets failed.
pub(crate) const PARTIAL_FLASH_JOB: &str = "job-flash-partial";
/// What the fake update job's last phase says.
pub(crate) const UP_TO_DATE: &str = "up to date: upstream unchanged, nothing downloaded";

/// A job snapshot in `state`, with the byte counts such a job would have.
pub(crate) fn job(id: &str, kind: JobKind, state: JobState) -> Job {
    let finished = matches!(
        state,
        JobState::Completed | JobState::Failed | JobState::Cancelled
    );
    Job {
        id: id.into(),
        kind: kind.into(),
        subject: "debian.img".into(),
        state: state.into(),
        bytes_done: if finished { 4096 } else { 1024 },
        bytes_total: Some(4096),
        rate_bps: 2048,
        error: (state == JobState::Failed).then(|| "connection reset by peer".into()),
        sha256: (state == JobState::Completed).then(|| HASHED_SHA.into()),
        phase: JobPhase::Downloading.into(),
        created_at_ms: 1_700_000_000_000,
        started_at_ms: Some(1_700_000_000_100),
        finished_at_ms: finished.then_some(1_700_000_001_000),
        ..Job::default()
    }
}

fn jobs() -> Vec<Job> {
    vec![
        job(OK_JOB, JobKind::Hash, JobState::Completed),
        job(RUNNING_JOB, JobKind::Download, JobState::Running),
        job(FAILED_JOB, JobKind::Download, JobState::Failed),
        job(CANCELLED_JOB, JobKind::Flash, JobState::Cancelled),
    ]
}

fn target(
    path: &str,
    state: TargetState,
    verified: Option<bool>,
    error: Option<&str>,
) -> TargetStatus {
    TargetStatus {
        path: path.into(),
        state: state.into(),
        bytes_written: if state == TargetState::Done {
            4096
        } else {
            1024
        },
        error: error.map(str::to_owned),
        verified,
        incremental: None,
    }
}

/// The final states of the jobs the newer commands queue.
fn queued_by_commands() -> Vec<Job> {
    let done = |id, kind| job(id, kind, JobState::Completed);
    vec![
        Job {
            subject: "alpine.iso".into(),
            phase: JobPhase::Done.into(),
            note: Some("downloaded".into()),
            ..done(FETCH_JOB, JobKind::Download)
        },
        Job {
            subject: "alpine.iso".into(),
            phase: JobPhase::Done.into(),
            note: Some(UP_TO_DATE.into()),
            bytes_done: 0,
            ..done(UPDATE_JOB, JobKind::Download)
        },
        Job {
            phase: JobPhase::Done.into(),
            note: Some("pushed".into()),
            ..done(PUSH_JOB, JobKind::Push)
        },
        Job {
            phase: JobPhase::Done.into(),
            source_bytes: 2048,
            targets: vec![target("/dev/sdb", TargetState::Done, Some(true), None)],
            ..done(FLASH_JOB, JobKind::Flash)
        },
        Job {
            phase: JobPhase::Done.into(),
            source_bytes: 2048,
            targets: vec![
                target("/dev/sdb", TargetState::Done, Some(true), None),
                target(
                    "/dev/sdc",
                    TargetState::Failed,
                    None,
                    Some("write error: EIO"),
                ),
            ],
            ..done(PARTIAL_FLASH_JOB, JobKind::Flash)
        },
    ]
}

/// Any job the fake knows, listed or not.
pub(crate) fn find_job(id: &str) -> Result<Job, Status> {
    jobs()
        .into_iter()
        .chain(queued_by_commands())
        .find(|j| j.id == id)
        .ok_or_else(|| Status::not_found(format!("no job {id}")))
}

/// `id`'s job as just queued.
pub(crate) fn queued(id: &str) -> Result<Job, Status> {
    let done = find_job(id)?;
    Ok(Job {
        state: JobState::Queued.into(),
        bytes_done: 0,
        targets: Vec::new(),
        sha256: None,
        finished_at_ms: None,
        phase: JobPhase::Unspecified.into(),
        note: None,
        ..done
    })
}

type JobStream = Pin<Box<dyn Stream<Item = Result<Job, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for Fake {
    type WatchJobStream = JobStream;

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let request = request.into_inner();
        let jobs = jobs()
            .into_iter()
            .filter(|j| {
                !request.active_only || matches!(j.state(), JobState::Queued | JobState::Running)
            })
            .filter(|j| request.kind() == JobKind::Unspecified || j.kind() == request.kind())
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<Job>, Status> {
        find_job(&request.into_inner().id).map(Response::new)
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let job = find_job(&request.into_inner().id)?;
        if job.state() != JobState::Running {
            return Err(Status::failed_precondition(format!(
                "job {} already ended",
                job.id
            )));
        }
        let mut cancelled = job;
        cancelled.set_state(JobState::Cancelled);
        cancelled.error = Some("cancelled by operator".into());
        Ok(Response::new(cancelled))
    }

    async fn watch_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<JobStream>, Status> {
        let last = find_job(&request.into_inner().id)?;
        // A running snapshot first, so the progress path runs before the end.
        let running = Job {
            targets: last
                .targets
                .iter()
                .map(|t| target(&t.path, TargetState::Writing, None, None))
                .collect(),
            ..job(&last.id, last.kind(), JobState::Running)
        };
        let snapshots = vec![Ok(running), Ok(last)];
        Ok(Response::new(Box::pin(tokio_stream::iter(snapshots))))
    }
}
