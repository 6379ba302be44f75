//! `btyctl push`: publish an image from the store to an OCI registry.

use crate::client::Ctx;
use crate::commands::jobs::watch;
use crate::exit::CtlError;
use crate::job::{JobView, summary_line};
use bty_proto::v1::PushImageRequest;
use clap::Args;

/// What IMAGE and TARGET accept (shown in `--help`).
const PUSH_HELP: &str = "\
IMAGE is a row id (content sha256 or entry ref) or a file name in the image
root. TARGET is oras://host[:port]/repository:tag; registries configured as
insecure in btyd's config are reached over plain http.";

/// `btyctl push IMAGE oras://host/repo:tag [--detach]`
#[derive(Debug, Args)]
#[command(after_help = PUSH_HELP)]
pub(crate) struct PushArgs {
    /// The image to publish (see below).
    image: String,
    /// Where to publish it.
    #[arg(value_name = "oras://HOST/REPO:TAG", value_parser = parse_oras)]
    target: String,
    /// Print the queued push job and return instead of watching it.
    #[arg(long)]
    detach: bool,
}

/// Catch a missing scheme as a usage error before btyd is asked.
fn parse_oras(target: &str) -> Result<String, String> {
    if target.starts_with("oras://") {
        Ok(target.to_owned())
    } else {
        Err("expected oras://host[:port]/repository:tag".to_owned())
    }
}

/// Queue the push and watch it (exit 7 if it fails).
pub(crate) async fn run(ctx: &Ctx, args: PushArgs) -> Result<(), CtlError> {
    let job = ctx
        .daemon
        .catalog()
        .push_image(PushImageRequest {
            image: args.image,
            target: args.target,
        })
        .await?
        .into_inner();
    if args.detach {
        return ctx.out.emit(&JobView::from(&job), || summary_line(&job));
    }
    watch(ctx, &job.id).await
}
