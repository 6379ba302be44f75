//! The flashes in flight, shared by every incarnation of the flasher: a
//! flash task outlives a crashed flasher, and the new one adopts it. Each
//! entry holds the job's cancellation token and the devices (or files) it writes,
//! so "is this target busy?" is decided by device number, whatever path
//! names it.

use bty_disks::TargetIdentity;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// What a running flash writes: a device by number, a file by device and
/// inode. Two paths to the same disk (`/dev/sdb`, `/dev/disk/by-id/…`)
/// are one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A block device `(major, minor)`.
    Device(u32, u32),
    /// A regular file `(st_dev, st_ino)`.
    File(u64, u64),
}

impl Claim {
    /// The claim of a checked target.
    pub(crate) fn of(identity: &TargetIdentity) -> Option<Self> {
        match (identity.major_minor, identity.file_id) {
            (Some((major, minor)), _) => Some(Self::Device(major, minor)),
            (None, Some((dev, ino))) => Some(Self::File(dev, ino)),
            (None, None) => None,
        }
    }

    /// The claim of whatever `path` names now (symlinks followed), before
    /// any check opens it: a busy device is reported as busy, not as a
    /// failed exclusive open.
    pub(crate) fn of_path(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(path).ok()?;
        if meta.file_type().is_block_device() {
            let rdev = meta.rdev();
            Some(Self::Device(
                rustix::fs::major(rdev),
                rustix::fs::minor(rdev),
            ))
        } else if meta.is_file() {
            Some(Self::File(meta.dev(), meta.ino()))
        } else {
            None
        }
    }
}

/// One flash in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct Running {
    /// Cancelled to stop the flash (the job's token in the flasher's
    /// table, kept here for the incarnation that adopts it).
    pub(crate) cancel: CancellationToken,
    /// What it writes.
    pub(crate) claims: Vec<Claim>,
}

/// The running flashes by job id.
#[derive(Debug, Clone, Default)]
pub struct RunningFlashes(Arc<Mutex<BTreeMap<String, Running>>>);

impl RunningFlashes {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        // A poisoned map only means a holder panicked mid-insert; the
        // entries themselves stay consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a flash that starts now.
    pub(crate) fn insert(&self, id: &str, running: Running) {
        self.lock().insert(id.to_owned(), running);
    }

    /// The cancellation token of a running flash (a fresh one if unknown).
    pub(crate) fn cancel_token(&self, id: &str) -> CancellationToken {
        self.lock()
            .get(id)
            .map(|r| r.cancel.clone())
            .unwrap_or_default()
    }

    /// Forget a flash that ended.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether a running flash writes `claim`.
    pub(crate) fn is_claimed(&self, claim: Claim) -> bool {
        self.lock().values().any(|r| r.claims.contains(&claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(major: u32, minor: u32, path: &str) -> TargetIdentity {
        TargetIdentity {
            path: path.into(),
            major_minor: Some((major, minor)),
            size_bytes: 1 << 30,
            serial: None,
            model: None,
            diskseq: None,
            file_id: None,
        }
    }

    #[test]
    fn a_device_is_busy_by_number_whatever_path_names_it() {
        let running = RunningFlashes::default();
        let sdb = Claim::of(&device(8, 16, "/dev/sdb"));
        running.insert(
            "job-1",
            Running {
                claims: sdb.into_iter().collect(),
                ..Running::default()
            },
        );
        assert_eq!(
            Claim::of(&device(8, 16, "/dev/disk/by-id/usb-Stick")),
            sdb,
            "another path to the same device is the same claim"
        );
        assert!(running.is_claimed(Claim::Device(8, 16)));
        assert!(!running.is_claimed(Claim::Device(8, 32)));
        running.remove("job-1");
        assert!(!running.is_claimed(Claim::Device(8, 16)));
    }
}
