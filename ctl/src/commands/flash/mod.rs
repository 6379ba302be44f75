//! `btyctl flash`: write an image to disks (or files) after the operator
//! confirmed exactly which ones, then follow the job target by target.

mod confirm;
mod targets;

use crate::client::Ctx;
use crate::commands::disks;
use crate::commands::jobs::watch_with;
use crate::exit::CtlError;
use crate::job::{JobView, summary_line, target_line, unwritten_targets};
use bty_proto::v1::{FlashRequest, Job};
use clap::Args;
use std::io::Write;

/// What IMAGE and TARGET accept and what confirming means (`--help`).
const FLASH_HELP: &str = "\
IMAGE is a row id, sha256, entry ref, entry or file name, or an http(s)://
or oras:// URL; never a path (put a local file into the store with `btyctl
upload FILE` first). An image with no local copy (a URL,
or a catalog entry not fetched) is streamed to the targets and not stored;
a qcow2 entry is fetched into the store first.

TARGET is a disk from `btyctl disks`: its path (/dev/sdb), its name (sdb) or
a symlink to it (/dev/disk/by-id/…). A regular file is accepted by btyd only
directly inside the directory its config names ([flash] file_targets_dir),
never anywhere else.

Confirmation: btyctl first lists each target's path, model, size and serial
and asks you to type `yes`. That identity is sent with the request, and btyd
refuses a target that no longer matches it (say, another stick was plugged
in meanwhile); mounted, swap, held, read-only and system disks are refused
regardless. --yes confirms without asking; it is required when stdin is not
a terminal.

Exits 7 if the job fails or any target fails, is refused or is cancelled;
5 if not confirmed; 3 if a target is neither a listed disk nor a file.";

/// `btyctl flash IMAGE TARGET... [--yes] [--no-verify] [--incremental] [--detach]`
#[derive(Debug, Args)]
#[command(after_help = FLASH_HELP)]
pub(crate) struct FlashArgs {
    /// The image to write (see below).
    image: String,
    /// The disks (or files, where btyd's config allows them) to write it to.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Confirm the listed targets without asking.
    #[arg(long, short)]
    yes: bool,
    /// Skip reading the written bytes back to compare their sha256.
    #[arg(long)]
    no_verify: bool,
    /// Read each target first and write only the pieces that differ (a
    /// reflash of a disk that holds an earlier version of the image).
    #[arg(long)]
    incremental: bool,
    /// Print the started job and return instead of watching it
    /// (`btyctl jobs watch ID` follows it later).
    #[arg(long)]
    detach: bool,
}

/// Resolve and confirm the targets, start the flash and watch it.
pub(crate) async fn run(ctx: &Ctx, args: FlashArgs) -> Result<(), CtlError> {
    let disks = disks::list(ctx).await?;
    let chosen = targets::resolve(&disks, &args.targets).await?;
    show(&args.image, &chosen);
    if !args.yes {
        confirm::ask(&args.image, chosen.len()).await?;
    }
    let request = FlashRequest {
        image: args.image,
        targets: chosen.into_iter().map(|c| c.target).collect(),
        no_verify: args.no_verify,
        incremental: args.incremental,
    };
    let job = ctx.daemon.flash().flash(request).await?.into_inner();
    if args.detach {
        return ctx.out.emit(&JobView::from(&job), || summary_line(&job));
    }
    let job = watch_with(ctx, &job.id, flash_text).await?;
    let failed = unwritten_targets(&job);
    if failed.is_empty() {
        return Ok(());
    }
    Err(CtlError::TargetsFailed {
        id: job.id,
        total: job.targets.len(),
        failed,
    })
}

/// List what is about to be overwritten on stderr, so it shows next to the
/// prompt and stays out of stdout (which may carry JSON).
fn show(image: &str, chosen: &[targets::Chosen]) {
    let mut text = format!("Flash {image} to:\n");
    for target in chosen {
        text.push_str(&format!("  {}\n", target.description));
    }
    // Nothing useful to do if stderr is gone; the prompt would fail next.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The summary line, then one line per target.
fn flash_text(job: &Job) -> String {
    let mut text = summary_line(job);
    for target in &job.targets {
        text.push_str(&format!("\n  {}", target_line(target)));
    }
    text
}
