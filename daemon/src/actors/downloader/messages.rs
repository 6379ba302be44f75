//! Messages the downloader understands.

use super::error::{BadRef, DownloaderError, SourceError, UploadError};
use super::stream::RemoteStream;
use crate::actors::call::Running;
use crate::actors::catalog::CatalogError;
use crate::actors::job_query::JobQuery;
use crate::domain::{DownloadSpec, LocalImage};
use crate::jobs::JobSnapshot;
use bty_fetch::FetchError;
use bty_oci::OciError;
use bty_store::identity::OpenImageError;
use ractor::RpcReplyPort;
use std::io;
use thiserror::Error;

/// A signature made by a client, to publish in cosign's layout.
#[derive(Debug, Clone)]
pub struct SignaturePush {
    /// `oras://host/repo[:tag]`: the manifest's repository.
    pub target: String,
    /// `sha256:<hex>` of the signed manifest.
    pub manifest_digest: String,
    /// The simple-signing payload.
    pub payload: Vec<u8>,
    /// The signature over the payload.
    pub signature: Vec<u8>,
}

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

/// A remote image to read as a stream.
#[derive(Debug, Clone)]
pub struct OpenStreamRequest {
    /// http(s) URL or `oras://` reference.
    pub src: String,
    /// The sha256 the bytes must have, if pinned.
    pub pinned_sha256: Option<String>,
    /// The entry's checksum file, for a `[[trust]]` rule's check.
    pub sha_url: Option<String>,
    /// A file name for the image, if the caller knows one.
    pub name: Option<String>,
    /// Start at this byte (0: the whole body, checked against its digest;
    /// later: a ranged read, which no digest covers).
    pub from: u64,
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The upload's job.
    pub job_id: String,
    /// File name.
    pub name: String,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Their sha256 (the sidecar is written).
    pub sha256: String,
    /// The file as a scan lists it, right after it landed.
    pub landed: Option<bty_store::scan::ScannedFile>,
}

/// How a job task ended.
#[derive(Debug)]
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
    /// Failed; the job's error is this with its causes.
    Failed(JobFailure),
}

/// Why a download or push job failed.
#[derive(Debug, Error)]
pub enum JobFailure {
    /// Where the bytes come from could not be worked out.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The catalog could not be told a download is landing.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// No random name for the partial file.
    #[error("cannot name the partial file")]
    PartialName(#[source] io::Error),
    /// The transfer failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A registry token could not be renewed mid-pull.
    #[error(transparent)]
    Token(OciError),
    /// The verified bytes could not replace the cached file.
    #[error("cannot move {name} into place")]
    Install {
        /// The cached file's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A push target that is not an `oras://` reference.
    #[error("invalid push target {target:?}")]
    PushTarget {
        /// What the client sent.
        target: String,
        /// Why it is not one.
        #[source]
        source: BadRef,
    },
    /// The listed file does not open as the one the scan listed.
    #[error(transparent)]
    Open(#[from] OpenImageError),
    /// Opening the file on the blocking pool panicked.
    #[error("opening {name} failed")]
    OpenTask {
        /// File name.
        name: String,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The registry refused the push.
    #[error(transparent)]
    Push(OciError),
    /// An upload stored nothing (the client's call ends with the same
    /// error).
    #[error(transparent)]
    Upload(UploadError),
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
    /// A fetch's job file was written (or not): queue the job and answer
    /// everyone who asked for it meanwhile (sent by the downloader to
    /// itself).
    Recorded {
        /// The entry's ref.
        image_ref: String,
        /// The spec as recorded, or why it could not be.
        recorded: std::io::Result<DownloadSpec>,
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
    /// Publish a client-made cosign signature.
    PushSignature {
        /// What to publish.
        push: SignaturePush,
        /// The pushing task (answered at once); it ends with the tag.
        reply: RpcReplyPort<Running<String, DownloaderError>>,
    },
    /// Resolve an `oras://` reference (digest, title, size).
    ResolveOras {
        /// The reference.
        reference: String,
        /// The resolving task (answered at once); it ends with what the
        /// reference resolved to.
        reply: RpcReplyPort<Running<OrasResolved, DownloaderError>>,
    },
    /// The add-time `[[trust]]` check of an http(s) source: the digest its
    /// signed `sha_url` lists, or `None` when no rule covers it.
    CheckSignedSums {
        /// The canonical source.
        src: String,
        /// The checksum file, if any.
        sha_url: Option<String>,
        /// The checking task (answered at once).
        reply: RpcReplyPort<Running<Option<super::signed_sums::SignedDigest>, DownloaderError>>,
    },
    /// Fetch a small document (a catalog) from http(s) or oras, capped.
    FetchDocument {
        /// URL or oras reference.
        url: String,
        /// Byte cap.
        cap: usize,
        /// The fetching task (answered at once); it ends with the bytes.
        reply: RpcReplyPort<Running<Vec<u8>, DownloaderError>>,
    },
    /// Open a remote image as a stream (a flash that does not land it).
    OpenStream {
        /// What to open.
        request: OpenStreamRequest,
        /// The opening task (answered at once); it ends with the stream,
        /// once its first bytes arrived.
        reply: RpcReplyPort<Running<RemoteStream, DownloaderError>>,
    },
    /// Store an upload, as a job from now on.
    Upload {
        /// Name and chunks.
        request: UploadRequest,
        /// The storing task (answered at once); it ends with the result,
        /// once all bytes are in.
        reply: RpcReplyPort<Running<Uploaded, DownloaderError>>,
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
