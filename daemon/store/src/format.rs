//! Image formats: by file-name extension (upstream's six, plus `.iso` and
//! `.raw`) and by magic bytes (trusted over the name when they disagree).

use std::fs::File;
use std::io;
use std::path::Path;

use thiserror::Error;

/// A disk-image format bty can list and flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// Raw disk image (`.img`).
    Img,
    /// Raw image, other spelling (`.raw`).
    Raw,
    /// ISO 9660 / hybrid image (`.iso`), written raw.
    Iso,
    /// zstd-compressed raw (`.img.zst`).
    ImgZst,
    /// xz-compressed raw (`.img.xz`).
    ImgXz,
    /// gzip-compressed raw (`.img.gz`).
    ImgGz,
    /// bzip2-compressed raw (`.img.bz2`).
    ImgBz2,
    /// QEMU copy-on-write v2/v3 (`.qcow2`).
    Qcow2,
}

/// Extensions in match order: multi-suffix before bare ones.
const EXTENSIONS: &[(&str, ImageFormat)] = &[
    (".img.zst", ImageFormat::ImgZst),
    (".img.xz", ImageFormat::ImgXz),
    (".img.gz", ImageFormat::ImgGz),
    (".img.bz2", ImageFormat::ImgBz2),
    (".qcow2", ImageFormat::Qcow2),
    (".img", ImageFormat::Img),
    (".raw", ImageFormat::Raw),
    (".iso", ImageFormat::Iso),
];

/// The six extensions upstream supports, for messages and the empty state.
pub const SUPPORTED_EXTENSIONS: &str = ".qcow2, .img, .img.zst, .img.xz, .img.gz, .img.bz2";

/// Tarballs get an "extract first" hint instead of "not recognised".
const TARBALL_SUFFIXES: &[&str] = &[
    ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tgz", ".txz", ".tbz2", ".tzst", ".tar",
];

impl ImageFormat {
    /// The format id used in catalog.toml and the API (`img.gz`, `qcow2`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Img => "img",
            Self::Raw => "raw",
            Self::Iso => "iso",
            Self::ImgZst => "img.zst",
            Self::ImgXz => "img.xz",
            Self::ImgGz => "img.gz",
            Self::ImgBz2 => "img.bz2",
            Self::Qcow2 => "qcow2",
        }
    }

    /// A format id as catalog entries and rows hold it: borrowed when it is
    /// one bty knows, spelled as bty spells it, so 100 000 of them hold no
    /// copies; any other id is kept as written.
    pub fn id_as_held(id: impl AsRef<str> + Into<String>) -> std::borrow::Cow<'static, str> {
        match Self::from_id(id.as_ref()) {
            Some(known) if known.as_str() == id.as_ref() => {
                std::borrow::Cow::Borrowed(known.as_str())
            }
            _ => std::borrow::Cow::Owned(id.into()),
        }
    }

    /// Parse a format id (`img.gz`, `.img.gz`, `IMG.GZ`).
    pub fn from_id(id: &str) -> Option<Self> {
        let id = id.trim_start_matches('.').to_ascii_lowercase();
        EXTENSIONS
            .iter()
            .map(|(_, f)| *f)
            .find(|f| f.as_str() == id)
    }
}

/// Detect the format from a file name or URL path segment by extension
/// (case-insensitive), first match in [`EXTENSIONS`] order.
pub fn format_from_name(name: &str) -> Option<ImageFormat> {
    let lower = name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|(ext, _)| lower.ends_with(ext) && lower.len() > ext.len())
        .map(|(_, f)| *f)
}

/// Whether a name looks like a tarball (to hint "extract it first").
pub fn is_tarball_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TARBALL_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// The outer container of an image's bytes: what must be undone before the
/// raw disk contents appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// Raw disk bytes (no magic proves this; it is what is left).
    Raw,
    /// zstd frame.
    Zstd,
    /// xz stream.
    Xz,
    /// gzip member.
    Gzip,
    /// bzip2 stream.
    Bzip2,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
}

/// Bytes of a file's start that [`sniff`] and [`detect`] look at: one sector,
/// which also covers the `ustar` magic of a tar header at offset 257.
pub const SNIFF_LEN: usize = 512;

const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
/// gzip id bytes plus compression method 8 (deflate, the only one defined).
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B, 0x08];
const BZIP2_BLOCK_MAGIC: &[u8] = b"1AY&SY";
const BZIP2_EOS_MAGIC: &[u8] = &[0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
const QCOW2_MAGIC: &[u8] = b"QFI\xfb";
const TAR_MAGIC_OFFSET: usize = 257;
const TAR_MAGIC: &[u8] = b"ustar";

/// The container proven by the first bytes of a file, or `None` when no known
/// magic is present (raw images have no magic, so raw is never returned).
pub fn sniff(header: &[u8]) -> Option<Container> {
    if header.starts_with(ZSTD_MAGIC) {
        Some(Container::Zstd)
    } else if header.starts_with(XZ_MAGIC) {
        Some(Container::Xz)
    } else if header.starts_with(GZIP_MAGIC) {
        Some(Container::Gzip)
    } else if is_bzip2(header) {
        Some(Container::Bzip2)
    } else if is_qcow2(header) {
        Some(Container::Qcow2)
    } else {
        None
    }
}

/// `BZh` + block size `1`–`9`, then a block or end-of-stream magic: the
/// three letters alone are too likely in arbitrary data.
fn is_bzip2(header: &[u8]) -> bool {
    match header {
        [b'B', b'Z', b'h', level, rest @ ..] if (b'1'..=b'9').contains(level) => {
            rest.starts_with(BZIP2_BLOCK_MAGIC) || rest.starts_with(BZIP2_EOS_MAGIC)
        }
        _ => false,
    }
}

/// `QFI\xfb` + big-endian version 2 or 3.
fn is_qcow2(header: &[u8]) -> bool {
    header.starts_with(QCOW2_MAGIC) && matches!(header.get(4..8), Some([0, 0, 0, 2 | 3]))
}

/// Whether the header is a POSIX/GNU tar header (an uncompressed tarball).
fn is_tar(header: &[u8]) -> bool {
    header
        .get(TAR_MAGIC_OFFSET..TAR_MAGIC_OFFSET + TAR_MAGIC.len())
        .is_some_and(|m| m == TAR_MAGIC)
}

/// Up to [`SNIFF_LEN`] bytes from the start of the file at `path`.
/// A symlink is not followed (an error), so no name in the image root makes
/// this read a file outside it.
pub fn read_header(path: &Path) -> io::Result<Vec<u8>> {
    read_header_of(&crate::identity::open_nofollow(path)?)
}

/// Up to [`SNIFF_LEN`] bytes from the start of an open file, by positional
/// reads (its offset is left alone, so the descriptor can be shared).
pub fn read_header_of(file: &File) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut header = vec![0u8; SNIFF_LEN];
    let mut filled = 0;
    while filled < SNIFF_LEN {
        match file.read_at(&mut header[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    header.truncate(filled);
    Ok(header)
}

/// [`sniff`] the first bytes of the file at `path`.
pub fn sniff_file(path: &Path) -> io::Result<Option<Container>> {
    Ok(sniff(&read_header(path)?))
}

impl ImageFormat {
    /// The container this format's bytes are in.
    pub fn container(self) -> Container {
        match self {
            Self::Img | Self::Raw | Self::Iso => Container::Raw,
            Self::ImgZst => Container::Zstd,
            Self::ImgXz => Container::Xz,
            Self::ImgGz => Container::Gzip,
            Self::ImgBz2 => Container::Bzip2,
            Self::Qcow2 => Container::Qcow2,
        }
    }
}

impl Container {
    /// The format bty assumes for content in this container when the name
    /// does not say (a compressed container holds a raw image).
    fn default_format(self) -> ImageFormat {
        match self {
            Self::Raw => ImageFormat::Img,
            Self::Zstd => ImageFormat::ImgZst,
            Self::Xz => ImageFormat::ImgXz,
            Self::Gzip => ImageFormat::ImgGz,
            Self::Bzip2 => ImageFormat::ImgBz2,
            Self::Qcow2 => ImageFormat::Qcow2,
        }
    }
}

/// Why a file is not something bty can flash.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// Neither the name nor the bytes identify an image format.
    #[error("{name:?} is not a recognised disk image (supported: {exts}, .raw, .iso)", exts = SUPPORTED_EXTENSIONS)]
    Unrecognised {
        /// The file name or URL path segment.
        name: String,
    },
    /// A tarball: the image inside must be extracted first.
    #[error(
        "{name:?} is a tarball: extract the disk image first (tar -xf {name:?}) and use the image file"
    )]
    Tarball {
        /// The file name or URL path segment.
        name: String,
    },
    /// The name claims a compressed/qcow2 format but the bytes lack its magic.
    #[error("{name:?} is named as {} but its content is not; the file is damaged or misnamed", .claimed.as_str())]
    Mismatch {
        /// The file name or URL path segment.
        name: String,
        /// The format the name claims.
        claimed: ImageFormat,
    },
}

/// Whether `name` has one of the image extensions bty lists.
pub fn is_image_name(name: &str) -> bool {
    format_from_name(name).is_some()
}

/// The format of a file from its name and first bytes (up to [`SNIFF_LEN`]),
/// trusting the bytes over the name: a `.img` holding zstd is `img.zst`, a
/// `.img` holding a qcow2 header is `qcow2`, a name without an image
/// extension is accepted when its bytes carry a known magic. An empty
/// `header` (bytes not available yet, e.g. a URL) falls back to the name.
pub fn detect(name: &str, header: &[u8]) -> Result<ImageFormat, FormatError> {
    // A `.tar.gz` has gzip magic; the name must win here or it would be
    // "flashed" as a compressed disk image.
    if is_tarball_name(name) || is_tar(header) {
        return Err(FormatError::Tarball {
            name: name.to_owned(),
        });
    }
    let by_name = format_from_name(name);
    match (sniff(header), by_name) {
        (Some(c), Some(f)) if f.container() == c => Ok(f),
        (Some(c), _) => Ok(c.default_format()),
        (None, Some(f)) if header.is_empty() || f.container() == Container::Raw => Ok(f),
        (None, Some(f)) => Err(FormatError::Mismatch {
            name: name.to_owned(),
            claimed: f,
        }),
        (None, None) => Err(FormatError::Unrecognised {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
