//! Domain errors → `tonic::Status`, in one place: each variant gets its
//! code here, and the message is the error with its causes on one line.

use crate::actors::catalog::CatalogError;
use crate::actors::downloader::{DownloaderError, UploadError};
use crate::actors::flasher::FlasherError;
use crate::actors::hasher::HasherError;
use bty_store::chain::chain;
use tonic::{Code, Status};

/// The status of `code` for `e`; internal failures are logged, as the
/// client's copy may be all anyone sees of them.
fn status(code: Code, e: &(dyn std::error::Error + 'static)) -> Status {
    let msg = chain(e);
    if code == Code::Internal {
        tracing::error!(error = %msg, "internal failure answering a request");
    }
    Status::new(code, msg)
}

impl From<CatalogError> for Status {
    fn from(e: CatalogError) -> Self {
        Self::from(&e)
    }
}

impl From<&CatalogError> for Status {
    fn from(e: &CatalogError) -> Self {
        use CatalogError as E;
        let code = match e {
            E::BadUrl(_)
            | E::LocalSource
            | E::RefMismatch { .. }
            | E::NoFileName
            | E::BadSha256 { .. }
            | E::Src(_)
            | E::Parse(_)
            | E::NotCached { .. } => Code::InvalidArgument,
            E::AlreadyExists { .. } | E::NameTaken { .. } | E::Downloading { .. } => {
                Code::AlreadyExists
            }
            E::NoEntry { .. }
            | E::NoRemoteEntry { .. }
            | E::NoImage { .. }
            | E::NotLocal { .. }
            | E::NotListed { .. } => Code::NotFound,
            E::ReadOnly { .. } => Code::FailedPrecondition,
            E::OrasUnresolved => Code::Unimplemented,
            E::Io { .. } => Code::Internal,
            E::StateTooLarge { .. } => Code::ResourceExhausted,
            E::Unavailable(_) => Code::Unavailable,
        };
        status(code, e)
    }
}

impl From<HasherError> for Status {
    fn from(e: HasherError) -> Self {
        let code = match &e {
            HasherError::InvalidName(_) => Code::InvalidArgument,
            HasherError::NoSuchFile { .. } | HasherError::NoSuchJob { .. } => Code::NotFound,
            HasherError::Unavailable(_) => Code::Unavailable,
        };
        status(code, &e)
    }
}

impl From<DownloaderError> for Status {
    fn from(e: DownloaderError) -> Self {
        use DownloaderError as E;
        match e {
            E::Upload(e) => e.into(),
            e @ (E::BadName(_)
            | E::BadImageUrl(_)
            | E::BadCatalogUrl(_)
            | E::FileCatalogUrl
            | E::BadSignaturePush(_)) => status(Code::InvalidArgument, &e),
            e @ E::NoSuchJob { .. } => status(Code::NotFound, &e),
            e @ E::Busy { .. } => status(Code::AlreadyExists, &e),
            e @ (E::ResolveOras(_)
            | E::PushSignature(_)
            | E::FetchDocument { .. }
            | E::Source(_)
            | E::UnsignedSums(_)
            | E::Stream { .. }) => status(Code::FailedPrecondition, &e),
            e @ E::Io { .. } => status(Code::Internal, &e),
            e @ E::Unavailable(_) => status(Code::Unavailable, &e),
        }
    }
}

impl From<UploadError> for Status {
    fn from(e: UploadError) -> Self {
        use UploadError as E;
        let code = match &e {
            // Announcing an upload fails when a download lands on its name
            // or the catalog is away: the catalog's own code.
            E::Catalog(e) => return Status::from(&**e),
            E::SizeMismatch { .. } | E::Interrupted { .. } | E::NoSpace { .. } => {
                Code::InvalidArgument
            }
            E::Cancelled { .. } => Code::Cancelled,
            E::TooLarge { .. } => Code::ResourceExhausted,
            E::Store { .. } | E::Io { .. } | E::Task(_) => Code::Internal,
        };
        status(code, &e)
    }
}

impl From<FlasherError> for Status {
    fn from(e: FlasherError) -> Self {
        use FlasherError as E;
        match e {
            E::Catalog(e) => e.into(),
            E::Downloader(e) => e.into(),
            E::OpenImage(e) => super::open::open_failed(e),
            e @ (E::NoTargets
            | E::Image(_)
            | E::Qcow2Stream { .. }
            | E::OpenTask(_)
            | E::CheckTask(_)
            | E::Url(_)) => status(Code::InvalidArgument, &e),
            e @ (E::Refused { .. } | E::Unsigned { .. }) => status(Code::FailedPrecondition, &e),
            e @ E::NoSuchJob { .. } => status(Code::NotFound, &e),
            e @ E::Disks(_) => status(Code::Internal, &e),
            e @ E::Unavailable(_) => status(Code::Unavailable, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// An upload's failure answers the client with the code of what went
    /// wrong, the catalog's own code included, whichever way it arrives.
    #[test]
    fn an_upload_failure_keeps_its_code_and_causes() {
        let busy = UploadError::Catalog(Arc::new(CatalogError::Downloading {
            name: "disk.img".to_owned(),
        }));
        let status = Status::from(DownloaderError::from(busy));
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(
            status.message(),
            "disk.img is being downloaded; cancel the download first"
        );
        let cases = [
            (UploadError::TooLarge { cap: 10 }, Code::ResourceExhausted),
            (
                UploadError::Cancelled {
                    name: "disk.img".to_owned(),
                    size: 3,
                },
                Code::Cancelled,
            ),
            (
                UploadError::Interrupted {
                    name: "disk.img".to_owned(),
                    size: 3,
                },
                Code::InvalidArgument,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error.clone()).code(), code, "{error}");
            assert_eq!(Status::from(DownloaderError::from(error)).code(), code);
        }
        let store = UploadError::Io {
            what: "cannot check free space".to_owned(),
            path: "/srv/images".into(),
            source: Arc::new(std::io::Error::from_raw_os_error(28)),
        };
        let status = Status::from(store);
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status.message().starts_with("cannot check free space: "),
            "the cause is kept: {}",
            status.message()
        );
    }
}
