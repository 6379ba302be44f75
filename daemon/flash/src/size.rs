//! The size an image has once decoded ("virtual size"), from its own
//! metadata, without decoding it: what the target size check needs.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bty_store::format::{Container, read_header_of, sniff};

use crate::FlashError;

/// Size of one xz stream header or footer.
const XZ_HEADER_LEN: u64 = 12;
/// An xz index larger than this is not plausible for a disk image.
const XZ_INDEX_MAX: u64 = 64 << 20;
/// zstd frame magic (little-endian) and the skippable-frame magic range.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const ZSTD_SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const ZSTD_SKIPPABLE: u32 = 0x184D_2A50;

/// The decoded size of the image open as `file` when its metadata states
/// it: raw = file length; qcow2 = header field; zstd = sum of every frame's
/// content size (None if one frame does not declare it); xz = sum of the
/// index records of every stream; gzip and bzip2 = None (gzip's ISIZE is
/// only the size mod 2^32, so it is not trusted). Only positional reads:
/// the file's offset is left alone.
pub fn virtual_size(file: &File) -> Result<Option<u64>, FlashError> {
    let inspect = |e: io::Error| FlashError::Inspect {
        source: FlashError::arc(e),
    };
    let header = read_header_of(file).map_err(inspect)?;
    let len = file.metadata().map_err(inspect)?.len();
    match sniff(&header).unwrap_or(Container::Raw) {
        Container::Raw => Ok(Some(len)),
        Container::Qcow2 => Ok(header
            .get(24..32)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)),
        Container::Zstd => zstd_size(file, len).map_err(inspect),
        Container::Xz => xz_size(file, len).map_err(inspect),
        Container::Gzip | Container::Bzip2 => Ok(None),
    }
}

fn read_at<const N: usize>(file: &File, offset: u64) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    file.read_exact_at(&mut b, offset)?;
    Ok(b)
}

/// Walk the frames by their block headers (3 bytes each, so only headers
/// are read, not the compressed data) and sum the declared content sizes.
fn zstd_size(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut pos = 0u64;
    let mut total = 0u64;
    while pos < len {
        let magic = u32::from_le_bytes(read_at::<4>(file, pos)?);
        if magic & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE {
            let size = u32::from_le_bytes(read_at::<4>(file, pos + 4)?);
            pos += 8 + u64::from(size);
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Ok(None);
        }
        // The frame header is at most 18 bytes; near the end of a tiny file
        // fewer are there.
        let mut head = [0u8; 18];
        let avail = usize::try_from((len - pos).min(18)).unwrap_or(18);
        file.read_exact_at(&mut head[..avail], pos)?;
        let Ok(Some(content)) = zstd::zstd_safe::get_frame_content_size(&head[..avail]) else {
            return Ok(None);
        };
        total += content;
        let descriptor = head[4];
        let single_segment = descriptor & 0x20 != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let dict_id_len = [0u64, 1, 2, 4][usize::from(descriptor & 0x03)];
        let fcs_len = match descriptor >> 6 {
            0 => u64::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        pos += 5 + u64::from(!single_segment) + dict_id_len + fcs_len;
        loop {
            let b = read_at::<3>(file, pos)?;
            let header = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            let last = header & 1 != 0;
            let block_type = (header >> 1) & 3;
            let block_size = u64::from(header >> 3);
            pos += 3 + if block_type == 1 { 1 } else { block_size };
            if last {
                break;
            }
        }
        if has_checksum {
            pos += 4;
        }
    }
    Ok((pos == len).then_some(total))
}

/// Read the xz streams backwards from the end: footer → index → stream
/// start, skipping stream padding; sum the uncompressed sizes in the indexes.
fn xz_size(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut end = len;
    let mut total = 0u64;
    while end > 0 {
        // Stream padding: groups of four NUL bytes between/after streams.
        if !end.is_multiple_of(4) || end < 2 * XZ_HEADER_LEN {
            return Ok(None);
        }
        if read_at::<4>(file, end - 4)? == [0; 4] {
            end -= 4;
            continue;
        }
        let footer = read_at::<12>(file, end - XZ_HEADER_LEN)?;
        if &footer[10..12] != b"YZ" {
            return Ok(None);
        }
        let backward = (u64::from(u32::from_le_bytes([
            footer[4], footer[5], footer[6], footer[7],
        ])) + 1)
            * 4;
        if backward > XZ_INDEX_MAX || backward + 2 * XZ_HEADER_LEN > end {
            return Ok(None);
        }
        let index_start = end - XZ_HEADER_LEN - backward;
        let mut index = vec![0u8; usize::try_from(backward).map_err(io::Error::other)?];
        file.read_exact_at(&mut index, index_start)?;
        let Some((uncompressed, blocks)) = parse_xz_index(&index) else {
            return Ok(None);
        };
        let Some(stream_start) = index_start.checked_sub(blocks + XZ_HEADER_LEN) else {
            return Ok(None);
        };
        if read_at::<6>(file, stream_start)? != [0xFD, b'7', b'z', b'X', b'Z', 0] {
            return Ok(None);
        }
        total += uncompressed;
        end = stream_start;
    }
    Ok(Some(total))
}

/// (sum of uncompressed sizes, sum of padded block sizes) of an xz index.
fn parse_xz_index(index: &[u8]) -> Option<(u64, u64)> {
    let mut p = index.strip_prefix(&[0])?;
    let count = varint(&mut p)?;
    let (mut uncompressed, mut blocks) = (0u64, 0u64);
    for _ in 0..count {
        let unpadded = varint(&mut p)?;
        uncompressed = uncompressed.checked_add(varint(&mut p)?)?;
        blocks = blocks.checked_add(unpadded.div_ceil(4) * 4)?;
    }
    Some((uncompressed, blocks))
}

/// xz multibyte integer: 7 bits per byte, little-endian, at most 9 bytes.
fn varint(p: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let (&b, rest) = p.split_first()?;
        *p = rest;
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode() {
        let mut p: &[u8] = &[0x7F, 0x80, 0x01, 0xFF];
        assert_eq!(varint(&mut p), Some(127));
        assert_eq!(varint(&mut p), Some(128));
        assert_eq!(varint(&mut p), None);
    }
}
