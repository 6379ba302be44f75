//! What a caller asks [`fetch`](crate::fetch) for, and what it gets back.

use std::path::PathBuf;

use reqwest::header::HeaderMap;

/// One download: where from, where to, and what the bytes must be.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The URL to GET (http or https); redirects are followed.
    pub url: String,
    /// Extra request headers, e.g. `Authorization` for a registry blob.
    pub headers: HeaderMap,
    /// Staging file, e.g. `<dest>.partial`, in the same directory as `dest`.
    /// Resumed if it exists and `checkpoint` says what it holds.
    pub partial: PathBuf,
    /// Final path; the verified file is renamed onto it atomically.
    pub dest: PathBuf,
    /// Where to remember the entity (URL, validators, size) of the partial
    /// bytes, so a later call — e.g. after a daemon restart — can resume.
    /// Without it, a partial left by an earlier call is discarded.
    pub checkpoint: Option<PathBuf>,
    /// The sha256 (hex, any case) the whole file must have.
    pub expected_sha256: Option<String>,
    /// The size the whole file must have.
    pub expected_size: Option<u64>,
}

/// A progress report: called when an attempt starts, about every MiB, and at
/// the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes in the partial file so far (including resumed bytes).
    pub bytes_done: u64,
    /// Size of the whole file, when known.
    pub bytes_total: Option<u64>,
    /// 1-based number of the attempt in this call.
    pub attempt: u32,
}

/// A finished, verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where the file now is (the request's `dest`).
    pub dest: PathBuf,
    /// sha256 of the file, lowercase hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// The entity's `ETag`, if the server sent one.
    pub etag: Option<String>,
    /// The entity's `Last-Modified`, if the server sent one.
    pub last_modified: Option<String>,
    /// Body bytes received over the network in this call, including any
    /// that were thrown away by a restart.
    pub bytes_transferred: u64,
    /// Bytes kept from a partial file an earlier call left (0 if this call
    /// started from scratch or had to restart).
    pub resumed_from: u64,
    /// How often the partial was thrown away because the server ignored
    /// `Range` or the entity changed.
    pub restarts: u32,
    /// Attempts made in this call.
    pub attempts: u32,
}
