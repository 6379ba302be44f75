//! `fetch`: the retry loop around [`attempt`](crate::attempt), and the
//! verify-then-rename that turns a partial file into the destination.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::attempt::{self, Failure, Job, Outcome, Session, ensure_space};
use crate::checkpoint::{Checkpoint, remove_if_exists};
use crate::error::FetchError;
use crate::request::{FetchRequest, Fetched, Progress};
use crate::retry::{self, Budget, FetchOptions};
use crate::sink::PartialSink;

/// Download `req.url` into `req.dest`, resuming, retrying and verifying:
///
/// - Bytes go to `req.partial`, hashed as they arrive; a partial left by an
///   earlier call is resumed with `Range` + `If-Range` if `req.checkpoint`
///   says what it holds.
/// - Transient failures ([`FetchError::is_transient`]) are retried with
///   backoff, each retry resuming from the bytes on disk.
/// - The length must match `Content-Length`/`Content-Range` and
///   `expected_size`; the sha256 must match `expected_sha256`.
/// - Only verified bytes replace `req.dest` (rename + directory fsync).
/// - A file of known size (`expected_size`, else the declared length) is
///   not started when its filesystem lacks the room
///   ([`FetchError::NoSpace`]); a body whose size the caller did not pin
///   may not pass [`FetchOptions::max_size`] ([`FetchError::OverCap`]).
/// - The partial is never opened through a symlink or as someone else's
///   file: see [`PartialSink`]'s rules in `sink.rs`.
///
/// On `cancel` it returns [`FetchError::Cancelled`] and deletes the partial
/// and checkpoint. Dropping the future instead (daemon shutdown) leaves both
/// for the next call to resume. Other failures delete them only when the
/// bytes are known to be useless (digest or size mismatch, 404/410, broken
/// range protocol); otherwise they stay for a later resume ([`discard`]
/// removes them). The caller must not run two fetches on one partial.
pub async fn fetch(
    client: &reqwest::Client,
    req: &FetchRequest,
    opts: &FetchOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Fetched, FetchError> {
    let expected_sha256 = req
        .expected_sha256
        .as_deref()
        .map(normalise_digest)
        .transpose()?;
    let job = Job {
        client,
        req,
        opts,
        progress,
        cancel,
    };
    let entity = load_checkpoint(req).await;
    let keep = entity.is_some();
    let sink = match PartialSink::open(&req.partial, keep, cancel).await {
        Ok(sink) => sink,
        Err(error) => {
            if discards_partial(&error) {
                discard(req).await;
            }
            return Err(error);
        }
    };
    let resumed_from = sink.len();
    // A size the caller knows is checked before the first request.
    if let Some(total) = req.expected_size
        && let Err(error) = ensure_space(&req.partial, total, resumed_from)
    {
        sink.close().await;
        if resumed_from == 0 {
            discard(req).await;
        }
        return Err(error);
    }
    if resumed_from > 0 {
        tracing::info!(url = %req.url, resumed_from, "found partial download to resume");
    }
    let mut s = Session {
        sink,
        entity,
        transferred: 0,
        restarts: 0,
        attempt: 0,
    };
    if let Err(error) = run(&job, &mut s).await {
        s.sink.close().await;
        if discards_partial(&error) {
            discard(req).await;
        }
        return Err(error);
    }
    finish(&job, s, expected_sha256, resumed_from).await
}

/// Attempt until complete, a permanent error, cancel, or the retry budget
/// is spent.
async fn run(job: &Job<'_>, s: &mut Session) -> Result<(), FetchError> {
    let mut budget = Budget::new(s.sink.len());
    loop {
        if job.cancel.is_cancelled() {
            return Err(FetchError::Cancelled);
        }
        s.attempt += 1;
        s.report(job);
        let Failure { error, retry_after } = match attempt::attempt(job, s).await {
            Ok(Outcome::Complete) => return Ok(()),
            Ok(Outcome::Restart) => continue,
            Err(failure) => failure,
        };
        let delay = budget.next_wait(
            job.opts,
            &job.req.url,
            s.sink.len(),
            s.attempt,
            error,
            retry_after,
        )?;
        retry::wait(delay, job.cancel).await?;
    }
}

/// fsync, verify, rename into place, drop the checkpoint.
async fn finish(
    job: &Job<'_>,
    s: Session,
    expected_sha256: Option<String>,
    resumed_from: u64,
) -> Result<Fetched, FetchError> {
    let req = job.req;
    let Session {
        sink,
        entity,
        transferred,
        restarts,
        attempt,
    } = s;
    let (sha256, size) = sink.finish().await?;
    let bad = if let Some(expected) = expected_sha256.filter(|e| *e != sha256) {
        Some(FetchError::DigestMismatch {
            url: req.url.clone(),
            expected,
            actual: sha256.clone(),
        })
    } else {
        req.expected_size
            .filter(|e| *e != size)
            .map(|expected| FetchError::Length {
                url: req.url.clone(),
                expected,
                got: size,
            })
    };
    if let Some(error) = bad {
        discard(req).await;
        return Err(error);
    }
    tokio::fs::rename(&req.partial, &req.dest)
        .await
        .map_err(FetchError::io(&req.dest))?;
    let dir = parent_dir(&req.dest).to_owned();
    let fsync = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || bty_store::atomic::fsync_dir(&dir)
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r);
    fsync.map_err(FetchError::io(&dir))?;
    if let Some(cp) = &req.checkpoint {
        remove_if_exists(cp).map_err(FetchError::io(cp))?;
    }
    (job.progress)(Progress {
        bytes_done: size,
        bytes_total: Some(size),
        attempt,
    });
    let (etag, last_modified) = entity
        .map(|e| (e.etag, e.last_modified))
        .unwrap_or_default();
    Ok(Fetched {
        dest: req.dest.clone(),
        sha256,
        size,
        etag,
        last_modified,
        bytes_transferred: transferred,
        resumed_from: if restarts == 0 { resumed_from } else { 0 },
        restarts,
        attempts: attempt,
    })
}

/// Delete the partial file and checkpoint of `req`, e.g. when the job that
/// owned them is abandoned. Failures are logged, not returned.
pub async fn discard(req: &FetchRequest) {
    let paths = std::iter::once(&req.partial).chain(req.checkpoint.as_ref());
    for path in paths {
        if let Err(e) = tokio::fs::remove_file(path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove download leftovers");
        }
    }
}

/// Whether the partial is worthless after `error`.
fn discards_partial(error: &FetchError) -> bool {
    match error {
        FetchError::Cancelled
        | FetchError::DigestMismatch { .. }
        | FetchError::SizeMismatch { .. }
        | FetchError::Length { .. }
        | FetchError::OverCap { .. }
        | FetchError::Protocol { .. } => true,
        FetchError::Http { status, .. } => matches!(status.as_u16(), 404 | 410),
        _ => false,
    }
}

/// The checkpoint for `req`, if it belongs to this URL, a partial file
/// exists and the server can resume it.
async fn load_checkpoint(req: &FetchRequest) -> Option<Checkpoint> {
    let path = req.checkpoint.clone()?;
    if !tokio::fs::try_exists(&req.partial).await.unwrap_or(false) {
        return None;
    }
    let cp = tokio::task::spawn_blocking(move || Checkpoint::load(&path))
        .await
        .ok()??;
    if cp.url != req.url {
        tracing::info!(url = %req.url, old = %cp.url, "checkpoint is for another URL; starting over");
        return None;
    }
    cp.can_resume().then_some(cp)
}

/// Lowercase a pinned sha256, refusing anything but 64 hex digits.
fn normalise_digest(value: &str) -> Result<String, FetchError> {
    let lower = value.trim().to_ascii_lowercase();
    if bty_store::digest::is_sha256_hex(&lower) {
        Ok(lower)
    } else {
        Err(FetchError::InvalidDigest {
            value: value.to_owned(),
        })
    }
}

/// The directory holding `path` (`.` for a bare relative name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_pinned_digests() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(normalise_digest(upper).unwrap(), upper.to_ascii_lowercase());
        assert!(matches!(
            normalise_digest("sha256:abc"),
            Err(FetchError::InvalidDigest { .. })
        ));
    }

    #[test]
    fn keeps_partials_unless_they_are_useless() {
        let http = |code| FetchError::Http {
            url: "u".into(),
            status: reqwest::StatusCode::from_u16(code).unwrap(),
        };
        assert!(discards_partial(&http(404)));
        assert!(!discards_partial(&http(401)));
        assert!(discards_partial(&FetchError::Cancelled));
        let exhausted = FetchError::RetriesExhausted {
            url: "u".into(),
            attempts: 6,
            last: Box::new(http(503)),
        };
        assert!(!discards_partial(&exhausted));
    }

    #[test]
    fn parent_of_bare_name_is_cwd() {
        assert_eq!(parent_dir(Path::new("x")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/x")), Path::new("/a"));
    }
}
