//! `GET /images` (upstream's `ImageEntry` list) and `GET /api/images` (the
//! merged rows; docs/behaviour.md, "Row JSON", shows the shape).

use super::QueryArgs;
use crate::auth::Viewer;
use crate::error::WebError;
use crate::fmt::percent_encode;
use crate::redact::{self, Audience};
use crate::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bty_proto::v1::{Image, ListImagesRequest};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::ReceiverStream;

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
                .find(|s| s.kind().is_remote())
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

/// `GET /images`; source URLs never show credentials (see `redact`). The
/// JSON array is streamed as btyd's listing arrives, so a catalog of any
/// size is sent without holding it whole; an error before the first row
/// is an HTTP error, one after it cuts the body short (invalid JSON, never
/// a silently shorter list).
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let origin = state.origin(&headers);
    let audience = Audience::of(viewer.authenticated);
    let mut pages = state
        .catalog()
        .stream_images(ListImagesRequest::default())
        .await?
        .into_inner();
    // The first message decides the status.
    let first = pages.message().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, tonic::Status>>(2);
    tokio::spawn(async move {
        let mut page = first;
        let mut comma = false;
        let mut out = vec![b'['];
        loop {
            for image in page.into_iter().flat_map(|p| p.images) {
                let Some(entry) = ImageEntry::new(image, &origin, audience) else {
                    continue;
                };
                if comma {
                    out.push(b',');
                }
                comma = true;
                // Serialising plain strings and numbers cannot fail.
                if serde_json::to_writer(&mut out, &entry).is_err() {
                    return;
                }
            }
            page = match pages.message().await {
                Ok(Some(next)) => Some(next),
                Ok(None) => break,
                Err(status) => {
                    tracing::warn!(%status, "listing ended early; GET /images cut short");
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            if tx
                .send(Ok(Bytes::from(std::mem::take(&mut out))))
                .await
                .is_err()
            {
                return;
            }
        }
        out.push(b']');
        let _ = tx.send(Ok(Bytes::from(out))).await;
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
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
    /// Key fingerprint of a `[[trust]]`-checked download; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<String>,
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
                    kind: s.kind().label().to_owned(),
                    location: s.location,
                })
                .collect(),
            cached: image.cached,
            signed_by: image.signed_by,
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
    let images = state
        .all_images(
            query.q.as_deref().unwrap_or("").trim(),
            query.id.as_deref().unwrap_or("").trim(),
        )
        .await?;
    Ok(Json(images.into_iter().map(ImageRow::from).collect()))
}
