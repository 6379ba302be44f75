//! Flash-target safety: the rules that refuse a disk ([`disk_refusals`],
//! pure over a [`Disk`]) and [`check_target`], which also asks the device
//! node itself (exclusive open, `BLKGETSIZE64`, `BLKROGET`).

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::Refusal;
use crate::ioctl::{block_size_bytes, read_only};
use crate::list::Scan;
use crate::model::{Disk, SystemPaths, Target, TargetIdentity, TargetKind, Verdict};
use crate::mounts::split_dev;
use crate::sysfs::dev_path;

/// Alignment assumed for regular-file targets (what any filesystem accepts
/// for direct I/O on a 512e disk).
const FILE_BLOCK_SIZE: u32 = 512;

/// Every rule that objects to writing `disk`, from what sysfs and the
/// proc tables say. `needed` is the image size when known.
pub(crate) fn disk_refusals(disk: &Disk, needed: Option<u64>) -> Vec<Refusal> {
    let path = disk.path.clone();
    let mut refusals = Vec::new();
    if disk.read_only {
        refusals.push(Refusal::ReadOnly(path.clone()));
    }
    let mut mounts = Vec::new();
    if !disk.mounts.is_empty() {
        mounts.push(format!("it is mounted on {}", disk.mounts.join(", ")));
    }
    for part in disk.partitions.iter().filter(|p| !p.mounts.is_empty()) {
        mounts.push(format!(
            "partition {} is mounted on {}",
            part.path.display(),
            part.mounts.join(", ")
        ));
    }
    if !mounts.is_empty() {
        refusals.push(Refusal::Mounted {
            path: path.clone(),
            mounts,
        });
    }
    let swaps: Vec<String> = std::iter::once((disk.swap, &disk.path))
        .chain(disk.partitions.iter().map(|p| (p.swap, &p.path)))
        .filter(|(swap, _)| *swap)
        .map(|(_, p)| p.display().to_string())
        .collect();
    if !swaps.is_empty() {
        refusals.push(Refusal::Swap {
            path: path.clone(),
            devices: swaps,
        });
    }
    let mut held = Vec::new();
    let direct: Vec<&String> = disk
        .holders
        .iter()
        .filter(|h| !disk.partitions.iter().any(|p| p.holders.contains(h)))
        .collect();
    if !direct.is_empty() {
        held.push(format!("{} is held by {}", disk.name, join(direct)));
    }
    for part in disk.partitions.iter().filter(|p| !p.holders.is_empty()) {
        held.push(format!(
            "partition {} is held by {}",
            part.path.display(),
            join(part.holders.iter())
        ));
    }
    if !held.is_empty() {
        refusals.push(Refusal::Held {
            path: path.clone(),
            holders: held,
        });
    }
    if let Some(why) = &disk.system_disk {
        refusals.push(Refusal::SystemDisk {
            path: path.clone(),
            why: why.clone(),
        });
    }
    if disk.size_bytes == 0 {
        refusals.push(Refusal::NoMedium(path));
    } else if let Some(needed) = needed.filter(|n| *n > disk.size_bytes) {
        refusals.push(Refusal::TooSmall {
            path,
            needed,
            size: disk.size_bytes,
        });
    }
    refusals
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `target` may be flashed with an image of `needed_bytes`
/// (when known). Symlinks such as `/dev/disk/by-id/…` are resolved first.
/// Every objection is returned, not just the first. A regular file is
/// accepted only directly inside `file_targets_dir` (the daemon's own
/// config, never a request); its size is its length and "too small" does
/// not apply because files grow.
///
/// Call it when the operator picks the target, and again just before the
/// first write (then compare identities with [`crate::same_identity`]).
pub fn check_target(
    paths: &SystemPaths,
    target: &Path,
    needed_bytes: Option<u64>,
    file_targets_dir: Option<&Path>,
) -> Result<Target, Vec<Refusal>> {
    let meta = match fs::metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(vec![Refusal::NotFound(target.to_path_buf())]);
        }
        Err(e) => return Err(vec![uninspectable(target, &e)]),
    };
    let path = fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let kind = meta.file_type();
    if kind.is_block_device() {
        let probe = Probe::read(&path);
        return check_block_device(paths, &path, split_dev(meta.rdev()), &probe, needed_bytes);
    }
    match (kind.is_file(), file_targets_dir) {
        (true, Some(dir)) if is_directly_inside(&path, dir) => {}
        (true, dir) => {
            return Err(vec![Refusal::FileOutsideTargetsDir {
                path,
                dir: dir.map(Path::to_path_buf),
            }]);
        }
        (false, Some(_)) => return Err(vec![Refusal::NotAFile(path)]),
        (false, None) => return Err(vec![Refusal::NotBlockDevice(path)]),
    }
    if let Some(users) = loops_backed_by(paths, &path) {
        return Err(vec![Refusal::Held {
            path,
            holders: users,
        }]);
    }
    Ok(Target {
        identity: TargetIdentity {
            path: path.clone(),
            major_minor: None,
            size_bytes: meta.len(),
            serial: None,
            model: None,
            diskseq: None,
            file_id: Some((meta.dev(), meta.ino())),
        },
        path,
        kind: TargetKind::RegularFile,
        size_bytes: meta.len(),
        logical_block_size: FILE_BLOCK_SIZE,
    })
}

/// Whether the canonical `path` names an entry of the directory `dir`
/// itself (not of a subdirectory): the one place the operator made for
/// file targets.
fn is_directly_inside(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else {
        return false;
    };
    path.parent() == Some(dir.as_path())
}

/// What the device node itself says, as opposed to sysfs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    /// `BLKGETSIZE64`.
    pub(crate) size: Option<u64>,
    /// `BLKROGET`.
    pub(crate) read_only: bool,
    /// An exclusive open failed with `EBUSY`.
    pub(crate) busy: bool,
    /// Opening or querying failed otherwise.
    pub(crate) error: Option<String>,
}

impl Probe {
    /// Opens the node read-only (exclusively first: the kernel refuses
    /// that while anything mounts or claims the device, which also covers
    /// mounts we cannot see from this mount namespace) and queries it.
    pub(crate) fn read(path: &Path) -> Probe {
        let mut probe = Probe::default();
        let fd = match open(path, true) {
            Ok(fd) => fd,
            Err(Errno::BUSY) => {
                probe.busy = true;
                match open(path, false) {
                    Ok(fd) => fd,
                    Err(e) => return probe.failed("open", e.into()),
                }
            }
            // An empty card reader: sysfs size 0 already refuses it.
            Err(Errno::NOMEDIUM) => return probe,
            Err(e) => return probe.failed("open", e.into()),
        };
        match block_size_bytes(fd.as_fd()) {
            Ok(size) => probe.size = Some(size),
            Err(e) => return probe.failed("BLKGETSIZE64", e),
        }
        match read_only(fd.as_fd()) {
            Ok(ro) => probe.read_only = ro,
            Err(e) => return probe.failed("BLKROGET", e),
        }
        probe
    }

    fn failed(mut self, what: &str, e: io::Error) -> Probe {
        self.error = Some(format!("{what}: {e}"));
        self
    }
}

fn open(path: &Path, exclusive: bool) -> rustix::io::Result<OwnedFd> {
    // NONBLOCK: do not wait for a CD tray or a slow medium to spin up.
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if exclusive {
        flags |= OFlags::EXCL;
    }
    rustix::fs::open(path, flags, Mode::empty())
}

/// The block-device rules, given what the node said (`probe`).
pub(crate) fn check_block_device(
    paths: &SystemPaths,
    path: &Path,
    dev: (u32, u32),
    probe: &Probe,
    needed: Option<u64>,
) -> Result<Target, Vec<Refusal>> {
    let scan = Scan::read(paths).map_err(|e| vec![uninspectable(path, &e)])?;
    let Some(node) = scan.index.by_dev(dev) else {
        return Err(vec![Refusal::Unknown {
            path: path.to_path_buf(),
            major: dev.0,
            minor: dev.1,
        }]);
    };
    if let Some(parent) = &node.parent {
        return Err(vec![Refusal::Partition {
            path: path.to_path_buf(),
            disk: dev_path(&paths.dev, parent),
        }]);
    }
    let (mut disk, _hidden) = scan
        .disk(paths, node)
        .map_err(|e| vec![uninspectable(path, &e)])?;
    // Name the path the operator reached, resolved: that is what they chose.
    disk.path = path.to_path_buf();
    disk.read_only |= probe.read_only;
    let mut refusals = Vec::new();
    if let Some(reason) = &probe.error {
        refusals.push(Refusal::Uninspectable {
            path: disk.path.clone(),
            reason: reason.clone(),
        });
    }
    refusals.extend(disk_refusals(&disk, needed));
    if let Some(size) = probe.size.filter(|s| *s != disk.size_bytes) {
        refusals.push(Refusal::SizeMismatch {
            path: disk.path.clone(),
            sysfs: disk.size_bytes,
            device: size,
        });
    }
    let explained = refusals.iter().any(|r| {
        matches!(
            r,
            Refusal::Mounted { .. } | Refusal::Swap { .. } | Refusal::Held { .. }
        )
    });
    if probe.busy && !explained {
        refusals.push(Refusal::Busy(disk.path.clone()));
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    disk.verdict = Verdict::Writable;
    Ok(Target {
        path: disk.path.clone(),
        size_bytes: disk.size_bytes,
        logical_block_size: disk.logical_block_size,
        identity: disk.identity(),
        kind: TargetKind::BlockDevice {
            disk: Box::new(disk),
        },
    })
}

/// Loop devices whose backing file is `file`: writing the file would write
/// under whatever uses the loop. `None` when there are none (or sysfs
/// cannot be read, which the device checks would report on their own).
fn loops_backed_by(paths: &SystemPaths, file: &Path) -> Option<Vec<String>> {
    let scan = Scan::read(paths).ok()?;
    let users: Vec<String> = scan
        .index
        .disks()
        .filter(|n| n.name.starts_with("loop"))
        .filter_map(|n| scan.disk(paths, n).ok())
        .filter(|(d, _)| d.loop_backing_file.as_deref() == Some(file))
        .map(|(d, _)| format!("{} uses it as its backing file", d.path.display()))
        .collect();
    (!users.is_empty()).then_some(users)
}

fn uninspectable(path: &Path, e: &dyn std::error::Error) -> Refusal {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason.push_str(&format!(": {s}"));
        source = s.source();
    }
    Refusal::Uninspectable {
        path: PathBuf::from(path),
        reason,
    }
}
