//! Login, sessions, bearer tokens and CSRF checks against a fake btyd.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;

const HOST: &str = "bty.test:8080";
const ORIGIN: &str = "http://bty.test:8080";

fn fetch_request(extra: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::post("/catalog/downloads")
        .header("host", HOST)
        .header("content-type", "application/json");
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::from(r#"{"id":"abc"}"#)).unwrap()
}

#[tokio::test]
async fn state_changes_need_a_matching_origin_even_without_login() {
    let harness = Harness::start(sample_daemon()).await;
    let missing = harness.send_raw(fetch_request(&[])).await;
    assert_eq!(missing.status, 403, "{missing:?}");
    assert!(
        missing.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Origin")
    );
    let foreign = harness
        .send_raw(fetch_request(&[("origin", "http://evil.example")]))
        .await;
    assert_eq!(foreign.status, 403);
    let userinfo = harness
        .send_raw(fetch_request(&[(
            "origin",
            "http://bty.test:8080@evil.example",
        )]))
        .await;
    assert_eq!(userinfo.status, 403);
    let referer = harness
        .send_raw(fetch_request(&[(
            "referer",
            "http://bty.test:8080/ui/images",
        )]))
        .await;
    assert_eq!(referer.status, 202);
    let ok = harness.send_raw(fetch_request(&[("origin", ORIGIN)])).await;
    assert_eq!(ok.status, 202);
    // Forms of the pages are checked the same way, with an HTML answer.
    let form = Request::post("/ui/catalog/fetch-release")
        .header("host", HOST)
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    let reply = harness.send_raw(form).await;
    assert_eq!(reply.status, 403);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert_eq!(harness.daemon().fetch_latest_calls, 0);
    // Reading needs no Origin.
    assert_eq!(harness.get("/ui/images").await.status, 200);
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_api_says_401() {
    let harness = Harness::start_with_login(sample_daemon()).await;
    let page = harness.get("/ui/images?q=x").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        "/ui/login?next=%2Fui%2Fimages%3Fq%3Dx"
    );
    let api = harness.get("/catalog/downloads").await;
    assert_eq!(api.status, 401);
    assert_eq!(api.json()["detail"], "login required");
    let events = harness.get("/events/workers").await;
    assert_eq!(events.status, 401);
    let upload = harness
        .send(Request::put("/images/x.img").body(Body::from("x")).unwrap())
        .await;
    assert_eq!(upload.status, 401);
    assert!(harness.daemon().uploads.is_empty());
    // What other machines fetch stays open, as upstream.
    assert_eq!(
        harness.get(&format!("/images/{SHA_LOCAL}")).await.status,
        200
    );
    assert_eq!(harness.get("/images").await.status, 200);
    assert_eq!(harness.get("/healthz").await.status, 200);
    assert_eq!(harness.get("/static/bty.js").await.status, 200);
    let login = harness.get("/ui/login?next=%2Fui%2Fflash").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("value=\"/ui/flash\""));
}

fn login(password: &str, proto: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/ui/login")
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(proto) = proto {
        builder = builder.header("x-forwarded-proto", proto);
    }
    builder
        .body(Body::from(format!(
            "password={password}&next=%2Fui%2Fflash"
        )))
        .unwrap()
}

/// `bty_session=<value>` of a Set-Cookie header.
fn session_cookie(reply: &Reply) -> String {
    let cookie = reply.header("set-cookie");
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie() {
    let harness = Harness::start_with_login(sample_daemon()).await;
    let wrong = harness.send_raw(login("hunter3", None)).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong password"));
    assert!(wrong.header("set-cookie").is_empty());
    let reply = harness.send_raw(login("hunter2", None)).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/ui/flash");
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with("bty_session="), "{cookie}");
    let value = session_cookie(&reply);
    assert_eq!(value.len(), "bty_session=".len() + 64);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let tls = harness.send_raw(login("hunter2", Some("https"))).await;
    assert!(tls.header("set-cookie").contains("; Secure"));
    // The token works as a password too; a cross-site login does not.
    assert_eq!(harness.send_raw(login("t0ken", None)).await.status, 303);
    let forged = Request::post("/ui/login")
        .header("host", HOST)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("password=hunter2"))
        .unwrap();
    assert_eq!(harness.send_raw(forged).await.status, 403);
}

/// The CSRF token a page embeds for its scripts.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf-token\" content=\"").unwrap() + 27;
    page[start..start + 64].to_owned()
}

#[tokio::test]
async fn sessions_must_echo_their_csrf_token() {
    let harness = Harness::start_with_login(sample_daemon()).await;
    let cookie = session_cookie(&harness.send_raw(login("hunter2", None)).await);
    let page = harness
        .send_raw(
            Request::get("/ui/downloads")
                .header("host", HOST)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Log out"));
    let token = csrf_of(&page.body);
    assert!(
        page.body
            .contains(&format!("name=\"csrf\" value=\"{token}\""))
    );

    let no_token = harness
        .send_raw(fetch_request(&[("origin", ORIGIN), ("cookie", &cookie)]))
        .await;
    assert_eq!(no_token.status, 403);
    let wrong = harness
        .send_raw(fetch_request(&[
            ("origin", ORIGIN),
            ("cookie", &cookie),
            ("x-csrf-token", &"0".repeat(64)),
        ]))
        .await;
    assert_eq!(wrong.status, 403);
    let ok = harness
        .send_raw(fetch_request(&[
            ("origin", ORIGIN),
            ("cookie", &cookie),
            ("x-csrf-token", &token),
        ]))
        .await;
    assert_eq!(ok.status, 202);
    // A token without the right Origin is still refused.
    let foreign = harness
        .send_raw(fetch_request(&[
            ("origin", "http://evil.example"),
            ("cookie", &cookie),
            ("x-csrf-token", &token),
        ]))
        .await;
    assert_eq!(foreign.status, 403);

    // Forms carry the token as a field.
    let form = |body: String| {
        Request::post("/ui/downloads/add")
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let url = "url=https%3A%2F%2Fexample.com%2Fa.img";
    assert_eq!(harness.send_raw(form(url.to_owned())).await.status, 403);
    let reply = harness.send_raw(form(format!("csrf={token}&{url}"))).await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(harness.daemon().added.len(), 1);

    // Logging out ends the session.
    let logout = harness
        .send_raw(
            Request::post("/ui/logout")
                .header("host", HOST)
                .header("origin", ORIGIN)
                .header("cookie", &cookie)
                .header("x-csrf-token", &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(logout.status, 303);
    assert!(logout.header("set-cookie").contains("Max-Age=0"));
    let after = harness
        .send_raw(
            Request::get("/ui/images")
                .header("host", HOST)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(after.status, 303);
}

#[tokio::test]
async fn bearer_tokens_work_for_api_clients() {
    let harness = Harness::start_with_login(sample_daemon()).await;
    let list = harness
        .send_raw(
            Request::get("/catalog/downloads")
                .header("host", HOST)
                .header("authorization", "Bearer t0ken")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(list.status, 200);
    // No browser sends a bearer token by itself: no Origin needed.
    let start = harness
        .send_raw(fetch_request(&[("authorization", "Bearer t0ken")]))
        .await;
    assert_eq!(start.status, 202);
    let wrong = harness
        .send_raw(fetch_request(&[("authorization", "Bearer hunter2")]))
        .await;
    assert_eq!(wrong.status, 401);
    let upload = harness
        .send_raw(
            Request::put("/images/api.img")
                .header("host", HOST)
                .header("authorization", "bearer t0ken")
                .header("content-length", "3")
                .body(Body::from("abc"))
                .unwrap(),
        )
        .await;
    assert_eq!(upload.status, 200, "{upload:?}");
}
