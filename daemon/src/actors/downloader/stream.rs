//! Remote images opened as a stream for the flasher: the source is
//! resolved like a download's, then a task pulls the body into a bounded
//! channel that the flash pipeline reads on its own thread. Nothing lands
//! in the image root.

use super::error::{DownloaderError, StreamError};
use super::messages::OpenStreamRequest;
use super::signed_sums::HttpTrust;
use super::source::{Checks, remote_source};
use bty_fetch::{BodyReader, FetchError, FetchOptions, StreamRequest, StreamState};
use bty_oci::OciClient;
use bty_store::chain::chain;
use std::io;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A remote image being streamed.
#[derive(Debug)]
pub struct RemoteStream {
    /// The bytes, in order; a failed transfer ends it with an error.
    pub body: BodyReader,
    /// What the whole body must hash to: the pinned sha256 or the registry
    /// layer digest (hex). The reader checks it, as only it sees every byte.
    pub sha256: Option<String>,
    /// The body's size, when the server or registry declared it.
    pub size: Option<u64>,
    /// A file name for the image (format hints, job subject).
    pub name: String,
}

/// Everything a stream task needs.
pub(crate) struct StreamContext {
    pub(crate) http: reqwest::Client,
    pub(crate) oci: OciClient,
    pub(crate) options: FetchOptions,
    pub(crate) http_trust: HttpTrust,
}

/// Resolve `src` and start pulling it; returns once the first bytes
/// arrived, so a refused request (404, bad token) fails here, not later.
pub(crate) async fn open_stream(
    ctx: StreamContext,
    request: OpenStreamRequest,
) -> Result<RemoteStream, DownloaderError> {
    let OpenStreamRequest {
        src,
        pinned_sha256,
        sha_url,
        name,
        from,
    } = request;
    let (src, pinned_sha256, sha_url) =
        (src.as_str(), pinned_sha256.as_deref(), sha_url.as_deref());
    let checks = Checks {
        http: ctx.http.clone(),
        oci: ctx.oci.clone(),
        http_trust: ctx.http_trust.clone(),
    };
    let source = remote_source(&checks, src, pinned_sha256, sha_url).await?;
    let name = name
        .or_else(|| source.title.clone())
        .unwrap_or_else(|| last_segment(src));
    // The size up front lets the flasher refuse a too-small disk before
    // writing (a registry declares it; an http server answers a HEAD).
    let size = match source.expected_size {
        Some(size) => Some(size),
        None => bty_fetch::probe(&ctx.http, &source.url, &source.headers)
            .await
            .map_err(|e| tracing::debug!(src, error = %e, "no size from a HEAD probe"))
            .ok()
            .and_then(|meta| meta.size),
    };
    // A length only the server declared is held to the size limit here;
    // the stream then holds the body to that length.
    if source.expected_size.is_none()
        && let (Some(size), Some(cap)) = (size, ctx.options.max_size)
        && size > cap
    {
        let over = FetchError::OverCap {
            url: source.url.clone(),
            cap,
        };
        return Err(DownloaderError::Stream {
            src: src.to_owned(),
            source: over.into(),
        });
    }
    let mut state = match (from, size) {
        (0, _) => StreamState::default(),
        (from, Some(size)) if from < size => StreamState::starting_at(&source.url, from, size),
        (from, size) => {
            return Err(DownloaderError::Stream {
                src: src.to_owned(),
                source: StreamError::NoRange { from, size },
            });
        }
    };
    let (tx, mut body) = bty_fetch::body_channel();
    let request = StreamRequest {
        url: source.url.clone(),
        headers: source.headers.clone(),
        expected_size: size,
    };
    let oras = source.oras.clone().map(|r| (r, source.digest.clone()));
    tokio::spawn(async move {
        let result = tokio::select! {
            // The flash ended or was cancelled: stop pulling at once.
            () = tx.closed() => return,
            r = pull(&ctx, request, &mut state, oras, &tx) => r,
        };
        if let Err(e) = result {
            let _ = tx.send(Err(io::Error::other(chain(&e)))).await;
        }
    });
    body.ready().await.map_err(|e| DownloaderError::Stream {
        src: src.to_owned(),
        source: StreamError::Body(e),
    })?;
    Ok(RemoteStream {
        body,
        // A digest covers the whole body only.
        sha256: source.expected_sha256.filter(|_| from == 0),
        size,
        name,
    })
}

/// Stream until done; a registry token that expired mid-stream is renewed
/// and the stream continues where it stopped (bounded, so a real 401 fails).
async fn pull(
    ctx: &StreamContext,
    mut request: StreamRequest,
    state: &mut StreamState,
    oras: Option<(bty_store::oras_ref::OrasRef, String)>,
    tx: &mpsc::Sender<io::Result<bytes::Bytes>>,
) -> Result<(), FetchError> {
    let cancel = CancellationToken::new();
    let mut refreshes = 0;
    loop {
        match bty_fetch::stream(&ctx.http, &request, state, &ctx.options, &cancel, tx).await {
            Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) && refreshes < 3 => {
                let Some((reference, digest)) = oras.as_ref() else {
                    return Err(e);
                };
                refreshes += 1;
                let Ok((url, headers)) = ctx.oci.blob_request(reference, digest).await else {
                    return Err(e);
                };
                request.url = url;
                request.headers = headers;
            }
            other => return other,
        }
    }
}

/// The last path segment of a URL or reference, without query or tag.
fn last_segment(src: &str) -> String {
    let path = src.split(['?', '#']).next().unwrap_or(src);
    let last = path.rsplit('/').next().unwrap_or(path);
    let last = last.split(['@', ':']).next().unwrap_or(last);
    if last.is_empty() {
        "image".to_owned()
    } else {
        last.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::last_segment;

    #[test]
    fn names_an_image_by_its_last_path_segment() {
        assert_eq!(
            last_segment("https://h/a/debian.img.zst?x=1"),
            "debian.img.zst"
        );
        assert_eq!(last_segment("oras://reg:5000/lab/disk:v1"), "disk");
        assert_eq!(last_segment("https://h/"), "image");
    }
}
