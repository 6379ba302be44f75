//! Bringing merged rows up to date after a few changes, without merging
//! everything again.
//!
//! The collapse joins candidates only through a shared ref or sha256, so
//! the rows fall into groups (candidates linked by keys) that never affect
//! one another. A change reaches the groups holding the changed files' and
//! entries' keys, before and after the change; only those groups are
//! collapsed again, from the current scan and entries and in `merge`'s
//! order. Every other row is kept as it is. The result is exactly the rows
//! `merge` would give (`tests.rs` holds it to that, change after change).
//!
//! Finding the groups is a few passes over the rows and entries comparing
//! digests (no formatting, no allocation per row): at 100 000 rows, a
//! tenth of a whole merge.

use std::collections::{BTreeSet, HashSet};

use super::{
    Collapser, MergeEntry, Row, SourceKind, cache_name_of, entry_candidate, file_candidate,
    is_cache_of, local_ref, merge,
};
use crate::digest::Sha256Digest;
use crate::names::{REF_PREFIX_LEN, cache_ref_prefix};
use crate::scan::ScannedFile;

/// Changes past this share of the rows and entries (and past
/// `WHOLE_MERGE_MIN`) are merged whole: finding their groups would cost
/// more than the merge.
const WHOLE_MERGE_SHARE: usize = 8;
const WHOLE_MERGE_MIN: usize = 64;

/// More changes than this are not tracked one by one: the next read
/// merges everything (this bounds what a burst of changes holds).
const TRACKED_MAX: usize = 1 << 16;

/// What changed since rows were merged: files in the image root by name
/// (appeared, left, changed or hashed) and catalog entries by ref (added,
/// removed or changed), or everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    everything: bool,
    files: BTreeSet<String>,
    refs: BTreeSet<Sha256Digest>,
}

impl Touched {
    /// Nothing changed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Merge everything (first merge, or a change too wide to follow).
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// The file `name` appeared, left or changed.
    pub fn file(&mut self, name: &str) {
        if !self.everything && !self.files.contains(name) {
            self.files.insert(name.to_owned());
            self.cap();
        }
    }

    /// The entry with ref `image_ref` was added, removed or changed.
    pub fn entry(&mut self, image_ref: Sha256Digest) {
        if !self.everything {
            self.refs.insert(image_ref);
            self.cap();
        }
    }

    fn cap(&mut self) {
        if self.len() > TRACKED_MAX {
            *self = Self::everything();
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.files.is_empty() && self.refs.is_empty()
    }

    /// Take the changes out, leaving none.
    pub fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    fn len(&self) -> usize {
        self.files.len() + self.refs.len()
    }
}

/// Bring `rows`, merged from the state before the changes in `touched`, up
/// to date with `scan` (sorted by name, as the scan returns it) and
/// `entries`: afterwards `rows` equals `merge(scan, entries)`. True when
/// the changes were wide enough to merge everything.
pub fn remerge(
    rows: &mut Vec<Row>,
    scan: &[ScannedFile],
    entries: &[MergeEntry<'_>],
    touched: &Touched,
) -> bool {
    let wide = WHOLE_MERGE_MIN.max((rows.len() + entries.len()) / WHOLE_MERGE_SHARE);
    if touched.everything || touched.len() > wide {
        *rows = merge(scan, entries);
        return true;
    }
    if touched.is_empty() {
        return false;
    }
    let mut reach = Reach::new(rows.len(), entries.len(), touched);
    if !reach.close(rows, scan, entries) {
        *rows = merge(scan, entries);
        return true;
    }

    // The reached groups, collapsed again in merge's order: unowned files
    // in scan order, then entries in catalog order.
    let owned: HashSet<usize> = reach
        .entry_hits
        .iter()
        .filter_map(|&(_, hit)| hit)
        .collect();
    let mut files: Vec<usize> = reach
        .files
        .iter()
        .filter_map(|name| scan_index(scan, name))
        .filter(|i| !owned.contains(i))
        .collect();
    files.sort_unstable();
    reach.entry_hits.sort_unstable_by_key(|&(j, _)| j);
    let mut collapser = Collapser::with_capacity(files.len() + reach.entry_hits.len());
    for i in files {
        collapser.add(file_candidate(i, &scan[i]));
    }
    for &(j, hit) in &reach.entry_hits {
        collapser.add(entry_candidate(&entries[j], hit, scan));
    }

    let mut index = 0;
    rows.retain(|_| {
        let keep = !reach.rows[index];
        index += 1;
        keep
    });
    let mut new_rows = collapser.into_rows(scan);
    if new_rows.len() > INSERTED_ONE_BY_ONE_MAX {
        // The sort finds the long sorted run and merges the new rows in.
        rows.append(&mut new_rows);
        rows.sort_by(Row::listing_order);
    } else {
        for row in new_rows {
            let at = rows.partition_point(|r| r.listing_order(&row).is_le());
            rows.insert(at, row);
        }
    }
    false
}

/// Passes over the rows and entries before an update gives up and merges
/// everything (real changes settle in two or three).
const PASSES_MAX: usize = 8;

/// Up to this many new rows are put in place by binary search (a move of
/// the rows behind each); more are sorted in.
const INSERTED_ONE_BY_ONE_MAX: usize = 16;

/// The groups a change reaches: every key, file, row and entry linked to
/// the touched files and entries, found by passes until nothing new turns
/// up.
struct Reach {
    /// Ordered, not hashed: a lookup per row key is a few comparisons of
    /// random bytes (cheaper than hashing 32 bytes), and no catalog can
    /// make it degrade.
    keys: BTreeSet<Sha256Digest>,
    /// Files reached, by name (present in the scan or not).
    files: BTreeSet<String>,
    /// Files reached whose keys are not followed yet.
    new_files: Vec<String>,
    /// `rows[i]` is reached (the old row is replaced).
    rows: Vec<bool>,
    /// `entries[j]` is reached.
    entries: Vec<bool>,
    /// Reached entries with their cache file's index in the scan.
    entry_hits: Vec<(usize, Option<usize>)>,
}

impl Reach {
    fn new(rows: usize, entries: usize, touched: &Touched) -> Self {
        let mut reach = Self {
            keys: touched.refs.clone(),
            files: BTreeSet::new(),
            new_files: Vec::new(),
            rows: vec![false; rows],
            entries: vec![false; entries],
            entry_hits: Vec::new(),
        };
        for name in &touched.files {
            reach.reach_file(name);
        }
        reach
    }

    /// Note a file reached (once).
    fn reach_file(&mut self, name: &str) {
        if !self.files.contains(name) {
            self.files.insert(name.to_owned());
            self.new_files.push(name.to_owned());
        }
    }

    /// Follow keys to rows, entries and files until a pass finds nothing
    /// new; false if that takes more than `PASSES_MAX` passes (a long
    /// chain of groups: merging everything is then cheaper, and no
    /// catalog can make an update cost O(n) passes).
    fn close(&mut self, rows: &[Row], scan: &[ScannedFile], entries: &[MergeEntry<'_>]) -> bool {
        for _ in 0..PASSES_MAX {
            let mut grew = self.follow_new_files(scan, entries);
            grew |= self.reach_rows(rows);
            grew |= self.reach_entries(scan, entries);
            self.reach_cache_files(scan);
            if !grew && self.new_files.is_empty() {
                return true;
            }
        }
        false
    }

    /// A reached file brings its local ref and the sha256 its sidecar
    /// records; a cache file's name brings every entry whose ref it could
    /// belong to (ownership decides whether the file is listed alone).
    fn follow_new_files(&mut self, scan: &[ScannedFile], entries: &[MergeEntry<'_>]) -> bool {
        let mut grew = false;
        let mut prefixes: Vec<[u8; REF_PREFIX_LEN / 2]> = Vec::new();
        for name in std::mem::take(&mut self.new_files) {
            grew |= self.keys.insert(local_ref(&name));
            if let Some(prefix) = cache_ref_prefix(&name).and_then(prefix_bytes) {
                prefixes.push(prefix);
            }
            if let Some(sha) = scan_index(scan, &name)
                .and_then(|i| scan[i].sidecar.fresh_sha256())
                .and_then(Sha256Digest::from_hex)
            {
                grew |= self.keys.insert(sha);
            }
        }
        if !prefixes.is_empty() {
            for e in entries {
                if prefixes.iter().any(|p| e.image_ref.0.starts_with(p)) {
                    grew |= self.keys.insert(e.image_ref);
                }
            }
        }
        grew
    }

    /// Rows holding a reached key: their keys and files are reached too.
    fn reach_rows(&mut self, rows: &[Row]) -> bool {
        let mut grew = false;
        for (i, row) in rows.iter().enumerate() {
            if self.rows[i] || !row.keys().any(|k| self.keys.contains(&k)) {
                continue;
            }
            self.rows[i] = true;
            grew = true;
            self.keys.extend(row.keys());
            for source in row.sources.iter().filter(|s| s.kind == SourceKind::Local) {
                let name = source.location.rsplit('/').next().unwrap_or_default();
                self.reach_file(name);
            }
            if let Some(name) = &row.file_name {
                self.reach_file(name);
            }
        }
        grew
    }

    /// Cache files named for a reached ref: whether an entry still owns
    /// one decides whether it is listed alone (a removed entry leaves no
    /// other trace of its file).
    fn reach_cache_files(&mut self, scan: &[ScannedFile]) {
        let prefixes: BTreeSet<[u8; REF_PREFIX_LEN / 2]> = self
            .keys
            .iter()
            .map(|k| {
                let mut p = [0; REF_PREFIX_LEN / 2];
                p.copy_from_slice(&k.0[..REF_PREFIX_LEN / 2]);
                p
            })
            .collect();
        for f in scan {
            let reached = f
                .cache_ref_prefix
                .as_deref()
                .and_then(prefix_bytes)
                .is_some_and(|p| prefixes.contains(&p));
            if reached {
                self.reach_file(&f.name);
            }
        }
    }

    /// Entries with a reached ref: their candidate's sha256 and cache file
    /// are reached too.
    fn reach_entries(&mut self, scan: &[ScannedFile], entries: &[MergeEntry<'_>]) -> bool {
        let mut grew = false;
        for (j, e) in entries.iter().enumerate() {
            if self.entries[j] || !self.keys.contains(&e.image_ref) {
                continue;
            }
            self.entries[j] = true;
            grew = true;
            let (name, ref_hex) = cache_name_of(e);
            let hit = scan_index(scan, &name).filter(|&i| is_cache_of(&scan[i], &ref_hex));
            self.entry_hits.push((j, hit));
            if let Some(sha) = entry_candidate(e, hit, scan).sha256 {
                self.keys.insert(sha);
            }
            if let Some(i) = hit {
                self.reach_file(&scan[i].name);
            }
        }
        grew
    }
}

/// The index of the file `name` in a scan sorted by name.
fn scan_index(scan: &[ScannedFile], name: &str) -> Option<usize> {
    scan.binary_search_by(|f| f.name.as_str().cmp(name)).ok()
}

/// A cache name's 12-hex ref prefix as the bytes a ref starts with.
fn prefix_bytes(hex: &str) -> Option<[u8; REF_PREFIX_LEN / 2]> {
    let mut out = [0; REF_PREFIX_LEN / 2];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}
