//! Why taking a file in failed.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why bytes could not be taken into a store file. Messages name the file
/// and do not repeat their `#[source]`.
#[derive(Debug, Error)]
pub enum IntakeError {
    /// The file could not be created.
    #[error("creating {path}")]
    Create {
        /// The file being taken in.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Writing bytes into the file failed.
    #[error("writing {path}")]
    Write {
        /// The file being taken in.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The fsync that makes the bytes durable failed.
    #[error("syncing {path} to disk")]
    Sync {
        /// The file being taken in.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The hashing or the writing thread could not be started.
    #[error("starting a thread to take in {path}")]
    Spawn {
        /// The file being taken in.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The hashing or the writing thread died without a result (a panic).
    #[error("a thread taking in {path} ended unexpectedly")]
    ThreadLost {
        /// The file being taken in.
        path: PathBuf,
    },
    /// The file was used again after a write failed; that error was
    /// returned then.
    #[error("{path} failed earlier")]
    Failed {
        /// The file being taken in.
        path: PathBuf,
    },
}

/// For callers whose errors carry an `io::Error`: the underlying failure
/// itself where there is one (its kind and errno intact), else this error.
impl From<IntakeError> for io::Error {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Create { source, .. }
            | IntakeError::Write { source, .. }
            | IntakeError::Sync { source, .. }
            | IntakeError::Spawn { source, .. } => source,
            other => io::Error::other(other),
        }
    }
}
