//! The handlers' shared state: one gRPC client per bty service, all on the
//! same channel (tonic clients are cheap clones of it), and the login
//! sessions.

use crate::WebOptions;
use crate::auth::{Credentials, Sessions};
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::event_service_client::EventServiceClient;
use bty_proto::v1::flash_service_client::FlashServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;
use bty_proto::v1::{DescribeStoreRequest, StoreInfo};
use std::sync::Arc;
use tonic::transport::Channel;

/// Clients of btyd plus the adapter's own options.
#[derive(Clone)]
pub(crate) struct AppState {
    catalog: CatalogServiceClient<Channel>,
    jobs: JobServiceClient<Channel>,
    events: EventServiceClient<Channel>,
    flash: FlashServiceClient<Channel>,
    options: Arc<WebOptions>,
    /// `None` when no login is configured (loopback only).
    credentials: Option<Arc<Credentials>>,
    sessions: Arc<Sessions>,
}

impl AppState {
    pub(crate) fn new(channel: Channel, options: WebOptions) -> Self {
        let credentials = options
            .auth
            .as_ref()
            .filter(|a| a.is_configured())
            .map(|a| Arc::new(Credentials::new(a)));
        Self {
            catalog: CatalogServiceClient::new(channel.clone()),
            jobs: JobServiceClient::new(channel.clone()),
            events: EventServiceClient::new(channel.clone()),
            flash: FlashServiceClient::new(channel),
            options: Arc::new(options),
            credentials,
            sessions: Arc::new(Sessions::default()),
        }
    }

    /// A client for one request (clones share the channel).
    pub(crate) fn catalog(&self) -> CatalogServiceClient<Channel> {
        self.catalog.clone()
    }

    pub(crate) fn jobs(&self) -> JobServiceClient<Channel> {
        self.jobs.clone()
    }

    pub(crate) fn events(&self) -> EventServiceClient<Channel> {
        self.events.clone()
    }

    pub(crate) fn flash(&self) -> FlashServiceClient<Channel> {
        self.flash.clone()
    }

    /// The configured secrets, when a login is required.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_deref()
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// `DescribeStore`, as a `Result` for callers that must have it.
    pub(crate) async fn store(&self) -> Result<StoreInfo, tonic::Status> {
        self.catalog()
            .describe_store(DescribeStoreRequest {})
            .await
            .map(tonic::Response::into_inner)
    }

    /// The image root to show on a page: the daemon's, else the configured
    /// hint, else a neutral phrase. Pages still render when this fails.
    pub(crate) fn image_root_or_hint(&self, store: Option<&StoreInfo>) -> String {
        store
            .map(|s| s.image_root.clone())
            .filter(|root| !root.is_empty())
            .or_else(|| self.options.image_root_hint.clone())
            .unwrap_or_else(|| "the image root".to_owned())
    }
}
