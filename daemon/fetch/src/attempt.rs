//! One HTTP attempt of a download: ask for the missing bytes (with `Range` +
//! `If-Range` when resuming), decide whether the answer continues the
//! partial file or replaces it, and pump the body into the sink.

use std::time::Duration;

use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoint;
use crate::error::FetchError;
use crate::exchange::Wire;
use crate::request::{FetchRequest, Progress};
use crate::retry::FetchOptions;
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

impl Job<'_> {
    fn wire(&self) -> Wire<'_> {
        Wire {
            url: &self.req.url,
            opts: self.opts,
            cancel: self.cancel,
        }
    }
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

    let wire = job.wire();
    let entity = s.entity.as_ref().filter(|_| resuming);
    let rb = wire.get(job.client, &job.req.headers, entity.map(|e| (offset, e)));
    let mut resp = wire.send(rb).await?;

    match resp.status() {
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
            let entity = wire.full_entity(&resp, job.req.expected_size)?;
            store_checkpoint(job, &entity).await?;
            s.entity = Some(entity);
        }
        StatusCode::RANGE_NOT_SATISFIABLE if resuming => {
            s.restart("server refused the range", url).await?;
            return Ok(Outcome::Restart);
        }
        _ => return Err(wire.refused(&resp)),
    }
    let cap = wire.cap(job.req.expected_size);
    wire.check_cap(cap, s.total())?;
    check_space(job, s)?;
    s.report(job);
    pump(job, s, &mut resp, cap).await?;
    Ok(Outcome::Complete)
}

/// Refuse to start (or go on) when the partial's filesystem has less room
/// than the rest of a file of known size needs.
fn check_space(job: &Job<'_>, s: &Session) -> Result<(), FetchError> {
    match s.total().or(job.req.expected_size) {
        Some(total) => ensure_space(&job.req.partial, total, s.sink.len()),
        None => Ok(()),
    }
}

/// `Err(NoSpace)` when the filesystem holding `partial` has less room than
/// the `total - have` bytes still to come.
pub(crate) fn ensure_space(
    partial: &std::path::Path,
    total: u64,
    have: u64,
) -> Result<(), FetchError> {
    let needed = total.saturating_sub(have);
    let dir = match partial.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let free = bty_store::create::free_bytes(dir).map_err(FetchError::io(dir))?;
    if needed > free {
        return Err(FetchError::NoSpace {
            dir: dir.to_owned(),
            needed,
            free,
        });
    }
    Ok(())
}

/// Copy the body into the sink, watching for cancel, stalls and length.
async fn pump(
    job: &Job<'_>,
    s: &mut Session,
    resp: &mut reqwest::Response,
    cap: Option<u64>,
) -> Result<(), FetchError> {
    let wire = job.wire();
    let limit = s.total().or(job.req.expected_size);
    let mut reported = s.sink.len();
    while let Some(chunk) = wire.next_chunk(resp).await? {
        let len = chunk.len() as u64;
        s.transferred += len;
        wire.check_cap(cap, Some(s.sink.len() + len))?;
        if let Some(limit) = limit
            && s.sink.len() + len > limit
        {
            return Err(wire.length(limit, s.sink.len() + len));
        }
        s.sink.write(&chunk).await?;
        if s.sink.len() - reported >= PROGRESS_STEP {
            reported = s.sink.len();
            s.report(job);
        }
    }
    match limit {
        Some(expected) if s.sink.len() < expected => Err(wire.length(expected, s.sink.len())),
        _ => Ok(()),
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
