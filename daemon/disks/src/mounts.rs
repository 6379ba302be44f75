//! What the running system uses: mounts (from mountinfo, matched by device
//! number, not by path string), active swap (from `/proc/swaps`), and the
//! devices behind `/`, `/boot`, `/usr` and `/var`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::DiskError;
use crate::model::SystemPaths;
use crate::sysfs::{BlockIndex, parse_dev};

/// Mount points whose disk is "the running system".
const SYSTEM_MOUNTS: [&str; 6] = ["/", "/boot", "/boot/efi", "/efi", "/usr", "/var"];

/// One line of mountinfo, the fields we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Field 3: the device number of the mounted filesystem.
    pub(crate) dev: (u32, u32),
    /// Field 5, unescaped.
    pub(crate) mount_point: String,
    /// Filesystem type (after the ` - ` separator).
    pub(crate) fstype: String,
    /// Mount source (e.g. `/dev/sda2`), unescaped.
    pub(crate) source: String,
}

/// One active swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwapEntry {
    /// Device or file path, unescaped.
    pub(crate) path: String,
    /// `partition` or `file`.
    pub(crate) kind: String,
}

/// Per block-device name: what uses it.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Mount points by device name.
    pub(crate) mounts: BTreeMap<String, Vec<String>>,
    /// Swap paths by device name.
    pub(crate) swaps: BTreeMap<String, Vec<String>>,
    /// (system mount point, device mounted there).
    pub(crate) system: Vec<(String, String)>,
}

/// Parses `/proc/self/mountinfo`. Malformed lines are skipped: the table
/// is the kernel's, and one odd line must not hide the others.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    // Optional fields (shared:N, master:N) sit between field 6 and " - ".
    let sep = fields.iter().position(|f| *f == "-")?;
    if sep < 6 {
        return None;
    }
    Some(MountEntry {
        dev: parse_dev(fields[2])?,
        mount_point: unescape(fields[4]),
        fstype: fields.get(sep + 1)?.to_string(),
        source: unescape(fields.get(sep + 2)?),
    })
}

/// Parses `/proc/swaps` (a header line, then path, type, size, used, prio).
pub(crate) fn parse_swaps(text: &str) -> Vec<SwapEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(SwapEntry {
                path: unescape(fields.next()?),
                kind: fields.next()?.to_owned(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011` tab,
/// `\012` newline, `\134` backslash) in mountinfo and swaps.
pub(crate) fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads mountinfo and swaps and attributes each use to block-device names.
pub(crate) fn read_usage(paths: &SystemPaths, index: &BlockIndex) -> Result<Usage, DiskError> {
    let mountinfo =
        fs::read_to_string(&paths.mountinfo).map_err(|source| DiskError::ReadMountinfo {
            path: paths.mountinfo.clone(),
            source,
        })?;
    let swaps = fs::read_to_string(&paths.swaps).map_err(|source| DiskError::ReadSwaps {
        path: paths.swaps.clone(),
        source,
    })?;
    let mut usage = Usage::default();
    let entries = parse_mountinfo(&mountinfo);
    for entry in &entries {
        for name in mounted_devices(paths, index, entry) {
            if SYSTEM_MOUNTS.contains(&entry.mount_point.as_str()) {
                usage.system.push((entry.mount_point.clone(), name.clone()));
            }
            push_unique(usage.mounts.entry(name).or_default(), &entry.mount_point);
        }
    }
    if !entries.iter().any(|e| e.mount_point == "/") {
        // In a chroot the root mount is not listed; the root directory's
        // own device still tells us which disk we run from.
        if let Some(node) = fs::metadata("/")
            .ok()
            .and_then(|m| index.by_dev(split_dev(m.dev())))
        {
            usage.system.push(("/".to_owned(), node.name.clone()));
        }
    }
    for swap in parse_swaps(&swaps) {
        let name = if swap.kind == "partition" {
            resolve_device(paths, index, &swap.path)
        } else {
            // A swap file pins the filesystem it lives on.
            fs::metadata(&swap.path)
                .ok()
                .and_then(|m| index.by_dev(split_dev(m.dev())))
                .map(|n| n.name.clone())
        };
        if let Some(name) = name {
            push_unique(usage.swaps.entry(name).or_default(), &swap.path);
        }
    }
    Ok(usage)
}

/// The block devices a mount uses: the device number in field 3, the
/// mount source resolved to a device (btrfs reports an anonymous 0:N
/// number in field 3), and for btrfs every member of the filesystem.
fn mounted_devices(paths: &SystemPaths, index: &BlockIndex, entry: &MountEntry) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(node) = index.by_dev(entry.dev) {
        names.push(node.name.clone());
    }
    if entry.source.starts_with('/')
        && let Some(name) = resolve_device(paths, index, &entry.source)
    {
        push_unique(&mut names, &name);
    }
    if entry.fstype == "btrfs" {
        for name in names.clone() {
            for member in btrfs_members(&paths.sys, &name) {
                push_unique(&mut names, &member);
            }
        }
    }
    names
}

/// The other devices of the btrfs filesystem that `name` belongs to, from
/// `/sys/fs/btrfs/<fsid>/devices/`.
fn btrfs_members(sys: &Path, name: &str) -> Vec<String> {
    let Ok(filesystems) = fs::read_dir(sys.join("fs/btrfs")) else {
        return Vec::new();
    };
    for fsdir in filesystems.flatten() {
        let Ok(devices) = fs::read_dir(fsdir.path().join("devices")) else {
            continue;
        };
        let members: Vec<String> = devices
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect();
        if members.iter().any(|m| m == name) {
            return members;
        }
    }
    Vec::new()
}

/// Resolves a device path from the kernel's tables (`/dev/sda2`,
/// `/dev/mapper/vg-root`) to a block-device name: by the node's device
/// number when it is a real device node, else by its name under `dev`.
pub(crate) fn resolve_device(
    paths: &SystemPaths,
    index: &BlockIndex,
    path: &str,
) -> Option<String> {
    let mapped = match path.strip_prefix("/dev/") {
        Some(rest) => paths.dev.join(rest),
        None => PathBuf::from(path),
    };
    if let Ok(meta) = fs::metadata(&mapped)
        && meta.file_type().is_block_device()
    {
        return index.by_dev(split_dev(meta.rdev())).map(|n| n.name.clone());
    }
    // Not a device node (a fake tree, or /dev/root that has no node):
    // follow symlinks inside dev and look the name up.
    let real = fs::canonicalize(&mapped).unwrap_or(mapped);
    let dev_real = fs::canonicalize(&paths.dev).unwrap_or_else(|_| paths.dev.clone());
    let rel = real
        .strip_prefix(&dev_real)
        .or_else(|_| real.strip_prefix(&paths.dev))
        .ok()?;
    let name = rel.to_string_lossy().replace('/', "!");
    index.get(&name).map(|n| n.name.clone())
}

/// Splits a `dev_t` into (major, minor).
pub(crate) fn split_dev(dev: u64) -> (u32, u32) {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_and_escapes() {
        let text = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 27 8:1 / /mnt/my\\040stick rw - vfat /dev/sdb1 rw\n\
                    garbage\n\
                    41 27 0:45 /@home /home rw - btrfs /dev/nvme0n1p2 rw,subvol=/@home\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].dev, (254, 0));
        assert_eq!(entries[0].mount_point, "/");
        assert_eq!(entries[0].source, "/dev/vda");
        assert_eq!(entries[1].mount_point, "/mnt/my stick");
        assert_eq!(entries[2].fstype, "btrfs");
        assert_eq!(entries[2].dev, (0, 45));
    }

    #[test]
    fn swaps_skip_the_header() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n\
                    /dev/sda3                               partition\t8388604\t0\t-2\n\
                    /swap\\040file                          file\t1024\t0\t-3\n";
        let swaps = parse_swaps(text);
        assert_eq!(swaps.len(), 2);
        assert_eq!(swaps[0].path, "/dev/sda3");
        assert_eq!(swaps[0].kind, "partition");
        assert_eq!(swaps[1].path, "/swap file");
    }

    #[test]
    fn unescape_leaves_plain_backslashes() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("a\\x"), "a\\x");
        assert_eq!(unescape("end\\04"), "end\\04");
    }
}
