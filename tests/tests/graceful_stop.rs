//! SIGTERM while a hash and a download run: btyd exits 0 within 10 s,
//! writes no partial sidecar, keeps the download's partial, and resumes it
//! at the next start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, wait_for};
use bty_store::digest::sha256_bytes;
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_cleanly_and_work_resumes() {
    const SIZE: usize = 96 << 20;
    let origin = Origin::start();
    let bytes = noise(SIZE, 41);
    let sha = sha256_bytes(&bytes);
    origin.put("slow.img", bytes);
    origin.throttle(Duration::from_millis(4));
    let mut d = Daemon::start_with(|_, root| {
        std::fs::File::create(root.join("huge.img"))
            .unwrap()
            .set_len(6 << 30)
            .unwrap();
    });
    d.ctl_json(&["entries", "add", &origin.url("slow.img"), "--sha256", &sha]);
    let job = d.ctl_json(&["fetch", "slow.img", "--detach"]);
    let id = job["id"].as_str().unwrap().to_owned();
    wait_for(
        Duration::from_secs(30),
        "the download and the hash to run",
        || {
            let jobs = d.ctl_json(&["jobs", "list", "--active"]);
            let jobs = jobs.as_array().unwrap();
            let downloading = jobs
                .iter()
                .any(|j| j["id"] == id.as_str() && j["bytes_done"].as_u64() > Some(0));
            let hashing = jobs
                .iter()
                .any(|j| j["kind"] == "hash" && j["state"] == "running");
            (downloading && hashing).then_some(())
        },
    );
    let started = Instant::now();
    assert!(d.stop(), "btyd must exit 0 on SIGTERM:\n{}", d.log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(
        !d.image_root.join("huge.img.sha256").exists(),
        "no sidecar for an unfinished hash"
    );
    let names: Vec<String> = std::fs::read_dir(&d.image_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".partial")),
        "the download is checkpointed: {names:?}"
    );

    origin.throttle(Duration::ZERO);
    d.restart();
    wait_for(
        Duration::from_secs(120),
        "the download to finish after the restart",
        || {
            d.images()
                .iter()
                .any(|r| {
                    r["names"][0] == "slow.img"
                        && r["cached"] == true
                        && r["sha256"] == sha.as_str()
                })
                .then_some(())
        },
    );
}
