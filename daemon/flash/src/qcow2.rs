//! qcow2 images. Every one is checked first ([`inspect_qcow2`]): one that
//! names another file (backing file, external data file), is encrypted,
//! or could be changed by someone else is refused before qemu-img runs.
//! qemu-img then only ever gets our descriptors (`/proc/self/fd/N`,
//! inherited) with explicit drivers, for the image and for the target we
//! opened (`O_EXCL` for a block device) — never a name.
//!
//! A plain image (no compressed cluster; see [`crate::qcow2_map`]) is
//! streamed through the normal pipeline by the layout `qemu-img map`
//! reports. Any other goes through `qemu-img convert`: the image beyond the
//! first region is converted first, the first region last, both through raw
//! "views" (`driver=raw,offset=…,size=…`), so the first-MiB-last guarantee
//! of [`crate::flash`] holds there too, and verify is `qemu-img compare`
//! over exactly the virtual size.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::thread;
use std::time::Instant;

use bty_dio::aligned::align_up;
use rustix::fs::OFlags;

use crate::pipeline::{POLL, PROGRESS_EVERY, flash_input};
use crate::progress::{TargetStats, snapshot};
use crate::qcow2_header::inspect_qcow2;
use crate::qcow2_map::plain_layout;
use crate::qemu_img::{self, escape, fd_path, run};
use crate::reader::Input;
use crate::{
    FlashError, FlashOptions, FlashReport, Phase, Progress, TargetDone, TargetKind, TargetOutcome,
    TargetSpec,
};

/// Flash the qcow2 image open as `image` to every target: a plain image
/// through the pipeline (one read for all targets), any other with one
/// `qemu-img convert` per target, in parallel. Same contract as
/// [`crate::flash`]: per-target outcomes, first region written last, cancel
/// within about a second (SIGTERM, then SIGKILL for qemu-img).
/// `image_sha256` stays empty; verify is per piece, or `qemu-img compare`
/// for images qemu-img converts. An image [`inspect_qcow2`] refuses fails
/// every target before anything is opened.
pub fn flash_qcow2(
    image: &File,
    targets: Vec<TargetSpec>,
    opts: &FlashOptions,
    observer: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> FlashReport {
    let size = match inspect_qcow2(image) {
        Ok(info) => info.virtual_size,
        Err(e) => {
            return report(
                &targets,
                &[],
                targets.iter().map(|_| Err(e.clone())).collect(),
                0,
            );
        }
    };
    // A descriptor of its own (reopened, not by name), so the pipeline's
    // O_DIRECT switch does not touch the caller's.
    if let Some(extents) = plain_layout(image)
        && let Ok(file) = bty_dio::direct::reopen(image, false, false)
    {
        tracing::debug!(
            extents = extents.len(),
            "plain qcow2: streamed by its layout"
        );
        let opts = FlashOptions {
            image_size: Some(size),
            ..opts.clone()
        };
        return flash_input(
            Input::Mapped(file, extents),
            targets,
            &opts,
            observer,
            cancel,
        );
    }
    let stats: Vec<TargetStats> = targets.iter().map(|_| TargetStats::default()).collect();
    let stop = AtomicBool::new(false);
    let mut results: Vec<Result<TargetDone, FlashError>> =
        targets.iter().map(|_| Err(FlashError::Cancelled)).collect();
    thread::scope(|s| {
        let (done_tx, done_rx) = channel();
        for (i, spec) in targets.iter().enumerate() {
            let (st, stop, done_tx) = (&stats[i], &stop, done_tx.clone());
            s.spawn(move || {
                let result = flash_one(image, size, spec, opts, stop, st);
                st.failed.store(result.is_err(), Ordering::Relaxed);
                st.set_phase(Phase::Done);
                let _ = done_tx.send((i, result));
            });
        }
        drop(done_tx);
        let mut last_report: Option<Instant> = None;
        loop {
            if cancel.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            match done_rx.recv_timeout(POLL) {
                Ok((i, result)) => results[i] = result,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_report.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                observer(progress(&targets, &stats, size));
                last_report = Some(Instant::now());
            }
        }
    });
    observer(progress(&targets, &stats, size));
    report(&targets, &stats, results, size)
}

fn progress(targets: &[TargetSpec], stats: &[TargetStats], size: u64) -> Progress {
    let written = stats
        .iter()
        .map(|s| s.written.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    snapshot(targets, stats, written, Some(size))
}

fn report(
    targets: &[TargetSpec],
    stats: &[TargetStats],
    results: Vec<Result<TargetDone, FlashError>>,
    size: u64,
) -> FlashReport {
    FlashReport {
        image_sha256: String::new(),
        bytes: size,
        decode_passes: 1,
        targets: targets
            .iter()
            .zip(results)
            .enumerate()
            .map(|(i, (t, result))| TargetOutcome {
                path: t.path.clone(),
                written: stats
                    .get(i)
                    .map_or(0, |s| s.written.load(Ordering::Relaxed)),
                result,
            })
            .collect(),
    }
}

/// One target: body, sync, first region, sync, BLKRRPART, compare. The
/// target is opened once here and every step — qemu-img's included — uses
/// that descriptor.
fn flash_one(
    image: &File,
    size: u64,
    spec: &TargetSpec,
    opts: &FlashOptions,
    stop: &AtomicBool,
    stats: &TargetStats,
) -> Result<TargetDone, FlashError> {
    let open_err = |e: std::io::Error| FlashError::Open {
        path: spec.path.clone(),
        source: FlashError::arc(e),
    };
    let (target, direct) =
        bty_dio::direct::open(&spec.path, target_flags(spec), opts.direct_io).map_err(open_err)?;
    if let Some(expected) = &spec.expect {
        bty_disks::verify_opened(target.as_fd(), expected)
            .map_err(|e| FlashError::Identity(std::sync::Arc::new(e)))?;
    }
    let capacity = match spec.kind {
        TargetKind::BlockDevice => Some(match spec.size_bytes {
            Some(s) => s,
            None => bty_disks::block_size_bytes(target.as_fd()).map_err(open_err)?,
        }),
        TargetKind::RegularFile => spec.size_bytes,
    };
    if let Some(capacity) = capacity.filter(|&c| c < size) {
        return Err(FlashError::TargetTooSmall {
            path: spec.path.clone(),
            needed: size,
            capacity,
        });
    }
    if spec.kind == TargetKind::RegularFile {
        // Sized to the image without touching the bytes already there, so
        // a failed flash leaves the old first region in place.
        rustix::fs::ftruncate(&target, size).map_err(|e| open_err(e.into()))?;
    }
    let cache = if direct { "none" } else { "writeback" };
    let head = align_up(usize::try_from(opts.first_region.min(size)).unwrap_or(0)) as u64;
    let head = head.min(size);
    let convert = |offset: u64, len: Option<u64>, on_percent: &(dyn Fn(f64) + Sync)| {
        let src = view(image, offset, len);
        let dst = target_view(spec, &target, offset, len);
        run_convert(image, &target, &src, &dst, cache, stop, on_percent)
    };
    if size > head {
        let body = |pct: f64| head + ((size - head) as f64 * pct / 100.0) as u64;
        convert(head, None, &|pct| {
            stats.written.store(body(pct), Ordering::Relaxed)
        })?;
    }
    stats.set_phase(Phase::Syncing);
    sync_target(spec, &target)?;
    if stop.load(Ordering::Relaxed) {
        return Err(FlashError::Cancelled);
    }
    if head > 0 {
        convert(0, Some(head), &|_| {})?;
        sync_target(spec, &target)?;
    }
    stats.written.store(size, Ordering::Relaxed);
    if spec.kind == TargetKind::BlockDevice
        && let Err(e) = bty_disks::reread_partition_table(target.as_fd())
    {
        tracing::info!(path = %spec.path.display(), error = %e, "BLKRRPART failed; partition table not re-read");
    }
    if !opts.verify {
        // qemu-img writes everything: incremental does not apply here.
        return Ok(TargetDone {
            written: size,
            verified: None,
            diff: None,
        });
    }
    stats.set_phase(Phase::Verifying);
    compare(image, spec, &target, size, cache, stop)?;
    stats.verified.store(size, Ordering::Relaxed);
    Ok(TargetDone {
        written: size,
        verified: Some(true),
        diff: None,
    })
}

/// Write-only; a block device `O_EXCL` (the kernel refuses while any
/// partition is mounted or claimed), a regular file created if missing but
/// never through a symlink.
fn target_flags(spec: &TargetSpec) -> OFlags {
    match spec.kind {
        TargetKind::BlockDevice => OFlags::WRONLY | OFlags::CLOEXEC | OFlags::EXCL,
        TargetKind::RegularFile => {
            OFlags::WRONLY | OFlags::CLOEXEC | OFlags::CREATE | OFlags::NOFOLLOW
        }
    }
}

fn sync_target(spec: &TargetSpec, target: &OwnedFd) -> Result<(), FlashError> {
    rustix::fs::fsync(target).map_err(|e| FlashError::Sync {
        path: spec.path.clone(),
        source: FlashError::arc(e.into()),
    })
}

/// A raw window `[offset, offset+size)` onto the qcow2 image's contents.
fn view(image: &File, offset: u64, size: Option<u64>) -> String {
    let size = size.map(|s| format!(",size={s}")).unwrap_or_default();
    format!(
        "driver=raw,offset={offset}{size},file.driver=qcow2,file.file.driver=file,file.file.filename={}",
        escape(&fd_path(image))
    )
}

/// A raw window onto the target open as `target`.
fn target_view(spec: &TargetSpec, target: &impl AsRawFd, offset: u64, size: Option<u64>) -> String {
    let protocol = match spec.kind {
        TargetKind::BlockDevice => "host_device",
        TargetKind::RegularFile => "file",
    };
    let size = size.map(|s| format!(",size={s}")).unwrap_or_default();
    format!(
        "driver=raw,offset={offset}{size},file.driver={protocol},file.filename={}",
        escape(&fd_path(target))
    )
}

fn run_convert(
    image: &File,
    target: &OwnedFd,
    src: &str,
    dst: &str,
    cache: &str,
    stop: &AtomicBool,
    on_percent: &(dyn Fn(f64) + Sync),
) -> Result<(), FlashError> {
    let mut cmd = qemu_img::command(&[image, target]);
    cmd.args([
        "convert",
        "-p",
        "-n",
        // Out-of-order writes: measured 1.4 s vs 2.4 s for 2 GiB with
        // cache=none; the first region is a separate, later run anyway.
        "-W",
        "-t",
        cache,
        "--image-opts",
        src,
        "--target-image-opts",
        dst,
    ]);
    run(cmd, stop, on_percent)?.check("convert")
}

fn compare(
    image: &File,
    spec: &TargetSpec,
    target: &OwnedFd,
    size: u64,
    cache: &str,
    stop: &AtomicBool,
) -> Result<(), FlashError> {
    let mut cmd = qemu_img::command(&[image, target]);
    cmd.args(["compare", "-T", cache, "--image-opts"])
        .arg(qemu_img::qcow2_opts(image))
        .arg(target_view(spec, target, 0, Some(size)));
    let finished = run(cmd, stop, &|_| {})?;
    // Exit status 1: the images differ (2 and up: an error).
    if finished.code == Some(1) {
        return Err(FlashError::CompareMismatch {
            path: spec.path.clone(),
            detail: finished.output,
        });
    }
    finished.check("compare")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn compare_tells_a_mismatch_from_a_match() {
        let tmp = tempfile::tempdir().unwrap();
        let (raw, qcow) = (tmp.path().join("a.raw"), tmp.path().join("a.qcow2"));
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&raw, &data).unwrap();
        let status = Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow)
            .status()
            .unwrap();
        assert!(status.success());
        let target = tmp.path().join("t.raw");
        let mut bigger = data.clone();
        bigger.extend_from_slice(&[0xAA; 8192]);
        std::fs::write(&target, &bigger).unwrap();
        let spec = TargetSpec {
            path: target.clone(),
            kind: TargetKind::RegularFile,
            size_bytes: None,
            expect: None,
        };
        let stop = AtomicBool::new(false);
        let size = data.len() as u64;
        let image = File::open(&qcow).unwrap();
        let open = || OwnedFd::from(File::open(&target).unwrap());
        // Extra bytes past the virtual size are not compared.
        compare(&image, &spec, &open(), size, "writeback", &stop).unwrap();
        bigger[4242] ^= 1;
        std::fs::write(&target, &bigger).unwrap();
        let err = compare(&image, &spec, &open(), size, "writeback", &stop).unwrap_err();
        assert!(
            matches!(&err, FlashError::CompareMismatch { detail, .. } if detail.contains("4096")),
            "{err:?}"
        );
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        assert_eq!(escape("/a,b"), "/a,,b");
    }
}
