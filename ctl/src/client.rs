//! The connection to btyd: one channel, opened once, shared by the
//! per-service clients every command uses.

use crate::exit::CtlError;
use bty_proto::auth::ClientAuth;
use bty_proto::channel::{AuthChannel, Target};
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::event_service_client::EventServiceClient;
use bty_proto::v1::flash_service_client::FlashServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;

/// A connected daemon.
#[derive(Debug, Clone)]
pub(crate) struct Daemon {
    channel: AuthChannel,
}

impl Daemon {
    /// Connect to `target`, failing now (exit 6) if btyd is not there.
    /// On TCP every call carries the token, over TLS for `https://`.
    pub(crate) async fn connect(target: &Target, auth: &ClientAuth) -> Result<Self, CtlError> {
        let channel = target.connect_authed(auth).await?;
        Ok(Self { channel })
    }

    /// The catalog service (images, entries, catalog import/export, hashing).
    pub(crate) fn catalog(&self) -> CatalogServiceClient<AuthChannel> {
        CatalogServiceClient::new(self.channel.clone())
    }

    /// The flash service (disk listing, flashing).
    pub(crate) fn flash(&self) -> FlashServiceClient<AuthChannel> {
        FlashServiceClient::new(self.channel.clone())
    }

    /// The event service (the live stream of jobs, catalog and disk changes).
    pub(crate) fn events(&self) -> EventServiceClient<AuthChannel> {
        EventServiceClient::new(self.channel.clone())
    }

    /// The job service (list, watch, cancel).
    pub(crate) fn jobs(&self) -> JobServiceClient<AuthChannel> {
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
