//! bty-flash: writes a disk image to one or more targets in-process.
//!
//! The source is decoded once ([`open_decoder`], chosen by magic bytes) by a
//! single reader thread that hashes the raw stream and hands aligned chunks
//! to one writer thread per target ([`flash`]). Writers use `pwrite` with
//! `O_DIRECT` where the target allows it, turn zero runs into `BLKZEROOUT` or
//! holes, hold the first MiB back until everything else is written and
//! synced, then read the target back to verify it. qcow2 images are
//! checked ([`inspect_qcow2`]: no backing or external data file) and go
//! through `qemu-img` on our own descriptors ([`flash_qcow2`]).
//! [`virtual_size`] tells the decoded size from an image's own metadata for
//! the size check before writing.

mod decode;
mod diff;
mod error;
mod hashing;
mod parallel;
mod pieces;
mod pipeline;
mod progress;
mod qcow2;
mod qcow2_header;
mod qcow2_map;
mod qemu_img;
mod raw_file;
mod readahead;
mod reader;
mod removed;
mod size;
mod target;
mod trailing;
mod verify;
mod writer;
mod zeros;

use std::path::PathBuf;

pub use bty_dio::{ALIGN, AlignedBuf};
pub use decode::{XZ_MEMLIMIT, container_name, detect_container, open_decoder};
pub use diff::DiffCounts;
pub use error::FlashError;
pub use hashing::{HashingReader, SourceTally};
pub use pipeline::flash;
pub use qcow2::flash_qcow2;
pub use qcow2_header::{Qcow2Info, inspect_qcow2};
pub use readahead::ReadAhead;
pub use reader::Source;
pub use size::virtual_size;
pub use writer::{BlockSink, BlockWriter, ZERO_RUN_MIN};

/// What kind of thing a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A whole-disk block device (the normal case).
    BlockDevice,
    /// A regular file (tests, image building); created if missing.
    RegularFile,
}

/// One place to write the image to.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Device node or file path.
    pub path: PathBuf,
    /// Block device or regular file.
    pub kind: TargetKind,
    /// Capacity in bytes; `None` asks the device (`BLKGETSIZE64`) or, for a
    /// regular file, means unlimited.
    pub size_bytes: Option<u64>,
    /// What the opened descriptor must be (device number, size and disk
    /// sequence number, or a file's device and inode), checked right after
    /// the open and before any byte is written. The daemon always sets it;
    /// `None` writes whatever the path names (library callers, tests).
    pub expect: Option<bty_disks::TargetIdentity>,
}

/// How to flash.
#[derive(Debug, Clone)]
pub struct FlashOptions {
    /// Bytes per chunk handed from the reader to the writers (rounded up to
    /// [`ALIGN`]). 4 MiB: larger gains nothing measurable.
    pub buffer_size: usize,
    /// Try `O_DIRECT` for writes and verify reads (falls back to buffered
    /// I/O where the filesystem refuses it).
    pub direct_io: bool,
    /// Read every target back and check it, piece by piece, against
    /// digests taken while writing (zero pieces need none).
    pub verify: bool,
    /// Zero runs: `BLKZEROOUT` on block devices, holes in regular files,
    /// instead of writing zeros.
    pub zero_skip: bool,
    /// Bytes at the start (partition tables) held in memory and written only
    /// after everything else succeeded and was synced.
    pub first_region: u64,
    /// The decoded size when known ([`virtual_size`]): progress total and an
    /// early "target too small" check.
    pub image_size: Option<u64>,
    /// Counts source (e.g. compressed) bytes for progress; without it,
    /// progress reports decoded bytes as source bytes.
    pub source_meter: Option<SourceTally>,
    /// The known sha256 of the *decoded* image (for a raw source, its
    /// stored digest): checked on the reader's own hash of the stream before
    /// any first region is written, so a raw source is hashed once, not
    /// twice (no [`HashingReader`] needed).
    pub expected_image_sha256: Option<String>,
    /// Read each stretch of the target before writing it and write only
    /// the pieces that differ (a reflash of a disk that holds an earlier
    /// version of the image). Verify is unchanged.
    pub incremental: bool,
}

impl Default for FlashOptions {
    fn default() -> Self {
        Self {
            buffer_size: 4 << 20,
            direct_io: true,
            verify: true,
            zero_skip: true,
            first_region: 1 << 20,
            image_size: None,
            source_meter: None,
            expected_image_sha256: None,
            incremental: false,
        }
    }
}

/// What a target (or the whole flash) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Writing image bytes.
    Writing,
    /// Flushing, then writing the held first region.
    Syncing,
    /// Reading the target back.
    Verifying,
    /// Finished, successfully or not.
    Done,
}

/// One target's progress.
#[derive(Debug, Clone)]
pub struct TargetProgress {
    /// The target.
    pub path: PathBuf,
    /// What it is doing.
    pub phase: Phase,
    /// Image bytes accepted by its writer.
    pub written: u64,
    /// Bytes read back so far while verifying.
    pub verified: u64,
    /// Whether it has failed.
    pub failed: bool,
}

/// A progress report (at most about four a second).
#[derive(Debug, Clone)]
pub struct Progress {
    /// The least advanced phase among targets that have not failed.
    pub phase: Phase,
    /// Source bytes read (compressed bytes when a meter was given).
    pub source_bytes: u64,
    /// Bytes written by the slowest target that has not failed.
    pub written: u64,
    /// The decoded image size, when known.
    pub total: Option<u64>,
    /// Per target, in the order given.
    pub per_target: Vec<TargetProgress>,
}

/// A target that was written completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDone {
    /// Bytes written (the image size).
    pub written: u64,
    /// `Some(true)` when read back and matched; `None` when not verified.
    pub verified: Option<bool>,
    /// Incremental: what was compared, written and skipped; `None` for a
    /// full write.
    pub diff: Option<DiffCounts>,
}

/// How one target ended.
#[derive(Debug, Clone)]
pub struct TargetOutcome {
    /// The target.
    pub path: PathBuf,
    /// Image bytes accepted before the end; with an error result and a
    /// non-zero count the target is *partially written* (its first region
    /// was not written, so it does not look bootable).
    pub written: u64,
    /// Done, or why not.
    pub result: Result<TargetDone, FlashError>,
}

impl TargetOutcome {
    /// Whether the target holds part of the image (failed after writing).
    pub fn partially_written(&self) -> bool {
        self.result.is_err() && self.written > 0
    }
}

/// The result of a flash.
#[derive(Debug, Clone)]
pub struct FlashReport {
    /// sha256 of the decoded raw stream that was written (of what was
    /// decoded before the failure, if the source failed), computed only to
    /// check [`FlashOptions::expected_image_sha256`]; empty otherwise.
    pub image_sha256: String,
    /// Decoded bytes read.
    pub bytes: u64,
    /// How many times the source was decoded: always 1, however many targets.
    pub decode_passes: u32,
    /// Per target, in the order given.
    pub targets: Vec<TargetOutcome>,
}

impl FlashReport {
    /// Whether every target was written (and verified, when asked).
    pub fn all_ok(&self) -> bool {
        self.targets.iter().all(|t| t.result.is_ok())
    }
}
