//! The flasher's jobs: the shared [`JobTable`] (history, cancellation
//! tokens, the cancel rule), kept in step with the running flashes every
//! incarnation of the flasher shares, and the event of each change.

use super::error::FlasherError;
use super::running::{Claim, Running, RunningFlashes};
use crate::actors::job_query::JobBook;
use crate::events::{CatalogEvent, CatalogEventKind, EventBus};
use crate::jobs::table::{CancelOutcome, JobTable};
use crate::jobs::{JobPhase, JobSnapshot};
use tokio_util::sync::CancellationToken;

/// Finished jobs kept for listing.
const HISTORY: usize = 100;

/// The flash jobs this incarnation knows.
#[derive(Debug)]
pub(crate) struct FlashJobs {
    /// Nothing waits in its queue: a flash starts at once, and the
    /// running flashes' claims decide when a target is busy.
    table: JobTable<()>,
    running: RunningFlashes,
    events: EventBus,
}

impl FlashJobs {
    pub(crate) fn new(running: RunningFlashes, events: EventBus) -> Self {
        Self {
            table: JobTable::new(1, HISTORY),
            running,
            events,
        }
    }

    /// The job of a flash that starts now, writing `claims` until it ends:
    /// announced, listed running and its targets busy. The token is the
    /// one its task follows.
    pub(crate) fn open(
        &mut self,
        mut job: JobSnapshot,
        claims: Vec<Claim>,
    ) -> (JobSnapshot, CancellationToken) {
        // Announced queued first, as every job is (the event history keeps
        // a job's first event).
        self.events.job(&job);
        job.start(JobPhase::Checking);
        let cancel = CancellationToken::new();
        self.running.insert(
            &job.id,
            Running {
                cancel: cancel.clone(),
                claims,
            },
        );
        let job = self.table.insert_running(job, (), cancel.clone());
        self.events.job(&job);
        (job, cancel)
    }

    /// A task's view of its running job.
    pub(crate) fn progress(&mut self, job: JobSnapshot) {
        match self.table.get_mut(&job.id) {
            // A finished job stays finished (late progress is ignored).
            Some(entry) if entry.snapshot.state.is_active() => {
                entry.snapshot = job;
                self.events.job(&entry.snapshot);
            }
            Some(_) => {}
            None => self.adopt(job),
        }
    }

    /// A task's last report: its job ended, its targets are free.
    pub(crate) fn finished(&mut self, job: JobSnapshot) {
        let id = job.id.clone();
        match self.table.get(&id).map(|j| j.snapshot.state.is_active()) {
            Some(true) => {
                if let Some(entry) = self.table.end(&id) {
                    entry.snapshot = job;
                    self.events.job(&entry.snapshot);
                }
            }
            Some(false) => {}
            None => self.adopt(job),
        }
        self.running.remove(&id);
    }

    /// A task started by an earlier incarnation (before a crash) reported:
    /// take its job in, with the token the task follows, so it is listed,
    /// cancellable and ends visibly.
    fn adopt(&mut self, job: JobSnapshot) {
        tracing::info!(
            id = job.id,
            "adopting a flash job that survived a flasher restart"
        );
        let cancel = self.running.cancel_token(&job.id);
        self.events.job(&job);
        self.table.insert_running(job, (), cancel);
    }

    /// The flasher stops: a flash is never left writing behind a stopped
    /// daemon. Every running one is cancelled (the pipeline stops within a
    /// second and never writes the first MiB, so the target does not look
    /// bootable), and said so.
    pub(crate) fn interrupt(&self) {
        for job in self.table.list().iter().filter(|j| j.state.is_active()) {
            tracing::warn!(
                job = job.id,
                subject = job.subject,
                "flash interrupted by shutdown: targets are partially written and not bootable"
            );
            self.events.catalog(CatalogEvent::new(
                CatalogEventKind::FlashInterrupted,
                &job.subject,
                "flash interrupted by shutdown: partially written",
            ));
        }
        self.table.cancel_running();
    }
}

impl JobBook<FlasherError> for FlashJobs {
    fn list(&self) -> Vec<JobSnapshot> {
        self.table.list()
    }

    fn get(&self, id: &str) -> Option<JobSnapshot> {
        self.table.get(id).map(|j| j.snapshot.clone())
    }

    fn cancel(&mut self, id: &str) -> Result<JobSnapshot, FlasherError> {
        // A running task stops at its next check and reports the end.
        let (outcome, job) = self
            .table
            .cancel(id)
            .ok_or_else(|| FlasherError::NoSuchJob { id: id.to_owned() })?;
        if outcome == CancelOutcome::Dequeued {
            self.events.job(&job.snapshot);
        }
        Ok(job.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBody;
    use crate::jobs::{JobKind, JobState};

    fn jobs() -> (FlashJobs, RunningFlashes, EventBus) {
        let (running, events) = (RunningFlashes::default(), EventBus::new());
        (
            FlashJobs::new(running.clone(), events.clone()),
            running,
            events,
        )
    }

    fn new_job(subject: &str) -> JobSnapshot {
        JobSnapshot::queued(JobKind::Flash, subject, Some(1 << 20))
    }

    const SDB: Claim = Claim::Device(8, 16);

    #[test]
    fn a_started_job_is_listed_running_and_holds_its_targets() {
        let (mut jobs, running, events) = jobs();
        let mut seen = events.subscribe();
        let (job, cancel) = jobs.open(new_job("a.img → /dev/sdb"), vec![SDB]);
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.phase, JobPhase::Checking);
        assert!(!cancel.is_cancelled());
        assert_eq!(jobs.list(), vec![job.clone()]);
        assert!(running.is_claimed(SDB));
        let states: Vec<JobState> = std::iter::from_fn(|| seen.try_recv().ok())
            .filter_map(|e| match &e.body {
                EventBody::Job(j) => Some(j.state),
                EventBody::Catalog(_) | EventBody::Disks(_) => None,
            })
            .collect();
        assert_eq!(states, [JobState::Queued, JobState::Running]);
    }

    #[test]
    fn cancel_signals_the_token_and_the_task_reports_the_end() {
        let (mut jobs, _, _) = jobs();
        let (job, cancel) = jobs.open(new_job("a"), vec![SDB]);
        let after = jobs.cancel(&job.id).unwrap();
        assert!(cancel.is_cancelled());
        assert_eq!(after.state, JobState::Running, "the task reports the end");
        let mut ended = after;
        ended.finish(JobState::Cancelled, Some("cancelled by operator".into()));
        jobs.finished(ended);
        assert_eq!(jobs.get(&job.id).unwrap().state, JobState::Cancelled);
        assert!(matches!(
            jobs.cancel("flash-none"),
            Err(FlasherError::NoSuchJob { .. })
        ));
    }

    #[test]
    fn an_ended_job_goes_to_history_and_frees_its_targets() {
        let (mut jobs, running, _) = jobs();
        let (job, _) = jobs.open(new_job("a"), vec![SDB]);
        let mut progressed = job.clone();
        progressed.bytes_done = 512;
        progressed.phase = JobPhase::Writing;
        jobs.progress(progressed);
        assert_eq!(jobs.get(&job.id).unwrap().bytes_done, 512);
        let mut done = job.clone();
        done.bytes_done = 1 << 20;
        done.finish(JobState::Completed, None);
        jobs.finished(done.clone());
        assert_eq!(jobs.get(&job.id).unwrap(), done);
        assert!(!running.is_claimed(SDB));
        // Late progress and a repeated end change nothing.
        jobs.progress(job.clone());
        let mut again = job.clone();
        again.finish(JobState::Failed, Some("late".into()));
        jobs.finished(again);
        assert_eq!(jobs.get(&job.id).unwrap(), done);
        // Ended: a cancel does nothing.
        assert_eq!(jobs.cancel(&job.id).unwrap(), done);
    }

    #[test]
    fn history_stays_bounded() {
        let (mut jobs, _, _) = jobs();
        let mut first = None;
        for i in 0..HISTORY + 20 {
            let (mut job, _) = jobs.open(new_job(&i.to_string()), Vec::new());
            first.get_or_insert_with(|| job.id.clone());
            job.finish(JobState::Completed, None);
            jobs.finished(job);
        }
        let (running, _) = jobs.open(new_job("last"), Vec::new());
        let listed = jobs.list();
        assert_eq!(listed.len(), HISTORY + 1, "the history and the running job");
        assert!(listed.iter().any(|j| j.id == running.id));
        assert!(jobs.get(first.as_deref().unwrap()).is_none(), "oldest kept");
    }

    #[test]
    fn a_job_of_an_earlier_incarnation_is_adopted_with_its_token() {
        // The flasher crashed mid-flash: the running flashes (shared) still
        // hold the job; the new incarnation's jobs do not.
        let running = RunningFlashes::default();
        let mut before = FlashJobs::new(running.clone(), EventBus::new());
        let (job, task_token) = before.open(new_job("a"), vec![SDB]);
        drop(before);
        let mut jobs = FlashJobs::new(running.clone(), EventBus::new());
        assert!(jobs.get(&job.id).is_none());
        jobs.progress(job.clone());
        assert_eq!(jobs.get(&job.id).unwrap().state, JobState::Running);
        jobs.cancel(&job.id).unwrap();
        assert!(task_token.is_cancelled(), "the surviving task is told");
        let mut ended = job.clone();
        ended.finish(JobState::Cancelled, None);
        jobs.finished(ended);
        assert_eq!(jobs.get(&job.id).unwrap().state, JobState::Cancelled);
        assert!(!running.is_claimed(SDB));
        // Its first report may be its last.
        let (other, _) =
            FlashJobs::new(running.clone(), EventBus::new()).open(new_job("b"), vec![SDB]);
        let mut done = other.clone();
        done.finish(JobState::Completed, None);
        jobs.finished(done.clone());
        assert_eq!(jobs.get(&other.id).unwrap(), done);
        assert!(!running.is_claimed(SDB));
    }

    #[test]
    fn a_stop_cancels_every_running_flash_and_says_so() {
        let (mut jobs, _, events) = jobs();
        let mut seen = events.subscribe();
        let (running, token) = jobs.open(new_job("a → /dev/sdb"), vec![SDB]);
        let (mut over, over_token) = jobs.open(new_job("b"), Vec::new());
        over.finish(JobState::Completed, None);
        jobs.finished(over);
        jobs.interrupt();
        assert!(token.is_cancelled());
        assert!(!over_token.is_cancelled(), "an ended job is left alone");
        let interrupted: Vec<String> = std::iter::from_fn(|| seen.try_recv().ok())
            .filter_map(|e| match &e.body {
                EventBody::Catalog(c) if c.kind == CatalogEventKind::FlashInterrupted => {
                    Some(c.subject.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(interrupted, [running.subject]);
    }
}
