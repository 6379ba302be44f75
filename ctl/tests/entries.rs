//! `btyctl entries add|rm` against the fake daemon, including the exit
//! codes of refused requests.

mod support;

use support::{FakeDaemon, keys, sorted};

#[tokio::test]
async fn add_prints_the_entry_as_json() {
    let daemon = FakeDaemon::start().await;
    let sha = "e".repeat(64);
    let run = daemon
        .btyctl(&[
            "--json",
            "entries",
            "add",
            "https://example.invalid/os.img",
            "--name",
            "OS",
            "--sha256",
            &sha,
        ])
        .await;
    run.assert_code(0);
    let entry = run.json();
    assert_eq!(
        keys(&entry),
        sorted(&[
            "name",
            "src",
            "ref",
            "sha256",
            "format",
            "size_bytes",
            "description",
            "sha_url"
        ])
    );
    assert_eq!(entry["name"], "OS");
    assert_eq!(entry["src"], "https://example.invalid/os.img");
    assert_eq!(entry["sha256"], sha.as_str());
    assert!(entry["size_bytes"].is_null());
    assert!(entry["sha_url"].is_null());
}

#[tokio::test]
async fn add_sends_the_checksum_file_url() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&[
            "--json",
            "entries",
            "add",
            "https://example.invalid/os.img",
            "--sha-url",
            "https://example.invalid/SHA256SUMS",
        ])
        .await;
    run.assert_code(0);
    assert_eq!(run.json()["sha_url"], "https://example.invalid/SHA256SUMS");
}

#[tokio::test]
async fn add_says_what_was_added() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["entries", "add", "oras://registry.invalid/os:1"])
        .await;
    run.assert_code(0);
    assert!(run.stdout.starts_with("added os:1\n"), "{}", run.stdout);
}

#[tokio::test]
async fn duplicate_entry_exits_4() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["entries", "add", "https://example.invalid/exists.img"])
        .await;
    run.assert_code(4);
    assert_eq!(
        run.stderr.trim(),
        "btyctl: an entry for https://example.invalid/exists.img exists"
    );
    assert!(run.stdout.is_empty());
}

#[tokio::test]
async fn invalid_url_exits_5() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["entries", "add", "ftp://example.invalid/x.img"])
        .await;
    run.assert_code(5);
    assert!(
        run.stderr.starts_with("btyctl: unsupported URL"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn rm_of_an_unknown_entry_exits_3() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["--json", "entries", "rm", "https://nowhere.invalid/x"])
        .await;
    run.assert_code(3);
    assert!(run.stdout.is_empty());
    assert!(
        !run.stderr.contains("Status {"),
        "Debug output: {}",
        run.stderr
    );
}

#[tokio::test]
async fn rm_reports_the_removed_entry() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["entries", "rm", "https://example.invalid/alpine.iso"])
        .await;
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        "removed alpine.iso (https://example.invalid/alpine.iso) and its cached bytes"
    );
    let json = daemon
        .btyctl(&[
            "entries",
            "rm",
            "--json",
            "https://example.invalid/alpine.iso",
        ])
        .await;
    let value = json.json();
    assert_eq!(keys(&value), sorted(&["removed", "cache_removed"]));
    assert_eq!(value["removed"]["ref"], "b".repeat(64));
}
