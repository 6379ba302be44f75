//! The image store core of bty: pure functions over bytes, paths and
//! directory listings, plus the blocking write-and-hash path new image
//! files land through. No async, no actors: the daemon's actors and
//! bty-fetch call into this crate, and fuzz targets link it alone.
//!
//! - [`canon`]: `src` canonicalisation and the `ref` (sha256 of the canonical src)
//! - [`oras_ref`]: `oras://host/repo:tag|@sha256:…` references
//! - [`chain`]: an error and its causes on one line, as people read it
//! - [`catalog_file`]: `catalog.toml` parse / validate / serialize
//! - [`names`]: cached file names, slugs, validation of operator file names
//! - [`format`]: image formats by extension and by magic bytes
//! - [`sidecar`]: `<file>.sha256` sidecars
//! - [`atomic`]: temp file + fsync + rename writes
//! - [`identity`]: opening listed files without following links, checked
//!   against the scan's identity
//! - [`create`]: creating bty's own files exclusively, reopening them safely
//! - [`marker`]: the `.bty-storage.json` storage marker
//! - [`scan`]: the image-root scan
//! - [`merge`]: scan + entries → listing rows with action gates
//! - [`export`]: the `catalog.toml` a receiver can fetch
//! - [`digest`]: sha256 of byte strings and its canonical hex
//! - [`sums`]: `SHA256SUMS`-style checksum files (an entry's `sha_url`)
//! - [`intake`]: writing and hashing a new image file as its bytes arrive

pub mod atomic;
pub mod canon;
pub mod catalog_file;
pub mod chain;
pub mod create;
pub mod digest;
pub mod export;
pub mod format;
pub mod identity;
pub mod intake;
pub mod marker;
pub mod merge;
pub mod names;
pub mod oras_ref;
pub mod scan;
pub mod sidecar;
pub mod signed;
pub mod sums;
