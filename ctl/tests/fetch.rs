//! `btyctl fetch|update|cache rm|push` against the fake daemon: the
//! request sent, the watched job, and what is printed.

mod support;

use support::fake::{HASHED_SHA, REMOTE_NAME, REMOTE_REF};
use support::fake_jobs::{FETCH_JOB, PUSH_JOB, UP_TO_DATE, UPDATE_JOB};
use support::{FakeDaemon, keys, sorted};

#[tokio::test]
async fn fetch_watches_the_download_to_completion() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["fetch", REMOTE_NAME]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .starts_with(&format!("download job {FETCH_JOB} completed: alpine.iso")),
        "{}",
        run.stdout
    );
    let json = daemon.btyctl(&["fetch", REMOTE_REF, "--json"]).await;
    json.assert_code(0);
    let job = json.json();
    assert_eq!(job["id"], FETCH_JOB);
    assert_eq!(job["state"], "completed");
    assert_eq!(job["kind"], "download");
    let fetches = daemon.recorded.fetches.lock().expect("lock").clone();
    assert_eq!(fetches.len(), 2);
    assert_eq!(fetches[0].id, REMOTE_NAME);
    assert_eq!(fetches[1].id, REMOTE_REF);
    assert!(fetches.iter().all(|f| !f.update));
}

#[tokio::test]
async fn fetch_detach_prints_the_queued_job() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["fetch", REMOTE_NAME, "--detach", "--json"])
        .await;
    run.assert_code(0);
    assert_eq!(run.json()["state"], "queued");
}

#[tokio::test]
async fn fetch_of_an_unknown_entry_exits_3() {
    let daemon = FakeDaemon::start().await;
    daemon.btyctl(&["fetch", "nope.iso"]).await.assert_code(3);
}

#[tokio::test]
async fn update_prints_that_nothing_changed_upstream() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["update", REMOTE_NAME]).await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("download job {UPDATE_JOB} completed: alpine.iso (sha256 {HASHED_SHA})"),
            UP_TO_DATE.to_owned()
        ]
    );
    let json = daemon.btyctl(&["--json", "update", REMOTE_NAME]).await;
    assert_eq!(json.json()["phase"], UP_TO_DATE);
    let fetches = daemon.recorded.fetches.lock().expect("lock").clone();
    assert!(fetches.iter().all(|f| f.update), "{fetches:?}");
}

#[tokio::test]
async fn cache_rm_prints_what_was_deleted() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["cache", "rm", REMOTE_NAME, "--json"]).await;
    run.assert_code(0);
    let deleted = run.json();
    assert_eq!(
        keys(&deleted),
        sorted(&["deleted", "reason", "sha256", "file_name"])
    );
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["sha256"], HASHED_SHA);
    assert_eq!(deleted["file_name"], REMOTE_NAME);
    let not_cached = daemon
        .btyctl(&["cache", "rm", "uncached.iso", "--json"])
        .await;
    not_cached.assert_code(0);
    assert_eq!(not_cached.json()["deleted"], false);
    assert_eq!(not_cached.json()["reason"], "not cached");
    assert!(not_cached.json()["sha256"].is_null());
    let text = daemon.btyctl(&["cache", "rm", "uncached.iso"]).await;
    assert_eq!(
        text.stdout.trim(),
        "nothing deleted for uncached.iso: not cached"
    );
    daemon
        .btyctl(&["cache", "rm", "nope.iso"])
        .await
        .assert_code(3);
    let deletes = daemon.recorded.cache_deletes.lock().expect("lock").clone();
    assert_eq!(
        deletes,
        [REMOTE_NAME, "uncached.iso", "uncached.iso", "nope.iso"]
    );
}

#[tokio::test]
async fn push_watches_the_push_job() {
    let daemon = FakeDaemon::start().await;
    let target = "oras://registry.example:5000/images/debian:12";
    let run = daemon
        .btyctl(&["push", "debian.img", target, "--json"])
        .await;
    run.assert_code(0);
    let job = run.json();
    assert_eq!(job["id"], PUSH_JOB);
    assert_eq!(job["kind"], "push");
    assert_eq!(job["state"], "completed");
    let pushes = daemon.recorded.pushes.lock().expect("lock").clone();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].image, "debian.img");
    assert_eq!(pushes[0].target, target);
}

#[tokio::test]
async fn push_to_a_non_oras_target_is_a_usage_error() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["push", "debian.img", "https://registry.example/x"])
        .await;
    run.assert_code(2);
    assert!(daemon.recorded.pushes.lock().expect("lock").is_empty());
}
