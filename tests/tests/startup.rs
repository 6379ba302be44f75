//! Start-up refusals: settings that would expose the daemon are rejected
//! with a message saying what to set, before anything listens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::bin;
use std::process::Command;

fn btyd(args: &[&str], config: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("btyd"));
    cmd.arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(args);
    if let Some(text) = config {
        let path = dir.path().join("btyd.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refuses_a_plain_http_web_listener_off_loopback() {
    // Even with a password: it would cross the network in clear.
    let (ok, stderr) = btyd(&["--web-listen", "0.0.0.0:0"], None);
    assert!(!ok);
    for key in ["web.listen", "tls_cert", "tls_key", "insecure = true"] {
        assert!(stderr.contains(key), "{key} not named: {stderr}");
    }
}

#[test]
fn refuses_unsalted_sha256_passwords_naming_the_migration() {
    let config = format!("[web]\npassword_sha256 = \"{}\"\n", "ab".repeat(32));
    // --check-config: the refusal is part of reading the config, so an
    // accepting btyd exits (0) instead of serving.
    let (ok, stderr) = btyd(&["--check-config"], Some(&config));
    assert!(!ok, "an unsalted sha256 password was accepted");
    for needle in ["password_sha256", "btyd hash-password", "password_hash"] {
        assert!(stderr.contains(needle), "{needle} not named: {stderr}");
    }
}

#[test]
fn refuses_a_tcp_grpc_listener_without_a_token() {
    let (ok, stderr) = btyd(&["--grpc-tcp", "127.0.0.1:0", "--check-config"], None);
    assert!(!ok);
    assert!(stderr.contains("grpc.token"), "{stderr}");
    let (ok, stderr) = btyd(
        &["--grpc-tcp", "127.0.0.1:0", "--check-config"],
        Some("[grpc]\ntoken = \"0123456789abcdef0123\"\n"),
    );
    assert!(ok, "{stderr}");
}

#[test]
fn refuses_unknown_config_keys_naming_them() {
    let (ok, stderr) = btyd(
        &["--check-config"],
        Some("[web]\nlisten = \"127.0.0.1:1\"\nlisen = 2\n"),
    );
    assert!(!ok);
    assert!(stderr.contains("lisen"), "{stderr}");
}

/// A taken web port ends btyd with the cause on one line, even with
/// `RUST_BACKTRACE=1` in the environment (common on developer machines).
#[test]
fn a_taken_port_is_named_without_a_backtrace() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("btyd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--web-listen", &addr])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "btyd started on a taken port");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

/// Upstream's `BTY_*` variables set config keys (a flag still wins), a
/// bad value is refused naming the variable, an unused one is named in a
/// warning, and an alias passes the same checks as the key: a web listener
/// off loopback without TLS is refused however it was asked for.
#[test]
fn upstream_environment_variables_are_config_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("btyd.toml");
    std::fs::write(&config, "[hashing]\nmax_parallel = 2\n").unwrap();
    let state = dir.path().join("from-env");
    let check = |vars: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(bin("btyd"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .arg("--check-config")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, resolved, stderr) = check(
        &[
            ("BTY_STATE_DIR", state.to_str().unwrap()),
            ("BTY_HASH_MAX_PARALLEL", "3"),
            ("BTY_WEB_PORT", "9123"),
            ("BTY_CATALOG_FILE", "/elsewhere/catalog.toml"),
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(
        resolved.contains(&format!("state_dir: {state:?}")),
        "{resolved}"
    );
    assert!(resolved.contains("hashing_max_parallel: 3"), "{resolved}");
    assert!(resolved.contains("127.0.0.1:9123"), "{resolved}");
    assert!(
        stderr.contains("BTY_CATALOG_FILE") && stderr.contains("not read"),
        "{stderr}"
    );

    let (ok, resolved, stderr) = check(
        &[("BTY_STATE_DIR", state.to_str().unwrap())],
        &["--state-dir", "/srv/flag"],
    );
    assert!(ok, "{stderr}");
    assert!(resolved.contains("state_dir: \"/srv/flag\""), "{resolved}");

    let (ok, _, stderr) = check(&[("BTY_HASH_MAX_PARALLEL", "0")], &[]);
    assert!(!ok, "a zero worker count was accepted");
    assert!(stderr.contains("BTY_HASH_MAX_PARALLEL"), "{stderr}");

    let (ok, _, stderr) = check(&[("BTY_WEB_HOST", "0.0.0.0")], &[]);
    assert!(!ok, "a plain-HTTP listener off loopback was accepted");
    assert!(stderr.contains("web.listen"), "{stderr}");
}
