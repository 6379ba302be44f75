//! `btyctl jobs list|watch|cancel` and `btyctl hash` against the fake
//! daemon: job JSON, filters, and exit codes of jobs that end badly.

mod support;

use support::fake::HASHED_SHA;
use support::fake_jobs::{FAILED_JOB, OK_JOB, RUNNING_JOB};
use support::{FakeDaemon, keys, sorted};

const JOB_KEYS: &[&str] = &[
    "id",
    "kind",
    "subject",
    "state",
    "bytes_done",
    "bytes_total",
    "rate_bps",
    "error",
    "sha256",
    "phase",
    "created_at_ms",
    "started_at_ms",
    "finished_at_ms",
    "source_bytes",
    "targets",
];

#[tokio::test]
async fn lists_jobs_as_a_json_array() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["jobs", "list", "--json"]).await;
    run.assert_code(0);
    let jobs = run.json();
    let jobs = jobs.as_array().expect("a JSON array");
    assert_eq!(jobs.len(), 4);
    for job in jobs {
        assert_eq!(keys(job), sorted(JOB_KEYS));
    }
    assert_eq!(jobs[0]["kind"], "hash");
    assert_eq!(jobs[0]["state"], "completed");
    assert_eq!(jobs[0]["sha256"], HASHED_SHA);
    assert_eq!(jobs[2]["state"], "failed");
    assert_eq!(jobs[2]["error"], "connection reset by peer");
    assert!(jobs[1]["finished_at_ms"].is_null());
}

#[tokio::test]
async fn filters_active_jobs_by_kind() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["jobs", "list", "--active", "--kind", "download", "--json"])
        .await;
    let jobs = run.json();
    let ids: Vec<&str> = jobs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(ids, [RUNNING_JOB]);
    let none = daemon
        .btyctl(&["jobs", "list", "--kind", "flash", "--active"])
        .await;
    none.assert_code(0);
    assert_eq!(none.stdout.trim(), "no jobs");
    let push = daemon.btyctl(&["jobs", "list", "--kind", "push"]).await;
    push.assert_code(0);
    assert_eq!(push.stdout.trim(), "no jobs");
}

#[tokio::test]
async fn lists_jobs_as_a_table() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["jobs", "list"]).await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"));
    assert_eq!(lines.len(), 5);
    let running = lines
        .iter()
        .find(|l| l.starts_with(RUNNING_JOB))
        .expect("running row");
    assert!(running.contains("1.0 KiB / 4.0 KiB (25%)"), "{running}");
    assert!(running.contains("2.0 KiB/s"), "{running}");
}

#[tokio::test]
async fn watch_of_a_completed_job_exits_0_and_prints_the_final_job() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["--json", "jobs", "watch", OK_JOB]).await;
    run.assert_code(0);
    let job = run.json();
    assert_eq!(keys(&job), sorted(JOB_KEYS));
    assert_eq!(job["state"], "completed");
    // No progress bar when stderr is not a terminal.
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
}

#[tokio::test]
async fn watch_of_a_failed_job_exits_7() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["jobs", "watch", FAILED_JOB]).await;
    run.assert_code(7);
    assert_eq!(
        run.stderr.trim(),
        "btyctl: job job-fail failed: connection reset by peer"
    );
    let json = daemon
        .btyctl(&["jobs", "watch", FAILED_JOB, "--json"])
        .await;
    json.assert_code(7);
    assert_eq!(json.json()["state"], "failed");
}

#[tokio::test]
async fn watch_of_a_cancelled_job_exits_7() {
    let daemon = FakeDaemon::start().await;
    daemon
        .btyctl(&["jobs", "watch", "job-cancel"])
        .await
        .assert_code(7);
}

#[tokio::test]
async fn watch_of_an_unknown_job_exits_3() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["jobs", "watch", "no-such-job"]).await;
    run.assert_code(3);
    assert_eq!(run.stderr.trim(), "btyctl: no job no-such-job");
}

#[tokio::test]
async fn watch_stream_ending_early_is_an_error_not_success() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["jobs", "watch", RUNNING_JOB]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("still running"), "{}", run.stderr);
}

#[tokio::test]
async fn cancel_prints_the_cancelled_job() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["jobs", "cancel", RUNNING_JOB, "--json"])
        .await;
    run.assert_code(0);
    assert_eq!(run.json()["state"], "cancelled");
}

#[tokio::test]
async fn cancel_of_a_finished_job_exits_8() {
    let daemon = FakeDaemon::start().await;
    daemon
        .btyctl(&["jobs", "cancel", OK_JOB])
        .await
        .assert_code(8);
}

#[tokio::test]
async fn hash_queues_a_job() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["hash", "debian.img"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "queued hash job job-ok for debian.img");
    let json = daemon.btyctl(&["hash", "debian.img", "--json"]).await;
    assert_eq!(json.json()["state"], "queued");
}

#[tokio::test]
async fn hash_wait_follows_the_job_to_its_end() {
    let daemon = FakeDaemon::start().await;
    let ok = daemon
        .btyctl(&["hash", "debian.img", "--wait", "--json"])
        .await;
    ok.assert_code(0);
    assert_eq!(ok.json()["sha256"], HASHED_SHA);
    daemon
        .btyctl(&["hash", "bad.img", "--wait"])
        .await
        .assert_code(7);
}

#[tokio::test]
async fn hash_of_an_unknown_file_exits_3() {
    let daemon = FakeDaemon::start().await;
    daemon.btyctl(&["hash", "missing.img"]).await.assert_code(3);
}
