//! Every format flashes byte-for-byte to a loop device, an existing
//! (noise-filled) file and a fresh file, verified, in one decode pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::atomic::AtomicBool;

use bty_flash::FlashOptions;
use support::*;

fn flashes_format(ext: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("existing.img");
    noise_file(&existing, 32 * MIB, 7);
    let fresh = tmp.path().join("fresh.img");
    let src = image(&format!("disk.{ext}"));
    let opts = FlashOptions::default();

    let report = flash_path(
        &src,
        vec![file_spec(&existing), file_spec(&fresh)],
        &opts,
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&existing, &fresh], true);
    // Regular files end up exactly image-sized.
    assert_eq!(std::fs::metadata(&fresh).unwrap().len(), IMAGE_SIZE);
    assert_eq!(std::fs::metadata(&existing).unwrap().len(), IMAGE_SIZE);

    if can_use_loop(&format!("flashes_{ext}_to_a_loop_device")) {
        let lo = LoopDev::new(tmp.path(), "lo", 32 * MIB, 8);
        let report = flash_path(&src, vec![lo.spec()], &opts, &AtomicBool::new(false));
        assert_flashed_ok(&report, &[&lo.dev], true);
    }
}

#[test]
fn flashes_raw() {
    flashes_format("img");
}

#[test]
fn flashes_zstd() {
    flashes_format("img.zst");
}

#[test]
fn flashes_xz() {
    flashes_format("img.xz");
}

#[test]
fn flashes_gzip() {
    flashes_format("img.gz");
}

#[test]
fn flashes_bzip2() {
    flashes_format("img.bz2");
}

#[test]
fn flashes_qcow2() {
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("existing.img");
    noise_file(&existing, 32 * MIB, 7);
    let src = image("disk.qcow2");
    let report = flash_path(
        &src,
        vec![file_spec(&existing)],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&existing], true);
    if can_use_loop("flashes_qcow2_to_a_loop_device") {
        // Larger than the image and full of noise: compare must look only
        // at the image's virtual size.
        let lo = LoopDev::new(tmp.path(), "lo", 32 * MIB, 8);
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
fn compressed_and_backed_qcow2_go_through_qemu_img_convert() {
    let tmp = tempfile::tempdir().unwrap();
    let (comp, base, over) = (
        tmp.path().join("comp.qcow2"),
        tmp.path().join("base.qcow2"),
        tmp.path().join("over.qcow2"),
    );
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-c", "-f", "raw", "-O", "qcow2"])
        .arg(raw_image())
        .arg(&comp));
    std::fs::copy(image("disk.qcow2"), &base).unwrap();
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&over));
    for src in [&comp, &over] {
        let existing = tmp.path().join("existing.img");
        noise_file(&existing, 32 * MIB, 9);
        let report = flash_path(
            src,
            vec![file_spec(&existing)],
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        assert_flashed_ok(&report, &[&existing], true);
    }
}

#[test]
fn concatenated_streams_decode_fully() {
    let tmp = tempfile::tempdir().unwrap();
    for ext in ["img.zst", "img.xz", "img.gz", "img.bz2"] {
        let out = tmp.path().join(format!("out-{ext}"));
        let report = flash_path(
            &image(&format!("multi.{ext}")),
            vec![file_spec(&out)],
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        assert_flashed_ok(&report, &[&out], true);
    }
}

#[test]
fn flashes_without_direct_io_zero_skip_or_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.img");
    noise_file(&out, 30 * MIB, 9);
    let opts = FlashOptions {
        direct_io: false,
        zero_skip: false,
        verify: false,
        buffer_size: 1 << 20,
        ..FlashOptions::default()
    };
    let report = flash_path(
        &image("disk.img.zst"),
        vec![file_spec(&out)],
        &opts,
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&out], false);
}
