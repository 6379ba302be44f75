//! The images page's catalog forms: upload checks in upstream's order and
//! the `303 ?error=` pattern.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use bty_proto::v1::import_catalog_request::Source;
use support::*;
use tonic::Code;

const BOUNDARY: &str = "bty-test-boundary";

/// A multipart body with one part per `(field, file name, bytes)`.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Request<Body> {
    let mut body = Vec::new();
    for (field, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file_name {
            Some(name) => {
                format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n")
            }
            None => format!("Content-Disposition: form-data; name=\"{field}\"\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Request::post("/ui/catalog/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap()
}

/// The decoded `error=` of a redirect to the images page.
fn redirected_error(reply: &Reply) -> String {
    assert_eq!(reply.status, 303, "{reply:?}");
    let location = reply.header("location");
    let query = location
        .strip_prefix("/ui/images?error=")
        .unwrap_or_else(|| panic!("{location}"));
    percent_decode(query)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const CATALOG: &[u8] = b"version = 1\n";

#[tokio::test]
async fn upload_imports_and_redirects() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(multipart(&[("file", Some("catalog.toml"), CATALOG)]))
        .await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/ui/images");
    let daemon = harness.daemon();
    assert_eq!(daemon.imports.len(), 1);
    assert_eq!(daemon.imports[0].label, "catalog.toml");
    assert_eq!(
        daemon.imports[0].source,
        Some(Source::Content(CATALOG.to_vec()))
    );
}

#[tokio::test]
async fn upload_without_file_field_is_refused() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.send(multipart(&[("other", None, b"x")])).await;
    assert_eq!(redirected_error(&reply), "no file in upload");
    assert!(harness.daemon().imports.is_empty());
}

#[tokio::test]
async fn upload_with_wrong_extension_is_refused() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(multipart(&[("file", Some("disk.img"), CATALOG)]))
        .await;
    assert!(redirected_error(&reply).starts_with("unexpected file extension"));
    // .tml is accepted, as upstream.
    let reply = harness
        .send(multipart(&[("file", Some("CATALOG.TML"), CATALOG)]))
        .await;
    assert_eq!(reply.header("location"), "/ui/images");
}

#[tokio::test]
async fn upload_over_the_daemons_catalog_limit_is_refused_with_a_message() {
    // The limit is btyd's max_catalog_bytes, as btyd reports it.
    let mut daemon = sample_daemon();
    daemon.store.max_catalog_bytes = 1024 * 1024;
    let harness = Harness::start(daemon).await;
    let just_over = vec![b'#'; 1024 * 1024 + 1];
    let reply = harness
        .send(multipart(&[("file", Some("catalog.toml"), &just_over)]))
        .await;
    let limit_named = "larger than btyd's max_catalog_bytes (1048576 bytes)";
    assert!(redirected_error(&reply).contains(limit_named), "{reply:?}");
    let at_limit = vec![b'#'; 1024 * 1024];
    let reply = harness
        .send(multipart(&[("file", Some("catalog.toml"), &at_limit)]))
        .await;
    assert_eq!(reply.header("location"), "/ui/images", "{reply:?}");
    // Far past the route's body limit: still a message, not a reset.
    let huge = vec![b'#'; 3 * 1024 * 1024];
    let reply = harness
        .send(multipart(&[("file", Some("catalog.toml"), &huge)]))
        .await;
    assert!(redirected_error(&reply).contains(limit_named), "{reply:?}");
    assert_eq!(
        harness.daemon().imports.len(),
        1,
        "only the one at the limit"
    );
}

#[tokio::test]
async fn empty_upload_is_refused() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(multipart(&[("file", Some("catalog.toml"), b"")]))
        .await;
    assert_eq!(redirected_error(&reply), "upload was empty");
}

#[tokio::test]
async fn daemon_parse_error_comes_back_in_the_banner() {
    let mut daemon = sample_daemon();
    daemon.fail = Some((
        Code::InvalidArgument,
        "catalog parse failed: expected `=` at line 2".to_owned(),
    ));
    let harness = Harness::start(daemon).await;
    let reply = harness
        .send(multipart(&[(
            "file",
            Some("catalog.toml"),
            b"version = 1\nbad",
        )]))
        .await;
    assert_eq!(
        redirected_error(&reply),
        "catalog parse failed: expected `=` at line 2"
    );
}

#[tokio::test]
async fn fetch_release_imports_and_redirects() {
    let harness = Harness::start(sample_daemon()).await;
    let request = Request::post("/ui/catalog/fetch-release")
        .body(Body::empty())
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/ui/images");
    assert_eq!(harness.daemon().fetch_latest_calls, 1);
}

#[tokio::test]
async fn fetch_release_failure_is_reported_without_internals() {
    let mut daemon = sample_daemon();
    daemon.fail = Some((Code::Internal, "panic at /root/src/secret.rs:12".to_owned()));
    let harness = Harness::start(daemon).await;
    let request = Request::post("/ui/catalog/fetch-release")
        .body(Body::empty())
        .unwrap();
    let reply = harness.send(request).await;
    let error = redirected_error(&reply);
    assert_eq!(error, "internal error in btyd");
}
