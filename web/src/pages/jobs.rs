//! Jobs as the pages show them (hashing, downloads, flash): one view model
//! with progress, rate, ETA and per-target status, and the ordering shared
//! by every jobs table.

use crate::fmt;
use crate::state::AppState;
use bty_proto::v1::{Job, JobKind, JobState, ListJobsRequest, TargetStatus};

/// Finished jobs shown under the active ones.
pub(crate) const FINISHED_SHOWN: usize = 20;

/// One job, ready to print.
pub(crate) struct JobView {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) subject: String,
    pub(crate) state: &'static str,
    pub(crate) phase: String,
    pub(crate) active: bool,
    pub(crate) failed: bool,
    pub(crate) percent: Option<u8>,
    pub(crate) bytes: String,
    pub(crate) rate: String,
    pub(crate) eta: String,
    pub(crate) detail: String,
    pub(crate) finished: String,
    pub(crate) targets: Vec<TargetView>,
}

/// One target of a flash job.
pub(crate) struct TargetView {
    pub(crate) path: String,
    pub(crate) state: String,
    pub(crate) written: String,
    pub(crate) error: String,
    pub(crate) verified: Option<bool>,
    /// Incremental: "wrote 1.0 MiB, 47 MiB unchanged".
    pub(crate) incremental: String,
}

impl From<TargetStatus> for TargetView {
    fn from(t: TargetStatus) -> Self {
        let state = t.state();
        Self {
            written: fmt::human_bytes(t.bytes_written),
            path: t.path,
            state: state.label().to_owned(),
            error: t.error.unwrap_or_default(),
            verified: t.verified,
            incremental: t.incremental.map_or_else(String::new, |d| {
                format!(
                    "wrote {}, {} unchanged",
                    fmt::human_bytes(d.bytes_written),
                    fmt::human_bytes(d.bytes_skipped)
                )
            }),
        }
    }
}

/// `1h 02m`, `3m 07s`, `12s`.
fn duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

impl JobView {
    pub(crate) fn new(job: Job) -> Self {
        let active = fmt::job_active(job.state);
        let bytes = match job.bytes_total {
            Some(total) => format!(
                "{} / {}",
                fmt::human_bytes(job.bytes_done),
                fmt::human_bytes(total)
            ),
            None => fmt::human_bytes(job.bytes_done),
        };
        let running = active && job.rate_bps > 0;
        let rate = if running {
            format!("{}/s", fmt::human_bytes(job.rate_bps))
        } else {
            String::new()
        };
        let eta = match job.bytes_total {
            Some(total) if running && total >= job.bytes_done => {
                duration((total - job.bytes_done) / job.rate_bps)
            }
            _ => String::new(),
        };
        let sha = job.sha256.as_deref().map(|s| format!("sha256 {s}"));
        let detail = [job.error.clone(), sha]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        let phase = job.phase_text().to_owned();
        Self {
            id: job.id,
            kind: fmt::job_kind(job.kind),
            state: fmt::job_state(job.state),
            phase,
            active,
            failed: job.state == JobState::Failed as i32,
            percent: if job.state == JobState::Completed as i32 {
                Some(100)
            } else {
                fmt::percent(job.bytes_done, job.bytes_total)
            },
            subject: job.subject,
            bytes,
            rate,
            eta,
            detail,
            finished: job.finished_at_ms.map(fmt::timestamp).unwrap_or_default(),
            targets: job.targets.into_iter().map(TargetView::from).collect(),
        }
    }
}

/// Active jobs (oldest first: the queue order) and the latest finished
/// ones (newest first).
pub(crate) fn split(jobs: Vec<Job>) -> (Vec<JobView>, Vec<JobView>) {
    let (mut active, mut done): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| fmt::job_active(j.state));
    active.sort_by_key(|j| j.created_at_ms);
    done.sort_by_key(|j| std::cmp::Reverse(j.finished_at_ms.unwrap_or(j.created_at_ms)));
    done.truncate(FINISHED_SHOWN);
    (
        active.into_iter().map(JobView::new).collect(),
        done.into_iter().map(JobView::new).collect(),
    )
}

/// The jobs of the given kinds.
pub(crate) async fn of_kinds(
    state: &AppState,
    kinds: &[JobKind],
) -> Result<Vec<Job>, tonic::Status> {
    let mut all = Vec::new();
    for kind in kinds {
        let request = ListJobsRequest {
            active_only: false,
            kind: *kind as i32,
        };
        all.extend(state.jobs().list_jobs(request).await?.into_inner().jobs);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_rate_and_eta_while_running() {
        let job = Job {
            state: JobState::Running as i32,
            bytes_done: 1024 * 1024,
            bytes_total: Some(3 * 1024 * 1024),
            rate_bps: 1024 * 1024,
            ..Job::default()
        };
        let view = JobView::new(job);
        assert_eq!(view.rate, "1.0 MiB/s");
        assert_eq!(view.eta, "2s");
        assert_eq!(view.percent, Some(33));
        assert_eq!(duration(3725), "1h 02m");
        assert_eq!(duration(187), "3m 07s");
    }
}
