//! Domain errors → `tonic::Status`, in one place.

use crate::actors::catalog::CatalogError;
use crate::actors::downloader::DownloaderError;
use crate::actors::flasher::FlasherError;
use crate::actors::hasher::HasherError;
use tonic::Status;

impl From<CatalogError> for Status {
    fn from(e: CatalogError) -> Self {
        let msg = e.to_string();
        match e {
            CatalogError::Invalid(_) => Status::invalid_argument(msg),
            CatalogError::AlreadyExists(_) => Status::already_exists(msg),
            CatalogError::NotFound(_) => Status::not_found(msg),
            CatalogError::ReadOnly { .. } => Status::failed_precondition(msg),
            CatalogError::Unsupported(_) => Status::unimplemented(msg),
            CatalogError::Io { .. } => {
                tracing::error!(error = %msg, "catalog i/o failure");
                Status::internal(msg)
            }
            CatalogError::Unavailable(_) => Status::unavailable(msg),
            CatalogError::StateTooLarge { .. } => Status::resource_exhausted(msg),
        }
    }
}

impl From<HasherError> for Status {
    fn from(e: HasherError) -> Self {
        let msg = e.to_string();
        match e {
            HasherError::InvalidName(_) => Status::invalid_argument(msg),
            HasherError::NoSuchFile(_) | HasherError::NoSuchJob(_) => Status::not_found(msg),
            HasherError::Unavailable(_) => Status::unavailable(msg),
        }
    }
}

impl From<DownloaderError> for Status {
    fn from(e: DownloaderError) -> Self {
        let msg = e.to_string();
        match e {
            DownloaderError::Invalid(_) => Status::invalid_argument(msg),
            DownloaderError::NoSuchJob(_) => Status::not_found(msg),
            DownloaderError::Busy(_) => Status::already_exists(msg),
            DownloaderError::Remote(_) => Status::failed_precondition(msg),
            DownloaderError::TooLarge { .. } => Status::resource_exhausted(msg),
            DownloaderError::Io(_) => {
                tracing::error!(error = %msg, "downloader i/o failure");
                Status::internal(msg)
            }
            DownloaderError::Unavailable(_) => Status::unavailable(msg),
        }
    }
}

impl From<FlasherError> for Status {
    fn from(e: FlasherError) -> Self {
        let msg = e.to_string();
        match e {
            FlasherError::Invalid(_) => Status::invalid_argument(msg),
            FlasherError::Refused(_) => Status::failed_precondition(msg),
            FlasherError::NoSuchJob(_) => Status::not_found(msg),
            FlasherError::Disks(_) => Status::internal(msg),
            FlasherError::Unavailable(_) => Status::unavailable(msg),
            FlasherError::Url(_) => Status::invalid_argument(msg),
            FlasherError::Catalog(e) => e.into(),
            FlasherError::Downloader(e) => e.into(),
            FlasherError::OpenImage(e) => super::open::open_failed(e),
        }
    }
}
