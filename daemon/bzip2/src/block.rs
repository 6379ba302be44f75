//! One compressed block cut out of the input, and its decoding: by the fast
//! decoder ([`BlockDecoder`]) when it can, else by the reference decoder:
//! the block's bits shifted to byte alignment and wrapped into a standalone
//! single-block stream (`BZh<level>`, the block, the end magic and, as the
//! combined CRC, the block's own CRC), which the bzip2 crate decodes and
//! checks.

use std::panic::{self, AssertUnwindSafe};

use bzip2::{Decompress, Status};

use super::error::BlockError;
use super::fast::BlockDecoder;
use super::magic::{END_MAGIC, bits_at};

/// The most a block can decode to: 900 000 bytes after the first
/// run-length stage, each 5-byte run (4 bytes + a count up to 251) standing
/// for 255 bytes.
pub(crate) const MAX_BLOCK_OUTPUT: usize = 900_000 / 5 * 255 + 255;
/// Output space offered per decoder call.
const OUTPUT_STEP: usize = 1 << 20;

/// A block's bits, copied out of the input.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Input byte offset of `bytes[0]`.
    pub(crate) offset: u64,
    /// Holds bits `start_bit..start_bit + bit_len`, which begin with the
    /// block magic.
    pub(crate) bytes: Vec<u8>,
    /// 0..8.
    pub(crate) start_bit: u8,
    pub(crate) bit_len: u64,
    /// The stream's block-size digit (`b'1'..=b'9'`).
    pub(crate) level: u8,
    /// The block CRC from the block header.
    pub(crate) crc: u32,
    /// On a stream's last block: the stream's stored combined CRC.
    pub(crate) stream_end: Option<u32>,
}

impl Segment {
    /// Input bit offset just past the block.
    pub(crate) fn end_bit(&self) -> u64 {
        self.offset * 8 + u64::from(self.start_bit) + self.bit_len
    }

    /// This block's bits followed by `next`'s (which must start where this
    /// one ends), as one block: undoes a split at a magic that was only a
    /// chance bit pattern inside the block. Keeps this header's CRC.
    pub(crate) fn merged_with(&self, next: &Segment) -> Option<Segment> {
        let next_start = next.offset * 8 + u64::from(next.start_bit);
        if next_start != self.end_bit() || self.stream_end.is_some() {
            return None;
        }
        let keep = usize::try_from(next.offset.checked_sub(self.offset)?).ok()?;
        let mut bytes = Vec::with_capacity(keep + next.bytes.len());
        bytes.extend_from_slice(self.bytes.get(..keep)?);
        bytes.extend_from_slice(&next.bytes);
        Some(Segment {
            offset: self.offset,
            bytes,
            start_bit: self.start_bit,
            bit_len: self.bit_len + next.bit_len,
            level: self.level,
            crc: self.crc,
            stream_end: next.stream_end,
        })
    }
}

/// Decode `seg` into `out` (cleared first): with `fast` when given and it
/// succeeds, else with the reference decoder. A panic (a bug; hostile input
/// must not take a thread down silently) is a failure of that decoder.
pub(crate) fn decode_guarded(
    seg: &Segment,
    out: &mut Vec<u8>,
    fast: Option<&mut BlockDecoder>,
) -> Result<(), BlockError> {
    if let Some(fast) = fast {
        let done = panic::catch_unwind(AssertUnwindSafe(|| fast.decode(seg, out)));
        if matches!(done, Ok(Ok(()))) {
            return Ok(());
        }
    }
    panic::catch_unwind(AssertUnwindSafe(|| decode_reference(seg, out)))
        .unwrap_or(Err(BlockError::Panicked))
}

/// Decode `seg` into `out` (cleared first) with the bzip2 crate.
fn decode_reference(seg: &Segment, out: &mut Vec<u8>) -> Result<(), BlockError> {
    out.clear();
    let input = standalone(seg)?;
    let mut decoder = Decompress::new(false);
    loop {
        if out.capacity() - out.len() < OUTPUT_STEP {
            out.reserve(OUTPUT_STEP);
        }
        let (in_before, out_before) = (decoder.total_in(), decoder.total_out());
        let consumed = usize::try_from(in_before).map_err(|_| BlockError::Trailing)?;
        let rest = input.get(consumed..).ok_or(BlockError::Trailing)?;
        let status = decoder
            .decompress_vec(rest, out)
            .map_err(BlockError::Data)?;
        if out.len() > MAX_BLOCK_OUTPUT {
            return Err(BlockError::TooLarge(MAX_BLOCK_OUTPUT));
        }
        match status {
            Status::StreamEnd if decoder.total_in() == input.len() as u64 => return Ok(()),
            Status::StreamEnd => return Err(BlockError::Trailing),
            Status::MemNeeded => return Err(BlockError::Memory),
            _ if decoder.total_in() == in_before && decoder.total_out() == out_before => {
                return Err(BlockError::Short);
            }
            _ => {}
        }
    }
}

/// `seg` as a standalone single-block stream.
fn standalone(seg: &Segment) -> Result<Vec<u8>, BlockError> {
    let whole = usize::try_from(seg.bit_len / 8).map_err(|_| BlockError::Short)?;
    let rest = (seg.bit_len % 8) as u32;
    let shift = u32::from(seg.start_bit);
    let mut out = Vec::with_capacity(whole + 16);
    out.extend_from_slice(b"BZh");
    out.push(seg.level);
    if shift == 0 {
        out.extend_from_slice(seg.bytes.get(..whole).ok_or(BlockError::Short)?);
    } else {
        // Byte i of the block spans input bytes i and i + 1.
        let src = seg.bytes.get(..=whole).ok_or(BlockError::Short)?;
        out.extend(
            src.windows(2)
                .map(|w| (w[0] << shift) | (w[1] >> (8 - shift))),
        );
    }
    let mut tail = BitWriter::default();
    let tail_at = u64::from(seg.start_bit) + whole as u64 * 8;
    tail.put(
        bits_at(&seg.bytes, tail_at, rest).ok_or(BlockError::Short)?,
        rest,
    );
    tail.put(END_MAGIC >> 24, 24);
    tail.put(END_MAGIC & 0xFF_FFFF, 24);
    tail.put(u64::from(seg.crc), 32);
    tail.finish(&mut out);
    Ok(out)
}

/// Collects a few bits at a time, MSB first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    pending: u32,
}

impl BitWriter {
    /// Append the low `n` (<= 32) bits of `value`.
    fn put(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | (value & ((1u64 << n) - 1));
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
    }

    /// Append everything to `out`, zero-padded to a whole byte.
    fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending > 0 {
            let pad = 8 - self.pending;
            self.put(0, pad);
        }
        out.extend_from_slice(&self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bit_writer_packs_msb_first() {
        let mut w = BitWriter::default();
        w.put(0b101, 3);
        w.put(0xFF, 8);
        w.put(1, 1);
        let mut out = Vec::new();
        w.finish(&mut out);
        assert_eq!(out, [0b1011_1111, 0b1111_0000]);
    }

    #[test]
    fn merging_needs_adjacent_bits() {
        let a = Segment {
            offset: 10,
            bytes: vec![0xAB, 0xCD],
            start_bit: 3,
            bit_len: 9,
            level: b'9',
            crc: 7,
            stream_end: None,
        };
        let b = Segment {
            offset: 11,
            bytes: vec![0xCD, 0xEF],
            start_bit: 4,
            bit_len: 12,
            crc: 8,
            stream_end: Some(9),
            ..a.clone()
        };
        let m = a.merged_with(&b).unwrap();
        assert_eq!(m.bytes, [0xAB, 0xCD, 0xEF]);
        assert_eq!((m.bit_len, m.crc, m.stream_end), (21, 7, Some(9)));
        let gap = Segment { start_bit: 5, ..b };
        assert!(a.merged_with(&gap).is_none());
    }
}
