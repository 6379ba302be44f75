//! The one error type of the flash pipeline: every variant names what failed.
//!
//! Sources are `Arc`-wrapped so a failure of the shared source (a corrupt
//! stream, a cancel) can be reported on every target it cut short.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bty_store::format::SUPPORTED_EXTENSIONS;
use thiserror::Error;

/// Why a flash (or one of its targets) failed.
///
/// A target whose result is an error was at most *partially written*: the
/// pipeline writes the first region (partition tables) only after every other
/// byte landed, so such a target never looks like a bootable copy.
#[derive(Debug, Clone, Error)]
pub enum FlashError {
    /// The compressed stream could not be decoded (corrupt or truncated).
    #[error("{format} stream is corrupt or truncated (after {at} decoded bytes)")]
    Decode {
        /// The container, e.g. `zstd`.
        format: &'static str,
        /// Decoded bytes produced before the failure.
        at: u64,
        /// The decoder's own report.
        #[source]
        source: Arc<io::Error>,
    },
    /// The decoder for a container could not be set up.
    #[error("setting up the {format} decoder")]
    DecoderInit {
        /// The container, e.g. `xz`.
        format: &'static str,
        /// The library's report.
        #[source]
        source: Arc<io::Error>,
    },
    /// Reading the (compressed) source failed, e.g. the download broke off.
    #[error("reading the image source failed (after {at} decoded bytes)")]
    Read {
        /// Decoded bytes produced before the failure.
        at: u64,
        /// The reader's report.
        #[source]
        source: Arc<io::Error>,
    },
    /// The source's sha256 differs from the known digest.
    #[error("image source digest mismatch: expected sha256 {expected}, got {actual}")]
    SourceDigestMismatch {
        /// The known digest (lowercase hex).
        expected: String,
        /// The digest of the bytes actually read.
        actual: String,
    },
    /// An image file could not be read to learn its format or size.
    #[error("reading the image's header")]
    Inspect {
        /// The OS's report.
        #[source]
        source: Arc<io::Error>,
    },
    /// A qcow2 image that names another file (a backing file, an external
    /// data file), is encrypted, malformed, or could be changed by someone
    /// else before qemu-img reads it: qemu-img never sees it.
    #[error("refusing this qcow2 image: {reason}")]
    Qcow2Refused {
        /// What is wrong with it.
        reason: String,
    },
    /// A compressed stream needs more decoder memory than allowed (an xz
    /// dictionary far larger than any disk image needs).
    #[error(
        "{format} stream needs more than the {limit_mib} MiB decoder memory limit \
         (its dictionary is larger than a disk image needs); refusing it"
    )]
    MemoryLimit {
        /// The container, e.g. `xz`.
        format: &'static str,
        /// The limit in MiB.
        limit_mib: u64,
    },
    /// The target could not be opened for writing (or is not what it claims).
    #[error("opening target {path}")]
    Open {
        /// The target.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: Arc<io::Error>,
    },
    /// The opened target is not the one confirmed: something took its
    /// path between the last check and the open. Nothing was written.
    #[error(transparent)]
    Identity(Arc<bty_disks::IdentityMismatch>),
    /// The image does not fit on the target.
    #[error(
        "target {path} is too small: the image needs at least {needed} bytes, it holds {capacity}"
    )]
    TargetTooSmall {
        /// The target.
        path: PathBuf,
        /// Bytes the image needs (at least).
        needed: u64,
        /// Bytes the target holds.
        capacity: u64,
    },
    /// A write to the target failed.
    #[error("writing target {path} at byte {offset}")]
    Write {
        /// The target.
        path: PathBuf,
        /// Where the failed write started.
        offset: u64,
        /// The underlying failure.
        #[source]
        source: Arc<io::Error>,
    },
    /// Flushing the target to stable storage failed.
    #[error("flushing target {path} to stable storage")]
    Sync {
        /// The target.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: Arc<io::Error>,
    },
    /// Reading the target back for verification failed.
    #[error("reading back target {path} at byte {offset} to verify it")]
    VerifyRead {
        /// The target.
        path: PathBuf,
        /// Where the failed read started.
        offset: u64,
        /// The underlying failure.
        #[source]
        source: Arc<io::Error>,
    },
    /// A write, flush or read-back on the target failed because the
    /// device went away: unplugged, or its medium pulled (size 0).
    #[error("{path}: device removed during the flash (after {written} bytes written)")]
    DeviceRemoved {
        /// The target.
        path: PathBuf,
        /// Image bytes its writer had accepted when it failed.
        written: u64,
        /// The kernel's report of the failed I/O.
        #[source]
        source: Arc<io::Error>,
    },
    /// What was read back differs from what was written.
    #[error(
        "verify failed on {path}: {len} bytes at offset {offset} read back as {actual}, {expected} was written"
    )]
    VerifyMismatch {
        /// The target.
        path: PathBuf,
        /// Where the first differing piece starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// What was written there (`all zeros` or `xxh3-128 …`).
        expected: String,
        /// What reads back (`xxh3-128 …`).
        actual: String,
    },
    /// A verify thread died, or the digests of what was written were lost:
    /// the target cannot be said to hold the image.
    #[error("verify could not finish: a verify thread stopped unexpectedly")]
    VerifyThread,
    /// `qemu-img compare` found the target different from the qcow2 image.
    #[error("verify failed on {path}: qemu-img compare reports {detail}")]
    CompareMismatch {
        /// The target.
        path: PathBuf,
        /// What qemu-img said (e.g. the first differing offset).
        detail: String,
    },
    /// The operator cancelled; the target is partially written.
    #[error("flash cancelled by operator; the target is partially written")]
    Cancelled,
    /// Every target failed before the source was fully read.
    #[error("no target left to write to")]
    NoTargets,
    /// qcow2 cannot be streamed; it goes through [`crate::flash_qcow2`].
    #[error("qcow2 images cannot be streamed; they are converted with qemu-img")]
    NeedsQemuImg,
    /// qemu-img could not be started.
    #[error("running qemu-img")]
    QemuImgSpawn {
        /// The spawn failure.
        #[source]
        source: Arc<io::Error>,
    },
    /// qemu-img exited unsuccessfully.
    #[error("qemu-img {action} {status}: {stderr}")]
    QemuImg {
        /// `convert` or `compare`.
        action: &'static str,
        /// How it exited.
        status: String,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// Not an image format bty can flash.
    #[error("not a supported disk image (supported: {SUPPORTED_EXTENSIONS}, .raw, .iso)")]
    Unsupported,
    /// The name claims a format the bytes do not have (damaged or misnamed).
    #[error(transparent)]
    Format(bty_store::format::FormatError),
    /// A tarball: the image must be extracted first.
    #[error("this is a tarball: extract the disk image first (tar -xf) and flash the image file")]
    Tarball,
}

impl FlashError {
    /// Shorthand for the `Arc` wrapping of io errors.
    pub(crate) fn arc(e: io::Error) -> Arc<io::Error> {
        Arc::new(e)
    }
}
