//! The fake catalog service: fixed rows, and errors chosen by the
//! request's text so each test can ask for the status code it pins.

use super::fake_jobs::{FAILED_JOB, FETCH_JOB, OK_JOB, PUSH_JOB, UPDATE_JOB, job, queued};
use super::{Recorded, Upload};
use bty_proto::v1::catalog_service_server::CatalogService;
use bty_proto::v1::import_catalog_request::Source as ImportSource;
use bty_proto::v1::upload_image_chunk::Part;
use bty_proto::v1::{
    Actions, AddEntryRequest, DeleteCacheRequest, DeleteCacheResponse, DescribeStoreRequest, Entry,
    EntryError, ExportCatalogRequest, ExportCatalogResponse, FetchImageRequest,
    FetchLatestCatalogRequest, FlashMode, HashImageRequest, Image, ImageChunk, ImageStat,
    ImportCatalogRequest, ImportReport, Job, JobKind, JobState, ListImagesRequest,
    ListImagesResponse, PushImageRequest, ReadImageRequest, RemoveEntryRequest,
    RemoveEntryResponse, Source, SourceKind, StatImageRequest, StoreInfo, UploadImageChunk,
    UploadImageResponse,
};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// sha256 of the hashed local row.
pub(crate) const HASHED_SHA: &str =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const REMOTE_REF: &str =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ADDED_REF: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// An entry name the fake `FetchImage`/`DeleteCache` know.
pub(crate) const REMOTE_NAME: &str = "alpine.iso";

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
                kind: SourceKind::Local.into(),
                location: "/srv/images/debian.img".into(),
            }],
            cached: false,
            actions: Some(Actions::default()),
            r#ref: "dddd".into(),
            hashing: false,
            flash: FlashMode::Local as i32,
            signed_by: None,
        },
        Image {
            id: REMOTE_REF.into(),
            names: vec!["alpine.iso".into(), "alpine-latest.iso".into()],
            sha256: None,
            format: Some("iso".into()),
            size_bytes: None,
            sources: vec![Source {
                kind: SourceKind::Url.into(),
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
            flash: FlashMode::Streamed as i32,
            signed_by: None,
        },
    ]
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

impl Fake {
    /// The rows a listing request selects; records its query.
    fn select(&self, request: &ListImagesRequest) -> Vec<Image> {
        let query = request.query.clone();
        self.recorded
            .queries
            .lock()
            .expect("lock")
            .push(query.clone());
        images()
            .into_iter()
            .filter(|image| image.names.iter().any(|n| n.contains(&query)))
            .collect()
    }
}

#[tonic::async_trait]
impl CatalogService for Fake {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let images = self.select(&request.into_inner());
        let total = images.len() as u64;
        Ok(Response::new(ListImagesResponse {
            images,
            total,
            next_offset: None,
        }))
    }

    type StreamImagesStream =
        Pin<Box<dyn Stream<Item = Result<ListImagesResponse, Status>> + Send>>;

    /// Two messages, as a real listing of more than one page arrives.
    async fn stream_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let mut images = self.select(&request.into_inner());
        let total = images.len() as u64;
        let rest = images.split_off(images.len() / 2);
        let page = |images: Vec<Image>, next: Option<u64>| {
            Ok(ListImagesResponse {
                images,
                total,
                next_offset: next,
            })
        };
        let first = page(images, Some(total / 2));
        Ok(Response::new(Box::pin(tokio_stream::iter([
            first,
            page(rest, None),
        ]))))
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
            // As btyd does once the checksum file gave the pin.
            sha_url: request.sha_url,
        }))
    }

    type ListEntriesStream =
        Pin<Box<dyn Stream<Item = Result<bty_proto::v1::ListEntriesResponse, Status>> + Send>>;

    async fn list_entries(
        &self,
        _request: Request<bty_proto::v1::ListEntriesRequest>,
    ) -> Result<Response<Self::ListEntriesStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(
            bty_proto::v1::ListEntriesResponse::default(),
        )))))
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
        request: Request<FetchImageRequest>,
    ) -> Result<Response<Job>, Status> {
        let request = request.into_inner();
        self.recorded
            .fetches
            .lock()
            .expect("lock")
            .push(request.clone());
        if request.id != REMOTE_NAME && request.id != REMOTE_REF {
            return Err(Status::not_found(format!("no entry {}", request.id)));
        }
        let id = if request.update {
            UPDATE_JOB
        } else {
            FETCH_JOB
        };
        queued(id).map(Response::new)
    }

    async fn delete_cache(
        &self,
        request: Request<DeleteCacheRequest>,
    ) -> Result<Response<DeleteCacheResponse>, Status> {
        let id = request.into_inner().id;
        self.recorded
            .cache_deletes
            .lock()
            .expect("lock")
            .push(id.clone());
        let response = match id.as_str() {
            REMOTE_NAME | REMOTE_REF => DeleteCacheResponse {
                deleted: true,
                reason: String::new(),
                sha256: Some(HASHED_SHA.into()),
                file_name: REMOTE_NAME.into(),
            },
            "uncached.iso" => DeleteCacheResponse {
                deleted: false,
                reason: "not cached".into(),
                sha256: None,
                file_name: "uncached.iso".into(),
            },
            _ => return Err(Status::not_found(format!("no entry {id}"))),
        };
        Ok(Response::new(response))
    }

    async fn push_image(
        &self,
        request: Request<PushImageRequest>,
    ) -> Result<Response<Job>, Status> {
        let request = request.into_inner();
        self.recorded
            .pushes
            .lock()
            .expect("lock")
            .push(request.clone());
        if request.image != "debian.img" && request.image != HASHED_SHA {
            return Err(Status::not_found(format!("no image {}", request.image)));
        }
        queued(PUSH_JOB).map(Response::new)
    }

    async fn push_signature(
        &self,
        _: Request<bty_proto::v1::PushSignatureRequest>,
    ) -> Result<Response<bty_proto::v1::PushSignatureResponse>, Status> {
        Err(Status::unimplemented("fake daemon: push signature"))
    }

    async fn upload_image(
        &self,
        request: Request<Streaming<UploadImageChunk>>,
    ) -> Result<Response<UploadImageResponse>, Status> {
        let upload = receive_upload(request.into_inner()).await?;
        let response = UploadImageResponse {
            name: upload.header.name.clone(),
            size_bytes: upload.bytes,
            sha256: upload.sha256.clone(),
            // As an older btyd answers: no upload job.
            job_id: String::new(),
        };
        self.recorded.uploads.lock().expect("lock").push(upload);
        Ok(Response::new(response))
    }

    async fn stat_image(
        &self,
        _request: Request<StatImageRequest>,
    ) -> Result<Response<ImageStat>, Status> {
        Err(Status::unimplemented("fake daemon: stat image"))
    }

    type ReadImageStream = Pin<Box<dyn Stream<Item = Result<ImageChunk, Status>> + Send>>;

    async fn read_image(
        &self,
        _request: Request<ReadImageRequest>,
    ) -> Result<Response<Self::ReadImageStream>, Status> {
        Err(Status::unimplemented("fake daemon: read image"))
    }
}

/// Read an upload as btyd would: a header first, then only data; the bytes
/// are hashed, not kept.
async fn receive_upload(mut stream: Streaming<UploadImageChunk>) -> Result<Upload, Status> {
    let header = match stream.message().await?.and_then(|c| c.part) {
        Some(Part::Header(header)) => header,
        _ => {
            return Err(Status::invalid_argument(
                "the first message must be the header",
            ));
        }
    };
    let mut upload = Upload {
        header,
        data_messages: 0,
        largest_message: 0,
        bytes: 0,
        sha256: String::new(),
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.message().await? {
        match chunk.part {
            Some(Part::Data(data)) => {
                upload.data_messages += 1;
                upload.largest_message = upload.largest_message.max(data.len());
                upload.bytes += data.len() as u64;
                hasher.update(&data);
            }
            _ => return Err(Status::invalid_argument("a second header")),
        }
    }
    upload.sha256 = hex(&hasher.finalize());
    Ok(upload)
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
