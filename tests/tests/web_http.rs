//! The web listener's HTTP routes against a real btyd: byte serving with
//! Range, uploads (and the size cap leaving nothing behind), metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::web::put_streaming;
use bty_e2e::{Daemon, drop_file, noise, sha256sum, wait_for};
use serde_json::Value;
use std::time::Duration;

fn sha_of(daemon: &Daemon, name: &str) -> String {
    wait_for(
        Duration::from_secs(60),
        &format!("{name} to be hashed"),
        || {
            daemon.images().into_iter().find_map(|row: Value| {
                let named = row["names"].as_array()?.iter().any(|n| n == name);
                named
                    .then(|| row["sha256"].as_str().map(str::to_owned))
                    .flatten()
            })
        },
    )
}

#[test]
fn serves_image_bytes_with_ranges() {
    let bytes = noise(3 << 20, 11);
    let daemon = Daemon::start_with(|_, root| {
        drop_file(root, "served.img", &bytes);
    });
    let sha = sha_of(&daemon, "served.img");
    assert_eq!(sha, sha256sum(&daemon.image_root.join("served.img")));

    let full = daemon.get(&format!("/images/{sha}/served.img"));
    assert_eq!(full.status, 200);
    assert_eq!(full.body, bytes);
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));

    let range =
        |spec: &str| daemon.request("GET", &format!("/images/{sha}"), &[("Range", spec)], b"");
    let part = range("bytes=100-199");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &bytes[100..200]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    let tail = range("bytes=-4096");
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &bytes[bytes.len() - 4096..]);
    assert_eq!(range(&format!("bytes={}-", bytes.len())).status, 416);

    let head = daemon.request("HEAD", &format!("/images/{sha}/x.img"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    // By file name too (upstream served that key), and a clean 404 otherwise.
    assert_eq!(daemon.get("/images/served.img").status, 200);
    let missing = daemon.get("/images/no-such-image");
    assert_eq!(missing.status, 404);
    assert!(!missing.text().contains(daemon.image_root.to_str().unwrap()));
    // Without a credential (and no `[web] public_read`), no byte leaves.
    let anonymous = daemon.get_anonymous(&format!("/images/{sha}/served.img"));
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.len() < 1024);
}

#[test]
fn uploads_are_stored_and_listed_by_sha() {
    let daemon = Daemon::start();
    let bytes = noise(2 << 20, 5);
    // As the downloads page's script uploads: session cookie, CSRF header.
    let session = daemon.login();
    let mut headers = session.headers();
    headers.push(("Content-Type", "application/octet-stream"));
    let (status, body) = put_streaming(daemon.web, "/images/x.img", &headers, bytes.clone());
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let on_disk = daemon.image_root.join("x.img");
    assert_eq!(std::fs::read(&on_disk).unwrap(), bytes);
    let sha = sha256sum(&on_disk);
    assert_eq!(answer["sha256"], sha);
    assert_eq!(answer["size_bytes"], bytes.len());
    assert_eq!(sha_of(&daemon, "x.img"), sha);
    // A cross-site upload is refused before anything is written, and so
    // is one without a credential.
    let (status, _) = put_streaming(
        daemon.web,
        "/images/y.img",
        &[
            ("Cookie", &session.cookie),
            ("X-CSRF-Token", &session.csrf),
            ("Origin", "http://evil.example"),
        ],
        b"evil".to_vec(),
    );
    assert_eq!(status, 403);
    let origin = daemon.origin();
    let (status, _) = put_streaming(
        daemon.web,
        "/images/y.img",
        &[("Origin", &origin)],
        b"evil".to_vec(),
    );
    assert_eq!(status, 401);
    assert!(!daemon.image_root.join("y.img").exists());
}

#[test]
fn oversized_uploads_get_413_and_leave_nothing_behind() {
    let daemon = Daemon::start_configured("[uploads]\nmax_bytes = 1048576\n", |_, _| {});
    let session = daemon.login();
    let (status, body) = put_streaming(
        daemon.web,
        "/images/big.img",
        &session.headers(),
        noise(3 << 20, 9),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("detail"), "{body}");
    let left: Vec<String> = std::fs::read_dir(&daemon.image_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("big"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Under the cap still works.
    let (status, body) = put_streaming(
        daemon.web,
        "/images/small.img",
        &session.headers(),
        noise(512 << 10, 3),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn metrics_are_prometheus_text() {
    let daemon = Daemon::start_with(|_, root| {
        drop_file(root, "m.img", b"metrics");
    });
    sha_of(&daemon, "m.img");
    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4"),
        "{metrics:?}"
    );
    assert!(metrics.text().contains("bty_images"), "{}", metrics.text());
}
