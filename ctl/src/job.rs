//! Jobs as btyctl shows them: the JSON shape, the table, and the names of
//! kinds and states shared by every command that queues or watches a job.

use crate::output::{Table, format_bytes, format_rate, or_dash};
use bty_proto::v1::{Job, JobKind, JobState, TargetStatus};
use serde::Serialize;

/// A job as JSON (`jobs`, `hash`, `fetch`, `update`, `push`, `flash`).
#[derive(Debug, Serialize)]
pub(crate) struct JobView {
    id: String,
    kind: &'static str,
    subject: String,
    state: &'static str,
    bytes_done: u64,
    bytes_total: Option<u64>,
    rate_bps: u64,
    error: Option<String>,
    sha256: Option<String>,
    phase: String,
    created_at_ms: i64,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    source_bytes: u64,
    targets: Vec<TargetView>,
}

/// One flash target's status as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct TargetView {
    path: String,
    state: String,
    bytes_written: u64,
    error: Option<String>,
    verified: Option<bool>,
    /// Incremental flashes: bytes compared, written and left as they were.
    incremental: Option<IncrementalView>,
}

/// What an incremental flash did to one target, as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct IncrementalView {
    bytes_compared: u64,
    bytes_written: u64,
    bytes_skipped: u64,
}

impl From<&TargetStatus> for TargetView {
    fn from(target: &TargetStatus) -> Self {
        Self {
            path: target.path.clone(),
            state: target.state().label().to_owned(),
            bytes_written: target.bytes_written,
            error: target.error.clone(),
            verified: target.verified,
            incremental: target.incremental.map(|d| IncrementalView {
                bytes_compared: d.bytes_compared,
                bytes_written: d.bytes_written,
                bytes_skipped: d.bytes_skipped,
            }),
        }
    }
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        Self {
            id: job.id.clone(),
            kind: kind_name(job.kind()),
            subject: job.subject.clone(),
            state: state_name(job.state()),
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total,
            rate_bps: job.rate_bps,
            error: job.error.clone(),
            sha256: job.sha256.clone(),
            phase: job.phase_text().to_owned(),
            created_at_ms: job.created_at_ms,
            started_at_ms: job.started_at_ms,
            finished_at_ms: job.finished_at_ms,
            source_bytes: job.source_bytes,
            targets: job.targets.iter().map(TargetView::from).collect(),
        }
    }
}

/// `download`, `hash`, `flash`, `push` or `upload`.
pub(crate) fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Download => "download",
        JobKind::Hash => "hash",
        JobKind::Flash => "flash",
        JobKind::Push => "push",
        JobKind::Upload => "upload",
        JobKind::Unspecified => "unspecified",
    }
}

/// `queued`, `running`, `completed`, `failed` or `cancelled`.
pub(crate) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
        JobState::Unspecified => "unspecified",
    }
}

/// Whether the job has reached a final state.
pub(crate) fn is_finished(job: &Job) -> bool {
    matches!(
        job.state(),
        JobState::Completed | JobState::Failed | JobState::Cancelled
    )
}

/// `1.5 GiB / 3.0 GiB (50%)`, or just the bytes done when the total is unknown.
pub(crate) fn progress_text(job: &Job) -> String {
    match job.bytes_total {
        Some(total) if total > 0 => {
            let percent = job.bytes_done.saturating_mul(100) / total;
            format!(
                "{} / {} ({percent}%)",
                format_bytes(job.bytes_done),
                format_bytes(total)
            )
        }
        _ => format_bytes(job.bytes_done),
    }
}

/// Jobs as a table, one per line, or a note when there are none.
pub(crate) fn jobs_table(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "no jobs".to_owned();
    }
    let mut table = Table::new(&[
        "ID", "KIND", "STATE", "SUBJECT", "PROGRESS", "RATE", "DETAIL",
    ]);
    for job in jobs {
        let rate = (job.state() == JobState::Running).then(|| format_rate(job.rate_bps));
        // A failed job's reason matters more than its last phase.
        let detail = job
            .error
            .clone()
            .or_else(|| Some(job.phase_text().to_owned()).filter(|p| !p.is_empty()));
        table.push(vec![
            job.id.clone(),
            kind_name(job.kind()).to_owned(),
            state_name(job.state()).to_owned(),
            job.subject.clone(),
            progress_text(job),
            or_dash(rate),
            or_dash(detail),
        ]);
    }
    table.render()
}

/// One line saying how a job ended, e.g. `job 7 completed (sha256 ab…)`.
pub(crate) fn summary_line(job: &Job) -> String {
    let mut line = format!(
        "{} job {} {}: {}",
        kind_name(job.kind()),
        job.id,
        state_name(job.state()),
        job.subject
    );
    if let Some(sha) = &job.sha256 {
        line.push_str(&format!(" (sha256 {sha})"));
    }
    if let Some(took) = throughput(job) {
        line.push_str(&format!(", {took}"));
    }
    line
}

/// `256.0 MiB in 0.49 s (522.4 MiB/s)` for a completed job that moved bytes
/// (on the summary line: scripts read one line per job).
fn throughput(job: &Job) -> Option<String> {
    let ms = job.finished_at_ms?.checked_sub(job.started_at_ms?)?;
    if job.state() != JobState::Completed || job.bytes_done == 0 || ms <= 0 {
        return None;
    }
    let secs = ms as f64 / 1000.0;
    let rate = (job.bytes_done as f64 / secs) as u64;
    Some(format!(
        "{} in {secs:.2} s ({})",
        format_bytes(job.bytes_done),
        format_rate(rate)
    ))
}

/// One flash target: `/dev/sdb  writing  1.5 GiB written  verified: -`,
/// with the target's error at the end when it has one.
pub(crate) fn target_line(target: &TargetStatus) -> String {
    let verified = match target.verified {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let mut line = format!(
        "{}  {}  {} written  verified: {verified}",
        target.path,
        target.state().label(),
        format_bytes(target.bytes_written)
    );
    if let Some(d) = &target.incremental {
        line.push_str(&format!(
            "  incremental: {} written, {} unchanged",
            format_bytes(d.bytes_written),
            format_bytes(d.bytes_skipped)
        ));
    }
    if let Some(error) = &target.error {
        line.push_str(&format!("  error: {error}"));
    }
    line
}

/// The targets that were not written: failed, refused or cancelled ones,
/// each as `path (state: error)`.
pub(crate) fn unwritten_targets(job: &Job) -> Vec<String> {
    job.targets
        .iter()
        .filter(|t| t.state().is_unwritten())
        .map(|t| match &t.error {
            Some(error) => format!("{} ({}: {error})", t.path, t.state().label()),
            None => format!("{} ({})", t.path, t.state().label()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_proto::v1::TargetState;

    fn job(state: JobState) -> Job {
        Job {
            id: "j1".into(),
            kind: JobKind::Hash.into(),
            subject: "disk.img".into(),
            state: state.into(),
            bytes_done: 512,
            bytes_total: Some(1024),
            ..Job::default()
        }
    }

    #[test]
    fn job_json_has_the_documented_keys() {
        let value = serde_json::to_value(JobView::from(&job(JobState::Running))).expect("json");
        let object = value.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "kind",
            "subject",
            "state",
            "bytes_done",
            "bytes_total",
            "rate_bps",
            "error",
            "sha256",
            "phase",
            "created_at_ms",
            "started_at_ms",
            "finished_at_ms",
            "source_bytes",
            "targets",
        ];
        expected.sort_unstable();
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["kind"], "hash");
        assert_eq!(value["state"], "running");
        assert!(value["error"].is_null());
    }

    #[test]
    fn a_completed_summary_says_how_long_and_how_fast() {
        let mut done = job(JobState::Completed);
        done.bytes_done = 512 << 20;
        done.started_at_ms = Some(1_000);
        done.finished_at_ms = Some(3_000);
        let line = summary_line(&done);
        assert!(
            line.ends_with(", 512.0 MiB in 2.00 s (256.0 MiB/s)"),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1, "one line per job");
        let mut failed = done.clone();
        failed.state = JobState::Failed.into();
        assert!(!summary_line(&failed).contains(" in "));
    }

    #[test]
    fn only_final_states_finish() {
        assert!(!is_finished(&job(JobState::Queued)));
        assert!(!is_finished(&job(JobState::Running)));
        assert!(is_finished(&job(JobState::Completed)));
        assert!(is_finished(&job(JobState::Failed)));
        assert!(is_finished(&job(JobState::Cancelled)));
    }

    #[test]
    fn progress_shows_percent_when_total_known() {
        assert_eq!(
            progress_text(&job(JobState::Running)),
            "512 B / 1.0 KiB (50%)"
        );
        let unknown = Job {
            bytes_total: None,
            ..job(JobState::Running)
        };
        assert_eq!(progress_text(&unknown), "512 B");
    }

    fn target(state: TargetState, verified: Option<bool>, error: Option<&str>) -> TargetStatus {
        TargetStatus {
            path: "/dev/sdb".into(),
            state: state.into(),
            bytes_written: 2048,
            error: error.map(str::to_owned),
            verified,
            incremental: None,
        }
    }

    #[test]
    fn target_lines_show_state_bytes_and_verification() {
        assert_eq!(
            target_line(&target(TargetState::Done, Some(true), None)),
            "/dev/sdb  done  2.0 KiB written  verified: yes"
        );
        assert_eq!(
            target_line(&target(TargetState::Failed, None, Some("EIO"))),
            "/dev/sdb  failed  2.0 KiB written  verified: -  error: EIO"
        );
        let incremental = TargetStatus {
            incremental: Some(bty_proto::v1::IncrementalCounts {
                bytes_compared: 3 << 20,
                bytes_written: 1 << 20,
                bytes_skipped: 2 << 20,
            }),
            ..target(TargetState::Done, Some(true), None)
        };
        assert_eq!(
            target_line(&incremental),
            "/dev/sdb  done  2.0 KiB written  verified: yes  incremental: 1.0 MiB written, 2.0 MiB unchanged"
        );
    }

    #[test]
    fn failed_refused_and_cancelled_targets_are_unwritten() {
        let flash = Job {
            targets: vec![
                target(TargetState::Done, Some(true), None),
                target(TargetState::Failed, Some(false), Some("verify mismatch")),
                target(TargetState::Refused, None, None),
                target(TargetState::Cancelled, None, None),
                target(TargetState::Verifying, None, None),
            ],
            ..job(JobState::Completed)
        };
        assert_eq!(
            unwritten_targets(&flash),
            [
                "/dev/sdb (failed: verify mismatch)",
                "/dev/sdb (refused)",
                "/dev/sdb (cancelled)"
            ]
        );
    }
}
