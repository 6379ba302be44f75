//! The HTML pages against a fake btyd: rows, gates, escaping, empty state,
//! activity, the hashing page and the static assets.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;

/// The `<tr …>…</tr>` of the row with this id.
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("data-row-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

/// Whether the button with `class` in `row` carries `disabled`, and its title.
fn button(row: &str, class: &str) -> (bool, String) {
    let start = row
        .find(class)
        .unwrap_or_else(|| panic!("no {class} in row"));
    let tag_start = row[..start].rfind("<button").unwrap();
    let tag_end = row[start..].find('>').unwrap() + start;
    let tag = &row[tag_start..tag_end];
    let title = tag
        .split("title=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (tag.contains(" disabled"), title)
}

const BUTTONS: [&str; 4] = [
    "bty-fetch-btn",
    "bty-update-btn",
    "bty-cache-delete-btn",
    "bty-catalog-entry-delete-btn",
];

#[tokio::test]
async fn images_page_renders_one_row_per_image() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/ui/images").await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert_eq!(reply.body.matches("<tr data-row-name").count(), 4);
    assert!(
        reply
            .body
            .contains(r#"<tr data-row-name="lab-bench.img" data-row-id="81d5e72"#)
    );
    for header in [
        "Name(s)",
        "Content SHA",
        "Format",
        "Sources",
        "Local copy",
        "Action",
    ] {
        assert!(
            reply.body.contains(&format!(">{header}</th>")),
            "missing column {header}"
        );
    }
    // Catalog forms in the header, no add-image controls on this page.
    assert!(
        reply
            .body
            .contains(r#"action="/ui/catalog/upload" enctype="multipart/form-data""#)
    );
    // The CSRF token never travels in a URL.
    assert!(
        !reply.body.contains("csrf="),
        "a URL carries the CSRF token"
    );
    assert!(
        reply
            .body
            .contains(r#"type="file" name="file" accept=".toml" required"#)
    );
    assert!(reply.body.contains(r#"action="/ui/catalog/fetch-release""#));
    assert!(reply.body.contains("releases/latest/download/catalog.toml"));
    assert!(!reply.body.contains(r#"id="image_url""#));
    // The intro names the image root and promises automatic hashing.
    assert!(
        reply
            .body
            .contains("<code>/var/lib/bty/images</code> are picked up")
    );
    assert!(reply.body.contains("hashed automatically"));
}

#[tokio::test]
async fn catalog_rows_render_four_buttons_disabled_by_gate() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    let expected = [
        (SHA_REMOTE.to_owned(), [false, true, true, true]),
        ("3".repeat(64), [true, false, false, true]),
    ];
    for (id, gates) in expected {
        let row = row(&html, &id);
        assert!(!row.contains("local file"), "{id}");
        for (class, enabled) in BUTTONS.iter().zip(gates) {
            let (disabled, title) = button(row, class);
            assert_eq!(disabled, !enabled, "{class} of {id}");
            assert!(!title.is_empty(), "{class} of {id} has no tooltip");
            assert!(row.contains(&format!(r#"data-id="{id}""#)));
        }
    }
    let (_, title) = button(row(&html, SHA_REMOTE), "bty-fetch-btn");
    assert!(title.contains("Already cached"), "{title}");
}

#[tokio::test]
async fn local_rows_show_a_label_instead_of_dead_buttons() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    // Both local files of the fixture have every gate shut.
    for id in [SHA_LOCAL.to_owned(), "4".repeat(64)] {
        let row = row(&html, &id);
        assert_eq!(
            row.matches(r#"<span class="bty-muted bty-local-label" title="Local file only: manage it in the image root">local file</span>"#)
                .count(),
            1,
            "{id}: {row}"
        );
        assert!(!row.contains("bty-btn-group"), "{id}: {row}");
        for class in BUTTONS {
            assert!(!row.contains(class), "{id}: {class} rendered");
        }
    }
    // The sha copy button is not an action: it stays.
    assert!(row(&html, SHA_LOCAL).contains("bty-sha-copy"));
    assert_eq!(html.matches(">local file</span>").count(), 2);
}

#[tokio::test]
async fn entry_delete_carries_the_first_remote_source() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    assert!(row(&html, SHA_REMOTE).contains(r#"data-src="https://example.com/debian.img.zst""#));
    assert!(
        row(&html, &"3".repeat(64))
            .contains(r#"data-src="oras://ghcr.io/safl/nosi/debian:latest""#)
    );
    // A local row has no entry delete, so no source to carry.
    assert!(!row(&html, SHA_LOCAL).contains("data-src="));
    // A local file shows only its local source: no phantom file:// source.
    assert!(!html.contains("file://"));
}

#[tokio::test]
async fn sha_cell_is_a_copy_button_or_an_unhashed_badge() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    let local = row(&html, SHA_LOCAL);
    assert!(local.contains(&format!(r#"class="bty-sha-copy" data-sha="{SHA_LOCAL}""#)));
    assert!(local.contains("<code>81d5e720</code>"));
    let unhashed = row(&html, &"4".repeat(64));
    assert!(unhashed.contains(">unhashed</span>"));
    assert!(unhashed.contains("hashing&hellip;"));
    assert!(unhashed.contains(r#"title="Format unknown">?</span>"#));
}

#[tokio::test]
async fn names_from_the_daemon_are_escaped() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("nosi &#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("nosi &lt;script&gt;")
    );
}

#[tokio::test]
async fn error_query_renders_an_inert_banner() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness
        .get("/ui/images?error=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E%20failed")
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains(r#"class="bty-alert bty-alert-danger" role="alert">"#)
    );
    assert!(!reply.body.contains("<script>alert"));
    assert!(
        reply.body.contains("alert(&#34;x&#34;)") || reply.body.contains("alert(&quot;x&quot;)")
    );
    let plain = harness.get("/ui/images").await;
    assert_eq!(plain.body.matches("role=\"alert\">").count(), 0);
}

#[tokio::test]
async fn empty_listing_names_extensions_and_image_root() {
    let harness = Harness::start(Daemon {
        store: sample_store(),
        ..Daemon::default()
    })
    .await;
    let html = harness.get("/ui/images").await.body;
    assert_eq!(html.matches("<tr data-row-name").count(), 0);
    assert!(html.contains(r#"<td colspan="6" class="bty-empty">No images yet."#));
    for ext in [
        ".qcow2", ".img", ".img.zst", ".img.xz", ".img.gz", ".img.bz2",
    ] {
        assert!(
            html.contains(&format!("<code>{ext}</code>")),
            "missing {ext}"
        );
    }
    assert!(html.contains("into <code>/var/lib/bty/images</code>"));
    assert!(html.contains("No activity yet."));
}

#[tokio::test]
async fn recent_activity_marks_failures() {
    let harness = Harness::start(sample_daemon()).await;
    let html = harness.get("/ui/images").await.body;
    assert!(html.contains("imported 2 entries from catalog.toml"));
    assert!(html.contains("2026-11-25 19:04:17"));
    assert!(html.contains(r#"<span class="bty-badge bty-badge-danger">hash.failed</span>"#));
    assert!(html.contains("hash of broken.img failed: read error"));
}

#[tokio::test]
async fn pages_answer_503_when_the_daemon_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let router = router_without_daemon(&dir);
    let reply = send(&router, api_request("GET", "/ui/images")).await;
    assert_eq!(reply.status, 503);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert!(reply.body.contains("btyd is not reachable"));
    assert!(!reply.body.contains("missing.sock"));
}

#[tokio::test]
async fn hashing_page_lists_jobs_with_progress() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/ui/hashing").await;
    assert_eq!(reply.status, 200);
    let html = reply.body;
    assert!(html.contains(r#"data-job-subject="new.img""#));
    assert!(html.contains(r#"<progress max="100" value="25" data-field="progress">"#));
    assert!(html.contains("25 B / 100 B"));
    assert!(
        html.contains(r#"data-name="new.img""#),
        "active job has a cancel button"
    );
    assert!(
        !html.contains(r#"data-name="old.img""#),
        "finished job has no cancel button"
    );
    assert!(
        html.find("new.img").unwrap() < html.find("old.img").unwrap(),
        "active first"
    );
    assert!(html.contains("(1 at a time)"));
    assert!(html.contains("hash of broken.img failed"));
    assert!(!html.contains("catalog.imported"), "hashing activity only");
    assert!(html.contains(r#"href="/ui/hashing" class="active""#));
}

#[tokio::test]
async fn static_assets_are_embedded() {
    let harness = Harness::start(Daemon::default()).await;
    let css = harness.get("/static/bty.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    let js = harness.get("/static/bty.js").await;
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(js.body.contains("execCommand(\"copy\")"));
    assert!(js.body.contains("1200"));
    let root = harness.get("/").await;
    assert_eq!(root.status, 303);
    assert_eq!(root.header("location"), "/ui/images");
}
