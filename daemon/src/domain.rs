//! The domain types more than one actor speaks of: what a download is
//! (`DownloadSpec`), what a finished one hands back (`Downloaded`), and a file
//! of the image root resolved for reading (`LocalImage`). They belong to
//! no actor's messages, and none of them is an on-disk format.

use std::path::PathBuf;

/// Everything the downloader needs to fetch (or update) one entry: the
/// catalog makes it, the downloader runs it (and records it in its job
/// file, whose own schema is `actors/downloader/persist.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSpec {
    /// The entry's ref (job key).
    pub image_ref: String,
    /// Display name.
    pub name: String,
    /// Remote source.
    pub src: String,
    /// Pinned content digest: the bytes must match.
    pub pinned_sha256: Option<String>,
    /// The checksum file the pin came from, for `[[trust]]` checks.
    pub sha_url: Option<String>,
    /// Size the catalog declares, if any.
    pub size_bytes: Option<u64>,
    /// `catalog-<ref12>-<slug>.<ext>` in the image root.
    pub cache_file_name: String,
    /// Re-pull a cached entry.
    pub update: bool,
    /// sha256 of the cached bytes, when cached.
    pub cached_sha256: Option<String>,
    /// ETag of the cached bytes' response.
    pub etag: Option<String>,
    /// Last-Modified of the cached bytes' response.
    pub last_modified: Option<String>,
    /// The partial file's name in the image root, chosen (with a random
    /// part) by the downloader when it records the job, so a restart
    /// resumes the same file and nobody can plant a link there in advance.
    pub partial_name: Option<String>,
}

/// A download finished and its bytes (with sidecar) are in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    /// The entry's ref.
    pub image_ref: String,
    /// File name in the image root.
    pub cache_file_name: String,
    /// sha256 of the bytes.
    pub sha256: String,
    /// Validators to ask upstream "changed?" next time.
    pub etag: Option<String>,
    /// Validators to ask upstream "changed?" next time.
    pub last_modified: Option<String>,
    /// The file as a scan lists it, looked at right after it landed, so
    /// the catalog lists it without scanning the whole root (`None`: not
    /// listable as it stands; a scan settles it).
    pub landed: Option<bty_store::scan::ScannedFile>,
}

/// A file in the image root, resolved from a row id, ref, src or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// Absolute path.
    pub path: PathBuf,
    /// File name in the image root.
    pub file_name: String,
    /// Content sha256, when known.
    pub sha256: Option<String>,
    /// Format id.
    pub format: Option<String>,
    /// The row's names.
    pub names: Vec<String>,
    /// Size of the file, as of the last scan.
    pub size_bytes: u64,
    /// Last change of the file (epoch milliseconds), as of the last scan.
    pub modified_ms: i64,
    /// What the scan saw: a reader opens `file_name` in the image root
    /// with [`bty_store::identity::VerifiedImage`] against this, never
    /// `path` directly.
    pub identity: bty_store::identity::FileIdentity,
    /// The row's remote sources (canonical src URLs), if any.
    pub remote_sources: Vec<String>,
    /// Fingerprint of the key whose signature was checked when these bytes
    /// were downloaded under a `[[trust]]` rule.
    pub signed_by: Option<String>,
}

impl LocalImage {
    /// Open the file for reading, checked to be the one the scan listed.
    /// Blocking (one open and fstat); refuses a symlink, a special file, a
    /// hard link and a file that changed since the scan.
    pub fn open(
        &self,
    ) -> Result<bty_store::identity::VerifiedImage, bty_store::identity::OpenImageError> {
        let root = self
            .path
            .parent()
            .unwrap_or_else(|| std::path::Path::new("/"));
        bty_store::identity::VerifiedImage::open(root, &self.file_name, &self.identity)
    }
}
