//! `bty.v1.CatalogService`: validate, call the catalog or hasher, convert.

use super::convert;
use crate::actors::catalog::{AddEntry, CatalogHandle, ImportSource};
use crate::actors::hasher::HasherHandle;
use bty_proto::v1::{self, catalog_service_server::CatalogService, import_catalog_request::Source};
use tonic::{Request, Response, Status};

/// The service: handles and static store facts.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    pub(crate) catalog: CatalogHandle,
    pub(crate) hasher: HasherHandle,
    pub(crate) info: v1::StoreInfo,
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn list_images(
        &self,
        request: Request<v1::ListImagesRequest>,
    ) -> Result<Response<v1::ListImagesResponse>, Status> {
        let rows = self.catalog.list(&request.into_inner().query).await?;
        Ok(Response::new(v1::ListImagesResponse {
            images: rows.into_iter().map(convert::image).collect(),
        }))
    }

    async fn add_entry(
        &self,
        request: Request<v1::AddEntryRequest>,
    ) -> Result<Response<v1::Entry>, Status> {
        let r = request.into_inner();
        if r.url.trim().is_empty() {
            return Err(Status::invalid_argument("url is required"));
        }
        let (entry, image_ref) = self
            .catalog
            .add_entry(AddEntry {
                url: r.url,
                name: r.name,
                sha256: r.sha256,
                image_ref: r.r#ref,
            })
            .await?;
        Ok(Response::new(convert::entry(entry, image_ref)))
    }

    async fn remove_entry(
        &self,
        request: Request<v1::RemoveEntryRequest>,
    ) -> Result<Response<v1::RemoveEntryResponse>, Status> {
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
        let r = request.into_inner();
        let source = match r.source {
            Some(Source::Content(content)) => ImportSource::Bytes {
                content,
                label: if r.label.is_empty() {
                    "<upload>".to_owned()
                } else {
                    r.label
                },
            },
            Some(Source::Path(path)) => ImportSource::Path(path.into()),
            Some(Source::Url(url)) => ImportSource::Url(url),
            None => {
                return Err(Status::invalid_argument(
                    "one of content, path or url is required",
                ));
            }
        };
        let report = self.catalog.import(source).await?;
        Ok(Response::new(convert::import_report(report)))
    }

    async fn fetch_latest_catalog(
        &self,
        _request: Request<v1::FetchLatestCatalogRequest>,
    ) -> Result<Response<v1::ImportReport>, Status> {
        let source = ImportSource::Url(self.info.release_catalog_url.clone());
        let report = self.catalog.import(source).await?;
        Ok(Response::new(convert::import_report(report)))
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
        _request: Request<v1::FetchImageRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        Err(Status::unimplemented("fetch arrives with the downloader"))
    }

    async fn delete_cache(
        &self,
        _request: Request<v1::DeleteCacheRequest>,
    ) -> Result<Response<v1::DeleteCacheResponse>, Status> {
        Err(Status::unimplemented("cache delete arrives with the downloader"))
    }

    async fn push_image(&self, _request: Request<v1::PushImageRequest>) -> Result<Response<v1::Job>, Status> {
        Err(Status::unimplemented("push arrives with the downloader"))
    }

    async fn upload_image(
        &self,
        _request: Request<tonic::Streaming<v1::UploadImageChunk>>,
    ) -> Result<Response<v1::UploadImageResponse>, Status> {
        Err(Status::unimplemented("upload arrives with the downloader"))
    }
}
