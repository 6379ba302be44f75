//! Every format flashes byte-for-byte to a loop device, an existing
//! (noise-filled) file and a fresh file, verified, in one decode pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::atomic::AtomicBool;

use bty_flash::FlashOptions;
use bty_test_caps::require_loop_devices;
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

    // The same onto a real block device.
    {
        require_loop_devices();
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
    flashes_onto_a_file_and_a_loop_device(&image("disk.qcow2"), tmp.path(), 7);
}

/// Flash `src` onto a noise-filled file, then onto a loop device larger
/// than the image (compare must look only at the image's virtual size).
fn flashes_onto_a_file_and_a_loop_device(src: &std::path::Path, tmp: &std::path::Path, seed: u64) {
    let existing = tmp.join("existing.img");
    noise_file(&existing, 32 * MIB, seed);
    let report = flash_path(
        src,
        vec![file_spec(&existing)],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&existing], true);
    require_loop_devices();
    let lo = LoopDev::new(tmp, "lo", 32 * MIB, seed + 1);
    let report = flash_path(
        src,
        vec![lo.spec()],
        &FlashOptions::default(),
        &AtomicBool::new(false),
    );
    assert_flashed_ok(&report, &[&lo.dev], true);
}

#[test]
fn compressed_qcow2_goes_through_qemu_img_convert() {
    let tmp = tempfile::tempdir().unwrap();
    let comp = tmp.path().join("comp.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-c", "-f", "raw", "-O", "qcow2"])
        .arg(raw_image())
        .arg(&comp));
    flashes_onto_a_file_and_a_loop_device(&comp, tmp.path(), 9);
}

/// qcow2 images that name a host file: a backing file by path, a `json:`
/// backing, an external data file. Converting them used to copy the host
/// file onto the target (qemu-img runs as root); now each is refused with
/// the reason before qemu-img runs, and no target changes.
#[test]
fn qcow2_naming_a_host_file_is_refused_and_no_target_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("host-secret");
    let secret_bytes = noise(42, 4 * MIB as usize);
    let size = (4 * MIB).to_string();
    let qemu_img = |args: &[&str]| {
        run(Command::new("qemu-img").arg("create").arg("-q").args(args));
    };
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    qemu_img(&[
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-u",
        "-b",
        &p("host-secret"),
        &p("backed.qcow2"),
        &size,
    ]);
    let json = format!(
        r#"json:{{"driver":"file","filename":"{}"}}"#,
        p("host-secret")
    );
    qemu_img(&[
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-u",
        "-b",
        &json,
        &p("json.qcow2"),
        &size,
    ]);
    // Creating the data-file image empties its data file: the secret is
    // written after, as a host file such a header would name.
    let data_opts = format!("data_file={},data_file_raw=on", p("host-secret"));
    qemu_img(&["-f", "qcow2", "-o", &data_opts, &p("data.qcow2"), &size]);
    std::fs::write(&secret, &secret_bytes).unwrap();

    require_loop_devices();
    let lo = Some(LoopDev::new(tmp.path(), "lo", 32 * MIB, 8));
    for (name, why) in [
        ("backed.qcow2", "backing file"),
        ("json.qcow2", "json:"),
        ("data.qcow2", "external data file"),
    ] {
        let existing = tmp.path().join("existing.img");
        noise_file(&existing, 8 * MIB, 3);
        let before = std::fs::read(&existing).unwrap();
        let mut specs = vec![file_spec(&existing)];
        let mut lo_before = None;
        if let Some(lo) = &lo {
            lo_before = Some(std::fs::read(&lo.dev).unwrap());
            specs.push(lo.spec());
        }
        let report = flash_path(
            &tmp.path().join(name),
            specs,
            &FlashOptions::default(),
            &AtomicBool::new(false),
        );
        for outcome in &report.targets {
            let err = outcome.result.as_ref().unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("refusing this qcow2 image") && msg.contains(why),
                "{name}: {msg}"
            );
            assert_eq!(outcome.written, 0, "{name}");
        }
        assert!(
            std::fs::read(&existing).unwrap() == before,
            "{name} changed the file target"
        );
        if let (Some(lo), Some(before)) = (&lo, lo_before) {
            assert!(
                std::fs::read(&lo.dev).unwrap() == before,
                "{name} changed the loop device"
            );
        }
    }
    assert!(std::fs::read(&secret).unwrap() == secret_bytes);
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
