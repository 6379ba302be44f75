//! The pieces of one HTTP exchange that a download attempt and a stream
//! attempt share: the (ranged) GET, sending it and reading body chunks
//! under the stall timeout and cancel, and turning statuses into failures.

use bytes::Bytes;
use reqwest::header::{HeaderMap, IF_RANGE, RANGE};
use tokio_util::sync::CancellationToken;

use crate::attempt::Failure;
use crate::checkpoint::Checkpoint;
use crate::error::FetchError;
use crate::retry::{self, FetchOptions};

/// The fixed context of every request and read of one transfer.
pub(crate) struct Wire<'a> {
    pub(crate) url: &'a str,
    pub(crate) opts: &'a FetchOptions,
    pub(crate) cancel: &'a CancellationToken,
}

impl Wire<'_> {
    /// GET the URL; from `offset` on (`Range`, plus `If-Range` when the
    /// entity has a validator) when `resume_from` names the entity.
    pub(crate) fn get(
        &self,
        client: &reqwest::Client,
        headers: &HeaderMap,
        resume_from: Option<(u64, &Checkpoint)>,
    ) -> reqwest::RequestBuilder {
        let mut rb = client.get(self.url).headers(headers.clone());
        if let Some((offset, entity)) = resume_from {
            rb = rb.header(RANGE, format!("bytes={offset}-"));
            if let Some(validator) = entity.validator() {
                rb = rb.header(IF_RANGE, validator);
            }
        }
        rb
    }

    /// Send `rb` and wait for the response head.
    pub(crate) async fn send(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FetchError> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(FetchError::Cancelled),
            r = tokio::time::timeout(self.opts.stall_timeout, rb.send()) => match r {
                Err(_) => Err(self.stalled()),
                Ok(Err(e)) => Err(FetchError::transport(self.url, e)),
                Ok(Ok(resp)) => Ok(resp),
            },
        }
    }

    /// The next chunk of the body; `None` at its end.
    pub(crate) async fn next_chunk(
        &self,
        resp: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, FetchError> {
        let next = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(FetchError::Cancelled),
            r = tokio::time::timeout(self.opts.stall_timeout, resp.chunk()) => r,
        };
        match next {
            Err(_) => Err(self.stalled()),
            Ok(Err(e)) => Err(FetchError::transport(self.url, e)),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    /// The entity of a full (`200`) response, which must have the expected
    /// size when both are known.
    pub(crate) fn full_entity(
        &self,
        resp: &reqwest::Response,
        expected_size: Option<u64>,
    ) -> Result<Checkpoint, FetchError> {
        let entity = Checkpoint::from_full_response(self.url, resp.headers());
        match (expected_size, entity.total) {
            (Some(expected), Some(declared)) if expected != declared => {
                Err(FetchError::SizeMismatch {
                    url: self.url.to_owned(),
                    expected,
                    declared,
                })
            }
            _ => Ok(entity),
        }
    }

    /// A response that is not a usable success: an unexpected success
    /// status is a protocol error, anything else an HTTP error (with the
    /// server's `Retry-After`).
    pub(crate) fn refused(&self, resp: &reqwest::Response) -> Failure {
        let status = resp.status();
        if status.is_success() {
            return self
                .protocol("unexpected success status for a download")
                .into();
        }
        Failure {
            retry_after: retry::retry_after(resp.headers()),
            error: FetchError::Http {
                url: self.url.to_owned(),
                status,
            },
        }
    }

    /// The size limit for a body of this request, when it has one: none
    /// when the caller pinned the size (the length check covers that).
    pub(crate) fn cap(&self, expected_size: Option<u64>) -> Option<u64> {
        match expected_size {
            Some(_) => None,
            None => self.opts.max_size,
        }
    }

    /// Refuse `declared` (a server's `Content-Length`) or `got` bytes when
    /// they pass `cap`.
    pub(crate) fn check_cap(&self, cap: Option<u64>, size: Option<u64>) -> Result<(), FetchError> {
        match (cap, size) {
            (Some(cap), Some(size)) if size > cap => Err(FetchError::OverCap {
                url: self.url.to_owned(),
                cap,
            }),
            _ => Ok(()),
        }
    }

    /// A body longer (or shorter) than `expected`.
    pub(crate) fn length(&self, expected: u64, got: u64) -> FetchError {
        FetchError::Length {
            url: self.url.to_owned(),
            expected,
            got,
        }
    }

    pub(crate) fn protocol(&self, detail: &'static str) -> FetchError {
        FetchError::Protocol {
            url: self.url.to_owned(),
            detail,
        }
    }

    fn stalled(&self) -> FetchError {
        FetchError::Stalled {
            url: self.url.to_owned(),
            after: self.opts.stall_timeout,
        }
    }
}
