//! `bty.v1.FlashService`: validate, resolve the image (a file, or a stream
//! the downloader opens), call the flasher.

use super::audit::audit;
use super::convert;
use crate::actors::catalog::{CatalogError, CatalogHandle};
use crate::actors::downloader::DownloaderHandle;
use crate::actors::flasher::{
    ConfirmedTarget, FlashJobRequest, FlasherHandle, ImageInput, PendingDownload,
};
use bty_proto::v1::{self, flash_service_server::FlashService};
use bty_store::canon::canonicalise_src;
use std::path::PathBuf;
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub struct FlashApi {
    pub(crate) flasher: FlasherHandle,
    pub(crate) catalog: CatalogHandle,
    pub(crate) downloader: DownloaderHandle,
}

impl FlashApi {
    /// Resolve `key` (a catalog entry without a local copy, or an http(s)
    /// URL or `oras://` reference) to a stream the downloader opens. A
    /// qcow2 entry cannot be converted from a stream: it is downloaded into
    /// the image root first, and the flash follows that download.
    /// `not_local` is the catalog's word for a key that is neither.
    async fn remote(&self, key: &str, not_local: String) -> Result<ImageInput, Status> {
        let (src, pinned, name) = match self.catalog.download_spec(key, false).await {
            Ok(spec) if spec.cache_file_name.ends_with(".qcow2") => {
                let download = self.downloader.fetch(spec).await?;
                return Ok(ImageInput::Download(PendingDownload {
                    job_id: download.id,
                    key: key.to_owned(),
                    downloader: self.downloader.clone(),
                    catalog: self.catalog.clone(),
                }));
            }
            Ok(spec) => (spec.src, spec.pinned_sha256, Some(spec.cache_file_name)),
            Err(_) if key.contains("://") => {
                let src = canonicalise_src(key)
                    .map_err(|e| Status::invalid_argument(format!("invalid image url: {e}")))?;
                (src, None, None)
            }
            Err(_) => return Err(Status::not_found(not_local)),
        };
        let stream = self.downloader.open_stream(&src, pinned, name).await?;
        Ok(ImageInput::Stream(stream))
    }
}

#[tonic::async_trait]
impl FlashService for FlashApi {
    async fn list_disks(
        &self,
        _request: Request<v1::ListDisksRequest>,
    ) -> Result<Response<v1::ListDisksResponse>, Status> {
        let disks = self.flasher.list_disks().await?;
        Ok(Response::new(v1::ListDisksResponse {
            disks: disks.into_iter().map(convert::disk).collect(),
        }))
    }

    async fn flash(&self, request: Request<v1::FlashRequest>) -> Result<Response<v1::Job>, Status> {
        audit(&request, "Flash");
        let r = request.into_inner();
        if r.image.trim().is_empty() {
            return Err(Status::invalid_argument("image is required"));
        }
        if r.targets.is_empty() {
            return Err(Status::invalid_argument("at least one target is required"));
        }
        // Images are named, never given by path: the daemon runs as root
        // and reads only what its catalog lists (row id, sha256, ref, entry
        // or file name), through the descriptor checked against the scan.
        // An entry without a local copy, or a URL, is streamed.
        if r.image.starts_with('/') || r.image.starts_with("./") || r.image.starts_with("../") {
            return Err(Status::invalid_argument(format!(
                "image {:?} is a path; btyd flashes only images it lists (row id, sha256, ref, \
                 name) or URLs: put the file into the image root first (btyctl upload FILE)",
                r.image
            )));
        }
        let (image, sha256) = match self.catalog.resolve_local(&r.image).await {
            Ok(local) => (
                ImageInput::File(super::open::open_listed(&local).await?),
                local.sha256,
            ),
            Err(CatalogError::NotFound(why)) => (self.remote(&r.image, why).await?, None),
            Err(e) => return Err(e.into()),
        };
        let job = self
            .flasher
            .flash(FlashJobRequest {
                image,
                label: r.image,
                sha256,
                targets: r
                    .targets
                    .into_iter()
                    .map(|t| ConfirmedTarget {
                        path: PathBuf::from(t.path),
                        size_bytes: t.confirmed_size_bytes,
                        serial: t.confirmed_serial,
                        model: t.confirmed_model,
                        diskseq: t.confirmed_diskseq,
                    })
                    .collect(),
                verify: !r.no_verify,
            })
            .await?;
        Ok(Response::new(convert::job(job)))
    }
}
