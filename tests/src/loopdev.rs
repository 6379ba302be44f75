//! Loop devices made by a test on files it created, detached on drop (also
//! when the test panics), so flash tests write only to what they own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

static SETUP: Mutex<()> = Mutex::new(());

/// Held while this process attaches a loop device. A test that detaches a
/// node and re-attaches it on purpose holds it across both steps, so no
/// other test of the same binary takes the node in between.
pub fn hold_loop_setup() -> MutexGuard<'static, ()> {
    SETUP.lock().unwrap_or_else(|e| e.into_inner())
}

/// An attached loop device.
pub struct LoopDevice {
    /// `/dev/loopN`.
    pub path: PathBuf,
    /// The backing file.
    pub file: PathBuf,
}

impl LoopDevice {
    /// Create `file` with `size` bytes of `fill` and attach it.
    pub fn create(file: &Path, size: u64, fill: u8, read_only: bool) -> Self {
        std::fs::write(file, vec![fill; usize::try_from(size).expect("size fits")])
            .expect("backing file");
        Self::attach(file, read_only)
    }

    /// Attach an existing file.
    pub fn attach(file: &Path, read_only: bool) -> Self {
        let _setup = hold_loop_setup();
        let mut cmd = Command::new("losetup");
        cmd.args(["--find", "--show"]);
        if read_only {
            cmd.arg("--read-only");
        }
        let out = cmd.arg(file).output().expect("losetup runs");
        assert!(
            out.status.success(),
            "losetup failed (tests that flash need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Self {
            path,
            file: file.to_owned(),
        }
    }

    /// The device path as a string.
    pub fn dev(&self) -> &str {
        self.path.to_str().expect("utf-8 device path")
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}
