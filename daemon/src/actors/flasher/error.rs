//! Errors of flash requests (a failed *job* is data, not an error).

use crate::actors::Unavailable;
use crate::actors::catalog::CatalogError;
use crate::actors::downloader::DownloaderError;
use bty_disks::DiskError;
use bty_store::canon::SrcError;
use bty_store::format::FormatError;
use bty_store::identity::OpenImageError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a flash request was refused.
#[derive(Debug, Error)]
pub enum FlasherError {
    /// The request names no target.
    #[error("no targets given")]
    NoTargets,
    /// The image cannot be flashed (unknown format, unreadable, refused).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A qcow2 image offered as a stream.
    #[error(
        "{name} is qcow2, which is converted from a file, not a stream: fetch it first \
         (btyctl fetch), then flash it"
    )]
    Qcow2Stream {
        /// The stream's name.
        name: String,
    },
    /// Opening the image on the blocking pool panicked.
    #[error("opening the image failed")]
    OpenTask(#[source] tokio::task::JoinError),
    /// Checking the request on the blocking pool panicked.
    #[error("checking the request failed")]
    CheckTask(#[source] tokio::task::JoinError),
    /// Every target was refused by a safety rule; nothing was written.
    #[error("{}", join(reasons))]
    Refused {
        /// Each target's refusal.
        reasons: Vec<Refused>,
    },
    /// Listing disks failed.
    #[error(transparent)]
    Disks(#[from] DiskError),
    /// No such job.
    #[error("no flash job with id {id:?}")]
    NoSuchJob {
        /// What the client sent.
        id: String,
    },
    /// The actor could not answer.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
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
    #[error("invalid image url")]
    Url(#[from] SrcError),
    /// A stored copy of a source a `[[trust]]` rule covers, whose signature
    /// was never checked (it was downloaded before the rule existed).
    #[error(
        "{file} comes from a source the [[trust]] rule {rule:?} covers, but its signature was \
         never checked (it was stored before the rule): run `btyctl update` to pull it again \
         under the rule, or flash it by URL"
    )]
    Unsigned {
        /// The stored file.
        file: String,
        /// The rule's prefix.
        rule: String,
    },
}

/// Why an image cannot be flashed, found by looking at its bytes.
#[derive(Debug, Error)]
pub enum ImageError {
    /// Its first bytes could not be read.
    #[error("cannot read {name}")]
    Header {
        /// The image's name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Neither its bytes nor its name say a format bty flashes.
    #[error("{name}")]
    Format {
        /// The image's name.
        name: String,
        /// Why.
        #[source]
        source: FormatError,
    },
    /// A qcow2 it will not convert, or whose size it cannot read.
    #[error("{name}")]
    Flash {
        /// The image's name.
        name: String,
        /// Why.
        #[source]
        source: bty_flash::FlashError,
    },
}

/// Why a flash job ended before its first write (every target that was not
/// refused gets this, with its causes, as its error).
#[derive(Debug, Error)]
pub(crate) enum StartError {
    /// The download the flash waited for did not give a file.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The downloaded file does not open as the one the scan listed.
    #[error(transparent)]
    Open(#[from] OpenImageError),
    /// The image cannot be flashed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No decoder for the image's bytes.
    #[error(transparent)]
    Decoder(#[from] bty_flash::FlashError),
    /// The write was started twice (a bug).
    #[error("the image was already consumed")]
    Consumed,
    /// The write started before the download it waits for (a bug).
    #[error("the image was not downloaded")]
    NotDownloaded,
}

/// Why waiting for the download of a flash's image failed.
#[derive(Debug, Error)]
pub(crate) enum WaitError {
    /// The download job failed or was cancelled.
    #[error("downloading {key} first failed: {reason}")]
    Failed {
        /// The image's catalog key.
        key: String,
        /// The download job's error.
        reason: String,
    },
    /// The downloader could not say how its job stands.
    #[error("downloading {key} first")]
    Ask {
        /// The image's catalog key.
        key: String,
        /// Why (boxed: the error of a rare path stays small).
        #[source]
        source: Box<DownloaderError>,
    },
    /// The landed file could not be resolved.
    #[error("downloading {key} first")]
    Resolve {
        /// The image's catalog key.
        key: String,
        /// Why (boxed: the error of a rare path stays small).
        #[source]
        source: Box<CatalogError>,
    },
}

/// Why one flash target is refused (nothing is written to it).
#[derive(Debug, Clone, Error)]
pub enum Refused {
    /// The disk rules of `bty-disks` (system disk, mounted, too small…).
    #[error("{}", join(.0))]
    Rules(Vec<bty_disks::Refusal>),
    /// A device without the size, serial and model the operator confirmed.
    #[error(
        "refusing {}: not confirmed (a flash request must carry the size, serial and model \
         the operator confirmed; btyctl flash asks, --yes confirms)",
        path.display()
    )]
    NotConfirmed {
        /// The target.
        path: PathBuf,
    },
    /// The device's size is not the one confirmed.
    #[error(
        "refusing {}: it is {found} bytes but {confirmed} bytes were confirmed; is it still the same disk?",
        path.display()
    )]
    Size {
        /// The target.
        path: PathBuf,
        /// What the device has.
        found: u64,
        /// What was confirmed.
        confirmed: u64,
    },
    /// The device's serial is not the one confirmed.
    #[error("refusing {}: serial {confirmed:?} was confirmed but the disk reports {found:?}", path.display())]
    Serial {
        /// The target.
        path: PathBuf,
        /// What was confirmed.
        confirmed: Option<String>,
        /// What the device reports.
        found: Option<String>,
    },
    /// The device's model is not the one confirmed.
    #[error("refusing {}: model {confirmed:?} was confirmed but the disk reports {found:?}", path.display())]
    Model {
        /// The target.
        path: PathBuf,
        /// What was confirmed.
        confirmed: Option<String>,
        /// What the device reports.
        found: Option<String>,
    },
    /// The kernel's disk sequence number is not the one confirmed.
    #[error(
        "refusing {}: disk sequence number {confirmed} was confirmed but the device now has \
         {found}: it was replaced or re-attached since it was listed",
        path.display()
    )]
    Diskseq {
        /// The target.
        path: PathBuf,
        /// What was confirmed.
        confirmed: u64,
        /// What the device has now.
        found: u64,
    },
    /// The re-check before writing found another device.
    #[error("refusing {}: the device changed since the flash was requested", path.display())]
    Changed {
        /// The target.
        path: PathBuf,
    },
    /// Another flash job writes it.
    #[error("refusing {}: another flash job is writing it", path.display())]
    Busy {
        /// The target.
        path: PathBuf,
    },
    /// The request names it twice.
    #[error("refusing {}: this request names the same target twice", path.display())]
    Twice {
        /// The target.
        path: PathBuf,
    },
}

/// Refusals as one line, "; " between them.
fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
