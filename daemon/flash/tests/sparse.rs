//! A raw image stored sparse: its holes are never read, yet every target
//! (noise underneath) ends up byte-identical, the first MiB still last.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::atomic::AtomicBool;

use bty_flash::{FlashError, FlashOptions};
use bty_test_caps::require_loop_devices;
use support::*;

/// A copy of the raw fixture with its zero blocks turned into holes.
fn sparse_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("sparse.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(raw_image())
        .arg(&path));
    let allocated = run(Command::new("stat").args(["-c", "%b*%B"]).arg(&path));
    let allocated: u64 = String::from_utf8(allocated)
        .unwrap()
        .trim()
        .split('*')
        .map(|n| n.parse::<u64>().unwrap())
        .product();
    assert!(
        allocated < IMAGE_SIZE / 2,
        "the copy should be sparse: {allocated} bytes allocated"
    );
    path
}

#[test]
fn a_sparse_raw_file_flashes_exactly_over_old_data() {
    let tmp = tempfile::tempdir().unwrap();
    let src = sparse_copy(tmp.path());
    let existing = tmp.path().join("existing.img");
    noise_file(&existing, 32 * MIB, 11);
    for verify in [true, false] {
        let opts = FlashOptions {
            verify,
            ..FlashOptions::default()
        };
        let report = flash_path(
            &src,
            vec![file_spec(&existing)],
            &opts,
            &AtomicBool::new(false),
        );
        assert_flashed_ok(&report, &[&existing], verify);
        // No known digest: the whole stream is not hashed at all.
        assert!(report.image_sha256.is_empty());
    }
    // The same onto a real block device.
    {
        require_loop_devices();
        let lo = LoopDev::new(tmp.path(), "lo", 32 * MIB, 12);
        let report = flash_path(
            &src,
            vec![lo.spec()],
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        assert_flashed_ok(&report, &[&lo.dev], true);
    }
}

#[test]
fn a_wrong_known_digest_fails_a_sparse_raw_file_before_the_first_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let src = sparse_copy(tmp.path());
    let existing = tmp.path().join("existing.img");
    noise_file(&existing, 32 * MIB, 13);
    let before = first_mib(&existing);
    let opts = FlashOptions {
        verify: false,
        expected_image_sha256: Some("ab".repeat(32)),
        ..FlashOptions::default()
    };
    let report = flash_path(
        &src,
        vec![file_spec(&existing)],
        &opts,
        &AtomicBool::new(false),
    );
    let err = report.targets[0].result.as_ref().unwrap_err();
    assert!(
        matches!(err, FlashError::SourceDigestMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(first_mib(&existing), before);
}
