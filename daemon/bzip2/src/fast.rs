//! A block decoder for the common case, faster than libbzip2's: table-driven
//! Huffman decoding ([`huffman`](super::huffman)), an inverse BWT that
//! overlaps its cache misses ([`bwt`](super::bwt)) and an 8-bytes-a-step
//! CRC ([`crc`](super::crc)). It follows libbzip2's checks, but anything it
//! refuses (corrupt data, a randomised block from bzip2 0.9.0, odd selector
//! counts) goes to the `bzip2` crate, which has the last word: this decoder
//! only ever speeds up blocks whose CRC it has verified.

use super::bitreader::BitReader;
use super::block::Segment;
use super::bwt::{TT_LEN, Walker};
use super::crc::crc32;
use super::huffman::{Huffman, MAX_ALPHA, MAX_CODE_LEN};
use super::magic::BLOCK_MAGIC;

/// Why the fast decoder gave a block to the reference one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Reject {
    #[error("corrupt block")]
    Corrupt,
    #[error("block kind left to the reference decoder")]
    Unsupported,
}

const MAX_GROUPS: usize = 6;
/// libbzip2 1.0.8 reads more selectors but uses at most this many.
const MAX_SELECTORS: usize = 18_002;
/// Symbols per selector.
const GROUP_SIZE: u32 = 50;
/// libbzip2's cap on a run-length weight.
const MAX_RUN_WEIGHT: u32 = 2 * 1024 * 1024;
const RUNA: u16 = 0;
const RUNB: u16 = 1;

/// A worker's reusable decoding state (about 4.5 MB).
pub(crate) struct BlockDecoder {
    /// Block bytes in the low 8 bits, then the inverse BWT's links.
    tt: Box<[u32; TT_LEN]>,
    tables: Box<[Huffman; MAX_GROUPS]>,
    selectors: Vec<u8>,
    walker: Walker,
}

impl BlockDecoder {
    pub(crate) fn new() -> Option<Self> {
        let tt = vec![0u32; TT_LEN].into_boxed_slice().try_into().ok()?;
        Some(Self {
            tt,
            tables: Box::new(std::array::from_fn(|_| Huffman::new())),
            selectors: Vec::new(),
            walker: Walker::default(),
        })
    }

    /// Decode `seg` into `out` (cleared first), its CRC checked.
    pub(crate) fn decode(&mut self, seg: &Segment, out: &mut Vec<u8>) -> Result<(), Reject> {
        out.clear();
        let max_block = usize::from(seg.level.wrapping_sub(b'0')).min(9) * 100_000;
        let start = u64::from(seg.start_bit);
        let mut r = BitReader::new(&seg.bytes, start, start + seg.bit_len);
        let magic = (u64::from(r.bits(24)) << 24) | u64::from(r.bits(24));
        let _stored_crc = r.bits(32);
        if magic != BLOCK_MAGIC {
            return Err(Reject::Corrupt);
        }
        if r.bit() {
            return Err(Reject::Unsupported);
        }
        let orig = r.bits(24) as usize;
        let symbols = self.read_tables(&mut r)?;
        let (nblock, counts) = self.read_symbols(&mut r, &symbols, max_block)?;
        if r.pos() != r.end() || orig >= nblock {
            return Err(Reject::Corrupt);
        }
        self.link(nblock, &counts);
        out.reserve(nblock);
        let mut rle = RunLength::default();
        self.walker
            .walk(&mut self.tt, orig, nblock, |piece| rle.expand(piece, out))?;
        if rle.pending_count() || crc32(out) != seg.crc {
            return Err(Reject::Corrupt);
        }
        Ok(())
    }

    /// Symbol map, selectors and Huffman tables; the byte value of each
    /// symbol in use.
    fn read_tables(&mut self, r: &mut BitReader<'_>) -> Result<Symbols, Reject> {
        let mut symbols = Symbols {
            bytes: [0; 256],
            count: 0,
        };
        let used = r.bits(16);
        for hi in 0..16 {
            if used & (0x8000 >> hi) == 0 {
                continue;
            }
            let lows = r.bits(16);
            for lo in 0..16 {
                if lows & (0x8000 >> lo) != 0 {
                    symbols.bytes[symbols.count] = (hi * 16 + lo) as u8;
                    symbols.count += 1;
                }
            }
        }
        if symbols.count == 0 {
            return Err(Reject::Corrupt);
        }
        let groups = r.bits(3) as usize;
        let selectors = r.bits(15) as usize;
        if !(2..=MAX_GROUPS).contains(&groups) || selectors == 0 {
            return Err(Reject::Corrupt);
        }
        if selectors > MAX_SELECTORS {
            return Err(Reject::Unsupported);
        }
        // Selectors: unary move-to-front indices.
        let mut mtf: [u8; MAX_GROUPS] = [0, 1, 2, 3, 4, 5];
        self.selectors.clear();
        for _ in 0..selectors {
            let mut j = 0;
            while r.bit() {
                j += 1;
                if j >= groups {
                    return Err(Reject::Corrupt);
                }
            }
            let v = mtf[j];
            mtf.copy_within(0..j, 1);
            mtf[0] = v;
            self.selectors.push(v);
        }
        // Code lengths, delta-coded.
        let alpha = symbols.count + 2;
        let mut lengths = [0u8; MAX_ALPHA];
        for table in self.tables.iter_mut().take(groups) {
            let mut len = r.bits(5);
            for slot in lengths.iter_mut().take(alpha) {
                loop {
                    if !(1..=MAX_CODE_LEN).contains(&len) || r.overrun() {
                        return Err(Reject::Corrupt);
                    }
                    if !r.bit() {
                        break;
                    }
                    len = if r.bit() { len - 1 } else { len + 1 };
                }
                *slot = len as u8;
            }
            table.build(&lengths[..alpha]);
        }
        if r.overrun() {
            return Err(Reject::Corrupt);
        }
        Ok(symbols)
    }

    /// Huffman, run-length (RUNA/RUNB) and move-to-front decoding into the
    /// low bytes of `tt`; the block length and each byte value's count.
    fn read_symbols(
        &mut self,
        r: &mut BitReader<'_>,
        symbols: &Symbols,
        max_block: usize,
    ) -> Result<(usize, [u32; 256]), Reject> {
        let end_of_block = symbols.count as u16 + 1;
        let mut mtf: [u8; 256] = std::array::from_fn(|i| i as u8);
        let mut counts = [0u32; 256];
        let mut nblock = 0usize;
        let mut run = 0u32;
        let mut weight = 1u32;
        let mut left_in_group = 0u32;
        let mut selector = 0usize;
        let mut table = &self.tables[0];
        loop {
            if left_in_group == 0 {
                let s = *self.selectors.get(selector).ok_or(Reject::Corrupt)?;
                table = self.tables.get(usize::from(s)).ok_or(Reject::Corrupt)?;
                selector += 1;
                left_in_group = GROUP_SIZE;
                if r.overrun() {
                    return Err(Reject::Corrupt);
                }
            }
            left_in_group -= 1;
            let sym = table.decode(r).map_err(|_| Reject::Corrupt)?;
            if sym == RUNA || sym == RUNB {
                if weight >= MAX_RUN_WEIGHT {
                    return Err(Reject::Corrupt);
                }
                run += weight << sym;
                weight <<= 1;
                continue;
            }
            if run > 0 {
                let byte = symbols.bytes[usize::from(mtf[0])];
                let n = run as usize;
                let to = nblock + n;
                if to > max_block {
                    return Err(Reject::Corrupt);
                }
                counts[usize::from(byte)] += run;
                self.tt[nblock..to].fill(u32::from(byte));
                nblock = to;
                run = 0;
                weight = 1;
            }
            if sym == end_of_block {
                return Ok((nblock, counts));
            }
            // Symbols 2..end_of_block are move-to-front indices 1..255.
            let index = usize::from(sym - 1) & 0xFF;
            let v = mtf[index];
            mtf.copy_within(0..index, 1);
            mtf[0] = v;
            let byte = symbols.bytes[usize::from(v)];
            if nblock >= max_block {
                return Err(Reject::Corrupt);
            }
            counts[usize::from(byte)] += 1;
            self.tt[nblock] = u32::from(byte);
            nblock += 1;
        }
    }

    /// Link `tt` for the inverse BWT: each sorted position points at the
    /// next.
    fn link(&mut self, nblock: usize, counts: &[u32; 256]) {
        let mut next = [0u32; 256];
        let mut sum = 0;
        for (slot, &c) in next.iter_mut().zip(counts) {
            *slot = sum;
            sum += c;
        }
        for i in 0..nblock {
            let byte = (self.tt[i] & 0xFF) as usize;
            let j = next[byte];
            next[byte] = j + 1;
            self.tt[j as usize & (TT_LEN - 1)] |= (i as u32) << 8;
        }
    }
}

/// The byte values a block uses, in order (symbol i is `bytes[i]`).
struct Symbols {
    bytes: [u8; 256],
    count: usize,
}

/// bzip2's first stage undone: after 4 equal bytes, a count of more.
#[derive(Default)]
struct RunLength {
    last: Option<u8>,
    same: u32,
}

impl RunLength {
    fn expand(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for &b in piece {
            if self.same == 4 {
                if let Some(last) = self.last {
                    out.resize(out.len() + usize::from(b), last);
                }
                self.same = 0;
                continue;
            }
            if self.last == Some(b) {
                self.same += 1;
            } else {
                self.last = Some(b);
                self.same = 1;
            }
            out.push(b);
        }
    }

    /// Whether the block ended right after 4 equal bytes, without their
    /// count (libbzip2 refuses that).
    fn pending_count(&self) -> bool {
        self.same == 4
    }
}
