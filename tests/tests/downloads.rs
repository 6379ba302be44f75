//! Downloads through a real btyd from a real HTTP origin: clean and pinned
//! fetches, digest mismatch, cancel, dedup of concurrent requests, kill -9
//! with resume, and Update with unchanged and changed upstream bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, wait_for};
use bty_store::digest::sha256_bytes;
use serde_json::Value;
use std::time::Duration;

fn row_named<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .unwrap_or_else(|| panic!("no row {name}: {rows:#?}"))
}

#[test]
fn fetch_lands_verified_bytes_with_a_sidecar() {
    let origin = Origin::start();
    let bytes = noise(6 << 20, 11);
    let sha = sha256_bytes(&bytes);
    origin.put("os/debian.img.zst", bytes.clone());
    let d = Daemon::start();
    let entry = d.ctl_json(&[
        "entries",
        "add",
        &origin.url("os/debian.img.zst"),
        "--sha256",
        &sha,
    ]);
    let job = d.ctl_json(&["fetch", "debian.img.zst"]);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["sha256"], sha.as_str());

    let rows = d.images();
    let row = row_named(&rows, "debian.img.zst");
    assert_eq!(row["cached"], true);
    assert_eq!(row["sha256"], sha.as_str());
    assert_eq!(row["actions"]["update"], true);
    assert_eq!(row["actions"]["fetch"], false);
    let r = entry["ref"].as_str().unwrap();
    let file = format!("catalog-{}-debian-img-zst.img.zst", &r[..12]);
    assert_eq!(std::fs::read(d.image_root.join(&file)).unwrap(), bytes);
    let sidecar = std::fs::read_to_string(d.image_root.join(format!("{file}.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{sha}  {file}\n"));
    // Inline hashing: the hasher never ran a job for the downloaded file.
    let hash_jobs = d.ctl_json(&["jobs", "list", "--kind", "hash"]);
    assert_eq!(hash_jobs.as_array().unwrap().len(), 0, "{hash_jobs}");
    assert!(!d.image_root_names().iter().any(|n| n.ends_with(".partial")));
}

#[test]
fn pinned_digest_mismatch_discards_the_bytes_and_names_both_digests() {
    let origin = Origin::start();
    let bytes = noise(1 << 20, 12);
    let actual = sha256_bytes(&bytes);
    origin.put("bad.img", bytes);
    let d = Daemon::start();
    let wrong = "0".repeat(64);
    d.ctl_json(&["entries", "add", &origin.url("bad.img"), "--sha256", &wrong]);
    let (code, job) = d.fetch("bad.img");
    assert_eq!(code, Some(7), "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains(&wrong) && error.contains(&actual), "{error}");
    assert_eq!(d.image_root_names(), vec![".bty-storage.json".to_owned()]);
    assert_eq!(row_named(&d.images(), "bad.img")["cached"], false);
}

#[test]
fn cancel_stops_the_download_and_leaves_no_partial() {
    let origin = Origin::start();
    origin.put("slow.img", noise(64 << 20, 13));
    origin.throttle(Duration::from_millis(20));
    let d = Daemon::start();
    d.ctl_json(&["entries", "add", &origin.url("slow.img")]);
    let first = d.ctl_json(&["fetch", "slow.img", "--detach"]);
    // A second request for the same entry joins the running job.
    let second = d.ctl_json(&["fetch", "slow.img", "--detach"]);
    assert_eq!(first["id"], second["id"]);
    let id = first["id"].as_str().unwrap().to_owned();
    wait_for(Duration::from_secs(20), "bytes to flow", || {
        (d.job(&id)["bytes_done"].as_u64() > Some(0)).then_some(())
    });
    d.ctl_json(&["jobs", "cancel", &id]);
    let job = wait_for(Duration::from_secs(2), "the job to stop", || {
        let job = d.job(&id);
        (job["state"] == "cancelled").then_some(job)
    });
    assert_eq!(job["state"], "cancelled");
    let leftovers: Vec<String> = d
        .image_root_names()
        .into_iter()
        .filter(|n| n != ".bty-storage.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn kill_during_download_resumes_from_the_partial() {
    const SIZE: usize = 200 << 20;
    let origin = Origin::start();
    let bytes = noise(SIZE, 14);
    let sha = sha256_bytes(&bytes);
    origin.put("big.img", bytes);
    // ~64 MiB/s: the transfer takes a few seconds.
    origin.throttle(Duration::from_millis(1));
    let mut d = Daemon::start();
    d.ctl_json(&["entries", "add", &origin.url("big.img"), "--sha256", &sha]);
    let job = d.ctl_json(&["fetch", "big.img", "--detach"]);
    let id = job["id"].as_str().unwrap().to_owned();
    // A third in the partial on disk, not only received: the job counts
    // bytes before the landing writes them.
    wait_for(
        Duration::from_secs(60),
        "a third of the bytes in the partial",
        || {
            let running = d.job(&id)["bytes_done"].as_u64() > Some(SIZE as u64 / 3);
            (running && d.partial_bytes() > SIZE as u64 / 3).then_some(())
        },
    );
    d.kill9();
    let sent_before = origin.bytes_sent();
    assert!(
        d.image_root_names().iter().any(|n| n.ends_with(".partial")),
        "the partial must survive kill -9"
    );
    let kept = d.partial_bytes();
    assert!(kept > SIZE as u64 / 3, "only {kept} bytes kept");
    d.restart();
    let rows = wait_for(
        Duration::from_secs(120),
        "the resumed download to land",
        || {
            let rows = d.images();
            (row_named(&rows, "big.img")["cached"] == true).then_some(rows)
        },
    );
    assert_eq!(row_named(&rows, "big.img")["sha256"], sha.as_str());
    let resent = origin.bytes_sent() - sent_before;
    // A resume fetches what the partial lacks (plus at most the origin
    // chunk cut off by the kill); a re-download would send all of it.
    let at_most = SIZE as u64 - kept + bty_e2e::origin::CHUNK as u64;
    assert!(
        resent <= at_most,
        "after the restart {resent} bytes were downloaded again; the partial kept {kept} of {SIZE}, a resume needs at most {at_most}"
    );
    assert!(!d.image_root_names().iter().any(|n| n.ends_with(".partial")));
}

#[test]
fn update_asks_upstream_first_and_swaps_in_changed_bytes() {
    let origin = Origin::start();
    let v1 = noise(2 << 20, 15);
    origin.put("rolling.img", v1.clone());
    let d = Daemon::start();
    d.ctl_json(&["entries", "add", &origin.url("rolling.img")]);
    let fetched = d.ctl_json(&["fetch", "rolling.img"]);
    assert_eq!(fetched["sha256"], sha256_bytes(&v1).as_str());
    let bodies = origin.body_requests();

    // Unchanged upstream: no body requested, the job says so.
    let same = d.ctl_json(&["update", "rolling.img"]);
    assert_eq!(same["state"], "completed", "{same}");
    assert!(
        same["phase"].as_str().unwrap().contains("up to date"),
        "{same}"
    );
    assert_eq!(
        origin.body_requests(),
        bodies,
        "update of unchanged bytes downloaded a body"
    );

    // Changed upstream: new bytes, new sha in the listing.
    let v2 = noise(3 << 20, 16);
    origin.put("rolling.img", v2.clone());
    let changed = d.ctl_json(&["update", "rolling.img"]);
    assert_eq!(changed["sha256"], sha256_bytes(&v2).as_str(), "{changed}");
    let row = row_named(&d.images(), "rolling.img").clone();
    assert_eq!(row["sha256"], sha256_bytes(&v2).as_str());
    assert_eq!(row["cached"], true);

    // Cache delete keeps the entry.
    let deleted = d.ctl_json(&["cache", "rm", "rolling.img"]);
    assert_eq!(deleted["deleted"], true, "{deleted}");
    let row = row_named(&d.images(), "rolling.img").clone();
    assert_eq!(row["cached"], false);
    assert_eq!(row["actions"]["fetch"], true);
}

#[test]
fn catalog_import_from_an_http_url() {
    let origin = Origin::start();
    origin.put(
        "catalog.toml",
        b"version = 1\n\n[[images]]\nname = \"from http\"\nsrc = \"https://example.invalid/a.img.gz\"\n".to_vec(),
    );
    let d = Daemon::start();
    let report = d.ctl_json(&["catalog", "import", &origin.url("catalog.toml")]);
    assert_eq!(report["imported"], 1, "{report}");
    assert!(d.images().iter().any(|r| r["names"][0] == "from http"));
    // A missing catalog fails clearly and imports nothing.
    let out = d.ctl(&["catalog", "import", &origin.url("nope.toml")]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
