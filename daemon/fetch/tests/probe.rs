//! `probe`, `unchanged` and the capped document fetch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bty_fetch::{FetchError, Unchanged, fetch_bytes, fetch_document, probe, unchanged};
use reqwest::Method;
use reqwest::header::HeaderMap;
use support::{Config, Fault, MIB, TestServer, client, fast, payload};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn probe_reads_size_validators_and_ranges_with_head() {
    let data = payload(3 * MIB, 40);
    let server = TestServer::start(data.clone(), Config::default()).await;

    let meta = probe(&client(), &server.url("/file"), &HeaderMap::new())
        .await
        .unwrap();

    assert_eq!(meta.size, Some(data.len() as u64));
    assert_eq!(meta.etag.as_deref(), Some("\"v1\""));
    assert_eq!(meta.last_modified.as_deref(), Some(support::LAST_MODIFIED));
    assert!(meta.accepts_ranges);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::HEAD);
}

#[tokio::test]
async fn probe_falls_back_to_a_one_byte_get_when_head_is_refused() {
    let data = payload(3 * MIB, 41);
    let config = Config {
        head_allowed: false,
        ..Config::default()
    };
    let server = TestServer::start(data.clone(), config).await;

    let meta = probe(&client(), &server.url("/file"), &HeaderMap::new())
        .await
        .unwrap();

    assert_eq!(meta.size, Some(data.len() as u64));
    assert_eq!(meta.etag.as_deref(), Some("\"v1\""));
    assert!(meta.accepts_ranges);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, Method::GET);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=0-0"));
}

#[tokio::test]
async fn probe_reports_missing_files() {
    let server = TestServer::start(payload(16, 42), Config::default()).await;
    let err = probe(&client(), &server.url("/missing"), &HeaderMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn unchanged_follows_the_etag() {
    let server = TestServer::start(payload(MIB, 43), Config::default()).await;
    let url = server.url("/file");
    let before = probe(&client(), &url, &HeaderMap::new()).await.unwrap();
    let again = probe(&client(), &url, &HeaderMap::new()).await.unwrap();
    assert_eq!(
        unchanged(
            before.etag.as_deref(),
            before.last_modified.as_deref(),
            &again
        ),
        Unchanged::Yes
    );

    // The next GET changes the entity's ETag (Last-Modified stays).
    server.script([Fault::ChangeEtag("\"v2\"")]);
    fetch_bytes(&client(), &url, &HeaderMap::new(), 2 * MIB)
        .await
        .unwrap();
    let after = probe(&client(), &url, &HeaderMap::new()).await.unwrap();
    assert_eq!(
        unchanged(
            before.etag.as_deref(),
            before.last_modified.as_deref(),
            &after
        ),
        Unchanged::No
    );
    assert_eq!(unchanged(None, None, &after), Unchanged::Unknown);
}

#[tokio::test]
async fn fetch_bytes_returns_a_small_document() {
    let data = payload(1000, 44);
    let server = TestServer::start(data.clone(), Config::default()).await;
    let body = fetch_bytes(&client(), &server.url("/file"), &HeaderMap::new(), 1000)
        .await
        .unwrap();
    assert_eq!(body, data);
}

#[tokio::test]
async fn fetch_bytes_refuses_documents_over_the_cap() {
    let data = payload(1000, 45);
    let server = TestServer::start(data, Config::default()).await;
    let url = server.url("/file");
    // Declared too large…
    let err = fetch_bytes(&client(), &url, &HeaderMap::new(), 999)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { cap: 999, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("999"));
    // …and found too large while reading an undeclared length.
    server.script([Fault::Chunked]);
    let err = fetch_bytes(&client(), &url, &HeaderMap::new(), 999)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { cap: 999, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn fetch_document_retries_transient_failures() {
    let data = payload(4000, 46);
    let server = TestServer::start(data.clone(), Config::default()).await;
    server.script([Fault::Status(503, Some(1)), Fault::DropAfter(100)]);
    let cancel = CancellationToken::new();

    let doc = fetch_document(
        &client(),
        &server.url("/file"),
        &HeaderMap::new(),
        10_000,
        &fast(),
        &cancel,
    )
    .await
    .unwrap();

    assert_eq!(doc.body, data);
    assert_eq!(doc.headers.get("etag").unwrap(), "\"v1\"");
    assert_eq!(server.gets().len(), 3);
}

#[tokio::test]
async fn fetch_document_fails_at_once_on_forbidden() {
    let server = TestServer::start(payload(16, 47), Config::default()).await;
    server.script([Fault::Status(403, None)]);
    let cancel = CancellationToken::new();
    let err = fetch_document(
        &client(),
        &server.url("/file"),
        &HeaderMap::new(),
        100,
        &fast(),
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::FORBIDDEN));
    assert_eq!(server.gets().len(), 1);
}
