//! `btyctl entries`: add and remove remote catalog entries.

use crate::client::Ctx;
use crate::exit::CtlError;
use bty_proto::v1::{AddEntryRequest, Entry, RemoveEntryRequest};
use clap::Subcommand;
use serde::Serialize;

/// `btyctl entries …`
#[derive(Debug, Subcommand)]
pub(crate) enum EntriesCommand {
    /// Add an image by URL (http(s)://… or oras://…).
    Add {
        /// The image's source URL.
        url: String,
        /// Display name (default: the URL's basename or the layer title).
        #[arg(long)]
        name: Option<String>,
        /// Pin the content sha256 (64 hex); downloads must match it.
        #[arg(long)]
        sha256: Option<String>,
        /// Pin from a checksum file (sha256sum output, e.g. SHA256SUMS): the
        /// daemon fetches it now and takes the digest it lists for the URL's
        /// file name. Ignored for oras:// URLs.
        #[arg(long = "sha-url", value_name = "URL")]
        sha_url: Option<String>,
        /// Expected ref of the URL, verified by the daemon.
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
    },
    /// Remove an entry and its cached bytes, by src URL or ref.
    Rm {
        /// The entry's src URL or its ref.
        #[arg(value_name = "SRC_OR_REF")]
        src_or_ref: String,
    },
}

/// Run an `entries` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: EntriesCommand) -> Result<(), CtlError> {
    match command {
        EntriesCommand::Add {
            url,
            name,
            sha256,
            sha_url,
            reference,
        } => {
            let request = AddEntryRequest {
                url,
                name,
                sha256,
                r#ref: reference,
                sha_url,
            };
            let entry = ctx.daemon.catalog().add_entry(request).await?.into_inner();
            ctx.out.emit(&EntryView::from(&entry), || {
                format!(
                    "added {}\n  src {}\n  ref {}",
                    entry.name, entry.src, entry.r#ref
                )
            })
        }
        EntriesCommand::Rm { src_or_ref } => {
            let response = ctx
                .daemon
                .catalog()
                .remove_entry(RemoveEntryRequest { src_or_ref })
                .await?;
            let response = response.into_inner();
            let removed = response.removed.unwrap_or_default();
            let view = RemovedView {
                removed: EntryView::from(&removed),
                cache_removed: response.cache_removed,
            };
            ctx.out.emit(&view, || {
                let cache = if response.cache_removed {
                    " and its cached bytes"
                } else {
                    ""
                };
                format!("removed {} ({}){cache}", removed.name, removed.src)
            })
        }
    }
}

/// A catalog entry as JSON.
#[derive(Debug, Serialize)]
struct EntryView {
    name: String,
    src: String,
    #[serde(rename = "ref")]
    reference: String,
    sha256: Option<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    description: Option<String>,
    sha_url: Option<String>,
}

impl From<&Entry> for EntryView {
    fn from(entry: &Entry) -> Self {
        Self {
            name: entry.name.clone(),
            src: entry.src.clone(),
            reference: entry.r#ref.clone(),
            sha256: entry.sha256.clone(),
            format: entry.format.clone(),
            size_bytes: entry.size_bytes,
            description: entry.description.clone(),
            sha_url: entry.sha_url.clone(),
        }
    }
}

/// What `entries rm --json` prints.
#[derive(Debug, Serialize)]
struct RemovedView {
    removed: EntryView,
    cache_removed: bool,
}
