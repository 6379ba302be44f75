//! The gRPC TCP listener as a network client meets it: TLS with the
//! operator's certificate, the bearer token on every call, no plaintext
//! service behind a TLS port, and no secret printed by `--check-config`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::tls::TestCa;
use bty_e2e::{Daemon, bin, free_port};
use std::process::{Command, Output, Stdio};

const TOKEN: &str = "grpc-token-0123456789abcdef";

fn ctl(endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(bin("btyctl"))
        .env_remove("BTY_TOKEN")
        .env_remove("BTY_TOKEN_FILE")
        .env_remove("BTY_TLS_CA")
        .env_remove("BTY_SOCKET")
        .envs(env.iter().copied())
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("btyctl runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A TLS listener answers only a client that trusts btyd's CA and sends
/// the token; a plaintext client gets nothing, and neither does a client
/// that trusts only the system CAs (the certificate is not theirs).
#[test]
fn the_tcp_listener_speaks_tls_and_wants_the_token() {
    let ca = TestCa::new();
    let port = free_port();
    let config = format!(
        "[grpc]\ntcp = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        ca.cert_pem().display(),
        ca.key_pem().display()
    );
    let daemon = Daemon::start_configured(&config, |_, images| {
        std::fs::write(images.join("tcp.img"), b"served over tls").unwrap();
    });
    let https = format!("https://localhost:{port}");
    let ca_pem = ca.ca_pem.to_str().unwrap();
    let token_file = daemon.dir.path().join("grpc-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();

    // The operator: the CA and the token (file or environment).
    let out = ctl(
        &https,
        &[("BTY_TLS_CA", ca_pem)],
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--json",
            "images",
            "list",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tcp.img"));
    let out = ctl(
        &https,
        &[("BTY_TLS_CA", ca_pem), ("BTY_TOKEN", TOKEN)],
        &["--json", "disks"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // No token, or a wrong one: refused, nothing listed.
    for env in [vec![], vec![("BTY_TOKEN", "grpc-token-guessed-000000000")]] {
        let mut env = env;
        env.push(("BTY_TLS_CA", ca_pem));
        let out = ctl(&https, &env, &["--json", "images", "list"]);
        assert!(!out.status.success(), "a call without the token was served");
        assert!(stderr(&out).contains("bearer token"), "{}", stderr(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("tcp.img"));
    }

    // Plaintext against the TLS port: no gRPC answers in clear.
    let out = ctl(
        &format!("http://localhost:{port}"),
        &[("BTY_TOKEN", TOKEN)],
        &["--json", "images", "list"],
    );
    assert!(!out.status.success(), "the TLS port answered in plaintext");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tcp.img"));

    // A client that does not trust btyd's CA does not send its token.
    let out = ctl(
        &https,
        &[("BTY_TOKEN", TOKEN)],
        &["--json", "images", "list"],
    );
    assert!(
        !out.status.success(),
        "a certificate from an unknown CA was trusted"
    );

    // A CA file that is not there is named.
    let out = ctl(
        &https,
        &[("BTY_TOKEN", TOKEN), ("BTY_TLS_CA", "/nonexistent/ca.pem")],
        &["images", "list"],
    );
    assert!(
        stderr(&out).contains("/nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
    drop(daemon);
}

fn check_config(config: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("btyd.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(bin("btyd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .arg("--check-config")
        .output()
        .unwrap()
}

/// The token can start flashes: in clear off loopback only when the
/// operator wrote `insecure = true`.
#[test]
fn plain_tcp_off_loopback_is_refused_unless_insecure() {
    let base = format!(
        "[grpc]\ntcp = \"0.0.0.0:{}\"\ntoken = \"{TOKEN}\"\n",
        free_port()
    );
    let out = check_config(&base, &[]);
    assert!(!out.status.success(), "plain TCP on 0.0.0.0 was accepted");
    for key in ["grpc.tcp", "tls_cert", "insecure = true"] {
        assert!(
            stderr(&out).contains(key),
            "{key} not named: {}",
            stderr(&out)
        );
    }
    let out = check_config(&format!("{base}insecure = true\n"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = check_config(&format!("{base}tls_cert = \"/c.pem\"\n"), &[]);
    assert!(stderr(&out).contains("grpc.tls_key"), "{}", stderr(&out));
}

/// `--check-config` output lands in tickets and chat: no token, password
/// or registry secret appears in it.
#[test]
fn check_config_prints_no_secret() {
    let config = format!(
        "[grpc]\ntcp = \"127.0.0.1:{}\"\ntoken = \"{TOKEN}\"\n\n\
         [web]\ntoken = \"web-token-abcdefabcdefabcdef\"\n\n\
         [registries.\"registry.example:5000\"]\nusername = \"ci\"\npassword = \"registry-pass-987654321\"\n",
        free_port()
    );
    let out = check_config(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for secret in [
        TOKEN,
        "web-token-abcdefabcdefabcdef",
        "registry-pass-987654321",
    ] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    assert!(printed.contains("redacted"), "{printed}");
    assert!(printed.contains("registry.example:5000"), "{printed}");
}
