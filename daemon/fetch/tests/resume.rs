//! `fetch` resuming: within one call after drops, stalls and short bodies;
//! across calls from a partial + checkpoint; and restarting when the
//! server cannot or must not resume.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bty_fetch::{Checkpoint, FetchError, fetch};
use support::{
    Config, Fault, MIB, TestServer, client, fast, no_progress, payload, request, sha256_hex,
};
use tokio_util::sync::CancellationToken;

/// The byte offset a `Range: bytes=N-` asked for.
fn range_offset(range: Option<&str>) -> u64 {
    let r = range.expect("a Range header");
    r.strip_prefix("bytes=")
        .unwrap()
        .strip_suffix('-')
        .unwrap()
        .parse()
        .unwrap()
}

/// Run a download with one scripted fault on the first request and check
/// that the second request resumed where the first stopped.
async fn resumes_after(fault: Fault) {
    let data = payload(16 * MIB, 20);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([fault]);
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_sha256 = Some(sha256_hex(&data));

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
    assert_eq!(got.sha256, sha256_hex(&data));
    let gets = server.gets();
    assert_eq!(gets.len(), 2);
    let offset = range_offset(gets[1].range.as_deref());
    assert!(offset > 0 && offset < data.len() as u64);
    assert_eq!(gets[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!(got.restarts, 0);
    assert_eq!(
        got.bytes_transferred,
        data.len() as u64,
        "no byte fetched twice"
    );
}

#[tokio::test]
async fn resumes_after_the_connection_drops_mid_body() {
    resumes_after(Fault::DropAfter(5 * MIB)).await;
}

#[tokio::test]
async fn resumes_after_a_stall() {
    resumes_after(Fault::StallAfter(3 * MIB)).await;
}

#[tokio::test]
async fn resumes_after_a_short_body() {
    resumes_after(Fault::ShortBody(7 * MIB)).await;
}

#[tokio::test]
async fn restarts_when_the_server_ignores_range() {
    let data = payload(8 * MIB, 21);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::DropAfter(3 * MIB), Fault::IgnoreRange]);
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
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!((got.restarts, got.resumed_from), (1, 0));
    assert!(got.bytes_transferred > data.len() as u64);
    assert!(server.gets()[1].range.is_some());
}

#[tokio::test]
async fn restarts_when_the_entity_changed() {
    let data = payload(8 * MIB, 22);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::DropAfter(3 * MIB), Fault::ChangeEtag("\"v2\"")]);
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
    assert_eq!(got.restarts, 1);
    assert_eq!(got.etag.as_deref(), Some("\"v2\""));
    assert_eq!(server.gets()[1].if_range.as_deref(), Some("\"v1\""));
}

#[tokio::test]
async fn restarts_when_the_server_offers_no_way_to_resume() {
    let data = payload(8 * MIB, 23);
    let config = Config {
        etag: None,
        last_modified: None,
        accept_ranges: false,
        ..Config::default()
    };
    let server = TestServer::start(data.clone(), config).await;
    server.script([Fault::DropAfter(3 * MIB)]);
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
    assert_eq!(got.restarts, 1);
    assert!(server.gets().iter().all(|g| g.range.is_none()));
}

/// Leave `prefix` in the partial with a checkpoint, as a daemon killed
/// mid-download would.
fn leave_partial(req: &bty_fetch::FetchRequest, prefix: &[u8], cp: &Checkpoint) {
    std::fs::write(&req.partial, prefix).unwrap();
    cp.store(req.checkpoint.as_ref().unwrap()).unwrap();
}

fn checkpoint(url: &str, etag: Option<&str>, total: usize, accepts_ranges: bool) -> Checkpoint {
    Checkpoint {
        url: url.to_owned(),
        etag: etag.map(str::to_owned),
        last_modified: None,
        total: Some(total as u64),
        accepts_ranges,
    }
}

#[tokio::test]
async fn resumes_a_partial_left_by_a_previous_run() {
    let data = payload(8 * MIB, 24);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_sha256 = Some(sha256_hex(&data));
    let kept = 3 * MIB;
    leave_partial(
        &req,
        &data[..kept],
        &checkpoint(&req.url, Some("\"v1\""), data.len(), true),
    );

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
    assert_eq!(got.resumed_from, kept as u64);
    assert_eq!(got.bytes_transferred, (data.len() - kept) as u64);
    let gets = server.gets();
    assert_eq!(gets.len(), 1);
    assert_eq!(range_offset(gets[0].range.as_deref()), kept as u64);
    assert_eq!(gets[0].if_range.as_deref(), Some("\"v1\""));
    assert!(!req.checkpoint.as_ref().unwrap().exists());
}

#[tokio::test]
async fn resumes_after_the_previous_future_was_dropped() {
    let data = payload(16 * MIB, 25);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::StallAfter(12 * MIB)]);
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    let slow = bty_fetch::FetchOptions {
        stall_timeout: Duration::from_secs(30),
        ..fast()
    };
    // A daemon shutdown drops the future: no cancel, the partial stays.
    let first = tokio::time::timeout(
        Duration::from_secs(2),
        fetch(
            &client(),
            &req,
            &slow,
            &no_progress,
            &CancellationToken::new(),
        ),
    )
    .await;
    assert!(first.is_err(), "the first run should still be stalled");
    let on_disk = std::fs::metadata(&req.partial).unwrap().len();
    assert!(on_disk > 0);

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
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!(got.resumed_from, on_disk);
    assert!(got.bytes_transferred < data.len() as u64);
}

#[tokio::test]
async fn resumes_without_a_validator_when_ranges_are_advertised() {
    let data = payload(8 * MIB, 26);
    let config = Config {
        etag: None,
        last_modified: None,
        ..Config::default()
    };
    let server = TestServer::start(data.clone(), config).await;
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    leave_partial(
        &req,
        &data[..MIB],
        &checkpoint(&req.url, None, data.len(), true),
    );

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
    assert_eq!(got.resumed_from, MIB as u64);
    let gets = server.gets();
    assert_eq!(range_offset(gets[0].range.as_deref()), MIB as u64);
    assert_eq!(gets[0].if_range, None);
}

#[tokio::test]
async fn restarts_when_the_size_no_longer_matches_the_checkpoint() {
    let data = payload(4 * MIB, 27);
    let config = Config {
        etag: None,
        last_modified: None,
        ..Config::default()
    };
    let server = TestServer::start(data.clone(), config).await;
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path(), server.url("/file"));
    leave_partial(
        &req,
        &data[..MIB],
        &checkpoint(&req.url, None, data.len() + 5, true),
    );

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
    assert_eq!((got.restarts, got.resumed_from), (1, 0));
}

#[tokio::test]
async fn ignores_a_partial_without_a_matching_checkpoint() {
    let data = payload(4 * MIB, 28);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint for another URL…
    let req = request(dir.path(), server.url("/file"));
    leave_partial(
        &req,
        b"garbage",
        &checkpoint("http://elsewhere/file", Some("\"v1\""), data.len(), true),
    );
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
    // …and no checkpoint at all.
    let mut req = request(dir.path(), server.url("/file"));
    req.checkpoint = None;
    std::fs::write(&req.partial, b"garbage").unwrap();
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
    assert_eq!(got.resumed_from, 0);
    assert!(server.gets().iter().all(|g| g.range.is_none()));
}

#[tokio::test]
async fn a_complete_partial_is_verified_without_downloading() {
    let data = payload(2 * MIB, 29);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    req.expected_sha256 = Some(sha256_hex(&data));
    leave_partial(
        &req,
        &data,
        &checkpoint(&req.url, Some("\"v1\""), data.len(), true),
    );

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
    assert_eq!(got.bytes_transferred, 0);
    assert!(server.gets().is_empty());
}

#[tokio::test]
async fn the_digest_covers_the_resumed_bytes_read_back_from_disk() {
    let data = payload(4 * MIB, 30);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path(), server.url("/file"));
    let expected = sha256_hex(&data);
    req.expected_sha256 = Some(expected.clone());
    // Same length as the real prefix, different bytes.
    leave_partial(
        &req,
        &vec![0u8; MIB],
        &checkpoint(&req.url, Some("\"v1\""), data.len(), true),
    );

    let err = fetch(
        &client(),
        &req,
        &fast(),
        &no_progress,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();

    match err {
        FetchError::DigestMismatch {
            expected: e,
            actual,
            ..
        } => {
            assert_eq!(e, expected);
            let mut corrupt = vec![0u8; MIB];
            corrupt.extend_from_slice(&data[MIB..]);
            assert_eq!(actual, sha256_hex(&corrupt));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!req.partial.exists() && !req.dest.exists());
    assert!(!req.checkpoint.as_ref().unwrap().exists());
}
