//! Support for the web end-to-end tests: the Origin a browser would send,
//! a streaming PUT that copes with early answers, and a WebDriver client
//! for a real headless Chromium.

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
