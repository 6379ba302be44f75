//! Disks that come and go: btyd hears the kernel's uevents and
//! `btyctl disks --watch --json` prints a loop device attached after it
//! started, then its removal, each within 2 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::Daemon;
use bty_e2e::loopdev::LoopDevice;
use bty_test_caps::require_loop_devices;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How soon a change must show.
const WITHIN: Duration = Duration::from_secs(2);

/// `btyctl --json disks --watch`, its stdout as parsed lines.
struct Watch {
    child: Child,
    lines: Receiver<Value>,
}

impl Watch {
    fn start(d: &Daemon) -> Self {
        let mut child = d
            .ctl_command(&["--json", "disks", "--watch"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The first line that `matches` within `within`, or a failure naming
    /// every line seen meanwhile.
    fn expect(&self, within: Duration, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {within:?}; saw {seen:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("btyctl ended before {what}; saw {seen:?}")
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_loop_device_attached_and_detached_shows_in_disks_watch_within_two_seconds() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let d = Daemon::start();
    let watch = Watch::start(&d);
    let listed = watch.expect(Duration::from_secs(10), "the first listing", |l| {
        l["event"] == "listed"
    });
    assert!(listed["disks"].is_array(), "{listed}");

    let disk = LoopDevice::create(&work.path().join("disk"), 16 << 20, 0, false);
    let path = disk.dev().to_owned();
    let added = watch.expect(WITHIN, &format!("{path} added"), |l| {
        (l["event"] == "added" || l["event"] == "changed") && l["disk"]["path"] == path.as_str()
    });
    assert_eq!(added["disk"]["size_bytes"], 16 << 20, "{added}");
    assert_eq!(added["disk"]["writable"], true, "{added}");

    // A second one while the first is attached, then both go.
    let other = LoopDevice::create(&work.path().join("other"), 8 << 20, 0, false);
    let other_path = other.dev().to_owned();
    watch.expect(WITHIN, &format!("{other_path} added"), |l| {
        (l["event"] == "added" || l["event"] == "changed")
            && l["disk"]["path"] == other_path.as_str()
    });
    for (dev, path) in [(other, other_path), (disk, path)] {
        drop(dev);
        watch.expect(WITHIN, &format!("{path} removed"), |l| {
            l["event"] == "removed" && l["path"] == path.as_str()
        });
    }
}
