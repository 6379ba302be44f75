//! The job model shared by the download, hash and flash workers: one
//! snapshot type, one state machine, one id scheme, one rate meter.

pub mod in_order;
pub mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which worker runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Bytes from the network into the image root.
    Download,
    /// sha256 of a file in the image root.
    Hash,
    /// An image onto block devices.
    Flash,
    /// An image from the store to an OCI registry.
    Push,
    /// A client's stream of bytes into the image root.
    Upload,
}

impl JobKind {
    /// The lower-case word in metrics and event kinds (`download`…).
    pub fn label(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Hash => "hash",
            Self::Flash => "flash",
            Self::Push => "push",
            Self::Upload => "upload",
        }
    }

    /// Prefix of this kind's job ids (`hash-…`), used to route by id.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::Download => "dl",
            Self::Hash => "hash",
            Self::Flash => "flash",
            Self::Push => "push",
            Self::Upload => "up",
        }
    }

    /// The kind a job id belongs to.
    pub fn of_id(id: &str) -> Option<Self> {
        let prefix = id.split('-').next()?;
        [
            Self::Download,
            Self::Hash,
            Self::Flash,
            Self::Push,
            Self::Upload,
        ]
        .into_iter()
        .find(|k| k.id_prefix() == prefix)
    }
}

/// `queued → running → completed | failed | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for a worker slot.
    Queued,
    /// Moving bytes.
    Running,
    /// Done.
    Completed,
    /// Ended with an error (`JobSnapshot::error` says why).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobState {
    /// The lower-case word in metrics and event kinds (`completed`…).
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Queued or running.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// Where in its life a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobPhase {
    /// Nothing to show.
    None,
    /// Waiting for a worker slot.
    Queued,
    /// Bytes coming in from the network.
    Downloading,
    /// Bytes going out to a registry.
    Pushing,
    /// Reading a file for its sha256.
    Hashing,
    /// Flash: looking at the image and the targets.
    Checking,
    /// Flash: writing the targets.
    Writing,
    /// Flash: flushing the targets.
    Syncing,
    /// Flash: reading the targets back.
    Verifying,
    /// Ended well.
    Done,
    /// Ended with an error.
    Failed,
    /// Stopped on request.
    Cancelled,
}

/// Everything a client sees of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSnapshot {
    /// `<kind prefix>-<unique>`.
    pub id: String,
    /// Which worker.
    pub kind: JobKind,
    /// File name, entry name or target device.
    pub subject: String,
    /// Where in its life the job is.
    pub state: JobState,
    /// Bytes processed so far.
    pub bytes_done: u64,
    /// Total when known.
    pub bytes_total: Option<u64>,
    /// Recent throughput.
    pub rate_bps: u64,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Epoch milliseconds.
    pub created_at_ms: i64,
    /// Epoch milliseconds.
    pub started_at_ms: Option<i64>,
    /// Epoch milliseconds.
    pub finished_at_ms: Option<i64>,
    /// The digest the job computed.
    pub sha256: Option<String>,
    /// Where in its life the job is.
    pub phase: JobPhase,
    /// What a finished job has to say ("up to date: …", "pushed …").
    pub note: Option<String>,
    /// Flash jobs: one entry per target.
    pub targets: Vec<TargetSnapshot>,
    /// Flash jobs: bytes read from the (compressed) source.
    pub source_bytes: u64,
}

/// Where one flash target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Checked, waiting for the write.
    Queued,
    /// Being written.
    Writing,
    /// Written, being flushed.
    Syncing,
    /// Being read back.
    Verifying,
    /// Written (and verified, when asked).
    Done,
    /// The write or the verify failed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A safety rule refused it; nothing was written.
    Refused,
}

/// One flash target of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSnapshot {
    /// Device or file path.
    pub path: String,
    /// Where it stands.
    pub state: TargetState,
    /// Bytes written to it.
    pub bytes_written: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// Read-back verification result.
    pub verified: Option<bool>,
    /// Incremental flashes: what was compared, written and skipped.
    pub incremental: Option<bty_flash::DiffCounts>,
}

impl JobSnapshot {
    /// A new queued job.
    pub fn queued(kind: JobKind, subject: impl Into<String>, bytes_total: Option<u64>) -> Self {
        Self {
            id: new_job_id(kind),
            kind,
            subject: subject.into(),
            state: JobState::Queued,
            bytes_done: 0,
            bytes_total,
            rate_bps: 0,
            error: None,
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            sha256: None,
            phase: JobPhase::Queued,
            note: None,
            targets: Vec::new(),
            source_bytes: 0,
        }
    }

    /// Move to running.
    pub fn start(&mut self, phase: JobPhase) {
        self.state = JobState::Running;
        self.started_at_ms = Some(now_ms());
        self.phase = phase;
    }

    /// Move to a terminal state.
    pub fn finish(&mut self, state: JobState, error: Option<String>) {
        self.state = state;
        self.error = error;
        self.rate_bps = 0;
        self.finished_at_ms = Some(now_ms());
        self.phase = match state {
            JobState::Completed => JobPhase::Done,
            JobState::Failed => JobPhase::Failed,
            JobState::Cancelled => JobPhase::Cancelled,
            JobState::Queued | JobState::Running => JobPhase::None,
        };
    }
}

/// Order jobs newest first (ties by id, so listings are stable).
pub fn newest_first(jobs: &mut [JobSnapshot]) {
    jobs.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unique within a daemon run and across restarts (time-based prefix).
fn new_job_id(kind: JobKind) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{:x}{n:04x}", kind.id_prefix(), now_ms())
}

/// Throughput over a sliding window, so the rate follows the disk or the
/// network instead of averaging over the whole job.
#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// A meter averaging over `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: std::collections::VecDeque::new(),
        }
    }

    /// Record the running total and return bytes per second.
    pub fn record(&mut self, total: u64) -> u64 {
        let now = Instant::now();
        self.samples.push_back((now, total));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
        {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                let secs = t1.duration_since(*t0).as_secs_f64();
                ((b1.saturating_sub(*b0)) as f64 / secs) as u64
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_route_back_to_their_kind() {
        for kind in [
            JobKind::Download,
            JobKind::Hash,
            JobKind::Flash,
            JobKind::Push,
            JobKind::Upload,
        ] {
            let job = JobSnapshot::queued(kind, "x", None);
            assert_eq!(JobKind::of_id(&job.id), Some(kind));
        }
        assert_eq!(JobKind::of_id("nope-1"), None);
    }

    #[test]
    fn ids_are_unique() {
        let a = JobSnapshot::queued(JobKind::Hash, "x", None);
        let b = JobSnapshot::queued(JobKind::Hash, "x", None);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn listings_are_newest_first() {
        let mut jobs: Vec<JobSnapshot> = (0..5)
            .map(|i| {
                let mut j = JobSnapshot::queued(JobKind::Hash, "x", None);
                j.created_at_ms = i;
                j
            })
            .collect();
        newest_first(&mut jobs);
        let order: Vec<i64> = jobs.iter().map(|j| j.created_at_ms).collect();
        assert_eq!(order, [4, 3, 2, 1, 0]);
    }

    #[test]
    fn lifecycle_sets_timestamps() {
        let mut j = JobSnapshot::queued(JobKind::Hash, "x", Some(10));
        assert!(j.state.is_active());
        j.start(JobPhase::Hashing);
        assert!(j.started_at_ms.is_some());
        j.finish(JobState::Failed, Some("boom".into()));
        assert!(!j.state.is_active());
        assert_eq!(j.error.as_deref(), Some("boom"));
        assert!(j.finished_at_ms.is_some());
    }
}
