//! Choosing and reaching the daemon: `--socket`, `BTY_SOCKET`,
//! `--endpoint`, a missing daemon, usage errors and `--help`.

mod support;

use support::{FakeDaemon, btyctl};

#[tokio::test]
async fn missing_daemon_exits_6_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("absent.sock");
    let run = btyctl(
        &[
            "--socket",
            socket.to_str().expect("utf-8"),
            "--json",
            "images",
            "list",
        ],
        &[],
    )
    .await;
    run.assert_code(6);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.starts_with("btyctl: "), "{}", run.stderr);
    assert!(run.stderr.contains("absent.sock"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[tokio::test]
async fn bty_socket_env_selects_the_daemon() {
    let daemon = FakeDaemon::start().await;
    let socket = daemon.socket.to_str().expect("utf-8");
    btyctl(&["jobs", "list"], &[("BTY_SOCKET", socket)])
        .await
        .assert_code(0);
}

#[tokio::test]
async fn endpoint_overrides_bty_socket() {
    let daemon = FakeDaemon::start().await;
    let endpoint = format!("unix://{}", daemon.socket.display());
    let env = [("BTY_SOCKET", "/nonexistent/btyd.sock")];
    btyctl(&["--endpoint", &endpoint, "jobs", "list"], &env)
        .await
        .assert_code(0);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    btyctl(&["images", "frobnicate"], &[]).await.assert_code(2);
    btyctl(&["--endpoint", "ftp://x", "images", "list"], &[])
        .await
        .assert_code(2);
    btyctl(
        &[
            "--socket",
            "/a",
            "--endpoint",
            "unix:///b",
            "images",
            "list",
        ],
        &[],
    )
    .await
    .assert_code(2);
    // (`upload` was the unknown kind here until uploads became jobs.)
    btyctl(&["jobs", "list", "--kind", "frobnicate"], &[])
        .await
        .assert_code(2);
}

#[tokio::test]
async fn help_documents_the_exit_codes() {
    let run = btyctl(&["--help"], &[]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("Exit codes:"));
    for line in [
        "3  not found",
        "6  btyd unreachable",
        "7  job failed or was cancelled",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?} in help");
    }
}
