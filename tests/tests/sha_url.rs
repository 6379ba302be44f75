//! Entries pinned from a checksum file (`sha_url`) through a real btyd and
//! a real HTTP origin: the digest a SHA256SUMS lists pins the entry before
//! any image byte moves, a later fetch verifies against it, and a sums file
//! that gives no digest is refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise};
use bty_store::digest::sha256_bytes;
use serde_json::{Value, json};

/// `POST /catalog/entries` with a JSON body: (status, body).
fn add(daemon: &Daemon, body: &Value) -> (u16, Value) {
    let reply = daemon.request(
        "POST",
        "/catalog/entries",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (reply.status, reply.json())
}

fn entries(daemon: &Daemon) -> Vec<Value> {
    let reply = daemon.get("/catalog/entries");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().cloned().unwrap()
}

#[test]
fn a_sha256sums_file_pins_the_entry_and_the_fetch_verifies() {
    let origin = Origin::start();
    let image = noise(700_000, 31);
    let sha = sha256_bytes(&image);
    let other = "c".repeat(64);
    origin.put("/release/os.img", image.clone());
    origin.put(
        "/release/SHA256SUMS",
        format!("# release 1\r\n{other}  os.iso\r\n{sha} *os.img\r\n{other}  ./notes.txt\r\n")
            .into_bytes(),
    );
    let mut daemon = Daemon::start();
    let sums = origin.url("/release/SHA256SUMS");
    let entry = daemon.ctl_json(&[
        "entries",
        "add",
        &origin.url("/release/os.img"),
        "--sha-url",
        &sums,
    ]);
    assert_eq!(entry["sha256"], sha.as_str(), "{entry}");
    assert_eq!(entry["sha_url"], sums.as_str(), "{entry}");
    // Pinned before any image byte moved.
    assert_eq!(origin.requests_for("/release/os.img"), 0);
    assert_eq!(origin.requests_for("/release/SHA256SUMS"), 1);
    let stored = std::fs::read_to_string(daemon.state_dir.join("catalog.toml")).unwrap();
    assert!(
        stored.contains(&format!("sha_url = \"{sums}\"")),
        "{stored}"
    );

    let job = daemon.ctl_json(&["fetch", "os.img"]);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["sha256"], sha.as_str());
    let r = entry["ref"].as_str().unwrap();
    let file = format!("catalog-{}-os-img.img", &r[..12]);
    assert_eq!(std::fs::read(daemon.image_root.join(&file)).unwrap(), image);

    // The listing shows where the pin came from, after a restart too.
    let rows = entries(&daemon);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["sha_url"], sums.as_str());
    assert_eq!(rows[0]["disk_image_sha"], sha.as_str());
    daemon.restart();
    assert_eq!(entries(&daemon), rows);

    // The JSON route: the same, and an empty sha_url is none.
    let second = noise(1000, 32);
    origin.put("/b/two.img", second.clone());
    origin.put(
        "/b/SHA256SUMS",
        format!("{}  two.img\n", sha256_bytes(&second)).into_bytes(),
    );
    let (status, body) = add(
        &daemon,
        &json!({"image_url": origin.url("/b/two.img"), "sha_url": origin.url("/b/SHA256SUMS")}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], sha256_bytes(&second).as_str());
    assert_eq!(body["sha_url"], origin.url("/b/SHA256SUMS").as_str());
    let (status, body) = add(
        &daemon,
        &json!({"image_url": origin.url("/b/three.img"), "sha_url": ""}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], Value::Null);
    assert_eq!(body["sha_url"], Value::Null);
    let rows = entries(&daemon);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["sha_url"], origin.url("/b/SHA256SUMS").as_str());
    assert_eq!(rows[2]["sha_url"], Value::Null);
}

#[test]
fn checksum_files_that_give_no_digest_are_refused_with_the_reason() {
    let origin = Origin::start();
    let image = noise(2 << 20, 33);
    let sha = sha256_bytes(&image);
    origin.put("/os.img", image);
    origin.put(
        "/missing",
        format!("{sha}  alpha.img\n{sha}  beta.img\n").into_bytes(),
    );
    origin.put(
        "/malformed",
        format!("# sums\n{sha}  other.img\nnot-a-digest  os.img\n").into_bytes(),
    );
    origin.put("/sha512", format!("{sha}{sha}  os.img\n").into_bytes());
    origin.put("/disagree", format!("{sha}  os.img\n").into_bytes());
    let daemon = Daemon::start();
    let image_url = origin.url("/os.img");
    let refused = |sha_url: &str, extra: Option<&str>| -> String {
        let mut body = json!({"image_url": image_url, "sha_url": sha_url});
        if let Some(given) = extra {
            body["sha256"] = json!(given);
        }
        let (status, body) = add(&daemon, &body);
        assert_eq!(status, 400, "{sha_url}: {body}");
        body["detail"].as_str().unwrap().to_owned()
    };

    let why = refused(&origin.url("/missing"), None);
    assert!(why.starts_with("could not resolve sha256: "), "{why}");
    assert!(
        why.contains("\"os.img\" is not listed")
            && why.contains("\"alpha.img\"")
            && why.contains("\"beta.img\""),
        "{why}"
    );
    let why = refused(&origin.url("/malformed"), None);
    assert!(why.starts_with("could not resolve sha256: "), "{why}");
    assert!(why.ends_with("malformed sha256 line 3"), "{why}");
    let why = refused(&origin.url("/sha512"), None);
    assert!(
        why.contains("SHA512 sums are not supported; give a SHA256SUMS file"),
        "{why}"
    );
    // The image itself pasted as the checksum file: 2 MiB, over the cap.
    let why = refused(&image_url, None);
    assert!(why.contains("larger than 1048576 bytes"), "{why}");
    assert!(
        why.contains("did you paste an image URL into the sha_url field?"),
        "{why}"
    );
    // A sums file one byte over the cap.
    origin.put("/huge", vec![b'#'; (1 << 20) + 1]);
    let why = refused(&origin.url("/huge"), None);
    assert!(why.contains("larger than 1048576 bytes"), "{why}");
    let why = refused("ftp://example.invalid/SHA256SUMS", None);
    assert!(why.contains("sha_url must be an http(s) URL"), "{why}");
    let wrong = "d".repeat(64);
    let why = refused(&origin.url("/disagree"), Some(&wrong));
    assert!(why.contains(&wrong) && why.contains(&sha), "{why}");
    // A matching explicit pin is fine.
    let (status, body) = add(
        &daemon,
        &json!({"image_url": image_url, "sha_url": origin.url("/disagree"), "sha256": sha.to_uppercase()}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], sha.as_str());
    assert_eq!(entries(&daemon).len(), 1);

    // The gRPC route answers InvalidArgument (btyctl exit 5) with the same
    // reason, and adds nothing.
    let out = daemon.ctl(&[
        "entries",
        "add",
        &origin.url("/elsewhere/os.img"),
        "--sha-url",
        &origin.url("/malformed"),
    ]);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not resolve sha256") && stderr.contains("malformed sha256 line 3"),
        "{stderr}"
    );
    assert_eq!(entries(&daemon).len(), 1);
}

#[test]
fn a_wrong_digest_in_the_checksum_file_fails_the_download_and_stores_nothing() {
    let origin = Origin::start();
    let image = noise(500_000, 34);
    let actual = sha256_bytes(&image);
    let listed = "0".repeat(63) + "1";
    origin.put("/bad.img", image);
    origin.put("/SHA256SUMS", format!("{listed}  bad.img\n").into_bytes());
    let daemon = Daemon::start();
    let entry = daemon.ctl_json(&[
        "entries",
        "add",
        &origin.url("/bad.img"),
        "--sha-url",
        &origin.url("/SHA256SUMS"),
    ]);
    assert_eq!(entry["sha256"], listed.as_str());
    let (code, job) = daemon.fetch("bad.img");
    assert_eq!(code, Some(7), "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains(&listed) && error.contains(&actual),
        "{error}"
    );
    assert_eq!(
        daemon.image_root_names(),
        vec![".bty-storage.json".to_owned()]
    );
}
