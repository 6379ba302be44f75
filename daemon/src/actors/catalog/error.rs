//! Errors of catalog requests.

use crate::actors::Unavailable;
use bty_store::canon::SrcError;
use thiserror::Error;

/// Why a catalog request failed. Messages are for operators; causes are
/// kept as `source()` (shown with `crate::chain`).
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The URL given to add is not a valid source.
    #[error("invalid image_url")]
    BadUrl(#[source] SrcError),
    /// A `file://` source offered as an entry.
    #[error("catalog entries carry only remote sources (oras:// / http:// / https://)")]
    LocalSource,
    /// The ref given does not match the URL.
    #[error("ref {given} does not match image_url (expected {expected})")]
    RefMismatch {
        /// What the client sent.
        given: String,
        /// The URL's ref.
        expected: String,
    },
    /// No name given and the URL has no file name to default to.
    #[error("image_url must end in a filename component")]
    NoFileName,
    /// A pinned sha256 that is not one.
    #[error("sha256 must be a 64-char lower-case hex string, got {got:?}")]
    BadSha256 {
        /// What the client sent.
        got: String,
    },
    /// A stored entry whose src does not canonicalise.
    #[error(transparent)]
    Src(#[from] SrcError),
    /// Catalog text to import that does not parse or validate.
    #[error(transparent)]
    Parse(#[from] bty_store::catalog_file::CatalogError),
    /// An update of an entry that has no cached bytes.
    #[error("{name} is not cached: use fetch, not update")]
    NotCached {
        /// The entry's name.
        name: String,
    },
    /// An entry with that src exists already.
    #[error("catalog entry with src={src} already exists")]
    AlreadyExists {
        /// The stored entry's src.
        src: String,
    },
    /// Another entry has that name.
    #[error("an entry named {name:?} already exists with src {src}")]
    NameTaken {
        /// The name.
        name: String,
        /// The src of the entry that has it.
        src: String,
    },
    /// The entry's bytes are being downloaded.
    #[error("{name} is being downloaded; cancel the download first")]
    Downloading {
        /// The entry's name.
        name: String,
    },
    /// No entry with that src or ref.
    #[error("no catalog entry with src or ref {key:?}")]
    NoEntry {
        /// What the client sent.
        key: String,
    },
    /// No remote entry answers to that key.
    #[error("no remote catalog entry for {key:?}")]
    NoRemoteEntry {
        /// What the client sent.
        key: String,
    },
    /// No row answers to that key.
    #[error("no image matches {key:?}")]
    NoImage {
        /// What the client sent.
        key: String,
    },
    /// The row has no file in the image root.
    #[error("{name} has no local copy; fetch it first")]
    NotLocal {
        /// The row's first name (or the key).
        name: String,
    },
    /// The row's file is not in the latest scan.
    #[error("{file_name} is not listed; rescan")]
    NotListed {
        /// The file.
        file_name: String,
    },
    /// The stored catalog.toml does not parse; bty will not overwrite it.
    #[error(
        "catalog.toml at {path} does not parse ({reason}); fix or move it aside, then restart btyd"
    )]
    ReadOnly {
        /// The file.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// An `oras://` URL offered to the catalog directly.
    #[error("oras:// entries are resolved by the downloader before they are added")]
    OrasUnresolved,
    /// Reading or writing the store failed.
    #[error("{what}")]
    Io {
        /// What bty was doing, with the path.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The change would make catalog.toml larger than the daemon loads
    /// back; nothing was written.
    #[error(
        "the catalog would grow to {size} bytes, over max_catalog_bytes ({max} bytes), the \
         largest catalog.toml btyd loads; nothing was changed (remove entries or raise \
         [catalog] max_catalog_bytes)"
    )]
    StateTooLarge {
        /// The size it would have.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The actor (or a task of it) could not answer.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl CatalogError {
    /// Whether the key names nothing the catalog knows (as opposed to a
    /// request it refused or could not answer).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::NoEntry { .. }
                | Self::NoRemoteEntry { .. }
                | Self::NoImage { .. }
                | Self::NotLocal { .. }
                | Self::NotListed { .. }
        )
    }
}

/// Why catalog.toml could not be loaded at start-up (the catalog then
/// runs read-only).
#[derive(Debug, Error)]
pub(super) enum LoadError {
    /// It does not parse or validate.
    #[error(transparent)]
    Parse(#[from] bty_store::catalog_file::CatalogError),
    /// It could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
