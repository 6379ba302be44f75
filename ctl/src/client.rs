//! The connection to btyd: one channel, opened once, shared by the
//! per-service clients every command uses.

use crate::exit::CtlError;
use bty_proto::channel::Target;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::flash_service_client::FlashServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;
use tonic::transport::Channel;

/// A connected daemon.
#[derive(Debug, Clone)]
pub(crate) struct Daemon {
    channel: Channel,
}

impl Daemon {
    /// Connect to `target`, failing now (exit 6) if btyd is not there.
    pub(crate) async fn connect(target: &Target) -> Result<Self, CtlError> {
        let channel = target.connect().await?;
        Ok(Self { channel })
    }

    /// The catalog service (images, entries, catalog import/export, hashing).
    pub(crate) fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel.clone())
    }

    /// The flash service (disk listing, flashing).
    pub(crate) fn flash(&self) -> FlashServiceClient<Channel> {
        FlashServiceClient::new(self.channel.clone())
    }

    /// The job service (list, watch, cancel).
    pub(crate) fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone())
    }
}

/// What every command gets: the daemon and the output mode.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The connected daemon.
    pub(crate) daemon: Daemon,
    /// JSON or human output.
    pub(crate) out: crate::output::Output,
}
