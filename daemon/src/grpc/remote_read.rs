//! `StatImage` / `ReadImage` of a catalog entry with no local copy: the
//! bytes come from its source (http(s) or the registry) through the
//! downloader, as for a streamed flash, so PXE clients and other servers
//! can fetch any row through btyd (`GET /images/{key}/{name}`).
//!
//! A read of the whole body is checked against the entry's digest (its
//! pin, or the registry's layer digest) as it passes: a mismatch ends the
//! stream with an error instead of its last bytes, so a client never gets
//! a clean end of a wrong image. Once such a read completed, the entry is
//! fetched into the cache as an ordinary download job (verified, atomic),
//! and later reads are served from the local copy. A ranged read asks the
//! source for that range only; no digest covers it.

use crate::actors::catalog::CatalogHandle;
use crate::actors::downloader::{DownloaderHandle, RemoteStream};
use crate::domain::DownloadSpec;
use bty_proto::v1::{self, image_chunk::Part};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::Status;

/// Chunks queued towards the client.
const QUEUE: usize = 16;

/// An entry to read from its source, and what a client is told about it.
pub(crate) struct RemoteImage {
    spec: DownloadSpec,
    pub(crate) stat: v1::ImageStat,
}

/// The entry `key` names, if it has a remote source, described for a
/// client: its size from the catalog, or else from the source (a HEAD, or
/// the registry's manifest).
pub(crate) async fn stat_remote(
    catalog: &CatalogHandle,
    downloader: &DownloaderHandle,
    key: &str,
) -> Result<RemoteImage, Status> {
    let spec = catalog.download_spec(key, false).await?;
    let size = match spec.size_bytes {
        Some(size) => size,
        None => {
            // Opening asks the source for its size; the stream is dropped
            // at once (the transfer stops).
            let probe = open(downloader, &spec, 0).await?;
            probe.size.ok_or_else(|| {
                Status::failed_precondition(format!(
                    "{} declares no size: fetch it first (btyctl fetch)",
                    spec.src
                ))
            })?
        }
    };
    let stat = v1::ImageStat {
        file_name: spec.cache_file_name.clone(),
        size_bytes: size,
        sha256: spec.pinned_sha256.clone(),
        format: bty_store::format::format_from_name(&spec.cache_file_name)
            .map(|f| f.as_str().to_owned()),
        modified_ms: 0,
    };
    Ok(RemoteImage { spec, stat })
}

async fn open(
    downloader: &DownloaderHandle,
    spec: &DownloadSpec,
    from: u64,
) -> Result<RemoteStream, Status> {
    Ok(downloader
        .open_stream_from(
            &spec.src,
            spec.pinned_sha256.clone(),
            spec.sha_url.clone(),
            Some(spec.cache_file_name.clone()),
            from,
        )
        .await?)
}

/// Stream `length` bytes (0: to the end) of `image` from `offset`: the stat
/// first, then the data.
pub(crate) async fn read_remote(
    image: RemoteImage,
    downloader: DownloaderHandle,
    offset: u64,
    length: u64,
) -> Result<mpsc::Receiver<Result<v1::ImageChunk, Status>>, Status> {
    let size = image.stat.size_bytes;
    if offset >= size && size > 0 {
        return Err(Status::out_of_range(format!(
            "offset {offset} is past the end ({size} bytes)"
        )));
    }
    let want = if length == 0 {
        size - offset
    } else {
        length.min(size - offset)
    };
    let whole = offset == 0 && want == size;
    let mut stream = open(&downloader, &image.spec, offset).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let first = v1::ImageChunk {
        part: Some(Part::Stat(image.stat.clone())),
    };
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        let expected = stream.sha256.clone().filter(|_| whole);
        match pump(&mut stream, &tx, want, expected).await {
            Ok(()) if whole => {
                drop(stream);
                // The client has the whole image: keep a copy for the next
                // one, fetched and verified as any download.
                match downloader.fetch(image.spec).await {
                    Ok(job) => tracing::info!(job = job.id, "streamed through; caching it"),
                    Err(e) => {
                        tracing::info!(error = %bty_store::chain::Chain(&e), "streamed through; not cached")
                    }
                }
            }
            Ok(()) => {}
            Err(status) => {
                let _ = tx.send(Err(status)).await;
            }
        }
    });
    Ok(rx)
}

/// Hand on `want` bytes; with `expected`, the whole body must hash to it.
async fn pump(
    stream: &mut RemoteStream,
    tx: &mpsc::Sender<Result<v1::ImageChunk, Status>>,
    want: u64,
    expected: Option<String>,
) -> Result<(), Status> {
    let mut hasher = expected.as_ref().map(|_| Sha256::new());
    let mut sent = 0u64;
    while sent < want {
        let Some(chunk) = stream.body.next_chunk().await else {
            return Err(Status::data_loss(format!(
                "the source ended after {sent} of {want} bytes"
            )));
        };
        let mut chunk =
            chunk.map_err(|e| Status::unavailable(format!("the source failed: {e}")))?;
        chunk.truncate(usize::try_from(want - sent).unwrap_or(usize::MAX));
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&chunk);
        }
        let last = sent + chunk.len() as u64 == want;
        if last && let (Some(hasher), Some(expected)) = (hasher.take(), expected.as_ref()) {
            // Held back until checked: the last bytes of a wrong image
            // never reach the client.
            let got = bty_dio::sha256::to_hex(&hasher.finalize());
            if &got != expected {
                return Err(Status::data_loss(format!(
                    "the source's bytes have sha256 {got}, not {expected}"
                )));
            }
        }
        sent += chunk.len() as u64;
        let message = v1::ImageChunk {
            part: Some(Part::Data(chunk)),
        };
        if tx.send(Ok(message)).await.is_err() {
            // The client went away: dropping the stream stops the transfer.
            return Ok(());
        }
    }
    Ok(())
}
