//! Limits a hostile or broken origin cannot get past: a body whose size
//! the caller did not pin may not exceed `max_size` (declared or streamed,
//! to disk or on to a flash), and a file of known size is not started
//! when its filesystem lacks the room.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;

use bty_fetch::{
    FetchError, FetchOptions, StreamRequest, StreamState, body_channel, fetch, stream,
};
use support::{Config, Fault, MIB, TestServer, client, fast, no_progress, payload, request};
use tokio_util::sync::CancellationToken;

fn capped(cap: u64) -> FetchOptions {
    FetchOptions {
        max_size: Some(cap),
        ..fast()
    }
}

/// `fetch` of `req` under a 1 MiB cap, no progress, never cancelled.
async fn fetch_capped(req: &bty_fetch::FetchRequest) -> Result<bty_fetch::Fetched, FetchError> {
    fetch(
        &client(),
        req,
        &capped(MIB as u64),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn an_undeclared_body_over_the_cap_is_stopped_and_nothing_is_kept() {
    let data = payload(4 * MIB, 11);
    let server = TestServer::start(data, Config::default()).await;
    // No Content-Length: the cap is enforced while the bytes arrive.
    server.script([Fault::Chunked]);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let err = fetch_capped(&req).await.unwrap_err();
    assert!(
        matches!(err, FetchError::OverCap { cap, .. } if cap == MIB as u64),
        "{err:?}"
    );
    assert!(err.to_string().contains("1048576-byte limit"), "{err}");
    assert!(!err.is_transient());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_a_byte_is_written() {
    let data = payload(4 * MIB, 12);
    let server = TestServer::start(data, Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let err = fetch_capped(&req).await.unwrap_err();
    assert!(matches!(err, FetchError::OverCap { .. }), "{err:?}");
    assert!(leftovers(dir.path()).is_empty());
    assert_eq!(server.gets().len(), 1, "not retried");
}

#[tokio::test]
async fn a_pinned_size_is_not_capped() {
    let data = payload(2 * MIB, 13);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_size = Some(data.len() as u64);
    fetch_capped(&req).await.unwrap();
    assert!(std::fs::read(&req.dest).unwrap() == data);
}

#[tokio::test]
async fn a_stream_over_the_cap_stops() {
    let data = payload(4 * MIB, 14);
    let server = TestServer::start(data, Config::default()).await;
    server.script([Fault::Chunked]);
    let req = StreamRequest {
        url: server.url("/file"),
        headers: reqwest::header::HeaderMap::new(),
        expected_size: None,
    };
    let (tx, mut reader) = body_channel();
    let consumer = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        got
    });
    let mut state = StreamState::default();
    let err = stream(
        &client(),
        &req,
        &mut state,
        &capped(MIB as u64),
        &CancellationToken::new(),
        &tx,
    )
    .await
    .unwrap_err();
    drop(tx);
    let got = consumer.await.unwrap();
    assert!(matches!(err, FetchError::OverCap { .. }), "{err:?}");
    assert!(
        got.len() as u64 <= MIB as u64,
        "{} bytes handed on",
        got.len()
    );
}

#[tokio::test]
async fn a_known_size_larger_than_the_free_space_is_not_started() {
    let data = payload(MIB, 15);
    let server = TestServer::start(data, Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_size = Some(1 << 60);
    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let FetchError::NoSpace { needed, free, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*needed, 1 << 60);
    assert!(*free < *needed);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{} bytes needed", 1u64 << 60)) && msg.contains(" free"),
        "{msg}"
    );
    assert!(server.gets().is_empty(), "nothing was requested");
    assert!(leftovers(dir.path()).is_empty());
}
