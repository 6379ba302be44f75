//! `btyctl update`: re-pull a cached remote entry when upstream changed.

use crate::client::Ctx;
use crate::commands::ID_HELP;
use crate::commands::fetch::queue;
use crate::exit::CtlError;
use clap::Args;

/// What an update does when upstream did not change (shown in `--help`).
const UPDATE_HELP: &str = "\
btyd asks upstream first (digest / ETag): when nothing changed, no bytes move
and the job's final line says so (\"up to date: …\"). The old cached file
stays usable until the new one is verified and swapped in.";

/// `btyctl update ID [--detach]`
#[derive(Debug, Args)]
#[command(after_help = format!("{UPDATE_HELP}\n\n{ID_HELP}"))]
pub(crate) struct UpdateArgs {
    /// The cached entry to re-pull (see below).
    id: String,
    /// Print the queued job and return instead of watching it.
    #[arg(long)]
    detach: bool,
}

/// Queue the re-pull and watch it; its final phase says what happened.
pub(crate) async fn run(ctx: &Ctx, args: UpdateArgs) -> Result<(), CtlError> {
    queue(ctx, args.id, true, args.detach).await
}
