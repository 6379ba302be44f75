//! The write core against a mock sink: every write aligned except the
//! stream's tail, zero runs handed to `zero_range`, first region last.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io;
use std::path::PathBuf;

use bty_flash::{ALIGN, AlignedBuf, BlockSink, BlockWriter, FlashError, ZERO_RUN_MIN};

#[derive(Debug, PartialEq)]
enum Op {
    Write(u64, usize),
    Zero(u64, usize),
    SetLen(u64),
    Sync,
}

#[derive(Default)]
struct Mock {
    ops: Vec<Op>,
    image: Vec<u8>,
}

impl BlockSink for Mock {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        assert_eq!(
            data.as_ptr() as usize % ALIGN,
            0,
            "unaligned buffer at {offset}"
        );
        self.ops.push(Op::Write(offset, data.len()));
        let end = offset as usize + data.len();
        if self.image.len() < end {
            self.image.resize(end, 0xEE);
        }
        self.image[offset as usize..end].copy_from_slice(data);
        Ok(())
    }

    fn zero_range(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.ops.push(Op::Zero(offset, len as usize));
        let end = offset as usize + len as usize;
        if self.image.len() < end {
            self.image.resize(end, 0xEE);
        }
        self.image[offset as usize..end].fill(0);
        Ok(())
    }

    fn set_final_len(&mut self, len: u64) -> io::Result<()> {
        self.ops.push(Op::SetLen(len));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.ops.push(Op::Sync);
        Ok(())
    }
}

/// Data with zero runs of many lengths and a non-aligned length.
fn image(len: usize) -> Vec<u8> {
    let mut v = support::noise(5, len);
    for (start, run) in [
        (1 << 20, 4096),
        (1 << 20 | 65536, ZERO_RUN_MIN),
        (3 << 20, 3 << 20),
        (7 << 20, 12288),
    ] {
        if start + run <= len {
            v[start..start + run].fill(0);
        }
    }
    v
}

fn write_all(data: &[u8], chunk: usize, first_region: u64, zero_skip: bool) -> Mock {
    let mut w = BlockWriter::new(
        PathBuf::from("mock"),
        Mock::default(),
        first_region,
        zero_skip,
        None,
    );
    let mut buf = AlignedBuf::new(chunk);
    for (i, piece) in data.chunks(chunk).enumerate() {
        buf.as_mut_full()[..piece.len()].copy_from_slice(piece);
        buf.set_len(piece.len());
        w.push((i * chunk) as u64, buf.as_slice()).unwrap();
    }
    w.finish(data.len() as u64).unwrap()
}

#[test]
fn every_write_is_aligned_except_the_tail() {
    for len in [10 << 20, (10 << 20) + 1536, 4096 * 3 + 7, 100] {
        for chunk in [4096, 64 << 10, 1 << 20, 4 << 20] {
            for zero_skip in [false, true] {
                let data = image(len);
                let mock = write_all(&data, chunk, 1 << 20, zero_skip);
                assert_eq!(mock.image, data, "len {len} chunk {chunk}");
                for op in &mock.ops {
                    if let Op::Write(off, n) | Op::Zero(off, n) = *op {
                        assert_eq!(off % ALIGN as u64, 0, "{op:?}");
                        let tail = off + n as u64 == len as u64;
                        assert!(n % ALIGN == 0 || tail, "{op:?} of {len}");
                    }
                }
            }
        }
    }
}

#[test]
fn first_region_is_written_last_after_a_sync() {
    let data = image(6 << 20);
    let mock = write_all(&data, 1 << 20, 1 << 20, true);
    let n = mock.ops.len();
    assert_eq!(
        &mock.ops[n - 4..],
        &[
            Op::SetLen(6 << 20),
            Op::Sync,
            Op::Write(0, 1 << 20),
            Op::Sync
        ]
    );
    assert!(
        mock.ops[..n - 4]
            .iter()
            .all(|op| !matches!(op, Op::Write(0, _)))
    );
}

#[test]
fn long_zero_runs_become_zero_ranges_short_ones_stay_data() {
    let data = image(10 << 20);
    let mock = write_all(&data, 4 << 20, 1 << 20, true);
    let zeros: Vec<_> = mock
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Zero(..)))
        .collect();
    assert!(
        zeros.contains(&&Op::Zero((1 << 20) + 65536, ZERO_RUN_MIN)),
        "{zeros:?}"
    );
    assert!(
        zeros
            .iter()
            .all(|op| matches!(op, Op::Zero(_, n) if *n >= ZERO_RUN_MIN))
    );
    // The 4 KiB and 12 KiB runs were written as data.
    assert!(
        !zeros
            .iter()
            .any(|op| matches!(op, Op::Zero(o, _) if *o == 1 << 20 || *o == 7 << 20))
    );
    let without = write_all(&data, 4 << 20, 1 << 20, false);
    assert!(!without.ops.iter().any(|op| matches!(op, Op::Zero(..))));
}

#[test]
fn writes_past_the_capacity_fail_before_reaching_the_sink() {
    let mut w = BlockWriter::new(
        PathBuf::from("small"),
        Mock::default(),
        1 << 20,
        false,
        Some(2 << 20),
    );
    let buf = {
        let mut b = AlignedBuf::new(1 << 20);
        b.set_len(1 << 20);
        b
    };
    w.push(0, buf.as_slice()).unwrap();
    w.push(1 << 20, buf.as_slice()).unwrap();
    let err = w.push(2 << 20, buf.as_slice()).unwrap_err();
    assert!(
        matches!(err, FlashError::TargetTooSmall { needed, capacity, .. } if needed == 3 << 20 && capacity == 2 << 20)
    );
}

#[test]
fn pushed_zero_runs_fill_the_held_region_and_end_in_a_data_tail() {
    // data | zeros over the first-region edge | data | zeros to an odd end
    let len = (3 << 20) + 100;
    let mut w = BlockWriter::new(PathBuf::from("mock"), Mock::default(), 1 << 20, true, None);
    let mut buf = AlignedBuf::new(512 << 10);
    let noise = support::noise(9, 512 << 10);
    buf.as_mut_full().copy_from_slice(&noise);
    buf.set_len(512 << 10);
    w.push(0, buf.as_slice()).unwrap();
    w.push_zeros(512 << 10, 1 << 20).unwrap();
    w.push(3 << 19, buf.as_slice()).unwrap();
    w.push_zeros(2 << 20, (1 << 20) + 100).unwrap();
    assert_eq!(w.accepted(), len as u64);
    let mock = w.finish(len as u64).unwrap();

    let mut expected = vec![0u8; len];
    expected[..512 << 10].copy_from_slice(&noise);
    expected[3 << 19..2 << 20].copy_from_slice(&noise);
    assert_eq!(mock.image, expected);
    assert!(
        mock.ops.contains(&Op::Zero(1 << 20, 512 << 10)),
        "{:?}",
        mock.ops
    );
    assert!(mock.ops.contains(&Op::Zero(2 << 20, 1 << 20)));
    assert!(mock.ops.contains(&Op::Write(3 << 20, 100)));
    // Nothing reached offset 0 before the end.
    let n = mock.ops.len();
    assert_eq!(mock.ops[n - 2], Op::Write(0, 1 << 20));
}
