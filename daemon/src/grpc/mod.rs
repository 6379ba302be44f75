//! The gRPC control plane: `bty.v1` services plus `grpc.health.v1` and
//! reflection, served on the Unix socket and optionally on TCP.

mod audit;
mod catalog;
mod convert;
mod events;
mod flash;
mod jobs;
mod listing;
mod open;
mod remote_read;
mod sha_url;
mod status;

pub use catalog::CatalogApi;
pub use events::EventApi;
pub use flash::FlashApi;
pub use jobs::JobApi;

use bty_proto::v1::{
    catalog_service_server::CatalogServiceServer, event_service_server::EventServiceServer,
    flash_service_server::FlashServiceServer, job_service_server::JobServiceServer,
};
use std::future::Future;
use thiserror::Error;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::Server;

/// Why the gRPC server could not be built or stopped with an error.
#[derive(Debug, Error)]
pub enum GrpcError {
    /// The reflection descriptor set is unusable (a build bug).
    #[error("cannot build the reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed (TLS settings included).
    #[error("grpc server failed")]
    Transport(#[from] tonic::transport::Error),
    /// A TLS certificate or key file could not be read.
    #[error("cannot read the gRPC TLS file {path}")]
    TlsFile {
        /// `[grpc] tls_cert` or `tls_key`.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The TCP listener's TLS identity from PEM files (`[grpc] tls_cert`,
/// `tls_key`), read once at start.
pub fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tonic::transport::ServerTlsConfig, GrpcError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| GrpcError::TlsFile {
            path: path.to_owned(),
            source,
        })
    };
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    Ok(tonic::transport::ServerTlsConfig::new().identity(identity))
}

/// The bty services, cloned into each listener.
#[derive(Debug, Clone)]
pub struct Services {
    /// CatalogService.
    pub catalog: CatalogApi,
    /// JobService.
    pub jobs: JobApi,
    /// EventService.
    pub events: EventApi,
    /// FlashService.
    pub flash: FlashApi,
}

/// Serve on a Unix listener until `shutdown` resolves. Access is the
/// socket's file mode and group.
pub async fn serve_unix(
    services: Services,
    listener: tokio::net::UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    router(services, None, None)
        .await?
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Serve on a TCP listener until `shutdown` resolves; every call must
/// carry `authorization: Bearer <token>`, and with `tls` every connection
/// is TLS (tonic does the handshake on each accepted stream).
pub async fn serve_tcp(
    services: Services,
    listener: tokio::net::TcpListener,
    token: String,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    router(services, Some(token.into()), tls)
        .await?
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Checks the bearer token (when there is one) on every call.
#[derive(Clone)]
struct BearerToken(Option<std::sync::Arc<str>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Constant time in the token's length: no early exit on a mismatch.
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(request)
        } else {
            tracing::warn!(peer = ?request.remote_addr(), "rejected a TCP call without a valid token");
            Err(tonic::Status::unauthenticated(
                "a valid bearer token is required",
            ))
        }
    }
}

type Layered = tower::layer::util::Stack<
    tonic::service::InterceptorLayer<BearerToken>,
    tower::layer::util::Identity,
>;

async fn router(
    services: Services,
    token: Option<std::sync::Arc<str>>,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<tonic::transport::server::Router<Layered>, GrpcError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<CatalogServiceServer<CatalogApi>>()
        .await;
    reporter.set_serving::<JobServiceServer<JobApi>>().await;
    reporter.set_serving::<EventServiceServer<EventApi>>().await;
    reporter.set_serving::<FlashServiceServer<FlashApi>>().await;
    // Both reflection versions: grpcurl speaks v1, many clients (Python's
    // grpcio-reflection among them) still ask v1alpha.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bty_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bty_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    Ok(builder
        .initial_stream_window_size(bty_proto::channel::STREAM_WINDOW)
        .initial_connection_window_size(bty_proto::channel::CONNECTION_WINDOW)
        .max_frame_size(bty_proto::channel::MAX_FRAME)
        .layer(tonic::service::InterceptorLayer::new(BearerToken(token)))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(catalog_server(services.catalog))
        .add_service(JobServiceServer::new(services.jobs))
        .add_service(EventServiceServer::new(services.events))
        .add_service(FlashServiceServer::new(services.flash)))
}

/// The catalog service, taking import requests as large as the catalog
/// limit (tonic's default cap is 4 MiB).
fn catalog_server(api: CatalogApi) -> CatalogServiceServer<CatalogApi> {
    let import_cap = usize::try_from(api.info.max_catalog_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 << 10);
    CatalogServiceServer::new(api).max_decoding_message_size(import_cap)
}

#[cfg(test)]
mod tests {
    use super::BearerToken;
    use tonic::service::Interceptor;

    fn call(token: Option<&str>, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut check = BearerToken(token.map(Into::into));
        let mut request = tonic::Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        check.call(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn tcp_calls_need_the_bearer_token() {
        let token = Some("0123456789abcdef");
        assert_eq!(call(token, Some("Bearer 0123456789abcdef")), Ok(()));
        for bad in [
            None,
            Some("Bearer wrong"),
            Some("0123456789abcdef"),
            Some("Bearer 0123456789abcdeF"),
        ] {
            assert_eq!(
                call(token, bad),
                Err(tonic::Code::Unauthenticated),
                "{bad:?}"
            );
        }
        // The Unix socket has no token: access is the socket's mode.
        assert_eq!(call(None, None), Ok(()));
    }
}
