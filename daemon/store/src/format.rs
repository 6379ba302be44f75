//! Image formats: by file-name extension (ref §2.1, plus `.iso`/`.raw`) and
//! by magic bytes (helper B adds sniffing below the extension table).

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
