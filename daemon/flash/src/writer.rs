//! The per-target write core, generic over a [`BlockSink`]: holds the first
//! region back until the end, turns long zero runs into `zero_range` calls,
//! and issues only aligned writes (offset and length multiples of
//! [`ALIGN`], except the stream's final partial block).

use std::io;
use std::path::PathBuf;

use crate::FlashError;
use crate::aligned::{ALIGN, AlignedBuf, is_zero, round_up};

/// Zero runs shorter than this are written as data: splitting a write for a
/// few zero blocks costs more than it saves.
pub const ZERO_RUN_MIN: usize = 64 << 10;

/// Where a [`BlockWriter`] puts bytes: a device, a file, or a test mock.
pub trait BlockSink {
    /// Write all of `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Make `zeros.len()` bytes at `offset` read back as zeros (`zeros` is
    /// that many zero bytes, for sinks that can only write). Aligned.
    fn zero_range(&mut self, offset: u64, zeros: &[u8]) -> io::Result<()> {
        self.write_at(offset, zeros)
    }

    /// The image ended at `len`: regular files are cut or extended to it.
    fn set_final_len(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    /// Flush everything written so far to stable storage.
    fn sync(&mut self) -> io::Result<()>;
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
        let first_region = round_up(usize::try_from(first_region).unwrap_or(usize::MAX / 2));
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
        if let Some(capacity) = self.capacity.filter(|&c| end > c) {
            return Err(FlashError::TargetTooSmall {
                path: self.path.clone(),
                needed: end,
                capacity,
            });
        }
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
                    .zero_range(at, &data[i..j])
                    .map_err(|e| FlashError::Write {
                        path: self.path.clone(),
                        offset: at,
                        source: FlashError::arc(e),
                    })?;
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
        self.sink
            .set_final_len(total)
            .map_err(|e| FlashError::Write {
                path: self.path.clone(),
                offset: total,
                source: FlashError::arc(e),
            })?;
        self.sync()?;
        if !self.held.is_empty() {
            let held = std::mem::replace(&mut self.held, AlignedBuf::new(ALIGN));
            self.write(0, held.as_slice())?;
            self.sync()?;
        }
        Ok(self.sink)
    }

    fn sync(&mut self) -> Result<(), FlashError> {
        self.sink.sync().map_err(|e| FlashError::Sync {
            path: self.path.clone(),
            source: FlashError::arc(e),
        })
    }
}
