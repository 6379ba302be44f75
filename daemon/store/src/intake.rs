//! Taking a new file into the store: bytes arriving in chunks of any size (an HTTP
//! download body, an upload stream) are written to a file and hashed on
//! the way, so the sha256 of everything on disk is known without a second
//! pass. Downloads (bty-fetch's partial file) and uploads (btyd) share
//! this one hot path.
//!
//! Each chunk is copied once, into the next of a small pool of aligned
//! buffers; a full buffer is hashed on one thread and written on another
//! (`pipeline`), so copying, hashing and writing overlap. The writer uses
//! O_DIRECT where the filesystem allows it and starts writeback early where
//! it does not (`writer`), which keeps the final fsync short. Copying
//! rather than holding on to the caller's chunks lets the caller reuse its
//! read buffer, gives the writer aligned buffers, and bounds the memory a
//! intake holds to the pool.
//!
//! Everything here is blocking. An async caller feeds [`IntakeFile::try_write`]
//! on its own thread and calls [`IntakeFile::wait_for_room`] (the only
//! wait while bytes go in) on a blocking thread.

mod error;
mod pipeline;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::{Path, PathBuf};

use bty_dio::{ALIGN, AlignedBuf, to_hex};
use sha2::{Digest, Sha256};

pub use self::error::IntakeError;
use self::pipeline::{Gone, Pipeline};
use crate::create::create_exclusive;

/// A file being taken in: its hashing and writing threads, and the buffer
/// being filled.
///
/// Dropping it without [`drain`](Self::drain) or [`finish`](Self::finish)
/// abandons the intake: the threads stop at their next buffer and write
/// nothing more, without the drop waiting for them.
pub struct IntakeFile {
    path: PathBuf,
    /// `None` once a thread failed (its error was returned then).
    pipeline: Option<Pipeline>,
    /// The buffer being filled, and the file offset of its first byte.
    current: Option<AlignedBuf>,
    offset: u64,
}

/// A file taken in: its size and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes in the file.
    pub size: u64,
    /// sha256 of all of them, lowercase hex.
    pub sha256: String,
}

impl IntakeFile {
    /// Create the file at `path` and take bytes into it from its start.
    /// The name must be new (`O_CREAT | O_EXCL | O_NOFOLLOW`): whatever was
    /// planted under it is never opened, and the create fails instead.
    pub fn create(path: &Path) -> Result<Self, IntakeError> {
        let file = create_exclusive(path).map_err(|source| IntakeError::Create {
            path: path.to_owned(),
            source,
        })?;
        Self::start(file, path, 0, Sha256::new())
    }

    /// Take bytes into `file` (open for writing at `path`) from `offset`
    /// on; `hasher` has seen the bytes before it, so a resumed file's hash
    /// covers all of it without re-reading.
    pub fn start(
        file: File,
        path: &Path,
        offset: u64,
        hasher: Sha256,
    ) -> Result<Self, IntakeError> {
        Ok(Self {
            path: path.to_owned(),
            pipeline: Some(Pipeline::start(file, path, offset, hasher)?),
            current: None,
            offset,
        })
    }

    /// The file being taken in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size once everything written so far is on disk: the
    /// offset the next byte belongs at.
    pub fn size(&self) -> u64 {
        self.offset + self.current.as_ref().map_or(0, |b| b.len() as u64)
    }

    /// Append `data`, waiting only while every buffer is queued for
    /// hashing or writing.
    pub fn write(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        let mut rest = data;
        loop {
            rest = &rest[self.try_write(rest)?..];
            if rest.is_empty() {
                return Ok(());
            }
            self.wait_for_room()?;
        }
    }

    /// Append as much of `data` as the free buffers hold, without waiting;
    /// returns how many bytes were taken. Less than all of `data` means
    /// the pool is empty: [`wait_for_room`](Self::wait_for_room), then
    /// write the rest.
    pub fn try_write(&mut self, data: &[u8]) -> Result<usize, IntakeError> {
        let mut taken = 0;
        while taken < data.len() {
            let mut buf = match self.current.take() {
                Some(buf) => buf,
                None => match self.running()?.try_free() {
                    Ok(Some(buf)) => buf,
                    Ok(None) => break,
                    Err(Gone) => return Err(self.fail()),
                },
            };
            // A resumed file may end mid-block: the first buffer only
            // fills that block, so every later one starts aligned.
            let target = match (self.offset % ALIGN as u64) as usize {
                0 => buf.capacity(),
                r => ALIGN - r,
            };
            let rest = &data[taken..];
            taken += buf.fill(&rest[..rest.len().min(target - buf.len())]);
            if buf.len() < target {
                self.current = Some(buf);
                continue;
            }
            if self.running()?.send(buf, self.offset).is_err() {
                return Err(self.fail());
            }
            self.offset += target as u64;
        }
        Ok(taken)
    }

    /// Wait until a buffer is free for [`try_write`](Self::try_write).
    pub fn wait_for_room(&mut self) -> Result<(), IntakeError> {
        if self.current.is_none() {
            match self.running()?.wait_free() {
                Ok(buf) => self.current = Some(buf),
                Err(Gone) => return Err(self.fail()),
            }
        }
        Ok(())
    }

    /// Hash and write everything written so far and end the threads;
    /// return the file (not synced) and the hash state of all its bytes,
    /// e.g. to empty the file and start again.
    pub fn drain(mut self) -> Result<(File, Sha256), IntakeError> {
        let pipeline = self.pipeline.take().ok_or_else(|| self.failed())?;
        if let Some(buf) = self.current.take().filter(|b| !b.is_empty()) {
            // A failed send means the threads are gone; joining says why.
            let _ = pipeline.send(buf, self.offset);
        }
        pipeline.join(&self.path)
    }

    /// Hash and write everything, make it durable (fsync), and return the
    /// size and sha256 of the whole file.
    pub fn finish(self) -> Result<Written, IntakeError> {
        let size = self.size();
        let path = self.path.clone();
        let (file, hasher) = self.drain()?;
        file.sync_all()
            .map_err(|source| IntakeError::Sync { path, source })?;
        Ok(Written {
            size,
            sha256: to_hex(&hasher.finalize()),
        })
    }

    /// The threads, unless they failed earlier.
    fn running(&self) -> Result<&Pipeline, IntakeError> {
        self.pipeline.as_ref().ok_or_else(|| self.failed())
    }

    /// A thread ended early: end the other and return why.
    fn fail(&mut self) -> IntakeError {
        self.current = None;
        match self.pipeline.take().map(|p| p.join(&self.path)) {
            Some(Err(e)) => e,
            // Cannot happen (the threads were gone before `End` was sent),
            // but an intake that stopped taking bytes is lost either way.
            Some(Ok(_)) => IntakeError::ThreadLost {
                path: self.path.clone(),
            },
            None => self.failed(),
        }
    }

    /// The error for use after a failure already reported.
    fn failed(&self) -> IntakeError {
        IntakeError::Failed {
            path: self.path.clone(),
        }
    }
}
