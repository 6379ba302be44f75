//! An image the flash waits for: a remote qcow2 (converted from a file,
//! not a stream) is downloaded into the image root by the downloader first,
//! and the flash task follows that download job before it writes a byte.

use crate::actors::catalog::{CatalogHandle, LocalImage};
use crate::actors::downloader::DownloaderHandle;
use crate::jobs::{JobSnapshot, JobState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the download job is looked at.
const POLL: Duration = Duration::from_millis(200);

/// A download job whose file the flash will read.
#[derive(Debug)]
pub struct PendingDownload {
    /// The download job.
    pub job_id: String,
    /// The catalog key that resolves to the file once it landed.
    pub key: String,
    /// Who runs the download.
    pub downloader: DownloaderHandle,
    /// Who resolves the key afterwards.
    pub catalog: CatalogHandle,
}

/// What waiting for the download came to.
pub(crate) enum Waited {
    /// The file is in place, as the catalog's scan listed it.
    Landed(LocalImage),
    /// The flash was cancelled meanwhile (the download is cancelled too).
    Cancelled,
}

impl PendingDownload {
    /// Block (on a blocking-pool thread) until the download ends; `seen`
    /// gets every snapshot of it, for the flash job's progress.
    pub(crate) fn wait(
        &self,
        cancel: &AtomicBool,
        seen: &mut dyn FnMut(&JobSnapshot),
    ) -> Result<Waited, String> {
        let runtime = tokio::runtime::Handle::current();
        loop {
            if cancel.load(Ordering::Relaxed) {
                if let Err(e) = runtime.block_on(self.downloader.cancel(&self.job_id)) {
                    tracing::warn!(job = self.job_id, error = %e, "cannot cancel the download");
                }
                return Ok(Waited::Cancelled);
            }
            let job = runtime
                .block_on(self.downloader.get(&self.job_id))
                .map_err(|e| format!("downloading {} first: {e}", self.key))?;
            // A restarted downloader resumes the job under a new id: the
            // file tells whether it landed meanwhile.
            let Some(job) = job else { break };
            seen(&job);
            match job.state {
                JobState::Completed => break,
                JobState::Failed | JobState::Cancelled => {
                    return Err(format!(
                        "downloading {} first failed: {}",
                        self.key,
                        job.error.as_deref().unwrap_or("no reason given")
                    ));
                }
                JobState::Queued | JobState::Running => std::thread::sleep(POLL),
            }
        }
        let local = runtime
            .block_on(self.catalog.resolve_local(&self.key))
            .map_err(|e| format!("downloading {} first: {e}", self.key))?;
        Ok(Waited::Landed(local))
    }
}
