//! A minimal W3C WebDriver client for a real headless Chromium driven by
//! `chromedriver`: enough to open pages, click, type, upload files, run
//! scripts and take screenshots. The driver and browser are stopped when
//! the [`Browser`] drops.

use crate::{free_port, wait_for};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's packages install them.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// `chromium-driver`'s binary.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C key of element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether browser tests can run here. Missing tools fail the test unless
/// `BTY_SKIP_BROWSER=1`, then they skip with a message (`false`).
pub fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if present {
        return true;
    }
    if std::env::var("BTY_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "skipping browser test: {CHROMIUM} or {CHROMEDRIVER} missing (BTY_SKIP_BROWSER=1)"
        );
        return false;
    }
    panic!(
        "{CHROMIUM} or {CHROMEDRIVER} missing: install chromium chromium-driver (scripts/test does)"
    );
}

/// A browser session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    log: PathBuf,
}

impl Browser {
    /// Start chromedriver on a free port and a headless Chromium session.
    pub fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        wait_for(Duration::from_secs(20), "chromedriver to answer", || {
            std::net::TcpStream::connect(addr).ok().map(|_| ())
        });
        let data_dir = profile.path().join("chromium");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The console, for CSP violations and script errors.
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                    format!("--user-data-dir={}", data_dir.display()),
                ]
            }
        }}});
        let mut browser = Self {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
            log,
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; panics with the driver's message on errors.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|(status, value)| {
                panic!("webdriver {method} {path} failed ({status}): {value}")
            })
    }

    /// One WebDriver command; the driver's status and answer on errors.
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (u16, Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, answer) = exchange(self.addr, method, path, &body);
        let value: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if status == 200 {
            Ok(value["value"].clone())
        } else {
            Err((status, value))
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Navigate and wait for the load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<String> {
        let body = json!({"using": "css selector", "value": css});
        let path = format!("/session/{}/elements", self.session);
        let found = self.call("POST", &path, Some(body));
        found.as_array()?.first()?[ELEMENT]
            .as_str()
            .map(str::to_owned)
    }

    /// The element matching `css`, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> String {
        wait_for(Duration::from_secs(10), &format!("element {css}"), || {
            self.try_find(css)
        })
    }

    /// Click the element matching `css`. A live page may replace it
    /// between finding and clicking (the flash page re-reads its disk rows
    /// when any disk comes or goes): then it is found again.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let element = self.find(css);
            let path = format!("/session/{}/element/{element}/click", self.session);
            match self.try_call("POST", &path, Some(json!({}))) {
                Ok(_) => return,
                Err((_, value)) if value["value"]["error"] == "stale element reference" => {}
                Err((status, value)) => panic!("webdriver POST {path} failed ({status}): {value}"),
            }
        }
        panic!("{css} was replaced five times in a row before it could be clicked");
    }

    /// Type into (or, for file inputs, choose a file with) `css`.
    pub fn send_keys(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Run `script` (a function body; `arguments` are `args`) and return
    /// its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Poll `script` until it returns something truthy; return it.
    pub fn wait_js(&self, timeout: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, json!([]));
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; page text:\n{}",
                self.execute(
                    "return document.body ? document.body.innerText : ''",
                    json!([])
                )
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The browser console's messages since the last call (chromedriver's
    /// log endpoint): each as `LEVEL message`.
    pub fn console(&self) -> Vec<String> {
        let entries = self.session_call("POST", "/se/log", Some(json!({"type": "browser"})));
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Resize the browser window (WebDriver `window/rect`), e.g. to a
    /// phone's 390×844; returns the page's inner size afterwards, which is
    /// what media queries see.
    pub fn set_window_size(&self, width: u32, height: u32) -> (u64, u64) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
        let inner = self.execute("return [window.innerWidth, window.innerHeight]", json!([]));
        (
            inner[0].as_u64().unwrap_or_default(),
            inner[1].as_u64().unwrap_or_default(),
        )
    }

    /// Let the page use the clipboard (Chromium asks otherwise).
    pub fn grant_clipboard(&self) {
        for name in ["clipboard-read", "clipboard-write"] {
            self.session_call(
                "POST",
                "/permissions",
                Some(json!({"descriptor": {"name": name}, "state": "granted"})),
            );
        }
    }

    /// Save a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.session_call("GET", "/screenshot", None);
        let png = base64_decode(data.as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// What chromedriver logged (for failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exchange(self.addr, "DELETE", &path, "")
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP exchange with the driver. chromedriver keeps connections
/// open whatever the request says, so the body is read by its length.
fn exchange(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect to chromedriver");
    stream.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("write to chromedriver");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).expect("header") == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut answer = Vec::new();
    match length {
        Some(n) => {
            answer.resize(n, 0);
            reader.read_exact(&mut answer).expect("body");
        }
        None => {
            reader.read_to_end(&mut answer).expect("body");
        }
    }
    (status, answer)
}

/// Standard base64 (screenshots), ignoring padding and whitespace.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Where screenshots go: `target/artifacts/screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    crate::bin_dir()
        .parent()
        .expect("target dir")
        .join("artifacts")
        .join("screenshots")
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_base64() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("YQ=="), b"a");
    }
}
