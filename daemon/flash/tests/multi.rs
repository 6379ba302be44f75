//! Several targets from one decode pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::AtomicBool;

use bty_flash::FlashOptions;
use bty_test_caps::require_loop_devices;
use support::*;

#[test]
fn three_targets_from_one_decode_pass() {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let a = LoopDev::new(tmp.path(), "a", 32 * MIB, 1);
    let b = LoopDev::new(tmp.path(), "b", 24 * MIB + 4096, 2);
    let file = tmp.path().join("c.img");
    noise_file(&file, 40 * MIB, 3);
    let expected = bty_store::digest::sha256_bytes(&std::fs::read(raw_image()).unwrap());
    let opts = FlashOptions {
        // The decoded stream's digest is checked once for all targets.
        expected_image_sha256: Some(expected.clone()),
        ..FlashOptions::default()
    };
    let report = flash_path(
        &image("disk.img.xz"),
        vec![a.spec(), b.spec(), file_spec(&file)],
        &opts,
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&a.dev, &b.dev, &file], true);
    assert_eq!(report.bytes, IMAGE_SIZE);
    assert_eq!(report.image_sha256, expected);
}
