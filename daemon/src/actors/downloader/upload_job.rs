//! An upload as a job: the task that hands the client's chunks to the
//! storing thread (`upload.rs`), counting them for the job's progress and
//! stopping when the job is cancelled, then tells the catalog, the event
//! bus and the downloader how it ended.

use super::error::{DownloaderError, UploadError};
use super::handle::DownloaderHandle;
use super::messages::{JobFailure, JobOutcome, UploadRequest, Uploaded};
use super::upload::{Stored, store_upload};
use crate::actors::catalog::CatalogHandle;
use crate::events::{CatalogEvent, CatalogEventKind, EventBus};
use bty_store::chain::chain;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often an upload reports progress (as often as a download).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Chunks on their way to the storing thread.
const IN_FLIGHT: usize = 8;

/// What an upload's task needs.
#[derive(Debug, Clone)]
pub(crate) struct UploadContext {
    /// The upload's job.
    pub(crate) id: String,
    pub(crate) image_root: PathBuf,
    /// Largest upload accepted.
    pub(crate) cap: u64,
    pub(crate) catalog: CatalogHandle,
    pub(crate) events: EventBus,
    pub(crate) me: DownloaderHandle,
    /// The job's token: cancelled by `CancelJob`.
    pub(crate) cancel: CancellationToken,
}

/// Store an upload, then report its end to the catalog, the event bus and
/// the job; the client gets the same result.
pub(crate) async fn run_upload(
    ctx: UploadContext,
    request: UploadRequest,
) -> Result<Uploaded, DownloaderError> {
    let name = request.name.clone();
    let result = match ctx.catalog.expect_arrival(&name).await {
        Ok(()) => {
            let result = receive(&ctx, request).await;
            report_upload(&ctx.catalog, &ctx.events, &name, &result);
            result
        }
        Err(e) => Err(UploadError::Catalog(Arc::new(e))),
    };
    ctx.me.finished(&ctx.id, job_outcome(&result));
    result.map_err(DownloaderError::from)
}

/// How the job ends for an upload that ended with `result`.
fn job_outcome(result: &Result<Uploaded, UploadError>) -> JobOutcome {
    match result {
        Ok(done) => JobOutcome::Completed {
            sha256: Some(done.sha256.clone()),
            bytes: done.size_bytes,
            note: String::new(),
        },
        Err(UploadError::Cancelled { .. }) => JobOutcome::Cancelled,
        Err(e) => JobOutcome::Failed(JobFailure::Upload(e.clone())),
    }
}

/// Store the chunks on the blocking pool while passing them on from the
/// client; a cancelled job's upload ends as [`UploadError::Cancelled`].
async fn receive(ctx: &UploadContext, request: UploadRequest) -> Result<Uploaded, UploadError> {
    let UploadRequest {
        name,
        size_bytes,
        chunks,
    } = request;
    let (to_store, stored_chunks) = mpsc::channel(IN_FLIGHT);
    let storing = UploadRequest {
        name: name.clone(),
        size_bytes,
        chunks: stored_chunks,
    };
    let image_root = ctx.image_root.clone();
    let cap = ctx.cap;
    let store = tokio::task::spawn_blocking(move || {
        let stored_name = storing.name.clone();
        store_upload(&image_root, storing, cap).map(|stored| {
            (
                stored,
                super::task::landed_as_listed(&image_root, &stored_name),
            )
        })
    });
    let received = forward(ctx, chunks, to_store, size_bytes).await;
    let stored = store
        .await
        .unwrap_or_else(|e| Err(UploadError::Task(Arc::new(e))));
    match stored {
        Ok((Stored { size_bytes, sha256 }, landed)) => Ok(Uploaded {
            job_id: ctx.id.clone(),
            name,
            size_bytes,
            sha256,
            landed,
        }),
        // The storing side stopped because the chunks stopped coming.
        Err(_) if ctx.cancel.is_cancelled() => Err(UploadError::Cancelled {
            name,
            size: received,
        }),
        Err(e) => Err(e),
    }
}

/// Pass the client's chunks on to the storing thread, counting them for
/// the job's progress, until the end marker, the client going away, the
/// storing side stopping or a cancel; the bytes received. Returning
/// before the end marker drops `to`: the storing side then stops and
/// removes its partial file.
async fn forward(
    ctx: &UploadContext,
    mut from: mpsc::Receiver<Option<Bytes>>,
    to: mpsc::Sender<Option<Bytes>>,
    declared: Option<u64>,
) -> u64 {
    let mut received = 0u64;
    let mut reported: Option<Instant> = None;
    loop {
        let chunk = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return received,
            () = to.closed() => return received,
            chunk = from.recv() => chunk,
        };
        // The client's side went away without the end marker.
        let Some(chunk) = chunk else {
            return received;
        };
        let end = chunk.is_none();
        if let Some(data) = &chunk {
            received += data.len() as u64;
            if reported.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
                reported = Some(Instant::now());
                ctx.me.progress(&ctx.id, received, declared);
            }
        }
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return received,
            sent = to.send(chunk) => {
                if sent.is_err() || end {
                    return received;
                }
            }
        }
    }
}

/// Tell the catalog and the event bus how an upload ended: a stored file
/// (bytes and sidecar in place) is announced as uploaded with its sha256;
/// only a failed or cancelled one is a landing abandoned.
fn report_upload(
    catalog: &CatalogHandle,
    events: &EventBus,
    name: &str,
    result: &Result<Uploaded, UploadError>,
) {
    match result {
        Ok(done) => {
            catalog.uploaded(name, &done.sha256, done.landed.clone());
            events.catalog(CatalogEvent::new(
                CatalogEventKind::ImageUploaded,
                name,
                format!("{name} uploaded ({} bytes)", done.size_bytes),
            ));
        }
        Err(e) => {
            catalog.arrival_abandoned(name);
            events.catalog(CatalogEvent::new(
                CatalogEventKind::ImageUploadFailed,
                name,
                chain(e),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::catalog::CatalogMessage;
    use crate::actors::downloader::{DownloaderActor, DownloaderArgs, HttpTrust, TaskRegistry};
    use crate::actors::slot::ActorSlot;
    use crate::events::EventBody;
    use crate::jobs::{JobKind, JobPhase, JobSnapshot, JobState};
    use bty_store::digest::sha256_bytes;
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use std::sync::{Arc, Mutex};
    use tokio::sync::broadcast;

    type Seen = Arc<Mutex<Vec<String>>>;

    /// A catalog that only writes down the landing news it gets (and
    /// acknowledges an announced landing, as the real one does).
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
                CatalogMessage::ExpectArrival { reply, .. } => {
                    let _ = reply.send(());
                    return Ok(());
                }
                CatalogMessage::Uploaded { name, sha256, .. } => {
                    format!("uploaded {name} {sha256}")
                }
                CatalogMessage::ArrivalAbandoned { name } => format!("abandoned {name}"),
                _ => "other".to_owned(),
            };
            seen.lock().unwrap().push(what);
            Ok(())
        }
    }

    /// A recording catalog behind a handle.
    async fn recorder(seen: Seen) -> (CatalogHandle, ActorRef<CatalogMessage>) {
        let (actor, _task) = Actor::spawn(None, Recorder, seen).await.unwrap();
        let slot = ActorSlot::default();
        slot.set(actor.clone());
        (CatalogHandle::new(slot), actor)
    }

    /// What the catalog and the event bus hear when an upload ends with
    /// `result`.
    async fn reported(result: Result<Uploaded, UploadError>) -> (Vec<String>, CatalogEventKind) {
        let seen = Seen::default();
        let (catalog, actor) = recorder(seen.clone()).await;
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
            job_id: "up-1".to_owned(),
            name: "disk.img".to_owned(),
            size_bytes: 7,
            sha256: sha.clone(),
            landed: None,
        }))
        .await;
        assert_eq!(seen, [format!("uploaded disk.img {sha}")]);
        assert_eq!(event, CatalogEventKind::ImageUploaded);
    }

    #[tokio::test]
    async fn a_failed_upload_is_an_arrival_abandoned() {
        let (seen, event) = reported(Err(UploadError::TooLarge { cap: 1 })).await;
        assert_eq!(seen, ["abandoned disk.img"]);
        assert_eq!(event, CatalogEventKind::ImageUploadFailed);
    }

    /// A downloader over a temp image root, with a recording catalog.
    struct Rig {
        downloader: DownloaderHandle,
        seen: Seen,
        jobs: broadcast::Receiver<Arc<crate::events::Event>>,
        root: tempfile::TempDir,
        _state: tempfile::TempDir,
    }

    impl Rig {
        /// The job with this id, as the downloader lists it now.
        async fn job(&self, id: &str) -> JobSnapshot {
            self.downloader.jobs().get(id).await.unwrap().unwrap()
        }

        async fn new() -> Self {
            let seen = Seen::default();
            let (catalog, _) = recorder(seen.clone()).await;
            let root = tempfile::tempdir().unwrap();
            let state = tempfile::tempdir().unwrap();
            let jobs_dir = state.path().join("jobs");
            std::fs::create_dir(&jobs_dir).unwrap();
            let events = EventBus::default();
            let jobs = events.subscribe();
            let me = DownloaderHandle::default();
            let http = bty_fetch::http_client(&bty_fetch::ClientOptions::default()).unwrap();
            let args = DownloaderArgs {
                image_root: root.path().to_owned(),
                jobs_dir,
                max_parallel: 1,
                max_upload_bytes: u64::MAX,
                oci: bty_oci::OciClient::new(bty_oci::OciConfig::default(), http.clone()),
                http,
                fetch_options: bty_fetch::FetchOptions::default(),
                events,
                catalog,
                me: me.clone(),
                tasks: TaskRegistry::default(),
                http_trust: HttpTrust::default(),
            };
            let (actor, _task) = Actor::spawn(None, DownloaderActor, args).await.unwrap();
            me.slot().set(actor);
            Self {
                downloader: me,
                seen,
                jobs,
                root,
                _state: state,
            }
        }

        /// Start uploading `disk.img` (declared `size`); the chunks' sender
        /// and the running call.
        fn upload(
            &self,
            size: Option<u64>,
        ) -> (
            mpsc::Sender<Option<Bytes>>,
            tokio::task::JoinHandle<Result<Uploaded, DownloaderError>>,
        ) {
            let (tx, chunks) = mpsc::channel(8);
            let request = UploadRequest {
                name: "disk.img".to_owned(),
                size_bytes: size,
                chunks,
            };
            let downloader = self.downloader.clone();
            (
                tx,
                tokio::spawn(async move { downloader.upload(request).await }),
            )
        }

        /// The upload job, once `ready` accepts it (within 5 s).
        async fn job_when(&self, ready: impl Fn(&JobSnapshot) -> bool) -> JobSnapshot {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let jobs = self.downloader.jobs().list().await.unwrap();
                if let Some(job) = jobs.into_iter().find(|j| j.kind == JobKind::Upload)
                    && ready(&job)
                {
                    return job;
                }
                assert!(tokio::time::Instant::now() < deadline, "job never ready");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        /// The states the bus published for jobs, in order.
        fn job_states(&mut self) -> Vec<(JobState, JobPhase)> {
            let mut states = Vec::new();
            while let Ok(event) = self.jobs.try_recv() {
                if let EventBody::Job(job) = &event.body {
                    states.push((job.state, job.phase));
                }
            }
            states
        }

        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }

        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn an_upload_is_a_job_that_completes_with_its_sha256() {
        let mut rig = Rig::new().await;
        let (tx, call) = rig.upload(Some(10));
        tx.send(Some(Bytes::from_static(b"01234"))).await.unwrap();
        let running = rig.job_when(|j| j.bytes_done == 5).await;
        assert_eq!(running.state, JobState::Running);
        assert_eq!(running.phase, JobPhase::Downloading);
        assert_eq!(running.subject, "disk.img");
        assert_eq!(running.bytes_total, Some(10));
        assert!(running.id.starts_with("up-"), "{}", running.id);
        tx.send(Some(Bytes::from_static(b"56789"))).await.unwrap();
        tx.send(None).await.unwrap();
        let uploaded = call.await.unwrap().unwrap();
        let sha = sha256_bytes(b"0123456789");
        assert_eq!(uploaded.job_id, running.id);
        assert_eq!(uploaded.sha256, sha);
        // The job ended before the call returned.
        let done = rig.job(&running.id).await;
        assert_eq!(done.state, JobState::Completed);
        assert_eq!(done.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(done.bytes_done, 10);
        assert_eq!(rig.files(), ["disk.img", "disk.img.sha256"]);
        let states = rig.job_states();
        assert_eq!(
            states.first(),
            Some(&(JobState::Queued, JobPhase::Queued)),
            "{states:?}"
        );
        assert_eq!(
            states.get(1),
            Some(&(JobState::Running, JobPhase::Downloading))
        );
        assert_eq!(states.last(), Some(&(JobState::Completed, JobPhase::Done)));
        assert_eq!(rig.seen(), [format!("uploaded disk.img {sha}")]);
    }

    #[tokio::test]
    async fn a_cancelled_upload_stops_and_leaves_nothing() {
        let mut rig = Rig::new().await;
        let (tx, call) = rig.upload(None);
        tx.send(Some(Bytes::from_static(b"partial"))).await.unwrap();
        let running = rig.job_when(|j| j.bytes_done == 7).await;
        rig.downloader.jobs().cancel(&running.id).await.unwrap();
        // The client is still connected and sends nothing more: the
        // cancel alone ends the call.
        let err = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the call ends on cancel")
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                err,
                DownloaderError::Upload(UploadError::Cancelled { size: 7, .. })
            ),
            "{err}"
        );
        let job = rig.job_when(|j| !j.state.is_active()).await;
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(job.sha256, None);
        assert!(rig.files().is_empty(), "{:?}", rig.files());
        assert_eq!(rig.seen(), ["abandoned disk.img"]);
        assert_eq!(
            rig.job_states().last(),
            Some(&(JobState::Cancelled, JobPhase::Cancelled))
        );
        // The name is free again.
        let (tx, call) = rig.upload(None);
        tx.send(None).await.unwrap();
        assert_eq!(call.await.unwrap().unwrap().size_bytes, 0);
        drop(tx);
    }

    #[tokio::test]
    async fn a_failed_upload_fails_its_job_and_a_second_one_is_busy() {
        let rig = Rig::new().await;
        let (tx, call) = rig.upload(Some(10));
        tx.send(Some(Bytes::from_static(b"12345"))).await.unwrap();
        let running = rig.job_when(|j| j.bytes_done == 5).await;
        let (_tx2, second) = rig.upload(None);
        let busy = second.await.unwrap().unwrap_err();
        assert!(matches!(busy, DownloaderError::Busy { .. }), "{busy}");
        tx.send(None).await.unwrap();
        let err = call.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("10 were declared"), "{err}");
        let job = rig.job(&running.id).await;
        assert_eq!(job.state, JobState::Failed);
        assert!(
            job.error
                .as_deref()
                .is_some_and(|e| e.contains("10 were declared")),
            "{job:?}"
        );
        assert!(rig.files().is_empty());
        // One upload job: the refused one never became a job.
        let jobs = rig.downloader.jobs().list().await.unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
    }

    /// A download of `a.img` from a port nothing listens on.
    fn unreachable_spec() -> crate::domain::DownloadSpec {
        crate::domain::DownloadSpec {
            src: "http://127.0.0.1:9/a.img".into(),
            ..super::super::job_files::tests::spec(&"ab".repeat(32))
        }
    }

    #[tokio::test]
    async fn fetches_of_one_entry_asked_together_join_one_recorded_job() {
        let rig = Rig::new().await;
        let (first, second) = tokio::join!(
            rig.downloader.fetch(unreachable_spec()),
            rig.downloader.fetch(unreachable_spec())
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.id, second.id, "the second joined the first");
        let jobs = rig.downloader.jobs().list().await.unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let recorded = super::super::persist::load_all(&rig._state.path().join("jobs"));
        assert!(
            recorded.len() <= 1,
            "one job file, or none once the job ended"
        );
    }

    #[tokio::test]
    async fn a_fetch_whose_job_file_cannot_be_written_is_refused_with_why() {
        let rig = Rig::new().await;
        let jobs_dir = rig._state.path().join("jobs");
        std::fs::remove_dir(&jobs_dir).unwrap();
        std::fs::write(&jobs_dir, b"not a directory").unwrap();
        let refused = rig.downloader.fetch(unreachable_spec()).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("cannot record the download job"),
            "{refused}"
        );
        assert!(rig.downloader.jobs().list().await.unwrap().is_empty());
    }
}
