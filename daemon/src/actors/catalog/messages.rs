//! Messages the catalog understands.

use super::changes::{DiskDone, Then};
use super::error::CatalogError;
use super::import::ImportReport;
use crate::domain::{DownloadSpec, Downloaded, LocalImage};
use bty_store::catalog_file::{CatalogEntry, ParsedCatalog};
use bty_store::merge::Row;
use bty_store::scan::ScannedFile;
use ractor::RpcReplyPort;
use std::sync::Arc;

/// A catalog to import, parsed before it reaches the actor: parsing a
/// hostile document is the caller's time, never the catalog's mailbox.
/// There is no path variant: the daemon runs as root and reads no file a
/// client names.
#[derive(Debug)]
pub struct ParsedImport {
    /// The parsed catalog, or why the content is not one.
    pub parsed: Result<ParsedCatalog, bty_store::catalog_file::CatalogError>,
    /// Where it came from (the upload's name or the URL), for reports.
    pub label: String,
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
    /// The checksum file `sha256` was read from (http(s) entries only;
    /// resolved by the caller before the request reaches the catalog).
    pub sha_url: Option<String>,
    /// ref to verify against the URL.
    pub image_ref: Option<String>,
    /// What resolving the source found (oras: layer title and size).
    pub remote: Option<RemoteMetadata>,
}

/// Metadata learnt from the remote at add time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteMetadata {
    /// The artifact's file name (OCI title annotation).
    pub title: Option<String>,
    /// Size of the stored bytes.
    pub size_bytes: Option<u64>,
    /// Format from the title.
    pub format: Option<String>,
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

/// A remote entry as `ListEntries` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedEntry {
    /// The entry as stored.
    pub entry: CatalogEntry,
    /// Its ref.
    pub image_ref: String,
    /// sha256 of its cached bytes, when cached.
    pub cached_sha256: Option<String>,
    /// When it was added (RFC 3339 UTC), when recorded.
    pub added_at: Option<String>,
}

/// What a cache delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDeleted {
    /// Whether a file was removed.
    pub deleted: bool,
    /// Why not, when nothing was removed.
    pub reason: String,
    /// sha256 of the removed bytes.
    pub sha256: Option<String>,
    /// The cache file name.
    pub file_name: String,
}

/// A scan of the image root run on the blocking pool.
pub(crate) type ScanOutcome = Result<std::io::Result<Vec<ScannedFile>>, tokio::task::JoinError>;

/// A change to the catalog, as asked. Each is decided on the catalog as
/// the change before it left it, and answered once its disk work is done
/// (`changes.rs`).
#[derive(Debug)]
pub enum Change {
    /// Add a remote entry.
    Add {
        /// What to add.
        request: AddEntry,
        /// The entry and its ref.
        reply: RpcReplyPort<Result<(CatalogEntry, String), CatalogError>>,
    },
    /// Remove a remote entry and its cached bytes.
    Remove {
        /// src (any spelling with the same canonical form) or ref.
        src_or_ref: String,
        /// What was removed.
        reply: RpcReplyPort<Result<RemovedEntry, CatalogError>>,
    },
    /// Import a catalog.
    Import {
        /// What was sent, parsed.
        import: ParsedImport,
        /// Counts and per-entry errors.
        reply: RpcReplyPort<Result<ImportReport, CatalogError>>,
    },
    /// Remove an entry's cached bytes.
    DeleteCache {
        /// Row id, ref, src or entry name.
        key: String,
        /// What happened.
        reply: RpcReplyPort<Result<CacheDeleted, CatalogError>>,
    },
    /// Record a landed download's validators, for its next "changed?"
    /// (the catalog's own, after `Downloaded`).
    Validators(Downloaded),
}

/// Requests and notifications.
#[derive(Debug)]
pub enum CatalogMessage {
    /// The merged rows (all of them; callers filter).
    List {
        /// The rows, shared: readers filter and page them outside the actor.
        reply: RpcReplyPort<Arc<Vec<Row>>>,
    },
    /// The remote entries, in catalog.toml's order.
    ListEntries {
        /// The entries.
        reply: RpcReplyPort<Vec<ListedEntry>>,
    },
    /// A change to the catalog: it waits while another one's disk work
    /// runs.
    Change(Change),
    /// Render the exportable catalog.
    Export {
        /// Origin for cached rows' URLs.
        base_url: String,
        /// catalog.toml text.
        reply: RpcReplyPort<String>,
    },
    /// The image root changed on disk (from the directory watcher): scan
    /// it off the mailbox.
    Rescan,
    /// A scan the catalog started off the mailbox finished (sent by the
    /// catalog to itself).
    Scanned {
        /// The scan's place in the order scans were started.
        seq: u64,
        /// What it found.
        scanned: ScanOutcome,
    },
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
    /// What to download for an entry (by row id, ref, src or name).
    DownloadSpec {
        /// Row id, ref, src or entry name.
        key: String,
        /// Re-pull a cached entry.
        update: bool,
        /// The spec.
        reply: RpcReplyPort<Result<DownloadSpec, CatalogError>>,
    },
    /// A download of this cache file is under way: don't hash it when it
    /// appears (the downloader hashes inline and writes the sidecar).
    ExpectArrival {
        /// Cache file name.
        name: String,
        /// Acknowledged once recorded.
        reply: RpcReplyPort<()>,
    },
    /// A download landed.
    Downloaded(Downloaded),
    /// An upload landed: its bytes and sidecar are in place.
    Uploaded {
        /// File name.
        name: String,
        /// The sha256 its sidecar records.
        sha256: String,
        /// The file as a scan lists it, looked at right after it landed
        /// (`None`: not listable, and a scan settles it).
        landed: Option<ScannedFile>,
    },
    /// A change's disk work finished (sent by the catalog to itself).
    DiskWorkDone {
        /// What was written and deleted.
        done: DiskDone,
        /// How the change ends.
        then: Then,
    },
    /// A download or upload ended without landing.
    ArrivalAbandoned {
        /// Cache file name.
        name: String,
    },
    /// Resolve a row id, ref, sha256 or name to a file in the image root.
    ResolveLocal {
        /// Row id, ref, sha256, src, entry name or file name.
        key: String,
        /// The file.
        reply: RpcReplyPort<Result<LocalImage, CatalogError>>,
    },
    /// Test-only: panic inside the handler to exercise supervision.
    #[cfg(feature = "fault-injection")]
    InjectPanic,
}
