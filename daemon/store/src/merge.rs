//! The merged listing: the image-root scan and the catalog entries become
//! rows keyed by content sha256 (else by ref), with their action gates
//! (docs/behaviour.md, "Merge rules" and "Action gates").
//!
//! Fixed against upstream: a local file has one `local` source (no phantom
//! remote source, so no remote actions), rows carry a stable id, every ref
//! that merged into a row is indexed, and a file named like a cache file
//! that no entry owns is listed as local instead of vanishing.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::catalog_file::CatalogEntry;
use crate::digest::Sha256Digest;
use crate::names::{REF_PREFIX_LEN, cache_file_name};
use crate::scan::ScannedFile;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowSource {
    /// Local file, or which kind of remote entry.
    pub kind: SourceKind,
    /// Absolute path for local files, the src URL for remote entries
    /// (shared with the entry, not copied).
    pub location: Arc<str>,
}

/// The action gates: which of the images page's per-row actions apply.
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

/// One merged row. btyd keeps one per catalog entry and file for as long
/// as it runs, so its fields are compact: digests as bytes, strings shared
/// with the entries, boxed slices without spare capacity, known format ids
/// borrowed (`tests/listing_memory.rs` holds the per-row budget).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// ref of the first remote entry, else of `file://<first local name>`.
    pub image_ref: Sha256Digest,
    /// Every name the content is known by, in merge order.
    pub names: Box<[Arc<str>]>,
    /// Content sha256 of the stored bytes, when known.
    pub sha256: Option<Sha256Digest>,
    /// Format id (`img.gz`, `qcow2`, …).
    pub format: Option<Cow<'static, str>>,
    /// Size of the stored bytes.
    pub size_bytes: Option<u64>,
    /// Local file first, then remote entries.
    pub sources: Box<[RowSource]>,
    /// Whether the bytes are in the image root.
    pub cached: bool,
    /// Which actions apply.
    pub actions: Actions,
    /// File name in the image root holding the bytes (local or cached).
    pub file_name: Option<Box<str>>,
    /// Fingerprint of the key that signed the stored bytes, when they were
    /// downloaded under a passing `[[trust]]` check.
    pub signed_by: Option<Box<str>>,
    /// Every other ref that merged into this row (empty for most rows):
    /// with `image_ref` and `sha256`, the keys a change must reach for the
    /// row to be collapsed again (`remerge`).
    pub merged_refs: Box<[Sha256Digest]>,
}

impl Row {
    /// Stable id: content sha256 when known, else the row's ref (derived,
    /// not stored).
    pub fn id(&self) -> Sha256Digest {
        self.sha256.unwrap_or(self.image_ref)
    }

    /// Whether `key` is this row's id, ref or sha256 (a row's id changes
    /// from ref to sha256 once its bytes are hashed).
    pub fn answers_to(&self, key: Sha256Digest) -> bool {
        key == self.image_ref || Some(key) == self.sha256
    }

    /// The first name (every row has at least one).
    pub fn first_name(&self) -> &str {
        self.names.first().map_or("", |n| n)
    }

    /// Every key that joined candidates into this row: its refs and its
    /// sha256.
    pub fn keys(&self) -> impl Iterator<Item = Sha256Digest> + '_ {
        std::iter::once(self.image_ref)
            .chain(self.sha256)
            .chain(self.merged_refs.iter().copied())
    }

    /// The listing's order: hashed rows by first name, then unhashed rows
    /// by first name; the id breaks ties.
    fn listing_order(&self, other: &Self) -> std::cmp::Ordering {
        (self.sha256.is_none(), self.names.first(), self.id()).cmp(&(
            other.sha256.is_none(),
            other.names.first(),
            other.id(),
        ))
    }
}

/// A catalog entry as the merge sees it: the entry, its ref (computed by the
/// caller with `crate::canon::image_ref`) and how it got into the catalog.
#[derive(Debug, Clone)]
pub struct MergeEntry<'a> {
    /// The entry.
    pub entry: &'a CatalogEntry,
    /// sha256 of the canonical src.
    pub image_ref: Sha256Digest,
    /// [`SourceKind::Url`] or [`SourceKind::Manifest`].
    pub kind: SourceKind,
}

/// One source's contribution before collapsing.
struct Candidate {
    image_ref: Sha256Digest,
    sha256: Option<Sha256Digest>,
    name: Arc<str>,
    format: Option<Cow<'static, str>>,
    size_bytes: Option<u64>,
    source: RowSource,
    cached: bool,
    /// The file in the image root holding this candidate's bytes (its
    /// index in the scan).
    file: Option<usize>,
    /// Who signed those bytes (checked against their sha256 when read).
    signed_by: Option<Box<str>>,
}

/// A row being collapsed.
#[derive(Default)]
struct Acc {
    sha256: Option<Sha256Digest>,
    names: Vec<Arc<str>>,
    format: Option<Cow<'static, str>>,
    size_bytes: Option<u64>,
    sources: Vec<RowSource>,
    cached: bool,
    local_ref: Option<Sha256Digest>,
    remote_ref: Option<Sha256Digest>,
    local_file: Option<usize>,
    cache_file: Option<usize>,
    signed_by: Option<Box<str>>,
    /// Refs absorbed beyond the first local and the first remote one
    /// (rare: kept apart so most rows allocate nothing for them).
    more_refs: Vec<Sha256Digest>,
}

impl Acc {
    fn absorb(&mut self, c: Candidate) {
        if self.sha256.is_none() {
            self.sha256 = c.sha256;
        }
        push_unique(&mut self.names, c.name);
        if self.format.is_none() {
            self.format = c.format;
        }
        if self.size_bytes.is_none() {
            self.size_bytes = c.size_bytes;
        }
        self.cached |= c.cached;
        // The record names the content's sha256, which the row shares.
        if self.signed_by.is_none() {
            self.signed_by = c.signed_by;
        }
        let local = c.source.kind == SourceKind::Local;
        let (row_ref, other_ref, file) = if local {
            (&mut self.local_ref, self.remote_ref, &mut self.local_file)
        } else {
            (&mut self.remote_ref, self.local_ref, &mut self.cache_file)
        };
        let first = *row_ref.get_or_insert(c.image_ref);
        if first != c.image_ref && other_ref != Some(c.image_ref) {
            push_unique(&mut self.more_refs, c.image_ref);
        }
        if let Some(f) = c.file {
            file.get_or_insert(f);
        }
        push_unique(&mut self.sources, c.source);
    }

    fn into_row(mut self, scan: &[ScannedFile]) -> Option<Row> {
        dedup_long(&mut self.names);
        dedup_long(&mut self.sources);
        dedup_long(&mut self.more_refs);
        let image_ref = self.remote_ref.or(self.local_ref)?;
        let remote = self.sources.iter().any(|s| s.kind != SourceKind::Local);
        let actions = Actions {
            fetch: remote && !self.cached,
            update: remote && self.cached,
            cache_delete: remote && self.cached,
            entry_delete: remote,
        };
        let file = self.local_file.or(self.cache_file.filter(|_| self.cached));
        let mut merged_refs = Vec::new();
        for r in self.local_ref.into_iter().chain(self.more_refs) {
            if r != image_ref && !merged_refs.contains(&r) {
                merged_refs.push(r);
            }
        }
        let merged_refs = merged_refs.into_boxed_slice();
        Some(Row {
            image_ref,
            names: self.names.into_boxed_slice(),
            sha256: self.sha256,
            format: self.format,
            size_bytes: self.size_bytes,
            sources: self.sources.into_boxed_slice(),
            cached: self.cached,
            actions,
            file_name: file
                .and_then(|i| scan.get(i))
                .map(|f| f.name.as_str().into()),
            signed_by: self.signed_by,
            merged_refs,
        })
    }
}

/// Lists up to this long are kept unique as they grow (a linear check);
/// longer ones take duplicates and are made unique once, in `into_row`, so
/// a row that thousands of entries collapse into (one pinned sha256)
/// costs O(k), not O(k²).
const UNIQUE_AS_PUSHED_MAX: usize = 16;

/// Push `item` unless a short `v` already holds it.
fn push_unique<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if v.len() >= UNIQUE_AS_PUSHED_MAX {
        v.push(item);
    } else if !v.contains(&item) {
        push_snug(v, item);
    }
}

/// Drop the later copies of any item in a long `v`, keeping first-seen
/// order.
fn dedup_long<T: Eq + std::hash::Hash + Clone>(v: &mut Vec<T>) {
    if v.len() > UNIQUE_AS_PUSHED_MAX {
        let mut seen = HashSet::with_capacity(v.len());
        v.retain(|item| seen.insert(item.clone()));
    }
}

/// Push without spare room while `v` is short. Most rows have one name
/// and one source: boxing them later then frees no tail beside each row
/// (holes that keep a large listing's pages resident). Longer ones grow as
/// usual, so a row with many names stays linear to build.
fn push_snug<T>(v: &mut Vec<T>, item: T) {
    if v.len() < 4 {
        v.reserve_exact(1);
    }
    v.push(item);
}

/// Collapses candidates: same known sha256 → one row, else same ref.
struct Collapser {
    accs: Vec<Acc>,
    by_sha: HashMap<Sha256Digest, usize>,
    by_ref: HashMap<Sha256Digest, usize>,
}

impl Collapser {
    /// Room for `n` candidates up front: a large listing's tables are made
    /// once instead of doubling, which would leave their old copies as
    /// holes among the rows that live on.
    fn with_capacity(n: usize) -> Self {
        Self {
            accs: Vec::with_capacity(n),
            by_sha: HashMap::with_capacity(n),
            by_ref: HashMap::with_capacity(n),
        }
    }

    fn add(&mut self, c: Candidate) {
        let found = match &c.sha256 {
            // A hashed candidate joins the row with its content, or else an
            // unhashed row for the same ref (which thereby learns its hash).
            Some(sha) => self.by_sha.get(sha).copied().or_else(|| {
                self.by_ref
                    .get(&c.image_ref)
                    .copied()
                    .filter(|&i| self.accs[i].sha256.is_none())
            }),
            None => self.by_ref.get(&c.image_ref).copied(),
        };
        let idx = found.unwrap_or_else(|| {
            self.accs.push(Acc::default());
            self.accs.len() - 1
        });
        // Every ref and sha that reaches a row is indexed (upstream indexed
        // only the first ref, which could split one source over two rows).
        self.by_ref.entry(c.image_ref).or_insert(idx);
        if let Some(sha) = c.sha256 {
            self.by_sha.entry(sha).or_insert(idx);
        }
        self.accs[idx].absorb(c);
    }

    /// The collapsed rows, unsorted.
    fn into_rows(self, scan: &[ScannedFile]) -> Vec<Row> {
        let mut out = Vec::with_capacity(self.accs.len());
        out.extend(self.accs.into_iter().filter_map(|acc| acc.into_row(scan)));
        out
    }
}

/// The ref of a file in the image root: sha256 of `file://<name>`, which is
/// already canonical for a bare file name.
fn local_ref(name: &str) -> Sha256Digest {
    Sha256Digest::of(format!("file://{name}").as_bytes())
}

/// A sidecar's or entry's sha256 as a digest (they are validated hex).
fn digest(hex: &str) -> Option<Sha256Digest> {
    Sha256Digest::from_hex(hex)
}

/// Whether `file` is the cache file of the entry whose ref is `ref_hex`
/// (the name was derived from that entry; the prefix must match too).
fn is_cache_of(file: &ScannedFile, ref_hex: &str) -> bool {
    file.cache_ref_prefix.as_deref() == ref_hex.get(..REF_PREFIX_LEN)
}

/// The name an entry's cached bytes are stored under, and its ref in hex.
fn cache_name_of(e: &MergeEntry<'_>) -> (String, String) {
    let ref_hex = e.image_ref.to_hex();
    let name = cache_file_name(&ref_hex, &e.entry.name, e.entry.format.as_deref());
    (name, ref_hex)
}

/// The candidate of file `i` of the scan, listed as a local file (no entry
/// owns it).
fn file_candidate(i: usize, f: &ScannedFile) -> Candidate {
    Candidate {
        image_ref: local_ref(&f.name),
        sha256: f.sidecar.fresh_sha256().and_then(digest),
        name: f.name.as_str().into(),
        format: Some(Cow::Borrowed(f.format.as_str())),
        size_bytes: Some(f.size_bytes),
        source: RowSource {
            kind: SourceKind::Local,
            location: f.path.to_string_lossy().into(),
        },
        cached: true,
        file: Some(i),
        signed_by: f.signed_by.as_deref().map(Box::from),
    }
}

/// The candidate of a catalog entry whose cache file is scan entry `hit`.
fn entry_candidate(e: &MergeEntry<'_>, hit: Option<usize>, scan: &[ScannedFile]) -> Candidate {
    let file = hit.and_then(|i| scan.get(i));
    let sha256 = e
        .entry
        .sha256
        .or_else(|| file.and_then(|f| f.sidecar.fresh_sha256()).and_then(digest));
    Candidate {
        image_ref: e.image_ref,
        sha256,
        name: Arc::clone(&e.entry.name),
        format: e
            .entry
            .format
            .clone()
            .or_else(|| file.map(|f| Cow::Borrowed(f.format.as_str()))),
        size_bytes: file.map(|f| f.size_bytes).or(e.entry.size_bytes),
        source: RowSource {
            kind: e.kind,
            location: Arc::clone(&e.entry.src),
        },
        cached: hit.is_some(),
        file: hit,
        signed_by: file.and_then(|f| f.signed_by.as_deref()).map(Box::from),
    }
}

/// Merge the image-root scan with the catalog entries into listing rows:
/// one row per content sha256 when known, else per ref; local
/// files first within a row; hashed rows by first name, then unhashed rows
/// by first name.
pub fn merge(scan: &[ScannedFile], entries: &[MergeEntry<'_>]) -> Vec<Row> {
    let cache_files: HashMap<&str, usize> = scan
        .iter()
        .enumerate()
        .filter(|(_, f)| f.cache_ref_prefix.is_some())
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let cache_hits: Vec<Option<usize>> = entries
        .iter()
        .map(|e| {
            let (name, ref_hex) = cache_name_of(e);
            cache_files
                .get(name.as_str())
                .copied()
                .filter(|&i| is_cache_of(&scan[i], &ref_hex))
        })
        .collect();
    let owned: HashSet<usize> = cache_hits.iter().flatten().copied().collect();

    let mut rows = Collapser::with_capacity(scan.len() + entries.len());
    // Pass 1: files in the root that no entry owns, orphaned cache files
    // included so the operator sees (and can remove) them.
    for (i, f) in scan.iter().enumerate().filter(|(i, _)| !owned.contains(i)) {
        rows.add(file_candidate(i, f));
    }
    // Pass 2: catalog entries, cached when their cache file is present.
    for (e, hit) in entries.iter().zip(cache_hits) {
        rows.add(entry_candidate(e, hit, scan));
    }

    let mut out = rows.into_rows(scan);
    out.sort_by(Row::listing_order);
    out
}

mod incremental;
pub use incremental::{Touched, remerge};

#[cfg(test)]
mod tests;
