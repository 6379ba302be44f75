//! Read-back verification: the sha256 of what a target holds over the
//! written range, read with `O_DIRECT` where possible so the page cache
//! cannot answer for the device.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::thread;

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
    // Two buffers circulate: one being read into, one being hashed, so the
    // read-back takes max(read, hash) rather than their sum.
    let (full_tx, full_rx) = sync_channel::<AlignedBuf>(1);
    let (empty_tx, empty_rx) = channel::<AlignedBuf>();
    for _ in 0..2 {
        let _ = empty_tx.send(AlignedBuf::new(buffer_size));
    }
    thread::scope(|s| {
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for buf in full_rx {
                h.update(buf.as_slice());
                let _ = empty_tx.send(buf);
            }
            to_hex(&h.finalize())
        });
        let mut offset = 0u64;
        while offset < len {
            if stop.load(Ordering::Relaxed) {
                return Err(FlashError::Cancelled);
            }
            let Ok(mut buf) = empty_rx.recv() else {
                return Err(read_err(offset, io::Error::other("hashing thread ended")));
            };
            let want = usize::try_from(len - offset).unwrap_or(usize::MAX);
            // Direct reads need an aligned length; the extra bytes are ignored.
            let request = round_up(want.min(buf.capacity())).min(buf.capacity());
            let n = loop {
                match rustix::io::pread(&fd, &mut buf.as_mut_full()[..request], offset) {
                    Ok(0) => {
                        return Err(read_err(
                            offset,
                            io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "target ends before the image does",
                            ),
                        ));
                    }
                    Ok(n) => break n,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(read_err(offset, e.into())),
                }
            };
            let take = n.min(want);
            buf.set_len(take);
            offset += take as u64;
            progress.store(offset, Ordering::Relaxed);
            if full_tx.send(buf).is_err() {
                return Err(read_err(offset, io::Error::other("hashing thread ended")));
            }
            if direct && !n.is_multiple_of(ALIGN) {
                // A short read left the offset unaligned: finish buffered.
                let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| read_err(offset, e.into()))?;
                rustix::fs::fcntl_setfl(&fd, flags - OFlags::DIRECT)
                    .map_err(|e| read_err(offset, e.into()))?;
                direct = false;
            }
        }
        drop(full_tx);
        hasher
            .join()
            .map_err(|_| read_err(offset, io::Error::other("hashing thread panicked")))
    })
}
