//! Disk listing: joins the sysfs index, the disk attributes and the usage
//! tables into [`Disk`] records, each with its verdict.

use std::collections::BTreeMap;

use crate::check::disk_refusals;
use crate::error::DiskError;
use crate::model::{Disk, Partition, SystemPaths, Verdict};
use crate::mounts::{Usage, read_usage};
use crate::sysfs::{BlockIndex, BlockNode, dev_path, disk_attrs, read_flag, read_sectors};

/// One consistent look at the system: devices, mounts, swaps, and which
/// disks carry the running system.
pub(crate) struct Scan {
    pub(crate) index: BlockIndex,
    usage: Usage,
    /// Disk name → why it carries the running system.
    system: BTreeMap<String, Vec<String>>,
}

impl Scan {
    /// Reads sysfs, mountinfo and swaps.
    pub(crate) fn read(paths: &SystemPaths) -> Result<Self, DiskError> {
        let index = BlockIndex::scan(&paths.sys)?;
        let usage = read_usage(paths, &index)?;
        let mut system: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (mount_point, device) in &usage.system {
            for found in index.disks_under(device) {
                let why = format!("{mount_point} is on {}", found.chain.join(", which is on "));
                let whys = system.entry(found.disk).or_default();
                if !whys.contains(&why) {
                    whys.push(why);
                }
            }
        }
        Ok(Scan {
            index,
            usage,
            system,
        })
    }

    /// Builds the [`Disk`] for a whole-disk node; the flag says whether a
    /// listing should hide it (kernel-hidden, or an unused loop device).
    pub(crate) fn disk(
        &self,
        paths: &SystemPaths,
        node: &BlockNode,
    ) -> Result<(Disk, bool), DiskError> {
        let attrs = disk_attrs(&paths.sys, node)?;
        let mut partitions = Vec::new();
        for part in self.index.partitions_of(&node.name) {
            partitions.push(Partition {
                name: part.name.clone(),
                path: dev_path(&paths.dev, &part.name),
                major_minor: part.dev,
                size_bytes: read_sectors(&part.dir.join("size"))?,
                mounts: self.mounts_of(&part.name),
                holders: part.holders.clone(),
                swap: self.usage.swaps.contains_key(&part.name),
            });
        }
        let mut holders = node.holders.clone();
        for part in &partitions {
            for holder in &part.holders {
                if !holders.contains(holder) {
                    holders.push(holder.clone());
                }
            }
        }
        let is_loop = node.name.starts_with("loop");
        let hidden = attrs.hidden || (is_loop && attrs.loop_backing_file.is_none());
        // A partition marked read-only makes writing the disk fail halfway.
        let read_only = attrs.read_only
            || self
                .index
                .partitions_of(&node.name)
                .map(|p| read_flag(&p.dir.join("ro")))
                .collect::<Result<Vec<bool>, _>>()?
                .contains(&true);
        let mut disk = Disk {
            name: node.name.clone(),
            path: dev_path(&paths.dev, &node.name),
            major_minor: node.dev,
            size_bytes: attrs.size_bytes,
            model: attrs.model,
            vendor: attrs.vendor,
            serial: attrs.serial,
            transport: attrs.transport,
            removable: attrs.removable,
            read_only,
            rotational: attrs.rotational,
            logical_block_size: attrs.logical_block_size,
            physical_block_size: attrs.physical_block_size,
            diskseq: attrs.diskseq,
            partitions,
            mounts: self.mounts_of(&node.name),
            holders,
            swap: self.usage.swaps.contains_key(&node.name),
            system_disk: self.system.get(&node.name).map(|w| w.join("; ")),
            loop_backing_file: attrs.loop_backing_file,
            verdict: Verdict::Writable,
        };
        disk.verdict = Verdict::from_refusals(disk_refusals(&disk, None));
        Ok((disk, hidden))
    }

    fn mounts_of(&self, name: &str) -> Vec<String> {
        self.usage.mounts.get(name).cloned().unwrap_or_default()
    }
}

/// Lists the whole disks under `/sys/block`, except RAM disks (`ram*`,
/// `zram*`), unused loop devices (no backing file) and devices the kernel
/// hides (multipath paths). Each carries its verdict for an image of
/// unknown size.
pub fn list_disks(paths: &SystemPaths) -> Result<Vec<Disk>, DiskError> {
    let scan = Scan::read(paths)?;
    let mut disks = Vec::new();
    for node in scan.index.disks() {
        if node.name.starts_with("ram") || node.name.starts_with("zram") {
            continue;
        }
        match scan.disk(paths, node) {
            Ok((disk, hidden)) => {
                if !hidden {
                    disks.push(disk);
                }
            }
            // Unplugged while we looked: it is simply not there any more.
            Err(e) if e.is_not_found() => {
                tracing::debug!(device = %node.name, "block device vanished during listing");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(disks)
}
