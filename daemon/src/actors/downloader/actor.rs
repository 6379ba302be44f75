//! The downloader actor: a queue of download and push jobs (at most
//! `max_parallel` running), persisted so restarts resume them, and upload
//! jobs beside them (outside the cap: a client sets their pace); a flat
//! `match` over messages. Bytes move in tasks (`task.rs`, `upload_job.rs`).

use super::error::DownloaderError;
use super::handle::DownloaderHandle;
use super::job_files::JobFiles;
use super::messages::{DownloaderMessage, JobOutcome, UploadRequest, Uploaded};
use super::signed_sums::{self, HttpTrust};
use super::stream::{StreamContext, open_stream};
use super::task::{TaskContext, run_download, run_push};
use super::upload_job::{UploadContext, run_upload};
use super::{persist, task};
use crate::actors::call::{Running, ended};
use crate::actors::catalog::CatalogHandle;
use crate::actors::job_query::JobBook;
use crate::domain::{DownloadSpec, LocalImage};
use crate::events::EventBus;
use crate::jobs::table::{CancelOutcome, JobTable};
use crate::jobs::{JobKind, JobPhase, JobSnapshot, JobState};
use bty_fetch::FetchOptions;
use bty_oci::OciClient;
use bty_store::chain::chain;
use bty_store::names::validate_image_file_name;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Finished jobs kept for listing.
const HISTORY: usize = 200;

/// Tasks of every incarnation, so a restarted downloader can stop the
/// previous one's tasks (they would race the resumed jobs for the same
/// `.partial` files). Aborting keeps partials for resume.
pub type TaskRegistry = Arc<Mutex<Vec<AbortHandle>>>;

/// What the supervisor gives the downloader at each (re)start.
#[derive(Debug, Clone)]
pub struct DownloaderArgs {
    /// The image store.
    pub image_root: PathBuf,
    /// `state_dir/jobs`.
    pub jobs_dir: PathBuf,
    /// Jobs running at once.
    pub max_parallel: usize,
    /// Largest upload accepted.
    pub max_upload_bytes: u64,
    /// HTTP client (shared connection pool).
    pub http: reqwest::Client,
    /// OCI client (shared token cache).
    pub oci: OciClient,
    /// Retry/stall policy.
    pub fetch_options: FetchOptions,
    /// Job events.
    pub events: EventBus,
    /// Told when bytes land.
    pub catalog: CatalogHandle,
    /// This actor's own handle, for task reports.
    pub me: DownloaderHandle,
    /// Tasks of every incarnation.
    pub tasks: TaskRegistry,
    /// `[[trust]]` rules over http(s) sources.
    pub http_trust: HttpTrust,
}

/// The behaviour.
#[derive(Debug, Default)]
pub struct DownloaderActor;

#[derive(Debug)]
enum Work {
    Download(DownloadSpec),
    Push {
        image: LocalImage,
        target: String,
    },
    /// Started at once, outside the queue ([`JobTable::insert_uncapped`]).
    Upload {
        name: String,
    },
}

/// The downloader's state.
#[derive(Debug)]
pub struct DownloaderState {
    args: DownloaderArgs,
    jobs: JobTable<Work>,
    job_files: JobFiles,
    /// Fetches whose job file is being written, by ref, with everyone
    /// waiting for the job.
    recording: std::collections::BTreeMap<String, Vec<FetchReply>>,
}

/// Where a fetch is answered.
type FetchReply = ractor::RpcReplyPort<Result<JobSnapshot, DownloaderError>>;

impl Actor for DownloaderActor {
    type Msg = DownloaderMessage;
    type State = DownloaderState;
    type Arguments = DownloaderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: DownloaderArgs,
    ) -> Result<DownloaderState, ActorProcessingErr> {
        for task in args
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let mut state = DownloaderState {
            jobs: JobTable::new(args.max_parallel, HISTORY),
            job_files: JobFiles::start(args.jobs_dir.clone())?,
            recording: std::collections::BTreeMap::new(),
            args,
        };
        let mut specs = persist::load_all(&state.args.jobs_dir);
        for spec in &mut specs {
            // A job file of an older btyd has no partial name yet.
            if spec.partial_name.is_none() {
                let named = persist::ensure_partial_name(spec);
                if let Err(e) = named.and_then(|()| persist::save(&state.args.jobs_dir, spec)) {
                    tracing::warn!(name = spec.name, error = %e, "cannot record the partial's name");
                }
            }
        }
        persist::remove_orphans(&state.args.image_root, &specs);
        for spec in specs {
            tracing::info!(name = spec.name, "resuming an interrupted download");
            state.enqueue(Work::Download(spec));
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut DownloaderState,
    ) -> Result<(), ActorProcessingErr> {
        // Checkpoint, don't cancel: dropping the tasks keeps each `.partial`
        // and its checkpoint, and the job files resume them at next start.
        let active = state.jobs.active();
        for task in state
            .args
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if active > 0 {
            tracing::info!(
                active,
                "downloads checkpointed; they resume at the next start"
            );
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: DownloaderMessage,
        state: &mut DownloaderState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DownloaderMessage::Fetch { spec, reply } => state.fetch(spec, reply),
            DownloaderMessage::Recorded {
                image_ref,
                recorded,
            } => state.recorded(&image_ref, recorded),
            DownloaderMessage::Push {
                image,
                target,
                reply,
            } => {
                let _ = reply.send(Ok(state.enqueue(Work::Push { image, target })));
            }
            DownloaderMessage::PushSignature { push, reply } => {
                let oci = state.args.oci.clone();
                let _ = reply.send(tokio::spawn(async move {
                    task::push_signature(&oci, push).await
                }));
            }
            DownloaderMessage::ResolveOras { reference, reply } => {
                let oci = state.args.oci.clone();
                let _ = reply.send(tokio::spawn(async move {
                    task::resolve_oras(&oci, &reference).await
                }));
            }
            DownloaderMessage::CheckSignedSums {
                src,
                sha_url,
                reply,
            } => {
                let (http, trust) = (state.args.http.clone(), state.args.http_trust.clone());
                let _ = reply.send(tokio::spawn(async move {
                    signed_sums::check_add(&http, &trust, &src, sha_url.as_deref())
                        .await
                        .map_err(DownloaderError::from)
                }));
            }
            DownloaderMessage::FetchDocument { url, cap, reply } => {
                let (http, oci) = (state.args.http.clone(), state.args.oci.clone());
                let _ = reply.send(tokio::spawn(async move {
                    task::fetch_document(&http, &oci, &url, cap).await
                }));
            }
            DownloaderMessage::OpenStream { request, reply } => {
                let ctx = StreamContext {
                    http: state.args.http.clone(),
                    oci: state.args.oci.clone(),
                    options: state.args.fetch_options.clone(),
                    http_trust: state.args.http_trust.clone(),
                };
                let _ = reply.send(tokio::spawn(open_stream(ctx, request)));
            }
            DownloaderMessage::Upload { request, reply } => state.upload(request, reply),
            DownloaderMessage::Progress {
                id,
                bytes_done,
                bytes_total,
            } => {
                state.progress(&id, bytes_done, bytes_total);
            }
            DownloaderMessage::Finished { id, outcome } => state.finished(&id, outcome),
            DownloaderMessage::Jobs(query) => query.answer(state),
            #[cfg(feature = "fault-injection")]
            DownloaderMessage::InjectPanic => panic!("injected downloader fault"),
        }
        Ok(())
    }
}

impl DownloaderState {
    /// Queue a download once its job file is written (by the job-file
    /// thread, off the mailbox); `Recorded` answers.
    fn fetch(&mut self, spec: DownloadSpec, reply: FetchReply) {
        // A second request for an entry already queued/running joins it,
        // and one for an entry being recorded waits with the first.
        if let Some(active) = self
            .jobs
            .find_active(|j| matches!(&j.work, Work::Download(s) if s.image_ref == spec.image_ref))
        {
            let _ = reply.send(Ok(active.snapshot.clone()));
            return;
        }
        if let Some(waiting) = self.recording.get_mut(&spec.image_ref) {
            waiting.push(reply);
            return;
        }
        self.recording.insert(spec.image_ref.clone(), vec![reply]);
        let (job_files, me) = (self.job_files.clone(), self.args.me.clone());
        tokio::spawn(async move {
            let image_ref = spec.image_ref.clone();
            let recorded = job_files.record(spec).await;
            me.recorded(image_ref, recorded);
        });
    }

    /// A fetch's job file was written: queue its job, and answer everyone
    /// who asked for the entry meanwhile.
    fn recorded(&mut self, image_ref: &str, recorded: std::io::Result<DownloadSpec>) {
        let Some(replies) = self.recording.remove(image_ref) else {
            return;
        };
        match recorded {
            Ok(spec) => {
                let snapshot = self.enqueue(Work::Download(spec));
                for reply in replies {
                    let _ = reply.send(Ok(snapshot.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(DownloaderError::Io {
                        what: "cannot record the download job".to_owned(),
                        path: self.args.jobs_dir.clone(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    }));
                }
            }
        }
    }

    fn enqueue(&mut self, work: Work) -> JobSnapshot {
        let (kind, subject, total) = match &work {
            Work::Download(spec) => (JobKind::Download, spec.name.clone(), spec.size_bytes),
            Work::Push { image, target } => (
                JobKind::Push,
                format!("{} → {target}", image.file_name),
                Some(image.size_bytes),
            ),
            Work::Upload { name } => (JobKind::Upload, name.clone(), None),
        };
        let snapshot = JobSnapshot::queued(kind, subject, total);
        self.args.events.job(&snapshot);
        let queued = self.jobs.insert(snapshot, work);
        self.start_queued();
        self.jobs
            .get(&queued.id)
            .map_or(queued, |j| j.snapshot.clone())
    }

    fn start_queued(&mut self) {
        let phase = |work: &Work| match work {
            Work::Download(_) => JobPhase::Downloading,
            Work::Push { .. } => JobPhase::Pushing,
            Work::Upload { .. } => JobPhase::Downloading,
        };
        while let Some(job) = self.jobs.start_next(phase) {
            self.args.events.job(&job.snapshot);
            let ctx = TaskContext {
                id: job.snapshot.id.clone(),
                image_root: self.args.image_root.clone(),
                jobs_dir: self.args.jobs_dir.clone(),
                http: self.args.http.clone(),
                oci: self.args.oci.clone(),
                fetch_options: self.args.fetch_options.clone(),
                http_trust: self.args.http_trust.clone(),
                catalog: self.args.catalog.clone(),
                me: self.args.me.clone(),
                cancel: job.cancel.clone(),
            };
            let handle = match &job.work {
                Work::Download(spec) => tokio::spawn(run_download(ctx, spec.clone())),
                Work::Push { image, target } => {
                    tokio::spawn(run_push(ctx, image.clone(), target.clone()))
                }
                // Never queued: an upload's task starts with its job.
                Work::Upload { .. } => continue,
            };
            let mut tasks = self.args.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle.abort_handle());
        }
    }

    fn progress(&mut self, id: &str, bytes_done: u64, bytes_total: Option<u64>) {
        if let Some(snapshot) = self.jobs.progress(id, bytes_done, bytes_total) {
            self.args.events.job(snapshot);
        }
    }

    fn finished(&mut self, id: &str, outcome: JobOutcome) {
        let Some(job) = self.jobs.end(id) else {
            return;
        };
        match outcome {
            JobOutcome::Completed {
                sha256,
                bytes,
                note,
            } => {
                job.snapshot.sha256 = sha256;
                job.snapshot.bytes_done = bytes.max(job.snapshot.bytes_done);
                job.snapshot.finish(JobState::Completed, None);
                if !note.is_empty() {
                    job.snapshot.note = Some(note);
                }
            }
            JobOutcome::Cancelled => {
                job.snapshot.finish(
                    JobState::Cancelled,
                    Some("cancelled by operator".to_owned()),
                );
            }
            JobOutcome::Failed(failure) => {
                let reason = chain(&failure);
                tracing::warn!(subject = job.snapshot.subject, reason, "job failed");
                job.snapshot.finish(JobState::Failed, Some(reason));
            }
        }
        if let Work::Download(spec) = &job.work {
            // The job is over: a partial it leaves would never be resumed.
            let partial = spec
                .partial_name
                .as_ref()
                .filter(|_| job.snapshot.state != JobState::Completed)
                .map(|p| self.args.image_root.join(p));
            self.job_files.forget(&spec.image_ref, partial);
        }
        self.args.events.job(&job.snapshot);
        self.start_queued();
    }

    /// Start an upload's job and its task (answered at once); the job
    /// ends when the task reports.
    fn upload(
        &mut self,
        request: UploadRequest,
        reply: RpcReplyPort<Running<Uploaded, DownloaderError>>,
    ) {
        if let Err(e) = validate_image_file_name(&request.name) {
            let _ = reply.send(ended(Err(e.into())));
            return;
        }
        // A second upload of a name is refused, so two streams never race
        // to replace the same file and sidecar.
        if self
            .jobs
            .find_active(|j| matches!(&j.work, Work::Upload { name } if *name == request.name))
            .is_some()
        {
            let _ = reply.send(ended(Err(DownloaderError::Busy { name: request.name })));
            return;
        }
        let queued = JobSnapshot::queued(JobKind::Upload, &request.name, request.size_bytes);
        self.args.events.job(&queued);
        let work = Work::Upload {
            name: request.name.clone(),
        };
        let job = self
            .jobs
            .insert_uncapped(queued, work, JobPhase::Downloading);
        self.args.events.job(&job.snapshot);
        let ctx = UploadContext {
            id: job.snapshot.id.clone(),
            image_root: self.args.image_root.clone(),
            cap: self.args.max_upload_bytes,
            catalog: self.args.catalog.clone(),
            events: self.args.events.clone(),
            me: self.args.me.clone(),
            cancel: job.cancel.clone(),
        };
        let _ = reply.send(tokio::spawn(run_upload(ctx, request)));
    }
}

impl JobBook<DownloaderError> for DownloaderState {
    fn list(&self) -> Vec<JobSnapshot> {
        self.jobs.list()
    }

    fn get(&self, id: &str) -> Option<JobSnapshot> {
        self.jobs.get(id).map(|j| j.snapshot.clone())
    }

    fn cancel(&mut self, id: &str) -> Result<JobSnapshot, DownloaderError> {
        let (outcome, job) = self
            .jobs
            .cancel(id)
            .ok_or_else(|| DownloaderError::NoSuchJob { id: id.to_owned() })?;
        if outcome == CancelOutcome::Dequeued {
            if let Work::Download(spec) = &job.work {
                self.job_files.forget(&spec.image_ref, None);
            }
            self.args.events.job(&job.snapshot);
        }
        Ok(job.snapshot.clone())
    }
}
