//! Messages the hasher understands.

use super::error::{HashFailure, HasherError};
use crate::actors::job_query::JobQuery;
use crate::jobs::JobSnapshot;
use ractor::RpcReplyPort;

/// How a hash task ended.
#[derive(Debug)]
pub enum HashOutcome {
    /// Hashed and the sidecar is written.
    Hashed {
        /// Lowercase hex.
        sha256: String,
        /// Bytes read.
        bytes: u64,
    },
    /// The file changed while it was read; hash it again later.
    Changed,
    /// Cancelled on request.
    Cancelled,
    /// Failed; the job's error is this with its causes.
    Failed(HashFailure),
}

/// A file to hash, as it was when the request came.
#[derive(Debug, Clone)]
pub struct LookedFile {
    /// Its identity: the task hashes it only if the name still holds it.
    pub identity: bty_store::identity::FileIdentity,
    /// Its size.
    pub size: u64,
    /// Its sha256 from a fresh sidecar: nothing to hash.
    pub fresh_sha256: Option<String>,
}

/// Requests and task reports.
#[derive(Debug)]
pub enum HasherMessage {
    /// Queue a job for a file (or return the active one); `reply` is `None`
    /// for fire-and-forget requests from the catalog.
    Enqueue {
        /// Bare file name in the image root.
        name: String,
        /// Where the job goes.
        reply: Option<RpcReplyPort<Result<JobSnapshot, HasherError>>>,
    },
    /// The file of an `Enqueue` was looked at (off the actor).
    Looked {
        /// Its place in request order.
        ticket: u64,
        /// Bare file name in the image root.
        name: String,
        /// What was found, or why it cannot be hashed.
        looked: Result<LookedFile, HasherError>,
        /// Where the job goes.
        reply: Option<RpcReplyPort<Result<JobSnapshot, HasherError>>>,
    },
    /// A task read this many bytes.
    Progress {
        /// Job id.
        id: String,
        /// Bytes read so far.
        bytes_done: u64,
    },
    /// A task ended.
    Finished {
        /// Job id.
        id: String,
        /// File name (so a restarted actor can still tell the catalog).
        name: String,
        /// How it ended.
        outcome: HashOutcome,
    },
    /// Cancel, list or look at jobs.
    Jobs(JobQuery<HasherError>),
    /// Test-only: panic inside the handler to exercise supervision.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}
