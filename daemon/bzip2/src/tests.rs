//! The parallel decoder against the sequential one and the original bytes,
//! on good input (many blocks, many streams, any bit alignment) and broken
//! input (cut, flipped, wrong CRC, foreign, failing source).

use std::io::{self, BufReader, Cursor, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bzip2::Compression;
use bzip2::write::BzEncoder;

use super::block::{self, Segment};
use super::error::Bz2Error;
use super::fast::BlockDecoder;
use super::magic::{END_MAGIC, find_slow};
use super::ordered::ParallelBz2;
use super::scan::Scanner;
use super::threads;

fn compress(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = BzEncoder::new(Vec::new(), Compression::new(level));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Noise, text and zero runs, `len` bytes.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let piece = 1000 + (x % 60_000) as usize;
        match x % 3 {
            0 => out.extend((0..piece as u64).map(|i| (x.wrapping_mul(i + 1) >> 29) as u8)),
            1 => out.extend(
                (0..piece)
                    .flat_map(|i| format!("line {i} of {x}\n").into_bytes())
                    .take(piece),
            ),
            _ => out.resize(out.len() + piece * 3, 0),
        }
    }
    out.truncate(len);
    out
}

fn start(scanner: Scanner<Cursor<Vec<u8>>>, workers: usize) -> ParallelBz2 {
    threads::start(scanner, workers, workers + 1)
        .ok()
        .expect("threads start")
}

fn parallel(input: &[u8]) -> io::Result<Vec<u8>> {
    read_all(start(Scanner::new(Cursor::new(input.to_vec())), 3))
}

fn read_all(mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map(|_| out)
}

fn sequential(input: &[u8]) -> io::Result<Vec<u8>> {
    read_all(bzip2::bufread::MultiBzDecoder::new(input))
}

fn bz2_error(e: &io::Error) -> &Bz2Error {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<Bz2Error>())
        .unwrap_or_else(|| panic!("not a bzip2 error: {e:?}"))
}

/// The blocks the scanner cuts `input` into.
fn segments(input: &[u8]) -> Vec<Segment> {
    let mut scanner = Scanner::new(Cursor::new(input.to_vec()));
    std::iter::from_fn(|| scanner.next_block().unwrap()).collect()
}

/// Three streams at different levels, with empty streams between and after.
fn multi_stream() -> (Vec<u8>, Vec<u8>) {
    let parts = [sample(700_000, 1), sample(150_000, 2), sample(420_000, 3)];
    let mut input = compress(&parts[0], 1);
    input.extend(compress(b"", 9));
    input.extend(compress(&parts[1], 9));
    input.extend(compress(&parts[2], 2));
    input.extend(compress(b"", 1));
    (input, parts.concat())
}

#[test]
fn many_blocks_and_streams_decode_like_the_original() {
    let data = sample(1_500_000, 7);
    let single = compress(&data, 1);
    assert!(segments(&single).len() >= 10, "want many blocks");
    assert_eq!(parallel(&single).unwrap(), data);

    let (multi, data) = multi_stream();
    let segs = segments(&multi);
    assert_eq!(segs.iter().filter(|s| s.stream_end.is_some()).count(), 3);
    assert!(
        segs.iter().any(|s| s.start_bit != 0),
        "blocks at bit offsets"
    );
    assert_eq!(parallel(&multi).unwrap(), data);
    assert_eq!(sequential(&multi).unwrap(), data);
}

#[test]
fn zero_runs_and_empty_streams_decode() {
    // Level 1 blocks of zeros hold ~5 MB each: a few huge blocks.
    let zeros = vec![0u8; 23 << 20];
    assert_eq!(parallel(&compress(&zeros, 1)).unwrap(), zeros);
    assert_eq!(parallel(&compress(b"", 9)).unwrap(), b"");
    let mut two = compress(b"", 9);
    two.extend(compress(b"x", 3));
    assert_eq!(parallel(&two).unwrap(), b"x");
}

#[test]
fn tiny_reads_see_every_byte() {
    let (input, data) = multi_stream();
    let mut reader = start(Scanner::new(Cursor::new(input)), 2);
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    for size in (1..=7).cycle() {
        match reader.read(&mut buf[..size]).unwrap() {
            0 => break,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(out, data);
    assert_eq!(reader.read(&mut buf).unwrap(), 0);
}

#[test]
fn chance_magics_inside_blocks_are_merged_away() {
    let (input, data) = multi_stream();
    let segs = segments(&input);
    let begin = |s: &Segment| s.offset * 8 + u64::from(s.start_bit);
    let last = segs.iter().position(|s| s.stream_end.is_some()).unwrap();
    let mut splits = vec![
        // Mid-block.
        begin(&segs[0]) + segs[0].bit_len / 2,
        // Just past the header: the smallest split the scanner accepts.
        begin(&segs[1]) + 81,
        // Twice in one block: two merges.
        begin(&segs[2]) + 1000,
        begin(&segs[2]) + 5000,
        // In the last block of a stream, which ends the stream.
        begin(&segs[last]) + segs[last].bit_len - 200,
    ];
    splits.push(begin(&segs[segs.len() - 1]) + 333);
    let mut split = Scanner::new(Cursor::new(input.clone())).with_false_magics(splits.clone());
    let cut = std::iter::from_fn(|| split.next_block().unwrap()).count();
    assert_eq!(cut, segs.len() + splits.len());
    let scanner = Scanner::new(Cursor::new(input)).with_false_magics(splits);
    assert_eq!(read_all(start(scanner, 2)).unwrap(), data);
}

#[test]
fn more_chance_magics_than_merges_fail() {
    let data = sample(300_000, 5);
    let input = compress(&data, 1);
    let seg = &segments(&input)[0];
    let at = seg.offset * 8 + u64::from(seg.start_bit);
    let splits = (1..=4).map(|k| at + k * 2000).collect();
    let scanner = Scanner::new(Cursor::new(input)).with_false_magics(splits);
    let err = read_all(start(scanner, 2)).unwrap_err();
    assert!(matches!(bz2_error(&err), Bz2Error::Block { .. }), "{err}");
}

#[test]
fn a_cut_anywhere_is_an_error() {
    let first = compress(&sample(250_000, 11), 1);
    let mut input = first.clone();
    input.extend(compress(&sample(120_000, 12), 1));
    let cuts = (0..input.len())
        .step_by(211)
        .chain(input.len() - 16..input.len())
        .chain(first.len() - 12..first.len() + 12);
    for cut in cuts {
        let prefix = &input[..cut];
        match (sequential(prefix), parallel(prefix)) {
            // A cut just after the first stream leaves a whole file.
            (Ok(seq), Ok(par)) => {
                assert_eq!(cut, first.len());
                assert_eq!(par, seq);
            }
            (Err(_), Err(_)) => {}
            (seq, par) => panic!("cut at {cut}: sequential {seq:?}, parallel {par:?}"),
        }
    }
}

#[test]
fn truncation_is_named() {
    let input = compress(&sample(250_000, 13), 1);
    for cut in [input.len() / 2, input.len() - 1, 10] {
        let err = parallel(&input[..cut]).unwrap_err();
        assert!(
            matches!(bz2_error(&err), Bz2Error::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_flipped_byte_is_an_error() {
    let (input, _) = multi_stream();
    for at in (0..input.len()).step_by(997) {
        let mut bad = input.clone();
        bad[at] ^= 0x55;
        match (sequential(&bad), parallel(&bad)) {
            // E.g. a level digit that still fits the blocks.
            (Ok(seq), Ok(par)) => assert_eq!(par, seq, "flip at {at}"),
            (Err(_), Err(_)) => {}
            (seq, par) => panic!(
                "flip at {at}: sequential {:?}, parallel {:?}",
                seq.map(|v| v.len()),
                par.map(|v| v.len())
            ),
        }
    }
}

#[test]
fn a_wrong_combined_crc_is_reported() {
    let mut input = compress(&sample(400_000, 17), 1);
    let tail = (input.len() as u64 - 11) * 8;
    let end = find_slow(&input, END_MAGIC, tail).unwrap();
    // Flip one bit of the stored combined CRC.
    let bit = end + 48 + 5;
    input[(bit / 8) as usize] ^= 0x80 >> (bit % 8);
    let err = parallel(&input).unwrap_err();
    assert!(
        matches!(bz2_error(&err), Bz2Error::StreamCrc { .. }),
        "{err}"
    );
    assert!(sequential(&input).is_err());
}

#[test]
fn empty_foreign_and_trailing_input_are_errors() {
    let err = parallel(b"").unwrap_err();
    assert!(matches!(bz2_error(&err), Bz2Error::Empty), "{err}");
    let err = parallel(b"hello, not bzip2").unwrap_err();
    assert!(
        matches!(bz2_error(&err), Bz2Error::NotBzip2 { .. }),
        "{err}"
    );
    for junk in [&b"garbage"[..], &[0; 64], b"BZh9"] {
        let mut input = compress(&sample(150_000, 19), 1);
        input.extend_from_slice(junk);
        let err = parallel(&input).unwrap_err();
        assert!(
            matches!(
                bz2_error(&err),
                Bz2Error::TrailingGarbage { .. } | Bz2Error::Truncated { .. }
            ),
            "{junk:?}: {err}"
        );
    }
}

/// io-error payload of [`FailsAtEnd`].
#[derive(Debug, thiserror::Error)]
#[error("the source broke")]
struct Broken;

/// Yields its bytes, then fails instead of ending.
struct FailsAtEnd(Cursor<Vec<u8>>);

impl Read for FailsAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other(Broken)),
            n => Ok(n),
        }
    }
}

#[test]
fn source_errors_pass_through_unchanged() {
    let (input, _) = multi_stream();
    let source = BufReader::new(FailsAtEnd(Cursor::new(input)));
    let reader = threads::start(Scanner::new(source), 2, 3).ok().unwrap();
    let err = read_all(reader).unwrap_err();
    assert!(err.get_ref().unwrap().is::<Broken>(), "{err:?}");
}

#[test]
fn a_failed_reader_keeps_failing() {
    let mut reader = start(Scanner::new(Cursor::new(b"nope".to_vec())), 1);
    let mut buf = [0u8; 16];
    assert!(reader.read(&mut buf).is_err());
    assert!(reader.read(&mut buf).is_err());
}

#[test]
fn dropping_the_reader_stops_its_threads() {
    // Many blocks of zeros, so the scanner and workers are mid-way.
    let input = compress(&vec![0u8; 60 << 20], 1);
    let mut reader = start(Scanner::new(Cursor::new(input)), 2);
    let mut buf = vec![0u8; 1 << 20];
    reader.read_exact(&mut buf).unwrap();
    let threads = reader.threads();
    assert!(threads.upgrade().is_some());
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads.upgrade().is_some() {
        assert!(Instant::now() < deadline, "threads still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `seg` through the fast and the reference decoder.
fn both_decoders(fast: &mut BlockDecoder, seg: &Segment) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut a = Vec::new();
    let fast = fast.decode(seg, &mut a).ok().map(|()| a);
    let mut b = Vec::new();
    let reference = block::decode_guarded(seg, &mut b, None).ok().map(|()| b);
    (fast, reference)
}

#[test]
fn the_fast_decoder_agrees_with_the_reference() {
    let (multi, _) = multi_stream();
    let zeros = compress(&vec![0u8; 12 << 20], 9);
    // Periodic: the inverse BWT's chain is many short cycles.
    let runs: Vec<u8> = (0..600_000u32).map(|i| (i / 4 % 7) as u8).collect();
    let mut fast = BlockDecoder::new().unwrap();
    for input in [multi, zeros, compress(&runs, 3), compress(b"a", 1)] {
        for seg in segments(&input) {
            let (fast, reference) = both_decoders(&mut fast, &seg);
            assert!(reference.is_some());
            assert!(
                fast.is_some(),
                "fast decoder refused the block at {}",
                seg.offset
            );
            assert_eq!(fast, reference);
        }
    }
}

#[test]
fn the_fast_decoder_never_accepts_what_the_reference_refuses() {
    let (input, _) = multi_stream();
    let mut fast = BlockDecoder::new().unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for seg in segments(&input) {
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bad = seg.clone();
            let bit = 80 + x % (seg.bit_len - 80) + u64::from(seg.start_bit);
            bad.bytes[(bit / 8) as usize] ^= 0x80 >> (bit % 8);
            let (fast, reference) = both_decoders(&mut fast, &bad);
            if fast.is_some() {
                assert_eq!(fast, reference, "bit {bit} of the block at {}", seg.offset);
            }
        }
    }
}

/// Yields its bytes, then blocks until its release is dropped, then ends.
struct Stalls {
    data: Cursor<Vec<u8>>,
    release: mpsc::Receiver<()>,
}

impl Read for Stalls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => {
                let _ = self.release.recv();
                Ok(0)
            }
            n => Ok(n),
        }
    }
}

#[test]
fn a_stalled_source_does_not_hold_up_the_drop() {
    let (input, _) = multi_stream();
    let (release, stalled) = mpsc::channel();
    let source = BufReader::new(Stalls {
        data: Cursor::new(input[..input.len() / 2].to_vec()),
        release: stalled,
    });
    let mut reader = threads::start(Scanner::new(source), 2, 3).ok().unwrap();
    reader.read_exact(&mut [0u8; 4096]).unwrap();
    let threads = reader.threads();
    let started = Instant::now();
    drop(reader);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(threads.upgrade().is_some(), "the scanner is in its read");
    drop(release);
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads.upgrade().is_some() {
        assert!(Instant::now() < deadline, "the scanner did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}
