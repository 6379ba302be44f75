//! Upstream's integration routes on a real btyd: `GET /version`,
//! `GET /healthz` and `GET /catalog/entries`, each compared with upstream's
//! reply shape (field names and JSON types), and who may call them: the
//! first two answer anonymous monitors (as upstream's do), the entry list
//! only a logged-in client, also with `public_read`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, bin, free_port, http, noise, percent_encode, sha256sum, wait_for};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A JSON type as upstream's pydantic models and SQLite rows produce it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Null,
}

fn kind(value: &Value) -> Kind {
    match value {
        Value::String(_) => Kind::Str,
        Value::Number(n) if n.is_u64() || n.is_i64() => Kind::Int,
        Value::Null => Kind::Null,
        other => panic!("unexpected JSON value {other}"),
    }
}

/// `object` has exactly upstream's fields, each of one of its types.
fn assert_shape(object: &Value, upstream: &[(&str, &[Kind])]) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"));
    let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = upstream.iter().map(|(n, _)| *n).collect();
    expected.sort_unstable();
    assert_eq!(names, expected, "field names of {object}");
    for (name, kinds) in upstream {
        let got = kind(&map[*name]);
        assert!(
            kinds.contains(&got),
            "{name}: {got:?} is not one of {kinds:?} in {object}"
        );
    }
}

/// Upstream's `GET /catalog/entries` row: the nine columns of
/// `catalog_entries` (TEXT, INTEGER, NULL where nullable).
const UPSTREAM_ENTRY: &[(&str, &[Kind])] = &[
    ("bty_image_ref", &[Kind::Str]),
    ("src", &[Kind::Str]),
    ("disk_image_sha", &[Kind::Str, Kind::Null]),
    ("name", &[Kind::Str]),
    ("sha_url", &[Kind::Str, Kind::Null]),
    ("format", &[Kind::Str, Kind::Null]),
    ("size_bytes", &[Kind::Int, Kind::Null]),
    ("description", &[Kind::Str, Kind::Null]),
    ("added_at", &[Kind::Str]),
];

fn is_rfc3339_utc(text: &str) -> bool {
    // 2026-12-03T08:15:00Z or with fractional seconds.
    let b = text.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && text.ends_with('Z')
}

#[test]
fn version_and_healthz_answer_anonymous_monitors_in_upstream_shape() {
    let daemon = Daemon::start();
    let version = daemon.get_anonymous("/version");
    assert_eq!(version.status, 200, "{}", version.text());
    assert_eq!(version.header("content-type"), Some("application/json"));
    let body = version.json();
    // Upstream: {"version": str}; bty adds the git revision.
    assert_shape(
        &body,
        &[("version", &[Kind::Str]), ("revision", &[Kind::Str])],
    );
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let cli = Command::new(bin("btyd")).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cli.stdout),
        format!(
            "btyd {} ({})\n",
            body["version"].as_str().unwrap(),
            body["revision"].as_str().unwrap()
        ),
        "the route and --version disagree"
    );

    let health = daemon.get_anonymous("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(health.json(), json!({"status": "ok"}));

    // A rebinding page still gets nothing: the Host check comes first.
    let foreign = http::request(
        daemon.web,
        "GET",
        "/version",
        &[("Host", "evil.example")],
        b"",
    );
    assert_eq!(foreign.status, 421, "{}", foreign.text());
    // Public means GET/HEAD only.
    let post = http::request(daemon.web, "POST", "/version", &[], b"");
    assert!(matches!(post.status, 401 | 403 | 405), "{}", post.status);
}

#[test]
fn with_btyd_down_healthz_is_503_json_and_version_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut web = Command::new(bin("bty-web"))
        .arg("--endpoint")
        .arg(dir.path().join("no-btyd.sock"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("BTY_WEB_TOKEN", "a-test-token-of-enough-length")
        .env("BTY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(Duration::from_secs(10), "bty-web to listen", || {
        std::net::TcpStream::connect(addr).ok()
    });
    let health = http::request(addr, "GET", "/healthz", &[], b"");
    let version = http::request(addr, "GET", "/version", &[], b"");
    let _ = web.kill();
    let _ = web.wait();
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(
        health.json(),
        json!({"status": "unavailable", "detail": "btyd is not reachable"})
    );
    assert_eq!(version.status, 200);
    assert_eq!(version.json()["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn catalog_entries_lists_remote_entries_in_upstream_shape() {
    let origin = Origin::start();
    let unpinned = noise(300_000, 1);
    let pinned = noise(200_000, 2);
    origin.put("/a/first.img", unpinned.clone());
    origin.put("/b/second.img.gz", pinned.clone());
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let pinned_sha = {
        let path = dir.path().join("second");
        std::fs::write(&path, &pinned).unwrap();
        sha256sum(&path)
    };
    let unpinned_sha = {
        let path = dir.path().join("first");
        std::fs::write(&path, &unpinned).unwrap();
        sha256sum(&path)
    };

    // One entry added by URL over the API, one imported from a catalog with
    // a pinned digest and a description; a local file is not an entry.
    let add = json!({"image_url": origin.url("/a/first.img")}).to_string();
    let added = daemon.request(
        "POST",
        "/catalog/entries",
        &[("Content-Type", "application/json")],
        add.as_bytes(),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "version = 1\n\n[[images]]\nname = \"second.img.gz\"\nsrc = \"{}\"\nsha256 = \"{pinned_sha}\"\ndescription = \"pinned one\"\nadded_at = \"not a time\"\n",
            origin.url("/b/second.img.gz")
        ),
    )
    .unwrap();
    let imported = daemon.ctl(&["catalog", "import", catalog.to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    bty_e2e::drop_file(&daemon.image_root, "local.img", b"local bytes");
    // Fetch the unpinned entry: its digest becomes known, as upstream
    // back-fills disk_image_sha after a first download.
    let fetched = daemon.ctl(&["fetch", "first.img"]);
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );

    let list = |daemon: &Daemon| {
        let reply = daemon.get("/catalog/entries");
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json().as_array().cloned().expect("an array")
    };
    let rows = list(&daemon);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_shape(row, UPSTREAM_ENTRY);
        let image_ref = row["bty_image_ref"].as_str().unwrap();
        assert!(image_ref.len() == 64 && image_ref.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(is_rfc3339_utc(row["added_at"].as_str().unwrap()), "{row}");
        assert_eq!(row["sha_url"], Value::Null);
    }
    // In the order they were added.
    assert_eq!(rows[0]["name"], "first.img");
    assert_eq!(rows[0]["src"], origin.url("/a/first.img"));
    assert_eq!(rows[0]["disk_image_sha"], unpinned_sha.as_str());
    assert_eq!(rows[0]["format"], "img");
    assert_eq!(rows[0]["bty_image_ref"], added.json()["bty_image_ref"]);
    assert_eq!(rows[1]["name"], "second.img.gz");
    assert_eq!(rows[1]["disk_image_sha"], pinned_sha.as_str());
    assert_eq!(rows[1]["description"], "pinned one");
    // The imported file's own added_at is not taken.
    assert_ne!(rows[1]["added_at"], "not a time");
    assert!(rows[0]["added_at"].as_str() <= rows[1]["added_at"].as_str());

    // Kept across a restart; gone after DELETE ?src=.
    let mut daemon = daemon;
    daemon.restart();
    assert_eq!(list(&daemon), rows);
    let src = rows[0]["src"].as_str().unwrap().to_owned();
    let deleted = daemon.request(
        "DELETE",
        &format!("/catalog/entries?src={}", percent_encode(&src)),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let after = list(&daemon);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["name"], "second.img.gz");
}

#[test]
fn an_anonymous_client_cannot_list_entries_even_with_public_read() {
    let origin = Origin::start();
    origin.put("/secret/path/image.img", noise(1000, 3));
    let daemon = Daemon::start_configured("[web]\npublic_read = true\n", |_, _| {});
    // A source with a credential in it, as presigned and private URLs have
    // (userinfo is refused at add).
    let src = origin.url("/secret/path/image.img?token=s3cr3t-value");
    let add = json!({"image_url": src}).to_string();
    let added = daemon.request(
        "POST",
        "/catalog/entries",
        &[("Content-Type", "application/json")],
        add.as_bytes(),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    // The attacker: no credential, a wrong bearer token, a forged cookie.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer not-the-token-0123456789")],
        vec![("Cookie", "bty_session=forged")],
    ] {
        let reply = http::request(daemon.web, "GET", "/catalog/entries", &headers, b"");
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.text());
        assert!(!reply.text().contains("secret"), "{}", reply.text());
    }
    // The fetch routes public_read opens still answer anonymously.
    assert_eq!(daemon.get_anonymous("/images").status, 200);
    // A logged-in client sees the entry.
    assert_eq!(
        daemon
            .get("/catalog/entries")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
