//! Real loop devices and mounts for the integration tests, each undone by
//! a `Drop` guard (also when the test panics).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

/// Runs a command and returns its stdout; panics with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A sparse file of `len` bytes in `dir`.
pub(crate) fn image(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

/// A loop device attached by this test; detached on drop.
pub(crate) struct Loop {
    pub(crate) path: PathBuf,
}

impl Loop {
    /// `losetup --find --show [extra] file`.
    pub(crate) fn attach(file: &Path, extra: &[&str]) -> Loop {
        let mut args = vec!["--find", "--show"];
        args.extend_from_slice(extra);
        let file = file.to_str().unwrap();
        args.push(file);
        Loop {
            path: PathBuf::from(run("losetup", &args)),
        }
    }

    /// Attaches `file` to this exact device node, retrying while a
    /// parallel test holds it briefly.
    pub(crate) fn attach_at(device: &Path, file: &Path) -> Loop {
        let (dev, file) = (device.to_str().unwrap(), file.to_str().unwrap());
        for _ in 0..100 {
            let ok = Command::new("losetup")
                .args([dev, file])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Loop {
                    path: device.to_path_buf(),
                };
            }
            sleep(Duration::from_millis(100));
        }
        panic!("could not re-attach {file} to {dev}");
    }

    /// The kernel name (`loop3`).
    pub(crate) fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// The node of partition `n`, waiting for devtmpfs to create it.
    /// Kernels built without partition-table parsers (this CI's VM has
    /// none) scan nothing on `losetup -P`; `partx -a` then parses the table
    /// in user space and adds the partitions with `BLKPG`.
    pub(crate) fn partition(&self, n: u32) -> PathBuf {
        let part = PathBuf::from(format!("{}p{n}", self.path.display()));
        for attempt in 0..50 {
            if part.exists() {
                return part;
            }
            if attempt == 5 {
                run("partx", &["-a", self.path.to_str().unwrap()]);
            }
            sleep(Duration::from_millis(100));
        }
        panic!("{} never appeared", part.display());
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let status = Command::new("losetup").arg("-d").arg(&self.path).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: could not detach {}", self.path.display());
        }
    }
}

/// A filesystem mounted by this test; unmounted on drop.
pub(crate) struct Mounted {
    pub(crate) mount_point: PathBuf,
}

impl Mounted {
    pub(crate) fn new(device: &Path, mount_point: &Path) -> Mounted {
        run(
            "mount",
            &[device.to_str().unwrap(), mount_point.to_str().unwrap()],
        );
        Mounted {
            mount_point: mount_point.to_path_buf(),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.mount_point).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: could not unmount {}", self.mount_point.display());
        }
    }
}

/// Deterministic noise (xorshift), so a failed comparison is reproducible.
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect()
}
