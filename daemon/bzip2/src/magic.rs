//! bzip2's 48-bit magics, found at any bit offset, and MSB-first bit reads.
//!
//! A block-magic occurrence at bit `P` fully covers the 16-bit word at the
//! first multiple of 32 bits `A >= P` (`A - P <= 31`, so the word ends by bit
//! `P + 47`). The scan therefore reads one big-endian `u16` per 4 bytes and
//! tests it against the 32 words the magic can show there (an 8 KiB bitmap,
//! in L1): one pass, no SIMD, several GB/s. Hits (about one per 8 KiB of
//! random data) are checked bit-exactly.

/// Starts every compressed block.
pub(crate) const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
/// Ends every stream; a 32-bit combined CRC follows.
pub(crate) const END_MAGIC: u64 = 0x1772_4538_5090;
/// Bits in a magic.
pub(crate) const MAGIC_BITS: u64 = 48;
/// Grid step of the scan, in bytes.
pub(crate) const GRID: usize = 4;
/// Bytes past a grid point that a hit there may need to be verified.
pub(crate) const GRID_REACH: usize = 6;

/// The `n` bits (`n <= 56`) at bit `bit` of `buf`, most significant first;
/// `None` when `buf` ends before them.
pub(crate) fn bits_at(buf: &[u8], bit: u64, n: u32) -> Option<u64> {
    debug_assert!(n <= 56);
    let byte = usize::try_from(bit / 8).ok()?;
    let shift = (bit % 8) as u32;
    let need = (shift + n).div_ceil(8) as usize;
    let bytes = buf.get(byte..byte.checked_add(need)?)?;
    let word = bytes.iter().fold(0u64, |w, &b| (w << 8) | u64::from(b));
    let total = need as u32 * 8;
    Some((word >> (total - shift - n)) & ((1u64 << n) - 1))
}

/// The block-magic scan: which 16-bit words can sit on the 32-bit grid.
pub(crate) struct MagicScan {
    bitmap: [u64; 1024],
    /// `words[d]`: the magic's bits `d..d + 16`, seen on a grid point `d`
    /// bits after the magic starts.
    words: [u16; 32],
}

impl MagicScan {
    pub(crate) const fn new() -> Self {
        let mut words = [0u16; 32];
        let mut bitmap = [0u64; 1024];
        let mut d = 0;
        while d < 32 {
            let w = ((BLOCK_MAGIC >> (32 - d)) & 0xFFFF) as u16;
            words[d] = w;
            bitmap[(w >> 6) as usize] |= 1 << (w & 63);
            d += 1;
        }
        Self { bitmap, words }
    }

    /// Check the grid points at `buf[from..to]` (`from` a multiple of
    /// [`GRID`]) and report each block magic they reveal, as a bit offset
    /// into `buf`, in increasing order. A hit whose bits are not all in
    /// `buf` is not reported.
    pub(crate) fn scan(&self, buf: &[u8], from: usize, to: usize, found: &mut impl FnMut(u64)) {
        let Some(region) = buf.get(from..to.min(buf.len())) else {
            return;
        };
        for (i, chunk) in region.chunks(GRID).enumerate() {
            let &[a, b, ..] = chunk else { continue };
            let w = u16::from_be_bytes([a, b]);
            if self.bitmap[usize::from(w >> 6)] & (1 << (w & 63)) == 0 {
                continue;
            }
            let grid_bit = (from + i * GRID) as u64 * 8;
            // Largest distance first: candidates in increasing bit order.
            for d in (0..32u64).rev() {
                if self.words[d as usize] != w || d > grid_bit {
                    continue;
                }
                let at = grid_bit - d;
                if bits_at(buf, at, MAGIC_BITS as u32) == Some(BLOCK_MAGIC) {
                    found(at);
                }
            }
        }
    }
}

/// The first bit offset `>= from` of `magic` in `buf`, bit by bit (for
/// short, rare searches only).
pub(crate) fn find_slow(buf: &[u8], magic: u64, from: u64) -> Option<u64> {
    let end = (buf.len() as u64 * 8).checked_sub(MAGIC_BITS)?;
    (from..=end).find(|&at| bits_at(buf, at, MAGIC_BITS as u32) == Some(magic))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `magic` written at bit `at` of a buffer of pseudo-random bytes.
    fn plant(len: usize, magic: u64, at: u64) -> Vec<u8> {
        let mut buf: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for k in 0..MAGIC_BITS {
            let bit = (magic >> (MAGIC_BITS - 1 - k)) & 1;
            let pos = at + k;
            let mask = 0x80u8 >> (pos % 8);
            let byte = &mut buf[(pos / 8) as usize];
            *byte = if bit == 1 {
                *byte | mask
            } else {
                *byte & !mask
            };
        }
        buf
    }

    #[test]
    fn bits_are_read_msb_first() {
        let buf = [0b1010_0000, 0xFF, 0x01];
        assert_eq!(bits_at(&buf, 0, 3), Some(0b101));
        assert_eq!(bits_at(&buf, 7, 2), Some(0b01));
        assert_eq!(bits_at(&buf, 8, 16), Some(0xFF01));
        assert_eq!(bits_at(&buf, 9, 16), None);
    }

    #[test]
    fn the_scan_finds_the_magic_at_every_bit_offset() {
        let scan = MagicScan::new();
        for at in 0..200u64 {
            let buf = plant(64, BLOCK_MAGIC, at);
            let mut hits = Vec::new();
            scan.scan(&buf, 0, buf.len(), &mut |b| hits.push(b));
            assert!(hits.contains(&at), "magic at bit {at} not found: {hits:?}");
            assert_eq!(find_slow(&buf, BLOCK_MAGIC, 0), hits.first().copied());
        }
    }

    #[test]
    fn split_scans_see_each_magic_once() {
        let scan = MagicScan::new();
        for at in 90..170u64 {
            let buf = plant(64, BLOCK_MAGIC, at);
            let mut hits = Vec::new();
            // Two windows meeting at byte 16, as the scanner's reads do.
            scan.scan(&buf, 0, 16, &mut |b| hits.push(b));
            scan.scan(&buf, 16, buf.len(), &mut |b| hits.push(b));
            assert_eq!(hits.iter().filter(|&&b| b == at).count(), 1, "{at}");
        }
    }

    #[test]
    fn slow_search_finds_the_end_magic() {
        let buf = plant(40, END_MAGIC, 77);
        assert_eq!(find_slow(&buf, END_MAGIC, 0), Some(77));
        assert_eq!(find_slow(&buf, END_MAGIC, 78), None);
    }
}
