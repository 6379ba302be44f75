//! Read-back verification: every piece of the written range is read back,
//! with `O_DIRECT` where possible so the page cache cannot answer for the
//! device, and checked against what was written ([`crate::pieces`]).
//!
//! The read-back goes through a descriptor reopened from the writer's own
//! ([`ReadBack`]), never through the target's name: the name may point at
//! another device or file by the time verify reads (a symlink or by-id
//! link moved, a stick pulled and another given its node), and a verify
//! that read there would judge a disk it did not write.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread;

use bty_dio::{ALIGN, AlignedBuf, direct};

use crate::FlashError;
use crate::pieces::{Expect, Piece, piece_digest};
use crate::raw_file::DirectFile;
use crate::zeros::is_zero;

/// A range to read back, and what it must hold.
#[derive(Debug, Clone, Copy)]
struct Unit {
    offset: u64,
    len: usize,
    expect: Expect,
}

/// A read-back that differs from what was written.
struct Mismatch {
    offset: u64,
    len: u64,
    expected: String,
    actual: String,
}

/// Why a checker stopped early.
enum Stop {
    Cancelled,
    Read(u64, io::Error),
}

/// The target as verify reads it: the writer's file, reopened.
#[derive(Debug)]
pub(crate) struct ReadBack {
    file: File,
    direct: bool,
    /// The target's name, for errors only.
    path: PathBuf,
}

impl ReadBack {
    /// A read-only descriptor on what `target` (the writer's descriptor,
    /// opened and checked as `path`) is open on, `O_DIRECT` when `direct`
    /// asks for it and the filesystem takes it.
    pub(crate) fn reopen(
        target: &impl AsFd,
        path: &Path,
        direct: bool,
    ) -> Result<Self, FlashError> {
        let (file, direct) =
            direct::reopen_read(target, direct).map_err(|e| FlashError::VerifyRead {
                path: path.to_path_buf(),
                offset: 0,
                source: FlashError::arc(e),
            })?;
        Ok(Self {
            file,
            direct,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
impl ReadBack {
    /// Verify's view of the file at `path`, for tests.
    #[allow(clippy::unwrap_used)]
    pub(crate) fn of_file(path: &Path) -> Self {
        Self::reopen(&File::open(path).unwrap(), path, true).unwrap()
    }
}

/// Read `pieces` back from `target` and check each; `stopped` is asked per
/// buffer, `progress` counts bytes checked.
///
/// Several threads (one per core, at least two) each read a unit and check
/// it: the reads overlap on the device queue and the hashing spreads over
/// the cores, so verify costs about one sequential read.
pub(crate) fn read_back_check(
    target: &ReadBack,
    pieces: &[Piece],
    buffer_size: usize,
    stopped: &(dyn Fn() -> bool + Sync),
    progress: &AtomicU64,
) -> Result<(), FlashError> {
    let path = &target.path;
    let read_err = |offset: u64, e: io::Error| FlashError::VerifyRead {
        path: path.clone(),
        offset,
        source: FlashError::arc(e),
    };
    let units = units(pieces, buffer_size);
    let buffer_size = units.iter().map(|u| u.len).max().unwrap_or(ALIGN);
    let threads = thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (file, direct) = (&target.file, target.direct);
    let (bad_tx, bad_rx) = channel::<Mismatch>();
    let stops: Vec<Stop> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let bad_tx = bad_tx.clone();
                let ctx = Checker {
                    file,
                    direct,
                    units: &units,
                    next: &next,
                    failed: &failed,
                    stopped,
                    progress,
                };
                s.spawn(move || ctx.run(buffer_size, &bad_tx))
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(stop)) => Some(stop),
                Err(_) => Some(Stop::Read(0, io::Error::other("verify thread panicked"))),
            })
            .collect()
    });
    drop(bad_tx);
    if let Some(bad) = bad_rx.try_iter().min_by_key(|m| m.offset) {
        return Err(FlashError::VerifyMismatch {
            path: path.clone(),
            offset: bad.offset,
            len: bad.len,
            expected: bad.expected,
            actual: bad.actual,
        });
    }
    let first_read_error = stops.into_iter().fold(None, |first, stop| match stop {
        Stop::Cancelled => first,
        Stop::Read(at, e) => match first {
            Some((a, _)) if a <= at => first,
            _ => Some((at, e)),
        },
    });
    if let Some((at, e)) = first_read_error {
        return Err(read_err(at, e));
    }
    if stopped() {
        return Err(FlashError::Cancelled);
    }
    Ok(())
}

/// The pieces cut into reads: a data piece whole (its digest covers it
/// whole), a zero piece in `buffer_size` parts.
fn units(pieces: &[Piece], buffer_size: usize) -> Vec<Unit> {
    let step = buffer_size.max(ALIGN) as u64;
    let mut units = Vec::with_capacity(pieces.len());
    for p in pieces {
        match p.expect {
            Expect::Xxh3(_) => units.push(Unit {
                offset: p.offset,
                len: usize::try_from(p.len).unwrap_or(usize::MAX),
                expect: p.expect,
            }),
            Expect::Zeros => {
                let mut at = p.offset;
                while at < p.offset + p.len {
                    let len = step.min(p.offset + p.len - at);
                    units.push(Unit {
                        offset: at,
                        len: usize::try_from(len).unwrap_or(usize::MAX),
                        expect: Expect::Zeros,
                    });
                    at += len;
                }
            }
        }
    }
    units
}

/// One verify thread's view of the shared work.
struct Checker<'a> {
    /// The target, shared: each checker reads through its own handle.
    file: &'a File,
    direct: bool,
    units: &'a [Unit],
    next: &'a AtomicUsize,
    failed: &'a AtomicBool,
    stopped: &'a (dyn Fn() -> bool + Sync),
    progress: &'a AtomicU64,
}

impl Checker<'_> {
    /// Claim units until none is left, one fails, or `stopped`.
    fn run(&self, buffer_size: usize, bad: &Sender<Mismatch>) -> Result<(), Stop> {
        let handle = self.file.try_clone().map_err(|e| Stop::Read(0, e))?;
        let mut file = DirectFile::opened(handle, self.direct);
        let mut buf = AlignedBuf::new(buffer_size);
        loop {
            if (self.stopped)() {
                return Err(Stop::Cancelled);
            }
            if self.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some(unit) = self.units.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            let n = file
                .read_at(&mut buf, unit.offset, unit.len)
                .map_err(|e| Stop::Read(unit.offset, e))?;
            if n < unit.len {
                return Err(Stop::Read(
                    unit.offset + n as u64,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "target ends before the image does",
                    ),
                ));
            }
            if let Some(m) = mismatch(unit, buf.as_slice()) {
                self.failed.store(true, Ordering::Relaxed);
                let _ = bad.send(m);
                return Ok(());
            }
            self.progress.fetch_add(unit.len as u64, Ordering::Relaxed);
        }
    }
}

fn mismatch(unit: &Unit, bytes: &[u8]) -> Option<Mismatch> {
    let ok = match unit.expect {
        Expect::Zeros => is_zero(bytes),
        Expect::Xxh3(want) => piece_digest(bytes) == want,
    };
    if ok {
        return None;
    }
    Some(Mismatch {
        offset: unit.offset,
        len: bytes.len() as u64,
        expected: match unit.expect {
            Expect::Zeros => "all zeros".to_owned(),
            Expect::Xxh3(d) => format!("xxh3-128 {d:032x}"),
        },
        actual: format!("xxh3-128 {:032x}", piece_digest(bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pieces::expect_of;

    fn pieces_of(image: &[u8], piece: usize) -> Vec<Piece> {
        image
            .chunks(piece)
            .enumerate()
            .map(|(i, c)| Piece {
                offset: (i * piece) as u64,
                len: c.len() as u64,
                expect: expect_of(c),
            })
            .collect()
    }

    #[test]
    fn a_matching_target_passes_and_a_flipped_byte_is_located() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.img");
        let mut image: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        image[1 << 20..2 << 20].fill(0);
        image.truncate((3 << 20) - 7);
        std::fs::write(&path, &image).unwrap();
        let pieces = pieces_of(&image, 1 << 20);
        assert_eq!(pieces[1].expect, Expect::Zeros);
        let (stop, progress) = (|| false, AtomicU64::new(0));
        read_back_check(
            &ReadBack::of_file(&path),
            &pieces,
            1 << 20,
            &stop,
            &progress,
        )
        .unwrap();
        assert_eq!(progress.load(Ordering::Relaxed), image.len() as u64);

        for at in [(1 << 20) + 5, (2 << 20) + 9] {
            let mut bad = image.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let err = read_back_check(
                &ReadBack::of_file(&path),
                &pieces,
                1 << 20,
                &stop,
                &progress,
            )
            .unwrap_err();
            let FlashError::VerifyMismatch { offset, actual, .. } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(*offset, (at as u64) >> 20 << 20, "{err}");
            let end = (((at >> 20) + 1) << 20).min(bad.len());
            assert_eq!(
                actual,
                &format!("xxh3-128 {:032x}", piece_digest(&bad[at >> 20 << 20..end]))
            );
        }
    }

    #[test]
    fn a_target_shorter_than_the_image_fails_to_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("short.img");
        let image = vec![7u8; 2 << 20];
        std::fs::write(&path, &image[..1 << 20]).unwrap();
        let (stop, progress) = (|| false, AtomicU64::new(0));
        let err = read_back_check(
            &ReadBack::of_file(&path),
            &pieces_of(&image, 1 << 20),
            1 << 20,
            &stop,
            &progress,
        )
        .unwrap_err();
        assert!(matches!(err, FlashError::VerifyRead { .. }), "{err:?}");
    }
}
