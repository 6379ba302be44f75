//! Uploads: a stream of chunks into a hidden temp file in the image root,
//! hashed inline, size-capped, then swapped in atomically with its sidecar.
//! Runs on the blocking pool; the gRPC stream feeds it through a channel.

use super::error::DownloaderError;
use super::messages::{UploadRequest, Uploaded};
use bty_store::digest::to_hex;
use bty_store::sidecar::install_with_sidecar;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Receive every chunk into a partial file, then swap it in. On any error
/// the partial is removed and an existing file of that name is untouched.
pub(crate) fn store_upload(
    image_root: &Path,
    mut request: UploadRequest,
    cap: u64,
) -> Result<Uploaded, DownloaderError> {
    let dest = image_root.join(&request.name);
    // A hidden temp name per upload: concurrent uploads never share bytes,
    // the scan ignores it, and start-up cleanup removes it after a crash.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = image_root.join(format!(".{}.tmp-{}-{n}", request.name, std::process::id()));
    let result = receive(&partial, &mut request, cap).and_then(|(size, sha256)| {
        if let Some(declared) = request.size_bytes
            && declared != size
        {
            return Err(DownloaderError::Invalid(format!(
                "upload of {} ended after {size} bytes, {declared} were declared",
                request.name
            )));
        }
        install_with_sidecar(&partial, &dest, &sha256).map_err(|e| {
            DownloaderError::Io(format!("cannot move {} into place: {e}", request.name))
        })?;
        Ok(Uploaded {
            name: request.name.clone(),
            size_bytes: size,
            sha256,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn receive(
    partial: &Path,
    request: &mut UploadRequest,
    cap: u64,
) -> Result<(u64, String), DownloaderError> {
    if let Some(declared) = request.size_bytes
        && declared > cap
    {
        return Err(DownloaderError::TooLarge { cap });
    }
    let io =
        |e: std::io::Error| DownloaderError::Io(format!("cannot write {}: {e}", partial.display()));
    let mut file = File::create(partial).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        match request.chunks.blocking_recv() {
            Some(Some(chunk)) => {
                size += chunk.len() as u64;
                if size > cap {
                    return Err(DownloaderError::TooLarge { cap });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(io)?;
            }
            Some(None) => break,
            None => {
                return Err(DownloaderError::Invalid(format!(
                    "upload of {} was interrupted after {size} bytes",
                    request.name
                )));
            }
        }
    }
    file.sync_all().map_err(io)?;
    Ok((size, to_hex(&hasher.finalize())))
}
