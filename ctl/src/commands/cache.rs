//! `btyctl cache`: remove an entry's cached bytes (the entry stays).

use crate::client::Ctx;
use crate::commands::ID_HELP;
use crate::exit::CtlError;
use bty_proto::v1::{DeleteCacheRequest, DeleteCacheResponse};
use clap::Subcommand;
use serde::Serialize;

/// `btyctl cache …`
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Remove an entry's cached bytes and sidecar; the entry stays in the
    /// catalog and can be fetched again. Not cached → nothing deleted, exit 0.
    #[command(after_help = ID_HELP)]
    Rm {
        /// The entry whose cached bytes go (see below).
        id: String,
    },
}

/// Run a `cache` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: CacheCommand) -> Result<(), CtlError> {
    match command {
        CacheCommand::Rm { id } => {
            let response = ctx
                .daemon
                .catalog()
                .delete_cache(DeleteCacheRequest { id: id.clone() })
                .await?
                .into_inner();
            ctx.out.emit(&DeletedView::from(&response), || {
                deleted_text(&id, &response)
            })
        }
    }
}

/// What `cache rm --json` prints.
#[derive(Debug, Serialize)]
struct DeletedView {
    deleted: bool,
    reason: String,
    sha256: Option<String>,
    file_name: String,
}

impl From<&DeleteCacheResponse> for DeletedView {
    fn from(response: &DeleteCacheResponse) -> Self {
        Self {
            deleted: response.deleted,
            reason: response.reason.clone(),
            sha256: response.sha256.clone(),
            file_name: response.file_name.clone(),
        }
    }
}

fn deleted_text(id: &str, response: &DeleteCacheResponse) -> String {
    if !response.deleted {
        let reason = if response.reason.is_empty() {
            "nothing to delete"
        } else {
            &response.reason
        };
        return format!("nothing deleted for {id}: {reason}");
    }
    match &response.sha256 {
        Some(sha) => format!("deleted cached {} (sha256 {sha})", response.file_name),
        None => format!("deleted cached {}", response.file_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_why_nothing_was_deleted() {
        let response = DeleteCacheResponse {
            deleted: false,
            reason: "not cached".into(),
            ..DeleteCacheResponse::default()
        };
        assert_eq!(
            deleted_text("alpine.iso", &response),
            "nothing deleted for alpine.iso: not cached"
        );
    }
}
