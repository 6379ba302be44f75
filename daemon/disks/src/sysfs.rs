//! Reading block devices from sysfs: the index of every device and
//! partition by name and number, the device-mapper/RAID stacking between
//! them, and the per-disk attributes (size, model, bus, ...).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::DiskError;

/// One block device or partition as sysfs lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockNode {
    /// Kernel name (`sda`, `sda1`, `dm-0`).
    pub(crate) name: String,
    /// Its sysfs directory.
    pub(crate) dir: PathBuf,
    /// Device number.
    pub(crate) dev: (u32, u32),
    /// For a partition: the disk it belongs to.
    pub(crate) parent: Option<String>,
    /// Devices this one is built on (dm/md members).
    pub(crate) slaves: Vec<String>,
    /// Devices built on this one.
    pub(crate) holders: Vec<String>,
}

/// Every block device and partition, by name and by number.
#[derive(Debug, Default)]
pub(crate) struct BlockIndex {
    nodes: BTreeMap<String, BlockNode>,
    by_dev: HashMap<(u32, u32), String>,
}

/// A link in the chain from a mounted device down to its disk.
pub(crate) struct DiskPath {
    /// The whole disk at the bottom.
    pub(crate) disk: String,
    /// The devices from the mounted one down to (not including) the disk;
    /// just the disk when the disk itself is mounted.
    pub(crate) chain: Vec<String>,
}

/// Stacks deeper than this are treated as cycles (sysfs should never
/// have them, but a fake or racing tree must not hang us).
const MAX_STACK_DEPTH: usize = 16;

impl BlockIndex {
    /// Reads `/sys/block` and the partitions below each entry. Devices that
    /// disappear during the scan (hot-unplug) are skipped.
    pub(crate) fn scan(sys: &Path) -> Result<Self, DiskError> {
        let mut index = BlockIndex::default();
        for name in list_dir(&sys.join("block"))? {
            let dir = sys.join("block").join(&name);
            match index.add_disk(&name, &dir) {
                Err(e) if e.is_not_found() => {
                    tracing::debug!(device = %name, "block device vanished during scan");
                }
                other => other?,
            }
        }
        Ok(index)
    }

    fn add_disk(&mut self, name: &str, dir: &Path) -> Result<(), DiskError> {
        let dev = read_dev(&dir.join("dev"))?;
        let mut partitions = Vec::new();
        for entry in list_dir(dir)? {
            let part_dir = dir.join(&entry);
            if part_dir.join("partition").is_file() {
                partitions.push(BlockNode {
                    dev: read_dev(&part_dir.join("dev"))?,
                    parent: Some(name.to_owned()),
                    slaves: Vec::new(),
                    holders: list_dir_opt(&part_dir.join("holders"))?,
                    name: entry,
                    dir: part_dir,
                });
            }
        }
        self.insert(BlockNode {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            dev,
            parent: None,
            slaves: list_dir_opt(&dir.join("slaves"))?,
            holders: list_dir_opt(&dir.join("holders"))?,
        });
        for part in partitions {
            self.insert(part);
        }
        Ok(())
    }

    fn insert(&mut self, node: BlockNode) {
        self.by_dev.insert(node.dev, node.name.clone());
        self.nodes.insert(node.name.clone(), node);
    }

    /// The device or partition called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&BlockNode> {
        self.nodes.get(name)
    }

    /// The device or partition with this number.
    pub(crate) fn by_dev(&self, dev: (u32, u32)) -> Option<&BlockNode> {
        self.by_dev.get(&dev).and_then(|n| self.nodes.get(n))
    }

    /// Whole disks (not partitions), in name order.
    pub(crate) fn disks(&self) -> impl Iterator<Item = &BlockNode> {
        self.nodes.values().filter(|n| n.parent.is_none())
    }

    /// Partitions of `disk`, in name order.
    pub(crate) fn partitions_of<'a>(
        &'a self,
        disk: &'a str,
    ) -> impl Iterator<Item = &'a BlockNode> {
        self.nodes
            .values()
            .filter(move |n| n.parent.as_deref() == Some(disk))
    }

    /// The whole disks that `name` ultimately lives on, following
    /// partition → disk and dm/md → slaves recursively.
    pub(crate) fn disks_under(&self, name: &str) -> Vec<DiskPath> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.walk_down(name, vec![name.to_owned()], &mut seen, &mut out);
        out
    }

    fn walk_down(
        &self,
        name: &str,
        chain: Vec<String>,
        seen: &mut HashSet<String>,
        out: &mut Vec<DiskPath>,
    ) {
        if chain.len() > MAX_STACK_DEPTH || !seen.insert(name.to_owned()) {
            return;
        }
        let Some(node) = self.get(name) else { return };
        if let Some(parent) = &node.parent {
            out.push(DiskPath {
                disk: parent.clone(),
                chain,
            });
        } else if node.slaves.is_empty() {
            out.push(DiskPath {
                disk: name.to_owned(),
                chain,
            });
        } else {
            for slave in &node.slaves {
                let mut next = chain.clone();
                next.push(slave.clone());
                self.walk_down(slave, next, seen, out);
            }
        }
    }
}

/// Attributes of a whole disk that come straight from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiskAttrs {
    pub(crate) size_bytes: u64,
    pub(crate) model: Option<String>,
    pub(crate) vendor: Option<String>,
    pub(crate) serial: Option<String>,
    pub(crate) transport: Option<String>,
    pub(crate) removable: bool,
    pub(crate) read_only: bool,
    pub(crate) rotational: bool,
    pub(crate) logical_block_size: u32,
    pub(crate) physical_block_size: u32,
    pub(crate) diskseq: Option<u64>,
    pub(crate) hidden: bool,
    pub(crate) loop_backing_file: Option<PathBuf>,
}

/// Reads the attributes of the disk whose sysfs directory is `node.dir`.
pub(crate) fn disk_attrs(sys: &Path, node: &BlockNode) -> Result<DiskAttrs, DiskError> {
    let dir = &node.dir;
    let device = dir.join("device");
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    // Match on the path below /sys only, so a fake tree's temp dir name
    // cannot look like a bus.
    let sys_real = fs::canonicalize(sys).unwrap_or_else(|_| sys.to_path_buf());
    let rel = real.strip_prefix(&sys_real).unwrap_or(&real);
    let transport = transport_from_path(&format!("/{}", rel.display()), &node.name);
    let serial = read_text(&device.join("serial"))?
        .or(read_text(&dir.join("serial"))?)
        .or(usb_serial(&sys_real, &real)?);
    Ok(DiskAttrs {
        size_bytes: read_sectors(&dir.join("size"))?,
        // mmc cards call their model "name".
        model: read_text(&device.join("model"))?.or(read_text(&device.join("name"))?),
        vendor: read_text(&device.join("vendor"))?,
        serial,
        transport,
        removable: read_flag(&dir.join("removable"))?,
        read_only: read_flag(&dir.join("ro"))?,
        rotational: read_flag(&dir.join("queue/rotational"))?,
        logical_block_size: read_num(&dir.join("queue/logical_block_size"))?.unwrap_or(512),
        physical_block_size: read_num(&dir.join("queue/physical_block_size"))?.unwrap_or(512),
        diskseq: read_num(&dir.join("diskseq"))?,
        hidden: read_flag(&dir.join("hidden"))?,
        loop_backing_file: read_raw(&dir.join("loop/backing_file"))?
            .map(|s| s.trim_end_matches('\n').to_owned())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    })
}

/// Size of a partition or disk in bytes (`size` counts 512-byte sectors
/// whatever the logical block size).
pub(crate) fn read_sectors(path: &Path) -> Result<u64, DiskError> {
    let sectors: u64 = read_num(path)?.ok_or_else(|| not_found(path))?;
    Ok(sectors.saturating_mul(512))
}

/// Guesses the bus from where sysfs puts the device: udev is not needed
/// and the answer is the same one `lsblk TRAN` would give.
pub(crate) fn transport_from_path(rel: &str, name: &str) -> Option<String> {
    let bus = if rel.contains("/usb") {
        "usb"
    } else if rel.contains("/nvme") {
        "nvme"
    } else if rel.contains("/virtio") {
        "virtio"
    } else if rel.contains("/ata") {
        "sata"
    } else if rel.contains("/mmc") {
        "mmc"
    } else if name.starts_with("loop") || rel.contains("/loop") {
        "loop"
    } else {
        return None;
    };
    Some(bus.to_owned())
}

/// USB sticks keep their serial on the USB device, an ancestor of the
/// block device (the one with `idVendor`), not in `device/serial`.
fn usb_serial(sys_real: &Path, real: &Path) -> Result<Option<String>, DiskError> {
    let mut dir = real.parent();
    while let Some(d) = dir {
        if !d.starts_with(sys_real) || d == sys_real {
            break;
        }
        if d.join("idVendor").is_file() {
            return read_text(&d.join("serial"));
        }
        dir = d.parent();
    }
    Ok(None)
}

/// The device node for a kernel name (`cciss!c0d0` lives at
/// `/dev/cciss/c0d0`).
pub(crate) fn dev_path(dev: &Path, name: &str) -> PathBuf {
    dev.join(name.replace('!', "/"))
}

/// Parses a `dev` attribute ("8:1").
pub(crate) fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn read_dev(path: &Path) -> Result<(u32, u32), DiskError> {
    let text = read_raw(path)?.ok_or_else(|| not_found(path))?;
    parse_dev(&text).ok_or_else(|| DiskError::ParseSysfs {
        path: path.to_path_buf(),
        value: text.trim().to_owned(),
    })
}

/// Reads an attribute; `None` when it does not exist.
fn read_raw(path: &Path) -> Result<Option<String>, DiskError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DiskError::ReadSysfs {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a text attribute, trimmed; empty counts as absent.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, DiskError> {
    Ok(read_raw(path)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

pub(crate) fn read_num<T: std::str::FromStr>(path: &Path) -> Result<Option<T>, DiskError> {
    match read_text(path)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| DiskError::ParseSysfs {
            path: path.to_path_buf(),
            value: text,
        }),
    }
}

/// A 0/1 attribute; absent means 0.
pub(crate) fn read_flag(path: &Path) -> Result<bool, DiskError> {
    Ok(read_num::<u64>(path)?.is_some_and(|v| v != 0))
}

/// Entry names of a directory, sorted.
fn list_dir(dir: &Path) -> Result<Vec<String>, DiskError> {
    let read = |e| DiskError::ReadSysfs {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Like [`list_dir`], but a missing directory is empty.
fn list_dir_opt(dir: &Path) -> Result<Vec<String>, DiskError> {
    match list_dir(dir) {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}

fn not_found(path: &Path) -> DiskError {
    DiskError::ReadSysfs {
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_follows_the_device_path() {
        let cases = [
            (
                "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
                "sdb",
                Some("usb"),
            ),
            (
                "/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1",
                "nvme0n1",
                Some("nvme"),
            ),
            (
                "/devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
                "vda",
                Some("virtio"),
            ),
            (
                "/devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sda",
                "sda",
                Some("sata"),
            ),
            (
                "/devices/platform/soc/mmc_host/mmc0/mmc0:0001/block/mmcblk0",
                "mmcblk0",
                Some("mmc"),
            ),
            ("/devices/virtual/block/loop3", "loop3", Some("loop")),
            ("/devices/virtual/block/dm-0", "dm-0", None),
        ];
        for (path, name, want) in cases {
            assert_eq!(transport_from_path(path, name).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn dev_numbers_parse() {
        assert_eq!(parse_dev("259:3\n"), Some((259, 3)));
        assert_eq!(parse_dev("8"), None);
        assert_eq!(parse_dev("a:b"), None);
    }

    #[test]
    fn odd_kernel_names_map_to_nested_nodes() {
        assert_eq!(
            dev_path(Path::new("/dev"), "cciss!c0d0"),
            PathBuf::from("/dev/cciss/c0d0")
        );
    }
}
