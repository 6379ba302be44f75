//! Errors of downloader requests (a failed *job* is data, not an error).

use super::signed_sums::SignedSumsError;
use crate::actors::Unavailable;
use crate::actors::catalog::CatalogError;
use bty_fetch::FetchError;
use bty_oci::OciError;
use bty_store::canon::SrcError;
use bty_store::intake::IntakeError;
use bty_store::names::NameError;
use bty_store::oras_ref::OrasRefError;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why a downloader request was refused or failed.
#[derive(Debug, Error)]
pub enum DownloaderError {
    /// An upload's name is not a bare file name bty may store.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// An image URL (to resolve) that is not a valid source.
    #[error("invalid image_url")]
    BadImageUrl(#[source] BadRef),
    /// An http(s) source a `[[trust]]` rule covers did not verify.
    #[error(transparent)]
    UnsignedSums(Box<SignedSumsError>),
    /// A catalog URL that is not a valid source.
    #[error("invalid catalog url")]
    BadCatalogUrl(#[source] BadRef),
    /// A `file://` catalog URL.
    #[error("file:// catalogs are read with a path, not a URL")]
    FileCatalogUrl,
    /// An upload stored nothing.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// No such job.
    #[error("no download job with id {id:?}")]
    NoSuchJob {
        /// What the client sent.
        id: String,
    },
    /// Another upload of the same name is under way.
    #[error("{name} is being uploaded already; try again when that upload ends")]
    Busy {
        /// File name.
        name: String,
    },
    /// A signature push that cannot be right (target, digest, payload).
    #[error("invalid signature push")]
    BadSignaturePush(#[source] BadSignaturePush),
    /// The registry refused the signature push.
    #[error("pushing the signature failed")]
    PushSignature(#[source] OciError),
    /// An `oras://` reference the registry did not resolve.
    #[error("could not resolve oras ref")]
    ResolveOras(#[source] OciError),
    /// A small document (a catalog) could not be fetched.
    #[error("fetching {url} failed")]
    FetchDocument {
        /// The canonical URL.
        url: String,
        /// Why.
        #[source]
        source: DocumentError,
    },
    /// Where a remote image's bytes come from could not be worked out.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A remote image could not be opened as a stream.
    #[error("cannot stream {src}")]
    Stream {
        /// What was asked for.
        src: String,
        /// Why.
        #[source]
        source: StreamError,
    },
    /// Local I/O on a file of the image root or the state directory failed.
    #[error("{what}")]
    Io {
        /// What bty was doing.
        what: String,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The actor (or a task of it) could not answer.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Why an upload stored nothing. The same failure answers the client and
/// ends the upload's job, so it is `Clone`: its causes are shared.
#[derive(Debug, Clone, Error)]
pub enum UploadError {
    /// An upload that ended before its declared size.
    #[error("upload of {name} ended after {size} bytes, {declared} were declared")]
    SizeMismatch {
        /// File name.
        name: String,
        /// Bytes received.
        size: u64,
        /// Bytes declared.
        declared: u64,
    },
    /// The client went away mid-upload.
    #[error("upload of {name} was interrupted after {size} bytes")]
    Interrupted {
        /// File name.
        name: String,
        /// Bytes received.
        size: u64,
    },
    /// An operator cancelled the upload's job.
    #[error("upload of {name} was cancelled after {size} bytes")]
    Cancelled {
        /// File name.
        name: String,
        /// Bytes received.
        size: u64,
    },
    /// A declared upload size that does not fit.
    #[error("not enough free space in {}: {needed} bytes needed, {free} free", root.display())]
    NoSpace {
        /// The image root.
        root: PathBuf,
        /// Bytes declared.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// Writing the upload's bytes failed.
    #[error("cannot store the upload of {name}")]
    Store {
        /// File name.
        name: String,
        /// Why.
        #[source]
        source: Arc<IntakeError>,
    },
    /// Local I/O on the upload's file or the image root failed.
    #[error("{what}")]
    Io {
        /// What bty was doing.
        what: String,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The storing task panicked.
    #[error("upload task failed")]
    Task(#[source] Arc<tokio::task::JoinError>),
    /// The upload exceeded the configured cap.
    #[error("upload exceeded {cap} bytes")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// The catalog refused the upload's name (a download is landing on
    /// it) or could not answer.
    #[error(transparent)]
    Catalog(Arc<CatalogError>),
}

/// A URL or reference that is not a valid source.
#[derive(Debug, Error)]
pub enum BadRef {
    /// Not a canonical src.
    #[error(transparent)]
    Src(#[from] SrcError),
    /// Not an `oras://` reference.
    #[error(transparent)]
    Oras(#[from] OrasRefError),
}

/// Why a small document could not be fetched.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// Over http(s).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// From a registry.
    #[error(transparent)]
    Oci(#[from] OciError),
}

/// Why a remote source could not be resolved to a request.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Not a valid source.
    #[error(transparent)]
    BadRef(#[from] BadRef),
    /// The registry did not resolve the reference.
    #[error(transparent)]
    Registry(OciError),
    /// The registry's layer is not the pinned content.
    #[error("the registry's layer digest sha256:{hex} does not match the pinned sha256 {pinned}")]
    DigestMismatch {
        /// The layer digest (hex).
        hex: String,
        /// The pin.
        pinned: String,
    },
    /// A `[[trust]]` rule matched and no signature by its keys verified.
    #[error(transparent)]
    Untrusted(OciError),
    /// A `[[trust]]` rule covers the http(s) source and its pin is not
    /// from a checksum file signed by the rule's keys.
    #[error(transparent)]
    UnsignedSums(Box<SignedSumsError>),
    /// No token or URL for the blob.
    #[error(transparent)]
    BlobRequest(OciError),
    /// A `file://` source.
    #[error("file:// sources are local; nothing to download")]
    Local,
    /// An update's probe of the server failed.
    #[error(transparent)]
    Probe(FetchError),
}

/// Why a stream did not start.
#[derive(Debug, Error)]
pub enum StreamError {
    /// The transfer was refused before it began (size over the cap).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The first bytes did not arrive.
    #[error(transparent)]
    Body(#[from] std::io::Error),
    /// A stream from a byte offset needs the body's size, which the source
    /// did not declare, or the offset is past it.
    #[error("cannot start at byte {from}: {}", match size { Some(s) => format!("the body is {s} bytes"), None => "the source declares no size".to_owned() })]
    NoRange {
        /// The offset asked for.
        from: u64,
        /// The declared size, if any.
        size: Option<u64>,
    },
}

/// Why a client-made signature is not pushed.
#[derive(Debug, Error)]
pub enum BadSignaturePush {
    /// The target is not a URL bty accepts.
    #[error("target {target:?}")]
    Target {
        /// What the client sent.
        target: String,
        /// Why.
        #[source]
        source: bty_store::canon::SrcError,
    },
    /// The target is not an `oras://` reference.
    #[error("target {target:?}")]
    Reference {
        /// What the client sent.
        target: String,
        /// Why.
        #[source]
        source: bty_store::oras_ref::OrasRefError,
    },
    /// The payload is over the cap.
    #[error("the payload is larger than {max} bytes")]
    PayloadTooLarge {
        /// The cap.
        max: usize,
    },
    /// The signature is empty or over the cap.
    #[error("the signature is empty or over {max} bytes")]
    SignatureSize {
        /// The cap.
        max: usize,
    },
    /// The payload is not a cosign payload for the digest named.
    #[error(transparent)]
    Payload(#[from] bty_cosign::SignatureError),
}

// Boxed: the refusal carries URLs, fingerprints and the crate's reason,
// and would make every downloader `Result` large.
impl From<SignedSumsError> for DownloaderError {
    fn from(e: SignedSumsError) -> Self {
        Self::UnsignedSums(Box::new(e))
    }
}

impl From<SignedSumsError> for SourceError {
    fn from(e: SignedSumsError) -> Self {
        Self::UnsignedSums(Box::new(e))
    }
}
