//! The merged listing (SPEC §2, ref §3.2 with its bugs fixed): the image-root
//! scan and the catalog entries become rows keyed by content sha256 (else by
//! ref), with the action gates of ref §3.4.
//! Helper B fills in `merge`; the types below are the shared contract.

/// Where a row's bytes can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A file in the image root (operator upload or drop-in).
    Local,
    /// A remote entry added by URL.
    Url,
    /// A remote entry imported from a catalog file.
    Manifest,
}

impl SourceKind {
    /// `local` | `url` | `manifest`, as the API and the page spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Url => "url",
            Self::Manifest => "manifest",
        }
    }
}

/// One source of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSource {
    /// Local file, or which kind of remote entry.
    pub kind: SourceKind,
    /// Absolute path for local files, the src URL for remote entries.
    pub location: String,
}

/// The action gates (ref §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions {
    /// remote ∧ ¬cached
    pub fetch: bool,
    /// remote ∧ cached
    pub update: bool,
    /// remote ∧ cached
    pub cache_delete: bool,
    /// remote
    pub entry_delete: bool,
}

/// One merged row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Stable id: content sha256 when known, else the first entry's ref.
    pub id: String,
    /// ref of the first remote entry, else of `file://<first local name>`.
    pub image_ref: String,
    /// Every name the content is known by, in merge order.
    pub names: Vec<String>,
    /// Content sha256 of the stored bytes, when known.
    pub sha256: Option<String>,
    /// Format id (`img.gz`, `qcow2`, …).
    pub format: Option<String>,
    /// Size of the stored bytes.
    pub size_bytes: Option<u64>,
    /// Local file first, then remote entries.
    pub sources: Vec<RowSource>,
    /// Whether the bytes are in the image root.
    pub cached: bool,
    /// Which actions apply.
    pub actions: Actions,
    /// File name in the image root holding the bytes (local or cached).
    pub file_name: Option<String>,
}
