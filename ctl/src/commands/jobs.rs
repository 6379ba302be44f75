//! `btyctl jobs`: list, watch and cancel download, hash, flash and push
//! jobs; and the watch loop every command that queues a job ends in.

use crate::client::Ctx;
use crate::exit::CtlError;
use crate::job::{JobView, is_finished, jobs_table, state_name, summary_line};
use crate::progress::JobProgress;
use bty_proto::v1::{CancelJobRequest, GetJobRequest, Job, JobKind, JobState, ListJobsRequest};
use clap::{Subcommand, ValueEnum};

/// `btyctl jobs …`
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// List jobs (in the order btyd keeps them).
    List {
        /// Only queued and running jobs.
        #[arg(long)]
        active: bool,
        /// Only jobs of this kind.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Show a job's progress until it ends; exit 7 if it fails or is cancelled.
    Watch {
        /// The job id.
        id: String,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// The job id.
        id: String,
    },
}

/// A job kind on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    /// Downloads into the image cache.
    Download,
    /// sha256 computations.
    Hash,
    /// Writes to disks.
    Flash,
    /// Uploads to OCI registries.
    Push,
    /// Files streamed into the image root (`btyctl upload`, `PUT /images/NAME`).
    Upload,
}

impl From<KindArg> for JobKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Download => Self::Download,
            KindArg::Hash => Self::Hash,
            KindArg::Flash => Self::Flash,
            KindArg::Push => Self::Push,
            KindArg::Upload => Self::Upload,
        }
    }
}

/// Run a `jobs` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: JobsCommand) -> Result<(), CtlError> {
    match command {
        JobsCommand::List { active, kind } => {
            let request = ListJobsRequest {
                active_only: active,
                kind: kind.map_or(JobKind::Unspecified, JobKind::from).into(),
            };
            let jobs = ctx
                .daemon
                .jobs()
                .list_jobs(request)
                .await?
                .into_inner()
                .jobs;
            let views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
            ctx.out.emit(&views, || jobs_table(&jobs))
        }
        JobsCommand::Watch { id } => watch(ctx, &id).await,
        JobsCommand::Cancel { id } => {
            let job = ctx
                .daemon
                .jobs()
                .cancel_job(CancelJobRequest { id })
                .await?
                .into_inner();
            ctx.out.emit(&JobView::from(&job), || summary_line(&job))
        }
    }
}

/// Follow a job until it ends, with a progress bar on stderr; print how it
/// ended and fail with exit 7 unless it completed.
pub(crate) async fn watch(ctx: &Ctx, id: &str) -> Result<(), CtlError> {
    watch_with(ctx, id, summary_line).await.map(drop)
}

/// [`watch`], with `human` rendering the final job for the text output.
/// Commands that queue a job (`hash --wait`, `fetch`, `update`, `push`,
/// `flash`) end here; the completed job is returned for further checks.
pub(crate) async fn watch_with(
    ctx: &Ctx,
    id: &str,
    human: impl FnOnce(&Job) -> String,
) -> Result<Job, CtlError> {
    let mut progress = JobProgress::new(ctx.out.is_json());
    let last = follow(ctx, id, &mut progress).await;
    progress.finish();
    let job = match last? {
        Some(job) if is_finished(&job) => job,
        // The stream closed early (e.g. the daemon restarted): ask once more.
        _ => ctx
            .daemon
            .jobs()
            .get_job(GetJobRequest { id: id.to_owned() })
            .await?
            .into_inner(),
    };
    if !is_finished(&job) {
        let state = state_name(job.state());
        return Err(CtlError::WatchEnded(job.id, state));
    }
    ctx.out.emit(&JobView::from(&job), || human(&job))?;
    match job.state() {
        JobState::Completed => Ok(job),
        state => Err(CtlError::JobEnded {
            id: job.id,
            state: state_name(state),
            reason: job.error,
        }),
    }
}

/// Feed snapshots to the bar until the job ends or the stream closes;
/// returns the last snapshot seen.
async fn follow(ctx: &Ctx, id: &str, progress: &mut JobProgress) -> Result<Option<Job>, CtlError> {
    let request = GetJobRequest { id: id.to_owned() };
    let mut stream = ctx.daemon.jobs().watch_job(request).await?.into_inner();
    let mut last = None;
    while let Some(job) = stream.message().await? {
        progress.update(&job);
        let done = is_finished(&job);
        last = Some(job);
        if done {
            break;
        }
    }
    Ok(last)
}
