//! The downloader: jobs that turn a source (an http(s) URL, an `oras://`
//! artifact, an upload stream) into a file in the image root — `.partial`
//! staging, resume, retries, inline sha256, digest verification, atomic
//! rename — then tell the catalog "bytes landed". Also pushes images to OCI
//! registries, fetches small documents (catalogs) for imports, and opens
//! remote images as streams for flashes that do not land them.

mod actor;
mod error;
mod handle;
mod job_files;
mod messages;
mod persist;
mod signed_sums;
mod source;
mod stream;
mod task;
mod upload;
mod upload_job;

pub use actor::{DownloaderActor, DownloaderArgs, TaskRegistry};
pub use error::{BadRef, DocumentError, DownloaderError, SourceError, StreamError, UploadError};
pub use handle::DownloaderHandle;
pub use messages::{
    DownloaderMessage, JobFailure, JobOutcome, OrasResolved, SignaturePush, UploadRequest, Uploaded,
};
pub use signed_sums::{HttpTrust, HttpTrustRule, SignedDigest, SignedSumsError};
pub use stream::RemoteStream;
