//! Counters derived from the event stream (jobs finished by kind and state,
//! bytes moved, busy time) rendered in Prometheus text format.

use crate::jobs::JobSnapshot;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counters {
    finished: BTreeMap<(&'static str, &'static str), u64>,
    bytes: BTreeMap<&'static str, u64>,
    busy_ms: BTreeMap<&'static str, u64>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: Arc<Mutex<Counters>>,
}

impl Metrics {
    /// Count a job that reached a terminal state.
    pub fn job_finished(&self, job: &JobSnapshot) {
        if job.state.is_active() {
            return;
        }
        let kind = job.kind.label();
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.finished.entry((kind, job.state.label())).or_default() += 1;
        *c.bytes.entry(kind).or_default() += job.bytes_done;
        if let (Some(start), Some(end)) = (job.started_at_ms, job.finished_at_ms) {
            *c.busy_ms.entry(kind).or_default() += u64::try_from(end - start).unwrap_or(0);
        }
    }

    /// Prometheus text: the counters plus the given gauges.
    pub fn render(&self, active: &[JobSnapshot], rows: usize, cached_rows: usize) -> String {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP bty_jobs_finished_total Jobs that ended, by kind and final state."
        );
        let _ = writeln!(out, "# TYPE bty_jobs_finished_total counter");
        for ((kind, state), n) in &c.finished {
            let _ = writeln!(
                out,
                "bty_jobs_finished_total{{kind=\"{kind}\",state=\"{state}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP bty_jobs_active Jobs queued or running, by kind and state."
        );
        let _ = writeln!(out, "# TYPE bty_jobs_active gauge");
        let mut gauges: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for job in active {
            *gauges
                .entry((job.kind.label(), job.state.label()))
                .or_default() += 1;
        }
        for ((kind, state), n) in gauges {
            let _ = writeln!(
                out,
                "bty_jobs_active{{kind=\"{kind}\",state=\"{state}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP bty_bytes_total Bytes moved by finished jobs, by kind."
        );
        let _ = writeln!(out, "# TYPE bty_bytes_total counter");
        for (kind, n) in &c.bytes {
            let _ = writeln!(out, "bty_bytes_total{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP bty_job_seconds_total Time finished jobs ran, by kind (bytes/seconds = throughput)."
        );
        let _ = writeln!(out, "# TYPE bty_job_seconds_total counter");
        for (kind, ms) in &c.busy_ms {
            let _ = writeln!(
                out,
                "bty_job_seconds_total{{kind=\"{kind}\"}} {:.3}",
                *ms as f64 / 1000.0
            );
        }
        let _ = writeln!(out, "# HELP bty_images Rows in the merged image listing.");
        let _ = writeln!(out, "# TYPE bty_images gauge");
        let _ = writeln!(out, "bty_images {rows}");
        let _ = writeln!(
            out,
            "# HELP bty_images_cached Rows whose bytes are in the image root."
        );
        let _ = writeln!(out, "# TYPE bty_images_cached gauge");
        let _ = writeln!(out, "bty_images_cached {cached_rows}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobKind, JobState};

    #[test]
    fn counts_finished_jobs_and_bytes() {
        let m = Metrics::default();
        let mut job = JobSnapshot::queued(JobKind::Hash, "a", Some(10));
        job.start(crate::jobs::JobPhase::Hashing);
        job.bytes_done = 10;
        job.finish(JobState::Completed, None);
        m.job_finished(&job);
        let text = m.render(&[], 3, 1);
        assert!(
            text.contains("bty_jobs_finished_total{kind=\"hash\",state=\"completed\"} 1"),
            "{text}"
        );
        assert!(text.contains("bty_bytes_total{kind=\"hash\"} 10"), "{text}");
        assert!(text.contains("bty_images 3"));
    }
}
