//! A test double of btyd for adapter-level tests: the three bty gRPC
//! services answering from fixed data on a Unix socket in a temp dir, the
//! router on a channel to it, and request helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bty_proto::channel::Target;
use bty_proto::v1::catalog_service_server::{CatalogService, CatalogServiceServer};
use bty_proto::v1::event_service_server::{EventService, EventServiceServer};
use bty_proto::v1::job_service_server::{JobService, JobServiceServer};
use bty_proto::v1::*;
use bty_web::{WebOptions, router};
use std::sync::{Arc, Mutex, MutexGuard};
use tempfile::TempDir;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Code, Request as GrpcRequest, Response, Status};
use tower::ServiceExt as _;

mod fixtures;
pub use fixtures::*;

/// What the fake daemon answers, and what it was asked.
#[derive(Debug, Default)]
pub struct Daemon {
    pub images: Vec<Image>,
    pub jobs: Vec<Job>,
    pub events: Vec<Event>,
    pub store: StoreInfo,
    pub export_toml: String,
    /// When set, every RPC fails with this code and message.
    pub fail: Option<(Code, String)>,
    pub imports: Vec<ImportCatalogRequest>,
    pub fetch_latest_calls: usize,
    pub added: Vec<AddEntryRequest>,
    pub removed: Vec<String>,
    pub hashed: Vec<String>,
    pub cancelled: Vec<String>,
    pub export_base_urls: Vec<String>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<Daemon>>);

impl Fake {
    /// The state, or the configured failure.
    fn daemon(&self) -> Result<MutexGuard<'_, Daemon>, Status> {
        let daemon = self.0.lock().unwrap();
        match &daemon.fail {
            Some((code, message)) => Err(Status::new(*code, message.clone())),
            None => Ok(daemon),
        }
    }
}

fn report(source: &str) -> ImportReport {
    ImportReport {
        source: source.to_owned(),
        imported: 2,
        updated: 1,
        skipped: 0,
        errors: vec![],
    }
}

#[tonic::async_trait]
impl CatalogService for Fake {
    async fn list_images(
        &self,
        _: GrpcRequest<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        Ok(Response::new(ListImagesResponse {
            images: self.daemon()?.images.clone(),
        }))
    }

    async fn add_entry(
        &self,
        request: GrpcRequest<AddEntryRequest>,
    ) -> Result<Response<Entry>, Status> {
        let request = request.into_inner();
        self.daemon()?.added.push(request.clone());
        Ok(Response::new(Entry {
            name: request.name.unwrap_or_else(|| "disk.img.zst".to_owned()),
            src: request.url,
            r#ref: "ab".repeat(32),
            sha256: request.sha256,
            format: Some("img.zst".to_owned()),
            size_bytes: Some(42),
            description: None,
        }))
    }

    async fn remove_entry(
        &self,
        request: GrpcRequest<RemoveEntryRequest>,
    ) -> Result<Response<RemoveEntryResponse>, Status> {
        let src = request.into_inner().src_or_ref;
        self.daemon()?.removed.push(src.clone());
        let removed = Entry {
            name: "x".to_owned(),
            src,
            ..Entry::default()
        };
        Ok(Response::new(RemoveEntryResponse {
            removed: Some(removed),
            cache_removed: false,
        }))
    }

    async fn import_catalog(
        &self,
        request: GrpcRequest<ImportCatalogRequest>,
    ) -> Result<Response<ImportReport>, Status> {
        let request = request.into_inner();
        let label = request.label.clone();
        self.daemon()?.imports.push(request);
        Ok(Response::new(report(&label)))
    }

    async fn fetch_latest_catalog(
        &self,
        _: GrpcRequest<FetchLatestCatalogRequest>,
    ) -> Result<Response<ImportReport>, Status> {
        let mut daemon = self.daemon()?;
        daemon.fetch_latest_calls += 1;
        Ok(Response::new(report(
            &daemon.store.release_catalog_url.clone(),
        )))
    }

    async fn export_catalog(
        &self,
        request: GrpcRequest<ExportCatalogRequest>,
    ) -> Result<Response<ExportCatalogResponse>, Status> {
        let mut daemon = self.daemon()?;
        daemon.export_base_urls.push(request.into_inner().base_url);
        Ok(Response::new(ExportCatalogResponse {
            toml: daemon.export_toml.clone(),
        }))
    }

    async fn hash_image(
        &self,
        request: GrpcRequest<HashImageRequest>,
    ) -> Result<Response<Job>, Status> {
        let name = request.into_inner().name;
        self.daemon()?.hashed.push(name.clone());
        Ok(Response::new(hash_job(
            "h-new",
            &name,
            JobState::Queued,
            0,
            Some(10),
        )))
    }

    async fn describe_store(
        &self,
        _: GrpcRequest<DescribeStoreRequest>,
    ) -> Result<Response<StoreInfo>, Status> {
        Ok(Response::new(self.daemon()?.store.clone()))
    }

    async fn fetch_image(
        &self,
        _: GrpcRequest<bty_proto::v1::FetchImageRequest>,
    ) -> Result<Response<bty_proto::v1::Job>, Status> {
        Err(Status::unimplemented("fake daemon: fetch"))
    }

    async fn delete_cache(
        &self,
        _: GrpcRequest<bty_proto::v1::DeleteCacheRequest>,
    ) -> Result<Response<bty_proto::v1::DeleteCacheResponse>, Status> {
        Err(Status::unimplemented("fake daemon: delete cache"))
    }

    async fn push_image(
        &self,
        _: GrpcRequest<bty_proto::v1::PushImageRequest>,
    ) -> Result<Response<bty_proto::v1::Job>, Status> {
        Err(Status::unimplemented("fake daemon: push"))
    }

    async fn upload_image(
        &self,
        _: GrpcRequest<tonic::Streaming<bty_proto::v1::UploadImageChunk>>,
    ) -> Result<Response<bty_proto::v1::UploadImageResponse>, Status> {
        Err(Status::unimplemented("fake daemon: upload"))
    }
}

#[tonic::async_trait]
impl JobService for Fake {
    async fn list_jobs(
        &self,
        request: GrpcRequest<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let request = request.into_inner();
        let jobs = self
            .daemon()?
            .jobs
            .iter()
            .filter(|j| request.kind == 0 || j.kind == request.kind)
            .filter(|j| {
                !request.active_only
                    || j.state == JobState::Queued as i32
                    || j.state == JobState::Running as i32
            })
            .cloned()
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn get_job(&self, _: GrpcRequest<GetJobRequest>) -> Result<Response<Job>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn cancel_job(
        &self,
        request: GrpcRequest<CancelJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let id = request.into_inner().id;
        let mut daemon = self.daemon()?;
        daemon.cancelled.push(id.clone());
        let job = daemon.jobs.iter().find(|j| j.id == id).cloned();
        let mut job = job.ok_or_else(|| Status::not_found("no such job"))?;
        job.state = JobState::Cancelled as i32;
        Ok(Response::new(job))
    }

    type WatchJobStream = tokio_stream::Empty<Result<Job, Status>>;

    async fn watch_job(
        &self,
        _: GrpcRequest<GetJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }
}

#[tonic::async_trait]
impl EventService for Fake {
    type SubscribeStream = tokio_stream::Empty<Result<Event, Status>>;

    async fn subscribe(
        &self,
        _: GrpcRequest<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::unimplemented("not in the test double"))
    }

    async fn recent_events(
        &self,
        _: GrpcRequest<RecentEventsRequest>,
    ) -> Result<Response<RecentEventsResponse>, Status> {
        Ok(Response::new(RecentEventsResponse {
            events: self.daemon()?.events.clone(),
        }))
    }
}

/// A running fake daemon and a router connected to it.
pub struct Harness {
    pub daemon: Arc<Mutex<Daemon>>,
    pub router: Router,
    _dir: TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Harness {
    pub async fn start(daemon: Daemon) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("btyd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let daemon = Arc::new(Mutex::new(daemon));
        let fake = Fake(daemon.clone());
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(CatalogServiceServer::new(fake.clone()))
                .add_service(JobServiceServer::new(fake.clone()))
                .add_service(EventServiceServer::new(fake))
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await
                .unwrap();
        });
        let channel = Target::Unix(socket).lazy_channel().unwrap();
        let router = router(channel, WebOptions::default());
        Self {
            daemon,
            router,
            _dir: dir,
            _server: server,
        }
    }

    pub fn daemon(&self) -> MutexGuard<'_, Daemon> {
        self.daemon.lock().unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.router, request).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header("host", "bty.test:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

/// A router whose daemon socket does not exist.
pub fn router_without_daemon(dir: &TempDir) -> Router {
    let channel = Target::Unix(dir.path().join("missing.sock"))
        .lazy_channel()
        .unwrap();
    router(
        channel,
        WebOptions {
            image_root_hint: Some("/srv/hint-images".to_owned()),
        },
    )
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
