//! A byte flipped on the target after it was written is found by verify and
//! named by offset, for every format and source path: decoded streams (raw,
//! zst, xz, gz, bz2) onto a loop device, in a data piece and in a zeroed
//! run; a raw image file and a plain qcow2 (both read by their layout) onto
//! a fresh file. The first MiB is never written when verify fails.
//!
//! On a loop device no race decides these tests: the stream is held back
//! just before the stretch holding the flipped byte is complete, so the
//! verifier cannot have read it before the flip. A raw file or qcow2 read
//! by its layout cannot be held back that way, so there the flipped byte
//! sits in a hole of the image, which the writer never writes on a fresh
//! file, 3 GiB of zeros after the first write: the planter, woken within a
//! millisecond of that write, has the verifier's read of those 3 GiB to
//! land in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use bty_flash::{AlignedBuf, FlashError, FlashOptions, Source, flash, flash_qcow2, open_decoder};
use bty_store::format::{Container, sniff_file};
use bty_test_caps::require_loop_devices;
use support::*;

/// Chunk size of these flashes: the verifier gets a stretch every 8 chunks.
const BUFFER: usize = 256 << 10;
const STRETCH: u64 = 8 * BUFFER as u64;

/// The decoded image, held back at `gate` until the target holds the
/// image's block around `at`; then that byte is flipped on the target.
struct FlipOnTarget {
    inner: Box<dyn Read + Send>,
    pos: u64,
    at: u64,
    gate: u64,
    /// The image's 4 KiB block holding `at`, as it went by.
    block: Vec<u8>,
    target: PathBuf,
    flipped: bool,
}

impl FlipOnTarget {
    fn new(inner: Box<dyn Read + Send>, at: u64, target: &Path) -> Self {
        // Everything before the last chunk of `at`'s stretch may go: the
        // writer cannot complete that stretch before the flip.
        let gate = (at / STRETCH + 1) * STRETCH - BUFFER as u64;
        assert!(at < gate);
        Self {
            inner,
            pos: 0,
            at,
            gate,
            block: Vec::new(),
            target: target.to_path_buf(),
            flipped: false,
        }
    }

    fn flip_once_written(&mut self) {
        let start = self.at / 4096 * 4096;
        let target = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(o_direct())
            .open(&self.target)
            .unwrap();
        let mut buf = AlignedBuf::new(4096);
        buf.set_len(4096);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            target.read_exact_at(buf.as_mut_full(), start).unwrap();
            if buf.as_slice() == self.block.as_slice() {
                break;
            }
            assert!(Instant::now() < deadline, "the writer never wrote {start}");
            thread::sleep(Duration::from_millis(2));
        }
        buf.as_mut_full()[usize::try_from(self.at - start).unwrap()] ^= 0x10;
        target.write_all_at(buf.as_slice(), start).unwrap();
        target.sync_all().unwrap();
        self.flipped = true;
    }
}

fn o_direct() -> i32 {
    // O_DIRECT on x86_64 and aarch64 Linux differ; take it from rustix.
    i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap()
}

impl Read for FlipOnTarget {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.flipped && self.pos >= self.gate {
            self.flip_once_written();
        }
        let room = if self.flipped {
            buf.len()
        } else {
            buf.len()
                .min(usize::try_from(self.gate - self.pos).unwrap())
        };
        let n = self.inner.read(&mut buf[..room])?;
        // Keep the image's block around `at` as it goes by.
        let start = self.at / 4096 * 4096;
        for (i, &b) in buf[..n].iter().enumerate() {
            let p = self.pos + i as u64;
            if (start..start + 4096).contains(&p) {
                self.block.push(b);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn opts() -> FlashOptions {
    FlashOptions {
        buffer_size: BUFFER,
        ..FlashOptions::default()
    }
}

/// `err` is a verify mismatch naming the piece that holds `at`.
fn assert_names(err: &FlashError, at: u64, expected_prefix: &str) {
    let FlashError::VerifyMismatch {
        offset,
        len,
        expected,
        actual,
        ..
    } = err
    else {
        panic!("not a verify mismatch: {err:?}");
    };
    assert!(
        (*offset..offset + len).contains(&at),
        "{offset}+{len} does not hold {at}"
    );
    assert!(
        *len <= BUFFER as u64 * 16,
        "{len}: name the piece, not the image"
    );
    assert!(expected.starts_with(expected_prefix), "{expected}");
    assert_ne!(expected, actual);
    assert!(err.to_string().contains(&offset.to_string()), "{err}");
}

fn flipped_on_a_loop_device(ext: &str, at: u64, expected_prefix: &str) {
    require_loop_devices();
    let tmp = tempfile::tempdir().unwrap();
    let lo = LoopDev::new(tmp.path(), "lo", 32 * MIB, 31);
    let before = first_mib(&lo.dev);
    let src = image(&format!("disk.{ext}"));
    let container = sniff_file(&src).unwrap().unwrap_or(Container::Raw);
    let decoded = open_decoder(BufReader::new(File::open(&src).unwrap()), container).unwrap();
    let source = FlipOnTarget::new(decoded, at, &lo.dev);
    let report = flash(
        Box::new(source) as Box<dyn Read + Send>,
        vec![lo.spec()],
        &opts(),
        &|_| {},
        &AtomicBool::new(false),
    );
    let err = report.targets[0].result.as_ref().unwrap_err();
    assert_names(err, at, expected_prefix);
    assert_eq!(first_mib(&lo.dev), before, "the first MiB was written");
}

/// In the text region of the test image: a data piece.
const IN_DATA: u64 = 10 * MIB + 12_345;
/// In the zero run at 5–9 MiB: zeroed with BLKZEROOUT, checked as zeros.
const IN_ZEROS: u64 = 7 * MIB + 4097;

#[test]
fn a_flipped_byte_is_named_for_every_stream_format() {
    for ext in ["img", "img.zst", "img.xz", "img.gz", "img.bz2"] {
        flipped_on_a_loop_device(ext, IN_DATA, "xxh3-128 ");
    }
}

#[test]
fn a_flipped_byte_in_a_zeroed_run_is_named() {
    for ext in ["img", "img.zst"] {
        flipped_on_a_loop_device(ext, IN_ZEROS, "all zeros");
    }
}

/// A sparse raw image: 2 MiB of data, a [`HOLE`], 1 MiB of data; and
/// its plain qcow2.
fn sparse_images(dir: &Path) -> (PathBuf, PathBuf) {
    let raw = dir.join("sparse.img");
    let f = File::create(&raw).unwrap();
    f.write_all_at(&noise(41, 2 * MIB as usize), 0).unwrap();
    f.write_all_at(&noise(42, MIB as usize), 2 * MIB + HOLE)
        .unwrap();
    drop(f);
    let qcow = dir.join("sparse.qcow2");
    run(std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow));
    (raw, qcow)
}

/// Deep in the hole: the writer never writes there on a fresh file.
/// The hole's length: reading it back takes long enough (seconds of
/// zeros) that the planter thread gets its turn first even on a loaded
/// machine; a sparse file costs nothing on disk.
const HOLE: u64 = 3 << 30;
const IN_HOLE: u64 = 2 * MIB + HOLE - (64 << 20) + 3;

/// Flip a byte in the hole of `target` as soon as the writer has started
/// on it (a fresh file skips zero runs, so nothing writes there later).
///
/// The planter sleeps between looks rather than yielding: on a loaded
/// machine a thread that keeps calling `sched_yield` is the last one the
/// scheduler picks, and it lost the race against the verifier's read of
/// the hole in CI; a sleeper is run as soon as it wakes.
fn plant_in_hole(target: PathBuf) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&target).map_or(0, |m| m.len()) == 0 {
            assert!(Instant::now() < deadline, "the writer never started");
            thread::sleep(Duration::from_micros(200));
        }
        let f = OpenOptions::new().write(true).open(&target).unwrap();
        f.write_all_at(&[0x5a], IN_HOLE).unwrap();
        f.sync_all().unwrap();
    })
}

#[test]
fn a_flipped_byte_is_named_for_raw_files_and_plain_qcow2() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, qcow) = sparse_images(tmp.path());
    for (name, src) in [("raw", &raw), ("qcow2", &qcow)] {
        let out = tmp.path().join(format!("{name}.out"));
        let planter = plant_in_hole(out.clone());
        let file = File::open(src).unwrap();
        let opts = FlashOptions::default();
        let cancel = AtomicBool::new(false);
        let report = if name == "raw" {
            flash(
                Source::RawFile(file),
                vec![file_spec(&out)],
                &opts,
                &|_| {},
                &cancel,
            )
        } else {
            flash_qcow2(&file, vec![file_spec(&out)], &opts, &|_| {}, &cancel)
        };
        planter.join().unwrap();
        let err = report.targets[0].result.as_ref().unwrap_err();
        let FlashError::VerifyMismatch {
            offset,
            len,
            expected,
            ..
        } = err
        else {
            panic!("{name}: not a verify mismatch: {err:?}");
        };
        assert!(
            (*offset..offset + len).contains(&IN_HOLE),
            "{name}: {offset}+{len}"
        );
        assert!(*len <= opts.buffer_size as u64, "{name}: {len}");
        assert_eq!(expected, "all zeros", "{name}");
        assert!(
            err.to_string().contains(&offset.to_string()),
            "{name}: {err}"
        );
        assert!(
            first_mib(&out).iter().all(|&b| b == 0),
            "{name}: first MiB written"
        );
    }
}

/// The image, with the target's name moved onto `decoy` once `gate`
/// bytes have gone by: every stretch after that is announced to the
/// verifier after the move.
struct RenameAt {
    inner: Box<dyn Read + Send>,
    pos: u64,
    gate: u64,
    rename: Option<(PathBuf, PathBuf)>,
}

impl Read for RenameAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.gate
            && let Some((decoy, target)) = self.rename.take()
        {
            std::fs::rename(decoy, target).unwrap();
        }
        let room = if self.rename.is_some() {
            buf.len()
                .min(usize::try_from(self.gate - self.pos).unwrap())
        } else {
            buf.len()
        };
        let n = self.inner.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// An attacker (or a hot-swap) moves the target's name onto another file
/// while the flash runs. Verify reads the file that was opened, checked
/// and written, never what the name points at later: the flash passes,
/// the written file holds the image, and the decoy is not read as the
/// target (it would fail the verify) nor written.
#[test]
fn verify_reads_the_file_it_wrote_not_what_its_name_points_at_later() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target.img");
    let decoy = tmp.path().join("decoy.img");
    std::fs::write(&target, b"").unwrap();
    // The written file, still reachable after its name moves.
    let kept = tmp.path().join("kept.img");
    std::fs::hard_link(&target, &kept).unwrap();
    let decoy_bytes = noise(77, (IMAGE_SIZE + 4 * MIB) as usize);
    std::fs::write(&decoy, &decoy_bytes).unwrap();

    let src = image("disk.img.zst");
    let decoded = open_decoder(BufReader::new(File::open(&src).unwrap()), Container::Zstd).unwrap();
    let gate = 3 * MIB;
    assert!(gate + 2 * STRETCH < IMAGE_SIZE, "stretches after the move");
    let source = RenameAt {
        inner: decoded,
        pos: 0,
        gate,
        rename: Some((decoy.clone(), target.clone())),
    };
    let report = flash(
        Box::new(source) as Box<dyn Read + Send>,
        vec![file_spec(&target)],
        &opts(),
        &|_| {},
        &AtomicBool::new(false),
    );
    let done = report.targets[0].result.as_ref().unwrap();
    assert_eq!(done.verified, Some(true));
    let raw = std::fs::read(image("disk.img")).unwrap();
    assert!(
        std::fs::read(&kept).unwrap() == raw,
        "the written file holds the image"
    );
    assert!(
        std::fs::read(&target).unwrap() == decoy_bytes,
        "the decoy now at the target's name is unchanged"
    );
}
