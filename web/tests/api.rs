//! The JSON/HTTP routes against a fake btyd: shapes, URL encoding,
//! content types, request validation and the gRPC → HTTP status mapping.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bty_proto::v1::import_catalog_request::Source;
use serde_json::json;
use support::*;
use tonic::Code;

fn json_request(method: &str, uri: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn empty_request(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn images_json_has_upstream_shape_and_encoded_urls() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/images").await;
    assert_eq!(reply.status, 200);
    let entries = reply.json();
    // The unhashed local file has nothing to serve yet and is left out.
    assert_eq!(entries.as_array().unwrap().len(), 3);
    assert_eq!(
        entries[0],
        json!({
            "name": "lab-bench.img",
            "format": "img",
            "size_bytes": 4096,
            "url": format!("http://bty.test:8080/images/{SHA_LOCAL}/lab-bench.img"),
            "ref": "1".repeat(64),
            "sha_short": &SHA_LOCAL[..12],
            "cached": true,
        })
    );
    assert_eq!(
        entries[1]["url"],
        format!("http://bty.test:8080/images/{SHA_REMOTE}/debian%20%28x86_64%29%20custom.img.zst")
    );
    assert_eq!(entries[2]["url"], "oras://ghcr.io/safl/nosi/debian:latest");
    assert_eq!(entries[2]["sha_short"], serde_json::Value::Null);
    assert_eq!(entries[2]["size_bytes"], 0);
    assert_eq!(entries[2]["cached"], false);
}

#[tokio::test]
async fn api_images_gives_spec_rows() {
    let harness = Harness::start(sample_daemon()).await;
    let rows = harness.get("/api/images").await.json();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert_eq!(
        rows[2],
        json!({
            "id": "3".repeat(64),
            "names": ["nosi <script>alert(1)</script>"],
            "sha256": null,
            "format": "img.gz",
            "size_bytes": null,
            "sources": [{"kind": "manifest", "location": "oras://ghcr.io/safl/nosi/debian:latest"}],
            "cached": false,
            "actions": {"fetch": true, "update": false, "cache_delete": false, "entry_delete": true},
        })
    );
}

#[tokio::test]
async fn catalog_toml_is_exported_with_the_request_origin() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/catalog.toml").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/toml");
    assert_eq!(reply.body, "version = 1\n");
    assert_eq!(
        harness.daemon().export_base_urls,
        vec!["http://bty.test:8080".to_owned()]
    );
}

#[tokio::test]
async fn add_entry_answers_201_with_the_entry() {
    let harness = Harness::start(sample_daemon()).await;
    let body = json!({"image_url": "https://example.com/disk.img.zst", "sha256": ""});
    let reply = harness
        .send(json_request("POST", "/catalog/entries", body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let entry = reply.json();
    assert_eq!(entry["src"], "https://example.com/disk.img.zst");
    assert_eq!(entry["ref"], "ab".repeat(32));
    assert_eq!(entry["bty_image_ref"], "ab".repeat(32));
    let daemon = harness.daemon();
    assert_eq!(daemon.added.len(), 1);
    assert_eq!(
        daemon.added[0].sha256, None,
        "empty optional fields are not sent"
    );
    assert_eq!(daemon.added[0].sha_url, None);
    assert!(entry["sha_url"].is_null());
}

#[tokio::test]
async fn add_entry_sends_sha_url() {
    let harness = Harness::start(sample_daemon()).await;
    let body = json!({
        "image_url": "https://example.com/disk.img.zst",
        "sha_url": "https://example.com/SHA256SUMS",
        "ref": null,
    });
    let reply = harness
        .send(json_request("POST", "/catalog/entries", body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["sha_url"], "https://example.com/SHA256SUMS");
    assert_eq!(
        harness.daemon().added[0].sha_url.as_deref(),
        Some("https://example.com/SHA256SUMS")
    );
}

#[tokio::test]
async fn add_entry_refuses_malformed_bodies_with_422() {
    let harness = Harness::start(sample_daemon()).await;
    for body in [
        json!({}),
        json!({"image_url": "https://x/y.img", "bogus": 1}),
        json!({"image_url": " "}),
    ] {
        let reply = harness
            .send(json_request("POST", "/catalog/entries", body.clone()))
            .await;
        assert_eq!(reply.status, 422, "{body}");
        assert!(reply.json()["detail"].is_string(), "{body}");
    }
    assert!(harness.daemon().added.is_empty());
}

#[tokio::test]
async fn remove_entry_answers_204() {
    let harness = Harness::start(sample_daemon()).await;
    let src = "oras://ghcr.io/safl/nosi/debian:latest";
    let uri = "/catalog/entries?src=oras%3A%2F%2Fghcr.io%2Fsafl%2Fnosi%2Fdebian%3Alatest";
    let reply = harness.send(empty_request("DELETE", uri)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(harness.daemon().removed, vec![src.to_owned()]);
    let reply = harness
        .send(empty_request("DELETE", "/catalog/entries"))
        .await;
    assert_eq!(reply.status, 422);
}

#[tokio::test]
async fn import_sends_urls_to_the_daemon_and_refuses_paths() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(empty_request(
            "POST",
            "/catalog/import?source=https%3A%2F%2Fexample.com%2Fcatalog.toml",
        ))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"source": "https://example.com/catalog.toml", "imported": 2, "updated": 1, "skipped": 0, "errors": []})
    );
    // A path on the daemon's host is refused before the daemon is asked.
    let refused = harness
        .send(empty_request("POST", "/catalog/import?source=/etc/shadow"))
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("does not read paths"),
        "{}",
        refused.body
    );
    let daemon = harness.daemon();
    assert_eq!(daemon.imports.len(), 1);
    assert_eq!(
        daemon.imports[0].source,
        Some(Source::Url("https://example.com/catalog.toml".to_owned()))
    );
}

#[tokio::test]
async fn hashes_list_start_and_cancel() {
    let harness = Harness::start(sample_daemon()).await;
    let list = harness.get("/catalog/hashes").await.json();
    assert_eq!(list["image_root"], "/var/lib/bty/images");
    assert_eq!(list["max_parallel"], 1);
    assert_eq!(list["hashes"][0]["name"], "new.img");
    assert_eq!(list["hashes"][0]["path"], "/var/lib/bty/images/new.img");
    assert_eq!(list["hashes"][0]["status"], "running");
    assert_eq!(list["hashes"][0]["bytes_total"], 100);

    let reply = harness
        .send(json_request(
            "POST",
            "/catalog/hashes",
            json!({"name": "a.img"}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.json()["status"], "queued");
    let reply = harness
        .send(json_request(
            "POST",
            "/catalog/hashes",
            json!({"name": "../x"}),
        ))
        .await;
    assert_eq!(reply.status, 422);
    assert_eq!(harness.daemon().hashed, vec!["a.img".to_owned()]);

    let reply = harness
        .send(empty_request("DELETE", "/catalog/hashes/new.img"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "cancelled");
    assert_eq!(harness.daemon().cancelled, vec!["h1".to_owned()]);
    // Finished jobs cannot be cancelled.
    let reply = harness
        .send(empty_request("DELETE", "/catalog/hashes/old.img"))
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["detail"], "no active hash named \"old.img\"");
}

#[tokio::test]
async fn grpc_codes_map_to_http_statuses() {
    let table = [
        (Code::InvalidArgument, 400, true),
        (Code::NotFound, 404, true),
        (Code::AlreadyExists, 409, true),
        (Code::FailedPrecondition, 409, true),
        (Code::ResourceExhausted, 413, true),
        (Code::Unimplemented, 501, true),
        (Code::Unavailable, 503, false),
        (Code::Internal, 500, false),
        (Code::Unknown, 500, false),
        (Code::DataLoss, 500, false),
        (Code::PermissionDenied, 500, false),
    ];
    for (code, http, shows_message) in table {
        assert_eq!(bty_web::status_for_code(code).as_u16(), http, "{code:?}");
        let mut daemon = sample_daemon();
        daemon.fail = Some((code, "daemon says /secret/path".to_owned()));
        let harness = Harness::start(daemon).await;
        let reply = harness
            .send(empty_request("DELETE", "/catalog/entries?src=x"))
            .await;
        assert_eq!(reply.status.as_u16(), http, "{code:?}");
        assert_eq!(reply.header("content-type"), "application/json");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert_eq!(
            detail.contains("/secret/path"),
            shows_message,
            "{code:?}: {detail}"
        );
    }
}

#[tokio::test]
async fn healthz_follows_the_daemon() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/healthz").await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.json(), json!({"status": "ok"}));

    let dir = tempfile::tempdir().unwrap();
    let router = router_without_daemon(&dir);
    let reply = send(&router, api_request("GET", "/healthz")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json(),
        json!({"status": "unavailable", "detail": "btyd is not reachable"})
    );
    // The version needs no daemon.
    let reply = send(&router, api_request("GET", "/version")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["version"], env!("CARGO_PKG_VERSION"));
    let reply = send(&router, api_request("GET", "/images")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json(), json!({"detail": "btyd is not reachable"}));
}
