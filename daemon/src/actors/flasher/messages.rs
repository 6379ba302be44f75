//! Messages the flasher understands.

use super::actor::Prepared;
use super::error::FlasherError;
use super::pending::PendingDownload;
use crate::actors::call::Running;
use crate::actors::downloader::RemoteStream;
use crate::actors::job_query::JobQuery;
use crate::jobs::JobSnapshot;
use bty_disks::Disk;
use ractor::RpcReplyPort;
use std::path::PathBuf;

/// A target and the identity the operator confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedTarget {
    /// Device or file path.
    pub path: PathBuf,
    /// The size the operator saw.
    pub size_bytes: u64,
    /// The serial the operator saw.
    pub serial: Option<String>,
    /// The model the operator saw.
    pub model: Option<String>,
    /// The kernel's disk sequence number the operator's listing showed.
    pub diskseq: Option<u64>,
}

/// Where a flash reads the image from.
#[derive(Debug)]
pub enum ImageInput {
    /// A file: in the image root (local or cached) or named by path,
    /// already open and checked (never reopened by name).
    File(bty_store::identity::VerifiedImage),
    /// A remote image streamed by the downloader, landing nowhere.
    Stream(RemoteStream),
    /// A remote image being downloaded into the image root first (qcow2).
    Download(PendingDownload),
}

/// A flash as a client asks for it: the image by name (row id, sha256,
/// ref, entry or file name) or URL, never by path; the flasher resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashOrder {
    /// The image's name or URL.
    pub image: String,
    /// Where to write.
    pub targets: Vec<ConfirmedTarget>,
    /// Read back and compare after writing.
    pub verify: bool,
    /// Write only the pieces the targets do not already hold.
    pub incremental: bool,
}

/// A flash request with its image resolved (inside the flasher).
#[derive(Debug)]
pub struct FlashJobRequest {
    /// The image.
    pub image: ImageInput,
    /// How the operator named it (for the job's subject).
    pub label: String,
    /// Known sha256 of the stored bytes: the stream is verified against it
    /// (a stream carries its own).
    pub sha256: Option<String>,
    /// Where to write.
    pub targets: Vec<ConfirmedTarget>,
    /// Read back and compare after writing.
    pub verify: bool,
    /// Write only the pieces the targets do not already hold.
    pub incremental: bool,
}

/// Requests and task reports.
#[derive(Debug)]
pub enum FlasherMessage {
    /// Block devices with verdicts.
    ListDisks {
        /// The disks.
        reply: RpcReplyPort<Result<Vec<Disk>, FlasherError>>,
    },
    /// Resolve the image, check the targets and start a flash job.
    Flash {
        /// What to write where.
        order: FlashOrder,
        /// The checking task (answered at once; resolving a streamed image
        /// waits for its first bytes); it ends with the job, or why nothing
        /// was started.
        reply: RpcReplyPort<Running<JobSnapshot, FlasherError>>,
    },
    /// The blocking checks of a `Flash` request are done: start the job.
    Checked {
        /// The request.
        request: FlashJobRequest,
        /// What the checks found, or why the request is refused.
        prepared: Result<Prepared, FlasherError>,
        /// The job, or why nothing was started.
        reply: RpcReplyPort<Result<JobSnapshot, FlasherError>>,
    },
    /// A task's view of its running job.
    Progress {
        /// The job as the task sees it.
        job: JobSnapshot,
    },
    /// A task ended.
    Finished {
        /// The job as it ended.
        job: JobSnapshot,
    },
    /// Cancel, list or look at jobs.
    Jobs(JobQuery<FlasherError>),
    /// Test-only: panic inside the handler to exercise supervision.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}
