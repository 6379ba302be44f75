//! kill -9 of btyd in the middle of a hash: after a restart there is no
//! partial sidecar, the file gets hashed, and nothing else changed; and the
//! temp files a killed atomic write leaves are removed at the next start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_dio::sha256::sha256_reader;
use bty_e2e::{Daemon, drop_file, noise, wait_for};
use bty_store::digest::sha256_bytes;
use bty_store::sidecar::sidecar_path;
use std::io::Read;
use std::time::Duration;

/// Big enough that hashing takes seconds, sparse so it costs no disk.
const BIG: u64 = 4 << 30;

const CATALOG: &str = r#"version = 1
operator_note = "kept"

[[images]]
name = "remote"
src = "https://example.invalid/remote.img.gz"
format = "img.gz"
rack = "b7"
"#;

fn sha_of_zeros(len: u64) -> String {
    sha256_reader(std::io::repeat(0).take(len), &mut |_| {}, &|| false).unwrap()
}

#[test]
fn kill_during_hash_leaves_no_partial_sidecar_and_loses_nothing() {
    let small = noise(1 << 20, 3);
    let small_sha = sha256_bytes(&small);
    let mut daemon = Daemon::start_with(|state, root| {
        std::fs::write(state.join("catalog.toml"), CATALOG).unwrap();
        let path = drop_file(root, "aaa-hashed.img", &small);
        bty_store::sidecar::write_sidecar(&path, &small_sha).unwrap();
        let big = std::fs::File::create(root.join("big.img")).unwrap();
        big.set_len(BIG).unwrap();
    });
    let catalog_before = std::fs::read(daemon.state_dir.join("catalog.toml")).unwrap();
    let small_sidecar = sidecar_path(&daemon.image_root.join("aaa-hashed.img"));
    let sidecar_before = std::fs::read(&small_sidecar).unwrap();
    let sidecar_mtime = std::fs::metadata(&small_sidecar)
        .unwrap()
        .modified()
        .unwrap();

    // Wait until the big file is being hashed, then kill -9.
    wait_for(
        Duration::from_secs(30),
        "the big hash to be running",
        || {
            let jobs = daemon.ctl_json(&["jobs", "list", "--active"]);
            jobs.as_array()
                .unwrap()
                .iter()
                .any(|j| {
                    j["subject"] == "big.img"
                        && j["state"] == "running"
                        && j["bytes_done"].as_u64() > Some(0)
                })
                .then_some(())
        },
    );
    daemon.kill9();
    let big_sidecar = sidecar_path(&daemon.image_root.join("big.img"));
    assert!(
        !big_sidecar.exists(),
        "a sidecar was written for a half-read file"
    );

    daemon.restart();
    let expected = sha_of_zeros(BIG);
    let rows = wait_for(
        Duration::from_secs(120),
        "big.img to be hashed after restart",
        || {
            let rows = daemon.images();
            rows.iter()
                .any(|r| r["names"][0] == "big.img" && r["sha256"].is_string())
                .then_some(rows)
        },
    );
    let big = rows.iter().find(|r| r["names"][0] == "big.img").unwrap();
    assert_eq!(big["sha256"], expected.as_str());
    let sidecar = std::fs::read_to_string(&big_sidecar).unwrap();
    assert_eq!(sidecar, format!("{expected}  big.img\n"));

    // Nothing else changed: catalog.toml, the other sidecar, no temp files.
    assert_eq!(
        std::fs::read(daemon.state_dir.join("catalog.toml")).unwrap(),
        catalog_before
    );
    assert_eq!(std::fs::read(&small_sidecar).unwrap(), sidecar_before);
    assert_eq!(
        std::fs::metadata(&small_sidecar)
            .unwrap()
            .modified()
            .unwrap(),
        sidecar_mtime
    );
    let leftovers: Vec<String> = std::fs::read_dir(&daemon.image_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".bty-storage.json")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    let small_row = rows
        .iter()
        .find(|r| r["names"][0] == "aaa-hashed.img")
        .unwrap();
    assert_eq!(small_row["sha256"], small_sha.as_str());
    assert_eq!(rows.len(), 3, "{rows:#?}");
}

#[test]
fn temp_files_left_by_a_killed_atomic_write_are_removed_at_start() {
    // What a kill -9 during write_atomic leaves behind, in each directory
    // btyd writes atomically to.
    let leftovers = [
        "state/.catalog.toml.tmp-4242-0",
        "state/jobs/.0123abcd.json.tmp-4242-1",
        "state/images/.disk.img.sha256.tmp-4242-2",
    ];
    let mut d = Daemon::start_with(|_, root| {
        drop_file(root, "disk.img", b"kept");
    });
    d.stop();
    for rel in leftovers {
        let path = d.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"half written").unwrap();
    }
    d.restart();
    for rel in leftovers {
        assert!(!d.dir.path().join(rel).exists(), "{rel} survived a restart");
    }
    assert_eq!(
        std::fs::read(d.image_root.join("disk.img")).unwrap(),
        b"kept"
    );
}
