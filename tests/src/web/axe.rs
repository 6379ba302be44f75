//! axe-core, the accessibility checker, for the browser tests: its
//! `axe.min.js` is fetched once from the npm registry (`npm pack`, pinned)
//! into `target/axe/` and injected into pages through WebDriver, which the
//! pages' CSP does not govern.

use super::webdriver::Browser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The axe-core release the tests pin.
pub const AXE_VERSION: &str = "4.14.1";

/// `target/axe/axe-<version>.min.js`, fetched with `npm pack` and `tar` the
/// first time. Panics (naming what is missing) when that fails.
pub fn axe_script() -> String {
    let dir = crate::bin_dir().parent().expect("target dir").join("axe");
    let script = dir.join(format!("axe-{AXE_VERSION}.min.js"));
    if !script.exists() {
        fetch_into(&dir, &script);
    }
    std::fs::read_to_string(&script).expect("read axe.min.js")
}

fn fetch_into(dir: &std::path::Path, script: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("create target/axe");
    let work = tempfile::tempdir_in(dir).expect("temp dir");
    let packed = Command::new("npm")
        .args(["pack", &format!("axe-core@{AXE_VERSION}"), "--silent"])
        .current_dir(work.path())
        .output()
        .unwrap_or_else(|e| panic!("npm pack axe-core: {e} (install npm; scripts/test does)"));
    assert!(
        packed.status.success(),
        "npm pack axe-core failed: {}",
        String::from_utf8_lossy(&packed.stderr)
    );
    let tarball: PathBuf = work.path().join(format!("axe-core-{AXE_VERSION}.tgz"));
    let unpacked = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("package/axe.min.js")
        .current_dir(work.path())
        .status()
        .expect("tar runs");
    assert!(unpacked.success(), "unpacking {}", tarball.display());
    // Renamed into place: a concurrent test never reads half a file.
    std::fs::rename(work.path().join("package/axe.min.js"), script).expect("move axe.min.js");
}

/// Run axe on the page `browser` shows; the violations, each as
/// `rule (impact): help — the first few offending nodes`.
pub fn violations(browser: &Browser, script: &str) -> Vec<String> {
    let start = format!(
        "{script}\n;window.__btyAxe = null; \
         axe.run(document, {{resultTypes: ['violations']}}).then(function (r) {{ \
           window.__btyAxe = r.violations.map(function (v) {{ \
             return v.id + ' (' + v.impact + '): ' + v.help + ' — ' + \
               v.nodes.slice(0, 4).map(function (n) {{ return n.target.join(' ') + ' ' + n.failureSummary; }}).join(' | '); \
           }}); \
         }}, function (e) {{ window.__btyAxe = ['axe failed: ' + e]; }});"
    );
    browser.execute(&start, json!([]));
    let found = browser.wait_js(
        Duration::from_secs(60),
        "axe to finish",
        "return window.__btyAxe",
    );
    match found {
        Value::Array(items) => items
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => vec![format!("unexpected axe answer: {other}")],
    }
}
