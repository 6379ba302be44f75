//! `btyctl hash`: queue a sha256 job for a file in the image root.

use crate::client::Ctx;
use crate::commands::jobs::watch;
use crate::exit::CtlError;
use crate::job::JobView;
use bty_proto::v1::HashImageRequest;
use clap::Args;

/// `btyctl hash NAME [--wait]`
#[derive(Debug, Args)]
pub(crate) struct HashArgs {
    /// A bare file name in the image root.
    name: String,
    /// Watch the job until it ends (exit 7 if it fails).
    #[arg(long)]
    wait: bool,
}

/// Queue the hash job; print it, or watch it with `--wait`.
pub(crate) async fn run(ctx: &Ctx, args: HashArgs) -> Result<(), CtlError> {
    let job = ctx
        .daemon
        .catalog()
        .hash_image(HashImageRequest { name: args.name })
        .await?;
    let job = job.into_inner();
    if args.wait {
        return watch(ctx, &job.id).await;
    }
    ctx.out.emit(&JobView::from(&job), || {
        format!("queued hash job {} for {}", job.id, job.subject)
    })
}
