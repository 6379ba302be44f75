//! The inverse Burrows–Wheeler transform of one block.
//!
//! Undoing the BWT follows a chain through the block's `tt` vector, each
//! step a load whose address is the previous load's value: one cache miss
//! (the vector is 3.6 MB) per output byte, with the core idle. So the chain
//! is cut at a few dozen arbitrary positions, marked in `tt`, and [`LANES`]
//! pieces are followed at once, their loads overlapping; each piece ends at
//! the next mark, and the pieces are then put in chain order.
//!
//! The links form a permutation, so the chain from the start is a cycle,
//! but not always through every position: a periodic block (`u` repeated
//! `k` times) has `k` cycles. libbzip2 walks `nblock` steps from the start
//! whatever the cycle's length, i.e. repeats the start's cycle; so does
//! this (pieces on other cycles are simply not used).

use super::fast::Reject;

/// `tt` entries: the next position above the byte, below this flag.
pub(crate) const TT_LEN: usize = 1 << 20;
const POS_MASK: u32 = (TT_LEN as u32) - 1;
const MARK: u32 = 1 << 31;
/// Chain pieces followed at once.
const LANES: usize = 8;
/// Pieces a block is cut into, at most; enough that lanes stay busy to the
/// end (pieces have random lengths).
const MAX_PIECES: usize = 64;
/// Blocks below this many bytes per piece are cut into fewer pieces.
const MIN_PIECE: usize = 4096;

/// Reusable piece buffers.
#[derive(Default)]
pub(crate) struct Walker {
    pieces: Vec<Vec<u8>>,
    starts: Vec<u32>,
    ends: Vec<u32>,
    order: Vec<usize>,
}

impl Walker {
    /// Follow the chain of `tt[..nblock]` from `tt[orig]`, and hand its
    /// `nblock` bytes to `sink` in order, a piece at a time.
    pub(crate) fn walk(
        &mut self,
        tt: &mut [u32; TT_LEN],
        orig: usize,
        nblock: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), Reject> {
        let first = (tt.get(orig).ok_or(Reject::Corrupt)? >> 8) & POS_MASK;
        self.cut(tt, first, nblock);
        self.follow(tt, nblock)?;
        self.chain_order()?;
        let mut left = nblock;
        while left > 0 {
            for &i in &self.order {
                let piece = &self.pieces[i];
                let take = piece.len().min(left);
                sink(&piece[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Choose piece starts (the true start first) and mark them.
    fn cut(&mut self, tt: &mut [u32; TT_LEN], first: u32, nblock: usize) {
        let wanted = (nblock / MIN_PIECE).clamp(1, MAX_PIECES);
        self.starts.clear();
        self.starts.push(first);
        tt[(first & POS_MASK) as usize] |= MARK;
        for k in 1..wanted {
            let at = (k * nblock / wanted) as u32 & POS_MASK;
            if tt[at as usize] & MARK == 0 {
                tt[at as usize] |= MARK;
                self.starts.push(at);
            }
        }
        let n = self.starts.len();
        if self.pieces.len() < n {
            self.pieces.resize_with(n, Vec::new);
        }
        self.pieces.iter_mut().for_each(Vec::clear);
        self.ends.clear();
        self.ends.resize(n, u32::MAX);
    }

    /// Follow every piece to the next mark, [`LANES`] at a time.
    fn follow(&mut self, tt: &[u32; TT_LEN], nblock: usize) -> Result<(), Reject> {
        let n = self.starts.len();
        let mut lane_pos = [0u32; LANES];
        let mut lane_piece = [usize::MAX; LANES];
        let mut next = 0;
        let mut steps = 0usize;
        let mut busy = 0;
        for l in 0..LANES.min(n) {
            lane_piece[l] = next;
            lane_pos[l] = self.starts[next];
            next += 1;
            busy += 1;
        }
        while busy > 0 {
            for l in 0..LANES {
                let piece = lane_piece[l];
                let Some(out) = self.pieces.get_mut(piece) else {
                    continue;
                };
                let pos = lane_pos[l];
                let entry = tt[(pos & POS_MASK) as usize];
                // A mark ends the piece, except its own start.
                if entry & MARK != 0 && !out.is_empty() {
                    self.ends[piece] = pos;
                    if next < n {
                        lane_piece[l] = next;
                        lane_pos[l] = self.starts[next];
                        next += 1;
                    } else {
                        lane_piece[l] = usize::MAX;
                        busy -= 1;
                    }
                    continue;
                }
                out.push(entry as u8);
                lane_pos[l] = (entry >> 8) & POS_MASK;
                steps += 1;
            }
            // Every piece's cycle holds its own start's mark, so this
            // cannot happen; it guards against looping forever on a bug.
            if steps > nblock {
                return Err(Reject::Corrupt);
            }
        }
        Ok(())
    }

    /// The pieces of the start's cycle, in chain order from the start.
    fn chain_order(&mut self) -> Result<(), Reject> {
        let n = self.starts.len();
        let mut by_start: Vec<(u32, usize)> = self.starts.iter().copied().zip(0..n).collect();
        by_start.sort_unstable();
        self.order.clear();
        let mut piece = 0;
        loop {
            // Each piece ends at the next mark of its cycle, so from the
            // start this comes back to the start within `n` pieces.
            if self.order.len() >= n || self.pieces[piece].is_empty() {
                return Err(Reject::Corrupt);
            }
            self.order.push(piece);
            let end = self.ends[piece];
            if end == self.starts[0] {
                return Ok(());
            }
            let found = by_start.binary_search_by_key(&end, |&(s, _)| s);
            piece = found.map(|i| by_start[i].1).map_err(|_| Reject::Corrupt)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tt` for the text `text` rotated so that the chain starts at 0.
    fn chain_of(text: &[u8], tt: &mut [u32; TT_LEN]) -> usize {
        // Position i holds text byte i and points at i + 1 (cyclically);
        // the walk starts from the entry whose successor is 0.
        let n = text.len();
        for (i, &b) in text.iter().enumerate() {
            tt[i] = ((((i + 1) % n) as u32) << 8) | u32::from(b);
        }
        n - 1
    }

    #[test]
    fn pieces_come_back_in_order() {
        let mut tt: Box<[u32; TT_LEN]> = vec![0u32; TT_LEN].into_boxed_slice().try_into().unwrap();
        let text: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let orig = chain_of(&text, &mut tt);
        let mut out = Vec::new();
        let mut walker = Walker::default();
        walker
            .walk(&mut tt, orig, text.len(), |p| out.extend_from_slice(p))
            .unwrap();
        assert_eq!(out, text);
        assert!(walker.starts.len() > LANES);
    }

    #[test]
    fn a_chain_of_two_cycles_repeats_the_first() {
        let mut tt: Box<[u32; TT_LEN]> = vec![0u32; TT_LEN].into_boxed_slice().try_into().unwrap();
        let n = 100_000;
        for i in 0..n {
            // Two cycles: evens and odds (the byte tells which).
            tt[i] = ((((i + 2) % n) as u32) << 8) | (i % 2) as u32;
        }
        let mut walker = Walker::default();
        let mut out = Vec::new();
        walker
            .walk(&mut tt, 0, n, |p| out.extend_from_slice(p))
            .unwrap();
        // From tt[0] the chain starts at 2: the even cycle, twice.
        assert_eq!(out, vec![0u8; n]);
    }
}
