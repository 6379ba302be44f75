//! `GET /images` (upstream's `ImageEntry` list) and `GET /api/images` (the
//! merged rows; docs/behaviour.md, "Row JSON", shows the shape).

use super::QueryArgs;
use crate::auth::Viewer;
use crate::error::WebError;
use crate::fmt::percent_encode;
use crate::redact::{self, Audience};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use bty_proto::v1::{Image, ListImagesRequest};
use serde::{Deserialize, Serialize};

/// One entry of `GET /images`.
#[derive(Debug, Serialize)]
pub(crate) struct ImageEntry {
    name: String,
    format: String,
    size_bytes: u64,
    url: String,
    #[serde(rename = "ref")]
    reference: String,
    sha_short: Option<String>,
    cached: bool,
}

impl ImageEntry {
    /// The entry for a row, or `None` when the row has nothing to fetch
    /// from: cached rows are served by sha (so they need one), others by
    /// their first remote source.
    fn new(image: Image, origin: &str, audience: Audience) -> Option<Self> {
        let name = image.names.first()?.clone();
        let sha = image.sha256.filter(|s| !s.is_empty());
        let url = if image.cached {
            format!(
                "{origin}/images/{}/{}",
                sha.as_deref()?,
                percent_encode(&name)
            )
        } else {
            image
                .sources
                .iter()
                .find(|s| matches!(s.kind.as_str(), "url" | "manifest"))
                .map(|s| redact::url(&s.location, audience))?
        };
        Some(Self {
            name,
            format: image.format.unwrap_or_default(),
            size_bytes: image.size_bytes.unwrap_or(0),
            url,
            reference: image.r#ref,
            sha_short: sha.map(|s| s.chars().take(12).collect()),
            cached: image.cached,
        })
    }
}

async fn list_images(state: &AppState, query: &str) -> Result<Vec<Image>, WebError> {
    let request = ListImagesRequest {
        query: query.to_owned(),
    };
    let response = state.catalog().list_images(request).await?;
    Ok(response.into_inner().images)
}

/// `GET /images`; source URLs never show credentials (see `redact`).
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Json<Vec<ImageEntry>>, WebError> {
    let origin = state.origin(&headers);
    let audience = Audience::of(viewer.authenticated);
    let images = list_images(&state, "").await?;
    Ok(Json(
        images
            .into_iter()
            .filter_map(|i| ImageEntry::new(i, &origin, audience))
            .collect(),
    ))
}

/// A merged row, in the JSON shape `btyctl images list --json` prints too.
#[derive(Debug, Serialize)]
pub(crate) struct ImageRow {
    id: String,
    names: Vec<String>,
    sha256: Option<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    sources: Vec<SourceRow>,
    cached: bool,
    actions: ActionsRow,
}

#[derive(Debug, Serialize)]
struct SourceRow {
    kind: String,
    location: String,
}

#[derive(Debug, Serialize)]
struct ActionsRow {
    fetch: bool,
    update: bool,
    cache_delete: bool,
    entry_delete: bool,
}

impl From<Image> for ImageRow {
    fn from(image: Image) -> Self {
        let actions = image.actions.unwrap_or_default();
        Self {
            id: image.id,
            names: image.names,
            sha256: image.sha256,
            format: image.format,
            size_bytes: image.size_bytes,
            sources: image
                .sources
                .into_iter()
                .map(|s| SourceRow {
                    kind: s.kind,
                    location: s.location,
                })
                .collect(),
            cached: image.cached,
            actions: ActionsRow {
                fetch: actions.fetch,
                update: actions.update,
                cache_delete: actions.cache_delete,
                entry_delete: actions.entry_delete,
            },
        }
    }
}

/// `?q=` (the daemon's search) and `?id=` (one row, by id, ref or sha256).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RowsQuery {
    q: Option<String>,
    id: Option<String>,
}

pub(crate) async fn rows(
    State(state): State<AppState>,
    QueryArgs(query): QueryArgs<RowsQuery>,
) -> Result<Json<Vec<ImageRow>>, WebError> {
    let images = list_images(&state, query.q.as_deref().unwrap_or("").trim()).await?;
    let id = query.id.filter(|id| !id.is_empty());
    Ok(Json(
        images
            .into_iter()
            .filter(|i| {
                id.as_deref()
                    .is_none_or(|id| i.id == id || i.r#ref == id || i.sha256.as_deref() == Some(id))
            })
            .map(ImageRow::from)
            .collect(),
    ))
}
