//! The catalog routes: `GET /catalog.toml`, entries (list, add, remove),
//! imports, and the download/cache actions of the images page.

use super::{JsonBody, QueryArgs};
use crate::auth::Viewer;
use crate::error::{InvalidRequest, WebError};
use crate::redact::{self, Audience};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bty_proto::v1::import_catalog_request::Source;
use bty_proto::v1::{
    AddEntryRequest, Entry, ExportCatalogRequest, ImportCatalogRequest, ImportReport,
    ListEntriesRequest, ListedEntry, RemoveEntryRequest,
};
use serde::{Deserialize, Serialize};

/// `GET /catalog.toml`: what another bty can import from this one, its
/// source URLs without credentials (see `redact`).
pub(crate) async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    let request = ExportCatalogRequest {
        base_url: state.origin(&headers),
    };
    let toml = state
        .catalog()
        .export_catalog(request)
        .await?
        .into_inner()
        .toml;
    let toml =
        redact::catalog_toml(&toml, Audience::of(viewer.authenticated)).ok_or_else(|| {
            tracing::error!("the daemon's catalog export is not TOML; not serving it");
            WebError::Grpc(tonic::Status::internal("catalog export is not TOML"))
        })?;
    Ok(([(CONTENT_TYPE, "application/toml")], toml))
}

/// Body of `POST /catalog/entries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddEntryBody {
    image_url: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
    sha256: Option<String>,
    /// A checksum file (`SHA256SUMS`) to read the pin from.
    sha_url: Option<String>,
    name: Option<String>,
}

/// An entry as JSON; `bty_image_ref` / `disk_image_sha` repeat `ref` /
/// `sha256` under upstream's column names.
#[derive(Debug, Serialize)]
pub(crate) struct EntryJson {
    name: String,
    src: String,
    #[serde(rename = "ref")]
    reference: String,
    sha256: Option<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    description: Option<String>,
    sha_url: Option<String>,
    bty_image_ref: String,
    disk_image_sha: Option<String>,
}

impl From<Entry> for EntryJson {
    fn from(entry: Entry) -> Self {
        Self {
            bty_image_ref: entry.r#ref.clone(),
            disk_image_sha: entry.sha256.clone(),
            name: entry.name,
            src: entry.src,
            reference: entry.r#ref,
            sha256: entry.sha256,
            format: entry.format,
            size_bytes: entry.size_bytes,
            description: entry.description,
            sha_url: entry
                .sha_url
                .map(|u| redact::url(&u, Audience::Authenticated)),
        }
    }
}

/// A row of `GET /catalog/entries`: upstream's nine columns, with its
/// names and types. `disk_image_sha` is the pinned digest, else the digest
/// of the cached bytes; `sha_url` is the checksum file the pin was read
/// from, if any; `added_at` is null for entries added before bty recorded
/// it.
#[derive(Debug, Serialize)]
pub(crate) struct EntryRowJson {
    bty_image_ref: String,
    src: String,
    disk_image_sha: Option<String>,
    name: String,
    sha_url: Option<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    description: Option<String>,
    added_at: Option<String>,
}

impl EntryRowJson {
    fn from_listed(listed: ListedEntry) -> Option<Self> {
        let entry = listed.entry?;
        Some(Self {
            bty_image_ref: entry.r#ref,
            // As every other answer: stored URL credentials never go out.
            src: redact::url(&entry.src, Audience::Authenticated),
            disk_image_sha: entry.sha256.or(listed.cached_sha256),
            name: entry.name,
            // A URL like `src`: no credentials go out.
            sha_url: entry
                .sha_url
                .map(|u| redact::url(&u, Audience::Authenticated)),
            format: entry.format,
            size_bytes: entry.size_bytes,
            description: entry.description,
            added_at: listed.added_at,
        })
    }
}

/// `GET /catalog/entries`: the remote entries in the order they were added
/// (local files are rows of `GET /images`, not entries). Sources show no
/// userinfo and no credential-looking query values (`DELETE
/// /catalog/entries?src=` takes the `bty_image_ref` too).
pub(crate) async fn list_entries(
    State(state): State<AppState>,
) -> Result<Json<Vec<EntryRowJson>>, WebError> {
    let mut stream = state
        .catalog()
        .list_entries(ListEntriesRequest {})
        .await?
        .into_inner();
    let mut rows = Vec::new();
    while let Some(page) = stream.message().await? {
        rows.extend(
            page.entries
                .into_iter()
                .filter_map(EntryRowJson::from_listed),
        );
    }
    Ok(Json(rows))
}

/// An optional string field: absent and empty mean the same.
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `POST /catalog/entries` → 201 with the new entry.
pub(crate) async fn add_entry(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AddEntryBody>,
) -> Result<(StatusCode, Json<EntryJson>), WebError> {
    let url = body.image_url.trim().to_owned();
    if url.is_empty() {
        return Err(InvalidRequest::Missing { field: "image_url" }.into());
    }
    let request = AddEntryRequest {
        url,
        name: given(body.name),
        sha256: given(body.sha256),
        r#ref: given(body.reference),
        sha_url: given(body.sha_url),
    };
    let entry = state.catalog().add_entry(request).await?.into_inner();
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// Query of `DELETE /catalog/entries`.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveQuery {
    src: String,
}

/// `DELETE /catalog/entries?src=` → 204.
pub(crate) async fn remove_entry(
    State(state): State<AppState>,
    QueryArgs(query): QueryArgs<RemoveQuery>,
) -> Result<StatusCode, WebError> {
    if query.src.trim().is_empty() {
        return Err(InvalidRequest::Missing { field: "src" }.into());
    }
    let request = RemoveEntryRequest {
        src_or_ref: query.src,
    };
    state.catalog().remove_entry(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `POST /catalog/import`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImportQuery {
    source: String,
}

/// The answer of an import.
#[derive(Debug, Serialize)]
pub(crate) struct ImportJson {
    source: String,
    imported: u32,
    updated: u32,
    skipped: u32,
    errors: Vec<EntryErrorJson>,
}

#[derive(Debug, Serialize)]
struct EntryErrorJson {
    name: String,
    error: String,
}

impl From<ImportReport> for ImportJson {
    fn from(report: ImportReport) -> Self {
        Self {
            source: report.source,
            imported: report.imported,
            updated: report.updated,
            skipped: report.skipped,
            errors: report
                .errors
                .into_iter()
                .map(|e| EntryErrorJson {
                    name: e.name,
                    error: e.error,
                })
                .collect(),
        }
    }
}

/// `POST /catalog/import?source=<url>`: an http(s) URL or oras reference
/// the daemon fetches. Upstream also took a path on the daemon's host; bty
/// refuses that, since the daemon runs as root and would open any file a
/// web client named (upload the file on the images page instead).
pub(crate) async fn import(
    State(state): State<AppState>,
    QueryArgs(query): QueryArgs<ImportQuery>,
) -> Result<Json<ImportJson>, WebError> {
    let source = query.source.trim().to_owned();
    if source.is_empty() {
        return Err(InvalidRequest::Missing { field: "source" }.into());
    }
    let is_url = ["http://", "https://", "oras://"]
        .iter()
        .any(|p| source.starts_with(p));
    if !is_url {
        return Err(InvalidRequest::CatalogSource {
            given: source.to_owned(),
        }
        .into());
    }
    let request = ImportCatalogRequest {
        label: source.clone(),
        source: Some(Source::Url(source)),
    };
    let report = state.catalog().import_catalog(request).await?.into_inner();
    Ok(Json(report.into()))
}
