//! The coordinator of a streaming flash: starts the reader and one writer
//! per target, relays cancel, reports progress, and collects the outcome.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel, sync_channel};
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bty_disks::SystemPaths;

use crate::pieces::{Piece, PieceBook};
use crate::progress::{TargetStats, snapshot};
use crate::reader::{Input, Msg, ReaderShared, Source, run_reader};
use crate::removed;
use crate::target::open_target;
use crate::trailing::{Trailing, TrailingCtx, stretch};
use crate::verify::{ReadBack, read_back_check};
use crate::writer::{BlockSink, BlockWriter};
use crate::{
    FlashError, FlashOptions, FlashReport, Phase, Progress, TargetDone, TargetOutcome, TargetSpec,
};

/// How often cancel is polled and queues are re-checked.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// Minimum time between two progress reports.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Chunks queued per writer: one being written, two waiting (decoding
/// overlaps writing without letting a slow target buffer the whole image).
const QUEUE: usize = 2;

/// Why a writer stopped short.
enum WriterStop {
    /// Its own failure (or cancel).
    Failed(FlashError),
    /// The reader stopped sending; the reader's outcome says why.
    SourceEnded,
}

/// Write the decoded image from `source` to every target at once.
///
/// `source` yields raw disk bytes: a decoder (see [`crate::open_decoder`])
/// or a raw image file ([`Source::RawFile`], whose holes are not read); it
/// is read once, whatever the number of targets. The whole stream is hashed
/// only when `opts` carries a digest to check; verify hashes it piece by
/// piece on every core and checks each piece as it is read back. A target that fails drops out and
/// the others go on; one whose I/O failed because its device went away
/// (unplugged, medium pulled) fails as [`FlashError::DeviceRemoved`].
/// `observer` gets progress at most about four times a
/// second; `cancel` is polled every 100 ms, and a cancelled flash returns
/// within about a second (writers stop at the next chunk; a source blocked
/// in `read` is abandoned to its thread). No target whose result is an error
/// had its first region written.
pub fn flash(
    source: impl Into<Source>,
    targets: Vec<TargetSpec>,
    opts: &FlashOptions,
    observer: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> FlashReport {
    flash_input(
        Input::Source(source.into()),
        targets,
        opts,
        observer,
        cancel,
    )
}

/// [`flash`] from any [`Input`] (a plain qcow2 layout too).
pub(crate) fn flash_input(
    input: Input,
    targets: Vec<TargetSpec>,
    opts: &FlashOptions,
    observer: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> FlashReport {
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(ReaderShared::default());
    let book = opts.verify.then(|| Arc::new(PieceBook::default()));
    let stats: Vec<TargetStats> = targets.iter().map(|_| TargetStats::default()).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        targets.iter().map(|_| sync_channel::<Msg>(QUEUE)).unzip();

    let reader = {
        let (stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
        let buffer_size = opts.buffer_size;
        let expected = opts.expected_image_sha256.clone();
        let book = book.clone();
        thread::Builder::new()
            .name("bty-flash-read".into())
            .spawn(move || {
                run_reader(input, senders, buffer_size, book, expected, stop, shared);
            })
    };
    if let Err(e) = reader {
        let err = FlashError::Read {
            at: 0,
            source: FlashError::arc(e),
        };
        return failed_report(&targets, &err);
    }

    let mut results: Vec<Option<Result<TargetDone, WriterStop>>> =
        targets.iter().map(|_| None).collect();
    thread::scope(|s| {
        let (done_tx, done_rx) = channel();
        for (i, rx) in receivers.into_iter().enumerate() {
            let (spec, st, stop, done_tx) = (&targets[i], &stats[i], &*stop, done_tx.clone());
            let book = book.as_deref();
            s.spawn(move || {
                let result = run_writer(spec, rx, opts, book, stop, st);
                st.failed.store(result.is_err(), Ordering::Relaxed);
                st.set_phase(Phase::Done);
                let _ = done_tx.send((i, result));
            });
        }
        drop(done_tx);
        let mut last_report: Option<Instant> = None;
        let mut remaining = targets.len();
        while remaining > 0 {
            if cancel.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            match done_rx.recv_timeout(POLL) {
                Ok((i, result)) => {
                    results[i] = Some(result);
                    remaining -= 1;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_report.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                observer(source_progress(&targets, &stats, &shared, opts));
                last_report = Some(Instant::now());
            }
        }
    });
    // Every writer is gone; a reader still running (all targets failed, or a
    // source blocked in read) stops at its next chunk.
    stop.store(true, Ordering::Relaxed);
    observer(source_progress(&targets, &stats, &shared, opts));

    let outcome = shared
        .outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let (image_sha256, bytes, source_error) = match outcome {
        Some(o) => (o.sha256, o.bytes, o.error),
        None => (String::new(), shared.decoded.load(Ordering::Relaxed), None),
    };
    let cancelled = cancel.load(Ordering::Relaxed);
    let outcomes = targets
        .iter()
        .zip(results)
        .zip(&stats)
        .map(|((spec, result), st)| {
            let result = match result {
                Some(Ok(done)) => Ok(done),
                Some(Err(WriterStop::Failed(e))) => Err(e),
                _ if cancelled => Err(FlashError::Cancelled),
                _ => Err(source_error.clone().unwrap_or(FlashError::NoTargets)),
            };
            TargetOutcome {
                path: spec.path.clone(),
                written: st.written.load(Ordering::Relaxed),
                result,
            }
        })
        .collect();
    FlashReport {
        image_sha256,
        bytes,
        decode_passes: 1,
        targets: outcomes,
    }
}

fn failed_report(targets: &[TargetSpec], err: &FlashError) -> FlashReport {
    FlashReport {
        image_sha256: String::new(),
        bytes: 0,
        decode_passes: 1,
        targets: targets
            .iter()
            .map(|t| TargetOutcome {
                path: t.path.clone(),
                written: 0,
                result: Err(err.clone()),
            })
            .collect(),
    }
}

/// One target: write every chunk, then (only when the image is complete and
/// nobody cancelled) sync, write the first region, sync, re-read the
/// partition table. When verifying, a verifier trails the writer
/// ([`Trailing`]) and the first region is written only once everything
/// else has read back right.
fn run_writer(
    spec: &TargetSpec,
    rx: Receiver<Msg>,
    opts: &FlashOptions,
    book: Option<&PieceBook>,
    stop: &AtomicBool,
    stats: &TargetStats,
) -> Result<TargetDone, WriterStop> {
    let (sink, capacity) = open_target(spec, opts).map_err(WriterStop::Failed)?;
    if let (Some(needed), Some(capacity)) = (opts.image_size, capacity)
        && needed > capacity
    {
        return Err(WriterStop::Failed(FlashError::TargetTooSmall {
            path: spec.path.clone(),
            needed,
            capacity,
        }));
    }
    let device = sink.device();
    // Opened now, from the writer's descriptor: verify reads what was
    // written, whatever the name points at by the time it reads.
    let verify = book
        .map(|book| Ok((book, ReadBack::reopen(&sink, &spec.path, opts.direct_io)?)))
        .transpose()
        .map_err(WriterStop::Failed)?;
    let mut writer = BlockWriter::new(
        spec.path.clone(),
        sink,
        opts.first_region,
        opts.zero_skip,
        capacity,
    );
    // Every failure of the writes below is explained the same way: a
    // target that went away says so.
    let write = move || -> Result<TargetDone, WriterStop> {
        let Some((book, read_back)) = &verify else {
            let total = receive(&mut writer, &rx, opts, stop, stats, None)?;
            drop(rx);
            stats.set_phase(Phase::Syncing);
            let sink = writer.finish(total).map_err(WriterStop::Failed)?;
            sink.reread_partitions();
            return Ok(TargetDone {
                written: total,
                verified: None,
                diff: sink.diff_counts(),
            });
        };
        let (failed, abandoned) = (AtomicBool::new(false), AtomicBool::new(false));
        thread::scope(|s| {
            let trailing = Trailing::start(
                s,
                TrailingCtx {
                    target: read_back,
                    book,
                    first_region: opts.first_region,
                    buffer_size: opts.buffer_size,
                    cancel: stop,
                    progress: &stats.verified,
                    failed: &failed,
                    abandoned: &abandoned,
                },
            );
            let total = match receive(&mut writer, &rx, opts, stop, stats, Some(&trailing)) {
                Ok(total) => total,
                // The verifier's own finding explains a stop it caused.
                Err(_) if trailing.failed() => {
                    return Err(WriterStop::Failed(
                        trailing.finish(0).err().unwrap_or(FlashError::VerifyThread),
                    ));
                }
                Err(e) => return Err(e),
            };
            drop(rx);
            stats.set_phase(Phase::Syncing);
            writer.finish_body(total).map_err(WriterStop::Failed)?;
            stats.set_phase(Phase::Verifying);
            let rest = trailing.finish(total).map_err(WriterStop::Failed)?;
            let sink = writer.write_held().map_err(WriterStop::Failed)?;
            sink.reread_partitions();
            let diff = sink.diff_counts();
            drop(sink);
            let check = |pieces: &[Piece], progress: &AtomicU64| {
                let stopped = || stop.load(Ordering::Relaxed);
                read_back_check(read_back, pieces, opts.buffer_size, &stopped, progress)
                    .map_err(WriterStop::Failed)
            };
            check(&rest.first_region, &stats.verified)?;
            // A second reading: not counted as progress again.
            check(&rest.again, &AtomicU64::new(0))?;
            Ok(TargetDone {
                written: total,
                verified: Some(true),
                diff,
            })
        })
    };
    write().map_err(|e| match e {
        WriterStop::Failed(e) => WriterStop::Failed(removed::explain(
            e,
            device.as_ref(),
            &SystemPaths::default().sys,
            stats.written.load(Ordering::Relaxed),
        )),
        other => other,
    })
}

/// Write every message up to the end of the image; returns its length.
/// With `trailing`, hand each [`stretch`] to the verifier as soon as its
/// writes have completed (nothing is flushed before the end: a direct
/// read-back sees completed writes).
fn receive<S: BlockSink>(
    writer: &mut BlockWriter<S>,
    rx: &Receiver<Msg>,
    opts: &FlashOptions,
    stop: &AtomicBool,
    stats: &TargetStats,
    trailing: Option<&Trailing<'_>>,
) -> Result<u64, WriterStop> {
    let every = stretch(opts.buffer_size);
    let mut next_stretch = every;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(WriterStop::Failed(FlashError::Cancelled));
        }
        match rx.recv_timeout(POLL) {
            Ok(Msg::Data(chunk)) => writer
                .push(chunk.offset, chunk.bytes())
                .map_err(WriterStop::Failed)?,
            Ok(Msg::Zeros { offset, len }) => {
                writer.push_zeros(offset, len).map_err(WriterStop::Failed)?
            }
            Ok(Msg::End { total }) => return Ok(total),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Err(WriterStop::SourceEnded),
        }
        stats.written.store(writer.accepted(), Ordering::Relaxed);
        if let Some(trailing) = trailing
            && writer.accepted() >= next_stretch
        {
            if trailing.failed() {
                return Err(WriterStop::Failed(FlashError::VerifyThread));
            }
            trailing.written(writer.accepted());
            next_stretch = writer.accepted() + every;
        }
    }
}

fn source_progress(
    targets: &[TargetSpec],
    stats: &[TargetStats],
    shared: &ReaderShared,
    opts: &FlashOptions,
) -> Progress {
    let decoded = shared.decoded.load(Ordering::Relaxed);
    let source_bytes = opts.source_meter.as_ref().map_or(decoded, |m| m.bytes());
    snapshot(targets, stats, source_bytes, opts.image_size)
}
