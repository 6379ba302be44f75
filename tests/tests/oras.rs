//! OCI through a real btyd and a real registry (Debian's docker-registry on
//! loopback): push an image from the store, add the oras:// entry, fetch it
//! back with its digest verified, and import a catalog published as an OCI
//! artifact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::registry::Registry;
use bty_e2e::{Daemon, drop_file, noise, wait_for};
use bty_store::digest::sha256_bytes;
use std::time::Duration;

fn daemon_for(
    registry: &Registry,
    prepare: impl FnOnce(&std::path::Path, &std::path::Path),
) -> Daemon {
    let config = format!("[registries.\"{}\"]\ninsecure = true\n", registry.host());
    Daemon::start_configured(&config, prepare)
}

#[test]
fn push_then_pull_round_trip_with_verified_digest() {
    let registry = Registry::start();
    let bytes = noise(5 << 20, 31);
    let sha = sha256_bytes(&bytes);
    let d = daemon_for(&registry, |_, root| {
        drop_file(root, "lab.img.zst", &bytes);
    });
    wait_for(Duration::from_secs(30), "the file to be hashed", || {
        d.images()
            .iter()
            .any(|r| r["sha256"] == sha.as_str())
            .then_some(())
    });
    let target = format!("oras://{}/lab/images:v1", registry.host());
    let pushed = d.ctl_json(&["push", "lab.img.zst", &target]);
    assert_eq!(pushed["state"], "completed", "{pushed}");
    assert_eq!(
        pushed["sha256"],
        sha.as_str(),
        "the layer digest is the file's sha256"
    );

    // A plain HTTP client sees the same blob.
    let blob = bty_e2e::http::request(
        registry.host().parse().unwrap(),
        "GET",
        &format!("/v2/lab/images/blobs/sha256:{sha}"),
        &[],
        b"",
    );
    assert_eq!(blob.status, 200);
    assert_eq!(sha256_bytes(&blob.body), sha);

    // Add by oras:// (resolved at add time: title, size), fetch, verify.
    let entry = d.ctl_json(&["entries", "add", &target]);
    assert_eq!(entry["name"], "lab.img.zst", "{entry}");
    assert_eq!(entry["size_bytes"], bytes.len());
    let job = d.ctl_json(&["fetch", &target]);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["sha256"], sha.as_str());
    let r = entry["ref"].as_str().unwrap();
    let cached = d
        .image_root
        .join(format!("catalog-{}-lab-img-zst.img.zst", &r[..12]));
    assert_eq!(std::fs::read(cached).unwrap(), bytes);

    // Unchanged tag: update moves no bytes.
    let update = d.ctl_json(&["update", &target]);
    assert!(
        update["phase"].as_str().unwrap().contains("up to date"),
        "{update}"
    );
}

#[test]
fn catalog_published_as_an_oci_artifact_imports() {
    let registry = Registry::start();
    let catalog = b"version = 1\n\n[[images]]\nname = \"via oras\"\nsrc = \"https://example.invalid/x.img.gz\"\n";
    let d = daemon_for(&registry, |_, root| {
        drop_file(root, "catalog.toml.img", catalog);
    });
    // Publish the catalog with bty's own push, then import it by reference.
    wait_for(Duration::from_secs(30), "hashing", || {
        d.images()
            .iter()
            .any(|r| r["sha256"].is_string())
            .then_some(())
    });
    let target = format!("oras://{}/lab/catalog:latest", registry.host());
    d.ctl_json(&["push", "catalog.toml.img", &target]);
    let report = d.ctl_json(&["catalog", "import", &target]);
    assert_eq!(report["imported"], 1, "{report}");
    assert!(d.images().iter().any(|r| r["names"][0] == "via oras"));
}
