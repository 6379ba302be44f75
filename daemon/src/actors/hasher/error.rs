//! Errors of hash requests.

use thiserror::Error;

/// Why a hash request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HasherError {
    /// The name is not a bare file name bty may hash.
    #[error("{0}")]
    InvalidName(String),
    /// No regular file of that name in the image root.
    #[error("no image file named {0:?} in the image root")]
    NoSuchFile(String),
    /// No job with that id.
    #[error("no hash job with id {0:?}")]
    NoSuchJob(String),
    /// The actor is restarting or stopped.
    #[error("{0}")]
    Unavailable(String),
}
