//! Soak: a mixed workload (downloads, uploads, dropped files and hashes,
//! catalog imports, cache removals, flashes to loop devices) against a real
//! btyd that is killed with SIGKILL at random moments and restarted, with
//! the store's invariants checked after every restart once jobs settle.
//!
//! Ignored by `cargo test`; `scripts/soak` builds release binaries, makes the
//! loop devices and runs it. Environment:
//! - `SOAK_KILLS` (default 50): how many SIGKILLs in total;
//! - `SOAK_LOOPS`: comma-separated loop devices to flash (none: no flashes);
//! - `SOAK_DIR`: where the state dir, sources and log go (default: a temp dir);
//! - `SOAK_SEED`: the random seed (default: from the clock; printed).
//!
//! Prints `kills survived: K/N, invariants held: I/N` and fails on any
//! violation, listing each one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{bin, noise};
use bty_store::catalog_file::CatalogFile;
use bty_store::digest::sha256_bytes;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
/// Origin images (entry name, size); the first half are added with
/// `entries add` (every other one pinned), the rest arrive by catalog import.
const ORIGIN_SIZES: [usize; 6] = [8, 16, 24, 32, 48, 64];
/// Files uploaded with `btyctl upload` (sizes of the local sources).
const UPLOAD_SIZES: [usize; 4] = [8, 12, 16, 24];
/// Names in the image root that uploads go to.
const UPLOAD_NAMES: usize = 3;
/// Names of files dropped into the image root by hand.
const DROP_NAMES: usize = 3;
/// Delay per 64 KiB chunk while the workload runs (~15 MiB/s per download),
/// so kills land in the middle of transfers.
const THROTTLE: Duration = Duration::from_micros(4000);
/// How long jobs may take to settle after a restart.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long btyd may take to answer after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// When this cycle's SIGKILL goes out: a random moment, which the workload
/// may bring forward (right after starting an upload or a flash).
struct KillClock {
    start: Instant,
    deadline_ms: AtomicU64,
    killed: AtomicBool,
}

impl KillClock {
    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
    /// Kill no later than `within` from now.
    fn kill_within(&self, within: Duration) {
        let at = self.start.elapsed() + within;
        self.deadline_ms.fetch_min(
            u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
    /// Sleep until the deadline, then mark the kill and send it.
    fn run(&self, pid: u32) {
        while u128::from(self.deadline_ms.load(Ordering::SeqCst)) > self.start.elapsed().as_millis()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.killed.store(true, Ordering::SeqCst);
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}

/// xorshift64*: deterministic for a seed, good enough for choosing moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

struct OriginImage {
    name: String,
    url: String,
    sha: String,
    pinned: bool,
    by_import: bool,
    /// The entry is in the catalog (an add or import was acknowledged).
    added: bool,
    /// What the soak expects: `Some(true)` after an acknowledged fetch,
    /// `Some(false)` after an acknowledged cache removal, `None` unknown.
    want_cached: Option<bool>,
    /// Seen cached at the last check.
    cached: bool,
}

struct Upload {
    name: String,
    /// Contents the file may have: the last acknowledged upload, plus any
    /// upload that was interrupted (it may or may not have been swapped in).
    acceptable: BTreeSet<String>,
    /// An upload to this name was acknowledged.
    acked: bool,
}

struct Drop_ {
    name: String,
    sha: Option<String>,
    seed: u64,
}

enum BgKind {
    Upload {
        slot: usize,
        sha: String,
        racing: bool,
    },
    Flash {
        device: String,
        sha: String,
        len: u64,
    },
    Update {
        entry: usize,
    },
}

struct Bg {
    kind: BgKind,
    child: Child,
    what: String,
}

#[derive(Default)]
struct Stats {
    kills: u32,
    survived: u32,
    startup_kills: u32,
    checks: u32,
    kills_checked_ok: u32,
    interrupted_downloads: u32,
    resumed_downloads_completed: u32,
    partials_after_kill: u32,
    partial_bytes_kept: u64,
    uploads_ok: u32,
    uploads_interrupted: u32,
    flashes_ok: u32,
    flashes_interrupted: u32,
    fetches: u32,
    cache_removals: u32,
    imports: u32,
    drops: u32,
    hash_requests: u32,
    ops_failed_by_kill: u32,
    settle_secs: Vec<f64>,
}

struct Soak {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    state_dir: PathBuf,
    image_root: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
    origin: Origin,
    images: Vec<OriginImage>,
    upload_sources: Vec<(PathBuf, String)>,
    uploads: Vec<Upload>,
    drops: Vec<Drop_>,
    loops: Vec<String>,
    bg: Vec<Bg>,
    rng: Rng,
    stats: Stats,
    violations: Vec<String>,
    /// Sidecars already verified: name → (size, mtime ns, sidecar text).
    verified: HashMap<String, (u64, i128, String)>,
    imports_done: u32,
    /// The current cycle (one or two kills each), for reports.
    cycle: u32,
    /// What this cycle's workload did, in order, for reports.
    ops_log: Vec<String>,
}

fn out_text(out: &Output) -> String {
    format!(
        "exit {:?}: {} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

impl Soak {
    fn new() -> Self {
        let (dir, tmp) = match std::env::var_os("SOAK_DIR") {
            Some(d) => (PathBuf::from(d), None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_owned(), Some(t))
            }
        };
        let state_dir = dir.join("state");
        let image_root = state_dir.join("images");
        std::fs::create_dir_all(&image_root).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("incoming")).unwrap();
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("soak: seed {seed} (SOAK_SEED={seed} repeats the choices)");
        let loops: Vec<String> = std::env::var("SOAK_LOOPS")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();

        let origin = Origin::start();
        let half = ORIGIN_SIZES.len() / 2;
        let images = ORIGIN_SIZES
            .iter()
            .enumerate()
            .map(|(i, &mib)| {
                let bytes = noise(mib * MIB, 1000 + i as u64);
                let sha = sha256_bytes(&bytes);
                let path = format!("os/soak-{i}.img");
                origin.put(&path, bytes);
                OriginImage {
                    name: format!("soak-{i}.img"),
                    url: origin.url(&path),
                    sha,
                    pinned: i % 2 == 0,
                    by_import: i >= half,
                    added: false,
                    want_cached: None,
                    cached: false,
                }
            })
            .collect();
        let upload_sources = UPLOAD_SIZES
            .iter()
            .enumerate()
            .map(|(i, &mib)| {
                let bytes = noise(mib * MIB, 2000 + i as u64);
                let path = dir.join("src").join(format!("upload-src-{i}.img"));
                std::fs::write(&path, &bytes).unwrap();
                (path, sha256_bytes(&bytes))
            })
            .collect();
        let uploads = (0..UPLOAD_NAMES)
            .map(|i| Upload {
                name: format!("up-{i}.img"),
                acceptable: BTreeSet::new(),
                acked: false,
            })
            .collect();
        let drops = (0..DROP_NAMES)
            .map(|i| Drop_ {
                name: format!("drop-{i}.img"),
                sha: None,
                seed: 3000 + i as u64 * 1000,
            })
            .collect();
        Self {
            socket: state_dir.join("btyd.sock"),
            log: dir.join("btyd.log"),
            pid_file: dir.join("btyd.pid"),
            dir,
            _tmp: tmp,
            state_dir,
            image_root,
            child: None,
            origin,
            images,
            upload_sources,
            uploads,
            drops,
            loops,
            bg: Vec::new(),
            rng: Rng(seed | 1),
            stats: Stats::default(),
            violations: Vec::new(),
            verified: HashMap::new(),
            imports_done: 0,
            cycle: 0,
            ops_log: Vec::new(),
        }
    }

    fn violation(&mut self, what: String) {
        let what = if what.starts_with("after kill ") {
            what
        } else {
            format!("in cycle {}: {what}", self.cycle)
        };
        println!("soak: VIOLATION: {what}");
        self.violations.push(what);
    }

    fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("btyctl"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_cmd(args).output().expect("btyctl runs")
    }

    fn ctl_json(&self, args: &[&str]) -> Result<Value, String> {
        let out = self.ctl(args);
        if !out.status.success() {
            return Err(out_text(&out));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("non-JSON ({e}): {}", out_text(&out)))
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start btyd; `wait` = poll until it answers.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin("btyd"))
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--web-listen")
            .arg("off")
            .env("BTY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("btyd starts");
        std::fs::write(&self.pid_file, child.id().to_string()).unwrap();
        self.child = Some(child);
    }

    /// Poll until btyd answers; false if it exited or did not answer in time.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let tail = self.log_tail(30);
                self.violation(format!(
                    "btyd exited on its own ({status}) after a restart; log tail:\n{tail}"
                ));
                self.child = None;
                return false;
            }
            if self.ctl(&["images", "list"]).status.success() {
                return true;
            }
            if Instant::now() > deadline {
                let tail = self.log_tail(30);
                self.violation(format!(
                    "btyd did not answer within {READY_TIMEOUT:?}; log tail:\n{tail}"
                ));
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn image_root_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.image_root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // ----- the workload -------------------------------------------------

    /// One op's failure counts against btyd only if it happened before the
    /// kill was sent.
    fn op_failed(&mut self, clock: &KillClock, what: &str, err: &str) {
        if clock.killed() {
            self.stats.ops_failed_by_kill += 1;
        } else {
            self.violation(format!("{what} failed while btyd was up: {err}"));
        }
    }

    fn workload(&mut self, clock: &KillClock, cycle: u32) {
        let mut ops: Vec<u8> = Vec::new();
        // Every cycle: fetches; most cycles: a drop, an upload, a flash.
        ops.push(b'f');
        if self.rng.chance(50) {
            ops.push(b'f');
        }
        if self.rng.chance(40) || self.images.iter().any(|i| i.by_import && !i.added) {
            ops.push(b'i');
        }
        if self.images.iter().any(|i| !i.by_import && !i.added) {
            ops.push(b'a');
        }
        if self.rng.chance(30) {
            ops.push(b'r');
        }
        if self.rng.chance(15) {
            ops.push(b'u');
        }
        if self.rng.chance(60) {
            ops.push(b'd');
        }
        if self.rng.chance(60) {
            ops.push(b'U');
        }
        if self.rng.chance(15) {
            ops.push(b'R');
        }
        if !self.loops.is_empty() && self.rng.chance(60) {
            ops.push(b'F');
        }
        // Shuffle (Fisher-Yates), then entries first so fetches have targets.
        for i in (1..ops.len()).rev() {
            let j = self.rng.below(i + 1);
            ops.swap(i, j);
        }
        ops.sort_by_key(|&o| u8::from(o != b'a' && o != b'i'));
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for op in ops {
            if clock.killed() {
                break;
            }
            match op {
                b'a' => self.op_add(clock),
                b'i' => self.op_import(clock, cycle),
                b'f' => self.op_fetch(clock, &mut touched),
                b'r' => self.op_cache_rm(clock, &mut touched),
                b'u' => self.op_update(&mut touched),
                b'd' => self.op_drop(clock, &mut touched),
                b'R' => self.op_racing_uploads(&mut touched),
                b'U' => {
                    if self.op_upload(&mut touched) && self.rng.chance(35) {
                        clock.kill_within(self.rng.millis(5, 120));
                    }
                }
                b'F' => {
                    if self.op_flash(&mut touched) && self.rng.chance(35) {
                        clock.kill_within(self.rng.millis(5, 300));
                    }
                }
                _ => unreachable!(),
            }
            std::thread::sleep(self.rng.millis(0, 150));
        }
    }

    fn op_add(&mut self, clock: &KillClock) {
        for i in 0..self.images.len() {
            if self.images[i].by_import || self.images[i].added {
                continue;
            }
            let img = &self.images[i];
            let mut args = vec!["entries", "add", img.url.as_str()];
            if img.pinned {
                args.extend(["--sha256", img.sha.as_str()]);
            }
            let out = self.ctl(&args);
            match out.status.code() {
                Some(0 | 4) => self.images[i].added = true,
                _ => self.op_failed(clock, "entries add", &out_text(&out)),
            }
        }
    }

    fn op_import(&mut self, clock: &KillClock, cycle: u32) {
        let mut toml = String::from("version = 1\n");
        for img in self.images.iter().filter(|i| i.by_import) {
            toml.push_str(&format!(
                "\n[[images]]\nname = \"{}\"\nsrc = \"{}\"\n",
                img.name, img.url
            ));
            if img.pinned {
                toml.push_str(&format!("sha256 = \"{}\"\n", img.sha));
            }
        }
        // A fresh entry each time, so every import writes catalog.toml
        // (never fetched: nothing listens on the discard port).
        toml.push_str(&format!(
            "\n[[images]]\nname = \"extra-{cycle}\"\nsrc = \"http://127.0.0.1:9/extra-{cycle}.img.gz\"\ndescription = \"soak cycle {cycle}\"\n"
        ));
        let path = self.dir.join("src").join("catalog-import.toml");
        std::fs::write(&path, toml).unwrap();
        self.stats.imports += 1;
        self.ops_log.push("import".to_owned());
        match self.ctl_json(&["catalog", "import", path.to_str().unwrap()]) {
            Ok(report) => {
                if report["errors"].as_array().is_some_and(|e| !e.is_empty()) {
                    self.violation(format!("catalog import reported errors: {report}"));
                }
                self.imports_done += 1;
                for img in self.images.iter_mut().filter(|i| i.by_import) {
                    img.added = true;
                }
            }
            Err(e) => self.op_failed(clock, "catalog import", &e),
        }
    }

    fn op_fetch(&mut self, clock: &KillClock, touched: &mut BTreeSet<String>) {
        let candidates: Vec<usize> = (0..self.images.len())
            .filter(|&i| self.images[i].added && !self.images[i].cached)
            .filter(|&i| !touched.contains(&self.images[i].name))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.below(candidates.len())];
        touched.insert(self.images[i].name.clone());
        self.stats.fetches += 1;
        let name = self.images[i].name.clone();
        self.ops_log.push(format!("fetch {name}"));
        match self.ctl_json(&["fetch", &name, "--detach"]) {
            Ok(_) => self.images[i].want_cached = Some(true),
            Err(e) => {
                self.images[i].want_cached = None;
                self.op_failed(clock, &format!("fetch {name}"), &e);
            }
        }
    }

    fn op_cache_rm(&mut self, clock: &KillClock, touched: &mut BTreeSet<String>) {
        let candidates: Vec<usize> = (0..self.images.len())
            .filter(|&i| self.images[i].cached && !touched.contains(&self.images[i].name))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.below(candidates.len())];
        let name = self.images[i].name.clone();
        touched.insert(name.clone());
        self.stats.cache_removals += 1;
        self.ops_log.push(format!("cache-rm {name}"));
        match self.ctl_json(&["cache", "rm", &name]) {
            Ok(_) => self.images[i].want_cached = Some(false),
            Err(e) => {
                self.images[i].want_cached = None;
                self.op_failed(clock, &format!("cache rm {name}"), &e);
            }
        }
    }

    fn op_update(&mut self, touched: &mut BTreeSet<String>) {
        let candidates: Vec<usize> = (0..self.images.len())
            .filter(|&i| self.images[i].cached && !touched.contains(&self.images[i].name))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.below(candidates.len())];
        let name = self.images[i].name.clone();
        touched.insert(name.clone());
        self.ops_log.push(format!("update {name}"));
        let child = self
            .ctl_cmd(&["update", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.bg.push(Bg {
            kind: BgKind::Update { entry: i },
            child,
            what: format!("update {name}"),
        });
    }

    fn op_drop(&mut self, clock: &KillClock, touched: &mut BTreeSet<String>) {
        let slot = self.rng.below(self.drops.len());
        if touched.contains(&self.drops[slot].name) {
            return;
        }
        let seed = self.drops[slot].seed + 1;
        self.drops[slot].seed = seed;
        let mib = [8, 12, 16, 20][self.rng.below(4)];
        let bytes = noise(mib * MIB, seed);
        let sha = sha256_bytes(&bytes);
        let name = self.drops[slot].name.clone();
        self.ops_log.push(format!("drop {name} ({mib} MiB)"));
        // Written outside, renamed in: the operator's `cp` then `mv`.
        let tmp = self.dir.join("incoming").join(&name);
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, self.image_root.join(&name)).unwrap();
        self.drops[slot].sha = Some(sha);
        touched.insert(name.clone());
        self.stats.drops += 1;
        if self.rng.chance(50) {
            self.stats.hash_requests += 1;
            if let Err(e) = self.ctl_json(&["hash", &name]) {
                self.op_failed(clock, &format!("hash {name}"), &e);
            }
        }
    }

    fn op_upload(&mut self, touched: &mut BTreeSet<String>) -> bool {
        let slot = self.rng.below(self.uploads.len());
        if touched.contains(&self.uploads[slot].name) {
            return false;
        }
        let src = self.rng.below(self.upload_sources.len());
        let (path, sha) = self.upload_sources[src].clone();
        let name = self.uploads[slot].name.clone();
        self.ops_log.push(format!("upload src-{src} as {name}"));
        touched.insert(name.clone());
        let child = self
            .ctl_cmd(&["upload", path.to_str().unwrap(), "--name", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.bg.push(Bg {
            kind: BgKind::Upload {
                slot,
                sha,
                racing: false,
            },
            child,
            what: format!("upload {} as {name}", path.display()),
        });
        true
    }

    /// Two operators upload different files under the same name at once:
    /// either may win, but the file must be one of them, whole.
    fn op_racing_uploads(&mut self, touched: &mut BTreeSet<String>) {
        let slot = self.rng.below(self.uploads.len());
        let name = self.uploads[slot].name.clone();
        if touched.contains(&name) {
            return;
        }
        touched.insert(name.clone());
        let first = self.rng.below(self.upload_sources.len());
        let second =
            (first + 1 + self.rng.below(self.upload_sources.len() - 1)) % self.upload_sources.len();
        self.ops_log.push(format!(
            "racing uploads src-{first} and src-{second} as {name}"
        ));
        for src in [first, second] {
            let (path, sha) = self.upload_sources[src].clone();
            let child = self
                .ctl_cmd(&["upload", path.to_str().unwrap(), "--name", &name])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            self.bg.push(Bg {
                kind: BgKind::Upload {
                    slot,
                    sha,
                    racing: true,
                },
                child,
                what: format!("racing upload {} as {name}", path.display()),
            });
        }
    }

    fn op_flash(&mut self, touched: &mut BTreeSet<String>) -> bool {
        // Images whose content is certain and not changing in this cycle.
        let mut choices: Vec<(String, String)> = Vec::new();
        for d in &self.drops {
            if let Some(sha) = &d.sha
                && !touched.contains(&d.name)
            {
                choices.push((d.name.clone(), sha.clone()));
            }
        }
        for u in &self.uploads {
            // An interrupted upload has one acceptable content but may never
            // have landed: only a file that is there can be flashed.
            if u.acceptable.len() == 1
                && !touched.contains(&u.name)
                && self.image_root.join(&u.name).is_file()
            {
                choices.push((u.name.clone(), u.acceptable.first().unwrap().clone()));
            }
        }
        if choices.is_empty() {
            return false;
        }
        let busy: BTreeSet<String> = self
            .bg
            .iter()
            .filter_map(|b| match &b.kind {
                BgKind::Flash { device, .. } => Some(device.clone()),
                _ => None,
            })
            .collect();
        let free: Vec<String> = self
            .loops
            .iter()
            .filter(|l| !busy.contains(*l))
            .cloned()
            .collect();
        if free.is_empty() {
            return false;
        }
        let device = free[self.rng.below(free.len())].clone();
        let (image, sha) = choices[self.rng.below(choices.len())].clone();
        // Nothing replaces the image for the rest of this cycle.
        touched.insert(image.clone());
        self.ops_log.push(format!("flash {image} to {device}"));
        let len = std::fs::metadata(self.image_root.join(&image))
            .map(|m| m.len())
            .unwrap_or(0);
        let child = self
            .ctl_cmd(&["flash", &image, &device, "--yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.bg.push(Bg {
            kind: BgKind::Flash {
                device: device.clone(),
                sha,
                len,
            },
            child,
            what: format!("flash {image} {device}"),
        });
        true
    }

    /// Collect background btyctl runs. Before the kill (`interrupted` false)
    /// only finished ones are taken and their result must be success; after
    /// it everything is waited for (bounded) and failures are expected.
    fn reap(&mut self, interrupted: bool) {
        let mut keep = Vec::new();
        for mut bg in std::mem::take(&mut self.bg) {
            let status = if interrupted {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    if let Some(s) = bg.child.try_wait().unwrap() {
                        break Some(s);
                    }
                    if Instant::now() > deadline {
                        let _ = bg.child.kill();
                        break bg.child.wait().ok();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            } else {
                bg.child.try_wait().unwrap()
            };
            let Some(status) = status else {
                keep.push(bg);
                continue;
            };
            let mut stdout = String::new();
            let mut stderr = String::new();
            if let Some(mut o) = bg.child.stdout.take() {
                let _ = o.read_to_string(&mut stdout);
            }
            if let Some(mut e) = bg.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let ok = status.success();
            let racing_upload = matches!(bg.kind, BgKind::Upload { racing: true, .. });
            let detail = format!(
                "{} ({status}): {} {}",
                bg.what,
                stdout.trim(),
                stderr.trim()
            );
            match bg.kind {
                BgKind::Upload { slot, sha, racing } => {
                    if ok && racing {
                        // The other one may have finished later and won.
                        self.stats.uploads_ok += 1;
                        self.uploads[slot].acceptable.insert(sha);
                        self.uploads[slot].acked = true;
                    } else if ok {
                        self.stats.uploads_ok += 1;
                        self.uploads[slot].acceptable = BTreeSet::from([sha]);
                        self.uploads[slot].acked = true;
                    } else {
                        self.stats.uploads_interrupted += 1;
                        self.uploads[slot].acceptable.insert(sha);
                    }
                }
                BgKind::Flash { device, sha, len } => {
                    if ok {
                        self.stats.flashes_ok += 1;
                        // What the job says it wrote, and what is on the device.
                        let job: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
                        let job_sha = job["sha256"].as_str().unwrap_or_default().to_owned();
                        let written = job["targets"][0]["bytes_written"].as_u64().unwrap_or(len);
                        let got = read_device_sha(&device, written);
                        if job_sha != sha || written != len || got.as_deref() != Some(sha.as_str())
                        {
                            self.violation(format!(
                                "{} ({device}) reported success: job sha256 {job_sha}, {written} bytes written; \
                                 the device's first {written} bytes have sha256 {got:?}; the image had {len} bytes, sha256 {sha}",
                                bg.what
                            ));
                        }
                    } else {
                        self.stats.flashes_interrupted += 1;
                    }
                }
                BgKind::Update { entry } => {
                    if !ok {
                        self.images[entry].want_cached = None;
                    }
                }
            }
            // A racing upload may be refused as a conflict (exit 4).
            let refused_race = racing_upload && status.code() == Some(4);
            if !(ok || interrupted || refused_race) {
                self.violation(format!("{detail} failed while btyd was up"));
            }
        }
        self.bg = keep;
    }

    // ----- settling and invariants ------------------------------------

    /// Wait until no job is queued or running (twice in a row, 300 ms
    /// apart). Returns the active jobs if that never happens.
    fn settle(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let deadline = start + SETTLE_TIMEOUT;
        let mut quiet = 0;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.ctl_json(&["jobs", "list", "--active"]) {
                Ok(Value::Array(jobs)) if jobs.is_empty() => quiet += 1,
                Ok(v) => {
                    quiet = 0;
                    last = v.to_string();
                }
                Err(e) => {
                    quiet = 0;
                    last = e;
                }
            }
            if quiet >= 2 {
                self.stats.settle_secs.push(start.elapsed().as_secs_f64());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(last)
    }

    fn check(&mut self, interrupted_names: &BTreeSet<String>) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if let Err(active) = self.settle() {
            v.push(format!(
                "jobs did not settle within {SETTLE_TIMEOUT:?}; still active: {active}"
            ));
        }
        let all_jobs = self.ctl_json(&["jobs", "list"]).unwrap_or(Value::Null);
        for job in all_jobs.as_array().into_iter().flatten() {
            if job["state"] == "running" || job["state"] == "queued" {
                v.push(format!("job stuck after settling: {job}"));
            }
        }

        // catalog.toml parses (strictly) and holds every acknowledged entry.
        let catalog_path = self.state_dir.join("catalog.toml");
        // Cached file name → entry name, for the entries in catalog.toml.
        let mut cache_files: HashMap<String, String> = HashMap::new();
        if self.images.iter().any(|i| i.added) {
            match std::fs::read(&catalog_path) {
                Ok(bytes) => match CatalogFile::parse(&bytes, "catalog.toml") {
                    Ok(cat) => {
                        for e in &cat.entries {
                            if let Ok(file) = e.cache_file_name() {
                                cache_files.insert(file, e.name.to_string());
                            }
                        }
                        for img in self.images.iter().filter(|i| i.added) {
                            if !cat.entries.iter().any(|e| *e.src == *img.url) {
                                v.push(format!(
                                    "acknowledged entry {} ({}) is missing from catalog.toml",
                                    img.name, img.url
                                ));
                            }
                        }
                        let extras = cat
                            .entries
                            .iter()
                            .filter(|e| e.name.starts_with("extra-"))
                            .count();
                        if (extras as u32) < self.imports_done {
                            v.push(format!(
                                "catalog.toml has {extras} imported extra entries, {} imports were acknowledged",
                                self.imports_done
                            ));
                        }
                    }
                    Err(e) => v.push(format!("catalog.toml does not parse: {e}")),
                },
                Err(e) => v.push(format!("catalog.toml unreadable: {e}")),
            }
        }
        // No temp files in the state dir, no stale download specs.
        for entry in std::fs::read_dir(&self.state_dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") {
                v.push(format!("temp file left in the state dir: {name}"));
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.state_dir.join("jobs")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                v.push(format!(
                    "download job file left after settling: jobs/{name}"
                ));
            }
        }

        // The listing.
        let rows = match self.ctl_json(&["images", "list"]) {
            Ok(Value::Array(rows)) => rows,
            other => {
                v.push(format!("images list failed: {other:?}"));
                Vec::new()
            }
        };
        let row_named = |name: &str| -> Option<&Value> {
            rows.iter().find(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == name))
            })
        };
        // Local files the listing shows.
        let mut local_files: BTreeSet<String> = BTreeSet::new();
        for row in &rows {
            for src in row["sources"].as_array().into_iter().flatten() {
                if src["kind"] == "local"
                    && let Some(loc) = src["location"].as_str()
                    && let Some(file) = Path::new(loc).file_name()
                {
                    local_files.insert(file.to_string_lossy().into_owned());
                }
            }
        }
        // Every cached entry has its file.
        for (file, entry) in &cache_files {
            if row_named(entry).is_some_and(|r| r["cached"] == true)
                && !self.image_root.join(file).exists()
            {
                v.push(format!(
                    "entry {entry} is listed as cached but {file} is missing"
                ));
            }
        }

        // Image root: every file accounted for, every sidecar right.
        let names = self.image_root_names();
        let present: BTreeSet<&String> = names.iter().collect();
        let mut sidecars = Vec::new();
        for name in &names {
            if name == ".bty-storage.json" {
                continue;
            }
            if name.starts_with('.') || name.contains(".tmp-") || name.ends_with(".tmp") {
                v.push(format!("temp file left in the image root: {name}"));
            } else if name.ends_with(".partial") {
                let len = std::fs::metadata(self.image_root.join(name))
                    .map(|m| m.len())
                    .unwrap_or(0);
                v.push(format!(
                    "partial file left after settling: {name} ({len} bytes)"
                ));
            } else if let Some(base) = name.strip_suffix(".sha256") {
                if present.contains(&base.to_owned()) {
                    sidecars.push(name.clone());
                } else {
                    v.push(format!("sidecar without its file: {name}"));
                }
            } else {
                if !present.contains(&format!("{name}.sha256")) {
                    v.push(format!(
                        "file not hashed after settling (no sidecar): {name}"
                    ));
                }
                if bty_store::names::is_cache_file_name(name) {
                    match cache_files.get(name) {
                        None => v.push(format!(
                            "cached download without its entry in catalog.toml: {name}"
                        )),
                        Some(entry) if !row_named(entry).is_some_and(|r| r["cached"] == true) => v
                            .push(format!(
                                "{name} is on disk but entry {entry} is not listed as cached"
                            )),
                        Some(_) => {}
                    }
                } else if !local_files.contains(name) {
                    v.push(format!(
                        "unreferenced file in the image root (no row lists it): {name}"
                    ));
                }
            }
        }
        if let Err(e) = self.verify_sidecars(&sidecars) {
            v.push(e);
        }

        // Remote entries: acknowledged fetches landed with the right bytes.
        for img in &mut self.images {
            let row = row_named(&img.name);
            let cached = row.is_some_and(|r| r["cached"] == true);
            let sha = row.and_then(|r| r["sha256"].as_str()).map(str::to_owned);
            if img.added && row.is_none() {
                v.push(format!("entry {} has no row", img.name));
            }
            if cached && sha.as_deref() != Some(img.sha.as_str()) {
                v.push(format!(
                    "entry {} is cached with sha256 {sha:?}, upstream is {}",
                    img.name, img.sha
                ));
            }
            if img.want_cached == Some(true) && !cached {
                let why = if interrupted_names.contains(&img.name) {
                    "an interrupted download did not complete after the restart"
                } else {
                    "an acknowledged fetch did not land"
                };
                v.push(format!("{why}: {} row: {row:?}", img.name));
            }
            if img.want_cached == Some(false) && cached {
                v.push(format!(
                    "entry {} is cached after an acknowledged cache rm",
                    img.name
                ));
            }
            if interrupted_names.contains(&img.name) && cached {
                self.stats.resumed_downloads_completed += 1;
            }
            img.cached = cached;
            img.want_cached = Some(cached);
        }
        // Dropped files: hashed to what was written.
        for d in &self.drops {
            if let Some(want) = &d.sha {
                let got = row_named(&d.name).and_then(|r| r["sha256"].as_str());
                if got != Some(want.as_str()) {
                    v.push(format!(
                        "dropped file {} lists sha256 {got:?}, its content is {want}",
                        d.name
                    ));
                }
            }
        }
        // Uploads: the file is one of the acceptable contents.
        for u in &mut self.uploads {
            if u.acceptable.is_empty() {
                continue;
            }
            let got = row_named(&u.name)
                .and_then(|r| r["sha256"].as_str())
                .map(str::to_owned);
            match got {
                Some(sha) if u.acceptable.contains(&sha) => u.acceptable = BTreeSet::from([sha]),
                // Never landed: fine while no upload of it was acknowledged.
                None if !present.contains(&u.name) && !u.acked => {}
                other => v.push(format!(
                    "upload target {} lists sha256 {other:?}, want one of {:?}",
                    u.name, u.acceptable
                )),
            }
        }
        // Still alive?
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            v.push(format!(
                "btyd exited on its own during the checks ({status})"
            ));
            self.child = None;
        }
        v
    }

    /// `sha256sum -c` every sidecar that changed since it was last verified.
    fn verify_sidecars(&mut self, sidecars: &[String]) -> Result<(), String> {
        let mut todo = Vec::new();
        let mut keys = Vec::new();
        for sc in sidecars {
            let base = sc.strip_suffix(".sha256").unwrap();
            let Ok(meta) = std::fs::metadata(self.image_root.join(base)) else {
                continue;
            };
            let text = std::fs::read_to_string(self.image_root.join(sc)).unwrap_or_default();
            let key = (
                meta.len(),
                i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                text,
            );
            if self.verified.get(base) != Some(&key) {
                todo.push(sc.clone());
                keys.push((base.to_owned(), key));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let out = Command::new("sha256sum")
            .arg("-c")
            .arg("--strict")
            .args(&todo)
            .current_dir(&self.image_root)
            .output()
            .expect("sha256sum runs");
        if !out.status.success() {
            return Err(format!(
                "sha256sum -c failed: {} {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        for (base, key) in keys {
            self.verified.insert(base, key);
        }
        Ok(())
    }

    /// What a kill left behind: downloads that were queued or running.
    fn inspect_after_kill(&mut self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(self.state_dir.join("jobs")) {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if !file.ends_with(".json")
                    || file.ends_with(".checkpoint.json")
                    || file.starts_with('.')
                {
                    continue;
                }
                if let Ok(spec) = std::fs::read(entry.path())
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
                    && let Some(name) = spec["name"].as_str()
                {
                    names.insert(name.to_owned());
                }
            }
        }
        for name in self.image_root_names() {
            if name.ends_with(".partial") {
                self.stats.partials_after_kill += 1;
                self.stats.partial_bytes_kept += std::fs::metadata(self.image_root.join(&name))
                    .map(|m| m.len())
                    .unwrap_or(0);
            }
        }
        names
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        for bg in &mut self.bg {
            let _ = bg.child.kill();
            let _ = bg.child.wait();
        }
        self.kill9();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn read_device_sha(device: &str, len: u64) -> Option<String> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    let mut f = std::fs::File::open(device).ok()?;
    f.read_exact(&mut buf).ok()?;
    Some(sha256_bytes(&buf))
}

#[test]
#[ignore = "long-running soak; run scripts/soak"]
fn soak_kill9_under_mixed_load() {
    let kills_wanted: u32 = std::env::var("SOAK_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut s = Soak::new();
    println!(
        "soak: {} kills, state in {}, loops {:?}, btyd {}",
        kills_wanted,
        s.state_dir.display(),
        s.loops,
        bin("btyd").display()
    );
    let started = Instant::now();
    s.spawn();
    assert!(s.wait_ready(), "btyd never came up: {}", s.log_tail(30));
    let mut cycle = 0u32;
    let mut invariants_held = 0u32;
    while s.stats.kills < kills_wanted {
        cycle += 1;
        s.cycle = cycle;
        s.ops_log.clear();
        s.origin.throttle(THROTTLE);
        let clock = KillClock {
            start: Instant::now(),
            deadline_ms: AtomicU64::new(s.rng.millis(10, 3000).as_millis() as u64),
            killed: AtomicBool::new(false),
        };
        let pid = s.pid().expect("btyd is running");
        std::thread::scope(|scope| {
            scope.spawn(|| clock.run(pid));
            s.workload(&clock, cycle);
            // Results of background commands that ended before the kill.
            while !clock.killed() {
                s.reap(false);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        s.kill9();
        s.stats.kills += 1;
        let mut kills_this_cycle = 1;
        s.reap(true);
        let mut interrupted = s.inspect_after_kill();
        s.spawn();
        let mut up = s.wait_ready();
        // Sometimes kill again during start-up / resumption.
        if up && s.stats.kills < kills_wanted && s.rng.chance(20) {
            std::thread::sleep(s.rng.millis(0, 400));
            s.kill9();
            s.stats.kills += 1;
            s.stats.startup_kills += 1;
            kills_this_cycle += 1;
            s.stats.survived += 1;
            interrupted.extend(s.inspect_after_kill());
            s.spawn();
            up = s.wait_ready();
        }
        if !up {
            println!(
                "soak: btyd did not come back after kill {}; stopping",
                s.stats.kills
            );
            break;
        }
        s.stats.survived += 1;
        s.stats.interrupted_downloads += interrupted.len() as u32;
        s.origin.throttle(Duration::ZERO);
        let found = s.check(&interrupted);
        s.stats.checks += 1;
        let held = found.is_empty();
        if held {
            invariants_held += kills_this_cycle;
            s.stats.kills_checked_ok += kills_this_cycle;
        }
        for f in found {
            s.violation(format!("after kill {}: {f}", s.stats.kills));
        }
        println!("soak: cycle {cycle} ops: {}", s.ops_log.join(", "));
        println!(
            "soak: cycle {cycle}: kill at {:>4} ms, kills {}/{kills_wanted}, interrupted downloads {}, invariants {}, {:.0} s elapsed",
            clock.deadline_ms.load(Ordering::SeqCst),
            s.stats.kills,
            interrupted.len(),
            if held { "held" } else { "VIOLATED" },
            started.elapsed().as_secs_f64()
        );
    }

    let st = &s.stats;
    let mut settle = st.settle_secs.clone();
    settle.sort_by(f64::total_cmp);
    let settle_max = settle.last().copied().unwrap_or(0.0);
    let settle_p50 = settle.get(settle.len() / 2).copied().unwrap_or(0.0);
    println!(
        "soak: ---- summary ({:.0} s) ----",
        started.elapsed().as_secs_f64()
    );
    println!(
        "soak: cycles {cycle}, kills {} ({} during start-up/resume), checks {}",
        st.kills, st.startup_kills, st.checks
    );
    println!(
        "soak: downloads interrupted by a kill {} (partials kept {}, {} MiB), completed after restart {}",
        st.interrupted_downloads,
        st.partials_after_kill,
        st.partial_bytes_kept >> 20,
        st.resumed_downloads_completed
    );
    println!(
        "soak: ops: fetch {}, cache rm {}, import {}, drop {}, hash {}, uploads ok {} / interrupted {}, flashes ok {} / interrupted {}, ops cut by a kill {}",
        st.fetches,
        st.cache_removals,
        st.imports,
        st.drops,
        st.hash_requests,
        st.uploads_ok,
        st.uploads_interrupted,
        st.flashes_ok,
        st.flashes_interrupted,
        st.ops_failed_by_kill
    );
    println!(
        "soak: settle time p50 {settle_p50:.1} s, max {settle_max:.1} s; origin sent {} MiB",
        s.origin.bytes_sent() >> 20
    );
    println!(
        "kills survived: {}/{kills_wanted}, invariants held: {invariants_held}/{kills_wanted}",
        st.survived
    );
    if !s.violations.is_empty() {
        // Grouped by what was found ("after kill N: " stripped), in order.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for v in &s.violations {
            let split = v
                .strip_prefix("after kill ")
                .map(|r| ("kill ", r))
                .or_else(|| v.strip_prefix("in cycle ").map(|r| ("cycle ", r)))
                .and_then(|(label, r)| {
                    r.split_once(": ")
                        .map(|(n, what)| (format!("{label}{n}"), what.to_owned()))
                });
            let (when, what) = split.unwrap_or_else(|| ("-".to_owned(), v.clone()));
            match groups.iter_mut().find(|(w, _)| *w == what) {
                Some((_, kills)) => kills.push(when),
                None => groups.push((what, vec![when])),
            }
        }
        println!(
            "soak: {} violation(s), {} distinct:",
            s.violations.len(),
            groups.len()
        );
        for (what, kills) in &groups {
            println!("  - {what}  [{}]", kills.join(", "));
        }
        println!("soak: btyd log: {}", s.log.display());
    }
    let ok =
        s.violations.is_empty() && st.survived == kills_wanted && invariants_held == kills_wanted;
    assert!(ok, "soak failed: see the violations above");
}
