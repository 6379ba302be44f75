//! The partial file: body chunks appended and hashed inline, so the sha256
//! of everything on disk is known without a second pass.
//!
//! The bytes go through bty-store's [`IntakeFile`] (aligned buffers, a
//! hashing and a writing thread, O_DIRECT where it can), which uploads use
//! too. This module adds what a download needs around it: resuming a
//! partial (re-hashing its bytes), starting over, and keeping blocking
//! work off the async threads.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bty_dio::DigestError;
use bty_dio::sha256::hash_reader;
use bty_store::create::{NotOurs, create_exclusive, open_own, remove_entry};
use bty_store::intake::{IntakeError, IntakeFile};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::FetchError;

/// An open partial file plus the sha256 state of its contents.
pub(crate) struct PartialSink {
    path: PathBuf,
    /// `None` after the intake failed (the error was returned then), and
    /// while a blocking thread waits for room in it.
    intake: Option<IntakeFile>,
    /// Bytes written or queued: the offset the next byte belongs at.
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
        let opened = {
            let path = path.to_owned();
            let cancel = cancel.clone();
            blocking(move || open_partial(&path, keep, &cancel)).await
        };
        let Some((file, hasher, len)) = opened.map_err(FetchError::io(path))? else {
            return Err(FetchError::Cancelled);
        };
        let intake = IntakeFile::start(file, path, len, hasher).map_err(intake_error(path))?;
        Ok(Self {
            path: path.to_owned(),
            intake: Some(intake),
            len,
        })
    }

    /// Bytes in the file (written or still queued).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Hash and append one chunk of the body. The copy into the intake's
    /// buffers happens here; only waiting for a free buffer (the disk or
    /// the hasher is behind) goes to a blocking thread.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        let mut rest = chunk;
        loop {
            let intake = self.intake.as_mut().ok_or_else(|| broken(&self.path))?;
            match intake.try_write(rest) {
                Ok(taken) => rest = &rest[taken..],
                // (The intake has joined its threads, which had ended.)
                Err(e) => {
                    self.intake = None;
                    return Err(intake_error(&self.path)(e));
                }
            }
            if rest.is_empty() {
                break;
            }
            self.wait_for_room().await?;
        }
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Throw the contents away and start again at byte 0.
    pub(crate) async fn truncate(&mut self) -> Result<(), FetchError> {
        let (file, _) = self.drain().await?;
        // Writes are positional: emptying the file is all a restart needs.
        let emptied = blocking(move || file.set_len(0).map(|()| file)).await;
        let file = emptied.map_err(FetchError::io(&self.path))?;
        let intake = IntakeFile::start(file, &self.path, 0, Sha256::new())
            .map_err(intake_error(&self.path))?;
        self.intake = Some(intake);
        self.len = 0;
        Ok(())
    }

    /// Write out everything queued, fsync, and return the sha256
    /// (lowercase hex) and size.
    pub(crate) async fn finish(mut self) -> Result<(String, u64), FetchError> {
        let intake = self.intake.take().ok_or_else(|| broken(&self.path))?;
        let written = blocking(move || intake.finish().map_err(io::Error::from))
            .await
            .map_err(FetchError::io(&self.path))?;
        Ok((written.sha256, written.size))
    }

    /// Write out what is queued and close the file (before deleting it).
    pub(crate) async fn close(mut self) {
        // The file is about to be deleted or kept for a later resume; a
        // failed write then only shortens what a resume starts from, and the
        // re-hash on resume reads what really is on disk.
        let _ = self.drain().await;
    }

    /// Wait on a blocking thread until the intake has a free buffer.
    async fn wait_for_room(&mut self) -> Result<(), FetchError> {
        let mut intake = self.intake.take().ok_or_else(|| broken(&self.path))?;
        // If this future is dropped meanwhile, the intake is dropped (and
        // so abandoned) as soon as the wait ends.
        let waited = blocking(move || {
            intake
                .wait_for_room()
                .map(|()| intake)
                .map_err(io::Error::from)
        });
        self.intake = Some(waited.await.map_err(FetchError::io(&self.path))?);
        Ok(())
    }

    /// End the intake: everything queued is written and hashed.
    async fn drain(&mut self) -> Result<(File, Sha256), FetchError> {
        let intake = self.intake.take().ok_or_else(|| broken(&self.path))?;
        blocking(move || intake.drain().map_err(io::Error::from))
            .await
            .map_err(FetchError::io(&self.path))
    }
}

/// The error for using the sink after its writer failed.
fn broken(path: &Path) -> FetchError {
    FetchError::Io {
        path: path.to_owned(),
        source: io::Error::other("the partial file's writer failed earlier"),
    }
}

/// An intake failure as a file error on the partial, keeping the
/// underlying I/O error (its kind and errno) where there is one.
fn intake_error(path: &Path) -> impl FnOnce(IntakeError) -> FetchError + '_ {
    move |e| FetchError::io(path)(e.into())
}

/// Run blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(e.to_string()))
        .and_then(|r| r)
}

/// Open the partial, keeping (and re-hashing) or dropping its bytes;
/// `None` if cancelled while re-hashing.
///
/// The image root is group-writable, so the name is not trusted: a kept
/// partial is reopened without `O_CREAT` and only if it is still our own
/// plain file (not a symlink, one link, our uid); anything else under the
/// name is unlinked (the entry, never what it points at) and a new file is
/// created with `O_CREAT | O_EXCL | O_NOFOLLOW`.
fn open_partial(
    path: &Path,
    keep: bool,
    cancel: &CancellationToken,
) -> io::Result<Option<(File, Sha256, u64)>> {
    if keep {
        match open_own(path)? {
            Ok(mut file) => {
                return Ok(rehash(&mut file, cancel)?.map(|(hasher, len)| (file, hasher, len)));
            }
            Err(NotOurs::Missing) => {}
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "not resuming a partial that is not ours; starting over");
            }
        }
    }
    remove_entry(path)?;
    Ok(Some((create_exclusive(path)?, Sha256::new(), 0)))
}

/// sha256 state and length of everything in `file` from its start; `None`
/// if cancelled.
fn rehash(
    file: &mut std::fs::File,
    cancel: &CancellationToken,
) -> io::Result<Option<(Sha256, u64)>> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    match hash_reader(&mut hasher, file, &mut |_| {}, &|| cancel.is_cancelled()) {
        Ok(len) => Ok(Some((hasher, len))),
        Err(DigestError::Cancelled) => Ok(None),
        Err(DigestError::Read(e) | DigestError::Open { source: e, .. }) => Err(e),
    }
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
    async fn a_planted_link_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"victim bytes").unwrap();
        let path = dir.path().join("f.partial");
        for keep in [false, true] {
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(&victim, &path).unwrap();
            let mut sink = PartialSink::open(&path, keep, &CancellationToken::new())
                .await
                .unwrap();
            assert_eq!(sink.len(), 0, "keep={keep}: nothing of the target is kept");
            sink.write(b"downloaded").await.unwrap();
            sink.finish().await.unwrap();
            assert_eq!(std::fs::read(&victim).unwrap(), b"victim bytes");
            assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
            assert_eq!(std::fs::read(&path).unwrap(), b"downloaded");
        }
    }

    #[tokio::test]
    async fn a_hard_linked_or_foreign_partial_is_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"not ours").unwrap();
        let path = dir.path().join("f.partial");
        std::fs::hard_link(&other, &path).unwrap();
        let sink = PartialSink::open(&path, true, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sink.len(), 0);
        sink.close().await;
        assert_eq!(std::fs::read(&other).unwrap(), b"not ours");
        assert_eq!(
            bty_store::create::effective_uid(),
            0,
            "plays another user: run as root"
        );
        std::fs::write(&path, b"foreign").unwrap();
        std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
        let sink = PartialSink::open(&path, true, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sink.len(), 0);
    }

    #[tokio::test]
    async fn large_writes_span_several_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        let data: Vec<u8> = (0..((5 << 20) + 12345)).map(|i| (i % 251) as u8).collect();
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
