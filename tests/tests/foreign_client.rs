//! A gRPC client that is not ours — Python grpcio, knowing only what server
//! reflection tells it — lists btyd's services and images over the Unix
//! socket and sees the same sha256 as `sha256sum`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::{Daemon, drop_file, noise, sha256sum, wait_for};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv `scripts/test` creates with grpcio, grpcio-reflection, protobuf.
fn python() -> PathBuf {
    let python = workspace_root().join("target/pyenv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test to create target/pyenv (Python with grpcio)",
        python.display()
    );
    python
}

#[test]
fn python_grpcio_lists_services_and_images_via_reflection() {
    let python = python();
    let bytes = noise(3 * 1024 * 1024 + 17, 0x0f0e);
    let daemon = Daemon::start_with(|_, images| {
        drop_file(images, "foreign.img", &bytes);
    });
    let file = daemon.image_root.join("foreign.img");
    let expected = sha256sum(&file);
    wait_for(Duration::from_secs(30), "foreign.img to be hashed", || {
        daemon
            .images()
            .into_iter()
            .find(|row| {
                row["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == "foreign.img"))
            })
            .and_then(|row| row["sha256"].as_str().map(str::to_owned))
    });

    let script = workspace_root().join("tests/python/list_images.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&daemon.socket)
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "list_images.py printed non-JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let services: Vec<&str> = listing["services"]
        .as_array()
        .expect("services array")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for service in [
        "bty.v1.CatalogService",
        "bty.v1.JobService",
        "bty.v1.EventService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(&service),
            "reflection does not list {service}: {services:?}"
        );
    }

    let images = listing["images"].as_array().expect("images array");
    let row = images
        .iter()
        .find(|row| {
            row["names"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n == "foreign.img"))
        })
        .unwrap_or_else(|| panic!("foreign.img missing from ListImages: {listing}"));
    assert_eq!(row["sha256"].as_str(), Some(expected.as_str()), "{listing}");
}
