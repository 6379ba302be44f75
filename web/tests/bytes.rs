//! Byte serving (`GET|HEAD /images/{key}[/{name}]` with Range) and uploads
//! (`PUT /images/{name}` streamed into `UploadImage`) against a fake btyd.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;

fn get(uri: &str, range: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri)
        .header("host", HOST)
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(range) = range {
        builder = builder.header("range", range);
    }
    builder.body(Body::empty()).unwrap()
}

/// The body as raw bytes (Reply keeps text; these are not UTF-8).
async fn get_bytes(harness: &Harness, uri: &str, range: Option<&str>) -> (u16, Vec<u8>, Reply) {
    let response = tower::ServiceExt::oneshot(harness.router.clone(), get(uri, range))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let reply = Reply {
        status: status.try_into().unwrap(),
        headers,
        body: String::new(),
    };
    (status, bytes, reply)
}

#[tokio::test]
async fn serves_whole_files_with_validators() {
    let harness = Harness::start(sample_daemon()).await;
    let all = lab_bench_bytes();
    let (status, bytes, reply) = get_bytes(
        &harness,
        &format!("/images/{SHA_LOCAL}/renamed%20copy.img"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bytes, all);
    assert_eq!(reply.header("content-length"), "4096");
    assert_eq!(reply.header("accept-ranges"), "bytes");
    assert_eq!(reply.header("etag"), format!("\"{SHA_LOCAL}\""));
    assert_eq!(reply.header("content-type"), "application/octet-stream");
    assert_eq!(
        reply.header("last-modified"),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert!(
        reply
            .header("content-disposition")
            .contains("filename=\"renamed copy.img\""),
        "{reply:?}"
    );
    let (_, _, bare) = get_bytes(&harness, &format!("/images/{SHA_LOCAL}"), None).await;
    assert!(bare.header("content-disposition").contains("lab-bench.img"));
}

#[tokio::test]
async fn serves_ranges() {
    let harness = Harness::start(sample_daemon()).await;
    let all = lab_bench_bytes();
    let uri = format!("/images/{SHA_LOCAL}");
    for (range, start, end) in [
        ("bytes=0-99", 0usize, 99usize),
        ("bytes=100-", 100, 4095),
        ("bytes=-100", 3996, 4095),
        ("bytes=4000-9999", 4000, 4095),
    ] {
        let (status, bytes, reply) = get_bytes(&harness, &uri, Some(range)).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(bytes, &all[start..=end], "{range}");
        assert_eq!(
            reply.header("content-range"),
            format!("bytes {start}-{end}/4096"),
            "{range}"
        );
        assert_eq!(
            reply.header("content-length"),
            (end - start + 1).to_string()
        );
    }
    for range in ["bytes=4096-", "bytes=5000-6000", "bytes=-0"] {
        let (status, bytes, reply) = get_bytes(&harness, &uri, Some(range)).await;
        assert_eq!(status, 416, "{range}");
        assert!(bytes.is_empty());
        assert_eq!(reply.header("content-range"), "bytes */4096");
    }
    // A stale If-Range gets the whole file.
    let request = Request::get(&uri)
        .header("range", "bytes=0-9")
        .header("if-range", "\"0000\"")
        .body(Body::empty())
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn head_describes_without_a_body() {
    let harness = Harness::start(sample_daemon()).await;
    let request = Request::head(format!("/images/{SHA_LOCAL}/x.img"))
        .body(Body::empty())
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), "4096");
    assert_eq!(reply.header("etag"), format!("\"{SHA_LOCAL}\""));
    assert!(reply.body.is_empty());
    let request = Request::head(format!("/images/{SHA_LOCAL}"))
        .header("range", "bytes=-10")
        .body(Body::empty())
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), "bytes 4086-4095/4096");
}

#[tokio::test]
async fn unknown_images_are_404_without_internals() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/images/nope/x.img").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["detail"], "no such image: nope");
    let head = harness
        .send(Request::head("/images/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!(head.status, 404);
}

fn put(name: &str, body: Vec<u8>) -> Request<Body> {
    Request::put(format!("/images/{name}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", body.len().to_string())
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn uploads_stream_into_the_daemon() {
    let harness = Harness::start(sample_daemon()).await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let reply = harness.send(put("new%20disk.img", payload.clone())).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        serde_json::json!({"name": "new disk.img", "size_bytes": 300_000, "sha256": "f".repeat(64)})
    );
    let uploads = &harness.daemon().uploads;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].0, "new disk.img");
    assert_eq!(uploads[0].1, payload);
}

#[tokio::test]
async fn uploads_refuse_bad_names_and_oversize_bodies() {
    let harness = Harness::start(sample_daemon()).await;
    for name in ["..", "a%2Fb", "a%5Cb", "a%00b"] {
        let reply = harness.send(put(name, b"x".to_vec())).await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .contains("bare filename")
        );
    }
    let reply = harness.send(put("catalog-x.img", b"x".to_vec())).await;
    assert_eq!(reply.status, 400);
    harness.daemon().max_upload = Some(1000);
    let reply = harness.send(put("big.img", vec![7u8; 50_000])).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(harness.daemon().uploads.is_empty());
}

#[tokio::test]
async fn metrics_pass_through_as_prometheus_text() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(reply.body.contains("bty_images 4"));
}
