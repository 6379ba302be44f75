//! Flashing through a real btyd onto loop devices the test made: one
//! decode pass to several targets, a too-small target refused while the
//! others are written and verified, and a mounted target refused before a
//! byte is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::{Daemon, noise, run, sha256sum, wait_for};
use bty_test_caps::require_loop_devices;
use std::process::Command;
use std::time::Duration;

const IMAGE: usize = 24 << 20;

fn raw_image() -> Vec<u8> {
    let mut raw = noise(IMAGE / 2, 21);
    raw.extend(std::iter::repeat_n(0u8, IMAGE / 4));
    raw.extend(noise(IMAGE / 4, 22));
    raw
}

#[test]
fn flashes_several_targets_from_one_decode_and_refuses_a_small_one() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image();
    std::fs::write(work.path().join("disk.img"), &raw).unwrap();
    let d = Daemon::start_with(|_, root| {
        run(Command::new("zstd")
            .args(["-q", "-3", "-o"])
            .arg(root.join("disk.img.zst"))
            .arg(work.path().join("disk.img")));
    });
    wait_for(Duration::from_secs(30), "the image to be hashed", || {
        d.images()
            .iter()
            .any(|r| r["sha256"].is_string())
            .then_some(())
    });
    let a = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);
    let b = LoopDevice::create(&work.path().join("b"), 32 << 20, 0xBB, false);
    let small = LoopDevice::create(&work.path().join("small"), 8 << 20, 0xCC, false);

    let (code, job, stderr) = d.flash(&["disk.img.zst", a.dev(), b.dev(), small.dev()]);
    assert_eq!(
        code, 7,
        "one target was refused, so the flash must not report success: {stderr}"
    );
    let targets = job["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets in {job}"));
    let by_path = |p: &str| {
        targets
            .iter()
            .find(|t| t["path"] == p)
            .unwrap_or_else(|| panic!("{p} in {job}"))
    };
    for dev in [&a, &b] {
        let t = by_path(dev.dev());
        assert_eq!(t["state"], "done", "{t}");
        assert_eq!(t["verified"], true, "{t}");
        let written = std::fs::read(&dev.file).unwrap();
        assert_eq!(
            &written[..IMAGE],
            &raw[..],
            "{} differs from the image",
            dev.dev()
        );
    }
    let refused = by_path(small.dev());
    assert_eq!(refused["state"], "refused", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("small"),
        "{refused}"
    );
    assert!(
        std::fs::read(&small.file)
            .unwrap()
            .iter()
            .all(|&x| x == 0xCC),
        "the refused target was written"
    );
    // The job's digest is that of the stored (compressed) bytes it read.
    assert_eq!(
        job["sha256"],
        sha256sum(&d.image_root.join("disk.img.zst")).as_str(),
        "{job}"
    );
}

#[test]
fn refuses_a_mounted_target_before_writing() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image();
    let d = Daemon::start_with(|_, root| std::fs::write(root.join("disk.img"), &raw).unwrap());
    let target = LoopDevice::create(&work.path().join("t"), 32 << 20, 0, false);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&target.path));
    let mnt = work.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(Command::new("mount").arg(&target.path).arg(&mnt));
    let before = std::fs::read(&target.file).unwrap();
    let (code, _, stderr) = d.flash(&["disk.img", target.dev()]);
    let after = std::fs::read(&target.file).unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    assert_ne!(code, 0, "a mounted disk must be refused");
    assert!(stderr.contains("mounted"), "{stderr}");
    assert!(after == before, "bytes changed on a refused target");
}

#[test]
fn an_incremental_reflash_writes_only_what_changed_and_reports_it() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let v1 = raw_image();
    // Version 2: five scattered 64 KiB runs changed (1.3 % of the image).
    let mut v2 = v1.clone();
    let fresh = noise(5 << 16, 23);
    for (i, run) in fresh.chunks(1 << 16).enumerate() {
        let at = i * (4 << 20) + 777;
        v2[at..at + run.len()].copy_from_slice(run);
    }
    let changed = v1.iter().zip(&v2).filter(|(a, b)| a != b).count() as u64;
    std::fs::write(work.path().join("v2.img"), &v2).unwrap();
    let d = Daemon::start_with(|_, root| {
        std::fs::write(root.join("v1.img"), &v1).unwrap();
        run(Command::new("zstd")
            .args(["-q", "-3", "-o"])
            .arg(root.join("v2.img.zst"))
            .arg(work.path().join("v2.img")));
    });
    wait_for(Duration::from_secs(30), "both images hashed", || {
        let rows = d.images();
        (rows.iter().filter(|r| r["sha256"].is_string()).count() == 2).then_some(())
    });
    let disk = LoopDevice::create(&work.path().join("disk"), 32 << 20, 0xAA, false);

    let (code, _, stderr) = d.flash(&["v1.img", disk.dev()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, job, stderr) = d.flash(&["v2.img.zst", disk.dev(), "--incremental"]);
    assert_eq!(code, 0, "{stderr}");
    let target = &job["targets"][0];
    assert_eq!(target["state"], "done", "{job}");
    assert_eq!(target["verified"], true, "{job}");
    let counts = &target["incremental"];
    let written = counts["bytes_written"].as_u64().unwrap();
    assert_eq!(counts["bytes_compared"], IMAGE as u64, "{job}");
    assert!(
        written >= changed && written <= changed * 12 / 10 + (1 << 20),
        "{written} bytes written for {changed} changed: {job}"
    );
    assert_eq!(
        counts["bytes_skipped"].as_u64().unwrap(),
        IMAGE as u64 - written,
        "{job}"
    );
    assert!(
        std::fs::read(&disk.file).unwrap()[..IMAGE] == v2[..],
        "the disk is not version 2"
    );
}
