//! What every request passes before the login: the Host allow-list (DNS
//! rebinding), the security headers, and the opt-in public fetch routes
//! with credentials taken out of the URLs they show.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use bty_proto::v1::{Image, SourceKind};
use support::*;

fn with_host(method: &str, uri: &str, host: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .header("origin", format!("http://{host}"))
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"image_url": "https://example.com/evil.img"}"#,
        ))
        .unwrap()
}

#[tokio::test]
async fn a_rebinding_page_is_refused_on_every_route() {
    let harness = Harness::start(sample_daemon()).await;
    // The attacker's page resolves evil.example to this listener: the
    // browser then sends matching Host and Origin, even the session cookie
    // would not come along, but a bearer/cookie must not help either.
    for (method, uri) in [
        ("POST", "/catalog/entries"),
        ("POST", "/ui/flash/start"),
        ("GET", "/ui/flash"),
        ("GET", "/healthz"),
        ("GET", "/login"),
        ("GET", "/static/bty.js"),
        ("GET", "/images"),
    ] {
        let mut request = with_host(method, uri, "evil.example:8080");
        request
            .headers_mut()
            .insert("cookie", harness.cookie.parse().unwrap());
        request
            .headers_mut()
            .insert("x-csrf-token", harness.csrf.parse().unwrap());
        let reply = harness.send_raw(request).await;
        assert_eq!(reply.status, 421, "{method} {uri}: {reply:?}");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("evil.example") && detail.contains("[web] hosts"),
            "{detail}"
        );
    }
    assert!(harness.daemon().added.is_empty());
    assert!(harness.daemon().flashes.is_empty());
    // Names the listener knows pass: its address, localhost, configured names.
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "bty.test:8080",
        "BTY.test",
    ] {
        let request = Request::get("/healthz")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        assert_eq!(harness.send_raw(request).await.status, 200, "{host}");
    }
    let bearer = Request::get("/catalog/downloads")
        .header("host", "evil.example")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(harness.send_raw(bearer).await.status, 421);
    // A second Host header cannot smuggle the foreign name past the check.
    let twice = Request::get("/healthz")
        .header("host", HOST)
        .header("host", "evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(harness.send_raw(twice).await.status, 421);
    let absolute = Request::get("http://evil.example/healthz")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    assert_eq!(harness.send_raw(absolute).await.status, 421);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let harness = Harness::start(sample_daemon()).await;
    let anonymous = Request::get("/catalog/downloads")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let replies = vec![
        harness.get("/ui/images").await,
        harness.get("/ui/flash").await,
        harness.get("/images").await,
        harness.get("/healthz").await,
        harness.get("/static/bty.js").await,
        harness.get("/no/such/route").await,
        harness.send_raw(anonymous).await,
        harness
            .send_raw(with_host("GET", "/", "evil.example"))
            .await,
    ];
    for reply in replies {
        assert_eq!(
            reply.header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            "{reply:?}"
        );
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("referrer-policy"), "same-origin");
    }
}

/// Inline script, inline styles and handlers would be blocked by the CSP
/// (and would mean an injection point): none in any page.
fn assert_no_inline_code(page: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("<script") {
        let tag_end = rest[at..].find('>').unwrap() + at;
        let tag = &rest[at..tag_end];
        assert!(tag.contains(" src="), "{page}: inline <script>: {tag}");
        let close = rest[tag_end..].find("</script>").unwrap() + tag_end;
        assert_eq!(close, tag_end + 1, "{page}: script with a body");
        rest = &rest[close..];
    }
    assert!(!lower.contains("<style"), "{page}: <style> element");
    assert!(!lower.contains("javascript:"), "{page}: javascript: URL");
    // Attributes: ` style=` and ` on…=` inside tags.
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        for attr in tag.split_whitespace().skip(1) {
            let name = attr.split('=').next().unwrap_or("");
            assert!(name != "style", "{page}: style attribute in <{tag}>");
            assert!(
                !(name.starts_with("on") && attr.contains('=')),
                "{page}: handler attribute in <{tag}>"
            );
        }
    }
}

#[tokio::test]
async fn no_page_has_inline_script_or_style() {
    let mut daemon = sample_daemon();
    daemon.disks = vec![
        disk("/dev/sdb", true, &[]),
        disk("/dev/sda", false, &["system disk"]),
    ];
    let harness = Harness::start(daemon).await;
    for page in [
        "/ui/images",
        "/ui/images?error=x",
        "/ui/downloads",
        "/ui/hashing",
        "/ui/flash",
        "/ui/login",
    ] {
        let reply = harness.get(page).await;
        assert!(
            reply.header("content-type").starts_with("text/html"),
            "{page}"
        );
        assert_no_inline_code(page, &reply.body);
    }
    let anonymous = Request::get("/ui/login")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    assert_no_inline_code("login", &harness.send_raw(anonymous).await.body);
}

fn secret_image() -> Image {
    let mut image = sample_images()[1].clone();
    image.names = vec!["secret.img".to_owned()];
    image.id = "secret".to_owned();
    image.cached = false;
    image.sha256 = None;
    image.sources = vec![source(
        SourceKind::Url,
        "https://admin:hunter2@files.example/secret.img?token=SECRET&v=2",
    )];
    image
}

#[tokio::test]
async fn fetch_routes_are_public_only_when_configured_and_never_show_credentials() {
    let mut daemon = sample_daemon();
    daemon.images.push(secret_image());
    daemon.export_toml = "version = 1\n\n[[images]]\nname = \"secret.img\"\n\
        src = \"https://admin:hunter2@files.example/secret.img?token=SECRET&v=2\"\n"
        .to_owned();
    let anonymous = |uri: &str| {
        Request::get(uri)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap()
    };
    let closed = Harness::start(daemon).await;
    for uri in [
        "/images",
        "/catalog.toml",
        &format!("/images/{SHA_LOCAL}/lab-bench.img"),
    ] {
        assert_eq!(closed.send_raw(anonymous(uri)).await.status, 401, "{uri}");
    }
    // Logged in, userinfo and credential-looking parameters are redacted.
    for uri in ["/images", "/catalog.toml"] {
        let reply = closed.get(uri).await;
        assert_eq!(reply.status, 200, "{uri}");
        assert!(
            reply.body.contains("files.example/secret.img"),
            "{uri}: {}",
            reply.body
        );
        for secret in ["SECRET", "hunter2", "admin"] {
            assert!(
                !reply.body.contains(secret),
                "{uri} shows {secret}: {}",
                reply.body
            );
        }
    }

    let mut daemon = sample_daemon();
    daemon.images.push(secret_image());
    daemon.export_toml = closed.daemon().export_toml.clone();
    let mut options = options();
    options.public_read = true;
    let open = Harness::start_with(daemon, options).await;
    let bytes = open
        .send_raw(anonymous(&format!("/images/{SHA_LOCAL}/lab-bench.img")))
        .await;
    assert_eq!(bytes.status, 200);
    for uri in ["/images", "/catalog.toml"] {
        let reply = open.send_raw(anonymous(uri)).await;
        assert_eq!(reply.status, 200, "{uri}");
        assert!(
            reply.body.contains("https://files.example/secret.img"),
            "{uri}: {}",
            reply.body
        );
        for secret in ["SECRET", "hunter2", "admin", "v=2"] {
            assert!(
                !reply.body.contains(secret),
                "{uri} shows {secret}: {}",
                reply.body
            );
        }
    }
    // Nothing else opened up.
    for uri in [
        "/api/images",
        "/ui/images",
        "/metrics",
        "/catalog/downloads",
    ] {
        assert_ne!(open.send_raw(anonymous(uri)).await.status, 200, "{uri}");
    }
    let upload = Request::put("/images/x.img")
        .header("host", HOST)
        .header("origin", ORIGIN)
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(open.send_raw(upload).await.status, 401);
    assert!(open.daemon().uploads.is_empty());
}
