//! Limits an origin cannot talk btyd past: an undeclared size over
//! `[downloads] max_image_bytes` (to disk and streamed to a flash), a
//! declared size larger than the free space, and a redirect from https to
//! plain http — each refused with a message naming the limit or both URLs,
//! and nothing left behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::tls::TestCa;
use bty_e2e::{Daemon, noise};
use bty_store::digest::sha256_bytes;
use bty_test_caps::can_use_loop_devices;

const CAP: u64 = 1 << 20;

#[test]
fn an_undeclared_size_over_the_cap_is_stopped_on_disk_and_on_a_flash() {
    assert!(can_use_loop_devices(), "flashes a loop device: run as root");
    let origin = Origin::start();
    origin.put("big.img", noise(4 << 20, 61));
    let d = Daemon::start_configured(
        &format!("[downloads]\nmax_image_bytes = {CAP}\n"),
        |_, _| {},
    );
    d.ctl_json(&["entries", "add", &origin.url("big.img")]);
    let (code, job) = d.fetch("big.img");
    assert_eq!(code, Some(7), "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("larger than the {CAP}-byte limit")),
        "{error}"
    );
    assert_eq!(
        d.image_root_names(),
        [".bty-storage.json"],
        "nothing is kept"
    );

    // Streamed straight to a disk: stopped the same way, the disk as it was.
    let work = tempfile::tempdir().unwrap();
    let disk = LoopDevice::create(&work.path().join("disk"), 8 << 20, 0x77, false);
    let before = std::fs::read(&disk.file).unwrap();
    let (code, job, stderr) = d.flash(&["big.img", disk.dev()]);
    assert_ne!(code, 0, "{job}");
    let said = format!("{job} {stderr}");
    assert!(said.contains(&format!("{CAP}-byte limit")), "{said}");
    assert!(
        std::fs::read(&disk.file).unwrap() == before,
        "the disk changed"
    );
}

#[test]
fn a_declared_size_larger_than_the_free_space_is_not_started() {
    let origin = Origin::start();
    origin.put("huge.img", noise(1 << 20, 62));
    // The server claims a petabyte: more than this disk has, within the cap.
    let huge: u64 = 1 << 50;
    origin.declare_length("huge.img", huge);
    let d = Daemon::start_configured(
        &format!("[downloads]\nmax_image_bytes = {}\n", huge * 2),
        |_, _| {},
    );
    d.ctl_json(&["entries", "add", &origin.url("huge.img")]);
    let (code, job) = d.fetch("huge.img");
    assert_eq!(code, Some(7), "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("not enough free space")
            && error.contains(&format!("{huge} bytes needed"))
            && error.contains(" free"),
        "{error}"
    );
    assert_eq!(
        d.image_root_names(),
        [".bty-storage.json"],
        "nothing is kept"
    );
}

#[test]
fn a_redirect_from_https_to_http_is_refused_naming_both_urls() {
    let ca = TestCa::new();
    let https = Origin::start_tls(ca.server_config());
    let http = Origin::start();
    let good = noise(1 << 20, 63);
    https.put("ok.img", good.clone());
    http.put("down.img", noise(1 << 20, 64));
    https.redirect("down.img", &http.url("down.img"));
    let d = Daemon::start_with_env(
        "",
        &[("SSL_CERT_FILE", ca.ca_pem.to_str().unwrap())],
        |_, _| {},
    );
    // The https origin is trusted: a plain download from it works.
    d.ctl_json(&["entries", "add", &https.url("ok.img")]);
    let (code, job) = d.fetch("ok.img");
    assert_eq!(code, Some(0), "{job}");
    assert_eq!(job["sha256"], sha256_bytes(&good).as_str());

    // Pinned or not, the downgrade is refused.
    for pin in [None, Some("0".repeat(64))] {
        let mut add = vec!["entries", "add"];
        let url = https.url("down.img");
        add.push(&url);
        if let Some(pin) = &pin {
            add.extend(["--sha256", pin]);
        }
        let _ = d.ctl(&["entries", "rm", &url]);
        d.ctl_json(&add);
        let (code, job) = d.fetch("down.img");
        assert_eq!(code, Some(7), "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains(&format!(
                "refusing a redirect from {} to plain http ({})",
                https.url("down.img"),
                http.url("down.img")
            )),
            "{error}"
        );
    }
    assert_eq!(
        http.requests_for("down.img"),
        0,
        "the http origin was reached"
    );
    assert!(
        !d.image_root_names().iter().any(|n| n.contains("down")),
        "{:?}",
        d.image_root_names()
    );
}
