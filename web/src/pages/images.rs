//! `GET /ui/images`: the merged catalog table (docs/behaviour.md, "The
//! merged listing") with its catalog forms, per-row actions and the recent
//! activity card.

use super::Chrome;
use super::activity::{Activity, Scope};
use super::paging::{Pager, PagingQuery};
use super::row_failure::{LatestDownloads, RowFailure};
use crate::auth::Viewer;
use crate::error::{NotFound, PageError, WebError};
use crate::fmt;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use bty_proto::v1::Image;
use serde::Deserialize;

/// The `?error=` a UI form redirected with, the search and the page.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    error: Option<String>,
    #[serde(flatten)]
    paging: PagingQuery,
}

#[derive(Template, WebTemplate)]
#[template(path = "images.html")]
pub(crate) struct ImagesPage {
    chrome: Chrome,
    error: Option<String>,
    image_root: String,
    catalog_path: String,
    release_url: String,
    rows: Vec<RowView>,
    pager: Pager,
    activity: Activity,
}

/// One row alone, re-fetched by `bty.js` when its download or hash ends.
#[derive(Template, WebTemplate)]
#[template(path = "image_row_fragment.html")]
pub(crate) struct RowFragment {
    row: RowView,
}

/// One table row, ready to print.
pub(crate) struct RowView {
    id: String,
    first_name: String,
    /// Every name, one per line, for `bty.js` to match job subjects.
    names_joined: String,
    names: Vec<String>,
    sha: Option<String>,
    sha_short: String,
    format: Option<String>,
    size: Option<String>,
    sources: Vec<SourceView>,
    cached: bool,
    hashing: bool,
    /// Fingerprint of the key that signed the stored bytes.
    signed_by: Option<String>,
    /// The first remote source, what entry delete removes ("" if none).
    entry_src: String,
    fetch: Gate,
    update: Gate,
    cache_delete: Gate,
    entry_delete: Gate,
    /// Every gate is shut (a file only in the image root): the row shows a
    /// "local file" label instead of four dead buttons.
    local: bool,
    /// The row's newest download failed: the mark and its Retry.
    failure: Option<RowFailure>,
    /// What Retry starts again: `Some(false)` a fetch, `Some(true)` an
    /// update, `None` no button (neither gate is open).
    retry_update: Option<bool>,
}

pub(crate) struct SourceView {
    kind: String,
    location: String,
}

/// An action button's state: enabled or not, and the tooltip saying what it
/// does or why it is greyed out.
pub(crate) struct Gate {
    enabled: bool,
    title: &'static str,
}

impl RowView {
    fn new(image: Image, downloads: &LatestDownloads) -> Self {
        let has_remote = image.sources.iter().any(|s| s.kind().is_remote());
        let cached = image.cached;
        let actions = image.actions.unwrap_or_default();
        let local =
            !(actions.fetch || actions.update || actions.cache_delete || actions.entry_delete);
        // The daemon decides the gates; the reason shown is derived from the
        // row's shape, with a generic one if the daemon knows more than we do.
        let local_only = "Local file only: manage it in the image root";
        let gate = |enabled: bool, on: &'static str, off: &'static str| Gate {
            enabled,
            title: match (enabled, has_remote) {
                (true, _) => on,
                (false, false) => local_only,
                (false, true) => off,
            },
        };
        let fetch = gate(
            actions.fetch,
            "Download this image into the local cache",
            if cached {
                "Already cached: use Update to re-pull"
            } else {
                "Not available for this row"
            },
        );
        let update = gate(
            actions.update,
            "Re-pull from the source; the cached copy stays usable until the new one is verified",
            if cached {
                "Not available for this row"
            } else {
                "Not cached yet: use Fetch first"
            },
        );
        let cache_delete = gate(
            actions.cache_delete,
            "Delete the local copy; the catalog entry stays",
            if cached {
                "Not available for this row"
            } else {
                "No local copy to delete"
            },
        );
        let entry_delete = gate(
            actions.entry_delete,
            "Remove this catalog entry and its cached copy",
            "Not available for this row",
        );
        let entry_src = image
            .sources
            .iter()
            .find(|s| s.kind().is_remote())
            .map(|s| s.location.clone())
            .unwrap_or_default();
        let sha = image.sha256.filter(|s| !s.is_empty());
        let locations: Vec<String> = image.sources.iter().map(|s| s.location.clone()).collect();
        let failure = downloads.failure(&image.names, &locations);
        let retry_update = if fetch.enabled {
            Some(false)
        } else if update.enabled {
            Some(true)
        } else {
            None
        };
        Self {
            first_name: image
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone()),
            id: image.id,
            names_joined: image.names.join("\n"),
            names: image.names,
            sha_short: sha
                .as_deref()
                .map(|s| s.chars().take(8).collect())
                .unwrap_or_default(),
            sha,
            format: image.format.filter(|f| !f.is_empty()),
            size: image.size_bytes.map(fmt::human_bytes),
            sources: image
                .sources
                .into_iter()
                .map(|s| SourceView {
                    kind: s.kind().label().to_owned(),
                    location: s.location,
                })
                .collect(),
            cached,
            hashing: image.hashing,
            signed_by: image.signed_by.filter(|s| !s.is_empty()),
            entry_src,
            fetch,
            update,
            cache_delete,
            entry_delete,
            local,
            failure,
            retry_update,
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> Result<ImagesPage, PageError> {
    let search = query.paging.search();
    let (wanted, per_page) = query.paging.wanted_range();
    let list = state.images_page(search, wanted.start, per_page);
    let (list, store, activity, downloads) = tokio::join!(
        list,
        state.store(),
        Activity::load(&state, Scope::Images),
        LatestDownloads::load(&state)
    );
    let mut list = list?;
    let total = usize::try_from(list.total).unwrap_or(usize::MAX);
    let (pager, range) = Pager::new(&query.paging, total);
    if range.start != wanted.start {
        // Past the last page: show the last one.
        list = state.images_page(search, range.start, per_page).await?;
    }
    let store = store
        .inspect_err(
            |status| tracing::warn!(code = ?status.code(), "store description unavailable"),
        )
        .ok();
    Ok(ImagesPage {
        chrome: Chrome::new("images", viewer),
        error: query.error.filter(|e| !e.is_empty()),
        image_root: state.image_root_or_hint(store.as_ref()),
        catalog_path: store
            .as_ref()
            .map(|s| s.catalog_path.clone())
            .unwrap_or_default(),
        release_url: store.map(|s| s.release_catalog_url).unwrap_or_default(),
        rows: list
            .images
            .into_iter()
            .take(range.len())
            .map(|image| RowView::new(image, &downloads))
            .collect(),
        pager,
        activity,
    })
}

/// `GET /ui/images/row/{id}`: the `<tr>` of one row (by id, ref or
/// sha256: a row's id changes from ref to sha256 once its bytes are hashed).
pub(crate) async fn row(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<RowFragment, PageError> {
    let (images, downloads) =
        tokio::join!(state.all_images("", &id), LatestDownloads::load(&state));
    let image = images?
        .into_iter()
        .next()
        .ok_or_else(|| WebError::from(NotFound::Row { id: id.clone() }))?;
    Ok(RowFragment {
        row: RowView::new(image, &downloads),
    })
}
