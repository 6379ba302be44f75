//! The foundation scenario: a real btyd with local images of three formats
//! and a catalog of two remote entries; the listing, the hashes, the
//! sidecars, live pick-up of a new file, and the images page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::{Daemon, drop_file, noise, run, sha256sum, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CATALOG: &str = r#"version = 1

[[images]]
name = "debian (pinned)"
src = "https://images.example.invalid/debian.img.gz"
sha256 = "4e5f9cbbbb6e7c0a3f0d8d6c5b9c7e1d2f3a4b5c6d7e8f90112233445566778a"
format = "img.gz"

[[images]]
name = "nosi fedora-sysdev (x86_64, rolling)"
src = "oras://ghcr.io/safl/nosi/fedora-sysdev:latest"
format = "img.gz"
"#;

/// A raw disk image with data and a run of zeros, and its .zst and .qcow2.
fn make_images(work: &Path, root: &Path) {
    let mut raw = noise(3 << 20, 7);
    raw.extend(std::iter::repeat_n(0u8, 2 << 20));
    let raw_path = work.join("disk.img");
    std::fs::write(&raw_path, &raw).unwrap();
    drop_file(root, "alpha.img", &raw);
    run(Command::new("zstd")
        .args(["-q", "-3", "-o"])
        .arg(root.join("bravo.img.zst"))
        .arg(&raw_path));
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw_path)
        .arg(root.join("charlie.qcow2")));
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .unwrap_or_else(|| panic!("no row named {name}: {rows:#?}"))
}

fn gates(row: &Value) -> [bool; 4] {
    let a = &row["actions"];
    ["fetch", "update", "cache_delete", "entry_delete"].map(|k| a[k].as_bool().unwrap())
}

fn hashed(daemon: &Daemon, names: &[&str]) -> Vec<Value> {
    wait_for(Duration::from_secs(60), "local files to be hashed", || {
        let rows = daemon.images();
        let done = names.iter().all(|n| {
            rows.iter().any(|r| {
                r["names"].as_array().unwrap().iter().any(|x| x == n) && r["sha256"].is_string()
            })
        });
        done.then_some(rows)
    })
}

#[test]
fn lists_hashes_and_renders_local_and_remote_images() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(|_, root| make_images(work.path(), root));
    let catalog = work.path().join("catalog.toml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let report = daemon.ctl_json(&["catalog", "import", catalog.to_str().unwrap()]);
    assert_eq!(report["imported"], 2, "{report}");

    let local = ["alpha.img", "bravo.img.zst", "charlie.qcow2"];
    let rows = hashed(&daemon, &local);
    assert_eq!(rows.len(), 5, "{rows:#?}");

    for name in local {
        let r = row(&rows, name);
        let path = daemon.image_root.join(name);
        assert_eq!(r["sha256"], sha256sum(&path), "{name}");
        assert_eq!(r["id"], r["sha256"]);
        assert_eq!(r["cached"], true);
        // A local file has exactly one local source and no actions.
        let sources = r["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 1, "{r}");
        assert_eq!(sources[0]["kind"], "local");
        assert_eq!(sources[0]["location"], path.to_str().unwrap());
        assert_eq!(gates(r), [false; 4], "{name}");
    }
    assert_eq!(row(&rows, "alpha.img")["format"], "img");
    assert_eq!(row(&rows, "bravo.img.zst")["format"], "img.zst");
    assert_eq!(row(&rows, "charlie.qcow2")["format"], "qcow2");

    // Remote entries: not cached, Fetch and Entry delete only.
    let pinned = row(&rows, "debian (pinned)");
    assert_eq!(pinned["cached"], false);
    assert_eq!(
        pinned["sha256"],
        "4e5f9cbbbb6e7c0a3f0d8d6c5b9c7e1d2f3a4b5c6d7e8f90112233445566778a"
    );
    assert_eq!(gates(pinned), [true, false, false, true]);
    let rolling = row(&rows, "nosi fedora-sysdev (x86_64, rolling)");
    assert_eq!(rolling["sha256"], Value::Null);
    assert_eq!(rolling["sources"][0]["kind"], "manifest");
    assert_eq!(gates(rolling), [true, false, false, true]);
    // Hashed rows first (by name), unhashed last.
    assert_eq!(rows.last().unwrap()["sha256"], Value::Null);

    // Sidecars are what `sha256sum -c` expects.
    let check = Command::new("sha256sum")
        .arg("-c")
        .args(local.map(|n| format!("{n}.sha256")))
        .current_dir(&daemon.image_root)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // A file copied in while the daemon runs appears and gets hashed.
    run(Command::new("cp")
        .arg(daemon.image_root.join("alpha.img"))
        .arg(work.path().join("delta.img")));
    std::fs::OpenOptions::new()
        .append(true)
        .open(work.path().join("delta.img"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"different"))
        .unwrap();
    run(Command::new("cp")
        .arg(work.path().join("delta.img"))
        .arg(daemon.image_root.join("delta.img")));
    let rows = hashed(&daemon, &["delta.img"]);
    assert_eq!(rows.len(), 6);
    assert_eq!(
        row(&rows, "delta.img")["sha256"],
        sha256sum(&daemon.image_root.join("delta.img"))
    );

    // The images page: one row per listing row, gates as disabled buttons;
    // local files (every gate shut) as a label, no buttons.
    let page = daemon.get("/ui/images");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(html.matches("<tr data-row-name=").count(), 6, "{html}");
    for name in ["alpha.img", "delta.img"] {
        let row = row_html(&html, name);
        assert!(row.contains(">local file</span>"), "{name}: {row}");
        assert!(!row.contains("bty-btn-group"), "{name}: {row}");
    }
    for name in ["debian (pinned)", "nosi fedora-sysdev (x86_64, rolling)"] {
        assert_eq!(
            button_states(&html, name),
            [true, false, false, true],
            "{name}"
        );
    }
}

/// Whether the Fetch / Update / Cache delete / Entry delete buttons of the
/// row named `name` are enabled.
fn button_states(html: &str, name: &str) -> [bool; 4] {
    let row = row_html(html, name);
    [
        "bty-fetch-btn",
        "bty-update-btn",
        "bty-cache-delete-btn",
        "bty-catalog-entry-delete-btn",
    ]
    .map(|class| {
        let at = row
            .find(class)
            .unwrap_or_else(|| panic!("{name}: no {class}"));
        let tag_start = row[..at].rfind("<button").unwrap();
        let tag_end = at + row[at..].find('>').unwrap();
        !row[tag_start..tag_end].contains(" disabled")
    })
}

/// The `<tr …>…` of the row named `name` (up to its `</tr>`).
fn row_html<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("<tr data-row-name=\"{}\"", name.replace('"', "&quot;"));
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {name}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// A catalog.toml past the 4 MiB import cap (what many imports build up)
/// is the daemon's own state: btyd starts on it, keeps changing it, and
/// starts again on what it wrote.
#[test]
fn a_catalog_larger_than_one_import_loads_and_stays_loadable() {
    const ENTRIES: usize = 60_000;
    let mut text = String::from("version = 1\n");
    for i in 0..ENTRIES {
        text.push_str(&format!(
            "\n[[images]]\nname = \"nightly-{i:06}.img.zst\"\nsrc = \"https://builds.example/nightly/{i:06}/disk.img.zst\"\n"
        ));
    }
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    let mut d = Daemon::start_with(|state, _| {
        std::fs::write(state.join("catalog.toml"), &text).unwrap();
    });
    let out = d.ctl(&[
        "entries",
        "add",
        "https://builds.example/extra/first.img.zst",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(d.state_dir.join("catalog.toml")).unwrap();
    assert!(written.len() > text.len());
    assert_eq!(written.matches("[[images]]").count(), ENTRIES + 1);
    d.restart();
    let out = d.ctl(&[
        "entries",
        "add",
        "https://builds.example/extra/second.img.zst",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
