//! Errors of downloader requests (a failed *job* is data, not an error).

use thiserror::Error;

/// Why a downloader request was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownloaderError {
    /// The request is wrong (bad ref, bad name, too large).
    #[error("{0}")]
    Invalid(String),
    /// No such job.
    #[error("no download job with id {0:?}")]
    NoSuchJob(String),
    /// Another transfer of the same name is under way.
    #[error("{0}")]
    Busy(String),
    /// The remote side failed (registry, HTTP server).
    #[error("{0}")]
    Remote(String),
    /// Local I/O failed.
    #[error("{0}")]
    Io(String),
    /// The upload exceeded the configured cap.
    #[error("upload exceeded {cap} bytes")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// The actor is restarting or stopped.
    #[error("{0}")]
    Unavailable(String),
}
