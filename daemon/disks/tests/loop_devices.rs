//! Target checks and block ioctls on real loop devices made by each test
//! (root only; skipped with a message otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use bty_disks::{
    Refusal, SystemPaths, TargetKind, block_size_bytes, check_target, discard, list_disks,
    logical_block_size, reread_partition_table, same_identity, verify_opened, zero_out,
};
use bty_test_caps::require_loop_devices;
use support::{Loop, Mounted, image, noise, run};

const MIB: u64 = 1 << 20;

fn refusals(target: &Path, needed: Option<u64>, files: Option<&Path>) -> Vec<Refusal> {
    check_target(&SystemPaths::default(), target, needed, files)
        .err()
        .unwrap_or_else(|| panic!("{} was accepted", target.display()))
}

#[test]
fn writable_loop_is_accepted_and_listed() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let file = fs::canonicalize(image(dir.path(), "disk.img", 8 * MIB)).unwrap();
    let lo = Loop::attach(&file, &[]);

    let target = check_target(&SystemPaths::default(), &lo.path, Some(4 * MIB), None).unwrap();
    assert_eq!(target.path, lo.path);
    assert_eq!(target.size_bytes, 8 * MIB);
    assert_eq!(target.logical_block_size, 512);
    assert_eq!(target.identity.size_bytes, 8 * MIB);
    let TargetKind::BlockDevice { disk } = &target.kind else {
        panic!("not a block device: {target:?}")
    };
    assert_eq!(disk.loop_backing_file.as_deref(), Some(file.as_path()));

    let disks = list_disks(&SystemPaths::default()).unwrap();
    let listed = disks.iter().find(|d| d.name == lo.name()).unwrap();
    assert_eq!(listed.transport.as_deref(), Some("loop"));
    assert_eq!(listed.size_bytes, 8 * MIB);
    assert_eq!(listed.loop_backing_file.as_deref(), Some(file.as_path()));
    assert!(listed.verdict.is_writable(), "{:?}", listed.verdict);

    // Its backing file must not be written as a "regular file" target.
    let err = refusals(&file, None, Some(dir.path()));
    assert!(
        matches!(&err[..], [Refusal::Held { holders, .. }] if holders[0].contains(&lo.name())),
        "{err:?}"
    );
}

#[test]
fn read_only_loop_is_refused() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = Loop::attach(&image(dir.path(), "ro.img", 4 * MIB), &["-r"]);
    let err = refusals(&lo.path, None, None);
    assert_eq!(err, [Refusal::ReadOnly(lo.path.clone())]);
    assert_eq!(
        err[0].to_string(),
        format!("refusing {}: the device is read-only", lo.path.display())
    );
}

#[test]
fn loop_with_mounted_partition_is_refused() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let file = image(dir.path(), "parted.img", 16 * MIB);
    let mut sfdisk = std::process::Command::new("sfdisk")
        .args(["--quiet", file.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (package fdisk) is needed");
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, type=83\n")
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());

    let lo = Loop::attach(&file, &["-P"]);
    let part = lo.partition(1);
    run("mkfs.ext4", &["-q", part.to_str().unwrap()]);
    let mount_point = dir.path().join("mnt");
    fs::create_dir(&mount_point).unwrap();
    let mounted = Mounted::new(&part, &mount_point);

    let err = refusals(&lo.path, None, None);
    let message = format!(
        "refusing {}: partition {} is mounted on {}",
        lo.path.display(),
        part.display(),
        mounted.mount_point.display()
    );
    assert!(
        err.iter().any(|r| r.to_string() == message),
        "want {message:?} in {err:?}"
    );
    // The partition itself is refused as "not a whole disk".
    let err = refusals(&part, None, None);
    assert_eq!(
        err,
        [Refusal::Partition {
            path: part.clone(),
            disk: lo.path.clone()
        }]
    );
}

#[test]
fn small_loop_is_too_small() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = Loop::attach(&image(dir.path(), "small.img", MIB), &[]);
    let err = refusals(&lo.path, Some(4 * MIB), None);
    assert_eq!(
        err,
        [Refusal::TooSmall {
            path: lo.path.clone(),
            needed: 4 * MIB,
            size: MIB
        }]
    );
    let text = err[0].to_string();
    assert!(
        text.contains("4194304") && text.contains("1048576"),
        "{text}"
    );
}

/// The whole disk under `/`, found independently of the crate: the root
/// mount's device number, then sysfs's `/sys/dev/block` link.
fn root_disk() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = mountinfo.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f[4] == "/").then(|| f[2].to_owned())
    })?;
    let sys = fs::canonicalize(format!("/sys/dev/block/{dev}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys
    };
    Some(Path::new("/dev").join(disk.file_name()?))
}

#[test]
fn disk_holding_root_is_refused() {
    let disk = root_disk()
        .expect("this test needs / on a block device (a VM or a host, not a container's overlay)");
    let err = refusals(&disk, None, None);
    let why = err
        .iter()
        .find_map(|r| match r {
            Refusal::SystemDisk { why, .. } => Some(why.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SystemDisk refusal for {}: {err:?}", disk.display()));
    assert!(why.starts_with("/ is on "), "{why}");
}

#[test]
fn dev_null_is_not_a_block_device() {
    let err = refusals(Path::new("/dev/null"), None, None);
    assert_eq!(err, [Refusal::NotBlockDevice("/dev/null".into())]);
    assert_eq!(err[0].to_string(), "refusing /dev/null: not a block device");
    let err = refusals(Path::new("/dev/null"), None, Some(Path::new("/dev")));
    assert_eq!(err, [Refusal::NotAFile("/dev/null".into())]);
}

#[test]
fn missing_path_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-disk");
    assert_eq!(
        refusals(&missing, None, None),
        [Refusal::NotFound(missing.clone())]
    );
}

#[test]
fn regular_files_are_targets_only_inside_the_configured_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = fs::canonicalize(image(dir.path(), "out.img", 3 * MIB)).unwrap();
    let no_dir = refusals(&file, None, None);
    assert_eq!(
        no_dir,
        [Refusal::FileOutsideTargetsDir {
            path: file.clone(),
            dir: None
        }]
    );
    assert!(
        no_dir[0]
            .to_string()
            .contains("[flash] file_targets_dir, not set"),
        "{}",
        no_dir[0]
    );
    // Files grow, so a larger image is fine.
    let target = check_target(
        &SystemPaths::default(),
        &file,
        Some(100 * MIB),
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(target.kind, TargetKind::RegularFile);
    assert_eq!(target.size_bytes, 3 * MIB);
    assert_eq!(target.identity.major_minor, None);
    assert!(target.identity.file_id.is_some());
    assert_eq!(
        refusals(dir.path(), None, Some(dir.path())),
        [Refusal::NotAFile(fs::canonicalize(dir.path()).unwrap())]
    );
}

/// The attack: a client names a host file (here one the test made in
/// another directory) or reaches out of the allowed directory through a
/// subdirectory, `..` or a symlink planted inside it. Every way is refused.
#[test]
fn files_outside_the_configured_dir_are_refused_however_named() {
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = fs::canonicalize(image(elsewhere.path(), "host.conf", MIB)).unwrap();
    let sub = allowed.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let nested = fs::canonicalize(image(&sub, "nested.img", MIB)).unwrap();
    let link = allowed.path().join("link.img");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dotdot = allowed
        .path()
        .join("..")
        .join(elsewhere.path().file_name().unwrap())
        .join("host.conf");
    for (named, refused) in [
        (victim.clone(), victim.clone()),
        (nested.clone(), nested.clone()),
        (link, victim.clone()),
        (dotdot, victim.clone()),
    ] {
        let err = refusals(&named, None, Some(allowed.path()));
        assert_eq!(
            err,
            [Refusal::FileOutsideTargetsDir {
                path: refused,
                dir: Some(allowed.path().to_path_buf())
            }],
            "{}",
            named.display()
        );
    }
}

#[test]
fn zero_out_zeroes_exactly_the_range() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = Loop::attach(&image(dir.path(), "zero.img", 4 * MIB), &[]);
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lo.path)
        .unwrap();
    let data = noise(4 * MIB as usize);
    dev.write_all(&data).unwrap();
    dev.sync_all().unwrap();

    assert_eq!(block_size_bytes(dev.as_fd()).unwrap(), 4 * MIB);
    assert_eq!(logical_block_size(dev.as_fd()).unwrap(), 512);
    zero_out(dev.as_fd(), MIB, MIB).unwrap();

    let mut back = Vec::new();
    dev.seek(SeekFrom::Start(0)).unwrap();
    dev.read_to_end(&mut back).unwrap();
    let (mib, len) = (MIB as usize, data.len());
    assert!(
        back[mib..2 * mib].iter().all(|b| *b == 0),
        "range not zeroed"
    );
    assert_eq!(back[..mib], data[..mib], "bytes before the range changed");
    assert_eq!(
        back[2 * mib..len],
        data[2 * mib..len],
        "bytes after the range changed"
    );

    // Unaligned ranges are the caller's bug: the kernel says EINVAL.
    assert!(zero_out(dev.as_fd(), 1, 512).is_err());
    discard(dev.as_fd(), 3 * MIB, MIB).unwrap();
    // Without partition scanning (-P) a loop refuses to re-read.
    let err = reread_partition_table(dev.as_fd()).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::INVAL.raw_os_error())
    );
}

#[test]
fn reread_partition_table_works_with_partscan() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = Loop::attach(&image(dir.path(), "scan.img", 4 * MIB), &["-P"]);
    let dev = fs::File::open(&lo.path).unwrap();
    reread_partition_table(dev.as_fd()).unwrap();
}

#[test]
fn identity_changes_when_the_loop_is_reattached() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let paths = SystemPaths::default();
    let first = Loop::attach(&image(dir.path(), "a.img", 4 * MIB), &[]);
    let device = first.path.clone();
    let confirmed = check_target(&paths, &device, None, None).unwrap().identity;
    let again = check_target(&paths, &device, None, None).unwrap().identity;
    assert!(same_identity(&confirmed, &again));
    drop(first);

    let _second = Loop::attach_at(&device, &image(dir.path(), "b.img", 5 * MIB));
    let now = check_target(&paths, &device, None, None).unwrap().identity;
    assert_eq!(now.major_minor, confirmed.major_minor, "same loop device");
    assert!(!same_identity(&confirmed, &now));
    if let (Some(a), Some(b)) = (confirmed.diskseq, now.diskseq) {
        assert_ne!(a, b, "the kernel gives a re-attached loop a new diskseq");
    }
}

/// What the flasher opens is checked on the descriptor: another device (a
/// node re-used, a path now naming another disk) or a file replaced at the
/// checked name is refused, even when the size matches.
#[test]
fn the_opened_descriptor_must_be_the_confirmed_target() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let paths = SystemPaths::default();
    let a = Loop::attach(&image(dir.path(), "a.img", 4 * MIB), &[]);
    let b = Loop::attach(&image(dir.path(), "b.img", 4 * MIB), &[]);
    let confirmed = check_target(&paths, &a.path, None, None).unwrap().identity;
    let open = |p: &Path| OpenOptions::new().write(true).open(p).unwrap();
    verify_opened(open(&a.path).as_fd(), &confirmed).unwrap();
    let err = verify_opened(open(&b.path).as_fd(), &confirmed).unwrap_err();
    assert!(err.to_string().contains("device number"), "{err}");

    let targets = dir.path().join("targets");
    fs::create_dir(&targets).unwrap();
    let file = targets.join("t.img");
    fs::write(&file, vec![1u8; MIB as usize]).unwrap();
    let confirmed = check_target(&paths, &file, None, Some(&targets))
        .unwrap()
        .identity;
    let swapped = targets.join("swap.img");
    fs::write(&swapped, vec![2u8; MIB as usize]).unwrap();
    fs::rename(&swapped, &file).unwrap();
    let err = verify_opened(open(&file).as_fd(), &confirmed).unwrap_err();
    assert!(err.to_string().contains("inode"), "{err}");
}
