//! The hasher's job transitions, driven message by message without the
//! daemon: the test plays the actor's mailbox (real hash tasks run on the
//! blocking pool and report to a stand-in for the actor), so every step is
//! checked in order.

use super::*;
use crate::actors::call::{QUICK, ask_ref};
use crate::actors::catalog::CatalogMessage;
use crate::actors::slot::ActorSlot;
use ractor::Message;
use std::marker::PhantomData;
use tokio::sync::mpsc;

/// How long a test waits for a task's report before failing.
const REPORT_WITHIN: Duration = Duration::from_secs(60);

/// Files of 5 MiB of one repeated byte (over the quick lane's 4 MiB), and
/// their sha256 as `sha256sum` prints it.
const BIG: [(&str, u8, &str); 3] = [
    (
        "big0.img",
        0,
        "c036cbb7553a909f8b8877d4461924307f27ecb66cff928eeeafd569c3887e29",
    ),
    (
        "big1.img",
        1,
        "c283e17a1b90a352c91de2c445b711c5c4126279eff884b8ffc44893576b19ef",
    ),
    (
        "big2.img",
        2,
        "0467c9acff11ea0ca64db1a62295a44862a88ef4b30ec23b6555c5a4abccdffc",
    ),
];

/// Small files for the quick lane, and their sha256.
const SMALL: [(&str, &str, &str); 3] = [
    (
        "one.img",
        "small one\n",
        "46d88ace36acbb31ddb266b944a0dffaf31a783901d2ac686c5c54d290f9124d",
    ),
    (
        "two.img",
        "small two\n",
        "e32503e7ec97c115c6796f34e330a337421889f14ab9c8a1bd01e9fed5a906fb",
    ),
    (
        "three.img",
        "small three\n",
        "29d33315f675705c1dfb4956c5bb0677498ffa114305f0d573253bb1c5e4e2b5",
    ),
];

/// A sparse file far too large to hash before a cancel arrives.
const HUGE: (&str, u64) = ("huge.img", 16 << 30);

/// Passes every message it gets on to the test.
struct Forward<M>(PhantomData<fn() -> M>);

impl<M: Message> Actor for Forward<M> {
    type Msg = M;
    type State = mpsc::UnboundedSender<M>;
    type Arguments = mpsc::UnboundedSender<M>;

    async fn pre_start(
        &self,
        _myself: ActorRef<M>,
        to_test: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(to_test)
    }

    async fn handle(
        &self,
        _myself: ActorRef<M>,
        message: M,
        to_test: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = to_test.send(message);
        Ok(())
    }
}

/// A slot holding a [`Forward`] actor, and what it receives.
async fn forwarded<M: Message>() -> (ActorSlot<M>, mpsc::UnboundedReceiver<M>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (actor, _) = Actor::spawn(None, Forward(PhantomData), tx).await.unwrap();
    let slot = ActorSlot::default();
    slot.set(actor);
    (slot, rx)
}

/// One hasher state over a temp image root; task reports and what the
/// catalog is told come back to the test.
struct Bench {
    root: tempfile::TempDir,
    state: HasherState,
    reports: mpsc::UnboundedReceiver<HasherMessage>,
    told: mpsc::UnboundedReceiver<CatalogMessage>,
}

impl Bench {
    async fn new(max_parallel: usize) -> Self {
        let root = tempfile::tempdir().unwrap();
        let (me, reports) = forwarded().await;
        let (catalog, told) = forwarded().await;
        let args = HasherArgs {
            image_root: root.path().to_owned(),
            max_parallel,
            events: EventBus::new(),
            catalog: CatalogHandle::new(catalog),
            me: HasherHandle::new(me),
        };
        Self {
            root,
            state: HasherState::new(args),
            reports,
            told,
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.path().join(name), bytes).unwrap();
    }

    fn write_big(&self, (name, byte, _): (&str, u8, &str)) {
        self.write(name, &vec![byte; 5 << 20]);
    }

    fn write_huge(&self) {
        let file = std::fs::File::create(self.root.path().join(HUGE.0)).unwrap();
        file.set_len(HUGE.1).unwrap();
    }

    /// What an `Enqueue` does: look at the file, then make its job.
    fn enqueue(&mut self, name: &str) -> JobSnapshot {
        let file = look(self.root.path(), name).unwrap();
        self.state.enqueue(name, file)
    }

    fn job(&self, id: &str) -> JobSnapshot {
        self.state.get(id).unwrap()
    }

    fn states(&self, jobs: &[&JobSnapshot]) -> Vec<JobState> {
        jobs.iter().map(|j| self.job(&j.id).state).collect()
    }

    /// The next report that ends a job, handled as the actor would; its id.
    async fn next_end(&mut self) -> String {
        loop {
            let report = tokio::time::timeout(REPORT_WITHIN, self.reports.recv())
                .await
                .expect("a task report in time")
                .expect("reports open");
            match report {
                HasherMessage::Progress { id, bytes_done } => self.state.progress(&id, bytes_done),
                HasherMessage::Finished { id, name, outcome } => {
                    self.state.finished(&id, &name, outcome);
                    return id;
                }
                other => panic!("unexpected report {other:?}"),
            }
        }
    }

    /// The next "this file is hashed" the catalog was told.
    async fn next_told(&mut self) -> (String, String) {
        loop {
            let told = tokio::time::timeout(REPORT_WITHIN, self.told.recv())
                .await
                .expect("the catalog told in time")
                .expect("catalog open");
            if let CatalogMessage::ImageHashed { name, sha256 } = told {
                return (name, sha256);
            }
        }
    }

    fn sidecar(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.path().join(format!("{name}.sha256"))).ok()
    }

    /// The job ended completed with `sha256`, and the sidecar says so.
    fn assert_hashed(&self, job: &JobSnapshot, sha256: &str) {
        let job = self.job(&job.id);
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.sha256.as_deref(), Some(sha256));
        assert_eq!(
            self.sidecar(&job.subject).as_deref(),
            Some(format!("{sha256}  {}\n", job.subject).as_str())
        );
    }
}

#[tokio::test]
async fn more_jobs_than_max_parallel_wait_and_start_in_order() {
    let mut bench = Bench::new(1).await;
    for big in BIG {
        bench.write_big(big);
    }
    let jobs: Vec<JobSnapshot> = BIG.iter().map(|(n, ..)| bench.enqueue(n)).collect();
    let jobs: Vec<&JobSnapshot> = jobs.iter().collect();
    use JobState::{Completed, Queued, Running};
    assert_eq!(bench.states(&jobs), [Running, Queued, Queued]);
    let mut expected = vec![
        [Completed, Running, Queued],
        [Completed, Completed, Running],
        [Completed, Completed, Completed],
    ]
    .into_iter();
    for (i, (name, _, sha256)) in BIG.iter().enumerate() {
        let ended = bench.next_end().await;
        assert_eq!(ended, jobs[i].id, "jobs end in the order they started");
        assert_eq!(bench.states(&jobs), expected.next().unwrap());
        bench.assert_hashed(jobs[i], sha256);
        assert_eq!(
            bench.next_told().await,
            ((*name).to_owned(), (*sha256).to_owned())
        );
    }
    // A second request for a hashed file completes at once from its sidecar.
    let again = bench.enqueue(BIG[0].0);
    assert_ne!(again.id, jobs[0].id);
    assert_eq!(again.state, Completed);
    assert_eq!(again.sha256.as_deref(), Some(BIG[0].2));
}

#[tokio::test]
async fn lookups_that_come_back_out_of_order_still_queue_in_request_order() {
    let mut bench = Bench::new(1).await;
    for big in BIG {
        bench.write_big(big);
    }
    let tickets: Vec<u64> = BIG.iter().map(|_| bench.state.lookups.ticket()).collect();
    // The last request's lookup finishes first, the first one's last.
    for (ticket, (name, ..)) in tickets.iter().zip(BIG).rev() {
        let looked = Looked {
            name: name.to_owned(),
            looked: look(bench.root.path(), name),
            reply: None,
        };
        bench.state.arrived(*ticket, looked);
    }
    let jobs: Vec<JobSnapshot> = BIG
        .iter()
        .map(|(name, ..)| {
            let job = bench.state.jobs.find_active_subject(name).unwrap();
            job.snapshot.clone()
        })
        .collect();
    let jobs: Vec<&JobSnapshot> = jobs.iter().collect();
    use JobState::{Queued, Running};
    assert_eq!(
        bench.states(&jobs),
        [Running, Queued, Queued],
        "the first request runs, the later ones wait"
    );
    assert_eq!(bench.next_end().await, jobs[0].id);
    assert_eq!(bench.states(&jobs)[1], Running);
}

#[tokio::test]
async fn cancel_ends_a_queued_job_at_once_and_stops_a_running_one() {
    let mut bench = Bench::new(1).await;
    bench.write_huge();
    bench.write_big(BIG[1]);
    let huge = bench.enqueue(HUGE.0);
    let queued = bench.enqueue(BIG[1].0);
    assert_eq!(huge.state, JobState::Running);
    assert_eq!(queued.state, JobState::Queued);

    let cancelled = bench.state.cancel(&queued.id).unwrap();
    assert_eq!(
        cancelled.state,
        JobState::Cancelled,
        "a queued job ends at once"
    );

    let asked = bench.state.cancel(&huge.id).unwrap();
    assert_eq!(asked.state, JobState::Running, "its task reports the end");
    assert_eq!(bench.next_end().await, huge.id);
    let ended = bench.job(&huge.id);
    assert_eq!(ended.state, JobState::Cancelled);
    assert_eq!(ended.error.as_deref(), Some("cancelled by operator"));
    assert_eq!(ended.sha256, None);
    assert_eq!(
        bench.sidecar(HUGE.0),
        None,
        "a cancelled hash writes nothing"
    );

    // The cancelled queued job never started, even with the lane free.
    assert_eq!(bench.job(&queued.id).state, JobState::Cancelled);
    assert_eq!(bench.state.jobs.running(), 0);
    assert_eq!(bench.sidecar(BIG[1].0), None);
    assert!(bench.state.cancel("hash-none").is_err());
}

#[tokio::test]
async fn small_files_take_the_quick_lane_beside_a_full_main_lane() {
    let mut bench = Bench::new(1).await;
    bench.write_huge();
    bench.write_big(BIG[2]);
    let huge = bench.enqueue(HUGE.0);
    let waiting = bench.enqueue(BIG[2].0);
    assert_eq!(waiting.state, JobState::Queued, "the main lane is full");
    for (name, content, _) in SMALL {
        bench.write(name, content.as_bytes());
    }
    let small: Vec<JobSnapshot> = SMALL.iter().map(|(n, ..)| bench.enqueue(n)).collect();
    for job in &small {
        assert_eq!(
            job.state,
            JobState::Running,
            "{} waits for nothing",
            job.subject
        );
    }
    for _ in &small {
        let ended = bench.next_end().await;
        assert!(small.iter().any(|j| j.id == ended), "only small jobs end");
    }
    for (job, (_, _, sha256)) in small.iter().zip(SMALL) {
        bench.assert_hashed(job, sha256);
    }
    assert_eq!(bench.job(&huge.id).state, JobState::Running);
    assert_eq!(bench.job(&waiting.id).state, JobState::Queued);

    // The main lane frees: the big file starts and hashes.
    bench.state.cancel(&huge.id).unwrap();
    assert_eq!(bench.next_end().await, huge.id);
    assert_eq!(bench.job(&waiting.id).state, JobState::Running);
    assert_eq!(bench.next_end().await, waiting.id);
    bench.assert_hashed(&waiting, BIG[2].2);
}

#[tokio::test]
async fn a_restarted_hasher_starts_empty_and_a_survivors_sidecar_still_reaches_the_catalog() {
    let mut old = Bench::new(1).await;
    old.write_big(BIG[0]);
    let job = old.enqueue(BIG[0].0);
    // The old incarnation is gone before its task reports.
    let report = tokio::time::timeout(REPORT_WITHIN, async {
        loop {
            match old.reports.recv().await {
                Some(HasherMessage::Finished { id, name, outcome }) => break (id, name, outcome),
                Some(_) => {}
                None => panic!("reports closed"),
            }
        }
    })
    .await
    .unwrap();
    let args = old.state.args.clone();
    drop(std::mem::replace(&mut old.state, HasherState::new(args)));
    assert_eq!(old.state.list(), [], "a new incarnation has no jobs");

    let (id, name, outcome) = report;
    assert_eq!(id, job.id);
    old.state.finished(&id, &name, outcome);
    assert_eq!(old.state.list(), [], "the old job is not adopted");
    assert_eq!(
        old.next_told().await,
        (BIG[0].0.to_owned(), BIG[0].2.to_owned()),
        "the catalog still learns of the sidecar"
    );
    assert_eq!(
        old.sidecar(BIG[0].0).as_deref(),
        Some(format!("{}  {}\n", BIG[0].2, BIG[0].0).as_str())
    );
    // Queued again after the restart (as the catalog does), the file is
    // completed from its fresh sidecar without a task.
    let again = old.enqueue(BIG[0].0);
    assert_eq!(again.state, JobState::Completed);
    assert_eq!(again.sha256.as_deref(), Some(BIG[0].2));
    assert_eq!(old.state.jobs.running(), 0);
}

#[tokio::test]
async fn a_stopping_hasher_cancels_its_running_hash_without_a_sidecar() {
    let mut bench = Bench::new(1).await;
    bench.write_huge();
    // The real actor, whose tasks report to the bench (standing in for the
    // next incarnation).
    let (hasher, done) = Actor::spawn(None, HasherActor, bench.state.args.clone())
        .await
        .unwrap();
    let job = ask_ref(&hasher, "hasher", QUICK, |reply| HasherMessage::Enqueue {
        name: HUGE.0.to_owned(),
        reply: Some(reply),
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(job.state, JobState::Running);
    hasher.stop(None);
    done.await.unwrap();
    let outcome = tokio::time::timeout(REPORT_WITHIN, async {
        loop {
            match bench.reports.recv().await {
                Some(HasherMessage::Finished { id, outcome, .. }) => break (id, outcome),
                Some(_) => {}
                None => panic!("reports closed"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(outcome.0, job.id);
    assert!(matches!(outcome.1, HashOutcome::Cancelled), "{outcome:?}");
    assert_eq!(bench.sidecar(HUGE.0), None);
}
