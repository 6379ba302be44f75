//! One HTTP attempt of a download: ask for the missing bytes (with `Range` +
//! `If-Range` when resuming), decide whether the answer continues the
//! partial file or replaces it, and pump the body into the sink.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{IF_RANGE, RANGE};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoint;
use crate::error::FetchError;
use crate::request::{FetchRequest, Progress};
use crate::retry::{self, FetchOptions};
use crate::sink::PartialSink;

/// Minimum growth between two progress reports.
const PROGRESS_STEP: u64 = 1 << 20;

/// The fixed inputs of one `fetch` call.
pub(crate) struct Job<'a> {
    pub(crate) client: &'a reqwest::Client,
    pub(crate) req: &'a FetchRequest,
    pub(crate) opts: &'a FetchOptions,
    pub(crate) progress: &'a (dyn Fn(Progress) + Send + Sync),
    pub(crate) cancel: &'a CancellationToken,
}

/// What carries over from one attempt to the next.
pub(crate) struct Session {
    pub(crate) sink: PartialSink,
    /// The entity the partial bytes belong to, once known.
    pub(crate) entity: Option<Checkpoint>,
    pub(crate) transferred: u64,
    pub(crate) restarts: u32,
    pub(crate) attempt: u32,
}

impl Session {
    /// The whole file's size, when known.
    pub(crate) fn total(&self) -> Option<u64> {
        self.entity.as_ref().and_then(|e| e.total)
    }

    /// Report progress to the caller.
    pub(crate) fn report(&self, job: &Job<'_>) {
        (job.progress)(Progress {
            bytes_done: self.sink.len(),
            bytes_total: self.total().or(job.req.expected_size),
            attempt: self.attempt,
        });
    }

    /// Throw the partial bytes away and forget their entity.
    async fn restart(&mut self, why: &'static str, url: &str) -> Result<(), FetchError> {
        tracing::info!(
            url,
            discarded = self.sink.len(),
            why,
            "restarting download from byte 0"
        );
        self.sink.truncate().await?;
        self.entity = None;
        self.restarts += 1;
        Ok(())
    }
}

/// How an attempt ended when it did not fail.
pub(crate) enum Outcome {
    /// All bytes are in the sink.
    Complete,
    /// The partial was discarded; try again at once from byte 0.
    Restart,
}

/// A failed attempt, with the server's `Retry-After` if it sent one.
pub(crate) struct Failure {
    pub(crate) error: FetchError,
    pub(crate) retry_after: Option<Duration>,
}

impl From<FetchError> for Failure {
    fn from(error: FetchError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// Run one request and pump its body into `s.sink`.
pub(crate) async fn attempt(job: &Job<'_>, s: &mut Session) -> Result<Outcome, Failure> {
    let url = job.req.url.as_str();
    let offset = s.sink.len();
    if offset > 0 {
        match s.total() {
            // A previous run got every byte but stopped before the rename.
            Some(total) if offset == total => return Ok(Outcome::Complete),
            Some(total) if offset > total => {
                s.restart("partial longer than the entity", url).await?;
                return Ok(Outcome::Restart);
            }
            _ => {}
        }
    }
    let resuming = offset > 0 && s.entity.as_ref().is_some_and(Checkpoint::can_resume);
    if offset > 0 && !resuming {
        s.restart("server cannot resume this entity", url).await?;
    }

    let mut rb = job.client.get(url).headers(job.req.headers.clone());
    if resuming {
        rb = rb.header(RANGE, format!("bytes={offset}-"));
        if let Some(validator) = s.entity.as_ref().and_then(Checkpoint::validator) {
            rb = rb.header(IF_RANGE, validator);
        }
    }
    let mut resp = tokio::select! {
        biased;
        () = job.cancel.cancelled() => return Err(FetchError::Cancelled.into()),
        r = tokio::time::timeout(job.opts.stall_timeout, rb.send()) => match r {
            Err(_) => return Err(stalled(job).into()),
            Ok(Err(e)) => return Err(FetchError::transport(url, e).into()),
            Ok(Ok(resp)) => resp,
        },
    };

    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT if resuming => {
            let continued = s
                .entity
                .as_mut()
                .is_some_and(|e| e.continued_by(resp.headers(), offset, job.req.expected_size));
            if !continued {
                s.restart("206 does not continue the partial", url).await?;
                return Ok(Outcome::Restart);
            }
            tracing::debug!(url, offset, "resuming download");
        }
        StatusCode::OK => {
            if s.sink.len() > 0 {
                // The server ignored Range, or If-Range failed: new entity.
                s.restart("server sent the whole entity", url).await?;
            }
            let entity = Checkpoint::from_full_response(url, resp.headers());
            if let (Some(expected), Some(declared)) = (job.req.expected_size, entity.total)
                && expected != declared
            {
                return Err(FetchError::SizeMismatch {
                    url: url.to_owned(),
                    expected,
                    declared,
                }
                .into());
            }
            store_checkpoint(job, &entity).await?;
            s.entity = Some(entity);
        }
        StatusCode::RANGE_NOT_SATISFIABLE if resuming => {
            s.restart("server refused the range", url).await?;
            return Ok(Outcome::Restart);
        }
        s if s.is_success() => {
            return Err(FetchError::Protocol {
                url: url.to_owned(),
                detail: "unexpected success status for a download",
            }
            .into());
        }
        status => {
            return Err(Failure {
                retry_after: retry::retry_after(resp.headers()),
                error: FetchError::Http {
                    url: url.to_owned(),
                    status,
                },
            });
        }
    }
    s.report(job);
    pump(job, s, &mut resp).await?;
    Ok(Outcome::Complete)
}

/// Copy the body into the sink, watching for cancel, stalls and length.
async fn pump(
    job: &Job<'_>,
    s: &mut Session,
    resp: &mut reqwest::Response,
) -> Result<(), FetchError> {
    let url = job.req.url.as_str();
    let limit = s.total().or(job.req.expected_size);
    let mut reported = s.sink.len();
    loop {
        let next = tokio::select! {
            biased;
            () = job.cancel.cancelled() => return Err(FetchError::Cancelled),
            r = tokio::time::timeout(job.opts.stall_timeout, resp.chunk()) => r,
        };
        let chunk = match next {
            Err(_) => return Err(stalled(job)),
            Ok(Err(e)) => return Err(FetchError::transport(url, e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        let len = chunk.len() as u64;
        s.transferred += len;
        if let Some(limit) = limit
            && s.sink.len() + len > limit
        {
            return Err(FetchError::Length {
                url: url.to_owned(),
                expected: limit,
                got: s.sink.len() + len,
            });
        }
        s.sink.write(&chunk).await?;
        if s.sink.len() - reported >= PROGRESS_STEP {
            reported = s.sink.len();
            s.report(job);
        }
    }
    match limit {
        Some(expected) if s.sink.len() < expected => Err(FetchError::Length {
            url: url.to_owned(),
            expected,
            got: s.sink.len(),
        }),
        _ => Ok(()),
    }
}

fn stalled(job: &Job<'_>) -> FetchError {
    FetchError::Stalled {
        url: job.req.url.clone(),
        after: job.opts.stall_timeout,
    }
}

/// Persist what the partial now holds, before any of its bytes are written.
async fn store_checkpoint(job: &Job<'_>, entity: &Checkpoint) -> Result<(), FetchError> {
    let Some(path) = job.req.checkpoint.clone() else {
        return Ok(());
    };
    let entity = entity.clone();
    let err_path = path.clone();
    tokio::task::spawn_blocking(move || entity.store(&path))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(FetchError::io(&err_path))
}
