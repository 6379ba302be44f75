//! Incremental reflash on real loop devices: a target that holds version 1
//! of an image gets version 2 by writing only what differs, counted by the
//! kernel (`/sys/block/loopN/stat`), and ends equal to version 2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use bty_flash::{DiffCounts, FlashOptions, FlashReport};
use bty_test_caps::require_loop_devices;
use support::*;

/// Version 1: noise, a zero stretch, noise; not a multiple of 4096 long.
const V1_SIZE: usize = 48 << 20 | 1536;
const ZEROS: std::ops::Range<usize> = (20 << 20)..(28 << 20);
/// Version 2 differs from version 1 in this many scattered runs of 64 KiB
/// (2 % of the image), none aligned to a block.
const RUNS: usize = 15;
const RUN: usize = 64 << 10;

fn version_1() -> Vec<u8> {
    let mut v1 = noise(11, V1_SIZE);
    v1[ZEROS].fill(0);
    v1
}

/// Version 1 with runs changed; returns it and the bytes changed. One run
/// puts data into the zero stretch, one turns data into zeros.
fn version_2(v1: &[u8]) -> (Vec<u8>, usize) {
    let mut v2 = v1.to_vec();
    let fresh = noise(12, RUNS * RUN);
    for i in 0..RUNS {
        let at = i * (3 << 20) + 12_345;
        let run = &mut v2[at..at + RUN];
        if i == 5 {
            run.fill(0);
        } else {
            run.copy_from_slice(&fresh[i * RUN..(i + 1) * RUN]);
        }
    }
    assert!(
        v2[ZEROS].iter().any(|&b| b != 0),
        "a run lands in the zeros"
    );
    let changed = v1.iter().zip(&v2).filter(|(a, b)| a != b).count();
    (v2, changed)
}

/// Sectors of 512 bytes the kernel counted as written to `dev`.
fn sectors_written(dev: &Path) -> u64 {
    let name = dev.file_name().unwrap().to_str().unwrap();
    let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
    stat.split_whitespace().nth(6).unwrap().parse().unwrap()
}

fn diff_of(report: &FlashReport) -> DiffCounts {
    let done = report.targets[0].result.as_ref().unwrap();
    assert_eq!(done.verified, Some(true));
    done.diff
        .expect("an incremental flash reports what it compared")
}

#[test]
fn a_reflash_writes_only_what_changed_for_every_format() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let v1 = version_1();
    let (v2, changed) = version_2(&v1);
    let (v1_path, v2_path) = (tmp.path().join("v1.img"), tmp.path().join("v2.img"));
    std::fs::write(&v1_path, &v1).unwrap();
    std::fs::write(&v2_path, &v2).unwrap();
    run(Command::new("zstd").args(["-q", "-k", "-3"]).arg(&v2_path));
    run(Command::new("xz").args(["-k", "-T1", "-1"]).arg(&v2_path));
    let target = LoopDev::new(tmp.path(), "disk", 64 * MIB, 3);
    let incremental = FlashOptions {
        incremental: true,
        ..FlashOptions::default()
    };
    for v2_image in ["v2.img", "v2.img.zst", "v2.img.xz"] {
        let full = flash_path(
            &v1_path,
            vec![target.spec()],
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        assert!(full.all_ok(), "{v2_image}: {:?}", full.targets[0].result);
        assert!(same_prefix(&v1_path, &target.dev, v1.len() as u64));

        let before = sectors_written(&target.dev);
        let report = flash_path(
            &tmp.path().join(v2_image),
            vec![target.spec()],
            &incremental,
            &AtomicBool::new(false),
        );
        let written_bytes = (sectors_written(&target.dev) - before) * 512;
        let diff = diff_of(&report);
        assert!(
            same_prefix(&v2_path, &target.dev, v2.len() as u64),
            "{v2_image}: the target is not version 2"
        );
        eprintln!(
            "{v2_image}: {changed} bytes changed, kernel counted {written_bytes} written, {diff:?}"
        );
        let bound = (changed as u64) * 12 / 10 + MIB;
        assert!(
            written_bytes <= bound,
            "{v2_image}: the kernel counted {written_bytes} bytes written for {changed} changed (bound {bound})"
        );
        assert!(diff.written <= bound, "{v2_image}: {diff:?}");
        assert!(diff.written >= changed as u64, "{v2_image}: {diff:?}");
        assert_eq!(diff.compared, v2.len() as u64, "{v2_image}: {diff:?}");
        assert_eq!(diff.skipped, diff.compared - diff.written);
    }
}

#[test]
fn an_incremental_flash_onto_a_foreign_disk_writes_it_all_and_verifies() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let target = LoopDev::new(tmp.path(), "disk", 32 * MIB, 7);
    let opts = FlashOptions {
        incremental: true,
        ..FlashOptions::default()
    };
    let report = flash_path(
        &image("disk.img.zst"),
        vec![target.spec()],
        &opts,
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&target.dev], true);
    let diff = diff_of(&report);
    assert_eq!(diff.compared, IMAGE_SIZE);
    // Noise everywhere before: every piece of data and every zero run of
    // the image differed.
    assert_eq!(diff.written, IMAGE_SIZE, "{diff:?}");

    // The same image again: nothing differs, nothing is written.
    let before = sectors_written(&target.dev);
    let again = flash_path(
        &image("disk.img.zst"),
        vec![target.spec()],
        &opts,
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&again, &[&target.dev], true);
    assert_eq!(diff_of(&again).written, 0);
    assert_eq!(sectors_written(&target.dev), before, "a byte was written");
}
