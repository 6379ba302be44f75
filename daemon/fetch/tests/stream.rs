//! `stream`: a body handed on in order without landing on disk, resumed
//! with `Range` + `If-Range` after drops and stalls, and failing (never
//! starting over) when the entity changed or the length is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;

use bty_fetch::{FetchError, StreamRequest, StreamState, body_channel, stream};
use bytes::Bytes;
use support::{Config, Fault, MIB, TestServer, client, fast, payload};
use tokio_util::sync::CancellationToken;

fn request(url: String) -> StreamRequest {
    StreamRequest {
        url,
        headers: reqwest::header::HeaderMap::new(),
        expected_size: None,
    }
}

/// Stream `req` into a blocking reader on another thread, as the flasher
/// does; return the stream's result and every byte the reader got.
async fn stream_all(req: StreamRequest) -> (Result<(), FetchError>, Vec<u8>) {
    let (tx, mut reader) = body_channel();
    let consumer = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        got
    });
    let mut state = StreamState::default();
    let result = stream(
        &client(),
        &req,
        &mut state,
        &fast(),
        &CancellationToken::new(),
        &tx,
    )
    .await;
    drop(tx);
    let got = consumer.await.unwrap();
    assert_eq!(state.offset(), got.len() as u64, "offset = bytes handed on");
    (result, got)
}

#[tokio::test]
async fn hands_on_the_whole_body_in_order() {
    let data = payload(8 * MIB, 30);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let (result, got) = stream_all(request(server.url("/file"))).await;
    result.unwrap();
    assert!(got == data, "streamed bytes differ from the file");
    assert_eq!(server.gets().len(), 1);
}

#[tokio::test]
async fn resumes_after_a_drop_and_a_stall_without_repeating_a_byte() {
    let data = payload(16 * MIB, 31);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::DropAfter(5 * MIB), Fault::StallAfter(3 * MIB)]);
    let (result, got) = stream_all(request(server.url("/file"))).await;
    result.unwrap();
    assert!(got == data, "streamed bytes differ from the file");
    let gets = server.gets();
    assert_eq!(gets.len(), 3);
    for resumed in &gets[1..] {
        assert!(resumed.range.as_deref().is_some_and(|r| r != "bytes=0-"));
        assert_eq!(resumed.if_range.as_deref(), Some("\"v1\""));
    }
}

#[tokio::test]
async fn a_changed_entity_fails_the_stream_instead_of_starting_over() {
    let data = payload(8 * MIB, 32);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::DropAfter(3 * MIB), Fault::ChangeEtag("\"v2\"")]);
    let (result, got) = stream_all(request(server.url("/file"))).await;
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("changed during the stream"),
        "{err}"
    );
    assert!(got.len() < data.len() && data.starts_with(&got));
}

#[tokio::test]
async fn a_server_that_cannot_resume_fails_the_stream() {
    let data = payload(8 * MIB, 33);
    let config = Config {
        etag: None,
        last_modified: None,
        accept_ranges: false,
        head_allowed: true,
    };
    let server = TestServer::start(data.clone(), config).await;
    server.script([Fault::DropAfter(3 * MIB)]);
    let (result, _) = stream_all(request(server.url("/file"))).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("cannot resume"), "{err}");
    assert_eq!(
        server.gets().len(),
        1,
        "no second request without a way to resume"
    );
}

#[tokio::test]
async fn a_declared_size_other_than_the_expected_one_fails_before_a_byte() {
    let data = payload(MIB, 34);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let mut req = request(server.url("/file"));
    req.expected_size = Some(MIB as u64 + 1);
    let (result, got) = stream_all(req).await;
    assert!(
        matches!(result, Err(FetchError::SizeMismatch { .. })),
        "{result:?}"
    );
    assert!(got.is_empty());
}

#[tokio::test]
async fn not_found_is_permanent() {
    let server = TestServer::start(Bytes::new(), Config::default()).await;
    server.script([Fault::Status(404, None)]);
    let (result, _) = stream_all(request(server.url("/file"))).await;
    assert_eq!(
        result.unwrap_err().status(),
        Some(reqwest::StatusCode::NOT_FOUND)
    );
    assert_eq!(server.gets().len(), 1);
}

#[tokio::test]
async fn a_dropped_reader_stops_the_stream() {
    let data = payload(32 * MIB, 35);
    let server = TestServer::start(data, Config::default()).await;
    let (tx, reader) = body_channel();
    drop(reader);
    let mut state = StreamState::default();
    let result = stream(
        &client(),
        &request(server.url("/file")),
        &mut state,
        &fast(),
        &CancellationToken::new(),
        &tx,
    )
    .await;
    assert!(matches!(result, Err(FetchError::Cancelled)), "{result:?}");
    assert_eq!(state.offset(), 0);
}
