//! The gRPC control plane: `bty.v1` services plus `grpc.health.v1` and
//! reflection, served on the Unix socket and optionally on TCP.

mod catalog;
mod convert;
mod events;
mod flash;
mod jobs;
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
    /// The transport failed.
    #[error("grpc server failed")]
    Transport(#[from] tonic::transport::Error),
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

/// Serve on a Unix listener until `shutdown` resolves.
pub async fn serve_unix(
    services: Services,
    listener: tokio::net::UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    router(services)
        .await?
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Serve on a TCP listener until `shutdown` resolves.
pub async fn serve_tcp(
    services: Services,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    router(services)
        .await?
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

async fn router(services: Services) -> Result<tonic::transport::server::Router, GrpcError> {
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
    Ok(Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(CatalogServiceServer::new(services.catalog))
        .add_service(JobServiceServer::new(services.jobs))
        .add_service(EventServiceServer::new(services.events))
        .add_service(FlashServiceServer::new(services.flash)))
}
