//! Small documents (catalogs, manifests, tokens) read into memory under a
//! size cap, with the same retry policy as file downloads.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::checkpoint::content_length;
use crate::error::FetchError;
use crate::retry::{self, FetchOptions};

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
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (error, retry_after) = match tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(FetchError::Cancelled),
            r = attempt(client, url, headers, cap, opts) => r,
        } {
            Ok(doc) => return Ok(doc),
            Err(failure) => failure,
        };
        if !error.is_transient() {
            return Err(error);
        }
        if attempts >= opts.max_attempts {
            return Err(FetchError::RetriesExhausted {
                url: url.to_owned(),
                attempts,
                last: Box::new(error),
            });
        }
        let delay = opts.backoff(attempts, retry_after);
        tracing::warn!(url, attempts, error = %error, ?delay, "document fetch failed; retrying");
        retry::wait(delay, cancel).await?;
    }
}

/// One GET, read under the cap.
async fn attempt(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    cap: usize,
    opts: &FetchOptions,
) -> Result<Document, (FetchError, Option<std::time::Duration>)> {
    let stalled = || FetchError::Stalled {
        url: url.to_owned(),
        after: opts.stall_timeout,
    };
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        cap,
    };
    let send = client.get(url).headers(headers.clone()).send();
    let mut resp = match tokio::time::timeout(opts.stall_timeout, send).await {
        Err(_) => return Err((stalled(), None)),
        Ok(Err(e)) => return Err((FetchError::transport(url, e), None)),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    if !status.is_success() {
        let error = FetchError::Http {
            url: url.to_owned(),
            status,
        };
        return Err((error, retry::retry_after(resp.headers())));
    }
    let declared = content_length(resp.headers());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err((too_large(), None));
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        let chunk = match tokio::time::timeout(opts.stall_timeout, resp.chunk()).await {
            Err(_) => return Err((stalled(), None)),
            Ok(Err(e)) => return Err((FetchError::transport(url, e), None)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > cap {
            return Err((too_large(), None));
        }
        body.extend_from_slice(&chunk);
    }
    if let Some(expected) = declared.filter(|n| *n != body.len() as u64) {
        let got = body.len() as u64;
        return Err((
            FetchError::Length {
                url: url.to_owned(),
                expected,
                got,
            },
            None,
        ));
    }
    Ok(Document {
        status,
        url: resp.url().to_string(),
        headers: resp.headers().clone(),
        body,
    })
}
