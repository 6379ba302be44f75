//! Errors of hash requests.

use crate::actors::Unavailable;
use bty_dio::DigestError;
use bty_store::identity::OpenImageError;
use bty_store::names::NameError;
use thiserror::Error;

/// Why a hash request was refused.
#[derive(Debug, Error)]
pub enum HasherError {
    /// The name is not a bare file name bty may hash.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No regular file of that name in the image root.
    #[error("no image file named {name:?} in the image root")]
    NoSuchFile {
        /// What the client sent.
        name: String,
    },
    /// No job with that id.
    #[error("no hash job with id {id:?}")]
    NoSuchJob {
        /// What the client sent.
        id: String,
    },
    /// The actor could not answer.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Why a hash job failed.
#[derive(Debug, Error)]
pub enum HashFailure {
    /// The file does not open as the one that was listed.
    #[error(transparent)]
    Open(#[from] OpenImageError),
    /// Reading it failed.
    #[error("reading {name}")]
    Read {
        /// File name.
        name: String,
        /// Why.
        #[source]
        source: DigestError,
    },
    /// It is gone.
    #[error("{name} vanished while hashing")]
    Vanished {
        /// File name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The sidecar could not be written.
    #[error("cannot write sidecar of {name}")]
    Sidecar {
        /// File name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
