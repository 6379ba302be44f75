//! `bty.v1.CatalogService`: validate, call the catalog or hasher, convert.

use super::audit::audit;
use super::convert;
use super::listing::{DEFAULT_PAGE_ROWS, MAX_MESSAGE_BYTES, MAX_PAGE_ROWS, Selection};
use super::sha_url;
use crate::actors::catalog::{AddEntry, CatalogHandle, RemoteMetadata};
use crate::actors::downloader::{DownloaderHandle, SignaturePush, UploadRequest};
use crate::actors::hasher::HasherHandle;
use crate::events::EventBus;
use bty_proto::v1::{self, catalog_service_server::CatalogService, import_catalog_request::Source};
use bty_store::digest::is_sha256_hex;
use tonic::{Request, Response, Status};

/// The service: handles and static store facts.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    pub(crate) catalog: CatalogHandle,
    pub(crate) hasher: HasherHandle,
    pub(crate) downloader: DownloaderHandle,
    pub(crate) info: v1::StoreInfo,
    pub(crate) events: EventBus,
}

/// What an import names in the event log: its URL, or the size of the
/// catalog sent inline.
fn import_subject(request: &v1::ImportCatalogRequest) -> String {
    match &request.source {
        Some(Source::Url(url)) => url.clone(),
        Some(Source::Content(content)) if request.label.is_empty() => {
            format!("catalog sent inline ({} bytes)", content.len())
        }
        Some(Source::Content(content)) => format!("{} ({} bytes)", request.label, content.len()),
        None => String::new(),
    }
}

impl CatalogApi {
    /// The one catalog size limit.
    fn max_catalog_bytes(&self) -> usize {
        usize::try_from(self.info.max_catalog_bytes).unwrap_or(usize::MAX)
    }

    /// The rows `request` selects, from one snapshot of the listing
    /// (filtered on the blocking pool: O(rows)).
    async fn select(&self, request: &v1::ListImagesRequest) -> Result<Selection, Status> {
        let rows = self.catalog.list().await?;
        let (query, id) = (request.query.clone(), request.id.clone());
        tokio::task::spawn_blocking(move || Selection::new(rows, &query, &id))
            .await
            .map_err(|e| Status::internal(format!("listing stopped: {e}")))
    }
    /// Fetch a catalog from a URL (http(s) or oras), then import its bytes.
    async fn import_url(&self, url: String) -> Result<v1::ImportReport, Status> {
        let content = self
            .downloader
            .fetch_document(&url, self.max_catalog_bytes())
            .await?;
        let report = self
            .catalog
            .import(content, url, self.max_catalog_bytes())
            .await?;
        Ok(convert::import_report(report))
    }
}

/// A listing this long gives its buffers back to the kernel once sent.
const LARGE_LISTING_ROWS: usize = 10_000;

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn list_images(
        &self,
        request: Request<v1::ListImagesRequest>,
    ) -> Result<Response<v1::ListImagesResponse>, Status> {
        let request = request.into_inner();
        let selection = self.select(&request).await?;
        let limit = match request.limit as usize {
            0 => DEFAULT_PAGE_ROWS,
            n => n.min(MAX_PAGE_ROWS),
        };
        let offset = usize::try_from(request.offset).unwrap_or(usize::MAX);
        Ok(Response::new(selection.page(offset, limit)))
    }

    type StreamImagesStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<v1::ListImagesResponse, Status>> + Send>,
    >;

    async fn stream_images(
        &self,
        request: Request<v1::ListImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let request = request.into_inner();
        let selection = self.select(&request).await?;
        let mut left = match request.limit as usize {
            0 => usize::MAX,
            n => n,
        };
        let mut offset = usize::try_from(request.offset).unwrap_or(usize::MAX);
        // A small buffer: a slow reader holds back the conversion, not
        // memory.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let large = selection.total() >= LARGE_LISTING_ROWS;
            loop {
                let page = selection.page(offset, left.min(MAX_PAGE_ROWS));
                let sent = page.images.len();
                let next = page.next_offset;
                if tx.send(Ok(page)).await.is_err() {
                    break;
                }
                left -= sent;
                match next {
                    Some(n) if left > 0 => offset = usize::try_from(n).unwrap_or(usize::MAX),
                    _ => break,
                }
            }
            if large {
                // A large listing's conversion and transport buffers stay
                // in the heap once freed (14 MiB for 100 000 rows): give
                // them back to the kernel (a few ms, off the runtime).
                drop(selection);
                let _ = tokio::task::spawn_blocking(crate::allocator::release_free_memory).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn add_entry(
        &self,
        request: Request<v1::AddEntryRequest>,
    ) -> Result<Response<v1::Entry>, Status> {
        audit(&self.events, &request, "AddEntry", &request.get_ref().url);
        let r = request.into_inner();
        if r.url.trim().is_empty() {
            return Err(Status::invalid_argument("url is required"));
        }
        let is_oras = r.url.trim().to_ascii_lowercase().starts_with("oras://");
        // oras refs are resolved at add time: title, size, format.
        let remote = if is_oras {
            let resolved = self.downloader.resolve_oras(r.url.trim()).await?;
            Some(RemoteMetadata {
                title: resolved.title,
                size_bytes: Some(resolved.size_bytes),
                format: resolved.format,
            })
        } else {
            None
        };
        // A checksum file pins an http(s) entry before any image byte
        // moves; oras entries ignore it, as upstream did.
        let sha_url = r
            .sha_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty() && !is_oras);
        // A malformed explicit pin is the catalog's to refuse, with no fetch.
        let given_ok = r
            .sha256
            .as_deref()
            .is_none_or(|g| is_sha256_hex(&g.trim().to_ascii_lowercase()));
        // A `[[trust]]` rule over the URL pins it from its signed sha_url
        // only (refused when there is none or it does not verify).
        let canonical = (!is_oras)
            .then(|| bty_store::canon::canonicalise_src(r.url.trim()).ok())
            .flatten();
        let signed = match &canonical {
            Some(src) if given_ok => {
                self.downloader
                    .check_signed_sums(src, sha_url.as_deref())
                    .await?
            }
            _ => None,
        };
        let sha256 = match (&signed, &sha_url) {
            (Some(signed), Some(sha_url)) => {
                if let Some(given) = r.sha256.as_deref().map(|g| g.trim().to_ascii_lowercase())
                    && given != signed.sha256
                {
                    return Err(Status::invalid_argument(format!(
                        "the sha256 given ({given}) does not match the sha256 the signed {sha_url} lists for the image ({})",
                        signed.sha256
                    )));
                }
                tracing::info!(url = %r.url, %sha_url, signed_by = %signed.signed_by, "pinned from a signed checksum file");
                Some(signed.sha256.clone())
            }
            (_, Some(sha_url)) if given_ok => Some(
                sha_url::resolve(&self.downloader, &r.url, sha_url, r.sha256.as_deref()).await?,
            ),
            _ => r.sha256,
        };
        let (entry, image_ref) = self
            .catalog
            .add_entry(AddEntry {
                url: r.url,
                name: r.name,
                sha256,
                sha_url,
                image_ref: r.r#ref,
                remote,
            })
            .await?;
        Ok(Response::new(convert::entry(entry, image_ref)))
    }

    type ListEntriesStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<v1::ListEntriesResponse, Status>> + Send>,
    >;

    async fn list_entries(
        &self,
        _request: Request<v1::ListEntriesRequest>,
    ) -> Result<Response<Self::ListEntriesStream>, Status> {
        let entries = self.catalog.list_entries().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut page = v1::ListEntriesResponse::default();
            let mut bytes = 0;
            for listed in entries {
                let listed = convert::listed_entry(listed);
                // Tag + length prefix of a repeated field: a few bytes.
                let size = bty_proto::prost::Message::encoded_len(&listed) + 8;
                if !page.entries.is_empty() && bytes + size > MAX_MESSAGE_BYTES {
                    if tx.send(Ok(std::mem::take(&mut page))).await.is_err() {
                        return;
                    }
                    bytes = 0;
                }
                bytes += size;
                page.entries.push(listed);
            }
            // The last (or only, possibly empty) message.
            let _ = tx.send(Ok(page)).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn remove_entry(
        &self,
        request: Request<v1::RemoveEntryRequest>,
    ) -> Result<Response<v1::RemoveEntryResponse>, Status> {
        audit(
            &self.events,
            &request,
            "RemoveEntry",
            &request.get_ref().src_or_ref,
        );
        let key = request.into_inner().src_or_ref;
        if key.trim().is_empty() {
            return Err(Status::invalid_argument("src_or_ref is required"));
        }
        let removed = self.catalog.remove_entry(&key).await?;
        Ok(Response::new(v1::RemoveEntryResponse {
            removed: Some(convert::entry(removed.entry, removed.image_ref)),
            cache_removed: removed.cache_removed,
        }))
    }

    async fn import_catalog(
        &self,
        request: Request<v1::ImportCatalogRequest>,
    ) -> Result<Response<v1::ImportReport>, Status> {
        audit(
            &self.events,
            &request,
            "ImportCatalog",
            &import_subject(request.get_ref()),
        );
        let r = request.into_inner();
        let (content, label) = match r.source {
            Some(Source::Content(content)) => (
                content,
                if r.label.is_empty() {
                    "<upload>".to_owned()
                } else {
                    r.label
                },
            ),
            Some(Source::Url(url)) => return Ok(Response::new(self.import_url(url).await?)),
            None => {
                return Err(Status::invalid_argument(
                    "a catalog is imported from its content or a URL; one of them is required",
                ));
            }
        };
        let report = self
            .catalog
            .import(content, label, self.max_catalog_bytes())
            .await?;
        Ok(Response::new(convert::import_report(report)))
    }

    async fn fetch_latest_catalog(
        &self,
        request: Request<v1::FetchLatestCatalogRequest>,
    ) -> Result<Response<v1::ImportReport>, Status> {
        audit(
            &self.events,
            &request,
            "FetchLatestCatalog",
            &self.info.release_catalog_url,
        );
        let url = self.info.release_catalog_url.clone();
        Ok(Response::new(self.import_url(url).await?))
    }

    async fn export_catalog(
        &self,
        request: Request<v1::ExportCatalogRequest>,
    ) -> Result<Response<v1::ExportCatalogResponse>, Status> {
        let base_url = request.into_inner().base_url;
        let base_url = if base_url.is_empty() {
            "http://localhost:8080".to_owned()
        } else {
            base_url
        };
        let toml = self.catalog.export(&base_url).await?;
        Ok(Response::new(v1::ExportCatalogResponse { toml }))
    }

    async fn hash_image(
        &self,
        request: Request<v1::HashImageRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        audit(&self.events, &request, "HashImage", &request.get_ref().name);
        let job = self.hasher.enqueue(&request.into_inner().name).await?;
        Ok(Response::new(convert::job(job)))
    }

    async fn describe_store(
        &self,
        _request: Request<v1::DescribeStoreRequest>,
    ) -> Result<Response<v1::StoreInfo>, Status> {
        Ok(Response::new(self.info.clone()))
    }

    async fn fetch_image(
        &self,
        request: Request<v1::FetchImageRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        audit(&self.events, &request, "FetchImage", &request.get_ref().id);
        let r = request.into_inner();
        if r.id.trim().is_empty() {
            return Err(Status::invalid_argument("id is required"));
        }
        let spec = self.catalog.download_spec(&r.id, r.update).await?;
        let job = self.downloader.fetch(spec).await?;
        Ok(Response::new(convert::job(job)))
    }

    async fn delete_cache(
        &self,
        request: Request<v1::DeleteCacheRequest>,
    ) -> Result<Response<v1::DeleteCacheResponse>, Status> {
        audit(&self.events, &request, "DeleteCache", &request.get_ref().id);
        let outcome = self.catalog.delete_cache(&request.into_inner().id).await?;
        Ok(Response::new(v1::DeleteCacheResponse {
            deleted: outcome.deleted,
            reason: outcome.reason,
            sha256: outcome.sha256,
            file_name: outcome.file_name,
        }))
    }

    async fn push_image(
        &self,
        request: Request<v1::PushImageRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        audit(
            &self.events,
            &request,
            "PushImage",
            &format!(
                "{} to {}",
                request.get_ref().image,
                request.get_ref().target
            ),
        );
        let r = request.into_inner();
        if !r.target.trim().to_ascii_lowercase().starts_with("oras://") {
            return Err(Status::invalid_argument(format!(
                "push target must be an oras:// reference, got {:?}",
                r.target
            )));
        }
        let image = self.catalog.resolve_local(&r.image).await?;
        let job = self.downloader.push(image, r.target.trim()).await?;
        Ok(Response::new(convert::job(job)))
    }

    async fn push_signature(
        &self,
        request: Request<v1::PushSignatureRequest>,
    ) -> Result<Response<v1::PushSignatureResponse>, Status> {
        audit(
            &self.events,
            &request,
            "PushSignature",
            &request.get_ref().target,
        );
        let r = request.into_inner();
        let push = SignaturePush {
            target: r.target.trim().to_owned(),
            manifest_digest: r.manifest_digest,
            payload: r.payload,
            signature: r.signature,
        };
        let tag = self.downloader.push_signature(push).await?;
        Ok(Response::new(v1::PushSignatureResponse { tag }))
    }

    async fn upload_image(
        &self,
        request: Request<tonic::Streaming<v1::UploadImageChunk>>,
    ) -> Result<Response<v1::UploadImageResponse>, Status> {
        audit(&self.events, &request, "UploadImage", "");
        use v1::upload_image_chunk::Part;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(v1::UploadImageChunk {
                part: Some(Part::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first upload message must carry the file name",
                ));
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let upload = self.downloader.upload(UploadRequest {
            name: header.name,
            size_bytes: header.size_bytes,
            chunks: rx,
        });
        // Forward the stream while the downloader stores it; dropping `tx`
        // without the final `None` aborts the upload. The downloader closing
        // its end (the upload failed or its job was cancelled) ends the
        // call at once, even while the client sends nothing.
        let forward = async move {
            loop {
                let message = tokio::select! {
                    () = tx.closed() => return,
                    message = stream.message() => message,
                };
                match message {
                    Ok(Some(v1::UploadImageChunk {
                        part: Some(Part::Data(data)),
                    })) => {
                        if tx.send(Some(data)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(_)) => return,
                    Ok(None) => {
                        let _ = tx.send(None).await;
                        return;
                    }
                    Err(status) => {
                        tracing::warn!(%status, "upload stream broke");
                        return;
                    }
                }
            }
        };
        let (uploaded, ()) = tokio::join!(upload, forward);
        let uploaded = uploaded?;
        Ok(Response::new(v1::UploadImageResponse {
            name: uploaded.name,
            size_bytes: uploaded.size_bytes,
            sha256: uploaded.sha256,
            job_id: uploaded.job_id,
        }))
    }

    async fn stat_image(
        &self,
        request: Request<v1::StatImageRequest>,
    ) -> Result<Response<v1::ImageStat>, Status> {
        let key = request.into_inner().key;
        Ok(Response::new(match self.locate(&key).await? {
            Located::Local(_, stat) => stat,
            Located::Remote(remote) => remote.stat,
        }))
    }

    type ReadImageStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::ImageChunk, Status>> + Send>>;

    async fn read_image(
        &self,
        request: Request<v1::ReadImageRequest>,
    ) -> Result<Response<Self::ReadImageStream>, Status> {
        use tokio_stream::StreamExt;
        use v1::image_chunk::Part;
        let r = request.into_inner();
        let (image, stat) = match self.locate(&r.key).await? {
            Located::Local(image, stat) => (image, stat),
            // No local copy: an entry is read from its source.
            Located::Remote(remote) => {
                let chunks = super::remote_read::read_remote(
                    remote,
                    self.downloader.clone(),
                    r.offset,
                    r.length,
                )
                .await?;
                return Ok(Response::new(Box::pin(
                    tokio_stream::wrappers::ReceiverStream::new(chunks),
                )));
            }
        };
        // Opened (and checked) before the stat goes out: the bytes come
        // from this descriptor, never from a reopen of the name.
        let opened = super::open::open_listed(&image).await?;
        if r.offset > stat.size_bytes {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end ({} bytes)",
                r.offset, stat.size_bytes
            )));
        }
        let first = tokio_stream::once(Ok(v1::ImageChunk {
            part: Some(Part::Stat(stat)),
        }));
        let data = tokio_stream::wrappers::ReceiverStream::new(crate::serve::read_range(
            opened, r.offset, r.length,
        ))
        .map(|chunk| match chunk {
            Ok(data) => Ok(v1::ImageChunk {
                part: Some(Part::Data(data)),
            }),
            Err(e) => Err(Status::internal(format!("reading the image failed: {e}"))),
        });
        Ok(Response::new(Box::pin(first.chain(data))))
    }
}

/// Where the bytes a key names are.
enum Located {
    /// A stored file, and its description.
    Local(crate::domain::LocalImage, v1::ImageStat),
    /// An entry with no local copy, read from its source.
    Remote(super::remote_read::RemoteImage),
}

impl CatalogApi {
    /// A stored file, else an entry with a source; neither keeps the
    /// catalog's "not found".
    async fn locate(&self, key: &str) -> Result<Located, Status> {
        match self.stat(key).await {
            Ok((image, stat)) => Ok(Located::Local(image, stat)),
            Err(not_local) if not_local.code() == tonic::Code::NotFound => {
                super::remote_read::stat_remote(&self.catalog, &self.downloader, key)
                    .await
                    .map(Located::Remote)
                    .map_err(|e| {
                        if e.code() == tonic::Code::NotFound {
                            not_local
                        } else {
                            e
                        }
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// Resolve a key to a stored file and describe it.
    async fn stat(&self, key: &str) -> Result<(crate::domain::LocalImage, v1::ImageStat), Status> {
        let image = self.catalog.resolve_local(key).await?;
        let stat = v1::ImageStat {
            file_name: image.file_name.clone(),
            size_bytes: image.size_bytes,
            sha256: image.sha256.clone(),
            format: image.format.clone(),
            modified_ms: image.modified_ms,
        };
        Ok((image, stat))
    }
}
