//! `stream`: the body of a URL handed on in order, chunk by chunk, without
//! landing on disk (a flash straight from the network). Transient failures
//! resume from the next byte not yet handed on, with `Range` + `If-Range`;
//! a stream cannot start over, so a changed entity is an error.

use std::io;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::attempt::Failure;
use crate::checkpoint::Checkpoint;
use crate::error::FetchError;
use crate::exchange::Wire;
use crate::retry::{self, Budget, FetchOptions};

/// What to stream.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    /// The URL to GET (http or https); redirects are followed.
    pub url: String,
    /// Extra request headers, e.g. `Authorization` for a registry blob.
    pub headers: HeaderMap,
    /// The size the whole body must have.
    pub expected_size: Option<u64>,
}

/// Where a stream stands: bytes handed on and the entity they belong to.
/// Kept by the caller across [`stream`] calls, so a call with fresh
/// headers (a renewed registry token) continues where the last one stopped.
#[derive(Debug, Default)]
pub struct StreamState {
    offset: u64,
    entity: Option<Checkpoint>,
    attempts: u32,
}

impl StreamState {
    /// A stream of the bytes of `url` from `offset` on, the whole body being
    /// `total` bytes: the first request asks for `bytes=offset-` and must
    /// get a `206` that starts there (a server that ignores ranges fails
    /// the stream rather than send bytes from the start).
    pub fn starting_at(url: &str, offset: u64, total: u64) -> Self {
        Self {
            offset,
            entity: Some(Checkpoint {
                url: url.to_owned(),
                etag: None,
                last_modified: None,
                total: Some(total),
                accepts_ranges: true,
            }),
            attempts: 0,
        }
    }

    /// Bytes handed on so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The body's size, once the server declared it.
    pub fn total(&self) -> Option<u64> {
        self.entity.as_ref().and_then(|e| e.total)
    }
}

/// Send the body of `req.url` to `out`, in order, from `state.offset()` on.
///
/// Transient failures are retried with backoff like [`fetch`](crate::fetch)
/// does, each retry asking for the rest with `Range` + `If-Range`. The
/// length must match `Content-Length`/`Content-Range` and
/// `req.expected_size`. Returns [`FetchError::Cancelled`] on `cancel` or
/// when the receiver is gone; verifying a digest is the receiver's job, as
/// only it sees every byte.
pub async fn stream(
    client: &reqwest::Client,
    req: &StreamRequest,
    state: &mut StreamState,
    opts: &FetchOptions,
    cancel: &CancellationToken,
    out: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), FetchError> {
    let wire = Wire {
        url: &req.url,
        opts,
        cancel,
    };
    let mut budget = Budget::new(state.offset);
    loop {
        if cancel.is_cancelled() {
            return Err(FetchError::Cancelled);
        }
        state.attempts += 1;
        let Failure { error, retry_after } = match attempt(client, req, &wire, state, out).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        let delay = budget.next_wait(
            opts,
            &req.url,
            state.offset,
            state.attempts,
            error,
            retry_after,
        )?;
        retry::wait(delay, cancel).await?;
    }
}

/// One request for the bytes not yet handed on, and its body.
async fn attempt(
    client: &reqwest::Client,
    req: &StreamRequest,
    wire: &Wire<'_>,
    state: &mut StreamState,
    out: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), Failure> {
    let offset = state.offset;
    if offset > 0 && state.total() == Some(offset) {
        return Ok(());
    }
    let resume_from = if offset > 0 {
        let Some(entity) = state.entity.as_ref().filter(|e| e.can_resume()) else {
            return Err(wire
                .protocol("the server cannot resume, and a stream cannot start over")
                .into());
        };
        Some((offset, entity))
    } else {
        None
    };
    let mut resp = wire
        .send(wire.get(client, &req.headers, resume_from))
        .await?;
    match resp.status() {
        StatusCode::OK if offset == 0 => {
            state.entity = Some(wire.full_entity(&resp, req.expected_size)?);
        }
        // If-Range failed (the entity changed) or Range was ignored: the
        // bytes already handed on cannot be taken back.
        StatusCode::OK => {
            return Err(wire
                .protocol("the remote file changed during the stream")
                .into());
        }
        StatusCode::PARTIAL_CONTENT if offset > 0 => {
            let continued = state
                .entity
                .as_mut()
                .is_some_and(|e| e.continued_by(resp.headers(), offset, req.expected_size));
            if !continued {
                return Err(wire
                    .protocol("the range sent does not continue the stream")
                    .into());
            }
            tracing::info!(url = req.url, offset, "resuming stream");
        }
        _ => return Err(wire.refused(&resp)),
    }
    let cap = wire.cap(req.expected_size);
    wire.check_cap(cap, state.total())?;
    pump(req, wire, state, out, &mut resp, cap)
        .await
        .map_err(Failure::from)
}

/// Hand the body on, watching for cancel, stalls and length.
async fn pump(
    req: &StreamRequest,
    wire: &Wire<'_>,
    state: &mut StreamState,
    out: &mpsc::Sender<io::Result<Bytes>>,
    resp: &mut reqwest::Response,
    cap: Option<u64>,
) -> Result<(), FetchError> {
    let limit = state.total().or(req.expected_size);
    while let Some(chunk) = wire.next_chunk(resp).await? {
        let got = state.offset + chunk.len() as u64;
        wire.check_cap(cap, Some(got))?;
        if let Some(expected) = limit
            && got > expected
        {
            return Err(wire.length(expected, got));
        }
        tokio::select! {
            biased;
            () = wire.cancel.cancelled() => return Err(FetchError::Cancelled),
            sent = out.send(Ok(chunk)) => sent.map_err(|_| FetchError::Cancelled)?,
        }
        state.offset = got;
    }
    match limit {
        Some(expected) if state.offset < expected => Err(wire.length(expected, state.offset)),
        _ => Ok(()),
    }
}
