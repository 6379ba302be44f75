//! The two threads behind an intake file, so receiving, hashing and writing
//! overlap: sha256 — the biggest CPU cost of taking bytes in — runs beside
//! the network and the disk instead of between them.
//!
//! A full buffer goes to the hasher thread, then (in order) to the writer
//! thread, then back to the pool the filler takes empty buffers from. The
//! pool bounds the memory a intake holds, and the filler only ever waits
//! when every buffer is queued for hashing or writing.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use bty_dio::AlignedBuf;
use sha2::{Digest, Sha256};

use super::error::IntakeError;
use super::writer::FileWriter;

/// Bytes per buffer: one hash step and one disk write.
pub(super) const BUF_BYTES: usize = 2 << 20;
/// Buffers per intake: one filling, the rest queued for hashing or
/// writing. Memory per intake is `BUFFERS * BUF_BYTES`.
pub(super) const BUFFERS: usize = 4;

/// Bytes for the file at `offset`.
struct Filled {
    buf: AlignedBuf,
    offset: u64,
}

/// What the threads are sent, in order.
enum Feed {
    Data(Filled),
    /// Everything has been sent: return. Without it (the channel just
    /// closes, or the abandon flag is set) the writer writes nothing more.
    End,
}

/// The running threads, and the pool of empty buffers.
pub(super) struct Pipeline {
    /// First, so that on drop the flag is set before the channels close.
    abandon: AbandonOnDrop,
    /// Empty buffers coming back from the writer.
    free: Receiver<AlignedBuf>,
    to_hasher: Sender<Feed>,
    hasher: JoinHandle<Sha256>,
    /// The file at `End`; `None` if the feed stopped without one.
    writer: JoinHandle<io::Result<Option<File>>>,
}

/// A thread has ended early; [`Pipeline::join`] says why.
#[derive(Debug)]
pub(super) struct Gone;

impl Pipeline {
    /// Start writing to `file`, open at `path`, from `offset` (the end of
    /// what `hasher` has seen).
    pub(super) fn start(
        file: File,
        path: &Path,
        offset: u64,
        hasher: Sha256,
    ) -> Result<Self, IntakeError> {
        let (free_tx, free) = channel();
        for _ in 0..BUFFERS {
            // Cannot fail: the receiver is right here.
            let _ = free_tx.send(AlignedBuf::new(BUF_BYTES));
        }
        let (to_hasher, hasher_rx) = channel();
        let (to_writer, writer_rx) = channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let spawn_error = |source| IntakeError::Spawn {
            path: path.to_owned(),
            source,
        };
        let hasher = std::thread::Builder::new()
            .name("bty-land-hash".to_owned())
            .spawn({
                let abandoned = abandoned.clone();
                move || hash_batches(hasher, &hasher_rx, &to_writer, &abandoned)
            })
            .map_err(spawn_error)?;
        // If this fails, `to_hasher` is dropped on return and the hasher
        // thread ends on its own.
        let writer = std::thread::Builder::new()
            .name("bty-land-write".to_owned())
            .spawn({
                let abandoned = abandoned.clone();
                let path = path.to_owned();
                move || {
                    // Opening the O_DIRECT descriptor is file I/O too.
                    let writer = FileWriter::new(file, &path, offset, true);
                    let direct = writer.is_direct();
                    tracing::debug!(path = %path.display(), offset, direct, "intake started");
                    write_batches(writer, &writer_rx, &free_tx, &abandoned)
                }
            })
            .map_err(spawn_error)?;
        Ok(Self {
            abandon: AbandonOnDrop(abandoned),
            free,
            to_hasher,
            hasher,
            writer,
        })
    }

    /// An empty buffer if one is back in the pool, without waiting.
    pub(super) fn try_free(&self) -> Result<Option<AlignedBuf>, Gone> {
        match self.free.try_recv() {
            Ok(buf) => Ok(Some(buf)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Gone),
        }
    }

    /// An empty buffer, waiting for the writer to return one.
    pub(super) fn wait_free(&self) -> Result<AlignedBuf, Gone> {
        self.free.recv().map_err(|_| Gone)
    }

    /// Queue `buf`, the bytes of the file at `offset`, for hashing and
    /// writing. Never waits.
    pub(super) fn send(&self, buf: AlignedBuf, offset: u64) -> Result<(), Gone> {
        self.to_hasher
            .send(Feed::Data(Filled { buf, offset }))
            .map_err(|_| Gone)
    }

    /// Hash and write everything sent, end both threads, and return the
    /// file and the hash of all its bytes (or why a thread ended early).
    pub(super) fn join(self, path: &Path) -> Result<(File, Sha256), IntakeError> {
        let Self {
            abandon,
            free,
            to_hasher,
            hasher,
            writer,
        } = self;
        // A failed send means the threads are gone; joining says why.
        let _ = to_hasher.send(Feed::End);
        drop((to_hasher, free));
        let written = writer.join();
        let hashed = hasher.join();
        // Both threads are done: the flag no longer matters.
        drop(abandon);
        let lost = || IntakeError::ThreadLost {
            path: path.to_owned(),
        };
        let file = match written {
            Ok(Ok(Some(file))) => file,
            Ok(Err(source)) => {
                return Err(IntakeError::Write {
                    path: path.to_owned(),
                    source,
                });
            }
            Ok(Ok(None)) | Err(_) => return Err(lost()),
        };
        Ok((file, hashed.map_err(|_| lost())?))
    }
}

/// Tells the threads to stop when the pipeline is dropped without `join`
/// (e.g. a download future dropped at daemon shutdown, an upload that
/// failed), so nothing keeps writing behind the back of whoever opens or
/// removes the file next.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The hasher thread: hash each buffer, then pass it on to the writer.
fn hash_batches(
    mut hasher: Sha256,
    rx: &Receiver<Feed>,
    to_writer: &Sender<Feed>,
    abandoned: &AtomicBool,
) -> Sha256 {
    while let Ok(feed) = rx.recv() {
        if abandoned.load(Ordering::Acquire) {
            break;
        }
        let end = match &feed {
            Feed::Data(filled) => {
                hasher.update(filled.buf.as_slice());
                false
            }
            Feed::End => true,
        };
        // A send fails only when the writer has ended on an error.
        if to_writer.send(feed).is_err() || end {
            break;
        }
    }
    hasher
}

/// The writer thread: write each buffer where it belongs, then return it
/// to the pool; at `End`, hand the file back.
fn write_batches(
    mut writer: FileWriter,
    rx: &Receiver<Feed>,
    free: &Sender<AlignedBuf>,
    abandoned: &AtomicBool,
) -> io::Result<Option<File>> {
    while let Ok(feed) = rx.recv() {
        if abandoned.load(Ordering::Acquire) {
            break;
        }
        match feed {
            Feed::Data(Filled { mut buf, offset }) => {
                writer.write(buf.as_slice(), offset)?;
                buf.set_len(0);
                // Fails only once the filler is gone: nobody needs it then.
                let _ = free.send(buf);
            }
            Feed::End => return Ok(Some(writer.into_file())),
        }
    }
    Ok(None)
}
