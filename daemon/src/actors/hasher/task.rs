//! The blocking hash task: read the file once, write the sidecar, report.
//! Runs on tokio's blocking pool, never inside a message handler.

use super::error::HashFailure;
use super::handle::HasherHandle;
use super::messages::HashOutcome;
use bty_dio::DigestError;
use bty_dio::sha256::sha256_reader;
use bty_store::atomic::RenameSync;
use bty_store::identity::{FileIdentity, VerifiedImage};
use bty_store::sidecar::write_sidecar_synced;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a task reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Everything a task needs.
pub(crate) struct HashTask {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) image_root: PathBuf,
    /// The file as it was when the hash was asked for.
    pub(crate) expected: FileIdentity,
    pub(crate) cancel: CancellationToken,
    pub(crate) handle: HasherHandle,
    /// Whether the sidecar's rename is synced by this task or, for a
    /// burst of small files, by the hasher once the burst ends.
    pub(crate) rename_sync: RenameSync,
}

impl HashTask {
    /// Run to the end and report the outcome to the hasher.
    pub(crate) fn run(self) {
        let outcome = self.hash();
        self.handle.finished(&self.id, &self.name, outcome);
    }

    fn hash(&self) -> HashOutcome {
        // Opened without following a link and checked against what was
        // listed: the bytes hashed are that file's, never a link target's.
        let image = match VerifiedImage::open(&self.image_root, &self.name, &self.expected) {
            Ok(image) => image,
            // Still being written, or replaced by a rename: hash it again
            // once it settles.
            Err(e) if e.is_changed_contents() => return HashOutcome::Changed,
            Err(e) => return HashOutcome::Failed(e.into()),
        };
        let before = *image.identity();
        let mut last = Instant::now();
        let mut progress = |done: u64| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                self.handle.progress(&self.id, done);
            }
        };
        let cancelled = || self.cancel.is_cancelled();
        let sha256 = match sha256_reader(image.file(), &mut progress, &cancelled) {
            Ok(sha) => sha,
            Err(DigestError::Cancelled) => return HashOutcome::Cancelled,
            Err(source) => {
                return HashOutcome::Failed(HashFailure::Read {
                    name: self.name.clone(),
                    source,
                });
            }
        };
        // The name must still hold the very file hashed, unchanged, or the
        // sidecar would describe other bytes.
        let path = image.path().to_owned();
        match std::fs::symlink_metadata(&path) {
            Ok(after) if FileIdentity::of(&after) == before => {}
            Ok(_) => return HashOutcome::Changed,
            Err(source) => {
                return HashOutcome::Failed(HashFailure::Vanished {
                    name: self.name.clone(),
                    source,
                });
            }
        }
        if let Err(source) = write_sidecar_synced(&path, &sha256, self.rename_sync) {
            return HashOutcome::Failed(HashFailure::Sidecar {
                name: self.name.clone(),
                source,
            });
        }
        HashOutcome::Hashed {
            sha256,
            bytes: before.size,
        }
    }
}
