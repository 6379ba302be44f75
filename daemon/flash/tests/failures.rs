//! Broken sources fail cleanly and never write the first MiB; one failing
//! target does not stop the others; cancel returns promptly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bty_flash::{FlashError, FlashOptions, HashingReader, flash, open_decoder};
use bty_store::format::Container;
use bty_test_caps::require_loop_devices;
use support::*;

/// A loop device full of noise.
struct NoisyTarget {
    _lo: Option<LoopDev>,
    spec: bty_flash::TargetSpec,
    before: Vec<u8>,
}

fn noisy_target(dir: &std::path::Path, name: &str, seed: u64) -> NoisyTarget {
    require_loop_devices();
    let lo = LoopDev::new(dir, name, 32 * MIB, seed);
    let before = first_mib(&lo.dev);
    NoisyTarget {
        spec: lo.spec(),
        _lo: Some(lo),
        before,
    }
}

fn damaged_source_fails(kind: &str, ext: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let target = noisy_target(tmp.path(), "lo", 11);
    let report = flash_path(
        &image(&format!("{kind}.{ext}")),
        vec![target.spec.clone()],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    let err = report.targets[0].result.as_ref().unwrap_err();
    let format = match err {
        FlashError::Decode { format, .. } => *format,
        other => panic!("{kind}.{ext}: expected a decode error, got {other:?}"),
    };
    let message = err.to_string();
    assert!(message.contains("corrupt or truncated"), "{message}");
    assert!(message.contains(format), "{message}");
    assert_eq!(
        first_mib(&target.spec.path),
        target.before,
        "{kind}.{ext}: first MiB was written"
    );
}

#[test]
fn corrupt_sources_fail_without_touching_the_first_mib() {
    for ext in ["img.zst", "img.xz", "img.gz", "img.bz2"] {
        damaged_source_fails("corrupt", ext);
    }
}

#[test]
fn truncated_sources_fail_without_touching_the_first_mib() {
    for ext in ["img.zst", "img.xz", "img.gz", "img.bz2"] {
        damaged_source_fails("truncated", ext);
    }
}

#[test]
fn wrong_source_digest_fails_without_touching_the_first_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let target = noisy_target(tmp.path(), "lo", 12);
    let hashing = HashingReader::new(File::open(image("disk.img.gz")).unwrap())
        .expect_sha256("ab".repeat(32));
    let source = open_decoder(BufReader::new(hashing), Container::Gzip).unwrap();
    let report = flash(
        source,
        vec![target.spec.clone()],
        &FlashOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    );
    assert!(
        matches!(
            report.targets[0].result,
            Err(FlashError::SourceDigestMismatch { .. })
        ),
        "{:?}",
        report.targets[0].result
    );
    assert_eq!(first_mib(&target.spec.path), target.before);
}

#[test]
fn wrong_raw_image_digest_fails_without_touching_the_first_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let target = noisy_target(tmp.path(), "raw", 13);
    let source = open_decoder(
        BufReader::new(File::open(image("disk.img")).unwrap()),
        Container::Raw,
    )
    .unwrap();
    let opts = FlashOptions {
        expected_image_sha256: Some("cd".repeat(32)),
        ..FlashOptions::default()
    };
    let report = flash(
        source,
        vec![target.spec.clone()],
        &opts,
        &|_| {},
        &AtomicBool::new(false),
    );
    assert!(
        matches!(
            report.targets[0].result,
            Err(FlashError::SourceDigestMismatch { .. })
        ),
        "{:?}",
        report.targets[0].result
    );
    assert_eq!(first_mib(&target.spec.path), target.before);
}

#[test]
fn a_too_small_target_fails_alone() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let good = LoopDev::new(tmp.path(), "good", 32 * MIB, 1);
    let small = LoopDev::new(tmp.path(), "small", 12 * MIB, 2);
    let file = tmp.path().join("out.img");
    let small_before = first_mib(&small.dev);
    let report = flash_path(
        &image("disk.img.zst"),
        vec![good.spec(), small.spec(), file_spec(&file)],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    assert!(
        matches!(
            report.targets[1].result,
            Err(FlashError::TargetTooSmall { .. })
        ),
        "{:?}",
        report.targets[1].result
    );
    assert!(report.targets[1].partially_written());
    assert_eq!(first_mib(&small.dev), small_before);
    let ok: Vec<_> = vec![report.targets[0].clone(), report.targets[2].clone()];
    let report = bty_flash::FlashReport {
        targets: ok,
        ..report
    };
    assert_flashed_ok(&report, &[&good.dev, &file], true);
}

#[test]
fn a_write_error_fails_that_target_alone() {
    // A full filesystem: a 4 MiB tmpfs cannot hold the 24 MiB image.
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let full = mnt.join("out.img");
    let good = tmp.path().join("good.img");
    let report = flash_path(
        &image("disk.img.xz"),
        vec![file_spec(&full), file_spec(&good)],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    assert!(
        matches!(report.targets[0].result, Err(FlashError::Write { .. })),
        "{:?}",
        report.targets[0].result
    );
    let report = bty_flash::FlashReport {
        targets: vec![report.targets[1].clone()],
        ..report
    };
    assert_flashed_ok(&report, &[&good], true);
}

/// Yields the raw image slowly: 256 KiB per 50 ms.
struct Slow(File);

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        thread::sleep(Duration::from_millis(50));
        let n = buf.len().min(256 << 10);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn cancel_returns_within_a_second_and_leaves_the_first_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let a = noisy_target(tmp.path(), "a", 21);
    let b_path = tmp.path().join("b.img");
    noise_file(&b_path, 32 * MIB, 22);
    let b_before = first_mib(&b_path);
    let cancel = AtomicBool::new(false);
    let cancelled_at = std::sync::Mutex::new(None);
    let report = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(1500));
            *cancelled_at.lock().unwrap() = Some(Instant::now());
            cancel.store(true, Ordering::Relaxed);
        });
        let source: Box<dyn Read + Send> = Box::new(Slow(File::open(raw_image()).unwrap()));
        flash(
            source,
            vec![a.spec.clone(), file_spec(&b_path)],
            &FlashOptions::default(),
            &|_| {},
            &cancel,
        )
    });
    let elapsed = cancelled_at.lock().unwrap().unwrap().elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "returned {elapsed:?} after cancel"
    );
    for t in &report.targets {
        assert!(
            matches!(t.result, Err(FlashError::Cancelled)),
            "{:?}",
            t.result
        );
        assert!(t.partially_written(), "some bytes should have been written");
    }
    assert_eq!(first_mib(&a.spec.path), a.before);
    assert_eq!(first_mib(&b_path), b_before);
}

#[test]
fn progress_is_reported_at_most_about_four_times_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.img");
    let calls = std::sync::Mutex::new(Vec::new());
    let source: Box<dyn Read + Send> =
        Box::new(Slow(File::open(raw_image()).unwrap()).take(8 * MIB));
    let observer = |p: bty_flash::Progress| calls.lock().unwrap().push((Instant::now(), p));
    let report = flash(
        source,
        vec![file_spec(&out)],
        &FlashOptions::default(),
        &observer,
        &AtomicBool::new(false),
    );
    assert!(report.all_ok());
    let calls = calls.into_inner().unwrap();
    assert!(calls.len() >= 3, "{} progress calls", calls.len());
    // All but the final report are at least 250 ms apart.
    for w in calls[..calls.len() - 1].windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(240));
    }
    let last = &calls.last().unwrap().1;
    assert_eq!(last.per_target[0].written, 8 * MIB);
    assert_eq!(last.phase, bty_flash::Phase::Done);
}

/// A source of `data` MiB of noise, then `zeros` MiB of zeros, then `data`
/// MiB of noise that, on its first read past the noise, plants `garbage`
/// at `plant_at` in `target`: a target that does not hold what bty wrote
/// there (a fresh file's zero runs are never written, so the garbage stays).
struct PlantingSource {
    image: std::io::Cursor<Vec<u8>>,
    target: std::path::PathBuf,
    plant_after: u64,
    plant_at: u64,
    planted: bool,
}

impl Read for PlantingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.planted && self.image.position() >= self.plant_after {
            use std::os::unix::fs::FileExt;
            let target = std::fs::OpenOptions::new().write(true).open(&self.target)?;
            target.write_all_at(b"not zeros", self.plant_at)?;
            target.sync_all()?;
            self.planted = true;
        }
        self.image.read(buf)
    }
}

#[test]
fn a_target_that_does_not_hold_the_image_fails_verify_and_keeps_its_first_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fresh.img");
    let mut image = noise(21, usize::try_from(8 * MIB).unwrap());
    image.resize(usize::try_from(24 * MIB).unwrap(), 0);
    image.extend(noise(22, usize::try_from(8 * MIB).unwrap()));
    let total = image.len() as u64;
    let plant_at = 12 * MIB + 4097;
    let source = PlantingSource {
        image: std::io::Cursor::new(image),
        target: out.clone(),
        plant_after: 8 * MIB,
        plant_at,
        planted: false,
    };
    // Small buffers: the writer syncs and hands a stretch to the verifier
    // every 64 buffers (4 MiB here), so the bad piece is found while the
    // image is still being written.
    let opts = FlashOptions {
        buffer_size: 64 << 10,
        ..FlashOptions::default()
    };
    let report = flash(
        Box::new(source) as Box<dyn Read + Send>,
        vec![file_spec(&out)],
        &opts,
        &|_| {},
        &AtomicBool::new(false),
    );
    let outcome = &report.targets[0];
    match outcome.result.as_ref().unwrap_err() {
        FlashError::VerifyMismatch {
            offset,
            len,
            expected,
            ..
        } => {
            assert!(
                (*offset..offset + len).contains(&plant_at),
                "{offset}+{len}"
            );
            assert_eq!(expected, "all zeros");
        }
        other => panic!("{other:?}"),
    }
    // Never the first MiB: it goes last, and not after a failed verify
    // (`written` counts image bytes done, zero runs included).
    assert!(
        outcome.written <= total - MIB,
        "{} bytes written of {total}",
        outcome.written
    );
    // The image's first MiB is noise; the target's was never written.
    assert!(first_mib(&out).iter().all(|&b| b == 0));
}

/// The identity confirmed at request time is checked on the descriptor the
/// pipeline opened: when the path now names another device (a swapped
/// stick, a re-used loop node), that target fails with `Identity` and not
/// a byte of it changes, on the streaming path and the qemu-img path.
#[test]
fn a_target_that_is_not_the_confirmed_device_is_never_written() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let confirmed = LoopDev::new(tmp.path(), "confirmed", 32 * MIB, 7);
    let other = LoopDev::new(tmp.path(), "other", 32 * MIB, 8);
    let identity = bty_disks::check_target(
        &bty_disks::SystemPaths::default(),
        &confirmed.dev,
        None,
        None,
    )
    .unwrap()
    .identity;
    let before = std::fs::read(&other.backing).unwrap();
    for source in ["disk.img.zst", "disk.img", "disk.qcow2"] {
        let spec = bty_flash::TargetSpec {
            path: other.dev.clone(),
            expect: Some(identity.clone()),
            ..other.spec()
        };
        let report = flash_path(
            &image(source),
            vec![spec],
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        assert!(
            matches!(report.targets[0].result, Err(FlashError::Identity(_))),
            "{source}: {:?}",
            report.targets[0].result
        );
        assert!(
            std::fs::read(&other.backing).unwrap() == before,
            "{source}: the other device was written"
        );
    }
}

/// "Pull" a loop device that is held open (it cannot be detached): cut its
/// backing file to 0 bytes and set its capacity from it. A write still in
/// flight can grow the file again between the two steps, so repeat until
/// the device's size reads 0.
fn pull_loop(dev: &std::path::Path, backing: &std::path::Path) {
    let name = dev.file_name().unwrap().to_str().unwrap().to_owned();
    let size = std::path::Path::new("/sys/class/block")
        .join(name)
        .join("size");
    for _ in 0..50 {
        File::create(backing).unwrap();
        run(std::process::Command::new("losetup").arg("-c").arg(dev));
        if std::fs::read_to_string(&size).unwrap().trim() == "0" {
            return;
        }
    }
    panic!("{} kept a non-zero size", dev.display());
}

/// Yields `image`, pulling the loop device `dev` (backed by `backing`)
/// once `after` bytes were read.
struct PullingSource {
    image: File,
    dev: std::path::PathBuf,
    backing: std::path::PathBuf,
    after: u64,
    read: u64,
    pulled: bool,
}

impl Read for PullingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.pulled && self.read >= self.after {
            pull_loop(&self.dev, &self.backing);
            self.pulled = true;
        }
        let n = self.image.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn a_target_pulled_mid_flash_fails_as_removed_and_the_others_complete() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let pulled = LoopDev::new(tmp.path(), "pulled", 32 * MIB, 31);
    let good = LoopDev::new(tmp.path(), "good", 32 * MIB, 32);
    let file = tmp.path().join("out.img");
    let source: Box<dyn Read + Send> = Box::new(PullingSource {
        image: File::open(raw_image()).unwrap(),
        dev: pulled.dev.clone(),
        backing: pulled.backing.clone(),
        after: 8 * MIB,
        read: 0,
        pulled: false,
    });
    let report = flash(
        source,
        vec![pulled.spec(), good.spec(), file_spec(&file)],
        &FlashOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    );
    let err = report.targets[0].result.as_ref().unwrap_err();
    assert!(matches!(err, FlashError::DeviceRemoved { .. }), "{err:?}");
    let message = err.to_string();
    eprintln!("pulled target: {message}");
    assert!(
        message.starts_with(&format!("{}: device removed", pulled.dev.display())),
        "{message}"
    );
    let ok = bty_flash::FlashReport {
        targets: report.targets[1..].to_vec(),
        ..report
    };
    assert_flashed_ok(&ok, &[&good.dev, &file], true);
}
