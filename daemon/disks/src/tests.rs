//! Listing and refusal rules against a fake sysfs/procfs tree.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::check::{Probe, check_block_device};
use crate::error::Refusal;
use crate::list_disks;
use crate::model::{Disk, SystemPaths, TargetKind, Verdict};

/// A temp dir laid out like `/sys`, `/dev` and `/proc`.
struct Fake {
    _dir: tempfile::TempDir,
    paths: SystemPaths,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let paths = SystemPaths {
            sys: root.join("sys"),
            dev: root.join("dev"),
            mountinfo: root.join("mountinfo"),
            swaps: root.join("swaps"),
        };
        fs::create_dir_all(paths.sys.join("block")).unwrap();
        fs::create_dir_all(&paths.dev).unwrap();
        fs::write(&paths.mountinfo, "").unwrap();
        fs::write(&paths.swaps, "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
        Fake { _dir: dir, paths }
    }

    /// A disk under `sys/devices/<bus_path>/<name>`, linked from
    /// `sys/block/<name>` the way the kernel does it.
    fn disk(&self, name: &str, dev: &str, sectors: u64, bus_path: &str) -> PathBuf {
        let dir = self.paths.sys.join("devices").join(bus_path).join(name);
        for (attr, value) in [
            ("dev", dev.to_owned()),
            ("size", sectors.to_string()),
            ("ro", "0".into()),
            ("removable", "0".into()),
            ("queue/rotational", "0".into()),
            ("queue/logical_block_size", "512".into()),
            ("queue/physical_block_size", "4096".into()),
        ] {
            write(&dir.join(attr), &value);
        }
        fs::create_dir_all(dir.join("holders")).unwrap();
        fs::create_dir_all(dir.join("slaves")).unwrap();
        let target = Path::new("../devices").join(bus_path).join(name);
        symlink(target, self.paths.sys.join("block").join(name)).unwrap();
        dir
    }

    fn part(&self, disk_dir: &Path, name: &str, dev: &str, sectors: u64) -> PathBuf {
        let dir = disk_dir.join(name);
        write(&dir.join("dev"), dev);
        write(&dir.join("size"), &sectors.to_string());
        write(&dir.join("partition"), "1");
        write(&dir.join("ro"), "0");
        fs::create_dir_all(dir.join("holders")).unwrap();
        dir
    }

    /// `holder` (a dm/md disk dir) is built on `held` (a disk or partition dir).
    fn hold(&self, holder: &Path, held: &Path) {
        let holder_name = holder.file_name().unwrap();
        let held_name = held.file_name().unwrap();
        write(&held.join("holders").join(holder_name), "");
        write(&holder.join("slaves").join(held_name), "");
    }

    fn mount(&self, line: &str) {
        append(&self.paths.mountinfo, line);
    }

    fn swap(&self, line: &str) {
        append(&self.paths.swaps, line);
    }

    fn dev(&self, name: &str) -> PathBuf {
        self.paths.dev.join(name)
    }
}

fn write(path: &Path, value: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{value}\n")).unwrap();
}

fn append(path: &Path, line: &str) {
    let mut text = fs::read_to_string(path).unwrap();
    text.push_str(line);
    text.push('\n');
    fs::write(path, text).unwrap();
}

const ATA: &str = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block";
const USB_DEV: &str = "pci0000:00/0000:00:14.0/usb2/2-1";
const NVME: &str = "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0";
const VIRTUAL: &str = "virtual/block";

/// sda: system disk (/ on dm-0 on sda2, /boot/efi on sda1); sdb: USB
/// stick with a mounted partition and a swap partition; nvme0n1: clean;
/// loop0: attached; loop1: unused; ram0/zram0; sdc1+sdd: one btrfs.
fn machine() -> Fake {
    let f = Fake::new();
    let sda = f.disk("sda", "8:0", 1_000_000, ATA);
    write(&sda.join("device/model"), "Samsung SSD 870  ");
    write(&sda.join("device/vendor"), "ATA     ");
    write(&sda.join("queue/rotational"), "1");
    f.part(&sda, "sda1", "8:1", 2048);
    let sda2 = f.part(&sda, "sda2", "8:2", 900_000);
    let dm0 = f.disk("dm-0", "253:0", 890_000, VIRTUAL);
    f.hold(&dm0, &sda2);
    f.mount("27 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw");
    f.mount("28 27 8:1 / /boot/efi rw - vfat /dev/sda1 rw");

    let usb_block = format!("{USB_DEV}/2-1:1.0/host6/target6:0:0/6:0:0:0/block");
    let sdb = f.disk("sdb", "8:16", 60_000_000, &usb_block);
    write(
        &f.paths.sys.join("devices").join(USB_DEV).join("idVendor"),
        "0781",
    );
    write(
        &f.paths.sys.join("devices").join(USB_DEV).join("serial"),
        "4C530001",
    );
    write(&sdb.join("removable"), "1");
    write(&sdb.join("device/model"), "Cruzer Blade");
    f.part(&sdb, "sdb1", "8:17", 50_000_000);
    f.part(&sdb, "sdb2", "8:18", 8_000_000);
    f.mount("30 27 8:17 / /media/my\\040stick rw - vfat /dev/sdb1 rw");
    f.swap("/dev/sdb2                               partition\t4000000\t0\t-2");

    let nvme = f.disk("nvme0n1", "259:0", 2_000_000, NVME);
    write(&nvme.join("device/model"), "WDC PC SN730");
    write(&nvme.join("device/serial"), " 1234ABCD ");
    write(&nvme.join("diskseq"), "9");
    f.part(&nvme, "nvme0n1p1", "259:1", 1_000_000);

    let loop0 = f.disk("loop0", "7:0", 2048, VIRTUAL);
    write(&loop0.join("loop/backing_file"), "/var/tmp/disk image.raw");
    f.disk("loop1", "7:1", 0, VIRTUAL);
    f.disk("ram0", "1:0", 8192, VIRTUAL);
    f.disk("zram0", "252:0", 8192, VIRTUAL);

    let sdc = f.disk("sdc", "8:32", 100_000, ATA);
    f.part(&sdc, "sdc1", "8:33", 90_000);
    f.disk("sdd", "8:48", 100_000, ATA);
    fs::create_dir_all(f.paths.sys.join("fs/btrfs/0f3c/devices/sdc1")).unwrap();
    fs::create_dir_all(f.paths.sys.join("fs/btrfs/0f3c/devices/sdd")).unwrap();
    f.mount("41 27 0:45 / /data rw - btrfs /dev/sdc1 rw");
    f
}

fn find<'a>(disks: &'a [Disk], name: &str) -> &'a Disk {
    disks.iter().find(|d| d.name == name).unwrap()
}

fn refusals(disk: &Disk) -> &[Refusal] {
    match &disk.verdict {
        Verdict::Refused(r) => r,
        Verdict::Writable => &[],
    }
}

#[test]
fn lists_disks_with_their_fields() {
    let f = machine();
    let disks = list_disks(&f.paths).unwrap();
    let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["dm-0", "loop0", "nvme0n1", "sda", "sdb", "sdc", "sdd"]
    );

    let sda = find(&disks, "sda");
    assert_eq!(sda.path, f.dev("sda"));
    assert_eq!(sda.major_minor, (8, 0));
    assert_eq!(sda.size_bytes, 1_000_000 * 512);
    assert_eq!(sda.model.as_deref(), Some("Samsung SSD 870"));
    assert_eq!(sda.vendor.as_deref(), Some("ATA"));
    assert_eq!(sda.transport.as_deref(), Some("sata"));
    assert!(sda.rotational && !sda.removable && !sda.read_only);
    assert_eq!(
        (sda.logical_block_size, sda.physical_block_size),
        (512, 4096)
    );
    let parts: Vec<&str> = sda.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(parts, ["sda1", "sda2"]);
    assert_eq!(sda.partitions[0].size_bytes, 2048 * 512);
    assert_eq!(sda.partitions[0].mounts, ["/boot/efi"]);

    let sdb = find(&disks, "sdb");
    assert_eq!(sdb.transport.as_deref(), Some("usb"));
    assert_eq!(
        sdb.serial.as_deref(),
        Some("4C530001"),
        "serial from the USB device"
    );
    assert!(sdb.removable);

    let nvme = find(&disks, "nvme0n1");
    assert_eq!(nvme.transport.as_deref(), Some("nvme"));
    assert_eq!(nvme.serial.as_deref(), Some("1234ABCD"));
    assert_eq!(nvme.diskseq, Some(9));
    assert_eq!(nvme.partitions[0].path, f.dev("nvme0n1p1"));
    assert_eq!(nvme.verdict, Verdict::Writable);

    let loop0 = find(&disks, "loop0");
    assert_eq!(loop0.transport.as_deref(), Some("loop"));
    assert_eq!(
        loop0.loop_backing_file.as_deref(),
        Some(Path::new("/var/tmp/disk image.raw"))
    );
    assert_eq!(loop0.verdict, Verdict::Writable);
}

#[test]
fn skips_ram_zram_and_unused_loops() {
    let disks = list_disks(&machine().paths).unwrap();
    for skipped in ["ram0", "zram0", "loop1"] {
        assert!(disks.iter().all(|d| d.name != skipped), "{skipped} listed");
    }
}

#[test]
fn refuses_disk_with_mounted_partition_naming_it() {
    let f = machine();
    let disks = list_disks(&f.paths).unwrap();
    let sdb = find(&disks, "sdb");
    assert_eq!(sdb.partitions[0].mounts, ["/media/my stick"]);
    let mounted = refusals(sdb)
        .iter()
        .find(|r| matches!(r, Refusal::Mounted { .. }))
        .unwrap();
    assert_eq!(
        mounted.to_string(),
        format!(
            "refusing {}: partition {} is mounted on /media/my stick",
            f.dev("sdb").display(),
            f.dev("sdb1").display()
        )
    );
}

#[test]
fn refuses_disk_with_active_swap() {
    let f = machine();
    let disks = list_disks(&f.paths).unwrap();
    let sdb = find(&disks, "sdb");
    assert!(sdb.partitions[1].swap && !sdb.swap);
    assert!(refusals(sdb).contains(&Refusal::Swap {
        path: f.dev("sdb"),
        devices: vec![f.dev("sdb2").display().to_string()],
    }));
}

#[test]
fn refuses_disk_held_by_device_mapper() {
    let f = machine();
    let disks = list_disks(&f.paths).unwrap();
    let sda = find(&disks, "sda");
    assert_eq!(sda.holders, ["dm-0"]);
    assert_eq!(sda.partitions[1].holders, ["dm-0"]);
    let held = refusals(sda)
        .iter()
        .find(|r| matches!(r, Refusal::Held { .. }))
        .unwrap();
    assert_eq!(
        held.to_string(),
        format!(
            "refusing {}: partition {} is held by dm-0",
            f.dev("sda").display(),
            f.dev("sda2").display()
        )
    );
}

#[test]
fn finds_system_disk_through_device_mapper() {
    let f = machine();
    let disks = list_disks(&f.paths).unwrap();
    let sda = find(&disks, "sda");
    assert_eq!(
        sda.system_disk.as_deref(),
        Some("/ is on dm-0, which is on sda2; /boot/efi is on sda1")
    );
    assert!(
        refusals(sda)
            .iter()
            .any(|r| matches!(r, Refusal::SystemDisk { .. }))
    );
    // The dm device is mounted itself but is not a disk at the bottom.
    assert_eq!(find(&disks, "dm-0").system_disk, None);
    assert_eq!(find(&disks, "sdb").system_disk, None);
}

#[test]
fn btrfs_mount_counts_on_every_member() {
    let disks = list_disks(&machine().paths).unwrap();
    assert_eq!(find(&disks, "sdc").partitions[0].mounts, ["/data"]);
    assert_eq!(find(&disks, "sdd").mounts, ["/data"]);
}

#[test]
fn finds_system_disk_from_a_whole_disk_root() {
    let f = Fake::new();
    f.disk(
        "vda",
        "254:0",
        4096,
        "pci0000:00/0000:00:02.0/virtio1/block",
    );
    f.mount("27 1 254:0 / / rw - ext4 /dev/vda rw");
    let disks = list_disks(&f.paths).unwrap();
    assert_eq!(disks[0].transport.as_deref(), Some("virtio"));
    assert_eq!(disks[0].system_disk.as_deref(), Some("/ is on vda"));
}

#[test]
fn refuses_a_partition_naming_its_disk() {
    let f = machine();
    let probe = Probe {
        size: Some(50_000_000 * 512),
        ..Probe::default()
    };
    let err =
        check_block_device(&f.paths, &f.dev("nvme0n1p1"), (259, 1), &probe, None).unwrap_err();
    assert_eq!(
        err,
        [Refusal::Partition {
            path: f.dev("nvme0n1p1"),
            disk: f.dev("nvme0n1"),
        }]
    );
    assert!(err[0].to_string().contains("a partition, not a whole disk"));
}

#[test]
fn accepts_a_clean_disk_and_collects_every_objection_otherwise() {
    let f = machine();
    let size = 2_000_000 * 512;
    let probe = Probe {
        size: Some(size),
        ..Probe::default()
    };
    let target =
        check_block_device(&f.paths, &f.dev("nvme0n1"), (259, 0), &probe, Some(size)).unwrap();
    assert_eq!(target.size_bytes, size);
    assert_eq!(target.identity.serial.as_deref(), Some("1234ABCD"));
    assert!(matches!(target.kind, TargetKind::BlockDevice { .. }));

    let bad = Probe {
        size: Some(size - 512),
        read_only: true,
        busy: true,
        error: None,
    };
    let err = check_block_device(&f.paths, &f.dev("nvme0n1"), (259, 0), &bad, Some(size + 1))
        .unwrap_err();
    assert_eq!(
        err,
        [
            Refusal::ReadOnly(f.dev("nvme0n1")),
            Refusal::TooSmall {
                path: f.dev("nvme0n1"),
                needed: size + 1,
                size,
            },
            Refusal::SizeMismatch {
                path: f.dev("nvme0n1"),
                sysfs: size,
                device: size - 512,
            },
            Refusal::Busy(f.dev("nvme0n1")),
        ]
    );
}

#[test]
fn busy_is_not_repeated_when_a_mount_explains_it() {
    let f = machine();
    let probe = Probe {
        size: Some(60_000_000 * 512),
        busy: true,
        ..Probe::default()
    };
    let err = check_block_device(&f.paths, &f.dev("sdb"), (8, 16), &probe, None).unwrap_err();
    assert!(err.iter().any(|r| matches!(r, Refusal::Mounted { .. })));
    assert!(err.iter().any(|r| matches!(r, Refusal::Swap { .. })));
    assert!(!err.iter().any(|r| matches!(r, Refusal::Busy(_))));
}

#[test]
fn unknown_device_numbers_are_refused() {
    let f = machine();
    let err = check_block_device(
        &f.paths,
        Path::new("/dev/odd"),
        (9, 9),
        &Probe::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "refusing /dev/odd: block device 9:9 is not listed in sysfs"
    );
}
