//! The handlers' shared state: one gRPC client per bty service, all on the
//! same channel (tonic clients are cheap clones of it), and the login
//! sessions.

use crate::WebOptions;
use crate::auth::{Credentials, Limiter, Sessions};
use bty_proto::auth::Bearer;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::event_service_client::EventServiceClient;
use bty_proto::v1::flash_service_client::FlashServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;
use bty_proto::v1::{
    DescribeStoreRequest, Image, ListImagesRequest, ListImagesResponse, StoreInfo,
};
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The channel to btyd; every call says whom it is made for (the browser's
/// address, set by the guard), which btyd enters in its event log.
type Link = InterceptedService<Channel, Bearer>;

/// Clients of btyd plus the adapter's own options.
#[derive(Clone)]
pub(crate) struct AppState {
    catalog: CatalogServiceClient<Link>,
    jobs: JobServiceClient<Link>,
    events: EventServiceClient<Link>,
    flash: FlashServiceClient<Link>,
    options: Arc<WebOptions>,
    credentials: Arc<Credentials>,
    sessions: Arc<Sessions>,
    limiter: Arc<Limiter>,
}

impl AppState {
    pub(crate) fn new(channel: Channel, options: WebOptions) -> Self {
        let credentials = Arc::new(Credentials::new(&options.auth));
        Self {
            catalog: CatalogServiceClient::with_interceptor(channel.clone(), Bearer::none()),
            jobs: JobServiceClient::with_interceptor(channel.clone(), Bearer::none()),
            events: EventServiceClient::with_interceptor(channel.clone(), Bearer::none()),
            flash: FlashServiceClient::with_interceptor(channel, Bearer::none()),
            options: Arc::new(options),
            credentials,
            sessions: Arc::new(Sessions::default()),
            limiter: Arc::new(Limiter::default()),
        }
    }

    /// A client for one request (clones share the channel).
    pub(crate) fn catalog(&self) -> CatalogServiceClient<Link> {
        self.catalog.clone()
    }

    /// Every row matching `query` and `id` ("" = any), read as one
    /// listing in bounded messages, whatever the catalog's size.
    pub(crate) async fn all_images(
        &self,
        query: &str,
        id: &str,
    ) -> Result<Vec<Image>, tonic::Status> {
        let request = ListImagesRequest {
            query: query.to_owned(),
            id: id.to_owned(),
            ..ListImagesRequest::default()
        };
        let mut stream = self.catalog().stream_images(request).await?.into_inner();
        let mut images = Vec::new();
        while let Some(page) = stream.message().await? {
            images.reserve(
                usize::try_from(page.total)
                    .unwrap_or(0)
                    .saturating_sub(images.len()),
            );
            images.extend(page.images);
        }
        Ok(images)
    }

    /// One page of the rows matching `query`.
    pub(crate) async fn images_page(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<ListImagesResponse, tonic::Status> {
        let request = ListImagesRequest {
            query: query.to_owned(),
            offset: offset as u64,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            ..ListImagesRequest::default()
        };
        Ok(self.catalog().list_images(request).await?.into_inner())
    }

    pub(crate) fn jobs(&self) -> JobServiceClient<Link> {
        self.jobs.clone()
    }

    pub(crate) fn events(&self) -> EventServiceClient<Link> {
        self.events.clone()
    }

    pub(crate) fn flash(&self) -> FlashServiceClient<Link> {
        self.flash.clone()
    }

    /// The secrets a request may prove it knows.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The login attempt limiter.
    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Whether the fetch routes answer without a credential.
    pub(crate) fn public_read(&self) -> bool {
        self.options.public_read
    }

    /// Whether the listener speaks TLS.
    pub(crate) fn tls(&self) -> bool {
        self.options.tls
    }

    /// `http(s)://host[:port]` of this request, for URLs other machines fetch.
    pub(crate) fn origin(&self, headers: &axum::http::HeaderMap) -> String {
        crate::fmt::origin(headers, self.tls())
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
