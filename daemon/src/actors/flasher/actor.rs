//! The flasher actor: checks requests, keeps the flash jobs, and runs each
//! in a [`super::task::FlashTask`] on the blocking pool.

use super::error::{FlasherError, Refused};
use super::flag::CancelFlag;
use super::handle::FlasherHandle;
use super::jobs::FlashJobs;
use super::messages::{FlashJobRequest, FlashOrder, FlasherMessage, ImageInput};
use super::resolve::resolve;
use super::running::{Claim, RunningFlashes};
use super::safety::{TargetRules, check_confirmed};
use super::task::{Checked, FlashTask, container_by, inspect, target_snapshot};
use crate::actors::call::{QUICK, ask_ref};
use crate::actors::catalog::CatalogHandle;
use crate::actors::downloader::{DownloaderHandle, RemoteStream};
use crate::events::EventBus;
use crate::jobs::{JobKind, JobSnapshot};
use bty_store::format::Container;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the supervisor gives the flasher at each (re)start.
#[derive(Debug, Clone)]
pub struct FlasherArgs {
    /// Where targets may be (sysfs location, the file-target directory).
    pub rules: TargetRules,
    /// Job events.
    pub events: EventBus,
    /// This actor's own handle, for task reports.
    pub me: FlasherHandle,
    /// Running flashes, kept across restarts of the actor: a flash task
    /// outlives a crashed flasher, and the new one adopts it.
    pub running: RunningFlashes,
    /// Resolves image names to listed files.
    pub catalog: CatalogHandle,
    /// Opens streams and runs the downloads a flash waits for.
    pub downloader: DownloaderHandle,
    /// Source prefixes of the `[[trust]]` rules: a stored copy of such a
    /// source is flashed only if its signature was checked when it landed.
    pub trusted_prefixes: std::sync::Arc<Vec<String>>,
}

/// The behaviour.
#[derive(Debug, Default)]
pub struct FlasherActor;

/// The flasher's state.
#[derive(Debug)]
pub struct FlasherState {
    args: FlasherArgs,
    jobs: FlashJobs,
    /// Flash tasks still running on the blocking pool.
    running: Arc<AtomicUsize>,
}

impl Actor for FlasherActor {
    type Msg = FlasherMessage;
    type State = FlasherState;
    type Arguments = FlasherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: FlasherArgs,
    ) -> Result<FlasherState, ActorProcessingErr> {
        Ok(FlasherState {
            jobs: FlashJobs::new(args.running.clone(), args.events.clone()),
            args,
            running: Arc::default(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut FlasherState,
    ) -> Result<(), ActorProcessingErr> {
        state.jobs.interrupt();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while state.running.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: FlasherMessage,
        state: &mut FlasherState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            FlasherMessage::ListDisks { reply } => {
                let paths = state.args.rules.paths.clone();
                tokio::task::spawn_blocking(move || {
                    let disks = bty_disks::list_disks(&paths).map_err(FlasherError::from);
                    let _ = reply.send(disks);
                });
            }
            FlasherMessage::Flash { order, reply } => {
                // Resolving the image asks the catalog and the downloader,
                // and probing it and the targets reads files and sysfs:
                // all of it runs in a task, and the job is made when the
                // result comes back, so the mailbox never waits.
                let args = state.args.clone();
                let _ = reply.send(tokio::spawn(async move {
                    let (request, prepared) = check_order(args, order).await?;
                    ask_ref(&myself, "flasher", QUICK, |reply| FlasherMessage::Checked {
                        request,
                        prepared,
                        reply,
                    })
                    .await
                    .inspect_err(|_| {
                        tracing::warn!("flasher stopped while a flash request was checked");
                    })?
                }));
            }
            FlasherMessage::Checked {
                request,
                prepared,
                reply,
            } => {
                let _ = reply.send(prepared.and_then(|p| state.start(request, p)));
            }
            FlasherMessage::Progress { job } => state.jobs.progress(job),
            FlasherMessage::Finished { job } => state.jobs.finished(job),
            FlasherMessage::Jobs(query) => query.answer(&mut state.jobs),
            #[cfg(feature = "fault-injection")]
            FlasherMessage::InjectPanic => panic!("injected flasher fault"),
        }
        Ok(())
    }
}

/// A stream's container, by its first bytes (already received), and its
/// image size when the stream is the image itself. Compressed streams get
/// their size checked by the writes: a disk too small fails at its end,
/// before the first MiB is written.
fn stream_container(stream: &RemoteStream) -> Result<(Container, Option<u64>), FlasherError> {
    let container = container_by(&stream.name, stream.body.buffered())?;
    match container {
        Container::Raw => Ok((container, stream.size)),
        Container::Qcow2 => Err(FlasherError::Qcow2Stream {
            name: stream.name.clone(),
        }),
        _ => Ok((container, None)),
    }
}

/// Resolve an order's image, then run the blocking checks on the blocking
/// pool. An order without targets starts nothing (not even the download a
/// remote qcow2 would need).
async fn check_order(
    args: FlasherArgs,
    order: FlashOrder,
) -> Result<(FlashJobRequest, Result<Prepared, FlasherError>), FlasherError> {
    if order.targets.is_empty() {
        return Err(FlasherError::NoTargets);
    }
    let resolved = resolve(
        &args.catalog,
        &args.downloader,
        &args.trusted_prefixes,
        &order.image,
    )
    .await?;
    let request = FlashJobRequest {
        image: resolved.image,
        label: order.image,
        sha256: resolved.sha256,
        targets: order.targets,
        verify: order.verify,
        incremental: order.incremental,
    };
    tokio::task::spawn_blocking(move || {
        let prepared = prepare(&args.rules, &args.running, &request);
        (request, prepared)
    })
    .await
    .map_err(FlasherError::CheckTask)
}

/// What a request turned into once its image and targets were looked at.
#[derive(Debug)]
pub struct Prepared {
    container: Container,
    image_size: Option<u64>,
    checked: Vec<Checked>,
}

/// Look at the image and check every target (blocking: files, sysfs, the
/// device nodes). Unknown formats and tarballs are refused before any disk
/// is touched. A stream is looked at by its task (reading it may block),
/// which re-checks the targets against the size it learns there.
fn prepare(
    rules: &TargetRules,
    running: &RunningFlashes,
    request: &FlashJobRequest,
) -> Result<Prepared, FlasherError> {
    if request.targets.is_empty() {
        return Err(FlasherError::NoTargets);
    }
    let (container, image_size) = match &request.image {
        ImageInput::File(image) => inspect(image)?,
        ImageInput::Stream(stream) => stream_container(stream)?,
        // Its size is in the file: the task checks it once it landed.
        ImageInput::Download(_) => (Container::Qcow2, None),
    };
    let checked = request
        .targets
        .iter()
        .map(|t| {
            let busy = Claim::of_path(&t.path).is_some_and(|c| running.is_claimed(c));
            let result = if busy {
                Err(busy_refusal(&t.path))
            } else {
                check_confirmed(rules, t, image_size)
            };
            (t.clone(), result)
        })
        .collect();
    Ok(Prepared {
        container,
        image_size,
        checked,
    })
}

fn busy_refusal(path: &std::path::Path) -> Refused {
    Refused::Busy {
        path: path.to_owned(),
    }
}

impl FlasherState {
    /// Make the job of a checked request and start its task. A target
    /// another flash writes (by device number, whatever the path) or one
    /// this request names twice is refused here, in the handler, so two
    /// requests can never both claim a disk.
    fn start(
        &mut self,
        request: FlashJobRequest,
        prepared: Prepared,
    ) -> Result<JobSnapshot, FlasherError> {
        let Prepared {
            container,
            image_size,
            mut checked,
        } = prepared;
        let mut claims = Vec::new();
        for (confirmed, result) in &mut checked {
            let Ok(target) = result else { continue };
            let Some(claim) = Claim::of(&target.identity) else {
                continue;
            };
            if claims.contains(&claim) {
                *result = Err(Refused::Twice {
                    path: confirmed.path.clone(),
                });
            } else if self.args.running.is_claimed(claim) {
                *result = Err(busy_refusal(&confirmed.path));
            } else {
                claims.push(claim);
            }
        }
        if checked.iter().all(|(_, r)| r.is_err()) {
            let reasons: Vec<Refused> = checked
                .iter()
                .filter_map(|(_, r)| r.as_ref().err().cloned())
                .collect();
            return Err(FlasherError::Refused { reasons });
        }
        let subject = format!(
            "{} → {}",
            request.label,
            request
                .targets
                .iter()
                .map(|t| t.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut snapshot = JobSnapshot::queued(JobKind::Flash, subject, image_size);
        snapshot.targets = checked.iter().map(|(t, r)| target_snapshot(t, r)).collect();
        let (snapshot, cancel) = self.jobs.open(snapshot, claims);
        let task = FlashTask {
            job: snapshot.clone(),
            image: Some(request.image),
            container,
            sha256: request.sha256,
            verify: request.verify,
            incremental: request.incremental,
            checked,
            image_size,
            rules: self.args.rules.clone(),
            cancel: CancelFlag::follow(&cancel),
            me: self.args.me.clone(),
            catalog: self.args.catalog.clone(),
            downloader: self.args.downloader.clone(),
            events: self.args.events.clone(),
        };
        let running = self.running.clone();
        running.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            task.run();
            running.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(snapshot)
    }
}
