//! Support for bty's end-to-end tests: run the real `btyd` and `btyctl`
//! binaries in a temp dir, talk to them over their socket and HTTP, and
//! clean up (kill, remove) when a test ends — also when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod http;
pub mod loopdev;
pub mod origin;
pub mod registry;
pub mod tls;
pub mod web;

/// The workspace's `target/<profile>` directory holding the binaries.
pub fn bin_dir() -> PathBuf {
    // Integration tests run from target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_owned()
}

/// Path of a workspace binary (built by `cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// An unused loopback port (bound then released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Poll `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// sha256 of a file, with the standard tool.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_owned()
}

/// Run a command and insist it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running btyd in its own temp state dir.
pub struct Daemon {
    child: Option<Child>,
    /// Temp dir holding everything (removed on drop).
    pub dir: tempfile::TempDir,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `<state>/images`.
    pub image_root: PathBuf,
    /// The gRPC socket.
    pub socket: PathBuf,
    /// The web listener.
    pub web: SocketAddr,
    config: Option<PathBuf>,
    /// Extra environment for btyd (e.g. `SSL_CERT_FILE`).
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Daemon {
    /// A fresh state dir; `prepare` may put files in place before start.
    pub fn start_with(prepare: impl FnOnce(&Path, &Path)) -> Self {
        Self::start_configured("", prepare)
    }

    /// Like [`Daemon::start_with`], with a config file of `config_toml`
    /// (empty = none) passed as `--config`.
    pub fn start_configured(config_toml: &str, prepare: impl FnOnce(&Path, &Path)) -> Self {
        Self::start_with_env(config_toml, &[], prepare)
    }

    /// Like [`Daemon::start_configured`], with extra environment variables.
    pub fn start_with_env(
        config_toml: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path, &Path),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let state_dir = dir.path().join("state");
        let image_root = state_dir.join("images");
        std::fs::create_dir_all(&image_root).unwrap();
        prepare(&state_dir, &image_root);
        let config = (!config_toml.is_empty()).then(|| {
            let path = dir.path().join("btyd.toml");
            std::fs::write(&path, config_toml).expect("config file");
            path
        });
        let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut daemon = Self {
            config,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            socket: state_dir.join("btyd.sock"),
            log: dir.path().join("btyd.log"),
            dir,
            state_dir,
            image_root,
            web,
        };
        daemon.spawn();
        daemon
    }

    /// A fresh, empty daemon.
    pub fn start() -> Self {
        Self::start_with(|_, _| {})
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(bin("btyd"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--web-listen")
            .arg(self.web.to_string())
            .env("BTY_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("btyd starts");
        self.child = Some(child);
        wait_for(Duration::from_secs(30), "btyd to answer", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("btyd exited early ({status}):\n{}", self.log());
            }
            // Any gRPC answer will do (the listing may be large).
            let ok = TcpStream::connect(self.web).is_ok()
                && self.ctl(&["jobs", "list", "--json"]).status.success();
            ok.then_some(())
        });
    }

    /// btyd's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything btyd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = rustix_pid(&child);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again on the same state dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Run btyctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args).output().expect("btyctl runs")
    }

    /// btyctl against this daemon, to spawn (a command that keeps running).
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("btyctl"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `btyctl --json fetch NAME`: its exit code and the job it printed.
    pub fn fetch(&self, name: &str) -> (Option<i32>, serde_json::Value) {
        let out = self.ctl(&["--json", "fetch", name]);
        let job = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no job printed: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), job)
    }

    /// The job with this id, as `btyctl --json jobs list` shows it.
    pub fn job(&self, id: &str) -> serde_json::Value {
        self.ctl_json(&["jobs", "list"])
            .as_array()
            .expect("jobs list prints an array")
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no job {id}"))
    }

    /// Run `btyctl --json …`, insist on success, parse stdout.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.ctl(&full);
        assert!(
            out.status.success(),
            "btyctl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "btyctl {args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `btyctl --json flash ARGS… --yes`, which may fail: its exit code,
    /// the job it printed (`Null` if none) and its stderr.
    pub fn flash(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let mut full = vec!["--json", "flash"];
        full.extend_from_slice(args);
        full.push("--yes");
        let out = self.ctl(&full);
        let job = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.code().unwrap_or(-1),
            job,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The names in the image root, sorted.
    /// Bytes in the download partials (`*.partial`) of the image root.
    pub fn partial_bytes(&self) -> u64 {
        partial_bytes(&self.image_root)
    }

    pub fn image_root_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.image_root)
            .expect("image root")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// `images list --json` as an array.
    pub fn images(&self) -> Vec<serde_json::Value> {
        self.ctl_json(&["images", "list"])
            .as_array()
            .cloned()
            .expect("an array")
    }

    /// The web access token this btyd made at start (`<state>/web-token`,
    /// rewritten at every start).
    pub fn web_token(&self) -> String {
        let path = self.state_dir.join("web-token");
        wait_for(Duration::from_secs(10), "btyd to write web-token", || {
            std::fs::read_to_string(&path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        })
    }

    /// A request to the web listener as an API client: with
    /// `Authorization: Bearer <web token>`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> http::Response {
        let bearer = format!("Bearer {}", self.web_token());
        let mut all = vec![("Authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        http::request(self.web, method, path, &all, body)
    }

    /// GET a path on the web listener as an API client (bearer token).
    pub fn get(&self, path: &str) -> http::Response {
        self.request("GET", path, &[], b"")
    }

    /// GET a path with no credential at all.
    pub fn get_anonymous(&self, path: &str) -> http::Response {
        http::request(self.web, "GET", path, &[], b"")
    }
}

fn rustix_pid(child: &Child) -> u32 {
    child.id()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- btyd log ---\n{}", self.log());
        }
    }
}

/// Write `bytes` to `dir/name` via a temp name + rename, like an operator's
/// `cp` into place would ideally do, so the watcher sees one complete file.
pub fn drop_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let tmp = dir.join(format!(".incoming-{name}"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    let dest = dir.join(name);
    std::fs::rename(&tmp, &dest).unwrap();
    dest
}

/// Deterministic pseudo-random bytes (xorshift), so images have real entropy.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Read a whole file to a string.
pub fn read_to_string(path: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Bytes in the download partials (`*.partial`) directly under `dir`; a
/// resumed download needs to fetch only what they lack.
pub fn partial_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("image root")
        .map(|e| e.expect("dir entry"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .map(|e| e.metadata().expect("partial's metadata").len())
        .sum()
}

/// Percent-encode a query value (every byte but RFC 3986's unreserved).
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
