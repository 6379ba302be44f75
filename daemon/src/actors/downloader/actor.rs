//! The downloader actor: a queue of download and push jobs (at most
//! `max_parallel` running), persisted so restarts resume them; a flat
//! `match` over messages. Bytes move in tasks (`task.rs`, `upload.rs`).

use super::error::DownloaderError;
use super::handle::DownloaderHandle;
use super::messages::{DownloaderMessage, JobOutcome, UploadRequest, Uploaded};
use super::signed_sums::{self, HttpTrust};
use super::stream::{StreamContext, open_stream};
use super::task::{TaskContext, run_download, run_push};
use super::{persist, task, upload};
use crate::actors::call::{Running, ended};
use crate::actors::catalog::CatalogHandle;
use crate::actors::job_query::JobBook;
use crate::chain::chain;
use crate::domain::{DownloadSpec, LocalImage};
use crate::events::{CatalogEvent, CatalogEventKind, EventBus};
use crate::jobs::table::{CancelOutcome, JobTable};
use crate::jobs::{JobKind, JobPhase, JobSnapshot, JobState};
use bty_fetch::FetchOptions;
use bty_oci::OciClient;
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
    Push { image: LocalImage, target: String },
}

/// The downloader's state.
#[derive(Debug)]
pub struct DownloaderState {
    args: DownloaderArgs,
    jobs: JobTable<Work>,
    /// Names being uploaded: a second upload of one is refused, so two
    /// streams never race to replace the same file and sidecar.
    uploads: std::collections::BTreeSet<String>,
}

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
            args,
            uploads: std::collections::BTreeSet::new(),
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
            DownloaderMessage::Fetch { spec, reply } => {
                let _ = reply.send(state.fetch(spec));
            }
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
            DownloaderMessage::OpenStream {
                src,
                pinned_sha256,
                sha_url,
                name,
                from,
                reply,
            } => {
                let ctx = StreamContext {
                    http: state.args.http.clone(),
                    oci: state.args.oci.clone(),
                    options: state.args.fetch_options.clone(),
                    http_trust: state.args.http_trust.clone(),
                };
                let _ = reply.send(tokio::spawn(async move {
                    open_stream(
                        ctx,
                        &src,
                        pinned_sha256.as_deref(),
                        sha_url.as_deref(),
                        name,
                        from,
                    )
                    .await
                }));
            }
            DownloaderMessage::Upload { request, reply } => state.upload(request, reply),
            DownloaderMessage::UploadEnded { name } => {
                state.uploads.remove(&name);
            }
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
    fn fetch(&mut self, mut spec: DownloadSpec) -> Result<JobSnapshot, DownloaderError> {
        // A second request for an entry already queued/running joins it.
        if let Some(active) = self
            .jobs
            .find_active(|j| matches!(&j.work, Work::Download(s) if s.image_ref == spec.image_ref))
        {
            return Ok(active.snapshot.clone());
        }
        persist::ensure_partial_name(&mut spec)
            .and_then(|()| persist::save(&self.args.jobs_dir, &spec))
            .map_err(|source| DownloaderError::Io {
                what: "cannot record the download job".to_owned(),
                path: self.args.jobs_dir.clone(),
                source,
            })?;
        Ok(self.enqueue(Work::Download(spec)))
    }

    fn enqueue(&mut self, work: Work) -> JobSnapshot {
        let (kind, subject, total) = match &work {
            Work::Download(spec) => (JobKind::Download, spec.name.clone(), spec.size_bytes),
            Work::Push { image, target } => (
                JobKind::Push,
                format!("{} → {target}", image.file_name),
                Some(image.size_bytes),
            ),
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
            persist::remove(&self.args.jobs_dir, &spec.image_ref);
            if job.snapshot.state != JobState::Completed
                && let Some(partial) = &spec.partial_name
            {
                // The job is over: its partial would never be resumed.
                // (Unlinking removes the entry, never a link's target.)
                let _ = std::fs::remove_file(self.args.image_root.join(partial));
            }
        }
        self.args.events.job(&job.snapshot);
        self.start_queued();
    }

    fn upload(
        &mut self,
        request: UploadRequest,
        reply: RpcReplyPort<Running<Uploaded, DownloaderError>>,
    ) {
        if let Err(e) = validate_image_file_name(&request.name) {
            let _ = reply.send(ended(Err(e.into())));
            return;
        }
        if !self.uploads.insert(request.name.clone()) {
            let _ = reply.send(ended(Err(DownloaderError::Busy { name: request.name })));
            return;
        }
        let me = self.args.me.clone();
        let image_root = self.args.image_root.clone();
        let cap = self.args.max_upload_bytes;
        let catalog = self.args.catalog.clone();
        let events = self.args.events.clone();
        let _ = reply.send(tokio::spawn(async move {
            let name = request.name.clone();
            if let Err(e) = catalog.expect_landing(&name).await {
                me.upload_ended(&name);
                return Err(e.into());
            }
            let result = tokio::task::spawn_blocking(move || {
                upload::store_upload(&image_root, request, cap)
            })
            .await
            .unwrap_or_else(|e| Err(DownloaderError::UploadTask(e)));
            report_upload(&catalog, &events, &name, &result);
            me.upload_ended(&name);
            result
        }));
    }
}

/// Tell the catalog and the event bus how an upload ended: a stored file
/// (bytes and sidecar in place) is announced as uploaded with its sha256;
/// only a failed or cancelled one is a landing abandoned.
fn report_upload(
    catalog: &CatalogHandle,
    events: &EventBus,
    name: &str,
    result: &Result<Uploaded, DownloaderError>,
) {
    match result {
        Ok(done) => {
            catalog.uploaded(name, &done.sha256);
            events.catalog(CatalogEvent::new(
                CatalogEventKind::ImageUploaded,
                name,
                format!("{name} uploaded ({} bytes)", done.size_bytes),
            ));
        }
        Err(e) => {
            catalog.landing_abandoned(name);
            events.catalog(CatalogEvent::new(
                CatalogEventKind::ImageUploadFailed,
                name,
                chain(e),
            ));
        }
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
                persist::remove(&self.args.jobs_dir, &spec.image_ref);
            }
            self.args.events.job(&job.snapshot);
        }
        Ok(job.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::catalog::CatalogMessage;
    use crate::actors::slot::ActorSlot;
    use crate::events::EventBody;
    use std::time::Duration;

    type Seen = Arc<Mutex<Vec<String>>>;

    /// A catalog that only writes down the landing news it gets.
    struct Recorder;

    impl Actor for Recorder {
        type Msg = CatalogMessage;
        type State = Seen;
        type Arguments = Seen;

        async fn pre_start(
            &self,
            _myself: ActorRef<Self::Msg>,
            seen: Seen,
        ) -> Result<Seen, ActorProcessingErr> {
            Ok(seen)
        }

        async fn handle(
            &self,
            _myself: ActorRef<Self::Msg>,
            message: CatalogMessage,
            seen: &mut Seen,
        ) -> Result<(), ActorProcessingErr> {
            let what = match message {
                CatalogMessage::Uploaded { name, sha256 } => format!("uploaded {name} {sha256}"),
                CatalogMessage::LandingAbandoned { name } => format!("abandoned {name}"),
                _ => "other".to_owned(),
            };
            seen.lock().unwrap().push(what);
            Ok(())
        }
    }

    /// What the catalog and the event bus hear when an upload ends with
    /// `result`.
    async fn reported(
        result: Result<Uploaded, DownloaderError>,
    ) -> (Vec<String>, CatalogEventKind) {
        let seen = Seen::default();
        let (actor, task) = Actor::spawn(None, Recorder, seen.clone()).await.unwrap();
        let slot = ActorSlot::default();
        slot.set(actor.clone());
        let catalog = CatalogHandle::new(slot);
        let events = EventBus::default();
        let mut rx = events.subscribe();
        report_upload(&catalog, &events, "disk.img", &result);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Room for a second message, which must not come.
        tokio::time::sleep(Duration::from_millis(50)).await;
        actor.stop(None);
        task.await.unwrap();
        let event = rx.recv().await.unwrap();
        let EventBody::Catalog(event) = &event.body else {
            panic!("not a catalog event: {event:?}");
        };
        let seen = seen.lock().unwrap().clone();
        (seen, event.kind)
    }

    #[tokio::test]
    async fn a_stored_upload_is_announced_with_its_sha256_not_abandoned() {
        let sha = "ab".repeat(32);
        let (seen, event) = reported(Ok(Uploaded {
            name: "disk.img".to_owned(),
            size_bytes: 7,
            sha256: sha.clone(),
        }))
        .await;
        assert_eq!(seen, [format!("uploaded disk.img {sha}")]);
        assert_eq!(event, CatalogEventKind::ImageUploaded);
    }

    #[tokio::test]
    async fn a_failed_upload_is_a_landing_abandoned() {
        let (seen, event) = reported(Err(DownloaderError::TooLarge { cap: 1 })).await;
        assert_eq!(seen, ["abandoned disk.img"]);
        assert_eq!(event, CatalogEventKind::ImageUploadFailed);
    }
}
