//! The qcow2 header, read by us before qemu-img sees the file.
//!
//! qemu-img runs as root and opens whatever a qcow2 header names: a
//! backing file (`/etc/shadow`, a disk, or a `json:{…}` pseudo-protocol
//! name such as an NBD server) and an external data file. Converting such
//! an image would copy host bytes onto the target. So the header is parsed
//! here (big-endian, per the qcow2 spec) and any image that names another
//! file, is encrypted or uses features we do not know is refused before
//! any qemu-img process starts. qemu-img then gets only our descriptor,
//! through `--image-opts` with an explicit driver, so no name is ever
//! parsed for a protocol.
//!
//! qemu-img reads the header again itself. Someone who can write the file
//! could change the header between the two reads, so the file must also be
//! one nobody else can write: owned by our user, not group/other-writable.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::FlashError;

const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Header size of version 2 (and the fixed part of version 3).
const V2_HEADER_LEN: usize = 72;
/// Minimum header size of version 3.
const V3_HEADER_LEN: usize = 104;
/// Incompatible feature bits qemu knows: dirty, corrupt, external data
/// file, compression type, extended L2 entries.
const KNOWN_INCOMPATIBLE: u64 = 0b1_1111;
/// The external-data-file incompatible feature bit.
const EXTERNAL_DATA_FILE: u64 = 1 << 2;
/// Header extension naming an external data file.
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Cluster sizes qemu accepts: 512 B to 2 MiB.
const CLUSTER_BITS: std::ops::RangeInclusive<u32> = 9..=21;
/// Characters of a named file shown in a refusal.
const NAME_SHOWN: usize = 200;

/// What the header says, once it passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcow2Info {
    /// 2 or 3.
    pub version: u32,
    /// The guest disk size.
    pub virtual_size: u64,
}

/// Check the qcow2 image open as `file` (see the module docs); its virtual
/// size when nothing in it names another file.
pub fn inspect_qcow2(file: &File) -> Result<Qcow2Info, FlashError> {
    check_owner(file)?;
    let info = parse(file)?;
    Ok(info)
}

fn refuse(reason: impl Into<String>) -> FlashError {
    FlashError::Qcow2Refused {
        reason: reason.into(),
    }
}

fn io_err(e: io::Error) -> FlashError {
    FlashError::Inspect {
        source: FlashError::arc(e),
    }
}

/// Only a file nobody else can change is handed to qemu-img.
fn check_owner(file: &File) -> Result<(), FlashError> {
    let meta = file.metadata().map_err(io_err)?;
    let euid = bty_store::create::effective_uid();
    if meta.uid() != euid {
        return Err(refuse(format!(
            "the file is owned by uid {}, not by btyd (uid {euid}); qemu-img reads its header \
             again after this check, so only qcow2 files nobody else can change are converted \
             (upload it through btyd, or chown it)",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "the file is writable by group or others (mode {:o}); qemu-img reads its header \
             again after this check, so only qcow2 files nobody else can change are converted \
             (chmod go-w)",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Read up to `len` bytes at `at` (fewer at the end of the file).
fn read_up_to(file: &File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// A named file, shortened and escaped for a message.
fn shown(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let short: String = text.chars().take(NAME_SHOWN).collect();
    format!("{short:?}")
}

fn parse(file: &File) -> Result<Qcow2Info, FlashError> {
    let head = read_up_to(file, 0, V3_HEADER_LEN).map_err(io_err)?;
    if head.len() < V2_HEADER_LEN || &head[..4] != MAGIC {
        return Err(refuse("it does not start with a qcow2 header"));
    }
    let version = be32(&head, 4);
    let backing_offset = be64(&head, 8);
    let backing_size = be32(&head, 16);
    let cluster_bits = be32(&head, 20);
    let virtual_size = be64(&head, 24);
    let crypt_method = be32(&head, 32);
    if version != 2 && version != 3 {
        return Err(refuse(format!("qcow2 version {version} is not supported")));
    }
    if backing_offset != 0 || backing_size != 0 {
        let name = read_up_to(
            file,
            backing_offset,
            usize::try_from(backing_size.min(1023)).unwrap_or(0),
        )
        .unwrap_or_default();
        return Err(refuse(format!(
            "it has a backing file {}: qemu-img would read that file as root; \
             flatten it first (qemu-img convert -O qcow2 image flat.qcow2)",
            shown(&name)
        )));
    }
    if crypt_method != 0 {
        return Err(refuse("it is encrypted"));
    }
    if !CLUSTER_BITS.contains(&cluster_bits) {
        return Err(refuse(format!("cluster_bits {cluster_bits} is invalid")));
    }
    let header_len = if version == 2 {
        V2_HEADER_LEN
    } else {
        if head.len() < V3_HEADER_LEN {
            return Err(refuse("the version 3 header is truncated"));
        }
        let incompatible = be64(&head, 72);
        if incompatible & EXTERNAL_DATA_FILE != 0 {
            return Err(refuse(
                "it keeps its data in an external data file: qemu-img would read that file \
                 as root",
            ));
        }
        if incompatible & !KNOWN_INCOMPATIBLE != 0 {
            return Err(refuse(format!(
                "it has unknown incompatible features ({incompatible:#x})"
            )));
        }
        let len = be32(&head, 100) as usize;
        if len < V3_HEADER_LEN || !len.is_multiple_of(8) {
            return Err(refuse(format!("header_length {len} is invalid")));
        }
        len
    };
    check_extensions(file, header_len, 1usize << cluster_bits)?;
    Ok(Qcow2Info {
        version,
        virtual_size,
    })
}

/// Walk the header extensions (they live in the first cluster) and refuse
/// one that names an external data file.
fn check_extensions(file: &File, start: usize, cluster: usize) -> Result<(), FlashError> {
    if start >= cluster {
        return Err(refuse("the header is larger than a cluster"));
    }
    let area = read_up_to(file, 0, cluster).map_err(io_err)?;
    let mut at = start;
    loop {
        if at + 8 > area.len() {
            return Err(refuse("the header extensions run past the first cluster"));
        }
        let kind = be32(&area, at);
        let len = be32(&area, at + 4) as usize;
        if kind == 0 {
            return Ok(());
        }
        let data = at + 8;
        let end = data
            .checked_add(len)
            .filter(|&e| e <= area.len())
            .ok_or_else(|| refuse("a header extension runs past the first cluster"))?;
        if kind == EXT_DATA_FILE {
            return Err(refuse(format!(
                "it names an external data file {}: qemu-img would read that file as root",
                shown(&area[data..end])
            )));
        }
        at = data + len.div_ceil(8) * 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(version: u32) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        if version == 3 {
            h[100..104].copy_from_slice(&104u32.to_be_bytes());
        }
        h
    }

    fn check(bytes: &[u8]) -> Result<Qcow2Info, FlashError> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        parse(&f)
    }

    fn refusal(bytes: &[u8]) -> String {
        check(bytes).unwrap_err().to_string()
    }

    #[test]
    fn plain_headers_pass() {
        for v in [2, 3] {
            let info = check(&header(v)).unwrap();
            assert_eq!(info.virtual_size, 1 << 30);
        }
    }

    #[test]
    fn backing_files_are_refused_with_their_name() {
        let mut h = header(3);
        let name = b"json:{\"driver\":\"nbd\",\"host\":\"evil\"}";
        h[8..16].copy_from_slice(&512u64.to_be_bytes());
        h[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        h[512..512 + name.len()].copy_from_slice(name);
        let msg = refusal(&h);
        assert!(
            msg.contains("backing file") && msg.contains("json:"),
            "{msg}"
        );
        // A size without an offset is refused too.
        let mut h = header(2);
        h[16..20].copy_from_slice(&5u32.to_be_bytes());
        assert!(refusal(&h).contains("backing file"));
    }

    #[test]
    fn external_data_files_are_refused() {
        let mut h = header(3);
        h[72..80].copy_from_slice(&EXTERNAL_DATA_FILE.to_be_bytes());
        assert!(refusal(&h).contains("external data file"));
        // The name extension alone is refused too.
        let mut h = header(3);
        let name = b"/dev/sda";
        h[104..108].copy_from_slice(&EXT_DATA_FILE.to_be_bytes());
        h[108..112].copy_from_slice(&(name.len() as u32).to_be_bytes());
        h[112..112 + name.len()].copy_from_slice(name);
        let msg = refusal(&h);
        assert!(msg.contains("\"/dev/sda\""), "{msg}");
    }

    #[test]
    fn malformed_and_unknown_headers_are_refused() {
        assert!(refusal(b"QFI").contains("qcow2 header"));
        let mut h = header(4);
        assert!(refusal(&h).contains("version 4"));
        h = header(3);
        h[72..80].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(refusal(&h).contains("unknown incompatible"));
        h = header(3);
        h[32..36].copy_from_slice(&1u32.to_be_bytes());
        assert!(refusal(&h).contains("encrypted"));
        h = header(3);
        // An extension claiming more bytes than the cluster holds.
        h[104..108].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        h[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refusal(&h).contains("past the first cluster"));
        h = header(3);
        h[20..24].copy_from_slice(&40u32.to_be_bytes());
        assert!(refusal(&h).contains("cluster_bits"));
    }
}
