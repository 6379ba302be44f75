//! The flash task: on the blocking pool, re-checks every target, picks the
//! decoder by content, runs the `bty-flash` pipeline and turns its progress
//! and report into job snapshots for the flasher.

use super::error::{ImageError, Refused, StartError};
use super::flag::CancelFlag;
use super::handle::FlasherHandle;
use super::messages::{ConfirmedTarget, ImageInput};
use super::pending::{Peers, PendingDownload, Waited};
use super::safety::{TargetRules, recheck};
use crate::actors::catalog::CatalogHandle;
use crate::actors::downloader::DownloaderHandle;
use crate::events::EventBus;
use crate::jobs::{JobPhase, JobSnapshot, JobState, RateMeter, TargetSnapshot, TargetState};
use bty_disks::Target;
use bty_flash::{
    FlashOptions, FlashReport, HashingReader, Phase, Progress, Source, TargetKind, TargetSpec,
};
use bty_store::chain::chain;
use bty_store::format::{Container, ImageFormat, detect, read_header_of, sniff};
use bty_store::identity::VerifiedImage;
use std::io::{BufRead, BufReader};

/// A target that passed the request-time check, or why it did not.
pub(crate) type Checked = (ConfirmedTarget, Result<Target, Refused>);

/// Everything the task needs.
pub(crate) struct FlashTask {
    pub(crate) job: JobSnapshot,
    /// The image; taken by the write, which consumes a stream.
    pub(crate) image: Option<ImageInput>,
    pub(crate) container: Container,
    /// Known sha256 of a file's stored bytes (a stream carries its own).
    pub(crate) sha256: Option<String>,
    pub(crate) verify: bool,
    pub(crate) incremental: bool,
    pub(crate) checked: Vec<Checked>,
    pub(crate) image_size: Option<u64>,
    pub(crate) rules: TargetRules,
    /// Set when the job's token is cancelled.
    pub(crate) cancel: CancelFlag,
    pub(crate) me: FlasherHandle,
    /// Resolves a downloaded image once it landed.
    pub(crate) catalog: CatalogHandle,
    /// Runs the download a qcow2 flash waits for.
    pub(crate) downloader: DownloaderHandle,
    /// Where the download's progress is announced.
    pub(crate) events: EventBus,
}

/// A target's state while the pipeline runs.
fn target_state(phase: Phase) -> TargetState {
    match phase {
        Phase::Writing => TargetState::Writing,
        Phase::Syncing => TargetState::Syncing,
        Phase::Verifying => TargetState::Verifying,
        Phase::Done => TargetState::Done,
    }
}

fn job_phase(phase: Phase) -> JobPhase {
    match phase {
        Phase::Writing => JobPhase::Writing,
        Phase::Syncing => JobPhase::Syncing,
        Phase::Verifying => JobPhase::Verifying,
        Phase::Done => JobPhase::Done,
    }
}

impl FlashTask {
    /// Run to the end (the job comes started, checking), reporting every
    /// step to the flasher.
    pub(crate) fn run(mut self) {
        if let Some(ImageInput::Download(pending)) =
            self.image.take_if(|i| matches!(i, ImageInput::Download(_)))
        {
            match self.download_first(&pending) {
                Ok(true) => {}
                Ok(false) => {
                    return self
                        .end_before_writing(TargetState::Cancelled, "cancelled before writing");
                }
                Err(e) => return self.end_before_writing(TargetState::Failed, &chain(&e)),
            }
        }
        // Re-check just before writing: same rules, same devices.
        let mut specs = Vec::new();
        let mut slots = Vec::new(); // job.targets index of each spec
        for (i, (confirmed, first)) in self.checked.iter().enumerate() {
            let result = first
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|first| recheck(&self.rules, confirmed, first, self.image_size));
            match result {
                Ok(target) => {
                    specs.push(TargetSpec {
                        path: target.path.clone(),
                        kind: match target.kind {
                            bty_disks::TargetKind::RegularFile => TargetKind::RegularFile,
                            bty_disks::TargetKind::BlockDevice { .. } => TargetKind::BlockDevice,
                        },
                        size_bytes: Some(target.size_bytes).filter(|_| {
                            matches!(target.kind, bty_disks::TargetKind::BlockDevice { .. })
                        }),
                        // The pipeline checks the opened descriptor is this
                        // very device (or file) before its first write.
                        expect: Some(target.identity.clone()),
                    });
                    slots.push(i);
                }
                Err(refused) => {
                    self.job.targets[i].state = TargetState::Refused;
                    self.job.targets[i].error = Some(refused.to_string());
                }
            }
        }
        if specs.is_empty() {
            self.finish(None, &slots);
            return;
        }
        // A write that cannot start (the image does not open or decode)
        // fails every target with its reason, before any byte.
        match self.write(specs, &slots) {
            Ok(report) => self.finish(Some(&report), &slots),
            Err(e) => self.end_before_writing(TargetState::Failed, &chain(&e)),
        }
    }

    /// Follow the download of the image; on success the task reads the
    /// landed file. `Ok(false)`: cancelled meanwhile.
    fn download_first(&mut self, pending: &PendingDownload) -> Result<bool, StartError> {
        self.job.phase = JobPhase::Downloading;
        let (job, me) = (&mut self.job, &self.me);
        let peers = Peers {
            catalog: &self.catalog,
            downloader: &self.downloader,
            events: &self.events,
        };
        let waited = pending.wait(&peers, &self.cancel, &mut |download| {
            job.source_bytes = download.bytes_done;
            me.progress(job.clone());
        })?;
        let Waited::Ready(local) = waited else {
            return Ok(false);
        };
        let image = local.open()?;
        let (container, image_size) = inspect(&image)?;
        self.container = container;
        self.image_size = image_size;
        self.job.bytes_total = self.image_size;
        self.sha256 = local.sha256;
        self.image = Some(ImageInput::File(image));
        self.job.phase = JobPhase::Checking;
        Ok(true)
    }

    /// End the job before any target was written: every target that was
    /// not refused gets `state` and `reason`.
    fn end_before_writing(mut self, state: TargetState, reason: &str) {
        for target in self
            .job
            .targets
            .iter_mut()
            .filter(|t| t.state != TargetState::Refused)
        {
            target.state = state;
            target.error = Some(reason.to_owned());
        }
        self.finish(None, &[]);
    }

    fn write(
        &mut self,
        specs: Vec<TargetSpec>,
        slots: &[usize],
    ) -> Result<FlashReport, StartError> {
        let image = self.image.take().ok_or(StartError::Consumed)?;
        let container = self.container;
        let mut opts = FlashOptions {
            verify: self.verify,
            incremental: self.incremental,
            image_size: self.image_size,
            ..FlashOptions::default()
        };
        self.job.phase = JobPhase::Writing;
        let job = std::sync::Mutex::new(self.job.clone());
        let rate = std::sync::Mutex::new(RateMeter::new(RATE_WINDOW));
        let observer = |p: Progress| {
            let mut job = job.lock().unwrap_or_else(|e| e.into_inner());
            job.bytes_done = p.written;
            job.rate_bps = rate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(p.written);
            job.source_bytes = p.source_bytes;
            if p.total.is_some() {
                job.bytes_total = p.total;
            }
            job.phase = job_phase(p.phase);
            for (t, slot) in p.per_target.iter().zip(slots) {
                let target = &mut job.targets[*slot];
                target.bytes_written = t.written;
                target.state = if t.failed {
                    TargetState::Failed
                } else {
                    target_state(t.phase)
                };
            }
            self.me.progress(job.clone());
        };
        let report = match image {
            ImageInput::File(image) if container == Container::Qcow2 => {
                bty_flash::flash_qcow2(image.file(), specs, &opts, &observer, &self.cancel)
            }
            ImageInput::File(image) if container == Container::Raw => {
                let file = image.into_file();
                // The stored bytes are the image: the pipeline's own hash of
                // the stream checks the digest, so nothing hashes them twice
                // (and with verify off, nothing hashes them at all).
                if opts.verify {
                    opts.expected_image_sha256 = self.sha256.clone();
                }
                bty_flash::flash(Source::RawFile(file), specs, &opts, &observer, &self.cancel)
            }
            ImageInput::File(image) => {
                // Compressed: the stored digest is of the compressed bytes.
                let file = BufReader::with_capacity(1 << 20, image.into_file());
                let source = hashed_source(file, self.sha256.clone(), container, &mut opts)?;
                bty_flash::flash(source, specs, &opts, &observer, &self.cancel)
            }
            ImageInput::Download(_) => return Err(StartError::NotDownloaded),
            ImageInput::Stream(stream) => {
                // Whatever the format, the digest is of the bytes streamed.
                let body = BufReader::with_capacity(1 << 20, stream.body);
                let source = hashed_source(body, stream.sha256, container, &mut opts)?;
                bty_flash::flash(source, specs, &opts, &observer, &self.cancel)
            }
        };
        self.job = job.into_inner().unwrap_or_else(|e| e.into_inner());
        // The digest of the stored bytes, when this job computed it: the
        // compressed file's (checked on the way in); a raw image's comes
        // with the report.
        if let Some(sha) = opts.source_meter.as_ref().and_then(|m| m.sha256()) {
            self.job.sha256 = Some(sha);
        }
        Ok(report)
    }

    fn finish(&mut self, report: Option<&FlashReport>, slots: &[usize]) {
        if let Some(report) = report {
            for (outcome, slot) in report.targets.iter().zip(slots) {
                let target = &mut self.job.targets[*slot];
                target.bytes_written = outcome.written;
                match &outcome.result {
                    Ok(done) => {
                        target.state = TargetState::Done;
                        target.verified = done.verified;
                        target.incremental = done.diff;
                    }
                    Err(bty_flash::FlashError::Cancelled) => {
                        target.state = TargetState::Cancelled;
                        target.error = Some(if outcome.partially_written() {
                            "cancelled: partially written (the first MiB was not written, so it does not boot)".to_owned()
                        } else {
                            "cancelled before writing".to_owned()
                        });
                    }
                    Err(e) => {
                        target.state = TargetState::Failed;
                        target.error = Some(if outcome.partially_written() {
                            format!(
                                "{} (partially written; the first MiB was not written)",
                                chain(e)
                            )
                        } else {
                            chain(e)
                        });
                    }
                }
            }
            if !report.image_sha256.is_empty() {
                self.job.sha256 = Some(report.image_sha256.clone());
            }
            self.job.bytes_done = report.bytes;
        }
        let total = self.job.targets.len();
        let done = self
            .job
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Done)
            .count();
        let cancelled = self
            .job
            .targets
            .iter()
            .any(|t| t.state == TargetState::Cancelled);
        if done == total {
            self.job.finish(JobState::Completed, None);
        } else if cancelled {
            self.job.finish(
                JobState::Cancelled,
                Some("cancelled by operator".to_owned()),
            );
        } else {
            let reasons: Vec<String> = self
                .job
                .targets
                .iter()
                .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.path)))
                .collect();
            self.job.finish(
                JobState::Failed,
                Some(format!(
                    "{} of {total} targets failed: {}",
                    total - done,
                    reasons.join("; ")
                )),
            );
        }
        self.me.finished(self.job.clone());
    }
}

/// How often the job's rate is averaged over.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3);

/// `reader` hashed on its way into the decoder, checked against `sha256`
/// at its end; the meter tells the job how much of it was read.
fn hashed_source(
    reader: impl BufRead + Send + 'static,
    sha256: Option<String>,
    container: Container,
    opts: &mut FlashOptions,
) -> Result<Source, bty_flash::FlashError> {
    let mut reader = HashingReader::new(reader);
    if let Some(sha) = sha256 {
        reader = reader.expect_sha256(sha);
    }
    opts.source_meter = Some(reader.tally());
    // Read (and hashed) on a thread of its own, ahead of the decoder.
    bty_flash::open_decoder(bty_flash::ReadAhead::start(reader), container).map(Source::Stream)
}

/// The container (by content; raw only for names that say so) and the
/// decoded size of an opened image. A qcow2 is checked here, before any
/// target is touched: one naming another file (backing file, external
/// data file) or open to changes by others is refused with the reason.
pub(crate) fn inspect(image: &VerifiedImage) -> Result<(Container, Option<u64>), ImageError> {
    let name = || image.name().to_owned();
    let header = read_header_of(image.file()).map_err(|source| ImageError::Header {
        name: name(),
        source,
    })?;
    let container = container_by(image.name(), &header)?;
    let flash = |source| ImageError::Flash {
        name: name(),
        source,
    };
    if container == Container::Qcow2 {
        bty_flash::inspect_qcow2(image.file()).map_err(flash)?;
    }
    let size = bty_flash::virtual_size(image.file()).map_err(flash)?;
    Ok((container, size))
}

/// The container of an image named `name` that starts with `header`.
pub(crate) fn container_by(name: &str, header: &[u8]) -> Result<Container, ImageError> {
    if let Some(container) = sniff(header) {
        return Ok(container);
    }
    let format = detect(name, header).map_err(|source| ImageError::Format {
        name: name.to_owned(),
        source,
    })?;
    match format {
        ImageFormat::Img | ImageFormat::Raw | ImageFormat::Iso => Ok(Container::Raw),
        other => Ok(other.container()),
    }
}

/// One target's initial snapshot.
pub(crate) fn target_snapshot(
    confirmed: &ConfirmedTarget,
    check: &Result<Target, Refused>,
) -> TargetSnapshot {
    TargetSnapshot {
        path: confirmed.path.display().to_string(),
        state: if check.is_ok() {
            TargetState::Queued
        } else {
            TargetState::Refused
        },
        bytes_written: 0,
        error: check.as_ref().err().map(ToString::to_string),
        verified: None,
        incremental: None,
    }
}
