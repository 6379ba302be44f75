//! Incremental reflash: before a stretch of the image is written, the
//! target's current bytes there are read (`O_DIRECT`, several requests in
//! flight) and only the pieces that differ are handed on to be written.
//! Zero runs are checked the same way: a stretch the target already reads
//! as zeros gets no `BLKZEROOUT` (which the device counts as written).
//!
//! A disk reflashed daily with a slightly changed image then takes a read
//! of the image span and the writes of what changed: USB sticks, SD cards
//! and eMMC read several times faster than they write, and every avoided
//! write is wear saved. Verify is unchanged: it reads the target back and
//! checks it against the image, so a piece wrongly judged equal would fail.

use std::io;
use std::ops::Range;
use std::os::fd::AsFd;

use bty_dio::{AlignedBuf, direct};

use crate::raw_file::DirectFile;
use crate::zeros::is_zero;

/// Unit of comparison: a differing byte rewrites its whole piece. One
/// direct-I/O block, so a scattered change costs at most a block more than
/// itself; neighbouring pieces merge, so a changed stretch is still one
/// large write.
pub(crate) const PIECE: usize = bty_dio::ALIGN;

/// What an incremental target did with the image's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// Image bytes compared with what the target held.
    pub compared: u64,
    /// Bytes that differed and were written (or zeroed).
    pub written: u64,
    /// Bytes the target already held, not written.
    pub skipped: u64,
}

/// Reads the target to tell which pieces of the image it lacks.
pub(crate) struct Differ {
    before: DirectFile,
    scratch: AlignedBuf,
    counts: DiffCounts,
}

impl std::fmt::Debug for Differ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Differ")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Differ {
    /// A reader of the target open as `target` (a second descriptor on the
    /// same inode, never a name), comparing up to `buffer_size` bytes per
    /// read.
    pub(crate) fn new(target: &impl AsFd, direct: bool, buffer_size: usize) -> io::Result<Self> {
        let (file, direct) = direct::reopen_read(target, direct)?;
        Ok(Self {
            before: DirectFile::opened(file, direct),
            scratch: AlignedBuf::new(buffer_size.max(PIECE)),
            counts: DiffCounts::default(),
        })
    }

    /// What this target compared, wrote and skipped so far.
    pub(crate) fn counts(&self) -> DiffCounts {
        self.counts
    }

    /// The ranges of `data` (which belongs at `offset`, a multiple of
    /// [`bty_dio::ALIGN`]) that the target does not already hold: whole
    /// pieces, neighbours merged, the last one ending at `data.len()`.
    pub(crate) fn changed(&mut self, offset: u64, data: &[u8]) -> io::Result<Vec<Range<usize>>> {
        let mut changed = Vec::new();
        let mut done = 0;
        while done < data.len() {
            let want = (data.len() - done).min(self.scratch.capacity());
            let held = self.read(offset + done as u64, want)?;
            let new = &data[done..done + want];
            for start in (0..want).step_by(PIECE) {
                let end = (start + PIECE).min(want);
                let same = end <= held.len() && held[start..end] == new[start..end];
                if !same {
                    push_merged(&mut changed, done + start..done + end);
                }
            }
            done += want;
        }
        self.tally(
            data.len() as u64,
            changed.iter().map(|r| r.len() as u64).sum(),
        );
        Ok(changed)
    }

    /// The ranges of the zero run of `len` bytes at `offset` that the
    /// target does not already read as zeros (offsets in the target).
    pub(crate) fn not_zero(&mut self, offset: u64, len: u64) -> io::Result<Vec<Range<u64>>> {
        let mut dirty: Vec<Range<u64>> = Vec::new();
        let mut at = offset;
        let end = offset + len;
        while at < end {
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(self.scratch.capacity());
            let held = self.read(at, want)?;
            for start in (0..want).step_by(PIECE) {
                let stop = (start + PIECE).min(want);
                let zero = stop <= held.len() && is_zero(&held[start..stop]);
                if !zero {
                    let piece = at + start as u64..at + stop as u64;
                    match dirty.last_mut() {
                        Some(last) if last.end == piece.start => last.end = piece.end,
                        _ => dirty.push(piece),
                    }
                }
            }
            at += want as u64;
        }
        self.tally(len, dirty.iter().map(|r| r.end - r.start).sum());
        Ok(dirty)
    }

    /// Up to `want` bytes of the target at `at`: fewer where a regular
    /// file ends first (what lies beyond differs from anything).
    fn read(&mut self, at: u64, want: usize) -> io::Result<&[u8]> {
        let n = self.before.read_at(&mut self.scratch, at, want)?;
        Ok(&self.scratch.as_slice()[..n])
    }

    fn tally(&mut self, compared: u64, written: u64) {
        self.counts.compared += compared;
        self.counts.written += written;
        self.counts.skipped += compared - written;
    }
}

fn push_merged(ranges: &mut Vec<Range<usize>>, next: Range<usize>) {
    match ranges.last_mut() {
        Some(last) if last.end == next.start => last.end = next.end,
        _ => ranges.push(next),
    }
}

#[cfg(test)]
// `[a..b]` here is a list of one changed range, as intended.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::io::Write;

    fn differ_over(bytes: &[u8]) -> (tempfile::NamedTempFile, Differ) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file.flush().unwrap();
        let differ = Differ::new(file.as_file(), true, 1 << 20).unwrap();
        (file, differ)
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn only_the_pieces_that_differ_are_changed_and_neighbours_merge() {
        let old = noise(3 << 20);
        let (_file, mut differ) = differ_over(&old);
        let mut new = old.clone();
        new[5] ^= 1; // piece 0
        new[PIECE + 1] ^= 1; // piece 1, merged with piece 0
        new[(2 << 20) + 7] ^= 1; // one piece past the first read
        let changed = differ.changed(0, &new).unwrap();
        let far = (2 << 20) / PIECE * PIECE;
        assert_eq!(changed, [0..2 * PIECE, far..far + PIECE]);
        assert_eq!(differ.changed(0, &old).unwrap(), []);
        let counts = differ.counts();
        assert_eq!(counts.compared, 2 * old.len() as u64);
        assert_eq!(counts.written, 3 * PIECE as u64);
        assert_eq!(counts.skipped, counts.compared - counts.written);
    }

    #[test]
    fn bytes_past_the_end_of_a_short_target_differ() {
        let old = noise(2 * PIECE + 100);
        let (_file, mut differ) = differ_over(&old);
        let mut new = old.clone();
        new.extend_from_slice(&noise(PIECE));
        // The third piece is partly missing, the fourth entirely.
        assert_eq!(differ.changed(0, &new).unwrap(), [2 * PIECE..new.len()]);
        // An unaligned tail that the target holds is not rewritten.
        let (_file, mut differ) = differ_over(&new[..PIECE + 100]);
        assert_eq!(differ.changed(0, &new[..PIECE + 100]).unwrap(), []);
    }

    #[test]
    fn a_zero_run_is_zeroed_only_where_the_target_holds_data() {
        let mut old = vec![0u8; 4 << 20];
        old[(3 << 20) + 9] = 1;
        let (_file, mut differ) = differ_over(&old);
        let at = 3u64 << 20;
        assert_eq!(
            differ.not_zero(0, 4 << 20).unwrap(),
            [at..at + PIECE as u64]
        );
        // Past the end of a file: nothing there reads as zeros yet.
        let end = 4u64 << 20;
        assert_eq!(
            differ.not_zero(end, PIECE as u64).unwrap(),
            [end..end + PIECE as u64]
        );
    }
}
