//! Small documents (catalogs, manifests, tokens) read into memory under a
//! size cap, with the same retry policy as file downloads.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::attempt::Failure;
use crate::checkpoint::content_length;
use crate::error::FetchError;
use crate::exchange::Wire;
use crate::retry::{self, Budget, FetchOptions};

/// A small response read whole.
#[derive(Debug, Clone)]
pub struct Document {
    /// The final status (a success).
    pub status: StatusCode,
    /// The final URL, after redirects.
    pub url: String,
    /// Response headers (e.g. `Content-Type`, `Docker-Content-Digest`).
    pub headers: HeaderMap,
    /// The body, at most the cap.
    pub body: Vec<u8>,
}

/// GET `url` and return its body, refusing bodies over `cap` bytes (at most
/// `cap + 1` are read). Transient failures are retried as in
/// [`fetch`](crate::fetch) with [`FetchOptions::default`].
pub async fn fetch_bytes(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    cap: usize,
) -> Result<Vec<u8>, FetchError> {
    let never = tokio_util::sync::CancellationToken::new();
    fetch_document(client, url, headers, cap, &FetchOptions::default(), &never)
        .await
        .map(|d| d.body)
}

/// [`fetch_bytes`] with explicit options and cancel, returning the headers
/// and final URL too. A non-success status fails with
/// [`FetchError::Http`] (after retries if it is transient).
pub async fn fetch_document(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    cap: usize,
    opts: &FetchOptions,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Document, FetchError> {
    let wire = Wire { url, opts, cancel };
    let mut budget = Budget::new(0);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let Failure { error, retry_after } = match attempt(client, &wire, headers, cap).await {
            Ok(doc) => return Ok(doc),
            Err(failure) => failure,
        };
        let delay = budget.next_wait(opts, url, 0, attempts, error, retry_after)?;
        retry::wait(delay, cancel).await?;
    }
}

/// One GET, read under the cap.
async fn attempt(
    client: &reqwest::Client,
    wire: &Wire<'_>,
    headers: &HeaderMap,
    cap: usize,
) -> Result<Document, Failure> {
    let too_large = || FetchError::TooLarge {
        url: wire.url.to_owned(),
        cap,
    };
    let mut resp = wire.send(wire.get(client, headers, None)).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(wire.refused(&resp));
    }
    let declared = content_length(resp.headers());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_large().into());
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = wire.next_chunk(&mut resp).await? {
        if body.len() + chunk.len() > cap {
            return Err(too_large().into());
        }
        body.extend_from_slice(&chunk);
    }
    if let Some(expected) = declared.filter(|n| *n != body.len() as u64) {
        return Err(wire.length(expected, body.len() as u64).into());
    }
    Ok(Document {
        status,
        url: resp.url().to_string(),
        headers: resp.headers().clone(),
        body,
    })
}
