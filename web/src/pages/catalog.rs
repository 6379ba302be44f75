//! The images page's catalog forms: `POST /ui/catalog/upload` (multipart
//! catalog.toml) and `POST /ui/catalog/fetch-release`. Both answer with a
//! `303` back to the images page, carrying `?error=` on failure, as
//! upstream's forms did. Parsing and importing are the daemon's job.

use crate::body_limit::refuse_declared_over;
use crate::error::{BadRequest, InvalidRequest, TooLarge, WebError, redirect_with_error};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use bty_proto::v1::import_catalog_request::Source;
use bty_proto::v1::{FetchLatestCatalogRequest, ImportCatalogRequest, ImportReport};

/// Largest catalog.toml btyd can be configured to take (its
/// `[catalog] max_catalog_bytes` is at most 1 GiB); each upload is cut at
/// the limit btyd reports, so this only bounds a body btyd never sees.
const MAX_CATALOG_BYTES: usize = 1 << 30;

/// Request body limit of the upload route: the file plus room for the
/// multipart framing, so a file just over the cap still gets a message.
pub(crate) const UPLOAD_BODY_LIMIT: usize = MAX_CATALOG_BYTES + FRAMING;

/// Room for the multipart framing around the file.
const FRAMING: usize = 64 * 1024;

/// The limit when btyd does not say (upstream's 1 MiB, well below btyd's
/// default).
const FALLBACK_LIMIT: usize = 1024 * 1024;

fn too_large(limit: usize) -> WebError {
    TooLarge::CatalogUpload { limit }.into()
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Redirect {
    let limit = match state.store().await {
        Ok(info) => usize::try_from(info.max_catalog_bytes)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(FALLBACK_LIMIT),
        Err(status) => return WebError::from(status).redirect_to_images(),
    };
    // Refused on its declared length before reading: a catalog that cannot
    // fit would otherwise be read up to the limit first.
    let most = u64::try_from(limit.saturating_add(FRAMING)).unwrap_or(u64::MAX);
    if refuse_declared_over(&headers, most, "a catalog upload").is_err() {
        return too_large(limit).redirect_to_images();
    }
    let result = match multipart {
        Ok(multipart) => read_catalog(multipart, limit).await,
        Err(rejection) => Err(InvalidRequest::NotMultipart(rejection).into()),
    };
    let (content, label) = match result {
        Ok(upload) => upload,
        Err(error) => return error.redirect_to_images(),
    };
    let request = ImportCatalogRequest {
        label,
        source: Some(Source::Content(content)),
    };
    match state.catalog().import_catalog(request).await {
        Ok(report) => after_import(&report.into_inner()),
        Err(status) => WebError::from(status).redirect_to_images(),
    }
}

/// The `file` field's bytes and label, checked in upstream's order: present,
/// extension, size, non-empty.
async fn read_catalog(
    mut multipart: Multipart,
    limit: usize,
) -> Result<(Vec<u8>, String), WebError> {
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| read_error(e, limit))?;
        let Some(field) = field else {
            return Err(InvalidRequest::NoFile.into());
        };
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().unwrap_or_default().to_owned();
        if !file_name.is_empty() && !has_catalog_extension(&file_name) {
            return Err(BadRequest::CatalogExtension {
                file_name: file_name.clone(),
            }
            .into());
        }
        let content = read_capped(field, limit).await?;
        if content.is_empty() {
            return Err(BadRequest::EmptyUpload.into());
        }
        let label = if file_name.is_empty() {
            "<upload>".to_owned()
        } else {
            file_name
        };
        return Ok((content, label));
    }
}

fn has_catalog_extension(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    lower.ends_with(".toml") || lower.ends_with(".tml")
}

/// The field's bytes, refusing more than `limit`.
async fn read_capped(mut field: Field<'_>, limit: usize) -> Result<Vec<u8>, WebError> {
    let mut content = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| read_error(e, limit))? {
        if content.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content)
}

/// A body that stopped at the route's limit is an oversized catalog; other
/// read errors are malformed forms.
fn read_error(error: axum::extract::multipart::MultipartError, limit: usize) -> WebError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        InvalidRequest::UploadRead(error).into()
    }
}

/// Back to the images page; entries the daemon refused are reported in the
/// banner, since the rest of the import went through silently.
fn after_import(report: &ImportReport) -> Redirect {
    tracing::info!(
        source = report.source,
        imported = report.imported,
        updated = report.updated,
        skipped = report.skipped,
        errors = report.errors.len(),
        "catalog imported"
    );
    if report.errors.is_empty() {
        return Redirect::to("/ui/images");
    }
    let failed: Vec<String> = report
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.name, e.error))
        .collect();
    let message = format!(
        "imported {} and updated {} entries from {}; {} entries were refused: {}",
        report.imported,
        report.updated,
        report.source,
        report.errors.len(),
        failed.join("; ")
    );
    redirect_with_error("/ui/images", &message)
}

pub(crate) async fn fetch_release(State(state): State<AppState>) -> Redirect {
    match state
        .catalog()
        .fetch_latest_catalog(FetchLatestCatalogRequest {})
        .await
    {
        Ok(report) => after_import(&report.into_inner()),
        Err(status) => WebError::from(status).redirect_to_images(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_toml_and_tml_in_any_case() {
        assert!(has_catalog_extension("catalog.toml"));
        assert!(has_catalog_extension("CATALOG.TML"));
        assert!(!has_catalog_extension("catalog.toml.txt"));
        assert!(!has_catalog_extension("image.img"));
    }
}
