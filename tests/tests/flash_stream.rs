//! Flashing straight from the network through a real btyd: an entry with no
//! local copy, a bare URL and an `oras://` artifact are streamed from a real
//! HTTP origin / registry onto loop devices the test made, decoded on the
//! fly and verified, and nothing lands in the image root (a qcow2 entry is
//! fetched into it first). A wrong digest fails with the first MiB
//! unwritten; a raw image too big for the disk is refused before a byte; a
//! missing URL is refused at once; cancel stops a slow stream and says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::registry::Registry;
use bty_e2e::{Daemon, drop_file, noise, run, wait_for};
use bty_store::digest::sha256_bytes;
use bty_test_caps::require_loop_devices;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: usize = 24 << 20;
const MIB: usize = 1 << 20;

/// Random and zero regions, like a real disk image.
fn raw_image(len: usize, seed: u64) -> Vec<u8> {
    let mut raw = noise(len / 2, seed);
    raw.extend(std::iter::repeat_n(0u8, len / 4));
    raw.extend(noise(len - raw.len(), seed + 1));
    raw
}

/// `raw` compressed by a standard tool (`xz -T2` makes a multi-block stream).
fn compressed(work: &Path, raw: &[u8], tool: &[&str], ext: &str) -> Vec<u8> {
    let src = work.join("src.img");
    std::fs::write(&src, raw).unwrap();
    let out = run(Command::new(tool[0]).args(&tool[1..]).arg("-c").arg(&src));
    std::fs::write(work.join(format!("src.img.{ext}")), &out.stdout).unwrap();
    out.stdout
}

/// A btyd with one catalog entry: `bytes` served by `origin` at `path`,
/// pinned to `sha256`, not fetched.
fn daemon_with_entry(origin: &Origin, path: &str, bytes: Vec<u8>, sha256: &str) -> Daemon {
    origin.put(path, bytes);
    let d = Daemon::start();
    d.ctl_json(&["entries", "add", &origin.url(path), "--sha256", sha256]);
    d
}

/// Every file in the image root but the store marker.
fn stored_files(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&d.image_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".bty-storage.json")
        .collect();
    names.sort();
    names
}

fn assert_flashed(job: &Value, dev: &LoopDevice, raw: &[u8]) {
    let target = &job["targets"][0];
    assert_eq!(target["state"], "done", "{job}");
    assert_eq!(target["verified"], true, "{job}");
    let written = std::fs::read(&dev.file).unwrap();
    assert!(
        written[..raw.len()] == *raw,
        "{} differs from the image",
        dev.dev()
    );
}

fn first_mib_untouched(dev: &LoopDevice, fill: u8) -> bool {
    std::fs::read(&dev.file).unwrap()[..MIB]
        .iter()
        .all(|&b| b == fill)
}

#[test]
fn an_entry_without_a_local_copy_streams_onto_the_disk_and_stores_nothing() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image(IMAGE, 41);
    let xz = compressed(work.path(), &raw, &["xz", "-T2", "--block-size=4MiB"], "xz");
    let origin = Origin::start();
    let sha = sha256_bytes(&xz);
    let d = daemon_with_entry(&origin, "os/lab.img.xz", xz.clone(), &sha);
    let dev = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);

    let (code, job, stderr) = d.flash(&["lab.img.xz", dev.dev()]);

    assert_eq!(code, 0, "{stderr}\n{job}");
    assert_flashed(&job, &dev, &raw);
    assert_eq!(
        job["sha256"],
        sha.as_str(),
        "the stream's digest was checked"
    );
    assert_eq!(job["source_bytes"], xz.len(), "{job}");
    assert_eq!(origin.bytes_sent(), xz.len() as u64, "pulled once");
    assert_eq!(stored_files(&d), Vec::<String>::new(), "nothing landed");
    let row = d
        .images()
        .into_iter()
        .find(|r| r["names"][0] == "lab.img.xz")
        .unwrap();
    assert_eq!(row["cached"], false, "{row}");
}

#[test]
fn a_connection_cut_mid_flash_resumes_where_it_stopped() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image(IMAGE, 47);
    let zst = compressed(work.path(), &raw, &["zstd", "-q", "-3"], "zst");
    let origin = Origin::start();
    let sha = sha256_bytes(&zst);
    let d = daemon_with_entry(&origin, "cut.img.zst", zst.clone(), &sha);
    origin.drop_next_after(4 << 20);
    let dev = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);

    let (code, job, stderr) = d.flash(&["cut.img.zst", dev.dev()]);

    assert_eq!(code, 0, "{stderr}\n{job}");
    assert_flashed(&job, &dev, &raw);
    assert_eq!(job["sha256"], sha.as_str(), "{job}");
    assert_eq!(origin.body_requests(), 2, "one cut, one resumed request");
    assert!(d.log().contains("resuming stream"), "{}", d.log());
}

#[test]
fn a_wrong_pinned_digest_fails_the_stream_and_leaves_the_first_mib() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image(IMAGE, 42);
    let zst = compressed(work.path(), &raw, &["zstd", "-q", "-3"], "zst");
    let origin = Origin::start();
    let wrong = "0".repeat(64);
    let d = daemon_with_entry(&origin, "lab.img.zst", zst.clone(), &wrong);
    let dev = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);

    let (code, job, stderr) = d.flash(&["lab.img.zst", dev.dev()]);

    assert_eq!(code, 7, "{stderr}\n{job}");
    let error = job["targets"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&wrong) && error.contains(&sha256_bytes(&zst)),
        "the error names both digests: {job}"
    );
    assert!(first_mib_untouched(&dev, 0xAA), "the first MiB was written");
    assert_eq!(stored_files(&d), Vec::<String>::new());
}

#[test]
fn a_raw_url_bigger_than_the_disk_is_refused_before_a_byte() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    origin.put("big.img", raw_image(IMAGE, 43));
    let d = Daemon::start();
    let small = LoopDevice::create(&work.path().join("s"), 16 << 20, 0xCC, false);

    let (code, _, stderr) = d.flash(&[&origin.url("big.img"), small.dev()]);

    assert_ne!(code, 0);
    assert!(stderr.contains("too small"), "{stderr}");
    assert!(
        std::fs::read(&small.file)
            .unwrap()
            .iter()
            .all(|&b| b == 0xCC),
        "a refused target was written"
    );
}

#[test]
fn a_remote_qcow2_entry_is_fetched_into_the_store_first_then_flashed() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image(IMAGE, 46);
    std::fs::write(work.path().join("src.img"), &raw).unwrap();
    let qcow2_path = work.path().join("vm.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(work.path().join("src.img"))
        .arg(&qcow2_path));
    let qcow2 = std::fs::read(&qcow2_path).unwrap();
    let origin = Origin::start();
    let sha = sha256_bytes(&qcow2);
    let d = daemon_with_entry(&origin, "vm.qcow2", qcow2.clone(), &sha);
    let dev = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);

    let (code, job, stderr) = d.flash(&["vm.qcow2", dev.dev()]);

    assert_eq!(code, 0, "{stderr}\n{job}");
    assert_flashed(&job, &dev, &raw);
    let downloads = d.ctl_json(&["jobs", "list", "--kind", "download"]);
    assert_eq!(downloads[0]["state"], "completed", "{downloads}");
    let row = d
        .images()
        .into_iter()
        .find(|r| r["names"][0] == "vm.qcow2")
        .unwrap();
    assert_eq!(row["cached"], true, "{row}");
    assert_eq!(row["sha256"], sha.as_str(), "{row}");
}

#[test]
fn a_missing_url_is_refused_at_once_naming_the_status() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    let d = Daemon::start();
    let dev = LoopDevice::create(&work.path().join("a"), 8 << 20, 0xAA, false);

    let (code, _, stderr) = d.flash(&[&origin.url("gone.img.zst"), dev.dev()]);

    assert_ne!(code, 0);
    assert!(stderr.contains("404"), "{stderr}");
    let jobs = d.ctl_json(&["jobs", "list", "--kind", "flash"]);
    assert_eq!(
        jobs,
        serde_json::json!([]),
        "no job for a stream that never started"
    );
    assert!(first_mib_untouched(&dev, 0xAA));
}

#[test]
fn cancel_stops_a_slow_stream_within_a_second_and_says_partially_written() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    origin.put("slow.img", raw_image(64 << 20, 44));
    // 64 KiB per 4 ms: about 16 MiB/s, so the flash runs for seconds.
    origin.throttle(Duration::from_millis(4));
    let d = Daemon::start();
    let dev = LoopDevice::create(&work.path().join("a"), 80 << 20, 0xAA, false);
    let url = origin.url("slow.img");
    let started = d.ctl_json(&["flash", &url, dev.dev(), "--yes", "--detach"]);
    let id = started["id"].as_str().unwrap().to_owned();
    let job = |d: &Daemon| d.job(&id);

    // A running stream reports bytes, the source read and a rate.
    let running = wait_for(Duration::from_secs(30), "progress with a rate", || {
        let j = job(&d);
        (j["bytes_done"].as_u64() > Some(4 << 20) && j["rate_bps"].as_u64() > Some(0)).then_some(j)
    });
    assert_eq!(running["state"], "running", "{running}");
    assert_eq!(running["phase"], "writing", "{running}");
    assert!(running["source_bytes"].as_u64() > Some(0), "{running}");

    d.ctl_json(&["jobs", "cancel", &id]);
    let asked = Instant::now();
    let ended = wait_for(Duration::from_secs(10), "the job to end", || {
        let j = job(&d);
        (j["state"] != "running" && j["state"] != "queued").then_some(j)
    });
    let took = asked.elapsed();
    eprintln!("cancel took {took:?}");
    assert_eq!(ended["state"], "cancelled", "{ended}");
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    let target = &ended["targets"][0];
    assert_eq!(target["state"], "cancelled", "{ended}");
    assert!(
        target["error"]
            .as_str()
            .unwrap_or_default()
            .contains("partially written"),
        "{ended}"
    );
    assert!(first_mib_untouched(&dev, 0xAA), "the first MiB was written");
}

#[test]
fn an_oras_artifact_streams_onto_the_disk_with_its_layer_digest_checked() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let raw = raw_image(IMAGE, 45);
    let gz = compressed(work.path(), &raw, &["gzip", "-1"], "gz");
    let registry = Registry::start();
    let config = format!("[registries.\"{}\"]\ninsecure = true\n", registry.host());
    let d = Daemon::start_configured(&config, |_, root| {
        drop_file(root, "lab.img.gz", &gz);
    });
    let sha = sha256_bytes(&gz);
    wait_for(Duration::from_secs(30), "the file to be hashed", || {
        d.images()
            .iter()
            .any(|r| r["sha256"] == sha.as_str())
            .then_some(())
    });
    let artifact = format!("oras://{}/lab/disk:v1", registry.host());
    let pushed = d.ctl_json(&["push", "lab.img.gz", &artifact]);
    assert_eq!(pushed["state"], "completed", "{pushed}");
    // Only the pushed artifact can serve the bytes now.
    std::fs::remove_file(d.image_root.join("lab.img.gz")).unwrap();
    let dev = LoopDevice::create(&work.path().join("a"), 32 << 20, 0xAA, false);

    let (code, job, stderr) = d.flash(&[&artifact, dev.dev()]);

    assert_eq!(code, 0, "{stderr}\n{job}");
    assert_flashed(&job, &dev, &raw);
    assert_eq!(job["sha256"], sha.as_str(), "{job}");
    // Streamed: nothing landed in the image root (the pushed file was
    // removed, only its sidecar may be left).
    let stored = stored_files(&d);
    assert!(
        stored.iter().all(|n| n == "lab.img.gz.sha256"),
        "{stored:?}"
    );
}
