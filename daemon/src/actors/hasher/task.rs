//! The blocking hash task: read the file once, write the sidecar, report.
//! Runs on tokio's blocking pool, never inside a message handler.

use super::handle::HasherHandle;
use super::messages::HashOutcome;
use bty_store::digest::{DigestError, sha256_reader};
use bty_store::sidecar::write_sidecar;
use std::fs::{File, Metadata};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a task reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Everything a task needs.
pub(crate) struct HashTask {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) handle: HasherHandle,
}

impl HashTask {
    /// Run to the end and report the outcome to the hasher.
    pub(crate) fn run(self) {
        let outcome = self.hash();
        self.handle.finished(&self.id, &self.name, outcome);
    }

    fn hash(&self) -> HashOutcome {
        let before = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => return HashOutcome::Failed(format!("cannot stat {}: {e}", self.name)),
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) => return HashOutcome::Failed(format!("cannot open {}: {e}", self.name)),
        };
        let mut last = Instant::now();
        let mut progress = |done: u64| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                self.handle.progress(&self.id, done);
            }
        };
        let cancelled = || self.cancel.load(Ordering::Relaxed);
        let sha256 = match sha256_reader(file, &mut progress, &cancelled) {
            Ok(sha) => sha,
            Err(DigestError::Cancelled) => return HashOutcome::Cancelled,
            Err(e) => return HashOutcome::Failed(format!("reading {}: {e}", self.name)),
        };
        match std::fs::metadata(&self.path) {
            Ok(after) if unchanged(&before, &after) => {}
            Ok(_) => return HashOutcome::Changed,
            Err(e) => {
                return HashOutcome::Failed(format!("{} vanished while hashing: {e}", self.name));
            }
        }
        if let Err(e) = write_sidecar(&self.path, &sha256) {
            return HashOutcome::Failed(format!("cannot write sidecar of {}: {e}", self.name));
        }
        HashOutcome::Hashed {
            sha256,
            bytes: before.len(),
        }
    }
}

/// Same size and modification time: nobody wrote while we read.
fn unchanged(before: &Metadata, after: &Metadata) -> bool {
    before.len() == after.len() && before.modified().ok() == after.modified().ok()
}
