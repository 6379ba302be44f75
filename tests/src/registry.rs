//! A real OCI registry for tests: Debian's `docker-registry` (CNCF
//! distribution) on a loopback port with filesystem storage in a temp dir,
//! no auth; killed when the handle drops.
//!
//! Only std + `tempfile`, so other crates' tests can include this file with
//! `#[path = "…/tests/src/registry.rs"] mod registry;`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; the process is killed and its storage removed on
/// drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// Temp dir holding the config, the storage and the log.
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Registry {
    /// Start a registry on a free loopback port and wait until `/v2/`
    /// answers. Panics with a hint when the binary is not installed.
    pub fn start() -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: `apt-get install docker-registry` (scripts/test does)"
        );
        // The free port is only reserved until we release it: another
        // process may grab it first, so try a few ports.
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(registry) => return registry,
                Err(log) => last_log = log,
            }
        }
        panic!("docker-registry did not start:\n{last_log}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let storage = dir.path().join("storage");
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        let yaml = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawning {REGISTRY_BIN}: {e}"))?;
        let mut registry = Self {
            child,
            addr,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(format!("exited early ({status}):\n{}", registry.log()));
            }
            if v2_answers(addr) {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on {addr}/v2/:\n{}", registry.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`, as an `oras://` reference host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- docker-registry log ---\n{}", self.log());
        }
    }
}

/// Whether `GET /v2/` answers 200 (a plain HTTP/1.0 exchange).
fn v2_answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// An unused loopback port (bound then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5000)
}
