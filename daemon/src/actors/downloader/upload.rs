//! Uploads: a stream of chunks into a hidden temp file in the image root,
//! hashed inline, size-capped, then swapped in atomically with its sidecar.
//! Runs on the blocking pool; the gRPC stream feeds it through a channel.
//!
//! The bytes land through bty-store's [`IntakeFile`], the path downloads
//! take too: each chunk is copied once into an aligned buffer that is
//! hashed on one thread and written on another, with `O_DIRECT` where the
//! filesystem allows it.

use super::error::UploadError;
use super::messages::UploadRequest;
use bty_store::atomic::temp_path;
use bty_store::intake::{IntakeError, IntakeFile, Written};
use bty_store::sidecar::install_with_sidecar;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Bytes in the file.
    pub(crate) size_bytes: u64,
    /// Their sha256, lowercase hex (the sidecar says the same).
    pub(crate) sha256: String,
}

/// Receive every chunk into a partial file, then swap it in. On any error
/// the partial is removed and an existing file of that name is untouched.
pub(crate) fn store_upload(
    image_root: &Path,
    mut request: UploadRequest,
    cap: u64,
) -> Result<Stored, UploadError> {
    let dest = image_root.join(&request.name);
    // A hidden temp name per upload with 64 random bits: concurrent uploads
    // never share bytes, the scan ignores it, nobody can plant a link under
    // it in advance (and the create is O_EXCL|O_NOFOLLOW anyway), and
    // start-up cleanup removes it after a crash.
    let partial =
        temp_path(&dest).map_err(|e| io_failed("cannot name the upload's temp file", &dest, e))?;
    let result = receive(&partial, &mut request, cap).and_then(|Written { size, sha256 }| {
        if let Some(declared) = request.size_bytes
            && declared != size
        {
            return Err(UploadError::SizeMismatch {
                name: request.name.clone(),
                size,
                declared,
            });
        }
        install_with_sidecar(&partial, &dest, &sha256)
            .map_err(|e| io_failed(format!("cannot move {} into place", request.name), &dest, e))?;
        Ok(Stored {
            size_bytes: size,
            sha256,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Refuse an upload whose declared size does not fit on the image root's
/// filesystem, before a byte is written.
fn check_space(image_root: &Path, declared: u64) -> Result<(), UploadError> {
    let free = bty_store::create::free_bytes(image_root)
        .map_err(|e| io_failed("cannot check free space", image_root, e))?;
    if declared > free {
        return Err(UploadError::NoSpace {
            root: image_root.to_owned(),
            needed: declared,
            free,
        });
    }
    Ok(())
}

/// Write and hash every chunk, then make the bytes durable: the size and
/// the hex sha256.
fn receive(partial: &Path, request: &mut UploadRequest, cap: u64) -> Result<Written, UploadError> {
    if let Some(declared) = request.size_bytes
        && declared > cap
    {
        return Err(UploadError::TooLarge { cap });
    }
    if let (Some(declared), Some(root)) = (request.size_bytes, partial.parent()) {
        check_space(root, declared)?;
    }
    let name = request.name.as_str();
    let mut intake = IntakeFile::create(partial).map_err(|e| intake_failed(name, e))?;
    tracing::debug!(name, "upload started");
    let mut size = 0u64;
    loop {
        let chunk = match request.chunks.blocking_recv() {
            Some(Some(chunk)) => chunk,
            Some(None) => break,
            None => {
                return Err(UploadError::Interrupted {
                    name: name.to_owned(),
                    size,
                });
            }
        };
        size += chunk.len() as u64;
        if size > cap {
            return Err(UploadError::TooLarge { cap });
        }
        intake.write(&chunk).map_err(|e| intake_failed(name, e))?;
    }
    // Durable before it is renamed into place.
    intake.finish().map_err(|e| intake_failed(name, e))
}

/// The error for a failed write of the upload `name`.
fn intake_failed(name: &str, source: IntakeError) -> UploadError {
    UploadError::Store {
        name: name.to_owned(),
        source: Arc::new(source),
    }
}

/// The error for failed local I/O on `path`.
fn io_failed(what: impl Into<String>, path: &Path, source: io::Error) -> UploadError {
    UploadError::Io {
        what: what.into(),
        path: path.to_owned(),
        source: Arc::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_store::digest::sha256_bytes;
    use bytes::Bytes;
    use tokio::sync::mpsc;

    fn request(size_bytes: Option<u64>) -> (UploadRequest, mpsc::Sender<Option<Bytes>>) {
        let (tx, chunks) = mpsc::channel(64);
        let request = UploadRequest {
            name: "disk.img".to_owned(),
            size_bytes,
            chunks,
        };
        (request, tx)
    }

    fn chunks(sizes: &[usize]) -> Vec<Bytes> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from((0..n).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>()))
            .collect()
    }

    #[test]
    fn stores_every_chunk_in_order_with_its_sha256() {
        let root = tempfile::tempdir().unwrap();
        let (request, tx) = request(None);
        let data = chunks(&[1, 70_000, 0, 1 << 20, 5, 3]);
        for chunk in &data {
            tx.blocking_send(Some(chunk.clone())).unwrap();
        }
        tx.blocking_send(None).unwrap();
        let uploaded = store_upload(root.path(), request, u64::MAX).unwrap();
        let want: Vec<u8> = data.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(std::fs::read(root.path().join("disk.img")).unwrap(), want);
        assert_eq!(uploaded.size_bytes, want.len() as u64);
        assert_eq!(uploaded.sha256, sha256_bytes(&want));
        let sidecar = std::fs::read_to_string(root.path().join("disk.img.sha256")).unwrap();
        assert!(sidecar.starts_with(&uploaded.sha256));
    }

    fn leftovers(root: &Path) -> Vec<String> {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// 1200 bytes uploaded into `root` under a 1000-byte cap.
    fn upload_over_the_cap(root: &Path) -> UploadError {
        let (request, tx) = request(None);
        for chunk in chunks(&[600, 600]) {
            tx.blocking_send(Some(chunk)).unwrap();
        }
        tx.blocking_send(None).unwrap();
        store_upload(root, request, 1000).unwrap_err()
    }

    #[test]
    fn over_the_cap_fails_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let err = upload_over_the_cap(root.path());
        assert!(matches!(err, UploadError::TooLarge { cap: 1000 }), "{err}");
        assert!(leftovers(root.path()).is_empty());
    }

    #[test]
    fn a_failed_upload_leaves_an_existing_file_of_that_name_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("disk.img"), b"old").unwrap();
        let err = upload_over_the_cap(root.path());
        assert!(matches!(err, UploadError::TooLarge { cap: 1000 }), "{err}");
        assert_eq!(leftovers(root.path()), ["disk.img"]);
        assert_eq!(std::fs::read(root.path().join("disk.img")).unwrap(), b"old");
    }

    #[test]
    fn a_sender_gone_without_the_end_marker_aborts() {
        let root = tempfile::tempdir().unwrap();
        let (request, tx) = request(None);
        tx.blocking_send(Some(Bytes::from_static(b"partial")))
            .unwrap();
        drop(tx);
        let err = store_upload(root.path(), request, u64::MAX).unwrap_err();
        assert!(
            err.to_string().contains("interrupted after 7 bytes"),
            "{err}"
        );
        assert!(leftovers(root.path()).is_empty());
    }

    #[test]
    fn a_declared_size_past_the_free_space_is_refused_before_writing() {
        let root = tempfile::tempdir().unwrap();
        let (request, _tx) = request(Some(1 << 60));
        let err = store_upload(root.path(), request, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("bytes needed"), "{err}");
        assert!(leftovers(root.path()).is_empty());
    }

    #[test]
    fn a_short_upload_against_its_declared_size_fails() {
        let root = tempfile::tempdir().unwrap();
        let (request, tx) = request(Some(10));
        tx.blocking_send(Some(Bytes::from_static(b"12345")))
            .unwrap();
        tx.blocking_send(None).unwrap();
        let err = store_upload(root.path(), request, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("10 were declared"), "{err}");
        assert!(leftovers(root.path()).is_empty());
    }
}
