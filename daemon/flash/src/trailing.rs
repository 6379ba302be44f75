//! Verify that trails the writer: each time the writer has written another
//! stretch of the target, a thread of its own reads that stretch back and
//! checks it, while the writer goes on.
//!
//! The read-back goes around the page cache (`O_DIRECT`), and a direct
//! read sees every write that has completed, so a stretch is read without
//! flushing first. A flush per stretch would not change what the device
//! answers (its own cache answers reads either way) and cost 0.6 s per
//! 1.5 GiB on the bench disk (48 cache flushes); the writer flushes once,
//! after the last byte and before the last stretch is checked and the
//! first region written, which is what makes the image durable.
//!
//! A piece passed once can still be overwritten later by the flash's own
//! writes: a counterfeit stick that reports more than it holds wraps every
//! write past its real capacity C back onto 0..(image - C). So a few pieces
//! already passed are read a second time after the last write ([`Rest`]):
//! those that hold a power-of-two offset, about log2 of the image size of
//! them (4 MiB, 8 MiB, … of reads), which a wrap of more than a piece
//! always overwrote, and the last piece, which a smaller wrap now reads
//! from the first region (written over the wrap at the very end). Of a
//! zero run, which can be hundreds of MiB, only one read's worth is read
//! again: from the power-of-two offset it holds, and for the last piece its
//! end. Those are the bytes the wrap overwrote; a data piece is read whole,
//! as its digest covers it whole.
//!
//! On a CPU-bound format (xz, bzip2) the device sits idle while the decoder
//! works, so the read-back mostly costs nothing; on a fast format it shares
//! the device with the writes. Either way only the last stretch (32 MiB)
//! and the first region are left to check once writing ends, where a
//! verify that starts after the last byte would read the whole image again.
//! The verifier runs at a lower priority than the decoder: its CPU (reads,
//! xxh3 at tens of GB/s) is small, and it must never be what a CPU-bound
//! decoder waits for.

use std::iter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::{Scope, ScopedJoinHandle};

use bty_dio::ALIGN;

use crate::FlashError;
use crate::pieces::{BookError, Expect, Piece, PieceBook};
use crate::verify::{ReadBack, read_back_check};

/// The writer hands a stretch to the verifier every this many buffers of
/// image (32 MiB of 4 MiB buffers): short enough to leave little to check
/// after the last write, long enough that the reads go in large units; a
/// verifier that falls behind takes every stretch written meanwhile at once.
const STRETCH_BUFFERS: u64 = 8;

/// What is left to read back once the first region is written.
#[derive(Debug, Default)]
pub(crate) struct Rest {
    /// The pieces of the first region, not checked yet.
    pub(crate) first_region: Vec<Piece>,
    /// Pieces checked once already, read again (see the module's docs).
    pub(crate) again: Vec<Piece>,
}

/// What of a piece checked while writing is read again after the last
/// write (module docs) goes into `again`: nothing if the piece holds no
/// power-of-two offset; else a data piece whole (its digest covers it
/// whole), and of a zero run `span` bytes from each power-of-two offset it
/// holds, so a run of hundreds of MiB costs a few reads, not its length
/// again.
fn read_again(piece: &Piece, span: u64, again: &mut Vec<Piece>) {
    let end = piece.offset + piece.len;
    let mut powers = iter::successors(piece.offset.checked_next_power_of_two(), |p| {
        p.checked_mul(2)
    })
    .take_while(|&p| p < end)
    .peekable();
    match piece.expect {
        Expect::Xxh3(_) => {
            if powers.peek().is_some() {
                again.push(*piece);
            }
        }
        Expect::Zeros => {
            for at in powers {
                let part = zero_part(piece, at, span);
                if again.last() != Some(&part) {
                    again.push(part);
                }
            }
        }
    }
}

/// What of the image's last piece is read again: a data piece whole, of a
/// zero run its last `span` bytes, where a wrap smaller than a piece now
/// reads the first region.
fn read_again_last(piece: &Piece, span: u64) -> Piece {
    match piece.expect {
        Expect::Xxh3(_) => *piece,
        Expect::Zeros => zero_part(piece, (piece.offset + piece.len).saturating_sub(span), span),
    }
}

/// `span` bytes of the zero run `piece` from `from` (aligned down for a
/// direct read), cut at its ends.
fn zero_part(piece: &Piece, from: u64, span: u64) -> Piece {
    let end = piece.offset + piece.len;
    let start = (from / ALIGN as u64 * ALIGN as u64).clamp(piece.offset, end);
    Piece {
        offset: start,
        len: span.min(end - start),
        expect: Expect::Zeros,
    }
}

/// Bytes of image between two stretches handed to the verifier.
pub(crate) fn stretch(buffer_size: usize) -> u64 {
    buffer_size as u64 * STRETCH_BUFFERS
}

/// A target's verifier thread and the writer's handle on it.
pub(crate) struct Trailing<'scope> {
    written: Option<Sender<u64>>,
    worker: Option<ScopedJoinHandle<'scope, Result<Rest, FlashError>>>,
    /// Set by the verifier when it found a problem: the writer stops early.
    failed: &'scope AtomicBool,
    /// Set when the writer gives up: the verifier stops at once.
    abandoned: &'scope AtomicBool,
}

/// What the verifier thread needs, borrowed from the writer's scope.
pub(crate) struct TrailingCtx<'a> {
    /// The target, as verify reads it.
    pub(crate) target: &'a ReadBack,
    pub(crate) book: &'a PieceBook,
    /// Pieces starting below this are checked only after the held first
    /// region is written ([`Trailing::finish`] returns them).
    pub(crate) first_region: u64,
    pub(crate) buffer_size: usize,
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) progress: &'a AtomicU64,
    pub(crate) failed: &'a AtomicBool,
    pub(crate) abandoned: &'a AtomicBool,
}

impl<'scope> Trailing<'scope> {
    /// Start the verifier on `scope`.
    pub(crate) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        ctx: TrailingCtx<'scope>,
    ) -> Self {
        let (written, rx) = channel();
        let (failed, abandoned) = (ctx.failed, ctx.abandoned);
        let worker = scope.spawn(move || {
            let result = ctx.run(&rx);
            if result.is_err() {
                ctx.failed.store(true, Ordering::Relaxed);
            }
            result
        });
        Self {
            written: Some(written),
            worker: Some(worker),
            failed,
            abandoned,
        }
    }

    /// Every write up to `offset` has completed (not necessarily flushed:
    /// a direct read sees it all the same).
    pub(crate) fn written(&self, offset: u64) {
        if let Some(tx) = &self.written {
            let _ = tx.send(offset);
        }
    }

    /// Whether the verifier already found a problem ([`Self::finish`] says
    /// which).
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// The image is written and synced up to `total`: wait until all of it
    /// but the first region's pieces is checked, and return what is left.
    pub(crate) fn finish(mut self, total: u64) -> Result<Rest, FlashError> {
        self.written(total);
        drop(self.written.take());
        match self.worker.take().map(ScopedJoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(FlashError::VerifyThread),
        }
    }
}

impl Drop for Trailing<'_> {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl TrailingCtx<'_> {
    /// Check each stretch as it is announced; returns what is left to
    /// check once the writer says it is done.
    fn run(&self, written: &Receiver<u64>) -> Result<Rest, FlashError> {
        lower_priority();
        let stopped =
            || self.cancel.load(Ordering::Relaxed) || self.abandoned.load(Ordering::Relaxed);
        let mut next = 0;
        let mut rest = Rest::default();
        let mut last = None;
        let span = self.buffer_size as u64;
        while let Ok(mut upto) = written.recv() {
            // Catch up with every announcement at once.
            while let Ok(later) = written.try_recv() {
                upto = later;
            }
            let (pieces, after) = self
                .book
                .settled(next, upto, &stopped)
                .map_err(|e| match e {
                    BookError::Stopped => FlashError::Cancelled,
                    BookError::Broken => FlashError::VerifyThread,
                })?;
            next = after;
            let split = pieces
                .iter()
                .position(|p| p.offset >= self.first_region)
                .unwrap_or(pieces.len());
            rest.first_region.extend_from_slice(&pieces[..split]);
            for piece in &pieces[split..] {
                read_again(piece, span, &mut rest.again);
            }
            last = pieces[split..].last().copied().or(last);
            read_back_check(
                self.target,
                &pieces[split..],
                self.buffer_size,
                &stopped,
                self.progress,
            )?;
        }
        if stopped() {
            return Err(FlashError::Cancelled);
        }
        if let Some(last) = last.map(|p| read_again_last(&p, span))
            && rest.again.last() != Some(&last)
        {
            rest.again.push(last);
        }
        Ok(rest)
    }
}

/// Make the calling thread yield the CPU to the decoder (on Linux a nice
/// value is per thread). Best effort: at worst verify runs at the same
/// priority as before.
fn lower_priority() {
    let now = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(None, (now + VERIFY_NICE).min(19)) {
        tracing::debug!(error = %e, "could not lower the verifier's priority");
    }
}

/// How much nicer than the flash the verifier is.
const VERIFY_NICE: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pieces::expect_of;
    use std::path::{Path, PathBuf};
    use std::thread;
    use std::time::{Duration, Instant};

    const MIB: usize = 1 << 20;

    fn book_of(image: &[u8], piece: usize) -> PieceBook {
        let book = PieceBook::default();
        for (i, c) in image.chunks(piece).enumerate() {
            book.add_known((i * piece) as u64, c.len() as u64, expect_of(c));
        }
        book
    }

    /// Runs a verifier over `target` for `image`, in 1 MiB pieces,
    /// announcing `stretches`.
    fn trail(
        target: &Path,
        image: &[u8],
        stretches: &[u64],
    ) -> (Result<Rest, FlashError>, bool, u64) {
        trail_book(target, &book_of(image, MIB), image.len() as u64, stretches)
    }

    /// Runs a verifier over `target` for an image of `len` bytes in `book`,
    /// announcing `stretches`.
    fn trail_book(
        target: &Path,
        book: &PieceBook,
        len: u64,
        stretches: &[u64],
    ) -> (Result<Rest, FlashError>, bool, u64) {
        let (cancel, failed, abandoned) = Default::default();
        let progress = AtomicU64::new(0);
        let read_back = ReadBack::of_file(target);
        let (result, failed_early) = thread::scope(|s| {
            let trailing = Trailing::start(
                s,
                TrailingCtx {
                    target: &read_back,
                    book,
                    first_region: MIB as u64,
                    buffer_size: MIB,
                    cancel: &cancel,
                    progress: &progress,
                    failed: &failed,
                    abandoned: &abandoned,
                },
            );
            for &at in stretches {
                trailing.written(at);
            }
            // Give the verifier time to reach the last stretch announced.
            let checked = stretches.last().map_or(0, |&at| at - MIB as u64);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !trailing.failed()
                && progress.load(Ordering::Relaxed) < checked
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(5));
            }
            let failed_early = trailing.failed();
            (trailing.finish(len), failed_early)
        });
        (result, failed_early, progress.load(Ordering::Relaxed))
    }

    /// An image of `len` bytes (a repeating count to `modulus`) and a file
    /// holding it, in a tempdir that lives as long as the returned guard.
    fn image_on_file(len: usize, modulus: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.img");
        let image: Vec<u8> = (0..len).map(|i| (i % modulus) as u8).collect();
        std::fs::write(&path, &image).unwrap();
        (tmp, path, image)
    }

    #[test]
    fn the_first_region_is_held_back_and_the_rest_checked() {
        let (_tmp, path, image) = image_on_file(6 * MIB, 253);
        let (result, failed, progress) = trail(&path, &image, &[3 * MIB as u64]);
        let held = result.unwrap().first_region;
        assert!(!failed);
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].offset, held[0].len), (0, MIB as u64));
        assert_eq!(progress, 5 * MIB as u64);
    }

    #[test]
    fn a_bad_stretch_is_reported_before_the_writer_finishes() {
        let (_tmp, path, image) = image_on_file(8 * MIB, 251);
        let mut bad = image.clone();
        bad[2 * MIB + 17] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let (result, failed_early, _) = trail(&path, &image, &[4 * MIB as u64]);
        assert!(failed_early, "the writer learns of it at its next sync");
        match result.unwrap_err() {
            FlashError::VerifyMismatch { offset, len, .. } => {
                assert_eq!((offset, len), (2 * MIB as u64, MIB as u64));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pieces_at_powers_of_two_are_read_again_after_the_last_write() {
        let (_tmp, path, image) = image_on_file(12 * MIB, 249);
        let (result, failed, _) = trail(&path, &image, &[12 * MIB as u64]);
        assert!(!failed);
        let again = result.unwrap().again;
        let offsets: Vec<u64> = again.iter().map(|p| p.offset).collect();
        let mib = MIB as u64;
        assert_eq!(offsets, [mib, 2 * mib, 4 * mib, 8 * mib, 11 * mib]);

        // A counterfeit stick of 10 MiB wraps the writes past 10 MiB onto
        // 0..2 MiB once the verifier has passed them (the first region is
        // written last, over the wrap): the second reading finds it.
        let mut wrapped = image.clone();
        wrapped.copy_within(11 * MIB..12 * MIB, MIB);
        assert_eq!(second_reading_fails_at(&path, &wrapped, &again), mib);
    }

    /// Puts `target` on the file at `path` and reads `again` back from it:
    /// the offset of the mismatch found.
    fn second_reading_fails_at(path: &Path, target: &[u8], again: &[Piece]) -> u64 {
        std::fs::write(path, target).unwrap();
        let err = read_back_check(
            &ReadBack::of_file(path),
            again,
            MIB,
            &|| false,
            &AtomicU64::new(0),
        )
        .unwrap_err();
        match err {
            FlashError::VerifyMismatch { offset, .. } => offset,
            other => panic!("{other:?}"),
        }
    }

    /// An image of a 1 MiB data first region and a zero run to 12 MiB,
    /// booked as two pieces (the run one piece), on a file.
    fn zero_run_to_12_mib() -> (tempfile::TempDir, PathBuf, Vec<u8>, PieceBook) {
        let (tmp, path, mut image) = image_on_file(12 * MIB, 247);
        image[MIB..].fill(0);
        std::fs::write(&path, &image).unwrap();
        let book = PieceBook::default();
        book.add_known(0, MIB as u64, expect_of(&image[..MIB]));
        book.add_known(MIB as u64, 11 * MIB as u64, Expect::Zeros);
        (tmp, path, image, book)
    }

    #[test]
    fn a_zero_run_is_read_again_a_read_at_each_power_of_two_and_at_its_end() {
        let (_tmp, path, image, book) = zero_run_to_12_mib();
        let (result, failed, _) = trail_book(&path, &book, image.len() as u64, &[12 * MIB as u64]);
        assert!(!failed);
        let again = result.unwrap().again;
        let mib = MIB as u64;
        let parts: Vec<(u64, u64)> = again.iter().map(|p| (p.offset, p.len)).collect();
        // 5 MiB read again, where the whole run would be 11 MiB.
        assert_eq!(
            parts,
            [
                (mib, mib),
                (2 * mib, mib),
                (4 * mib, mib),
                (8 * mib, mib),
                (11 * mib, mib)
            ]
        );
        assert!(again.iter().all(|p| p.expect == Expect::Zeros));

        // A counterfeit stick of 8 MiB (an address line short) reads the
        // first region at 8 MiB; one of 11.5 MiB reads it at 11.5 MiB, in
        // the run's last read.
        for (capacity, caught_at) in [(8 * MIB, 8 * mib), (11 * MIB + MIB / 2, 11 * mib)] {
            let mut wrapped = image.clone();
            let wrap = 12 * MIB - capacity;
            wrapped.copy_within(..wrap.min(MIB), capacity);
            let offset = second_reading_fails_at(&path, &wrapped, &again);
            assert_eq!(offset, caught_at, "capacity {capacity}");
        }
    }
}
