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

/// Everything under the state dir (the image root, its sidecars and the
/// storage marker included, as it lives inside it here), by path relative to
/// the state dir. Nothing is left out: the daemon's log is written outside
/// the state dir (see `bty_e2e::Daemon`), the socket is compared as a
/// socket (no content), and directories only by presence and mode, since
/// their mtime moves whenever a temp file comes and goes, which a refused
/// upload legitimately does. Files are compared by kind, mode, size, mtime
/// and sha256, so a rewrite with the same bytes still shows.
#[derive(Debug, PartialEq, Eq)]
struct Stored(std::collections::BTreeMap<String, Entry>);

/// One path of the state dir as the comparison sees it.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        mtime: std::time::SystemTime,
        sha256: String,
    },
    /// Not followed: the planted link to /etc/shadow stays a link.
    Symlink {
        target: PathBuf,
    },
    /// The gRPC socket, and anything else that is neither.
    Other {
        mode: u32,
    },
}

impl Stored {
    fn read(root: &Path) -> Self {
        let mut entries = std::collections::BTreeMap::new();
        walk(root, root, &mut entries);
        Self(entries)
    }
}

fn walk(root: &Path, dir: &Path, into: &mut std::collections::BTreeMap<String, Entry>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for item in listing.filter_map(Result::ok) {
        let path = item.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            // Gone between the listing and the stat: a temp file.
            continue;
        };
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        // The event log records every request, refused ones too: it is
        // meant to change (tests/tests/event_log.rs covers it).
        if name.ends_with("events.jsonl") || name.ends_with("events.jsonl.tmp") {
            continue;
        }
        let mode = meta.permissions().mode();
        let entry = if meta.file_type().is_symlink() {
            Entry::Symlink {
                target: std::fs::read_link(&path).unwrap_or_default(),
            }
        } else if meta.is_dir() {
            walk(root, &path, into);
            Entry::Dir { mode }
        } else if meta.is_file() {
            Entry::File {
                mode,
                size: meta.len(),
                mtime: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                sha256: std::fs::read(&path)
                    .map(|bytes| bty_store::digest::sha256_bytes(&bytes))
                    .unwrap_or_default(),
            }
        } else {
            Entry::Other { mode }
        };
        into.insert(name, entry);
    }
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
        // The snapshot sees the whole state dir, not an empty listing.
        let stored = Stored::read(&daemon.state_dir);
        for path in [
            "catalog.toml",
            "web-token",
            "btyd.sock",
            "images/.bty-storage.json",
            "images/seed.img",
            "images/seed.img.sha256",
            "images/planted.img",
        ] {
            assert!(
                stored.0.contains_key(path),
                "the state snapshot misses {path}: {:?}",
                stored.0.keys()
            );
        }
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
        Stored::read(&self.daemon.state_dir)
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
                describe_change(&self.daemon.state_dir, &before, &after),
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

    /// One raw request. A case either expects an answer (`status`, and
    /// `expect` in what it says) or, with `expect_close`, the connection
    /// closed without one. No answer in time is always a failure: a server
    /// that hangs on a hostile request is a bug, not a refusal.
    fn http(&self, case: &Case) -> Result<(), String> {
        let request = self.request_bytes(case);
        let response = send_raw(self.daemon.web, &request)?;
        match (response.status, case.expect_close) {
            (None, true) => Ok(()),
            (Some(status), true) => Err(format!(
                "HTTP status {status}, want the connection closed without an answer: {}",
                clip(&response.message)
            )),
            (None, false) => Err(format!(
                "the connection closed without an answer, want one of {:?}",
                case.status
            )),
            (Some(status), false) if !case.status.contains(&status) => Err(format!(
                "HTTP status {status}, want one of {:?}: {}",
                case.status,
                clip(&response.message)
            )),
            (Some(_), false) => case.check_message(&response.message),
        }
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

/// The paths that appeared, went or changed, with catalog.toml's new text
/// when it is one of them.
fn describe_change(state_dir: &Path, before: &Stored, after: &Stored) -> String {
    let mut what = Vec::new();
    for (path, entry) in &after.0 {
        match before.0.get(path) {
            None => what.push(format!("{path} appeared")),
            Some(old) if old != entry => what.push(format!("{path} changed: {old:?} -> {entry:?}")),
            Some(_) => {}
        }
    }
    for path in before.0.keys().filter(|p| !after.0.contains_key(*p)) {
        what.push(format!("{path} went"));
    }
    if before.0.get("catalog.toml") != after.0.get("catalog.toml") {
        let text = std::fs::read(state_dir.join("catalog.toml")).unwrap_or_default();
        what.push(format!(
            "catalog.toml now: {}",
            clip(&String::from_utf8_lossy(&text))
        ));
    }
    what.join("; ")
}

/// How long a case waits for the answer: past the web listener's 30 s
/// body idle timeout, so a request whose body never completes is seen
/// answered (408). Reaching it fails the case.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(45);

/// What came back before the server closed the connection.
struct RawResponse {
    /// `None`: closed (or reset) without a status line.
    status: Option<u16>,
    /// What the server said, for message checks: the body, `Location` and
    /// `Content-Disposition` (percent-decoded); when all are empty (hyper's
    /// own refusals of unparsable requests have no body), the status line.
    message: String,
}

/// Send bytes as they are (hostile requests are not valid HTTP) and read
/// until the server closes. Every request asks for `Connection: close`, so
/// a server still silent after [`ANSWER_TIMEOUT`] has hung: an error.
fn send_raw(addr: std::net::SocketAddr, request: &[u8]) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).ok();
    stream.set_write_timeout(Some(ANSWER_TIMEOUT)).ok();
    // Written from another thread while this one reads: the server may
    // answer and close before reading a huge request, and that answer must
    // be read, not lost behind a blocked write. A failed write is then
    // expected. No half-close: hyper takes a read EOF for a client that
    // went away.
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("clone the stream: {e}"))?;
    let request = request.to_vec();
    let writing = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A close with unread request bytes reaches us as a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break Err(format!(
                    "no answer within {} s: the server hangs on this request{}",
                    ANSWER_TIMEOUT.as_secs(),
                    if raw.is_empty() {
                        String::new()
                    } else {
                        format!(" (after {:?})", clip(&String::from_utf8_lossy(&raw)))
                    }
                ));
            }
            Err(e) => break Err(format!("reading the answer: {e}")),
        }
    };
    // Unblocks the writer if the server stopped reading without closing.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writing.join();
    ended?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status_line = text.lines().next().unwrap_or_default().trim().to_owned();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| percent_decode(v.trim()))
            .unwrap_or_default()
    };
    // A redirect says where in Location, a download what in its file name.
    let location = header("location");
    let disposition = header("content-disposition");
    let message = if body.trim().is_empty() && location.is_empty() && disposition.is_empty() {
        status_line
    } else {
        format!("{body}\n{location}\n{disposition}")
    };
    Ok(RawResponse { status, message })
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
