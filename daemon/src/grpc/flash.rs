//! `bty.v1.FlashService`: validate, resolve the image, call the flasher.

use super::audit::audit;
use super::convert;
use crate::actors::catalog::CatalogHandle;
use crate::actors::flasher::{ConfirmedTarget, FlashJobRequest, FlasherHandle};
use bty_proto::v1::{self, flash_service_server::FlashService};
use std::path::PathBuf;
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub struct FlashApi {
    pub(crate) flasher: FlasherHandle,
    pub(crate) catalog: CatalogHandle,
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
        // An absolute path names a file directly; anything else is resolved
        // by the catalog (row id, sha256, ref, entry or file name).
        let (image, sha256) = if r.image.starts_with('/') {
            (PathBuf::from(&r.image), None)
        } else if r.image.contains("://") {
            let local = self.catalog.resolve_local(&r.image).await.map_err(|_| {
                Status::failed_precondition(format!(
                    "{} has no local copy; fetch it first (btyctl fetch)",
                    r.image
                ))
            })?;
            (local.path, local.sha256)
        } else {
            let local = self.catalog.resolve_local(&r.image).await?;
            (local.path, local.sha256)
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
                    })
                    .collect(),
                verify: !r.no_verify,
                allow_file: r.allow_file,
            })
            .await?;
        Ok(Response::new(convert::job(job)))
    }
}
