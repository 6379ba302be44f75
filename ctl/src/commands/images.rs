//! `btyctl images`: the merged listing of the image store (docs/behaviour.md,
//! "The merged listing").

use crate::client::Ctx;
use crate::exit::CtlError;
use crate::output::{Table, format_bytes, or_dash, short_hash};
use bty_proto::v1::{Image, ListImagesRequest};
use clap::Subcommand;
use serde::Serialize;

/// `btyctl images …`
#[derive(Debug, Subcommand)]
pub(crate) enum ImagesCommand {
    /// List images: local files and catalog entries merged by content.
    List {
        /// Only rows whose names, sha256 or sources contain this text.
        #[arg(long, short)]
        query: Option<String>,
    },
}

/// Run an `images` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: ImagesCommand) -> Result<(), CtlError> {
    match command {
        ImagesCommand::List { query } => list(ctx, query.unwrap_or_default()).await,
    }
}

/// Every matching row, read as one listing in bounded messages: a catalog
/// of any size lists whole.
async fn list(ctx: &Ctx, query: String) -> Result<(), CtlError> {
    let request = ListImagesRequest {
        query,
        ..ListImagesRequest::default()
    };
    let mut pages = ctx
        .daemon
        .catalog()
        .stream_images(request)
        .await?
        .into_inner();
    let mut images: Vec<Image> = Vec::new();
    while let Some(page) = pages.message().await? {
        images.extend(page.images);
    }
    let views: Vec<ImageView> = images.iter().map(ImageView::from).collect();
    ctx.out.emit(&views, || images_table(&images))
}

/// A row as `--json` prints it (docs/behaviour.md, "Row JSON"); scripts
/// rely on these names.
#[derive(Debug, Serialize)]
struct ImageView {
    id: String,
    names: Vec<String>,
    sha256: Option<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    sources: Vec<SourceView>,
    cached: bool,
    actions: ActionsView,
    /// Key fingerprint of a `[[trust]]`-checked download; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    kind: String,
    location: String,
}

#[derive(Debug, Serialize)]
struct ActionsView {
    fetch: bool,
    update: bool,
    cache_delete: bool,
    entry_delete: bool,
}

impl From<&Image> for ImageView {
    fn from(image: &Image) -> Self {
        let actions = image.actions.unwrap_or_default();
        Self {
            id: image.id.clone(),
            names: image.names.clone(),
            sha256: image.sha256.clone(),
            format: image.format.clone(),
            size_bytes: image.size_bytes,
            sources: image
                .sources
                .iter()
                .map(|s| SourceView {
                    kind: s.kind().label().to_owned(),
                    location: s.location.clone(),
                })
                .collect(),
            cached: image.cached,
            signed_by: image.signed_by.clone(),
            actions: ActionsView {
                fetch: actions.fetch,
                update: actions.update,
                cache_delete: actions.cache_delete,
                entry_delete: actions.entry_delete,
            },
        }
    }
}

fn images_table(images: &[Image]) -> String {
    if images.is_empty() {
        return "no images".to_owned();
    }
    let mut table = Table::new(&[
        "NAME", "FORMAT", "SIZE", "SHA256", "SOURCE", "CACHED", "SIGNED", "ACTIONS",
    ]);
    for image in images {
        let sha = match &image.sha256 {
            Some(sha) => short_hash(sha).to_owned(),
            None if image.hashing => "hashing".to_owned(),
            None => "unhashed".to_owned(),
        };
        let sources: Vec<&str> = image.sources.iter().map(|s| s.kind().label()).collect();
        table.push(vec![
            image.names.join(", "),
            or_dash(image.format.clone()),
            or_dash(image.size_bytes.map(format_bytes)),
            sha,
            sources.join(","),
            if image.cached { "yes" } else { "no" }.to_owned(),
            // The signer's fingerprint, shortened like a sha256.
            or_dash(image.signed_by.as_deref().map(|f| short_hash(f).to_owned())),
            or_dash(actions_text(image)),
        ]);
    }
    table.render()
}

/// The enabled action gates, e.g. `update,cache-delete,entry-delete`.
fn actions_text(image: &Image) -> Option<String> {
    let actions = image.actions.unwrap_or_default();
    let enabled: Vec<&str> = [
        (actions.fetch, "fetch"),
        (actions.update, "update"),
        (actions.cache_delete, "cache-delete"),
        (actions.entry_delete, "entry-delete"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    (!enabled.is_empty()).then(|| enabled.join(","))
}
