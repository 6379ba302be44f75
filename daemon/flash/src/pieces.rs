//! What verify compares against: the image as a book of pieces, each either
//! all zeros or known by its own xxh3-128 digest, hashed while writing.
//!
//! The piece digests only catch a target that does not hold what was
//! written (bad blocks, a lying or failing stick), not a crafted image: the
//! image's own sha256 (its provenance) is checked separately on the stored
//! or streamed bytes. xxh3-128 runs at tens of GB/s on one core (sha256:
//! 1.8 GB/s with SHA-NI, BLAKE3 8.5 GB/s, measured on the 2-core bench VM),
//! so hashing is a rounding error beside the read-back and never competes
//! with a CPU-bound decoder. Checking a zero run needs no hash at all, and
//! a mismatch names the piece whose bytes differ. The book is
//! shared: the reader adds pieces as it sends them, hashing threads fill in
//! their digests, and each target's verifier takes settled pieces from it
//! while the image is still being written ([`crate::verify::Trailing`]).

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xxhash_rust::xxh3::xxh3_128;

use crate::reader::Chunk;
use crate::zeros::is_zero;

/// What a piece of the image must read back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Every byte zero.
    Zeros,
    /// Bytes with this xxh3-128 digest.
    Xxh3(u128),
}

/// `len` bytes at `offset` and what they must read back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) expect: Expect,
}

/// What a chunk's bytes are: zeros, or their digest.
pub(crate) fn expect_of(bytes: &[u8]) -> Expect {
    if is_zero(bytes) {
        Expect::Zeros
    } else {
        Expect::Xxh3(piece_digest(bytes))
    }
}

/// A piece's digest: xxh3-128 of its bytes.
pub(crate) fn piece_digest(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// Why the book cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BookError {
    /// A hashing thread died before answering: verify must not pass on a
    /// guess.
    Broken,
    /// The caller's stop flag was raised while waiting.
    Stopped,
}

#[derive(Default)]
struct Pages {
    /// Offset, length and, once known, the expectation of every piece, in
    /// image order.
    pieces: Vec<(u64, u64, Option<Expect>)>,
    broken: bool,
}

/// Every piece of the image so far, shared between the reader, the hashing
/// threads and the verifiers.
#[derive(Default)]
pub(crate) struct PieceBook {
    pages: Mutex<Pages>,
    filled: Condvar,
}

impl PieceBook {
    fn pages(&self) -> MutexGuard<'_, Pages> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, offset: u64, len: u64, expect: Option<Expect>) -> usize {
        let mut pages = self.pages();
        pages.pieces.push((offset, len, expect));
        if expect.is_some() {
            self.filled.notify_all();
        }
        pages.pieces.len() - 1
    }

    /// Record a piece whose expectation is already known.
    #[cfg(test)]
    pub(crate) fn add_known(&self, offset: u64, len: u64, expect: Expect) {
        self.add(offset, len, Some(expect));
    }

    fn fill(&self, index: usize, expect: Expect) {
        if let Some(piece) = self.pages().pieces.get_mut(index) {
            piece.2 = Some(expect);
        }
        self.filled.notify_all();
    }

    fn break_(&self) {
        self.pages().broken = true;
        self.filled.notify_all();
    }

    /// The pieces from index `from` on that end at or before `end`, once
    /// every one of them is known, waiting for hashes still running.
    /// `stopped` is polled while waiting. Returns the pieces (possibly none)
    /// and the index after the last one.
    pub(crate) fn settled(
        &self,
        from: usize,
        end: u64,
        stopped: &dyn Fn() -> bool,
    ) -> Result<(Vec<Piece>, usize), BookError> {
        let mut pages = self.pages();
        loop {
            if pages.broken {
                return Err(BookError::Broken);
            }
            if stopped() {
                return Err(BookError::Stopped);
            }
            let wanted = pages
                .pieces
                .get(from..)
                .unwrap_or_default()
                .iter()
                .take_while(|(offset, len, _)| offset + len <= end);
            let settled: Option<Vec<Piece>> = wanted
                .map(|&(offset, len, expect)| {
                    Some(Piece {
                        offset,
                        len,
                        expect: expect?,
                    })
                })
                .collect();
            if let Some(pieces) = settled {
                let next = from + pieces.len();
                return Ok((pieces, next));
            }
            pages = self
                .filled
                .wait_timeout(pages, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

type Job = (usize, Arc<Chunk>);

/// Hashes chunks on a pool of threads while they are being written, into a
/// [`PieceBook`].
pub(crate) struct PieceHasher {
    book: Arc<PieceBook>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl PieceHasher {
    /// One worker per core (at most four: more only queue on memory).
    pub(crate) fn start(book: Arc<PieceBook>) -> Self {
        let threads = thread::available_parallelism().map_or(1, |n| n.get().min(4));
        // Bounded: a slow hash stage holds the reader back instead of
        // letting buffers pile up.
        let (jobs, queue) = sync_channel::<Job>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .filter_map(|i| {
                let (queue, book) = (Arc::clone(&queue), Arc::clone(&book));
                thread::Builder::new()
                    .name(format!("bty-flash-piece-{i}"))
                    .spawn(move || {
                        loop {
                            let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                            let Ok((index, chunk)) = job else { break };
                            book.fill(index, expect_of(chunk.bytes()));
                        }
                    })
                    .ok()
            })
            .collect();
        Self {
            book,
            jobs: Some(jobs),
            workers,
        }
    }

    /// Record `chunk` as the next piece and queue it for hashing (inline
    /// when no worker is left).
    pub(crate) fn add(&mut self, chunk: &Arc<Chunk>) {
        let len = chunk.bytes().len() as u64;
        let index = self.book.add(chunk.offset, len, None);
        let queued = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((index, Arc::clone(chunk))).is_ok());
        if !queued {
            self.book.fill(index, expect_of(chunk.bytes()));
        }
    }

    /// Record `len` zero bytes at `offset` (nothing to hash).
    pub(crate) fn add_zeros(&mut self, offset: u64, len: u64) {
        self.book.add(offset, len, Some(Expect::Zeros));
    }

    /// Wait for every hash; false (and the book marked broken, so no
    /// verifier waits forever) if a worker died before answering.
    pub(crate) fn finish(mut self) -> bool {
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let complete = self.book.pages().pieces.iter().all(|p| p.2.is_some());
        if !complete {
            self.book.break_();
        }
        complete
    }
}

impl Drop for PieceHasher {
    fn drop(&mut self) {
        // A reader that stops early must not leave verifiers waiting.
        if self.jobs.take().is_some() {
            self.book.break_();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_waits_for_hashes_and_stops_at_the_end_offset() {
        let book = Arc::new(PieceBook::default());
        let a = book.add(0, 10, None);
        book.add(10, 10, Some(Expect::Zeros));
        book.add(20, 10, Some(Expect::Zeros));
        let never = || false;
        let filler = {
            let book = Arc::clone(&book);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                book.fill(a, Expect::Xxh3(1));
            })
        };
        let (pieces, next) = book.settled(0, 25, &never).unwrap();
        filler.join().unwrap();
        assert_eq!(next, 2);
        assert_eq!(pieces[0].expect, Expect::Xxh3(1));
        assert_eq!(pieces[1].offset, 10);
        let (rest, next) = book.settled(next, u64::MAX, &never).unwrap();
        assert_eq!((rest.len(), next), (1, 3));
    }

    #[test]
    fn a_broken_book_or_a_stop_ends_the_wait() {
        let book = PieceBook::default();
        book.add(0, 10, None);
        assert_eq!(
            book.settled(0, 10, &|| true).unwrap_err(),
            BookError::Stopped
        );
        book.break_();
        assert_eq!(
            book.settled(0, 10, &|| false).unwrap_err(),
            BookError::Broken
        );
    }
}
