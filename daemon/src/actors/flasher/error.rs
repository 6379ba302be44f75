//! Errors of flash requests (a failed *job* is data, not an error).

use thiserror::Error;

/// Why a flash request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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
}
