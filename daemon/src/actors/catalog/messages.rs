//! Messages the catalog understands.

use super::error::CatalogError;
use super::import::ImportReport;
use bty_store::catalog_file::CatalogEntry;
use bty_store::merge::Row;
use ractor::RpcReplyPort;
use std::path::PathBuf;

/// Where a catalog to import comes from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// The file content, with a label for messages (e.g. the upload's name).
    Bytes {
        /// catalog.toml text.
        content: Vec<u8>,
        /// Where it came from.
        label: String,
    },
    /// A path the daemon reads.
    Path(PathBuf),
    /// An http(s):// URL or oras:// reference.
    Url(String),
}

/// Add one remote entry by URL.
#[derive(Debug, Clone, Default)]
pub struct AddEntry {
    /// http(s):// or oras://.
    pub url: String,
    /// Display name; default the URL's file name.
    pub name: Option<String>,
    /// Pinned content digest.
    pub sha256: Option<String>,
    /// ref to verify against the URL.
    pub image_ref: Option<String>,
}

/// What `RemoveEntry` removed.
#[derive(Debug, Clone)]
pub struct RemovedEntry {
    /// The entry as it was.
    pub entry: CatalogEntry,
    /// Its ref.
    pub image_ref: String,
    /// Whether cached bytes were deleted too.
    pub cache_removed: bool,
}

/// Requests and notifications.
#[derive(Debug)]
pub enum CatalogMessage {
    /// The merged rows, filtered by a case-insensitive query.
    List {
        /// Substring of a name, sha256 or source ("" = all).
        query: String,
        /// The rows.
        reply: RpcReplyPort<Vec<Row>>,
    },
    /// Add a remote entry.
    AddEntry {
        /// What to add.
        request: AddEntry,
        /// The entry and its ref.
        reply: RpcReplyPort<Result<(CatalogEntry, String), CatalogError>>,
    },
    /// Remove a remote entry and its cached bytes.
    RemoveEntry {
        /// src (any spelling with the same canonical form) or ref.
        src_or_ref: String,
        /// What was removed.
        reply: RpcReplyPort<Result<RemovedEntry, CatalogError>>,
    },
    /// Import a catalog.
    Import {
        /// Where it comes from.
        source: ImportSource,
        /// Counts and per-entry errors.
        reply: RpcReplyPort<Result<ImportReport, CatalogError>>,
    },
    /// Render the exportable catalog.
    Export {
        /// Origin for cached rows' URLs.
        base_url: String,
        /// catalog.toml text.
        reply: RpcReplyPort<String>,
    },
    /// The image root changed on disk (from the directory watcher).
    Rescan,
    /// The hasher wrote a sidecar.
    ImageHashed {
        /// File name.
        name: String,
        /// Its sha256.
        sha256: String,
    },
    /// Ask the hasher again for every file without a fresh sidecar (after
    /// the hasher restarted and lost its queue).
    RequeueUnhashed,
    /// Test-only: panic inside the handler to exercise supervision.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}
