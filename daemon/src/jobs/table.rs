//! The job machinery every job-running actor shares (downloader, hasher,
//! flasher): jobs by id, a FIFO queue, a cap on how many run at once, a
//! cancellation token and a rate meter per job, the finished history, and
//! the one cancel rule. The actor keeps its own work payload `W` beside
//! each job and decides what a job does; the table decides when it may run.

use super::{JobPhase, JobSnapshot, JobState, RateMeter, newest_first};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Window of the transfer-rate estimate.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// One job in the table.
#[derive(Debug)]
pub struct TableEntry<W> {
    /// What clients see.
    pub snapshot: JobSnapshot,
    /// Cancelled to stop the job's task (and checked by it).
    pub cancel: CancellationToken,
    /// The actor's own payload (what to download, which file to hash).
    pub work: W,
    meter: RateMeter,
    /// The lane whose slot it holds while active; `None`: no slot.
    lane: Option<Lane>,
}

/// Which queue a job waits in and whose cap it counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The actor's `max_parallel` cap.
    Main,
    /// Small jobs beside the main lane (see [`JobTable::with_quick_lane`]).
    Quick,
}

/// One queue and its cap.
#[derive(Debug)]
struct Queue {
    waiting: VecDeque<String>,
    running: usize,
    max: usize,
}

impl Queue {
    fn new(max: usize) -> Self {
        Self {
            waiting: VecDeque::new(),
            running: 0,
            max,
        }
    }
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was waiting: it is now finished as cancelled.
    Dequeued,
    /// The job was running: its task was told to stop and reports the end.
    Signalled,
    /// The job had already ended: nothing changed.
    AlreadyOver,
}

/// Jobs by id, a queue and a running count. Every operation is O(log n)
/// in the number of jobs (a drop of 10 000 files queues 10 000 hashes).
#[derive(Debug)]
pub struct JobTable<W> {
    jobs: BTreeMap<String, TableEntry<W>>,
    main: Queue,
    quick: Queue,
    /// Subject → id of its queued or running job.
    active_subjects: HashMap<String, String>,
    /// Ended jobs, oldest first: the history to prune.
    ended: VecDeque<String>,
    history: usize,
}

impl<W> JobTable<W> {
    /// An empty table running at most `max_parallel` jobs at once and
    /// keeping `history` finished ones.
    pub fn new(max_parallel: usize, history: usize) -> Self {
        Self {
            jobs: BTreeMap::new(),
            main: Queue::new(max_parallel.max(1)),
            quick: Queue::new(0),
            active_subjects: HashMap::new(),
            ended: VecDeque::new(),
            history,
        }
    }

    /// A second lane of up to `max` jobs that run beside the main lane's:
    /// for jobs whose time is mostly latency (a small file's hash is mostly
    /// its sidecar's two fsyncs), which run best overlapped.
    pub fn with_quick_lane(mut self, max: usize) -> Self {
        self.quick.max = max;
        self
    }

    /// Add a job to the main lane. A queued one waits its turn
    /// ([`Self::start_next`]); one already finished (nothing to do) is only
    /// kept for listing.
    pub fn insert(&mut self, snapshot: JobSnapshot, work: W) -> JobSnapshot {
        self.insert_in(Lane::Main, snapshot, work)
    }

    /// Add a job to `lane` (the quick lane falls back to the main one when
    /// the table has none).
    pub fn insert_in(&mut self, lane: Lane, snapshot: JobSnapshot, work: W) -> JobSnapshot {
        let lane = if self.quick.max == 0 {
            Lane::Main
        } else {
            lane
        };
        if snapshot.state == JobState::Queued {
            self.queue_mut(lane).waiting.push_back(snapshot.id.clone());
        }
        self.register(lane, snapshot, work, CancellationToken::new())
    }

    /// Add a job whose task runs already, or starts now, outside the
    /// queue: the flasher starts every flash at once (its own rule says
    /// when a target is busy), and takes in a job started by its earlier
    /// incarnation with the token that job's task still checks. An active
    /// job counts as running in the main lane until [`Self::end`] (even
    /// beyond the cap); an ended one is only kept for listing.
    pub fn insert_running(
        &mut self,
        snapshot: JobSnapshot,
        work: W,
        cancel: CancellationToken,
    ) -> JobSnapshot {
        if snapshot.state.is_active() {
            self.main.running += 1;
        }
        self.register(Lane::Main, snapshot, work, cancel)
    }

    /// Keep a job (queued or running in `lane`, or ended) under its id:
    /// an active one holds its subject, an ended one joins the history.
    fn register(
        &mut self,
        lane: Lane,
        snapshot: JobSnapshot,
        work: W,
        cancel: CancellationToken,
    ) -> JobSnapshot {
        let id = snapshot.id.clone();
        if snapshot.state.is_active() {
            self.active_subjects
                .entry(snapshot.subject.clone())
                .or_insert_with(|| id.clone());
        } else {
            self.ended.push_back(id.clone());
        }
        let entry = TableEntry {
            snapshot: snapshot.clone(),
            cancel,
            work,
            meter: RateMeter::new(RATE_WINDOW),
            lane: Some(lane),
        };
        self.jobs.insert(id, entry);
        self.prune();
        snapshot
    }

    /// Add a queued job and start it now in `phase`, outside the queue and
    /// every cap: an upload moves at its client's pace, so it must neither
    /// wait for a download's slot nor hold one. It ends like any job
    /// ([`Self::end`]), cancelled through its token.
    pub fn insert_uncapped(
        &mut self,
        mut snapshot: JobSnapshot,
        work: W,
        phase: JobPhase,
    ) -> &TableEntry<W> {
        let id = snapshot.id.clone();
        snapshot.start(phase);
        self.active_subjects
            .entry(snapshot.subject.clone())
            .or_insert_with(|| id.clone());
        let entry = TableEntry {
            snapshot,
            cancel: CancellationToken::new(),
            work,
            meter: RateMeter::new(RATE_WINDOW),
            lane: None,
        };
        self.prune();
        self.jobs.entry(id).or_insert(entry)
    }

    /// The next queued job, if one may start now; it is marked started
    /// (in the phase `phase` names for its work) and counted as running
    /// until [`Self::end`].
    pub fn start_next(&mut self, phase: impl Fn(&W) -> JobPhase) -> Option<&mut TableEntry<W>> {
        let id = self
            .next_startable(Lane::Main)
            .or_else(|| self.next_startable(Lane::Quick))?;
        let entry = self.jobs.get_mut(&id)?;
        entry.snapshot.start(phase(&entry.work));
        Some(entry)
    }

    /// The id of `lane`'s next queued job, counted as running, if the
    /// lane's cap lets one start.
    fn next_startable(&mut self, lane: Lane) -> Option<String> {
        let jobs = &self.jobs;
        let queue = match lane {
            Lane::Main => &mut self.main,
            Lane::Quick => &mut self.quick,
        };
        if queue.running >= queue.max {
            return None;
        }
        while let Some(id) = queue.waiting.pop_front() {
            // A job cancelled while queued may still sit in the queue.
            if jobs
                .get(&id)
                .is_some_and(|j| j.snapshot.state == JobState::Queued)
            {
                queue.running += 1;
                return Some(id);
            }
        }
        None
    }

    fn queue_mut(&mut self, lane: Lane) -> &mut Queue {
        match lane {
            Lane::Main => &mut self.main,
            Lane::Quick => &mut self.quick,
        }
    }

    /// Record progress of a running job; the snapshot to publish, if any.
    pub fn progress(
        &mut self,
        id: &str,
        bytes_done: u64,
        bytes_total: Option<u64>,
    ) -> Option<&JobSnapshot> {
        let entry = self.jobs.get_mut(id)?;
        if entry.snapshot.state != JobState::Running {
            return None;
        }
        entry.snapshot.bytes_done = bytes_done;
        if bytes_total.is_some() {
            entry.snapshot.bytes_total = bytes_total;
        }
        entry.snapshot.rate_bps = entry.meter.record(bytes_done);
        Some(&entry.snapshot)
    }

    /// A job's task reported its end: it no longer counts as running. The
    /// caller sets the final state on the returned entry. `None`: a job
    /// this table never started (it survived an actor restart).
    pub fn end(&mut self, id: &str) -> Option<&mut TableEntry<W>> {
        let entry = self.jobs.get_mut(id)?;
        if entry.snapshot.state.is_active() {
            let queue = match entry.lane {
                Some(Lane::Main) => Some(&mut self.main),
                Some(Lane::Quick) => Some(&mut self.quick),
                None => None,
            };
            if let Some(queue) = queue {
                queue.running = queue.running.saturating_sub(1);
            }
            forget_subject(&mut self.active_subjects, &entry.snapshot);
            self.ended.push_back(id.to_owned());
        }
        Some(entry)
    }

    /// Cancel a job: a queued one ends now, a running one is told to stop.
    pub fn cancel(&mut self, id: &str) -> Option<(CancelOutcome, &TableEntry<W>)> {
        let entry = self.jobs.get_mut(id)?;
        let outcome = match entry.snapshot.state {
            JobState::Queued => {
                // Left in the queue: `start_next` skips jobs no longer
                // queued (removing it here would be O(n) per cancel).
                forget_subject(&mut self.active_subjects, &entry.snapshot);
                self.ended.push_back(id.to_owned());
                entry.snapshot.finish(
                    JobState::Cancelled,
                    Some("cancelled by operator".to_owned()),
                );
                CancelOutcome::Dequeued
            }
            JobState::Running => {
                entry.cancel.cancel();
                CancelOutcome::Signalled
            }
            JobState::Completed | JobState::Failed | JobState::Cancelled => {
                CancelOutcome::AlreadyOver
            }
        };
        Some((outcome, entry))
    }

    /// Tell every running job to stop (the actor is stopping).
    pub fn cancel_running(&self) {
        for entry in self.jobs.values().filter(|j| j.snapshot.state.is_active()) {
            entry.cancel.cancel();
        }
    }

    /// A job by id.
    pub fn get(&self, id: &str) -> Option<&TableEntry<W>> {
        self.jobs.get(id)
    }

    /// A job by id, to change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut TableEntry<W>> {
        self.jobs.get_mut(id)
    }

    /// The queued or running job of `subject`.
    pub fn find_active_subject(&self, subject: &str) -> Option<&TableEntry<W>> {
        self.active_subjects
            .get(subject)
            .and_then(|id| self.jobs.get(id))
    }

    /// The first queued or running job `matches` accepts (O(n): for
    /// tables of a few jobs, such as downloads).
    pub fn find_active(&self, matches: impl Fn(&TableEntry<W>) -> bool) -> Option<&TableEntry<W>> {
        self.jobs
            .values()
            .find(|j| j.snapshot.state.is_active() && matches(j))
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<JobSnapshot> {
        let mut jobs: Vec<JobSnapshot> = self.jobs.values().map(|j| j.snapshot.clone()).collect();
        newest_first(&mut jobs);
        jobs
    }

    /// How many jobs are queued or running.
    pub fn active(&self) -> usize {
        self.jobs
            .values()
            .filter(|j| j.snapshot.state.is_active())
            .count()
    }

    /// How many jobs run now.
    pub fn running(&self) -> usize {
        self.main.running + self.quick.running
    }

    /// Drop the oldest ended jobs beyond `history`.
    fn prune(&mut self) {
        while self.ended.len() > self.history {
            if let Some(id) = self.ended.pop_front() {
                self.jobs.remove(&id);
            }
        }
    }
}

/// `snapshot`'s job no longer holds its subject.
fn forget_subject(active: &mut HashMap<String, String>, snapshot: &JobSnapshot) {
    if active.get(&snapshot.subject) == Some(&snapshot.id) {
        active.remove(&snapshot.subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobKind;

    fn queued(subject: &str) -> JobSnapshot {
        JobSnapshot::queued(JobKind::Hash, subject, Some(10))
    }

    #[test]
    fn runs_at_most_max_parallel_in_queue_order() {
        let mut table = JobTable::new(2, 100);
        let ids: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|s| table.insert(queued(s), ()).id)
            .collect();
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            ids[0]
        );
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            ids[1]
        );
        assert!(
            table.start_next(|_| JobPhase::Hashing).is_none(),
            "a third ran"
        );
        assert_eq!(table.running(), 2);
        table
            .end(&ids[0])
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        assert_eq!(table.running(), 1);
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            ids[2]
        );
    }

    #[test]
    fn cancel_ends_a_queued_job_and_signals_a_running_one() {
        let mut table = JobTable::new(1, 100);
        let running = table.insert(queued("a"), ()).id;
        let waiting = table.insert(queued("b"), ()).id;
        table.start_next(|_| JobPhase::Hashing).unwrap();
        let (outcome, entry) = table.cancel(&waiting).unwrap();
        assert_eq!(outcome, CancelOutcome::Dequeued);
        assert_eq!(entry.snapshot.state, JobState::Cancelled);
        let (outcome, entry) = table.cancel(&running).unwrap();
        assert_eq!(outcome, CancelOutcome::Signalled);
        assert!(entry.cancel.is_cancelled());
        assert_eq!(
            entry.snapshot.state,
            JobState::Running,
            "the task reports the end"
        );
        // The cancelled queued job never starts; the slot frees at the end.
        table
            .end(&running)
            .unwrap()
            .snapshot
            .finish(JobState::Cancelled, None);
        assert!(table.start_next(|_| JobPhase::Hashing).is_none());
        assert_eq!(
            table.cancel(&running).unwrap().0,
            CancelOutcome::AlreadyOver
        );
        assert!(table.cancel("no-such-job").is_none());
    }

    #[test]
    fn a_job_from_before_a_restart_does_not_free_a_slot() {
        let mut table: JobTable<()> = JobTable::new(1, 100);
        assert!(table.end("dl-from-an-earlier-incarnation").is_none());
        let id = table.insert(queued("a"), ()).id;
        table.start_next(|_| JobPhase::Hashing).unwrap();
        table
            .end(&id)
            .unwrap()
            .snapshot
            .finish(JobState::Failed, None);
        // Reported twice (late duplicate): still one slot, not two.
        table.end(&id);
        assert_eq!(table.running(), 0);
    }

    #[test]
    fn progress_counts_only_running_jobs_and_history_is_bounded() {
        let mut table = JobTable::new(1, 3);
        let id = table.insert(queued("a"), ()).id;
        assert!(
            table.progress(&id, 5, None).is_none(),
            "queued job progressed"
        );
        table.start_next(|_| JobPhase::Hashing).unwrap();
        assert_eq!(
            table.progress(&id, 5, Some(20)).unwrap().bytes_total,
            Some(20)
        );
        table
            .end(&id)
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        for i in 0..10 {
            let mut done = queued(&i.to_string());
            done.finish(JobState::Completed, None);
            table.insert(done, ());
        }
        assert_eq!(table.list().len(), 3);
    }

    #[test]
    fn a_subject_finds_its_active_job_until_it_ends() {
        let mut table = JobTable::new(1, 2);
        let ids: Vec<String> = (0..10_000)
            .map(|i| table.insert(queued(&format!("f{i}")), ()).id)
            .collect();
        assert_eq!(
            table.find_active_subject("f9999").unwrap().snapshot.id,
            ids[9999]
        );
        let first = table
            .start_next(|_| JobPhase::Hashing)
            .unwrap()
            .snapshot
            .id
            .clone();
        assert_eq!(first, ids[0]);
        table
            .end(&first)
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        assert!(table.find_active_subject("f0").is_none());
        // A cancelled queued job is skipped, and no longer found.
        table.cancel(&ids[1]).unwrap();
        assert!(table.find_active_subject("f1").is_none());
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            ids[2]
        );
        // A new job of the subject is found again.
        let again = table.insert(queued("f0"), ()).id;
        assert_eq!(table.find_active_subject("f0").unwrap().snapshot.id, again);
    }

    #[test]
    fn a_job_inserted_running_skips_the_queue_and_keeps_its_token() {
        let mut table = JobTable::new(1, 100);
        let token = CancellationToken::new();
        let mut started = queued("a");
        started.start(JobPhase::Writing);
        let a = table.insert_running(started.clone(), (), token.clone()).id;
        let mut again = queued("b");
        again.start(JobPhase::Writing);
        let b = table.insert_running(again, (), CancellationToken::new()).id;
        assert_eq!(table.running(), 2, "beyond the cap: both run");
        assert_eq!(table.find_active_subject("a").unwrap().snapshot.id, a);
        // Queued jobs wait for the main lane those jobs hold.
        table.insert(queued("c"), ());
        assert!(table.start_next(|_| JobPhase::Hashing).is_none());
        assert_eq!(table.cancel(&a).unwrap().0, CancelOutcome::Signalled);
        assert!(token.is_cancelled(), "the caller's token is the job's");
        for id in [&a, &b] {
            table
                .end(id)
                .unwrap()
                .snapshot
                .finish(JobState::Completed, None);
        }
        assert!(table.start_next(|_| JobPhase::Hashing).is_some());
        // An ended one is history only: it holds no slot.
        let mut over = queued("d");
        over.finish(JobState::Failed, None);
        table.insert_running(over, (), CancellationToken::new());
        assert_eq!(table.running(), 1);
        assert!(table.find_active_subject("d").is_none());
    }

    #[test]
    fn an_uncapped_job_runs_at_once_and_holds_no_slot() {
        let mut table = JobTable::new(1, 100);
        let queued_first = table.insert(queued("a"), ()).id;
        table.start_next(|_| JobPhase::Hashing).unwrap();
        let waiting = table.insert(queued("b"), ()).id;
        let up = table
            .insert_uncapped(queued("u"), (), JobPhase::Downloading)
            .snapshot
            .clone();
        assert_eq!(up.state, JobState::Running, "beside a full main lane");
        assert_eq!(up.phase, JobPhase::Downloading);
        assert!(up.started_at_ms.is_some());
        assert_eq!(table.running(), 1, "it takes no slot");
        assert_eq!(table.find_active_subject("u").unwrap().snapshot.id, up.id);
        assert_eq!(table.progress(&up.id, 7, None).unwrap().bytes_done, 7);
        // Cancelling signals its task, which reports the end.
        assert_eq!(table.cancel(&up.id).unwrap().0, CancelOutcome::Signalled);
        assert!(table.get(&up.id).unwrap().cancel.is_cancelled());
        table
            .end(&up.id)
            .unwrap()
            .snapshot
            .finish(JobState::Cancelled, None);
        // Its end freed no slot of the main lane's job.
        assert!(table.start_next(|_| JobPhase::Hashing).is_none());
        assert!(table.find_active_subject("u").is_none());
        table
            .end(&queued_first)
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            waiting
        );
    }

    #[test]
    fn the_quick_lane_runs_beside_a_full_main_lane() {
        let mut table = JobTable::new(1, 100).with_quick_lane(2);
        let big = table.insert(queued("big"), ()).id;
        let big2 = table.insert(queued("big2"), ()).id;
        let small: Vec<String> = (0..3)
            .map(|i| {
                table
                    .insert_in(Lane::Quick, queued(&format!("s{i}")), ())
                    .id
            })
            .collect();
        let started: Vec<String> = std::iter::from_fn(|| {
            table
                .start_next(|_| JobPhase::Hashing)
                .map(|e| e.snapshot.id.clone())
        })
        .collect();
        assert_eq!(started, [big.clone(), small[0].clone(), small[1].clone()]);
        // A quick job's end frees a quick slot, not a main one.
        table
            .end(&small[0])
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            small[2]
        );
        assert!(table.start_next(|_| JobPhase::Hashing).is_none());
        table
            .end(&big)
            .unwrap()
            .snapshot
            .finish(JobState::Completed, None);
        assert_eq!(
            table.start_next(|_| JobPhase::Hashing).unwrap().snapshot.id,
            big2
        );
        // Without a quick lane, quick jobs wait in the main one.
        let mut plain = JobTable::new(1, 100);
        plain.insert_in(Lane::Quick, queued("a"), ());
        plain.insert_in(Lane::Quick, queued("b"), ());
        assert!(plain.start_next(|_| JobPhase::Hashing).is_some());
        assert!(plain.start_next(|_| JobPhase::Hashing).is_none());
    }
}
