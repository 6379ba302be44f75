//! Login, sessions, bearer tokens, the login limiter and CSRF checks
//! against a fake btyd. Each test plays a client without (or with a
//! wrong) credential and checks the fake daemon was asked nothing.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;

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
async fn state_changes_need_a_matching_origin_and_a_session() {
    let harness = Harness::start(sample_daemon()).await;
    let session = [
        ("cookie", harness.cookie.as_str()),
        ("x-csrf-token", harness.csrf.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, &str)> = session.to_vec();
        all.extend_from_slice(extra);
        fetch_request(&all)
    };
    let missing = harness.send_raw(with(&[])).await;
    assert_eq!(missing.status, 403, "{missing:?}");
    assert!(
        missing.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Origin")
    );
    let foreign = harness
        .send_raw(with(&[("origin", "http://evil.example")]))
        .await;
    assert_eq!(foreign.status, 403);
    let userinfo = harness
        .send_raw(with(&[("origin", "http://bty.test:8080@evil.example")]))
        .await;
    assert_eq!(userinfo.status, 403);
    let referer = harness
        .send_raw(with(&[("referer", "http://bty.test:8080/ui/images")]))
        .await;
    assert_eq!(referer.status, 202);
    let ok = harness.send_raw(with(&[("origin", ORIGIN)])).await;
    assert_eq!(ok.status, 202);
    // Without the session, a same-origin request is still refused.
    let anonymous = harness.send_raw(fetch_request(&[("origin", ORIGIN)])).await;
    assert_eq!(anonymous.status, 401);
    // Forms of the pages are checked the same way, with an HTML answer.
    let form = Request::post("/ui/catalog/fetch-release")
        .header("host", HOST)
        .header("origin", "http://evil.example")
        .header("cookie", &harness.cookie)
        .header("x-csrf-token", &harness.csrf)
        .body(Body::empty())
        .unwrap();
    let reply = harness.send_raw(form).await;
    assert_eq!(reply.status, 403);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert_eq!(harness.daemon().fetch_latest_calls, 0);
    assert_eq!(harness.daemon().fetched.len(), 2);
}

#[tokio::test]
async fn without_a_credential_pages_redirect_and_everything_else_says_401() {
    let harness = Harness::start(sample_daemon()).await;
    let anonymous = |uri: &str| {
        Request::get(uri)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap()
    };
    let page = harness.send_raw(anonymous("/ui/images?q=x")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        "/ui/login?next=%2Fui%2Fimages%3Fq%3Dx"
    );
    assert_eq!(harness.send_raw(anonymous("/ui/flash")).await.status, 303);
    assert!(
        harness.daemon().list_queries.is_empty(),
        "a page was rendered"
    );
    for uri in [
        "/catalog/downloads",
        "/events/workers",
        "/images",
        &format!("/images/{SHA_LOCAL}"),
        "/catalog.toml",
        "/api/images",
        "/metrics",
    ] {
        let reply = harness.send_raw(anonymous(uri)).await;
        assert_eq!(reply.status, 401, "{uri}: {reply:?}");
        assert_eq!(reply.json()["detail"], "login required");
    }
    let upload = Request::put("/images/x.img")
        .header("host", HOST)
        .header("origin", ORIGIN)
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(harness.send_raw(upload).await.status, 401);
    assert!(harness.daemon().uploads.is_empty());
    assert!(harness.daemon().export_base_urls.is_empty());
    // Only the probe, the login and the assets answer.
    assert_eq!(harness.send_raw(anonymous("/healthz")).await.status, 200);
    assert_eq!(
        harness.send_raw(anonymous("/static/bty.js")).await.status,
        200
    );
    let login = harness
        .send_raw(anonymous("/ui/login?next=%2Fui%2Fflash"))
        .await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("value=\"/ui/flash\""));
}

fn login(password: &str, next: &str) -> Request<Body> {
    Request::post("/ui/login")
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("password={password}&next={next}")))
        .unwrap()
}

#[tokio::test]
async fn password_and_token_logins_set_a_strict_http_only_cookie() {
    let harness = Harness::start(sample_daemon()).await;
    let wrong = harness.send_raw(login("hunter3", "%2Fui%2Fflash")).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong password"));
    assert!(wrong.header("set-cookie").is_empty());
    let reply = harness.send_raw(login(PASSWORD, "%2Fui%2Fflash")).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/ui/flash");
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with("bty_session="), "{cookie}");
    assert_eq!(session_cookie(&reply).len(), "bty_session=".len() + 64);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // The token works as a password too; a cross-site login does not.
    assert_eq!(harness.send_raw(login(TOKEN, "")).await.status, 303);
    let forged = Request::post("/ui/login")
        .header("host", HOST)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("password={PASSWORD}")))
        .unwrap();
    assert_eq!(harness.send_raw(forged).await.status, 403);
}

#[tokio::test]
async fn tls_listeners_set_secure_cookies() {
    let mut options = options();
    options.tls = true;
    let harness = Harness::start_with(sample_daemon(), options).await;
    let reply = harness.send_raw(login(PASSWORD, "")).await;
    assert!(reply.header("set-cookie").contains("; Secure"), "{reply:?}");
    // A forwarded-proto header from a client changes nothing on plain HTTP.
    let plain = Harness::start(sample_daemon()).await;
    let mut request = login(PASSWORD, "");
    request
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    assert!(
        !plain
            .send_raw(request)
            .await
            .header("set-cookie")
            .contains("Secure")
    );
}

#[tokio::test]
async fn the_start_up_url_logs_in_and_drops_the_token_from_the_address_bar() {
    let harness = Harness::start(sample_daemon()).await;
    let get = |uri: String| {
        Request::get(uri)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap()
    };
    let reply = harness.send_raw(get(format!("/login?token={TOKEN}"))).await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), "/ui/images");
    assert_eq!(reply.header("cache-control"), "no-store");
    let cookie = session_cookie(&reply);
    let page = harness
        .send_raw(
            Request::get("/ui/images")
                .header("host", HOST)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Log out"));
    let wrong = harness.send_raw(get("/login?token=guess".to_owned())).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_empty());
    let bare = harness.send_raw(get("/login".to_owned())).await;
    assert_eq!(bare.status, 303);
    assert!(bare.header("location").starts_with("/ui/login"));
}

#[tokio::test]
async fn logins_never_redirect_off_site() {
    let harness = Harness::start(sample_daemon()).await;
    for next in [
        "%2F%09%2Fevil.example",
        "/%09/evil.example",
        "%2F%5Cevil.example",
        "%2F%2Fevil.example",
        "%2F%252f%252fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2Fui%2F..%2F..%2F%2Fevil.example",
        "%2Fui%2F%0d%0aSet-Cookie%3A%20x%3Dy",
    ] {
        let reply = harness.send_raw(login(PASSWORD, next)).await;
        assert_eq!(reply.status, 303, "{next}");
        assert_eq!(reply.header("location"), "/ui/images", "{next}");
        let url = format!("/login?token={TOKEN}&next={next}");
        let request = Request::get(url)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap();
        let reply = harness.send_raw(request).await;
        assert_eq!(reply.header("location"), "/ui/images", "{next}");
    }
}

#[tokio::test]
async fn failed_logins_are_limited_per_client() {
    let harness = Harness::start(sample_daemon()).await;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(harness.send_raw(login("guess", "")).await.status.as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    // Each failure is slowed down too.
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    // Now even the right password is not checked, and bearers wait as well.
    let limited = harness.send_raw(login(PASSWORD, "")).await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(limited.header("set-cookie").is_empty());
    let bearer = harness
        .send_raw(fetch_request(&[(
            "authorization",
            &format!("Bearer {TOKEN}"),
        )]))
        .await;
    assert_eq!(bearer.status, 429);
    assert!(harness.daemon().fetched.is_empty());
    // A browser already logged in is not locked out.
    assert_eq!(harness.get("/ui/images").await.status, 200);
}

#[tokio::test]
async fn sessions_must_echo_their_csrf_token_in_a_header_or_form_field() {
    let harness = Harness::start(sample_daemon()).await;
    let (cookie, token) = log_in(&harness.router, PASSWORD).await;
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
    assert_eq!(csrf_of(&page.body), token);
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
    let foreign = harness
        .send_raw(fetch_request(&[
            ("origin", "http://evil.example"),
            ("cookie", &cookie),
            ("x-csrf-token", &token),
        ]))
        .await;
    assert_eq!(foreign.status, 403);

    // Forms carry the token as a field, never in the URL.
    let form = |uri: String, body: String| {
        Request::post(uri)
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let url = "url=https%3A%2F%2Fexample.com%2Fa.img";
    let add = "/ui/downloads/add".to_owned();
    assert_eq!(
        harness
            .send_raw(form(add.clone(), url.to_owned()))
            .await
            .status,
        403
    );
    let in_query = form(format!("{add}?csrf={token}"), url.to_owned());
    assert_eq!(
        harness.send_raw(in_query).await.status,
        403,
        "query token accepted"
    );
    assert!(harness.daemon().added.is_empty());
    let reply = harness
        .send_raw(form(add, format!("csrf={token}&{url}")))
        .await;
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

fn multipart_upload(cookie: &str, csrf: Option<&str>, query: &str) -> Request<Body> {
    let mut body = String::new();
    if let Some(csrf) = csrf {
        body.push_str(&format!(
            "--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
        ));
    }
    body.push_str(
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.toml\"\r\n\r\nversion = 1\n\r\n--b--\r\n",
    );
    Request::post(format!("/ui/catalog/upload{query}"))
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("cookie", cookie)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_catalog_upload_form_carries_its_token_in_the_body() {
    let harness = Harness::start(sample_daemon()).await;
    let missing = harness
        .send_raw(multipart_upload(&harness.cookie, None, ""))
        .await;
    assert_eq!(missing.status, 403);
    let query = format!("?csrf={}", harness.csrf);
    let in_url = harness
        .send_raw(multipart_upload(&harness.cookie, None, &query))
        .await;
    assert_eq!(in_url.status, 403, "query token accepted");
    assert!(harness.daemon().imports.is_empty());
    let ok = harness
        .send_raw(multipart_upload(&harness.cookie, Some(&harness.csrf), ""))
        .await;
    assert_eq!(ok.status, 303, "{ok:?}");
    assert_eq!(ok.header("location"), "/ui/images");
    assert_eq!(harness.daemon().imports.len(), 1);
}

#[tokio::test]
async fn bearer_tokens_work_for_api_clients() {
    let harness = Harness::start(sample_daemon()).await;
    let bearer = format!("Bearer {TOKEN}");
    let list = harness
        .send_raw(
            Request::get("/catalog/downloads")
                .header("host", HOST)
                .header("authorization", &bearer)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(list.status, 200);
    // No browser sends a bearer token by itself: no Origin needed.
    let start = harness
        .send_raw(fetch_request(&[("authorization", &bearer)]))
        .await;
    assert_eq!(start.status, 202);
    let wrong = harness
        .send_raw(fetch_request(&[("authorization", "Bearer hunter2")]))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(harness.daemon().fetched.len(), 1);
    let upload = harness
        .send_raw(
            Request::put("/images/api.img")
                .header("host", HOST)
                .header("authorization", format!("bearer {TOKEN}"))
                .header("content-length", "3")
                .body(Body::from("abc"))
                .unwrap(),
        )
        .await;
    assert_eq!(upload.status, 200, "{upload:?}");
}
