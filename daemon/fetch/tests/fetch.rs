//! `fetch`: happy path, retries, permanent errors, digests, cancel,
//! redirects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bty_fetch::{FetchError, Progress, fetch};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use support::{
    Config, Fault, MIB, TestServer, client, fast, no_progress, payload, request, sha256_hex,
};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn downloads_verifies_and_renames_into_place() {
    let data = payload(8 * MIB, 1);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_sha256 = Some(sha256_hex(&data).to_uppercase());
    req.expected_size = Some(data.len() as u64);
    let reports = Mutex::new(Vec::<Progress>::new());
    let record = |p: Progress| reports.lock().unwrap().push(p);

    let got = fetch(&client(), &req, &fast(), &record, &CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(std::fs::read(&req.dest).unwrap(), data);
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!(got.size, data.len() as u64);
    assert_eq!(got.bytes_transferred, data.len() as u64);
    assert_eq!((got.resumed_from, got.restarts, got.attempts), (0, 0, 1));
    assert_eq!(got.etag.as_deref(), Some("\"v1\""));
    assert_eq!(got.last_modified.as_deref(), Some(support::LAST_MODIFIED));
    assert!(!req.partial.exists());
    assert!(!req.checkpoint.as_ref().unwrap().exists());
    let gets = server.gets();
    assert_eq!(gets.len(), 1);
    assert!(gets[0].range.is_none());
    assert!(gets[0].user_agent.as_deref().unwrap().starts_with("bty/"));
    let reports = reports.into_inner().unwrap();
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].bytes_done <= w[1].bytes_done)
    );
    assert_eq!(
        reports.last(),
        Some(&Progress {
            bytes_done: data.len() as u64,
            bytes_total: Some(data.len() as u64),
            attempt: 1
        })
    );
}

#[tokio::test]
async fn retries_server_errors_honouring_retry_after() {
    let data = payload(MIB, 2);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([
        Fault::Status(503, None),
        Fault::Status(503, Some(1)),
        Fault::Status(429, Some(2)),
        Fault::Status(502, None),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));

    let got = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(std::fs::read(&req.dest).unwrap(), data);
    assert_eq!(got.attempts, 5);
    assert_eq!(server.gets().len(), 5);
}

#[tokio::test]
async fn gives_up_after_max_attempts_without_progress() {
    let server = TestServer::start(payload(MIB, 3), Config::default()).await;
    server.script(std::iter::repeat_n(Fault::Status(503, None), 10));
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let opts = bty_fetch::FetchOptions {
        max_attempts: 3,
        ..fast()
    };

    let err = fetch(
        &client(),
        &req,
        &opts,
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    match &err {
        FetchError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert!(
                matches!(**last, FetchError::Http { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(err.to_string().contains(&req.url));
    assert_eq!(server.gets().len(), 3);
    assert!(!req.dest.exists());
}

#[tokio::test]
async fn fails_at_once_on_not_found() {
    let server = TestServer::start(payload(MIB, 4), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/missing"));

    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, FetchError::Http { status, .. } if status == StatusCode::NOT_FOUND),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(msg.contains(&req.url) && msg.contains("404"), "{msg}");
    assert_eq!(server.seen().len(), 1);
    assert!(!req.partial.exists() && !req.dest.exists());
}

#[tokio::test]
async fn digest_mismatch_names_both_digests_and_keeps_the_old_file() {
    let data = payload(2 * MIB, 5);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    std::fs::write(&req.dest, b"old cached copy").unwrap();
    let wrong = sha256_hex(b"something else");
    req.expected_sha256 = Some(wrong.clone());

    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    let msg = err.to_string();
    assert!(matches!(err, FetchError::DigestMismatch { .. }), "{err:?}");
    assert!(
        msg.contains(&wrong) && msg.contains(&sha256_hex(&data)),
        "{msg}"
    );
    assert_eq!(std::fs::read(&req.dest).unwrap(), b"old cached copy");
    assert!(!req.partial.exists());
    assert!(!req.checkpoint.as_ref().unwrap().exists());
    assert_eq!(server.gets().len(), 1, "a digest mismatch is not retried");
}

#[tokio::test]
async fn verified_download_replaces_an_existing_file() {
    let data = payload(MIB, 6);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    std::fs::write(&req.dest, b"old").unwrap();
    req.expected_sha256 = Some(sha256_hex(&data));

    fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(std::fs::read(&req.dest).unwrap(), data);
}

#[tokio::test]
async fn refuses_a_declared_size_other_than_the_pinned_one() {
    let data = payload(MIB, 7);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_size = Some(data.len() as u64 + 1);

    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, FetchError::SizeMismatch { expected, declared, .. }
        if expected == data.len() as u64 + 1 && declared == data.len() as u64),
        "{err:?}"
    );
    assert_eq!(server.gets().len(), 1);
    assert!(!req.partial.exists() && !req.dest.exists());
}

#[tokio::test]
async fn refuses_a_body_longer_than_the_pinned_size() {
    let data = payload(MIB, 8);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::Chunked]);
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    let pinned = data.len() as u64 - 10;
    req.expected_size = Some(pinned);

    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, FetchError::Length { expected, got, .. } if expected == pinned && got > pinned),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(!req.partial.exists() && !req.dest.exists());
}

#[tokio::test]
async fn cancel_returns_within_a_second_and_removes_the_partial() {
    let data = payload(8 * MIB, 9);
    let server = TestServer::start(data, Config::default()).await;
    server.script([Fault::StallAfter(2 * MIB)]);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let cancel = CancellationToken::new();
    let opts = bty_fetch::FetchOptions {
        stall_timeout: Duration::from_secs(30),
        ..fast()
    };
    let task = tokio::spawn({
        let (req, cancel) = (req.clone(), cancel.clone());
        async move { fetch(&client(), &req, &opts, &no_progress, &cancel).await }
    });
    // Let the download start and hang in the server's stall.
    while !req.checkpoint.as_ref().unwrap().exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = task.await.unwrap();

    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    assert!(matches!(result, Err(FetchError::Cancelled)), "{result:?}");
    assert!(!req.partial.exists());
    assert!(!req.checkpoint.as_ref().unwrap().exists());
    assert!(!req.dest.exists());
}

#[tokio::test]
async fn cancel_interrupts_a_backoff_wait() {
    let server = TestServer::start(payload(MIB, 10), Config::default()).await;
    server.script([Fault::Status(503, Some(60))]);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let cancel = CancellationToken::new();
    let opts = bty_fetch::FetchOptions {
        max_backoff: Duration::from_secs(60),
        ..fast()
    };
    let task = tokio::spawn({
        let (req, cancel) = (req.clone(), cancel.clone());
        async move { fetch(&client(), &req, &opts, &no_progress, &cancel).await }
    });
    while server.gets().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The 503 is answered at once: 300 ms later the fetch is in its 60 s
    // wait — still running, and no second attempt made.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the fetch ended instead of waiting");
    assert_eq!(server.gets().len(), 1, "retried without waiting");

    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = task.await.unwrap();

    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    assert!(matches!(result, Err(FetchError::Cancelled)), "{result:?}");
    assert!(!req.partial.exists());
}

#[tokio::test]
async fn redirect_to_another_host_drops_authorization() {
    let data = payload(MIB, 11);
    let registry = TestServer::start(payload(16, 0), Config::default()).await;
    let storage = TestServer::start(data.clone(), Config::default()).await;
    registry.redirect_to(storage.url("/file"));
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), registry.url("/redirect"));
    req.headers
        .insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));

    fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(std::fs::read(&req.dest).unwrap(), data);
    assert_eq!(
        registry.seen()[0].authorization.as_deref(),
        Some("Bearer secret")
    );
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].authorization, None);
}

#[tokio::test]
async fn redirect_on_the_same_host_keeps_authorization() {
    let data = payload(MIB, 12);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/redirect-local"));
    req.headers
        .insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));

    fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(std::fs::read(&req.dest).unwrap(), data);
    let gets = server.gets();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].path, "/file");
    assert_eq!(gets[1].authorization.as_deref(), Some("Bearer secret"));
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/file", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), url);
    let opts = bty_fetch::FetchOptions {
        max_attempts: 2,
        ..fast()
    };

    let err = fetch(
        &client(),
        &req,
        &opts,
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    match err {
        FetchError::RetriesExhausted {
            attempts: 2, last, ..
        } => {
            assert!(matches!(*last, FetchError::Transport { .. }), "{last:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
