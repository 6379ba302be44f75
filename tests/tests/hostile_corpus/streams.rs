//! Damaged and explosive compressed streams, generated from a small raw
//! image, through bty-flash's decoders and its flash pipeline.

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use bty_e2e::noise;
use bty_flash::{FlashOptions, TargetKind, TargetSpec, flash, open_decoder};
use bty_store::format::Container;

use super::manifest::{Case, clip};
use bty_store::chain::chain;

const MIB: usize = 1 << 20;
/// A bomb expands to this many bytes…
const BOMB_DECODED: usize = 1 << 30;
/// …onto a target this small.
const BOMB_TARGET: u64 = 16 << 20;
/// Targets for the other cases: far larger than the 2 MiB image.
const TARGET: u64 = 64 << 20;
/// Peak memory a case may add: buffers, never the decoded stream.
const MEMORY_BUDGET: u64 = 256 << 20;
/// Decoded bytes a stopped flash may have read past its target: the
/// pipeline's queue of 4 MiB chunks, not the rest of the bomb.
const OVERRUN_BUDGET: u64 = 64 << 20;

/// Run a stream case on `surface` (`decode` or `flash`).
pub(crate) fn run(case: &Case, surface: &str, scratch: &Path) -> Result<(), String> {
    let codec = case.codec.as_deref().unwrap_or_default();
    // A stream found by fuzzing is given as its bytes; the others are
    // generated from a good stream and a named damage.
    let damage = case.damage.as_deref().unwrap_or("given");
    let container = container(codec)?;
    let bomb = damage == "bomb";
    let stream = if case.input_hex.is_some() {
        case.bytes()
    } else {
        damaged(codec, damage)?
    };
    let baseline = reset_peak_memory();
    let result = match surface {
        "decode" if bomb => decode_capped(stream, container, 256 * MIB as u64),
        "decode" => decode(stream, container),
        "flash" => flash_onto(case, stream, container, bomb, scratch),
        other => Err(format!("unknown stream surface {other:?}")),
    };
    let grown = peak_memory().saturating_sub(baseline);
    if grown > MEMORY_BUDGET {
        return Err(format!(
            "{surface} of {codec}/{damage} grew memory by {} MiB",
            grown >> 20
        ));
    }
    result.and_then(|message| match message {
        Some(message) => case.check_message(&message),
        None if bomb && surface == "decode" => Ok(()),
        None => Err(format!("{codec}/{damage} decoded without an error")),
    })
}

fn container(codec: &str) -> Result<Container, String> {
    Ok(match codec {
        "zstd" => Container::Zstd,
        "xz" => Container::Xz,
        "gzip" => Container::Gzip,
        "bzip2" => Container::Bzip2,
        other => return Err(format!("unknown codec {other:?}")),
    })
}

/// 2 MiB with real entropy and a zero run, like a small disk image.
fn raw_image() -> Vec<u8> {
    let mut raw = noise(MIB, 7);
    raw.resize(MIB + MIB / 2, 0);
    raw.extend_from_slice(&noise(MIB / 2, 8));
    raw
}

/// Compress with each codec's integrity check on (zstd's content checksum
/// is off by default; without it a flipped literal decodes silently).
fn compress(codec: &str, raw: &[u8]) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("compressing {codec}: {e}");
    match codec {
        "zstd" => {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(io)?;
            enc.include_checksum(true).map_err(io)?;
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)
        }
        "xz" => {
            let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)
        }
        "gzip" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)
        }
        "bzip2" => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)
        }
        other => Err(format!("unknown codec {other:?}")),
    }
}

/// The magic bytes (and a little more) that make a stream look valid.
fn magic(codec: &str) -> &'static [u8] {
    match codec {
        "zstd" => &[0x28, 0xB5, 0x2F, 0xFD],
        "xz" => &[0xFD, b'7', b'z', b'X', b'Z', 0x00],
        "gzip" => &[0x1F, 0x8B, 0x08, 0x00],
        _ => b"BZh91AY&SY",
    }
}

fn damaged(codec: &str, damage: &str) -> Result<Vec<u8>, String> {
    let good = || compress(codec, &raw_image());
    Ok(match damage {
        "truncate" => {
            let mut bytes = good()?;
            bytes.truncate(bytes.len() / 2);
            bytes
        }
        "header" => {
            let mut bytes = good()?;
            bytes.truncate(magic(codec).len() + 4);
            bytes
        }
        "bitflip" => {
            let mut bytes = good()?;
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x10;
            bytes
        }
        "garbage" => {
            let mut bytes = magic(codec).to_vec();
            bytes.extend_from_slice(&noise(64 << 10, 9));
            bytes
        }
        // Concatenated streams are valid for all four decoders, so one
        // small compressed block of zeros repeated makes a large bomb cheaply.
        "bomb" => {
            let block = compress(codec, &vec![0u8; 16 * MIB])?;
            block.repeat(BOMB_DECODED / (16 * MIB))
        }
        // `xz --lzma2=dict=1536MiB` on a small input: a valid stream whose
        // block header asks the decoder for 1.5 GiB (encoding it for real
        // needs 1.8 GB, so the dictionary size byte is set afterwards).
        "hugedict" if codec == "xz" => with_xz_dict(good()?, 37)?,
        // Two valid streams with 5 NULs between them: xz pads streams in
        // 4-byte words, so this is a corrupt file (`xz -dc` says so),
        // though every byte of it decodes.
        "badpadding" if codec == "xz" => {
            let stream = good()?;
            let mut bytes = stream.clone();
            bytes.extend_from_slice(&[0; 5]);
            bytes.extend_from_slice(&stream);
            bytes
        }
        other => return Err(format!("unknown damage {other:?}")),
    })
}

/// Set the LZMA2 dictionary-size byte of an xz stream's first block (one
/// filter) to `prop` and fix the block header's CRC32.
fn with_xz_dict(mut xz: Vec<u8>, prop: u8) -> Result<Vec<u8>, String> {
    let start = 12;
    let size = (usize::from(*xz.get(start).ok_or("short xz")?) + 1) * 4;
    let flags = xz[start + 1];
    let mut at = start + 2;
    for present in [0x40, 0x80] {
        if flags & present != 0 {
            while xz[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
        }
    }
    if xz[at..at + 2] != [0x21, 0x01] {
        return Err("the xz block does not start with one LZMA2 filter".to_owned());
    }
    xz[at + 2] = prop;
    let mut crc = flate2::Crc::new();
    crc.update(&xz[start..start + size - 4]);
    xz[start + size - 4..start + size].copy_from_slice(&crc.sum().to_le_bytes());
    Ok(xz)
}

/// Read the decoded stream to its end; `Some(error)` when it fails.
fn decode(stream: Vec<u8>, container: Container) -> Result<Option<String>, String> {
    let mut reader = match open_decoder(Cursor::new(stream), container) {
        Ok(reader) => reader,
        Err(e) => return Ok(Some(chain(&e))),
    };
    let mut buf = vec![0u8; MIB];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Ok(Some(chain(&e))),
        }
    }
}

/// Read at most `cap` decoded bytes in fixed chunks, as a flash does.
fn decode_capped(
    stream: Vec<u8>,
    container: Container,
    cap: u64,
) -> Result<Option<String>, String> {
    let reader = open_decoder(Cursor::new(stream), container).map_err(|e| chain(&e))?;
    let mut limited = reader.take(cap);
    let mut buf = vec![0u8; MIB];
    let mut total = 0u64;
    loop {
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if buf[..n].iter().any(|&b| b != 0) {
                    return Err("bomb decoded to non-zero bytes".to_owned());
                }
                total += n as u64;
            }
            Err(e) => return Err(format!("bomb failed to decode: {e}")),
        }
    }
    if total == cap {
        Ok(None)
    } else {
        Err(format!(
            "bomb decoded to {total} bytes, expected at least {cap}"
        ))
    }
}

/// Flash onto a capped regular-file target; `Some(error)` of the target.
fn flash_onto(
    case: &Case,
    stream: Vec<u8>,
    container: Container,
    bomb: bool,
    scratch: &Path,
) -> Result<Option<String>, String> {
    let path = scratch.join(format!("{}.target", case.id));
    let capacity = if bomb { BOMB_TARGET } else { TARGET };
    let source = match open_decoder(Cursor::new(stream), container) {
        Ok(source) => source,
        Err(e) => return Ok(Some(chain(&e))),
    };
    let spec = TargetSpec {
        path: path.clone(),
        kind: TargetKind::RegularFile,
        size_bytes: Some(capacity),
        expect: None,
    };
    let opts = FlashOptions {
        direct_io: false,
        ..FlashOptions::default()
    };
    let report = flash(source, vec![spec], &opts, &|_| {}, &AtomicBool::new(false));
    if bomb && report.bytes > capacity + OVERRUN_BUDGET {
        return Err(format!(
            "flash read {} MiB of the bomb for a {} MiB target instead of stopping",
            report.bytes >> 20,
            capacity >> 20
        ));
    }
    let outcome = report.targets.first().ok_or("flash reported no target")?;
    let Err(error) = &outcome.result else {
        return Ok(None);
    };
    // A failed flash must never look bootable: the first MiB is written
    // only after everything else, so it must still be zeros (or absent).
    let head = std::fs::read(&path).unwrap_or_default();
    if head.iter().take(MIB).any(|&b| b != 0) {
        return Err(format!(
            "failed flash wrote the first MiB: {}",
            clip(&error.to_string())
        ));
    }
    let _ = std::fs::remove_file(&path);
    Ok(Some(chain(error)))
}

/// Reset the process's peak RSS (`clear_refs` 5) and return the current RSS.
fn reset_peak_memory() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:") * 1024
}

fn peak_memory() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
