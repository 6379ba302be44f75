//! `catalog.toml`: parse, validate and serialize (schema v1, ref §1.1).
//! Helper A fills in parsing; the types below are the shared contract.

/// One `[[images]]` entry: a remote image (http(s):// or oras://).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Display label (unique within a file).
    pub name: String,
    /// Remote source as written (canonicalise with [`crate::canon`]).
    pub src: String,
    /// Pinned content sha256 (64 lowercase hex): fetched bytes must match.
    pub sha256: Option<String>,
    /// Format id such as `img.gz`, `qcow2`, `img`.
    pub format: Option<String>,
    /// Size of the stored (possibly compressed) bytes, when known.
    pub size_bytes: Option<u64>,
    /// Free text.
    pub description: Option<String>,
    /// Keys bty does not know, kept verbatim when the file is rewritten.
    pub extra: toml::Table,
}

/// A whole catalog file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogFile {
    /// The `[[images]]` entries in file order.
    pub entries: Vec<CatalogEntry>,
    /// Unknown top-level keys, kept verbatim.
    pub extra: toml::Table,
}
