//! Support for the web end-to-end tests: the Origin a browser would send,
//! a logged-in browser session, a streaming PUT that copes with early
//! answers, and a WebDriver client for a real headless Chromium.

pub mod axe;
pub mod webdriver;

use crate::Daemon;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

impl Daemon {
    /// The `Origin` a browser on this daemon's pages sends.
    pub fn origin(&self) -> String {
        format!("http://{}", self.web)
    }

    /// The login URL btyd logged at start (`/login?token=…`).
    pub fn login_url(&self) -> String {
        format!("{}/login?token={}", self.origin(), self.web_token())
    }

    /// Log in as a browser does with the start-up URL: the session cookie
    /// and the CSRF token its pages carry.
    pub fn login(&self) -> Session {
        let path = format!("/login?token={}", self.web_token());
        let reply = crate::http::request(self.web, "GET", &path, &[], b"");
        assert_eq!(
            reply.status,
            303,
            "login with the start-up URL: {}",
            reply.text()
        );
        let cookie = reply
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let page = crate::http::request(self.web, "GET", "/ui/login", &[("Cookie", &cookie)], b"");
        let html = page.text();
        let marker = "name=\"csrf-token\" content=\"";
        let start = html.find(marker).expect("csrf meta") + marker.len();
        let csrf = html[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(csrf.len(), 64, "{html}");
        Session {
            cookie,
            csrf,
            origin: self.origin(),
        }
    }
}

/// A logged-in browser: what its same-origin requests carry.
#[derive(Debug, Clone)]
pub struct Session {
    /// `bty_session=…`.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// `http://addr` of the listener.
    pub origin: String,
}

impl Session {
    /// Cookie, CSRF header and Origin, as the pages' script sends them.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Origin", self.origin.as_str()),
        ]
    }
}

/// Status and body of a PUT whose body is written while the answer is
/// read, so a server that answers early (413) is seen, not a broken pipe.
pub fn put_streaming(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || {
        // The server may stop reading once it has answered.
        for piece in body.chunks(64 * 1024) {
            if writer.write_all(piece).is_err() {
                return;
            }
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no answer to PUT {path}: {e}"),
            Err(_) => break,
        }
    }
    let _ = sender.join();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
