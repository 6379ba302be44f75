//! Errors of flash requests (a failed *job* is data, not an error).

use crate::actors::catalog::CatalogError;
use crate::actors::downloader::DownloaderError;
use bty_store::canon::SrcError;
use bty_store::identity::OpenImageError;
use thiserror::Error;

/// Why a flash request was refused.
#[derive(Debug, Error)]
pub enum FlasherError {
    /// The request is wrong (no targets, unknown format…).
    #[error("{0}")]
    Invalid(String),
    /// Every target was refused by a safety rule; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// Listing disks failed.
    #[error("{0}")]
    Disks(String),
    /// No such job.
    #[error("no flash job with id {0:?}")]
    NoSuchJob(String),
    /// The actor is restarting or stopped.
    #[error("{0}")]
    Unavailable(String),
    /// The catalog could not resolve the image.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The downloader could not open or fetch the image.
    #[error(transparent)]
    Downloader(#[from] DownloaderError),
    /// The listed file is not the one the scan listed, or does not open.
    #[error(transparent)]
    OpenImage(#[from] OpenImageError),
    /// An image URL that is not a valid source.
    #[error("invalid image url: {0}")]
    Url(#[from] SrcError),
}
