//! Shared fixtures for bty-flash's integration tests: a small GPT disk image
//! in every container format (built once with the standard CLI tools and
//! cached under the target dir), loop devices detached on drop, noise-filled
//! targets, and a helper that flashes a file the way the daemon will.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use bty_flash::{
    FlashOptions, FlashReport, HashingReader, Source, TargetKind, TargetSpec, flash, flash_qcow2,
    open_decoder,
};
use bty_store::format::{Container, sniff_file};

pub(crate) const MIB: u64 = 1 << 20;
/// Not a multiple of 4096, so the unaligned-tail path is always exercised.
pub(crate) const IMAGE_SIZE: u64 = 24 * MIB + 1536;

/// Deterministic bytes (xorshift64*): reproducible "random" regions.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(crate) fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sh(script: &str) {
    run(Command::new("bash").args(["-euo", "pipefail", "-c", script]));
}

/// The directory holding `disk.img` and its variants.
pub(crate) fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bty-flash-fixtures-v2");
        if !dir.join("complete").exists() {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("bty-flash-fixtures.{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp).unwrap();
            build_fixtures(&tmp);
            File::create(tmp.join("complete")).unwrap();
            // Another test binary may have won the race; either copy is good.
            if fs::rename(&tmp, &dir).is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        dir
    })
}

fn build_fixtures(dir: &Path) {
    let raw = dir.join("disk.img");
    let mut img = vec![0u8; usize::try_from(IMAGE_SIZE).unwrap()];
    let mib = MIB as usize;
    img[mib..5 * mib].copy_from_slice(&noise(1, 4 * mib));
    let text: Vec<u8> = (0..)
        .map(|i| format!("bty test line {i}\n"))
        .flat_map(String::into_bytes)
        .take(4 * mib)
        .collect();
    img[9 * mib..13 * mib].copy_from_slice(&text);
    img[20 * mib..22 * mib].copy_from_slice(&noise(2, 2 * mib));
    // A few isolated blocks inside a zero area: short zero runs stay data.
    for k in 0..8 {
        img[16 * mib + k * 12288..16 * mib + k * 12288 + 100]
            .copy_from_slice(&noise(3 + k as u64, 100));
    }
    fs::write(&raw, &img).unwrap();
    run(Command::new("sfdisk").arg("--quiet").arg(&raw).stdin_bytes(
        b"label: gpt\nstart=2048, size=16384, type=L\nstart=18432, size=28672, type=L\n",
    ));
    let r = raw.display();
    let d = dir.display();
    sh(&format!("zstd -q -f -o {d}/disk.img.zst {r}"));
    sh(&format!(
        "xz -T2 --block-size=1MiB -c {r} > {d}/disk.img.xz"
    ));
    sh(&format!("gzip -c {r} > {d}/disk.img.gz"));
    sh(&format!("bzip2 -c {r} > {d}/disk.img.bz2"));
    sh(&format!(
        "qemu-img convert -f raw -O qcow2 {r} {d}/disk.qcow2"
    ));
    // Concatenations: two streams/frames/members of the two halves, plus
    // xz stream padding, must decode to the whole image.
    let half = IMAGE_SIZE / 2 / 4096 * 4096;
    sh(&format!(
        "head -c {half} {r} > {d}/a; tail -c +{} {r} > {d}/b",
        half + 1
    ));
    sh(&format!(
        "xz -T2 --block-size=1MiB -c {d}/a > {d}/multi.img.xz; xz -c {d}/b >> {d}/multi.img.xz; head -c 8 /dev/zero >> {d}/multi.img.xz"
    ));
    sh(&format!(
        "zstd -q -c {d}/a > {d}/multi.img.zst; zstd -q -c {d}/b >> {d}/multi.img.zst"
    ));
    sh(&format!(
        "gzip -c {d}/a > {d}/multi.img.gz; gzip -c {d}/b >> {d}/multi.img.gz"
    ));
    sh(&format!(
        "bzip2 -c {d}/a > {d}/multi.img.bz2; bzip2 -c {d}/b >> {d}/multi.img.bz2"
    ));
    sh(&format!("rm {d}/a {d}/b"));
    // Damaged copies: one byte flipped in the middle; cut in half.
    for ext in ["img.zst", "img.xz", "img.gz", "img.bz2"] {
        let good = fs::read(dir.join(format!("disk.{ext}"))).unwrap();
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        fs::write(dir.join(format!("corrupt.{ext}")), bad).unwrap();
        fs::write(
            dir.join(format!("truncated.{ext}")),
            &good[..good.len() / 2],
        )
        .unwrap();
    }
}

trait StdinBytes {
    fn stdin_bytes(&mut self, bytes: &[u8]) -> &mut Self;
}

impl StdinBytes for Command {
    /// sfdisk reads its script from stdin; via a file keeps this simple.
    fn stdin_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let path = std::env::temp_dir().join(format!("bty-flash-sfdisk.{}", std::process::id()));
        fs::write(&path, bytes).unwrap();
        self.stdin(File::open(&path).unwrap());
        let _ = fs::remove_file(&path);
        self
    }
}

pub(crate) fn raw_image() -> PathBuf {
    fixtures().join("disk.img")
}

pub(crate) fn image(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// A file of `size` noise bytes (seeded) at `path`.
pub(crate) fn noise_file(path: &Path, size: u64, seed: u64) {
    let mut f = File::create(path).unwrap();
    let chunk = noise(seed, usize::try_from(MIB).unwrap());
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB);
        f.write_all(&chunk[..usize::try_from(n).unwrap()]).unwrap();
        left -= n;
    }
}

/// A loop device over a noise-filled backing file; detached on drop.
pub(crate) struct LoopDev {
    pub(crate) dev: PathBuf,
    pub(crate) backing: PathBuf,
}

impl LoopDev {
    pub(crate) fn new(dir: &Path, name: &str, size: u64, seed: u64) -> Self {
        let backing = dir.join(name);
        noise_file(&backing, size, seed);
        let out = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing));
        let dev = PathBuf::from(String::from_utf8(out).unwrap().trim());
        Self { dev, backing }
    }

    pub(crate) fn spec(&self) -> TargetSpec {
        TargetSpec {
            path: self.dev.clone(),
            kind: TargetKind::BlockDevice,
            size_bytes: None,
            expect: None,
        }
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

pub(crate) fn file_spec(path: &Path) -> TargetSpec {
    TargetSpec {
        path: path.to_path_buf(),
        kind: TargetKind::RegularFile,
        size_bytes: None,
        expect: None,
    }
}

/// Flash the image file at `path` the way the daemon does: sniff, hash the
/// source, decode, write (or qemu-img for qcow2).
pub(crate) fn flash_path(
    path: &Path,
    targets: Vec<TargetSpec>,
    opts: &FlashOptions,
    cancel: &AtomicBool,
) -> FlashReport {
    let container = sniff_file(path).unwrap().unwrap_or(Container::Raw);
    if container == Container::Qcow2 {
        return flash_qcow2(&File::open(path).unwrap(), targets, opts, &|_| {}, cancel);
    }
    if container == Container::Raw {
        // As the daemon does: holes skipped, data read with O_DIRECT.
        return flash(
            Source::RawFile(File::open(path).unwrap()),
            targets,
            opts,
            &|_| {},
            cancel,
        );
    }
    let hashing = HashingReader::new(File::open(path).unwrap());
    let opts = FlashOptions {
        source_meter: Some(hashing.tally()),
        ..opts.clone()
    };
    let source = open_decoder(BufReader::with_capacity(1 << 20, hashing), container).unwrap();
    flash(source, targets, &opts, &|_| {}, cancel)
}

/// Whether the first `len` bytes of `a` and `b` are equal (`cmp -n`).
pub(crate) fn same_prefix(a: &Path, b: &Path, len: u64) -> bool {
    Command::new("cmp")
        .arg("-n")
        .arg(len.to_string())
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

/// The first MiB of `path`.
pub(crate) fn first_mib(path: &Path) -> Vec<u8> {
    let mut buf = vec![0u8; usize::try_from(MIB).unwrap()];
    File::open(path).unwrap().read_exact(&mut buf).unwrap();
    buf
}

pub(crate) fn assert_flashed_ok(report: &FlashReport, targets: &[&Path], verify: bool) {
    assert_eq!(report.decode_passes, 1);
    assert_eq!(
        report.targets.len(),
        targets.len(),
        "the report does not cover every target"
    );
    for (outcome, path) in report.targets.iter().zip(targets) {
        let done = outcome
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e} ({e:?})", path.display()));
        assert_eq!(done.written, IMAGE_SIZE);
        assert_eq!(done.verified, verify.then_some(true));
        assert!(
            same_prefix(&raw_image(), path, IMAGE_SIZE),
            "{} differs from the image",
            path.display()
        );
    }
}
