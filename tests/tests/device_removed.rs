//! A disk pulled mid-flash through a real btyd: the test's loop device
//! loses its medium (backing file cut to 0 bytes, capacity re-read with
//! `losetup -c`; a device held open cannot be detached) while a slow
//! stream is being written to it and to a second one. The pulled target
//! fails with "device removed", the other completes with the image.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, run, wait_for};
use bty_store::digest::sha256_bytes;
use bty_test_caps::require_loop_devices;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;
const IMAGE: usize = 48 * MIB;

/// Random and zero regions, like a real disk image.
fn raw_image() -> Vec<u8> {
    let mut raw = noise(IMAGE / 2, 61);
    raw.extend(std::iter::repeat_n(0u8, IMAGE / 4));
    raw.extend(noise(IMAGE - raw.len(), 62));
    raw
}

/// Take the medium out of `dev` while btyd holds it open: cut its backing
/// file and have the loop driver re-read its size. A write still in flight
/// can grow the file between the two steps, so repeat until the device's
/// size reads 0.
fn pull_medium(dev: &LoopDevice) {
    let name = dev.path.file_name().unwrap().to_str().unwrap().to_owned();
    let size = Path::new("/sys/class/block").join(name).join("size");
    for _ in 0..50 {
        std::fs::File::create(&dev.file).unwrap();
        run(Command::new("losetup").arg("-c").arg(&dev.path));
        if std::fs::read_to_string(&size).unwrap().trim() == "0" {
            return;
        }
    }
    panic!("{} kept a non-zero size", dev.dev());
}

fn target<'a>(job: &'a Value, dev: &LoopDevice) -> &'a Value {
    job["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["path"] == dev.dev()))
        .unwrap_or_else(|| panic!("{} in {job}", dev.dev()))
}

#[test]
fn a_target_pulled_mid_flash_fails_as_removed_and_the_other_completes() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image();
    let image_sha = sha256_bytes(&raw);
    let origin = Origin::start();
    origin.put("disk.img", raw);
    // 64 KiB per 8 ms: about 8 MiB/s, so the flash runs for seconds.
    origin.throttle(Duration::from_millis(8));
    let d = Daemon::start();
    let pulled = LoopDevice::create(&work.path().join("pulled"), 64 << 20, 0xAA, false);
    let kept = LoopDevice::create(&work.path().join("kept"), 64 << 20, 0xBB, false);
    let started = d.ctl_json(&[
        "flash",
        &origin.url("disk.img"),
        pulled.dev(),
        kept.dev(),
        "--yes",
        "--detach",
    ]);
    let id = started["id"].as_str().unwrap().to_owned();
    let job = |d: &Daemon| d.job(&id);

    let running = wait_for(Duration::from_secs(30), "8 MiB on both targets", || {
        let j = job(&d);
        (j["bytes_done"].as_u64() > Some(8 << 20)).then_some(j)
    });
    assert_eq!(running["state"], "running", "{running}");
    assert!(
        running["bytes_done"].as_u64() < Some((IMAGE / 2) as u64),
        "too fast to pull the medium mid-flash: {running}"
    );
    pull_medium(&pulled);

    let ended = wait_for(Duration::from_secs(60), "the job to end", || {
        let j = job(&d);
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    });
    assert_eq!(
        ended["state"], "failed",
        "one of two targets failed: {ended}"
    );
    let gone = target(&ended, &pulled);
    assert_eq!(gone["state"], "failed", "{ended}");
    let error = gone["error"].as_str().unwrap_or_default();
    eprintln!("pulled target: {error}");
    assert!(
        error.starts_with(&format!(
            "{}: device removed during the flash",
            pulled.dev()
        )),
        "{ended}"
    );
    let done = target(&ended, &kept);
    assert_eq!(done["state"], "done", "{ended}");
    assert_eq!(done["verified"], true, "{ended}");
    let written = std::fs::read(&kept.file).unwrap();
    assert_eq!(
        sha256_bytes(&written[..IMAGE]),
        image_sha,
        "{} differs from the image",
        kept.dev()
    );
}
