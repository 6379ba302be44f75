//! The download routes, the images page's paging and search, the jobs and
//! flash pages, and the SSE stream, against a fake btyd.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use bty_proto::v1::*;
use serde_json::json;
use support::*;

fn json_request(method: &str, uri: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn download_job(id: &str, subject: &str, state: JobState) -> Job {
    Job {
        id: id.to_owned(),
        kind: JobKind::Download as i32,
        subject: subject.to_owned(),
        state: state as i32,
        bytes_done: 1 << 20,
        bytes_total: Some(4 << 20),
        rate_bps: 1 << 20,
        created_at_ms: 1_795_633_457_000,
        ..Job::default()
    }
}

#[tokio::test]
async fn fetch_and_update_by_row_id() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(json_request(
            "POST",
            "/catalog/downloads",
            json!({"id": "abc"}),
        ))
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    let job = reply.json();
    assert_eq!(job["id"], "d1");
    assert_eq!(job["kind"], "download");
    assert_eq!(job["state"], "queued");
    let reply = harness
        .send(json_request(
            "POST",
            "/catalog/downloads",
            json!({"name": "debian", "update": true}),
        ))
        .await;
    assert_eq!(reply.status, 202);
    let fetched = harness.daemon().fetched.clone();
    assert_eq!(fetched[0].id, "abc");
    assert!(!fetched[0].update);
    assert_eq!(fetched[1].id, "debian");
    assert!(fetched[1].update);
    for body in [
        json!({}),
        json!({"id": "  "}),
        json!({"id": "a", "extra": 1}),
    ] {
        let reply = harness
            .send(json_request("POST", "/catalog/downloads", body))
            .await;
        assert_eq!(reply.status, 422);
    }
}

#[tokio::test]
async fn lists_and_cancels_downloads() {
    let mut daemon = sample_daemon();
    daemon
        .jobs
        .push(download_job("d7", "debian.img.zst", JobState::Running));
    let harness = Harness::start(daemon).await;
    let list = harness.get("/catalog/downloads").await.json();
    assert_eq!(list["image_root"], "/var/lib/bty/images");
    assert_eq!(list["max_parallel"], 2);
    assert_eq!(list["downloads"][0]["name"], "debian.img.zst");
    assert_eq!(list["downloads"][0]["status"], "running");
    let reply = harness
        .send(
            Request::delete("/catalog/downloads/debian.img.zst")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["state"], "cancelled");
    let reply = harness
        .send(
            Request::delete("/catalog/downloads/nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 404);
    let reply = harness
        .send(Request::delete("/api/jobs/h1").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(harness.daemon().cancelled, ["d7", "h1"]);
}

#[tokio::test]
async fn deletes_cached_bytes_by_row_id() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .send(
            Request::delete(format!("/catalog/cache/{SHA_REMOTE}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["deleted"], true);
    assert_eq!(body["disk_image_sha"], SHA_REMOTE);
    assert_eq!(body["id"], SHA_REMOTE);
    let reply = harness
        .send(
            Request::delete("/catalog/cache/missing")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 404);
}

fn many_images(n: usize) -> Vec<Image> {
    (0..n)
        .map(|i| Image {
            id: format!("{i:064}"),
            names: vec![format!("image-{i:05}.img")],
            r#ref: format!("{i:064}"),
            cached: true,
            actions: actions(false, false, false, false),
            ..Image::default()
        })
        .collect()
}

#[tokio::test]
async fn images_page_pages_and_searches_server_side() {
    let harness = Harness::start(Daemon {
        images: many_images(10_000),
        ..sample_daemon()
    })
    .await;
    let page = harness.get("/ui/images?page=3").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<tr data-row-name=").count(), 100);
    assert!(page.body.contains("image-00200.img"));
    assert!(!page.body.contains("image-00300.img"));
    assert!(page.body.contains("rows 201&ndash;300 of 10000"));
    assert!(page.body.contains("href=\"/ui/images?page=100\""));
    let page = harness.get("/ui/images?q=IMAGE-01&per_page=20").await;
    assert_eq!(page.body.matches("<tr data-row-name=").count(), 20);
    assert!(
        page.body.contains("rows 1&ndash;20 of 1000"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("href=\"/ui/images?page=2&amp;q=IMAGE-01&amp;per_page=20\"")
            || page
                .body
                .contains("href=\"/ui/images?page=2&#38;q=IMAGE-01&#38;per_page=20\"")
    );
    let page = harness.get("/ui/images?q=deb%20ian").await;
    assert!(page.body.contains("No image matches"));
    assert_eq!(
        harness.daemon().list_queries.last().map(String::as_str),
        Some("deb ian")
    );
}

#[tokio::test]
async fn row_fragment_finds_a_row_by_id_or_ref() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .get(&format!("/ui/images/row/{}", "2".repeat(64)))
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.trim_start().starts_with("<tr"));
    assert!(
        reply
            .body
            .contains(&format!("data-row-id=\"{SHA_REMOTE}\""))
    );
    let reply = harness.get("/ui/images/row/nope?q=x").await;
    assert_eq!(reply.status, 404);
    let rows = harness
        .get(&format!("/api/images?id={SHA_LOCAL}"))
        .await
        .json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn downloads_page_shows_jobs_forms_and_fragment() {
    let mut daemon = sample_daemon();
    daemon
        .jobs
        .push(download_job("d7", "debian.img.zst", JobState::Running));
    let mut done = download_job("d6", "old <b>.img", JobState::Failed);
    done.error = Some("HTTP 404".to_owned());
    done.finished_at_ms = Some(1_795_633_500_000);
    daemon.jobs.push(done);
    let harness = Harness::start(daemon).await;
    let page = harness.get("/ui/downloads").await;
    assert_eq!(page.status, 200);
    let html = &page.body;
    assert!(html.contains("data-job-id=\"d7\""));
    assert!(html.contains("1.0 MiB/s"));
    assert!(html.contains("ETA <span data-field=\"eta\">3s</span>"));
    assert!(html.contains("bty-job-cancel-btn"));
    assert!(html.contains("id=\"upload-file\""));
    assert!(html.contains("action=\"/ui/downloads/add\""));
    assert!(html.contains("Checksum file URL (SHA256SUMS)"));
    assert!(html.contains("name=\"sha_url\""));
    assert!(html.contains("old &#60;b&#62;.img") || html.contains("old &lt;b&gt;.img"));
    assert!(html.contains("HTTP 404"));
    let fragment = harness.get("/ui/downloads/jobs").await;
    assert!(fragment.body.starts_with("<div id=\"download-jobs-wrap\""));
}

#[tokio::test]
async fn add_form_adds_an_entry_then_offers_fetch() {
    let harness = Harness::start(sample_daemon()).await;
    let request = Request::post("/ui/downloads/add")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "csrf=&url=https%3A%2F%2Fexample.com%2Fd.img.zst&name=&sha256=",
        ))
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 303);
    let location = reply.header("location").to_owned();
    assert!(location.starts_with("/ui/downloads?added="), "{location}");
    assert_eq!(
        harness.daemon().added[0].url,
        "https://example.com/d.img.zst"
    );
    // An empty checksum file field means none.
    assert_eq!(harness.daemon().added[0].sha_url, None);
    let page = harness.get(&location).await;
    assert!(page.body.contains("id=\"added-entry\""));
    assert!(
        page.body
            .contains(&format!("data-id=\"{}\"", "ab".repeat(32)))
    );
    let request = Request::post("/ui/downloads/add")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("url=file%3A%2F%2F%2Fetc%2Fpasswd"))
        .unwrap();
    let reply = harness.send(request).await;
    assert!(reply.header("location").starts_with("/ui/downloads?error="));
}

#[tokio::test]
async fn add_form_sends_the_checksum_file_url() {
    let harness = Harness::start(sample_daemon()).await;
    let request = Request::post("/ui/downloads/add")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "csrf=&url=https%3A%2F%2Fexample.com%2Fd.img.zst&name=&sha256=&sha_url=+https%3A%2F%2Fexample.com%2FSHA256SUMS+",
        ))
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 303);
    assert!(reply.header("location").starts_with("/ui/downloads?added="));
    assert_eq!(
        harness.daemon().added[0].sha_url.as_deref(),
        Some("https://example.com/SHA256SUMS")
    );
}

#[tokio::test]
async fn flash_flow_confirms_identities_and_starts() {
    let mut daemon = sample_daemon();
    daemon.disks = vec![
        disk("/dev/sdb", true, &[]),
        disk("/dev/nvme0n1", false, &["holds the running system (/)"]),
    ];
    let harness = Harness::start(daemon).await;
    let page = harness.get("/ui/flash").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("holds the running system (/)"));
    assert!(
        page.body
            .contains(&format!("<option value=\"{SHA_LOCAL}\">"))
    );
    assert!(
        page.body
            .contains(r#"<input type="checkbox" name="incremental" value="1">"#)
    );
    let form = |body: &str| {
        Request::post("/ui/flash/confirm")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let confirm = harness
        .send(form(&format!(
            "image={SHA_LOCAL}&target=%2Fdev%2Fsdb&verify=1&incremental=1"
        )))
        .await;
    assert_eq!(confirm.status, 200, "{confirm:?}");
    // The choice travels through the confirmation form.
    assert!(
        confirm
            .body
            .contains(r#"<input type="hidden" name="incremental" value="1">"#)
    );
    assert!(confirm.body.contains("writing only what differs"));
    assert!(confirm.body.contains("SanDisk Ultra Fit"));
    assert!(confirm.body.contains("4C530001"));
    assert!(confirm.body.contains("34359738368 bytes"));
    let refused = harness
        .send(form(&format!("image={SHA_LOCAL}&target=%2Fdev%2Fnvme0n1")))
        .await;
    assert_eq!(refused.status, 303);
    assert!(refused.header("location").starts_with("/ui/flash?error="));
    let start = Request::post("/ui/flash/start")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "image={SHA_LOCAL}&verify=1&incremental=1&t0_path=%2Fdev%2Fsdb&t0_size=34359738368&t0_serial=4C530001&t0_model=Ultra+Fit&t0_diskseq=42&confirm=yes"
        )))
        .unwrap();
    let reply = harness.send(start).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/ui/flash");
    let flashes = harness.daemon().flashes.clone();
    assert_eq!(flashes.len(), 1);
    assert_eq!(flashes[0].image, SHA_LOCAL);
    assert!(!flashes[0].no_verify);
    assert!(flashes[0].incremental);
    assert_eq!(
        flashes[0].targets,
        [FlashTarget {
            path: "/dev/sdb".to_owned(),
            confirmed_size_bytes: 34_359_738_368,
            confirmed_serial: Some("4C530001".to_owned()),
            confirmed_model: Some("Ultra Fit".to_owned()),
            confirmed_diskseq: Some(42),
        }]
    );
}

#[tokio::test]
async fn event_stream_sends_snapshot_and_live_events() {
    let mut daemon = sample_daemon();
    daemon.live_events = vec![Event {
        seq: 9,
        at_ms: 1,
        body: Some(event::Body::Catalog(CatalogChanged {
            kind: CatalogEventKind::ImageHashed as i32,
            subject: "new.img".to_owned(),
            summary: "hashed".to_owned(),
            failed: false,
        })),
    }];
    let harness = Harness::start(daemon).await;
    let response = tower::ServiceExt::oneshot(
        harness.router.clone(),
        Request::get("/events/workers")
            .header("host", HOST)
            .header("cookie", &harness.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !text.contains("event: catalog") {
        let chunk = tokio::time::timeout_at(deadline, tokio_stream::StreamExt::next(&mut body))
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The running hash job h1 comes first, as a snapshot.
    assert!(text.contains("event: job"), "{text}");
    assert!(text.contains("\"id\":\"h1\""), "{text}");
    assert!(text.contains("\"kind\":\"hash\""), "{text}");
    assert!(text.contains("\"subject\":\"new.img\""), "{text}");
}

#[tokio::test]
async fn a_refused_add_form_comes_back_filled_in_with_the_message_beside_the_field() {
    let harness = Harness::start(sample_daemon()).await;
    let request = Request::post("/ui/downloads/add")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "csrf=&url=ftp%3A%2F%2Fuser%3Asecret%40example.com%2Fd.img%3Ftoken%3Dabc123&name=my+disk&sha256=&sha_url=https%3A%2F%2Fexample.com%2FSUMS",
        ))
        .unwrap();
    let reply = harness.send(request).await;
    assert_eq!(reply.status, 303);
    let location = reply.header("location").to_owned();
    assert!(location.starts_with("/ui/downloads?error="), "{location}");
    assert!(
        !location.contains("secret") && !location.contains("abc123"),
        "credentials went into the query string: {location}"
    );
    assert!(harness.daemon().added.is_empty());
    let page = harness.get(&location).await;
    assert_eq!(page.status, 200);
    let html = &page.body;
    // What was typed is back (minus the credentials)...
    assert!(
        html.contains("value=\"ftp://example.com/d.img?token=REDACTED\""),
        "{html}"
    );
    assert!(html.contains("value=\"my disk\""), "{html}");
    assert!(
        html.contains("value=\"https://example.com/SUMS\""),
        "{html}"
    );
    // ...and the message sits under the URL field, not in the banner.
    assert!(
        html.contains("aria-describedby=\"image_url-error\""),
        "{html}"
    );
    let beside = html
        .split("id=\"image_url-error\" role=\"alert\">")
        .nth(1)
        .expect("the message beside the URL field");
    assert!(
        beside.starts_with("&#34;ftp://example.com/d.img"),
        "{beside}"
    );
    assert!(!html.contains("class=\"bty-alert bty-alert-danger\" role=\"alert\">"));
    assert!(!html.contains("aria-invalid=\"true\" aria-describedby=\"image_name-error\""));

    // A message naming no field of the form stays in the banner.
    let page = harness
        .get("/ui/downloads?error=btyd%20is%20away&field=csrf")
        .await;
    assert!(
        page.body
            .contains("class=\"bty-alert bty-alert-danger\" role=\"alert\">btyd is away")
    );
    assert!(!page.body.contains("bty-field-error"));
}

#[tokio::test]
async fn a_signed_row_shows_a_badge_with_the_fingerprint_and_unsigned_rows_none() {
    let fingerprint = "ADD1AD1BAE0927E9B1A06C4FDACEC81FC5C6DE6F";
    let mut images = many_images(2);
    images[0].signed_by = Some(fingerprint.to_owned());
    let harness = Harness::start(Daemon {
        images,
        ..sample_daemon()
    })
    .await;
    let page = harness.get("/ui/images").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("bty-signed").count(), 1, "{}", page.body);
    let badge_at = page.body.find("bty-signed").unwrap();
    let row_at = page.body[..badge_at].rfind("<tr").unwrap();
    assert!(page.body[row_at..badge_at].contains("image-00000.img"));
    assert!(
        page.body[badge_at..].contains(&format!("key {fingerprint}\">signed</span>")),
        "{}",
        &page.body[badge_at..badge_at + 200]
    );
    // The JSON rows say it too, only where it is known.
    let rows = harness.get("/api/images").await.json();
    assert_eq!(rows[0]["signed_by"], fingerprint, "{rows}");
    assert!(rows[1].get("signed_by").is_none(), "{rows}");
}
