//! The single reader: decodes the source once, hashes the raw stream (when
//! something will check the digest), and hands the same aligned chunks to
//! every writer through bounded channels.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use bty_dio::{AlignedBuf, to_hex};
use sha2::{Digest, Sha256};

use crate::FlashError;
use crate::decode::classify;
use crate::pieces::{PieceBook, PieceHasher};
use crate::qcow2_map::MapExtent;
use crate::raw_file::{DirectFile, Extent, RawFile};
use crate::writer::ZERO_RUN_MIN;
use crate::zeros::zero_block;

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
    /// `len` zero bytes at `offset` (a hole of a raw image file).
    Zeros { offset: u64, len: u64 },
    /// The image is complete: `total` bytes long (and, when verifying,
    /// every piece's digest is in the book).
    End { total: u64 },
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

/// Where the image bytes come from.
pub enum Source {
    /// A decoded stream (see [`crate::open_decoder`]), read front to back.
    Stream(Box<dyn Read + Send>),
    /// A raw image file: its holes are handed on as zero runs without being
    /// read, its data read with `O_DIRECT` (see [`crate::flash`]).
    RawFile(File),
}

impl From<Box<dyn Read + Send>> for Source {
    fn from(stream: Box<dyn Read + Send>) -> Self {
        Self::Stream(stream)
    }
}

/// What the reader reads: a public [`Source`], or a plain qcow2 image by
/// its layout ([`crate::qcow2_map`]).
pub(crate) enum Input {
    Source(Source),
    Mapped(File, Vec<MapExtent>),
}

/// Zero runs from a raw file's holes are sent in pieces of at most this
/// much, so progress and cancel stay live over a hole of many GiB.
const MAX_HOLE_MESSAGE: u64 = 64 << 20;

/// Read `source` to its end in `buffer_size` chunks and send them to every
/// writer still listening. Stops on `stop`, on a read error, or when no
/// writer is left. The whole stream is hashed only to check
/// `expected_sha256`, and pieces (into `book`) only when verifying: hashing
/// is the one CPU cost a plain write has not.
pub(crate) fn run_reader(
    input: Input,
    writers: Vec<SyncSender<Msg>>,
    buffer_size: usize,
    book: Option<Arc<PieceBook>>,
    expected_sha256: Option<String>,
    stop: Arc<AtomicBool>,
    shared: Arc<ReaderShared>,
) {
    let mut fanout = Fanout {
        writers,
        hasher: expected_sha256.is_some().then(ImageHasher::start),
        pieces: book.map(PieceHasher::start),
        pool: channel(),
        offset: 0,
        shared: &shared,
    };
    let result = match input {
        Input::Source(Source::Stream(source)) => {
            read_stream(source, &mut fanout, buffer_size, &stop)
        }
        Input::Source(Source::RawFile(file)) => {
            read_raw_file(file, &mut fanout, buffer_size, &stop)
        }
        Input::Mapped(file, extents) => {
            read_mapped(file, &extents, &mut fanout, buffer_size, &stop)
        }
    };
    let Fanout {
        writers,
        hasher,
        pieces,
        offset,
        ..
    } = fanout;
    let sha256 = hasher.map(ImageHasher::finish).unwrap_or_default();
    let hashed = pieces.is_none_or(PieceHasher::finish);
    let result = result.and_then(|()| {
        if hashed {
            Ok(())
        } else {
            Err(FlashError::Read {
                at: offset,
                source: FlashError::arc(io::Error::other("a verify hashing thread died")),
            })
        }
    });
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
            let _ = w.send(Msg::End { total: offset });
        }
    }
}

fn read_stream(
    mut source: Box<dyn Read + Send>,
    out: &mut Fanout<'_>,
    buffer_size: usize,
    stop: &AtomicBool,
) -> Result<(), FlashError> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(FlashError::Cancelled);
        }
        let mut buf = out.take_buffer(buffer_size);
        let (n, err) = fill(&mut source, buf.as_mut_full());
        out.shared
            .decoded
            .store(out.offset + n as u64, Ordering::Relaxed);
        if let Some(e) = err {
            return Err(classify(e, out.offset + n as u64));
        }
        if n == 0 {
            return Ok(());
        }
        buf.set_len(n);
        let full = n == buf.capacity();
        out.send_data(buf)?;
        if !full {
            return Ok(());
        }
    }
}

fn read_raw_file(
    file: File,
    out: &mut Fanout<'_>,
    buffer_size: usize,
    stop: &AtomicBool,
) -> Result<(), FlashError> {
    let read_err = |e, at| FlashError::Read {
        at,
        source: FlashError::arc(e),
    };
    let mut raw = RawFile::new(file, ZERO_RUN_MIN as u64).map_err(|e| read_err(e, 0))?;
    tracing::debug!(size = raw.size(), "reading a raw image file by extents");
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(FlashError::Cancelled);
        }
        let mut buf = out.take_buffer(buffer_size);
        match raw
            .next(&mut buf, MAX_HOLE_MESSAGE)
            .map_err(|e| read_err(e, out.offset))?
        {
            Extent::End => return Ok(()),
            Extent::Hole { len } => out.send_zeros(len)?,
            Extent::Data { .. } => out.send_data(buf)?,
        }
        out.shared.decoded.store(out.offset, Ordering::Relaxed);
    }
}

fn read_mapped(
    file: File,
    extents: &[MapExtent],
    out: &mut Fanout<'_>,
    buffer_size: usize,
    stop: &AtomicBool,
) -> Result<(), FlashError> {
    let mut file = DirectFile::new(file);
    for extent in extents {
        let mut done = 0u64;
        while done < extent.len {
            if stop.load(Ordering::Relaxed) {
                return Err(FlashError::Cancelled);
            }
            let left = extent.len - done;
            match extent.host {
                None => {
                    let len = left.min(MAX_HOLE_MESSAGE);
                    out.send_zeros(len)?;
                    done += len;
                }
                Some(host) => {
                    let mut buf = out.take_buffer(buffer_size);
                    let want = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(buf.capacity());
                    let at = host + done;
                    let n = file
                        .read_at(&mut buf, at, want)
                        .map_err(|e| FlashError::Read {
                            at: out.offset,
                            source: FlashError::arc(e),
                        })?;
                    if n < want {
                        return Err(FlashError::Read {
                            at: out.offset,
                            source: FlashError::arc(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "qcow2 image file ends at {} bytes, inside its data",
                                    at + n as u64
                                ),
                            )),
                        });
                    }
                    out.send_data(buf)?;
                    done += n as u64;
                }
            }
            out.shared.decoded.store(out.offset, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Hands every piece of the image to the hasher and to each writer.
struct Fanout<'a> {
    writers: Vec<SyncSender<Msg>>,
    hasher: Option<ImageHasher>,
    pieces: Option<PieceHasher>,
    /// Buffers come back here when every writer is done with them.
    pool: (Sender<AlignedBuf>, Receiver<AlignedBuf>),
    /// Image bytes sent so far.
    offset: u64,
    shared: &'a ReaderShared,
}

impl Fanout<'_> {
    fn take_buffer(&self, size: usize) -> AlignedBuf {
        let mut buf = self
            .pool
            .1
            .try_recv()
            .unwrap_or_else(|_| AlignedBuf::new(size));
        buf.set_len(0);
        buf
    }

    /// Send `buf` (filled) as the next piece.
    fn send_data(&mut self, buf: AlignedBuf) -> Result<(), FlashError> {
        let len = buf.len() as u64;
        let chunk = Arc::new(Chunk {
            buf: Some(buf),
            offset: self.offset,
            pool: self.pool.0.clone(),
        });
        self.offset += len;
        if let Some(h) = &mut self.hasher {
            h.update(&chunk);
        }
        if let Some(p) = &mut self.pieces {
            p.add(&chunk);
        }
        self.broadcast(|| Msg::Data(Arc::clone(&chunk)))
    }

    /// Send `len` zero bytes as the next piece.
    fn send_zeros(&mut self, len: u64) -> Result<(), FlashError> {
        let offset = self.offset;
        self.offset += len;
        if let Some(h) = &mut self.hasher {
            h.update_zeros(len);
        }
        if let Some(p) = &mut self.pieces {
            p.add_zeros(offset, len);
        }
        self.broadcast(|| Msg::Zeros { offset, len })
    }

    fn broadcast(&mut self, msg: impl Fn() -> Msg) -> Result<(), FlashError> {
        // A send fails only when that writer gave up; it is dropped here.
        self.writers.retain(|w| w.send(msg()).is_ok());
        if self.writers.is_empty() {
            return Err(FlashError::NoTargets);
        }
        Ok(())
    }
}

/// sha256 of the image on its own thread, so hashing (1.6 GB/s) overlaps
/// decoding instead of adding to it; inline if the thread cannot start.
enum ImageHasher {
    Thread(SyncSender<HashMsg>, JoinHandle<String>),
    Inline(Sha256),
}

/// What the hash thread is given: a chunk, or a run of zeros.
enum HashMsg {
    Data(Arc<Chunk>),
    Zeros(u64),
}

fn hash_zeros(h: &mut Sha256, mut len: u64) {
    let zeros = zero_block();
    while len > 0 {
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(zeros.len());
        h.update(&zeros[..n]);
        len -= n as u64;
    }
}

impl ImageHasher {
    fn start() -> Self {
        let (tx, rx) = sync_channel::<HashMsg>(2);
        let spawned = thread::Builder::new()
            .name("bty-flash-hash".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for msg in rx {
                    match msg {
                        HashMsg::Data(chunk) => h.update(chunk.bytes()),
                        HashMsg::Zeros(len) => hash_zeros(&mut h, len),
                    }
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
                let _ = tx.send(HashMsg::Data(Arc::clone(chunk)));
            }
            Self::Inline(h) => h.update(chunk.bytes()),
        }
    }

    fn update_zeros(&mut self, len: u64) {
        match self {
            Self::Thread(tx, _) => {
                let _ = tx.send(HashMsg::Zeros(len));
            }
            Self::Inline(h) => hash_zeros(h, len),
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
