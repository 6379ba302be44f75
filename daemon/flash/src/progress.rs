//! Live per-target counters shared by worker threads and the coordinator,
//! and the [`Progress`] snapshot built from them.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use crate::{Phase, Progress, TargetProgress, TargetSpec};

/// Live counters of one target's worker.
#[derive(Default)]
pub(crate) struct TargetStats {
    pub(crate) written: AtomicU64,
    pub(crate) verified: AtomicU64,
    phase: AtomicU8,
    pub(crate) failed: AtomicBool,
}

impl TargetStats {
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Writing,
            1 => Phase::Syncing,
            2 => Phase::Verifying,
            _ => Phase::Done,
        }
    }
}

/// A progress report from the counters.
pub(crate) fn snapshot(
    targets: &[TargetSpec],
    stats: &[TargetStats],
    source_bytes: u64,
    total: Option<u64>,
) -> Progress {
    let per_target: Vec<TargetProgress> = targets
        .iter()
        .zip(stats)
        .map(|(t, st)| TargetProgress {
            path: t.path.clone(),
            phase: st.phase(),
            written: st.written.load(Ordering::Relaxed),
            verified: st.verified.load(Ordering::Relaxed),
            failed: st.failed.load(Ordering::Relaxed),
        })
        .collect();
    let live = || per_target.iter().filter(|t| !t.failed);
    Progress {
        phase: live().map(|t| t.phase).min().unwrap_or(Phase::Done),
        source_bytes,
        written: live().map(|t| t.written).min().unwrap_or(0),
        total,
        per_target,
    }
}
