//! Logging in to a real btyd's web listener: the start-up token URL and
//! its file, the login limiter, argon2id passwords, where a login may send
//! the browser, and HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::{Daemon, bin, free_port, http, run, wait_for};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_start_up_url_logs_in_and_wrong_tokens_are_limited() {
    let daemon = Daemon::start();
    let token = daemon.web_token();
    assert_eq!(token.len(), 64);
    let file = daemon.state_dir.join("web-token");
    let mode = std::fs::symlink_metadata(&file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "web-token must be private");
    let url = daemon.login_url();
    assert!(
        daemon.log().contains(&url),
        "login URL not logged:\n{}",
        daemon.log()
    );

    let reply = daemon.get_anonymous(&format!("/login?token={token}"));
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/ui/images"));
    let cookie = reply.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap();
    let page = http::request(daemon.web, "GET", "/ui/images", &[("Cookie", cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Log out"));

    let mut statuses = Vec::new();
    for i in 0..11 {
        let guess = daemon.get_anonymous(&format!("/login?token=guess{i}"));
        statuses.push(guess.status);
        assert!(guess.header("set-cookie").is_none());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    let limited = daemon.get_anonymous(&format!("/login?token={token}"));
    assert_eq!(limited.status, 429, "the limiter checked a secret anyway");
    assert!(limited.header("retry-after").is_some());
    // The browser that logged in before keeps working.
    let page = http::request(daemon.web, "GET", "/ui/flash", &[("Cookie", cookie)], b"");
    assert_eq!(page.status, 200);

    // A restart makes a new token; the old one is dead.
    let mut daemon = daemon;
    daemon.restart();
    let fresh = daemon.web_token();
    assert_ne!(fresh, token);
    let old = http::request(
        daemon.web,
        "GET",
        "/catalog/downloads",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(old.status, 401);
    assert_eq!(daemon.get("/catalog/downloads").status, 200);
}

fn hash_password(password: &str) -> String {
    let mut child = Command::new(bin("btyd"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn argon2id_passwords_log_in_and_a_configured_token_is_not_logged() {
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_ne!(hash, hash_password("correct horse"), "hashes are salted");
    let token = "configured-token-0123456789";
    let config = format!("[web]\npassword_hash = \"{hash}\"\ntoken = \"{token}\"\n");
    let daemon = Daemon::start_configured(&config, |_, _| {});
    let origin = daemon.origin();
    let login = |password: &str| {
        http::request(
            daemon.web,
            "POST",
            "/ui/login",
            &[
                ("Origin", &origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("password={}&next=%2Fui%2Fflash", password.replace(' ', "+")).as_bytes(),
        )
    };
    assert_eq!(login("wrong horse").status, 401);
    let ok = login("correct horse");
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/ui/flash"));
    assert!(ok.header("set-cookie").unwrap().starts_with("bty_session="));
    let bearer = http::request(
        daemon.web,
        "GET",
        "/catalog/downloads",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(bearer.status, 200);
    assert!(
        !daemon.log().contains(token),
        "a configured token was logged"
    );
    assert!(!daemon.state_dir.join("web-token").exists());
}

#[test]
fn logins_never_send_the_browser_off_site() {
    let daemon = Daemon::start();
    let token = daemon.web_token();
    for next in [
        "/%09/evil.example",
        "%2F%09%2Fevil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/%2f%2fevil.example",
        "https://evil.example",
        "/ui/../..//evil.example",
        "/ui/%0d%0aSet-Cookie:%20x=y",
    ] {
        let reply = daemon.get_anonymous(&format!("/login?token={token}&next={next}"));
        assert_eq!(reply.status, 303, "{next}");
        assert_eq!(reply.header("location"), Some("/ui/images"), "{next}");
    }
    let kept = daemon.get_anonymous(&format!("/login?token={token}&next=%2Fui%2Fflash"));
    assert_eq!(kept.header("location"), Some("/ui/flash"));
}

/// A self-signed certificate for 127.0.0.1 and localhost.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null()));
    (cert, key)
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-i"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn tls_serves_https_with_secure_cookies() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let config = format!(
        "[web]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let daemon = Daemon::start_configured(&config, |_, _| {});
    let base = format!("https://127.0.0.1:{}", daemon.web.port());
    let cacert = cert.to_str().unwrap();
    let (ok, text) = curl(&["--cacert", cacert, &format!("{base}/healthz")]);
    assert!(
        ok && text.contains("200") && text.ends_with(r#"{"status":"ok"}"#),
        "{text}"
    );
    assert!(
        daemon.log().contains(&format!("{base}/login?token=")),
        "{}",
        daemon.log()
    );
    let (ok, text) = curl(&[
        "--cacert",
        cacert,
        &format!("{base}/login?token={}", daemon.web_token()),
    ]);
    assert!(ok, "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {text}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets no page.
    let (_, text) = curl(&[&format!("http://127.0.0.1:{}/healthz", daemon.web.port())]);
    assert!(!text.contains("200 OK"), "{text}");
    // A client that does not trust the certificate stops.
    let (ok, _) = curl(&[&format!("{base}/healthz")]);
    assert!(!ok);
}

#[test]
fn plain_http_off_loopback_starts_only_with_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = |config: &str| {
        let path = dir.path().join("btyd.toml");
        std::fs::write(&path, config).unwrap();
        Command::new(bin("btyd"))
            .arg("--config")
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--web-listen")
            .arg(format!("0.0.0.0:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let refused = start("").wait_with_output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("tls_cert") && stderr.contains("insecure"),
        "{stderr}"
    );

    let mut child = start("[web]\ninsecure = true\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = wait_for(Duration::from_secs(30), "btyd on 0.0.0.0", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("btyd exited: {status}");
        }
        std::net::TcpStream::connect(addr)
            .ok()
            .map(|_| http::request(addr, "GET", "/healthz", &[], b""))
            .filter(|r| r.status == 200)
    });
    assert_eq!(health.text(), r#"{"status":"ok"}"#);
    // Still only with a credential.
    assert_eq!(
        http::request(addr, "GET", "/ui/flash", &[], b"").status,
        303
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn standalone_bty_web_prints_its_login_url_and_checks_hosts() {
    use std::io::{BufRead as _, BufReader};
    let daemon = Daemon::start();
    let port = free_port();
    let mut child = Command::new(bin("bty-web"))
        .arg("--endpoint")
        .arg(&daemon.socket)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--host",
            "bty.lab",
        ])
        .env("BTY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let url = stderr
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_once("log in at ")
                .map(|(_, url)| url.trim().to_owned())
        })
        .expect("a login URL on stderr");
    let prefix = format!("http://127.0.0.1:{port}/login?token=");
    assert!(url.starts_with(&prefix), "{url}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let login = http::request(addr, "GET", &url[prefix.len() - 13..], &[], b"");
    assert_eq!(login.status, 303, "{}", login.text());
    assert!(login.header("set-cookie").is_some());
    assert_eq!(
        http::request(addr, "GET", "/ui/images", &[], b"").status,
        303
    );
    let named = |host: &str| {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let head = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
            .split_whitespace()
            .nth(1)
            .unwrap_or("0")
            .parse::<u16>()
            .unwrap()
    };
    assert_eq!(named("bty.lab:80"), 200);
    assert_eq!(named("evil.example"), 421);
    let _ = child.kill();
    let _ = child.wait();
}
