//! One of a block's Huffman tables, decoded the way libbzip2 decodes it
//! (`limit`/`base`/`perm` by code length), with a lookup table in front
//! for every code of up to [`LOOKUP_BITS`] bits: one load per symbol
//! instead of a loop per bit. The lookup is filled by running libbzip2's
//! own procedure on each prefix, so both agree even on odd code lengths.

use super::bitreader::BitReader;

/// Bits resolved by one lookup.
const LOOKUP_BITS: u32 = 10;
/// Longest code bzip2 allows.
pub(crate) const MAX_CODE_LEN: u32 = 20;
/// Most symbols a table has: 256 byte values, RUNA/RUNB, end of block.
pub(crate) const MAX_ALPHA: usize = 258;
/// Lookup entry: symbol in the low 9 bits, code length above; entries
/// below this are resolved the slow way.
const RESOLVED: u16 = 1 << 9;

/// The code is not valid for this table.
#[derive(Debug)]
pub(crate) struct BadCode;

pub(crate) struct Huffman {
    lookup: [u16; 1 << LOOKUP_BITS],
    limit: [i32; 23],
    base: [i32; 23],
    perm: [u16; MAX_ALPHA],
    min_len: u32,
    alpha: usize,
}

impl Huffman {
    pub(crate) fn new() -> Self {
        Self {
            lookup: [0; 1 << LOOKUP_BITS],
            limit: [0; 23],
            base: [0; 23],
            perm: [0; MAX_ALPHA],
            min_len: 1,
            alpha: 0,
        }
    }

    /// Build from code lengths (each 1..=20, at most [`MAX_ALPHA`]), as
    /// libbzip2's `BZ2_hbCreateDecodeTables`.
    pub(crate) fn build(&mut self, lengths: &[u8]) {
        let lengths = &lengths[..lengths.len().min(MAX_ALPHA)];
        self.alpha = lengths.len();
        let min_len = u32::from(lengths.iter().copied().min().unwrap_or(1));
        let max_len = u32::from(lengths.iter().copied().max().unwrap_or(1));
        self.min_len = min_len;
        let mut pp = 0;
        for len in min_len..=max_len {
            for (sym, _) in lengths
                .iter()
                .enumerate()
                .filter(|&(_, &l)| u32::from(l) == len)
            {
                self.perm[pp] = sym as u16;
                pp += 1;
            }
        }
        self.base = [0; 23];
        for &l in lengths {
            self.base[usize::from(l) + 1] += 1;
        }
        for i in 1..23 {
            self.base[i] += self.base[i - 1];
        }
        self.limit = [0; 23];
        let mut vec = 0i32;
        for i in min_len as usize..=max_len as usize {
            vec += self.base[i + 1] - self.base[i];
            self.limit[i] = vec - 1;
            vec <<= 1;
        }
        for i in min_len as usize + 1..=max_len as usize {
            self.base[i] = ((self.limit[i - 1] + 1) << 1) - self.base[i];
        }
        for prefix in 0..1u32 << LOOKUP_BITS {
            self.lookup[prefix as usize] = self.resolve(prefix);
        }
    }

    /// The lookup entry for a [`LOOKUP_BITS`]-bit prefix.
    fn resolve(&self, prefix: u32) -> u16 {
        for len in self.min_len..=LOOKUP_BITS {
            let code = (prefix >> (LOOKUP_BITS - len)) as i32;
            if code <= self.limit[len as usize] {
                return match self.symbol(code, len) {
                    Ok(sym) => sym | ((len as u16) << 9),
                    Err(BadCode) => 0,
                };
            }
        }
        0
    }

    fn symbol(&self, code: i32, len: u32) -> Result<u16, BadCode> {
        let idx = code - self.base[len as usize];
        usize::try_from(idx)
            .ok()
            .filter(|&i| i < self.alpha)
            .map(|i| self.perm[i])
            .ok_or(BadCode)
    }

    /// Decode one symbol.
    #[inline]
    pub(crate) fn decode(&self, r: &mut BitReader<'_>) -> Result<u16, BadCode> {
        let bits = r.peek32();
        let entry = self.lookup[(bits >> (32 - LOOKUP_BITS)) as usize];
        if entry >= RESOLVED {
            r.consume(u32::from(entry >> 9));
            return Ok(entry & (RESOLVED - 1));
        }
        self.decode_long(bits, r)
    }

    #[cold]
    fn decode_long(&self, bits: u32, r: &mut BitReader<'_>) -> Result<u16, BadCode> {
        for len in self.min_len..=MAX_CODE_LEN {
            let code = (bits >> (32 - len)) as i32;
            if code <= self.limit[len as usize] {
                let sym = self.symbol(code, len)?;
                r.consume(len);
                return Ok(sym);
            }
        }
        Err(BadCode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonical codes as bzip2's encoder assigns them.
    fn codes(lengths: &[u8]) -> Vec<(u32, u32)> {
        let mut out = vec![(0, 0); lengths.len()];
        let mut code = 0u32;
        for len in 1..=20u8 {
            for (sym, &l) in lengths.iter().enumerate() {
                if l == len {
                    out[sym] = (code, u32::from(len));
                    code += 1;
                }
            }
            code <<= 1;
        }
        out
    }

    #[test]
    fn decodes_short_and_long_codes() {
        // A complete code with lengths 1 to 20.
        let mut lengths: Vec<u8> = (1..=20).collect();
        lengths.push(20);
        let mut table = Huffman::new();
        table.build(&lengths);
        for (sym, &(code, len)) in codes(&lengths).iter().enumerate() {
            // The code, then filler bits.
            let word = (u64::from(code) << (64 - len)) | ((1u64 << (64 - len)) - 1) >> 1;
            let bytes = word.to_be_bytes();
            let mut r = BitReader::new(&bytes, 0, 64);
            assert_eq!(table.decode(&mut r).unwrap(), sym as u16, "symbol {sym}");
            assert_eq!(r.pos(), u64::from(len));
        }
    }
}
