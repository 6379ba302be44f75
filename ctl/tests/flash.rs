//! `btyctl disks` and `btyctl flash` against the fake daemon: the listing,
//! the confirmed identity sent, refusals before sending, and target results.

mod support;

use support::fake_flash::{
    PARTIAL_IMAGE, SECOND_STICK, STICK, STICK_MODEL, STICK_SERIAL, STICK_SIZE,
};
use support::fake_jobs::{FLASH_JOB, PARTIAL_FLASH_JOB};
use support::{FakeDaemon, keys, sorted};

#[tokio::test]
async fn disks_prints_a_table_with_verdicts() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["disks"]).await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    for header in [
        "PATH",
        "SIZE",
        "MODEL",
        "SERIAL",
        "TRANSPORT",
        "RM",
        "RO",
        "MOUNTS",
        "WRITABLE",
    ] {
        assert!(lines[0].contains(header), "missing {header}: {}", lines[0]);
    }
    assert!(lines[1].starts_with("/dev/nvme0n1"), "{}", lines[1]);
    assert!(lines[1].contains("/,/boot"), "{}", lines[1]);
    assert!(lines[1].ends_with("no (mounted at /)"), "{}", lines[1]);
    assert!(lines[2].starts_with(STICK), "{}", lines[2]);
    assert!(lines[2].contains("29.8 GiB"), "{}", lines[2]);
    assert!(lines[2].contains(STICK_SERIAL), "{}", lines[2]);
    assert!(lines[2].contains("usb"), "{}", lines[2]);
    assert!(lines[2].ends_with("yes"), "{}", lines[2]);
}

#[tokio::test]
async fn disks_json_has_every_field() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["disks", "--json"]).await;
    run.assert_code(0);
    let disks = run.json();
    let disks = disks.as_array().expect("a JSON array");
    assert_eq!(disks.len(), 3);
    let disk_keys = sorted(&[
        "path",
        "name",
        "size_bytes",
        "model",
        "vendor",
        "serial",
        "transport",
        "removable",
        "read_only",
        "rotational",
        "logical_block_size",
        "physical_block_size",
        "partitions",
        "mounts",
        "holders",
        "swap",
        "system_disk",
        "writable",
        "refusals",
        "diskseq",
    ]);
    for disk in disks {
        assert_eq!(keys(disk), disk_keys);
    }
    assert_eq!(
        disks[0]["refusals"],
        serde_json::json!(["mounted at /", "holds the running system"])
    );
    assert_eq!(disks[0]["system_disk"], "/ is mounted from it");
    assert_eq!(
        keys(&disks[0]["partitions"][0]),
        sorted(&["path", "size_bytes", "mounts"])
    );
    assert_eq!(disks[1]["path"], STICK);
    assert_eq!(disks[1]["size_bytes"], STICK_SIZE);
    assert_eq!(disks[1]["writable"], true);
    assert!(disks[1]["system_disk"].is_null());
}

#[tokio::test]
async fn flash_with_yes_sends_the_identity_from_the_listing() {
    let daemon = FakeDaemon::start().await;
    let file = daemon.dir().join("target.img");
    std::fs::write(&file, vec![0u8; 8192]).expect("write target file");
    let file = file.to_str().expect("utf-8");
    let run = daemon
        .btyctl(&[
            "flash",
            "debian.img",
            "sdb",
            file,
            "--yes",
            "--no-verify",
            "--incremental",
        ])
        .await;
    run.assert_code(0);
    // The targets are shown before writing, on stderr.
    assert!(run.stderr.contains(STICK_SERIAL), "{}", run.stderr);
    assert!(run.stderr.contains(STICK_MODEL), "{}", run.stderr);
    assert!(
        run.stderr.contains("regular file  8.0 KiB"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .starts_with(&format!("flash job {FLASH_JOB} completed")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("/dev/sdb  done  4.0 KiB written  verified: yes"),
        "{}",
        run.stdout
    );

    let flashes = daemon.recorded.flashes.lock().expect("lock").clone();
    assert_eq!(flashes.len(), 1);
    let request = &flashes[0];
    assert_eq!(request.image, "debian.img");
    assert!(request.no_verify);
    assert!(request.incremental);
    assert_eq!(request.targets.len(), 2);
    let stick = &request.targets[0];
    assert_eq!(stick.path, STICK);
    assert_eq!(stick.confirmed_size_bytes, STICK_SIZE);
    assert_eq!(stick.confirmed_serial.as_deref(), Some(STICK_SERIAL));
    assert_eq!(stick.confirmed_model.as_deref(), Some(STICK_MODEL));
    let target_file = &request.targets[1];
    assert_eq!(target_file.path, file);
    assert_eq!(target_file.confirmed_size_bytes, 8192);
    assert_eq!(target_file.confirmed_serial, None);
    assert_eq!(target_file.confirmed_model, None);
}

#[tokio::test]
async fn flash_json_prints_the_final_job_with_targets() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["--json", "flash", "debian.img", STICK, "--yes"])
        .await;
    run.assert_code(0);
    let job = run.json();
    assert_eq!(job["kind"], "flash");
    assert_eq!(job["source_bytes"], 2048);
    assert_eq!(
        keys(&job["targets"][0]),
        sorted(&[
            "path",
            "state",
            "bytes_written",
            "error",
            "verified",
            "incremental"
        ])
    );
    assert_eq!(job["targets"][0]["verified"], true);
    // A full flash: no incremental counts.
    assert!(job["targets"][0]["incremental"].is_null());
    let request = &daemon.recorded.flashes.lock().expect("lock")[0];
    assert!(!request.no_verify);
    assert!(!request.incremental);
}

#[tokio::test]
async fn flash_without_yes_refuses_to_prompt_a_pipe() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["flash", "debian.img", STICK]).await;
    run.assert_code(5);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(*daemon.recorded.disk_listings.lock().expect("lock"), 1);
    assert!(daemon.recorded.flashes.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn flash_to_an_unknown_target_exits_3_before_sending() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["flash", "debian.img", STICK, "/dev/sdz", "--yes"])
        .await;
    run.assert_code(3);
    assert_eq!(run.stderr.trim(), "btyctl: no such disk: /dev/sdz");
    assert!(daemon.recorded.flashes.lock().expect("lock").is_empty());
}

/// The old `--allow-file` flag let any client make any file a target; it
/// is gone, and a command line that still passes it sends nothing.
#[tokio::test]
async fn allow_file_is_no_longer_a_flag() {
    let daemon = FakeDaemon::start().await;
    let file = daemon.dir().join("target.img");
    std::fs::write(&file, b"x").expect("write target file");
    let run = daemon
        .btyctl(&[
            "flash",
            "debian.img",
            file.to_str().expect("utf-8"),
            "--yes",
            "--allow-file",
        ])
        .await;
    run.assert_code(2);
    assert!(run.stderr.contains("--allow-file"), "{}", run.stderr);
    assert!(daemon.recorded.flashes.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn flash_with_a_failed_target_exits_7_and_lists_each_target() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["flash", PARTIAL_IMAGE, STICK, SECOND_STICK, "--yes"])
        .await;
    run.assert_code(7);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with(&format!("flash job {PARTIAL_FLASH_JOB} completed")));
    assert_eq!(lines[1], "  /dev/sdb  done  4.0 KiB written  verified: yes");
    assert_eq!(
        lines[2],
        "  /dev/sdc  failed  1.0 KiB written  verified: -  error: write error: EIO"
    );
    assert_eq!(
        run.stderr.lines().last().expect("an error line"),
        format!(
            "btyctl: job {PARTIAL_FLASH_JOB}: 1 of 2 targets not written: \
             /dev/sdc (failed: write error: EIO)"
        )
    );
}
