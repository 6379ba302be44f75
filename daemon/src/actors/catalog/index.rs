//! The stored catalog entries with their keys computed once: each entry's
//! ref (sha256 of its canonical src) and name are indexed, so a lookup by
//! src, ref or name is O(1) and an import of k entries into n costs
//! O(n + k), not O(n·k) canonicalisations.

use bty_store::canon::{SrcError, image_ref};
use bty_store::catalog_file::{CatalogEntry, CatalogFile, ParsedCatalog};
use bty_store::digest::Sha256Digest;
use std::collections::HashMap;
use std::sync::Arc;

/// A ref as bytes: half the memory of its hex spelling, in the vector and
/// in the map.
type RefKey = Sha256Digest;

/// The index key of a src, computed once by [`IndexedCatalog::key_of`].
#[derive(Debug, Clone, Copy)]
pub(super) struct EntryKey(RefKey);

/// `catalog.toml` plus its indexes. Changes are made on a clone and adopted
/// only once written (see `changes.rs`).
#[derive(Debug, Clone, Default)]
pub(super) struct IndexedCatalog {
    file: CatalogFile,
    /// The ref of `file.entries[i]`; `None` only for a src that does not
    /// canonicalise, which parsing and adding already refuse.
    refs: Vec<Option<RefKey>>,
    by_ref: HashMap<RefKey, usize>,
    /// Keys share the entries' names.
    by_name: HashMap<Arc<str>, usize>,
    /// Refs of the entries added, replaced or removed since the last
    /// `take_touched`: what the merged listing must follow.
    touched: Vec<RefKey>,
}

/// The ref key of a src: sha256 of its canonical spelling.
fn ref_key_of_src(src: &str) -> Option<RefKey> {
    ref_key_of_hex(&image_ref(src).ok()?)
}

/// The ref key spelled by 64 hex digits (either case).
fn ref_key_of_hex(hex: &str) -> Option<RefKey> {
    Sha256Digest::from_hex(hex)
}

impl IndexedCatalog {
    /// Index `file`: one canonicalisation per entry.
    #[cfg(test)]
    pub(super) fn new(file: CatalogFile) -> Self {
        let refs = file
            .entries
            .iter()
            .map(|e| ref_key_of_src(&e.src))
            .collect();
        let mut indexed = Self {
            file,
            refs,
            by_ref: HashMap::new(),
            by_name: HashMap::new(),
            touched: Vec::new(),
        };
        indexed.reindex();
        indexed
    }

    /// Index a parsed catalog with the refs its parse computed: no
    /// canonicalisation at all.
    pub(super) fn from_parsed(parsed: ParsedCatalog) -> Self {
        let mut indexed = Self {
            refs: parsed.refs.into_iter().map(Some).collect(),
            file: parsed.file,
            by_ref: HashMap::new(),
            by_name: HashMap::new(),
            touched: Vec::new(),
        };
        indexed.reindex();
        indexed
    }

    /// Rebuild the maps from `refs` (no canonicalisation). The first entry
    /// with a key wins, as a linear search would find it.
    fn reindex(&mut self) {
        self.by_ref = HashMap::with_capacity(self.refs.len());
        self.by_name = HashMap::with_capacity(self.refs.len());
        for (i, (entry, key)) in self.file.entries.iter().zip(&self.refs).enumerate() {
            if let Some(key) = key {
                self.by_ref.entry(*key).or_insert(i);
            }
            self.by_name.entry(Arc::clone(&entry.name)).or_insert(i);
        }
    }

    /// The file as it is written to disk.
    pub(super) fn file(&self) -> &CatalogFile {
        &self.file
    }

    /// Entry `index`.
    pub(super) fn entry(&self, index: usize) -> &CatalogEntry {
        &self.file.entries[index]
    }

    /// Every entry with its ref.
    pub(super) fn with_refs(&self) -> impl Iterator<Item = (&CatalogEntry, Option<Sha256Digest>)> {
        self.file.entries.iter().zip(self.refs.iter().copied())
    }

    /// The entry a src (any spelling of it) or a ref names.
    pub(super) fn position_of(&self, src_or_ref: &str) -> Option<usize> {
        let wanted = src_or_ref.trim();
        ref_key_of_hex(wanted)
            .and_then(|key| self.by_ref.get(&key))
            .or_else(|| self.by_ref.get(&ref_key_of_src(wanted)?))
            .copied()
    }

    /// The entry with this ref (lowercase hex).
    pub(super) fn position_of_ref(&self, image_ref: &str) -> Option<usize> {
        self.by_ref.get(&ref_key_of_hex(image_ref)?).copied()
    }

    /// The entry named `name`.
    pub(super) fn position_of_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The key of `src`, or why it is not a valid src.
    pub(super) fn key_of(src: &str) -> Result<EntryKey, SrcError> {
        let hex = image_ref(src)?;
        // image_ref spells 64 lowercase hex digits.
        Ok(EntryKey(
            ref_key_of_hex(&hex).unwrap_or(Sha256Digest([0; 32])),
        ))
    }

    /// The key of a ref computed elsewhere (a parse).
    pub(super) fn key_of_ref(image_ref: Sha256Digest) -> EntryKey {
        EntryKey(image_ref)
    }

    /// The entry with this key.
    pub(super) fn position_of_key(&self, key: EntryKey) -> Option<usize> {
        self.by_ref.get(&key.0).copied()
    }

    /// Append `entry`, whose src has `key`.
    pub(super) fn push(&mut self, entry: CatalogEntry, key: EntryKey) {
        let index = self.file.entries.len();
        self.by_ref.entry(key.0).or_insert(index);
        self.by_name.entry(Arc::clone(&entry.name)).or_insert(index);
        self.refs.push(Some(key.0));
        self.file.entries.push(entry);
        self.touched.push(key.0);
    }

    /// Replace entry `index` with one of the same src (an import's update):
    /// only its name can move in the index.
    pub(super) fn replace(&mut self, index: usize, entry: CatalogEntry) {
        let old = std::mem::replace(&mut self.file.entries[index], entry);
        self.touched.extend(self.refs[index]);
        let new_name = &self.file.entries[index].name;
        if &old.name != new_name {
            if self.by_name.get(&old.name) == Some(&index) {
                self.by_name.remove(&old.name);
            }
            self.by_name.entry(Arc::clone(new_name)).or_insert(index);
        }
    }

    /// The refs of the entries added, replaced or removed since the last
    /// call (the validators below change no row).
    pub(super) fn take_touched(&mut self) -> Vec<Sha256Digest> {
        std::mem::take(&mut self.touched)
    }

    /// Entry `index`'s record of its cached download's validators.
    pub(super) fn set_cache_validators(
        &mut self,
        index: usize,
        etag: Option<String>,
        last_modified: Option<String>,
    ) {
        let record = &mut self.file.entries[index].record;
        record.cached_etag = etag.map(Into::into);
        record.cached_last_modified = last_modified.map(Into::into);
    }

    /// Remove entry `index` (the indexes behind it shift: O(n)).
    pub(super) fn remove(&mut self, index: usize) -> CatalogEntry {
        self.touched.extend(self.refs.remove(index));
        let entry = self.file.entries.remove(index);
        self.reindex();
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, src: &str) -> CatalogEntry {
        CatalogEntry::new(name, src)
    }

    fn catalog(entries: Vec<CatalogEntry>) -> IndexedCatalog {
        IndexedCatalog::new(CatalogFile {
            entries,
            extra: toml::Table::new(),
        })
    }

    #[test]
    fn finds_by_any_spelling_of_src_by_ref_and_by_name() {
        let c = catalog(vec![
            entry("a", "https://example.com/a.img"),
            entry("b", "https://example.com/b.img"),
        ]);
        assert_eq!(c.position_of("https://EXAMPLE.com:443/b.img"), Some(1));
        let b_ref = bty_store::canon::image_ref("https://example.com/b.img").unwrap();
        assert_eq!(c.position_of(&b_ref), Some(1));
        assert_eq!(c.position_of(&b_ref.to_uppercase()), Some(1));
        assert_eq!(c.position_of_ref(&b_ref), Some(1));
        assert_eq!(c.position_of_name("a"), Some(0));
        assert_eq!(c.position_of("https://example.com/c.img"), None);
        assert_eq!(c.position_of_name("c"), None);
        assert_eq!(
            c.with_refs()
                .nth(1)
                .unwrap()
                .1
                .map(|r| r.to_hex())
                .as_deref(),
            Some(&*b_ref)
        );
    }

    #[test]
    fn push_replace_and_remove_keep_the_indexes_right() {
        let mut c = catalog(vec![entry("a", "https://example.com/a.img")]);
        for name in ["b", "c"] {
            let src = format!("https://example.com/{name}.img");
            let key = IndexedCatalog::key_of(&src).unwrap();
            assert_eq!(c.position_of_key(key), None);
            c.push(entry(name, &src), key);
            assert_eq!(c.position_of_key(key), c.position_of(&src));
        }
        c.replace(1, entry("b2", "https://example.com/b.img"));
        assert_eq!(c.position_of_name("b"), None);
        assert_eq!(c.position_of_name("b2"), Some(1));
        let removed = c.remove(0);
        assert_eq!(&*removed.name, "a");
        assert_eq!(c.position_of("https://example.com/a.img"), None);
        assert_eq!(c.position_of("https://example.com/c.img"), Some(1));
        assert_eq!(c.position_of_name("c"), Some(1));
        assert_eq!(c.file().entries.len(), 2);
    }

    #[test]
    fn a_ref_that_is_not_hex_is_no_ref() {
        assert_eq!(ref_key_of_hex(&"g".repeat(64)), None);
        assert_eq!(ref_key_of_hex("abc"), None);
        assert_eq!(
            ref_key_of_hex(&"ab".repeat(32)),
            Some(Sha256Digest([0xab; 32]))
        );
    }
}
