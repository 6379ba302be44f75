//! The example config shipped in `deploy/btyd.toml` parses, passes btyd's
//! own validation, and resolves to exactly the documented defaults of a root
//! install — so installing it as-is changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::bin;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn deploy_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

/// `btyd --config FILE --check-config` output (the resolved `Config`, `{:#?}`).
fn check_config(file: &std::path::Path) -> String {
    let out = Command::new(bin("btyd"))
        .arg("--config")
        .arg(file)
        .arg("--check-config")
        // Resolve as a plain process would, even inside a systemd service.
        .env_remove("STATE_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY")
        .stdin(Stdio::null())
        .output()
        .expect("btyd runs");
    assert!(
        out.status.success(),
        "btyd --check-config rejected {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The pretty `Debug` output on one line with single spaces, so assertions
/// do not depend on its indentation.
fn flatten(debug: &str) -> String {
    debug.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn example_config_resolves_to_the_documented_defaults() {
    let path = deploy_file("btyd.toml");
    assert!(path.exists(), "{} is missing", path.display());
    let resolved = check_config(&path);
    let flat = flatten(&resolved);
    for expected in [
        r#"state_dir: "/var/lib/bty""#,
        r#"image_root: "/var/lib/bty/images""#,
        r#"catalog_path: "/var/lib/bty/catalog.toml""#,
        r#"socket: "/run/bty/btyd.sock""#,
        "grpc_tcp: None",
        "web_listen: Some( 127.0.0.1:8080",
        r#"release_catalog_url: "https://github.com/safl/bty/releases/latest/download/catalog.toml""#,
        "downloads_max_parallel: 2",
        "downloads_max_image_bytes: 274877906944",
        "hashing_max_parallel: 1",
        "registries: {}",
    ] {
        assert!(
            flat.contains(expected),
            "deploy/btyd.toml does not resolve to `{expected}`:\n{resolved}"
        );
    }
}

#[test]
fn example_registry_section_is_valid_when_uncommented() {
    // The commented-out `[registries."localhost:5000"]` example must be
    // something an operator can switch on without a parse error.
    let text = std::fs::read_to_string(deploy_file("btyd.toml")).unwrap();
    let enabled: String = text
        .lines()
        .skip_while(|l| !l.starts_with(r#"# [registries."localhost:5000"]"#))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        enabled.contains("insecure = true"),
        "the registry example is missing from deploy/btyd.toml"
    );
    let text = text
        .lines()
        .take_while(|l| !l.starts_with(r#"# [registries."localhost:5000"]"#))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
        + &enabled
        + "\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("btyd.toml");
    std::fs::write(&file, text).unwrap();
    let resolved = check_config(&file);
    let flat = flatten(&resolved);
    assert!(
        flat.contains(r#""localhost:5000": RegistryConfig { insecure: true"#),
        "uncommented registry example did not resolve:\n{resolved}"
    );
}

/// The value of `key=` in the shipped unit (the last one wins, as in systemd).
fn unit_value(key: &str) -> Option<String> {
    let unit = std::fs::read_to_string(deploy_file("btyd.service")).unwrap();
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

fn bytes(value: &str) -> u64 {
    let (digits, unit) = value.split_at(value.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = digits.parse().unwrap();
    n << match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "" => 0,
        other => panic!("unit {other:?}"),
    }
}

/// The unit's ceilings hold a hostile image back without killing a
/// legitimate flash: memory above the xz decoder limit with room for
/// transfer buffers, threads above tokio's 512-thread blocking pool, and
/// a private /dev/shm. (systemd itself checks the syntax in
/// scripts/check-systemd; these are the numbers it cannot judge.)
#[test]
fn unit_ceilings_leave_room_for_real_work() {
    let max = bytes(&unit_value("MemoryMax").expect("MemoryMax= is set"));
    let high = bytes(&unit_value("MemoryHigh").expect("MemoryHigh= is set"));
    let xz = bty_flash::XZ_MEMLIMIT;
    assert!(
        high >= 2 * xz,
        "MemoryHigh {high} leaves no room beside one xz decoder ({xz})"
    );
    assert!(
        max > high,
        "MemoryMax {max} must sit above MemoryHigh {high}"
    );
    let tasks: u64 = unit_value("TasksMax")
        .expect("TasksMax= is set")
        .parse()
        .unwrap();
    assert!(
        tasks >= 512 + 64,
        "TasksMax {tasks} is below tokio's blocking pool"
    );
    assert_eq!(
        unit_value("TemporaryFileSystem").as_deref(),
        Some("/dev/shm"),
        "/dev/shm is not private"
    );
}
