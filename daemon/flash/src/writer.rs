//! The per-target write core, generic over a [`BlockSink`]: holds the first
//! region back until the end, turns long zero runs into `zero_range` calls,
//! and issues only aligned writes (offset and length multiples of
//! [`ALIGN`], except the stream's final partial block).

use std::io;
use std::path::PathBuf;

use bty_dio::aligned::{align_down_u64, align_up};
use bty_dio::{ALIGN, AlignedBuf};

use crate::FlashError;
use crate::zeros::{is_zero, zero_block};

/// Zero runs shorter than this are written as data: splitting a write for a
/// few zero blocks costs more than it saves.
pub const ZERO_RUN_MIN: usize = 64 << 10;

/// Where a [`BlockWriter`] puts bytes: a device, a file, or a test mock.
pub trait BlockSink {
    /// Write all of `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Make `len` bytes at `offset` read back as zeros (both aligned). The
    /// default writes them.
    fn zero_range(&mut self, offset: u64, len: u64) -> io::Result<()> {
        write_zeros(self, offset, len)
    }

    /// The image ended at `len`: regular files are cut or extended to it.
    fn set_final_len(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    /// Flush everything written so far to stable storage.
    fn sync(&mut self) -> io::Result<()>;
}

/// Write `len` zero bytes at `offset` through `sink.write_at`.
pub(crate) fn write_zeros<S: BlockSink + ?Sized>(
    sink: &mut S,
    mut offset: u64,
    mut len: u64,
) -> io::Result<()> {
    let zeros = zero_block();
    while len > 0 {
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(zeros.len());
        sink.write_at(offset, &zeros[..n])?;
        offset += n as u64;
        len -= n as u64;
    }
    Ok(())
}

/// Writes one target from a stream of (offset, bytes) pieces.
#[derive(Debug)]
pub struct BlockWriter<S> {
    path: PathBuf,
    sink: S,
    held: AlignedBuf,
    first_region: u64,
    zero_skip: bool,
    capacity: Option<u64>,
    accepted: u64,
}

impl<S: BlockSink> BlockWriter<S> {
    /// A writer for the target at `path` (named in errors) that holds back
    /// the first `first_region` bytes (rounded up to [`ALIGN`]) and refuses
    /// to write past `capacity`.
    pub fn new(
        path: PathBuf,
        sink: S,
        first_region: u64,
        zero_skip: bool,
        capacity: Option<u64>,
    ) -> Self {
        let first_region = align_up(usize::try_from(first_region).unwrap_or(usize::MAX / 2));
        let mut held = AlignedBuf::new(first_region);
        held.set_len(0);
        Self {
            path,
            sink,
            held,
            first_region: first_region as u64,
            zero_skip,
            capacity,
            accepted: 0,
        }
    }

    /// Bytes of the image accepted so far (held back or handed to the sink).
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Take `data`, which belongs at `offset` (a multiple of [`ALIGN`]; the
    /// slice starts at an [`ALIGN`]-aligned address for direct I/O sinks).
    pub fn push(&mut self, offset: u64, data: &[u8]) -> Result<(), FlashError> {
        let end = offset + data.len() as u64;
        self.check_capacity(end)?;
        let mut rest = data;
        let mut at = offset;
        if at < self.first_region {
            let n = usize::try_from((self.first_region - at).min(data.len() as u64)).unwrap_or(0);
            let start = usize::try_from(at).unwrap_or(0);
            let held = self.held.as_mut_full();
            held[start..start + n].copy_from_slice(&data[..n]);
            self.held.set_len(self.held.len().max(start + n));
            rest = &data[n..];
            at += n as u64;
        }
        if !rest.is_empty() {
            if self.zero_skip {
                self.write_skipping_zeros(at, rest)?;
            } else {
                self.write(at, rest)?;
            }
        }
        self.accepted = self.accepted.max(end);
        Ok(())
    }

    /// Take `len` zero bytes at `offset` (a multiple of [`ALIGN`]): a hole
    /// of the source, made to read back as zeros without being scanned.
    pub fn push_zeros(&mut self, offset: u64, len: u64) -> Result<(), FlashError> {
        let end = offset + len;
        self.check_capacity(end)?;
        let mut at = offset;
        if at < self.first_region {
            let n = (self.first_region - at).min(len);
            let (start, n) = (
                usize::try_from(at).unwrap_or(0),
                usize::try_from(n).unwrap_or(0),
            );
            self.held.as_mut_full()[start..start + n].fill(0);
            self.held.set_len(self.held.len().max(start + n));
            at += n as u64;
        }
        // The stream's final partial block is written as data.
        let aligned_end = at.max(align_down_u64(end));
        if aligned_end > at {
            let result = if self.zero_skip {
                self.sink.zero_range(at, aligned_end - at)
            } else {
                write_zeros(&mut self.sink, at, aligned_end - at)
            };
            result.map_err(|e| self.write_error(at, e))?;
        }
        if end > aligned_end {
            write_zeros(&mut self.sink, aligned_end, end - aligned_end)
                .map_err(|e| self.write_error(aligned_end, e))?;
        }
        self.accepted = self.accepted.max(end);
        Ok(())
    }

    fn check_capacity(&self, end: u64) -> Result<(), FlashError> {
        match self.capacity.filter(|&c| end > c) {
            Some(capacity) => Err(FlashError::TargetTooSmall {
                path: self.path.clone(),
                needed: end,
                capacity,
            }),
            None => Ok(()),
        }
    }

    fn write_error(&self, offset: u64, e: io::Error) -> FlashError {
        FlashError::Write {
            path: self.path.clone(),
            offset,
            source: FlashError::arc(e),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), FlashError> {
        self.sink
            .write_at(offset, data)
            .map_err(|e| FlashError::Write {
                path: self.path.clone(),
                offset,
                source: FlashError::arc(e),
            })
    }

    fn write_skipping_zeros(&mut self, offset: u64, data: &[u8]) -> Result<(), FlashError> {
        let mut data_start = 0;
        let mut i = 0;
        while i < data.len() {
            let mut j = i;
            while j + ALIGN <= data.len() && is_zero(&data[j..j + ALIGN]) {
                j += ALIGN;
            }
            if j - i >= ZERO_RUN_MIN {
                if data_start < i {
                    self.write(offset + data_start as u64, &data[data_start..i])?;
                }
                let at = offset + i as u64;
                self.sink
                    .zero_range(at, (j - i) as u64)
                    .map_err(|e| self.write_error(at, e))?;
                data_start = j;
                i = j;
            } else {
                // Block `j` holds data (or is the partial tail): move past it.
                i = j + ALIGN;
            }
        }
        if data_start < data.len() {
            self.write(offset + data_start as u64, &data[data_start..])?;
        }
        Ok(())
    }

    /// The image ended at `total`: fix the length, flush, write the held
    /// first region, flush again. Returns the sink for follow-up work.
    pub fn finish(mut self, total: u64) -> Result<S, FlashError> {
        self.finish_body(total)?;
        self.write_held()
    }

    /// The image ended at `total`: fix the length and flush everything but
    /// the held first region.
    pub fn finish_body(&mut self, total: u64) -> Result<(), FlashError> {
        self.sink
            .set_final_len(total)
            .map_err(|e| FlashError::Write {
                path: self.path.clone(),
                offset: total,
                source: FlashError::arc(e),
            })?;
        self.sync()
    }

    /// Write the held first region and flush: the last step, once the rest
    /// of the image is on the target (and checked, when verifying). Returns
    /// the sink for follow-up work.
    pub fn write_held(mut self) -> Result<S, FlashError> {
        if !self.held.is_empty() {
            let held = std::mem::replace(&mut self.held, AlignedBuf::new(ALIGN));
            self.write(0, held.as_slice())?;
            self.sync()?;
        }
        Ok(self.sink)
    }

    /// Flush everything written so far (not the held first region).
    pub fn sync(&mut self) -> Result<(), FlashError> {
        self.sink.sync().map_err(|e| FlashError::Sync {
            path: self.path.clone(),
            source: FlashError::arc(e),
        })
    }
}
