//! Two blocking threads behind the sink, so receiving, hashing and writing
//! overlap: sha256 — the biggest CPU cost of a download — runs beside the
//! network and the disk instead of between them.
//!
//! Body chunks are copied into a small pool of aligned buffers. A full
//! buffer goes to the hasher thread, then (in order) to the writer thread,
//! then back to the pool. Copying once here, rather than holding on to the
//! HTTP client's chunks, lets the client reuse its read buffer (no fresh
//! pages to fault in and zero for every read), gives the writer aligned
//! buffers for O_DIRECT, and bounds the memory a download holds to the pool.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::direct::{ALIGN, AlignedBuf};
use super::writer::FileWriter;

/// Bytes per buffer: one hash step and one disk write.
const BUF_BYTES: usize = 2 << 20;
/// Buffers per download: one filling, the rest queued for hashing or
/// writing. Memory per download is `BUFFERS * BUF_BYTES`.
const BUFFERS: usize = 4;

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

/// The running threads, and the buffer being filled.
pub(super) struct Pipeline {
    /// First, so that on drop the flag is set before the channels close.
    abandon: AbandonOnDrop,
    /// The buffer being filled, and the file offset of its first byte.
    current: Option<AlignedBuf>,
    offset: u64,
    /// Empty buffers coming back from the writer.
    free: mpsc::Receiver<AlignedBuf>,
    to_hasher: mpsc::Sender<Feed>,
    hasher: JoinHandle<Sha256>,
    writer: JoinHandle<io::Result<File>>,
}

/// The writer thread has ended early, on an error that [`Pipeline::stop`]
/// returns.
#[derive(Debug)]
pub(super) struct WriterGone;

impl Pipeline {
    /// Start writing to `file`, the partial at `path`, from offset `len`
    /// (the end of what `hasher` has seen).
    pub(super) fn start(file: File, path: &Path, len: u64, hasher: Sha256) -> Self {
        let (free_tx, free) = mpsc::channel(BUFFERS);
        for _ in 0..BUFFERS {
            // Cannot fail: the channel has room for every buffer.
            let _ = free_tx.try_send(AlignedBuf::new(BUF_BYTES));
        }
        let (to_hasher, hasher_rx) = mpsc::channel(BUFFERS + 1);
        let (to_writer, writer_rx) = std_mpsc::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let hasher = tokio::task::spawn_blocking({
            let abandoned = abandoned.clone();
            move || hash_batches(hasher, hasher_rx, &to_writer, &abandoned)
        });
        let writer = tokio::task::spawn_blocking({
            let abandoned = abandoned.clone();
            let path = path.to_owned();
            move || {
                // Opening the O_DIRECT descriptor is file I/O too.
                let writer = FileWriter::new(file, &path, len, true);
                write_batches(writer, &writer_rx, &free_tx, &abandoned)
            }
        });
        Self {
            abandon: AbandonOnDrop(abandoned),
            current: None,
            offset: len,
            free,
            to_hasher,
            hasher,
            writer,
        }
    }

    /// Copy one chunk of the body in; waits only when every buffer is
    /// queued for hashing or writing.
    pub(super) async fn push(&mut self, chunk: &[u8]) -> Result<(), WriterGone> {
        let mut data = chunk;
        while !data.is_empty() {
            let mut buf = match self.current.take() {
                Some(buf) => buf,
                None => self.free.recv().await.ok_or(WriterGone)?,
            };
            // A resumed partial may end mid-block: the first buffer only
            // fills that block, so every later one starts aligned.
            let target = match (self.offset % ALIGN as u64) as usize {
                0 => buf.capacity(),
                r => ALIGN - r,
            };
            let room = target - buf.len();
            data = &data[buf.fill(&data[..data.len().min(room)])..];
            if buf.len() == target {
                let offset = self.offset;
                self.offset += target as u64;
                self.to_hasher
                    .send(Feed::Data(Filled { buf, offset }))
                    .await
                    .map_err(|_| WriterGone)?;
            } else {
                self.current = Some(buf);
            }
        }
        Ok(())
    }

    /// Hash and write everything pushed, end both threads, and return the
    /// file and the hash of all its bytes (or the writer's error).
    pub(super) async fn stop(self) -> io::Result<(File, Sha256)> {
        let Self {
            abandon,
            current,
            offset,
            free,
            to_hasher,
            hasher,
            writer,
        } = self;
        // A failed send means the threads are gone; joining says why.
        if let Some(buf) = current.filter(|b| b.len() > 0) {
            let _ = to_hasher.send(Feed::Data(Filled { buf, offset })).await;
        }
        let _ = to_hasher.send(Feed::End).await;
        drop((to_hasher, free));
        let file = writer.await.map_err(join_error)??;
        let hasher = hasher.await.map_err(join_error)?;
        // Both threads are done: the flag no longer matters.
        drop(abandon);
        Ok((file, hasher))
    }
}

/// Tells the threads to stop when the pipeline is dropped without `stop`
/// (the fetch future was dropped, e.g. at daemon shutdown), so nothing
/// keeps writing behind the back of whoever opens the file next.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The hasher thread: hash each buffer, then pass it on to the writer.
fn hash_batches(
    mut hasher: Sha256,
    mut rx: mpsc::Receiver<Feed>,
    to_writer: &std_mpsc::Sender<Feed>,
    abandoned: &AtomicBool,
) -> Sha256 {
    while let Some(feed) = rx.blocking_recv() {
        if abandoned.load(Ordering::Acquire) {
            break;
        }
        let end = match &feed {
            Feed::Data(filled) => {
                hasher.update(filled.buf.filled());
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
    rx: &std_mpsc::Receiver<Feed>,
    free: &mpsc::Sender<AlignedBuf>,
    abandoned: &AtomicBool,
) -> io::Result<File> {
    while let Ok(feed) = rx.recv() {
        if abandoned.load(Ordering::Acquire) {
            break;
        }
        match feed {
            Feed::Data(Filled { mut buf, offset }) => {
                writer.write(buf.filled(), offset)?;
                buf.clear();
                // Fails only once the pipeline is gone: nobody needs it then.
                let _ = free.try_send(buf);
            }
            Feed::End => return Ok(writer.into_file()),
        }
    }
    Err(io::Error::other("download abandoned"))
}

fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("download worker thread failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_error_ends_the_pipeline_and_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        // Read-only: every buffered write fails with EBADF. (The path given
        // does not exist, so there is no O_DIRECT descriptor either.)
        let file = File::open(&path).unwrap();
        let mut pipeline = Pipeline::start(file, &dir.path().join("gone"), 0, Sha256::new());
        let chunk = vec![7u8; BUF_BYTES];
        let mut gone = false;
        // The writer fails on the first buffer; the pool runs dry behind it.
        for _ in 0..(BUFFERS + 3) {
            if pipeline.push(&chunk).await.is_err() {
                gone = true;
                break;
            }
        }
        assert!(gone, "push should notice the writer ended");
        let err = pipeline.stop().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    }

    #[tokio::test]
    async fn stop_writes_and_hashes_a_partial_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut pipeline = Pipeline::start(file, &path, 0, Sha256::new());
        pipeline.push(b"ab").await.unwrap();
        pipeline.push(b"c").await.unwrap();
        let (_, hasher) = pipeline.stop().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(
            bty_store::digest::to_hex(&hasher.finalize()),
            bty_store::digest::sha256_bytes(b"abc")
        );
    }

    #[tokio::test]
    async fn many_buffers_from_an_unaligned_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(BUF_BYTES * (BUFFERS + 2) + 777))
            .map(|i| (i % 253) as u8)
            .collect();
        let start = 1000;
        std::fs::write(&path, &data[..start]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut seed = Sha256::new();
        seed.update(&data[..start]);
        let mut pipeline = Pipeline::start(file, &path, start as u64, seed);
        for chunk in data[start..].chunks(65_537) {
            pipeline.push(chunk).await.unwrap();
        }
        let (_, hasher) = pipeline.stop().await.unwrap();
        assert!(std::fs::read(&path).unwrap() == data, "content differs");
        assert_eq!(
            bty_store::digest::to_hex(&hasher.finalize()),
            bty_store::digest::sha256_bytes(&data)
        );
    }
}
