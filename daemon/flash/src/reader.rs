//! The single reader: decodes the source once, hashes the raw stream, and
//! hands the same aligned chunks to every writer through bounded channels.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use bty_store::digest::to_hex;
use sha2::{Digest, Sha256};

use crate::FlashError;
use crate::aligned::AlignedBuf;
use crate::decode::classify;

/// One buffer of decoded bytes at its image offset. Dropping the last `Arc`
/// returns the buffer to the reader's pool, so steady state allocates nothing.
pub(crate) struct Chunk {
    buf: Option<AlignedBuf>,
    pub(crate) offset: u64,
    pool: Sender<AlignedBuf>,
}

impl Chunk {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], AlignedBuf::as_slice)
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // The reader may be gone; then the buffer is simply freed.
            let _ = self.pool.send(buf);
        }
    }
}

/// What the reader sends each writer.
pub(crate) enum Msg {
    /// The next piece of the image.
    Data(Arc<Chunk>),
    /// The image is complete.
    End {
        /// Image length in bytes.
        total: u64,
        /// sha256 of the image (lowercase hex).
        sha256: String,
    },
}

/// Reader state the coordinator reads.
#[derive(Default)]
pub(crate) struct ReaderShared {
    /// Decoded bytes so far.
    pub(crate) decoded: AtomicU64,
    /// Set once, before the writers are told the stream ended or failed.
    pub(crate) outcome: Mutex<Option<ReaderOutcome>>,
}

/// How the read went.
pub(crate) struct ReaderOutcome {
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
    pub(crate) error: Option<FlashError>,
}

/// Read `source` to its end in `buffer_size` chunks and send them to every
/// writer still listening. Stops on `stop`, on a read error, or when no
/// writer is left.
pub(crate) fn run_reader(
    mut source: Box<dyn Read + Send>,
    mut writers: Vec<SyncSender<Msg>>,
    buffer_size: usize,
    expected_sha256: Option<String>,
    stop: Arc<AtomicBool>,
    shared: Arc<ReaderShared>,
) {
    let (pool_tx, pool_rx) = channel();
    let mut hasher = ImageHasher::start();
    let mut offset = 0u64;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Err(FlashError::Cancelled);
        }
        let mut buf = take_buffer(&pool_rx, buffer_size);
        let (n, err) = fill(&mut source, buf.as_mut_full());
        shared.decoded.store(offset + n as u64, Ordering::Relaxed);
        if let Some(e) = err {
            break Err(classify(e, offset + n as u64));
        }
        if n == 0 {
            break Ok(());
        }
        buf.set_len(n);
        let full = n == buf.capacity();
        let chunk = Arc::new(Chunk {
            buf: Some(buf),
            offset,
            pool: pool_tx.clone(),
        });
        offset += n as u64;
        hasher.update(&chunk);
        // A send fails only when that writer gave up; it is dropped here.
        writers.retain(|w| w.send(Msg::Data(Arc::clone(&chunk))).is_ok());
        if writers.is_empty() {
            break Err(FlashError::NoTargets);
        }
        if !full {
            break Ok(());
        }
    };
    let sha256 = hasher.finish();
    // Checked before `End`: without it no writer writes its first region.
    let result = result.and_then(|()| match expected_sha256 {
        Some(expected) if !expected.eq_ignore_ascii_case(&sha256) => {
            Err(FlashError::SourceDigestMismatch {
                expected: expected.to_ascii_lowercase(),
                actual: sha256.clone(),
            })
        }
        _ => Ok(()),
    });
    let ok = result.is_ok();
    if let Ok(mut slot) = shared.outcome.lock() {
        *slot = Some(ReaderOutcome {
            sha256: sha256.clone(),
            bytes: offset,
            error: result.err(),
        });
    }
    if ok {
        for w in &writers {
            let _ = w.send(Msg::End {
                total: offset,
                sha256: sha256.clone(),
            });
        }
    }
}

/// sha256 of the image on its own thread, so hashing (1.6 GB/s) overlaps
/// decoding instead of adding to it; inline if the thread cannot start.
enum ImageHasher {
    Thread(SyncSender<Arc<Chunk>>, JoinHandle<String>),
    Inline(Sha256),
}

impl ImageHasher {
    fn start() -> Self {
        let (tx, rx) = sync_channel::<Arc<Chunk>>(2);
        let spawned = thread::Builder::new()
            .name("bty-flash-hash".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for chunk in rx {
                    h.update(chunk.bytes());
                }
                to_hex(&h.finalize())
            });
        match spawned {
            Ok(handle) => Self::Thread(tx, handle),
            Err(_) => Self::Inline(Sha256::new()),
        }
    }

    fn update(&mut self, chunk: &Arc<Chunk>) {
        match self {
            // Fails only if the thread died; `finish` then reports an
            // empty digest, which no verify matches.
            Self::Thread(tx, _) => {
                let _ = tx.send(Arc::clone(chunk));
            }
            Self::Inline(h) => h.update(chunk.bytes()),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Thread(tx, handle) => {
                drop(tx);
                handle.join().unwrap_or_default()
            }
            Self::Inline(h) => to_hex(&h.finalize()),
        }
    }
}

fn take_buffer(pool: &Receiver<AlignedBuf>, size: usize) -> AlignedBuf {
    let mut buf = pool.try_recv().unwrap_or_else(|_| AlignedBuf::new(size));
    buf.set_len(0);
    buf
}

/// Read until `buf` is full or the source ends; the count read and the
/// error that stopped it, if any.
fn fill(source: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}
