//! The partial file: bytes appended through a large buffer and hashed
//! inline, so the sha256 of everything on disk is known without a second
//! pass.
//!
//! Writes go through `tokio::fs::File`, which hands each buffer to a
//! blocking thread and returns at once: the disk write of one buffer
//! overlaps with receiving and hashing the next.

use std::io::{self, Read, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

use crate::error::FetchError;

/// Bytes collected before one write to disk. 4 MiB is past the point where
/// a bigger buffer measurably helps (reference §3).
const WRITE_BUF: usize = 4 << 20;
/// Read size when re-hashing an existing partial.
const REHASH_CHUNK: usize = 1 << 20;

/// An open partial file plus the sha256 state of its contents.
pub(crate) struct PartialSink {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    /// Bytes written or buffered: the offset the next byte belongs at.
    len: u64,
}

impl PartialSink {
    /// Open (creating) the partial. With `keep`, the bytes already there are
    /// kept and re-read from disk to seed the hash (a few seconds for a big
    /// image, so `cancel` is checked per MiB); without, it is emptied.
    pub(crate) async fn open(
        path: &Path,
        keep: bool,
        cancel: &CancellationToken,
    ) -> Result<Self, FetchError> {
        let err = FetchError::io(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await
            .map_err(FetchError::io(path))?;
        let (hasher, len, mut file) = if keep {
            let std_file = file.into_std().await;
            let cancel = cancel.clone();
            let rehashed = tokio::task::spawn_blocking(move || {
                let mut f = std_file;
                rehash(&mut f, &cancel).map(|r| r.map(|(h, n)| (h, n, f)))
            })
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(err)?;
            let Some((hasher, len, std_file)) = rehashed else {
                return Err(FetchError::Cancelled);
            };
            (hasher, len, File::from_std(std_file))
        } else {
            file.set_len(0).await.map_err(err)?;
            (Sha256::new(), 0, file)
        };
        // Appending: after re-hashing the cursor is at the end already, but
        // say so explicitly rather than rely on it.
        file.seek(SeekFrom::Start(len))
            .await
            .map_err(FetchError::io(path))?;
        file.set_max_buf_size(WRITE_BUF);
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::with_capacity(WRITE_BUF, file),
            hasher,
            len,
        })
    }

    /// Bytes in the file (written or still buffered).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Hash and append one chunk of the body.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.hasher.update(chunk);
        self.out
            .write_all(chunk)
            .await
            .map_err(FetchError::io(&self.path))?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Throw the contents away and start again at byte 0.
    pub(crate) async fn truncate(&mut self) -> Result<(), FetchError> {
        let err = || FetchError::io(&self.path);
        self.out.flush().await.map_err(err())?;
        let file = self.out.get_mut();
        file.set_len(0).await.map_err(err())?;
        file.seek(SeekFrom::Start(0)).await.map_err(err())?;
        self.hasher = Sha256::new();
        self.len = 0;
        Ok(())
    }

    /// Flush buffers, fsync, and return the sha256 (lowercase hex) and size.
    pub(crate) async fn finish(mut self) -> Result<(String, u64), FetchError> {
        let err = || FetchError::io(&self.path);
        self.out.flush().await.map_err(err())?;
        self.out.get_mut().sync_all().await.map_err(err())?;
        let digest = bty_store::digest::to_hex(&self.hasher.finalize());
        Ok((digest, self.len))
    }

    /// Flush buffered bytes and close the file (before deleting it).
    pub(crate) async fn close(mut self) {
        // The file is about to be deleted or kept for a later resume; a
        // failed flush then only shortens what a resume starts from, and the
        // re-hash on resume reads what really is on disk.
        let _ = self.out.flush().await;
    }
}

/// sha256 state and length of everything in `file` from its start; `None`
/// if cancelled.
fn rehash(
    file: &mut std::fs::File,
    cancel: &CancellationToken,
) -> io::Result<Option<(Sha256, u64)>> {
    use std::io::Seek;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; REHASH_CHUNK];
    let mut len = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(Some((hasher, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        bty_store::digest::sha256_bytes(bytes)
    }

    #[tokio::test]
    async fn appends_to_kept_bytes_and_hashes_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        std::fs::write(&path, b"hello ").unwrap();
        let mut sink = PartialSink::open(&path, true, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sink.len(), 6);
        sink.write(b"world").await.unwrap();
        let (digest, len) = sink.finish().await.unwrap();
        assert_eq!((digest, len), (sha(b"hello world"), 11));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn open_without_keep_and_truncate_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        std::fs::write(&path, b"stale").unwrap();
        let mut sink = PartialSink::open(&path, false, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sink.len(), 0);
        sink.write(b"abc").await.unwrap();
        sink.truncate().await.unwrap();
        sink.write(b"xyz").await.unwrap();
        let (digest, len) = sink.finish().await.unwrap();
        assert_eq!((digest, len), (sha(b"xyz"), 3));
        assert_eq!(std::fs::read(&path).unwrap(), b"xyz");
    }

    #[tokio::test]
    async fn cancel_stops_the_rehash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        std::fs::write(&path, b"kept").unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r = PartialSink::open(&path, true, &cancel).await;
        assert!(matches!(r, Err(FetchError::Cancelled)));
    }

    #[tokio::test]
    async fn large_writes_cross_the_buffer_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        let data: Vec<u8> = (0..(WRITE_BUF * 2 + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut sink = PartialSink::open(&path, false, &CancellationToken::new())
            .await
            .unwrap();
        for chunk in data.chunks(70_001) {
            sink.write(chunk).await.unwrap();
        }
        let (digest, len) = sink.finish().await.unwrap();
        assert_eq!((digest, len), (sha(&data), data.len() as u64));
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
