//! Errors of catalog requests.

use thiserror::Error;

/// Why a catalog request failed. Messages are for operators.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The request itself is wrong (bad URL, name, digest, catalog text).
    #[error("{0}")]
    Invalid(String),
    /// An entry with that src (or name) exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// No such entry or file.
    #[error("{0}")]
    NotFound(String),
    /// The stored catalog.toml does not parse; bty will not overwrite it.
    #[error(
        "catalog.toml at {path} does not parse ({reason}); fix or move it aside, then restart btyd"
    )]
    ReadOnly {
        /// The file.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// This build cannot do that yet (names what is missing).
    #[error("{0}")]
    Unsupported(String),
    /// Reading or writing the store failed.
    #[error("{what}: {source}")]
    Io {
        /// What bty was doing.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The change would make catalog.toml larger than the daemon loads
    /// back; nothing was written.
    #[error(
        "the catalog would grow to {size} bytes, over max_catalog_bytes ({max} bytes), the \
         largest catalog.toml btyd loads; nothing was changed (remove entries or raise \
         [catalog] max_catalog_bytes)"
    )]
    StateTooLarge {
        /// The size it would have.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The actor is restarting or stopped.
    #[error("{0}")]
    Unavailable(String),
}
