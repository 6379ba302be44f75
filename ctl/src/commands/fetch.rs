//! `btyctl fetch`: download a remote entry's bytes into the image cache.

use crate::client::Ctx;
use crate::commands::ID_HELP;
use crate::commands::jobs::watch_with;
use crate::exit::CtlError;
use crate::job::{JobView, summary_line};
use bty_proto::v1::{FetchImageRequest, Job};
use clap::Args;

/// `btyctl fetch ID [--detach]`
#[derive(Debug, Args)]
#[command(after_help = ID_HELP)]
pub(crate) struct FetchArgs {
    /// The entry to download (see below).
    id: String,
    /// Print the queued job and return instead of watching it.
    #[arg(long)]
    detach: bool,
}

/// Queue the download and watch it (exit 7 if it fails).
pub(crate) async fn run(ctx: &Ctx, args: FetchArgs) -> Result<(), CtlError> {
    queue(ctx, args.id, false, args.detach).await
}

/// Ask btyd to fetch (`update: false`) or re-pull (`update: true`) `id`,
/// then print the queued job (`detach`) or watch it to its end. The daemon
/// may hand back a job already running for the same entry; that one is
/// watched the same way.
pub(crate) async fn queue(
    ctx: &Ctx,
    id: String,
    update: bool,
    detach: bool,
) -> Result<(), CtlError> {
    let job = ctx
        .daemon
        .catalog()
        .fetch_image(FetchImageRequest { id, update })
        .await?
        .into_inner();
    if detach {
        return ctx.out.emit(&JobView::from(&job), || summary_line(&job));
    }
    watch_with(ctx, &job.id, outcome_text).await.map(drop)
}

/// The summary line, then the daemon's last phase, which says what the
/// download did (e.g. "up to date: upstream unchanged, nothing downloaded").
fn outcome_text(job: &Job) -> String {
    let summary = summary_line(job);
    match job.phase_text() {
        "" => summary,
        phase => format!("{summary}\n{phase}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_proto::v1::{JobKind, JobState};

    #[test]
    fn outcome_names_the_phase_when_there_is_one() {
        let job = Job {
            id: "j1".into(),
            kind: JobKind::Download.into(),
            state: JobState::Completed.into(),
            subject: "alpine.iso".into(),
            phase: bty_proto::v1::JobPhase::Done.into(),
            note: Some("up to date: upstream unchanged, nothing downloaded".into()),
            ..Job::default()
        };
        assert_eq!(
            outcome_text(&job),
            "download job j1 completed: alpine.iso\nup to date: upstream unchanged, nothing downloaded"
        );
        let silent = Job {
            phase: bty_proto::v1::JobPhase::Unspecified.into(),
            note: None,
            ..job
        };
        assert_eq!(
            outcome_text(&silent),
            "download job j1 completed: alpine.iso"
        );
    }
}
