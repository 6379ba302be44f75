//! An image the flash waits for: a remote qcow2 (converted from a file,
//! not a stream) is downloaded into the image root by the downloader first,
//! and the flash task follows that download's job events before it writes
//! a byte.

use super::error::WaitError;
use crate::actors::catalog::CatalogHandle;
use crate::actors::downloader::DownloaderHandle;
use crate::domain::LocalImage;
use crate::events::{EventBody, EventBus};
use crate::jobs::{JobSnapshot, JobState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often the task's own cancel flag is looked at while it waits.
const CANCEL_CHECK: Duration = Duration::from_millis(200);
/// How long without an event for the download before the task asks the
/// downloader whether the job still exists (a crashed downloader resumes
/// it under a new id, and the old id never ends).
const QUIET: Duration = Duration::from_secs(5);

/// A download job whose file the flash will read.
#[derive(Debug)]
pub struct PendingDownload {
    /// The download job.
    pub job_id: String,
    /// The catalog key that resolves to the file once it landed.
    pub key: String,
}

/// What waiting for the download came to.
pub(crate) enum Waited {
    /// The file is in place, as the catalog's scan listed it.
    Ready(Box<LocalImage>),
    /// The flash was cancelled meanwhile (the download is cancelled too).
    Cancelled,
}

/// Whom the wait talks to.
pub(crate) struct Peers<'a> {
    pub(crate) catalog: &'a CatalogHandle,
    pub(crate) downloader: &'a DownloaderHandle,
    pub(crate) events: &'a EventBus,
}

impl PendingDownload {
    /// Block (on a blocking-pool thread) until the download ends; `seen`
    /// gets every snapshot of it, for the flash job's progress.
    pub(crate) fn wait(
        &self,
        peers: &Peers<'_>,
        cancel: &AtomicBool,
        seen: &mut dyn FnMut(&JobSnapshot),
    ) -> Result<Waited, WaitError> {
        let runtime = tokio::runtime::Handle::current();
        runtime.block_on(self.follow(peers, cancel, seen))
    }

    async fn follow(
        &self,
        peers: &Peers<'_>,
        cancel: &AtomicBool,
        seen: &mut dyn FnMut(&JobSnapshot),
    ) -> Result<Waited, WaitError> {
        // Subscribe before the first look, so no event falls in between.
        let mut events = peers.events.subscribe();
        let mut last = self.ask(peers).await?;
        let mut quiet = tokio::time::Instant::now();
        let mut changed = true;
        loop {
            if cancel.load(Ordering::Relaxed) {
                if let Err(e) = peers.downloader.jobs().cancel(&self.job_id).await {
                    tracing::warn!(job = self.job_id, error = %bty_store::chain::Chain(&e), "cannot cancel the download");
                }
                return Ok(Waited::Cancelled);
            }
            // `None`: the job is gone (a restarted downloader resumed it
            // under a new id); the file tells whether it landed.
            let Some(job) = &last else { break };
            if std::mem::take(&mut changed) {
                seen(job);
            }
            match job.state {
                JobState::Completed => break,
                JobState::Failed | JobState::Cancelled => {
                    return Err(WaitError::Failed {
                        key: self.key.clone(),
                        reason: job.error.as_deref().unwrap_or("no reason given").to_owned(),
                    });
                }
                JobState::Queued | JobState::Running => {}
            }
            // `Some`: news of the download (from its events, or asked for
            // after missed events or a quiet spell).
            let fresh = tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => match &event.body {
                        EventBody::Job(job) if job.id == self.job_id => Some(Some(job.clone())),
                        _ => None,
                    },
                    Err(RecvError::Lagged(_) | RecvError::Closed) => Some(self.ask(peers).await?),
                },
                () = tokio::time::sleep(CANCEL_CHECK) => {
                    if quiet.elapsed() >= QUIET {
                        Some(self.ask(peers).await?)
                    } else {
                        None
                    }
                }
            };
            if let Some(job) = fresh {
                last = job;
                quiet = tokio::time::Instant::now();
                changed = true;
            }
        }
        let local = peers
            .catalog
            .resolve_local(&self.key)
            .await
            .map_err(|source| WaitError::Resolve {
                key: self.key.clone(),
                source: Box::new(source),
            })?;
        Ok(Waited::Ready(Box::new(local)))
    }

    async fn ask(&self, peers: &Peers<'_>) -> Result<Option<JobSnapshot>, WaitError> {
        peers
            .downloader
            .jobs()
            .get(&self.job_id)
            .await
            .map_err(|source| WaitError::Ask {
                key: self.key.clone(),
                source: Box::new(source),
            })
    }
}
