//! The hasher actor: a queue of hash jobs and a flat `match` over messages.
//! Bytes are read by [`super::task::HashTask`] on the blocking pool.

use super::error::HasherError;
use super::handle::HasherHandle;
use super::messages::{HashOutcome, HasherMessage, LookedFile};
use super::task::HashTask;
use crate::actors::catalog::CatalogHandle;
use crate::actors::job_query::JobBook;
use crate::events::EventBus;
use crate::jobs::in_order::InOrder;
use crate::jobs::table::{CancelOutcome, JobTable, Lane};
use crate::jobs::{JobKind, JobPhase, JobSnapshot, JobState};
use bty_store::atomic::{RenameSync, fsync_dir};
use bty_store::identity::FileIdentity;
use bty_store::names::{is_cache_file_name, validate_image_file_name};
use bty_store::sidecar::{Sidecar, read_sidecar};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::path::PathBuf;
use std::time::Duration;

/// Finished jobs kept for listing.
const HISTORY: usize = 200;
/// Wait before re-hashing a file that changed under us (still being written).
const SETTLE: Duration = Duration::from_secs(1);
/// Files up to this size hash in the quick lane, beside `max_parallel`:
/// their time is the sidecar's fsyncs, not reading (a few ms at most).
const QUICK_MAX_BYTES: u64 = 4 << 20;
/// Quick-lane hashes at once: enough to overlap the fsyncs of a drop of
/// many small files (the journal commits them together).
const QUICK_PARALLEL: usize = 8;
/// Small files' sidecars whose renames may wait for one directory sync:
/// a flush costs as much as hashing a small file, so a drop of many small
/// files syncs the image root once per this many (and when the burst
/// ends), not once per file. A crash before the sync loses at most these
/// renames, and those files are hashed again at the next start.
const DEFERRED_RENAMES_MAX: usize = 256;

/// What the supervisor gives the hasher at each (re)start.
#[derive(Debug, Clone)]
pub struct HasherArgs {
    /// The image store.
    pub image_root: PathBuf,
    /// Jobs running at once.
    pub max_parallel: usize,
    /// Where job events go.
    pub events: EventBus,
    /// Told about every hash.
    pub catalog: CatalogHandle,
    /// This actor's own handle, given to tasks for their reports.
    pub me: HasherHandle,
}

/// The behaviour.
#[derive(Debug, Default)]
pub struct HasherActor;

/// The hasher's state: its jobs, each with the file as it was when the
/// hash was asked for (the task hashes it only if the name still holds
/// that file).
#[derive(Debug)]
pub struct HasherState {
    args: HasherArgs,
    jobs: JobTable<FileIdentity>,
    /// Lookups run in parallel; their jobs queue in request order.
    lookups: InOrder<Looked>,
    /// Small-file tasks running, whose sidecar renames wait for
    /// [`HasherState::sync_deferred_renames`].
    deferring: usize,
    /// Sidecars renamed since the image root was last synced.
    unsynced_renames: usize,
}

/// A looked-at file waiting for its turn to become a job.
#[derive(Debug)]
struct Looked {
    name: String,
    looked: Result<LookedFile, HasherError>,
    reply: Option<ractor::RpcReplyPort<Result<JobSnapshot, HasherError>>>,
}

impl Actor for HasherActor {
    type Msg = HasherMessage;
    type State = HasherState;
    type Arguments = HasherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: HasherArgs,
    ) -> Result<HasherState, ActorProcessingErr> {
        Ok(HasherState::new(args))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut HasherState,
    ) -> Result<(), ActorProcessingErr> {
        // A stopping daemon must not wait for a long hash: tasks stop at the
        // next chunk without writing a sidecar, and the file is hashed again
        // at the next start.
        state.jobs.cancel_running();
        if state.unsynced_renames > 0 {
            let root = state.args.image_root.clone();
            let synced = tokio::task::spawn_blocking(move || fsync_dir(&root)).await;
            if !matches!(synced, Ok(Ok(()))) {
                tracing::warn!("cannot sync the image root's new sidecars at stop");
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: HasherMessage,
        state: &mut HasherState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HasherMessage::Enqueue { name, reply } => {
                // Checking the name, the file and its sidecar reads the
                // disk: that happens on the blocking pool, and the job is
                // made when the result comes back.
                let root = state.args.image_root.clone();
                let ticket = state.lookups.ticket();
                tokio::task::spawn_blocking(move || {
                    let looked = look(&root, &name);
                    let message = HasherMessage::Looked {
                        ticket,
                        name,
                        looked,
                        reply,
                    };
                    if myself.cast(message).is_err() {
                        tracing::debug!("hasher stopped while a file was looked at");
                    }
                });
            }
            HasherMessage::Looked {
                ticket,
                name,
                looked,
                reply,
            } => {
                let arrived = Looked {
                    name,
                    looked,
                    reply,
                };
                state.arrived(ticket, arrived);
            }
            HasherMessage::Progress { id, bytes_done } => state.progress(&id, bytes_done),
            HasherMessage::Finished { id, name, outcome } => state.finished(&id, &name, outcome),
            HasherMessage::Jobs(query) => query.answer(state),
            #[cfg(feature = "fault-injection")]
            HasherMessage::InjectPanic => panic!("injected hasher fault"),
        }
        Ok(())
    }
}

/// Look at `name` in `root` (blocking): a hashable name, a regular file,
/// and its sidecar.
fn look(root: &std::path::Path, name: &str) -> Result<LookedFile, HasherError> {
    // Cached downloads are hashable too; every other reserved name is not.
    if !is_cache_file_name(name) {
        validate_image_file_name(name)?;
    }
    let path = root.join(name);
    let no_such_file = || HasherError::NoSuchFile {
        name: name.to_owned(),
    };
    let meta = std::fs::symlink_metadata(&path).map_err(|_| no_such_file())?;
    if !meta.file_type().is_file() {
        return Err(no_such_file());
    }
    let fresh_sha256 = match read_sidecar(&path) {
        Sidecar::Fresh(sha) => Some(sha),
        _ => None,
    };
    Ok(LookedFile {
        identity: FileIdentity::of(&meta),
        size: meta.len(),
        fresh_sha256,
    })
}

impl HasherState {
    /// A fresh incarnation's state: no jobs (history is lost at a restart;
    /// the catalog queues the unhashed files again).
    fn new(args: HasherArgs) -> Self {
        Self {
            jobs: JobTable::new(args.max_parallel, HISTORY).with_quick_lane(QUICK_PARALLEL),
            lookups: InOrder::default(),
            deferring: 0,
            unsynced_renames: 0,
            args,
        }
    }

    /// A lookup came back: it and every later one now due become jobs.
    fn arrived(&mut self, ticket: u64, looked: Looked) {
        for due in self.lookups.arrive(ticket, looked) {
            self.looked(due);
        }
    }

    /// A lookup's turn came: make its job, or tell why not.
    fn looked(
        &mut self,
        Looked {
            name,
            looked,
            reply,
        }: Looked,
    ) {
        let result = looked.map(|file| self.enqueue(&name, file));
        if let Err(e) = &result {
            tracing::debug!(name, error = %bty_store::chain::Chain(e), "hash request refused");
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    /// Make the job of a looked-at file (or return the active one).
    fn enqueue(&mut self, name: &str, file: LookedFile) -> JobSnapshot {
        if let Some(active) = self.jobs.find_active_subject(name) {
            return active.snapshot.clone();
        }
        let mut snapshot = JobSnapshot::queued(JobKind::Hash, name, Some(file.size));
        if let Some(sha) = file.fresh_sha256 {
            // Never re-hash a file whose sidecar is fresh.
            snapshot.start(JobPhase::Hashing);
            snapshot.bytes_done = file.size;
            snapshot.sha256 = Some(sha.clone());
            snapshot.finish(JobState::Completed, None);
            self.args.events.job(&snapshot);
            self.args.catalog.image_hashed(name, &sha);
            return self.jobs.insert(snapshot, file.identity);
        }
        self.args.events.job(&snapshot);
        let lane = if file.size <= QUICK_MAX_BYTES {
            Lane::Quick
        } else {
            Lane::Main
        };
        self.jobs.insert_in(lane, snapshot.clone(), file.identity);
        self.start_queued();
        self.jobs
            .get(&snapshot.id)
            .map_or(snapshot, |j| j.snapshot.clone())
    }

    fn start_queued(&mut self) {
        while let Some(job) = self.jobs.start_next(|_| JobPhase::Hashing) {
            self.args.events.job(&job.snapshot);
            let rename_sync = if job.work.size <= QUICK_MAX_BYTES {
                self.deferring += 1;
                RenameSync::Deferred
            } else {
                RenameSync::Now
            };
            let task = HashTask {
                id: job.snapshot.id.clone(),
                name: job.snapshot.subject.clone(),
                image_root: self.args.image_root.clone(),
                expected: job.work,
                cancel: job.cancel.clone(),
                handle: self.args.me.clone(),
                rename_sync,
            };
            tokio::task::spawn_blocking(move || task.run());
        }
    }

    /// Once a burst of small files is over (none running, so none queued
    /// either) or enough renames wait, sync the image root once for all of
    /// them, on the blocking pool.
    fn sync_renames_if_due(&mut self) {
        if self.unsynced_renames == 0
            || (self.deferring > 0 && self.unsynced_renames < DEFERRED_RENAMES_MAX)
        {
            return;
        }
        self.unsynced_renames = 0;
        let root = self.args.image_root.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = fsync_dir(&root) {
                tracing::warn!(root = %root.display(), error = %e, "cannot sync the image root after writing sidecars");
            }
        });
    }

    fn progress(&mut self, id: &str, bytes_done: u64) {
        if let Some(snapshot) = self.jobs.progress(id, bytes_done, None) {
            self.args.events.job(snapshot);
        }
    }

    fn finished(&mut self, id: &str, name: &str, outcome: HashOutcome) {
        let renamed = matches!(outcome, HashOutcome::Hashed { .. });
        if let HashOutcome::Hashed { sha256, .. } = &outcome {
            // Even a job this incarnation never started (it survived a
            // restart) wrote a valid sidecar: the catalog must know.
            self.args.catalog.image_hashed(name, sha256);
        }
        let Some(job) = self.jobs.end(id) else {
            tracing::info!(id, name, "result of a job from before a restart");
            // Its rename may be one the last incarnation deferred.
            self.unsynced_renames += usize::from(renamed);
            self.sync_renames_if_due();
            return;
        };
        let deferred = job.work.size <= QUICK_MAX_BYTES;
        match outcome {
            HashOutcome::Hashed { sha256, bytes } => {
                job.snapshot.bytes_done = bytes;
                job.snapshot.sha256 = Some(sha256);
                job.snapshot.finish(JobState::Completed, None);
            }
            HashOutcome::Cancelled => {
                job.snapshot.finish(
                    JobState::Cancelled,
                    Some("cancelled by operator".to_owned()),
                );
            }
            HashOutcome::Failed(failure) => {
                let reason = bty_store::chain::chain(&failure);
                tracing::warn!(name, reason, "hash failed");
                job.snapshot.finish(JobState::Failed, Some(reason));
            }
            HashOutcome::Changed => {
                job.snapshot.finish(
                    JobState::Failed,
                    Some("file changed while hashing; hashing again once it settles".to_owned()),
                );
                let me = self.args.me.clone();
                let name = name.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(SETTLE).await;
                    me.enqueue_detached(&name);
                });
            }
        }
        self.args.events.job(&job.snapshot);
        if deferred {
            self.deferring = self.deferring.saturating_sub(1);
            self.unsynced_renames += usize::from(renamed);
        }
        self.start_queued();
        self.sync_renames_if_due();
    }
}

impl JobBook<HasherError> for HasherState {
    fn list(&self) -> Vec<JobSnapshot> {
        self.jobs.list()
    }

    fn get(&self, id: &str) -> Option<JobSnapshot> {
        self.jobs.get(id).map(|j| j.snapshot.clone())
    }

    fn cancel(&mut self, id: &str) -> Result<JobSnapshot, HasherError> {
        // A running task checks the token per chunk and reports `Cancelled`.
        let (outcome, job) = self
            .jobs
            .cancel(id)
            .ok_or_else(|| HasherError::NoSuchJob { id: id.to_owned() })?;
        if outcome == CancelOutcome::Dequeued {
            self.args.events.job(&job.snapshot);
        }
        Ok(job.snapshot.clone())
    }
}

#[cfg(test)]
mod tests;
