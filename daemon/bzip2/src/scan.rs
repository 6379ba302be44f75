//! Cuts a bzip2 file into blocks without decoding it.
//!
//! The input is read front to back into a window that keeps only the bytes
//! from the current block on (bounded by [`MAX_BLOCK_BYTES`]), scanned once
//! for block magics ([`MagicScan`]). A block runs from its magic to the next
//! one. Stream ends are not searched for: a stream boundary shows as a
//! block magic right after a byte-aligned `BZh1`..`BZh9` header, and the end
//! magic then sits at one of 8 bit offsets just before that header (or the
//! end of the input), behind any empty streams. A header that has no trailer
//! before it was a chance byte pattern, and the magic a plain block boundary.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use super::block::Segment;
use super::error::Bz2Error;
use super::magic::{BLOCK_MAGIC, END_MAGIC, GRID, GRID_REACH, MAGIC_BITS, MagicScan, find_slow};

/// Block magic + block CRC.
const BLOCK_HEADER_BITS: u64 = MAGIC_BITS + 32;
/// End magic + combined CRC.
const TRAILER_BITS: u64 = MAGIC_BITS + 32;
/// `BZh` + level digit.
const STREAM_HEADER: u64 = 4;
/// A whole empty stream: header, end magic, CRC 0.
const EMPTY_STREAM: u64 = STREAM_HEADER + TRAILER_BITS / 8;
/// Larger than any block an encoder writes (900 000 symbols of at most 20
/// bits, plus tables), so a missing boundary is reported, not buffered.
pub(crate) const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Input taken per read, so that a reader holding everything in memory
/// does not make the window as large as the input.
const READ_CHUNK: usize = 1 << 20;

static SCAN: MagicScan = MagicScan::new();

/// Why the scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The input reader failed; its error is handed on as it is.
    Source(io::Error),
    /// The input is not valid bzip2.
    Format(Bz2Error),
}

impl From<Bz2Error> for ScanError {
    fn from(e: Bz2Error) -> Self {
        Self::Format(e)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// A stream header is expected at this input byte.
    Header {
        at: u64,
    },
    /// A block's magic starts at input bit `start`.
    Block {
        start: u64,
        level: u8,
        crc: u32,
    },
    Done,
}

/// Yields the blocks of every stream of `input`, in order.
pub(crate) struct Scanner<R> {
    input: R,
    /// Input bytes from `base` on; `base` is a multiple of [`GRID`] so the
    /// scan grid stays put when the window moves.
    buf: Vec<u8>,
    base: u64,
    eof: bool,
    /// Next input byte offset on the grid to scan.
    grid: u64,
    /// Block magics found and not yet used (input bit offsets, increasing).
    marks: VecDeque<u64>,
    state: State,
    streams: u64,
    #[cfg(test)]
    false_magics: Vec<u64>,
}

impl<R: BufRead> Scanner<R> {
    pub(crate) fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::new(),
            base: 0,
            eof: false,
            grid: 0,
            marks: VecDeque::new(),
            state: State::Header { at: 0 },
            streams: 0,
            #[cfg(test)]
            false_magics: Vec::new(),
        }
    }

    /// The input, unread (only before the first [`Self::next_block`]).
    pub(crate) fn into_input(self) -> R {
        self.input
    }

    /// Also split blocks at these input bit offsets, as chance magics
    /// inside blocks would.
    #[cfg(test)]
    pub(crate) fn with_false_magics(mut self, mut bits: Vec<u64>) -> Self {
        bits.sort_unstable();
        self.false_magics = bits;
        self
    }

    /// The next block, `None` after the last stream ended cleanly.
    pub(crate) fn next_block(&mut self) -> Result<Option<Segment>, ScanError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Header { at } => self.header(at)?,
                State::Block { start, level, crc } => return self.block(start, level, crc),
            }
        }
    }

    /// Parse a stream header (and an empty stream, if that is what follows).
    fn header(&mut self, at: u64) -> Result<(), ScanError> {
        self.want(at + EMPTY_STREAM)?;
        let head = self.bytes(at, at + STREAM_HEADER);
        if self.end() == at && self.eof {
            if self.streams == 0 {
                return Err(Bz2Error::Empty.into());
            }
            self.state = State::Done;
            return Ok(());
        }
        let Some(level) = head.and_then(stream_level) else {
            return Err(if self.streams == 0 {
                Bz2Error::NotBzip2 { offset: at }
            } else {
                Bz2Error::TrailingGarbage { offset: at }
            }
            .into());
        };
        let magic_at = (at + STREAM_HEADER) * 8;
        let truncated = || Bz2Error::Truncated { offset: at };
        let magic = self
            .bits(magic_at, MAGIC_BITS as u32)
            .ok_or_else(truncated)?;
        let crc = self.bits(magic_at + MAGIC_BITS, 32).ok_or_else(truncated)? as u32;
        self.streams += 1;
        self.state = match magic {
            BLOCK_MAGIC => State::Block {
                start: magic_at,
                level,
                crc,
            },
            END_MAGIC if crc == 0 => State::Header {
                at: at + EMPTY_STREAM,
            },
            END_MAGIC => {
                return Err(Bz2Error::StreamCrc {
                    offset: at,
                    stored: crc,
                    computed: 0,
                }
                .into());
            }
            _ => return Err(Bz2Error::BadHeader { offset: at }.into()),
        };
        Ok(())
    }

    /// Cut the block that starts at bit `start`.
    fn block(&mut self, start: u64, level: u8, crc: u32) -> Result<Option<Segment>, ScanError> {
        loop {
            // The block's own magic, and chance hits inside its header.
            while self
                .marks
                .front()
                .is_some_and(|&m| m <= start + BLOCK_HEADER_BITS)
            {
                self.marks.pop_front();
            }
            if let Some(&next) = self.marks.front() {
                if let Some((end, stored)) = self.stream_end_before(next, start) {
                    return Ok(Some(self.finish_stream(start, end, level, crc, stored)));
                }
                self.marks.pop_front();
                self.want((next + BLOCK_HEADER_BITS).div_ceil(8))?;
                let next_crc = self
                    .bits(next + MAGIC_BITS, 32)
                    .ok_or(Bz2Error::Truncated { offset: next / 8 })?
                    as u32;
                let seg = self.cut(start, next, level, crc, None);
                self.state = State::Block {
                    start: next,
                    level,
                    crc: next_crc,
                };
                return Ok(Some(seg));
            }
            if self.eof {
                return self.last_block(start, level, crc).map(Some);
            }
            if self.end() - start / 8 > MAX_BLOCK_BYTES as u64 {
                return Err(Bz2Error::NoBoundary {
                    offset: start / 8,
                    limit: MAX_BLOCK_BYTES,
                }
                .into());
            }
            self.fill()?;
        }
    }

    /// The block at `start` runs to the end of the input: find its
    /// stream's trailer there, else say what is wrong.
    fn last_block(&mut self, start: u64, level: u8, crc: u32) -> Result<Segment, ScanError> {
        let mut trailer_end = self.end();
        while self.is_empty_stream_before(trailer_end) {
            trailer_end -= EMPTY_STREAM;
        }
        if let Some((end, stored)) = self.trailer_before(trailer_end, start) {
            return Ok(self.finish_stream(start, end, level, crc, stored));
        }
        // The trailer is not at the end: data follows it (reported by the
        // header parse after it), or it is missing.
        let from = (start + BLOCK_HEADER_BITS).saturating_sub(self.base * 8);
        let found = find_slow(&self.buf, END_MAGIC, from)
            .map(|rel| rel + self.base * 8)
            .and_then(|end| Some((end, self.bits(end + MAGIC_BITS, 32)? as u32)));
        match found {
            Some((end, stored)) => Ok(self.finish_stream(start, end, level, crc, stored)),
            None => Err(Bz2Error::Truncated { offset: start / 8 }.into()),
        }
    }

    /// The block at `start` ends its stream at bit `end`, where the stream
    /// trailer (with combined CRC `stored`) starts.
    fn finish_stream(&mut self, start: u64, end: u64, level: u8, crc: u32, stored: u32) -> Segment {
        let seg = self.cut(start, end, level, crc, Some(stored));
        self.state = State::Header {
            at: (end + TRAILER_BITS).div_ceil(8),
        };
        seg
    }

    /// When the block magic at bit `magic` starts a new stream: where the
    /// previous stream's trailer starts and the CRC it holds.
    fn stream_end_before(&self, magic: u64, block_start: u64) -> Option<(u64, u32)> {
        if !magic.is_multiple_of(8) {
            return None;
        }
        let header = (magic / 8).checked_sub(STREAM_HEADER)?;
        self.bytes(header, magic / 8).and_then(stream_level)?;
        let mut trailer_end = header;
        while self.is_empty_stream_before(trailer_end) {
            trailer_end -= EMPTY_STREAM;
        }
        self.trailer_before(trailer_end, block_start)
    }

    /// A stream trailer ending, zero-padded, at byte `end`, after the block
    /// header at `block_start`: its bit offset and combined CRC.
    fn trailer_before(&self, end: u64, block_start: u64) -> Option<(u64, u32)> {
        (0..8).find_map(|pad| {
            let at = (end * 8).checked_sub(TRAILER_BITS + pad)?;
            if at <= block_start + BLOCK_HEADER_BITS
                || self.bits(at, MAGIC_BITS as u32)? != END_MAGIC
            {
                return None;
            }
            Some((at, self.bits(at + MAGIC_BITS, 32)? as u32))
        })
    }

    /// Whether the bytes before `end` are a whole empty stream.
    fn is_empty_stream_before(&self, end: u64) -> bool {
        let Some(bytes) = end
            .checked_sub(EMPTY_STREAM)
            .and_then(|start| self.bytes(start, end))
        else {
            return false;
        };
        let (head, rest) = bytes.split_at(STREAM_HEADER as usize);
        stream_level(head).is_some()
            && rest[..6] == END_MAGIC.to_be_bytes()[2..]
            && rest[6..] == [0; 4]
    }

    /// Copy out the block at bits `start..end`.
    fn cut(&self, start: u64, end: u64, level: u8, crc: u32, stream_end: Option<u32>) -> Segment {
        let offset = start / 8;
        let bytes = self
            .bytes(offset, end.div_ceil(8))
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        Segment {
            offset,
            bytes,
            start_bit: (start % 8) as u8,
            bit_len: end - start,
            level,
            crc,
            stream_end,
        }
    }

    /// Input offset just past the window.
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Input bytes `from..to`, if all in the window.
    fn bytes(&self, from: u64, to: u64) -> Option<&[u8]> {
        let from = usize::try_from(from.checked_sub(self.base)?).ok()?;
        let to = usize::try_from(to.checked_sub(self.base)?).ok()?;
        self.buf.get(from..to)
    }

    /// `n` bits at input bit `at`, if in the window.
    fn bits(&self, at: u64, n: u32) -> Option<u64> {
        super::magic::bits_at(&self.buf, at.checked_sub(self.base * 8)?, n)
    }

    /// Read until the window reaches input byte `to` or the input ends.
    fn want(&mut self, to: u64) -> Result<(), ScanError> {
        while self.end() < to && !self.eof {
            self.fill()?;
        }
        Ok(())
    }

    /// Read one more piece of input (or note its end) and scan it.
    fn fill(&mut self) -> Result<(), ScanError> {
        if self.eof {
            return Ok(());
        }
        self.compact();
        let chunk = loop {
            match self.input.fill_buf() {
                Ok(chunk) => break chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ScanError::Source(e)),
            }
        };
        let n = chunk.len().min(READ_CHUNK);
        self.buf.extend_from_slice(&chunk[..n]);
        self.input.consume(n);
        self.eof = n == 0;
        self.scan();
        Ok(())
    }

    /// Scan the grid points whose hits are now fully in the window (all of
    /// them at the end of the input).
    fn scan(&mut self) {
        let limit = if self.eof {
            self.end()
        } else {
            self.end().saturating_sub(GRID_REACH as u64 - 1)
        };
        if limit <= self.grid {
            return;
        }
        let (Ok(from), Ok(to)) = (
            usize::try_from(self.grid - self.base),
            usize::try_from(limit - self.base),
        ) else {
            return;
        };
        let base_bit = self.base * 8;
        let mut hits = Vec::new();
        SCAN.scan(&self.buf, from, to, &mut |bit| hits.push(base_bit + bit));
        let next_grid = self.grid + (limit - self.grid).div_ceil(GRID as u64) * GRID as u64;
        #[cfg(test)]
        {
            // The bit range these grid points cover.
            let covered = (self.grid * 8).saturating_sub(31)..next_grid * 8 - 31;
            hits.extend(self.false_magics.iter().filter(|b| covered.contains(b)));
            hits.sort_unstable();
        }
        self.grid = next_grid;
        for at in hits {
            if self.marks.back().is_none_or(|&last| at > last) {
                self.marks.push_back(at);
            }
        }
    }

    /// Drop window bytes before the current position once they are at
    /// least half of it (so each byte moves at most about once).
    fn compact(&mut self) {
        let needed = match self.state {
            State::Header { at } => at,
            State::Block { start, .. } => start / 8,
            State::Done => self.end(),
        };
        let keep = needed.min(self.grid) / GRID as u64 * GRID as u64;
        let dead = keep.saturating_sub(self.base);
        if dead < (64 << 10) || dead < self.buf.len() as u64 / 2 {
            return;
        }
        let Ok(dead_len) = usize::try_from(dead) else {
            return;
        };
        self.buf.drain(..dead_len);
        self.base = keep;
        while self.marks.front().is_some_and(|&m| m < keep * 8) {
            self.marks.pop_front();
        }
    }
}

/// The block-size digit of a `BZh1`..`BZh9` header.
fn stream_level(head: &[u8]) -> Option<u8> {
    match *head {
        [b'B', b'Z', b'h', level @ b'1'..=b'9'] => Some(level),
        _ => None,
    }
}
