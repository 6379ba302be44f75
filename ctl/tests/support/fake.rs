//! The fake services: fixed rows and jobs, and errors chosen by the
//! request's text so each test can ask for the status code it pins.

use super::Recorded;
use bty_proto::v1::catalog_service_server::CatalogService;
use bty_proto::v1::import_catalog_request::Source as ImportSource;
use bty_proto::v1::job_service_server::JobService;
use bty_proto::v1::{
    Actions, AddEntryRequest, CancelJobRequest, DescribeStoreRequest, Entry, EntryError,
    ExportCatalogRequest, ExportCatalogResponse, FetchLatestCatalogRequest, GetJobRequest,
    HashImageRequest, Image, ImportCatalogRequest, ImportReport, Job, JobKind, JobState,
    ListImagesRequest, ListImagesResponse, ListJobsRequest, ListJobsResponse, RemoveEntryRequest,
    RemoveEntryResponse, Source, StoreInfo,
};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// sha256 of the hashed local row.
pub(crate) const HASHED_SHA: &str =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const REMOTE_REF: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ADDED_REF: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// A hash job that completes.
pub(crate) const OK_JOB: &str = "job-ok";
/// A download job that fails.
pub(crate) const FAILED_JOB: &str = "job-fail";
/// A download job still running (cancellable).
pub(crate) const RUNNING_JOB: &str = "job-run";
const CANCELLED_JOB: &str = "job-cancel";

#[derive(Debug, Clone)]
pub(crate) struct Fake {
    pub(crate) recorded: Arc<Recorded>,
}

fn images() -> Vec<Image> {
    vec![
        Image {
            id: HASHED_SHA.into(),
            names: vec!["debian.img".into()],
            sha256: Some(HASHED_SHA.into()),
            format: Some("raw".into()),
            size_bytes: Some(1024 * 1024 * 1024),
            sources: vec![Source {
                kind: "local".into(),
                location: "/srv/images/debian.img".into(),
            }],
            cached: false,
            actions: Some(Actions::default()),
            r#ref: "dddd".into(),
            hashing: false,
        },
        Image {
            id: REMOTE_REF.into(),
            names: vec!["alpine.iso".into(), "alpine-latest.iso".into()],
            sha256: None,
            format: Some("iso".into()),
            size_bytes: None,
            sources: vec![Source {
                kind: "url".into(),
                location: "https://example.invalid/alpine.iso".into(),
            }],
            cached: false,
            actions: Some(Actions {
                fetch: true,
                update: false,
                cache_delete: false,
                entry_delete: true,
            }),
            r#ref: REMOTE_REF.into(),
            hashing: false,
        },
    ]
}

fn job(id: &str, kind: JobKind, state: JobState) -> Job {
    let finished = matches!(
        state,
        JobState::Completed | JobState::Failed | JobState::Cancelled
    );
    Job {
        id: id.into(),
        kind: kind.into(),
        subject: "debian.img".into(),
        state: state.into(),
        bytes_done: if finished { 4096 } else { 1024 },
        bytes_total: Some(4096),
        rate_bps: 2048,
        error: (state == JobState::Failed).then(|| "connection reset by peer".into()),
        sha256: (state == JobState::Completed).then(|| HASHED_SHA.into()),
        phase: "downloading".into(),
        created_at_ms: 1_700_000_000_000,
        started_at_ms: Some(1_700_000_000_100),
        finished_at_ms: finished.then_some(1_700_000_001_000),
    }
}

fn jobs() -> Vec<Job> {
    vec![
        job(OK_JOB, JobKind::Hash, JobState::Completed),
        job(RUNNING_JOB, JobKind::Download, JobState::Running),
        job(FAILED_JOB, JobKind::Download, JobState::Failed),
        job(CANCELLED_JOB, JobKind::Flash, JobState::Cancelled),
    ]
}

fn find_job(id: &str) -> Result<Job, Status> {
    jobs()
        .into_iter()
        .find(|j| j.id == id)
        .ok_or_else(|| Status::not_found(format!("no job {id}")))
}

fn report(source: &str) -> ImportReport {
    ImportReport {
        source: source.into(),
        imported: 2,
        updated: 1,
        skipped: 0,
        errors: vec![EntryError {
            name: "broken".into(),
            error: "missing src".into(),
        }],
    }
}

#[tonic::async_trait]
impl CatalogService for Fake {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let query = request.into_inner().query;
        self.recorded
            .queries
            .lock()
            .expect("lock")
            .push(query.clone());
        let images = images()
            .into_iter()
            .filter(|image| image.names.iter().any(|n| n.contains(&query)))
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn add_entry(
        &self,
        request: Request<AddEntryRequest>,
    ) -> Result<Response<Entry>, Status> {
        let request = request.into_inner();
        if !request.url.starts_with("https://") && !request.url.starts_with("oras://") {
            return Err(Status::invalid_argument(format!(
                "unsupported URL {}",
                request.url
            )));
        }
        if request.url.contains("exists") {
            return Err(Status::already_exists(format!(
                "an entry for {} exists",
                request.url
            )));
        }
        let basename = request
            .url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Response::new(Entry {
            name: request.name.unwrap_or(basename),
            src: request.url,
            r#ref: ADDED_REF.into(),
            sha256: request.sha256,
            format: Some("raw".into()),
            size_bytes: None,
            description: None,
        }))
    }

    async fn remove_entry(
        &self,
        request: Request<RemoveEntryRequest>,
    ) -> Result<Response<RemoveEntryResponse>, Status> {
        let key = request.into_inner().src_or_ref;
        if key != REMOTE_REF && key != "https://example.invalid/alpine.iso" {
            return Err(Status::not_found(format!("no entry with src or ref {key}")));
        }
        let removed = Entry {
            name: "alpine.iso".into(),
            src: "https://example.invalid/alpine.iso".into(),
            r#ref: REMOTE_REF.into(),
            ..Entry::default()
        };
        Ok(Response::new(RemoveEntryResponse {
            removed: Some(removed),
            cache_removed: true,
        }))
    }

    async fn import_catalog(
        &self,
        request: Request<ImportCatalogRequest>,
    ) -> Result<Response<ImportReport>, Status> {
        let request = request.into_inner();
        self.recorded
            .imports
            .lock()
            .expect("lock")
            .push(request.clone());
        if let Some(ImportSource::Content(content)) = &request.source
            && !content.starts_with(b"version = 1")
        {
            return Err(Status::invalid_argument(
                "catalog does not parse: missing version",
            ));
        }
        Ok(Response::new(report(&request.label)))
    }

    async fn fetch_latest_catalog(
        &self,
        _request: Request<FetchLatestCatalogRequest>,
    ) -> Result<Response<ImportReport>, Status> {
        Ok(Response::new(report(
            "https://example.invalid/release/catalog.toml",
        )))
    }

    async fn export_catalog(
        &self,
        request: Request<ExportCatalogRequest>,
    ) -> Result<Response<ExportCatalogResponse>, Status> {
        let base = request.into_inner().base_url;
        let toml = format!(
            "version = 1\n\n[[images]]\nname = \"debian.img\"\nsrc = \"{base}/images/debian.img\"\n"
        );
        Ok(Response::new(ExportCatalogResponse { toml }))
    }

    async fn hash_image(
        &self,
        request: Request<HashImageRequest>,
    ) -> Result<Response<Job>, Status> {
        match request.into_inner().name.as_str() {
            "debian.img" => Ok(Response::new(job(OK_JOB, JobKind::Hash, JobState::Queued))),
            "bad.img" => Ok(Response::new(job(
                FAILED_JOB,
                JobKind::Hash,
                JobState::Queued,
            ))),
            name => Err(Status::not_found(format!(
                "no file named {name} in the image root"
            ))),
        }
    }

    async fn describe_store(
        &self,
        _request: Request<DescribeStoreRequest>,
    ) -> Result<Response<StoreInfo>, Status> {
        Ok(Response::new(StoreInfo::default()))
    }

    async fn fetch_image(
        &self,
        _: Request<bty_proto::v1::FetchImageRequest>,
    ) -> Result<Response<bty_proto::v1::Job>, Status> {
        Err(Status::unimplemented("fake daemon: fetch"))
    }

    async fn delete_cache(
        &self,
        _: Request<bty_proto::v1::DeleteCacheRequest>,
    ) -> Result<Response<bty_proto::v1::DeleteCacheResponse>, Status> {
        Err(Status::unimplemented("fake daemon: delete cache"))
    }

    async fn push_image(
        &self,
        _: Request<bty_proto::v1::PushImageRequest>,
    ) -> Result<Response<bty_proto::v1::Job>, Status> {
        Err(Status::unimplemented("fake daemon: push"))
    }

    async fn upload_image(
        &self,
        _: Request<tonic::Streaming<bty_proto::v1::UploadImageChunk>>,
    ) -> Result<Response<bty_proto::v1::UploadImageResponse>, Status> {
        Err(Status::unimplemented("fake daemon: upload"))
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<Job, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for Fake {
    type WatchJobStream = JobStream;

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let request = request.into_inner();
        let jobs = jobs()
            .into_iter()
            .filter(|j| {
                !request.active_only || matches!(j.state(), JobState::Queued | JobState::Running)
            })
            .filter(|j| request.kind() == JobKind::Unspecified || j.kind() == request.kind())
            .collect();
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<Job>, Status> {
        find_job(&request.into_inner().id).map(Response::new)
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let job = find_job(&request.into_inner().id)?;
        if job.state() != JobState::Running {
            return Err(Status::failed_precondition(format!(
                "job {} already ended",
                job.id
            )));
        }
        let mut cancelled = job;
        cancelled.set_state(JobState::Cancelled);
        cancelled.error = Some("cancelled by operator".into());
        Ok(Response::new(cancelled))
    }

    async fn watch_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<JobStream>, Status> {
        let last = find_job(&request.into_inner().id)?;
        // A running snapshot first, so the progress path runs before the end.
        let snapshots = vec![Ok(job(&last.id, last.kind(), JobState::Running)), Ok(last)];
        Ok(Response::new(Box::pin(tokio_stream::iter(snapshots))))
    }
}
