//! The merged listing: the image-root scan and the catalog entries become
//! rows keyed by content sha256 (else by ref), with their action gates
//! (docs/behaviour.md, "Merge rules" and "Action gates").
//!
//! Fixed against upstream: a local file has one `local` source (no phantom
//! remote source, so no remote actions), rows carry a stable id, every ref
//! that merged into a row is indexed, and a file named like a cache file
//! that no entry owns is listed as local instead of vanishing.

use std::collections::{HashMap, HashSet};

use crate::catalog_file::CatalogEntry;
use crate::digest::sha256_bytes;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSource {
    /// Local file, or which kind of remote entry.
    pub kind: SourceKind,
    /// Absolute path for local files, the src URL for remote entries.
    pub location: String,
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

/// One merged row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
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
    /// Fingerprint of the key that signed the stored bytes, when they were
    /// downloaded under a passing `[[trust]]` check.
    pub signed_by: Option<String>,
}

impl Row {
    /// Stable id: content sha256 when known, else the row's ref (derived,
    /// not stored: a 100 000-row listing is 9 MB smaller).
    pub fn id(&self) -> &str {
        self.sha256.as_deref().unwrap_or(&self.image_ref)
    }
}

/// A catalog entry as the merge sees it: the entry, its ref (computed by the
/// caller with `crate::canon::image_ref`) and how it got into the catalog.
#[derive(Debug, Clone)]
pub struct MergeEntry<'a> {
    /// The entry.
    pub entry: &'a CatalogEntry,
    /// sha256 of the canonical src.
    pub image_ref: String,
    /// [`SourceKind::Url`] or [`SourceKind::Manifest`].
    pub kind: SourceKind,
}

/// One source's contribution before collapsing.
struct Candidate {
    image_ref: String,
    sha256: Option<String>,
    name: String,
    format: Option<String>,
    size_bytes: Option<u64>,
    source: RowSource,
    cached: bool,
    /// The file in the image root holding this candidate's bytes.
    file_name: Option<String>,
    /// Who signed those bytes (checked against their sha256 when read).
    signed_by: Option<String>,
}

/// A row being collapsed.
#[derive(Default)]
struct Acc {
    sha256: Option<String>,
    names: Vec<String>,
    format: Option<String>,
    size_bytes: Option<u64>,
    sources: Vec<RowSource>,
    cached: bool,
    local_ref: Option<String>,
    remote_ref: Option<String>,
    local_file: Option<String>,
    cache_file: Option<String>,
    signed_by: Option<String>,
}

impl Acc {
    fn absorb(&mut self, c: Candidate) {
        if self.sha256.is_none() {
            self.sha256 = c.sha256;
        }
        if !self.names.contains(&c.name) {
            self.names.push(c.name);
        }
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
        let (row_ref, file) = if local {
            (&mut self.local_ref, &mut self.local_file)
        } else {
            (&mut self.remote_ref, &mut self.cache_file)
        };
        row_ref.get_or_insert(c.image_ref);
        if let Some(f) = c.file_name {
            file.get_or_insert(f);
        }
        if !self.sources.contains(&c.source) {
            self.sources.push(c.source);
        }
    }

    fn into_row(mut self) -> Option<Row> {
        let image_ref = self.remote_ref.or(self.local_ref)?;
        // Most rows have one name and one source: no spare capacity kept
        // (a third of a row's memory in a 100 000-row listing).
        self.names.shrink_to_fit();
        self.sources.shrink_to_fit();
        let remote = self.sources.iter().any(|s| s.kind != SourceKind::Local);
        let actions = Actions {
            fetch: remote && !self.cached,
            update: remote && self.cached,
            cache_delete: remote && self.cached,
            entry_delete: remote,
        };
        let file_name = self.local_file.or(self.cache_file.filter(|_| self.cached));
        Some(Row {
            image_ref,
            names: self.names,
            sha256: self.sha256,
            format: self.format,
            size_bytes: self.size_bytes,
            sources: self.sources,
            cached: self.cached,
            actions,
            file_name,
            signed_by: self.signed_by,
        })
    }
}

/// Collapses candidates: same known sha256 → one row, else same ref.
#[derive(Default)]
struct Collapser {
    accs: Vec<Acc>,
    by_sha: HashMap<String, usize>,
    by_ref: HashMap<String, usize>,
}

impl Collapser {
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
        self.by_ref.entry(c.image_ref.clone()).or_insert(idx);
        if let Some(sha) = &c.sha256 {
            self.by_sha.entry(sha.clone()).or_insert(idx);
        }
        self.accs[idx].absorb(c);
    }
}

/// The ref of a file in the image root: sha256 of `file://<name>`, which is
/// already canonical for a bare file name.
fn local_ref(name: &str) -> String {
    sha256_bytes(format!("file://{name}").as_bytes())
}

/// Merge the image-root scan with the catalog entries into listing rows:
/// one row per content sha256 when known, else per ref; local
/// files first within a row; hashed rows by first name, then unhashed rows
/// by first name.
pub fn merge(scan: &[ScannedFile], entries: &[MergeEntry<'_>]) -> Vec<Row> {
    let cache_files: HashMap<&str, &ScannedFile> = scan
        .iter()
        .filter(|f| f.cache_ref_prefix.is_some())
        .map(|f| (f.name.as_str(), f))
        .collect();
    let cache_hits: Vec<Option<&ScannedFile>> = entries
        .iter()
        .map(|e| {
            let name = cache_file_name(&e.image_ref, &e.entry.name, e.entry.format.as_deref());
            cache_files
                .get(name.as_str())
                .copied()
                .filter(|f| f.cache_ref_prefix.as_deref() == e.image_ref.get(..REF_PREFIX_LEN))
        })
        .collect();
    let owned: HashSet<&str> = cache_hits
        .iter()
        .flatten()
        .map(|f| f.name.as_str())
        .collect();

    let mut rows = Collapser::default();
    // Pass 1: files in the root that no entry owns, orphaned cache files
    // included so the operator sees (and can remove) them.
    for f in scan.iter().filter(|f| !owned.contains(f.name.as_str())) {
        rows.add(Candidate {
            image_ref: local_ref(&f.name),
            sha256: f.sidecar.fresh_sha256().map(str::to_owned),
            name: f.name.clone(),
            format: Some(f.format.as_str().to_owned()),
            size_bytes: Some(f.size_bytes),
            source: RowSource {
                kind: SourceKind::Local,
                location: f.path.to_string_lossy().into_owned(),
            },
            cached: true,
            file_name: Some(f.name.clone()),
            signed_by: f.signed_by.clone(),
        });
    }
    // Pass 2: catalog entries, cached when their cache file is present.
    for (e, hit) in entries.iter().zip(cache_hits) {
        let sha256 = e
            .entry
            .sha256
            .as_deref()
            .or_else(|| hit.and_then(|f| f.sidecar.fresh_sha256()))
            .map(str::to_ascii_lowercase);
        rows.add(Candidate {
            image_ref: e.image_ref.clone(),
            sha256,
            name: e.entry.name.clone(),
            format: e
                .entry
                .format
                .clone()
                .or_else(|| hit.map(|f| f.format.as_str().to_owned())),
            size_bytes: hit.map(|f| f.size_bytes).or(e.entry.size_bytes),
            source: RowSource {
                kind: e.kind,
                location: e.entry.src.clone(),
            },
            cached: hit.is_some(),
            file_name: hit.map(|f| f.name.clone()),
            signed_by: hit.and_then(|f| f.signed_by.clone()),
        });
    }

    let mut out: Vec<Row> = rows.accs.into_iter().filter_map(Acc::into_row).collect();
    out.sort_by(|a, b| {
        (a.sha256.is_none(), a.names.first(), a.id()).cmp(&(
            b.sha256.is_none(),
            b.names.first(),
            b.id(),
        ))
    });
    out
}

#[cfg(test)]
mod tests;
