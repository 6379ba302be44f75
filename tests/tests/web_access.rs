//! The web listener against a real btyd, played by an attacker without a
//! credential: a web page that rebinds its host name to the listener, and
//! a local user who can reach the port. Neither changes anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::{Daemon, drop_file, http, noise, sha256sum, wait_for};
use bty_test_caps::can_use_loop_devices;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// What the web could change: catalog.toml, the image root, the jobs.
#[derive(Debug, PartialEq)]
struct Stored {
    catalog: Vec<u8>,
    listing: Vec<(String, u64)>,
    jobs: Value,
    images: Vec<Value>,
}

fn stored(daemon: &Daemon) -> Stored {
    let mut listing: Vec<(String, u64)> = std::fs::read_dir(&daemon.image_root)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    listing.sort();
    Stored {
        catalog: std::fs::read(daemon.state_dir.join("catalog.toml")).unwrap_or_default(),
        listing,
        jobs: daemon.ctl_json(&["jobs", "list"]),
        images: daemon.images(),
    }
}

/// A daemon with one hashed image, `seed.img`; its row id.
fn seeded() -> (Daemon, String) {
    let daemon = Daemon::start_with(|_, root| {
        drop_file(root, "seed.img", &noise(1 << 20, 7));
    });
    let id = wait_for(Duration::from_secs(30), "seed.img to be hashed", || {
        daemon.images().into_iter().find_map(|row| {
            row["sha256"]
                .is_string()
                .then(|| row["id"].as_str().unwrap().to_owned())
        })
    });
    (daemon, id)
}

#[test]
fn a_rebinding_page_cannot_add_entries_or_flash_a_disk() {
    assert!(
        can_use_loop_devices(),
        "this test flashes a loop device: run as root"
    );
    let work = tempfile::tempdir().unwrap();
    let (daemon, image_id) = seeded();
    let target = LoopDevice::create(&work.path().join("disk"), 16 << 20, 0x5A, false);
    let before = sha256sum(&target.file);
    let port = daemon.web.port();
    let host = format!("evil.example:{port}");
    let origin = format!("http://{host}");
    let rebound = |path: &str, content_type: &str, body: &str| {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        raw(daemon.web, head.as_bytes())
    };
    let was = stored(&daemon);
    let (status, text) = rebound(
        "/catalog/entries",
        "application/json",
        r#"{"image_url": "https://evil.example/payload.img"}"#,
    );
    assert_eq!(status, 421, "{text}");
    assert!(
        text.contains("evil.example") && text.contains("[web] hosts"),
        "{text}"
    );
    let form = format!(
        "confirm=yes&image={image_id}&t0_path={}&t0_size={}",
        target.dev(),
        16 << 20
    );
    let (status, text) = rebound(
        "/ui/flash/start",
        "application/x-www-form-urlencoded",
        &form,
    );
    assert_eq!(status, 421, "{text}");
    // Give a flash that slipped through time to write.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(&daemon), was, "the rebinding page changed something");
    assert_eq!(sha256sum(&target.file), before, "the disk was written");
}

/// Every route of the router source with the methods it answers.
fn routes() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let mut files = vec![src];
    let mut routes = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for chunk in text.split(".route(").skip(1) {
            let Some(route) = chunk
                .trim_start()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            // The handlers up to the next route (or the end of the chain).
            let chain = chunk.split(";\n").next().unwrap_or(chunk);
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = [
                    format!("({method}("),
                    format!(".{method}("),
                    format!(" {method}("),
                ];
                if called.iter().any(|c| chain.contains(c.as_str())) {
                    routes.push((method.to_ascii_uppercase(), route.to_owned()));
                }
            }
        }
    }
    routes.sort();
    routes.dedup();
    routes
}

#[test]
fn without_a_credential_no_state_changing_route_answers_and_nothing_changes() {
    let (daemon, image_id) = seeded();
    let routes = routes();
    let changing: Vec<&(String, String)> = routes.iter().filter(|(m, _)| m != "GET").collect();
    // The enumeration itself must see the router: these exist today.
    for known in [
        ("POST", "/catalog/entries"),
        ("DELETE", "/catalog/entries"),
        ("PUT", "/images/{key}"),
        ("POST", "/ui/flash/start"),
        ("POST", "/ui/catalog/upload"),
        ("POST", "/catalog/downloads"),
        ("DELETE", "/api/jobs/{id}"),
    ] {
        assert!(
            changing.iter().any(|(m, p)| m == known.0 && p == known.1),
            "route enumeration missed {known:?}: {routes:?}"
        );
    }
    let was = stored(&daemon);
    let origin = daemon.origin();
    for (method, route) in &changing {
        let path = route
            .replace("{key}", "anon.img")
            .replace("{id}", &image_id)
            .replace("{name}", "seed.img");
        let (content_type, body) = if path.starts_with("/ui/") {
            (
                "application/x-www-form-urlencoded",
                format!(
                    "password=guess&url=https%3A%2F%2Fexample.invalid%2Fa.img&confirm=yes&image={image_id}"
                ),
            )
        } else if *method == "PUT" {
            ("application/octet-stream", "anonymous bytes".to_owned())
        } else {
            (
                "application/json",
                format!(
                    r#"{{"image_url": "https://example.invalid/anon.img", "id": "{image_id}", "name": "seed.img"}}"#
                ),
            )
        };
        for with_origin in [true, false] {
            let mut headers = vec![("Content-Type", content_type)];
            if with_origin {
                headers.push(("Origin", origin.as_str()));
            }
            let reply = http::request(daemon.web, method, &path, &headers, body.as_bytes());
            let to_login = reply.status == 303
                && reply
                    .header("location")
                    .is_some_and(|l| l.starts_with("/ui/login"));
            assert!(
                matches!(reply.status, 401 | 403) || to_login,
                "{method} {path} (origin: {with_origin}) answered {} without a credential: {}",
                reply.status,
                reply.text()
            );
        }
    }
    // The flash page lists every disk: not to anonymous users.
    let flash = daemon.get_anonymous("/ui/flash");
    assert_eq!(flash.status, 303);
    assert!(flash.header("location").unwrap().starts_with("/ui/login"));
    assert!(!flash.text().contains("/dev/"), "{}", flash.text());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        stored(&daemon),
        was,
        "an anonymous request changed something"
    );
}

/// One raw request: status and the whole answer as text.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn fetch_routes_need_a_login_unless_public_and_never_show_url_credentials() {
    let bytes = noise(64 << 10, 9);
    for public in [false, true] {
        let config = if public {
            "[web]\npublic_read = true\n"
        } else {
            ""
        };
        let daemon = Daemon::start_configured(config, |_, root| {
            drop_file(root, "pxe.img", &bytes);
        });
        daemon.ctl_json(&[
            "entries",
            "add",
            "https://files.example/remote.img?token=SECRET&v=2",
        ]);
        let sha = wait_for(Duration::from_secs(30), "pxe.img to be hashed", || {
            daemon
                .images()
                .into_iter()
                .find_map(|r| r["sha256"].as_str().map(str::to_owned))
        });
        let paths = [
            "/images".to_owned(),
            "/catalog.toml".to_owned(),
            format!("/images/{sha}/pxe.img"),
        ];
        for path in &paths {
            let reply = daemon.get_anonymous(path);
            if public {
                assert_eq!(reply.status, 200, "{path}: {}", reply.text());
                assert!(
                    !reply.text().contains("SECRET"),
                    "{path} shows the token: {}",
                    reply.text()
                );
            } else {
                assert_eq!(reply.status, 401, "{path}: {}", reply.text());
            }
        }
        if public {
            let listed = daemon.get_anonymous("/images").text();
            assert!(
                listed.contains("https://files.example/remote.img\""),
                "{listed}"
            );
            assert_eq!(daemon.get_anonymous(&paths[2]).body, bytes);
            // Nothing else opened up.
            assert_eq!(daemon.get_anonymous("/api/images").status, 401);
            assert_eq!(daemon.get_anonymous("/metrics").status, 401);
        }
        // Logged in, the token is still not shown.
        for path in &paths[..2] {
            let reply = daemon.get(path);
            assert_eq!(reply.status, 200);
            assert!(!reply.text().contains("SECRET"), "{path}: {}", reply.text());
        }
        let listed = daemon.get("/images").text();
        assert!(
            listed.contains("files.example/remote.img?token=REDACTED&v=2"),
            "{listed}"
        );
    }
}

#[test]
fn pages_and_api_answers_carry_the_security_headers_and_no_inline_script() {
    let (daemon, _) = seeded();
    let session = daemon.login();
    let as_browser = |path: &str| http::request(daemon.web, "GET", path, &session.headers(), b"");
    let mut replies = Vec::new();
    for page in [
        "/ui/images",
        "/ui/downloads",
        "/ui/hashing",
        "/ui/flash",
        "/ui/login",
    ] {
        let reply = as_browser(page);
        assert_eq!(reply.status, 200, "{page}");
        let html = reply.text().to_ascii_lowercase();
        for script in html.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(tag.contains(" src="), "{page}: inline script {tag}");
            assert!(
                script[tag.len() + 1..].starts_with("</script"),
                "{page}: script body"
            );
        }
        assert!(
            !html.contains(" style=") && !html.contains("<style"),
            "{page}: inline style"
        );
        assert!(
            !html.contains(" onclick=") && !html.contains("javascript:"),
            "{page}"
        );
        replies.push(reply);
    }
    replies.push(daemon.get("/images"));
    replies.push(daemon.get("/catalog/downloads"));
    replies.push(daemon.get_anonymous("/healthz"));
    replies.push(daemon.get_anonymous("/catalog/downloads"));
    for reply in replies {
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        );
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
    }
}
