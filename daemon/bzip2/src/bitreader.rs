//! MSB-first bit reads over a block's bits, which may start at any bit.
//! Reads past the block's end see the bytes after it (or zeros); the caller
//! checks [`BitReader::pos`] against [`BitReader::end`] where it matters.

pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: u64,
    end: u64,
}

impl<'a> BitReader<'a> {
    /// Read `data` from bit `start`; the block ends at bit `end`.
    pub(crate) fn new(data: &'a [u8], start: u64, end: u64) -> Self {
        Self {
            data,
            pos: start,
            end,
        }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Whether the reads went past the block's end.
    pub(crate) fn overrun(&self) -> bool {
        self.pos > self.end
    }

    /// The next 32 bits, not consumed.
    #[inline]
    pub(crate) fn peek32(&self) -> u32 {
        let byte = usize::try_from(self.pos / 8).unwrap_or(usize::MAX);
        let shift = self.pos % 8;
        let word = match self.data.get(byte..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => u64::from_be_bytes(*chunk),
            None => self.tail_word(byte),
        };
        ((word << shift) >> 32) as u32
    }

    /// The 8 bytes from `byte` near the end of the data, zero-padded.
    #[cold]
    fn tail_word(&self, byte: usize) -> u64 {
        let mut chunk = [0u8; 8];
        let rest = self.data.get(byte..).unwrap_or(&[]);
        let n = rest.len().min(8);
        chunk[..n].copy_from_slice(&rest[..n]);
        u64::from_be_bytes(chunk)
    }

    #[inline]
    pub(crate) fn consume(&mut self, n: u32) {
        self.pos += u64::from(n);
    }

    /// The next `n` (1..=32) bits.
    #[inline]
    pub(crate) fn bits(&mut self, n: u32) -> u32 {
        debug_assert!((1..=32).contains(&n));
        let v = self.peek32() >> (32 - n);
        self.consume(n);
        v
    }

    #[inline]
    pub(crate) fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_bytes_and_past_the_end() {
        let data = [0b1010_1100, 0b0101_0011, 0xFF];
        let mut r = BitReader::new(&data, 2, 20);
        assert_eq!(r.bits(6), 0b10_1100);
        assert_eq!(r.bits(8), 0b0101_0011);
        assert!(r.bit());
        assert_eq!(r.bits(16), 0xFE00);
        assert!(r.overrun());
    }
}
