//! Opening a target and the real [`BlockSink`]: `pwrite` at explicit
//! offsets through `O_DIRECT` where the target allows it, `BLKZEROOUT` or
//! holes for zero runs, `fsync`, `BLKRRPART`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use bty_dio::aligned::align_down;
use bty_dio::direct;
use bty_disks::OpenedDevice;
use rustix::fs::{FallocateFlags, FileType, OFlags};
use rustix::io::Errno;

use crate::diff::{DiffCounts, Differ};
use crate::parallel::{all_at_once, split};
use crate::removed::opened_device;
use crate::writer::{BlockSink, write_zeros};
use crate::{FlashError, FlashOptions, TargetKind, TargetSpec};

/// How a sink makes a zero run read back as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZeroMode {
    /// Write the zeros (zero skipping off, or nothing better works).
    Write,
    /// `BLKZEROOUT` on a block device.
    ZeroOut,
    /// Nothing: a fresh regular file reads zeros where nothing was written.
    Skip,
    /// `fallocate(PUNCH_HOLE)` over old contents of a regular file.
    PunchHole,
}

/// A target opened for writing.
#[derive(Debug)]
pub(crate) struct FileSink {
    path: PathBuf,
    fd: OwnedFd,
    direct: bool,
    zero: ZeroMode,
    kind: TargetKind,
    /// Incremental: what the target holds decides what is written.
    differ: Option<Differ>,
    /// The block device opened, looked up again when I/O on it fails.
    device: Option<OpenedDevice>,
}

/// Open `spec` for writing; returns the sink and the target's capacity.
pub(crate) fn open_target(
    spec: &TargetSpec,
    opts: &FlashOptions,
) -> Result<(FileSink, Option<u64>), FlashError> {
    let open_err = |e: io::Error| FlashError::Open {
        path: spec.path.clone(),
        source: FlashError::arc(e),
    };
    let mut flags = OFlags::WRONLY | OFlags::CLOEXEC;
    match spec.kind {
        // Never through a symlink planted where the checked file was.
        TargetKind::RegularFile => flags |= OFlags::CREATE | OFlags::NOFOLLOW,
        // O_EXCL on a block device: the kernel refuses (EBUSY) while any
        // partition is mounted or claimed, the last guard against a disk
        // that got mounted after the safety checks.
        TargetKind::BlockDevice => flags |= OFlags::EXCL,
    }
    let (fd, direct) = direct::open(&spec.path, flags, opts.direct_io).map_err(open_err)?;
    if let Some(expected) = &spec.expect {
        bty_disks::verify_opened(fd.as_fd(), expected)
            .map_err(|e| FlashError::Identity(Arc::new(e)))?;
    }
    let stat = rustix::fs::fstat(&fd).map_err(|e| open_err(e.into()))?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    let (zero, capacity) = match spec.kind {
        TargetKind::BlockDevice => {
            if !file_type.is_block_device() {
                return Err(open_err(io::Error::other("not a block device")));
            }
            let capacity = match spec.size_bytes {
                Some(size) => Some(size),
                None => Some(bty_disks::block_size_bytes(fd.as_fd()).map_err(open_err)?),
            };
            (ZeroMode::ZeroOut, capacity)
        }
        TargetKind::RegularFile => {
            if !file_type.is_file() {
                return Err(open_err(io::Error::other("not a regular file")));
            }
            let fresh = stat.st_size == 0;
            (
                if fresh {
                    ZeroMode::Skip
                } else {
                    ZeroMode::PunchHole
                },
                spec.size_bytes,
            )
        }
    };
    let zero = if opts.zero_skip {
        zero
    } else {
        ZeroMode::Write
    };
    let device = match spec.kind {
        TargetKind::BlockDevice => opened_device(fd.as_fd(), &spec.path),
        TargetKind::RegularFile => None,
    };
    let differ = if opts.incremental {
        Some(Differ::new(&fd, direct, opts.buffer_size).map_err(open_err)?)
    } else {
        None
    };
    Ok((
        FileSink {
            path: spec.path.clone(),
            fd,
            direct,
            zero,
            kind: spec.kind,
            differ,
            device,
        },
        capacity,
    ))
}

impl AsFd for FileSink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl FileSink {
    /// Incremental only: bytes compared, written and skipped so far.
    pub(crate) fn diff_counts(&self) -> Option<DiffCounts> {
        self.differ.as_ref().map(Differ::counts)
    }

    /// The block device this target is, as opened; `None` for a file.
    pub(crate) fn device(&self) -> Option<OpenedDevice> {
        self.device
    }

    /// Write `data` at `offset`, whatever the target holds there.
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if !self.direct {
            return pwrite_all(&self.fd, data, offset);
        }
        let aligned = align_down(data.len());
        if aligned > 0 {
            // Parts at once: the device sees several writes in flight.
            let fd = &self.fd;
            let parts = split(aligned);
            let written = all_at_once(parts, |r| {
                pwrite_all(fd, &data[r.clone()], offset + r.start as u64)
            });
            match written {
                Err(e) if direct::is_refusal(&e) => {
                    tracing::debug!(path = %self.path.display(), "O_DIRECT write refused; using buffered I/O");
                    self.stop_direct()?;
                    pwrite_all(&self.fd, &data[..aligned], offset)?;
                }
                r => r?,
            }
        }
        if aligned < data.len() {
            // The final partial block cannot go through O_DIRECT.
            self.stop_direct()?;
            pwrite_all(&self.fd, &data[aligned..], offset + aligned as u64)?;
        }
        Ok(())
    }

    /// Make `len` bytes at `offset` read back as zeros, whatever the
    /// target holds there.
    fn zero_all(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let done = match self.zero {
            ZeroMode::Write => false,
            ZeroMode::Skip => extend_to(&self.fd, offset + len).is_ok(),
            ZeroMode::ZeroOut => bty_disks::zero_out(self.fd.as_fd(), offset, len).is_ok(),
            ZeroMode::PunchHole => {
                rustix::fs::fallocate(
                    &self.fd,
                    FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                    offset,
                    len,
                )
                .is_ok()
                    && extend_to(&self.fd, offset + len).is_ok()
            }
        };
        if !done {
            if self.zero != ZeroMode::Write {
                tracing::debug!(path = %self.path.display(), mode = ?self.zero, "zeroing refused; writing zeros");
                self.zero = ZeroMode::Write;
            }
            write_zeros(&mut Plain(self), offset, len)?;
        }
        Ok(())
    }

    /// Leave direct I/O for the rest of this target (an unaligned tail, or
    /// a filesystem that accepted `O_DIRECT` at open but not on write).
    fn stop_direct(&mut self) -> io::Result<()> {
        if self.direct {
            direct::set_direct(&self.fd, false)?;
            self.direct = false;
        }
        Ok(())
    }

    /// Re-read the partition table of a block device; failures are logged
    /// (EINVAL: a device without partition scanning, e.g. a plain loop).
    pub(crate) fn reread_partitions(&self) {
        if self.kind != TargetKind::BlockDevice {
            return;
        }
        if let Err(e) = bty_disks::reread_partition_table(self.fd.as_fd()) {
            tracing::info!(path = %self.path.display(), error = %e, "BLKRRPART failed; partition table not re-read");
        }
    }
}

/// Make a regular file at least `len` bytes long (new bytes read as
/// zeros), so a zero run at its end reads back before the final length is
/// set: verify reads each stretch as soon as it is synced.
fn extend_to(fd: &OwnedFd, len: u64) -> io::Result<()> {
    let size = rustix::fs::fstat(fd)?.st_size;
    if u64::try_from(size).is_ok_and(|size| size < len) {
        rustix::fs::ftruncate(fd, len)?;
    }
    Ok(())
}

fn pwrite_all(fd: &OwnedFd, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::pwrite(fd, data, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl BlockSink for FileSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Some(differ) = self.differ.as_mut() else {
            return self.write_all_at(offset, data);
        };
        for changed in differ.changed(offset, data)? {
            self.write_all_at(offset + changed.start as u64, &data[changed])?;
        }
        Ok(())
    }

    fn zero_range(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let Some(differ) = self.differ.as_mut() else {
            return self.zero_all(offset, len);
        };
        for dirty in differ.not_zero(offset, len)? {
            self.zero_all(dirty.start, dirty.end - dirty.start)?;
        }
        Ok(())
    }

    fn set_final_len(&mut self, len: u64) -> io::Result<()> {
        if self.kind == TargetKind::RegularFile {
            rustix::fs::ftruncate(&self.fd, len)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

/// A [`FileSink`] seen as a sink that writes whatever it is given: zeros
/// written in place of a refused zero range are not compared again.
struct Plain<'a>(&'a mut FileSink);

impl BlockSink for Plain<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(offset, data)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync()
    }
}
