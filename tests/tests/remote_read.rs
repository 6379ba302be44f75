//! `GET|HEAD /images/{key}/{name}` of a catalog entry with no local copy
//! (what PXE clients and other bty servers fetch): streamed from its
//! source, ranges included, checked against the pin, then cached by a
//! download job; a source that serves other bytes never completes a read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, wait_for};
use bty_store::digest::sha256_bytes;
use std::time::Duration;

const SIZE: usize = 3 << 20;

fn header<'a>(response: &'a bty_e2e::http::Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An entry for `path` on `origin`, pinned to `sha`; its ref.
fn add_entry(d: &Daemon, origin: &Origin, path: &str, sha: &str) -> String {
    let entry = d.ctl_json(&["entries", "add", &origin.url(path), "--sha256", sha]);
    entry["ref"]
        .as_str()
        .or_else(|| entry["bty_image_ref"].as_str())
        .unwrap_or_else(|| panic!("no ref in {entry}"))
        .to_owned()
}

#[test]
fn a_remote_row_streams_through_with_ranges_then_lands_in_the_cache() {
    let origin = Origin::start();
    let bytes = noise(SIZE, 61);
    let sha = sha256_bytes(&bytes);
    origin.put("/pxe/disk.img", bytes.clone());
    let d = Daemon::start();
    let image_ref = add_entry(&d, &origin, "/pxe/disk.img", &sha);
    let path = format!("/images/{image_ref}/disk.img");

    let head = d.request("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200, "{:?}", head.headers);
    assert_eq!(
        header(&head, "content-length"),
        Some(SIZE.to_string().as_str())
    );
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));

    let part = d.request("GET", &path, &[("Range", "bytes=1000000-1999999")], b"");
    assert_eq!(part.status, 206, "{:?}", part.headers);
    assert_eq!(
        header(&part, "content-range"),
        Some(format!("bytes 1000000-1999999/{SIZE}").as_str())
    );
    assert!(
        part.body == bytes[1_000_000..2_000_000],
        "the range differs"
    );
    let tail = d.request("GET", &path, &[("Range", "bytes=-4096")], b"");
    assert_eq!(tail.status, 206);
    assert!(tail.body == bytes[SIZE - 4096..], "the tail differs");
    // Ranged reads cache nothing.
    assert!(
        !d.images()
            .iter()
            .any(|r| r["sha256"] == sha.as_str() && r["cached"] == true)
    );

    let full = d.get(&path);
    assert_eq!(full.status, 200);
    assert_eq!(header(&full, "etag"), Some(format!("\"{sha}\"").as_str()));
    assert!(full.body == bytes, "the streamed body differs");

    // Read whole, it is now fetched into the cache and listed with its sha.
    let cached = wait_for(Duration::from_secs(30), "the row to be cached", || {
        d.images()
            .into_iter()
            .find(|r| r["sha256"] == sha.as_str() && r["cached"] == true)
    });
    assert!(cached["names"].to_string().contains("disk.img"), "{cached}");
    // Served from the cache now: the origin sees no new request for it.
    let before = origin.requests_for("/pxe/disk.img");
    let again = d.get(&path);
    assert!(again.status == 200 && again.body == bytes);
    assert_eq!(origin.requests_for("/pxe/disk.img"), before);
}

#[test]
fn a_source_serving_other_bytes_never_completes_a_read_and_nothing_is_cached() {
    let origin = Origin::start();
    let promised = noise(SIZE, 62);
    let sha = sha256_bytes(&promised);
    let mut served = promised.clone();
    served[SIZE - 10] ^= 0x55;
    origin.put("/pxe/evil.img", served);
    let d = Daemon::start();
    let image_ref = add_entry(&d, &origin, "/pxe/evil.img", &sha);

    let got = d.get(&format!("/images/{image_ref}/evil.img"));
    assert!(
        got.status != 200 || got.body.len() < SIZE,
        "a wrong image was served whole ({} bytes, status {})",
        got.body.len(),
        got.status
    );
    assert!(
        promised.starts_with(&got.body) || got.status != 200,
        "bytes other than the source's leading ones were served"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !d.images().iter().any(|r| r["cached"] == true),
        "a wrong image was cached"
    );
    assert!(
        d.image_root_names().iter().all(|n| !n.ends_with(".img")),
        "{:?}",
        d.image_root_names()
    );
}
