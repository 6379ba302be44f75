//! `btyctl upload` against the fake daemon: the stream's shape and bytes.

mod support;

use sha2::{Digest, Sha256};
use support::fake::hex;
use support::{FakeDaemon, keys, sorted};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn upload_streams_the_exact_bytes_header_first_in_chunks() {
    let daemon = FakeDaemon::start().await;
    // 3.5 MiB of varied bytes, so reordered or repeated chunks change the hash.
    let content: Vec<u8> = (0..(3 * MIB + MIB / 2))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let path = daemon.dir().join("local-name.img");
    std::fs::write(&path, &content).expect("write image");
    let run = daemon
        .btyctl(&[
            "upload",
            path.to_str().expect("utf-8"),
            "--name",
            "debian.img",
            "--json",
        ])
        .await;
    run.assert_code(0);
    let expected_sha = hex(&Sha256::digest(&content));
    let printed = run.json();
    assert_eq!(keys(&printed), sorted(&["name", "size_bytes", "sha256"]));
    assert_eq!(printed["name"], "debian.img");
    assert_eq!(printed["size_bytes"], content.len());
    assert_eq!(printed["sha256"], expected_sha.as_str());

    let uploads = daemon.recorded.uploads.lock().expect("lock");
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert_eq!(upload.header.name, "debian.img");
    assert_eq!(upload.header.size_bytes, Some(content.len() as u64));
    assert_eq!(upload.sha256, expected_sha);
    assert_eq!(upload.bytes, content.len() as u64);
    assert_eq!(upload.data_messages, 4);
    assert_eq!(upload.largest_message, MIB);
}

#[tokio::test]
async fn upload_names_the_image_after_the_file() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("tiny.img");
    std::fs::write(&path, b"tiny").expect("write image");
    let run = daemon
        .btyctl(&["upload", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("uploaded tiny.img (4 bytes"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn upload_of_a_missing_file_exits_3_without_a_call() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("absent.img");
    let run = daemon
        .btyctl(&["upload", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(3);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    assert!(daemon.recorded.uploads.lock().expect("lock").is_empty());
}
