//! What verify compares against: the image as a list of pieces, each either
//! all zeros or known by its own sha256, hashed while writing on every core.
//!
//! One sha256 over the whole image cannot be split across cores (1.4 GB/s
//! on one core is slower than a disk read), and checking a zero run needs no
//! hash at all; per-piece digests make the read-back cost about one
//! sequential read, and a mismatch names the bytes that differ.

use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

use crate::aligned::is_zero;
use crate::reader::Chunk;

/// What a piece of the image must read back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Every byte zero.
    Zeros,
    /// Bytes with this sha256.
    Sha256([u8; 32]),
}

/// `len` bytes at `offset` and what they must read back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) expect: Expect,
}

/// What a chunk's bytes are: zeros, or their sha256.
pub(crate) fn expect_of(bytes: &[u8]) -> Expect {
    if is_zero(bytes) {
        Expect::Zeros
    } else {
        Expect::Sha256(Sha256::digest(bytes).into())
    }
}

type Job = (usize, Arc<Chunk>);

/// Hashes chunks on a pool of threads while they are being written.
pub(crate) struct PieceHasher {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<(usize, Expect)>,
    workers: Vec<JoinHandle<()>>,
    /// Offset, length and, once known, the expectation of every piece.
    pieces: Vec<(u64, u64, Option<Expect>)>,
}

impl PieceHasher {
    /// One worker per core (at most four: more only queue on memory).
    pub(crate) fn start() -> Self {
        let threads = thread::available_parallelism().map_or(1, |n| n.get().min(4));
        // Bounded: a slow hash stage holds the reader back instead of
        // letting buffers pile up.
        let (jobs, queue) = sync_channel::<Job>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = channel();
        let workers = (0..threads)
            .filter_map(|i| {
                let (queue, done) = (Arc::clone(&queue), done.clone());
                thread::Builder::new()
                    .name(format!("bty-flash-piece-{i}"))
                    .spawn(move || {
                        loop {
                            let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                            let Ok((index, chunk)) = job else { break };
                            if done.send((index, expect_of(chunk.bytes()))).is_err() {
                                break;
                            }
                        }
                    })
                    .ok()
            })
            .collect();
        Self {
            jobs: Some(jobs),
            results,
            workers,
            pieces: Vec::new(),
        }
    }

    /// Record `chunk` as the next piece and queue it for hashing (inline
    /// when no worker is left).
    pub(crate) fn add(&mut self, chunk: &Arc<Chunk>) {
        let index = self.pieces.len();
        let bytes = chunk.bytes();
        let queued = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((index, Arc::clone(chunk))).is_ok());
        let expect = (!queued).then(|| expect_of(bytes));
        self.pieces.push((chunk.offset, bytes.len() as u64, expect));
    }

    /// Record `len` zero bytes at `offset` (nothing to hash).
    pub(crate) fn add_zeros(&mut self, offset: u64, len: u64) {
        self.pieces.push((offset, len, Some(Expect::Zeros)));
    }

    /// Every piece with its expectation; `None` if a worker died before
    /// answering (verify must not pass on a guess).
    pub(crate) fn finish(mut self) -> Option<Vec<Piece>> {
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        for (index, expect) in self.results.try_iter() {
            if let Some(piece) = self.pieces.get_mut(index) {
                piece.2 = Some(expect);
            }
        }
        self.pieces
            .into_iter()
            .map(|(offset, len, expect)| {
                Some(Piece {
                    offset,
                    len,
                    expect: expect?,
                })
            })
            .collect()
    }
}
