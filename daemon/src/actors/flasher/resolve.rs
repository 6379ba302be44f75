//! From the name a client gave to something a flash can read: a listed
//! file (opened and checked against the scan, off the async threads), a
//! stream the downloader opens (an entry without a local copy, or a URL),
//! or a download into the image root to wait for (a remote qcow2, which is
//! converted from a file, not a stream).

use super::error::FlasherError;
use super::messages::ImageInput;
use super::mode::name_needs_a_file;
use super::pending::PendingDownload;
use crate::actors::catalog::{CatalogError, CatalogHandle};
use crate::actors::downloader::DownloaderHandle;
use bty_store::canon::canonicalise_src;

/// The image and, for a stored file, the sha256 its bytes must have.
pub(crate) struct Resolved {
    pub(crate) image: ImageInput,
    pub(crate) sha256: Option<String>,
}

/// Resolve `key`: a row id, sha256, ref, entry or file name, or a URL.
pub(crate) async fn resolve(
    catalog: &CatalogHandle,
    downloader: &DownloaderHandle,
    trusted_prefixes: &[String],
    key: &str,
) -> Result<Resolved, FlasherError> {
    match catalog.resolve_local(key).await {
        Ok(local) => {
            // Pulls under a rule are checked as they happen; a copy stored
            // without that check (before the rule existed) is not flashed.
            if local.signed_by.is_none()
                && let Some(rule) = trusted_prefixes.iter().find(|p| {
                    local
                        .remote_sources
                        .iter()
                        .any(|s| s.starts_with(p.as_str()))
                })
            {
                return Err(FlasherError::Unsigned {
                    file: local.file_name,
                    rule: rule.clone(),
                });
            }
            let sha256 = local.sha256.clone();
            let image = tokio::task::spawn_blocking(move || local.open())
                .await
                .map_err(FlasherError::OpenTask)??;
            Ok(Resolved {
                image: ImageInput::File(image),
                sha256,
            })
        }
        Err(not_local) if not_local.is_not_found() => Ok(Resolved {
            image: remote(catalog, downloader, key, not_local).await?,
            sha256: None,
        }),
        Err(e) => Err(e.into()),
    }
}

/// An entry without a local copy, or an http(s) URL or `oras://` reference:
/// streamed, except a qcow2 entry, which is downloaded first. `not_local`
/// is the catalog's word for a key that is neither.
async fn remote(
    catalog: &CatalogHandle,
    downloader: &DownloaderHandle,
    key: &str,
    not_local: CatalogError,
) -> Result<ImageInput, FlasherError> {
    let (src, pinned, sha_url, name) = match catalog.download_spec(key, false).await {
        Ok(spec) if name_needs_a_file(&spec.cache_file_name) => {
            let download = downloader.fetch(spec).await?;
            return Ok(ImageInput::Download(PendingDownload {
                job_id: download.id,
                key: key.to_owned(),
            }));
        }
        Ok(spec) => (
            spec.src,
            spec.pinned_sha256,
            spec.sha_url,
            Some(spec.cache_file_name),
        ),
        Err(_) if key.contains("://") => (canonicalise_src(key)?, None, None, None),
        Err(_) => return Err(not_local.into()),
    };
    let stream = downloader.open_stream(&src, pinned, sha_url, name).await?;
    Ok(ImageInput::Stream(stream))
}
