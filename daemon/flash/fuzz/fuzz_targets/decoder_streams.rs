//! `open_decoder` on arbitrary compressed streams: never panics and never
//! allocates in proportion to the claimed output. The output is read in
//! fixed chunks and capped, as the flash pipeline reads it: a stream that
//! expands past the cap is simply stopped, like a flash at the target size.
//!
//! Every container is also decoded by an independent pure-Rust reference
//! (bzip2: the sequential `bzip2` crate; zstd: `ruzstd`; xz: `lzma-rs`;
//! gzip: `miniz_oxide`'s inflate inside RFC 1952 framing written here).
//! Where the reference decodes the whole input, bty-flash must produce
//! exactly its bytes; where bty-flash decodes the whole input, the reference
//! must agree. Both sides read the same stream shapes:
//!
//! - zstd: every frame in turn, skippable frames skipped (as libzstd does);
//!   the reference checks content checksums itself (ruzstd only reports
//!   them) and, like libzstd's default, refuses windows over 128 MiB.
//! - xz: concatenated streams, each followed by stream padding (lzma-rs
//!   reads one stream, so the reference walks them). lzma-rs cannot check
//!   SHA-256 or decode filters other than LZMA2: such inputs are not
//!   compared. A stream bty refuses for its decoder memory limit
//!   (`XZ_MEMLIMIT`, a deliberate cap) is not compared either. Padding
//!   that is not a multiple of four bytes is refused by the reference, as
//!   by xz-utils ("Compressed data is corrupt"); bty-flash accepts any run
//!   of NULs there today, and this target reports it when it meets one.
//!   lzma-rs stops an LZMA2 chunk once its unpacked size is out, without
//!   checking that the range coder ended drained; liblzma (and `xz -dc`)
//!   refuse such a chunk as corrupt data. So a liblzma data error is not a
//!   disagreement when everything bty-flash decoded before it is a prefix
//!   of the reference's output (hostile corpus case
//!   `stream-xz-lzma2-chunk-end-not-drained` is one).
//!   An arithmetic overflow inside lzma-rs (a footer's backward size of
//!   0xFFFF_FFFF) means the reference cannot judge that input.
//! - gzip: members back to back with nothing after the last (flate2's
//!   `MultiGzDecoder`, which bty uses, refuses trailing bytes that gzip(1)
//!   would warn about and ignore; the reference refuses them too).
#![no_main]

use std::io::{Cursor, Read};

use bty_flash::open_decoder;
use bty_store::chain::chain;
use bty_store::format::{Container, sniff};
use libfuzzer_sys::fuzz_target;

/// Decoded bytes read before giving up on one input (a bomb is fine, it
/// just has to stop when the reader stops).
const OUTPUT_CAP: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    // Magic bytes pick the container, as the daemon does; inputs without
    // magic go to each decoder in turn via their first byte.
    let container = sniff(data).unwrap_or(match data.first().map(|b| b % 4) {
        Some(0) => Container::Zstd,
        Some(1) => Container::Xz,
        Some(2) => Container::Gzip,
        _ => Container::Bzip2,
    });
    let Ok(decoder) = open_decoder(Cursor::new(data.to_vec()), container) else {
        return;
    };
    let bty = drain(decoder);
    let reference = match container {
        Container::Bzip2 => drain(bzip2::bufread::MultiBzDecoder::new(data)),
        Container::Zstd => zstd_reference(data),
        Container::Xz => unless_overflow(|| xz_reference(data)),
        Container::Gzip => gzip_reference(data),
        Container::Raw | Container::Qcow2 => return,
    };
    compare(container, &bty, &reference);
});

/// How reading a decoder to the cap went.
enum Drained {
    Complete(Vec<u8>),
    /// Refused, with the error's text (its whole source chain) and what was
    /// decoded before.
    Failed(String, Vec<u8>),
    Capped,
    /// The reference cannot judge this input (a feature it lacks).
    Unsupported,
}

fn drain(decoder: impl Read) -> Drained {
    let mut limited = decoder.take(OUTPUT_CAP);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match limited.read(&mut buf) {
            Ok(0) if out.len() as u64 == OUTPUT_CAP => return Drained::Capped,
            Ok(0) => return Drained::Complete(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Drained::Failed(chain(&e), out),
        }
    }
}

/// A reference refusal (the reference's partial output is never compared).
fn failed(why: impl Into<String>) -> Drained {
    Drained::Failed(why.into(), Vec::new())
}

fn compare(container: Container, bty: &Drained, reference: &Drained) {
    match (bty, reference) {
        (Drained::Complete(b), Drained::Complete(r)) => {
            assert!(
                b == r,
                "{container:?}: bty-flash and the reference decoder disagree on the output \
                 ({} vs {} bytes)",
                b.len(),
                r.len()
            );
        }
        (Drained::Failed(e, partial), Drained::Complete(r)) => {
            // bty's own cap on xz decoder memory; lzma-rs has none.
            if container == Container::Xz && e.contains("memory limit") {
                return;
            }
            // liblzma's stricter LZMA2 chunk ends (see the module doc).
            if container == Container::Xz && e.contains("lzma data error") {
                assert!(
                    r.starts_with(partial),
                    "Xz: bty-flash decoded {} bytes before refusing ({e}) that are not the \
                     start of the reference's output",
                    partial.len()
                );
                return;
            }
            panic!("{container:?}: bty-flash refuses ({e}) what the reference decodes");
        }
        (Drained::Complete(_), Drained::Failed(e, _)) => {
            panic!("{container:?}: bty-flash decodes what the reference refuses ({e})");
        }
        _ => {}
    }
}

/// Every zstd frame in turn, skippable frames skipped.
fn zstd_reference(data: &[u8]) -> Drained {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

    let mut input = data;
    let mut out = Vec::new();
    let mut decoder = FrameDecoder::new();
    // libzstd's default `ZSTD_d_windowLogMax` (27) for streaming decoders.
    decoder.set_max_window_size(1 << 27);
    while !input.is_empty() {
        match decoder.reset(&mut input) {
            Ok(()) => {}
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                let Some(rest) = input.get(length as usize..) else {
                    return failed("skippable frame past the end");
                };
                input = rest;
                continue;
            }
            Err(e) => return failed(e.to_string()),
        }
        loop {
            if let Err(e) =
                decoder.decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(1 << 20))
            {
                return failed(e.to_string());
            }
            out.extend(decoder.collect().unwrap_or_default());
            if out.len() as u64 >= OUTPUT_CAP {
                return Drained::Capped;
            }
            if decoder.is_finished() {
                break;
            }
        }
        out.extend(decoder.collect().unwrap_or_default());
        if let Some(stored) = decoder.get_checksum_from_data()
            && decoder.get_calculated_checksum() != Some(stored)
        {
            return failed("content checksum mismatch");
        }
    }
    Drained::Complete(out)
}

/// Run a reference, taking an arithmetic overflow inside it for "cannot
/// judge": lzma-rs 0.3.0 computes `(backward_size + 1) << 2` on the u32 a
/// stream footer holds, which overflows at 0xFFFF_FFFF in this build (its
/// own release builds wrap, then refuse the stream). Any other panic is
/// still a crash. libFuzzer's panic hook aborts, so it is set aside while
/// the reference runs.
fn unless_overflow(reference: impl FnOnce() -> Drained) -> Drained {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(reference));
    std::panic::set_hook(hook);
    match result {
        Ok(drained) => drained,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if message.contains("with overflow") {
                Drained::Unsupported
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// Every xz stream in turn, each followed by stream padding: NUL bytes in
/// multiples of four (the xz format's rule).
fn xz_reference(data: &[u8]) -> Drained {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let mut input = &data[at..];
        let before = input.len();
        match lzma_rs::xz_decompress(&mut input, &mut out) {
            Ok(()) => {}
            // lzma-rs wants its stream to end the input; the bytes after
            // it are the next stream's (or padding), read in the next turn.
            Err(lzma_rs::error::Error::XzError(e))
                if e == "Unexpected data after last XZ block" => {}
            Err(lzma_rs::error::Error::XzError(e))
                if e.starts_with("Unknown filter id") || e.starts_with("Unsupported SHA-256") =>
            {
                return Drained::Unsupported;
            }
            Err(e) => return failed(e.to_string()),
        }
        if out.len() as u64 >= OUTPUT_CAP {
            return Drained::Capped;
        }
        at += before - input.len();
        let padding = data[at..].iter().take_while(|&&b| b == 0).count();
        if padding % 4 != 0 {
            return failed(format!("{padding} bytes of stream padding"));
        }
        at += padding;
        if at == data.len() {
            return Drained::Complete(out);
        }
    }
}

/// gzip members (RFC 1952) back to back, nothing after the last.
fn gzip_reference(data: &[u8]) -> Drained {
    use miniz_oxide::inflate::stream::{InflateState, inflate};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};

    let mut out = Vec::new();
    let mut at = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let Some(header) = gzip_header(&data[at..]) else {
            return failed("bad gzip header");
        };
        at += header;
        let member_start = out.len();
        let mut state = InflateState::new_boxed(DataFormat::Raw);
        loop {
            let step = inflate(&mut state, &data[at..], &mut buf, MZFlush::None);
            at += step.bytes_consumed;
            out.extend_from_slice(&buf[..step.bytes_written]);
            if out.len() as u64 >= OUTPUT_CAP {
                return Drained::Capped;
            }
            match step.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) if step.bytes_consumed > 0 || step.bytes_written > 0 => {}
                Ok(_) => return failed("inflate made no progress"),
                Err(e) => return failed(format!("inflate: {e:?}")),
            }
        }
        let Some(trailer) = data.get(at..at + 8) else {
            return failed("truncated gzip trailer");
        };
        let member = &out[member_start..];
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != crc32(member) || size != member.len() as u32 {
            return failed("gzip trailer does not match");
        }
        at += 8;
        if at == data.len() {
            return Drained::Complete(out);
        }
    }
}

/// The length of the gzip member header at the start of `m`, if valid:
/// magic, deflate, no reserved flag, and a matching header CRC if present.
fn gzip_header(m: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let fixed = m.get(..10)?;
    if fixed[..3] != [0x1f, 0x8b, 8] || fixed[3] & 0xE0 != 0 {
        return None;
    }
    let flags = fixed[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = m.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += m.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = m.get(at..at + 2)?;
        if u16::from_le_bytes([stored[0], stored[1]]) != crc32(m.get(..at)?) as u16 {
            return None;
        }
        at += 2;
    }
    (at <= m.len()).then_some(at)
}

/// CRC-32 (IEEE, reflected), bit by bit: inputs are small, and it shares
/// nothing with the decoders under test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
