//! The catalog's side of downloads and lookups: what to fetch for an entry,
//! recording landed bytes and their validators, cache deletes, and resolving
//! any key an operator types (row id, ref, sha256, src, name) to a file.

use super::actor::CatalogState;
use super::error::CatalogError;
use super::index::IndexedCatalog;
use super::messages::Change;
use crate::domain::{DownloadSpec, Downloaded, LocalImage};
use crate::events::{CatalogEvent, CatalogEventKind};
use bty_store::digest::Sha256Digest;
use bty_store::merge::SourceKind;
use bty_store::sidecar::Sidecar;

impl CatalogState {
    /// The index of the entry a key names: ref, src, entry name, or the id
    /// of a row that has a remote source.
    fn entry_for(&mut self, key: &str) -> Option<usize> {
        let key = key.trim();
        if let Some(i) = self.catalog.position_of(key) {
            return Some(i);
        }
        if let Some(i) = self.catalog.position_of_name(key) {
            return Some(i);
        }
        let digest = Sha256Digest::from_hex(key)?;
        let rows = self.rows();
        let row = rows.iter().find(|r| r.answers_to(digest))?;
        row.sources
            .iter()
            .filter(|s| s.kind != SourceKind::Local)
            .find_map(|s| self.catalog.position_of(&s.location))
    }

    /// The index of the remote entry `key` names, or why there is none.
    fn no_remote_entry(&mut self, key: &str) -> Result<usize, CatalogError> {
        self.entry_for(key)
            .ok_or_else(|| CatalogError::NoRemoteEntry {
                key: key.to_owned(),
            })
    }

    pub(super) fn download_spec(
        &mut self,
        key: &str,
        update: bool,
    ) -> Result<DownloadSpec, CatalogError> {
        let index = self.no_remote_entry(key)?;
        let entry = self.catalog.entry(index);
        let image_ref = entry.image_ref()?;
        let cache_file_name = entry.cache_file_name()?;
        let cached = self.scanned(&cache_file_name);
        if update && cached.is_none() {
            return Err(CatalogError::NotCached {
                name: entry.name.to_string(),
            });
        }
        Ok(DownloadSpec {
            image_ref,
            name: entry.name.to_string(),
            src: entry.src.to_string(),
            pinned_sha256: entry.sha256.map(|d| d.to_hex()),
            sha_url: entry.record.sha_url.as_deref().map(str::to_owned),
            size_bytes: entry.size_bytes,
            cache_file_name,
            update,
            cached_sha256: cached.and_then(|f| match &f.sidecar {
                Sidecar::Fresh(sha) => Some(sha.clone()),
                _ => None,
            }),
            etag: entry.record.cached_etag.as_deref().map(str::to_owned),
            last_modified: entry
                .record
                .cached_last_modified
                .as_deref()
                .map(str::to_owned),
            partial_name: None,
        })
    }

    /// A download landed: its file fills its entry's row at once (it is
    /// no new row to announce: `cache.populated` is said), and its
    /// validators are recorded as a change of their own.
    pub(super) fn downloaded(&mut self, mut done: Downloaded) {
        self.land_file(&done.cache_file_name, done.landed.take());
        self.arriving.remove(&done.cache_file_name);
        self.args.events.catalog(CatalogEvent::new(
            CatalogEventKind::CachePopulated,
            &done.cache_file_name,
            format!(
                "{} landed: sha256 {}",
                done.cache_file_name,
                &done.sha256[..done.sha256.len().min(12)]
            ),
        ));
        self.change(Change::Validators(done));
    }

    /// The catalog with a landed download's validators, when they changed
    /// (and catalog.toml may be written).
    pub(super) fn plan_validators(&self, done: &Downloaded) -> Option<IndexedCatalog> {
        let index = self.catalog.position_of_ref(&done.image_ref)?;
        if self.load_error.is_some() {
            return None;
        }
        let mut catalog = self.catalog.clone();
        catalog.set_cache_validators(index, done.etag.clone(), done.last_modified.clone());
        (catalog.entry(index) != self.catalog.entry(index)).then_some(catalog)
    }

    /// What deleting the cached bytes of the entry `key` names removes:
    /// the cache file's name, the entry's name and the sha256 it had.
    pub(super) fn plan_delete_cache(
        &mut self,
        key: &str,
    ) -> Result<(String, String, Option<String>), CatalogError> {
        let index = self.no_remote_entry(key)?;
        let entry = self.catalog.entry(index);
        let file_name = entry.cache_file_name()?;
        if self.arriving.contains(&file_name) {
            return Err(CatalogError::Downloading {
                name: entry.name.to_string(),
            });
        }
        let name = entry.name.to_string();
        let sha256 = self.scanned(&file_name).and_then(|f| match &f.sidecar {
            Sidecar::Fresh(sha) => Some(sha.clone()),
            _ => None,
        });
        Ok((file_name, name, sha256))
    }

    pub(super) fn resolve_local(&mut self, key: &str) -> Result<LocalImage, CatalogError> {
        let key = key.trim();
        let digest = Sha256Digest::from_hex(key);
        let rows = self.rows();
        let row = rows
            .iter()
            .find(|r| {
                digest.is_some_and(|d| r.answers_to(d))
                    || r.file_name.as_deref() == Some(key)
                    || r.names.iter().any(|n| &**n == key)
                    || r.sources.iter().any(|s| &*s.location == key)
            })
            .or_else(|| {
                let index = self.entry_for(key)?;
                let name = self.catalog.entry(index).cache_file_name().ok()?;
                rows.iter()
                    .find(|r| r.file_name.as_deref() == Some(name.as_str()))
            })
            .ok_or_else(|| CatalogError::NoImage {
                key: key.to_owned(),
            })?;
        let file_name = row
            .file_name
            .as_deref()
            .filter(|_| row.cached)
            .ok_or_else(|| CatalogError::NotLocal {
                name: row.names.first().map_or(key, |n| n).to_owned(),
            })?
            .to_owned();
        // Size, mtime and identity come from the scan: readers open the
        // file against them.
        let scanned = self
            .scanned(&file_name)
            .ok_or_else(|| CatalogError::NotListed {
                file_name: file_name.clone(),
            })?;
        let modified_ms = scanned
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok(LocalImage {
            path: self.args.image_root.join(&file_name),
            size_bytes: scanned.size_bytes,
            identity: scanned.identity,
            modified_ms,
            file_name,
            sha256: row.sha256.map(|d| d.to_hex()),
            format: row.format.as_deref().map(str::to_owned),
            names: row.names.iter().map(|n| n.to_string()).collect(),
            remote_sources: row
                .sources
                .iter()
                .filter(|s| s.kind != SourceKind::Local)
                .map(|s| s.location.to_string())
                .collect(),
            signed_by: row.signed_by.as_deref().map(str::to_owned),
        })
    }
}
