//! `bty.v1.FlashService`: validate, send one message to the flasher (which
//! resolves the image and checks the targets), convert the reply.

use super::audit::audit;
use super::convert;
use crate::actors::flasher::{ConfirmedTarget, FlashOrder, FlasherHandle};
use crate::events::EventBus;
use bty_proto::v1::{self, flash_service_server::FlashService};
use std::path::PathBuf;
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub struct FlashApi {
    pub(crate) flasher: FlasherHandle,
    pub(crate) events: EventBus,
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
        let subject = flash_subject(request.get_ref());
        audit(&self.events, &request, "Flash", &subject);
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
        let order = FlashOrder {
            image: r.image,
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
            incremental: r.incremental,
        };
        let job = self.flasher.flash(order).await?;
        Ok(Response::new(convert::job(job)))
    }
}

/// What a flash names in the event log: the image and its targets.
fn flash_subject(request: &v1::FlashRequest) -> String {
    let targets: Vec<&str> = request.targets.iter().map(|t| t.path.as_str()).collect();
    format!("{} onto {}", request.image, targets.join(", "))
}
