//! The disk side: positional writes of whole buffers, with O_DIRECT where
//! the filesystem allows it. Direct writes DMA straight from the buffer, so
//! the bytes never pass through the page cache: less CPU than a buffered
//! write (no page allocation, no dirty-page bookkeeping, no writeback
//! later), a multi-GiB image does not evict everything else, and the fsync
//! before the rename has almost nothing left to do (`scripts/bench-web`: a
//! 1 GiB upload took 1.25 s instead of 1.72 s buffered). Elsewhere (or once
//! a direct write is refused) buffers go through the page cache, and
//! writeback is started as the file grows so the final fsync stays short.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bty_dio::aligned::{align_down, is_aligned};
use bty_dio::direct;

/// Start writeback after this many new bytes. Small enough that the final
/// fsync waits for at most a few of these; large enough that the disk gets
/// big sequential requests.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Writes buffers into the file where they belong.
pub(super) struct FileWriter {
    /// The caller's descriptor: buffered writes, and what is handed back.
    file: File,
    /// An O_DIRECT descriptor on the same file, while direct writes work.
    direct: Option<File>,
    writeback: Writeback,
}

impl FileWriter {
    /// Write into `file`, open at `path`, whose first `len` bytes are
    /// already there. `try_direct` asks for O_DIRECT, used when available.
    pub(super) fn new(file: File, path: &Path, len: u64, try_direct: bool) -> Self {
        let direct = try_direct.then(|| open_direct(&file, path)).flatten();
        Self {
            file,
            direct,
            writeback: Writeback::new(len),
        }
    }

    /// Whether writes currently bypass the page cache.
    pub(super) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Write `bytes` at `offset`: the aligned part directly when possible,
    /// the rest (a resumed file's first block, the file's last one) through
    /// the page cache.
    pub(super) fn write(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        if let Some(direct) = &self.direct {
            let aligned = &bytes[..align_down(bytes.len())];
            if !aligned.is_empty() && is_aligned(aligned, offset) {
                match direct.write_all_at(aligned, offset) {
                    Ok(()) => done = aligned.len(),
                    // The filesystem took the flag but not the I/O: fall
                    // back for good; the buffered write below overwrites
                    // whatever part of the block did get written.
                    Err(e) if direct::is_refusal(&e) => {
                        tracing::debug!(error = %e, "O_DIRECT write refused; writing through the page cache");
                        self.direct = None;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if done < bytes.len() {
            let end = offset + bytes.len() as u64;
            self.file
                .write_all_at(&bytes[done..], offset + done as u64)?;
            self.writeback.written_to(&self.file, end);
        }
        Ok(())
    }

    /// The caller's descriptor, for the fsync and later writes.
    pub(super) fn into_file(self) -> File {
        self.file
    }
}

/// A second descriptor on `file` that bypasses the page cache; `None`
/// where the filesystem refuses O_DIRECT (the caller then writes through
/// the cache). It reopens the descriptor, not `path` (only named in logs):
/// whatever was renamed or planted under the name since it was created is
/// not what gets written.
fn open_direct(file: &File, path: &Path) -> Option<File> {
    match direct::reopen(file, true, true) {
        Ok(direct) => Some(direct),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no O_DIRECT; writing through the page cache");
            None
        }
    }
}

/// Tracks how much of the file has been handed to writeback.
struct Writeback {
    /// Everything before this offset has had writeback started.
    started: u64,
}

impl Writeback {
    fn new(len: u64) -> Self {
        Self { started: len }
    }

    /// The file now holds bytes up to `end`; once `WRITEBACK_STEP` new
    /// bytes are waiting, ask the kernel to start writing them out
    /// (without waiting for it).
    fn written_to(&mut self, file: &File, end: u64) {
        if end >= self.started + WRITEBACK_STEP {
            start_writeback(file, self.started, end - self.started);
            self.started = end;
        }
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queue the dirty pages of the
/// range for writeback now instead of when the kernel's dirty thresholds
/// say so. Only a hint for speed: durability comes from the final fsync,
/// which also reports any write error, so failures are ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the fd is open for the lifetime of `file`, and
    // sync_file_range only reads its plain integer arguments.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "sync_file_range failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_dio::{ALIGN, AlignedBuf};

    /// Write `data` into a file already holding `data[..start]`, in
    /// buffer-sized pieces the way the pipeline does (the first piece only
    /// up to the next block boundary); return what ends up on disk.
    fn write_through(data: &[u8], start: usize, try_direct: bool) -> (Vec<u8>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        std::fs::write(&path, &data[..start]).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut w = FileWriter::new(file, &path, start as u64, try_direct);
        let was_direct = w.is_direct();
        let mut buf = AlignedBuf::new(16 * ALIGN);
        let mut offset = start;
        while offset < data.len() {
            let room = match offset % ALIGN {
                0 => buf.capacity(),
                r => ALIGN - r,
            };
            let end = data.len().min(offset + room);
            buf.fill(&data[offset..end]);
            w.write(buf.as_slice(), offset as u64).unwrap();
            buf.set_len(0);
            offset = end;
        }
        w.into_file().sync_all().unwrap();
        (std::fs::read(&path).unwrap(), was_direct)
    }

    fn data() -> Vec<u8> {
        (0..(40 * ALIGN + 1234)).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn direct_writes_land_every_byte_in_place() {
        let data = data();
        for start in [0, 1, ALIGN - 1, ALIGN, ALIGN + 17, 16 * ALIGN + 3] {
            let (got, was_direct) = write_through(&data, start, true);
            assert!(got == data, "content differs when starting at {start}");
            // Where the temp dir's filesystem takes O_DIRECT (ext4, xfs,
            // tmpfs since Linux 6.6) the direct path is what ran.
            if start == 0 {
                eprintln!("O_DIRECT used: {was_direct}");
            }
        }
    }

    #[test]
    fn buffered_writes_land_every_byte_in_place() {
        let data = data();
        for start in [0, 12_345] {
            let (got, was_direct) = write_through(&data, start, false);
            assert!(!was_direct);
            assert!(got == data, "content differs when starting at {start}");
        }
    }

    #[test]
    fn writeback_starts_once_a_step_has_accumulated() {
        let file = tempfile::tempfile().unwrap();
        let mut wb = Writeback::new(5);
        wb.written_to(&file, WRITEBACK_STEP + 4);
        assert_eq!(wb.started, 5);
        wb.written_to(&file, WRITEBACK_STEP + 5);
        assert_eq!(wb.started, WRITEBACK_STEP + 5);
    }
}
