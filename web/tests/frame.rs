//! What every page's frame gives: one `<h1>`, a skip link to `<main>`, the
//! favicon (served without a login) and the version in the navbar.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;

/// The frame's promises, checked on one rendered page named `page`.
fn assert_frame(page: &str, html: &str) {
    assert_eq!(html.matches("<h1").count(), 1, "{page}: one <h1>\n{html}");
    assert!(html.contains("</h1>"), "{page}");
    // The first thing a keyboard reaches in the body is the skip link.
    let body = &html[html.find("<body").unwrap()..];
    let first_focusable = ["<a ", "<button", "<input", "<select", "<textarea"]
        .iter()
        .filter_map(|tag| body.find(tag))
        .min()
        .unwrap();
    assert!(
        body[first_focusable..]
            .starts_with(r##"<a class="bty-skip" href="#main">Skip to content</a>"##),
        "{page}: first focusable is {}",
        &body[first_focusable..first_focusable + 60]
    );
    // It points at exactly one element, the <main> around the content.
    assert_eq!(html.matches(r#"id="main""#).count(), 1, "{page}");
    assert!(html.contains(r#"<main id="main""#), "{page}");
    let main = html.find("<main").unwrap();
    assert!(
        html.find("<h1").unwrap() > main,
        "{page}: <h1> inside <main>"
    );
    assert!(
        html.contains(r#"<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">"#),
        "{page}"
    );
    let version = format!(">bty {}</span>", env!("CARGO_PKG_VERSION"));
    assert_eq!(html.matches(&version).count(), 1, "{page}: {version}");
}

fn anonymous(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", HOST)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn every_page_has_one_h1_a_skip_link_the_icon_and_the_version() {
    let mut daemon = sample_daemon();
    daemon.disks = vec![disk("/dev/sdb", true, &[])];
    let harness = Harness::start(daemon).await;
    for (page, h1) in [
        ("/ui/images", r#"<h1 class="bty-page-title">Images</h1>"#),
        (
            "/ui/downloads",
            r#"<h1 class="bty-page-title">Downloads</h1>"#,
        ),
        ("/ui/hashing", r#"<h1 class="bty-page-title">Hashing</h1>"#),
        ("/ui/flash", r#"<h1 class="bty-page-title">Flash</h1>"#),
        ("/ui/no-such-page", "<h1>404 Not Found</h1>"),
    ] {
        let reply = harness.get(page).await;
        assert!(reply.body.contains(h1), "{page}: {h1}");
        assert_frame(page, &reply.body);
    }
    let confirm = harness
        .send(
            Request::post("/ui/flash/confirm")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("image={SHA_LOCAL}&target=%2Fdev%2Fsdb")))
                .unwrap(),
        )
        .await;
    assert_eq!(confirm.status, 200, "{confirm:?}");
    assert!(confirm.body.contains("Erase and flash 1 disk?</h1>"));
    assert_frame("flash confirm", &confirm.body);
    let login = harness.send_raw(anonymous("/ui/login")).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("<h1>Log in to bty</h1>"));
    assert_frame("login", &login.body);
}

#[tokio::test]
async fn error_pages_keep_the_frame_when_the_daemon_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let router = router_without_daemon(&dir);
    let reply = send(&router, api_request("GET", "/ui/images")).await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("<h1>503 Service Unavailable</h1>"));
    assert_frame("503", &reply.body);
}

#[tokio::test]
async fn the_favicon_is_an_svg_anyone_may_fetch() {
    let harness = Harness::start(Daemon::default()).await;
    for uri in ["/static/favicon.svg", "/favicon.ico"] {
        let reply = harness.send_raw(anonymous(uri)).await;
        assert_eq!(reply.status, 200, "{uri}");
        assert_eq!(reply.header("content-type"), "image/svg+xml", "{uri}");
        assert!(reply.header("cache-control").contains("max-age"), "{uri}");
        assert!(reply.body.starts_with("<svg xmlns="), "{uri}");
        assert!(reply.body.trim_end().ends_with("</svg>"), "{uri}");
    }
}
