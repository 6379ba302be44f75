//! Read-back verification: the sha256 of what a target holds over the
//! written range, read with `O_DIRECT` where possible so the page cache
//! cannot answer for the device.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bty_store::digest::to_hex;
use rustix::fs::OFlags;
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::FlashError;
use crate::aligned::{ALIGN, AlignedBuf, round_up};
use crate::target::open_maybe_direct;

/// sha256 (lowercase hex) of the first `len` bytes of `path`, reading
/// `buffer_size` at a time; `stop` is checked per buffer, `progress` counts
/// bytes read.
pub(crate) fn read_back_sha256(
    path: &Path,
    len: u64,
    direct: bool,
    buffer_size: usize,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<String, FlashError> {
    let read_err = |offset: u64, e: io::Error| FlashError::VerifyRead {
        path: path.to_path_buf(),
        offset,
        source: FlashError::arc(e),
    };
    let (fd, mut direct) = open_maybe_direct(path, OFlags::RDONLY | OFlags::CLOEXEC, direct)
        .map_err(|e| read_err(0, e))?;
    let mut buf = AlignedBuf::new(buffer_size);
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    while offset < len {
        if stop.load(Ordering::Relaxed) {
            return Err(FlashError::Cancelled);
        }
        let want = usize::try_from(len - offset).unwrap_or(usize::MAX);
        // Direct reads need an aligned length; the extra bytes are ignored.
        let request = round_up(want.min(buf.capacity())).min(buf.capacity());
        let n = match rustix::io::pread(&fd, &mut buf.as_mut_full()[..request], offset) {
            Ok(0) => {
                return Err(read_err(
                    offset,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "target ends before the image does",
                    ),
                ));
            }
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(read_err(offset, e.into())),
        };
        let take = n.min(want);
        hasher.update(&buf.as_mut_full()[..take]);
        offset += take as u64;
        progress.store(offset, Ordering::Relaxed);
        if direct && !n.is_multiple_of(ALIGN) {
            // A short read left the offset unaligned: finish buffered.
            let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| read_err(offset, e.into()))?;
            rustix::fs::fcntl_setfl(&fd, flags - OFlags::DIRECT)
                .map_err(|e| read_err(offset, e.into()))?;
            direct = false;
        }
    }
    Ok(to_hex(&hasher.finalize()))
}
