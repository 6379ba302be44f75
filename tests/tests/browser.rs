//! The web pages in a real headless Chromium against a real btyd: catalog
//! upload, a live Fetch without reloading, uploads with hashing, cancelling
//! a slow download, copying a sha, flashing a loop device; screenshots of
//! every page go to `target/artifacts/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::web::axe;
use bty_e2e::web::webdriver::{Browser, browser_available, screenshot_dir};
use bty_e2e::{Daemon, drop_file, noise, sha256sum, wait_for};
use bty_test_caps::require_loop_devices;
use serde_json::{Value, json};
use std::time::Duration;

const LIVE: Duration = Duration::from_secs(60);

fn catalog(origin: &Origin) -> String {
    format!(
        "version = 1\n\n[[images]]\nname = \"fast.img\"\nsrc = \"{}\"\nformat = \"img\"\n\n\
         [[images]]\nname = \"slow.img\"\nsrc = \"{}\"\nformat = \"img\"\n",
        origin.url("/fast.img"),
        origin.url("/slow.img")
    )
}

/// Chromium is there (or the run opted out with `BTY_SKIP_BROWSER=1`), and
/// loop devices can be made: a missing one fails the test, named.
fn can_flash_in_a_browser() -> bool {
    require_loop_devices();
    browser_available()
}

/// On the flash page: tick `target`, choose the image whose label starts
/// with `image`, review, confirm and start; wait until the page shows the
/// target verified (its state) or failed. Screenshots `<shots>-*.png`.
fn flash_on_page(
    browser: &Browser,
    base: &str,
    target: &LoopDevice,
    image: &str,
    shots: &str,
) -> Value {
    browser.goto(&format!("{base}/ui/flash"));
    let row = format!("tr[data-disk='{}']", target.dev());
    browser.find(&row);
    let writable = browser.execute(
        &format!(
            "var c = document.querySelector(\"{row} input[name=target]\"); return c && !c.disabled;"
        ),
        json!([]),
    );
    if writable != json!(true) {
        let verdict = browser.execute(
            &format!("return document.querySelector(\"{row}\").innerText"),
            json!([]),
        );
        panic!("the loop device is not offered as a target: {verdict}");
    }
    browser.click(&format!("{row} input[name=target]"));
    let chosen = browser.execute(
        "var s = document.getElementById('flash-image'); \
         for (var o of s.options) { if (o.text.startsWith(arguments[0])) { s.value = o.value; return o.text; } } \
         return null;",
        json!([image]),
    );
    assert!(
        chosen.is_string(),
        "{image} is not offered on the flash page"
    );
    browser.screenshot(&screenshot_dir().join(format!("{shots}-choose.png")));
    browser.click("#flash-form button[type=submit]");
    browser.find(&format!("tr[data-confirm-target='{}']", target.dev()));
    browser.screenshot(&screenshot_dir().join(format!("{shots}-confirm.png")));
    browser.click("#flash-confirm-box");
    browser.click("#flash-start");
    let state = browser.wait_js(
        Duration::from_secs(120),
        "the flash to finish",
        &format!(
            "var t = document.querySelector(\"#flash-jobs [data-target='{}']\"); \
             if (!t) return null; var s = t.querySelector('[data-field=target-state]').textContent; \
             if (s === 'failed') return 'failed: ' + t.innerText; \
             return t.querySelector('[data-field=verified]') ? s : null;",
            target.dev()
        ),
    );
    browser.screenshot(&screenshot_dir().join(format!("{shots}-done.png")));
    state
}

/// Open the start-up login URL (from `<state>/web-token`, as the operator
/// copies it from the log): the browser lands on the images page, logged
/// in, and the token is gone from the address bar.
fn log_in(browser: &Browser, daemon: &Daemon) {
    browser.goto(&daemon.login_url());
    let url = browser.url();
    assert_eq!(url, format!("{}/ui/images", daemon.origin()), "after login");
    browser.find("form[action='/ui/logout']");
}

/// A fresh btyd with an entry per `origin` path, and a browser logged in
/// to it on the images page.
fn logged_in_with_entries(origin: &Origin, paths: &[&str]) -> (Daemon, Browser) {
    let daemon = Daemon::start();
    for path in paths {
        let added = daemon.ctl(&["entries", "add", &origin.url(path)]);
        assert!(added.status.success(), "{added:?}");
    }
    let browser = Browser::start();
    log_in(&browser, &daemon);
    (daemon, browser)
}

fn row_js(name: &str, tail: &str) -> String {
    format!("var r = document.querySelector('tr[data-row-name=\"{name}\"]'); {tail}")
}

#[test]
fn pages_work_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let fast = noise(3 << 20, 21);
    let fast_sha = {
        let path = work.path().join("fast.img");
        std::fs::write(&path, &fast).unwrap();
        sha256sum(&path)
    };
    let origin = Origin::start();
    origin.put("/fast.img", fast);
    origin.put("/slow.img", noise(64 << 20, 22));
    let daemon = Daemon::start();
    let base = daemon.origin();
    let browser = Browser::start();
    let shots = screenshot_dir();
    log_in(&browser, &daemon);

    // Upload a catalog through the form: the page comes back with its rows.
    browser.goto(&format!("{base}/ui/images"));
    browser.screenshot(&shots.join("images-empty.png"));
    let catalog_file = work.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(&origin)).unwrap();
    browser.send_keys("#catalog-file", catalog_file.to_str().unwrap());
    browser.click("form[action^='/ui/catalog/upload'] button[type=submit]");
    browser.find("tr[data-row-name='fast.img']");
    browser.find("tr[data-row-name='slow.img']");
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );

    // Fetch: the row flips to "Local copy: yes" with its sha, no reload.
    browser.execute("window.__btyMarker = 42", json!([]));
    browser.click("tr[data-row-name='fast.img'] .bty-fetch-btn");
    let sha = browser.wait_js(
        LIVE,
        "fast.img to be cached",
        &row_js(
            "fast.img",
            "var b = r && r.querySelector('.bty-badge-success'); var s = r && r.querySelector('.bty-sha-copy'); \
             return b && b.textContent === 'yes' && s ? s.dataset.sha : null;",
        ),
    );
    assert_eq!(sha, Value::String(fast_sha.clone()));
    assert_eq!(
        browser.execute("return window.__btyMarker", json!([])),
        json!(42),
        "the page was reloaded"
    );

    // Copy the sha: the clipboard (or the fallback) gets all 64 digits.
    browser.grant_clipboard();
    browser.click("tr[data-row-name='fast.img'] .bty-sha-copy");
    assert_eq!(
        browser.execute(
            "return document.getElementById('bty-stale').hidden",
            json!([])
        ),
        json!(true),
        "a download must not ask for a reload"
    );
    let copied = browser.wait_js(
        Duration::from_secs(10),
        "the sha to be copied",
        "return window.__btyLastCopied",
    );
    assert_eq!(copied, Value::String(fast_sha.clone()));
    browser.screenshot(&shots.join("images.png"));

    // Upload a file on the downloads page; it is hashed and listed.
    let upload = noise(2 << 20, 23);
    let upload_path = work.path().join("uploaded.img");
    std::fs::write(&upload_path, &upload).unwrap();
    let upload_sha = sha256sum(&upload_path);
    browser.goto(&format!("{base}/ui/downloads"));
    browser.send_keys("#upload-file", upload_path.to_str().unwrap());
    browser.click("#upload-btn");
    let result = browser.wait_js(LIVE, "the upload", "return window.__btyLastUpload");
    assert_eq!(result["sha256"], Value::String(upload_sha.clone()));
    browser.screenshot(&shots.join("downloads-uploaded.png"));
    browser.goto(&format!("{base}/ui/images"));
    let listed = browser.wait_js(
        Duration::from_secs(10),
        "the uploaded row",
        &row_js(
            "uploaded.img",
            "var s = r && r.querySelector('.bty-sha-copy'); return s ? s.dataset.sha : null;",
        ),
    );
    assert_eq!(listed, Value::String(upload_sha));

    // A slow download shows progress on /ui/downloads and can be cancelled.
    origin.throttle(Duration::from_millis(300));
    browser.click("tr[data-row-name='slow.img'] .bty-fetch-btn");
    browser.wait_js(
        LIVE,
        "the busy label",
        &row_js("slow.img", "var f = r && r.querySelector('.bty-fetch-btn'); return f && f.textContent.indexOf('Downloading') >= 0;"),
    );
    browser.goto(&format!("{base}/ui/downloads"));
    browser.wait_js(
        LIVE,
        "bytes to arrive",
        "var t = document.querySelector('#download-jobs tr[data-job-id] [data-field=bytes]'); return t && t.textContent.indexOf('0 B') !== 0 ? t.textContent : null;",
    );
    browser.wait_js(
        Duration::from_secs(10),
        "the navbar badge",
        "var b = document.querySelector('.bty-nav-badge[data-worker=download]'); return b && !b.hidden && b.textContent === '1';",
    );
    browser.screenshot(&shots.join("downloads.png"));
    browser.click("#download-jobs .bty-job-cancel-btn");
    browser.wait_js(
        LIVE,
        "the download to be cancelled",
        "return document.querySelector('#download-history .bty-state-cancelled') !== null;",
    );
    let jobs = daemon.ctl_json(&["jobs", "list"]);
    let slow = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["subject"] == "slow.img")
        .unwrap_or_else(|| panic!("no slow.img job in {jobs}"));
    assert_eq!(slow["state"], "cancelled", "{slow}");
    assert!(
        !daemon.image_root.join("slow.img").exists(),
        "a cancelled download left an image"
    );

    browser.goto(&format!("{base}/ui/hashing"));
    browser.find("#hash-jobs");
    browser.screenshot(&shots.join("hashing.png"));
    browser.goto(&format!("{base}/ui/flash"));
    browser.find("#disks");
    browser.screenshot(&shots.join("flash.png"));
    drop(browser);
}

#[test]
fn flashes_a_loop_device_from_the_page() {
    if !can_flash_in_a_browser() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let image = noise(4 << 20, 31);
    let daemon = Daemon::start_with(|_, root| {
        drop_file(root, "flash-me.img", &image);
    });
    let disks = daemon.ctl(&["--json", "disks"]);
    assert!(
        disks.status.success(),
        "btyctl disks failed: {}",
        String::from_utf8_lossy(&disks.stderr)
    );
    wait_for(Duration::from_secs(30), "the image to be hashed", || {
        daemon
            .images()
            .iter()
            .any(|r| r["sha256"].is_string())
            .then_some(())
    });
    let target = LoopDevice::create(&work.path().join("target"), 16 << 20, 0x5A, false);
    let browser = Browser::start();
    log_in(&browser, &daemon);
    let state = flash_on_page(&browser, &daemon.origin(), &target, "flash-me.img", "flash");
    assert_eq!(state, json!("done"));
    let written = std::fs::read(&target.file).unwrap();
    assert_eq!(&written[..image.len()], &image[..]);
}

#[test]
fn streams_a_remote_entry_onto_a_loop_device_from_the_page() {
    if !can_flash_in_a_browser() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut image = noise(3 << 20, 32);
    image.extend(std::iter::repeat_n(0u8, 3 << 20));
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&image).unwrap();
        enc.finish().unwrap()
    };
    let origin = Origin::start();
    origin.put("/remote.img.gz", gz.clone());
    let daemon = Daemon::start();
    let sha = bty_store::digest::sha256_bytes(&gz);
    daemon.ctl_json(&[
        "entries",
        "add",
        &origin.url("/remote.img.gz"),
        "--sha256",
        &sha,
    ]);
    let target = LoopDevice::create(&work.path().join("target"), 16 << 20, 0x5A, false);
    let browser = Browser::start();
    log_in(&browser, &daemon);

    let state = flash_on_page(
        &browser,
        &daemon.origin(),
        &target,
        "remote.img.gz",
        "flash-stream",
    );

    assert_eq!(state, json!("done"));
    let written = std::fs::read(&target.file).unwrap();
    assert!(
        written[..image.len()] == image[..],
        "the disk differs from the image"
    );
    let label = browser.execute(
        "return Array.from(document.getElementById('flash-image').options).map(o => o.text).join('|')",
        json!([]),
    );
    assert!(
        label
            .as_str()
            .unwrap_or_default()
            .contains(&format!("streamed from {}", origin.addr)),
        "{label}"
    );
    let cached = daemon.images()[0]["cached"].clone();
    assert_eq!(cached, json!(false), "a streamed flash stores nothing");
}

/// Console lines that mean the CSP blocked something or a script failed.
fn csp_or_script_errors(console: &[String]) -> Vec<&String> {
    console
        .iter()
        .filter(|l| {
            l.contains("Content Security Policy")
                || l.contains("Refused to")
                || l.starts_with("SEVERE") && l.contains(".js")
        })
        .collect()
}

/// On the page just loaded: the console has no error (a missing favicon
/// would be one), the favicon loads as an image, and the skip link is the
/// first focusable element, off screen until focused, pointing at <main>.
fn assert_the_frame_works(browser: &Browser) {
    browser.execute(
        "window.__btyIcon = 'loading'; var i = new Image(); \
         i.onload = function () { window.__btyIcon = 'ok'; }; \
         i.onerror = function () { window.__btyIcon = 'error'; }; \
         i.src = document.querySelector('link[rel=icon]').href;",
        json!([]),
    );
    let icon = browser.wait_js(
        LIVE,
        "the favicon to load",
        "return window.__btyIcon === 'loading' ? null : window.__btyIcon",
    );
    assert_eq!(icon, json!("ok"), "the favicon");
    let console = browser.console();
    let errors: Vec<_> = console.iter().filter(|l| l.starts_with("SEVERE")).collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let skip = browser.execute(
        "var first = document.querySelector('a[href], button, input:not([type=hidden]), select, textarea'); \
         var target = document.querySelector(first.getAttribute('href')); \
         var hidden = first.getBoundingClientRect().bottom <= 0; \
         first.focus(); \
         var shown = first.getBoundingClientRect().top >= 0; \
         first.blur(); \
         return [first.textContent, target && target.tagName, hidden, shown];",
        json!([]),
    );
    assert_eq!(
        skip,
        json!(["Skip to content", "MAIN", true, true]),
        "skip link"
    );
}

#[test]
fn the_start_up_url_logs_in_and_the_pages_work_under_the_csp() {
    if !browser_available() {
        return;
    }
    let daemon = Daemon::start_with(|_, root| {
        drop_file(root, "csp.img", &noise(1 << 20, 41));
    });
    let base = daemon.origin();
    let browser = Browser::start();

    // Without the login, the flash page is not shown: the login form is.
    browser.goto(&format!("{base}/ui/flash"));
    assert!(
        browser.url().starts_with(&format!("{base}/ui/login")),
        "{}",
        browser.url()
    );
    assert!(browser.try_find("#disks").is_none());
    browser.find("#password");

    log_in(&browser, &daemon);
    let cookie = browser.execute("return document.cookie", json!([]));
    assert!(
        !cookie.as_str().unwrap_or_default().contains("bty_session"),
        "{cookie}"
    );

    // The images page's script runs: live updates connect, the row appears.
    browser.console();
    browser.goto(&format!("{base}/ui/images"));
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    browser.find("tr[data-row-name='csp.img']");
    assert_the_frame_works(&browser);
    // A new file shows up without a reload (catalog events over SSE).
    browser.execute("window.__btyMarker = 7", json!([]));
    drop_file(&daemon.image_root, "later.img", &noise(1 << 20, 42));
    browser.wait_js(
        LIVE,
        "the page to notice the new file",
        "return document.querySelector(\"tr[data-row-name='later.img']\") !== null \
         || !document.getElementById('bty-stale').hidden",
    );
    assert_eq!(
        browser.execute("return window.__btyMarker", json!([])),
        json!(7)
    );

    // The flash page lists disks and its form reaches the confirmation.
    browser.goto(&format!("{base}/ui/flash"));
    browser.find("#disks");
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    let hidden = browser.execute(
        "return document.getElementById('bty-js-error').hidden",
        json!([]),
    );
    assert_eq!(hidden, json!(true), "the page reported a script error");

    // The console is really read (a probe line comes back).
    browser.execute("console.warn('bty-console-probe')", json!([]));
    let console = browser.console();
    assert!(
        console.iter().any(|l| l.contains("bty-console-probe")),
        "console not readable: {console:?}"
    );
    let errors = csp_or_script_errors(&console);
    assert!(errors.is_empty(), "console: {errors:#?}");

    // Log out: the session is gone.
    browser.click("form[action='/ui/logout'] button");
    browser.find("#password");
    browser.goto(&format!("{base}/ui/images"));
    assert!(
        browser.url().starts_with(&format!("{base}/ui/login")),
        "{}",
        browser.url()
    );
}

/// A row shows its file being hashed live: a hash started while the page
/// is open shows under the row's sha with its progress, without a reload,
/// and goes when the job ends.
#[test]
fn a_row_shows_its_hash_running_without_a_reload() {
    if !browser_available() {
        return;
    }
    let daemon = Daemon::start_with(|_, root| {
        // Sparse: hashing 4 GiB of holes takes seconds, long enough to see.
        let big = std::fs::File::create(root.join("big.img")).unwrap();
        big.set_len(4 << 30).unwrap();
    });
    let hashed = || {
        daemon
            .images()
            .iter()
            .any(|r| r["names"][0] == "big.img" && r["sha256"].is_string())
    };
    wait_for(
        Duration::from_secs(180),
        "the first hash of big.img",
        || hashed().then_some(()),
    );
    let browser = Browser::start();
    log_in(&browser, &daemon);
    browser.find("tr[data-row-name='big.img'] .bty-sha-copy");
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    browser.execute("window.__btyMarker = 7", json!([]));
    // Hash it again: its sidecar goes, then an operator asks for a hash.
    std::fs::remove_file(daemon.image_root.join("big.img.sha256")).unwrap();
    let started = daemon.ctl(&["hash", "big.img"]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    browser.wait_js(
        LIVE,
        "the row to show the hash running",
        &row_js(
            "big.img",
            "var n = r && r.querySelector('.bty-hash-progress'); return !!(n && /hash/.test(n.textContent));",
        ),
    );
    browser.wait_js(
        Duration::from_secs(180),
        "the hash note to go when the job ends",
        &row_js(
            "big.img",
            "return !!(r && r.querySelector('.bty-sha-copy') && !r.querySelector('.bty-hash-progress'));",
        ),
    );
    assert_eq!(
        browser.execute("return window.__btyMarker", json!([])),
        json!(7),
        "the page was reloaded"
    );
}

#[test]
fn the_flash_page_follows_disks_plugged_in_and_pulled_without_a_reload() {
    if !can_flash_in_a_browser() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start();
    let browser = Browser::start();
    log_in(&browser, &daemon);
    browser.goto(&format!("{}/ui/flash", daemon.origin()));
    browser.wait_js(
        Duration::from_secs(10),
        "the live event stream",
        "return window.__btyLive === true ? true : null;",
    );
    let row_present = |dev: &str| {
        format!("return document.querySelector(\"tr[data-disk='{dev}']\") ? true : null;")
    };
    let row_absent = |dev: &str| {
        format!("return document.querySelector(\"tr[data-disk='{dev}']\") ? null : true;")
    };
    let within = Duration::from_secs(2);

    let first = LoopDevice::create(&work.path().join("first"), 16 << 20, 0, false);
    browser.wait_js(within, "the first disk's row", &row_present(first.dev()));
    browser.click(&format!(
        "tr[data-disk='{}'] input[name=target]",
        first.dev()
    ));
    browser.screenshot(&screenshot_dir().join("flash-hotplug-added.png"));

    // Another disk comes and goes: its row follows, the ticked box stays.
    let second = LoopDevice::create(&work.path().join("second"), 16 << 20, 0, false);
    let second_dev = second.dev().to_owned();
    browser.wait_js(within, "the second disk's row", &row_present(&second_dev));
    drop(second);
    browser.wait_js(
        within,
        "the second disk's row gone",
        &row_absent(&second_dev),
    );
    let ticked = browser.execute(
        &format!(
            "return document.querySelector(\"tr[data-disk='{}'] input[name=target]\").checked;",
            first.dev()
        ),
        json!([]),
    );
    assert_eq!(ticked, json!(true), "the operator's choice was undone");
    browser.screenshot(&screenshot_dir().join("flash-hotplug-removed.png"));
}

/// A long source URL, the kind that used to wrap one letter per line.
const LONG_PATH: &str = "/releases/nightly/2026-12-03/a-rather-long-directory-name-for-the-build/bty-image-with-a-long-file-name-x86_64-generic.img";

/// The page's horizontal overflow: `[scrollWidth, innerWidth]`.
fn widths(browser: &Browser) -> (u64, u64) {
    let w = browser.execute(
        "return [document.scrollingElement.scrollWidth, window.innerWidth]",
        json!([]),
    );
    (w[0].as_u64().unwrap(), w[1].as_u64().unwrap())
}

/// The images, downloads and flash pages on a phone (390×844) and a
/// desktop (1400×900): no sideways scroll of the page, every row's action
/// buttons inside the viewport, tables stacked with labels on the phone.
#[test]
fn pages_fit_a_phone_and_a_desktop() {
    if !browser_available() {
        return;
    }
    let origin = Origin::start();
    origin.put("/fast.img", noise(1 << 20, 61));
    origin.put(LONG_PATH, noise(1 << 20, 62));
    let (daemon, browser) = logged_in_with_entries(&origin, &["/fast.img", LONG_PATH]);
    let base = daemon.origin();
    // One finished download, so the downloads page has a history row.
    browser.goto(&format!("{base}/ui/images"));
    browser.click("tr[data-row-name='fast.img'] .bty-fetch-btn");
    browser.wait_js(
        LIVE,
        "fast.img to be cached",
        &row_js(
            "fast.img",
            "return r && r.querySelector('.bty-sha-copy') !== null;",
        ),
    );
    let shots = screenshot_dir();
    for (label, width, height) in [("mobile", 390, 844), ("desktop", 1400, 900)] {
        let (inner, _) = browser.set_window_size(width, height);
        assert!(
            inner <= u64::from(width) && inner + 40 >= u64::from(width),
            "{label}: the window is {inner} px wide"
        );
        for page in ["images", "downloads", "flash", "events"] {
            browser.goto(&format!("{base}/ui/{page}"));
            browser.find(if page == "events" {
                "#events-table tbody tr"
            } else {
                "#activity tbody tr"
            });
            let (scroll, inner) = widths(&browser);
            assert!(
                scroll <= inner,
                "{label} {page}: the page scrolls sideways ({scroll} > {inner})"
            );
            browser.screenshot(&shots.join(format!("{label}-{page}.png")));
            browser.execute(
                "document.querySelector('main table').scrollIntoView()",
                json!([]),
            );
            browser.screenshot(&shots.join(format!("{label}-{page}-table.png")));
            // Every cell of a stacked table carries its column's name.
            let stacked = browser.execute(
                "var td = document.querySelector('main td[data-label]'); if (!td) return null; \
                 return [getComputedStyle(td).display, getComputedStyle(td, '::before').content, td.dataset.label];",
                json!([]),
            );
            if stacked.is_null() {
                // No disk on this machine: the flash page has no labelled cell.
                assert_eq!(page, "flash", "{label} {page}: no labelled cell");
            } else if label == "mobile" {
                assert_eq!(stacked[0], "block", "{label} {page}: {stacked}");
                assert_eq!(
                    stacked[1],
                    json!(format!("\"{}\"", stacked[2].as_str().unwrap())),
                    "{label} {page}: {stacked}"
                );
            } else {
                assert_eq!(stacked[0], "table-cell", "{label} {page}: {stacked}");
            }
            if page != "images" {
                continue;
            }
            let outside = browser.execute(
                "var out = []; var rows = document.querySelectorAll('table.bty-images tbody tr'); \
                 rows.forEach(function (r) { r.querySelectorAll('.bty-btn-group button').forEach(function (b) { \
                   var box = b.getBoundingClientRect(); \
                   if (box.width === 0 || box.left < 0 || box.right > window.innerWidth) { out.push(r.dataset.rowName + ': ' + b.title + ' at ' + box.left + '..' + box.right); } \
                 }); }); \
                 return [rows.length, out];",
                json!([]),
            );
            assert_eq!(outside[0], json!(2), "{label}: rows");
            assert_eq!(
                outside[1],
                json!([]),
                "{label}: action buttons outside the viewport"
            );
            // The long source wraps at the line's end, not a letter per line.
            let lines = browser.execute(
                "var c = document.querySelector('.bty-sources code'); var r = c.getBoundingClientRect(); \
                 return Math.round(r.width);",
                json!([]),
            );
            assert!(
                lines.as_u64().unwrap() >= 150,
                "{label}: the sources column is {lines} px wide"
            );
        }
    }
}

/// A Fetch whose source answers 404 marks its row without a reload: the
/// failure, a short reason (the whole error in its tooltip) and a Retry
/// button that starts the download again; a full page load shows the same.
#[test]
fn a_failed_fetch_marks_its_row_with_a_retry() {
    if !browser_available() {
        return;
    }
    let origin = Origin::start();
    let (daemon, browser) = logged_in_with_entries(&origin, &["/missing.img"]);
    let base = daemon.origin();
    browser.goto(&format!("{base}/ui/images"));
    browser.find("tr[data-row-name='missing.img']");
    assert!(
        browser
            .try_find("tr[data-row-name='missing.img'] .bty-row-failure")
            .is_none(),
        "a row that never failed is marked"
    );
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    browser.execute("window.__btyMarker = 5", json!([]));
    browser.click("tr[data-row-name='missing.img'] .bty-fetch-btn");
    let mark_js = row_js(
        "missing.img",
        "var m = r && r.querySelector('.bty-row-failure'); var b = m && m.querySelector('.bty-retry-btn'); \
         var why = m && m.querySelector('.bty-failure-reason'); \
         return m && b && why ? [why.textContent, why.title, b.disabled, r.classList.contains('bty-failed')] : null;",
    );
    let url = origin.url("/missing.img");
    let mark = browser.wait_js(Duration::from_secs(15), "the failure mark", &mark_js);
    let reason = mark[0].as_str().unwrap();
    let full = mark[1].as_str().unwrap();
    assert!(reason.contains("404"), "{mark}");
    assert!(
        full.contains("404") && full.contains(&url),
        "the tooltip has the whole error: {mark}"
    );
    assert_eq!(mark[2], json!(false), "Retry is disabled: {mark}");
    assert_eq!(mark[3], json!(true), "the row is not marked failed: {mark}");
    let banner = browser.execute(
        "var b = document.getElementById('bty-js-error'); return b.hidden ? '' : b.textContent;",
        json!([]),
    );
    let banner = banner.as_str().unwrap();
    assert!(banner.contains("404"), "banner: {banner:?}");
    assert_eq!(banner.matches(&url).count(), 1, "banner: {banner:?}");
    assert_eq!(
        browser.execute("return window.__btyMarker", json!([])),
        json!(5),
        "the page was reloaded"
    );
    browser.screenshot(&screenshot_dir().join("images-fetch-failed.png"));

    // A full page load shows the same mark.
    browser.goto(&format!("{base}/ui/images"));
    let again = browser.wait_js(
        Duration::from_secs(10),
        "the failure mark after a reload",
        &mark_js,
    );
    assert_eq!(again[0], mark[0]);

    // On a phone the mark and its Retry stay in view (Retry is clicked there).
    browser.set_window_size(390, 844);
    let retry_right = browser.execute(
        "var b = document.querySelector(\"tr[data-row-name='missing.img'] .bty-retry-btn\"); \
         b.scrollIntoView({block: 'center'}); var r = b.getBoundingClientRect(); \
         return [r.left >= 0 && r.right <= window.innerWidth, document.scrollingElement.scrollWidth <= window.innerWidth];",
        json!([]),
    );
    assert_eq!(retry_right, json!([true, true]), "Retry on a phone");
    browser.screenshot(&screenshot_dir().join("mobile-images-fetch-failed.png"));

    // The source comes back: Retry fetches it and the mark goes.
    origin.put("/missing.img", noise(1 << 20, 71));
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    browser.click("tr[data-row-name='missing.img'] .bty-retry-btn");
    browser.wait_js(
        LIVE,
        "the retried download to land",
        &row_js(
            "missing.img",
            "return r && r.querySelector('.bty-sha-copy') && !r.querySelector('.bty-row-failure') \
             && !r.classList.contains('bty-failed');",
        ),
    );
    assert!(
        origin.requests_for("/missing.img") >= 2,
        "Retry did not ask the source again"
    );
}

/// axe-core finds no accessibility violation on the images (with a cached
/// row and a failed one), downloads (with a refused form) and flash pages,
/// on a desktop and on a phone.
#[test]
fn pages_pass_axe_core() {
    if !browser_available() {
        return;
    }
    let script = axe::axe_script();
    let origin = Origin::start();
    origin.put("/fast.img", noise(1 << 20, 81));
    let (daemon, browser) = logged_in_with_entries(&origin, &["/fast.img", "/missing.img"]);
    let base = daemon.origin();
    browser.goto(&format!("{base}/ui/images"));
    for name in ["fast.img", "missing.img"] {
        browser.click(&format!("tr[data-row-name='{name}'] .bty-fetch-btn"));
    }
    browser.wait_js(
        LIVE,
        "one row cached, one marked failed",
        "return document.querySelector('tr[data-row-name=\"fast.img\"] .bty-sha-copy') \
         && document.querySelector('tr[data-row-name=\"missing.img\"] .bty-row-failure');",
    );
    let refused = "/ui/downloads?error=%22ftp%3A%2F%2Fx%2Fa.img%22%20is%20not%20an%20http%3A%2F%2F%20URL&field=url&url=ftp%3A%2F%2Fx%2Fa.img";
    let mut found = Vec::new();
    for (label, width, height) in [("desktop", 1400, 900), ("mobile", 390, 844)] {
        browser.set_window_size(width, height);
        for page in [
            "/ui/images",
            "/ui/downloads",
            refused,
            "/ui/flash",
            "/ui/events",
        ] {
            browser.goto(&format!("{base}{page}"));
            browser.find("main .bty-card");
            found.extend(
                axe::violations(&browser, &script)
                    .into_iter()
                    .map(|v| format!("{label} {page}: {v}")),
            );
        }
    }
    assert!(
        found.is_empty(),
        "axe-core violations:\n{}",
        found.join("\n")
    );
    // The checker really looks: an image without alt text is reported.
    browser.execute(
        "var i = document.createElement('img'); i.src = '/static/favicon.svg'; \
         document.getElementById('main').appendChild(i);",
        json!([]),
    );
    let planted = axe::violations(&browser, &script);
    assert!(
        planted.iter().any(|v| v.starts_with("image-alt ")),
        "{planted:?}"
    );
}

/// The activity card follows events live, coloured by outcome, and links
/// the timeline; the timeline filters by kind and outcome, and Acknowledge
/// marks an event seen (and keeps the filters).
#[test]
fn the_timeline_filters_and_acknowledges_and_cards_follow_live() {
    if !browser_available() {
        return;
    }
    let origin = Origin::start();
    origin.put("/ok.img", noise(1 << 20, 91));
    let (daemon, browser) = logged_in_with_entries(&origin, &["/ok.img", "/missing.img"]);
    let base = daemon.origin();
    browser.goto(&format!("{base}/ui/images"));
    browser.find("#activity");
    browser.wait_js(
        LIVE,
        "the live indicator",
        "return window.__btyLive === true",
    );
    browser.execute("window.__btyMarker = 9", json!([]));
    let card_row = |kind: &str| {
        format!(
            "var r = Array.from(document.querySelectorAll('#activity tbody tr')).find(function (r) {{ \
               return r.querySelector('.bty-badge') && r.querySelector('.bty-badge').textContent === '{kind}'; }}); \
             return r ? [r.className, getComputedStyle(r.querySelector('.bty-badge')).backgroundColor] : null;"
        )
    };
    browser.click("tr[data-row-name='missing.img'] .bty-fetch-btn");
    let failed = browser.wait_js(
        LIVE,
        "download.failed in the card",
        &card_row("download.failed"),
    );
    browser.click("tr[data-row-name='ok.img'] .bty-fetch-btn");
    let done = browser.wait_js(
        LIVE,
        "download.completed in the card",
        &card_row("download.completed"),
    );
    assert_eq!(failed[0], "bty-outcome-failed", "{failed}");
    assert_eq!(done[0], "bty-outcome-ok", "{done}");
    assert_ne!(failed[1], done[1], "failures and successes look the same");
    assert_eq!(
        browser.execute("return window.__btyMarker", json!([])),
        json!(9),
        "the page was reloaded"
    );
    browser.screenshot(&screenshot_dir().join("images-activity-live.png"));

    // "Full timeline" leads to the events page, filtered to the card's kinds.
    browser.click("#activity .bty-card-link");
    browser.find("#events-table");
    assert!(
        browser.url().contains("/ui/events?kinds="),
        "{}",
        browser.url()
    );
    browser.goto(&format!("{base}/ui/events"));
    browser.send_keys("input[name=kinds]", "download.");
    browser.click("input[name=failed]");
    browser.click("#event-filters button[type=submit]");
    let kinds = browser.wait_js(
        LIVE,
        "the filtered timeline",
        "if (location.search.indexOf('failed=1') < 0) return null; \
         return Array.from(document.querySelectorAll('#events-table tbody tr[data-kind]')).map(function (r) { return r.dataset.kind; });",
    );
    assert_eq!(kinds, json!(["download.failed"]), "{kinds}");
    browser.click("#events-table .bty-ack-btn");
    let seen = browser.wait_js(
        LIVE,
        "the event acknowledged",
        "var r = document.querySelector('#events-table tbody tr[data-kind]'); \
         return r && r.classList.contains('bty-acknowledged') ? [location.search, r.querySelector('[data-label=Seen]').textContent.trim()] : null;",
    );
    assert!(
        seen[0].as_str().unwrap().contains("failed=1"),
        "filters kept: {seen}"
    );
    assert_eq!(seen[1], "acknowledged");
    browser.screenshot(&screenshot_dir().join("desktop-events-filtered.png"));
    let listed = daemon.ctl_json(&["events", "list", "--failed", "--unacknowledged"]);
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "download.failed"),
        "{listed}"
    );
}
