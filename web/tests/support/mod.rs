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
use bty_proto::v1::flash_service_server::{FlashService, FlashServiceServer};
use bty_proto::v1::job_service_server::{JobService, JobServiceServer};
use bty_proto::v1::*;
use bty_web::{WebOptions, router};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use tempfile::TempDir;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Code, Request as GrpcRequest, Response, Status};
use tower::ServiceExt as _;

mod fixtures;
pub use fixtures::*;

/// What the fake daemon answers, and what it was asked.
#[derive(Debug, Default)]
pub struct Daemon {
    pub images: Vec<Image>,
    pub jobs: Vec<Job>,
    /// The event log, newest first.
    pub events: Vec<LoggedEvent>,
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
    /// `ListImagesRequest.query` of every listing.
    pub list_queries: Vec<String>,
    pub fetched: Vec<FetchImageRequest>,
    pub cache_deleted: Vec<String>,
    /// Served by Stat/ReadImage: `(key, stat, bytes)`.
    pub files: Vec<(String, ImageStat, Vec<u8>)>,
    /// `(name, bytes)` of every completed upload.
    pub uploads: Vec<(String, Vec<u8>)>,
    /// Upload cap (ResourceExhausted past it); `None` = no cap.
    pub max_upload: Option<u64>,
    pub metrics: String,
    /// What `Subscribe` sends before it goes quiet.
    pub live_events: Vec<Event>,
    pub disks: Vec<Disk>,
    pub flashes: Vec<FlashRequest>,
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

impl Fake {
    /// The rows a listing request selects; records its query.
    fn select(&self, request: &ListImagesRequest) -> Result<Vec<Image>, Status> {
        let mut daemon = self.daemon()?;
        daemon.list_queries.push(request.query.clone());
        // The daemon's filter is richer; names are enough for the adapter.
        let needle = request.query.to_lowercase();
        let id = request.id.as_str();
        Ok(daemon
            .images
            .iter()
            .filter(|i| {
                needle.is_empty() || i.names.iter().any(|n| n.to_lowercase().contains(&needle))
            })
            .filter(|i| {
                id.is_empty() || i.id == id || i.r#ref == id || i.sha256.as_deref() == Some(id)
            })
            .cloned()
            .collect())
    }
}

#[tonic::async_trait]
impl CatalogService for Fake {
    async fn list_images(
        &self,
        request: GrpcRequest<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let request = request.into_inner();
        let selected = self.select(&request)?;
        let total = selected.len();
        let offset = (request.offset as usize).min(total);
        let limit = match request.limit {
            0 => 1000,
            n => n as usize,
        };
        let end = offset.saturating_add(limit).min(total);
        Ok(Response::new(ListImagesResponse {
            images: selected[offset..end].to_vec(),
            total: total as u64,
            next_offset: (end < total).then_some(end as u64),
        }))
    }

    type StreamImagesStream =
        Pin<Box<dyn Stream<Item = Result<ListImagesResponse, Status>> + Send>>;

    async fn stream_images(
        &self,
        request: GrpcRequest<ListImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let images = self.select(&request.into_inner())?;
        let total = images.len() as u64;
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(
            ListImagesResponse {
                images,
                total,
                next_offset: None,
            },
        )))))
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
            sha_url: request.sha_url,
        }))
    }

    type ListEntriesStream =
        Pin<Box<dyn Stream<Item = Result<bty_proto::v1::ListEntriesResponse, Status>> + Send>>;

    async fn list_entries(
        &self,
        _request: GrpcRequest<bty_proto::v1::ListEntriesRequest>,
    ) -> Result<Response<Self::ListEntriesStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(
            bty_proto::v1::ListEntriesResponse::default(),
        )))))
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
        request: GrpcRequest<FetchImageRequest>,
    ) -> Result<Response<Job>, Status> {
        let request = request.into_inner();
        let id = request.id.clone();
        self.daemon()?.fetched.push(request);
        Ok(Response::new(Job {
            id: "d1".to_owned(),
            kind: JobKind::Download as i32,
            subject: id,
            state: JobState::Queued as i32,
            ..Job::default()
        }))
    }

    async fn delete_cache(
        &self,
        request: GrpcRequest<DeleteCacheRequest>,
    ) -> Result<Response<DeleteCacheResponse>, Status> {
        let id = request.into_inner().id;
        self.daemon()?.cache_deleted.push(id.clone());
        if id == "missing" {
            return Err(Status::not_found("no such image: missing"));
        }
        Ok(Response::new(DeleteCacheResponse {
            deleted: true,
            reason: String::new(),
            sha256: Some(SHA_REMOTE.to_owned()),
            file_name: "catalog-222222222222-debian.img.zst".to_owned(),
        }))
    }

    async fn push_image(&self, _: GrpcRequest<PushImageRequest>) -> Result<Response<Job>, Status> {
        Err(Status::unimplemented("fake daemon: push"))
    }

    async fn push_signature(
        &self,
        _: GrpcRequest<bty_proto::v1::PushSignatureRequest>,
    ) -> Result<Response<bty_proto::v1::PushSignatureResponse>, Status> {
        Err(Status::unimplemented("fake daemon: push signature"))
    }

    async fn upload_image(
        &self,
        request: GrpcRequest<tonic::Streaming<UploadImageChunk>>,
    ) -> Result<Response<UploadImageResponse>, Status> {
        use upload_image_chunk::Part;
        let cap = self.daemon()?.max_upload;
        let mut stream = request.into_inner();
        let Some(UploadImageChunk {
            part: Some(Part::Header(header)),
        }) = stream.message().await?
        else {
            return Err(Status::invalid_argument("header first"));
        };
        if header.name.starts_with("catalog-") {
            return Err(Status::invalid_argument("reserved name"));
        }
        let mut bytes = Vec::new();
        loop {
            match stream.message().await? {
                Some(UploadImageChunk {
                    part: Some(Part::Data(data)),
                }) => {
                    bytes.extend_from_slice(&data);
                    if cap.is_some_and(|cap| bytes.len() as u64 > cap) {
                        return Err(Status::resource_exhausted("upload exceeds the cap"));
                    }
                }
                Some(_) => return Err(Status::invalid_argument("aborted")),
                None => break,
            }
        }
        if header.size_bytes.is_some_and(|s| s != bytes.len() as u64) {
            return Err(Status::invalid_argument("size mismatch"));
        }
        let size = bytes.len() as u64;
        self.daemon()?.uploads.push((header.name.clone(), bytes));
        Ok(Response::new(UploadImageResponse {
            name: header.name,
            size_bytes: size,
            sha256: "f".repeat(64),
            // As an older btyd answers: no upload job.
            job_id: String::new(),
        }))
    }

    async fn stat_image(
        &self,
        request: GrpcRequest<StatImageRequest>,
    ) -> Result<Response<ImageStat>, Status> {
        let key = request.into_inner().key;
        let daemon = self.daemon()?;
        let file = daemon.files.iter().find(|(k, _, _)| *k == key);
        let (_, stat, _) = file.ok_or_else(|| Status::not_found(format!("no image {key}")))?;
        Ok(Response::new(stat.clone()))
    }

    type ReadImageStream = Pin<Box<dyn Stream<Item = Result<ImageChunk, Status>> + Send>>;

    async fn read_image(
        &self,
        request: GrpcRequest<ReadImageRequest>,
    ) -> Result<Response<Self::ReadImageStream>, Status> {
        use image_chunk::Part;
        let request = request.into_inner();
        let daemon = self.daemon()?;
        let file = daemon.files.iter().find(|(k, _, _)| *k == request.key);
        let (_, stat, bytes) =
            file.ok_or_else(|| Status::not_found(format!("no image {}", request.key)))?;
        let start = request.offset as usize;
        let end = if request.length == 0 {
            bytes.len()
        } else {
            (start + request.length as usize).min(bytes.len())
        };
        let mut chunks = vec![Ok(ImageChunk {
            part: Some(Part::Stat(stat.clone())),
        })];
        // Small chunks, so the adapter really streams several messages.
        for piece in bytes[start..end].chunks(1000) {
            chunks.push(Ok(ImageChunk {
                part: Some(Part::Data(piece.to_vec().into())),
            }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
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
    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

    async fn subscribe(
        &self,
        _: GrpcRequest<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let events: Vec<Result<Event, Status>> =
            self.daemon()?.live_events.iter().cloned().map(Ok).collect();
        // Then quiet, like a daemon with nothing happening.
        let stream = tokio_stream::iter(events).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn metrics(
        &self,
        _: GrpcRequest<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        Ok(Response::new(MetricsResponse {
            prometheus_text: self.daemon()?.metrics.clone(),
        }))
    }

    async fn list_events(
        &self,
        request: GrpcRequest<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let r = request.into_inner();
        let limit = if r.limit == 0 { 50 } else { r.limit as usize };
        let matching: Vec<LoggedEvent> = self
            .daemon()?
            .events
            .iter()
            .filter(|e| r.before_id == 0 || e.id < r.before_id)
            .filter(|e| {
                r.kinds.is_empty() || r.kinds.iter().any(|k| e.kind.starts_with(k.as_str()))
            })
            .filter(|e| e.subject.contains(&r.subject))
            .filter(|e| !r.failed_only || e.outcome == EventOutcome::Failed as i32)
            .filter(|e| !r.unacknowledged_only || !e.acknowledged)
            .cloned()
            .collect();
        Ok(Response::new(ListEventsResponse {
            more: matching.len() > limit,
            events: matching.into_iter().take(limit).collect(),
        }))
    }

    async fn acknowledge_events(
        &self,
        request: GrpcRequest<AcknowledgeEventsRequest>,
    ) -> Result<Response<AcknowledgeEventsResponse>, Status> {
        let ids = request.into_inner().ids;
        let mut daemon = self.daemon()?;
        let mut acknowledged = Vec::new();
        for event in daemon.events.iter_mut().filter(|e| ids.contains(&e.id)) {
            event.acknowledged = true;
            acknowledged.push(event.id);
        }
        Ok(Response::new(AcknowledgeEventsResponse { acknowledged }))
    }
}

#[tonic::async_trait]
impl FlashService for Fake {
    async fn list_disks(
        &self,
        _: GrpcRequest<ListDisksRequest>,
    ) -> Result<Response<ListDisksResponse>, Status> {
        Ok(Response::new(ListDisksResponse {
            disks: self.daemon()?.disks.clone(),
        }))
    }

    async fn flash(&self, request: GrpcRequest<FlashRequest>) -> Result<Response<Job>, Status> {
        let request = request.into_inner();
        self.daemon()?.flashes.push(request.clone());
        Ok(Response::new(Job {
            id: "f1".to_owned(),
            kind: JobKind::Flash as i32,
            subject: request.image,
            state: JobState::Queued as i32,
            ..Job::default()
        }))
    }
}

/// A running fake daemon and a router connected to it, with a logged-in
/// browser session that [`Harness::send`] uses.
pub struct Harness {
    pub daemon: Arc<Mutex<Daemon>>,
    pub router: Router,
    /// `bty_session=…` of the harness's own login.
    pub cookie: String,
    /// That session's CSRF token.
    pub csrf: String,
    _dir: TempDir,
    _server: tokio::task::JoinHandle<()>,
}

/// The access token every harness is configured with.
pub const TOKEN: &str = "t0ken-t0ken-t0ken-t0ken";
/// The password every harness accepts (stored as an argon2id hash).
pub const PASSWORD: &str = "hunter2";
/// The Host and Origin a browser on the harness's pages sends.
pub const HOST: &str = "bty.test:8080";
pub const ORIGIN: &str = "http://bty.test:8080";

/// argon2id of [`PASSWORD`], computed once per test binary.
pub fn password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bty_web::hash_password(PASSWORD).unwrap())
        .clone()
}

/// Options of a harness: loopback listener known as `bty.test`, [`TOKEN`]
/// and [`PASSWORD`].
pub fn options() -> WebOptions {
    let mut options = WebOptions::new("127.0.0.1:8080".parse().unwrap(), TOKEN.to_owned());
    options.hosts = vec!["bty.test".to_owned()];
    options.auth.password_hash = Some(password_hash());
    options
}

/// `bty_session=<value>` of a Set-Cookie header.
pub fn session_cookie(reply: &Reply) -> String {
    let cookie = reply.header("set-cookie");
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token a page embeds for its scripts.
pub fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf-token\" content=\"").unwrap() + 27;
    page[start..start + 64].to_owned()
}

/// Log in on `router` with `secret` through the form: the session cookie
/// and its CSRF token.
pub async fn log_in(router: &Router, secret: &str) -> (String, String) {
    let reply = send(
        router,
        Request::post("/ui/login")
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("password={secret}")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 303, "login failed: {reply:?}");
    let cookie = session_cookie(&reply);
    let page = send(
        router,
        Request::get("/ui/login")
            .header("host", HOST)
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (cookie, csrf_of(&page.body))
}

impl Harness {
    pub async fn start(daemon: Daemon) -> Self {
        Self::start_with(daemon, options()).await
    }

    /// Same as [`Harness::start`]: every harness has a login now.
    pub async fn start_with_login(daemon: Daemon) -> Self {
        Self::start(daemon).await
    }

    pub async fn start_with(daemon: Daemon, options: WebOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("btyd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let daemon = Arc::new(Mutex::new(daemon));
        let fake = Fake(daemon.clone());
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(CatalogServiceServer::new(fake.clone()))
                .add_service(JobServiceServer::new(fake.clone()))
                .add_service(EventServiceServer::new(fake.clone()))
                .add_service(FlashServiceServer::new(fake))
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await
                .unwrap();
        });
        let channel = Target::Unix(socket).lazy_channel().unwrap();
        let router = router(channel, options);
        let (cookie, csrf) = log_in(&router, TOKEN).await;
        Self {
            daemon,
            router,
            cookie,
            csrf,
            _dir: dir,
            _server: server,
        }
    }

    pub fn daemon(&self) -> MutexGuard<'_, Daemon> {
        self.daemon.lock().unwrap()
    }

    /// Send as the harness's logged-in browser: `Host: bty.test:8080`, a
    /// matching `Origin`, the session cookie and its CSRF header, each
    /// unless the request sets its own (or carries a bearer token).
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        let headers = request.headers_mut();
        if !headers.contains_key("host") {
            headers.insert("host", HOST.parse().unwrap());
        }
        if !headers.contains_key("origin") && !headers.contains_key("referer") {
            headers.insert("origin", ORIGIN.parse().unwrap());
        }
        if !headers.contains_key("authorization") && !headers.contains_key("cookie") {
            headers.insert("cookie", self.cookie.parse().unwrap());
            if !headers.contains_key("x-csrf-token") {
                headers.insert("x-csrf-token", self.csrf.parse().unwrap());
            }
        }
        send(&self.router, request).await
    }

    /// Send exactly this request.
    pub async fn send_raw(&self, request: Request<Body>) -> Reply {
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
    let mut options = options();
    options.image_root_hint = Some("/srv/hint-images".to_owned());
    router(channel, options)
}

/// A request as an API client sends it: right Host, the bearer token.
pub fn api_request(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
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
