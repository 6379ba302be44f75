//! The daemon surfaces: one real btyd, fed each hostile input through
//! btyctl or raw HTTP, with the stored state compared before and after.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bty_e2e::web::Session;
use bty_e2e::{Daemon, drop_file, noise, wait_for};

use super::manifest::{Case, clip};

/// A stored catalog with unknown keys, which a rewrite would reorder: any
/// write to catalog.toml shows up as changed bytes.
const STORED: &str = r#"version = 1
site = "lab-3"

[[images]]
name = "remote"
src = "https://example.invalid/remote.img.gz"
format = "img.gz"
rack = "b7"
"#;

/// The one btyd every daemon case runs against.
pub(crate) struct Fixture {
    pub(crate) daemon: Daemon,
    scratch: tempfile::TempDir,
    payload: PathBuf,
    sink: Sink,
    /// A logged-in browser, whose cookie and CSRF header http cases send.
    session: Session,
}

/// A loopback HTTP server (`@SINK@` in cases) that answers 404 and keeps
/// every request head: no refused URL may ever reach it.
struct Sink {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        // Detached: it dies with the test process.
        std::thread::spawn(move || {
            for mut stream in listener.incoming().filter_map(Result::ok) {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut buf = vec![0u8; 16 << 10];
                let n = stream.read(&mut buf).unwrap_or(0);
                seen.lock()
                    .expect("sink lock")
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Self { addr, heads }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.heads.lock().expect("sink lock"))
    }
}

/// What is stored: catalog.toml's bytes and the image root's listing.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    catalog: Vec<u8>,
    listing: Vec<(String, u64, std::time::SystemTime)>,
}

impl Fixture {
    /// Start btyd with a catalog and one image, and wait until the image is
    /// hashed, so no background write lands during a case.
    pub(crate) fn start() -> Self {
        let daemon = Daemon::start_with(|state, root| {
            std::fs::write(state.join("catalog.toml"), STORED).expect("write catalog");
            drop_file(root, "seed.img", &noise(64 << 10, 3));
            // What a bty group member can plant: a name in the image root
            // that points at a root-only host file.
            std::os::unix::fs::symlink("/etc/shadow", root.join("planted.img"))
                .expect("plant a symlink");
        });
        wait_for(Duration::from_secs(30), "seed.img to be hashed", || {
            let hashed = daemon.images().iter().any(|row| {
                row["names"].to_string().contains("seed.img") && row["sha256"].is_string()
            });
            let sidecar = daemon.image_root.join("seed.img.sha256").exists();
            (hashed && sidecar).then_some(())
        });
        let scratch = tempfile::tempdir().expect("scratch dir");
        let payload = scratch.path().join("payload.img");
        std::fs::write(&payload, noise(4096, 5)).expect("write payload");
        let session = daemon.login();
        Self {
            daemon,
            scratch,
            payload,
            sink: Sink::start(),
            session,
        }
    }

    fn stored(&self) -> Stored {
        let catalog = std::fs::read(self.daemon.state_dir.join("catalog.toml")).unwrap_or_default();
        let mut listing: Vec<_> = std::fs::read_dir(&self.daemon.image_root)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let meta = e.metadata().ok()?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        Some((name, meta.len(), meta.modified().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        listing.sort();
        Stored { catalog, listing }
    }

    /// Run `case` on one daemon surface; `Ok` when refused as expected and
    /// nothing stored changed.
    pub(crate) fn run(&self, case: &Case, surface: &str) -> Result<(), String> {
        let before = self.stored();
        let result = match surface {
            "http" => self.http(case),
            _ => self.ctl(case, surface),
        };
        let after = self.stored();
        if let Some(head) = self.sink.take().first() {
            return Err(format!(
                "btyd sent a request for a refused input: {}",
                clip(head.trim())
            ));
        }
        if after != before {
            return Err(format!(
                "stored state changed ({}); {}",
                describe_change(&before, &after),
                match &result {
                    Ok(()) => "the case itself passed".to_owned(),
                    Err(e) => e.clone(),
                }
            ));
        }
        result
    }

    fn ctl(&self, case: &Case, surface: &str) -> Result<(), String> {
        let text = case.text();
        let file = self.scratch.path().join(format!("{}.input", case.id));
        let args: Vec<&str> = match surface {
            "import" => {
                std::fs::write(&file, case.bytes()).map_err(|e| e.to_string())?;
                vec!["catalog", "import", path_str(&file)?]
            }
            "hash" => vec!["hash", &text],
            "upload" => vec!["upload", path_str(&self.payload)?, "--name", &text],
            "add" => vec!["entries", "add", &text],
            other => return Err(format!("unknown daemon surface {other:?}")),
        };
        let out = self.daemon.ctl(&args);
        let _ = std::fs::remove_file(&file);
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = case.code.unwrap_or(5);
        if code != want {
            return Err(format!(
                "btyctl {surface} exited {code}, want {want}: {}",
                clip(stderr.trim())
            ));
        }
        case.check_message(&stderr)
    }

    fn http(&self, case: &Case) -> Result<(), String> {
        let request = self.request_bytes(case);
        let response = send_raw(self.daemon.web, &request)?;
        if !case.status.is_empty() && !case.status.contains(&response.status) {
            return Err(format!(
                "HTTP status {}, want one of {:?}: {}",
                response.status,
                case.status,
                clip(&response.text)
            ));
        }
        case.check_message(&response.text)
    }

    /// The raw request: `raw`/`raw_hex` verbatim, else built from method,
    /// path, headers and body with the case's credential (`auth`). `@ADDR@`
    /// is the listener's address, `@PORT@` its port, `@SINK@` the sink's, `@TOKEN@` the web
    /// access token, `@COOKIE@`/`@CSRF@` the fixture session's cookie and
    /// CSRF token, and `@FILLn@` the case's fills.
    fn request_bytes(&self, case: &Case) -> Vec<u8> {
        let addr = self.daemon.web.to_string();
        let sink = self.sink.addr.to_string();
        let token = self.daemon.web_token();
        let fill = |s: &str| {
            let mut s = s
                .replace("@ADDR@", &addr)
                .replace("@PORT@", &self.daemon.web.port().to_string())
                .replace("@SINK@", &sink)
                .replace("@TOKEN@", &token)
                .replace("@COOKIE@", &self.session.cookie)
                .replace("@CSRF@", &self.session.csrf);
            let count = case.fill_count.unwrap_or(1);
            for (i, f) in case.fill.iter().enumerate() {
                s = s.replace(&format!("@FILL{i}@"), &f.repeat(count));
            }
            s
        };
        if let Some(raw) = &case.raw {
            return fill(raw).into_bytes();
        }
        if let Some(hex) = &case.raw_hex {
            // Bytes that are not UTF-8 go out verbatim, no substitution.
            return hex_bytes(hex);
        }
        let body = fill(case.body.as_deref().unwrap_or_default());
        let mut head = format!(
            "{} {} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            case.method.as_deref().unwrap_or("GET"),
            fill(case.path.as_deref().unwrap_or("/")),
            body.len()
        );
        let has = |name: &str| {
            case.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        match case.auth.as_deref().unwrap_or("session") {
            "none" => {}
            "bearer" => head.push_str(&format!("Authorization: Bearer {token}\r\n")),
            _ => head.push_str(&format!(
                "Cookie: {}\r\nX-CSRF-Token: {}\r\n",
                self.session.cookie, self.session.csrf
            )),
        }
        for (name, value) in &case.headers {
            head.push_str(&format!("{}: {}\r\n", fill(name), fill(value)));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

fn describe_change(before: &Stored, after: &Stored) -> String {
    let mut what = Vec::new();
    if before.catalog != after.catalog {
        what.push(format!(
            "catalog.toml now: {}",
            clip(&String::from_utf8_lossy(&after.catalog))
        ));
    }
    if before.listing != after.listing {
        let names = |s: &Stored| {
            s.listing
                .iter()
                .map(|(n, ..)| n.clone())
                .collect::<Vec<_>>()
        };
        what.push(format!(
            "image root {:?} -> {:?}",
            names(before),
            names(after)
        ));
    }
    what.join("; ")
}

/// What came back: status 0 when the server closed without an answer.
struct RawResponse {
    status: u16,
    /// Body and `Location`, percent-decoded, for message checks.
    text: String,
}

/// Send bytes as they are (hostile requests are not valid HTTP) and read
/// whatever comes back until the server closes or 5 s pass.
fn send_raw(addr: std::net::SocketAddr, request: &[u8]) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    // The server may answer and close before reading a huge request; a
    // failed write is then expected, the answer is what counts. No
    // half-close: hyper takes a read EOF for a client that went away.
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
        })
        .map(|(_, v)| percent_decode(v.trim()))
        .unwrap_or_default();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(RawResponse {
        status,
        text: format!("{body}\n{location}"),
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    hex.chunks(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}
