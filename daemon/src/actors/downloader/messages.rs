//! Messages the downloader understands.

use super::error::DownloaderError;
use super::stream::RemoteStream;
use crate::actors::catalog::{DownloadSpec, LocalImage};
use crate::actors::job_query::JobQuery;
use crate::jobs::JobSnapshot;
use ractor::RpcReplyPort;

/// What an `oras://` reference resolved to (add-time metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrasResolved {
    /// Layer digest, hex without `sha256:`.
    pub sha256: String,
    /// Layer title annotation, if any.
    pub title: Option<String>,
    /// Layer size.
    pub size_bytes: u64,
    /// Format from the title.
    pub format: Option<String>,
}

/// An upload: a bare file name and a stream of chunks.
#[derive(Debug)]
pub struct UploadRequest {
    /// Validated bare file name.
    pub name: String,
    /// Declared size, checked against what arrives.
    pub size_bytes: Option<u64>,
    /// The bytes, in order; the sender closes it at the end. A sender that
    /// drops without sending `None` aborts the upload.
    pub chunks: tokio::sync::mpsc::Receiver<Option<bytes::Bytes>>,
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// File name.
    pub name: String,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Their sha256 (the sidecar is written).
    pub sha256: String,
}

/// How a job task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done; `note` says e.g. "up to date".
    Completed {
        /// sha256 of the bytes, when the job has one.
        sha256: Option<String>,
        /// Bytes in place.
        bytes: u64,
        /// Human note ("up to date", "pushed sha256:…").
        note: String,
    },
    /// Cancelled on request.
    Cancelled,
    /// Failed with a reason.
    Failed(String),
}

/// Requests and task reports.
#[derive(Debug)]
pub enum DownloaderMessage {
    /// Queue a download (or return the active job for the same entry).
    Fetch {
        /// What to fetch.
        spec: DownloadSpec,
        /// The job.
        reply: RpcReplyPort<Result<JobSnapshot, DownloaderError>>,
    },
    /// Push a file from the store to a registry.
    Push {
        /// The file, as the scan listed it (opened and checked by the task).
        image: LocalImage,
        /// `oras://host/repo:tag`.
        target: String,
        /// The job.
        reply: RpcReplyPort<Result<JobSnapshot, DownloaderError>>,
    },
    /// Resolve an `oras://` reference (digest, title, size).
    ResolveOras {
        /// The reference.
        reference: String,
        /// What it resolved to.
        reply: RpcReplyPort<Result<OrasResolved, DownloaderError>>,
    },
    /// Fetch a small document (a catalog) from http(s) or oras, capped.
    FetchDocument {
        /// URL or oras reference.
        url: String,
        /// Byte cap.
        cap: usize,
        /// The bytes.
        reply: RpcReplyPort<Result<Vec<u8>, DownloaderError>>,
    },
    /// Open a remote image as a stream (a flash that does not land it).
    OpenStream {
        /// http(s) URL or `oras://` reference.
        src: String,
        /// The sha256 the bytes must have, if pinned.
        pinned_sha256: Option<String>,
        /// A file name for the image, if the caller knows one.
        name: Option<String>,
        /// The stream, once its first bytes arrived.
        reply: RpcReplyPort<Result<RemoteStream, DownloaderError>>,
    },
    /// Store an upload.
    Upload {
        /// Name and chunks.
        request: UploadRequest,
        /// The result, once all bytes are in.
        reply: RpcReplyPort<Result<Uploaded, DownloaderError>>,
    },
    /// An upload ended (its name may be uploaded again).
    UploadEnded {
        /// File name.
        name: String,
    },
    /// A task progressed.
    Progress {
        /// Job id.
        id: String,
        /// Bytes so far.
        bytes_done: u64,
        /// Total, when known.
        bytes_total: Option<u64>,
    },
    /// A task ended.
    Finished {
        /// Job id.
        id: String,
        /// How.
        outcome: JobOutcome,
    },
    /// Cancel, list or look at jobs.
    Jobs(JobQuery<DownloaderError>),
    /// Test-only: panic inside the handler to exercise supervision.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}
